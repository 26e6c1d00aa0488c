//! The output model: one set of serde types that every renderer reads (the
//! table printer, JSON, later diagrams).  Field names and meanings are part of
//! the JSON contract documented in README.md; [`SCHEMA_VERSION`] changes when
//! they change.
//!
//! Determinism: every list is in a defined order (flows by transport then
//! stream index; maps are `BTreeMap`), times are integers or fixed-precision
//! numbers derived from capture timestamps, never from the clock.  Volatile
//! fields (tool version, input path) live in [`Meta`] so tests and `check`
//! can ignore them in one place.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::{Damage, Truncation};
use crate::flow::{Endpoint, Flow, FlowCounts, L4};
use crate::packet::defrag::DefragStats;
use crate::packet::DecodeCounts;
use crate::pipeline::RunResult;

/// Version of the JSON schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// What to hide in output.  Secrets (MESSAGE-INTEGRITY, TURN and MRAS
/// passwords, `a=ice-pwd`, SRTP keys) are redacted unless `show_secrets`;
/// usernames are shown unless `redact_usernames`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redaction {
    /// Keep MESSAGE-INTEGRITY, passwords and other secrets.
    pub show_secrets: bool,
    /// Replace USERNAME values.
    pub redact_usernames: bool,
}

impl Redaction {
    /// A secret text as output: itself with `show_secrets`, else `<redacted N chars>`.
    pub fn secret(&self, s: &str) -> String {
        if self.show_secrets {
            s.to_string()
        } else {
            format!("<redacted {} chars>", s.chars().count())
        }
    }

    /// A username as output: itself, or `<redacted N chars>` with `redact_usernames`.
    pub fn username(&self, s: &str) -> String {
        if self.redact_usernames {
            format!("<redacted {} chars>", s.chars().count())
        } else {
            s.to_string()
        }
    }
}

/// Fields that change between runs or machines: ignored by comparisons.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Meta {
    /// "edgetrace".
    pub tool: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// The input as given on the command line.
    pub input: String,
}

impl Meta {
    /// Meta for an input path.
    pub fn new(input: &str) -> Meta {
        Meta {
            tool: "edgetrace",
            version: env!("CARGO_PKG_VERSION"),
            input: input.to_string(),
        }
    }
}

/// Frames per link type.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LinkTypeCount {
    /// LINKTYPE_* number.
    pub link_type: u32,
    /// Its name (tcpdump.org).
    pub name: &'static str,
    /// Frames of this link type.
    pub frames: u64,
}

/// What the capture file is and how it read.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CaptureSummary {
    /// pcap, pcap-ns, pcap-modified or pcapng.
    pub format: &'static str,
    /// gzip-compressed input.
    pub gzip: bool,
    /// Frames per link type.
    pub link_types: Vec<LinkTypeCount>,
    /// Frames read (the last `frame.number`).
    pub frames: u64,
    /// Sum of wire lengths.
    pub bytes: u64,
    /// Sum of captured lengths.
    pub captured_bytes: u64,
    /// Frames cut by the snapshot length (decoded as far as they go).
    pub snaplen_cut_frames: u64,
    /// First timestamp, RFC 3339 UTC.
    pub first_time: Option<String>,
    /// Last timestamp, RFC 3339 UTC.
    pub last_time: Option<String>,
    /// Last minus first, seconds.
    pub duration_s: f64,
    /// True when the file ends inside a record.
    pub truncated: bool,
    /// Where it was cut.
    pub truncation: Option<Truncation>,
    /// Damaged records skipped.
    pub damaged_records: u64,
    /// The first damaged records, with offsets and reasons.
    pub damage: Vec<Damage>,
    /// Frames per decoded category.
    pub decoded: DecodeCounts,
    /// Frames skipped, by reason (`unsupported-link-type-N`, `ip-header-invalid`…).
    pub skipped: BTreeMap<String, u64>,
    /// IP fragment reassembly.
    pub ip_reassembly: DefragStats,
}

impl CaptureSummary {
    /// Builds the summary from a finished run.
    pub fn from_run(r: &RunResult) -> CaptureSummary {
        let s = &r.read;
        let first = s.first_ts;
        let last = s.last_ts;
        CaptureSummary {
            format: s.format.map(|f| f.name()).unwrap_or("unknown"),
            gzip: s.compressed,
            link_types: s
                .link_types()
                .iter()
                .map(|(&lt, &n)| LinkTypeCount {
                    link_type: lt,
                    name: link_type_name(lt),
                    frames: n,
                })
                .collect(),
            frames: s.frames,
            bytes: s.wire_bytes,
            captured_bytes: s.captured_bytes,
            snaplen_cut_frames: s.snaplen_cut,
            first_time: first.map(crate::timefmt::rfc3339),
            last_time: last.map(crate::timefmt::rfc3339),
            duration_s: match (first, last) {
                (Some(a), Some(b)) => crate::timefmt::seconds(b - a),
                _ => 0.0,
            },
            truncated: s.truncated.is_some(),
            truncation: s.truncated.clone(),
            damaged_records: s.damage_count,
            damage: s.damage.clone(),
            decoded: r.decode.clone(),
            skipped: r.skipped.iter().map(|(k, v)| (k.key(), *v)).collect(),
            ip_reassembly: r.defrag.clone(),
        }
    }
}

/// A pair of counters: client→server and server→client.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct PerDir {
    /// Client → server.
    pub to_server: u64,
    /// Server → client.
    pub to_client: u64,
}

impl From<[u64; 2]> for PerDir {
    fn from(v: [u64; 2]) -> PerDir {
        PerDir {
            to_server: v[0],
            to_client: v[1],
        }
    }
}

/// TCP-only columns of a flow.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TcpSummary {
    /// `complete` (SYN, SYN/ACK, ACK), `syn-synack`, `syn-only`, or `none` (started mid-stream).
    pub handshake: &'static str,
    /// Frame of the client's SYN.
    pub syn_frame: Option<u64>,
    /// Who sent the first FIN: `client`, `server`, `both` or null.
    pub fin_by: Option<&'static str>,
    /// Who sent the first RST.
    pub rst_by: Option<&'static str>,
    /// Frame of the first RST.
    pub rst_frame: Option<u64>,
    /// Segments carrying only bytes already seen.
    pub retransmissions: PerDir,
    /// Segments that filled a hole.
    pub out_of_order: PerDir,
    /// Bytes never seen below the highest sequence number (gaps).
    pub missing_bytes: PerDir,
    /// Keep-alive probes.
    pub keepalives: PerDir,
}

/// One row of `edgetrace flows`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FlowSummary {
    /// "tcp" or "udp".
    pub transport: L4,
    /// Wireshark's `tcp.stream` / `udp.stream`.
    pub stream: u32,
    /// Display filter showing exactly this flow in Wireshark.
    pub filter: String,
    /// Application protocol found in the flow (`unknown` until a finder claims it).
    pub protocol: String,
    /// SYN sender, or first sender.
    pub client: Endpoint,
    /// The other side.
    pub server: Endpoint,
    /// First frame number.
    pub first_frame: u64,
    /// Last frame number.
    pub last_frame: u64,
    /// Seconds from the first frame of the capture to the flow's first frame.
    pub start_s: f64,
    /// Seconds from the flow's first to last frame.
    pub duration_s: f64,
    /// Frames each way.
    pub packets: PerDir,
    /// Wire bytes (`frame.len`) each way.
    pub bytes: PerDir,
    /// Transport payload bytes each way.
    pub payload_bytes: PerDir,
    /// Longest silence inside the flow, seconds.
    pub max_idle_s: f64,
    /// Frame that ended the longest silence.
    pub max_idle_end_frame: Option<u64>,
    /// ICMP errors quoting this flow.
    pub icmp_errors: u32,
    /// TCP details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSummary>,
}

fn side(v: [Option<u64>; 2]) -> Option<&'static str> {
    match v {
        [Some(_), Some(_)] => Some("both"),
        [Some(_), None] => Some("client"),
        [None, Some(_)] => Some("server"),
        [None, None] => None,
    }
}

impl FlowSummary {
    /// Summarises a flow and its counters; `t0` is the capture's first timestamp.
    pub fn from_flow(f: &Flow, c: &FlowCounts, t0: i64) -> FlowSummary {
        let tcp = f.tcp.as_deref().map(|t| {
            let handshake = match (t.syn_frame(), t.synack_frame(), t.ack_frame()) {
                (Some(_), Some(_), Some(_)) => "complete",
                (Some(_), Some(_), None) => "syn-synack",
                (Some(_), None, _) => "syn-only",
                (None, Some(_), _) => "synack-only",
                (None, None, _) => "none",
            };
            let none = Default::default();
            let seq: &[crate::flow::tcp::SeqTracker; 2] = c.seq.as_deref().unwrap_or(&none);
            let per = |g: &dyn Fn(&crate::flow::tcp::SeqTracker) -> u64| PerDir {
                to_server: g(&seq[0]),
                to_client: g(&seq[1]),
            };
            TcpSummary {
                handshake,
                syn_frame: t.syn_frame(),
                fin_by: side(t.fin()),
                rst_by: side(t.rst()),
                rst_frame: match t.rst() {
                    [Some(a), Some(b)] => Some(a.min(b)),
                    [a, b] => a.or(b),
                },
                retransmissions: per(&|s| s.retransmissions),
                out_of_order: per(&|s| s.out_of_order),
                missing_bytes: per(&|s| s.missing_bytes()),
                keepalives: per(&|s| s.keepalives),
            }
        });
        FlowSummary {
            transport: f.l4,
            stream: f.stream,
            filter: flow_filter(f),
            protocol: "unknown".to_string(),
            client: f.client,
            server: f.server,
            first_frame: c.first_frame,
            last_frame: c.last_frame,
            start_s: crate::timefmt::seconds(f.first_ts - t0),
            duration_s: crate::timefmt::seconds(f.last_ts - f.first_ts),
            packets: c.packets.into(),
            bytes: c.bytes.into(),
            payload_bytes: c.payload_bytes.into(),
            max_idle_s: crate::timefmt::seconds(c.max_idle_ns),
            max_idle_end_frame: (c.max_idle_end_frame > 0).then_some(c.max_idle_end_frame),
            icmp_errors: c.icmp_errors,
            tcp,
        }
    }
}

/// The Wireshark display filter for a flow.
///
/// TCP: `tcp.stream eq N`, exact.  UDP: the endpoint pair spelled out,
/// because Wireshark's `udp.stream` of RTP can differ from ours: its SDP
/// dissector pre-creates one-sided RTP conversations (address and port, any
/// peer), so the same 5-tuple may get several `udp.stream` values (seen on
/// `sip-udp_ice-candidates-in-sdp_xlite-zfone-asterisk.pcap`).  The spelled-out
/// filter shows exactly this flow's frames in every case.
pub fn flow_filter(f: &Flow) -> String {
    stream_filter(f.l4, f.stream, &f.client, &f.server)
}

/// [`flow_filter`] from what a flow's record holds, for what outlives the
/// record's reading (a TURN allocation finished during the pass).
pub fn stream_filter(l4: L4, stream: u32, client: &Endpoint, server: &Endpoint) -> String {
    match l4 {
        L4::Tcp => format!("tcp.stream eq {stream}"),
        L4::Udp => tuple_filter(L4::Udp, client, server),
    }
}

/// A display filter for the packets between two transport addresses, both
/// directions, spelled out (`(ip.src == A && udp.srcport == … ) || (…)`).
pub fn tuple_filter(l4: L4, c: &Endpoint, s: &Endpoint) -> String {
    // written piece by piece: through `format!` and std's address
    // formatting this took 810 instructions a filter, and a report makes one
    // for every UDP allocation and ICE pair it lists
    use std::fmt::Write;
    let t = l4.name();
    let mut out = String::with_capacity(128);
    let side = |out: &mut String, e: &Endpoint, dir: &str| {
        out.push_str(if e.ip.is_ipv4() { "ip." } else { "ipv6." });
        out.push_str(dir);
        out.push_str(" == ");
        e.push_ip(out);
        let _ = write!(out, " && {t}.{dir}port == {}", e.port);
    };
    out.push('(');
    side(&mut out, c, "src");
    out.push_str(" && ");
    side(&mut out, s, "dst");
    out.push_str(") || (");
    side(&mut out, s, "src");
    out.push_str(" && ");
    side(&mut out, c, "dst");
    out.push(')');
    out
}

/// `edgetrace flows --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FlowsReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Volatile fields.
    pub meta: Meta,
    /// The capture.
    pub capture: CaptureSummary,
    /// Flows, TCP first then UDP, each by stream index.
    pub flows: Vec<FlowSummary>,
}

/// The rows of `edgetrace flows`, made from the table one by one: TCP flows,
/// then UDP flows, each in stream order (the table's order of creation
/// within a transport).
fn rows(r: &RunResult) -> impl Iterator<Item = FlowSummary> + '_ {
    let t0 = r.read.first_ts.unwrap_or(0);
    let table = &r.flows;
    debug_assert!(
        table.counts_flows(),
        "a flows report needs the flows' counts"
    );
    let of = move |l4: L4| {
        let none = FlowCounts::default();
        (0..table.len() as crate::flow::FlowId).filter_map(move |id| {
            let f = table.get(id);
            (f.l4 == l4).then(|| FlowSummary::from_flow(f, table.counts(id).unwrap_or(&none), t0))
        })
    };
    of(L4::Tcp).chain(of(L4::Udp))
}

/// `edgetrace flows --json` written row by row from the flow table
/// ([`FlowsReport::stream`]): the same JSON as [`FlowsReport`], without
/// holding every row at once.  On a long capture the rows (about 500 bytes
/// each and their display filters) were twice the table they come from.
#[derive(Serialize)]
pub struct FlowsReportStream<R> {
    schema_version: u32,
    meta: Meta,
    capture: CaptureSummary,
    flows: R,
}

impl FlowsReport {
    /// The report of a finished run as JSON to be written, each row made
    /// from the table as it is written.  The run's table must count
    /// ([`crate::pipeline::RunOptions::flow_counts`]).
    pub fn stream<'a>(r: &'a RunResult, input: &str) -> FlowsReportStream<impl Serialize + 'a> {
        FlowsReportStream {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(r),
            flows: Streamed(move || rows(r)),
        }
    }

    /// The report with only its first `limit` rows, and the number of rows
    /// of the whole report: what a table of `limit` rows shows.
    pub fn first_rows(r: &RunResult, input: &str, limit: usize) -> (FlowsReport, usize) {
        let report = FlowsReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(r),
            flows: rows(r).take(limit).collect(),
        };
        (report, r.flows.len())
    }

    /// Builds the report from a finished run, consuming its flow table so
    /// that flow records and their summaries are not held twice.  The run's
    /// table must count ([`crate::pipeline::RunOptions::flow_counts`]).
    pub fn from_run(mut r: RunResult, input: &str) -> FlowsReport {
        let t0 = r.read.first_ts.unwrap_or(0);
        let capture = CaptureSummary::from_run(&r);
        let table = std::mem::take(&mut r.flows);
        let mut flows: Vec<FlowSummary> = Vec::with_capacity(table.len());
        debug_assert!(
            table.counts_flows(),
            "a flows report needs the flows' counts"
        );
        for (f, c) in table.into_flows() {
            flows.push(FlowSummary::from_flow(&f, &c.unwrap_or_default(), t0));
        }
        flows.sort_by_key(|f| (f.transport, f.stream));
        FlowsReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture,
            flows,
        }
    }
}

/// Name of a LINKTYPE_* value (tcpdump.org/linktypes.html), for the summary.
pub fn link_type_name(lt: u32) -> &'static str {
    match lt {
        0 => "NULL",
        1 => "ETHERNET",
        12 | 14 | 101 => "RAW",
        105 => "IEEE802_11",
        108 => "LOOP",
        113 => "LINUX_SLL",
        127 => "IEEE802_11_RADIOTAP",
        228 => "IPV4",
        229 => "IPV6",
        252 => "WIRESHARK_UPPER_PDU",
        276 => "LINUX_SLL2",
        _ => "unsupported",
    }
}

pub mod ice;
pub mod report;
pub mod sip;
pub mod stun;
pub mod tls;
pub mod turn;

/// A JSON list written from an iterator made when it is serialised, so the
/// items (one output per message) are never all held at once: the per-message
/// commands write their messages this way.
pub(crate) struct Streamed<F>(pub(crate) F);

impl<F, I> Serialize for Streamed<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

/// For `skip_serializing_if`: counters that are usually zero stay out of the JSON.
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter written piece by piece is the one `format!` wrote.
    #[test]
    fn tuple_filter_is_the_spelled_out_filter() {
        for (a, b) in [
            ("10.0.0.1:50000", "192.168.1.20:3478"),
            ("[2001:db8::1]:5061", "[fe80::2]:443"),
        ] {
            let c: Endpoint = a.parse::<std::net::SocketAddr>().unwrap().into();
            let s: Endpoint = b.parse::<std::net::SocketAddr>().unwrap().into();
            for l4 in [L4::Udp, L4::Tcp] {
                let t = l4.name();
                let ip = |e: &Endpoint, dir: &str| match e.ip {
                    std::net::IpAddr::V4(a) => format!("ip.{dir} == {a}"),
                    std::net::IpAddr::V6(a) => format!("ipv6.{dir} == {a}"),
                };
                let want = format!(
                    "({} && {t}.srcport == {} && {} && {t}.dstport == {}) || ({} && {t}.srcport == {} && {} && {t}.dstport == {})",
                    ip(&c, "src"),
                    c.port,
                    ip(&s, "dst"),
                    s.port,
                    ip(&s, "src"),
                    s.port,
                    ip(&c, "dst"),
                    c.port
                );
                assert_eq!(tuple_filter(l4, &c, &s), want);
            }
        }
    }
}
