//! Any bytes as a capture file: reader, decoder, defragmenter, flow table and
//! TCP reassembly must neither panic nor hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgetrace::fuzzing::capture(data);
    edgetrace::fuzzing::analyzers_capture(data);
});
