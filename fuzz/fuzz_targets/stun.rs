//! Fuzz target: see edgetrace::fuzzing::stun.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgetrace::fuzzing::stun(data);
});
