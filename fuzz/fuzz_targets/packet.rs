//! Any bytes as a frame of every supported link type.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgetrace::fuzzing::packet(data);
});
