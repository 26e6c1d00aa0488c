//! IPv4 and IPv6 fragment reassembly with bounded, time-evicted state.
//!
//! SIP INVITEs with SDP (and MRAS answers) routinely exceed the MTU over
//! UDP, so this is not optional for an Edge analyzer.  A datagram is keyed by
//! (source, destination, identification, protocol) as in RFC 791 §3.2 and
//! RFC 8200 §4.5, completes when every byte up to the last fragment (MF=0) is
//! present, and is handed out in the frame that completed it (Wireshark names
//! that frame too).  Overlaps are accepted when their bytes agree and
//! recorded when they differ; the first copy wins.
//!
//! Bounds: a datagram may not exceed 65,535 bytes, all pending datagrams
//! together may not exceed [`Defragmenter::MAX_PENDING_BYTES`] (the oldest is
//! dropped first), and a datagram not completed within
//! [`Defragmenter::TIMEOUT_NS`] of capture time is dropped (Linux's
//! `ipfrag_time` default is 30 s).

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::Fragment;

/// Identifies the datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Protocol of the fragmented payload.
    pub protocol: u8,
}

/// A completed datagram.
#[derive(Debug)]
pub struct Reassembled {
    /// Key of the datagram.
    pub key: FragKey,
    /// The whole IP payload.
    pub data: Vec<u8>,
    /// First frame that held one of its fragments.
    pub first_frame: u64,
    /// Number of fragments used.
    pub fragments: u32,
    /// Tunnel depth to continue decoding at.
    pub depth: u8,
}

impl Reassembled {
    /// Decodes the whole datagram's payload (the transport header and what
    /// it carries), as if it had arrived in one piece.
    pub fn decode(&self) -> super::Decoded<'_> {
        super::decode_ip_payload(
            self.key.src,
            self.key.dst,
            self.key.protocol,
            &self.data,
            self.data.len() as u32,
            self.depth,
        )
    }
}

/// What happened to fragments, for the capture summary.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct DefragStats {
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped incomplete after the timeout or at the end of the capture.
    pub incomplete: u64,
    /// Datagrams dropped to stay within the memory bound.
    pub evicted_for_memory: u64,
    /// Fragments whose bytes differed from an earlier copy of the same range.
    pub inconsistent_overlaps: u64,
    /// Fragments that would make a datagram larger than 65,535 bytes.
    pub oversized: u64,
    /// First frame with an inconsistent overlap (to look at in Wireshark).
    pub first_inconsistent_frame: Option<u64>,
}

struct Pending {
    data: Vec<u8>,
    /// Received byte ranges [start, end), kept sorted and merged.
    have: Vec<(u32, u32)>,
    /// Total length once the last fragment (MF=0) was seen.
    total: Option<u32>,
    first_frame: u64,
    last_ts: i64,
    fragments: u32,
    depth: u8,
}

/// Reassembles fragments across frames.
#[derive(Default)]
pub struct Defragmenter {
    pending: FxHashMap<FragKey, Pending>,
    pending_bytes: usize,
    /// Counters.
    pub stats: DefragStats,
}

impl Defragmenter {
    /// Capture-time timeout for incomplete datagrams.
    pub const TIMEOUT_NS: i64 = 30_000_000_000;
    /// Bound on bytes held for all incomplete datagrams together.
    pub const MAX_PENDING_BYTES: usize = 32 * 1024 * 1024;
    const MAX_DATAGRAM: u32 = 65_535;

    /// Creates an empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fragment seen in `frame` at `ts_ns`; returns the datagram when complete.
    pub fn push(&mut self, frag: &Fragment<'_>, frame: u64, ts_ns: i64) -> Option<Reassembled> {
        let start = frag.offset;
        let end = start.saturating_add(frag.data.len() as u32);
        if end > Self::MAX_DATAGRAM {
            self.stats.oversized += 1;
            return None;
        }
        if self.pending_bytes + frag.data.len() > Self::MAX_PENDING_BYTES {
            self.evict_oldest();
        }
        let p = self.pending.entry(frag.key).or_insert_with(|| Pending {
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            first_frame: frame,
            last_ts: ts_ns,
            fragments: 0,
            depth: frag.depth,
        });
        p.last_ts = ts_ns;
        p.fragments += 1;
        if !frag.more {
            p.total = Some(end);
        }
        if p.data.len() < end as usize {
            self.pending_bytes += end as usize - p.data.len();
            p.data.resize(end as usize, 0);
        }
        // Copy only the bytes not yet held; compare the ones already held.
        let mut inconsistent = false;
        let mut pos = start;
        for &(hs, he) in p.have.iter() {
            if he <= pos || hs >= end {
                continue;
            }
            if hs > pos {
                let (a, b) = (pos as usize, hs as usize);
                p.data[a..b].copy_from_slice(&frag.data[a - start as usize..b - start as usize]);
            }
            let (os, oe) = (hs.max(pos) as usize, he.min(end) as usize);
            if p.data[os..oe] != frag.data[os - start as usize..oe - start as usize] {
                inconsistent = true;
            }
            pos = pos.max(he.min(end));
        }
        if pos < end {
            let (a, b) = (pos as usize, end as usize);
            p.data[a..b].copy_from_slice(&frag.data[a - start as usize..b - start as usize]);
        }
        insert_range(&mut p.have, start, end);
        if inconsistent {
            self.stats.inconsistent_overlaps += 1;
            self.stats.first_inconsistent_frame.get_or_insert(frame);
        }
        let complete = matches!((p.total, p.have.as_slice()), (Some(t), [(0, e)]) if *e >= t);
        if complete {
            let p = self.pending.remove(&frag.key).expect("present");
            self.pending_bytes -= p.data.len();
            let mut data = p.data;
            data.truncate(p.total.unwrap_or(0) as usize);
            self.stats.reassembled += 1;
            return Some(Reassembled {
                key: frag.key,
                data,
                first_frame: p.first_frame,
                fragments: p.fragments,
                depth: p.depth,
            });
        }
        None
    }

    /// Drops datagrams not touched within the timeout before `now_ns`.
    pub fn expire(&mut self, now_ns: i64) {
        let before = self.pending.len();
        let mut freed = 0;
        self.pending.retain(|_, p| {
            let keep = now_ns.saturating_sub(p.last_ts) <= Self::TIMEOUT_NS;
            if !keep {
                freed += p.data.len();
            }
            keep
        });
        self.pending_bytes -= freed;
        self.stats.incomplete += (before - self.pending.len()) as u64;
    }

    /// Drops everything still pending (end of capture).
    pub fn finish(&mut self) {
        self.stats.incomplete += self.pending.len() as u64;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// Datagrams currently incomplete.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held for incomplete datagrams (at most [`Self::MAX_PENDING_BYTES`]).
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    fn evict_oldest(&mut self) {
        while self.pending_bytes > Self::MAX_PENDING_BYTES / 2 {
            let Some(key) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| (p.last_ts, p.first_frame))
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(p) = self.pending.remove(&key) {
                self.pending_bytes -= p.data.len();
                self.stats.evicted_for_memory += 1;
            }
        }
    }
}

/// Inserts [s, e) into a sorted list of disjoint ranges, merging neighbours.
fn insert_range(v: &mut Vec<(u32, u32)>, s: u32, e: u32) {
    if s >= e {
        return;
    }
    let mut ns = s;
    let mut ne = e;
    v.retain(|&(a, b)| {
        if b < ns || a > ne {
            true
        } else {
            ns = ns.min(a);
            ne = ne.max(b);
            false
        }
    });
    let idx = v.partition_point(|&(a, _)| a < ns);
    v.insert(idx, (ns, ne));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(off: u32, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            key: FragKey {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                id: 7,
                protocol: 17,
            },
            offset: off,
            more,
            data,
            depth: 0,
        }
    }

    #[test]
    fn out_of_order_fragments_complete_in_last_frame() {
        let mut d = Defragmenter::new();
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert!(d.push(&frag(2960, false, &payload[2960..]), 1, 0).is_none());
        assert!(d.push(&frag(0, true, &payload[..1480]), 2, 1).is_none());
        let r = d
            .push(&frag(1480, true, &payload[1480..2960]), 3, 2)
            .unwrap();
        assert_eq!(r.data, payload);
        assert_eq!(r.first_frame, 1);
        assert_eq!(r.fragments, 3);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn inconsistent_overlap_is_recorded_first_copy_wins() {
        let mut d = Defragmenter::new();
        d.push(&frag(0, true, &[1; 16]), 1, 0);
        d.push(&frag(8, true, &[2; 16]), 2, 0);
        let r = d.push(&frag(24, false, &[3; 8]), 3, 0).unwrap();
        assert_eq!(&r.data[..16], &[1; 16]);
        assert_eq!(&r.data[16..24], &[2; 8]);
        assert_eq!(d.stats.inconsistent_overlaps, 1);
        assert_eq!(d.stats.first_inconsistent_frame, Some(2));
    }

    #[test]
    fn incomplete_datagrams_expire() {
        let mut d = Defragmenter::new();
        d.push(&frag(0, true, &[1; 16]), 1, 0);
        d.expire(Defragmenter::TIMEOUT_NS + 1);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.stats.incomplete, 1);
    }

    #[test]
    fn oversized_fragment_is_refused() {
        let mut d = Defragmenter::new();
        assert!(d.push(&frag(65_000, false, &[0; 1000]), 1, 0).is_none());
        assert_eq!(d.stats.oversized, 1);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn range_merge() {
        let mut v = vec![];
        insert_range(&mut v, 10, 20);
        insert_range(&mut v, 30, 40);
        insert_range(&mut v, 20, 30);
        assert_eq!(v, vec![(10, 40)]);
        insert_range(&mut v, 0, 5);
        assert_eq!(v, vec![(0, 5), (10, 40)]);
    }
}
