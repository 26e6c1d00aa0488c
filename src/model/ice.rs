//! Output model of `edgetrace ice`: per ICE session (ufrag pair) a header,
//! the candidate pairs with a verdict per pair and per-direction counts, the
//! nomination, and the timeline of checks.  ICE passwords never appear
//! (checks carry none; SDP `a=ice-pwd` is not copied here).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;

use super::{tuple_filter, CaptureSummary, Meta, SCHEMA_VERSION};
use crate::analyze::ice::{self, Check, Direction, Pair, SdpMedia, Session, Verdict};
use crate::findings::{Finding, Merging};
use crate::flow::{Endpoint, L4};
use crate::pipeline::RunResult;

fn ms(ns: i64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// One side of a session (one ufrag).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SideOut {
    /// The ufrag.
    pub ufrag: String,
    /// `controlling`, `controlled`, `both (role conflict)` or null when no check said.
    pub role: Option<String>,
    /// Tie-breakers claimed, hex.
    pub tie_breakers: Vec<String>,
    /// The SDP media section that offered this ufrag, when SIP was captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<SdpRef>,
}

/// Where a ufrag came from in SIP.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SdpRef {
    /// Call-ID.
    pub call_id: String,
    /// Frame of the SIP message.
    pub frame: u64,
    /// offer / answer.
    pub side: &'static str,
    /// m-line index and kind (`0 audio`).
    pub m_line: String,
    /// Candidates offered.
    pub candidates: usize,
}

/// One direction of a pair.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DirOut {
    /// Sender's ufrag.
    pub sender_ufrag: Option<String>,
    /// Checks (transactions).
    pub requests: u32,
    /// Retransmitted copies.
    pub retransmissions: u32,
    /// Success responses.
    pub successes: u32,
    /// Error responses (`487 Role Conflict`).
    pub errors: Vec<String>,
    /// Smallest RTT, ms.
    pub min_rtt_ms: Option<f64>,
    /// Frame of the first success.
    pub first_success_frame: Option<u64>,
    /// USE-CANDIDATE seen.
    pub use_candidate: bool,
    /// Frame of the success that nominated the pair from this side.
    pub nominated_frame: Option<u64>,
}

impl DirOut {
    fn new(d: &Direction) -> DirOut {
        DirOut {
            sender_ufrag: d.sender_ufrag.clone(),
            requests: d.requests,
            retransmissions: d.retransmissions,
            successes: d.successes,
            errors: d.errors.clone(),
            min_rtt_ms: d.min_rtt_ns.map(ms),
            first_success_frame: d.first_success_frame,
            use_candidate: d.use_candidate,
            nominated_frame: d.nominated_frame,
        }
    }
}

/// A candidate pair.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PairOut {
    /// Index in the session (used by `nominated.pair`).
    pub index: usize,
    /// Sender of the first check.
    pub a: Endpoint,
    /// Its receiver.
    pub b: Endpoint,
    /// udp / tcp on the checked path.
    pub transport: &'static str,
    /// Component from PRIORITY.
    pub component: Option<u16>,
    /// `both-ways`, `one-way`, `succeeded` (checked from one side only), `failed`.
    pub verdict: Verdict,
    /// The verdict in words, naming a failing direction.
    pub detail: String,
    /// What `a` is in the SDP of its side (`host udp, foundation 1`), or `not offered (peer-reflexive)`.
    pub a_candidate: Option<String>,
    /// What `b` is in the SDP of its side.
    pub b_candidate: Option<String>,
    /// Checks a → b.
    pub a_to_b: DirOut,
    /// Checks b → a.
    pub b_to_a: DirOut,
    /// The session's nominated pair.
    pub nominated: bool,
    /// Flows carrying its checks (`udp 3`, `tcp 0`).
    pub carried_by: Vec<String>,
    /// Display filter for its packets (outer flows for relayed checks).
    pub filter: String,
}

/// One check of the timeline.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckOut {
    /// Frame of the request (first copy).
    pub frame: u64,
    /// Seconds since the first frame of the capture.
    pub time_s: f64,
    /// Pair index.
    pub pair: usize,
    /// `a→b` or `b→a`.
    pub direction: &'static str,
    /// Sender on the checked path.
    pub from: Endpoint,
    /// Receiver.
    pub to: Endpoint,
    /// Carrier (`direct`, `channel 0x4000`, `data-attribute`…) and its flow.
    pub carrier: String,
    /// USERNAME (`receiver:sender`).
    pub username: String,
    /// PRIORITY.
    pub priority: Option<u32>,
    /// Candidate type PRIORITY's type preference implies (normally `prflx`, RFC 8445 §7.1.1).
    pub priority_type: Option<&'static str>,
    /// USE-CANDIDATE.
    pub use_candidate: bool,
    /// `controlling 0x…` / `controlled 0x…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// MS CANDIDATE-IDENTIFIER (the sender's SDP foundation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_id: Option<String>,
    /// MS-IMPLEMENTATION-VERSION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_version: Option<u32>,
    /// Retransmitted copies.
    pub retransmissions: u32,
    /// Each retransmission as `{frame, after_s}` (after the first copy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retransmitted: Vec<Retransmission>,
    /// Frames where another vantage point saw the same check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_seen: Vec<u64>,
    /// Frame of the answer.
    pub answer_frame: Option<u64>,
    /// `success`, `error 487 Role Conflict`, `no answer`.
    pub result: String,
    /// XOR-MAPPED-ADDRESS of the success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped: Option<Endpoint>,
    /// Round trip, ms.
    pub rtt_ms: Option<f64>,
}

/// A retransmitted copy of a check.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Retransmission {
    /// Frame.
    pub frame: u64,
    /// Seconds after the first copy.
    pub after_s: f64,
}

/// The nomination.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NominationOut {
    /// Pair index.
    pub pair: usize,
    /// Frame of the success answering the USE-CANDIDATE check.
    pub frame: u64,
    /// Seconds from the session's first check.
    pub after_s: f64,
    /// Checks on the pair after nomination (consent freshness).
    pub consent_checks: u32,
    /// Frame of the last one.
    pub last_consent_frame: Option<u64>,
}

/// One ICE session.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SessionOut {
    /// The ufrags (sorted).
    pub ufrags: Vec<String>,
    /// Call-ID of the dialog whose SDP carried these ufrags.
    pub call_id: Option<String>,
    /// Per ufrag: role, tie-breakers, SDP origin.
    pub sides: Vec<SideOut>,
    /// Frame of the first check.
    pub first_frame: u64,
    /// Frame of the last check or answer.
    pub last_frame: u64,
    /// `nominated`, `connected` (a pair works, none nominated), `one-way`, `failed`.
    pub outcome: &'static str,
    /// The outcome in a sentence.
    pub detail: String,
    /// Both sides claimed the same role, or a check got 487 Role Conflict
    /// (RFC 8445 §7.3.1.1).
    pub role_conflict: bool,
    /// The nomination.
    pub nominated: Option<NominationOut>,
    /// Pairs in order of first check.
    pub pairs: Vec<PairOut>,
    /// SDP candidates never seen in a check from this vantage point.
    pub unchecked_candidates: Vec<String>,
    /// Checks in frame order.
    pub checks: Vec<CheckOut>,
    /// Display filter for the session's requests.
    pub filter: String,
}

/// Counts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct IceSummary {
    /// Sessions.
    pub sessions: usize,
    /// Checks (transactions).
    pub checks: usize,
    /// Pairs.
    pub pairs: usize,
    /// Pairs by verdict.
    pub verdicts: BTreeMap<String, u64>,
    /// Sessions with a nominated pair.
    pub nominated_sessions: usize,
}

/// `edgetrace ice --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct IceReport {
    /// Schema version.
    pub schema_version: u32,
    /// Volatile fields.
    pub meta: Meta,
    /// The capture.
    pub capture: CaptureSummary,
    /// Counts.
    pub summary: IceSummary,
    /// Sessions by first check.
    pub sessions: Vec<SessionOut>,
}

fn describe(addr: SocketAddr, ufrag: Option<&str>, transport: &str, s: &Session) -> Option<String> {
    let offered = s.sdp.iter().any(|m| ufrag.is_none_or(|u| m.ufrag == u));
    if !offered {
        return None;
    }
    Some(match ice::candidate_at(&s.sdp, ufrag, addr, transport) {
        Some(c) => format!(
            "{} {}{}, foundation {}",
            c.typ.as_deref().unwrap_or("?"),
            c.protocol,
            c.tcp_type
                .as_deref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default(),
            c.foundation
        ),
        None => "not offered (peer-reflexive or NAT-translated)".to_string(),
    })
}

fn verdict_detail(p: &Pair) -> String {
    let (a, b) = (Endpoint::from(p.a), Endpoint::from(p.b));
    let d = |x: &Direction| {
        if x.errors.is_empty() {
            "no answer".to_string()
        } else {
            x.errors.join(", ")
        }
    };
    match p.verdict {
        Verdict::BothWays => format!("checks succeed both ways between {a} and {b}"),
        Verdict::OneWay if p.a_to_b.successes > 0 => format!(
            "works one way only: {a} → {b} succeeds, {b} → {a} fails ({}, {} check(s))",
            d(&p.b_to_a),
            p.b_to_a.requests
        ),
        Verdict::OneWay => format!(
            "works one way only: {b} → {a} succeeds, {a} → {b} fails ({}, {} check(s))",
            d(&p.a_to_b),
            p.a_to_b.requests
        ),
        Verdict::Succeeded => {
            let (x, y) = if p.a_to_b.successes > 0 {
                (a, b)
            } else {
                (b, a)
            };
            format!("{x} → {y} succeeds; {y} never checked {x}")
        }
        Verdict::Failed => {
            let mut parts = Vec::new();
            if p.a_to_b.requests > 0 {
                parts.push(format!("{a} → {b}: {}", d(&p.a_to_b)));
            }
            if p.b_to_a.requests > 0 {
                parts.push(format!("{b} → {a}: {}", d(&p.b_to_a)));
            }
            format!("no check succeeded ({})", parts.join("; "))
        }
    }
}

fn check_out(c: &Check, t0: i64, pair: usize, forward: bool) -> CheckOut {
    CheckOut {
        frame: c.frame,
        time_s: crate::timefmt::seconds(c.ts_ns - t0),
        pair,
        direction: if forward { "a→b" } else { "b→a" },
        from: c.from.into(),
        to: c.to.into(),
        carrier: format!(
            "{} ({} {})",
            c.carrier,
            c.carrier_flow.0.name(),
            c.carrier_flow.1
        ),
        username: c.username.clone(),
        priority: c.priority,
        priority_type: c.priority.map(ice::type_from_priority),
        use_candidate: c.use_candidate,
        role: c.role.map(|(ctl, t)| {
            format!(
                "{} {t:#018x}",
                if ctl { "controlling" } else { "controlled" }
            )
        }),
        candidate_id: c.candidate_id.clone(),
        ms_version: c.ms_version,
        retransmissions: c.retransmissions,
        retransmitted: c
            .retransmit_frames
            .iter()
            .map(|&(frame, d)| Retransmission {
                frame,
                after_s: crate::timefmt::seconds(d),
            })
            .collect(),
        also_seen: c.also_seen.clone(),
        answer_frame: c.success().or(c.answers.first()).map(|a| a.frame),
        result: if c.answers.is_empty() {
            "no answer".into()
        } else {
            c.answers
                .iter()
                .map(|a| match &a.error {
                    None => "success".to_string(),
                    Some((code, r)) => format!("error {code} {r}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
        mapped: c.success().and_then(|a| a.mapped).map(Endpoint::from),
        rtt_ms: c.rtt_ns.map(ms),
    }
}

/// The ufrag of a pair's `a` side (`a_side`) or `b` side: the sender of its
/// checks, or the receiver named in the other side's checks.
fn side_ufrag<'a>(s: &'a Session, p: &'a Pair, a_side: bool) -> Option<&'a str> {
    let (own, other) = if a_side {
        (&p.a_to_b, &p.b_to_a)
    } else {
        (&p.b_to_a, &p.a_to_b)
    };
    own.sender_ufrag.as_deref().or_else(|| {
        other
            .checks
            .first()
            .and_then(|&c| s.checks[c].receiver_ufrag.as_deref())
    })
}

/// Direct checks: the pair's own packets, both directions; relayed ones:
/// the flows that carried them.
fn pair_filter(s: &Session, p: &Pair) -> String {
    let all_direct = p
        .a_to_b
        .checks
        .iter()
        .chain(&p.b_to_a.checks)
        .all(|&c| s.checks[c].carrier == "direct");
    if all_direct {
        let l4 = if p.transport == "tcp" {
            L4::Tcp
        } else {
            L4::Udp
        };
        let t = tuple_filter(l4, &Endpoint::from(p.a), &Endpoint::from(p.b));
        return format!("stun && ({t})");
    }
    p.carriers
        .iter()
        .map(|(l4, st)| format!("{}.stream eq {st}", l4.name()))
        .collect::<Vec<_>>()
        .join(" || ")
}

fn session_out(s: &Session, t0: i64, with_checks: bool) -> SessionOut {
    let pairs: Vec<PairOut> = s
        .pairs
        .iter()
        .enumerate()
        .map(|(i, p)| PairOut {
            index: i,
            a: p.a.into(),
            b: p.b.into(),
            transport: p.transport,
            component: p.component,
            verdict: p.verdict,
            detail: verdict_detail(p),
            a_candidate: describe(p.a, side_ufrag(s, p, true), p.transport, s),
            b_candidate: describe(p.b, side_ufrag(s, p, false), p.transport, s),
            a_to_b: DirOut::new(&p.a_to_b),
            b_to_a: DirOut::new(&p.b_to_a),
            nominated: s.nominated.is_some_and(|(n, _, _)| n == i),
            carried_by: p
                .carriers
                .iter()
                .map(|(l4, st)| format!("{} {st}", l4.name()))
                .collect(),
            filter: pair_filter(s, p),
        })
        .collect();
    // per check: its pair and direction
    let checks: Vec<CheckOut> = if with_checks {
        let mut where_: Vec<(usize, bool)> = vec![(0, true); s.checks.len()];
        for (i, p) in s.pairs.iter().enumerate() {
            for &c in &p.a_to_b.checks {
                where_[c] = (i, true);
            }
            for &c in &p.b_to_a.checks {
                where_[c] = (i, false);
            }
        }
        s.checks
            .iter()
            .zip(&where_)
            .map(|(c, &(p, fwd))| check_out(c, t0, p, fwd))
            .collect()
    } else {
        Vec::new()
    };
    let first_ts = s.checks.first().map(|c| c.ts_ns).unwrap_or(0);
    let last_frame = s
        .checks
        .iter()
        .flat_map(|c| std::iter::once(c.frame).chain(c.answers.iter().map(|a| a.frame)))
        .max()
        .unwrap_or(0);
    let sides: Vec<SideOut> = s
        .ufrags
        .iter()
        .map(|u| {
            let claims = s.roles.get(u).cloned().unwrap_or_default();
            let ctl = claims.iter().any(|c| c.0);
            let ctd = claims.iter().any(|c| !c.0);
            SideOut {
                ufrag: u.clone(),
                role: match (ctl, ctd) {
                    (true, true) => Some("both (role conflict)".into()),
                    (true, false) => Some("controlling".into()),
                    (false, true) => Some("controlled".into()),
                    _ => None,
                },
                tie_breakers: claims.iter().map(|c| format!("{:#018x}", c.1)).collect(),
                sdp: s.sdp.iter().find(|m| &m.ufrag == u).map(sdp_ref),
            }
        })
        .collect();
    let call_id = s.sdp.first().map(|m| m.call_id.clone());
    let same_role = sides.len() == 2 && sides[0].role.is_some() && sides[0].role == sides[1].role;
    let role_conflict = same_role
        || sides
            .iter()
            .any(|x| x.role.as_deref() == Some("both (role conflict)"))
        || s.checks
            .iter()
            .flat_map(|c| &c.answers)
            .any(|a| a.error.as_ref().is_some_and(|e| e.0 == 487));
    let nominated = s.nominated.map(|(pair, frame, ts)| NominationOut {
        pair,
        frame,
        after_s: crate::timefmt::seconds(ts - first_ts),
        consent_checks: s.consent_checks,
        last_consent_frame: s.last_consent_frame,
    });
    let count = |v: Verdict| s.pairs.iter().filter(|p| p.verdict == v).count();
    let (outcome, detail) = if let Some(n) = &nominated {
        let p = &pairs[n.pair];
        (
            "nominated",
            format!(
                "pair {} ↔ {} nominated at frame {} ({:.3} s after the first check); {} consent check(s) after",
                p.a, p.b, n.frame, n.after_s, n.consent_checks
            ),
        )
    } else if count(Verdict::BothWays) + count(Verdict::Succeeded) > 0 {
        (
            "connected",
            "checks succeed but no nomination was seen".to_string(),
        )
    } else if count(Verdict::OneWay) > 0 {
        let p = pairs.iter().find(|p| p.verdict == Verdict::OneWay).unwrap();
        ("one-way", format!("nothing nominated; {}", p.detail))
    } else {
        (
            "failed",
            "no check succeeded; nothing nominated".to_string(),
        )
    };
    // SDP candidates never used as an endpoint of a checked pair
    let mut unchecked = Vec::new();
    for m in &s.sdp {
        for c in &m.candidates {
            let seen = c.socket().is_some_and(|addr| {
                s.pairs
                    .iter()
                    .any(|p| (p.a == addr || p.b == addr) && p.transport == c.protocol)
            });
            if !seen {
                unchecked.push(format!(
                    "{} {} {} {} c{} ({} {})",
                    m.side,
                    c.typ.as_deref().unwrap_or("?"),
                    c.protocol,
                    c.address_port(),
                    c.component,
                    m.ufrag,
                    m.kind
                ));
            }
        }
    }
    let filter = s
        .ufrags
        .iter()
        .map(|u| format!("stun.att.username contains \"{u}\""))
        .collect::<Vec<_>>()
        .join(" && ");
    SessionOut {
        ufrags: s.ufrags.clone(),
        call_id,
        sides,
        first_frame: s.checks.first().map(|c| c.frame).unwrap_or(0),
        last_frame,
        outcome,
        detail,
        role_conflict,
        nominated,
        pairs,
        unchecked_candidates: unchecked,
        checks,
        filter,
    }
}

fn sdp_ref(m: &SdpMedia) -> SdpRef {
    SdpRef {
        call_id: m.call_id.clone(),
        frame: m.frame,
        side: m.side,
        m_line: format!("{} {}", m.m_index, m.kind),
        candidates: m.candidates.len(),
    }
}

impl IceReport {
    /// Builds the report.
    pub fn build(run: &RunResult, sessions: &[Session], input: &str) -> IceReport {
        Self::build_with(run, sessions.iter(), input, true, usize::MAX, None)
    }

    /// What `edgetrace report` shows of the sessions, and their findings.
    /// Only the first `listed` sessions are kept, without their per-check
    /// lists (the summary still counts every session, pair and check); the
    /// others are read for their findings and counts and dropped, each
    /// session as soon as its output is made, so that a capture of many
    /// calls does not hold every session and its output at once.  The
    /// findings ([`crate::findings::ice_session`]) come merged
    /// ([`crate::findings::Merging`]).
    pub fn build_for_report(
        run: &RunResult,
        sessions: Vec<Session>,
        input: &str,
        listed: usize,
    ) -> (IceReport, Vec<Finding>) {
        let mut merged = Merging::default();
        let report = Self::build_with(
            run,
            sessions.into_iter(),
            input,
            false,
            listed,
            Some(&mut merged),
        );
        (report, merged.finish())
    }

    /// Sessions are read 256 at a time, their outputs (each its session's
    /// own) made side by side, then counted, kept or dropped in order.
    fn build_with<S: std::borrow::Borrow<Session> + Send>(
        run: &RunResult,
        mut all: impl Iterator<Item = S>,
        input: &str,
        checks: bool,
        listed: usize,
        mut findings: Option<&mut Merging>,
    ) -> IceReport {
        use rayon::prelude::*;
        let t0 = run.read.first_ts.unwrap_or(0);
        let mut summary = IceSummary {
            sessions: 0,
            checks: 0,
            pairs: 0,
            verdicts: BTreeMap::new(),
            nominated_sessions: 0,
        };
        let mut sessions = Vec::new();
        let want_findings = findings.is_some();
        loop {
            let chunk: Vec<S> = all.by_ref().take(256).collect();
            if chunk.is_empty() {
                break;
            }
            let outs: Vec<(SessionOut, usize, Vec<Finding>)> = chunk
                .into_par_iter()
                .map(|s| {
                    let s = s.borrow();
                    let o = session_out(s, t0, checks);
                    let mut f = Vec::new();
                    if want_findings {
                        crate::findings::ice_session(&o, s, &mut f);
                    }
                    (o, s.checks.len(), f)
                })
                .collect();
            for (o, n_checks, f) in outs {
                summary.sessions += 1;
                summary.checks += n_checks;
                summary.pairs += o.pairs.len();
                summary.nominated_sessions += usize::from(o.nominated.is_some());
                for p in &o.pairs {
                    let k = serde_json::to_value(p.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    *summary.verdicts.entry(k).or_insert(0) += 1;
                }
                if let Some(m) = findings.as_deref_mut() {
                    f.into_iter().for_each(|x| m.add(x));
                }
                if sessions.len() < listed {
                    sessions.push(o);
                }
            }
        }
        IceReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(run),
            summary,
            sessions,
        }
    }
}
