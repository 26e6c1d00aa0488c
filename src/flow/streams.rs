//! Per-connection TCP reassembly for consumers (protocol finders): a
//! [`StreamTable`] keeps one [`Reassembler`] per direction of every TCP flow
//! and hands the ordered bytes, gaps and closes to its [`Consumers`]: one
//! [`StreamConsumer`] ([`TcpStreams`], the [`PacketSink`] a finder runs as
//! alone), or a [`Fanout`] of several that read the same streams (a report's
//! STUN, SIP and TLS finders), each told only of the directions it still
//! wants, as if it had a reassembly of its own.
//!
//! Memory is bounded for the whole run, not only per flow:
//! - a connection is finished (its buffered bytes delivered, with gaps) on RST,
//!   once both FINs were seen, or after [`StreamLimits::idle_timeout_ns`] of
//!   capture time without a packet — 600 s by default, above the 300 s
//!   heartbeat of the Data Edge link on 8057, so a healthy idle link is kept;
//! - at most [`StreamLimits::max_connections`] are open at once (the least
//!   recently active is finished first);
//! - out-of-order bytes buffered over all connections stay under
//!   [`StreamLimits::max_pending_total`] (the connection holding most is
//!   flushed, with a gap, first).
//!
//! Consumers see connections finished in flow order at every sweep, so the
//! event order never depends on hash-map iteration.

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::reassembly::{Event, Reassembler};
use super::{Dir, Flow, FlowId, FlowTable};
use crate::capture::FrameInfo;
use crate::packet::{Packet, TcpFlags, Transport};
use crate::pipeline::PacketSink;

/// Why a connection's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CloseReason {
    /// A RST was seen.
    Reset,
    /// Both sides sent FIN.
    Fin,
    /// No packet for longer than the idle timeout (capture time).
    Idle,
    /// Finished early to stay within the connection limit.
    Evicted,
    /// The capture ended.
    EndOfCapture,
}

/// Receives reassembled TCP streams.
pub trait StreamConsumer {
    /// Ordered bytes or a gap of one direction of a connection, with the
    /// connection's flow record (its endpoints, stream index and ends as the
    /// flow table knows them, so a consumer need not copy them per flow).
    fn event(&mut self, flow: FlowId, f: &Flow, dir: Dir, ev: Event<'_>);
    /// The connection's streams ended (no more events for this flow id unless it resumes).
    fn closed(&mut self, _flow: FlowId, _f: &Flow, _reason: CloseReason) {}
    /// False once the consumer will ignore every further event of this
    /// direction (it gave up on recognising its protocol there): the
    /// consumer gets no event of the direction again (gaps included) until
    /// the connection is closed, and once no consumer of the stream wants
    /// it, it is no longer reassembled, which saves the copying and
    /// buffering of bulk traffic that is not the consumer's.
    fn wants(&self, _flow: FlowId, _dir: Dir) -> bool {
        true
    }
    /// Called once the consumer said it does not want the direction
    /// ([`Self::wants`]): it will get no event of it before
    /// [`Self::closed`], so what it kept to read the direction can go.
    fn let_go(&mut self, _flow: FlowId, _dir: Dir) {}
}

/// The consumers of one reassembly: a single [`StreamConsumer`], or
/// several that read the same streams ([`Fanout`]), each with a bit of a
/// mask.  Each connection remembers per direction which consumers still
/// want it, so a consumer that gave up hears nothing more of it, as if it
/// had a reassembly of its own.
pub trait Consumers {
    /// A bit for each consumer.
    const ALL: u8;
    /// Hands `ev` to the consumers in the mask `to`.
    fn event(&mut self, to: u8, flow: FlowId, f: &Flow, dir: Dir, ev: Event<'_>);
    /// The connection ended, for every consumer.
    fn closed(&mut self, flow: FlowId, f: &Flow, reason: CloseReason);
    /// The consumers among `of` that still want the direction; those that
    /// do not are let go of it ([`StreamConsumer::let_go`]).
    fn wanting(&mut self, of: u8, flow: FlowId, dir: Dir) -> u8;
}

impl<C: StreamConsumer> Consumers for C {
    const ALL: u8 = 1;

    #[inline]
    fn event(&mut self, _to: u8, flow: FlowId, f: &Flow, dir: Dir, ev: Event<'_>) {
        StreamConsumer::event(self, flow, f, dir, ev);
    }

    fn closed(&mut self, flow: FlowId, f: &Flow, reason: CloseReason) {
        StreamConsumer::closed(self, flow, f, reason);
    }

    #[inline]
    fn wanting(&mut self, of: u8, flow: FlowId, dir: Dir) -> u8 {
        wanting_bit(self, of, 1, flow, dir)
    }
}

/// `bit` if it is in `of` and `c` still wants the direction; a consumer
/// that does not is let go of it.
#[inline]
fn wanting_bit(c: &mut impl StreamConsumer, of: u8, bit: u8, flow: FlowId, dir: Dir) -> u8 {
    if of & bit == 0 {
        return 0;
    }
    if c.wants(flow, dir) {
        bit
    } else {
        c.let_go(flow, dir);
        0
    }
}

/// Three consumers of one reassembly: a report's STUN, SIP and TLS finders
/// read every TCP connection, and reassembling it once for the three (as
/// Wireshark's TCP dissector does for its sub-dissectors) holds each open
/// connection and its out-of-order bytes once instead of three times.
pub struct Fanout<'a, A, B, C>(pub &'a mut A, pub &'a mut B, pub &'a mut C);

impl<A: StreamConsumer, B: StreamConsumer, C: StreamConsumer> Consumers for Fanout<'_, A, B, C> {
    const ALL: u8 = 0b111;

    #[inline]
    fn event(&mut self, to: u8, flow: FlowId, f: &Flow, dir: Dir, ev: Event<'_>) {
        if to & 1 != 0 {
            self.0.event(flow, f, dir, ev);
        }
        if to & 2 != 0 {
            self.1.event(flow, f, dir, ev);
        }
        if to & 4 != 0 {
            self.2.event(flow, f, dir, ev);
        }
    }

    fn closed(&mut self, flow: FlowId, f: &Flow, reason: CloseReason) {
        self.0.closed(flow, f, reason);
        self.1.closed(flow, f, reason);
        self.2.closed(flow, f, reason);
    }

    #[inline]
    fn wanting(&mut self, of: u8, flow: FlowId, dir: Dir) -> u8 {
        wanting_bit(self.0, of, 1, flow, dir)
            | wanting_bit(self.1, of, 2, flow, dir)
            | wanting_bit(self.2, of, 4, flow, dir)
    }
}

/// Bounds of [`TcpStreams`].
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Out-of-order bytes buffered per direction.
    pub max_pending_per_dir: usize,
    /// Out-of-order bytes buffered over all connections (of one shard: a
    /// sharded pass has [`crate::pipeline::SHARDS`], so 128 MiB in all by
    /// default).
    pub max_pending_total: usize,
    /// Connections open at once (of one shard).
    pub max_connections: usize,
    /// Capture-time idle period after which a connection is finished.
    pub idle_timeout_ns: i64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_pending_per_dir: super::reassembly::DEFAULT_MAX_PENDING,
            max_pending_total: 32 << 20,
            max_connections: 100_000,
            idle_timeout_ns: 600_000_000_000,
        }
    }
}

/// Counters of the stream manager.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct StreamStats {
    /// Connections finished, by reason.
    pub closed_reset: u64,
    /// Both FINs.
    pub closed_fin: u64,
    /// Idle timeout.
    pub closed_idle: u64,
    /// Connection limit.
    pub closed_evicted: u64,
    /// End of capture.
    pub closed_end: u64,
    /// Flushes forced by the global pending-bytes bound.
    pub global_flushes: u64,
    /// Most connections open at once.
    pub peak_connections: u64,
}

struct Conn {
    /// Reassembly per direction, `None` once no consumer wants the
    /// direction ([`StreamConsumer::wants`]).  The bulk direction of a
    /// download is given up at once and its silent direction holds no
    /// reassembly state (see [`Reassembler`]), so a connection that never
    /// closes costs a few bytes until its idle timeout.
    dirs: [Option<Reassembler>; 2],
    last_ts: i64,
    /// Per direction, the consumers that still want it ([`Consumers`]):
    /// never empty while the direction's reassembly exists.
    wanted: [u8; 2],
    fin: [bool; 2],
}

impl Conn {
    /// Out-of-order bytes buffered in direction `d`.
    fn pending(&self, d: usize) -> usize {
        self.dirs[d].as_ref().map_or(0, |r| r.pending_bytes())
    }

    /// Delivers what direction `d` buffered (with gaps), as at its end.
    fn flush(&mut self, id: FlowId, f: &Flow, consumers: &mut impl Consumers) {
        for (d, dir) in [(0, Dir::ToServer), (1, Dir::ToClient)] {
            if let Some(r) = self.dirs[d].as_mut() {
                let to = self.wanted[d];
                r.finish(&mut |e| consumers.event(to, id, f, dir, e));
            }
        }
    }
}

/// The open TCP connections of a capture (or of a shard) and their
/// reassembly, bounded as the module says, feeding whatever [`Consumers`]
/// each call is given: always the same ones for one table.  [`TcpStreams`]
/// is a table with its one consumer; a report's shard has one table for its
/// three finders ([`Fanout`]).
pub struct StreamTable {
    conns: FxHashMap<FlowId, Conn>,
    limits: StreamLimits,
    pending_total: usize,
    next_sweep_ns: i64,
    /// Counters.
    pub stats: StreamStats,
}

impl Default for StreamTable {
    fn default() -> Self {
        StreamTable::new(StreamLimits::default())
    }
}

/// Capture time between idle sweeps.
const SWEEP_EVERY_NS: i64 = 10_000_000_000;

impl StreamTable {
    /// A table with the given limits.
    pub fn new(limits: StreamLimits) -> Self {
        StreamTable {
            conns: FxHashMap::default(),
            limits,
            pending_total: 0,
            next_sweep_ns: i64::MIN,
            stats: StreamStats::default(),
        }
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    fn close<K: Consumers>(
        &mut self,
        id: FlowId,
        reason: CloseReason,
        flows: &FlowTable,
        k: &mut K,
    ) {
        if let Some(mut c) = self.conns.remove(&id) {
            self.pending_total -= c.pending(0) + c.pending(1);
            c.flush(id, flows.get(id), k);
            let s = &mut self.stats;
            match reason {
                CloseReason::Reset => s.closed_reset += 1,
                CloseReason::Fin => s.closed_fin += 1,
                CloseReason::Idle => s.closed_idle += 1,
                CloseReason::Evicted => s.closed_evicted += 1,
                CloseReason::EndOfCapture => s.closed_end += 1,
            }
            k.closed(id, flows.get(id), reason);
        }
    }

    fn sweep<K: Consumers>(&mut self, now: i64, flows: &FlowTable, k: &mut K) {
        let timeout = self.limits.idle_timeout_ns;
        let mut idle: Vec<FlowId> = self
            .conns
            .iter()
            .filter(|(_, c)| now.saturating_sub(c.last_ts) > timeout)
            .map(|(&id, _)| id)
            .collect();
        idle.sort_unstable();
        for id in idle {
            self.close(id, CloseReason::Idle, flows, k);
        }
    }

    fn evict_for_room<K: Consumers>(&mut self, flows: &FlowTable, k: &mut K) {
        while self.conns.len() >= self.limits.max_connections {
            let Some(id) = self
                .conns
                .iter()
                .min_by_key(|(&id, c)| (c.last_ts, id))
                .map(|(&id, _)| id)
            else {
                break;
            };
            self.close(id, CloseReason::Evicted, flows, k);
        }
    }

    fn relieve_pending<K: Consumers>(&mut self, flows: &FlowTable, k: &mut K) {
        while self.pending_total > self.limits.max_pending_total {
            let Some(id) = self
                .conns
                .iter()
                .max_by_key(|(&id, c)| (c.pending(0) + c.pending(1), std::cmp::Reverse(id)))
                .map(|(&id, _)| id)
            else {
                break;
            };
            self.stats.global_flushes += 1;
            let c = self.conns.get_mut(&id).expect("present");
            self.pending_total -= c.pending(0) + c.pending(1);
            c.flush(id, flows.get(id), k);
        }
    }

    /// Reassembles one packet for the consumers `k` (a packet that is not
    /// TCP only moves the idle sweep on).
    pub fn packet<K: Consumers>(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
        k: &mut K,
    ) {
        if frame.ts_ns >= self.next_sweep_ns {
            // memory only: which connections are idle is decided per connection below
            self.sweep(frame.ts_ns, flows, k);
            self.next_sweep_ns = frame.ts_ns.saturating_add(SWEEP_EVERY_NS);
        }
        let (Transport::Tcp(t), Some((id, dir))) = (&pkt.transport, flow) else {
            return;
        };
        // A connection idle past the timeout is finished before its next packet,
        // whenever the sweeps ran: results do not depend on sweep timing (nor on
        // how flows are sharded across threads).
        if self
            .conns
            .get(&id)
            .is_some_and(|c| frame.ts_ns.saturating_sub(c.last_ts) > self.limits.idle_timeout_ns)
        {
            self.close(id, CloseReason::Idle, flows, k);
        }
        if !self.conns.contains_key(&id) {
            self.evict_for_room(flows, k);
            let per_dir = self.limits.max_pending_per_dir;
            self.conns.insert(
                id,
                Conn {
                    dirs: [
                        Some(Reassembler::new(per_dir)),
                        Some(Reassembler::new(per_dir)),
                    ],
                    last_ts: frame.ts_ns,
                    wanted: [K::ALL; 2],
                    fin: [false; 2],
                },
            );
            self.stats.peak_connections = self.stats.peak_connections.max(self.conns.len() as u64);
        }
        let c = self.conns.get_mut(&id).expect("just inserted");
        c.last_ts = frame.ts_ns;
        let d = dir.idx();
        if c.dirs[d].is_some() {
            c.wanted[d] = k.wanting(c.wanted[d], id, dir);
            if c.wanted[d] == 0 {
                // never read again: free the direction's buffers and stop copying
                self.pending_total -= c.pending(d);
                c.dirs[d] = None;
            }
        }
        if let Some(r) = c.dirs[d].as_mut() {
            let before = r.pending_bytes();
            let f = flows.get(id);
            let to = c.wanted[d];
            r.segment(
                t.seq,
                t.flags,
                t.payload,
                t.wire_len,
                frame.number,
                frame.ts_ns,
                &mut |e| k.event(to, id, f, dir, e),
            );
            let after = r.pending_bytes();
            self.pending_total = self.pending_total + after - before;
        }
        if t.flags.has(TcpFlags::FIN) {
            c.fin[d] = true;
        }
        if t.flags.has(TcpFlags::RST) {
            self.close(id, CloseReason::Reset, flows, k);
        } else if c.fin == [true, true] {
            self.close(id, CloseReason::Fin, flows, k);
        } else if self.pending_total > self.limits.max_pending_total {
            self.relieve_pending(flows, k);
        }
    }

    /// Finishes every open connection (in flow order), as at the end of the capture.
    pub fn finish<K: Consumers>(&mut self, flows: &FlowTable, k: &mut K) {
        let mut ids: Vec<FlowId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.close(id, CloseReason::EndOfCapture, flows, k);
        }
    }
}

/// TCP reassembly for every connection of a capture, feeding one consumer.
pub struct TcpStreams<C: StreamConsumer> {
    table: StreamTable,
    consumer: C,
}

/// A consumer's fresh state with the default limits: what every protocol
/// finder starts from.
impl<C: StreamConsumer + Default> Default for TcpStreams<C> {
    fn default() -> Self {
        TcpStreams::new(C::default(), StreamLimits::default())
    }
}

impl<C: StreamConsumer> TcpStreams<C> {
    /// A manager with the given limits.
    pub fn new(consumer: C, limits: StreamLimits) -> Self {
        TcpStreams {
            table: StreamTable::new(limits),
            consumer,
        }
    }

    /// The consumer (to read its results).
    pub fn consumer(&self) -> &C {
        &self.consumer
    }

    /// The consumer, mutably (to tell it about flows before their packets arrive).
    pub fn consumer_mut(&mut self) -> &mut C {
        &mut self.consumer
    }

    /// Gives the consumer back.
    pub fn into_consumer(self) -> C {
        self.consumer
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.table.open_connections()
    }

    /// Counters.
    pub fn stats(&self) -> &StreamStats {
        &self.table.stats
    }
}

impl<C: StreamConsumer> PacketSink for TcpStreams<C> {
    fn wants_payload(&self) -> bool {
        true
    }

    /// Streams are TCP only.
    fn wants_udp_payload(&self, _first: u8) -> bool {
        false
    }

    fn packet(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
    ) {
        self.table
            .packet(frame, pkt, flow, flows, &mut self.consumer);
    }

    fn finish(&mut self, flows: &FlowTable) {
        self.table.finish(flows, &mut self.consumer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects bytes per (flow, dir) and closes.
    #[derive(Default)]
    struct Collect {
        bytes: std::collections::BTreeMap<(FlowId, usize), Vec<u8>>,
        gaps: u64,
        closed: Vec<(FlowId, CloseReason)>,
        /// Stop wanting a direction once it delivered this many bytes.
        enough: Option<usize>,
        /// Directions let go of ([`StreamConsumer::let_go`]).
        let_go: Vec<(FlowId, usize)>,
    }

    impl StreamConsumer for Collect {
        fn event(&mut self, flow: FlowId, _: &Flow, dir: Dir, ev: Event<'_>) {
            match ev {
                Event::Data { bytes, .. } => self
                    .bytes
                    .entry((flow, dir.idx()))
                    .or_default()
                    .extend_from_slice(bytes),
                Event::Gap { len, .. } => self.gaps += len,
            }
        }
        fn closed(&mut self, flow: FlowId, _: &Flow, reason: CloseReason) {
            self.closed.push((flow, reason));
        }
        fn wants(&self, flow: FlowId, dir: Dir) -> bool {
            let got = self.bytes.get(&(flow, dir.idx())).map_or(0, Vec::len);
            self.enough.is_none_or(|n| got < n)
        }
        fn let_go(&mut self, flow: FlowId, dir: Dir) {
            self.let_go.push((flow, dir.idx()));
        }
    }

    fn seg(
        n: u64,
        ts: i64,
        sport: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> (FrameInfo, Vec<u8>, u16, u32, u8) {
        (
            FrameInfo {
                number: n,
                ts_ns: ts,
                orig_len: 60,
                cap_len: 60,
            },
            payload.to_vec(),
            sport,
            seq,
            flags,
        )
    }

    fn feed(
        s: &mut TcpStreams<Collect>,
        table: &mut FlowTable,
        segs: &[(FrameInfo, Vec<u8>, u16, u32, u8)],
    ) {
        for (f, p, sport, seq, flags) in segs {
            feed_one(s, table, f, p, *sport, *seq, *flags);
        }
        s.finish(table);
    }

    fn feed_one(
        s: &mut TcpStreams<Collect>,
        table: &mut FlowTable,
        f: &FrameInfo,
        p: &[u8],
        sport: u16,
        seq: u32,
        flags: u8,
    ) {
        let pkt = segment_packet(p, sport, seq, flags);
        let fl = table.observe(f, &pkt);
        s.packet(f, &pkt, fl, table);
    }

    /// A segment from `sport`: 1000 is the client of 10.0.0.2:443, 443 that
    /// server, any other port a client of 10.0.0.4:80.
    fn segment_packet(p: &[u8], sport: u16, seq: u32, flags: u8) -> Packet<'_> {
        let (src, dst, sp, dp) = match sport {
            1000 => ("10.0.0.1", "10.0.0.2", 1000, 443),
            443 => ("10.0.0.2", "10.0.0.1", 443, 1000),
            other => ("10.0.0.3", "10.0.0.4", other, 80),
        };
        let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
        crate::flow::tests::tcp_packet((src, sp), (dst, dp), seq, flags, p)
    }

    const A: u8 = TcpFlags::ACK;

    #[test]
    fn both_directions_reassembled_and_closed_by_fin() {
        let mut s = TcpStreams::new(Collect::default(), StreamLimits::default());
        let mut t = FlowTable::new();
        feed(
            &mut s,
            &mut t,
            &[
                seg(1, 0, 1000, 10, TcpFlags::SYN, b""),
                seg(2, 1, 443, 50, TcpFlags::SYN | A, b""),
                seg(3, 2, 1000, 11, A, b"GET "),
                seg(4, 3, 1000, 15, A, b"/ HTTP/1.1"),
                seg(5, 4, 443, 51, A, b"200"),
                seg(6, 5, 1000, 25, TcpFlags::FIN | A, b""),
                seg(7, 6, 443, 54, TcpFlags::FIN | A, b""),
            ],
        );
        let c = s.into_consumer();
        assert_eq!(c.bytes[&(0, 0)], b"GET / HTTP/1.1");
        assert_eq!(c.bytes[&(0, 1)], b"200");
        assert_eq!(c.closed, vec![(0, CloseReason::Fin)]);
    }

    #[test]
    fn a_direction_no_longer_wanted_is_not_reassembled() {
        let consumer = Collect {
            enough: Some(4),
            ..Default::default()
        };
        let mut s = TcpStreams::new(consumer, StreamLimits::default());
        let mut t = FlowTable::new();
        let segs = [
            seg(1, 0, 1000, 10, TcpFlags::SYN, b""),
            seg(2, 1, 443, 50, TcpFlags::SYN | A, b""),
            seg(3, 2, 1000, 11, A, b"GET "),
            // out of order: would be buffered if the direction were still wanted
            seg(4, 3, 1000, 25, A, b"more"),
            seg(5, 4, 443, 51, A, b"200"),
            seg(6, 5, 1000, 15, A, b"/ HTTP/1.1"),
            seg(7, 6, 443, 54, A, b" OK"),
        ];
        for (f, p, sport, seq, flags) in &segs {
            feed_one(&mut s, &mut t, f, p, *sport, *seq, *flags);
        }
        assert_eq!(
            s.table.pending_total, 0,
            "nothing buffered for the ignored direction"
        );
        s.finish(&t);
        let c = s.into_consumer();
        assert_eq!(
            c.bytes[&(0, 0)],
            b"GET ",
            "client bytes stop once not wanted"
        );
        assert_eq!(c.bytes[&(0, 1)], b"200 OK", "the other direction goes on");
        assert_eq!(c.gaps, 0);
        assert_eq!(c.closed, vec![(0, CloseReason::EndOfCapture)]);
    }

    #[test]
    fn idle_connections_are_finished_on_capture_time() {
        let limits = StreamLimits {
            idle_timeout_ns: 10,
            ..Default::default()
        };
        let mut s = TcpStreams::new(Collect::default(), limits);
        let mut t = FlowTable::new();
        let mut segs = vec![seg(1, 0, 1000, 1, A, b"x"), seg(2, 0, 1000, 5, A, b"y")];
        // later traffic of another flow, past the sweep interval
        segs.push(seg(3, SWEEP_EVERY_NS + 100, 2000, 1000, A, b""));
        feed(&mut s, &mut t, &segs);
        assert_eq!(s.stats().closed_idle, 1);
        let c = s.consumer();
        assert_eq!(c.closed[0].1, CloseReason::Idle);
        assert_eq!(c.gaps, 3, "the hole between x and y became a gap when idle");
    }

    /// A connection that resumes after the idle timeout is finished first,
    /// even when no sweep ran in between (sharding-independent results).
    #[test]
    fn idle_connection_resuming_is_finished_before_its_packet() {
        let limits = StreamLimits {
            idle_timeout_ns: 10,
            ..Default::default()
        };
        let mut s = TcpStreams::new(Collect::default(), limits);
        let mut t = FlowTable::new();
        feed(
            &mut s,
            &mut t,
            &[
                seg(1, 0, 1000, 1, A, b"x"),
                seg(2, 0, 1000, 5, A, b"y"),
                seg(3, 50, 1000, 6, A, b"z"),
            ],
        );
        let c = s.consumer();
        assert_eq!(c.closed[0], (0, CloseReason::Idle));
        assert_eq!(c.gaps, 3);
        assert_eq!(c.bytes[&(0, 0)], b"xyz");
    }

    #[test]
    fn global_pending_bound_forces_flush() {
        let limits = StreamLimits {
            max_pending_total: 10,
            ..Default::default()
        };
        let mut s = TcpStreams::new(Collect::default(), limits);
        let mut t = FlowTable::new();
        feed(
            &mut s,
            &mut t,
            &[
                seg(1, 0, 1000, 1, A, b"a"),
                seg(2, 0, 1000, 100, A, &[7; 20]), // 20 bytes out of order > bound
            ],
        );
        assert_eq!(s.stats().global_flushes, 1);
        assert_eq!(s.consumer().bytes[&(0, 0)].len(), 21);
    }

    /// One reassembly for three consumers gives each what its own
    /// reassembly gave it: the same bytes, gaps and closes, and nothing of a
    /// direction after it stopped wanting it, while the others go on.
    #[test]
    fn a_fanout_gives_each_consumer_what_its_own_reassembly_gives() {
        let segs = [
            seg(1, 0, 1000, 10, TcpFlags::SYN, b""),
            seg(2, 1, 443, 50, TcpFlags::SYN | A, b""),
            seg(3, 2, 1000, 11, A, b"GET "),
            seg(4, 3, 1000, 25, A, b"more"),
            seg(5, 4, 443, 51, A, b"200"),
            seg(6, 5, 1000, 15, A, b"/ HTTP/1.1"),
            seg(7, 6, 443, 54, A, b" OK"),
            // a hole of 10 bytes, then bytes beyond it
            seg(8, 7, 1000, 39, A, b"tail"),
            seg(9, 8, 443, 57, A, b"!"),
            // another connection, reset
            seg(10, 9, 2001, 500, A, b"abc"),
            seg(11, 10, 2001, 503, TcpFlags::RST, b""),
        ];
        let make = |enough| Collect {
            enough,
            ..Default::default()
        };
        let enough = [None, Some(4), Some(1)];
        // each consumer with its own reassembly
        let mut alone = Vec::new();
        for e in enough {
            let mut s = TcpStreams::new(make(e), StreamLimits::default());
            let mut t = FlowTable::new();
            feed(&mut s, &mut t, &segs);
            alone.push(s.into_consumer());
        }
        // the three on one table
        let (mut a, mut b, mut c) = (make(enough[0]), make(enough[1]), make(enough[2]));
        let mut table = StreamTable::default();
        let mut t = FlowTable::new();
        for (f, p, sport, seq, flags) in &segs {
            let pkt = segment_packet(p, *sport, *seq, *flags);
            let fl = t.observe(f, &pkt);
            table.packet(f, &pkt, fl, &t, &mut Fanout(&mut a, &mut b, &mut c));
        }
        table.finish(&t, &mut Fanout(&mut a, &mut b, &mut c));
        for (shared, own) in [a, b, c].iter().zip(&alone) {
            assert_eq!(shared.bytes, own.bytes);
            assert_eq!(shared.gaps, own.gaps);
            assert_eq!(shared.closed, own.closed);
            assert_eq!(shared.let_go, own.let_go);
        }
        assert_eq!(
            alone[0].gaps, 10,
            "the consumer that wants all sees the hole"
        );
        assert_eq!(alone[1].gaps, 0, "one that gave up does not");
        assert_eq!(alone[2].let_go, vec![(0, 0), (0, 1), (1, 0)]);
        assert_eq!(table.pending_total, 0);
    }
}
