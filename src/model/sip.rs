//! Output model of `edgetrace sip`: the message timeline and the dialogs
//! (ladder, route set, hop chain).  Only chosen headers are output, so
//! Authorization and other credentials never appear; long routing
//! signatures (`ms-route-sig`, `ms-key-info`, `opaque`) are shortened.

use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde::Serialize;

use super::{CaptureSummary, Meta, Redaction, SCHEMA_VERSION};
use crate::analyze::sip::{Core, Found};
use crate::flow::{Endpoint, L4};
use crate::pipeline::RunResult;
use crate::proto::mras::{self, Mras};
use crate::proto::sdp::{self, Candidate, CandidateForm, Media};
use crate::proto::sip::{parse_params, StartLine, ViaRef};
use crate::roles::Roles;

/// A Via hop as output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ViaOut {
    /// The value as on the wire (signatures shortened).
    pub raw: String,
    /// UDP, TCP, TLS…
    pub transport: String,
    /// `host[:port]`.
    pub sent_by: String,
    /// `received` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// `rport` parameter ("" when present without a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rport: Option<String>,
    /// `branch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// MS `ms-received-port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_received_port: Option<String>,
    /// MS `ms-received-cid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_received_cid: Option<String>,
}

/// `ms-diagnostics` / `ms-diagnostics-public` / `ms-client-diagnostics`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Diagnostics {
    /// Which header.
    pub header: String,
    /// ErrorId (with `.sub` when present).
    pub code: String,
    /// `reason`.
    pub reason: Option<String>,
    /// `source`.
    pub source: Option<String>,
    /// What the ErrorId range means (OCS/Lync documentation).
    pub component: &'static str,
    /// Other `name="value"` fields.
    pub fields: BTreeMap<String, String>,
}

/// One ICE candidate as output (draft-6 passwords redacted).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CandidateOut {
    /// Attribute it came from (`candidate`, `x-candidate-ipv6`).
    pub attr: String,
    /// `rfc5245` or `draft6`.
    pub form: CandidateForm,
    /// Foundation (draft 6: the candidate's base64 username).
    pub foundation: String,
    /// Component (1 RTP, 2 RTCP).
    pub component: u16,
    /// Transport token as written (`UDP`, `TCP-ACT`, `TCP-PASS`, `tcp`).
    pub transport: String,
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// `active`, `passive`, `so` (TCP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_type: Option<String>,
    /// Priority (draft 6: qvalue × 1000).
    pub priority: u32,
    /// `address:port` (`[v6]:port`).
    pub address: String,
    /// host / srflx / prflx / relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// `raddr:rport`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
    /// Draft-6 password (redacted unless --show-secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Other extension pairs (`generation 0`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<(String, String)>,
}

impl CandidateOut {
    fn new(c: &Candidate, r: Redaction) -> CandidateOut {
        CandidateOut {
            attr: c.attr.clone(),
            form: c.form,
            foundation: c.foundation.clone(),
            component: c.component,
            transport: c.transport.clone(),
            protocol: c.protocol,
            tcp_type: c.tcp_type.clone(),
            priority: c.priority,
            address: c.address_port(),
            typ: c.typ.clone(),
            related: c
                .raddr
                .as_ref()
                .map(|a| sdp::host_port(a, c.rport.unwrap_or(0))),
            password: c.password.as_deref().map(|p| r.secret(p)),
            extensions: c.extensions.clone(),
        }
    }
}

/// One SDP media section as output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MediaOut {
    /// audio, video, applicationsharing, data…
    pub kind: String,
    /// m-line port.
    pub port: u16,
    /// m-line profile (`RTP/SAVP`, `TCP/RTP/AVP`…).
    pub profile: String,
    /// Formats (payload types).
    pub formats: Vec<String>,
    /// Effective `c=` (media, else session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// `a=label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Direction attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// `a=ice-ufrag` (media, else session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd`, redacted unless --show-secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice_pwd: Option<String>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `a=crypto` / `a=cryptoscale` with the key material redacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crypto: Vec<String>,
    /// Candidates in order.
    pub candidates: Vec<CandidateOut>,
}

/// Redacts the `inline:` key material of a crypto line (RFC 4568 §9.2).
fn redact_crypto(line: &str, r: Redaction) -> String {
    if r.show_secrets {
        return line.to_string();
    }
    line.split(' ')
        .map(|tok| match tok.strip_prefix("inline:") {
            Some(rest) => {
                let (key, tail) = rest.split_once('|').unwrap_or((rest, ""));
                let tail = if tail.is_empty() {
                    String::new()
                } else {
                    format!("|{tail}")
                };
                format!("inline:{}{tail}", r.secret(key))
            }
            None => tok.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl MediaOut {
    fn new(m: &Media, r: Redaction) -> MediaOut {
        MediaOut {
            kind: m.kind.clone(),
            port: m.port,
            profile: m.profile.clone(),
            formats: m.formats.clone(),
            connection: m.connection.clone(),
            label: m.label.clone(),
            direction: m.direction.clone(),
            ice_ufrag: m.ice_ufrag.clone(),
            ice_pwd: m.ice_pwd.as_deref().map(|p| r.secret(p)),
            rtcp_mux: m.rtcp_mux,
            crypto: m.crypto.iter().map(|c| redact_crypto(c, r)).collect(),
            candidates: m
                .candidates
                .iter()
                .map(|c| CandidateOut::new(c, r))
                .collect(),
        }
    }
}

/// One SDP body (a multipart body gives one per SDP part).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SdpOut {
    /// The `ms-proxy-2007fallback` (draft-6) part of a multipart/alternative body.
    pub fallback_2007: bool,
    /// `o=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Media sections.
    pub media: Vec<MediaOut>,
    /// Lines that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One relay of an MRAS response.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RelayOut {
    /// internet / intranet.
    pub location: Option<String>,
    /// Host name or direct IP address.
    pub host: Option<String>,
    /// UDP port.
    pub udp_port: Option<u16>,
    /// TCP port.
    pub tcp_port: Option<u16>,
}

/// A decoded MRAS body.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MrasOut {
    /// request or response.
    pub kind: &'static str,
    /// `requestID`.
    pub request_id: Option<String>,
    /// Request: `<identity>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Request: `<location>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Duration asked for (request) or granted (response), minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Response: `reasonPhrase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Response: a username was issued (shown unless --redact-usernames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Response: the password, redacted unless --show-secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Response: relays in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<RelayOut>,
    /// Why the body could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn mras_out(body: &[u8], r: Redaction) -> MrasOut {
    let mut o = MrasOut {
        kind: "unknown",
        request_id: None,
        identity: None,
        location: None,
        duration: None,
        reason: None,
        username: None,
        password: None,
        relays: Vec::new(),
        error: None,
    };
    match mras::parse(body) {
        Ok(Mras::Request {
            request_id,
            identity,
            location,
            duration,
        }) => {
            o.kind = "request";
            o.request_id = request_id;
            o.identity = identity;
            o.location = location;
            o.duration = duration;
        }
        Ok(Mras::Response {
            request_id,
            reason,
            credentials,
            relays,
        }) => {
            o.kind = "response";
            o.request_id = request_id;
            o.reason = reason;
            if let Some(c) = credentials {
                o.username = c.username.as_deref().map(|u| r.username(u));
                o.password = c.password.as_deref().map(|p| r.secret(p));
                o.duration = c.duration;
            }
            o.relays = relays
                .into_iter()
                .map(|x| RelayOut {
                    location: x.location,
                    host: x.host_name.or(x.direct_ip),
                    udp_port: x.udp_port,
                    tcp_port: x.tcp_port,
                })
                .collect();
        }
        Err(e) => o.error = Some(e),
    }
    o
}

/// One SIP message.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MessageOut {
    /// First frame.
    pub frame: u64,
    /// Last frame when the message spans TCP segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_frame: Option<u64>,
    /// Seconds since the first frame.
    pub time_s: f64,
    /// udp or tcp.
    pub transport: L4,
    /// Stream index.
    pub stream: u32,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// `INVITE sip:bob@lab.example` or `200 OK`.
    pub summary: String,
    /// Request method, or the CSeq method for responses.
    pub method: Option<String>,
    /// Request-URI (requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    /// Status (responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Call-ID.
    pub call_id: Option<String>,
    /// CSeq.
    pub cseq: Option<String>,
    /// From.
    pub from: Option<String>,
    /// To.
    pub to: Option<String>,
    /// Via list, top first.
    pub via: Vec<ViaOut>,
    /// Record-Route list in order.
    pub record_route: Vec<String>,
    /// Route list in order.
    pub route: Vec<String>,
    /// Contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// User-Agent or Server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Content-Type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Body bytes.
    pub body_length: usize,
    /// Diagnostics headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostics>,
    /// SDP bodies (one, or one per part of a multipart body).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sdp: Vec<SdpOut>,
    /// MRAS body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mras: Option<MrasOut>,
    /// Role of the sender (from --roles or the built-in ranges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_role: Option<String>,
    /// Role of the receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_role: Option<String>,
    /// Parsing problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One step of a dialog's ladder.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LadderStep {
    /// Frame.
    pub frame: u64,
    /// Seconds since the dialog's first message.
    pub at_s: f64,
    /// Sender → receiver.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Summary line.
    pub summary: String,
}

/// The SDP a dialog carried, one entry per media section of each distinct
/// offer or answer: the candidate list the ICE analyzer correlates with
/// STUN checks.  Copies of one body relayed by proxies are listed once (the
/// first copy, as the sender sent it).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DialogMedia {
    /// Frame of the message that first carried this SDP.
    pub frame: u64,
    /// `offer` (a request other than ACK) or `answer` (a response or ACK).
    pub side: &'static str,
    /// Sender of that message.
    pub sender: Endpoint,
    /// The draft-6 fallback part of a multipart body.
    pub fallback_2007: bool,
    /// The media section.
    pub media: MediaOut,
}

/// A dialog (all messages of one Call-ID).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DialogOut {
    /// Call-ID.
    pub call_id: String,
    /// Method of the first request.
    pub method: Option<String>,
    /// From of the first request.
    pub from: Option<String>,
    /// To of the first request.
    pub to: Option<String>,
    /// First frame.
    pub first_frame: u64,
    /// Final status of the first request (as first seen).
    pub final_status: Option<String>,
    /// Seconds from the first request to the first provisional ≥ 180.
    pub ringing_s: Option<f64>,
    /// Seconds from the first request to its final response.
    pub final_s: Option<f64>,
    /// Route set (Record-Route of the answer, or of the request with the most entries).
    pub route_set: Vec<String>,
    /// The path of the first request read bottom-up from its longest Via list.
    pub hop_chain: Vec<String>,
    /// Diagnostics seen in the dialog.
    pub diagnostics: Vec<Diagnostics>,
    /// Media sections and candidates of each offer and answer.
    pub media: Vec<DialogMedia>,
    /// The messages in order.
    pub ladder: Vec<LadderStep>,
    /// Ladder steps left out (`report` shows the first [`REPORT_LADDER_STEPS`]).
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub ladder_omitted: u64,
}

/// Counts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SipSummary {
    /// Messages.
    pub messages: usize,
    /// Requests by method.
    pub requests: BTreeMap<String, u64>,
    /// Responses by status.
    pub responses: BTreeMap<String, u64>,
    /// Dialogs (Call-IDs).
    pub dialogs: usize,
    /// Framing problems (junk, impossible lengths, gaps) with frames.
    pub problems: Vec<String>,
    /// Bytes of CRLF keep-alives between messages on TCP (RFC 5626; not junk).
    pub keepalive_bytes: u64,
}

/// `edgetrace sip --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SipReport {
    /// Schema version.
    pub schema_version: u32,
    /// Volatile fields.
    pub meta: Meta,
    /// The capture.
    pub capture: CaptureSummary,
    /// Counts.
    pub summary: SipSummary,
    /// Messages in frame order.
    pub messages: Vec<MessageOut>,
    /// Dialogs by first frame.
    pub dialogs: Vec<DialogOut>,
}

/// `edgetrace sip --json` written without holding every message's output:
/// the same JSON as [`SipReport`] (same fields in the same order), each
/// message turned into output as it is written.
#[derive(Serialize)]
pub struct SipReportStream<'a, M> {
    schema_version: u32,
    meta: &'a Meta,
    capture: &'a CaptureSummary,
    summary: &'a SipSummary,
    messages: M,
    dialogs: &'a [DialogOut],
}

/// Shortens long MS routing signatures so output stays readable.
pub fn shorten(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, part) in v.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        match part.split_once('=') {
            Some((k, val))
                if ["ms-route-sig", "ms-key-info", "opaque"].contains(&k.trim())
                    && val.len() > 24 =>
            {
                out.push_str(&format!(
                    "{k}={}…({} chars)",
                    &val[..val.char_indices().nth(12).map(|x| x.0).unwrap_or(val.len())],
                    val.len()
                ));
            }
            _ => out.push_str(part),
        }
    }
    out
}

fn component(header: &str, code: &str) -> &'static str {
    if header.eq_ignore_ascii_case("ms-client-diagnostics") {
        // client-reported codes (e.g. 51004 "Action initiated by user",
        // 52xxx media failures) have their own numbering
        return "client";
    }
    let n: u32 = code
        .split('.')
        .next()
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0);
    match n {
        0..=999 => "common",
        1000..=1999 => "SIP stack",
        2000..=2999 => "presence",
        3000..=3999 => "conferencing focus",
        4000..=4999 => "user services",
        5000..=5999 => "API applications",
        6000..=6999 => "IM conferencing",
        7000..=7999 => "A/V conferencing",
        8000..=8999 => "telephony conferencing",
        9000..=9999 => "MRAS",
        10000..=10999 => "Mediation Server",
        11000..=11999 => "metrics",
        12000..=12999 => "outbound routing",
        13000..=13999 => "inbound routing",
        14000..=14999 => "dial plan",
        15000..=15999 => "Exchange UM",
        16000..=16999 => "IM filter",
        17000..=17999 => "client version filter",
        _ => "other",
    }
}

/// Parses `code[.sub];reason="…";source="…";name="value"`.
pub fn diagnostics(header: &str, v: &str) -> Diagnostics {
    let (code, rest) = match v.find(';') {
        Some(i) => (v[..i].trim(), &v[i..]),
        None => (v.trim(), ""),
    };
    let mut fields = BTreeMap::new();
    let (mut reason, mut source) = (None, None);
    for (k, val) in parse_params(rest) {
        let val = val.unwrap_or_default();
        match k.to_ascii_lowercase().as_str() {
            "reason" => reason = Some(val),
            "source" => source = Some(val),
            _ => {
                fields.insert(k, val);
            }
        }
    }
    Diagnostics {
        header: header.to_string(),
        code: code.to_string(),
        reason,
        source,
        component: component(header, code),
        fields,
    }
}

fn via_out(v: &ViaRef<'_>) -> ViaOut {
    const KEYS: [&str; 5] = [
        "received",
        "rport",
        "branch",
        "ms-received-port",
        "ms-received-cid",
    ];
    // one pass over the parameters; the first of each name counts
    let mut found: [Option<&str>; 5] = [None; 5];
    v.params(|n, val| {
        if let Some(i) = KEYS.iter().position(|k| k.eq_ignore_ascii_case(n)) {
            found[i].get_or_insert(val);
        }
    });
    let [received, rport, branch, ms_received_port, ms_received_cid] =
        found.map(|x| x.map(str::to_string));
    ViaOut {
        raw: shorten(v.raw),
        transport: v.transport.to_ascii_uppercase(),
        sent_by: v.sent_by.to_string(),
        received,
        rport,
        branch,
        ms_received_port,
        ms_received_cid,
    }
}

fn message_out(f: &Found, t0: i64, r: Redaction, roles: &Roles) -> MessageOut {
    message_out_with(f, t0, r, roles, Detail::Full, Hops::ALL)
}

/// Which of a message's hop lists to make: parsing and shortening Via and
/// Record-Route is most of what a message's output costs (callgrind: 145 of
/// 227 M instructions for the 10,688 messages of the 200 MB bench capture),
/// and a dialog's summary reads them of few messages ([`DialogAcc::hops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hops {
    via: bool,
    record_route: bool,
}

impl Hops {
    const ALL: Hops = Hops {
        via: true,
        record_route: true,
    };
    /// What findings read of a message: neither.
    const NONE: Hops = Hops {
        via: false,
        record_route: false,
    };
}

/// How much of a message's output to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Everything (`edgetrace sip`).
    Full,
    /// What dialogs and findings read (`report`): no Route, Contact, agent,
    /// Content-Type, roles or parse problems.
    Dialog,
    /// As `Dialog`, and no SDP: the dialog already read an identical body.
    DialogSeenBody,
}

/// A message's output, as detailed as `detail` says, with the hop lists
/// `hops` asks for (the others empty).
fn message_out_with(
    f: &Found,
    t0: i64,
    r: Redaction,
    roles: &Roles,
    detail: Detail,
    hops: Hops,
) -> MessageOut {
    let full = detail == Detail::Full;
    let with_sdp = detail != Detail::DialogSeenBody;
    let m = &f.msg;
    let ctype = m.header("Content-Type");
    let body: &[u8] = if with_sdp { &m.body } else { &[] };
    let sdp = sdp::from_body(ctype, body)
        .iter()
        .map(|p| SdpOut {
            fallback_2007: p.fallback_2007,
            origin: p.sdp.origin.clone(),
            media: p.sdp.media.iter().map(|x| MediaOut::new(x, r)).collect(),
            problems: p.sdp.problems.clone(),
        })
        .collect();
    let mras = mras::is_mras(ctype).then(|| mras_out(&m.body, r));
    let (request_uri, status) = match &m.start {
        StartLine::Request { uri, .. } => (Some(uri.clone()), None),
        StartLine::Response { code, .. } => (None, Some(*code)),
    };
    let diags = [
        "ms-diagnostics",
        "ms-diagnostics-public",
        "ms-client-diagnostics",
    ]
    .iter()
    .flat_map(|h| m.values(h).into_iter().map(move |v| diagnostics(h, &v)))
    .collect();
    MessageOut {
        frame: f.frame,
        end_frame: (f.end_frame != f.frame).then_some(f.end_frame),
        time_s: crate::timefmt::seconds(f.ts_ns - t0),
        transport: f.l4,
        stream: f.stream,
        src: f.src,
        dst: f.dst,
        summary: m.summary(),
        method: m.method(),
        request_uri,
        status,
        call_id: m.call_id().map(str::to_string),
        cseq: m.header("CSeq").map(str::to_string),
        from: m.header("From").map(str::to_string),
        to: m.header("To").map(str::to_string),
        via: if hops.via {
            m.via_refs().iter().map(via_out).collect()
        } else {
            Vec::new()
        },
        record_route: if hops.record_route {
            m.values("Record-Route")
                .iter()
                .map(|s| shorten(s))
                .collect()
        } else {
            Vec::new()
        },
        route: if full {
            m.values("Route").iter().map(|s| shorten(s)).collect()
        } else {
            Vec::new()
        },
        contact: m.header("Contact").filter(|_| full).map(shorten),
        agent: m
            .header("User-Agent")
            .or(m.header("Server"))
            .filter(|_| full)
            .map(str::to_string),
        content_type: m
            .header("Content-Type")
            .filter(|_| full)
            .map(str::to_string),
        body_length: m.body_length(),
        diagnostics: diags,
        sdp,
        mras,
        src_role: roles.label(f.src.ip).filter(|_| full).map(str::to_string),
        dst_role: roles.label(f.dst.ip).filter(|_| full).map(str::to_string),
        problems: if full { m.problems.clone() } else { Vec::new() },
    }
}

/// `role host` when the host has a role, else `host`.
fn with_role(host: &str, roles: &Roles) -> String {
    match host.parse().ok().and_then(|ip| roles.label(ip)) {
        Some(role) => format!("{role} {host}"),
        None => host.to_string(),
    }
}

/// The host of a Via sent-by (`[v6]:port`, `v4:port`, `name`).
fn via_host(sent_by: &str) -> &str {
    if let Some(rest) = sent_by.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match sent_by.matches(':').count() {
        1 => sent_by.split(':').next().unwrap_or(sent_by),
        _ => sent_by,
    }
}

/// Reads a Via hop as `[role] host` (+ transport and NAT notes).
fn hop_label(v: &ViaOut, next_transport: Option<&str>, roles: &Roles) -> String {
    let host = via_host(&v.sent_by).to_string();
    let mut s = with_role(&host, roles);
    if let Some(r) = &v.received {
        if r != &host {
            s.push_str(&format!(" (seen as {r}: NAT)"));
        }
    }
    if let Some(t) = next_transport {
        if t != v.transport {
            s.push_str(&format!(" [{} → {}]", v.transport, t));
        }
    }
    s
}

/// Builds a dialog's summary from its messages one at a time, so a dialog of
/// any length (a Call-ID reused by REGISTER refreshes for hours) never needs
/// every message's output at once.  Where several messages qualify (route
/// set, furthest copy of the request), the last of the equal maxima wins.
struct DialogAcc<'r> {
    call_id: String,
    roles: &'r Roles,
    start_ts: i64,
    first_frame: Option<u64>,
    first_req: Option<MessageOut>,
    ringing: Option<MessageOut>,
    final_: Option<MessageOut>,
    /// Record-Route of the request with the most entries.
    rr_best: Option<Vec<String>>,
    /// (Via count, frame, Vias, destination) of the copy of the first request that went furthest.
    furthest: Option<(usize, u64, Vec<ViaOut>, Endpoint)>,
    diagnostics: Vec<Diagnostics>,
    media_seen: Vec<(&'static str, Option<String>, usize)>,
    media: Vec<DialogMedia>,
    ladder: Vec<LadderStep>,
    ladder_cap: usize,
    ladder_omitted: u64,
}

impl<'r> DialogAcc<'r> {
    /// A dialog whose first request (if any) is `first_req`; its first
    /// message was sent at `start_ts`; at most `ladder_cap` ladder steps.
    fn new(
        call_id: &str,
        first_req: Option<MessageOut>,
        start_ts: i64,
        roles: &'r Roles,
        ladder_cap: usize,
    ) -> Self {
        DialogAcc {
            call_id: call_id.to_string(),
            roles,
            start_ts,
            first_frame: None,
            first_req,
            ringing: None,
            final_: None,
            rr_best: None,
            furthest: None,
            diagnostics: Vec::new(),
            media_seen: Vec::new(),
            media: Vec::new(),
            ladder: Vec::new(),
            ladder_cap,
            ladder_omitted: 0,
        }
    }

    /// The hop lists [`Self::push`] reads of the next message (findings read
    /// none): the Vias of a copy of the first request (the furthest one
    /// makes the hop chain), the Record-Route of a request (the longest one
    /// is the route set unless the final answer has one) and of an answer
    /// to the first request that may become the ringing or final one.
    fn hops(&self, f: &Found) -> Hops {
        let first = self
            .first_req
            .as_ref()
            .is_some_and(|r| r.cseq.as_deref() == f.msg.header("CSeq"));
        match f.msg.start {
            StartLine::Request { .. } => Hops {
                via: first,
                record_route: true,
            },
            StartLine::Response { code, .. } => {
                let (ringing, final_) = self.becomes(code);
                Hops {
                    via: false,
                    record_route: first && (ringing || final_),
                }
            }
        }
    }

    /// Whether an answer with `status` to the first request becomes the
    /// dialog's ringing one and its final one: the first of each.
    fn becomes(&self, status: u16) -> (bool, bool) {
        (
            self.ringing.is_none() && (180..=199).contains(&status),
            self.final_.is_none() && status >= 200,
        )
    }

    /// The next message of the dialog, in capture order, sent at `ts_ns`.
    fn push(&mut self, m: &MessageOut, ts_ns: i64) {
        self.first_frame.get_or_insert(m.frame);
        if self.ladder.len() < self.ladder_cap {
            self.ladder.push(LadderStep {
                frame: m.frame,
                at_s: crate::timefmt::seconds(ts_ns - self.start_ts),
                src: m.src,
                dst: m.dst,
                summary: m.summary.clone(),
            });
        } else {
            self.ladder_omitted += 1;
        }
        let cseq = self.first_req.as_ref().map(|r| &r.cseq);
        match m.status {
            Some(s) if cseq == Some(&m.cseq) => {
                let (ringing, final_) = self.becomes(s);
                if ringing {
                    self.ringing = Some(m.clone());
                }
                if final_ {
                    self.final_ = Some(m.clone());
                }
            }
            Some(_) => {}
            None => {
                if self
                    .rr_best
                    .as_ref()
                    .is_none_or(|b| m.record_route.len() >= b.len())
                {
                    self.rr_best = Some(m.record_route.clone());
                }
                if cseq == Some(&m.cseq) {
                    let key = (m.via.len(), std::cmp::Reverse(m.frame));
                    let better = self
                        .furthest
                        .as_ref()
                        .is_none_or(|(n, f, _, _)| key >= (*n, std::cmp::Reverse(*f)));
                    if better {
                        self.furthest = Some((m.via.len(), m.frame, m.via.clone(), m.dst));
                    }
                }
            }
        }
        // the diagnostics, each once (proxies relay the same header)
        for d in &m.diagnostics {
            let same = |o: &Diagnostics| {
                o.header == d.header
                    && o.code == d.code
                    && o.reason == d.reason
                    && o.source == d.source
            };
            if !self.diagnostics.iter().any(same) {
                self.diagnostics.push(d.clone());
            }
        }
        // the distinct offers and answers, media section by section
        let side = sdp::offer_or_answer(match m.status {
            None => Some(m.method.as_deref().unwrap_or("")),
            Some(_) => None,
        });
        for part in &m.sdp {
            // proxies relay the same body: same side, same o= line, same size
            let key = (side, part.origin.clone(), m.body_length);
            if self.media_seen.contains(&key) {
                continue;
            }
            self.media_seen.push(key);
            for media in &part.media {
                self.media.push(DialogMedia {
                    frame: m.frame,
                    side,
                    sender: m.src,
                    fallback_2007: part.fallback_2007,
                    media: media.clone(),
                });
            }
        }
    }

    /// The dialog's summary.
    fn finish(self) -> DialogOut {
        let roles = self.roles;
        let first_req = self.first_req.as_ref();
        let req_ts = first_req.map(|r| r.time_s).unwrap_or(0.0);
        let round = |x: f64| (x * 1e6).round() / 1e6;
        let final_ = self.final_.as_ref();
        let route_set = final_
            .filter(|m| !m.record_route.is_empty())
            .map(|m| m.record_route.clone())
            .or(self.rr_best)
            .unwrap_or_default();
        let hop_chain = self
            .furthest
            .map(|(n, _, via, dst)| {
                let mut chain: Vec<String> = Vec::new();
                for i in (0..n).rev() {
                    let next_t = if i > 0 {
                        Some(via[i - 1].transport.as_str())
                    } else {
                        None
                    };
                    chain.push(hop_label(&via[i], next_t, roles));
                }
                chain.push(with_role(&dst.ip.to_string(), roles));
                chain
            })
            .unwrap_or_default();
        DialogOut {
            call_id: self.call_id,
            method: first_req.and_then(|r| r.method.clone()),
            from: first_req.and_then(|r| r.from.clone()),
            to: first_req.and_then(|r| r.to.clone()),
            first_frame: self.first_frame.unwrap_or(0),
            final_status: final_.map(|m| m.summary.clone()),
            ringing_s: self.ringing.as_ref().map(|m| round(m.time_s - req_ts)),
            final_s: final_.map(|m| round(m.time_s - req_ts)),
            route_set,
            hop_chain,
            diagnostics: self.diagnostics,
            media: self.media,
            ladder: self.ladder,
            ladder_omitted: self.ladder_omitted,
        }
    }
}

/// How much of the per-message list a [`SipReport`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Messages {
    /// Every message (`edgetrace sip`).
    All,
    /// No message list, complete dialogs: for [`SipReport::stream`], which
    /// writes the messages as it turns them into output.
    Streamed,
}

/// Ladder steps a dialog shows in `report` (all of them in `edgetrace sip`);
/// the rest are counted in `ladder_omitted`.
pub const REPORT_LADDER_STEPS: usize = 200;

/// Messages of a dialog held while none of them is a request; beyond, the
/// dialog is folded without a first request (as when a capture starts in
/// the middle of a dialog and its requests never show).
const WAIT_FOR_REQUEST: usize = 64;

/// A dialog being folded.
enum Open<'r> {
    /// No request seen yet: the messages wait, so that responses are
    /// matched against the first request's CSeq as when the whole capture
    /// is known.
    Waiting {
        call_id: String,
        start_ts: i64,
        found: Vec<Found>,
    },
    /// Folding; `bodies` are the (request method or none, body) already
    /// read: the same body from the same side adds no media, so its SDP is
    /// not parsed again.
    Folding {
        acc: Box<DialogAcc<'r>>,
        bodies: FxHashSet<(Option<String>, std::sync::Arc<[u8]>)>,
    },
    /// Beyond the dialogs a report lists: counted, and its messages make
    /// their findings, but no summary is built.
    Counted,
}

/// SIP dialogs folded message by message, in capture order, as the pass
/// finds the messages ([`crate::analyze::sip::MessageSink`]): `report`
/// keeps no SIP message to the end of the capture, only each listed
/// dialog's summary (its ladder cut at `ladder_cap` steps) and the findings
/// the messages make.  `edgetrace sip --json` folds its kept messages with it
/// too, so there is one fold.
///
/// "Capture order" is the order in which the pass completes messages: by
/// the frame that completes them within a batch, batch after batch.  It is
/// the frame order the whole-capture sort gives, except for a TCP message
/// completed only when its stream is flushed at the end (it comes last);
/// `tests/it/sip.rs` checks the two folds agree on every SIP capture.
pub struct DialogFolder<'r> {
    redaction: Redaction,
    roles: &'r Roles,
    ladder_cap: usize,
    for_findings: bool,
    /// Messages a dialog without a request holds ([`WAIT_FOR_REQUEST`] in `report`).
    wait_cap: usize,
    /// Dialogs summarised (by first appearance); the rest are only counted.
    listed: usize,
    t0: i64,
    /// Dialogs by first appearance.
    dialogs: Vec<Open<'r>>,
    index: FxHashMap<String, usize>,
    /// (Call-ID, status) of the error responses already reported.
    errors_seen: FxHashSet<(String, u16)>,
    /// Their findings, merged as they are made: error responses are not kept.
    errors: crate::findings::Merging,
    /// Findings of MRAS answers without a relay (MRAS messages are not kept).
    mras: Vec<crate::findings::Finding>,
    messages: u64,
    requests: BTreeMap<String, u64>,
    responses: BTreeMap<String, u64>,
}

/// True for a message findings read: an error response other than a
/// challenge (401, 407) or the answer to a CANCEL (487), or an MRAS body;
/// known before the message's output is made.
fn maybe_read_by_findings(f: &Found) -> bool {
    match &f.msg.start {
        StartLine::Response { code, .. } if is_error_findings_read(*code) => true,
        _ => mras::is_mras(f.msg.header("Content-Type")),
    }
}

fn is_error_findings_read(status: u16) -> bool {
    status >= 400 && !matches!(status, 401 | 407 | 487)
}

impl<'r> DialogFolder<'r> {
    /// The fold of `report`: the first `listed` dialogs summarised with
    /// ladders cut at [`REPORT_LADDER_STEPS`], the others only counted, and
    /// the messages findings read kept.  Memory grows with the listed
    /// dialogs, not with every dialog of the capture.
    pub fn for_report(redaction: Redaction, roles: &'r Roles, listed: usize) -> Self {
        DialogFolder {
            wait_cap: WAIT_FOR_REQUEST,
            listed,
            ..Self::new(redaction, roles, REPORT_LADDER_STEPS, true)
        }
    }

    /// A fold that cuts nothing and keeps no message (the messages are all
    /// in memory anyway).
    fn new(redaction: Redaction, roles: &'r Roles, ladder_cap: usize, for_findings: bool) -> Self {
        DialogFolder {
            redaction,
            roles,
            ladder_cap,
            for_findings,
            wait_cap: usize::MAX,
            listed: usize::MAX,
            t0: 0,
            dialogs: Vec::new(),
            index: FxHashMap::default(),
            errors_seen: FxHashSet::default(),
            errors: Default::default(),
            mras: Vec::new(),
            messages: 0,
            requests: BTreeMap::new(),
            responses: BTreeMap::new(),
        }
    }

    /// The next message in capture order; `t0` is the capture's first frame time.
    pub fn push(&mut self, f: Found, t0: i64) {
        self.t0 = t0;
        self.messages += 1;
        match &f.msg.start {
            StartLine::Response { code, .. } => {
                *self.responses.entry(code.to_string()).or_insert(0) += 1
            }
            StartLine::Request { method, .. } => {
                *self.requests.entry(method.clone()).or_insert(0) += 1
            }
        }
        let Some(call_id) = f.msg.call_id() else {
            // belongs to no dialog
            if self.for_findings {
                let m = message_out(&f, t0, self.redaction, self.roles);
                self.keep(m);
            }
            return;
        };
        let i = match self.index.get(call_id) {
            Some(&i) => i,
            None => {
                let i = self.dialogs.len();
                self.index.insert(call_id.to_string(), i);
                self.dialogs.push(if i < self.listed {
                    Open::Waiting {
                        call_id: call_id.to_string(),
                        start_ts: f.ts_ns,
                        found: Vec::new(),
                    }
                } else {
                    Open::Counted
                });
                i
            }
        };
        match &mut self.dialogs[i] {
            Open::Counted => {
                if self.for_findings && maybe_read_by_findings(&f) {
                    let (r, roles) = (self.redaction, self.roles);
                    let m = message_out_with(&f, t0, r, roles, Detail::Dialog, Hops::NONE);
                    self.keep(m);
                }
            }
            Open::Waiting { found, .. } => {
                let request = matches!(f.msg.start, StartLine::Request { .. });
                found.push(f);
                if request || found.len() >= self.wait_cap {
                    self.start(i);
                }
            }
            Open::Folding { .. } => self.fold(i, f),
        }
    }

    /// A waiting dialog starts folding: its first request (if any) is known.
    fn start(&mut self, i: usize) {
        let waiting = std::mem::replace(
            &mut self.dialogs[i],
            Open::Waiting {
                call_id: String::new(),
                start_ts: 0,
                found: Vec::new(),
            },
        );
        let Open::Waiting {
            call_id,
            start_ts,
            found,
        } = waiting
        else {
            self.dialogs[i] = waiting;
            return;
        };
        let first_req = found
            .iter()
            .find(|f| matches!(f.msg.start, StartLine::Request { .. }))
            .map(|f| message_out(f, self.t0, self.redaction, self.roles));
        self.dialogs[i] = Open::Folding {
            acc: Box::new(DialogAcc::new(
                &call_id,
                first_req,
                start_ts,
                self.roles,
                self.ladder_cap,
            )),
            bodies: FxHashSet::default(),
        };
        for f in found {
            self.fold(i, f);
        }
    }

    fn fold(&mut self, i: usize, f: Found) {
        let Open::Folding { acc, bodies } = &mut self.dialogs[i] else {
            return;
        };
        let method = match &f.msg.start {
            StartLine::Request { method, .. } => Some(method.clone()),
            StartLine::Response { .. } => None,
        };
        let fresh =
            f.msg.body.is_empty() || bodies.insert((method, std::sync::Arc::clone(&f.msg.body)));
        let detail = if fresh {
            Detail::Dialog
        } else {
            Detail::DialogSeenBody
        };
        let hops = acc.hops(&f);
        let m = message_out_with(&f, self.t0, self.redaction, self.roles, detail, hops);
        acc.push(&m, f.ts_ns);
        if self.for_findings {
            self.keep(m);
        }
    }

    /// A message findings may read becomes its finding at once: an MRAS
    /// answer without a relay; an error response, the first per Call-ID and
    /// status (messages of a dialog come here in capture order).
    fn keep(&mut self, m: MessageOut) {
        if m.mras.is_some() {
            self.mras.extend(crate::findings::mras_no_relay(&m));
            return;
        }
        let Some(status) = m.status.filter(|&s| is_error_findings_read(s)) else {
            return;
        };
        let key = (m.call_id.clone().unwrap_or_default(), status);
        if self.errors_seen.insert(key) {
            if let Some(f) = crate::findings::sip_error(&m) {
                self.errors.add(f);
            }
        }
    }

    /// The report: the listed dialogs (all are counted), and the messages
    /// findings read in capture order.
    pub fn finish(mut self, run: &RunResult, core: &Core, input: &str) -> Folded {
        for i in 0..self.dialogs.len() {
            if matches!(self.dialogs[i], Open::Waiting { .. }) {
                self.start(i);
            }
        }
        let total = self.dialogs.len();
        let dialogs: Vec<DialogOut> = self
            .dialogs
            .into_iter()
            .filter_map(|d| match d {
                Open::Folding { acc, .. } => Some(acc.finish()),
                Open::Waiting { .. } | Open::Counted => None,
            })
            .collect();
        let report = SipReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(run),
            summary: SipSummary {
                messages: self.messages as usize,
                requests: self.requests,
                responses: self.responses,
                dialogs: total,
                keepalive_bytes: core.keepalive_bytes,
                problems: problems(core),
            },
            messages: Vec::new(),
            dialogs,
        };
        let mut findings = self.errors.finish();
        findings.append(&mut self.mras);
        Folded { report, findings }
    }
}

/// What [`DialogFolder::finish`] gives.
pub struct Folded {
    /// The dialogs (the listed ones) and the counts; no message.
    pub report: SipReport,
    /// The SIP findings (`sip.error-response`, `mras.no-relay`), made as the
    /// fold met the messages.
    pub findings: Vec<crate::findings::Finding>,
}

impl crate::analyze::sip::MessageSink for DialogFolder<'_> {
    fn message(&mut self, found: Found, t0: i64) {
        self.push(found, t0);
    }
}

/// The framing problems as output lines.
fn problems(core: &Core) -> Vec<String> {
    core.problems
        .iter()
        .map(|p| {
            format!(
                "frame {} ({} {}): {}",
                p.frame,
                p.l4.name(),
                p.stream,
                p.what
            )
        })
        .collect()
}

/// Requests by method and responses by status, from the finder's messages.
fn tallies(core: &Core) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut requests = BTreeMap::new();
    let mut responses = BTreeMap::new();
    for f in &core.found {
        match &f.msg.start {
            StartLine::Response { code, .. } => {
                *responses.entry(code.to_string()).or_insert(0) += 1
            }
            StartLine::Request { method, .. } => *requests.entry(method.clone()).or_insert(0) += 1,
        }
    }
    (requests, responses)
}

impl SipReport {
    /// The report as JSON to be written: `self` built with
    /// [`Messages::Streamed`] from the same `run` and `core`; `call_id`
    /// keeps that dialog's messages only (`sip --dialog`).
    pub fn stream<'a>(
        &'a self,
        run: &RunResult,
        core: &'a Core,
        redaction: Redaction,
        roles: &'a Roles,
        call_id: Option<&'a str>,
    ) -> SipReportStream<'a, impl Serialize + 'a> {
        let t0 = run.read.first_ts.unwrap_or(0);
        SipReportStream {
            schema_version: self.schema_version,
            meta: &self.meta,
            capture: &self.capture,
            summary: &self.summary,
            messages: super::Streamed(move || {
                core.found
                    .iter()
                    .filter(move |f| call_id.is_none() || f.msg.call_id() == call_id)
                    .map(move |f| message_out(f, t0, redaction, roles))
            }),
            dialogs: &self.dialogs,
        }
    }

    /// Builds the report with every message.
    pub fn build(
        run: &RunResult,
        core: &Core,
        input: &str,
        redaction: Redaction,
        roles: &Roles,
    ) -> SipReport {
        Self::build_with(run, core, input, redaction, roles, Messages::All)
    }

    /// Builds the report, keeping the messages `keep` says.
    pub fn build_with(
        run: &RunResult,
        core: &Core,
        input: &str,
        redaction: Redaction,
        roles: &Roles,
        keep: Messages,
    ) -> SipReport {
        let t0 = run.read.first_ts.unwrap_or(0);
        if keep == Messages::Streamed {
            let mut folder = DialogFolder::new(redaction, roles, usize::MAX, false);
            for f in &core.found {
                folder.push(f.clone(), t0);
            }
            return folder.finish(run, core, input).report;
        }
        let messages: Vec<MessageOut> = core
            .found
            .par_iter()
            .map(|f| message_out(f, t0, redaction, roles))
            .collect();
        // dialogs by Call-ID, in order of first appearance
        let mut order: Vec<&str> = Vec::new();
        let mut by_call: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, f) in core.found.iter().enumerate() {
            let Some(c) = f.msg.call_id() else { continue };
            let e = by_call.entry(c).or_default();
            if e.is_empty() {
                order.push(c);
            }
            e.push(i);
        }
        let dialogs: Vec<DialogOut> = order
            .iter()
            .map(|c| {
                let idx = &by_call[c];
                let first_req = idx
                    .iter()
                    .find(|&&i| messages[i].status.is_none())
                    .map(|&i| messages[i].clone());
                let start = core.found[idx[0]].ts_ns;
                let mut d = DialogAcc::new(c, first_req, start, roles, usize::MAX);
                for &i in idx {
                    d.push(&messages[i], core.found[i].ts_ns);
                }
                d.finish()
            })
            .collect();
        let (requests, responses) = tallies(core);
        let summary = SipSummary {
            messages: core.found.len(),
            requests,
            responses,
            dialogs: dialogs.len(),
            keepalive_bytes: core.keepalive_bytes,
            problems: problems(core),
        };
        SipReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(run),
            summary,
            messages,
            dialogs,
        }
    }
}
