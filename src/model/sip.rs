//! Output model of `edgetrace sip`: the message timeline and the dialogs
//! (ladder, route set, hop chain).  Only chosen headers are output, so
//! Authorization and other credentials never appear; long routing
//! signatures (`ms-route-sig`, `ms-key-info`, `opaque`) are shortened.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CaptureSummary, Meta, SCHEMA_VERSION};
use crate::analyze::sip::{Core, Found};
use crate::flow::{Endpoint, L4};
use crate::pipeline::RunResult;
use crate::proto::sip::{parse_params, StartLine, Via};

/// A Via hop as output.
#[derive(Debug, Clone, Serialize)]
pub struct ViaOut {
    /// The value as on the wire (signatures shortened).
    pub raw: String,
    /// UDP, TCP, TLS…
    pub transport: String,
    /// host[:port].
    pub sent_by: String,
    /// `received` parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// `rport` parameter ("" when present without a value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rport: Option<String>,
    /// `branch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// MS `ms-received-port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms_received_port: Option<String>,
    /// MS `ms-received-cid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms_received_cid: Option<String>,
}

/// `ms-diagnostics` / `ms-diagnostics-public` / `ms-client-diagnostics`.
#[derive(Debug, Clone, Serialize)]
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

/// One SIP message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageOut {
    /// First frame.
    pub frame: u64,
    /// Last frame when the message spans TCP segments.
    #[serde(skip_serializing_if = "Option::is_none")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    /// Status (responses).
    #[serde(skip_serializing_if = "Option::is_none")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// User-Agent or Server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Content-Type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Body bytes.
    pub body_length: usize,
    /// Diagnostics headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostics>,
    /// Parsing problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One step of a dialog's ladder.
#[derive(Debug, Clone, Serialize)]
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

/// A dialog (all messages of one Call-ID).
#[derive(Debug, Clone, Serialize)]
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
    /// The messages in order.
    pub ladder: Vec<LadderStep>,
}

/// Counts.
#[derive(Debug, Clone, Serialize)]
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
}

/// `edgetrace sip --json`.
#[derive(Debug, Clone, Serialize)]
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

fn component(code: &str) -> &'static str {
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
        component: component(code),
        fields,
    }
}

fn via_out(v: &Via) -> ViaOut {
    let p = |k: &str| v.param(k).map(|s| s.to_string());
    ViaOut {
        raw: shorten(&v.raw),
        transport: v.transport.clone(),
        sent_by: v.sent_by.clone(),
        received: p("received"),
        rport: p("rport"),
        branch: p("branch"),
        ms_received_port: p("ms-received-port"),
        ms_received_cid: p("ms-received-cid"),
    }
}

fn message_out(f: &Found, t0: i64) -> MessageOut {
    let m = &f.msg;
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
        via: m.vias().iter().map(via_out).collect(),
        record_route: m
            .values("Record-Route")
            .iter()
            .map(|s| shorten(s))
            .collect(),
        route: m.values("Route").iter().map(|s| shorten(s)).collect(),
        contact: m.header("Contact").map(shorten),
        agent: m
            .header("User-Agent")
            .or(m.header("Server"))
            .map(str::to_string),
        content_type: m.header("Content-Type").map(str::to_string),
        body_length: m.body.len(),
        diagnostics: diags,
        problems: m.problems.clone(),
    }
}

/// Reads a Via hop as `host` (+ transport and NAT notes).
fn hop_label(v: &ViaOut, next_transport: Option<&str>) -> String {
    let host = v
        .sent_by
        .split(':')
        .next()
        .unwrap_or(&v.sent_by)
        .to_string();
    let mut s = host.clone();
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

impl SipReport {
    /// Builds the report.
    pub fn build(run: &RunResult, core: &Core, input: &str) -> SipReport {
        let t0 = run.read.first_ts.unwrap_or(0);
        let messages: Vec<MessageOut> = core.found.iter().map(|f| message_out(f, t0)).collect();
        let mut requests = BTreeMap::new();
        let mut responses = BTreeMap::new();
        for m in &messages {
            match m.status {
                Some(s) => *responses.entry(s.to_string()).or_insert(0) += 1,
                None => {
                    *requests
                        .entry(m.method.clone().unwrap_or_default())
                        .or_insert(0) += 1
                }
            }
        }
        // dialogs by Call-ID, in order of first appearance
        let mut order: Vec<String> = Vec::new();
        let mut by_call: BTreeMap<String, Vec<(usize, &MessageOut)>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let Some(c) = &m.call_id else { continue };
            if !by_call.contains_key(c) {
                order.push(c.clone());
            }
            by_call.entry(c.clone()).or_default().push((i, m));
        }
        let dialogs = order
            .iter()
            .map(|c| {
                let msgs = &by_call[c];
                let first_req = msgs.iter().map(|x| x.1).find(|m| m.status.is_none());
                let start_ts = core.found[msgs[0].0].ts_ns;
                let method = first_req.and_then(|r| r.method.clone());
                let cseq = first_req.and_then(|r| r.cseq.clone());
                let answers: Vec<&MessageOut> = msgs
                    .iter()
                    .map(|x| x.1)
                    .filter(|m| m.status.is_some() && m.cseq == cseq)
                    .collect();
                let req_ts = first_req.map(|r| r.time_s).unwrap_or(0.0);
                let ringing = answers.iter().find(|m| matches!(m.status, Some(180..=199)));
                let final_ = answers.iter().find(|m| m.status.is_some_and(|s| s >= 200));
                let round = |x: f64| (x * 1e6).round() / 1e6;
                let route_set = final_
                    .filter(|m| !m.record_route.is_empty())
                    .map(|m| m.record_route.clone())
                    .or_else(|| {
                        msgs.iter()
                            .map(|x| x.1)
                            .filter(|m| m.status.is_none())
                            .max_by_key(|m| m.record_route.len())
                            .map(|m| m.record_route.clone())
                    })
                    .unwrap_or_default();
                // the copy of the first request that went furthest (most Vias)
                let furthest = msgs
                    .iter()
                    .map(|x| x.1)
                    .filter(|m| m.status.is_none() && m.cseq == cseq)
                    .max_by_key(|m| (m.via.len(), std::cmp::Reverse(m.frame)));
                let hop_chain = furthest
                    .map(|m| {
                        let mut chain: Vec<String> = Vec::new();
                        let n = m.via.len();
                        for i in (0..n).rev() {
                            let next_t = if i > 0 {
                                Some(m.via[i - 1].transport.as_str())
                            } else {
                                None
                            };
                            chain.push(hop_label(&m.via[i], next_t));
                        }
                        chain.push(m.dst.ip.to_string());
                        chain
                    })
                    .unwrap_or_default();
                DialogOut {
                    call_id: c.clone(),
                    method,
                    from: first_req.and_then(|r| r.from.clone()),
                    to: first_req.and_then(|r| r.to.clone()),
                    first_frame: msgs[0].1.frame,
                    final_status: final_.map(|m| m.summary.clone()),
                    ringing_s: ringing.map(|m| round(m.time_s - req_ts)),
                    final_s: final_.map(|m| round(m.time_s - req_ts)),
                    route_set,
                    hop_chain,
                    diagnostics: msgs.iter().flat_map(|x| x.1.diagnostics.clone()).collect(),
                    ladder: msgs
                        .iter()
                        .map(|&(i, m)| LadderStep {
                            frame: m.frame,
                            at_s: crate::timefmt::seconds(core.found[i].ts_ns - start_ts),
                            src: m.src,
                            dst: m.dst,
                            summary: m.summary.clone(),
                        })
                        .collect(),
                }
            })
            .collect::<Vec<_>>();
        let summary = SipSummary {
            messages: messages.len(),
            requests,
            responses,
            dialogs: dialogs.len(),
            problems: core
                .problems
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
                .collect(),
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
