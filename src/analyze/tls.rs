//! The TLS finder: every TCP connection whose first bytes in a direction are
//! TLS records (any port), followed record by record: who sent the
//! ClientHello versus who opened TCP (normal or reversed roles, the 8057
//! story), hello contents, certificates with their TLS role, alerts,
//! ChangeCipherSpec/Finished, application data each way, and the health of
//! the connection (idle time and retransmissions before a RST).
//!
//! MS pseudo-TLS (the fixed fake ClientHello of MS-TURN over 443) is labelled
//! and left to the STUN finder; a direction that shows no TLS in its first
//! 4 KiB is left alone.  Damage (non-TLS bytes after TLS, impossible
//! lengths, gaps) is recorded with its frame and stops that direction.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::capture::FrameInfo;
use crate::flow::reassembly::{ByteQueue, Event};
use crate::flow::streams::{CloseReason, StreamConsumer, TcpStreams};
use crate::flow::{Dir, Endpoint, FlowId, FlowTable, L4};
use crate::packet::{Packet, TcpFlags, Transport};
use crate::pipeline::{PacketSink, ShardSink};
use crate::proto::tls::{self, content, Front, Handshake, HandshakeAssembler};
use crate::proto::x509::{self, CertInfo};

/// Retransmissions remembered per connection (for "bursts before a RST").
const RETRANS_KEPT: usize = 64;
/// A record this small after the handshake counts as a keep-alive candidate.
const SMALL_RECORD: usize = 64;

/// One thing that happened on a TLS connection, in order.
#[derive(Debug, Clone)]
pub struct TlsEvent {
    /// Frame (of the record's first byte).
    pub frame: u64,
    /// Frame of the record's last byte (where Wireshark shows the reassembled record).
    pub end_frame: u64,
    /// Time.
    pub ts_ns: i64,
    /// 0 = sent by the TCP client (SYN sender), 1 = by the TCP server.
    pub dir: usize,
    /// `ClientHello`, `Certificate`, `Alert fatal unsupported_certificate`…
    pub what: String,
}

impl TlsEvent {
    /// An event of one frame (the first bytes of a direction, not a record).
    fn in_frame(frame: u64, ts_ns: i64, dir: usize, what: &str) -> TlsEvent {
        TlsEvent {
            frame,
            end_frame: frame,
            ts_ns,
            dir,
            what: what.into(),
        }
    }
}

/// A certificate as sent.
#[derive(Debug, Clone)]
pub struct SentCert {
    /// Frame of the Certificate message.
    pub frame: u64,
    /// Sender direction (0 TCP client, 1 TCP server).
    pub dir: usize,
    /// Position in the chain (0 = end-entity).
    pub index: usize,
    /// Parsed, or why not (shared: every connection to a server sends the
    /// same chain, which is parsed and kept once).
    pub info: Arc<Result<CertInfo, String>>,
}

/// Distinct certificates kept parsed at most (beyond, each is parsed on its own).
const CERT_CACHE_MAX: usize = 4096;

/// An alert.
#[derive(Debug, Clone)]
pub struct AlertSeen {
    /// Frame.
    pub frame: u64,
    /// Time.
    pub ts_ns: i64,
    /// Sender direction.
    pub dir: usize,
    /// 1 warning, 2 fatal (None when encrypted).
    pub level: Option<u8>,
    /// Description (None when encrypted).
    pub description: Option<u8>,
}

/// Per-direction counters.
#[derive(Debug, Clone, Default)]
pub struct DirStats {
    /// Records seen.
    pub records: u64,
    /// Application data records.
    pub app_records: u64,
    /// Application data bytes (record fragments).
    pub app_bytes: u64,
    /// ChangeCipherSpec frame.
    pub ccs_frame: Option<u64>,
    /// First encrypted handshake record after CCS (Finished in TLS ≤ 1.2).
    pub finished_frame: Option<u64>,
    /// Time of that record.
    pub finished_ts: Option<i64>,
    /// Small application records after the handshake: count, first and last time.
    pub small_records: u64,
    /// Times of small records (first 4096) for the interval.
    pub small_times: Vec<i64>,
}

/// What a TLS connection showed.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Flow.
    pub flow: FlowId,
    /// Stream index.
    pub stream: u32,
    /// TCP client (SYN sender).
    pub client: Endpoint,
    /// TCP server.
    pub server: Endpoint,
    /// Direction that sent the ClientHello, its frame and time.
    pub client_hello: Option<(usize, u64, i64, tls::ClientHello)>,
    /// Direction that sent the ServerHello, its frame.
    pub server_hello: Option<(usize, u64, tls::ServerHello)>,
    /// A HelloRetryRequest was seen.
    pub hello_retry: bool,
    /// SSLv2-format ClientHello.
    pub sslv2_hello: Option<(usize, u64)>,
    /// MS pseudo-TLS (MS-TURN over 443): not a real handshake.
    pub pseudo_tls: bool,
    /// Cut down: a report will not list this connection, so its timeline,
    /// keep-alive times and offered lists are not kept ([`TlsFinder::whole_for_first`]).
    pub cut: bool,
    /// CertificateRequest: sender direction, frame, number of CAs.
    pub cert_request: Option<(usize, u64, usize)>,
    /// Certificates in order.
    pub certs: Vec<SentCert>,
    /// Alerts in order.
    pub alerts: Vec<AlertSeen>,
    /// Handshake messages and other notable records in order.
    pub events: Vec<TlsEvent>,
    /// Per direction.
    pub dirs: [DirStats; 2],
    /// Problems (non-TLS bytes, gaps, malformed messages) with frames.
    pub problems: Vec<(u64, String)>,
}

/// Adds an event to a connection's timeline, unless the connection is cut down.
fn record_event(events: &mut Vec<TlsEvent>, cut: bool, e: TlsEvent) {
    if !cut {
        events.push(e);
    }
}

impl Conn {
    /// Drops what only a listing of this connection shows: its timeline, the
    /// times of its keep-alive records and the lists its hellos offered.
    /// Counters, certificates, alerts and health stay: findings read them.
    pub fn cut_down(&mut self) {
        self.cut = true;
        self.events = Vec::new();
        for d in &mut self.dirs {
            d.small_times = Vec::new();
        }
        if let Some((_, _, _, ch)) = self.client_hello.as_mut() {
            ch.ciphers = Vec::new();
            ch.extensions = Vec::new();
        }
        if let Some((_, _, sh)) = self.server_hello.as_mut() {
            sh.extensions = Vec::new();
        }
    }

    /// True when the connection showed TLS at all.
    pub fn is_tls(&self) -> bool {
        self.client_hello.is_some()
            || self.server_hello.is_some()
            || self.sslv2_hello.is_some()
            || self.dirs.iter().any(|d| d.records > 0)
    }
}

/// TCP facts the finder gathers per connection for health notes.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Last packet time and frame.
    pub last: Option<(i64, u64)>,
    /// Highest sequence end seen per direction (relative to the first).
    high: [Option<u64>; 2],
    base: [Option<u32>; 2],
    /// Retransmissions (frame, time, direction), the last `RETRANS_KEPT`.
    pub retrans: Vec<(u64, i64, usize)>,
    /// Total retransmissions.
    pub retrans_total: u64,
    /// First RST: frame, time, direction, silence before it (ns).
    pub rst: Option<(u64, i64, usize, i64)>,
    /// Longest silence between packets (ns) and the frame that ended it.
    pub max_idle: Option<(i64, u64)>,
}

struct DirState {
    queue: ByteQueue,
    seen: super::Recognition,
    hs: HandshakeAssembler,
    stopped: bool,
    /// A record whose contents are not read (application data, the bulk
    /// of a connection), being passed over as its bytes arrive instead of
    /// gathered in `queue`.
    skipping: Option<Skip>,
}

/// A record passed over: its header, where it began, and how many of its
/// bytes are still to come.
struct Skip {
    content_type: u8,
    len: usize,
    frame: u64,
    ts_ns: i64,
    left: usize,
}

/// The collected connections; also the stream consumer.
#[derive(Default)]
pub struct Core {
    /// TLS connections by flow.  Boxed: a B-tree filled in ascending order
    /// leaves its nodes about half empty, which costs little for a pointer
    /// and cost 1.8 times a connection's 650 bytes held inline.
    pub conns: BTreeMap<FlowId, Box<Conn>>,
    /// Health per TCP flow (kept for TLS connections at the end), boxed
    /// like the connections.  Hashed, as `dirs` and `tls13`: they are only
    /// ever looked up (never walked in order), once per TCP packet, where a
    /// B-tree's search was 1 % of a report's instructions.
    pub health: FxHashMap<FlowId, Box<Health>>,
    dirs: FxHashMap<(FlowId, usize), DirState>,
    tls13: FxHashMap<FlowId, bool>,
    /// Certificates parsed so far, by their DER bytes.
    certs: FxHashMap<Vec<u8>, Arc<Result<CertInfo, String>>>,
    /// The connections that can be among the first N (by stream) of the
    /// whole capture, which a report lists: only they stay whole.
    listable: super::FirstN,
}

impl Core {
    /// The flow's connection, made on its first TLS record.
    fn conn(&mut self, flow: FlowId, f: &crate::flow::Flow) -> Option<&mut Conn> {
        if let std::collections::btree_map::Entry::Vacant(e) = self.conns.entry(flow) {
            e.insert(Box::new(Conn {
                flow,
                stream: f.stream,
                client: f.client,
                server: f.server,
                client_hello: None,
                server_hello: None,
                hello_retry: false,
                sslv2_hello: None,
                pseudo_tls: false,
                cut: false,
                cert_request: None,
                certs: Vec::new(),
                alerts: Vec::new(),
                events: Vec::new(),
                dirs: Default::default(),
                problems: Vec::new(),
            }));
            self.rank(flow);
        }
        self.conns.get_mut(&flow).map(|c| &mut **c)
    }

    /// A flow just became a TLS connection: one that can no longer be listed
    /// ([`super::FirstN`]; TCP flow ids follow stream numbers, so the first N
    /// by flow are the first N by stream) is cut down ([`Conn::cut_down`]).
    fn rank(&mut self, flow: FlowId) {
        if let Some(c) = self
            .listable
            .admit(flow)
            .and_then(|out| self.conns.get_mut(&out))
        {
            c.cut_down();
        }
    }

    fn drain(&mut self, flow: FlowId, f: &crate::flow::Flow, d: usize, at_end: bool) {
        loop {
            let Some(ds) = self.dirs.get_mut(&(flow, d)) else {
                return;
            };
            if ds.stopped || ds.seen.given_up() {
                ds.queue.release();
                return;
            }
            if let Some(sk) = ds.skipping.as_ref().filter(|_| at_end) {
                // what the queue would have held of the record
                let n = 5 + sk.len - sk.left;
                let frame = sk.frame;
                ds.skipping = None;
                if ds.seen.recognised() {
                    if let Some(c) = self.conn(flow, f) {
                        c.problems.push((
                            frame,
                            format!("{n} bytes of an incomplete record at the end"),
                        ));
                    }
                }
                return;
            }
            if ds.queue.is_empty() {
                return;
            }
            let data = ds.queue.data();
            let (frame, ts) = ds.queue.frame_at(ds.queue.start()).unwrap_or((0, 0));
            if !ds.seen.recognised() {
                if crate::proto::tcpframe::is_pseudo_client(data) {
                    ds.stopped = true;
                    if let Some(c) = self.conn(flow, f) {
                        c.pseudo_tls = true;
                        let e = TlsEvent::in_frame(
                            frame,
                            ts,
                            d,
                            "MS pseudo-TLS ClientHello (MS-TURN framing follows)",
                        );
                        record_event(&mut c.events, c.cut, e);
                    }
                    return;
                }
                if tls::sslv2_client_hello(data) {
                    ds.stopped = true;
                    ds.seen.hit();
                    if let Some(c) = self.conn(flow, f) {
                        c.sslv2_hello = Some((d, frame));
                        let e = TlsEvent::in_frame(frame, ts, d, "SSLv2-format ClientHello");
                        record_event(&mut c.events, c.cut, e);
                    }
                    return;
                }
            }
            match tls::front(data) {
                // a record whose contents are not read and whose bytes are
                // still coming (16 KiB of application data over a dozen
                // segments): its bytes are passed over as they arrive,
                // not gathered
                Front::NeedMore
                    if !at_end
                        && data.len() >= 5
                        && !matches!(data[0], content::HANDSHAKE | content::ALERT) =>
                {
                    let len = usize::from(u16::from_be_bytes([data[3], data[4]]));
                    let n = data.len();
                    ds.skipping = Some(Skip {
                        content_type: data[0],
                        len,
                        frame,
                        ts_ns: ts,
                        left: 5 + len - n,
                    });
                    ds.queue.consume(n);
                    return;
                }
                Front::NeedMore => {
                    if at_end {
                        let n = data.len();
                        let recognised = ds.seen.recognised();
                        ds.queue.consume(n);
                        if recognised {
                            if let Some(c) = self.conn(flow, f) {
                                c.problems.push((
                                    frame,
                                    format!("{n} bytes of an incomplete record at the end"),
                                ));
                            }
                        }
                    }
                    return;
                }
                Front::NotTls(why) => {
                    let n = data.len();
                    if ds.seen.recognised() {
                        ds.stopped = true;
                        if let Some(c) = self.conn(flow, f) {
                            c.problems
                                .push((frame, format!("not TLS after TLS: {why}")));
                        }
                    } else {
                        // not TLS (yet): look no further in this direction
                        ds.queue.consume(n);
                        ds.seen.skipped(super::Recognition::GIVE_UP_AFTER + 1);
                    }
                    return;
                }
                Front::Record {
                    content_type,
                    version: _,
                    len,
                } => {
                    // only handshake and alert contents are read; application
                    // data (the bulk of a connection) is counted, never copied
                    let fragment = if matches!(content_type, content::HANDSHAKE | content::ALERT) {
                        data[5..5 + len].to_vec()
                    } else {
                        Vec::new()
                    };
                    let end = ds
                        .queue
                        .frame_at(ds.queue.start() + (5 + len) as u64 - 1)
                        .map_or(frame, |x| x.0);
                    ds.queue.consume(5 + len);
                    ds.seen.hit();
                    self.record(
                        (flow, f),
                        d,
                        (frame, end),
                        ts,
                        (content_type, len),
                        &fragment,
                    );
                }
            }
        }
    }

    /// One record of `len` fragment bytes; `fragment` holds the contents for
    /// handshake and alert records only (the rest are counted, not read).
    fn record(
        &mut self,
        (flow, f): (FlowId, &crate::flow::Flow),
        d: usize,
        (frame, end_frame): (u64, u64),
        ts: i64,
        (ct, len): (u8, usize),
        fragment: &[u8],
    ) {
        let tls13 = self.tls13.get(&flow).copied().unwrap_or(false);
        let mut messages = Vec::new();
        if let Some(ds) = self.dirs.get_mut(&(flow, d)) {
            if ct == content::HANDSHAKE
                && self
                    .conns
                    .get(&flow)
                    .is_none_or(|c| c.dirs[d].ccs_frame.is_none())
            {
                messages = ds.hs.push(fragment);
            }
        }
        let Some(c) = self.conn(flow, f) else { return };
        let st = &mut c.dirs[d];
        st.records += 1;
        let ev = |what: String| TlsEvent {
            frame,
            end_frame,
            ts_ns: ts,
            dir: d,
            what,
        };
        match ct {
            content::CHANGE_CIPHER_SPEC if st.ccs_frame.is_none() => {
                st.ccs_frame = Some(frame);
                record_event(&mut c.events, c.cut, ev("ChangeCipherSpec".into()));
            }
            content::ALERT => {
                // a clear alert is 2 bytes; an encrypted one (TLS ≤ 1.2 after
                // CCS) carries a MAC; TLS 1.3 sends its encrypted alerts as
                // application data records
                let clear = fragment.len() == 2;
                let (level, description) = if clear {
                    (Some(fragment[0]), Some(fragment[1]))
                } else {
                    (None, None)
                };
                c.alerts.push(AlertSeen {
                    frame,
                    ts_ns: ts,
                    dir: d,
                    level,
                    description,
                });
                record_event(
                    &mut c.events,
                    c.cut,
                    ev(match (level, description) {
                        (Some(l), Some(x)) => format!(
                            "Alert {} {} ({x})",
                            if l == 2 { "fatal" } else { "warning" },
                            tls::alert_name(x)
                        ),
                        _ => "Alert (encrypted)".into(),
                    }),
                );
            }
            // after ChangeCipherSpec the sender's handshake records are encrypted
            content::HANDSHAKE if st.ccs_frame.is_some() && st.finished_frame.is_none() => {
                st.finished_frame = Some(frame);
                st.finished_ts = Some(ts);
                record_event(&mut c.events, c.cut, ev("Finished (encrypted)".into()));
            }
            content::APPLICATION_DATA => {
                // TLS 1.3: the first encrypted record after the hellos is the
                // rest of the sender's handshake flight
                if tls13 && st.finished_frame.is_none() {
                    st.finished_frame = Some(frame);
                    st.finished_ts = Some(ts);
                    record_event(
                        &mut c.events,
                        c.cut,
                        ev("encrypted handshake (TLS 1.3)".into()),
                    );
                } else {
                    st.app_records += 1;
                    st.app_bytes += len as u64;
                    if len <= SMALL_RECORD {
                        st.small_records += 1;
                        if !c.cut && st.small_times.len() < 4096 {
                            st.small_times.push(ts);
                        }
                    }
                }
            }
            content::HEARTBEAT => record_event(&mut c.events, c.cut, ev("Heartbeat".into())),
            _ => {}
        }
        let mut to_parse: Vec<(usize, Vec<u8>)> = Vec::new();
        for m in messages {
            let t = m.first().copied().unwrap_or(255);
            let parsed = tls::parse_handshake(&m);
            let mut what = tls::handshake_name(t).to_string();
            match parsed {
                Handshake::ClientHello(ch) => {
                    if c.client_hello.is_none() {
                        c.client_hello = Some((d, frame, ts, ch));
                        if c.cut {
                            c.cut_down();
                        }
                    }
                }
                Handshake::ServerHello(sh) => {
                    if sh.hello_retry_request {
                        c.hello_retry = true;
                        what = "HelloRetryRequest".into();
                    } else if c.server_hello.is_none() {
                        c.server_hello = Some((d, frame, sh));
                        if c.cut {
                            c.cut_down();
                        }
                    }
                }
                Handshake::Certificate(chain) => {
                    what = format!("Certificate ({} cert(s))", chain.len());
                    for (i, der) in chain.into_iter().enumerate() {
                        // parsed below, once `c` is released (the cache is on `self`)
                        to_parse.push((c.certs.len(), der));
                        c.certs.push(SentCert {
                            frame,
                            dir: d,
                            index: i,
                            info: Arc::new(Err(String::new())),
                        });
                    }
                }
                Handshake::CertificateRequest { cas, .. } => {
                    c.cert_request = Some((d, frame, cas));
                }
                Handshake::Malformed(_, why) => c.problems.push((frame, why)),
                Handshake::Other(_) => {}
            }
            record_event(&mut c.events, c.cut, ev(what));
        }
        let now13 = c
            .server_hello
            .as_ref()
            .is_some_and(|s| tls::is_tls13(s.2.negotiated()));
        if now13 {
            self.tls13.insert(flow, true);
        }
        for (k, der) in to_parse {
            let info = self.cert_info(der);
            if let Some(c) = self.conns.get_mut(&flow) {
                c.certs[k].info = info;
            }
        }
    }

    /// A certificate parsed, from the cache when the same bytes were seen.
    fn cert_info(&mut self, der: Vec<u8>) -> Arc<Result<CertInfo, String>> {
        if let Some(info) = self.certs.get(&der) {
            return Arc::clone(info);
        }
        let info = Arc::new(x509::parse(&der));
        if self.certs.len() < CERT_CACHE_MAX {
            self.certs.insert(der, Arc::clone(&info));
        }
        info
    }
}

impl StreamConsumer for Core {
    fn event(&mut self, flow: FlowId, f: &crate::flow::Flow, dir: Dir, ev: Event<'_>) {
        let d = dir.idx();
        let ds = self.dirs.entry((flow, d)).or_insert_with(|| DirState {
            queue: ByteQueue::new(),
            seen: Default::default(),
            hs: HandshakeAssembler::default(),
            stopped: false,
            skipping: None,
        });
        match ev {
            Event::Data {
                mut offset,
                mut bytes,
                frame,
                ts_ns,
            } => {
                if ds.stopped || ds.seen.given_up() {
                    return;
                }
                if let Some(sk) = ds.skipping.as_mut() {
                    let take = sk.left.min(bytes.len());
                    sk.left -= take;
                    bytes = &bytes[take..];
                    offset += take as u64;
                    if sk.left == 0 {
                        // its last byte is in this frame
                        if let Some(sk) = ds.skipping.take() {
                            ds.seen.hit();
                            self.record(
                                (flow, f),
                                d,
                                (sk.frame, frame),
                                sk.ts_ns,
                                (sk.content_type, sk.len),
                                &[],
                            );
                        }
                    }
                    if bytes.is_empty() {
                        return;
                    }
                }
                let Some(ds) = self.dirs.get_mut(&(flow, d)) else {
                    return;
                };
                ds.queue.push(offset, bytes, frame, ts_ns);
                self.drain(flow, f, d, false);
            }
            Event::Gap { offset, len, frame } => {
                self.drain(flow, f, d, true);
                let recognised = self
                    .dirs
                    .get(&(flow, d))
                    .is_some_and(|x| x.seen.recognised());
                if recognised {
                    if let Some(c) = self.conn(flow, f) {
                        c.problems
                            .push((frame, format!("{len} bytes missing from the TCP stream; direction not followed further")));
                    }
                }
                if let Some(ds) = self.dirs.get_mut(&(flow, d)) {
                    ds.queue.reset(offset + len);
                    ds.stopped = recognised;
                }
            }
        }
    }

    fn closed(&mut self, flow: FlowId, f: &crate::flow::Flow, _reason: CloseReason) {
        for d in 0..2 {
            self.drain(flow, f, d, true);
            self.dirs.remove(&(flow, d));
        }
        self.tls13.remove(&flow);
        if !self
            .conns
            .get(&flow)
            .is_some_and(|c| c.is_tls() || c.pseudo_tls)
        {
            self.conns.remove(&flow);
            self.health.remove(&flow);
        }
    }

    fn wants(&self, flow: FlowId, dir: Dir) -> bool {
        // not TLS in this direction: `event` drops it, and gaps there are not reported
        self.dirs
            .get(&(flow, dir.idx()))
            .is_none_or(|ds| !ds.seen.given_up())
    }
    /// A direction given up holds nothing this finder reads again before
    /// `closed` (whose drain of it would stop at once).
    fn let_go(&mut self, flow: FlowId, dir: Dir) {
        self.dirs.remove(&(flow, dir.idx()));
    }
}

/// The finder as a pipeline sink.
#[derive(Default)]
pub struct TlsFinder {
    streams: TcpStreams<Core>,
}

impl PacketSink for TlsFinder {
    fn wants_payload(&self) -> bool {
        true
    }

    /// TLS is read on TCP only.
    fn wants_udp_payload(&self, _first: u8) -> bool {
        false
    }

    fn packet(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
    ) {
        let Some((id, dir)) = flow else { return };
        let Transport::Tcp(t) = &pkt.transport else {
            return;
        };
        if flows.get(id).l4 != L4::Tcp {
            return;
        }
        self.health(frame, t, id, dir);
        self.streams.packet(frame, pkt, Some((id, dir)), flows);
    }

    fn finish(&mut self, flows: &FlowTable) {
        self.streams.finish(flows);
    }
}

impl TlsFinder {
    /// Notes a TCP packet of flow `id` in the connection's health (silences,
    /// retransmissions, the first RST): every TCP packet, whether or not its
    /// stream is read.
    pub fn health(&mut self, frame: &FrameInfo, t: &crate::packet::Tcp<'_>, id: FlowId, dir: Dir) {
        let core = self.streams.consumer_mut();
        let h = core.health.entry(id).or_default();
        let d = dir.idx();
        if let Some((last, _)) = h.last {
            let gap = frame.ts_ns - last;
            if h.max_idle.is_none_or(|(g, _)| gap > g) {
                h.max_idle = Some((gap, frame.number));
            }
        }
        // retransmission: payload wholly below the highest byte already seen
        let len = t.payload.len() as u64
            + u64::from(t.flags.has(TcpFlags::SYN))
            + u64::from(t.flags.has(TcpFlags::FIN));
        let base = *h.base[d].get_or_insert(t.seq);
        let rel = u64::from(t.seq.wrapping_sub(base));
        if len > 0 && !t.flags.has(TcpFlags::SYN) {
            if let Some(high) = h.high[d] {
                if rel + len <= high {
                    h.retrans_total += 1;
                    if h.retrans.len() == RETRANS_KEPT {
                        h.retrans.remove(0);
                    }
                    h.retrans.push((frame.number, frame.ts_ns, d));
                }
            }
            h.high[d] = Some(h.high[d].map_or(rel + len, |x| x.max(rel + len)));
        }
        if t.flags.has(TcpFlags::RST) && h.rst.is_none() {
            let silence = h.last.map(|(l, _)| frame.ts_ns - l).unwrap_or(0);
            h.rst = Some((frame.number, frame.ts_ns, d, silence));
        }
        h.last = Some((frame.ts_ns, frame.number));
    }

    /// The stream consumer, for a reassembly shared with other finders
    /// ([`crate::flow::streams::Fanout`]).
    pub fn core_mut(&mut self) -> &mut Core {
        self.streams.consumer_mut()
    }
}

impl ShardSink for TlsFinder {
    fn fork(&self) -> Self {
        let mut f = TlsFinder::default();
        f.streams.consumer_mut().listable = self.streams.consumer().listable.fork();
        f
    }
}

impl TlsFinder {
    /// Ranks the shard's connections with the other shards' for a report's
    /// listing ([`super::FirstN::cap`]): those it ranks out are cut down.
    pub fn cap_listing<'a>(shards: impl Iterator<Item = &'a mut TlsFinder>) {
        super::FirstN::cap_shards(
            shards,
            |s| &mut s.streams.consumer_mut().listable,
            |s, ids| {
                let core = s.streams.consumer_mut();
                for id in ids {
                    if let Some(c) = core.conns.get_mut(id) {
                        c.cut_down();
                    }
                }
            },
        );
    }

    /// A finder for a report that lists the first `n` connections by stream:
    /// the others are cut down ([`Conn::cut_down`]) as soon as they cannot be
    /// among them.
    pub fn whole_for_first(n: usize) -> Self {
        let mut f = TlsFinder::default();
        f.streams.consumer_mut().listable = super::FirstN::new(n);
        f
    }
}

/// Merges shards: connections and their health, in stream order.
pub fn merge(shards: Vec<TlsFinder>) -> Core {
    let mut core = Core::default();
    for s in shards {
        let c = s.streams.into_consumer();
        let mut health = c.health;
        for (id, conn) in c.conns {
            if conn.is_tls() || conn.pseudo_tls {
                if let Some(h) = health.remove(&id) {
                    core.health.insert(id, h);
                }
                core.conns.insert(id, conn);
            }
        }
    }
    core
}
