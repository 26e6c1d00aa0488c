//! Any sequence of segments into one reassembler: delivered data must stay
//! contiguous and memory bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgetrace::fuzzing::reassembly(data);
});
