//! Criterion benchmarks of the hot paths, on the bundled samples:
//!
//! ```text
//! cargo bench --features bench --bench hot_paths
//! ```
//!
//! Each stage of the pipeline is measured alone, in bytes per second of the
//! input it reads: capture reading, packet decoding, flow accounting, the
//! STUN and SIP parsers, and the whole `report` analysis.  The end-to-end
//! figures against `cat` and tshark come from `scripts/bench.sh`
//! (docs/performance.md).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edgetrace::capture::{source::Source, CaptureReader, FrameInfo};
use edgetrace::flow::FlowTable;
use edgetrace::packet::{self, Decoded, Transport};

/// The Ethernet frames of every sample, in file order (timestamps in µs).
fn sample_frames() -> Vec<(i64, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("samples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let mut r = CaptureReader::open(&f).expect("sample");
        while let Some(fr) = r.next_frame().expect("readable") {
            if fr.link_type == 1 {
                out.push((fr.ts_ns, fr.data.to_vec()));
            }
        }
    }
    out
}

/// A classic pcap holding the sample frames `copies` times over.
fn pcap_of(frames: &[(i64, Vec<u8>)], copies: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let mut t: u64 = 1_700_000_000_000_000;
    for _ in 0..copies {
        for (_, data) in frames {
            t += 100;
            b.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
            b.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(data);
        }
    }
    b
}

fn reader(bytes: &[u8]) -> CaptureReader {
    CaptureReader::new(Source::from_bytes(bytes.to_vec())).expect("capture")
}

fn benches(c: &mut Criterion) {
    let frames = sample_frames();
    let wire: u64 = frames.iter().map(|(_, d)| d.len() as u64).sum();
    let capture = pcap_of(&frames, 20);

    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Bytes(capture.len() as u64));
    g.bench_function("capture read (pcap, 20 x samples)", |b| {
        b.iter(|| {
            let mut r = reader(&capture);
            let mut n = 0u64;
            while let Some(f) = r.next_frame().expect("read") {
                n += f.data.len() as u64;
            }
            black_box(n)
        })
    });
    g.bench_function("report analysis (20 x samples)", |b| {
        b.iter(|| {
            let a = edgetrace::analyze::all::analyze(reader(&capture), &Default::default())
                .expect("analysis");
            black_box(a.allocations.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("per packet");
    g.throughput(Throughput::Bytes(wire));
    g.bench_function("decode_frame (samples)", |b| {
        b.iter(|| {
            for (_, d) in &frames {
                black_box(packet::decode_frame(1, d));
            }
        })
    });
    for (name, counting) in [
        ("FlowTable::observe (samples)", false),
        ("FlowTable::observe, counting (samples)", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut t = FlowTable::new();
                if counting {
                    t = t.counting();
                }
                for (i, (ts, d)) in frames.iter().enumerate() {
                    if let Decoded::Packet(p) = packet::decode_frame(1, d) {
                        let info = FrameInfo {
                            number: i as u64 + 1,
                            ts_ns: *ts,
                            orig_len: d.len() as u32,
                            cap_len: d.len() as u32,
                        };
                        black_box(t.observe(&info, &p));
                    }
                }
                t.len()
            })
        });
    }
    g.finish();

    // the UDP payloads the parsers see
    let payloads: Vec<Vec<u8>> = frames
        .iter()
        .filter_map(|(_, d)| match packet::decode_frame(1, d) {
            Decoded::Packet(p) => match p.transport {
                Transport::Udp(u) => Some(u.payload.to_vec()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let stun: Vec<&Vec<u8>> = payloads
        .iter()
        .filter(|p| edgetrace::proto::stun::parse(p).is_ok())
        .collect();
    let sip: Vec<&Vec<u8>> = payloads
        .iter()
        .filter(|p| edgetrace::proto::sip::parse(p, true).is_some())
        .collect();
    let mut g = c.benchmark_group("parsers");
    g.throughput(Throughput::Bytes(stun.iter().map(|p| p.len() as u64).sum()));
    g.bench_function(format!("stun::parse ({} messages)", stun.len()), |b| {
        b.iter(|| {
            for p in &stun {
                let _ = black_box(edgetrace::proto::stun::parse(p));
            }
        })
    });
    g.throughput(Throughput::Bytes(sip.iter().map(|p| p.len() as u64).sum()));
    g.bench_function(format!("sip::parse ({} messages)", sip.len()), |b| {
        b.iter(|| {
            for p in &sip {
                black_box(edgetrace::proto::sip::parse(p, true));
            }
        })
    });
    g.finish();
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
