//! The STUN finder: every STUN / TURN / MS-TURN message of a capture, wherever
//! it hides, with its context — UDP datagrams, every framing of TCP streams
//! (see `proto::tcpframe`), and nested inside TURN Send/Data indications (DATA
//! attribute), MS Send / Data Indication, ChannelData and RFC 6062 data
//! connections, where the relay↔peer leg is named next to the client↔server
//! one.  Then requests and responses are paired per flow (and per relay
//! leg for nested messages): round-trip time, retransmissions, MS-ICE2
//! duplicate sends (same transaction id, other FINGERPRINT CRC — merged, not
//! retransmissions), unanswered requests.
//!
//! ChannelData on UDP is decoded when its channel was bound on that 5-tuple
//! (ChannelBind seen), or when it is unambiguous: the flow carried TURN
//! messages and the frame parses exactly (Wireshark requires the former; see
//! PROTOCOLS.md §10.7).

use std::collections::HashMap;
use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use crate::capture::FrameInfo;
use crate::flow::reassembly::{ByteQueue, Event};
use crate::flow::streams::{CloseReason, StreamConsumer, TcpStreams};
use crate::flow::{Dir, Endpoint, FlowId, FlowTable, L4};
use crate::packet::{Packet, Transport};
use crate::pipeline::PacketSink;
use crate::proto::channel;
use crate::proto::stun::names::attr as a;
use crate::proto::stun::{self, Class, Dialect, Fingerprint, Message};
use crate::proto::tcpframe::{Framer, Unit};

/// How a message reached the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carrier {
    /// Directly in a UDP datagram or TCP framing.
    Direct,
    /// Inside ChannelData on this channel.
    ChannelData(u16),
    /// Inside the DATA attribute of a TURN Send/Data indication (or MS Send / Data Indication).
    DataAttribute,
    /// Inside MS multiplexed TURN (0xFF10) with this session id.
    MsMultiplexed(u64),
    /// On an RFC 6062 data connection after ConnectionBind, with this CONNECTION-ID.
    Rfc6062Data(Option<u32>),
    /// Quoted in an ICMP error sent by this address (the original never arrived:
    /// typically a late answer to a port already closed).
    IcmpQuoted(std::net::IpAddr),
}

impl Carrier {
    /// Short name.
    pub fn name(&self) -> String {
        match self {
            Carrier::Direct => "direct".into(),
            Carrier::ChannelData(c) => format!("channel {c:#06x}"),
            Carrier::DataAttribute => "data-attribute".into(),
            Carrier::MsMultiplexed(s) => format!("ms-multiplexed {s:#x}"),
            Carrier::Rfc6062Data(Some(c)) => format!("rfc6062 connection {c:#010x}"),
            Carrier::Rfc6062Data(None) => "rfc6062 data".into(),
            Carrier::IcmpQuoted(from) => format!("icmp-error from {from}"),
        }
    }
}

/// (inner source, inner destination) of a message relayed by TURN, when known.
pub type RelayLeg = (Option<SocketAddr>, Option<SocketAddr>);

/// One STUN message found in the capture.
#[derive(Debug, Clone)]
pub struct Found {
    /// Frame where the message starts.
    pub frame: u64,
    /// Frame where it ends (differs when a TCP message spans segments).
    pub end_frame: u64,
    /// Time of the first frame.
    pub ts_ns: i64,
    /// Flow that carried it.
    pub flow: FlowId,
    /// Transport of that flow.
    pub l4: L4,
    /// Wireshark stream index of that flow.
    pub stream: u32,
    /// Sender of the packet / stream direction.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// `udp`, `tcp` (plain), `rfc4571`, `ms-turn`.
    pub framing: &'static str,
    /// Nesting.
    pub carrier: Carrier,
    /// For nested messages: (inner source, inner destination) on the relay↔peer leg, when known
    /// (boxed: most messages are not nested, and a message is kept for the whole run).
    pub relay_leg: Option<Box<RelayLeg>>,
    /// The message.
    pub msg: Message,
    /// Frame of the matching response (requests only).
    pub answer_frame: Option<u64>,
    /// Time from the last copy of the request to the response, ns.
    pub rtt_ns: Option<i64>,
    /// A request sent again with the same transaction id.
    pub retransmission: bool,
    /// MS-ICE2 second copy (same transaction id, the other FINGERPRINT CRC).
    pub ms_duplicate: bool,
    /// For responses: frame of the request answered.
    pub request_frame: Option<u64>,
}

/// ChannelData traffic per flow and channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelCount {
    /// Frames (units) seen.
    pub frames: u64,
    /// Data bytes carried.
    pub bytes: u64,
    /// First frame.
    pub first_frame: u64,
}

/// Capture time between sweeps of the allocation trackers' old requests.
const TURN_SWEEP_EVERY_NS: i64 = 10_000_000_000;

/// Per-flow knowledge the finder builds as it goes (TURN state it needs to decode).
#[derive(Default)]
struct FlowState {
    turn_seen: bool,
    /// XOR-RELAYED-ADDRESS of this allocation (client 5-tuple = this flow).
    relayed: Option<SocketAddr>,
    /// This TCP connection is an RFC 6062 data connection for this CONNECTION-ID.
    data_connection: Option<u32>,
    /// Channel and connection bindings, boxed: most STUN flows (ICE checks)
    /// never bind, and every STUN flow has a state to the end of the pass.
    binds: Option<Box<Binds>>,
}

/// What ChannelBind and ConnectionBind teach about a flow.  Fx-hashed: the
/// channel is looked up for every ChannelData message, and a std map's
/// SipHash keys cost 16 bytes each.
#[derive(Default)]
struct Binds {
    /// channel → peer, from ChannelBind requests (confirmed by success).
    channels: FxHashMap<u16, Option<SocketAddr>>,
    pending_bind: FxHashMap<[u8; 16], (u16, Option<SocketAddr>)>,
    /// ConnectionBind request tid → connection id (RFC 6062 data connection).
    pending_connbind: FxHashMap<[u8; 16], u32>,
}

impl FlowState {
    /// The peer bound to a channel (`Some(None)`: bound, peer unknown).
    fn channel(&self, c: u16) -> Option<Option<SocketAddr>> {
        self.binds.as_ref()?.channels.get(&c).copied()
    }

    fn binds(&mut self) -> &mut Binds {
        self.binds.get_or_insert_with(Box::default)
    }
}

struct DirState {
    queue: ByteQueue,
    framer: Framer,
    seen: super::Recognition,
}

/// A success response whose MAPPED-ADDRESS differs from its XOR-MAPPED-ADDRESS.
#[derive(Debug, Clone, Copy)]
pub struct MappedMismatch {
    /// Frame.
    pub frame: u64,
    /// Stream index of its flow.
    pub stream: u32,
    /// Transport of its flow.
    pub l4: L4,
    /// MAPPED-ADDRESS.
    pub plain: SocketAddr,
    /// XOR-MAPPED-ADDRESS.
    pub xored: SocketAddr,
}

/// Everything the finder collects; also the TCP stream consumer.
#[derive(Default)]
pub struct Core {
    /// Messages in the order found: all of them with [`StunFinder::keeping_all`],
    /// else all but the direct TURN messages, which only feed the allocation
    /// trackers ([`Core::take_turn`]).  A pass that folds them ([`take_batch`])
    /// empties it at each barrier.
    pub found: Vec<Found>,
    /// Messages found, kept or not.
    pub messages: u64,
    /// Flows that carried STUN.
    /// (Hashed: one insert per message, and nothing walks it in order.)
    pub stun_flows: rustc_hash::FxHashSet<FlowId>,
    /// Success responses with MAPPED-ADDRESS ≠ XOR-MAPPED-ADDRESS (frame order after merge).
    pub mapped_mismatch: Vec<MappedMismatch>,
    /// TURN allocation trackers per control flow.
    /// (boxed: a tracker is 600 bytes, and a table of them inline would hold
    /// that much per empty slot and copy it all when it grows).
    turn: FxHashMap<FlowId, Box<super::turn::Tracker>>,
    /// Trackers of allocations that were over when their flow carried
    /// another TURN message ([`super::turn::OVER_AFTER_NS`]): that message
    /// started a new tracker.  Finished with the others at the end, or at
    /// the next barrier when [`StunFinder::finishing_allocations`].
    ended: Vec<(FlowId, Box<super::turn::Tracker>)>,
    /// Finish allocations at the barriers once they are over (a report).
    finishing: bool,
    /// Allocations finished at the barriers since the last [`take_finished`],
    /// each with whether it recorded what a listing shows.
    finished: Vec<(super::turn::Allocation, bool)>,
    /// Allocations with RFC 6062 peer connections that are over, for
    /// [`take_over_with_connections`]: their binds are on other flows.
    over_with_connections: Vec<(FlowId, super::turn::Tracker)>,
    /// Capture time of the next look for allocations that are over.
    next_over_check_ns: i64,
    /// Capture time of the next sweep of the trackers' old requests.
    next_turn_sweep_ns: i64,
    /// Keep every message in `found`.
    keep_all: bool,
    /// The allocations that can be among the first N (by flow) of the whole
    /// capture, which a report lists: only they record what a listing shows.
    listable: super::FirstN,
    /// ChannelData per (flow, channel).
    pub channels: std::collections::BTreeMap<(FlowId, u16), ChannelCount>,
    /// Bytes skipped in TCP streams while resynchronising, per flow.
    pub skipped: std::collections::BTreeMap<FlowId, u64>,
    /// MS pseudo-TLS handshakes seen, per flow.
    pub pseudo_tls: std::collections::BTreeMap<FlowId, u32>,
    /// RFC 6062 CONNECTION-ID → (peer, control flow) from Connect / ConnectionAttempt.
    pub connection_ids: HashMap<u32, (Option<SocketAddr>, FlowId)>,
    /// Relayed bytes on RFC 6062 data connections (flow → bytes).
    pub relayed_bytes: std::collections::BTreeMap<FlowId, u64>,
    flows: FxHashMap<FlowId, FlowState>,
    dirs: FxHashMap<(FlowId, usize), DirState>,
}

/// Context of the packet or stream chunk being decoded.
#[derive(Clone, Copy)]
struct Ctx {
    frame: u64,
    end_frame: u64,
    ts_ns: i64,
    flow: FlowId,
    l4: L4,
    stream: u32,
    src: Endpoint,
    dst: Endpoint,
    framing: &'static str,
    /// Sent by the flow's client (the TURN client on a control flow).
    from_client: bool,
    /// First FIN or RST of the flow as the flow table knows it (it reads a
    /// whole batch ahead of the finders).
    closed: Option<u64>,
}

impl Ctx {
    /// Context of a whole packet of flow `id`.
    fn packet(
        frame: &FrameInfo,
        id: FlowId,
        f: &crate::flow::Flow,
        src: Endpoint,
        dst: Endpoint,
        framing: &'static str,
    ) -> Ctx {
        Ctx {
            frame: frame.number,
            end_frame: frame.number,
            ts_ns: frame.ts_ns,
            flow: id,
            l4: f.l4,
            stream: f.stream,
            src,
            dst,
            framing,
            from_client: src == f.client,
            closed: closed_frame(f),
        }
    }
}

/// The attributes of a kept message that are read after the pass: ICE
/// checks and their answers (`analyze::ice`), RFC 6062 ConnectionBinds
/// (`analyze::turn`) and transaction pairing (FINGERPRINT, kept by its
/// value).  Unless every message is kept for `edgetrace stun`, the others
/// (MESSAGE-INTEGRITY, SOFTWARE, …) are dropped once the message is
/// accounted for: they were a third of a kept message's memory.
const READ_AFTER_THE_PASS: [u16; 11] = [
    a::USERNAME,
    a::PRIORITY,
    a::USE_CANDIDATE,
    a::ICE_CONTROLLING,
    a::ICE_CONTROLLED,
    a::CANDIDATE_IDENTIFIER,
    a::MS_IMPLEMENTATION_VERSION,
    a::ERROR_CODE,
    a::XOR_MAPPED_ADDRESS,
    a::MAPPED_ADDRESS,
    a::CONNECTION_ID,
];

impl Core {
    /// The relay↔peer leg of a message on an RFC 6062 data connection: the
    /// peer comes from the Connect / ConnectionAttempt that announced the
    /// CONNECTION-ID on the control connection (another flow, so known once
    /// the shards are merged); the relayed address is not on this flow.
    pub fn rfc6062_leg(
        &self,
        conn: u32,
        flow: FlowId,
        src: Endpoint,
        flows: &FlowTable,
    ) -> RelayLeg {
        let peer = self.connection_ids.get(&conn).and_then(|x| x.0);
        if flows.get(flow).client == src {
            (None, peer)
        } else {
            (peer, None)
        }
    }

    /// The TURN allocation trackers, in flow order and, within a flow, in
    /// the order they started (for [`super::turn::allocations`]).
    /// They stay boxed: moved into one vector, the live trackers of a long
    /// capture were the peak of a report's heap.
    pub fn take_turn(&mut self) -> Vec<(FlowId, Box<super::turn::Tracker>)> {
        let mut v: Vec<_> = std::mem::take(&mut self.ended)
            .into_iter()
            .chain(std::mem::take(&mut self.turn))
            .collect();
        // stable: a flow's ended trackers (in the order they ended) come
        // before its live one
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// At a barrier of a report's pass: finishes the allocations that are
    /// over — those a later message split off, and, every
    /// [`OVER_CHECK_EVERY_NS`] of capture time, those quiet for
    /// [`super::turn::OVER_AFTER_NS`] since they ended — so that no tracker
    /// waits for the end of the capture once nothing can change it.  The
    /// allocation comes out as it would at the end (an allocation that is
    /// over has the same outcome whenever it is finished); what changes is
    /// that a message on its 5-tuple after a barrier ended it starts a new
    /// allocation even when the capture's clock went back in between.  The
    /// flow's decoding state (channel bindings, relayed address) and
    /// ChannelData counts go with it.
    fn end_allocations(&mut self, now: i64, flows: &FlowTable) {
        if !self.finishing {
            return;
        }
        if now >= self.next_over_check_ns {
            self.next_over_check_ns = now.saturating_add(OVER_CHECK_EVERY_NS);
            let over: Vec<FlowId> = self
                .turn
                .iter()
                .filter(|(&id, t)| {
                    let fl = flows.get(id);
                    t.is_over(now, fl.l4, closed_frame(fl).is_some())
                })
                .map(|(&id, _)| id)
                .collect();
            for id in over {
                if let Some(mut t) = self.turn.remove(&id) {
                    t.end_channels(self.channel_counts(id));
                    self.ended.push((id, t));
                    // a report reads a flow's ChannelData counts only for
                    // its allocations: the next one starts from none; and
                    // what the flow taught for decoding (channel bindings,
                    // relayed address) died with the allocation on the
                    // server: the next one binds anew
                    let gone: Vec<_> = self.channel_counts(id).map(|(ch, _)| ch).collect();
                    for ch in gone {
                        self.channels.remove(&(id, ch));
                    }
                    self.flows.remove(&id);
                }
            }
        }
        if self.ended.is_empty() {
            return;
        }
        // one with RFC 6062 connections is finished where every flow's
        // binds are known; the others read no ConnectionBind
        let no_binds = super::turn::Binds::default();
        let none = |_| 0;
        for (id, t) in std::mem::take(&mut self.ended) {
            if t.has_connections() {
                self.over_with_connections.push((id, *t));
                continue;
            }
            let listed = t.is_listed();
            if let Some(al) = t.finish(id, flows.get(id), &no_binds, &none, now) {
                self.finished.push((al, listed));
            }
        }
    }

    /// A flow's ChannelData counts so far: (channel, (frames, bytes)).
    pub(crate) fn channel_counts(
        &self,
        flow: FlowId,
    ) -> impl Iterator<Item = (u16, (u64, u64))> + '_ {
        self.channels
            .range((flow, 0)..=(flow, u16::MAX))
            .map(|(&(_, ch), c)| (ch, (c.frames, c.bytes)))
    }

    /// Counts a message and hands it on: a direct TURN message feeds its flow's
    /// allocation tracker and is kept only when every message is wanted (the
    /// `stun` command); everything else is kept for pairing, ICE and binds.
    fn account(&mut self, found: Found, closed: bool) {
        self.messages += 1;
        if found.ts_ns >= self.next_turn_sweep_ns {
            // memory only: an answer meets its request by age, not by sweeps
            for t in self.turn.values_mut() {
                t.forget_old_requests(found.ts_ns);
            }
            self.next_turn_sweep_ns = found.ts_ns.saturating_add(TURN_SWEEP_EVERY_NS);
        }
        self.stun_flows.insert(found.flow);
        let m = &found.msg;
        if m.class == Class::Success && m.dialect != Dialect::MsTurn {
            if let (Some(plain), Some(xored)) = (
                m.address(a::MAPPED_ADDRESS),
                m.address(a::XOR_MAPPED_ADDRESS),
            ) {
                if plain != xored {
                    self.mapped_mismatch.push(MappedMismatch {
                        frame: found.frame,
                        stream: found.stream,
                        l4: found.l4,
                        plain,
                        xored,
                    });
                }
            }
        }
        if found.carrier == Carrier::Direct && super::turn::is_turn_method(m.method) {
            let over = self
                .turn
                .get(&found.flow)
                .is_some_and(|t| t.is_over(found.ts_ns, found.l4, closed));
            if over {
                if let Some(mut t) = self.turn.remove(&found.flow) {
                    t.end_channels(self.channel_counts(found.flow));
                    t.end_at(found.frame);
                    self.ended.push((found.flow, t));
                    let next = super::turn::Tracker::after(self.channel_counts(found.flow));
                    self.turn.insert(found.flow, Box::new(next));
                }
            }
            let t = self.turn.entry(found.flow).or_default();
            let was = t.has_allocate();
            t.push(&found);
            if !was && t.has_allocate() {
                self.rank_allocation(found.flow);
            }
            if !self.keep_all {
                return;
            }
        }
        let mut found = found;
        if !self.keep_all {
            // only `edgetrace stun` shows every attribute
            found.msg.attrs.retain(|x| {
                READ_AFTER_THE_PASS.contains(&x.typ)
                    || matches!(x.value, stun::Value::Fingerprint { .. })
            });
            found.msg.attrs.shrink_to_fit();
        }
        self.found.push(found);
    }

    /// Allocations of these flows can no longer be listed ([`super::FirstN::cap`]):
    /// they stop recording what only a listing shows.
    pub(crate) fn unlist(&mut self, flows: &[FlowId]) {
        for id in flows {
            if let Some(t) = self.turn.get_mut(id) {
                t.unlist();
            }
        }
    }

    /// A flow just became an allocation: one that can no longer be listed
    /// ([`super::FirstN`]) stops recording what only a listing shows.
    fn rank_allocation(&mut self, flow: FlowId) {
        if let Some(t) = self
            .listable
            .admit(flow)
            .and_then(|out| self.turn.get_mut(&out))
        {
            t.unlist();
        }
    }

    /// Handles one STUN message (and what it nests); returns false if `bytes` is not STUN.
    fn message(
        &mut self,
        ctx: Ctx,
        bytes: &[u8],
        carrier: Carrier,
        leg: Option<(Option<SocketAddr>, Option<SocketAddr>)>,
    ) -> bool {
        let Ok(msg) = stun::parse(bytes) else {
            return false;
        };
        let nested = carrier != Carrier::Direct;
        if !nested {
            self.learn(ctx, &msg);
        }
        // DATA attribute: a relayed packet, often an ICE check.
        if let Some((off, len)) = msg.data_range() {
            let inner = &bytes[off..off + len];
            let peer = msg
                .address(a::XOR_PEER_ADDRESS)
                .or_else(|| msg.address(a::DESTINATION_ADDRESS));
            let leg = self.relay_leg(ctx, peer);
            if !self.message(ctx, inner, Carrier::DataAttribute, Some(leg)) && inner.len() > 2 {
                // TCP-style inner RFC 4571 length before the STUN message (Cussen's plugin layout)
                let l = u16::from_be_bytes([inner[0], inner[1]]) as usize;
                if l + 2 == inner.len() {
                    self.message(ctx, &inner[2..], Carrier::DataAttribute, Some(leg));
                }
            }
        }
        let found = Found {
            frame: ctx.frame,
            end_frame: ctx.end_frame,
            ts_ns: ctx.ts_ns,
            flow: ctx.flow,
            l4: ctx.l4,
            stream: ctx.stream,
            src: ctx.src,
            dst: ctx.dst,
            framing: ctx.framing,
            carrier,
            relay_leg: leg.map(Box::new),
            msg,
            answer_frame: None,
            rtt_ns: None,
            retransmission: false,
            ms_duplicate: false,
            request_frame: None,
        };
        // a FIN after this message in file order does not count
        let closed = ctx.closed.is_some_and(|fr| fr < ctx.frame);
        self.account(found, closed);
        true
    }

    /// The relay↔peer leg of a relayed message: from the relayed address to
    /// the peer when the TURN client sent it, the other way round otherwise.
    fn relay_leg(
        &self,
        ctx: Ctx,
        peer: Option<SocketAddr>,
    ) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let relayed = self.flows.get(&ctx.flow).and_then(|f| f.relayed);
        if ctx.from_client {
            (relayed, peer)
        } else {
            (peer, relayed)
        }
    }

    /// TURN state needed to decode later traffic.  A Binding request or
    /// answer (ICE checks, most STUN flows) teaches nothing: such a flow
    /// gets no state.
    fn learn(&mut self, ctx: Ctx, m: &Message) {
        if m.method == "Binding" && m.class != Class::Error {
            return;
        }
        let st = self.flows.entry(ctx.flow).or_default();
        st.turn_seen = true;
        match (m.method, m.class) {
            ("ChannelBind", Class::Request) => {
                if let Some(stun::Value::Channel(c)) =
                    m.attr(a::CHANNEL_NUMBER).map(|x| x.value.clone())
                {
                    st.binds()
                        .pending_bind
                        .insert(m.tid, (c, m.address(a::XOR_PEER_ADDRESS)));
                }
            }
            ("ChannelBind", Class::Success) => {
                if let Some(b) = st.binds.as_deref_mut() {
                    if let Some((c, peer)) = b.pending_bind.remove(&m.tid) {
                        b.channels.insert(c, peer);
                    }
                }
            }
            ("Allocate", Class::Success) => {
                st.relayed = m.address(a::XOR_RELAYED_ADDRESS).or_else(|| {
                    (m.dialect == stun::Dialect::MsTurn)
                        .then(|| m.address(a::MAPPED_ADDRESS))
                        .flatten()
                });
            }
            ("ConnectionBind", Class::Request) => {
                if let Some(stun::Value::ConnectionId(c)) =
                    m.attr(a::CONNECTION_ID).map(|x| x.value.clone())
                {
                    st.binds().pending_connbind.insert(m.tid, c);
                }
            }
            ("ConnectionBind", Class::Success) => {
                let bound = st
                    .binds
                    .as_deref_mut()
                    .and_then(|b| b.pending_connbind.remove(&m.tid));
                if let Some(c) = bound {
                    st.data_connection = Some(c);
                    // RFC 6062 §5.3: from now on the connection carries the peer's bytes.
                    for d in 0..2 {
                        if let Some(ds) = self.dirs.get_mut(&(ctx.flow, d)) {
                            ds.framer.switch_to_relay_data();
                        }
                    }
                }
            }
            ("Connect", Class::Request)
            | ("ConnectionAttempt", Class::Indication)
            | ("Connect", Class::Success) => {
                if let Some(stun::Value::ConnectionId(c)) =
                    m.attr(a::CONNECTION_ID).map(|x| x.value.clone())
                {
                    let peer = m.address(a::XOR_PEER_ADDRESS);
                    let e = self.connection_ids.entry(c).or_insert((peer, ctx.flow));
                    if e.0.is_none() {
                        e.0 = peer;
                    }
                }
            }
            _ => {}
        }
    }

    fn udp(&mut self, ctx: Ctx, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        if payload[0] & 0xC0 == 0 && self.message(ctx, payload, Carrier::Direct, None) {
            return;
        }
        let Some(cd) = channel::parse(payload, false) else {
            return;
        };
        let st = self.flows.get(&ctx.flow);
        let bound = st.and_then(|s| s.channel(cd.channel));
        let turn_flow = st.is_some_and(|s| s.turn_seen);
        let inner_is_stun = stun::parse(cd.data).is_ok();
        if bound.is_none() && !turn_flow && !inner_is_stun {
            return; // ambiguous: could be RTP/other
        }
        self.channel_data(ctx, cd, bound.flatten());
    }

    fn channel_data(&mut self, ctx: Ctx, cd: channel::ChannelData<'_>, peer: Option<SocketAddr>) {
        let c = self.channels.entry((ctx.flow, cd.channel)).or_default();
        if c.frames == 0 {
            c.first_frame = ctx.frame;
        }
        c.frames += 1;
        c.bytes += cd.data.len() as u64;
        let carrier = match cd.session {
            Some(s) => Carrier::MsMultiplexed(s),
            None => Carrier::ChannelData(cd.channel),
        };
        let leg = self.relay_leg(ctx, peer);
        self.message(ctx, cd.data, carrier, Some(leg));
    }

    /// Takes units off a TCP direction's queue.
    fn drain(&mut self, flow: FlowId, f: &crate::flow::Flow, d: usize, at_end: bool) {
        let (l4, stream, client, server) = (f.l4, f.stream, f.client, f.server);
        let (src, dst) = if d == 0 {
            (client, server)
        } else {
            (server, client)
        };
        loop {
            let Some(ds) = self.dirs.get_mut(&(flow, d)) else {
                return;
            };
            if ds.seen.given_up() {
                ds.queue.release();
                return;
            }
            let data = ds.queue.data();
            let start = ds.queue.start();
            let Some((unit, n)) = ds.framer.next(data, at_end) else {
                return;
            };
            let (frame, ts) = ds.queue.frame_at(start).unwrap_or((0, 0));
            let (end_frame, _) = ds
                .queue
                .frame_at(start + n.max(1) as u64 - 1)
                .unwrap_or((frame, ts));
            let relay_data = ds.framer.is_relay_data();
            let framing = ds.framer.mode().map(|m| m.name()).unwrap_or("tcp");
            if !matches!(unit, Unit::Skipped(_)) {
                ds.seen.hit();
            }
            // Copy out what the unit refers to: `self` is borrowed mutably below.
            let owned: Option<(Vec<u8>, u8, u16, Option<u64>)> = match unit {
                Unit::Stun(b) => Some((b.to_vec(), 0, 0, None)),
                Unit::Channel(c) => Some((c.data.to_vec(), 1, c.channel, c.session)),
                Unit::Data(b) => Some((b.to_vec(), 2, 0, None)),
                Unit::PseudoTls(_) => {
                    *self.pseudo_tls.entry(flow).or_insert(0) += 1;
                    None
                }
                // real TLS: the TLS finder's, and the framer stopped
                Unit::Tls => None,
                Unit::Skipped(k) => {
                    if relay_data {
                        *self.relayed_bytes.entry(flow).or_insert(0) += k as u64;
                    } else if self
                        .dirs
                        .get_mut(&(flow, d))
                        .is_some_and(|ds| ds.seen.skipped(k))
                    {
                        *self.skipped.entry(flow).or_insert(0) += k as u64;
                    }
                    None
                }
            };
            if let Some(ds) = self.dirs.get_mut(&(flow, d)) {
                if ds.framer.stopped() {
                    // The rest of the stream is TLS: neither STUN nor junk
                    // inside a STUN stream, so it is dropped here, not
                    // counted as skipped when the connection closes (it used
                    // to be, up to the first segment of every TLS stream).
                    ds.queue.release();
                } else {
                    ds.queue.consume(n);
                }
            }
            let ctx = Ctx {
                frame,
                end_frame,
                ts_ns: ts,
                flow,
                l4,
                stream,
                src,
                dst,
                framing,
                from_client: d == 0,
                closed: closed_frame(f),
            };
            if let Some((bytes, kind, ch, session)) = owned {
                let conn = self.flows.get(&flow).and_then(|f| f.data_connection);
                match kind {
                    0 if relay_data => {
                        *self.relayed_bytes.entry(flow).or_insert(0) += bytes.len() as u64;
                        // the peer comes from Connect/ConnectionAttempt on the control
                        // connection, another flow: filled in by `merge`
                        self.message(ctx, &bytes, Carrier::Rfc6062Data(conn), Some((None, None)));
                    }
                    0 => {
                        self.message(ctx, &bytes, Carrier::Direct, None);
                    }
                    1 => {
                        let peer = self.flows.get(&flow).and_then(|f| f.channel(ch)).flatten();
                        let cd = channel::ChannelData {
                            channel: ch,
                            session,
                            data: &bytes,
                            frame_len: 0,
                        };
                        self.channel_data(ctx, cd, peer);
                    }
                    _ if relay_data => {
                        *self.relayed_bytes.entry(flow).or_insert(0) += bytes.len() as u64;
                    }
                    _ => {}
                }
            }
            if n == 0 {
                return;
            }
        }
    }
}

impl StreamConsumer for Core {
    fn event(&mut self, flow: FlowId, f: &crate::flow::Flow, dir: Dir, ev: Event<'_>) {
        let d = dir.idx();
        let ds = self.dirs.entry((flow, d)).or_insert_with(|| DirState {
            queue: ByteQueue::new(),
            framer: Framer::default(),
            seen: Default::default(),
        });
        match ev {
            Event::Data {
                offset,
                bytes,
                frame,
                ts_ns,
            } => {
                if ds.framer.stopped() || ds.seen.given_up() {
                    return; // real TLS, or not STUN-framed at all: not ours
                }
                ds.queue.push(offset, bytes, frame, ts_ns);
                self.drain(flow, f, d, false);
                // bound: a message is at most 64 KiB + framing; more means junk
                if let Some(ds) = self.dirs.get_mut(&(flow, d)) {
                    if ds.queue.len() > 256 * 1024 {
                        let n = ds.queue.len();
                        ds.queue.consume(n);
                        *self.skipped.entry(flow).or_insert(0) += n as u64;
                    }
                }
            }
            Event::Gap { offset, len, .. } => {
                self.drain(flow, f, d, true);
                if let Some(ds) = self.dirs.get_mut(&(flow, d)) {
                    ds.queue.reset(offset + len);
                }
            }
        }
    }

    fn closed(&mut self, flow: FlowId, f: &crate::flow::Flow, _reason: CloseReason) {
        for d in 0..2 {
            self.drain(flow, f, d, true);
            self.dirs.remove(&(flow, d));
        }
    }

    fn wants(&self, flow: FlowId, dir: Dir) -> bool {
        // the conditions under which `event` drops data
        self.dirs
            .get(&(flow, dir.idx()))
            .is_none_or(|ds| !(ds.framer.stopped() || ds.seen.given_up()))
    }

    /// A direction given up holds nothing this finder reads again before
    /// `closed` (whose drain of it would stop at once).
    fn let_go(&mut self, flow: FlowId, dir: Dir) {
        self.dirs.remove(&(flow, dir.idx()));
    }
}

/// The finder as a pipeline sink.  By default it keeps only what the
/// analyzers need after the pass (direct TURN messages go into allocation
/// trackers as they are found); [`StunFinder::keeping_all`] keeps every
/// message, for the per-message `stun` command.
#[derive(Default)]
pub struct StunFinder {
    streams: TcpStreams<Core>,
}

impl StunFinder {
    /// The stream consumer, for a reassembly shared with other finders
    /// ([`crate::flow::streams::Fanout`]).
    pub fn core_mut(&mut self) -> &mut Core {
        self.streams.consumer_mut()
    }

    /// Ranks the shard's allocations with the other shards' for a report's
    /// listing ([`super::FirstN::cap`]): those it ranks out stop recording
    /// what only a listing shows.
    pub fn cap_listing<'a>(shards: impl Iterator<Item = &'a mut StunFinder>) {
        super::FirstN::cap_shards(
            shards,
            |s| &mut s.streams.consumer_mut().listable,
            |s, ids| s.streams.consumer_mut().unlist(ids),
        );
    }

    /// A finder that keeps every message in [`Core::found`].
    pub fn keeping_all() -> Self {
        let mut f = StunFinder::default();
        f.streams.consumer_mut().keep_all = true;
        f
    }

    /// Records allocation timelines only for the first `n` allocations of
    /// the capture (in flow order), as a report that lists `n` needs; every
    /// allocation is still built, counted and checked for issues.
    pub fn allocation_steps_for_first(mut self, n: usize) -> Self {
        self.streams.consumer_mut().listable = super::FirstN::new(n);
        self
    }

    /// Finishes each TURN allocation at the first barrier after it is over
    /// (two quiet minutes, `turn::OVER_AFTER_NS`) instead of at the end of the
    /// capture, for [`take_finished`]: a report's pass then holds only the
    /// allocations still alive.
    pub fn finishing_allocations(mut self) -> Self {
        self.streams.consumer_mut().finishing = true;
        self
    }

    /// Bytes relayed so far on `flow` if it is an RFC 6062 data connection
    /// of this shard.
    pub fn relayed_bytes(&self, flow: FlowId) -> Option<u64> {
        self.streams.consumer().relayed_bytes.get(&flow).copied()
    }
}

/// The first FIN or RST of a TCP flow (RFC 6062 §4.1: a TCP allocation
/// ends with its control connection).
pub(crate) fn closed_frame(f: &crate::flow::Flow) -> Option<u64> {
    let t = f.tcp.as_ref()?;
    t.fin().into_iter().chain(t.rst()).flatten().min()
}

/// How often (capture time) a report's pass looks for TURN allocations
/// that are over.
const OVER_CHECK_EVERY_NS: i64 = 10_000_000_000;

/// The allocations with RFC 6062 peer connections that the shards found
/// over since the last call (see [`StunFinder::finishing_allocations`]), for
/// the caller to finish with the binds of every flow
/// (`turn::Tracker::finish`).
pub fn take_over_with_connections<'a>(
    shards: impl Iterator<Item = &'a mut StunFinder>,
) -> Vec<(FlowId, super::turn::Tracker)> {
    let mut out = Vec::new();
    for s in shards {
        out.append(&mut s.streams.consumer_mut().over_with_connections);
    }
    out
}

/// The allocations the shards finished since the last call, each with
/// whether it recorded what a listing shows (see
/// [`StunFinder::finishing_allocations`]); in no particular order.
pub fn take_finished<'a>(
    shards: impl Iterator<Item = &'a mut StunFinder>,
) -> Vec<(super::turn::Allocation, bool)> {
    let mut out = Vec::new();
    for s in shards {
        out.append(&mut s.streams.consumer_mut().finished);
    }
    out
}

impl crate::pipeline::ShardSink for StunFinder {
    fn fork(&self) -> Self {
        let mut f = StunFinder::default();
        let (c, o) = (f.streams.consumer_mut(), self.streams.consumer());
        c.keep_all = o.keep_all;
        c.finishing = o.finishing;
        c.listable = o.listable.fork();
        f
    }
}

/// The order of messages in a capture: by the frame that completes them
/// (as Wireshark shows a reassembled message), then first frame and flow.
pub fn capture_order(f: &Found) -> (u64, u64, FlowId) {
    (f.end_frame.max(f.frame), f.frame, f.flow)
}

/// The messages the shards of a [`crate::pipeline::run_sharded_with`] pass
/// found since the last barrier, in capture order (found in the same batch,
/// so the order does not depend on the shard count).
pub fn take_batch<'a>(shards: impl Iterator<Item = &'a mut StunFinder>) -> Vec<Found> {
    let mut batch: Vec<Found> = Vec::new();
    for s in shards {
        batch.append(&mut s.streams.consumer_mut().found);
    }
    batch.sort_by_key(capture_order);
    batch
}

/// Merges the shards of a run (see [`crate::pipeline::run_sharded`]) into one
/// result, in an order that does not depend on the number of shards, then
/// resolves what needs more than one flow (RFC 6062 relay legs) and pairs
/// transactions.
pub fn merge(shards: Vec<StunFinder>, flows: &FlowTable) -> Core {
    let mut core = Core::default();
    let shards: Vec<Core> = shards
        .into_iter()
        .map(|s| s.streams.into_consumer())
        .collect();
    // exactly the room needed: the shards' vectors and this one coexist here
    core.found
        .reserve_exact(shards.iter().map(|c| c.found.len()).sum());
    for c in shards {
        core.keep_all = c.keep_all;
        core.found.extend(c.found);
        core.messages += c.messages;
        core.stun_flows.extend(c.stun_flows);
        core.mapped_mismatch.extend(c.mapped_mismatch);
        core.turn.extend(c.turn);
        core.ended.extend(c.ended);
        core.channels.extend(c.channels);
        core.skipped.extend(c.skipped);
        core.pseudo_tls.extend(c.pseudo_tls);
        core.relayed_bytes.extend(c.relayed_bytes);
        for (id, (peer, ctl)) in c.connection_ids {
            // the same CONNECTION-ID on two servers: keep the lowest control flow
            let e = core.connection_ids.entry(id).or_insert((peer, ctl));
            if ctl < e.1 || (ctl == e.1 && e.0.is_none()) {
                *e = (peer.or(e.0), ctl);
            }
        }
    }
    // Each flow's records are in order within their shard, and a flow lives in
    // one shard, so sorting by frame (stable) gives one order for any shard count.
    core.found.sort_by_key(capture_order);
    let mut found = std::mem::take(&mut core.found);
    for f in found.iter_mut() {
        if let Carrier::Rfc6062Data(Some(c)) = f.carrier {
            f.relay_leg = Some(Box::new(core.rfc6062_leg(c, f.flow, f.src, flows)));
        }
    }
    core.found = found;
    pair_transactions(&mut core.found);
    core.mapped_mismatch.sort_by_key(|m| (m.frame, m.stream));
    core
}

impl StunFinder {
    /// STUN quoted in an ICMP error (e.g. port unreachable for a late TURN
    /// answer): Wireshark decodes it, and it tells which message was lost.
    fn icmp(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        icmp: &crate::packet::Icmp<'_>,
        flows: &FlowTable,
    ) {
        let Some((L4::Udp, src, dst)) = icmp.quoted.and_then(|q| crate::flow::quoted_endpoints(&q))
        else {
            return;
        };
        let crate::packet::Decoded::Packet(inner) = crate::packet::decode_ip(icmp.body, 0) else {
            return;
        };
        let Transport::Udp(u) = inner.transport else {
            return;
        };
        let Some(id) = flows.find(L4::Udp, src, dst) else {
            return;
        };
        let f = flows.get(id);
        let core = self.streams.consumer_mut();
        let ctx = Ctx::packet(frame, id, f, src, dst, "icmp");
        if u.payload.first().is_some_and(|b| b & 0xC0 == 0) {
            core.message(ctx, u.payload, Carrier::IcmpQuoted(pkt.src), None);
        }
    }
}

impl PacketSink for StunFinder {
    fn wants_payload(&self) -> bool {
        true
    }

    /// STUN (first two bits 0, RFC 5389 §6) or ChannelData (RFC 8656 §12,
    /// and MS-TURN's multiplexed 0xFF10); the finder's UDP path reads nothing else.
    fn wants_udp_payload(&self, first: u8) -> bool {
        first & 0xC0 == 0 || channel::may_start_with(first)
    }

    fn packet(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
    ) {
        if let Transport::Icmp(icmp) = &pkt.transport {
            self.icmp(frame, pkt, icmp, flows);
            return;
        }
        let Some((id, dir)) = flow else { return };
        let f = flows.get(id);
        let core = self.streams.consumer_mut();
        match &pkt.transport {
            Transport::Udp(u) => {
                let (src, dst) = if dir == Dir::ToServer {
                    (f.client, f.server)
                } else {
                    (f.server, f.client)
                };
                let ctx = Ctx::packet(frame, id, f, src, dst, "udp");
                core.udp(ctx, u.payload);
            }
            Transport::Tcp(_) => self.streams.packet(frame, pkt, Some((id, dir)), flows),
            _ => {}
        }
    }

    fn barrier(&mut self, now_ns: i64, flows: &FlowTable) {
        self.streams.consumer_mut().end_allocations(now_ns, flows);
    }

    fn finish(&mut self, flows: &FlowTable) {
        self.streams.finish(flows);
    }
}

/// A copy of a request, as [`Pairing`] remembers it.
#[derive(Debug, Clone, Copy)]
pub struct RequestCopy {
    /// Its position in the order messages were pushed.
    pub seq: u64,
    /// Its frame.
    pub frame: u64,
    /// Its time.
    pub ts_ns: i64,
    /// Which FINGERPRINT table it matched (MS-ICE2 sends one copy of each).
    fingerprint: Option<Fingerprint>,
    /// What the caller attached to the copy ([`Pairing::push`]).
    pub tag: usize,
}

/// What [`Pairing::push`] found for one message.
#[derive(Debug, Default)]
pub struct Paired<'a> {
    /// A request sent again with the same transaction id.
    pub retransmission: bool,
    /// The MS-ICE2 second copy (other FINGERPRINT CRC within 1 s).
    pub ms_duplicate: bool,
    /// For a response: the request copy it answers (the last one sent
    /// before it, else the first).
    pub request: Option<RequestCopy>,
    /// For the first response of a transaction: every copy of the request
    /// (the answer belongs to all of them), and the round trip from the copy
    /// answered.
    pub first_answer: Option<(&'a [RequestCopy], i64)>,
}

/// One transaction on one flow (and relay leg).
#[derive(Default)]
struct Transaction {
    copies: Vec<RequestCopy>,
    answered: bool,
}

/// Pairs requests and responses by transaction id within their flow (and
/// within the relay leg for nested messages), one message at a time in
/// capture order; marks retransmissions and MS-ICE2 duplicate sends.
///
/// With a horizon ([`Pairing::within`]) a transaction ends when its last
/// request copy is that old: a later copy starts a new one, a later answer
/// meets nothing, and its memory is freed.  Without, every transaction is
/// kept to the end (the `stun` command, which lists every message).
#[derive(Default)]
pub struct Pairing {
    /// Fx-hashed: one lookup per STUN message, where SipHash was 1.5 % of a
    /// report's instructions.
    open: FxHashMap<(FlowId, bool, [u8; 16]), Transaction>,
    horizon_ns: Option<i64>,
    next_sweep_ns: i64,
}

/// How often a [`Pairing`] with a horizon frees its ended transactions
/// (capture time; memory only: whether a transaction has ended is decided by
/// its age, not by sweeps).
const PAIRING_SWEEP_EVERY_NS: i64 = 10_000_000_000;

impl Pairing {
    /// Pairing where a transaction ends `horizon_ns` after its last request copy.
    pub fn within(horizon_ns: i64) -> Self {
        Pairing {
            horizon_ns: Some(horizon_ns),
            ..Pairing::default()
        }
    }

    /// The next message, with a tag to remember with it if it is a request
    /// (the caller's index for it).
    pub fn push(&mut self, f: &Found, seq: u64, tag: usize) -> Paired<'_> {
        if let Some(h) = self.horizon_ns {
            if f.ts_ns >= self.next_sweep_ns {
                self.open
                    .retain(|_, t| t.copies.last().is_some_and(|c| c.ts_ns >= f.ts_ns - h));
                self.next_sweep_ns = f.ts_ns.saturating_add(PAIRING_SWEEP_EVERY_NS);
            }
        }
        let key = (f.flow, f.carrier != Carrier::Direct, f.msg.tid);
        let mut out = Paired::default();
        let ended = |t: &Transaction, h: Option<i64>| match (h, t.copies.last()) {
            (Some(h), Some(c)) => c.ts_ns < f.ts_ns - h,
            _ => false,
        };
        match f.msg.class {
            Class::Request => {
                let t = self.open.entry(key).or_default();
                if ended(t, self.horizon_ns) {
                    *t = Transaction::default();
                }
                let fingerprint = f.msg.fingerprint();
                if let Some(j) = t.copies.last() {
                    let ms_pair = matches!(
                        (j.fingerprint, fingerprint),
                        (Some(Fingerprint::Standard), Some(Fingerprint::MsLegacy))
                            | (Some(Fingerprint::MsLegacy), Some(Fingerprint::Standard))
                    ) && f.ts_ns - j.ts_ns < 1_000_000_000;
                    out.ms_duplicate = ms_pair;
                    out.retransmission = !ms_pair;
                }
                t.copies.push(RequestCopy {
                    seq,
                    frame: f.frame,
                    ts_ns: f.ts_ns,
                    fingerprint,
                    tag,
                });
            }
            Class::Success | Class::Error => {
                let Some(t) = self.open.get_mut(&key) else {
                    return out;
                };
                if ended(t, self.horizon_ns) {
                    return out;
                }
                // the last copy sent before this response
                let Some(&j) = t
                    .copies
                    .iter()
                    .rev()
                    .find(|c| c.ts_ns <= f.ts_ns)
                    .or(t.copies.first())
                else {
                    return out;
                };
                out.request = Some(j);
                if !t.answered {
                    t.answered = true;
                    out.first_answer = Some((&t.copies, f.ts_ns - j.ts_ns));
                }
            }
            Class::Indication => {}
        }
        out
    }
}

/// Pairs every message of a capture ([`Pairing`] without a horizon) and
/// writes the result into the messages.
fn pair_transactions(found: &mut [Found]) {
    let mut pairing = Pairing::default();
    for i in 0..found.len() {
        let p = pairing.push(&found[i], i as u64, i);
        let (retransmission, ms_duplicate) = (p.retransmission, p.ms_duplicate);
        let request = p.request;
        let answers: Option<(Vec<usize>, i64)> = p
            .first_answer
            .map(|(copies, rtt)| (copies.iter().map(|c| c.tag).collect(), rtt));
        let frame = found[i].frame;
        found[i].retransmission = retransmission;
        found[i].ms_duplicate = ms_duplicate;
        if let Some(j) = request {
            if let Some((copies, rtt)) = answers {
                for k in copies {
                    found[k].answer_frame = Some(frame);
                }
                found[j.tag].rtt_ns = Some(rtt);
            }
            found[i].request_frame = Some(j.frame);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::stun::crc;

    /// A Binding request with FINGERPRINT computed by the standard or MS legacy table.
    fn binding(tid: u8, legacy: bool, pad: u8) -> Vec<u8> {
        let mut b = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42];
        b.extend([tid; 12]);
        b.extend([0x00, 0x24, 0x00, 0x04, pad, 0x6e, 0x00, 0xff]); // PRIORITY
        let crc_v = if legacy {
            crc::crc32_ms_legacy(&b)
        } else {
            crc::crc32(&b)
        } ^ crc::FINGERPRINT_XOR;
        b.extend([0x80, 0x28, 0x00, 0x04]);
        b.extend(crc_v.to_be_bytes());
        b
    }

    /// A direct UDP message on flow 0, as the finder would record it (also
    /// used by the TURN tracker's tests).
    pub(crate) fn found(bytes: &[u8], frame: u64, ts: i64) -> Found {
        let ep = Endpoint {
            ip: "10.0.0.1".parse().unwrap(),
            port: 1,
        };
        Found {
            frame,
            end_frame: frame,
            ts_ns: ts,
            flow: 0,
            l4: L4::Udp,
            stream: 0,
            src: ep,
            dst: ep,
            framing: "udp",
            carrier: Carrier::Direct,
            relay_leg: None,
            msg: stun::parse(bytes).unwrap(),
            answer_frame: None,
            rtt_ns: None,
            retransmission: false,
            ms_duplicate: false,
            request_frame: None,
        }
    }

    /// MS-ICE2 sends each check twice with the same transaction id, once with
    /// each CRC table: merged as a duplicate, not a retransmission; a third
    /// copy later is a retransmission.
    #[test]
    fn ms_ice2_duplicate_is_not_a_retransmission() {
        // find a payload where the two CRCs differ
        let pad = (0..=255u8)
            .find(|&p| binding(7, false, p) != binding(7, true, p))
            .unwrap();
        let std = binding(7, false, pad);
        let legacy = binding(7, true, pad);
        assert_eq!(
            stun::parse(&legacy).unwrap().fingerprint(),
            Some(Fingerprint::MsLegacy)
        );
        let mut v = vec![
            found(&std, 1, 0),
            found(&legacy, 2, 1_000),
            found(&std, 3, 2_000_000_000),
        ];
        pair_transactions(&mut v);
        assert!(v[1].ms_duplicate && !v[1].retransmission);
        assert!(v[2].retransmission);
    }

    /// A Binding success response with no attributes.
    fn binding_success(tid: u8) -> Vec<u8> {
        let mut b = vec![0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        b.extend([tid; 12]);
        b
    }

    const S: i64 = 1_000_000_000;

    /// Without a horizon (the `stun` command) an answer meets its request
    /// however late; with one, a transaction ends that long after its last
    /// copy: a late answer meets nothing and a late copy starts anew.
    #[test]
    fn pairing_horizon_ends_transactions() {
        let req = binding(9, false, 1);
        let msgs = [
            found(&req, 1, 0),
            found(&req, 2, 10 * S),
            found(&binding_success(9), 3, 69 * S),
            found(&req, 4, 140 * S),
            found(&binding_success(9), 5, 140 * S + 1_000),
        ];
        let mut all = msgs.to_vec();
        pair_transactions(&mut all);
        assert!(all[1].retransmission && all[3].retransmission);
        assert_eq!(all[2].request_frame, Some(2));
        assert_eq!(all[0].answer_frame, Some(3));
        assert_eq!(all[1].rtt_ns, Some(59 * S));

        let mut p = Pairing::within(60 * S);
        let r: Vec<(bool, Option<u64>, Option<i64>)> = msgs
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let x = p.push(f, i as u64, i);
                (
                    x.retransmission,
                    x.request.map(|c| c.frame),
                    x.first_answer.map(|a| a.1),
                )
            })
            .collect();
        // 59 s after the last copy: still answered, round trip from frame 2
        assert_eq!(r[2], (false, Some(2), Some(59 * S)));
        // 130 s after the last copy: a new transaction, answered at once
        assert_eq!(r[3], (false, None, None));
        assert_eq!(r[4], (false, Some(4), Some(1_000)));

        let mut late = Pairing::within(60 * S);
        late.push(&msgs[0], 0, 0);
        let x = late.push(&found(&binding_success(9), 3, 61 * S), 1, 1);
        assert!(x.request.is_none() && x.first_answer.is_none());
    }

    /// The sweep frees ended transactions and nothing else.
    #[test]
    fn pairing_sweep_keeps_live_transactions() {
        let mut p = Pairing::within(60 * S);
        for i in 0..200u8 {
            p.push(
                &found(&binding(i, false, 1), u64::from(i) + 1, i64::from(i) * S),
                0,
                0,
            );
        }
        // at 199 s the transactions of 139 s and later are live (61 of them);
        // the last sweep ran at most 10 s ago, so at most 10 more are kept
        assert!((61..=71).contains(&p.open.len()), "{}", p.open.len());
        let x = p.push(&found(&binding_success(150), 500, 200 * S), 0, 0);
        assert_eq!(x.first_answer.map(|a| a.1), Some(50 * S));
    }
}
