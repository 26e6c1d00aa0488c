//! Output model of `edgetrace tls`: one entry per TLS connection (roles,
//! hellos, certificates with an EKU verdict by TLS role, alerts, handshake
//! outcome, application data, how it ended, health notes, reconnects) and
//! the 8057 section (Web Conferencing Edge ↔ Front End, PROTOCOLS.md §8.5,
//! DOMAIN.md stories 1–2).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{CaptureSummary, Meta, SCHEMA_VERSION};
use crate::analyze::tls::{Conn, Core, Health};
use crate::findings::{Finding, Merging};
use crate::flow::{Endpoint, Flow, FlowId};
use crate::pipeline::RunResult;
use crate::proto::tls;
use crate::proto::x509::TlsRole;

/// A new connection between the same hosts and server port within this
/// long after the previous one ended counts as a reconnect.
pub const RECONNECT_WINDOW_NS: i64 = 60_000_000_000;
/// Retransmissions this long before a RST count as "before the RST".
pub const RETRANS_BEFORE_RST_NS: i64 = 30_000_000_000;
/// Silence before a RST this long suggests an idle timeout.
pub const IDLE_RST_NS: i64 = 5_000_000_000;
/// The Web Conferencing Edge internal port (PSOM over MTLS).
pub const PORT_8057: u16 = 8057;

/// ClientHello as output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HelloOut {
    /// Frame.
    pub frame: u64,
    /// Sender.
    pub sender: Endpoint,
    /// legacy_version.
    pub version: String,
    /// supported_versions offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_versions: Vec<String>,
    /// SNI.
    pub sni: Option<String>,
    /// ALPN offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// Cipher suites offered (names).
    pub cipher_suites: Vec<String>,
    /// Extension type numbers in order.
    pub extensions: Vec<u16>,
}

/// ServerHello as output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ServerHelloOut {
    /// Frame.
    pub frame: u64,
    /// Sender.
    pub sender: Endpoint,
    /// Negotiated version (supported_versions when present).
    pub version: String,
    /// Cipher suite selected.
    pub cipher_suite: String,
    /// ALPN selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// Extension type numbers in order.
    pub extensions: Vec<u16>,
}

/// A certificate as output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CertOut {
    /// Frame of its Certificate message.
    pub frame: u64,
    /// Sender.
    pub sender: Endpoint,
    /// `client` (ClientHello side) or `server`.
    pub tls_role: &'static str,
    /// `tcp-client` (SYN sender) or `tcp-server`.
    pub tcp_role: &'static str,
    /// Position in the chain (0 = the sender's own).
    pub index: usize,
    /// Subject DN.
    pub subject: Option<String>,
    /// Issuer DN.
    pub issuer: Option<String>,
    /// Serial (colon hex).
    pub serial: Option<String>,
    /// SAN dNSName entries.
    pub san_dns: Vec<String>,
    /// SAN iPAddress entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub san_ip: Vec<String>,
    /// notBefore (RFC 3339).
    pub not_before: Option<String>,
    /// notAfter (RFC 3339).
    pub not_after: Option<String>,
    /// EKU purposes; null when the extension is absent.
    pub eku: Option<Vec<String>>,
    /// Key usage.
    pub key_usage: Option<String>,
    /// For the end-entity certificate: does its EKU allow its TLS role?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eku_ok: Option<bool>,
    /// The verdict in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eku_verdict: Option<String>,
    /// Why it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An alert as output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AlertOut {
    /// Frame.
    pub frame: u64,
    /// Seconds since the first frame of the capture.
    pub time_s: f64,
    /// Sender.
    pub sender: Endpoint,
    /// Sender's TLS role (`client`/`server`) when the hellos were seen.
    pub sender_tls_role: Option<&'static str>,
    /// `fatal`, `warning`, or `encrypted`.
    pub level: &'static str,
    /// Description name (`unsupported_certificate`), or null when encrypted.
    pub description: Option<&'static str>,
    /// Description code (43).
    pub code: Option<u8>,
}

/// One step of a connection's handshake timeline.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StepOut {
    /// Frame of the record's first byte.
    pub frame: u64,
    /// Frame of its last byte when the record spans TCP segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_frame: Option<u64>,
    /// Sender.
    pub from: Endpoint,
    /// `ClientHello`, `Certificate (2 cert(s))`, `Alert fatal …`, `Finished (encrypted)`…
    pub what: String,
}

/// Application data one way.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DataOut {
    /// Records.
    pub records: u64,
    /// Bytes (record fragments).
    pub bytes: u64,
}

/// Health notes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HealthOut {
    /// Longest silence between packets, s, and the frame that ended it.
    pub max_idle_s: Option<f64>,
    /// Frame that ended the longest silence.
    pub max_idle_end_frame: Option<u64>,
    /// Retransmissions in the connection.
    pub retransmissions: u64,
    /// First RST: frame.
    pub rst_frame: Option<u64>,
    /// Who sent it.
    pub rst_by: Option<Endpoint>,
    /// Silence before the RST, s.
    pub idle_before_rst_s: Option<f64>,
    /// Retransmissions in the 30 s before the RST.
    pub retransmissions_before_rst: Option<u64>,
    /// Small (≤ 64 bytes) application records after the handshake, both ways.
    pub small_records: u64,
    /// Median interval between small records from the busier side, s
    /// (a heartbeat when it is regular).
    pub small_record_interval_s: Option<f64>,
}

/// One TLS connection.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConnOut {
    /// `tcp.stream` index.
    pub stream: u32,
    /// Display filter.
    pub filter: String,
    /// TCP client (SYN sender).
    pub tcp_client: Endpoint,
    /// TCP server.
    pub tcp_server: Endpoint,
    /// ClientHello sender.
    pub tls_client: Option<Endpoint>,
    /// `normal`, `reversed` (the TCP server sent the ClientHello), or `unknown`.
    pub roles: &'static str,
    /// MS pseudo-TLS (MS-TURN over 443), not a real handshake.
    pub pseudo_tls: bool,
    /// An SSLv2-format ClientHello was sent.
    pub sslv2_client_hello: bool,
    /// Negotiated version.
    pub version: Option<String>,
    /// ClientHello.
    pub client_hello: Option<HelloOut>,
    /// ServerHello.
    pub server_hello: Option<ServerHelloOut>,
    /// A TLS 1.3 HelloRetryRequest was sent.
    pub hello_retry_request: bool,
    /// CertificateRequest (mutual TLS asked for): frame.
    pub certificate_request_frame: Option<u64>,
    /// Certificates in order.
    pub certificates: Vec<CertOut>,
    /// TLS 1.3: certificates are encrypted and cannot be judged.
    pub certificates_encrypted: bool,
    /// Alerts.
    pub alerts: Vec<AlertOut>,
    /// Handshake messages, ChangeCipherSpec, alerts and encrypted Finished in order.
    pub timeline: Vec<StepOut>,
    /// `complete`, `failed`, `incomplete` or `not-tls`.
    pub handshake: &'static str,
    /// ClientHello to the last Finished, ms.
    pub handshake_ms: Option<f64>,
    /// Application data from the TCP client.
    pub data_from_tcp_client: DataOut,
    /// Application data from the TCP server.
    pub data_from_tcp_server: DataOut,
    /// How it ended, in words.
    pub ended: String,
    /// Health.
    pub health: HealthOut,
    /// Stream index of the connection this one replaces (same hosts and
    /// server port, started ≤ 60 s after that one ended).
    pub reconnect_of: Option<u32>,
    /// Seconds between that one's end and this one's start.
    pub reconnect_after_s: Option<f64>,
    /// What is worth knowing, in sentences.
    pub notes: Vec<String>,
    /// Damage and non-TLS bytes with frames.
    pub problems: Vec<String>,
}

/// One Front End → Edge pair on 8057.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Pair8057 {
    /// TCP client address (the Front End).
    pub front_end: String,
    /// TCP server (the Edge internal interface, :8057).
    pub edge: Endpoint,
    /// Connections.
    pub connections: usize,
    /// Most connections open at once.
    pub max_concurrent: usize,
    /// Reconnects (see `reconnect_of`).
    pub reconnects: usize,
}

/// The 8057 section.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Section8057 {
    /// Pairs.
    pub pairs: Vec<Pair8057>,
    /// Flags with the stream they concern.
    pub flags: Vec<Flag8057>,
}

/// One 8057 observation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Flag8057 {
    /// `reversed-as-expected`, `normal-direction`, `client-cert-without-clientauth`,
    /// `idle-reset`, `reconnect-loop`.
    pub id: &'static str,
    /// Stream.
    pub stream: u32,
    /// Display filter.
    pub filter: String,
    /// Explanation.
    pub detail: String,
}

/// Counts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TlsSummary {
    /// TLS connections (pseudo-TLS included).
    pub connections: usize,
    /// With reversed roles.
    pub reversed: usize,
    /// Handshakes completed.
    pub completed: usize,
    /// Fatal alerts.
    pub fatal_alerts: usize,
    /// End-entity certificates whose EKU does not allow their TLS role.
    pub eku_failures: usize,
    /// MS pseudo-TLS connections.
    pub pseudo_tls: usize,
}

/// `edgetrace tls --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TlsReport {
    /// Schema version.
    pub schema_version: u32,
    /// Volatile fields.
    pub meta: Meta,
    /// The capture.
    pub capture: CaptureSummary,
    /// Counts.
    pub summary: TlsSummary,
    /// Connections by stream.
    pub connections: Vec<ConnOut>,
    /// Port 8057 (present when a connection uses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_8057: Option<Section8057>,
}

fn secs(ns: i64) -> f64 {
    crate::timefmt::seconds(ns)
}

fn ends(c: &Conn, d: usize) -> Endpoint {
    if d == 0 {
        c.client
    } else {
        c.server
    }
}

fn median_interval(times: &[i64]) -> Option<f64> {
    if times.len() < 3 {
        return None;
    }
    let mut d: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    d.sort_unstable();
    Some(secs(d[d.len() / 2]))
}

fn conn_out(c: &Conn, h: Option<&Health>, f: &Flow, t0: i64) -> ConnOut {
    let tls_dir = c
        .client_hello
        .as_ref()
        .map(|x| x.0)
        .or(c.sslv2_hello.map(|x| x.0))
        .or(c.server_hello.as_ref().map(|x| 1 - x.0));
    let roles = match tls_dir {
        Some(0) => "normal",
        Some(_) => "reversed",
        None => "unknown",
    };
    let tls_role = |d: usize| -> Option<&'static str> {
        tls_dir.map(|t| if t == d { "client" } else { "server" })
    };
    let negotiated = c.server_hello.as_ref().map(|s| s.2.negotiated());
    let is13 = negotiated.is_some_and(tls::is_tls13);
    let certificates: Vec<CertOut> = c
        .certs
        .iter()
        .map(|sc| {
            let role = tls_role(sc.dir);
            let mut o = CertOut {
                frame: sc.frame,
                sender: ends(c, sc.dir),
                tls_role: role.unwrap_or("unknown"),
                tcp_role: if sc.dir == 0 {
                    "tcp-client"
                } else {
                    "tcp-server"
                },
                index: sc.index,
                subject: None,
                issuer: None,
                serial: None,
                san_dns: Vec::new(),
                san_ip: Vec::new(),
                not_before: None,
                not_after: None,
                eku: None,
                key_usage: None,
                eku_ok: None,
                eku_verdict: None,
                error: None,
            };
            match &*sc.info {
                Ok(i) => {
                    o.subject = Some(i.subject.clone());
                    o.issuer = Some(i.issuer.clone());
                    o.serial = Some(i.serial.clone());
                    o.san_dns = i.san_dns.clone();
                    o.san_ip = i.san_ip.clone();
                    o.not_before = Some(crate::timefmt::rfc3339(
                        i.not_before.saturating_mul(1_000_000_000),
                    ));
                    o.not_after = Some(crate::timefmt::rfc3339(
                        i.not_after.saturating_mul(1_000_000_000),
                    ));
                    o.eku = i.eku.clone();
                    o.key_usage = i.key_usage.clone();
                    if sc.index == 0 {
                        if let Some(r) = role {
                            let (ok, why) = i.eku_allows(if r == "client" {
                                TlsRole::Client
                            } else {
                                TlsRole::Server
                            });
                            o.eku_ok = Some(ok);
                            o.eku_verdict = Some(format!("{r} certificate: {why}"));
                        }
                    }
                }
                Err(e) => o.error = Some(e.clone()),
            }
            o
        })
        .collect();
    let alerts: Vec<AlertOut> = c
        .alerts
        .iter()
        .map(|a| AlertOut {
            frame: a.frame,
            time_s: secs(a.ts_ns - t0),
            sender: ends(c, a.dir),
            sender_tls_role: tls_role(a.dir),
            level: match a.level {
                Some(2) => "fatal",
                Some(_) => "warning",
                None => "encrypted",
            },
            description: a.description.map(tls::alert_name),
            code: a.description,
        })
        .collect();
    let fatal = alerts.iter().find(|a| a.level == "fatal");
    let both_finished = c.dirs.iter().all(|d| d.finished_frame.is_some());
    let handshake = if c.pseudo_tls {
        "not-tls"
    } else if both_finished
        && fatal.is_none_or(|a| {
            c.dirs
                .iter()
                .filter_map(|d| d.finished_frame)
                .max()
                .is_some_and(|f| a.frame > f)
        })
    {
        "complete"
    } else if fatal.is_some() {
        "failed"
    } else {
        "incomplete"
    };
    let handshake_ms = (handshake == "complete")
        .then(|| {
            let start = c.client_hello.as_ref()?.2;
            let end = c.dirs.iter().filter_map(|d| d.finished_ts).max()?;
            Some(((end - start) as f64 / 1e3).round() / 1e3)
        })
        .flatten();
    let tcp = f.tcp.as_deref();
    let rst_by = tcp.and_then(|t| {
        t.rst()
            .into_iter()
            .enumerate()
            .filter_map(|(d, x)| x.map(|fr| (fr, d)))
            .min()
    });
    let fin_by: Vec<usize> = tcp
        .map(|t| (0..2).filter(|&d| t.fin()[d].is_some()).collect())
        .unwrap_or_default();
    let close_notify: Vec<usize> = c
        .alerts
        .iter()
        .filter(|a| a.description == Some(0))
        .map(|a| a.dir)
        .collect();
    let who = |d: usize| {
        format!(
            "{} ({})",
            ends(c, d),
            tls_role(d).map(|r| format!("TLS {r}")).unwrap_or_default()
        )
    };
    let mut ended = Vec::new();
    for &d in &close_notify {
        ended.push(format!("close_notify from {}", who(d)));
    }
    if close_notify.is_empty() && c.alerts.iter().any(|a| a.level.is_none()) {
        ended.push("encrypted alert (probably close_notify)".into());
    }
    for &d in &fin_by {
        ended.push(format!("FIN from {}", who(d)));
    }
    if let Some((fr, d)) = rst_by {
        ended.push(format!("RST from {} in frame {fr}", who(d)));
    }
    if ended.is_empty() {
        ended.push("still open at the end of the capture".into());
    }
    let small_busier = c
        .dirs
        .iter()
        .max_by_key(|d| d.small_records)
        .map(|d| &d.small_times);
    let health = HealthOut {
        max_idle_s: h.and_then(|h| h.max_idle).map(|(g, _)| secs(g)),
        max_idle_end_frame: h.and_then(|h| h.max_idle).map(|(_, f)| f),
        retransmissions: h.map(|h| h.retrans_total).unwrap_or(0),
        rst_frame: h.and_then(|h| h.rst).map(|r| r.0),
        rst_by: h.and_then(|h| h.rst).map(|r| ends(c, r.2)),
        idle_before_rst_s: h.and_then(|h| h.rst).map(|r| secs(r.3)),
        retransmissions_before_rst: h.and_then(|h| {
            let (_, ts, _, _) = h.rst?;
            Some(
                h.retrans
                    .iter()
                    .filter(|r| r.1 <= ts && ts - r.1 <= RETRANS_BEFORE_RST_NS)
                    .count() as u64,
            )
        }),
        small_records: c.dirs.iter().map(|d| d.small_records).sum(),
        small_record_interval_s: small_busier.and_then(|t| median_interval(t)),
    };
    let mut notes = Vec::new();
    if c.pseudo_tls {
        notes.push("MS pseudo-TLS: a fixed fake handshake before MS-TURN framing (MS-TURN §2.1.1), not TLS".into());
    }
    if roles == "reversed" {
        notes.push(format!(
            "reversed roles: {} opened TCP but {} sent the ClientHello",
            c.client, c.server
        ));
    }
    for cert in certificates.iter().filter(|x| x.eku_ok == Some(false)) {
        let after = alerts
            .iter()
            .find(|a| a.frame >= cert.frame && a.level == "fatal")
            .map(|a| {
                format!(
                    "; then fatal alert {} from {}",
                    a.description.unwrap_or("?"),
                    a.sender
                )
            })
            .unwrap_or_default();
        notes.push(format!(
            "{} sent a {} certificate ({}) whose EKU does not allow it: {}{after}",
            cert.sender,
            cert.tls_role,
            cert.subject.as_deref().unwrap_or("?"),
            cert.eku_verdict.as_deref().unwrap_or("")
        ));
    }
    if is13 {
        notes.push(
            "TLS 1.3: certificates are encrypted and cannot be judged from the capture".into(),
        );
    }
    if let (Some(idle), Some(by)) = (health.idle_before_rst_s, health.rst_by) {
        if idle * 1e9 >= IDLE_RST_NS as f64 {
            notes.push(format!(
                "RST from {by} after {idle:.1} s of silence ({} retransmission(s) in the 30 s before): an idle timeout on a firewall or load balancer is likely",
                health.retransmissions_before_rst.unwrap_or(0)
            ));
        }
    }
    ConnOut {
        stream: c.stream,
        filter: stream_filter(c.stream),
        tcp_client: c.client,
        tcp_server: c.server,
        tls_client: tls_dir.map(|d| ends(c, d)),
        roles,
        pseudo_tls: c.pseudo_tls,
        sslv2_client_hello: c.sslv2_hello.is_some(),
        version: negotiated.map(tls::version_name),
        client_hello: c.client_hello.as_ref().map(|(d, frame, _, ch)| HelloOut {
            frame: *frame,
            sender: ends(c, *d),
            version: tls::version_name(ch.version),
            supported_versions: ch
                .supported_versions
                .iter()
                .map(|v| tls::version_name(*v))
                .collect(),
            sni: ch.sni.clone(),
            alpn: ch.alpn.clone(),
            cipher_suites: ch.ciphers.iter().map(|x| tls::cipher_name(*x)).collect(),
            extensions: ch.extensions.clone(),
        }),
        server_hello: c
            .server_hello
            .as_ref()
            .map(|(d, frame, sh)| ServerHelloOut {
                frame: *frame,
                sender: ends(c, *d),
                version: tls::version_name(sh.negotiated()),
                cipher_suite: tls::cipher_name(sh.cipher),
                alpn: sh.alpn.clone(),
                extensions: sh.extensions.clone(),
            }),
        hello_retry_request: c.hello_retry,
        certificate_request_frame: c.cert_request.map(|x| x.1),
        certificates,
        certificates_encrypted: is13,
        alerts,
        timeline: c
            .events
            .iter()
            .map(|e| StepOut {
                frame: e.frame,
                end_frame: (e.end_frame != e.frame).then_some(e.end_frame),
                from: ends(c, e.dir),
                what: e.what.clone(),
            })
            .collect(),
        handshake,
        handshake_ms,
        data_from_tcp_client: DataOut {
            records: c.dirs[0].app_records,
            bytes: c.dirs[0].app_bytes,
        },
        data_from_tcp_server: DataOut {
            records: c.dirs[1].app_records,
            bytes: c.dirs[1].app_bytes,
        },
        ended: ended.join(", "),
        health,
        reconnect_of: None,
        reconnect_after_s: None,
        notes,
        problems: c
            .problems
            .iter()
            .map(|(f, w)| format!("frame {f}: {w}"))
            .collect(),
    }
}

/// What the reconnect analysis, the 8057 section and the summary read of
/// a connection: kept for every connection, where a report keeps only the
/// listed ones whole.
struct Brief {
    stream: u32,
    tcp_client: Endpoint,
    tcp_server: Endpoint,
    roles: &'static str,
    handshake_complete: bool,
    pseudo_tls: bool,
    fatal_alerts: usize,
    first_fatal: Option<AlertOut>,
    /// Certificates whose EKU does not allow their role: (role, subject).
    failing_certs: Vec<(&'static str, Option<String>)>,
    idle_before_rst_s: Option<f64>,
    rst_by: Option<Endpoint>,
    retransmissions_before_rst: Option<u64>,
    /// The connection this one reconnects after (its index), once known.
    reconnect_of: Option<usize>,
}

impl Brief {
    fn of(o: &ConnOut) -> Brief {
        let fatal = || o.alerts.iter().filter(|a| a.level == "fatal");
        Brief {
            stream: o.stream,
            tcp_client: o.tcp_client,
            tcp_server: o.tcp_server,
            roles: o.roles,
            handshake_complete: o.handshake == "complete",
            pseudo_tls: o.pseudo_tls,
            fatal_alerts: fatal().count(),
            first_fatal: fatal().next().cloned(),
            failing_certs: o
                .certificates
                .iter()
                .filter(|c| c.eku_ok == Some(false))
                .map(|c| (c.tls_role, c.subject.clone()))
                .collect(),
            idle_before_rst_s: o.health.idle_before_rst_s,
            rst_by: o.health.rst_by,
            retransmissions_before_rst: o.health.retransmissions_before_rst,
            reconnect_of: None,
        }
    }
}

/// Finds reconnects: same client host, server host and server port, a new
/// connection starting within [`RECONNECT_WINDOW_NS`] after one ended.
fn mark_reconnects(all: &mut [Brief], flows: &[&Flow]) {
    // Connections between the same client host and server, by (end, index):
    // the one a connection reconnects after is the last to end before it
    // started (the highest index among equal ends), within the window.  A
    // sorted list per pair keeps this O(n log n) for captures of many
    // connections.
    let mut pairs: HashMap<(std::net::IpAddr, Endpoint), Vec<(i64, usize)>> = HashMap::new();
    for (i, c) in all.iter().enumerate() {
        pairs
            .entry((c.tcp_client.ip, c.tcp_server))
            .or_default()
            .push((flows[i].last_ts, i));
    }
    for list in pairs.values_mut() {
        list.sort_unstable();
    }
    for (i, c) in all.iter_mut().enumerate() {
        let list = &pairs[&(c.tcp_client.ip, c.tcp_server)];
        let started = flows[i].first_ts;
        let mut k = list.partition_point(|&(end, _)| end <= started);
        while k > 0 {
            k -= 1;
            let (end, j) = list[k];
            if j == i {
                continue;
            }
            if started - end <= RECONNECT_WINDOW_NS {
                c.reconnect_of = Some(j);
            }
            break;
        }
    }
}

/// Writes the reconnects found into the connections kept whole (the first
/// of `all`).
fn note_reconnects(out: &mut [ConnOut], all: &[Brief], flows: &[&Flow]) {
    for (i, o) in out.iter_mut().enumerate() {
        if let Some(j) = all[i].reconnect_of {
            let gap = flows[i].first_ts - flows[j].last_ts;
            o.reconnect_of = Some(all[j].stream);
            o.reconnect_after_s = Some(secs(gap));
            o.notes.push(format!(
                "reconnect {:.1} s after stream {} ended, from a new port {}",
                secs(gap),
                all[j].stream,
                o.tcp_client.port
            ));
        }
    }
}

fn section_8057(out: &[Brief], flows: &[&Flow]) -> Option<Section8057> {
    let idx: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].tcp_server.port == PORT_8057 || out[i].tcp_client.port == PORT_8057)
        .collect();
    if idx.is_empty() {
        return None;
    }
    let mut pairs: BTreeMap<(String, Endpoint), Vec<usize>> = BTreeMap::new();
    let mut flags = Vec::new();
    for &i in &idx {
        let c = &out[i];
        pairs
            .entry((c.tcp_client.ip.to_string(), c.tcp_server))
            .or_default()
            .push(i);
        let flag = |id: &'static str, detail: String| Flag8057 {
            id,
            stream: c.stream,
            filter: stream_filter(c.stream),
            detail,
        };
        match c.roles {
            "reversed" => flags.push(flag(
                "reversed-as-expected",
                format!(
                    "{} (Front End) opened TCP to {}; the Edge sent the ClientHello, as on every 8057 link",
                    c.tcp_client, c.tcp_server
                ),
            )),
            "normal" => flags.push(flag(
                "normal-direction",
                format!(
                    "{} opened TCP and also sent the ClientHello: unexpected on 8057, where the Edge ({}) is the TLS client",
                    c.tcp_client, c.tcp_server
                ),
            )),
            _ => {}
        }
        for (_, subject) in c.failing_certs.iter().filter(|x| x.0 == "client") {
            let alert = c
                .first_fatal
                .as_ref()
                .map(|a| {
                    format!(
                        "; {} answered with fatal alert {} ({})",
                        a.sender,
                        a.description.unwrap_or("?"),
                        a.code.unwrap_or(0)
                    )
                })
                .unwrap_or_default();
            flags.push(flag(
                "client-cert-without-clientauth",
                format!(
                    "the Edge's certificate {} lacks the Client Authentication EKU it needs as TLS client on 8057{alert}",
                    subject.as_deref().unwrap_or("?")
                ),
            ));
        }
        if let (Some(idle), Some(by)) = (c.idle_before_rst_s, c.rst_by) {
            if idle * 1e9 >= IDLE_RST_NS as f64 {
                flags.push(flag(
                    "idle-reset",
                    format!(
                        "RST from {by} after {idle:.1} s idle ({} retransmission(s) before): firewall idle timeout suspected",
                        c.retransmissions_before_rst.unwrap_or(0)
                    ),
                ));
            }
        }
    }
    let pairs = pairs
        .into_iter()
        .map(|((fe, edge), list)| {
            // most connections open at once: sweep start/end times
            let mut ev: Vec<(i64, i32)> = list
                .iter()
                .flat_map(|&i| [(flows[i].first_ts, 1), (flows[i].last_ts, -1)])
                .collect();
            ev.sort();
            let (mut cur, mut max) = (0i32, 0i32);
            for (_, d) in ev {
                cur += d;
                max = max.max(cur);
            }
            let reconnects = list
                .iter()
                .filter(|&&i| out[i].reconnect_of.is_some())
                .count();
            if reconnects >= 3 {
                let c = &out[*list.last().unwrap()];
                flags.push(Flag8057 {
                    id: "reconnect-loop",
                    stream: c.stream,
                    filter: format!("tcp.port == {PORT_8057} && ip.addr == {}", c.tcp_client.ip),
                    detail: format!(
                        "{reconnects} reconnects from {fe} to {edge}: the link keeps failing"
                    ),
                });
            }
            Pair8057 {
                front_end: fe,
                edge,
                connections: list.len(),
                max_concurrent: max.max(0) as usize,
                reconnects,
            }
        })
        .collect();
    Some(Section8057 { pairs, flags })
}

/// `tcp.stream eq N`: a connection's display filter.
fn stream_filter(stream: u32) -> String {
    format!("tcp.stream eq {stream}")
}

/// The core's connections in stream order (their flows).
fn by_stream(core: &Core) -> Vec<FlowId> {
    let mut order: Vec<(u32, FlowId)> = core.conns.iter().map(|(&id, c)| (c.stream, id)).collect();
    order.sort_unstable();
    order.into_iter().map(|(_, id)| id).collect()
}

impl TlsReport {
    /// Builds the report.
    pub fn build(run: &RunResult, core: &Core, input: &str) -> TlsReport {
        let order = by_stream(core);
        let conns = order
            .iter()
            .filter_map(|id| Some((&**core.conns.get(id)?, core.health.get(id).map(|h| &**h))));
        Self::build_with(run, input, &order, conns, usize::MAX, None)
    }

    /// What `edgetrace report` shows of the connections, and their
    /// findings.  Only the first `listed` connections (by stream) are kept
    /// whole; of the others the report keeps what the reconnect analysis,
    /// the 8057 section and the summary read (a few fields each), and their
    /// findings ([`crate::findings::tls_connection`], merged with
    /// [`crate::findings::Merging`], then [`crate::findings::tls_8057`]).
    /// Each connection is taken out of `core` and freed once its output is
    /// made, so that a capture of many connections never holds them all
    /// with their outputs.  The summary counts are those of
    /// [`TlsReport::build`].
    pub fn build_for_report(
        run: &RunResult,
        mut core: Core,
        input: &str,
        listed: usize,
    ) -> (TlsReport, Vec<Finding>) {
        let order = by_stream(&core);
        let conns: Vec<(Box<Conn>, Option<Box<Health>>)> = order
            .iter()
            .filter_map(|id| Some((core.conns.remove(id)?, core.health.remove(id))))
            .collect();
        let mut merged = Merging::default();
        let report = Self::build_with(
            run,
            input,
            &order,
            conns.into_iter(),
            listed,
            Some(&mut merged),
        );
        let mut findings = merged.finish();
        if let Some(x) = &report.port_8057 {
            crate::findings::tls_8057(x, &mut findings);
        }
        (report, findings)
    }

    /// Connections (in stream order, `order` their flows) are read 256 at a
    /// time, their outputs (each its connection's own) made side by side,
    /// then kept (the first `listed`) or read for what the whole capture
    /// needs and dropped, in order.
    fn build_with<C, H>(
        run: &RunResult,
        input: &str,
        order: &[FlowId],
        mut conns: impl Iterator<Item = (C, Option<H>)>,
        listed: usize,
        mut findings: Option<&mut Merging>,
    ) -> TlsReport
    where
        C: std::borrow::Borrow<Conn> + Send,
        H: std::borrow::Borrow<Health> + Send,
    {
        use rayon::prelude::*;
        let t0 = run.read.first_ts.unwrap_or(0);
        let want_findings = findings.is_some();
        let mut out: Vec<ConnOut> = Vec::new();
        let mut all: Vec<Brief> = Vec::new();
        loop {
            let chunk: Vec<(C, Option<H>)> = conns.by_ref().take(256).collect();
            if chunk.is_empty() {
                break;
            }
            let first = all.len();
            let made: Vec<(Brief, Option<ConnOut>, Vec<Finding>)> = chunk
                .into_par_iter()
                .enumerate()
                .map(|(k, (c, h))| {
                    let c = c.borrow();
                    let o = conn_out(c, h.as_ref().map(|h| h.borrow()), run.flows.get(c.flow), t0);
                    let mut f = Vec::new();
                    if want_findings {
                        crate::findings::tls_connection(&o, &mut f);
                    }
                    (Brief::of(&o), (first + k < listed).then_some(o), f)
                })
                .collect();
            for (b, o, f) in made {
                all.push(b);
                out.extend(o);
                if let Some(m) = findings.as_deref_mut() {
                    f.into_iter().for_each(|x| m.add(x));
                }
            }
        }
        let flows: Vec<&Flow> = order.iter().map(|&id| run.flows.get(id)).collect();
        mark_reconnects(&mut all, &flows);
        note_reconnects(&mut out, &all, &flows);
        let port_8057 = section_8057(&all, &flows);
        let summary = TlsSummary {
            connections: all.len(),
            reversed: all.iter().filter(|c| c.roles == "reversed").count(),
            completed: all.iter().filter(|c| c.handshake_complete).count(),
            fatal_alerts: all.iter().map(|c| c.fatal_alerts).sum(),
            eku_failures: all.iter().map(|c| c.failing_certs.len()).sum(),
            pseudo_tls: all.iter().filter(|c| c.pseudo_tls).count(),
        };
        TlsReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(run),
            summary,
            connections: out,
            port_8057,
        }
    }
}
