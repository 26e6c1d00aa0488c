//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and by the test
//! that replays their corpus (`tests/it/fuzz_replay.rs`), so every input that
//! once crashed a parser stays a regression test in plain `cargo test`.

use crate::capture::{CaptureReader, Source};
use crate::flow::reassembly::{Event, Reassembler};
use crate::flow::streams::{StreamConsumer, StreamLimits, TcpStreams};
use crate::flow::{Dir, FlowId};
use crate::packet::{self, TcpFlags};
use crate::pipeline::{self, RunOptions};

struct Sink;

impl StreamConsumer for Sink {
    fn event(&mut self, _: FlowId, _: Dir, ev: Event<'_>) {
        if let Event::Data { bytes, .. } = ev {
            std::hint::black_box(bytes);
        }
    }
}

/// Runs the whole pipeline (with TCP reassembly) over `data` as a capture file.
pub fn capture(data: &[u8]) {
    let Ok(reader) = CaptureReader::new(Source::from_bytes(data.to_vec())) else {
        return;
    };
    let limits = StreamLimits {
        max_pending_per_dir: 4096,
        max_pending_total: 16 * 1024,
        max_connections: 8,
        idle_timeout_ns: 1_000_000_000,
    };
    let mut streams = TcpStreams::new(Sink, limits);
    let _ = pipeline::run(reader, &RunOptions::default(), &mut streams);
}

/// Decodes `data` as a frame of every link type we know (and one we do not).
pub fn packet(data: &[u8]) {
    for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147] {
        std::hint::black_box(packet::decode_frame(lt, data));
    }
}

/// Interprets `data` as segments: [seq: 4][flags: 1][len: 1][payload…]… and
/// checks that delivered bytes are contiguous.
pub fn reassembly(data: &[u8]) {
    let mut r = Reassembler::new(1024);
    let mut next: Option<u64> = None;
    let mut check = |e: Event<'_>| {
        let (off, len) = match e {
            Event::Data { offset, bytes, .. } => (offset, bytes.len() as u64),
            Event::Gap { offset, len, .. } => (offset, len),
        };
        if let Some(n) = next {
            assert_eq!(off, n, "events must be contiguous");
        }
        next = Some(off + len);
    };
    let mut i = 0;
    let mut frame = 0;
    while i + 6 <= data.len() {
        let seq = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let flags = TcpFlags(data[i + 4] & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::FIN));
        let len = (data[i + 5] as usize).min(data.len() - i - 6);
        let payload = &data[i + 6..i + 6 + len];
        frame += 1;
        // the wire length may exceed the captured payload (snaplen)
        let wire = len as u32 + (data[i + 4] >> 4) as u32;
        r.segment(seq, flags, payload, wire, frame, 0, &mut check);
        assert!(r.pending_bytes() <= 1024 + 255);
        i += 6 + len;
    }
    r.finish(&mut check);
}
