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

use super::stun::{Carrier, Core, Found};
use crate::flow::{Endpoint, FlowId, FlowTable, L4};
use crate::proto::stun::names::attr as a;
use crate::proto::stun::{Class, Value};

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
    let m = &f.msg;
    let mut what = m.name();
    if let Some((code, reason)) = m.error_code() {
        what = format!("{what} {code} {reason}");
    }
    let mut d = Vec::new();
    if let Some(x) = m.address(a::XOR_RELAYED_ADDRESS) {
        d.push(format!("relayed {}", fmt_addr(Some(x))));
    }
    if let Some(x) = m
        .address(a::XOR_MAPPED_ADDRESS)
        .or(m.address(a::MS_XOR_MAPPED_ADDRESS))
    {
        d.push(format!("mapped {}", fmt_addr(Some(x))));
    }
    if let Some(x) = m.address(a::XOR_PEER_ADDRESS) {
        d.push(format!("peer {}", fmt_addr(Some(x))));
    }
    if let Some(l) = m.u32_value(a::LIFETIME) {
        d.push(format!("lifetime {l}"));
    }
    if let Some(Value::Channel(c)) = m.attr(a::CHANNEL_NUMBER).map(|x| &x.value) {
        d.push(format!("channel {c:#06x}"));
    }
    if let Some(c) = conn_id(f) {
        d.push(format!("connection {c:#010x}"));
    }
    if let Some(u) = m.text(a::USERNAME) {
        d.push(format!("user {u}"));
    }
    if let Some(r) = m.realm() {
        d.push(format!("realm {r}"));
    }
    if let Some(n) = m.nonce() {
        d.push(format!("nonce {n}"));
    }
    (what, d.join(", "))
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

/// Builds the allocations from the STUN finder's results.
pub fn allocations(core: &Core, flows: &FlowTable, capture_end_ns: i64) -> Vec<Allocation> {
    // Messages by control flow, in order (direct TURN messages only).
    let mut by_flow: BTreeMap<FlowId, Vec<&Found>> = BTreeMap::new();
    for f in &core.found {
        if f.carrier == Carrier::Direct && TURN_METHODS.contains(&f.msg.method) {
            by_flow.entry(f.flow).or_default().push(f);
        }
    }
    // ConnectionBind on data connections, by (TURN server, CONNECTION-ID):
    // an id is only unique per server (RFC 6062 §5.2), and captures of many
    // servers — or replicated test traffic — reuse values.
    let mut binds: BTreeMap<(Endpoint, u32), Vec<&Found>> = BTreeMap::new();
    let mut bind_req_conn: BTreeMap<(FlowId, [u8; 16]), u32> = BTreeMap::new();
    for f in core
        .found
        .iter()
        .filter(|f| f.carrier == Carrier::Direct && f.msg.method == "ConnectionBind")
    {
        let id = conn_id(f).or_else(|| bind_req_conn.get(&(f.flow, f.msg.tid)).copied());
        if let Some(id) = id {
            if f.msg.class == Class::Request {
                bind_req_conn.insert((f.flow, f.msg.tid), id);
            }
            binds
                .entry((flows.get(f.flow).server, id))
                .or_default()
                .push(f);
        }
    }
    let mut out = Vec::new();
    for (flow, msgs) in by_flow {
        // only flows with an Allocate are allocations (a Refresh alone is reported too)
        if !msgs.iter().any(|m| m.msg.method == "Allocate") {
            continue;
        }
        let fl = flows.get(flow);
        let mut al = Allocation {
            flow,
            l4: fl.l4,
            stream: fl.stream,
            client: fl.client,
            server: fl.server,
            first_frame: msgs[0].frame,
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
        };
        let mut auth_401 = 0u32;
        let mut stale = 0u32;
        let mut unanswered_alloc = 0u32;
        let (mut auth_frames, mut stale_frames, mut unanswered_frames) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut issues: Vec<TurnIssue> = Vec::new();
        let mut final_errors: Vec<String> = Vec::new();
        let mut dealloc_frame = None;
        let mut closed_by_connection = false;
        let mut last_refresh_ts = None;
        let mut pending: BTreeMap<[u8; 16], &Found> = BTreeMap::new();
        for f in &msgs {
            let m = &f.msg;
            let (what, detail) = describe(f);
            let indication = m.class == Class::Indication;
            if !indication || matches!(m.method, "ConnectionAttempt") {
                al.steps.push(Step {
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
                            al.requested_transport = Some(*p);
                        }
                        if let Some(u) = m.text(a::USERNAME) {
                            al.username = Some(u.to_string());
                        }
                        if f.answer_frame.is_none() && !f.retransmission {
                            unanswered_alloc += 1;
                            unanswered_frames.push(f.frame);
                        }
                    }
                    pending.insert(m.tid, f);
                    if m.method == "Connect" {
                        al.connections.push(Connection {
                            id: 0,
                            peer: m.address(a::XOR_PEER_ADDRESS),
                            announced_frame: f.frame,
                            peer_initiated: false,
                            ..Default::default()
                        });
                    }
                }
                Class::Success => {
                    let req = pending.get(&m.tid).copied();
                    match m.method {
                        "Allocate" => {
                            al.relayed = m.address(a::XOR_RELAYED_ADDRESS).or_else(|| {
                                (m.dialect == crate::proto::stun::Dialect::MsTurn)
                                    .then(|| m.address(a::MAPPED_ADDRESS))
                                    .flatten()
                            });
                            al.mapped = m
                                .address(a::XOR_MAPPED_ADDRESS)
                                .or(m.address(a::MS_XOR_MAPPED_ADDRESS))
                                .or(if m.dialect == crate::proto::stun::Dialect::MsTurn {
                                    None
                                } else {
                                    m.address(a::MAPPED_ADDRESS)
                                });
                            al.success_frame.get_or_insert(f.frame);
                            al.lifetime_s = m.u32_value(a::LIFETIME).or(al.lifetime_s);
                            last_refresh_ts = Some(f.ts_ns);
                        }
                        "Refresh" => {
                            let lt = m
                                .u32_value(a::LIFETIME)
                                .or_else(|| req.and_then(|r| r.msg.u32_value(a::LIFETIME)));
                            if lt == Some(0) {
                                dealloc_frame = Some(f.frame);
                            } else {
                                al.lifetime_s = lt.or(al.lifetime_s);
                                last_refresh_ts = Some(f.ts_ns);
                            }
                        }
                        "CreatePermission" => {
                            if let Some(r) = req {
                                for at in
                                    r.msg.attrs.iter().filter(|x| x.typ == a::XOR_PEER_ADDRESS)
                                {
                                    if let Value::Address { addr, .. } = at.value {
                                        if !al.permissions.contains(&addr) {
                                            al.permissions.push(addr);
                                        }
                                    }
                                }
                            }
                        }
                        "ChannelBind" => {
                            if let Some(r) = req {
                                if let Some(Value::Channel(c)) =
                                    r.msg.attr(a::CHANNEL_NUMBER).map(|x| &x.value)
                                {
                                    al.channels.insert(*c, r.msg.address(a::XOR_PEER_ADDRESS));
                                }
                            }
                        }
                        "Connect" => {
                            if let (Some(c), Some(conn)) = (
                                conn_id(f),
                                al.connections.iter_mut().rev().find(|c| c.id == 0),
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
                    let req = pending.get(&m.tid).copied();
                    let authenticated = req.is_some_and(|r| r.msg.attr(a::USERNAME).is_some());
                    if let Some(r) = m.realm() {
                        al.realm = Some(r.to_string());
                    }
                    match code {
                        401 if !authenticated => {} // the normal challenge
                        401 => {
                            auth_401 += 1;
                            auth_frames.push(f.frame);
                        }
                        438 => {
                            stale += 1;
                            stale_frames.push(f.frame);
                        }
                        _ => {
                            let peer = req
                                .and_then(|r| r.msg.address(a::XOR_PEER_ADDRESS))
                                .map(|p| format!(" (peer {})", fmt_addr(Some(p))))
                                .unwrap_or_default();
                            let text = format!("{} {code} {reason}{peer}", m.method);
                            issues.push(TurnIssue {
                                kind: "error",
                                code: Some(code),
                                frames: vec![f.frame],
                                text: text.clone(),
                            });
                            final_errors.push(text);
                        }
                    }
                }
                Class::Indication => match m.method {
                    "ConnectionAttempt" => al.connections.push(Connection {
                        id: conn_id(f).unwrap_or(0),
                        peer: m.address(a::XOR_PEER_ADDRESS),
                        announced_frame: f.frame,
                        peer_initiated: true,
                        ..Default::default()
                    }),
                    "Send" | "Data" => {
                        let peer = fmt_addr(
                            m.address(a::XOR_PEER_ADDRESS)
                                .or(m.address(a::DESTINATION_ADDRESS)),
                        );
                        let e = al.indications.entry(peer).or_insert((0, 0, 0));
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
        for ((_, ch), c) in core.channels.range((flow, 0)..=(flow, u16::MAX)) {
            al.channel_traffic.insert(*ch, (c.frames, c.bytes));
        }
        // RFC 6062: link the ConnectionBind on another connection to the same
        // server by CONNECTION-ID: the first request after the announcement,
        // and what follows on that data connection.
        for conn in &mut al.connections {
            let list = binds
                .get(&(fl.server, conn.id))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let Some(req) = list
                .iter()
                .find(|b| b.msg.class == Class::Request && b.frame > conn.announced_frame)
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
                .filter(|b| b.flow == data_flow && b.frame >= req.frame)
            {
                match b.msg.class {
                    Class::Request => {
                        conn.bind_stream = Some(b.stream);
                        conn.bind_frame.get_or_insert(b.frame);
                        al.steps.push(Step {
                            frame: b.frame,
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
                    Class::Success => {
                        conn.bind_result = Some("success".into());
                        conn.relayed_bytes = core.relayed_bytes.get(&b.flow).copied().unwrap_or(0);
                        al.steps.push(Step {
                            frame: b.frame,
                            ts_ns: b.ts_ns,
                            stream: b.stream,
                            what: "ConnectionBind success".into(),
                            detail: format!(
                                "connection {:#010x}; {} bytes relayed afterwards",
                                conn.id, conn.relayed_bytes
                            ),
                        });
                    }
                    Class::Error => {
                        let (code, reason) = b
                            .msg
                            .error_code()
                            .map(|(c, r)| (c, r.to_string()))
                            .unwrap_or_default();
                        conn.bind_result = Some(format!("error {code} {reason}"));
                        issues.push(TurnIssue {
                            kind: "connectionbind-failed",
                            code: Some(code),
                            frames: vec![b.frame],
                            text: format!("ConnectionBind {code} {reason}"),
                        });
                        final_errors.push(format!("ConnectionBind {code} {reason}"));
                        al.steps.push(Step {
                            frame: b.frame,
                            ts_ns: b.ts_ns,
                            stream: b.stream,
                            what: format!("ConnectionBind error {code} {reason}"),
                            detail: format!("connection {:#010x}", conn.id),
                        });
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
        let closed_frame = fl.tcp.as_ref().and_then(|t| {
            [t.fin[0], t.fin[1], t.rst[0], t.rst[1]]
                .into_iter()
                .flatten()
                .min()
        });
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
            if ts + lt as i64 * 1_000_000_000 < capture_end_ns {
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
        out.push(al);
    }
    out
}
