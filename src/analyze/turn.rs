//! TURN allocations: one per client 5-tuple at the server (the flow that
//! carries the Allocate), with its life in order (DOMAIN.md story 4, 6):
//! unauthenticated Allocate → 401 with realm/nonce → authenticated Allocate →
//! success (relayed and reflexive addresses, lifetime) or error → Refresh →
//! CreatePermission → ChannelBind → Send/Data and ChannelData traffic →
//! RFC 6062 Connect / ConnectionAttempt → ConnectionBind on a new TCP
//! connection (linked by CONNECTION-ID) and the bytes it carries →
//! deallocation (Refresh with lifetime 0) or expiry.
//!
//! Outcome in one word: `allocated` (still valid at the end of the capture),
//! `deallocated`, `expired`, or `failed`, with a detail naming what failed:
//! a 401 after an authenticated attempt (wrong credentials; repeated = loop),
//! 438 stale nonce loops, 403/437/440/441/442/486/508 on any request, or no
//! answer.  The first 401 of the long-term credential handshake is normal and
//! is not a failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use super::stun::{Carrier, Core, Found};
use crate::flow::{Endpoint, FlowId, FlowTable, L4};
use crate::proto::stun::names::attr as a;
use crate::proto::stun::{Class, Fingerprint, Value};

/// One event of an allocation's life.
#[derive(Debug, Clone)]
pub struct Step {
    /// Frame.
    pub frame: u64,
    /// Time, ns since epoch.
    pub ts_ns: i64,
    /// Stream index of the connection it was on (ConnectionBind uses its own).
    pub stream: u32,
    /// "Allocate request", "Allocate error 401 Unauthorized"…
    pub what: String,
    /// Details (addresses, lifetime, channel, connection id…).
    pub detail: String,
}

/// An RFC 6062 peer connection.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// CONNECTION-ID.
    pub id: u32,
    /// Peer address.
    pub peer: Option<SocketAddr>,
    /// Connect request frame (client-initiated) or ConnectionAttempt frame (peer-initiated).
    pub announced_frame: u64,
    /// Peer-initiated (ConnectionAttempt) or client-initiated (Connect).
    pub peer_initiated: bool,
    /// Stream of the data connection that sent ConnectionBind.
    pub bind_stream: Option<u32>,
    /// ConnectionBind request frame.
    pub bind_frame: Option<u64>,
    /// Result of ConnectionBind: "success", "error 447 …", or None (no answer / never bound).
    pub bind_result: Option<String>,
    /// Bytes relayed on the data connection after ConnectionBind.
    pub relayed_bytes: u64,
}

/// Something that went wrong with an allocation, kept structured for findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnIssue {
    /// `auth-loop` (401 to authenticated requests), `stale-nonce` (438),
    /// `no-answer` (Allocate never answered), `error` (any other error
    /// response), `connection-never-bound`, `connectionbind-failed`.
    pub kind: &'static str,
    /// Error code, when there is one.
    pub code: Option<u16>,
    /// Frames that show it.
    pub frames: Vec<u64>,
    /// In words.
    pub text: String,
}

/// One allocation.
#[derive(Debug, Clone)]
pub struct Allocation {
    /// Flow carrying the control messages.
    pub flow: FlowId,
    /// Its transport.
    pub l4: L4,
    /// Its stream index.
    pub stream: u32,
    /// TURN client (5-tuple at the server).
    pub client: Endpoint,
    /// TURN server.
    pub server: Endpoint,
    /// First frame.
    pub first_frame: u64,
    /// USERNAME used.
    pub username: Option<String>,
    /// REALM offered by the server.
    pub realm: Option<String>,
    /// REQUESTED-TRANSPORT (17 UDP, 6 TCP).
    pub requested_transport: Option<u8>,
    /// Relayed address granted.
    pub relayed: Option<SocketAddr>,
    /// Reflexive (mapped) address reported.
    pub mapped: Option<SocketAddr>,
    /// Frame of the Allocate success.
    pub success_frame: Option<u64>,
    /// Last granted lifetime, seconds.
    pub lifetime_s: Option<u32>,
    /// Peers permitted (CreatePermission success).
    pub permissions: Vec<SocketAddr>,
    /// Channels bound: channel → peer.
    pub channels: BTreeMap<u16, Option<SocketAddr>>,
    /// ChannelData per channel: (frames, bytes).
    pub channel_traffic: BTreeMap<u16, (u64, u64)>,
    /// Send/Data indications per peer: (send, data, bytes).
    pub indications: BTreeMap<String, (u64, u64, u64)>,
    /// RFC 6062 connections.
    pub connections: Vec<Connection>,
    /// What went wrong, structured.
    pub issues: Vec<TurnIssue>,
    /// Outcome word.
    pub outcome: &'static str,
    /// What happened, in words.
    pub detail: String,
    /// The life in order.
    pub steps: Vec<Step>,
}

fn fmt_addr(a: Option<SocketAddr>) -> String {
    a.map(|x| Endpoint::from(x).to_string())
        .unwrap_or_else(|| "?".into())
}

fn conn_id(f: &Found) -> Option<u32> {
    f.msg.attr(a::CONNECTION_ID).and_then(|x| match x.value {
        Value::ConnectionId(c) => Some(c),
        _ => None,
    })
}

fn describe(f: &Found) -> (String, String) {
    use std::fmt::Write as _;
    let m = &f.msg;
    let mut what = m.name();
    if let Some((code, reason)) = m.error_code() {
        let _ = write!(what, " {code} {reason}");
    }
    // one string written in place: a string per part and their join cost
    // three allocations a part for every step of a listed allocation
    let mut d = String::new();
    let mut part = |args: std::fmt::Arguments<'_>| {
        if !d.is_empty() {
            d.push_str(", ");
        }
        let _ = d.write_fmt(args);
    };
    if let Some(x) = m.address(a::XOR_RELAYED_ADDRESS) {
        part(format_args!("relayed {}", Endpoint::from(x)));
    }
    if let Some(x) = m
        .address(a::XOR_MAPPED_ADDRESS)
        .or(m.address(a::MS_XOR_MAPPED_ADDRESS))
    {
        part(format_args!("mapped {}", Endpoint::from(x)));
    }
    if let Some(x) = m.address(a::XOR_PEER_ADDRESS) {
        part(format_args!("peer {}", Endpoint::from(x)));
    }
    if let Some(l) = m.u32_value(a::LIFETIME) {
        part(format_args!("lifetime {l}"));
    }
    if let Some(Value::Channel(c)) = m.attr(a::CHANNEL_NUMBER).map(|x| &x.value) {
        part(format_args!("channel {c:#06x}"));
    }
    if let Some(c) = conn_id(f) {
        part(format_args!("connection {c:#010x}"));
    }
    if let Some(u) = m.text(a::USERNAME) {
        part(format_args!("user {u}"));
    }
    if let Some(r) = m.realm() {
        part(format_args!("realm {r}"));
    }
    if let Some(n) = m.nonce() {
        part(format_args!("nonce {n}"));
    }
    (what, d)
}

const TURN_METHODS: &[&str] = &[
    "Allocate",
    "Refresh",
    "CreatePermission",
    "ChannelBind",
    "Send",
    "Data",
    "Connect",
    "ConnectionAttempt",
    "SetActiveDestination",
];

/// A request waiting for its answer: what the answer's handling reads.
#[derive(Debug, Clone)]
struct Pending {
    ts_ns: i64,
    /// It carried USERNAME (an authenticated attempt).
    username: bool,
    /// LIFETIME asked for.
    lifetime: Option<u32>,
    /// XOR-PEER-ADDRESS values, in order.
    peers: Vec<SocketAddr>,
    /// CHANNEL-NUMBER.
    channel: Option<u16>,
}

/// The copies of one Allocate request (same transaction id).
#[derive(Debug, Clone)]
struct AllocateTx {
    tid: [u8; 16],
    /// Frames of the copies that count as sent: the first, and MS-ICE2 second
    /// copies (same transaction, the other FINGERPRINT); not retransmissions.
    counted: Vec<u64>,
    /// FINGERPRINT kind and time of the last copy.
    last: (Option<Fingerprint>, i64),
    /// A response with this transaction id came after a copy.
    answered: bool,
}

/// Requests older than this (capture time) are forgotten: a STUN transaction
/// gives up after 39.5 s (RFC 5389 §7.2.1), so no answer can come later.
/// An answer is matched to a request of its transaction sent at most this
/// long before it, however many requests the flow made in between.
pub(crate) const PENDING_FOR_NS: i64 = 60_000_000_000;

/// Requests remembered before the first clean-up of old ones.
const PENDING_PRUNE_AT: usize = 16;

/// Quiet time after which an allocation that is over stays over: twice the
/// time an answer can still come ([`PENDING_FOR_NS`]).  An allocation is
/// over once nothing can change its outcome: it failed (never granted, or an
/// error, a 401 loop or a stale-nonce loop), it was released (Refresh
/// lifetime 0), its TCP control connection closed (RFC 6062 §4.1), or, on
/// UDP, its lifetime ran out without a Refresh (RFC 8656 §3.2: the server
/// deletes it).  A message on the same 5-tuple after that much quiet is a new
/// allocation (it would get 437 Allocation Mismatch or start anew), so it
/// starts a new tracker; and a report finishes the allocations that are over
/// during the pass instead of keeping them to the end ([`Tracker::is_over`]).
/// That quiet also covers RFC 6062 peer connections: their ConnectionBinds
/// travel on other flows, but the server closes a peer data connection not
/// bound within 30 s of its announcement (RFC 6062 §5.2, §5.3), which is a
/// control message, so all of an over allocation's binds have been seen.
pub(crate) const OVER_AFTER_NS: i64 = 2 * PENDING_FOR_NS;

/// One control flow's allocation in the making.  The STUN finder feeds it
/// every direct TURN message of the flow in the order it finds them
/// ([`Tracker::push`]), so the messages need not be kept until the end of the
/// run; [`allocations`] finishes the trackers once every flow is known
/// (RFC 6062 binds arrive on other connections).  Memory per allocation is
/// the tracker, its Allocate copies and its requests of the last 60 s, plus
/// what only a listing shows (steps, permissions, channels, indications),
/// which a report records only for the allocations it can list.
#[derive(Debug, Clone)]
pub struct Tracker {
    al: Allocation,
    started: bool,
    has_allocate: bool,
    auth_401: u32,
    stale: u32,
    auth_frames: Vec<u64>,
    stale_frames: Vec<u64>,
    issues: Vec<TurnIssue>,
    final_errors: Vec<String>,
    dealloc_frame: Option<u64>,
    last_refresh_ts: Option<i64>,
    /// Time of the last message.
    last_ts: i64,
    /// Frame of the last message.
    last_frame: u64,
    /// The flow's ChannelData counts when this tracker started, when an
    /// earlier allocation of the flow had counted some (a 5-tuple's second
    /// allocation counts only its own).
    channel_base: Vec<(u16, (u64, u64))>,
    /// `al.channel_traffic` was recorded when the allocation ended.
    channels_done: bool,
    /// Frame of the message that began the 5-tuple's next allocation: the
    /// ConnectionBinds from then on are the next one's.
    ended_at: Option<u64>,
    pending: FxHashMap<[u8; 16], Pending>,
    /// Size of `pending` that triggers the next clean-up (twice what the
    /// last one kept: amortised constant time per request).
    prune_at: usize,
    allocates: Vec<AllocateTx>,
    /// Record what only a listing shows: steps, permissions, channels,
    /// indications, username and realm (a report leaves them out for the
    /// allocations it will not list; findings read none of them).
    listed: bool,
}

impl Default for Tracker {
    fn default() -> Self {
        let unspecified = Endpoint {
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 0,
        };
        Tracker {
            al: Allocation {
                flow: 0,
                l4: L4::Udp,
                stream: 0,
                client: unspecified,
                server: unspecified,
                first_frame: 0,
                username: None,
                realm: None,
                requested_transport: None,
                relayed: None,
                mapped: None,
                success_frame: None,
                lifetime_s: None,
                permissions: Vec::new(),
                channels: BTreeMap::new(),
                channel_traffic: BTreeMap::new(),
                indications: BTreeMap::new(),
                connections: Vec::new(),
                issues: Vec::new(),
                outcome: "failed",
                detail: String::new(),
                steps: Vec::new(),
            },
            started: false,
            has_allocate: false,
            auth_401: 0,
            stale: 0,
            auth_frames: Vec::new(),
            stale_frames: Vec::new(),
            issues: Vec::new(),
            final_errors: Vec::new(),
            dealloc_frame: None,
            last_refresh_ts: None,
            last_ts: i64::MIN,
            last_frame: 0,
            channel_base: Vec::new(),
            channels_done: false,
            ended_at: None,
            pending: FxHashMap::default(),
            prune_at: PENDING_PRUNE_AT,
            allocates: Vec::new(),
            listed: true,
        }
    }
}

/// True for the methods an allocation's control flow carries (ConnectionBind
/// travels on data connections and is linked in [`allocations`]).
pub fn is_turn_method(method: &str) -> bool {
    TURN_METHODS.contains(&method)
}

impl Tracker {
    /// True once the flow carried an Allocate: it is an allocation.
    pub(crate) fn has_allocate(&self) -> bool {
        self.has_allocate
    }

    /// True when the allocation is over (see [`OVER_AFTER_NS`]) and its
    /// flow has been quiet for that long at `now`.  `closed`: the TCP
    /// control connection saw a FIN or RST before `now` (on the message
    /// path: before the message).
    pub(crate) fn is_over(&self, now: i64, l4: L4, closed: bool) -> bool {
        if now.saturating_sub(self.last_ts) <= OVER_AFTER_NS {
            return false;
        }
        if !self.has_allocate {
            return true; // a Refresh alone is no allocation: nothing to wait for
        }
        let failed = self.al.success_frame.is_none()
            || self.auth_401 > 0
            || self.stale > 1
            || !self.final_errors.is_empty();
        // as `finish` decides "expired", with `now` for the capture's end: a
        // TCP allocation that outlived its lifetime still ends with its
        // connection, which may close later
        let expired = l4 == L4::Udp
            && matches!((self.al.lifetime_s, self.last_refresh_ts),
                (Some(lt), Some(ts)) if ts.saturating_add(lt as i64 * 1_000_000_000) < now);
        failed || self.dealloc_frame.is_some() || closed || expired
    }

    /// A tracker for a flow whose earlier allocation ended: it counts the
    /// flow's ChannelData from `counts` (the flow's totals now) on.
    pub(crate) fn after(counts: impl Iterator<Item = (u16, (u64, u64))>) -> Tracker {
        Tracker {
            channel_base: counts.collect(),
            ..Tracker::default()
        }
    }

    /// Records the allocation's ChannelData (for the listing) from the
    /// flow's totals now, less those from before it started; once, when it
    /// ends (later counts belong to the next allocation of the flow).
    pub(crate) fn end_channels(&mut self, counts: impl Iterator<Item = (u16, (u64, u64))>) {
        if self.channels_done {
            return;
        }
        self.channels_done = true;
        if !self.listed {
            return;
        }
        for (ch, (frames, bytes)) in counts {
            let base = self.channel_base.iter().find(|(c, _)| *c == ch);
            match base {
                None => {
                    self.al.channel_traffic.insert(ch, (frames, bytes));
                }
                Some(&(_, (f0, b0))) if frames > f0 => {
                    self.al
                        .channel_traffic
                        .insert(ch, (frames - f0, bytes.saturating_sub(b0)));
                }
                Some(_) => {}
            }
        }
    }

    /// The next allocation of the 5-tuple began with frame `frame`.
    pub(crate) fn end_at(&mut self, frame: u64) {
        self.ended_at = Some(frame);
    }

    /// True when the allocation has RFC 6062 peer connections, whose
    /// ConnectionBinds travel on other flows.
    pub(crate) fn has_connections(&self) -> bool {
        !self.al.connections.is_empty()
    }

    /// The CONNECTION-IDs of its peer connections, and the frame of its last
    /// message, for [`Binds::forget`] once it is finished.
    pub(crate) fn connections_until(&self) -> (Vec<u32>, u64) {
        let ids = self.al.connections.iter().map(|c| c.id).collect();
        (ids, self.last_frame)
    }

    /// True when the allocation recorded what a listing shows.
    pub(crate) fn is_listed(&self) -> bool {
        self.listed
    }

    /// Stops recording what only a listing shows and frees what was
    /// recorded: the allocation will be counted and its issues reported, but
    /// it is not listed.
    pub(crate) fn unlist(&mut self) {
        self.listed = false;
        self.al.steps = Vec::new();
        self.al.permissions = Vec::new();
        self.al.channels = BTreeMap::new();
        self.al.indications = BTreeMap::new();
        self.al.username = None;
        self.al.realm = None;
    }

    /// Remembers what an answer will need of a request, for [`PENDING_FOR_NS`].
    fn remember(&mut self, f: &Found) {
        let m = &f.msg;
        self.pending.insert(
            m.tid,
            Pending {
                ts_ns: f.ts_ns,
                username: m.attr(a::USERNAME).is_some(),
                lifetime: m.u32_value(a::LIFETIME),
                peers: m
                    .attrs
                    .iter()
                    .filter(|x| x.typ == a::XOR_PEER_ADDRESS)
                    .filter_map(|x| match x.value {
                        Value::Address { addr, .. } => Some(addr),
                        _ => None,
                    })
                    .collect(),
                channel: match m.attr(a::CHANNEL_NUMBER).map(|x| &x.value) {
                    Some(Value::Channel(c)) => Some(*c),
                    _ => None,
                },
            },
        );
        if self.pending.len() > self.prune_at {
            let horizon = f.ts_ns - PENDING_FOR_NS;
            self.pending.retain(|_, p| p.ts_ns >= horizon);
            if self.pending.capacity() > 4 * self.pending.len().max(PENDING_PRUNE_AT) {
                self.pending.shrink_to_fit();
            }
            self.prune_at = (2 * self.pending.len()).max(PENDING_PRUNE_AT);
        }
    }

    /// Forgets the requests no answer at `now` or later can match (a quiet
    /// allocation would otherwise hold its last requests to the end).
    pub(crate) fn forget_old_requests(&mut self, now: i64) {
        if self.pending.is_empty() {
            return;
        }
        let horizon = now - PENDING_FOR_NS;
        self.pending.retain(|_, p| p.ts_ns >= horizon);
        if self.pending.is_empty() {
            self.pending = FxHashMap::default();
        } else if self.pending.capacity() > 4 * self.pending.len().max(PENDING_PRUNE_AT) {
            self.pending.shrink_to_fit();
        }
        self.prune_at = (2 * self.pending.len()).max(PENDING_PRUNE_AT);
    }

    /// The request an answer at `ts_ns` answers, if sent at most
    /// [`PENDING_FOR_NS`] before (whether or not a clean-up ran since).
    fn request(&self, tid: &[u8; 16], ts_ns: i64) -> Option<Pending> {
        self.pending
            .get(tid)
            .filter(|p| p.ts_ns >= ts_ns - PENDING_FOR_NS)
            .cloned()
    }

    /// An Allocate request: a new transaction, a retransmission, or the MS-ICE2
    /// second copy (the other FINGERPRINT within 1 s), as the STUN finder
    /// tells them apart when it pairs transactions.
    fn allocate_copy(&mut self, f: &Found) {
        let fp = f.msg.fingerprint();
        match self.allocates.iter_mut().find(|t| t.tid == f.msg.tid) {
            None => self.allocates.push(AllocateTx {
                tid: f.msg.tid,
                counted: vec![f.frame],
                last: (fp, f.ts_ns),
                answered: false,
            }),
            Some(t) => {
                let ms_pair = matches!(
                    (t.last.0, fp),
                    (Some(Fingerprint::Standard), Some(Fingerprint::MsLegacy))
                        | (Some(Fingerprint::MsLegacy), Some(Fingerprint::Standard))
                ) && f.ts_ns - t.last.1 < 1_000_000_000;
                if ms_pair {
                    t.counted.push(f.frame);
                }
                t.last = (fp, f.ts_ns);
            }
        }
    }

    /// The next direct TURN message of the flow.
    pub fn push(&mut self, f: &Found) {
        let m = &f.msg;
        if !self.started {
            self.started = true;
            self.al.first_frame = f.frame;
        }
        self.last_ts = self.last_ts.max(f.ts_ns);
        self.last_frame = self.last_frame.max(f.frame);
        if m.method == "Allocate" {
            self.has_allocate = true;
        }
        if matches!(m.class, Class::Success | Class::Error) {
            if let Some(t) = self.allocates.iter_mut().find(|t| t.tid == m.tid) {
                t.answered = true;
            }
        }
        let m = &f.msg;
        let indication = m.class == Class::Indication;
        if self.listed && (!indication || matches!(m.method, "ConnectionAttempt")) {
            let (what, detail) = describe(f);
            self.al.steps.push(Step {
                frame: f.frame,
                ts_ns: f.ts_ns,
                stream: f.stream,
                what,
                detail,
            });
        }
        match m.class {
            Class::Request => {
                if m.method == "Allocate" {
                    if let Some(Value::Transport(p)) =
                        m.attr(a::REQUESTED_TRANSPORT).map(|x| &x.value)
                    {
                        self.al.requested_transport = Some(*p);
                    }
                    if let Some(u) = m.text(a::USERNAME).filter(|_| self.listed) {
                        self.al.username = Some(u.to_string());
                    }
                    self.allocate_copy(f);
                }
                self.remember(f);
                if m.method == "Connect" {
                    self.al.connections.push(Connection {
                        id: 0,
                        peer: m.address(a::XOR_PEER_ADDRESS),
                        announced_frame: f.frame,
                        peer_initiated: false,
                        ..Default::default()
                    });
                }
            }
            Class::Success => {
                let req = self.request(&m.tid, f.ts_ns);
                match m.method {
                    "Allocate" => {
                        self.al.relayed = m.address(a::XOR_RELAYED_ADDRESS).or_else(|| {
                            (m.dialect == crate::proto::stun::Dialect::MsTurn)
                                .then(|| m.address(a::MAPPED_ADDRESS))
                                .flatten()
                        });
                        self.al.mapped = m
                            .address(a::XOR_MAPPED_ADDRESS)
                            .or(m.address(a::MS_XOR_MAPPED_ADDRESS))
                            .or(if m.dialect == crate::proto::stun::Dialect::MsTurn {
                                None
                            } else {
                                m.address(a::MAPPED_ADDRESS)
                            });
                        self.al.success_frame.get_or_insert(f.frame);
                        self.al.lifetime_s = m.u32_value(a::LIFETIME).or(self.al.lifetime_s);
                        self.last_refresh_ts = Some(f.ts_ns);
                    }
                    "Refresh" => {
                        let lt = m
                            .u32_value(a::LIFETIME)
                            .or_else(|| req.as_ref().and_then(|r| r.lifetime));
                        if lt == Some(0) {
                            self.dealloc_frame = Some(f.frame);
                        } else {
                            self.al.lifetime_s = lt.or(self.al.lifetime_s);
                            self.last_refresh_ts = Some(f.ts_ns);
                        }
                    }
                    "CreatePermission" if self.listed => {
                        if let Some(r) = &req {
                            for &addr in &r.peers {
                                if !self.al.permissions.contains(&addr) {
                                    self.al.permissions.push(addr);
                                }
                            }
                        }
                    }
                    "ChannelBind" if self.listed => {
                        if let Some(Pending {
                            channel: Some(c),
                            peers,
                            ..
                        }) = &req
                        {
                            self.al.channels.insert(*c, peers.first().copied());
                        }
                    }
                    "Connect" => {
                        if let (Some(c), Some(conn)) = (
                            conn_id(f),
                            self.al.connections.iter_mut().rev().find(|c| c.id == 0),
                        ) {
                            conn.id = c;
                        }
                    }
                    _ => {}
                }
            }
            Class::Error => {
                let (code, reason) = m
                    .error_code()
                    .map(|(c, r)| (c, r.to_string()))
                    .unwrap_or((0, String::new()));
                let req = self.request(&m.tid, f.ts_ns);
                let authenticated = req.as_ref().is_some_and(|r| r.username);
                if let Some(r) = m.realm().filter(|_| self.listed) {
                    self.al.realm = Some(r.to_string());
                }
                match code {
                    401 if !authenticated => {} // the normal challenge
                    401 => {
                        self.auth_401 += 1;
                        self.auth_frames.push(f.frame);
                    }
                    438 => {
                        self.stale += 1;
                        self.stale_frames.push(f.frame);
                    }
                    _ => {
                        let peer = req
                            .as_ref()
                            .and_then(|r| r.peers.first().copied())
                            .map(|p| format!(" (peer {})", fmt_addr(Some(p))))
                            .unwrap_or_default();
                        let text = format!("{} {code} {reason}{peer}", m.method);
                        self.issues.push(TurnIssue {
                            kind: "error",
                            code: Some(code),
                            frames: vec![f.frame],
                            text: text.clone(),
                        });
                        self.final_errors.push(text);
                    }
                }
            }
            Class::Indication => match m.method {
                "ConnectionAttempt" => self.al.connections.push(Connection {
                    id: conn_id(f).unwrap_or(0),
                    peer: m.address(a::XOR_PEER_ADDRESS),
                    announced_frame: f.frame,
                    peer_initiated: true,
                    ..Default::default()
                }),
                "Send" | "Data" if self.listed => {
                    let peer = fmt_addr(
                        m.address(a::XOR_PEER_ADDRESS)
                            .or(m.address(a::DESTINATION_ADDRESS)),
                    );
                    let e = self.al.indications.entry(peer).or_insert((0, 0, 0));
                    if m.method == "Send" {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                    e.2 += m.data_range().map(|(_, l)| l as u64).unwrap_or(0);
                }
                _ => {}
            },
        }
    }

    /// The allocation, once every flow is known; None for a flow without an
    /// Allocate (a Refresh alone is not an allocation).
    pub(crate) fn finish(
        self,
        flow: FlowId,
        fl: &crate::flow::Flow,
        binds: &Binds,
        relayed_bytes: &dyn Fn(FlowId) -> u64,
        capture_end_ns: i64,
    ) -> Option<Allocation> {
        if !self.has_allocate {
            return None;
        }
        let Tracker {
            mut al,
            auth_401,
            stale,
            auth_frames,
            stale_frames,
            mut issues,
            mut final_errors,
            mut dealloc_frame,
            last_refresh_ts,
            allocates,
            listed,
            ended_at,
            ..
        } = self;
        al.flow = flow;
        al.l4 = fl.l4;
        al.stream = fl.stream;
        al.client = fl.client;
        al.server = fl.server;
        let mut closed_by_connection = false;
        let mut unanswered_frames: Vec<u64> = allocates
            .iter()
            .filter(|t| !t.answered)
            .flat_map(|t| t.counted.iter().copied())
            .collect();
        unanswered_frames.sort_unstable();
        let unanswered_alloc = unanswered_frames.len() as u32;
        // RFC 6062: link the ConnectionBind on another connection to the same
        // server by CONNECTION-ID: the first request after the announcement,
        // and what follows on that data connection.
        for conn in &mut al.connections {
            // binds after the next allocation of the 5-tuple began are its own
            let list: Vec<&Bind> = binds
                .of(fl.server, conn.id)
                .iter()
                .filter(|b| ended_at.is_none_or(|end| b.frames.0 < end))
                .collect();
            let Some(req) = list
                .iter()
                .find(|b| b.class == Class::Request && b.frames.0 > conn.announced_frame)
                .copied()
            else {
                let text = format!(
                    "connection {:#010x} never bound (no ConnectionBind seen)",
                    conn.id
                );
                issues.push(TurnIssue {
                    kind: "connection-never-bound",
                    code: None,
                    frames: vec![conn.announced_frame],
                    text: text.clone(),
                });
                final_errors.push(text);
                continue;
            };
            let data_flow = req.flow;
            for b in list
                .iter()
                .filter(|b| b.flow == data_flow && b.frames.0 >= req.frames.0)
            {
                match b.class {
                    Class::Request => {
                        conn.bind_stream = Some(b.stream);
                        conn.bind_frame.get_or_insert(b.frames.0);
                        if listed {
                            al.steps.push(Step {
                                frame: b.frames.0,
                                ts_ns: b.ts_ns,
                                stream: b.stream,
                                what: "ConnectionBind request".into(),
                                detail: format!(
                                    "connection {:#010x} on {} {}",
                                    conn.id,
                                    b.l4.name(),
                                    b.stream
                                ),
                            });
                        }
                    }
                    Class::Success => {
                        conn.bind_result = Some("success".into());
                        conn.relayed_bytes = relayed_bytes(b.flow);
                        if listed {
                            al.steps.push(Step {
                                frame: b.frames.0,
                                ts_ns: b.ts_ns,
                                stream: b.stream,
                                what: "ConnectionBind success".into(),
                                detail: format!(
                                    "connection {:#010x}; {} bytes relayed afterwards",
                                    conn.id, conn.relayed_bytes
                                ),
                            });
                        }
                    }
                    Class::Error => {
                        let (code, reason) = b.error.clone().unwrap_or_default();
                        conn.bind_result = Some(format!("error {code} {reason}"));
                        issues.push(TurnIssue {
                            kind: "connectionbind-failed",
                            code: Some(code),
                            frames: vec![b.frames.0],
                            text: format!("ConnectionBind {code} {reason}"),
                        });
                        final_errors.push(format!("ConnectionBind {code} {reason}"));
                        if listed {
                            al.steps.push(Step {
                                frame: b.frames.0,
                                ts_ns: b.ts_ns,
                                stream: b.stream,
                                what: format!("ConnectionBind error {code} {reason}"),
                                detail: format!("connection {:#010x}", conn.id),
                            });
                        }
                    }
                    Class::Indication => {}
                }
            }
        }
        al.steps.sort_by_key(|s| s.frame);
        // Outcome.
        let mut problems = Vec::new();
        if auth_401 > 0 {
            problems.push(if auth_401 > 1 {
                format!("401 loop: {auth_401} authenticated Allocate attempts rejected — wrong credentials")
            } else {
                "401 after an authenticated attempt — wrong credentials".to_string()
            });
        }
        if stale > 1 {
            problems.push(format!("438 stale nonce {stale} times"));
        }
        if al.success_frame.is_none()
            && unanswered_alloc > 0
            && final_errors.is_empty()
            && auth_401 == 0
        {
            problems.push(format!(
                "{unanswered_alloc} Allocate request(s) never answered by the server"
            ));
            issues.push(TurnIssue {
                kind: "no-answer",
                code: None,
                frames: unanswered_frames,
                text: problems.last().cloned().unwrap_or_default(),
            });
        }
        if auth_401 > 0 {
            issues.push(TurnIssue {
                kind: "auth-loop",
                code: Some(401),
                frames: auth_frames,
                text: problems[0].clone(),
            });
        }
        if stale > 1 {
            issues.push(TurnIssue {
                kind: "stale-nonce",
                code: Some(438),
                frames: stale_frames,
                text: format!("438 stale nonce {stale} times"),
            });
        }
        issues.sort_by_key(|i| i.frames.first().copied());
        al.issues = issues;
        problems.extend(final_errors);
        // RFC 6062 §4.1 / RFC 8656 §3.1: a TCP allocation lives as long as its control connection.
        let closed_frame = super::stun::closed_frame(fl);
        if dealloc_frame.is_none() && al.success_frame.is_some() {
            if let Some(fr) = closed_frame {
                dealloc_frame = Some(fr);
                closed_by_connection = true;
            }
        }
        al.outcome = if al.success_frame.is_none() || !problems.is_empty() {
            "failed"
        } else if dealloc_frame.is_some() {
            "deallocated"
        } else if let (Some(lt), Some(ts)) = (al.lifetime_s, last_refresh_ts) {
            if ts.saturating_add(lt as i64 * 1_000_000_000) < capture_end_ns {
                "expired"
            } else {
                "allocated"
            }
        } else {
            "allocated"
        };
        al.detail = if problems.is_empty() {
            match (al.outcome, dealloc_frame) {
                ("deallocated", Some(fr)) if closed_by_connection => {
                    format!("control connection closed (FIN/RST) in frame {fr}, which ends a TCP allocation")
                }
                ("deallocated", Some(fr)) => {
                    format!("released by Refresh lifetime 0 in frame {fr}")
                }
                ("expired", _) => {
                    "lifetime ran out before the end of the capture without a Refresh".into()
                }
                _ => format!("relayed {}", fmt_addr(al.relayed)),
            }
        } else {
            problems.join("; ")
        };
        Some(al)
    }
}

/// Receives the TURN allocations a report's pass finishes before the end of
/// the capture, once they are over (`OVER_AFTER_NS`), with whether they
/// recorded what a listing shows (see [`super::FirstN`]): the report counts
/// them, checks them for findings and keeps the ones it may list, so the
/// pass does not hold them to the end.
pub trait AllocationSink: Send {
    /// One allocation, finished.
    fn allocation(&mut self, al: Allocation, listed: bool);
}

/// An RFC 6062 ConnectionBind (request or answer) on a data connection:
/// the only STUN messages [`allocations`] reads besides its trackers.
pub fn is_connection_bind(f: &Found) -> bool {
    f.carrier == Carrier::Direct && f.msg.method == "ConnectionBind"
}

/// What [`allocations`] reads of an RFC 6062 ConnectionBind: a report's
/// pass keeps these instead of the messages (a fifth of their size).
#[derive(Debug, Clone)]
pub struct Bind {
    /// The data connection.
    pub flow: FlowId,
    /// Its transport.
    pub l4: L4,
    /// Stream index of the data connection.
    pub stream: u32,
    /// First and last frame of the message.
    pub frames: (u64, u64),
    /// Time.
    pub ts_ns: i64,
    /// Request or answer.
    pub class: Class,
    /// Transaction id (an answer carries no CONNECTION-ID).
    pub tid: [u8; 16],
    /// CONNECTION-ID, in a request.
    pub conn_id: Option<u32>,
    /// Code and reason of an error answer.
    pub error: Option<(u16, String)>,
}

impl Bind {
    /// The bind a message is, if it is one ([`is_connection_bind`]).
    pub fn of(f: &Found) -> Option<Bind> {
        is_connection_bind(f).then(|| Bind {
            flow: f.flow,
            l4: f.l4,
            stream: f.stream,
            frames: (f.frame, f.end_frame),
            ts_ns: f.ts_ns,
            class: f.msg.class,
            tid: f.msg.tid,
            conn_id: conn_id(f),
            error: f.msg.error_code().map(|(c, r)| (c, r.to_string())),
        })
    }

    /// Its place in the capture ([`super::stun::capture_order`]).
    pub fn capture_order(&self) -> (u64, u64, FlowId) {
        (self.frames.1.max(self.frames.0), self.frames.0, self.flow)
    }
}

/// Builds the allocations from the trackers the STUN finder fed (see
/// [`super::stun::Core::take_turn`]), in flow order, linking RFC 6062
/// ConnectionBinds on data connections ([`Binds`]) by CONNECTION-ID.
pub fn allocations(
    trackers: Vec<(FlowId, Box<Tracker>)>,
    binds: &Binds,
    core: &Core,
    flows: &FlowTable,
    capture_end_ns: i64,
) -> Vec<Allocation> {
    let relayed = |f: FlowId| core.relayed_bytes.get(&f).copied().unwrap_or(0);
    trackers
        .into_iter()
        .filter_map(|(flow, mut t)| {
            t.end_channels(core.channel_counts(flow));
            t.finish(flow, flows.get(flow), binds, &relayed, capture_end_ns)
        })
        .collect()
}

/// The RFC 6062 ConnectionBinds of a capture by (TURN server,
/// CONNECTION-ID), each list in capture order: an id is only unique per
/// server (RFC 6062 §5.2), and captures of many servers — or replicated
/// test traffic — reuse values.  An answer (which carries no CONNECTION-ID)
/// takes its request's.  Filled as the binds are found, so a report's pass
/// can finish an allocation with peer connections before the end.
#[derive(Debug, Default)]
pub struct Binds {
    by_conn: BTreeMap<(Endpoint, u32), Vec<Bind>>,
    request_conn: FxHashMap<(FlowId, [u8; 16]), u32>,
}

impl Binds {
    /// The binds of `found` (the messages of a capture or of a batch, in
    /// capture order).
    pub fn of_messages<'a>(found: impl IntoIterator<Item = &'a Found>, flows: &FlowTable) -> Binds {
        let mut b = Binds::default();
        for f in found {
            if let Some(x) = Bind::of(f) {
                b.push(x, flows);
            }
        }
        b
    }

    /// One more bind; a list stays in capture order whatever order the
    /// binds come in.
    pub fn push(&mut self, b: Bind, flows: &FlowTable) {
        let id = b
            .conn_id
            .or_else(|| self.request_conn.get(&(b.flow, b.tid)).copied());
        let Some(id) = id else { return };
        if b.class == Class::Request {
            self.request_conn.insert((b.flow, b.tid), id);
        }
        let list = self
            .by_conn
            .entry((flows.get(b.flow).server, id))
            .or_default();
        let at = list.partition_point(|x| x.capture_order() <= b.capture_order());
        list.insert(at, b);
    }

    /// Forgets the binds for connection `id` at `server` up to frame
    /// `until`: those of an allocation that a report finished (its
    /// connections' binds all came before its last message, and a later
    /// connection with the same id is announced, and bound, after it).
    pub fn forget(&mut self, server: Endpoint, id: u32, until: u64) {
        let Some(list) = self.by_conn.get_mut(&(server, id)) else {
            return;
        };
        for b in list.iter().filter(|b| b.frames.0 <= until) {
            if b.class == Class::Request {
                self.request_conn.remove(&(b.flow, b.tid));
            }
        }
        list.retain(|b| b.frames.0 > until);
        if list.is_empty() {
            self.by_conn.remove(&(server, id));
        }
    }

    /// The binds for connection `id` at `server`.
    pub fn of(&self, server: Endpoint, id: u32) -> &[Bind] {
        self.by_conn
            .get(&(server, id))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::stun::tests::found;

    /// A Refresh (request or success) with an optional LIFETIME.
    fn refresh(success: bool, tid: u8, lifetime: Option<u32>) -> Vec<u8> {
        let mut attrs = Vec::new();
        if let Some(l) = lifetime {
            attrs.extend([0x00, 0x0d, 0x00, 0x04]);
            attrs.extend(l.to_be_bytes());
        }
        let typ: u16 = if success { 0x0104 } else { 0x0004 };
        let mut b = typ.to_be_bytes().to_vec();
        b.extend((attrs.len() as u16).to_be_bytes());
        b.extend([0x21, 0x12, 0xA4, 0x42]);
        b.extend([tid; 12]);
        b.extend(attrs);
        b
    }

    /// An answer takes what it needs from its request (here: LIFETIME 0
    /// only in the request makes the success a deallocation) when the
    /// request was sent at most 60 s before, whatever the clean-ups did in
    /// between; a later answer is not matched.
    #[test]
    fn answers_meet_requests_of_the_last_60_seconds() {
        const S: i64 = 1_000_000_000;
        for (late_s, dealloc) in [(59, true), (61, false)] {
            let mut t = Tracker::default();
            t.push(&found(&refresh(false, 200, Some(0)), 1, 0));
            // many other requests (answered or not) in between: clean-ups run
            for i in 0..100u8 {
                t.push(&found(&refresh(false, i, Some(600)), 2 + u64::from(i), S));
            }
            t.push(&found(&refresh(true, 200, None), 500, late_s * S));
            assert_eq!(
                t.dealloc_frame.is_some(),
                dealloc,
                "answer {late_s} s later"
            );
        }
    }

    /// A flow that sends a request a second for an hour remembers about a
    /// minute of them, not the hour.
    #[test]
    fn remembered_requests_stay_about_a_minute() {
        let mut t = Tracker::default();
        for i in 0..3600u64 {
            let tid = (i % 251) as u8;
            t.push(&found(
                &refresh(false, tid, Some(600)),
                i + 1,
                i as i64 * 1_000_000_000,
            ));
            assert!(
                t.pending.len() <= 2 * 61 + 1,
                "{} at {i} s",
                t.pending.len()
            );
        }
    }

    /// When an allocation is over: after two quiet minutes, once nothing can
    /// change its outcome.
    #[test]
    fn over_when_quiet_and_nothing_can_change_it() {
        const S: i64 = 1_000_000_000;
        let granted = || {
            let mut t = Tracker {
                has_allocate: true,
                last_refresh_ts: Some(0),
                last_ts: 0,
                ..Tracker::default()
            };
            t.al.success_frame = Some(2);
            t.al.lifetime_s = Some(600);
            t
        };
        let t = granted();
        assert!(!t.is_over(300 * S, L4::Udp, false), "alive");
        assert!(t.is_over(601 * S, L4::Udp, false), "expired on UDP");
        assert!(
            !t.is_over(601 * S, L4::Tcp, false),
            "a TCP one ends with its connection"
        );
        assert!(t.is_over(121 * S, L4::Tcp, true), "closed");
        assert!(!t.is_over(120 * S, L4::Tcp, true), "not quiet long enough");
        let mut t = granted();
        t.dealloc_frame = Some(9);
        assert!(t.is_over(121 * S, L4::Udp, false), "released");
        let mut t = granted();
        t.al.success_frame = None;
        assert!(t.is_over(121 * S, L4::Udp, false), "never granted");
        let mut t = granted();
        t.auth_401 = 1;
        assert!(t.is_over(121 * S, L4::Udp, false), "401 to credentials");
        t.al.connections.push(Connection::default());
        assert!(
            t.is_over(121 * S, L4::Tcp, false),
            "binds come within 30 s of the announcement"
        );
        let t = Tracker {
            last_ts: 0,
            ..Tracker::default()
        };
        assert!(t.is_over(121 * S, L4::Udp, false), "a Refresh alone");
    }

    /// Binds are indexed by (server, CONNECTION-ID), each list in capture
    /// order whatever order they come in; an answer takes its request's id;
    /// a finished allocation's binds are forgotten up to its last frame.
    #[test]
    fn binds_index_in_capture_order_and_forget_a_prefix() {
        let mut flows = FlowTable::new();
        crate::flow::tests::observe_udp(&mut flows, 1, 40_000);
        let server = flows.get(0).server;
        let bind = |frame: u64, class: Class, tid: u8, conn_id: Option<u32>| Bind {
            flow: 0,
            l4: L4::Udp,
            stream: 0,
            frames: (frame, frame),
            ts_ns: frame as i64,
            class,
            tid: [tid; 16],
            conn_id,
            error: None,
        };
        let mut b = Binds::default();
        b.push(bind(20, Class::Request, 2, Some(7)), &flows);
        b.push(bind(10, Class::Request, 1, Some(7)), &flows);
        b.push(bind(12, Class::Success, 1, None), &flows);
        b.push(bind(13, Class::Success, 9, None), &flows); // no request: no id
        let frames = |b: &Binds| {
            b.of(server, 7)
                .iter()
                .map(|x| x.frames.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(frames(&b), [10, 12, 20]);
        b.forget(server, 7, 12);
        assert_eq!(frames(&b), [20]);
        // the forgotten request no longer names its answers
        b.push(bind(30, Class::Success, 1, None), &flows);
        assert_eq!(frames(&b), [20]);
        b.forget(server, 7, 20);
        assert!(b.of(server, 7).is_empty() && b.by_conn.is_empty());
    }
}
