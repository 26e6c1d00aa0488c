//! Fuzz target: see edgetrace::fuzzing::sip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgetrace::fuzzing::sip(data);
});
