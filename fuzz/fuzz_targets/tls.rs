//! Fuzz target: see edgetrace::fuzzing::tls.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgetrace::fuzzing::tls(data);
});
