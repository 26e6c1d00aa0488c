//! The streaming pass over a capture, in two stages on two threads:
//!
//! 1. **read + decode** (a scoped thread): frames are read, decoded and
//!    defragmented; each IP packet becomes a compact `Meta` record in a
//!    batch (payload bytes are copied into the batch only when a consumer
//!    asked for them, and of a UDP payload no consumer reads, such as RTP,
//!    only the first byte: [`PacketSink::wants_udp_payload`]);
//! 2. **flows + consumers** (the calling thread, or for a sharded run a
//!    worker of rayon's pool: [`run_sharded_with`]): batches are taken in
//!    order, every packet is accounted to its flow and handed to the
//!    [`PacketSink`].
//!
//! Batches travel over a bounded channel (a few in flight) and their buffers
//! are recycled, so memory stays flat however large the capture: no frame
//! outlives its batch, and fragments, flow records and consumer state are the
//! only long-lived state (each bounded where it lives).  Order is file order
//! in both stages, so results do not depend on thread timing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use crate::capture::FrameInfo;
use crate::capture::{CaptureError, CaptureReader, ReadStats};
use crate::flow::{Dir, FlowId, FlowTable};
use crate::packet::defrag::{DefragStats, Defragmenter};
use crate::packet::{
    self, DecodeCounts, Decoded, Icmp, Packet, SkipReason, Tcp, TcpFlags, Transport, Udp,
};

/// Receives every decoded IP packet, in file order.
pub trait PacketSink {
    /// True when the sink reads payload bytes (else payloads arrive empty,
    /// with their wire length, and stage 1 copies nothing).
    fn wants_payload(&self) -> bool;
    /// True when the sink reads a UDP payload that starts with byte `first`;
    /// false promises that the sink ignores such a packet altogether.
    /// Stage 1 copies only the first byte of a UDP payload no sink wants, and
    /// stage 2 hands such a packet to no sink (its flow is accounted all the
    /// same), so media (RTP and RTCP, first byte 128–191 by RFC 7983 §7,
    /// most of an Edge capture's packets and bytes) costs the finders
    /// nothing.  The default follows [`Self::wants_payload`].
    fn wants_udp_payload(&self, _first: u8) -> bool {
        self.wants_payload()
    }
    /// Called once per IP packet (reassembled datagrams once, in their last frame).
    fn packet(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
    );
    /// Called after each batch of a sharded run ([`run_sharded_with`]) with
    /// the latest capture time read so far: a point every shard reaches
    /// together, where batches are cut by the reader alone, so what a sink
    /// ends there does not depend on the number of shards.  A sink may end
    /// what can no longer change (the STUN finder ends TURN allocations).
    fn barrier(&mut self, _now_ns: i64, _flows: &FlowTable) {}
    /// Called at the end of the capture.
    fn finish(&mut self, _flows: &FlowTable) {}
}

/// A sink that does nothing (the `flows` command).
pub struct NoSink;

impl PacketSink for NoSink {
    fn wants_payload(&self) -> bool {
        false
    }
    fn packet(&mut self, _: &FrameInfo, _: &Packet<'_>, _: Option<(FlowId, Dir)>, _: &FlowTable) {}
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar on stderr (callers decide: terminal and long input).
    pub progress: bool,
    /// Most flows tracked (None: [`FlowTable::DEFAULT_LIMIT`]).
    pub max_flows: Option<usize>,
    /// Keep each flow's counters and TCP sequence analysis
    /// ([`crate::flow::FlowCounts`]): what `edgetrace flows` shows and no
    /// analyzer reads.
    pub flow_counts: bool,
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

/// Packets per batch handed from stage 1 to stage 2.
const BATCH: usize = 4096;
/// Payload bytes per batch: a batch of full-size TCP segments is handed on
/// before its arena passes this, so the batches in flight stay a few MB.
const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight between the stages (bounds memory).
const IN_FLIGHT: usize = 4;

/// Shards of a sharded pass ([`run_sharded_with`]), whatever the number of
/// threads: rayon runs them on its pool.  A fixed count makes the output the
/// same on every machine by construction, also where a per-shard bound of
/// the reassembly is reached ([`crate::flow::streams::StreamLimits`]).
/// Four shards on two cores balance better than two: each batch waits for
/// its slowest shard, and four let the pool even the work out (1 GiB
/// report: 4 % less wall time; 2 GiB: 5–7 %; eight shards cost 10 % more
/// CPU for no gain).
pub const SHARDS: usize = 4;
/// How often (in frames) incomplete fragments are expired and progress updated.
const HOUSEKEEPING_EVERY: u64 = 1 << 14;

#[derive(Clone, Copy)]
enum Kind {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        window: u16,
        wire_len: u32,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        wire_len: u32,
    },
    Icmp {
        v6: bool,
        icmp_type: u8,
        code: u8,
        quoted: Option<packet::Quoted>,
    },
    Other(u8),
}

/// One decoded packet inside a batch; payload bytes live in the batch arena.
#[derive(Clone, Copy)]
struct Meta {
    frame: FrameInfo,
    src: IpAddr,
    dst: IpAddr,
    ip_truncated: bool,
    /// No sink wants the packet ([`CopyRule::unwanted`]), decided by the
    /// reader while the payload is in its cache: the thread that routes
    /// packets would otherwise read each media packet's first byte from
    /// the arena the other core wrote, a cache miss per packet (27 % of
    /// the routing loop's samples on the 1 GiB bench capture).
    unwanted: bool,
    kind: Kind,
    payload_start: u32,
    payload_len: u32,
}

/// What stage 1 copies of each payload: nothing (`flows`), or everything
/// but the UDP payloads no sink wants (their first byte only).
#[derive(Clone, Copy)]
struct CopyRule {
    payload: bool,
    /// By first byte: the UDP payload is wanted.
    udp: [bool; 256],
}

impl CopyRule {
    fn of(sink: &(impl PacketSink + ?Sized)) -> CopyRule {
        CopyRule {
            payload: sink.wants_payload(),
            udp: std::array::from_fn(|b| sink.wants_udp_payload(b as u8)),
        }
    }

    /// True when no sink wants the packet: a UDP payload whose first byte
    /// no sink reads ([`PacketSink::wants_udp_payload`]).
    #[inline]
    fn unwanted(&self, t: &Transport<'_>) -> bool {
        match (t, self.payload) {
            (Transport::Udp(u), true) => u.payload.first().is_some_and(|&b| !self.udp[b as usize]),
            _ => false,
        }
    }

    /// The part of `payload` (of a packet with this transport) to copy.
    fn cut<'a>(&self, t: &Transport<'_>, payload: &'a [u8]) -> &'a [u8] {
        if !self.payload {
            return &[];
        }
        match (t, payload.first()) {
            (Transport::Udp(_), Some(&b)) if !self.udp[b as usize] => &payload[..1],
            _ => payload,
        }
    }
}

#[derive(Default)]
struct Batch {
    metas: Vec<Meta>,
    arena: Vec<u8>,
    /// Time of the capture's first frame ([`ReadStats::first_ts`]) when
    /// the batch was sent.
    first_ts: Option<i64>,
}

impl Batch {
    /// An empty batch with room for a full one: a batch is cut once its
    /// arena passes [`BATCH_BYTES`], so one IP packet more (64 KiB) fits
    /// without the arena doubling to 2 MiB, in each of the batches in flight.
    fn new() -> Batch {
        Batch {
            metas: Vec::with_capacity(BATCH),
            arena: Vec::with_capacity(BATCH_BYTES + (1 << 16)),
            first_ts: None,
        }
    }

    fn push(&mut self, frame: FrameInfo, p: &Packet<'_>, copy: &CopyRule) {
        let (kind, payload): (Kind, &[u8]) = match p.transport {
            Transport::Tcp(t) => (
                Kind::Tcp {
                    src_port: t.src_port,
                    dst_port: t.dst_port,
                    seq: t.seq,
                    ack: t.ack,
                    flags: t.flags,
                    window: t.window,
                    wire_len: t.wire_len,
                },
                t.payload,
            ),
            Transport::Udp(u) => (
                Kind::Udp {
                    src_port: u.src_port,
                    dst_port: u.dst_port,
                    wire_len: u.wire_len,
                },
                u.payload,
            ),
            Transport::Icmp(i) => (
                Kind::Icmp {
                    v6: i.v6,
                    icmp_type: i.icmp_type,
                    code: i.code,
                    quoted: i.quoted,
                },
                i.body,
            ),
            Transport::Other(n) => (Kind::Other(n), &[]),
        };
        let start = self.arena.len() as u32;
        let payload = copy.cut(&p.transport, payload);
        match payload {
            // media cut to its first byte: most packets, and calls to
            // memmove for one byte were half of this function's copying
            // (2.4 % of a report's samples)
            &[b] => self.arena.push(b),
            _ => self.arena.extend_from_slice(payload),
        }
        let len = payload.len() as u32;
        self.metas.push(Meta {
            frame,
            src: p.src,
            dst: p.dst,
            ip_truncated: p.ip_truncated,
            unwanted: copy.unwanted(&p.transport),
            kind,
            payload_start: start,
            payload_len: len,
        });
    }

    fn packet<'a>(&'a self, m: &Meta) -> Packet<'a> {
        Packet {
            src: m.src,
            dst: m.dst,
            transport: self.transport(m),
            ip_truncated: m.ip_truncated,
        }
    }

    /// The transport part of a packet alone: what flow accounting and
    /// routing read of every packet.
    #[inline]
    fn transport<'a>(&'a self, m: &Meta) -> Transport<'a> {
        let payload =
            &self.arena[m.payload_start as usize..(m.payload_start + m.payload_len) as usize];
        match m.kind {
            Kind::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                wire_len,
            } => Transport::Tcp(Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                payload,
                wire_len,
            }),
            Kind::Udp {
                src_port,
                dst_port,
                wire_len,
            } => Transport::Udp(Udp {
                src_port,
                dst_port,
                payload,
                wire_len,
            }),
            Kind::Icmp {
                v6,
                icmp_type,
                code,
                quoted,
            } => Transport::Icmp(Icmp {
                v6,
                icmp_type,
                code,
                quoted,
                body: payload,
            }),
            Kind::Other(n) => Transport::Other(n),
        }
    }
}

/// What stage 1 returns when it is done.
struct Stage1 {
    read: ReadStats,
    decode: DecodeCounts,
    skipped: BTreeMap<SkipReason, u64>,
    defrag: DefragStats,
}

/// Runs both stages: stage 1 on a scoped thread, stage 2 here, calling
/// `on_batch` with the flow table and each batch in file order; batch buffers
/// are recycled.  Both `run` and `run_sharded` are this with their own stage 2.
fn drive(
    reader: CaptureReader,
    opts: &RunOptions,
    copy: CopyRule,
    mut on_batch: impl FnMut(&mut FlowTable, &Batch),
) -> Result<RunResult, CaptureError> {
    let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
    let (recycle_tx, recycle_rx) = sync_channel::<Batch>(IN_FLIGHT + 2);
    let bar = progress_bar(opts.progress, reader.input_len());
    let max_flows = opts.max_flows.unwrap_or(FlowTable::DEFAULT_LIMIT);
    std::thread::scope(|scope| {
        let stage1 = scope.spawn(move || read_and_decode(reader, copy, tx, recycle_rx, bar));
        let mut flows = FlowTable::with_limit(max_flows);
        if opts.flow_counts {
            flows = flows.counting();
        }
        for mut batch in rx.iter() {
            on_batch(&mut flows, &batch);
            batch.metas.clear();
            batch.arena.clear();
            let _ = recycle_tx.try_send(batch);
        }
        drop(recycle_tx);
        let s1 = stage1.join().expect("read stage panicked")?;
        let mut skipped = s1.skipped;
        if flows.untracked.packets > 0 {
            skipped.insert(SkipReason::FlowTableFull, flows.untracked.packets);
        }
        Ok(RunResult {
            flows,
            read: s1.read,
            decode: s1.decode,
            skipped,
            defrag: s1.defrag,
        })
    })
}

/// Reads the whole capture.
pub fn run(
    reader: CaptureReader,
    opts: &RunOptions,
    sink: &mut dyn PacketSink,
) -> Result<RunResult, CaptureError> {
    let copy = CopyRule::of(sink);
    let result = drive(reader, opts, copy, |flows, batch| {
        for m in &batch.metas {
            let p = batch.packet(m);
            let f = flows.observe(&m.frame, &p);
            if (f.is_some() && !m.unwanted) || !is_flow_packet(&p.transport) {
                sink.packet(&m.frame, &p, f, flows);
            }
        }
    })?;
    sink.finish(&result.flows);
    Ok(result)
}

/// A sink that can be split into independent shards, each seeing only the
/// packets of its own flows (flow id modulo the shard count), so analyzers run
/// in parallel per flow.  A shard must not depend on other flows' packets; the
/// caller merges the shards in a way that does not depend on their number.
pub trait ShardSink: PacketSink + Send {
    /// A fresh, empty shard with the same configuration.
    fn fork(&self) -> Self
    where
        Self: Sized;
}

/// Two analyzers in one pass (e.g. STUN and SIP for `ice`): each sees every
/// packet its shard owns, in file order, as if it ran alone.
impl<A: PacketSink, B: PacketSink> PacketSink for (A, B) {
    fn wants_payload(&self) -> bool {
        self.0.wants_payload() || self.1.wants_payload()
    }

    fn wants_udp_payload(&self, first: u8) -> bool {
        self.0.wants_udp_payload(first) || self.1.wants_udp_payload(first)
    }

    fn packet(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
    ) {
        self.0.packet(frame, pkt, flow, flows);
        self.1.packet(frame, pkt, flow, flows);
    }

    fn barrier(&mut self, now_ns: i64, flows: &FlowTable) {
        self.0.barrier(now_ns, flows);
        self.1.barrier(now_ns, flows);
    }

    fn finish(&mut self, flows: &FlowTable) {
        self.0.finish(flows);
        self.1.finish(flows);
    }
}

impl<A: ShardSink, B: ShardSink> ShardSink for (A, B) {
    fn fork(&self) -> Self {
        (self.0.fork(), self.1.fork())
    }
}

/// The flow a packet belongs to for sharding: its own, or for an ICMP error
/// the flow it quotes (so the quoted message meets its flow's state).
fn shard_flow(t: &Transport<'_>, f: Option<(FlowId, Dir)>, flows: &FlowTable) -> Option<FlowId> {
    if let Some((id, _)) = f {
        return Some(id);
    }
    if let Transport::Icmp(i) = t {
        return flows.quoted_flow(&i.quoted?);
    }
    None
}

/// TCP and UDP packets belong to a flow; the others (ICMP, other IP) never do.
fn is_flow_packet(t: &Transport<'_>) -> bool {
    matches!(t, Transport::Tcp(_) | Transport::Udp(_))
}

/// A packet of a batch (by index) and its flow, routed to a shard.
type Routed = (u32, Option<(FlowId, Dir)>);

/// Reads the whole capture with the analyzers split into [`SHARDS`] shards by
/// flow, run on rayon's thread pool (`RAYON_NUM_THREADS` sets its size).
/// Flow accounting stays sequential, in file order; each batch's packets are
/// then handed to their shards, which run in parallel.  Returns the shards for
/// the caller to merge.
pub fn run_sharded<S: ShardSink>(
    reader: CaptureReader,
    opts: &RunOptions,
    proto: S,
) -> Result<(RunResult, Vec<S>), CaptureError> {
    run_sharded_with(reader, opts, proto, |_, _, _| (), |()| {})
}

/// Where a [`run_sharded_with`] barrier falls.
#[derive(Debug, Clone, Copy)]
pub struct Barrier {
    /// Time of the capture's first frame (known from the first batch on).
    pub first_ts: Option<i64>,
    /// The latest capture time read so far (what [`PacketSink::barrier`] got).
    pub latest_ts: i64,
}

/// [`run_sharded`] with a barrier: `take` runs on the flow-accounting
/// thread after each batch, and once more after the shards finished, with
/// every shard (in shard order) at the same point of the capture and the
/// flow table as it stands there; `fold` then gets what it
/// took, in batch order, while the shards work on the next batch.  It lets a
/// cross-flow analysis (SIP dialogs span flows and so shards) take what the
/// shards found so far and fold it in capture order, instead of every shard
/// keeping everything to the end.  Batches are cut by the reader alone, so
/// what a barrier sees does not depend on the number of shards.
///
/// The flow accounting runs on a worker of rayon's pool, not on the calling
/// thread (`rayon::scope` moves it there), so each batch's fork-join starts
/// inside the pool: joined from outside, every batch put the caller to
/// sleep and woke a worker and then the caller again.  On the 1 GiB bench
/// capture that was 9,600–16,400 context switches a report, now about
/// 2,200 (`perf stat`); the wall time did not move beyond this host's noise.
pub fn run_sharded_with<S: ShardSink, W: Send>(
    reader: CaptureReader,
    opts: &RunOptions,
    proto: S,
    take: impl FnMut(&mut [S], Barrier, &FlowTable) -> W + Send,
    fold: impl FnMut(W) + Send,
) -> Result<(RunResult, Vec<S>), CaptureError> {
    rayon::scope(move |_| sharded_in_pool(reader, opts, proto, take, fold))
}

/// [`run_sharded_with`], on a worker of the pool.
fn sharded_in_pool<S: ShardSink, W: Send>(
    reader: CaptureReader,
    opts: &RunOptions,
    proto: S,
    mut take: impl FnMut(&mut [S], Barrier, &FlowTable) -> W,
    mut fold: impl FnMut(W) + Send,
) -> Result<(RunResult, Vec<S>), CaptureError> {
    use rayon::prelude::*;
    let n = SHARDS;
    let copy = CopyRule::of(&proto);
    let mut shards: Vec<S> = (1..n).map(|_| proto.fork()).collect();
    shards.insert(0, proto);
    let mut routed: Vec<Vec<Routed>> = vec![Vec::new(); n];
    let mut taken: Option<W> = None;
    let mut latest_ts = i64::MIN;
    let result = drive(reader, opts, copy, |flows, batch| {
        for (i, m) in batch.metas.iter().enumerate() {
            latest_ts = latest_ts.max(m.frame.ts_ns);
            let t = batch.transport(m);
            let f = flows.observe_parts(&m.frame, &m.src, &m.dst, &t);
            if f.is_none() && is_flow_packet(&t) {
                continue; // the flow table is full: counted there, not analysed
            }
            if m.unwanted {
                continue; // media: accounted to its flow, and no sink reads it
            }
            let shard = shard_flow(&t, f, flows).map_or(0, |id| id as usize % n);
            routed[shard].push((i as u32, f));
        }
        let flows: &FlowTable = flows;
        let now = latest_ts;
        let previous = taken.take();
        rayon::join(
            || {
                shards
                    .par_iter_mut()
                    .zip(routed.par_iter())
                    .for_each(|(s, list)| {
                        for &(i, f) in list {
                            let m = &batch.metas[i as usize];
                            s.packet(&m.frame, &batch.packet(m), f, flows);
                        }
                        s.barrier(now, flows);
                    })
            },
            || previous.map(&mut fold),
        );
        for r in routed.iter_mut() {
            r.clear();
        }
        taken = Some(take(
            &mut shards,
            Barrier {
                first_ts: batch.first_ts,
                latest_ts: now,
            },
            flows,
        ));
    })?;
    if let Some(w) = taken {
        fold(w);
    }
    let flows = &result.flows;
    shards.par_iter_mut().for_each(|s| s.finish(flows));
    let last = take(
        &mut shards,
        Barrier {
            first_ts: result.read.first_ts,
            latest_ts,
        },
        flows,
    );
    fold(last);
    Ok((result, shards))
}

fn read_and_decode(
    mut reader: CaptureReader,
    copy: CopyRule,
    tx: SyncSender<Batch>,
    recycle: Receiver<Batch>,
    bar: Option<ProgressBar>,
) -> Result<Stage1, CaptureError> {
    let mut defrag = Defragmenter::new();
    let mut decode = DecodeCounts::default();
    let mut skipped: BTreeMap<SkipReason, u64> = BTreeMap::new();
    let mut batch = Batch::new();
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
        let info = FrameInfo {
            number: frame.number,
            ts_ns: frame.ts_ns,
            orig_len: frame.orig_len,
            cap_len: frame.data.len() as u32,
        };
        if n % HOUSEKEEPING_EVERY == 0 {
            defrag.expire(frame.ts_ns);
        }
        match packet::decode_frame(frame.link_type, frame.data) {
            Decoded::Packet(p) => {
                count(&mut decode, &p);
                if p.ip_truncated && info.cap_len >= info.orig_len {
                    decode.ip_length_exceeds_frame += 1;
                }
                batch.push(info, &p, &copy);
            }
            Decoded::Fragment(frag) => {
                decode.ip_fragments += 1;
                if let Some(r) = defrag.push(&frag, frame.number, frame.ts_ns) {
                    match r.decode() {
                        Decoded::Packet(p) => {
                            count(&mut decode, &p);
                            batch.push(info, &p, &copy);
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
        if batch.metas.len() >= BATCH || batch.arena.len() >= BATCH_BYTES {
            batch.first_ts = reader.stats().first_ts;
            let next = recycle.try_recv().unwrap_or_else(|_| Batch::new());
            if tx.send(std::mem::replace(&mut batch, next)).is_err() {
                break; // stage 2 is gone (it failed); stop reading
            }
        }
    }
    if !batch.metas.is_empty() {
        batch.first_ts = reader.stats().first_ts;
        let _ = tx.send(batch);
    }
    drop(tx);
    defrag.finish();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(Stage1 {
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
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Source;

    /// Records the frames its shard sees.
    #[derive(Default)]
    struct Recorder(Vec<u64>);

    impl PacketSink for Recorder {
        fn wants_payload(&self) -> bool {
            false
        }

        fn packet(
            &mut self,
            f: &FrameInfo,
            _: &Packet<'_>,
            _: Option<(FlowId, Dir)>,
            _: &FlowTable,
        ) {
            self.0.push(f.number);
        }
    }

    impl ShardSink for Recorder {
        fn fork(&self) -> Self {
            Recorder::default()
        }
    }

    /// A pcap of `n` UDP packets spread over 50 flows.
    fn udp_capture(n: u16) -> Vec<u8> {
        udp_capture_of(&(0..n).map(|_| b"x".to_vec()).collect::<Vec<_>>())
    }

    /// A pcap of one UDP packet per payload, spread over 50 flows.
    fn udp_capture_of(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
            b.extend_from_slice(&x.to_le_bytes());
        }
        for (i, payload) in (0u16..).zip(payloads) {
            let mut frame = Vec::new();
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(40_000 + i % 50, 3478)
                .write(&mut frame, payload)
                .unwrap();
            for x in [u32::from(i), 0, frame.len() as u32, frame.len() as u32] {
                b.extend_from_slice(&x.to_le_bytes());
            }
            b.extend_from_slice(&frame);
        }
        b
    }

    /// Every batch reaches `take` once, then `fold`, in file order and one
    /// batch behind, and a last time after the shards finished: the fold sees
    /// every frame in order; there are [`SHARDS`] shards whatever the
    /// number of threads.
    #[test]
    fn barriers_hand_over_every_batch_in_order() {
        let bytes = udp_capture(10_000);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (seen, takes) = pool.install(|| {
                let reader = CaptureReader::new(Source::from_bytes(bytes.clone())).unwrap();
                let mut seen: Vec<u64> = Vec::new();
                let mut takes = 0;
                let take = |shards: &mut [Recorder], _: Barrier, _: &FlowTable| {
                    assert_eq!(shards.len(), SHARDS, "{threads} threads");
                    takes += 1;
                    let mut v: Vec<u64> = shards
                        .iter_mut()
                        .flat_map(|s| std::mem::take(&mut s.0))
                        .collect();
                    v.sort_unstable();
                    v
                };
                let fold = |v: Vec<u64>| {
                    if let (Some(a), Some(b)) = (seen.last(), v.first()) {
                        assert!(a < b, "batches fold in order");
                    }
                    seen.extend(v)
                };
                let (_, shards) = run_sharded_with(
                    reader,
                    &RunOptions::default(),
                    Recorder::default(),
                    take,
                    fold,
                )
                .unwrap();
                assert_eq!(shards.len(), SHARDS, "{threads} threads");
                (seen, takes)
            });
            assert_eq!(
                seen,
                (1..=10_000).collect::<Vec<u64>>(),
                "{threads} threads"
            );
            // 4,096 + 4,096 + 1,808 packets, and the last barrier
            assert_eq!(takes, 4, "{threads} threads");
        }
    }

    /// Records the UDP payloads it is given.
    struct Payloads(Vec<Vec<u8>>);

    impl PacketSink for Payloads {
        fn wants_payload(&self) -> bool {
            true
        }

        fn wants_udp_payload(&self, first: u8) -> bool {
            first < 0x80
        }

        fn packet(
            &mut self,
            _: &FrameInfo,
            p: &Packet<'_>,
            _: Option<(FlowId, Dir)>,
            _: &FlowTable,
        ) {
            if let Transport::Udp(u) = &p.transport {
                self.0.push(u.payload.to_vec());
            }
        }
    }

    /// A UDP payload no sink wants is not handed over, and its flow
    /// accounting is intact; the others arrive whole.
    #[test]
    fn unwanted_udp_payloads_reach_no_sink() {
        let rtp = [0x80u8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].to_vec();
        let stun = [0x00u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42].to_vec();
        let bytes = udp_capture_of(&[rtp.clone(), stun.clone(), vec![]]);
        let reader = CaptureReader::new(Source::from_bytes(bytes)).unwrap();
        let mut sink = Payloads(Vec::new());
        let opts = RunOptions {
            flow_counts: true,
            ..RunOptions::default()
        };
        let run = run(reader, &opts, &mut sink).unwrap();
        assert_eq!(sink.0, vec![stun, vec![]]);
        let counts = run.flows.counts(0).expect("a counting table");
        assert_eq!(counts.payload_bytes.iter().sum::<u64>(), rtp.len() as u64);
    }
}
