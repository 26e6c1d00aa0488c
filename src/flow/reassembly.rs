//! TCP reassembly for offline captures: one direction's bytes handed to a
//! consumer in sequence order.
//!
//! - Delivery is by **sequence contiguity**, not by ACK: captures are often
//!   taken on one side only, or miss the ACKs.
//! - A stream may start mid-way (no SYN): the first segment seen defines
//!   offset 0; earlier bytes arriving later are old and dropped.
//! - Out-of-order segments wait in a per-direction buffer bounded by
//!   `max_pending` bytes; past the bound the missing range is declared a
//!   [`Event::Gap`] and delivery moves on.
//! - Retransmissions and overlaps are dropped; when an overlap carries
//!   different bytes than the copy delivered (or buffered) earlier, it is
//!   counted in [`ReassemblyStats::conflicting_overlaps`] — the first copy wins,
//!   as in most stacks.
//! - Bytes a snapshot length cut off are a gap too, reported where they fall.
//! - Every [`Event::Data`] carries its stream offset, frame number and time,
//!   and [`ByteQueue`] keeps that mapping for consumers that frame messages
//!   across segments, so a message decoded later names the frames where it
//!   starts and ends.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::seq::unwrap;
use crate::packet::TcpFlags;

/// Bytes of delivered data remembered for comparing retransmitted copies.
const TAIL: usize = 4096;

/// Default bound on out-of-order bytes buffered per direction.
pub const DEFAULT_MAX_PENDING: usize = 256 * 1024;

/// What the reassembler hands to its consumer (`Copy`: one reassembly hands
/// the same event to every finder that reads the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Contiguous bytes at `offset` of the stream, from one frame.
    Data {
        /// Stream offset of `bytes[0]` (0 = first byte after the SYN, or first byte seen).
        offset: u64,
        /// The bytes.
        bytes: &'a [u8],
        /// Frame that carried them.
        frame: u64,
        /// Its timestamp.
        ts_ns: i64,
    },
    /// `len` bytes at `offset` that will never be delivered.
    Gap {
        /// Stream offset of the first missing byte.
        offset: u64,
        /// Number of missing bytes.
        len: u64,
        /// Frame after which the gap was noticed.
        frame: u64,
    },
}

/// Counters of one direction's reassembly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReassemblyStats {
    /// Bytes delivered.
    pub delivered_bytes: u64,
    /// Gap events.
    pub gaps: u64,
    /// Bytes lost in gaps.
    pub gap_bytes: u64,
    /// Segments (or parts) dropped because their bytes were already delivered or buffered.
    pub duplicate_segments: u64,
    /// Overlaps whose bytes differed from the first copy.
    pub conflicting_overlaps: u64,
    /// First frame with a conflicting overlap.
    pub first_conflict_frame: Option<u64>,
    /// Gaps forced because the out-of-order buffer was full.
    pub buffer_overflows: u64,
}

struct Seg {
    data: Vec<u8>,
    /// Bytes of this segment on the wire beyond `data` (snaplen cut).
    missing_tail: u32,
    frame: u64,
    ts_ns: i64,
}

/// Reassembles one direction of a TCP connection.
///
/// A direction that never carries a byte (the request side of a download,
/// which only ACKs) stays this small: its first sequence number and its
/// bound.  The reassembly state is made with the first byte, so a capture of
/// many long downloads does not hold a reassembler per silent direction.
pub struct Reassembler {
    /// Stream start (the sequence number after the SYN) until `live` exists.
    base: Option<u32>,
    max_pending: usize,
    live: Option<Box<Live>>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(DEFAULT_MAX_PENDING)
    }
}

impl Reassembler {
    /// A reassembler that buffers at most `max_pending` out-of-order bytes.
    pub fn new(max_pending: usize) -> Self {
        Reassembler {
            base: None,
            max_pending,
            live: None,
        }
    }

    /// Bytes currently buffered out of order.
    pub fn pending_bytes(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.pending_bytes())
    }

    /// Next stream offset to be delivered.
    pub fn next_offset(&self) -> u64 {
        self.live.as_ref().map_or(0, |l| l.next_offset())
    }

    /// Counters.
    pub fn stats(&self) -> ReassemblyStats {
        self.live
            .as_ref()
            .map_or_else(ReassemblyStats::default, |l| l.stats.clone())
    }

    /// Feeds one segment of this direction.  `payload` is what was captured,
    /// `wire_len` what the IP header says was sent (≥ `payload.len()`).
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        wire_len: u32,
        frame: u64,
        ts_ns: i64,
        out: &mut dyn FnMut(Event<'_>),
    ) {
        let live = match &mut self.live {
            Some(l) => l,
            None if wire_len.max(payload.len() as u32) == 0 => {
                // what the reassembly does with a segment before any byte:
                // a SYN sets the stream start, a bare ACK nothing
                if self.base.is_none() && flags.has(TcpFlags::SYN) {
                    self.base = Some(seq.wrapping_add(1));
                }
                return;
            }
            None => self
                .live
                .insert(Box::new(Live::new(self.max_pending, self.base))),
        };
        live.segment(seq, flags, payload, wire_len, frame, ts_ns, out);
    }

    /// Ends the stream: everything buffered is delivered, with gaps where bytes are missing.
    pub fn finish(&mut self, out: &mut dyn FnMut(Event<'_>)) {
        if let Some(l) = &mut self.live {
            l.finish(out);
        }
    }
}

/// A direction's reassembly once its first byte arrived.
struct Live {
    base: Option<u32>,
    next: u64,
    pending: BTreeMap<u64, Seg>,
    pending_bytes: usize,
    max_pending: usize,
    tail: VecDeque<u8>,
    stats: ReassemblyStats,
}

impl Live {
    fn new(max_pending: usize, base: Option<u32>) -> Self {
        Live {
            base,
            next: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            max_pending,
            tail: VecDeque::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// Bytes currently buffered out of order.
    fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Next stream offset to be delivered.
    fn next_offset(&self) -> u64 {
        self.next
    }

    /// Feeds one segment of this direction.  `payload` is what was captured,
    /// `wire_len` what the IP header says was sent (≥ `payload.len()`).
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        wire_len: u32,
        frame: u64,
        ts_ns: i64,
        out: &mut dyn FnMut(Event<'_>),
    ) {
        let wire_len = wire_len.max(payload.len() as u32);
        let data_seq = if flags.has(TcpFlags::SYN) {
            seq.wrapping_add(1)
        } else {
            seq
        };
        if self.base.is_none() {
            if !flags.has(TcpFlags::SYN) && wire_len == 0 {
                return; // a bare ACK defines nothing yet
            }
            self.base = Some(data_seq);
        }
        if wire_len == 0 {
            return;
        }
        let off = unwrap(data_seq, self.base.unwrap_or(data_seq), self.next);
        if off <= self.next {
            self.deliver(
                off,
                payload,
                wire_len - payload.len() as u32,
                frame,
                ts_ns,
                out,
            );
            self.drain(out);
        } else {
            self.buffer(off, payload, wire_len - payload.len() as u32, frame, ts_ns);
            while self.pending_bytes > self.max_pending {
                self.stats.buffer_overflows += 1;
                self.skip_to_first_pending(out);
                self.drain(out);
            }
        }
    }

    /// Ends the stream: everything buffered is delivered, with gaps where bytes are missing.
    fn finish(&mut self, out: &mut dyn FnMut(Event<'_>)) {
        while !self.pending.is_empty() {
            self.skip_to_first_pending(out);
            self.drain(out);
        }
    }

    fn buffer(&mut self, off: u64, payload: &[u8], missing_tail: u32, frame: u64, ts_ns: i64) {
        if let Some(existing) = self.pending.get(&off) {
            let new_len = payload.len() + missing_tail as usize;
            if existing.data.len() + existing.missing_tail as usize >= new_len {
                let n = existing.data.len().min(payload.len());
                if existing.data[..n] != payload[..n] {
                    self.conflict(frame);
                }
                self.stats.duplicate_segments += 1;
                return;
            }
            self.pending_bytes -= existing.data.len();
        }
        self.pending_bytes += payload.len();
        self.pending.insert(
            off,
            Seg {
                data: payload.to_vec(),
                missing_tail,
                frame,
                ts_ns,
            },
        );
    }

    /// Delivers a segment starting at or before `next`, trimming what was already delivered.
    fn deliver(
        &mut self,
        off: u64,
        data: &[u8],
        missing_tail: u32,
        frame: u64,
        ts_ns: i64,
        out: &mut dyn FnMut(Event<'_>),
    ) {
        let end = off + data.len() as u64 + missing_tail as u64;
        if end <= self.next {
            self.compare_old(off, data, frame);
            self.stats.duplicate_segments += 1;
            return;
        }
        let skip = (self.next - off) as usize;
        if skip > 0 {
            self.compare_old(off, data, frame);
        }
        if skip < data.len() {
            let fresh = &data[skip..];
            out(Event::Data {
                offset: self.next,
                bytes: fresh,
                frame,
                ts_ns,
            });
            self.stats.delivered_bytes += fresh.len() as u64;
            self.next += fresh.len() as u64;
            self.remember(fresh);
        }
        if end > self.next {
            // the snaplen cut these bytes off: they exist but were not captured
            let len = end - self.next;
            out(Event::Gap {
                offset: self.next,
                len,
                frame,
            });
            self.stats.gaps += 1;
            self.stats.gap_bytes += len;
            self.next = end;
            self.tail.clear();
        }
    }

    fn drain(&mut self, out: &mut dyn FnMut(Event<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let off = *entry.key();
            let seg = entry.remove();
            self.pending_bytes -= seg.data.len();
            self.deliver(off, &seg.data, seg.missing_tail, seg.frame, seg.ts_ns, out);
        }
    }

    fn skip_to_first_pending(&mut self, out: &mut dyn FnMut(Event<'_>)) {
        if let Some((&off, seg)) = self.pending.iter().next() {
            if off > self.next {
                let len = off - self.next;
                out(Event::Gap {
                    offset: self.next,
                    len,
                    frame: seg.frame,
                });
                self.stats.gaps += 1;
                self.stats.gap_bytes += len;
                self.next = off;
                self.tail.clear();
            }
        }
    }

    /// Compares the part of an old copy that falls inside the remembered tail.
    fn compare_old(&mut self, off: u64, data: &[u8], frame: u64) {
        let tail_start = self.next - self.tail.len() as u64;
        let from = off.max(tail_start);
        let to = (off + data.len() as u64).min(self.next);
        if from >= to {
            return;
        }
        let differs =
            (from..to).any(|o| self.tail[(o - tail_start) as usize] != data[(o - off) as usize]);
        if differs {
            self.conflict(frame);
        }
    }

    fn conflict(&mut self, frame: u64) {
        self.stats.conflicting_overlaps += 1;
        self.stats.first_conflict_frame.get_or_insert(frame);
    }

    fn remember(&mut self, fresh: &[u8]) {
        if fresh.len() >= TAIL {
            self.tail.clear();
            self.tail.extend(&fresh[fresh.len() - TAIL..]);
        } else {
            let excess = (self.tail.len() + fresh.len()).saturating_sub(TAIL);
            self.tail.drain(..excess);
            self.tail.extend(fresh);
        }
    }
}

/// Frame marks an emptied [`ByteQueue`] keeps room for.
const SMALL_MARKS: usize = 4;

/// A consumer-side buffer of delivered bytes that remembers which frame each
/// byte came from, for protocols whose messages span segments.
#[derive(Debug, Default)]
pub struct ByteQueue {
    buf: Vec<u8>,
    head: usize,
    start: u64,
    /// (stream offset, frame, ts) at which each delivered chunk began.
    marks: VecDeque<(u64, u64, i64)>,
}

impl ByteQueue {
    /// An empty queue starting at stream offset 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends delivered bytes.  A chunk that does not continue the buffer
    /// (after a gap) restarts it at `offset`.
    pub fn push(&mut self, offset: u64, bytes: &[u8], frame: u64, ts_ns: i64) {
        if offset != self.end() {
            self.reset(offset);
        }
        if bytes.is_empty() {
            return;
        }
        if self.marks.back().map(|m| m.1) != Some(frame) {
            self.marks.push_back((offset, frame, ts_ns));
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Drops everything and frees the buffer: the consumer will read no more
    /// of this direction (it gave up on it), so nothing is held for it.
    pub fn release(&mut self) {
        self.buf = Vec::new();
        self.marks = VecDeque::new();
        self.head = 0;
    }

    /// Drops everything and restarts at `offset` (after a gap).
    pub fn reset(&mut self, offset: u64) {
        self.buf.clear();
        self.head = 0;
        self.start = offset;
        self.marks.clear();
    }

    /// Unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Stream offset of `data()[0]`.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Stream offset one past the last byte.
    pub fn end(&self) -> u64 {
        self.start + (self.buf.len() - self.head) as u64
    }

    /// Unconsumed length.
    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frame and time of the byte at stream offset `off` (clamped to what is known).
    pub fn frame_at(&self, off: u64) -> Option<(u64, i64)> {
        let idx = self.marks.partition_point(|m| m.0 <= off);
        if idx == 0 {
            self.marks.front().map(|m| (m.1, m.2))
        } else {
            self.marks.get(idx - 1).map(|m| (m.1, m.2))
        }
    }

    /// Marks `n` bytes as used.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        self.head += n;
        self.start += n as u64;
        // keep the mark covering `start`
        while self.marks.len() > 1 && self.marks[1].0 <= self.start {
            self.marks.pop_front();
        }
        if self.head == self.buf.len() {
            // an emptied queue holds no buffer: every open connection has one
            // per direction in each finder, and keeping even 4 KiB each cost
            // 6 MB per GiB of capture; the next segment allocates afresh
            // (0.3 % more instructions).  A short list of frame marks (96
            // bytes) is kept: most segments make one mark, and freeing it
            // was an allocation and a free per segment
            self.buf = Vec::new();
            if self.marks.capacity() > SMALL_MARKS {
                self.marks = VecDeque::new();
            } else {
                self.marks.clear();
            }
            self.head = 0;
        } else if self.head > 64 * 1024 && self.head * 2 > self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_emptied_or_released_queue_holds_no_buffer() {
        let mut q = ByteQueue::new();
        q.push(0, &[7; 100_000], 1, 0);
        q.consume(99_000);
        assert_eq!(q.len(), 1000);
        q.consume(1000);
        assert!(q.is_empty());
        assert_eq!(q.buf.capacity(), 0, "emptied: the 100 kB buffer is freed");
        q.push(100_000, &[1; 100], 2, 0);
        q.consume(100);
        assert_eq!(q.buf.capacity(), 0, "emptied: even a small buffer is freed");
        assert!(
            q.marks.capacity() <= SMALL_MARKS,
            "a short list of marks stays"
        );
        for f in 0..100 {
            q.push(100_100 + f, &[1], 10 + f, 0);
        }
        q.consume(100);
        assert_eq!(q.marks.capacity(), 0, "a long one goes");
        q.push(100_200, &[1; 100], 200, 0);
        q.consume(100);
        q.push(100_300, &[1; 10_000], 300, 0);
        q.release();
        assert_eq!((q.buf.capacity(), q.marks.capacity()), (0, 0));
        assert!(q.is_empty());
    }

    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);

    /// Collects events as (bytes by offset, gaps).
    #[derive(Default, Debug)]
    struct Sink {
        bytes: Vec<u8>,
        next: u64,
        gaps: Vec<(u64, u64)>,
        frames_ok: bool,
    }

    fn run(
        r: &mut Reassembler,
        segs: &[(u32, Vec<u8>, u64)],
        isn: Option<u32>,
        stream: &[u8],
    ) -> Sink {
        let mut sink = Sink {
            frames_ok: true,
            ..Default::default()
        };
        let mut cb = |e: Event<'_>| match e {
            Event::Data { offset, bytes, .. } => {
                assert_eq!(offset, sink.next, "data must be contiguous");
                if stream[offset as usize..offset as usize + bytes.len()] != *bytes {
                    sink.frames_ok = false;
                }
                sink.bytes.extend_from_slice(bytes);
                sink.next += bytes.len() as u64;
            }
            Event::Gap { offset, len, .. } => {
                assert_eq!(offset, sink.next);
                sink.gaps.push((offset, len));
                sink.next += len;
            }
        };
        if let Some(isn) = isn {
            r.segment(isn, TcpFlags(TcpFlags::SYN), &[], 0, 0, 0, &mut cb);
        }
        for (seq, data, frame) in segs {
            r.segment(*seq, ACK, data, data.len() as u32, *frame, 0, &mut cb);
        }
        r.finish(&mut cb);
        sink
    }

    #[test]
    fn in_order_and_out_of_order() {
        let mut r = Reassembler::default();
        let stream = b"abcdefghij";
        let segs = vec![
            (101, b"abc".to_vec(), 1),
            (107, b"ghij".to_vec(), 2),
            (104, b"def".to_vec(), 3),
            (104, b"dXf".to_vec(), 4), // conflicting retransmission
        ];
        let s = run(&mut r, &segs, Some(100), stream);
        assert_eq!(s.bytes, stream);
        assert!(s.gaps.is_empty());
        assert_eq!(r.stats().conflicting_overlaps, 1);
        assert_eq!(r.stats().first_conflict_frame, Some(4));
    }

    #[test]
    fn overflow_declares_a_gap() {
        let mut r = Reassembler::new(8);
        let mut got = Vec::new();
        let mut cb = |e: Event<'_>| got.push(format!("{e:?}"));
        r.segment(0, ACK, b"aa", 2, 1, 0, &mut cb);
        r.segment(100, ACK, &[1; 10], 10, 2, 0, &mut cb);
        assert_eq!(r.stats().buffer_overflows, 1);
        assert!(got[1].contains("Gap { offset: 2, len: 98"), "{got:?}");
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn snaplen_cut_is_a_gap_in_place() {
        let mut r = Reassembler::default();
        let mut ev = Vec::new();
        let mut cb = |e: Event<'_>| ev.push(format!("{e:?}"));
        r.segment(10, ACK, b"abc", 100, 1, 0, &mut cb);
        r.segment(110, ACK, b"z", 1, 2, 0, &mut cb);
        assert_eq!(ev.len(), 3);
        assert!(ev[1].contains("Gap { offset: 3, len: 97"));
        assert!(ev[2].contains("offset: 100"));
    }

    #[test]
    fn byte_queue_tracks_frames_across_segments() {
        let mut q = ByteQueue::new();
        q.push(0, b"INVITE sip:", 5, 50);
        q.push(11, b"bob SIP/2.0\r\n", 6, 60);
        assert_eq!(q.frame_at(0), Some((5, 50)));
        assert_eq!(q.frame_at(12), Some((6, 60)));
        q.consume(12);
        assert_eq!(q.data(), b"ob SIP/2.0\r\n");
        assert_eq!(q.frame_at(q.start()), Some((6, 60)));
        q.push(100, b"x", 9, 90); // after a gap
        assert_eq!(q.start(), 100);
        assert_eq!(q.data(), b"x");
    }

    /// Splits `stream` into segments, removes `holes`, shuffles locally and duplicates some.
    fn arrange(
        stream: &[u8],
        cuts: &[usize],
        holes: &[(usize, usize)],
        swaps: &[usize],
        dups: &[usize],
        isn: u32,
    ) -> Vec<(u32, Vec<u8>, u64)> {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        bounds.push(0);
        bounds.push(stream.len());
        for &(a, b) in holes {
            bounds.push(a);
            bounds.push(b);
        }
        bounds.sort_unstable();
        bounds.dedup();
        let mut segs = Vec::new();
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            if holes.iter().any(|&(h0, h1)| a >= h0 && b <= h1) {
                continue;
            }
            segs.push((
                isn.wrapping_add(1).wrapping_add(a as u32),
                stream[a..b].to_vec(),
                0,
            ));
        }
        for &d in dups {
            if !segs.is_empty() {
                let s = segs[d % segs.len()].clone();
                segs.push(s);
            }
        }
        let n = segs.len();
        for &s in swaps {
            if n > 1 {
                let i = s % (n - 1);
                segs.swap(i, i + 1);
            }
        }
        for (i, s) in segs.iter_mut().enumerate() {
            s.2 = i as u64 + 1;
        }
        segs
    }

    /// An event as a comparable value: (offset, bytes or gap length, frame, gap).
    type Seen = (u64, Vec<u8>, u64, bool);

    /// What a reassembler call is given to hand its events to.
    type Out<'a> = &'a mut dyn FnMut(Event<'_>);

    /// Every event `r` hands out.
    fn events(r: &mut dyn FnMut(Out<'_>)) -> Vec<Seen> {
        let mut v = Vec::new();
        r(&mut |e| match e {
            Event::Data {
                offset,
                bytes,
                frame,
                ..
            } => v.push((offset, bytes.to_vec(), frame, false)),
            Event::Gap { offset, len, frame } => v.push((offset, vec![len as u8], frame, true)),
        });
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// A reassembler made at the first byte (bare ACKs and SYNs before
        /// it only remembered) gives exactly what one made at the first
        /// segment gives.
        #[test]
        fn made_at_the_first_byte_is_made_at_the_first_segment(
            segs in proptest::collection::vec(
                (0u32..400, any::<bool>(), 0usize..40, any::<bool>()), 1..40),
            isn in any::<u32>(),
        ) {
            let mut lazy = Reassembler::new(256);
            let mut eager = Live::new(256, None);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for (i, &(rel, syn, len, bare)) in segs.iter().enumerate() {
                let seq = isn.wrapping_add(rel);
                let flags = TcpFlags(if syn { TcpFlags::SYN } else { 0 } | TcpFlags::ACK);
                let payload: Vec<u8> = (0..if bare { 0 } else { len }).map(|b| b as u8).collect();
                let frame = i as u64 + 1;
                let n = payload.len() as u32;
                got.extend(events(&mut |o| lazy.segment(seq, flags, &payload, n, frame, 0, o)));
                want.extend(events(&mut |o| eager.segment(seq, flags, &payload, n, frame, 0, o)));
                prop_assert_eq!(lazy.pending_bytes(), eager.pending_bytes());
                prop_assert_eq!(lazy.next_offset(), eager.next_offset());
            }
            got.extend(events(&mut |o| lazy.finish(o)));
            want.extend(events(&mut |o| eager.finish(o)));
            prop_assert_eq!(got, want);
            prop_assert_eq!(lazy.stats(), eager.stats.clone());
        }

        /// Re-segmenting, reordering and duplicating must not change the
        /// delivered bytes nor the gaps.
        #[test]
        fn any_arrangement_gives_same_bytes_and_gaps(
            stream in proptest::collection::vec(any::<u8>(), 1..3000),
            cuts in proptest::collection::vec(any::<usize>(), 0..60),
            hole_seeds in proptest::collection::vec((any::<usize>(), 1usize..200), 0..4),
            swaps in proptest::collection::vec(any::<usize>(), 0..40),
            dups in proptest::collection::vec(any::<usize>(), 0..10),
            isn in any::<u32>(),
        ) {
            let len = stream.len();
            // interior holes only: the last byte must arrive for a gap to be known
            let mut holes: Vec<(usize, usize)> = hole_seeds
                .iter()
                .filter(|_| len > 2)
                .map(|&(s, l)| {
                    let a = 1 + s % (len - 2);
                    (a, (a + l).min(len - 1))
                })
                .filter(|(a, b)| a < b)
                .collect();
            holes.sort_unstable();
            // merge overlapping holes (what the reassembler will report)
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for h in holes {
                match merged.last_mut() {
                    Some(m) if h.0 <= m.1 => m.1 = m.1.max(h.1),
                    _ => merged.push(h),
                }
            }
            let segs = arrange(&stream, &cuts, &merged, &swaps, &dups, isn);
            let mut r = Reassembler::new(1 << 20);
            let sink = run(&mut r, &segs, Some(isn), &stream);
            prop_assert!(sink.frames_ok);
            let mut expected = Vec::new();
            let mut pos = 0;
            for &(a, b) in &merged {
                expected.extend_from_slice(&stream[pos..a]);
                pos = b;
            }
            expected.extend_from_slice(&stream[pos..]);
            prop_assert_eq!(&sink.bytes, &expected);
            let gaps: Vec<(u64, u64)> = merged.iter().map(|&(a, b)| (a as u64, (b - a) as u64)).collect();
            prop_assert_eq!(&sink.gaps, &gaps);
            prop_assert_eq!(r.stats().conflicting_overlaps, 0);
        }
    }
}
