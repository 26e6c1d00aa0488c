//! Findings: what is wrong, said in one sentence each, with the evidence
//! (frames, streams, addresses), a Wireshark display filter that shows it,
//! and a hint where the fix is known.  They are computed from what the
//! analyzers built (TURN allocations, ICE sessions, SIP dialogs, TLS
//! connections, the capture's damage) and never from raw packets.
//!
//! The catalogue (ids are stable; README "Findings" documents each):
//! `capture.damaged`, `turn.auth-loop`, `turn.stale-nonce-loop`,
//! `turn.request-rejected`, `turn.no-answer`, `turn.connectionbind-failed`,
//! `turn.connection-never-bound`, `turn.relay-private`,
//! `turn.relay-port-range`, `stun.mapped-mismatch`, `ice.one-way`,
//! `ice.no-nomination`, `ice.unchecked-candidates`,
//! `tls.8057-normal-direction`, `tls.client-cert-eku`, `tls.server-cert-eku`,
//! `tls.fatal-alert`, `tls.idle-reset`, `tls.reconnect-loop`,
//! `sip.error-response`, `mras.no-relay`.

use std::cell::LazyCell;
use std::net::IpAddr;

use serde::Serialize;

use crate::analyze::all::Analysis;
use crate::analyze::ice::Session;
use crate::analyze::turn::Allocation;
use crate::flow::Endpoint;
use crate::model::ice::SessionOut;
use crate::model::sip::MessageOut;
use crate::model::tls::{ConnOut, Section8057};
use crate::model::CaptureSummary;

/// How bad a finding is.  Ordered worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something failed.
    Error,
    /// Something is suspicious or will fail under other conditions.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// `error`, `warning`, `info`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Finding {
    /// Stable id (`turn.auth-loop`).
    pub id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// One sentence.
    pub summary: String,
    /// Frames that show it (at most [`MAX_EVIDENCE`]).
    pub frames: Vec<u64>,
    /// Streams (`tcp 3`, `udp 0`).
    pub streams: Vec<String>,
    /// Addresses involved.
    pub addresses: Vec<String>,
    /// A Wireshark display filter showing the evidence.
    pub filter: String,
    /// How to fix it, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
    /// How many occurrences this finding stands for (identical problems of
    /// many allocations, connections or dialogs are merged into one).
    pub count: usize,
    /// Findings with the same id and group are merged (empty: never merged).
    #[serde(skip)]
    pub group: String,
}

/// Frames listed per finding.
pub const MAX_EVIDENCE: usize = 20;

/// Knobs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The A/V Edge relay port range (inclusive); default 50000–59999.
    pub relay_ports: (u16, u16),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            relay_ports: (50000, 59999),
        }
    }
}

/// The analyzers' output models the findings read.
pub struct Inputs<'a> {
    /// Everything found.
    pub analysis: &'a Analysis,
    /// The capture summary.
    pub capture: &'a CaptureSummary,
    /// The SIP findings, made as the report's SIP fold met the messages
    /// ([`sip_error`] merged with [`Merging`], [`mras_no_relay`]).
    pub sip: &'a [Finding],
    /// The ICE findings, made as the report's ICE model met each session
    /// ([`ice_session`], merged with [`Merging`]), so that sessions past the
    /// listed ones need not be kept.
    pub ice: &'a [Finding],
    /// The TLS findings, made as the report's TLS model met each connection
    /// ([`tls_connection`] merged with [`Merging`], then [`tls_8057`]).
    pub tls: &'a [Finding],
    /// The TURN findings already merged, when a report made them as its
    /// pass finished allocations ([`turn_allocation`] into a [`Merging`],
    /// with those of `analysis.allocations`); None: made here from
    /// `analysis.allocations`.
    pub turn: Option<&'a [Finding]>,
}

fn frames(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v.dedup();
    v.truncate(MAX_EVIDENCE);
    v
}

fn frame_filter(f: &[u64]) -> String {
    match f {
        [] => String::new(),
        [one] => format!("frame.number == {one}"),
        many => format!(
            "frame.number in {{{}}}",
            many.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Private (RFC 1918), shared (RFC 6598 CGNAT), link-local or ULA: a relayed
/// address there cannot be reached from the Internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private() || v.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v) => {
            (v.segments()[0] & 0xfe00) == 0xfc00 || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Meaning of TURN error codes (RFC 8656 §17, RFC 6062 §6.3, MS-TURN).
fn turn_error_meaning(code: u16) -> &'static str {
    match code {
        400 => "bad request",
        403 => "forbidden: the server's policy refuses this peer or request (denied peer range or permission)",
        420 => "unknown mandatory attribute",
        437 => "allocation mismatch: an Allocate on a 5-tuple that already has one, or a request for an allocation the server no longer has",
        440 => "address family not supported by the server",
        441 => "wrong credentials: the request used other credentials than the allocation",
        442 => "unsupported transport protocol",
        443 => "peer address family mismatch",
        446 => "connection already exists (RFC 6062)",
        447 => "connection timeout or failure (RFC 6062): the relay could not reach the peer",
        486 => "allocation quota reached for this user",
        487 => "role conflict (ICE)",
        500 => "server error",
        508 => "insufficient capacity: the server has no relay ports left",
        _ => "rejected",
    }
}

fn turn(inp: &Inputs<'_>, o: &Options, out: &mut Vec<Finding>) {
    match inp.turn {
        Some(merged) => out.extend(merged.iter().cloned()),
        None => {
            for al in &inp.analysis.allocations {
                turn_allocation(al, o, out);
            }
        }
    }
}

/// The findings of one TURN allocation (ungrouped: [`findings`] or a
/// [`Merging`] merges them with the same problem elsewhere).
pub fn turn_allocation(al: &Allocation, o: &Options, out: &mut Vec<Finding>) {
    // Made only for an allocation that has a finding: most have none, and a
    // report of the 1 GiB bench capture spent 60 M instructions formatting
    // these for its 12,096 allocations, on the serial tail of the run.
    let filter =
        LazyCell::new(|| crate::model::stream_filter(al.l4, al.stream, &al.client, &al.server));
    let stream = LazyCell::new(|| format!("{} {}", al.l4.name(), al.stream));
    let addrs = LazyCell::new(|| vec![al.client.to_string(), al.server.to_string()]);
    for issue in &al.issues {
        let (id, severity, hint): (&'static str, Severity, Option<&'static str>) = match issue.kind {
            "auth-loop" => (
                "turn.auth-loop",
                Severity::Error,
                Some("The TURN credentials are refused. On an Edge they come from MRAS (the SERVICE 200 OK): check that the client got fresh credentials, that the A/V authentication certificate is the same on every Edge of the pool, and that clocks agree."),
            ),
            "stale-nonce" => (
                "turn.stale-nonce-loop",
                Severity::Warning,
                Some("The server keeps expiring the nonce; a client that never adopts the new NONCE loops. Compare the NONCE in each 438 with the next request's."),
            ),
            "no-answer" => (
                "turn.no-answer",
                Severity::Error,
                Some("Nothing answered the Allocate: a firewall drops UDP/TCP 3478 or TCP 443 to the Edge's A/V external address, or the A/V Edge service is not listening there."),
            ),
            "connectionbind-failed" => (
                "turn.connectionbind-failed",
                Severity::Error,
                Some("The data connection for an RFC 6062 TCP relay was refused; check the CONNECTION-ID and that the data connection goes to the same server address."),
            ),
            "connection-never-bound" => (
                "turn.connection-never-bound",
                Severity::Warning,
                Some("The server announced a peer connection (Connect success or ConnectionAttempt) but no ConnectionBind followed within the capture; the client may not open data connections, or a firewall blocks them."),
            ),
            _ => ("turn.request-rejected", Severity::Error, None),
        };
        let summary = match (issue.kind, issue.code) {
            ("error", Some(code)) => format!(
                "TURN allocation of {} at {}: {} — {}",
                al.client,
                al.server,
                issue.text,
                turn_error_meaning(code)
            ),
            _ => format!(
                "TURN allocation of {} at {}: {}",
                al.client, al.server, issue.text
            ),
        };
        out.push(Finding {
            count: 1,
            group: format!("{}|{:?}|{}", al.server, issue.code, issue.kind),
            id,
            severity,
            summary,
            frames: frames(issue.frames.clone()),
            streams: vec![(*stream).clone()],
            addresses: (*addrs).clone(),
            filter: format!("({}) && stun", *filter),
            hint,
        });
    }
    if let Some(relayed) = al.relayed {
        // both findings point at the Allocate success that handed it out
        let success: Vec<u64> = al.success_frame.into_iter().collect();
        let relay_finding = |id, severity, summary, hint| Finding {
            count: 1,
            group: relayed.ip().to_string(),
            id,
            severity,
            summary,
            frames: frames(success.clone()),
            streams: vec![(*stream).clone()],
            addresses: vec![Endpoint::from(relayed).to_string()],
            filter: frame_filter(&success),
            hint: Some(hint),
        };
        if is_private(relayed.ip()) {
            out.push(relay_finding(
                "turn.relay-private",
                Severity::Warning,
                format!(
                    "TURN server {} handed out the relayed address {} in a private range: peers on the Internet cannot reach it",
                    al.server,
                    Endpoint::from(relayed)
                ),
                "An A/V Edge external interface behind NAT must advertise its public address (\"external IP address of the A/V Edge service is translated by NAT\" in Topology Builder); otherwise the relay candidates are useless outside.",
            ));
        }
        let (lo, hi) = o.relay_ports;
        if !(lo..=hi).contains(&relayed.port()) {
            out.push(relay_finding(
                "turn.relay-port-range",
                Severity::Info,
                format!(
                    "relayed address {} is outside the relay port range {lo}–{hi}",
                    Endpoint::from(relayed)
                ),
                "Firewalls in front of an A/V Edge usually open only 50000–59999; a relay port outside the range firewalls allow will not carry media (set --relay-ports when your range differs).",
            ));
        }
    }
}

fn stun(inp: &Inputs<'_>, out: &mut Vec<Finding>) {
    let seen: Vec<_> = inp
        .analysis
        .stun
        .mapped_mismatch
        .iter()
        .map(|m| (m.frame, m.stream, m.l4, m.plain, m.xored))
        .collect();
    if let Some(&(frame, stream, l4, plain, xored)) = seen.first() {
        out.push(Finding {
                count: 1,
                group: String::new(),
            id: "stun.mapped-mismatch",
            severity: Severity::Warning,
            summary: format!(
                "{} STUN response(s) carry MAPPED-ADDRESS {} but XOR-MAPPED-ADDRESS {}: something on the path rewrote the plain address in the payload",
                seen.len(),
                Endpoint::from(plain),
                Endpoint::from(xored)
            ),
            frames: frames(seen.iter().map(|x| x.0).collect()),
            streams: vec![format!("{} {stream}", l4.name())],
            addresses: vec![Endpoint::from(plain).to_string(), Endpoint::from(xored).to_string()],
            filter: format!("frame.number == {frame}"),
            hint: Some("A NAT or firewall with a STUN/SIP \"fixup\" (ALG) rewrites addresses it finds in payloads; XOR-MAPPED-ADDRESS exists to survive that. Disable the ALG for TURN traffic."),
        });
    }
}

/// The findings of one ICE session (`s` its output, `a` the session it was
/// made from: evidence frames come from its checks, which a report's
/// sessions do not list, one line per check of a long capture).  Each has
/// a group: a [`Merging`] or [`findings`] merges alike ones of many calls.
pub fn ice_session(s: &SessionOut, a: &Session, out: &mut Vec<Finding>) {
    // made only for a session with a finding
    let label = LazyCell::new(|| {
        format!(
            "ICE session {}{}",
            s.ufrags.join("/"),
            s.call_id
                .as_deref()
                .map(|c| format!(" (Call-ID {c})"))
                .unwrap_or_default()
        )
    });
    for p in s
        .pairs
        .iter()
        .filter(|p| p.verdict == crate::analyze::ice::Verdict::OneWay)
    {
        let pair = &a.pairs[p.index];
        let fr: Vec<u64> = pair
            .a_to_b
            .checks
            .iter()
            .chain(&pair.b_to_a.checks)
            .map(|&c| a.checks[c].frame)
            .collect();
        // one-way pairs of many calls are one problem (a firewall):
        // merged per severity, the first session speaking for all
        let severity = if s.nominated.is_some() {
            Severity::Warning
        } else {
            Severity::Error
        };
        out.push(Finding {
            count: 1,
            group: severity.name().to_string(),
            id: "ice.one-way",
            // another pair carrying the call makes it a warning
            severity,
            summary: format!("{}: {}", *label, p.detail),
            frames: frames(fr),
            streams: p.carried_by.clone(),
            addresses: vec![p.a.to_string(), p.b.to_string()],
            filter: p.filter.clone(),
            hint: Some("Checks that arrive but whose reverse checks never do point at a firewall that allows the traffic in one direction only (or only as replies). Open UDP both ways between the candidates, or rely on the relay (3478 UDP / 443 TCP to the Edge)."),
        });
    }
    if s.nominated.is_none() {
        let severity = if s.outcome == "connected" {
            Severity::Warning
        } else {
            Severity::Error
        };
        let fr: Vec<u64> = a.checks.iter().map(|c| c.frame).collect();
        out.push(Finding {
            count: 1,
            group: severity.name().to_string(),
            id: "ice.no-nomination",
            severity,
            summary: format!("{}: no candidate pair was nominated ({})", *label, s.detail),
            frames: frames(fr),
            streams: s.pairs.iter().flat_map(|p| p.carried_by.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
            addresses: s.pairs.iter().flat_map(|p| [p.a.to_string(), p.b.to_string()]).collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
            filter: s.filter.clone(),
            hint: Some("Without a nominated pair no media flows. Look at the pairs' verdicts: failed pairs everywhere mean no path at all (relay not reachable either); one-way pairs mean a firewall."),
        });
    }
    if !s.unchecked_candidates.is_empty() {
        out.push(Finding {
            count: 1,
            group: "unchecked".to_string(),
            id: "ice.unchecked-candidates",
            severity: Severity::Info,
            summary: format!(
                "{}: {} offered candidate(s) never appear in a check from this vantage point: {}",
                *label,
                s.unchecked_candidates.len(),
                s.unchecked_candidates.join("; ")
            ),
            frames: frames(
                s.sides
                    .iter()
                    .filter_map(|x| x.sdp.as_ref().map(|d| d.frame))
                    .collect(),
            ),
            streams: Vec::new(),
            addresses: Vec::new(),
            filter: s.filter.clone(),
            hint: None,
        });
    }
}

/// The findings of one TLS connection, each with a group (a [`Merging`]
/// or [`findings`] merges the same problem on many connections).
pub fn tls_connection(c: &ConnOut, out: &mut Vec<Finding>) {
    // made only for a connection with a finding (most have none)
    let stream = || vec![format!("tcp {}", c.stream)];
    let addrs = || vec![c.tcp_client.to_string(), c.tcp_server.to_string()];
    let on_8057 = c.tcp_server.port == 8057;
    if on_8057 && c.roles == "normal" {
        out.push(Finding {
            count: 1,
            // every connection to that server alike
            group: c.tcp_server.to_string(),
            id: "tls.8057-normal-direction",
            severity: Severity::Warning,
            summary: format!(
                "on 8057, {} opened TCP and also sent the ClientHello; the Edge ({}) is expected to be the TLS client",
                c.tcp_client, c.tcp_server
            ),
            frames: frames(c.client_hello.as_ref().map(|h| h.frame).into_iter().collect()),
            streams: stream(),
            addresses: addrs(),
            filter: c.filter.clone(),
            hint: Some("Check which box is which: on a healthy 8057 link the Front End connects and the Edge internal interface sends the ClientHello. A normal handshake suggests a proxy or load balancer terminating TLS in between."),
        });
    }
    for cert in c.certificates.iter().filter(|x| x.eku_ok == Some(false)) {
        let client = cert.tls_role == "client";
        let alert = c
            .alerts
            .iter()
            .find(|x| x.level == "fatal")
            .map(|x| {
                format!(
                    "; {} then sent fatal alert {}",
                    x.sender,
                    x.description.unwrap_or("?")
                )
            })
            .unwrap_or_default();
        out.push(Finding {
            count: 1,
            // the same certificate from the same host on every reconnect
            group: format!(
                "{}|{}",
                cert.sender.ip,
                cert.subject.as_deref().unwrap_or_default()
            ),
            id: if client { "tls.client-cert-eku" } else { "tls.server-cert-eku" },
            severity: Severity::Error,
            summary: format!(
                "{} sent {} as TLS {} certificate on stream {}, but {}{alert}",
                cert.sender,
                cert.subject.as_deref().unwrap_or("a certificate"),
                cert.tls_role,
                c.stream,
                cert.eku_verdict.as_deref().unwrap_or("its EKU does not allow that role")
            ),
            frames: frames(vec![cert.frame]),
            streams: stream(),
            addresses: vec![cert.sender.to_string()],
            filter: format!("{} && tls.handshake.type == 11", c.filter),
            hint: Some(if client {
                "A certificate used as TLS client (the Edge on 8057 and 5062, any MTLS peer) needs the Client Authentication EKU (1.3.6.1.5.5.7.3.2). Public CAs stopped adding it in 2025–2026; issue the Edge internal certificate from an internal CA template with both Server and Client Authentication."
            } else {
                "A TLS server certificate needs the Server Authentication EKU (1.3.6.1.5.5.7.3.1)."
            }),
        });
    }
    for al in c.alerts.iter().filter(|x| x.level == "fatal") {
        out.push(Finding {
            count: 1,
            // the same refusal by the same host on every reconnect
            group: format!(
                "{}|{:?}|{:?}",
                al.sender.ip,
                al.sender_tls_role,
                al.code
            ),
            id: "tls.fatal-alert",
            severity: Severity::Error,
            summary: format!(
                "{} ({}) sent fatal alert {} ({}) on stream {}",
                al.sender,
                al.sender_tls_role.map(|r| format!("TLS {r}")).unwrap_or_default(),
                al.description.unwrap_or("?"),
                al.code.unwrap_or(0),
                c.stream
            ),
            frames: vec![al.frame],
            streams: stream(),
            addresses: addrs(),
            filter: format!("{} && tls.alert_message", c.filter),
            hint: match al.code {
                Some(42..=46) => Some("A certificate was rejected: check its EKU, validity, chain and revocation from the rejecting side's point of view."),
                Some(48) => Some("unknown_ca: the peer does not trust the issuing CA; install the root and intermediates on it."),
                Some(40) | Some(70) | Some(71) => Some("No common protocol version or cipher suite: compare the ClientHello's offer with what the server allows (TLS 1.2 enabled on both?)."),
                _ => None,
            },
        });
    }
    if let (Some(idle), Some(by), Some(fr)) = (
        c.health.idle_before_rst_s,
        c.health.rst_by,
        c.health.rst_frame,
    ) {
        if idle >= crate::model::tls::IDLE_RST_NS as f64 / 1e9 {
            out.push(Finding {
            count: 1,
            group: format!("{}|{}", c.tcp_server.port, by == c.tcp_server),
                id: "tls.idle-reset",
                severity: Severity::Warning,
                summary: format!(
                    "stream {} ({} → {}) was reset by {by} after {idle:.1} s of silence ({} retransmission(s) before){}",
                    c.stream,
                    c.tcp_client,
                    c.tcp_server,
                    c.health.retransmissions_before_rst.unwrap_or(0),
                    if on_8057 { " — the 8057 idle-timeout pattern" } else { "" }
                ),
                frames: vec![fr],
                streams: stream(),
                addresses: addrs(),
                filter: c.filter.clone(),
                hint: Some("A firewall or load balancer between the hosts drops idle connections; raise its TCP idle timeout above the application's keep-alive interval (for 8057, well above 20 minutes) or exempt the link."),
            });
        }
    }
}

/// `tls.reconnect-loop`: one finding per Front End → Edge pair on 8057
/// that keeps reconnecting (never merged: each names its pair).
pub fn tls_8057(x: &Section8057, out: &mut Vec<Finding>) {
    for f in x.flags.iter().filter(|f| f.id == "reconnect-loop") {
        out.push(Finding {
            count: 1,
            group: String::new(),
            id: "tls.reconnect-loop",
            severity: Severity::Warning,
            summary: f.detail.clone(),
            frames: Vec::new(),
            streams: vec![format!("tcp {}", f.stream)],
            addresses: Vec::new(),
            filter: f.filter.clone(),
            hint: Some("Repeated reconnects between the same hosts mean the link keeps dying: look at how each connection ended (idle reset, alert, RST after retransmissions)."),
        });
    }
}

/// The `sip.error-response` finding of one message, if it is an error
/// response findings report (not a 401/407 challenge, not the 487 that
/// answers a CANCEL: part of normal life).  Each (Call-ID, status) is
/// reported once: the caller keeps the first.  The report's SIP fold makes
/// these as it goes ([`Merging`]), so error responses are not kept.
pub fn sip_error(m: &MessageOut) -> Option<Finding> {
    let status = m.status?;
    if status < 400 || matches!(status, 401 | 407 | 487) {
        return None;
    }
    let call = m.call_id.clone().unwrap_or_default();
    let diag: Vec<String> = m
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{} {} ({}){}",
                d.header,
                d.code,
                d.component,
                d.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    Some(Finding {
        count: 1,
        group: format!(
            "{status}|{}",
            m.diagnostics
                .iter()
                .map(|d| d.code.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
        id: "sip.error-response",
        severity: if status >= 500 {
            Severity::Error
        } else {
            Severity::Warning
        },
        summary: format!(
            "{} answered {} in dialog {call}{}",
            m.src,
            m.summary,
            if diag.is_empty() {
                String::new()
            } else {
                format!(" — {}", diag.join("; "))
            }
        ),
        frames: vec![m.frame],
        streams: vec![format!("{} {}", m.transport.name(), m.stream)],
        addresses: vec![m.src.to_string(), m.dst.to_string()],
        filter: format!("sip.Call-ID == \"{call}\" && sip.Status-Code == {status}"),
        hint: None,
    })
}

/// The `mras.no-relay` finding of one message, if it is an MRAS answer
/// that names no media relay (or an MRAS error).  The report's SIP fold makes
/// these as it goes, so MRAS messages are not kept.
pub fn mras_no_relay(m: &MessageOut) -> Option<Finding> {
    let x = m.mras.as_ref()?;
    if !(x.kind == "response" && x.relays.is_empty() || x.error.is_some()) {
        return None;
    }
    Some(Finding {
        count: 1,
        group: String::new(),
        id: "mras.no-relay",
        severity: Severity::Error,
        summary: format!(
            "MRAS answer from {} (frame {}) gives no media relay{}: external media has no TURN server",
            m.src,
            m.frame,
            x.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        ),
        frames: vec![m.frame],
        streams: vec![format!("{} {}", m.transport.name(), m.stream)],
        addresses: vec![m.src.to_string()],
        filter: format!("frame.number == {}", m.frame),
        hint: Some("Check the A/V Edge configuration the MRAS service publishes (the A/V Edge pool in the topology, the Edge's internal FQDN) and that the Front End can reach the Edge on 5062."),
    })
}

fn capture(inp: &Inputs<'_>, out: &mut Vec<Finding>) {
    let c = inp.capture;
    if !c.truncated && c.damaged_records == 0 {
        return;
    }
    let mut fr = Vec::new();
    let mut what = Vec::new();
    if let Some(t) = &c.truncation {
        fr.push(t.after_frame);
        what.push(format!(
            "truncated at byte {} after frame {} ({})",
            t.offset, t.after_frame, t.reason
        ));
    }
    if c.damaged_records > 0 {
        fr.extend(c.damage.iter().map(|d| d.after_frame));
        what.push(format!("{} damaged record(s) skipped", c.damaged_records));
    }
    out.push(Finding {
                count: 1,
                group: String::new(),
        id: "capture.damaged",
        severity: Severity::Warning,
        summary: format!("the capture file is damaged: {}; everything readable was analysed", what.join("; ")),
        frames: frames(fr.clone()),
        streams: Vec::new(),
        addresses: Vec::new(),
        filter: frame_filter(&frames(fr)),
        hint: Some("A capture stopped mid-write (disk full, tool killed) or copied incompletely; take a new one if the problem lies after the cut."),
    });
}

/// The flow table filled up: packets of later flows were counted, not analysed.
fn flow_table_full(inp: &Inputs<'_>, out: &mut Vec<Finding>) {
    let flows = &inp.analysis.run.flows;
    let u = flows.untracked;
    let Some(first) = u.first_frame else { return };
    out.push(Finding {
        count: 1,
        group: String::new(),
        id: "capture.flow-table-full",
        severity: Severity::Warning,
        summary: format!(
            "more than {} TCP/UDP flows: {} frame(s) ({} bytes) of further flows, the first in frame {first}, were counted but not analysed",
            flows.limit(),
            u.packets,
            u.bytes
        ),
        frames: vec![first],
        streams: Vec::new(),
        addresses: Vec::new(),
        filter: format!("frame.number >= {first}"),
        hint: Some("A scan or flood makes millions of tiny flows. Filter the capture to the Edge traffic (e.g. editcap or tshark -Y) or raise --max-flows (about 500 bytes of memory per flow)."),
    });
}

/// Findings merged as they are made, for a producer that must not keep
/// what each stands for (the report's SIP fold meets one error response per
/// dialog and status, and a capture may hold hundreds of thousands).  The
/// result is what [`findings`] makes of the same findings: per id and group,
/// the occurrence with the first frame speaks for all, `count` counts them,
/// and the evidence is the first [`MAX_EVIDENCE`] frames, streams and
/// addresses in frame order.  Memory is bounded by the groups.
#[derive(Debug, Default)]
pub struct Merging {
    groups: std::collections::HashMap<(&'static str, String), Merged>,
}

#[derive(Debug)]
struct Merged {
    first: Finding,
    count: usize,
    frames: std::collections::BTreeSet<u64>,
    streams: FirstSeen,
    addresses: FirstSeen,
}

/// The [`MAX_EVIDENCE`] values first seen in the order [`findings`] sorts
/// (first frame, words) and then by position in their finding; a value
/// dropped can only come back earlier.  (Two findings of one group never
/// share frame and words: the words name the dialog, and a dialog's status
/// is reported once.)
#[derive(Debug, Default)]
struct FirstSeen(std::collections::HashMap<String, (u64, String, usize)>);

impl FirstSeen {
    fn add(&mut self, frame: u64, summary: &str, values: &[String]) {
        for (pos, v) in values.iter().enumerate() {
            let key = (frame, summary.to_string(), pos);
            match self.0.get_mut(v) {
                Some(k) if key < *k => *k = key,
                Some(_) => {}
                None => {
                    self.0.insert(v.clone(), key);
                }
            }
            if self.0.len() > MAX_EVIDENCE {
                let last = self
                    .0
                    .iter()
                    .max_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)))
                    .map(|(v, _)| v.clone());
                if let Some(v) = last {
                    self.0.remove(&v);
                }
            }
        }
    }

    /// The representative's own values as they are, then the others in
    /// the order first seen, up to [`MAX_EVIDENCE`] (as [`findings`] merges).
    fn after(self, first: &[String]) -> Vec<String> {
        let mut v: Vec<(String, (u64, String, usize))> = self.0.into_iter().collect();
        v.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        let mut out = first.to_vec();
        for (x, _) in v {
            if out.len() < MAX_EVIDENCE && !out.contains(&x) {
                out.push(x);
            }
        }
        out
    }
}

impl Merging {
    /// One more finding, with one frame of evidence and a group (findings
    /// with the same id and group merge).
    pub fn add(&mut self, f: Finding) {
        let frame = f.frames.first().copied().unwrap_or(0);
        let key = (f.id, f.group.clone());
        match self.groups.get_mut(&key) {
            Some(m) => {
                m.count += 1;
                m.frames.extend(f.frames.iter().copied());
                while m.frames.len() > MAX_EVIDENCE {
                    m.frames.pop_last();
                }
                m.streams.add(frame, &f.summary, &f.streams);
                m.addresses.add(frame, &f.summary, &f.addresses);
                let earlier = (frame, &f.summary)
                    < (
                        m.first.frames.first().copied().unwrap_or(0),
                        &m.first.summary,
                    );
                if earlier {
                    m.first = f;
                }
            }
            None => {
                let mut streams = FirstSeen::default();
                streams.add(frame, &f.summary, &f.streams);
                let mut addresses = FirstSeen::default();
                addresses.add(frame, &f.summary, &f.addresses);
                let frames = f.frames.iter().copied().collect();
                self.groups.insert(
                    key,
                    Merged {
                        first: f,
                        count: 1,
                        frames,
                        streams,
                        addresses,
                    },
                );
            }
        }
    }

    /// The merged findings, in no particular order ([`findings`] sorts).
    pub fn finish(self) -> Vec<Finding> {
        self.groups
            .into_values()
            .map(|m| Finding {
                count: m.count,
                frames: m.frames.into_iter().collect(),
                streams: m.streams.after(&m.first.streams),
                addresses: m.addresses.after(&m.first.addresses),
                ..m.first
            })
            .collect()
    }
}

/// Every finding, worst first, then by first frame and id.  The same
/// problem on many allocations, connections or dialogs (same id and group)
/// becomes one finding with a `count`, the first occurrence's words and the
/// evidence of all of them (capped at [`MAX_EVIDENCE`]).
pub fn findings(inp: &Inputs<'_>, o: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    capture(inp, &mut out);
    flow_table_full(inp, &mut out);
    turn(inp, o, &mut out);
    stun(inp, &mut out);
    out.extend(inp.ice.iter().cloned());
    out.extend(inp.tls.iter().cloned());
    out.extend(inp.sip.iter().cloned());
    merge(out)
}

/// Sorts findings worst first, then by first frame, id and words, and
/// merges those with the same id and group.
fn merge(mut out: Vec<Finding>) -> Vec<Finding> {
    let order = |x: &Finding, y: &Finding| {
        (x.severity, x.frames.first(), x.id, &x.summary).cmp(&(
            y.severity,
            y.frames.first(),
            y.id,
            &y.summary,
        ))
    };
    out.sort_by(order);
    let mut merged: Vec<Finding> = Vec::with_capacity(out.len());
    let mut index: std::collections::HashMap<(&'static str, String), usize> = Default::default();
    for f in out {
        if f.group.is_empty() {
            merged.push(f);
            continue;
        }
        match index.get(&(f.id, f.group.clone())) {
            Some(&i) => {
                let m = &mut merged[i];
                m.count += f.count;
                m.frames = frames(m.frames.iter().chain(&f.frames).copied().collect());
                for x in f.streams {
                    if m.streams.len() < MAX_EVIDENCE && !m.streams.contains(&x) {
                        m.streams.push(x);
                    }
                }
                for x in f.addresses {
                    if m.addresses.len() < MAX_EVIDENCE && !m.addresses.contains(&x) {
                        m.addresses.push(x);
                    }
                }
            }
            None => {
                index.insert((f.id, f.group.clone()), merged.len());
                merged.push(f);
            }
        }
    }
    for m in merged.iter_mut().filter(|m| m.count > 1) {
        m.summary
            .push_str(&format!(" (and {} more like it)", m.count - 1));
        // one flow's filter no longer covers the evidence: name the frames
        m.filter = frame_filter(&m.frames);
    }
    merged.sort_by(order);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in [
            "52.112.0.1",
            "8.8.8.8",
            "100.128.0.1",
            "2001:db8::1",
            "127.0.0.1",
        ] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }

    #[test]
    fn severity_orders_worst_first() {
        assert!(Severity::Error < Severity::Warning && Severity::Warning < Severity::Info);
    }

    proptest::proptest! {
        /// Merging as findings are made gives what merging them all at the
        /// end gives: same representative, count and evidence.
        #[test]
        fn merging_as_made_is_merging_at_the_end(
            items in proptest::collection::vec((0u64..400, 0u8..3, 0u8..30, 0u8..30, 0u64..40), 1..120)
        ) {
            // the words name the dialog: never the same for two findings;
            // some have more than one frame (a TURN 401 loop lists each 401)
            let make = |(i, (frame, group, stream, addr, more)): (usize, (u64, u8, u8, u8, u64))| Finding {
                id: "sip.error-response",
                severity: Severity::Warning,
                summary: format!("answered in dialog {}", (i * 37) % 1009),
                frames: frames((0..more % 4 + 1).map(|k| frame + k * more).collect()),
                streams: vec![format!("udp {stream}")],
                addresses: vec![format!("10.0.0.{addr}:5060"), format!("10.0.1.{}:5060", addr / 2)],
                filter: format!("frame.number == {frame}"),
                hint: None,
                count: 1,
                group: format!("48{group}|"),
            };
            let all: Vec<Finding> = items.iter().copied().enumerate().map(make).collect();
            let mut m = Merging::default();
            for f in all.clone() {
                m.add(f);
            }
            let key = |v: Vec<Finding>| {
                v.into_iter()
                    .map(|f| (f.summary, f.frames, f.streams, f.addresses, f.filter, f.count, f.group))
                    .collect::<Vec<_>>()
            };
            proptest::prop_assert_eq!(key(merge(all)), key(merge(m.finish())));
        }
    }

    #[test]
    fn frame_filters() {
        assert_eq!(frame_filter(&[3]), "frame.number == 3");
        assert_eq!(frame_filter(&[3, 9]), "frame.number in {3 9}");
    }
}
