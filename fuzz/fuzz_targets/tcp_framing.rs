//! Fuzz target: see edgetrace::fuzzing::tcp_framing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgetrace::fuzzing::tcp_framing(data);
});
