//! Output model of `edgetrace stun`: the message timeline and transaction
//! summary.  Secrets (MESSAGE-INTEGRITY, PASSWORD, USERHASH) are redacted
//! unless `show_secrets`; usernames are shown (they identify the user of an
//! allocation) unless `redact_usernames`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value as Json};

use super::{CaptureSummary, Meta, Redaction, SCHEMA_VERSION};
use crate::analyze::stun::{Core, Found};
use crate::flow::{Endpoint, L4};
use crate::pipeline::RunResult;
use crate::proto::stun::names::attr as a;
use crate::proto::stun::{hex, Attr, Dialect, Value};

/// One attribute as printed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AttrOut {
    /// Type as `0x0016`.
    #[serde(rename = "type")]
    pub typ: String,
    /// Name in the message's dialect.
    pub name: &'static str,
    /// Decoded value (address as `addr:port`, numbers, text, `{code, reason}`…).
    pub value: Json,
}

/// One STUN message of the timeline.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MessageOut {
    /// Frame where it starts.
    pub frame: u64,
    /// Frame where it ends, when different (TCP message over several segments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_frame: Option<u64>,
    /// Seconds since the first frame of the capture.
    pub time_s: f64,
    /// udp or tcp.
    pub transport: L4,
    /// Wireshark stream index.
    pub stream: u32,
    /// Packet (or stream direction) source.
    pub src: Endpoint,
    /// Destination.
    pub dst: Endpoint,
    /// `udp`, `tcp`, `rfc4571`, `ms-turn`.
    pub framing: &'static str,
    /// `direct`, `channel 0x4000`, `data-attribute`, `rfc6062 connection …`.
    pub carrier: String,
    /// For nested messages: the relay↔peer leg (`src`, `dst` as far as known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_leg: Option<Json>,
    /// rfc5389, rfc3489, ms-turn.
    pub dialect: Dialect,
    /// Message type as `0x0003`.
    #[serde(rename = "type")]
    pub typ: String,
    /// "Allocate request"…
    pub name: String,
    /// Transaction id (hex; 96 bits after the cookie, else 128).
    pub txid: String,
    /// Attributes in wire order.
    pub attrs: Vec<AttrOut>,
    /// Frame of the response (requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_frame: Option<u64>,
    /// Round-trip time in ms (requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Frame of the request this responds to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_frame: Option<u64>,
    /// Same transaction id sent again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retransmission: bool,
    /// MS-ICE2 second copy with the other FINGERPRINT CRC (not a retransmission).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ms_duplicate: bool,
    /// Attribute walk problem (message kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
}

/// ChannelData totals.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChannelOut {
    /// Stream of the client↔server flow.
    pub transport: L4,
    /// Stream index.
    pub stream: u32,
    /// Channel number.
    pub channel: String,
    /// Frames.
    pub frames: u64,
    /// Data bytes.
    pub bytes: u64,
    /// First frame.
    pub first_frame: u64,
}

/// Counts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StunSummary {
    /// Messages found.
    pub messages: usize,
    /// Messages by name ("Allocate request": 3).
    pub by_name: BTreeMap<String, u64>,
    /// Nested messages (inside ChannelData, DATA, RFC 6062 data connections).
    pub nested: usize,
    /// Requests without any response.
    pub unanswered_requests: usize,
    /// Error responses by code.
    pub errors: BTreeMap<String, u64>,
    /// Retransmitted requests.
    pub retransmissions: usize,
    /// MS-ICE2 duplicate sends merged.
    pub ms_duplicates: usize,
    /// Flows with an MS pseudo-TLS handshake.
    pub pseudo_tls_flows: usize,
    /// TCP bytes skipped while resynchronising.
    pub tcp_bytes_skipped: u64,
    /// Bytes relayed on RFC 6062 data connections.
    pub rfc6062_relayed_bytes: u64,
}

/// `edgetrace stun --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StunReport {
    /// Schema version.
    pub schema_version: u32,
    /// Volatile fields.
    pub meta: Meta,
    /// The capture.
    pub capture: CaptureSummary,
    /// Counts.
    pub summary: StunSummary,
    /// The timeline, in frame order.
    pub messages: Vec<MessageOut>,
    /// ChannelData per flow and channel.
    pub channels: Vec<ChannelOut>,
}

fn attr_value(at: &Attr, r: Redaction) -> Json {
    match &at.value {
        Value::Address { addr, .. } => json!(Endpoint::from(*addr).to_string()),
        Value::ErrorCode { code, reason } => json!({"code": code, "reason": reason}),
        Value::Text(s) if at.typ == a::USERNAME && r.redact_usernames => {
            json!(format!("<redacted {} bytes>", s.len()))
        }
        Value::Text(s) => json!(s),
        Value::Opaque(b) if at.typ == a::USERNAME && r.redact_usernames => {
            json!(format!("<redacted {} bytes>", b.len()))
        }
        Value::Opaque(b) => json!(format!("hex:{}", hex(b))),
        Value::U32(v) => json!(v),
        Value::U64(v) => json!(format!("{v:#018x}")),
        Value::Channel(c) => json!(format!("{c:#06x}")),
        Value::Transport(p) => json!(match p {
            17 => "UDP".to_string(),
            6 => "TCP".to_string(),
            n => n.to_string(),
        }),
        Value::Family(f) => json!(match f {
            1 => "IPv4".to_string(),
            2 => "IPv6".to_string(),
            n => n.to_string(),
        }),
        Value::EvenPort(r) => json!({"reserve_next": r}),
        Value::ConnectionId(c) => json!(format!("{c:#010x}")),
        Value::ChangeRequest { ip, port } => json!({"change_ip": ip, "change_port": port}),
        Value::Data { len, .. } => json!({"length": len}),
        Value::Secret(b) if r.show_secrets => json!(format!("hex:{}", hex(b))),
        Value::Secret(b) => json!(format!("<redacted {} bytes>", b.len())),
        Value::Fingerprint { value, check } => {
            json!({"crc32": format!("{value:#010x}"), "check": check})
        }
        Value::SequenceNumber { connection, seq } => {
            json!({"connection": hex(connection), "sequence": seq})
        }
        Value::ServiceQuality {
            stream_type,
            quality,
        } => json!({"stream_type": stream_type, "quality": quality}),
        Value::UnknownAttributes(v) => {
            json!(v.iter().map(|t| format!("{t:#06x}")).collect::<Vec<_>>())
        }
        Value::Icmp { icmp_type, code } => json!({"icmp_type": icmp_type, "code": code}),
        Value::Numbers(v) => json!(v),
        Value::LocationProfile {
            peer,
            own,
            federation,
        } => {
            json!({"peer_location": peer, "own_location": own, "federation": federation})
        }
        Value::AdmissionControl(t) => json!({"message_type": t}),
        Value::Flag => Json::Null,
        Value::Raw(b) => json!(format!("hex:{}", hex(b))),
        Value::Malformed(why) => json!({"malformed": why}),
    }
}

fn message_out(f: &Found, t0: i64, r: Redaction) -> MessageOut {
    let m = &f.msg;
    MessageOut {
        frame: f.frame,
        end_frame: (f.end_frame != f.frame).then_some(f.end_frame),
        time_s: crate::timefmt::seconds(f.ts_ns - t0),
        transport: f.l4,
        stream: f.stream,
        src: f.src,
        dst: f.dst,
        framing: f.framing,
        carrier: f.carrier.name(),
        relay_leg: f.relay_leg.as_deref().map(|&(s, d)| {
            json!({"src": s.map(|x| Endpoint::from(x).to_string()),
                   "dst": d.map(|x| Endpoint::from(x).to_string())})
        }),
        dialect: m.dialect,
        typ: format!("{:#06x}", m.msg_type),
        name: m.name(),
        txid: m.txid_hex(),
        attrs: m
            .attrs
            .iter()
            .map(|at| AttrOut {
                typ: format!("{:#06x}", at.typ),
                name: m.attr_name(at),
                value: attr_value(at, r),
            })
            .collect(),
        answer_frame: f.answer_frame,
        rtt_ms: f.rtt_ns.map(|n| (n as f64 / 1000.0).round() / 1000.0),
        request_frame: f.request_frame,
        retransmission: f.retransmission,
        ms_duplicate: f.ms_duplicate,
        malformed: m.malformed.clone(),
    }
}

/// `edgetrace stun --json` written without holding every message's output:
/// the same JSON as [`StunReport`] (same fields in the same order), each
/// message turned into output as it is written.  On the 1 GiB bench capture
/// that is 190,080 message outputs never held at once.
#[derive(Serialize)]
pub struct StunReportStream<'a, M> {
    schema_version: u32,
    meta: &'a Meta,
    capture: &'a CaptureSummary,
    summary: &'a StunSummary,
    messages: M,
    channels: &'a [ChannelOut],
}

impl StunReport {
    /// Builds the report.
    pub fn build(run: &RunResult, core: &Core, input: &str, r: Redaction) -> StunReport {
        let mut report = Self::build_without_messages(run, core, input);
        let t0 = run.read.first_ts.unwrap_or(0);
        report.messages = core.found.iter().map(|f| message_out(f, t0, r)).collect();
        report
    }

    /// The report as JSON to be written: `self` built by
    /// [`StunReport::build_without_messages`] from the same `run` and `core`.
    pub fn stream<'a>(
        &'a self,
        run: &RunResult,
        core: &'a Core,
        r: Redaction,
    ) -> StunReportStream<'a, impl Serialize + 'a> {
        let t0 = run.read.first_ts.unwrap_or(0);
        StunReportStream {
            schema_version: self.schema_version,
            meta: &self.meta,
            capture: &self.capture,
            summary: &self.summary,
            messages: super::Streamed(move || {
                core.found.iter().map(move |f| message_out(f, t0, r))
            }),
            channels: &self.channels,
        }
    }

    /// Builds the report with an empty message list (see [`StunReport::stream`]).
    pub fn build_without_messages(run: &RunResult, core: &Core, input: &str) -> StunReport {
        let messages: Vec<MessageOut> = Vec::new();
        let mut by_name = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for f in &core.found {
            *by_name.entry(f.msg.name()).or_insert(0) += 1;
            if let Some((code, reason)) = f.msg.error_code() {
                *errors.entry(format!("{code} {reason}")).or_insert(0) += 1;
            }
        }
        let requests = core
            .found
            .iter()
            .filter(|f| f.msg.class == crate::proto::stun::Class::Request);
        let summary = StunSummary {
            messages: core.found.len(),
            by_name,
            nested: core
                .found
                .iter()
                .filter(|f| f.carrier != crate::analyze::stun::Carrier::Direct)
                .count(),
            unanswered_requests: requests
                .clone()
                .filter(|f| f.answer_frame.is_none() && !f.retransmission && !f.ms_duplicate)
                .count(),
            errors,
            retransmissions: requests.clone().filter(|f| f.retransmission).count(),
            ms_duplicates: requests.filter(|f| f.ms_duplicate).count(),
            pseudo_tls_flows: core.pseudo_tls.len(),
            tcp_bytes_skipped: core.skipped.values().sum(),
            rfc6062_relayed_bytes: core.relayed_bytes.values().sum(),
        };
        let channels = core
            .channels
            .iter()
            .map(|(&(flow, ch), c)| {
                let fl = run.flows.get(flow);
                ChannelOut {
                    transport: fl.l4,
                    stream: fl.stream,
                    channel: format!("{ch:#06x}"),
                    frames: c.frames,
                    bytes: c.bytes,
                    first_frame: c.first_frame,
                }
            })
            .collect();
        StunReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(run),
            summary,
            messages,
            channels,
        }
    }
}
