//! Output model of `edgetrace report`: the capture, flows by protocol, the
//! findings (worst first), and each analyzer's timelines in compact form —
//! TURN allocations, SIP dialogs, ICE sessions (pairs and nomination; the
//! per-check list stays in `edgetrace ice`), TLS connections.  Never a
//! per-packet dump, so a report is a small fraction of the capture.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ice::{IceReport, SessionOut};
use super::sip::{DialogOut, Folded};
use super::tls::{ConnOut, Section8057, TlsReport};
use super::turn::{AllocationOut, EndedAllocations, TurnReport};
use super::{CaptureSummary, Meta, Redaction, SCHEMA_VERSION};
use crate::analyze::all::Analysis;
use crate::findings::{self, Finding, Severity};
use crate::flow::{FlowId, L4};
use crate::roles::Roles;

/// Flows that carried one protocol.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProtocolFlows {
    /// How many.
    pub count: usize,
    /// Their streams (`udp 3`), the first [`MAX_STREAMS_LISTED`].
    pub streams: Vec<String>,
}

/// Streams listed per protocol.
pub const MAX_STREAMS_LISTED: usize = 50;

/// TURN allocations, SIP dialogs, ICE sessions and TLS connections listed in
/// a report, each in capture order; `omitted` counts the rest (`turn`, `sip`,
/// `ice` and `tls` list them all).  Findings are computed from all of them.
/// A report is a summary to paste into a ticket: a capture of 12,000
/// allocations would otherwise make 40 MB of JSON.
pub const MAX_LISTED: usize = 1000;

/// Counts of what each analyzer found.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Counts {
    /// STUN/TURN/MS-TURN messages.
    pub stun_messages: usize,
    /// TURN allocations.
    pub turn_allocations: usize,
    /// SIP messages.
    pub sip_messages: usize,
    /// SIP dialogs.
    pub sip_dialogs: usize,
    /// ICE sessions.
    pub ice_sessions: usize,
    /// TLS connections.
    pub tls_connections: usize,
    /// Findings by severity.
    pub findings: BTreeMap<&'static str, usize>,
}

/// `edgetrace report --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// Schema version.
    pub schema_version: u32,
    /// Volatile fields.
    pub meta: Meta,
    /// The capture.
    pub capture: CaptureSummary,
    /// Flows by the protocol found in them (`stun`, `sip`, `tls`, `pseudo-tls`, `other`).
    pub flows: BTreeMap<String, ProtocolFlows>,
    /// Counts.
    pub counts: Counts,
    /// Findings, worst first.
    pub findings: Vec<Finding>,
    /// TURN allocations.
    pub turn: Vec<AllocationOut>,
    /// SIP dialogs.
    pub sip: Vec<DialogOut>,
    /// ICE sessions (without the per-check list).
    pub ice: Vec<SessionOut>,
    /// TLS connections.
    pub tls: Vec<ConnOut>,
    /// The 8057 section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_8057: Option<Section8057>,
    /// Entries left out of `turn`, `sip`, `ice` and `tls` (each lists the
    /// first [`MAX_LISTED`]); absent when nothing was left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<String, usize>,
}

/// Options of a report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Secrets and usernames.
    pub redaction: Redaction,
    /// Roles of addresses.
    pub roles: Roles,
    /// Finding knobs.
    pub findings: findings::Options,
}

fn flows_by_protocol(a: &Analysis) -> BTreeMap<String, ProtocolFlows> {
    // by flow id (a vector, not a map: one look-up per flow of the capture,
    // 83,000 at 2 GiB); STUN first, then SIP, TLS over both
    let mut proto: Vec<Option<&'static str>> = vec![None; a.run.flows.len()];
    let mut mark = |f: FlowId, p: &'static str, over: bool| {
        if let Some(x) = proto.get_mut(f as usize) {
            if over || x.is_none() {
                *x = Some(p);
            }
        }
    };
    for &f in &a.stun.stun_flows {
        mark(f, "stun", false);
    }
    for &f in &a.sip.flows {
        mark(f, "sip", false);
    }
    for (id, c) in &a.tls.conns {
        mark(*id, if c.pseudo_tls { "pseudo-tls" } else { "tls" }, true);
    }
    // protocol → (flows, the first streams)
    type Tally = (usize, BTreeSet<(L4, u32)>);
    let mut out: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for (f, p) in a.run.flows.flows().zip(&proto) {
        let p = p.unwrap_or(match f.l4 {
            L4::Tcp => "other-tcp",
            L4::Udp => "other-udp",
        });
        let e = out.entry(p).or_default();
        e.0 += 1;
        if e.1.len() < MAX_STREAMS_LISTED {
            e.1.insert((f.l4, f.stream));
        }
    }
    out.into_iter()
        .map(|(k, (count, s))| {
            (
                k.to_string(),
                ProtocolFlows {
                    count,
                    streams: s
                        .iter()
                        .map(|(l4, st)| format!("{} {st}", l4.name()))
                        .collect(),
                },
            )
        })
        .collect()
}

/// What a report's pass folded as it went, besides the [`Analysis`].
pub struct Folds {
    /// SIP dialogs, folded as the pass found their messages (no SIP message
    /// is kept to the end).
    pub sip: Folded,
    /// TURN allocations finished once they were over (the others are in
    /// [`Analysis::allocations`]).
    pub turn: EndedAllocations,
}

/// Reads a capture for a report: every analyzer, with SIP dialogs and TURN
/// allocations folded during the pass.
pub fn analyze(
    reader: crate::capture::CaptureReader,
    opts: &crate::pipeline::RunOptions,
    input: &str,
    o: &ReportOptions,
) -> Result<(Analysis, Folds), crate::capture::CaptureError> {
    let mut folder = super::sip::DialogFolder::for_report(o.redaction, &o.roles, MAX_LISTED);
    let mut turn = EndedAllocations::new(MAX_LISTED, o.findings);
    let sinks = crate::analyze::all::Sinks {
        sip: &mut folder,
        turn: &mut turn,
    };
    let a = crate::analyze::all::analyze_for_report(reader, opts, MAX_LISTED, sinks)?;
    let sip = folder.finish(&a.run, &a.sip, input);
    Ok((a, Folds { sip, turn }))
}

impl Report {
    /// Builds the report from every analyzer's result and what was folded
    /// during the pass ([`analyze`]).  It takes the ICE sessions and TLS
    /// connections out of `a`, reads each for its findings and frees it once
    /// its output is made, keeping the outputs of the listed ones only.
    pub fn build(a: &mut Analysis, folds: Folds, input: &str, o: &ReportOptions) -> Report {
        let Folds { sip, turn: ended } = folds;
        let flows = flows_by_protocol(a);
        let tls_core = std::mem::take(&mut a.tls);
        let Folded {
            report: sip,
            findings: sip_findings,
        } = sip;
        let capture = CaptureSummary::from_run(&a.run);
        let listed = ended.first(&a.allocations, MAX_LISTED);
        let allocations = ended.count + a.allocations.len();
        // the three models are independent: built side by side (SIP was
        // folded during the pass), the TURN findings beside the ICE and TLS
        // listings, which make their own findings as they go
        let ice_sessions = std::mem::take(&mut a.ice);
        let a = &*a;
        let ((turn, turn_findings), ((ice, ice_findings), (tls, tls_findings))) = rayon::join(
            || {
                let turn = TurnReport::build(&a.run, &listed, input, o.redaction.redact_usernames);
                (turn, ended.findings(&a.allocations))
            },
            || {
                rayon::join(
                    || IceReport::build_for_report(&a.run, ice_sessions, input, MAX_LISTED),
                    || TlsReport::build_for_report(&a.run, tls_core, input, MAX_LISTED),
                )
            },
        );
        let inputs = findings::Inputs {
            analysis: a,
            capture: &capture,
            sip: &sip_findings,
            ice: &ice_findings,
            tls: &tls_findings,
            turn: Some(&turn_findings),
        };
        let findings = findings::findings(&inputs, &o.findings);
        let mut by_sev: BTreeMap<&'static str, usize> = BTreeMap::new();
        for s in [Severity::Error, Severity::Warning, Severity::Info] {
            by_sev.insert(
                s.name(),
                findings.iter().filter(|f| f.severity == s).count(),
            );
        }
        let counts = Counts {
            stun_messages: a.stun.messages as usize,
            turn_allocations: allocations,
            sip_messages: sip.summary.messages,
            sip_dialogs: sip.summary.dialogs,
            ice_sessions: ice.summary.sessions,
            tls_connections: tls.summary.connections,
            findings: by_sev,
        };
        let mut omitted = BTreeMap::new();
        let mut cap = |name: &str, total: usize| {
            if total > MAX_LISTED {
                omitted.insert(name.to_string(), total - MAX_LISTED);
            }
        };
        cap("turn", allocations);
        cap("sip", sip.summary.dialogs);
        cap("ice", ice.summary.sessions);
        cap("tls", tls.summary.connections);
        let mut dialogs = sip.dialogs;
        dialogs.truncate(MAX_LISTED);
        Report {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            flows,
            capture,
            counts,
            findings,
            turn: turn.allocations,
            sip: dialogs,
            ice: ice.sessions,
            tls: tls.connections,
            port_8057: tls.port_8057,
            omitted,
        }
    }

    /// The worst severity present.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).min()
    }
}
