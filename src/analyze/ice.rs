//! ICE connectivity checks as the wire shows them (PROTOCOLS.md §4): Binding
//! requests that carry a `receiver:sender` USERNAME, wherever the STUN finder
//! found them — plain UDP, RFC 4571 on TCP, RFC 6062 data connections, and
//! inside TURN Send/Data indications, MS Send / Data Indication and
//! ChannelData, where the pair is the relay↔peer leg (the relayed address is
//! what the peer sees).
//!
//! Sessions are keyed by the ufrag pair.  Inside a session a candidate pair
//! is (address, address, transport, component) and is tracked per direction:
//! requests, retransmissions, answers, errors, RTT, USE-CANDIDATE and whether
//! the nominating check succeeded.  A verdict per pair names a direction that
//! fails.  With SDP from SIP in the same capture, ufrags tie a session to its
//! dialog and m-line, and addresses to offered candidates.
//!
//! Decisions:
//! - a transaction seen at several vantage points (both TURN clients'
//!   connections in one capture) is one check; copies on the same flow are
//!   retransmissions (the STUN finder's flag);
//! - a response is tied to its request by transaction id;
//! - MS-ICE2 usernames lose their NUL padding in the STUN decoder; MS-ICE v1
//!   binary usernames (no text `:`) key a session by their hex and leave the
//!   direction unknown;
//! - the orientation of a pair (`a` → `b`) is that of its first check, so the
//!   output does not depend on address sorting;
//! - an SDP body is read for a session only when a check names one of its
//!   ufrags within [`SDP_WAIT_NS`] (5 minutes) of it: a pass drops the
//!   others as it goes, so the SDP of calls whose media the capture does
//!   not show does not pile up.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use crate::analyze::stun::{Carrier, Core as StunCore, Found, Pairing, RelayLeg};
use crate::flow::{Endpoint, FlowTable, L4};
use crate::proto::sdp::Candidate;
use crate::proto::stun::names::attr as a;
use crate::proto::stun::{hex, Class, Value};

/// One SDP media section that offered ICE candidates (from the SIP analyzer).
#[derive(Debug, Clone)]
pub struct SdpMedia {
    /// Call-ID of the dialog.
    pub call_id: String,
    /// Frame of the message that carried it.
    pub frame: u64,
    /// `offer` or `answer`.
    pub side: &'static str,
    /// Index of the m-line in its body.
    pub m_index: usize,
    /// audio, video…
    pub kind: String,
    /// `a=ice-ufrag`; for a draft-6 section (per-candidate credentials) the
    /// label `draft6:CALL-ID:offer|answer:M-INDEX`.
    pub ufrag: String,
    /// MS-ICE v1 / draft-6 candidates (the 2007 fallback part).
    pub draft6: bool,
    /// Candidates.
    pub candidates: Vec<Candidate>,
}

/// The answer to a check.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Frame.
    pub frame: u64,
    /// Time.
    pub ts_ns: i64,
    /// Error (code, reason) for an error response.
    pub error: Option<(u16, String)>,
    /// XOR-MAPPED-ADDRESS (the request's source as the responder saw it).
    pub mapped: Option<SocketAddr>,
}

/// One connectivity check (a request transaction).
#[derive(Debug, Clone)]
pub struct Check {
    /// Frame of the first copy.
    pub frame: u64,
    /// Its time.
    pub ts_ns: i64,
    /// Sender's transport address on the checked path.
    pub from: SocketAddr,
    /// Receiver's.
    pub to: SocketAddr,
    /// `udp` or `tcp` on the checked path.
    pub transport: &'static str,
    /// Transport and stream index of the flow carrying it (first copy).
    pub carrier_flow: (L4, u32),
    /// `direct`, `channel 0x4000`, `data-attribute`…
    pub carrier: String,
    /// USERNAME as text (or `hex:` for binary MS-ICE v1 usernames).
    pub username: String,
    /// Receiver's ufrag (USERNAME before the colon).
    pub receiver_ufrag: Option<String>,
    /// Sender's ufrag (after the colon).
    pub sender_ufrag: Option<String>,
    /// PRIORITY.
    pub priority: Option<u32>,
    /// USE-CANDIDATE present.
    pub use_candidate: bool,
    /// ICE-CONTROLLING (true) / ICE-CONTROLLED (false) with the tie-breaker.
    pub role: Option<(bool, u64)>,
    /// MS CANDIDATE-IDENTIFIER (the sender's SDP foundation).
    pub candidate_id: Option<String>,
    /// MS-IMPLEMENTATION-VERSION.
    pub ms_version: Option<u32>,
    /// Copies sent on the same flow after the first (retransmissions).
    pub retransmissions: u32,
    /// Each retransmission: frame and time after the first copy, ns.
    pub retransmit_frames: Vec<(u64, i64)>,
    /// Frames where other vantage points saw the same transaction.
    pub also_seen: Vec<u64>,
    /// Answers in frame order (a retransmitted request can be answered again,
    /// sometimes differently: a success and then 401s for the copies).
    pub answers: Vec<Answer>,
    /// Round trip on the flow where both were seen, ns.
    pub rtt_ns: Option<i64>,
}

impl Check {
    /// Component from PRIORITY: `256 − (PRIORITY & 0xFF)` (RFC 8445 §5.1.2.1).
    pub fn component(&self) -> Option<u16> {
        self.priority.map(|p| 256 - (p & 0xFF) as u16)
    }

    /// True when answered with a success response.
    pub fn succeeded(&self) -> bool {
        self.success().is_some()
    }

    /// The first success response.
    pub fn success(&self) -> Option<&Answer> {
        self.answers.iter().find(|a| a.error.is_none())
    }
}

/// The candidate type a priority's type preference suggests (RFC 8445
/// §5.1.2.1 recommended values; MS uses 10 for relays).  Checks carry the
/// peer-reflexive priority (§7.1.1), so on a check this is normally `prflx`.
pub fn type_from_priority(p: u32) -> &'static str {
    match p >> 24 {
        126 => "host",
        110 => "prflx",
        100 => "srflx",
        0 | 10 => "relay",
        _ => "other",
    }
}

/// One direction of a candidate pair.
#[derive(Debug, Clone, Default)]
pub struct Direction {
    /// Checks sent (transactions).
    pub requests: u32,
    /// Retransmitted copies.
    pub retransmissions: u32,
    /// Success responses.
    pub successes: u32,
    /// Error responses as `487 Role Conflict`.
    pub errors: Vec<String>,
    /// Smallest RTT, ns.
    pub min_rtt_ns: Option<i64>,
    /// Frame of the first success response.
    pub first_success_frame: Option<u64>,
    /// Time of the first success response.
    pub first_success_ns: Option<i64>,
    /// A check carried USE-CANDIDATE.
    pub use_candidate: bool,
    /// A USE-CANDIDATE check succeeded: this direction nominated the pair.
    pub nominated_frame: Option<u64>,
    /// Sender's ufrag.
    pub sender_ufrag: Option<String>,
    /// Indices of the checks in the session's list.
    pub checks: Vec<usize>,
}

impl Direction {
    fn add(&mut self, i: usize, c: &Check) {
        self.requests += 1;
        self.retransmissions += c.retransmissions;
        self.use_candidate |= c.use_candidate;
        self.checks.push(i);
        if self.sender_ufrag.is_none() {
            self.sender_ufrag = c.sender_ufrag.clone();
        }
        for ans in &c.answers {
            if let Some((code, reason)) = &ans.error {
                let e = format!("{code} {reason}");
                if !self.errors.contains(&e) {
                    self.errors.push(e);
                }
            }
        }
        if let Some(ans) = c.success() {
            self.successes += 1;
            if self.first_success_frame.is_none() {
                self.first_success_frame = Some(ans.frame);
                self.first_success_ns = Some(ans.ts_ns);
            }
            if c.use_candidate && self.nominated_frame.is_none() {
                self.nominated_frame = Some(ans.frame);
            }
        }
        if let Some(r) = c.rtt_ns {
            self.min_rtt_ns = Some(self.min_rtt_ns.map_or(r, |m| m.min(r)));
        }
    }
}

/// What a pair's checks say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Checks succeeded in both directions.
    BothWays,
    /// Checks from one side succeed, the other side's fail.
    OneWay,
    /// Checked from one side only, and that succeeded.
    Succeeded,
    /// Checks sent, none succeeded.
    Failed,
}

/// A candidate pair on the wire.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Sender of the pair's first check.
    pub a: SocketAddr,
    /// Its receiver.
    pub b: SocketAddr,
    /// udp / tcp.
    pub transport: &'static str,
    /// Component (from PRIORITY), when known.
    pub component: Option<u16>,
    /// Checks from a to b.
    pub a_to_b: Direction,
    /// Checks from b to a.
    pub b_to_a: Direction,
    /// Verdict.
    pub verdict: Verdict,
    /// Carrier flows (transport, stream) of its checks, sorted.
    pub carriers: Vec<(L4, u32)>,
}

/// One ICE session (a ufrag pair).
#[derive(Debug, Clone)]
pub struct Session {
    /// The two ufrags, sorted (or one hex username for MS-ICE v1).
    pub ufrags: Vec<String>,
    /// Checks in frame order.
    pub checks: Vec<Check>,
    /// Pairs in order of first check.
    pub pairs: Vec<Pair>,
    /// Role claims per ufrag: (controlling, tie-breaker) values seen.
    pub roles: BTreeMap<String, Vec<(bool, u64)>>,
    /// Index of the nominated pair (first nominating success) and the frame.
    pub nominated: Option<(usize, u64, i64)>,
    /// Checks on the nominated pair after nomination (consent freshness).
    pub consent_checks: u32,
    /// Frame of the last consent check.
    pub last_consent_frame: Option<u64>,
    /// SDP media sections whose ufrag belongs to the session.
    pub sdp: Vec<SdpMedia>,
}

/// A check's USERNAME as the wire had it: text, or the binary MS-ICE v1
/// form, whose sides are only known from the SDP (read at the end).
#[derive(Debug, Clone)]
enum RawUser {
    Text(Box<str>),
    Opaque(Box<[u8]>),
}

impl RawUser {
    fn of(f: &Found) -> Option<RawUser> {
        match &f.msg.attr(a::USERNAME)?.value {
            Value::Text(s) => Some(RawUser::Text(s.trim_end_matches('\0').into())),
            Value::Opaque(b) => Some(RawUser::Opaque(b.as_slice().into())),
            _ => None,
        }
    }

    /// (USERNAME as shown, receiver's ufrag, sender's ufrag).
    fn resolve(self, sdp: &[SdpMedia]) -> (String, Option<String>, Option<String>) {
        match self {
            RawUser::Text(s) => match s.split_once(':') {
                Some((r, snd)) => {
                    let (r, snd) = (Some(r.to_string()), Some(snd.to_string()));
                    (s.into(), r, snd)
                }
                None => (s.into(), None, None),
            },
            RawUser::Opaque(b) => {
                let (r, snd) = draft6_sides(&b, sdp).unzip();
                (format!("hex:{}", hex(&b)), r, snd)
            }
        }
    }
}

/// Base64 (RFC 4648, standard alphabet, padding optional) as SIPE and
/// libnice write MS-ICE v1 candidate usernames.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// An MS-ICE v1 (draft-6) check's binary USERNAME is
/// `b64decode(receiver's candidate username) ":" component ":"
/// b64decode(sender's candidate username) ":" component` plus NUL padding
/// (PROTOCOLS.md §4.3, libnice `priv_gen_username`).  Finds the two SDP
/// draft-6 media sections whose candidates it names and returns their
/// labels as (receiver, sender) "ufrags".
fn draft6_sides(user: &[u8], sdp: &[SdpMedia]) -> Option<(String, String)> {
    let user = {
        let end = user.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &user[..end]
    };
    let mut receiver = None;
    let mut sender = None;
    for m in sdp.iter().filter(|m| m.draft6) {
        for c in &m.candidates {
            let Some(name) = b64_decode(&c.foundation).filter(|n| !n.is_empty()) else {
                continue;
            };
            let mut head = name.clone();
            head.push(b':');
            if receiver.is_none() && user.starts_with(&head) {
                receiver = Some(m.ufrag.clone());
            }
            // the sender's name follows the receiver's `name:component:`
            let mut mid = vec![b':'];
            mid.extend_from_slice(&name);
            mid.push(b':');
            if sender.is_none() && user.windows(mid.len()).skip(1).any(|w| w == mid.as_slice()) {
                sender = Some(m.ufrag.clone());
            }
        }
    }
    match (receiver, sender) {
        (Some(r), Some(s)) if r != s => Some((r, s)),
        _ => None,
    }
}

/// A check's path before the shards are merged: known, or on an RFC 6062
/// data connection, whose peer is announced on another flow.
///
/// Addresses are kept as [`Endpoint`]s, 20 bytes against a `SocketAddr`'s
/// 32: every address here was made by `SocketAddr::new` (no IPv6 flow label
/// or scope), so nothing is lost, and every check keeps its path to the end.
#[derive(Debug, Clone)]
enum PathSrc {
    Known(Endpoint, Endpoint),
    /// Rare, so boxed: the common variant sets the size.
    Rfc6062(Box<Rfc6062Path>),
}

/// Where an RFC 6062 data connection's check was seen, to be placed on its
/// relay↔peer leg once the control connections are merged.
#[derive(Debug, Clone)]
struct Rfc6062Path {
    conn: u32,
    flow: crate::flow::FlowId,
    src: Endpoint,
    outer: (SocketAddr, SocketAddr),
}

/// Puts the relay↔peer leg over the outer addresses it knows.
fn over(outer: (SocketAddr, SocketAddr), leg: Option<RelayLeg>) -> (SocketAddr, SocketAddr) {
    match leg {
        None => outer,
        Some((s, d)) => (s.unwrap_or(outer.0), d.unwrap_or(outer.1)),
    }
}

fn path(f: &Found) -> (PathSrc, L4) {
    let outer = (
        SocketAddr::new(f.src.ip, f.src.port),
        SocketAddr::new(f.dst.ip, f.dst.port),
    );
    let src = match (&f.carrier, f.relay_leg.as_deref().copied()) {
        (Carrier::Rfc6062Data(Some(conn)), _) => PathSrc::Rfc6062(Box::new(Rfc6062Path {
            conn: *conn,
            flow: f.flow,
            src: f.src,
            outer,
        })),
        (Carrier::Direct, _) => PathSrc::Known(f.src, f.dst),
        (_, leg) => {
            let (a, b) = over(outer, leg);
            PathSrc::Known(a.into(), b.into())
        }
    };
    let transport = match f.carrier {
        Carrier::Direct | Carrier::IcmpQuoted(_) => f.l4,
        Carrier::Rfc6062Data(_) => L4::Tcp,
        _ => L4::Udp,
    };
    (src, transport)
}

fn role(f: &Found) -> Option<(bool, u64)> {
    f.msg.attrs.iter().find_map(|x| match x.value {
        Value::U64(t) if x.typ == a::ICE_CONTROLLING => Some((true, t)),
        Value::U64(t) if x.typ == a::ICE_CONTROLLED => Some((false, t)),
        _ => None,
    })
}

fn is_check(f: &Found) -> bool {
    f.msg.class == Class::Request
        && f.msg.method == "Binding"
        && !matches!(f.carrier, Carrier::IcmpQuoted(_))
        && f.msg.attr(a::USERNAME).is_some()
}

/// Builds the ICE sessions from the STUN finder's messages (merged, in
/// capture order) and the SDP of the capture's SIP dialogs, folded as a
/// pass that keeps neither kind of message folds them ([`CheckFold`],
/// [`SdpCollector`]), so that every command reads SDP by the same rule.
pub fn sessions(
    stun: &StunCore,
    sip: &crate::analyze::sip::Core,
    flows: &FlowTable,
) -> Vec<Session> {
    let mut fold = CheckFold::default();
    for f in &stun.found {
        fold.push(f);
    }
    let mut c = SdpCollector::default();
    for f in &sip.found {
        c.push(f);
    }
    let sdp = c.finish_for(fold.sdp_wanted());
    fold.finish(sdp, stun, flows)
}

/// A check while the capture is read: what the end needs to place it.
struct Pending {
    seen: Seen,
    user: RawUser,
    path: PathSrc,
    /// Order of the copy whose round trip `seen.rtt_ns` is (the first copy
    /// that has one wins, as in capture order).
    rtt_from: Option<u64>,
}

/// What the pass knows of a check: the fields of [`Check`] but those the
/// end gives it (its addresses, which on an RFC 6062 leg need the whole
/// capture, and its USERNAME's sides, which for MS-ICE v1 need the SDP),
/// and its carrier as found rather than named.  A capture of many calls
/// keeps every check until the end, so each field is kept in its smallest
/// form (the transport as an [`L4`], the rare lists boxed together, the
/// answers as [`SeenAnswer`]s): 152 bytes (216 until session 14), against
/// a [`Check`]'s 352.
struct Seen {
    frame: u64,
    ts_ns: i64,
    transport: L4,
    carrier_flow: (L4, u32),
    carrier: Carrier,
    priority: Option<u32>,
    use_candidate: bool,
    role: Option<(bool, u64)>,
    candidate_id: Option<Box<str>>,
    ms_version: Option<u32>,
    retransmissions: u32,
    /// Retransmissions and copies seen at other vantage points: most
    /// checks have none, and two empty vectors took 48 bytes.
    copies: Option<Box<Copies>>,
    answers: Vec<SeenAnswer>,
    rtt_ns: Option<i64>,
}

/// A check's copies ([`Check::retransmit_frames`], [`Check::also_seen`]).
#[derive(Default)]
struct Copies {
    retransmit_frames: Vec<(u64, i64)>,
    also_seen: Vec<u64>,
}

/// An [`Answer`] while the capture is read: its error boxed (most answers
/// succeed) and its mapped address as an [`Endpoint`] (made by
/// `SocketAddr::new`, so nothing is lost): 48 bytes against 80.
struct SeenAnswer {
    frame: u64,
    ts_ns: i64,
    error: Option<Box<(u16, String)>>,
    mapped: Option<Endpoint>,
}

impl SeenAnswer {
    fn answer(self) -> Answer {
        Answer {
            frame: self.frame,
            ts_ns: self.ts_ns,
            error: self.error.map(|e| *e),
            mapped: self.mapped.map(socket),
        }
    }
}

/// An address kept as an [`Endpoint`], given back as the `SocketAddr` it
/// was made from.
fn socket(e: Endpoint) -> SocketAddr {
    SocketAddr::new(e.ip, e.port)
}

impl Seen {
    /// The check, on its path between `from` and `to`, with its USERNAME
    /// and the sides it names.
    fn check(
        self,
        (from, to): (SocketAddr, SocketAddr),
        username: String,
        receiver_ufrag: Option<String>,
        sender_ufrag: Option<String>,
    ) -> Check {
        let copies = self.copies.map(|c| *c).unwrap_or_default();
        Check {
            frame: self.frame,
            ts_ns: self.ts_ns,
            from,
            to,
            transport: self.transport.name(),
            carrier_flow: self.carrier_flow,
            carrier: self.carrier.name(),
            username,
            receiver_ufrag,
            sender_ufrag,
            priority: self.priority,
            use_candidate: self.use_candidate,
            role: self.role,
            candidate_id: self.candidate_id.map(String::from),
            ms_version: self.ms_version,
            retransmissions: self.retransmissions,
            retransmit_frames: copies.retransmit_frames,
            also_seen: copies.also_seen,
            answers: self.answers.into_iter().map(SeenAnswer::answer).collect(),
            rtt_ns: self.rtt_ns,
        }
    }
}

/// ICE checks folded one STUN message at a time, in capture order, so that
/// a pass need not keep the messages (`report` and `ice` hand it each
/// batch's messages at the pipeline's barrier; [`sessions`] the merged
/// list).  What needs the whole capture waits for [`CheckFold::finish`]:
/// the sides of MS-ICE v1 binary usernames (from SDP) and the peers of RFC
/// 6062 data connections (from the control connections, other flows).
///
/// Requests and answers are paired per flow by [`Pairing`], with the
/// horizon TURN transactions have: a transaction ends 60 s after its last
/// request copy (STUN gives up after 39.5 s, RFC 5389 §7.2.1), so an answer
/// later than that is still listed with its check but gives no round trip,
/// and a copy later than that starts a new transaction on its flow.
pub struct CheckFold {
    checks: Chunked<Pending>,
    /// The SDP the checks so far can read.
    wanted: SdpWanted,
    by_tid: rustc_hash::FxHashMap<[u8; 16], usize>,
    pairing: Pairing,
    seq: u64,
}

impl Default for CheckFold {
    fn default() -> Self {
        CheckFold {
            checks: Chunked::default(),
            wanted: SdpWanted::default(),
            by_tid: Default::default(),
            pairing: Pairing::within(crate::analyze::turn::PENDING_FOR_NS),
            seq: 0,
        }
    }
}

/// A list that grows in fixed blocks: a capture's checks are kept to the
/// end, and a doubling vector would hold up to twice their size, and three
/// times while it moves them to a larger buffer.
struct Chunked<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    const BLOCK: usize = 1024;

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, x: T) {
        if self.len % Self::BLOCK == 0 {
            self.blocks.push(Vec::with_capacity(Self::BLOCK));
        }
        if let Some(b) = self.blocks.last_mut() {
            b.push(x);
        }
        self.len += 1;
    }

    fn try_get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.blocks
            .get_mut(i / Self::BLOCK)?
            .get_mut(i % Self::BLOCK)
    }

    /// The `i`th element; `i` must be below [`Chunked::len`].
    fn get_mut(&mut self, i: usize) -> &mut T {
        &mut self.blocks[i / Self::BLOCK][i % Self::BLOCK]
    }
}

impl<T> IntoIterator for Chunked<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.blocks.into_iter().flatten()
    }
}

/// Pushes onto a list that usually holds one element: the first push
/// makes room for one (a vector makes room for four at once, 320 bytes for
/// a check's answers, kept for every check to the end).
fn push_one<T>(v: &mut Vec<T>, x: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(x);
}

/// Tag of a request copy that is not a check.
const NOT_A_CHECK: usize = usize::MAX;

impl CheckFold {
    /// The next STUN message, in capture order.
    pub fn push(&mut self, f: &Found) {
        let seq = self.seq;
        self.seq += 1;
        let check = is_check(f);
        let known = self.by_tid.get(&f.msg.tid).copied();
        let user = if check && known.is_none() {
            RawUser::of(f)
        } else {
            None
        };
        let tag = match (check, known, &user) {
            (true, Some(i), _) => i,
            (true, None, Some(_)) => self.checks.len(),
            _ => NOT_A_CHECK,
        };
        let p = self.pairing.push(f, seq, tag);
        let (retransmission, ms_duplicate) = (p.retransmission, p.ms_duplicate);
        if let (Some(j), Some((_, rtt))) = (p.request, p.first_answer) {
            if let Some(c) = self.checks.try_get_mut(j.tag) {
                if c.rtt_from.is_none_or(|s| j.seq < s) {
                    c.rtt_from = Some(j.seq);
                    c.seen.rtt_ns = Some(rtt);
                }
            }
        }
        if check {
            if let Some(i) = known {
                let ch = &mut self.checks.get_mut(i).seen;
                if retransmission {
                    ch.retransmissions += 1;
                    let copies = ch.copies.get_or_insert_with(Default::default);
                    push_one(&mut copies.retransmit_frames, (f.frame, f.ts_ns - ch.ts_ns));
                } else if !ms_duplicate {
                    let copies = ch.copies.get_or_insert_with(Default::default);
                    push_one(&mut copies.also_seen, f.frame);
                }
            } else if let Some(user) = user {
                self.new_check(f, user);
            }
            return;
        }
        if f.msg.method != "Binding" || !matches!(f.msg.class, Class::Success | Class::Error) {
            return;
        }
        let Some(&i) = self.by_tid.get(&f.msg.tid) else {
            return;
        };
        let ch = &mut self.checks.get_mut(i).seen;
        // the same answer seen at another vantage point is not a new answer
        if f.frame < ch.frame || ch.answers.iter().any(|x| x.ts_ns == f.ts_ns) {
            return;
        }
        push_one(
            &mut ch.answers,
            SeenAnswer {
                frame: f.frame,
                ts_ns: f.ts_ns,
                error: f
                    .msg
                    .error_code()
                    .map(|(c, r)| Box::new((c, r.to_string()))),
                mapped: f
                    .msg
                    .address(a::XOR_MAPPED_ADDRESS)
                    .or(f.msg.address(a::MAPPED_ADDRESS))
                    .map(Endpoint::from),
            },
        );
    }

    fn new_check(&mut self, f: &Found, user: RawUser) {
        self.wanted.note(&user, f.ts_ns);
        let (path, transport) = path(f);
        self.by_tid.insert(f.msg.tid, self.checks.len());
        self.checks.push(Pending {
            seen: Seen {
                frame: f.frame,
                ts_ns: f.ts_ns,
                transport,
                carrier_flow: (f.l4, f.stream),
                carrier: f.carrier.clone(),
                priority: f.msg.u32_value(a::PRIORITY),
                use_candidate: f.msg.attr(a::USE_CANDIDATE).is_some(),
                role: role(f),
                candidate_id: f
                    .msg
                    .attr(a::CANDIDATE_IDENTIFIER)
                    .and_then(|x| match &x.value {
                        Value::Text(t) => Some(t.trim_end_matches('\0').into()),
                        _ => None,
                    }),
                ms_version: f.msg.u32_value(a::MS_IMPLEMENTATION_VERSION),
                retransmissions: 0,
                copies: None,
                answers: Vec::new(),
                rtt_ns: None,
            },
            user,
            path,
            rtt_from: None,
        });
    }

    /// Which SDP media sections [`CheckFold::finish`] can give a session:
    /// those whose ufrag a check's USERNAME names and, when a check has a
    /// binary MS-ICE v1 USERNAME, every draft-6 section (its sides are found
    /// among them), each with the time of the first check that wants it.
    /// Reading only these ([`SdpCollector::finish_for`]) keeps the SDP of
    /// calls whose checks the capture does not show (a capture at a SIP
    /// proxy; the bench's SIPp calls) out of memory: on the 2 GiB bench
    /// capture that was 27 of the 34 MB of parsed SDP.
    pub fn sdp_wanted(&self) -> &SdpWanted {
        &self.wanted
    }

    /// The sessions, with the capture's SDP and the merged STUN finder (for
    /// the RFC 6062 peers).  Each session takes the media sections of its
    /// ufrags: moved where one session reads a section (the usual case),
    /// cloned where several do, so the capture's SDP is not held twice.
    pub fn finish(self, sdp: Vec<SdpMedia>, stun: &StunCore, flows: &FlowTable) -> Vec<Session> {
        let mut sessions: Vec<Session> = Vec::new();
        let mut by_key: HashMap<Vec<String>, usize> = HashMap::new();
        for p in self.checks {
            let path = match p.path {
                PathSrc::Known(a, b) => (socket(a), socket(b)),
                PathSrc::Rfc6062(r) => over(
                    r.outer,
                    Some(stun.rfc6062_leg(r.conn, r.flow, r.src, flows)),
                ),
            };
            let (user, receiver, sender) = p.user.resolve(&sdp);
            let mut key: Vec<String> = match (&receiver, &sender) {
                (Some(r), Some(s)) => vec![r.clone(), s.clone()],
                _ => vec![user.clone()],
            };
            key.sort();
            let si = *by_key.entry(key.clone()).or_insert_with(|| {
                sessions.push(Session {
                    ufrags: key,
                    checks: Vec::new(),
                    pairs: Vec::new(),
                    roles: BTreeMap::new(),
                    nominated: None,
                    consent_checks: 0,
                    last_consent_frame: None,
                    sdp: Vec::new(),
                });
                sessions.len() - 1
            });
            let s = &mut sessions[si];
            if let (Some(r), Some(snd)) = (p.seen.role, &sender) {
                let v = s.roles.entry(snd.clone()).or_default();
                if !v.contains(&r) {
                    v.push(r);
                }
            }
            s.checks.push(p.seen.check(path, user, receiver, sender));
        }
        // SDP media lines by ufrag, so that many sessions do not each scan them all
        let mut by_ufrag: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, m) in sdp.iter().enumerate() {
            by_ufrag.entry(m.ufrag.as_str()).or_default().push(i);
        }
        let mut readers = vec![0u32; sdp.len()];
        let wanted: Vec<Vec<usize>> = sessions
            .iter()
            .map(|s| {
                let mut idx: Vec<usize> = s
                    .ufrags
                    .iter()
                    .filter_map(|u| by_ufrag.get(u.as_str()))
                    .flatten()
                    .copied()
                    .collect();
                idx.sort_unstable();
                idx.dedup();
                idx.iter().for_each(|&i| readers[i] += 1);
                idx
            })
            .collect();
        drop(by_ufrag);
        let mut sdp: Vec<Option<SdpMedia>> = sdp.into_iter().map(Some).collect();
        for (s, idx) in sessions.iter_mut().zip(wanted) {
            build_pairs(s);
            s.sdp = idx
                .into_iter()
                .filter_map(|i| {
                    readers[i] -= 1;
                    if readers[i] == 0 {
                        sdp[i].take()
                    } else {
                        sdp[i].clone()
                    }
                })
                .collect();
        }
        sessions
    }
}

fn build_pairs(s: &mut Session) {
    // looked up only (std's SipHash here was 0.6 % of a report)
    let mut index: rustc_hash::FxHashMap<
        (SocketAddr, SocketAddr, &'static str, Option<u16>),
        usize,
    > = rustc_hash::FxHashMap::default();
    for (i, c) in s.checks.iter().enumerate() {
        let comp = c.component();
        let fwd = (c.from, c.to, c.transport, comp);
        let rev = (c.to, c.from, c.transport, comp);
        let (pi, forward) = if let Some(&p) = index.get(&fwd) {
            (p, true)
        } else if let Some(&p) = index.get(&rev) {
            (p, false)
        } else {
            s.pairs.push(Pair {
                a: c.from,
                b: c.to,
                transport: c.transport,
                component: comp,
                a_to_b: Direction::default(),
                b_to_a: Direction::default(),
                verdict: Verdict::Failed,
                carriers: Vec::new(),
            });
            index.insert(fwd, s.pairs.len() - 1);
            (s.pairs.len() - 1, true)
        };
        let p = &mut s.pairs[pi];
        if forward {
            p.a_to_b.add(i, c);
        } else {
            p.b_to_a.add(i, c);
        }
        if !p.carriers.contains(&c.carrier_flow) {
            p.carriers.push(c.carrier_flow);
        }
    }
    for p in &mut s.pairs {
        p.carriers.sort();
        let (ab, ba) = (&p.a_to_b, &p.b_to_a);
        p.verdict = match (ab.successes > 0, ba.successes > 0) {
            (true, true) => Verdict::BothWays,
            (true, false) if ba.requests > 0 => Verdict::OneWay,
            (false, true) if ab.requests > 0 => Verdict::OneWay,
            (true, false) | (false, true) => Verdict::Succeeded,
            (false, false) => Verdict::Failed,
        };
    }
    // nomination: the first USE-CANDIDATE check answered with success
    let nominated = s
        .pairs
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            [&p.a_to_b, &p.b_to_a]
                .into_iter()
                .filter_map(move |d| d.nominated_frame.map(|f| (i, f)))
        })
        .min_by_key(|&(_, f)| f);
    if let Some((pi, frame)) = nominated {
        let ts = s
            .checks
            .iter()
            .flat_map(|c| c.answers.iter())
            .find(|a| a.frame == frame)
            .map(|a| a.ts_ns)
            .unwrap_or(0);
        s.nominated = Some((pi, frame, ts));
        let p = &s.pairs[pi];
        for &ci in p.a_to_b.checks.iter().chain(&p.b_to_a.checks) {
            let c = &s.checks[ci];
            if c.frame > frame {
                s.consent_checks += 1;
                s.last_consent_frame =
                    Some(s.last_consent_frame.map_or(c.frame, |l| l.max(c.frame)));
            }
        }
    }
}

/// A check must name one of an SDP body's ufrags no later than this after
/// the body for an ICE session to read it.  Checks start as soon as the
/// candidates are exchanged, that is once the answer is known (RFC 8445
/// §6.1), and the offer waits for
/// the answer at most as long as a proxy lets an INVITE ring (Timer C, more
/// than 3 minutes: RFC 3261 §16.6 step 11); a body no check has named by
/// then belongs to a call whose media this capture does not show (SIP seen
/// at a proxy, media elsewhere), and is dropped, so that SDP does not pile
/// up over a long capture.  Bodies that come after their session's first
/// check (re-INVITEs) are always read.
pub const SDP_WAIT_NS: i64 = 300_000_000_000;

/// A body is decided on once a SIP message this much later than its wait
/// came: a capture whose clock steps back (interfaces merged) by less than
/// this gets the decision a whole read gives.
const SDP_CLOCK_SLACK_NS: i64 = 60_000_000_000;

/// The capture's SDP, one SIP message at a time in capture order, for a
/// pass that does not keep the messages; read into media sections at the
/// end ([`SdpCollector::finish_for`]).
///
/// It keeps each distinct body once per (Call-ID, side) (proxies relay
/// copies; an offer is carried by a request other than ACK, an answer by a
/// response or an ACK), shared with the message that carried it (no
/// copy), and reads their media sections in parallel at the end, only
/// those an ICE session can use.  Parsed
/// candidates take about five times their text (every field is a
/// `String`), and a capture of thousands of calls holds thousands of
/// bodies: on the 2 GiB bench capture (3,392 calls) the parsed copies were
/// about 25 MB of a 135 MB heap peak.  Bodies no check named within
/// [`SDP_WAIT_NS`] are dropped as the capture goes on ([`SdpCollector::settle`]),
/// the same ones [`SdpCollector::finish_for`] would pass over.
#[derive(Default)]
pub struct SdpCollector {
    /// Bodies past their wait that a check named in time, in arrival order.
    kept: Vec<Body>,
    /// Bodies past their wait, to be decided by [`SdpCollector::settle`].
    settling: Vec<Body>,
    /// Distinct (Call-ID, side, body) still waiting, in arrival order:
    /// `waiting[0]` is body number `first`.
    waiting: std::collections::VecDeque<Body>,
    first: usize,
    /// Fx hash of (Call-ID, side, body) → the number of the last waiting
    /// body with that hash; bodies are compared whole, so a collision costs
    /// a compare only.
    by_hash: rustc_hash::FxHashMap<u64, usize>,
}

/// The SDP media sections ICE sessions can read ([`CheckFold::sdp_wanted`]):
/// every session key is a ufrag a check names or a draft-6 label.  Each
/// comes with the time of the first check that names it, for the rule of
/// [`SDP_WAIT_NS`].
#[derive(Debug, Default)]
pub struct SdpWanted {
    ufrags: rustc_hash::FxHashMap<String, i64>,
    /// The first check with a binary USERNAME: from then every draft-6
    /// section is wanted.
    draft6: Option<i64>,
}

impl SdpWanted {
    fn want(&mut self, ufrag: &str, ts: i64) {
        match self.ufrags.get_mut(ufrag) {
            Some(t) => *t = (*t).min(ts),
            None => {
                self.ufrags.insert(ufrag.to_string(), ts);
            }
        }
    }

    /// The ufrags a new check's USERNAME names, sent at `ts`.
    fn note(&mut self, user: &RawUser, ts: i64) {
        match user {
            RawUser::Text(s) => match s.split_once(':') {
                Some((r, snd)) => {
                    self.want(r, ts);
                    self.want(snd, ts);
                }
                None => self.want(s, ts),
            },
            RawUser::Opaque(b) => {
                self.draft6 = Some(self.draft6.map_or(ts, |t| t.min(ts)));
                self.want(&format!("hex:{}", hex(b)), ts);
            }
        }
    }

    /// True when a session may read `m`.
    pub fn keeps(&self, m: &SdpMedia) -> bool {
        (self.draft6.is_some() && m.draft6) || self.ufrags.contains_key(&m.ufrag)
    }

    /// False when no section of `body` can be kept by a check sent no later
    /// than `by`, found without parsing it: a kept section's ufrag is an
    /// `a=ice-ufrag:` line's value, read here as
    /// [`crate::proto::sdp::parse`] reads it (lines split at LF, CRs trimmed
    /// at the end, the attribute name in any case, the value trimmed);
    /// draft-6 sections have none, so once a binary USERNAME is seen every
    /// body is read.
    pub fn may_name(&self, body: &[u8], by: i64) -> bool {
        self.draft6.is_some_and(|t| t <= by)
            || body.split(|&b| b == b'\n').any(|line| {
                let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
                let line = &line[..end];
                let Some(rest) = line.strip_prefix(b"a=") else {
                    return false;
                };
                // `name:value`, or a bare name whose value is empty
                let (name, value) = match rest.iter().position(|&b| b == b':') {
                    Some(colon) => (&rest[..colon], &rest[colon + 1..]),
                    None => (rest, &b""[..]),
                };
                if !name.eq_ignore_ascii_case(b"ice-ufrag") {
                    return false;
                }
                self.ufrags
                    .get(String::from_utf8_lossy(value).trim())
                    .is_some_and(|&t| t <= by)
            })
    }
}

/// The fuzz check of [`SdpWanted::may_name`] (`fuzzing::sip`): a body it
/// turns away never has a section kept, whichever ufrag is wanted, the
/// ufrags of the body's own sections included.  Wanted ufrags hold no `:`
/// unless a binary USERNAME was seen (then every body is read): they are
/// the two halves of a text USERNAME, or one without a colon.
pub(crate) fn assert_may_name_is_safe(content_type: Option<&str>, body: &[u8]) {
    let b = Body {
        call_id: "fuzz".into(),
        side: "offer",
        frame: 1,
        ts_ns: 0,
        content_type: content_type.map(Into::into),
        body: body.into(),
        hash: 0,
        same_hash: NO_BODY,
    };
    let media = b.media();
    let mut sets: Vec<Vec<String>> = media
        .iter()
        .filter(|m| !m.ufrag.contains(':'))
        .map(|m| vec![m.ufrag.clone()])
        .collect();
    sets.push(vec!["fuzz".into()]);
    for set in sets {
        let w = SdpWanted {
            ufrags: set.into_iter().map(|u| (u, 0)).collect(),
            draft6: None,
        };
        if !w.may_name(body, 0) {
            assert!(
                !media.iter().any(|m| w.keeps(m)),
                "may_name turned away a body with a wanted section: {:?} {:?}",
                String::from_utf8_lossy(body),
                media.iter().map(|m| &m.ufrag).collect::<Vec<_>>()
            );
        }
    }
}

/// A body [`SdpCollector`] will read.
struct Body {
    call_id: Box<str>,
    side: &'static str,
    frame: u64,
    ts_ns: i64,
    content_type: Option<Box<str>>,
    body: std::sync::Arc<[u8]>,
    hash: u64,
    /// The one before it with the same hash ([`NO_BODY`]: none).
    same_hash: usize,
}

impl Body {
    /// Whether a session can read it: a check named one of its ufrags no
    /// later than [`SDP_WAIT_NS`] after it.
    fn wanted(&self, w: &SdpWanted) -> bool {
        w.may_name(&self.body, self.ts_ns.saturating_add(SDP_WAIT_NS))
    }
}

const NO_BODY: usize = usize::MAX;

impl SdpCollector {
    /// The next SIP message.
    pub fn push(&mut self, f: &crate::analyze::sip::Found) {
        use std::hash::{Hash, Hasher};
        // every SIP message moves the clock, with a body or not
        self.retire(f.ts_ns);
        let m = &f.msg;
        let Some(call_id) = m.call_id() else { return };
        if m.body.is_empty() {
            return;
        }
        let side = crate::proto::sdp::offer_or_answer(match &m.start {
            crate::proto::sip::StartLine::Request { method, .. } => Some(method.as_str()),
            crate::proto::sip::StartLine::Response { .. } => None,
        });
        let mut h = rustc_hash::FxHasher::default();
        (call_id, side, &m.body[..]).hash(&mut h);
        let h = h.finish();
        let mut at = self.by_hash.get(&h).copied().unwrap_or(NO_BODY);
        while let Some(b) = self.waiting_body(at) {
            if b.side == side && *b.call_id == *call_id && b.body[..] == m.body[..] {
                return;
            }
            at = b.same_hash;
        }
        let number = self.first + self.waiting.len();
        let same_hash = self.by_hash.insert(h, number).unwrap_or(NO_BODY);
        self.waiting.push_back(Body {
            call_id: call_id.into(),
            side,
            frame: f.frame,
            ts_ns: f.ts_ns,
            content_type: m.header("Content-Type").map(Into::into),
            body: std::sync::Arc::clone(&m.body),
            hash: h,
            same_hash,
        });
    }

    fn waiting_body(&self, number: usize) -> Option<&Body> {
        self.waiting.get(number.checked_sub(self.first)?)
    }

    /// Moves the bodies whose wait (and the clock's slack) is over by `now`
    /// out of the waiting list, to be settled: a copy of one that comes
    /// later is then a body of its own.
    fn retire(&mut self, now: i64) {
        let over = |b: &Body| b.ts_ns.saturating_add(SDP_WAIT_NS + SDP_CLOCK_SLACK_NS) < now;
        while self.waiting.front().is_some_and(over) {
            let Some(b) = self.waiting.pop_front() else {
                break;
            };
            if self.by_hash.get(&b.hash) == Some(&self.first) {
                self.by_hash.remove(&b.hash);
            }
            self.first += 1;
            self.settling.push(b);
        }
    }

    /// Keeps the retired bodies the checks so far name in time and drops
    /// the others.  Called once the checks up to the last SIP message are
    /// folded (a pass calls it after each batch): a check that names a
    /// retired body in time came before that message, unless the capture's
    /// clock stepped back by more than a minute.
    pub fn settle(&mut self, wanted: &SdpWanted) {
        for b in self.settling.drain(..) {
            if b.wanted(wanted) {
                self.kept.push(b);
            }
        }
    }

    /// The media sections ICE sessions can read, in the order their
    /// messages came, each (Call-ID, side, m-line, ufrag) once: of the bodies
    /// a check named within [`SDP_WAIT_NS`], the sections whose ufrag a
    /// check names ([`SdpWanted::keeps`]).  Bodies that cannot name one are
    /// not parsed, the other sections are dropped as each body is read, so
    /// they never all sit in memory at once.
    pub fn finish_for(self, wanted: &SdpWanted) -> Vec<SdpMedia> {
        use rayon::prelude::*;
        let SdpCollector {
            mut kept,
            settling,
            waiting,
            ..
        } = self;
        kept.extend(settling);
        kept.extend(waiting);
        let read: Vec<Vec<SdpMedia>> = kept
            .par_iter()
            .filter(|b| b.wanted(wanted))
            .map(|b| b.media().into_iter().filter(|m| wanted.keeps(m)).collect())
            .collect();
        let mut listed = rustc_hash::FxHashSet::default();
        read.into_iter()
            .flatten()
            .filter(|m| listed.insert((m.call_id.clone(), m.side, m.m_index, m.ufrag.clone())))
            .collect()
    }
}

impl Body {
    /// Its ICE-bearing media sections.
    fn media(&self) -> Vec<SdpMedia> {
        let (call_id, side) = (&*self.call_id, self.side);
        let mut out = Vec::new();
        for part in crate::proto::sdp::from_body(self.content_type.as_deref(), &self.body) {
            for (i, media) in part.sdp.media.into_iter().enumerate() {
                let draft6 = media
                    .candidates
                    .iter()
                    .any(|c| c.form == crate::proto::sdp::CandidateForm::Draft6);
                let ufrag = match (media.ice_ufrag, draft6) {
                    (_, true) => format!("draft6:{call_id}:{side}:{i}"),
                    (Some(u), false) => u,
                    (None, false) => continue,
                };
                out.push(SdpMedia {
                    call_id: call_id.to_string(),
                    frame: self.frame,
                    side,
                    m_index: i,
                    kind: media.kind,
                    ufrag,
                    draft6,
                    candidates: media.candidates,
                });
            }
        }
        out
    }
}

/// The SDP candidate at an address offered by the side with this ufrag.
pub fn candidate_at<'a>(
    sdp: &'a [SdpMedia],
    ufrag: Option<&str>,
    addr: SocketAddr,
    transport: &str,
) -> Option<&'a Candidate> {
    sdp.iter()
        .filter(|m| ufrag.is_none_or(|u| m.ufrag == u))
        .flat_map(|m| m.candidates.iter())
        .find(|c| c.socket() == Some(addr) && c.protocol == transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every check is kept to the end of the pass (docs/performance.md):
    /// its record stays at the size its fields were cut down to.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_check_kept_through_the_pass_stays_small() {
        assert!(
            std::mem::size_of::<Pending>() <= 232,
            "{}",
            std::mem::size_of::<Pending>()
        );
        assert!(std::mem::size_of::<SeenAnswer>() <= 48);
    }

    /// A Binding request with USERNAME `ab:cd`, as a message on `flow`.
    fn on_flow(bytes: &[u8], flow: u32, frame: u64, ts: i64) -> Found {
        let mut f = crate::analyze::stun::tests::found(bytes, frame, ts);
        f.flow = flow;
        f
    }

    fn check_request(tid: u8) -> Vec<u8> {
        let mut b = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42];
        b.extend([tid; 12]);
        b.extend([0x00, 0x06, 0x00, 0x05]);
        b.extend(b"ab:cd\0\0\0");
        b
    }

    fn success(tid: u8) -> Vec<u8> {
        let mut b = vec![0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        b.extend([tid; 12]);
        b
    }

    /// A check seen at two vantage points keeps the round trip of its first
    /// copy, even when the second copy's answer comes first: the fold gives
    /// what reading the whole capture gives.
    #[test]
    fn round_trip_of_the_first_copy() {
        const MS: i64 = 1_000_000;
        let msgs = [
            on_flow(&check_request(5), 1, 1, 0),
            on_flow(&check_request(5), 2, 2, MS),
            on_flow(&success(5), 2, 3, 2 * MS),
            on_flow(&success(5), 1, 4, 5 * MS),
        ];
        let mut fold = CheckFold::default();
        for f in &msgs {
            fold.push(f);
        }
        let s = fold.finish(Vec::new(), &StunCore::default(), &FlowTable::default());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ufrags, ["ab", "cd"]);
        let c = &s[0].checks[0];
        assert_eq!(s[0].checks.len(), 1);
        assert_eq!(c.also_seen, [2]);
        assert_eq!(c.rtt_ns, Some(5 * MS));
        assert_eq!(
            c.answers.iter().map(|a| a.frame).collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(
            (c.receiver_ufrag.as_deref(), c.sender_ufrag.as_deref()),
            (Some("ab"), Some("cd"))
        );
    }

    /// The sections sessions can read: the ufrags checks name; draft-6
    /// sections only once a binary (MS-ICE v1) USERNAME is seen.
    #[test]
    fn sdp_wanted_follows_the_checks_usernames() {
        let media = |ufrag: &str, draft6| SdpMedia {
            call_id: "c".into(),
            frame: 1,
            side: "offer",
            m_index: 0,
            kind: "audio".into(),
            ufrag: ufrag.into(),
            draft6,
            candidates: Vec::new(),
        };
        let draft6 = media("draft6:c:offer:0", true);
        let mut fold = CheckFold::default();
        fold.push(&on_flow(&check_request(1), 1, 1, 0));
        let w = fold.sdp_wanted();
        assert!(w.keeps(&media("ab", false)) && w.keeps(&media("cd", false)));
        assert!(!w.keeps(&media("ab:cd", false)) && !w.keeps(&draft6));
        // a binary USERNAME (control bytes: not text)
        let mut b = check_request(2);
        b[24..29].copy_from_slice(b"\x01\x02:1:");
        fold.push(&on_flow(&b, 1, 2, 0));
        let w = fold.sdp_wanted();
        assert!(w.keeps(&draft6) && w.keeps(&media("ab", false)));
        assert!(!w.keeps(&media("zz", false)));
    }

    /// Whether a body can name a wanted section is decided without parsing
    /// it, exactly as parsing it and keeping its sections decides.
    #[test]
    fn may_name_agrees_with_parsing() {
        let sdp = |ufrag_line: &str| {
            format!("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 0\r\n{ufrag_line}\r\na=candidate:1 1 UDP 2130706431 10.0.0.1 5000 typ host\r\n")
                .into_bytes()
        };
        let mut bodies: Vec<(Option<&str>, Vec<u8>)> = [
            "a=ice-ufrag:ab",
            "a=ICE-UFRAG: ab \r",
            "a=ice-ufrag:ab:cd",
            "a=ice-ufrag:zz",
            " a=ice-ufrag:ab",
            "a=x-ice-ufrag:ab",
            "a=ice-ufrag",
            "",
        ]
        .iter()
        .map(|l| (Some("application/sdp"), sdp(l)))
        .collect();
        // LF line ends, invalid UTF-8 next to the value, session level
        bodies.push((
            Some("application/sdp"),
            b"v=0\na=ice-ufrag:ab\nm=audio 1 RTP/AVP 0\n".to_vec(),
        ));
        bodies.push((
            Some("application/sdp"),
            b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=ice-ufrag:\xffab\r\n".to_vec(),
        ));
        let mut multipart = b"--b1\r\nContent-Type: application/sdp\r\n\r\n".to_vec();
        multipart.extend(sdp("a=ice-ufrag:cd"));
        multipart.extend(b"\r\n--b1--\r\n");
        bodies.push((Some("multipart/alternative;boundary=b1"), multipart));
        let wanted_sets: [&[&str]; 4] = [&["ab"], &["cd"], &["\u{fffd}ab"], &[]];
        for set in wanted_sets {
            let w = SdpWanted {
                ufrags: set.iter().map(|x| (x.to_string(), 0)).collect(),
                draft6: None,
            };
            for (ct, body) in &bodies {
                let b = Body {
                    call_id: "c".into(),
                    side: "offer",
                    frame: 1,
                    ts_ns: 0,
                    content_type: ct.map(Into::into),
                    body: body.as_slice().into(),
                    hash: 0,
                    same_hash: NO_BODY,
                };
                let kept = b.media().iter().any(|m| w.keeps(m));
                assert_eq!(
                    w.may_name(body, 0),
                    kept,
                    "{set:?} {:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    /// Bodies leave the waiting list once their wait is over: settled
    /// against the checks so far, the ones no check named in time go, and
    /// a later copy of one is a body of its own.
    #[test]
    fn sdp_bodies_no_check_named_in_time_are_dropped() {
        let sip = |ufrag: &str, call: &str, frame: u64, ts: i64| {
            let body = format!("v=0\r\nm=audio 1 RTP/AVP 0\r\na=ice-ufrag:{ufrag}\r\n");
            let text = format!("INVITE sip:b@x SIP/2.0\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let end = crate::flow::Endpoint {
                ip: [192, 0, 2, 1].into(),
                port: 5060,
            };
            crate::analyze::sip::Found {
                frame,
                end_frame: frame,
                ts_ns: ts,
                flow: 0,
                l4: L4::Udp,
                stream: 0,
                src: end,
                dst: end,
                msg: crate::proto::sip::parse(text.as_bytes(), true).expect("SIP"),
            }
        };
        const S: i64 = 1_000_000_000;
        let mut c = SdpCollector::default();
        let mut fold = CheckFold::default();
        c.push(&sip("ab", "c1", 1, 0));
        c.push(&sip("zz", "c2", 2, S));
        fold.push(&on_flow(&check_request(1), 1, 3, 10 * S));
        c.settle(fold.sdp_wanted());
        assert_eq!((c.waiting.len(), c.kept.len()), (2, 0), "still waiting");
        // a message without a body moves the clock too: past the wait and
        // the slack of both
        let mut bye = sip("zz", "c2", 4, 370 * S);
        bye.msg = crate::proto::sip::parse(
            b"BYE sip:b@x SIP/2.0\r\nCall-ID: c2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            true,
        )
        .expect("SIP");
        c.push(&bye);
        assert_eq!((c.waiting.len(), c.settling.len()), (0, 2));
        // a later copy of c2's body is a body of its own
        c.push(&sip("zz", "c2", 5, 400 * S));
        assert_eq!((c.waiting.len(), c.settling.len()), (1, 2));
        c.settle(fold.sdp_wanted());
        assert_eq!(c.kept.len(), 1, "the body a check named in time stays");
        assert_eq!(&*c.kept[0].call_id, "c1");
        assert_eq!(c.by_hash.len(), 1, "only the waiting body is indexed");
        let sdp = c.finish_for(fold.sdp_wanted());
        assert_eq!(sdp.len(), 1);
        assert_eq!((sdp[0].ufrag.as_str(), sdp[0].frame), ("ab", 1));
    }

    /// The pass keeps every check to the end: its record stays small.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_check_in_the_pass_is_smaller_than_a_check() {
        use std::mem::size_of;
        assert!(size_of::<Seen>() <= 216, "{}", size_of::<Seen>());
        assert!(size_of::<Pending>() <= 360, "{}", size_of::<Pending>());
        assert!(size_of::<Check>() > size_of::<Seen>() + 128);
    }

    #[test]
    fn chunked_list_keeps_order_and_indices() {
        let mut c = Chunked::default();
        let n = Chunked::<usize>::BLOCK * 2 + 3;
        for i in 0..n {
            assert_eq!(c.len(), i);
            c.push(i);
        }
        *c.get_mut(1500) += n;
        assert_eq!(c.try_get_mut(n).copied(), None);
        assert_eq!(c.try_get_mut(1500).copied(), Some(1500 + n));
        let v: Vec<usize> = c.into_iter().collect();
        assert_eq!(v.len(), n);
        assert!(v
            .iter()
            .enumerate()
            .all(|(i, &x)| x == i || (i == 1500 && x == i + n)));
    }

    #[test]
    fn base64() {
        assert_eq!(b64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(b64_decode("TWE").unwrap(), b"Ma");
        assert_eq!(b64_decode("TQ==").unwrap(), b"M");
        assert!(b64_decode("T!").is_none());
    }

    #[test]
    fn draft6_username_names_both_sdp_sections() {
        let cand = |user: &str| {
            crate::proto::sdp::Candidate::parse(
                "candidate",
                &format!("{user} 1 cGFzcw UDP 0.830 10.0.0.1 5000"),
            )
            .unwrap()
        };
        let media = |label: &str, user: &str| SdpMedia {
            call_id: "c".into(),
            frame: 1,
            side: "offer",
            m_index: 0,
            kind: "audio".into(),
            ufrag: label.into(),
            draft6: true,
            candidates: vec![cand(user)],
        };
        // "\xfa\xfb" and "\xfc\xfd" as base64
        let sdp = [
            media("draft6:c:offer:0", "+vs"),
            media("draft6:c:answer:0", "/P0"),
        ];
        let user = b"\xfc\xfd:1:\xfa\xfb:1\0\0";
        assert_eq!(
            draft6_sides(user, &sdp),
            Some(("draft6:c:answer:0".into(), "draft6:c:offer:0".into()))
        );
        assert_eq!(draft6_sides(b"\x01\x02:1:\x03:1", &sdp), None);
    }

    #[test]
    fn priority_types() {
        assert_eq!(type_from_priority(2130706431), "host");
        assert_eq!(type_from_priority(1862270975), "prflx");
        assert_eq!(type_from_priority(1694498815), "srflx");
        assert_eq!(type_from_priority(16777215), "relay");
        assert_eq!(type_from_priority(184547327), "relay"); // MS type preference 10
    }

    #[test]
    fn component_from_priority() {
        let mut c = Check {
            frame: 1,
            ts_ns: 0,
            from: "10.0.0.1:1".parse().unwrap(),
            to: "10.0.0.2:2".parse().unwrap(),
            transport: "udp",
            carrier_flow: (L4::Udp, 0),
            carrier: "direct".into(),
            username: "a:b".into(),
            receiver_ufrag: None,
            sender_ufrag: None,
            priority: Some(1862270975),
            use_candidate: false,
            role: None,
            candidate_id: None,
            ms_version: None,
            retransmissions: 0,
            retransmit_frames: vec![],
            also_seen: vec![],
            answers: vec![],
            rtt_ns: None,
        };
        assert_eq!(c.component(), Some(1));
        c.priority = Some(2130705918);
        assert_eq!(c.component(), Some(2));
    }
}
