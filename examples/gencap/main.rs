//! Generates a large, realistic capture for benchmarks by replaying the lab
//! captures in `samples/` many times with shifted addresses and times.
//!
//! ```text
//! cargo run --release --example gencap -- SIZE OUT.pcap [SAMPLES_DIR]
//! ```
//! SIZE accepts K/M/G suffixes (powers of 1024).  Every replica gets its own
//! addresses ((10+S).R.R.x, S = sample, R = replica, 65,536 replicas), so flows never merge, and
//! replicas are interleaved 64 at a time with millisecond offsets, so the
//! flow table and TCP reassembly see many concurrent flows, as in a real
//! Edge capture.  Signalling comes from the samples (STUN/TURN over UDP and
//! TCP incl. RFC 6062, SIP with SDP incl. IP fragments, TLS on 8057); each
//! replica also gets what dominates real Edge captures by volume: a two-way
//! audio stream (RTP, 50 packets/s each way for 20 s, to a relay port in
//! 50000–59999) and a bulk TLS-like TCP transfer on 443.  The average frame
//! is about 250 bytes.
//!
//! Every replica is also its own call: the Call-IDs, From/To tags and ICE
//! ufrags found in a sample are replaced, in every frame of a replica, by
//! text of the same length that names that replica (see `replica.rs`), and
//! the transaction id of every STUN message carried in UDP (ChannelData and
//! TURN DATA included) is XORed with the replica number, with FINGERPRINT
//! recomputed in the variant the message used (standard or MS legacy CRC).
//! So a capture of N replicas holds N times the sample's SIP dialogs, ICE
//! sessions and checks, as a real Edge capture of N calls does, rather than
//! one dialog whose messages were seen N times.  STUN in TCP keeps its
//! transaction ids: a message may span segments, and such transactions are
//! paired within their own connection anyway.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use edgetrace::capture::CaptureReader;
use etherparse::PacketBuilder;

mod replica;
use replica::{personalize, rewrite, Identity};

struct Pkt {
    ts_us: u64,
    data: Vec<u8>,
}

fn parse_size(s: &str) -> u64 {
    let (num, mul) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .expect("SIZE: a number with an optional K/M/G suffix")
        * mul
}

fn load(dir: &Path) -> Vec<Vec<Pkt>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("samples directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let mut r = CaptureReader::open(&f).expect("readable sample");
        let mut pkts = Vec::new();
        let mut t0 = None;
        while let Some(fr) = r.next_frame().expect("read") {
            if fr.link_type != 1 {
                continue;
            }
            let us = (fr.ts_ns / 1000) as u64;
            let base = *t0.get_or_insert(us);
            pkts.push(Pkt {
                ts_us: us - base,
                data: fr.data.to_vec(),
            });
        }
        out.push(pkts);
    }
    out
}

/// Synthetic traffic of one replica: audio both ways and a bulk TCP download.
fn synthetic(r: u32) -> Vec<Pkt> {
    let mut v = Vec::new();
    let hi = (r >> 8) as u8;
    let lo = (r & 0xff) as u8;
    let client = [172, 16 + (hi & 15), lo, 10];
    let relay = [52, 112, hi, lo];
    let cport = 50_000 + (r % 10_000) as u16;
    let rport = 50_000 + ((r * 7) % 10_000) as u16;
    let mut rtp = [0u8; 172];
    rtp[0] = 0x80;
    for i in 0..1000u32 {
        for (dir, (s, sp, d, dp)) in [(client, cport, relay, rport), (relay, rport, client, cport)]
            .into_iter()
            .enumerate()
        {
            rtp[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            let b = PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4(s, d, 64)
                .udp(sp, dp);
            let mut data = Vec::with_capacity(214);
            b.write(&mut data, &rtp).unwrap();
            v.push(Pkt {
                ts_us: i as u64 * 20_000 + dir as u64 * 3_000,
                data,
            });
        }
    }
    let server = [52, 113, hi, lo];
    let port = 40_000 + (r % 20_000) as u16;
    let payload = [0x17u8; 1400];
    let mut seq = 1_000u32;
    for i in 0..60u32 {
        let b = PacketBuilder::ethernet2([4; 6], [2; 6])
            .ipv4(server, client, 64)
            .tcp(443, port, seq, 65_535)
            .ack(1)
            .psh();
        let mut data = Vec::with_capacity(1454);
        b.write(&mut data, &payload).unwrap();
        v.push(Pkt {
            ts_us: 500_000 + i as u64 * 2_000,
            data,
        });
        seq = seq.wrapping_add(1400);
        if i % 2 == 1 {
            let b = PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4(client, server, 64)
                .tcp(port, 443, 1, 65_535)
                .ack(seq);
            let mut data = Vec::with_capacity(54);
            b.write(&mut data, &[]).unwrap();
            v.push(Pkt {
                ts_us: 500_100 + i as u64 * 2_000,
                data,
            });
        }
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gencap SIZE OUT.pcap [SAMPLES_DIR]");
        std::process::exit(2);
    }
    let target = parse_size(&args[1]);
    let out = &args[2];
    let dir = args
        .get(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples"));
    let samples = load(&dir);
    let mut next = 0;
    let ids: Vec<Identity> = samples
        .iter()
        .map(|s| Identity::discover(s.iter().map(|p| p.data.as_slice()), &mut next))
        .collect();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out).expect("create output"));
    let mut hdr = Vec::new();
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&262_144u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    w.write_all(&hdr).unwrap();
    let mut written = hdr.len() as u64;
    let mut frames = 0u64;
    let mut clock_us: u64 = 1_795_000_000_000_000;
    let mut replica: u32 = 0;
    const BATCH: u32 = 64;
    while written < target {
        // one batch: every sample, BATCH replicas each, merged by time
        let mut batch: Vec<(u64, u8, u32, usize)> = Vec::new();
        let mut span = 0;
        let synth: Vec<Vec<Pkt>> = (0..BATCH).map(|k| synthetic(replica + k)).collect();
        for (k, pkts) in synth.iter().enumerate() {
            for (pi, p) in pkts.iter().enumerate() {
                let t = p.ts_us + k as u64 * 1_000;
                batch.push((t, 255, k as u32, pi));
                span = span.max(t);
            }
        }
        for (si, pkts) in samples.iter().enumerate() {
            for k in 0..BATCH {
                let shift = k as u64 * 1_000 + si as u64 * 137;
                for (pi, p) in pkts.iter().enumerate() {
                    batch.push((p.ts_us + shift, si as u8, replica + k, pi));
                    span = span.max(p.ts_us + shift);
                }
            }
        }
        batch.sort_unstable();
        let mut buf = Vec::new();
        for (ts, si, r, pi) in batch {
            buf.clear();
            if si == 255 {
                buf.extend_from_slice(&synth[r as usize][pi].data);
            } else {
                buf.extend_from_slice(&samples[si as usize][pi].data);
                rewrite(&mut buf, si + 1, (r % 65_536) as u16);
                personalize(&mut buf, &ids[si as usize], r);
            }
            let t = clock_us + ts;
            let mut rec = [0u8; 16];
            rec[0..4].copy_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
            rec[4..8].copy_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
            rec[8..12].copy_from_slice(&(buf.len() as u32).to_le_bytes());
            rec[12..16].copy_from_slice(&(buf.len() as u32).to_le_bytes());
            w.write_all(&rec).unwrap();
            w.write_all(&buf).unwrap();
            written += 16 + buf.len() as u64;
            frames += 1;
            if written >= target {
                break;
            }
        }
        clock_us += span + 1_000;
        replica += BATCH;
    }
    w.flush().unwrap();
    eprintln!(
        "{out}: {written} bytes, {frames} frames, average {} bytes per record",
        written / frames.max(1)
    );
}
