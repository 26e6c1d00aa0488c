//! The streaming pass over a capture: frames are read, decoded,
//! defragmented and accounted to flows, one at a time, in file order.
//! Memory stays flat: no frame outlives its iteration, fragments and flow
//! records are the only state, and both are bounded (see `packet::defrag`).
//!
//! Consumers (protocol finders, added by later stages) see every decoded
//! packet with its flow through [`PacketSink`].

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::capture::{CaptureError, CaptureReader, Frame, ReadStats};
use crate::flow::{Dir, FlowId, FlowTable};
use crate::packet::defrag::{DefragStats, Defragmenter};
use crate::packet::{self, DecodeCounts, Decoded, Packet, SkipReason, Transport};

/// Receives every decoded IP packet, in file order.
pub trait PacketSink {
    /// Called once per IP packet (reassembled datagrams once, in their last frame).
    fn packet(&mut self, frame: &Frame<'_>, pkt: &Packet<'_>, flow: Option<(FlowId, Dir)>, flows: &FlowTable);
    /// Called at the end of the capture.
    fn finish(&mut self, _flows: &FlowTable) {}
}

/// A sink that does nothing (the `flows` command).
pub struct NoSink;

impl PacketSink for NoSink {
    fn packet(&mut self, _: &Frame<'_>, _: &Packet<'_>, _: Option<(FlowId, Dir)>, _: &FlowTable) {}
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar on stderr (callers decide: terminal and long input).
    pub progress: bool,
}

/// Everything the pass produced.
pub struct RunResult {
    /// Flow table.
    pub flows: FlowTable,
    /// What the reader saw (format, frames, damage).
    pub read: ReadStats,
    /// Per-category frame counts.
    pub decode: DecodeCounts,
    /// Frames not analysed, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Fragment reassembly counters.
    pub defrag: DefragStats,
}

/// How often (in frames) incomplete fragments are expired and progress updated.
const HOUSEKEEPING_EVERY: u64 = 1 << 14;

/// Reads the whole capture.
pub fn run(
    mut reader: CaptureReader,
    opts: &RunOptions,
    sink: &mut dyn PacketSink,
) -> Result<RunResult, CaptureError> {
    let mut flows = FlowTable::new();
    let mut defrag = Defragmenter::new();
    let mut decode = DecodeCounts::default();
    let mut skipped: BTreeMap<SkipReason, u64> = BTreeMap::new();
    let bar = progress_bar(opts.progress, reader.input_len());
    let mut n: u64 = 0;
    loop {
        n += 1;
        if n % HOUSEKEEPING_EVERY == 0 {
            if let Some(b) = &bar {
                b.set_position(reader.position());
            }
        }
        let Some(frame) = reader.next_frame()? else {
            break;
        };
        if n % HOUSEKEEPING_EVERY == 0 {
            defrag.expire(frame.ts_ns);
        }
        match packet::decode_frame(frame.link_type, frame.data) {
            Decoded::Packet(p) => {
                count(&mut decode, &p);
                if p.ip_truncated && frame.data.len() >= frame.orig_len as usize {
                    decode.ip_length_exceeds_frame += 1;
                }
                let f = flows.observe(&frame, &p);
                sink.packet(&frame, &p, f, &flows);
            }
            Decoded::Fragment(frag) => {
                decode.ip_fragments += 1;
                if let Some(r) = defrag.push(&frag, frame.number, frame.ts_ns) {
                    let len = r.data.len() as u32;
                    match packet::decode_ip_payload(r.key.src, r.key.dst, r.key.protocol, &r.data, len, r.depth) {
                        Decoded::Packet(p) => {
                            count(&mut decode, &p);
                            let f = flows.observe(&frame, &p);
                            sink.packet(&frame, &p, f, &flows);
                        }
                        Decoded::Skip(reason) => *skipped.entry(reason).or_insert(0) += 1,
                        // a fragment inside a reassembled tunnel payload: rare, not followed
                        Decoded::Fragment(_) => {
                            *skipped.entry(SkipReason::UnsupportedTunnel).or_insert(0) += 1
                        }
                    }
                }
            }
            Decoded::Skip(SkipReason::NotIp) => decode.non_ip += 1,
            Decoded::Skip(reason) => *skipped.entry(reason).or_insert(0) += 1,
        }
    }
    defrag.finish();
    sink.finish(&flows);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(RunResult {
        flows,
        read: reader.stats().clone(),
        decode,
        skipped,
        defrag: defrag.stats,
    })
}

fn count(c: &mut DecodeCounts, p: &Packet<'_>) {
    match p.transport {
        Transport::Tcp(_) => c.tcp += 1,
        Transport::Udp(_) => c.udp += 1,
        Transport::Icmp(_) => c.icmp += 1,
        Transport::Other(_) => c.other_ip += 1,
    }
}

/// A bar in bytes of the input as stored (compressed size for gzip), or a
/// spinner when the size is unknown (stdin).
fn progress_bar(enabled: bool, input_len: Option<u64>) -> Option<ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = ProgressBar::with_draw_target(input_len, ProgressDrawTarget::stderr());
    let template = if input_len.is_some() {
        "{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  eta {eta}"
    } else {
        "{spinner} {bytes} read  {bytes_per_sec}"
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
