//! Flows: TCP connections and UDP conversations, numbered exactly like
//! Wireshark's `tcp.stream` and `udp.stream`, and TCP reassembly.
//!
//! Numbering rules (Wireshark 4.x `packet-tcp.c` / `packet-udp.c`):
//! - a conversation is the unordered pair of endpoints (address, port);
//!   each transport has its own counter, starting at 0, in order of first
//!   appearance in the file;
//! - UDP conversations are never split;
//! - a TCP conversation is split when a SYN without ACK arrives whose sequence
//!   number differs from the first sequence number seen from that side (the
//!   4-tuple is reused for a new connection);
//! - ICMP errors quoting a packet do not create or split flows here (they are
//!   counted on the flow they quote).
//!
//! The table keeps one light record per flow for the whole run (it is the
//! output): [`Flow`], what analyzers read, and, for `edgetrace flows` only,
//! [`FlowCounts`].  Per-flow heavy state such as reassembly buffers lives
//! with the consumers and is bounded there.

pub mod reassembly;
pub mod seq;
pub mod streams;
pub mod tcp;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU64;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::capture::FrameInfo;
use crate::packet::{Packet, Quoted, TcpFlags, Transport};

/// Transport protocol of a flow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum L4 {
    /// TCP (`tcp.stream`).
    Tcp,
    /// UDP (`udp.stream`).
    Udp,
}

impl L4 {
    /// "tcp" or "udp".
    pub fn name(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        }
    }
}

/// An address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IP address.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
}

/// `addr:port`, IPv6 as `[addr]:port`, IPv4 written by hand (see `Endpoint::text`).
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ENDPOINT_TEXT];
        f.write_str(self.text(&mut buf))
    }
}

impl From<std::net::SocketAddr> for Endpoint {
    fn from(a: std::net::SocketAddr) -> Endpoint {
        Endpoint {
            ip: a.ip(),
            port: a.port(),
        }
    }
}

/// In JSON an endpoint is the string `addr:port` (`[v6]:port`).
impl schemars::JsonSchema for Endpoint {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Endpoint".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "transport address: addr:port, IPv6 as [addr]:port"
        })
    }
}

/// Room for the longest endpoint text: `[` + 39 (IPv6) + `]:` + 5.
const ENDPOINT_TEXT: usize = 47;

impl Endpoint {
    /// Appends the address alone (IPv6 without brackets) to `out`, written
    /// as the endpoint's text is (IPv4 by hand, without `fmt`).
    pub fn push_ip(&self, out: &mut String) {
        let mut buf = [0u8; ENDPOINT_TEXT];
        let t = self.text(&mut buf);
        let ip = match self.ip {
            IpAddr::V4(_) => t.rsplit_once(':').map_or(t, |(ip, _)| ip),
            IpAddr::V6(_) => t.rsplit_once("]:").map_or(t, |(ip, _)| &ip[1..]),
        };
        out.push_str(ip);
    }

    /// Its text (what [`fmt::Display`] writes) in `buf`.  IPv4 is written
    /// by hand: a report holds tens of thousands of endpoints, and through
    /// `fmt` (whose `Ipv4Addr` writes about 490 instructions an address)
    /// and `collect_str` (which escapes every fragment) they cost 39 M
    /// instructions of the 200 MB bench report.
    fn text<'b>(&self, buf: &'b mut [u8; ENDPOINT_TEXT]) -> &'b str {
        fn decimal(buf: &mut [u8], at: &mut usize, n: u16) {
            let mut digits = [0u8; 5];
            let mut i = digits.len();
            let mut n = n;
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            let d = &digits[i..];
            buf[*at..*at + d.len()].copy_from_slice(d);
            *at += d.len();
        }
        let mut at = 0;
        match self.ip {
            IpAddr::V4(a) => {
                for (i, o) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[at] = b'.';
                        at += 1;
                    }
                    decimal(buf, &mut at, u16::from(o));
                }
            }
            IpAddr::V6(a) => {
                use std::io::Write;
                let mut c = std::io::Cursor::new(&mut buf[..]);
                // 41 bytes at most: it fits
                let _ = write!(c, "[{a}]");
                at = c.position() as usize;
            }
        }
        buf[at] = b':';
        at += 1;
        decimal(buf, &mut at, self.port);
        std::str::from_utf8(&buf[..at]).unwrap_or_default()
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; ENDPOINT_TEXT];
        s.serialize_str(self.text(&mut buf))
    }
}

/// Direction of a packet within its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server (index 0).
    ToServer = 0,
    /// Server to client (index 1).
    ToClient = 1,
}

impl Dir {
    /// Array index (0 = client→server).
    #[inline]
    pub fn idx(self) -> usize {
        self as usize
    }
}

/// Transport and (source, destination) of the TCP or UDP packet an ICMP error quotes.
pub fn quoted_endpoints(q: &Quoted) -> Option<(L4, Endpoint, Endpoint)> {
    let l4 = match q.protocol {
        6 => L4::Tcp,
        17 => L4::Udp,
        _ => return None,
    };
    let src = Endpoint {
        ip: q.src,
        port: q.src_port,
    };
    let dst = Endpoint {
        ip: q.dst,
        port: q.dst_port,
    };
    Some((l4, src, dst))
}

/// Hash key of an IPv4 flow: the unordered endpoint pair plus transport,
/// packed into integers so hashing and comparing are a few word operations
/// on the hot path.  A table slot (key and flow id) takes 20 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key4 {
    lo_ip: u32,
    hi_ip: u32,
    lo_port: u16,
    hi_port: u16,
    l4: L4,
}

/// Two words to hash instead of five fields.
impl std::hash::Hash for Key4 {
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(u64::from(self.lo_ip) << 32 | u64::from(self.hi_ip));
        let l4 = match self.l4 {
            L4::Tcp => 0,
            L4::Udp => 1,
        };
        h.write_u64(u64::from(self.lo_port) << 32 | u64::from(self.hi_port) << 16 | l4);
    }
}

/// Hash key of an IPv6 flow.  The addresses are held as two 64-bit words
/// each, not as `u128`, whose 16-byte alignment would pad a table slot from
/// 48 to 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key6 {
    lo_ip: [u64; 2],
    hi_ip: [u64; 2],
    lo_port: u16,
    hi_port: u16,
    l4: L4,
}

/// The key of a flow, in the table of its address family.  IPv4 and IPv6
/// addresses never match each other, IPv4-mapped ones included, as in
/// Wireshark, whose conversations compare address types first.
#[derive(Debug, Clone, Copy)]
enum Key {
    V4(Key4),
    V6(Key6),
}

#[inline]
fn words(ip: std::net::Ipv6Addr) -> [u64; 2] {
    let ip = u128::from(ip);
    [(ip >> 64) as u64, ip as u64]
}

/// The address as IPv6 (IPv4-mapped for IPv4).
#[inline]
fn as_v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// Two sides (address, port) low side first, and whether `a` is the low one.
#[inline(always)]
fn ordered<T: Ord>(a: (T, u16), b: (T, u16)) -> ((T, u16), (T, u16), bool) {
    if a <= b {
        (a, b, true)
    } else {
        (b, a, false)
    }
}

impl Key {
    /// The key of two IPv4 sides and whether `a` is its low side: each
    /// side packed into one integer, address above port, so that one
    /// compare orders them as `(address, port)` pairs.
    #[inline(always)]
    fn v4(l4: L4, a: (Ipv4Addr, u16), b: (Ipv4Addr, u16)) -> (Key, bool) {
        let pa = u64::from(u32::from(a.0)) << 16 | u64::from(a.1);
        let pb = u64::from(u32::from(b.0)) << 16 | u64::from(b.1);
        let a_lo = pa <= pb;
        let (lo, hi) = if a_lo { (pa, pb) } else { (pb, pa) };
        let k = Key4 {
            lo_ip: (lo >> 16) as u32,
            hi_ip: (hi >> 16) as u32,
            lo_port: lo as u16,
            hi_port: hi as u16,
            l4,
        };
        (Key::V4(k), a_lo)
    }

    /// The key and whether `a` is its low side.
    #[inline(always)]
    fn new(l4: L4, a: Endpoint, b: Endpoint) -> (Key, bool) {
        if let (IpAddr::V4(x), IpAddr::V4(y)) = (a.ip, b.ip) {
            return Key::v4(l4, (x, a.port), (y, b.port));
        }
        // (a packet's two addresses are of one family; `find` turns a mixed
        // pair away before it gets here)
        let ((lo_ip, lo_port), (hi_ip, hi_port), a_lo) =
            ordered((words(as_v6(a.ip)), a.port), (words(as_v6(b.ip)), b.port));
        let k = Key6 {
            lo_ip,
            hi_ip,
            lo_port,
            hi_port,
            l4,
        };
        (Key::V6(k), a_lo)
    }

    fn l4(&self) -> L4 {
        match self {
            Key::V4(k) => k.l4,
            Key::V6(k) => k.l4,
        }
    }

    /// True for a flow between an endpoint and itself (its two sides are
    /// one): integer compares, where comparing two endpoints compares
    /// addresses byte by byte.
    #[inline(always)]
    fn is_loop(&self) -> bool {
        match self {
            Key::V4(k) => k.lo_ip == k.hi_ip && k.lo_port == k.hi_port,
            Key::V6(k) => k.lo_ip == k.hi_ip && k.lo_port == k.hi_port,
        }
    }
}

/// What the key map holds of a flow: its id, and in the top bit whether
/// its client is the key's low side.  The side is what every packet needs
/// to tell its direction, and holding it here spares a media packet the
/// read of its flow record: on the 1 GiB bench capture that read was a
/// cache miss for most of the 3.65 million media packets, on the one
/// thread that accounts every packet.
#[derive(Debug, Clone, Copy)]
struct Slot(u32);

impl Slot {
    const LO: u32 = 1 << 31;

    #[inline(always)]
    fn new(id: FlowId, client_is_lo: bool) -> Slot {
        debug_assert!(
            id < Self::LO,
            "flow ids stay below 2^31 (FlowTable::MAX_LIMIT)"
        );
        Slot(id | if client_is_lo { Self::LO } else { 0 })
    }

    #[inline(always)]
    fn id(self) -> FlowId {
        self.0 & !Self::LO
    }

    #[inline(always)]
    fn client_is_lo(self) -> bool {
        self.0 & Self::LO != 0
    }
}

/// The current flow of every key, one map per address family: IPv4 keys
/// are less than half the size of IPv6 ones.
#[derive(Default)]
struct Keys {
    v4: FxHashMap<Key4, Slot>,
    v6: FxHashMap<Key6, Slot>,
}

impl Keys {
    #[inline(always)]
    fn get(&self, k: &Key) -> Option<Slot> {
        match k {
            Key::V4(k) => self.v4.get(k).copied(),
            Key::V6(k) => self.v6.get(k).copied(),
        }
    }

    fn insert(&mut self, k: Key, slot: Slot) {
        match k {
            Key::V4(k) => self.v4.insert(k, slot),
            Key::V6(k) => self.v6.insert(k, slot),
        };
    }

    fn remove(&mut self, k: &Key) {
        match k {
            Key::V4(k) => self.v4.remove(k),
            Key::V6(k) => self.v6.remove(k),
        };
    }
}

/// A frame number as a flow keeps it: frames are numbered from 1, so `None`
/// costs no room (a plain `Option<u64>` takes 16 bytes).
type FrameNo = Option<NonZeroU64>;

#[inline]
fn frame_no(n: u64) -> FrameNo {
    NonZeroU64::new(n)
}

#[inline]
fn frames(v: [FrameNo; 2]) -> [Option<u64>; 2] {
    v.map(|x| x.map(NonZeroU64::get))
}

/// TCP ends of a flow: its handshake, FINs and RSTs, which analyzers read
/// (how a TLS connection ended, when a TURN control connection closed).
#[derive(Debug, Clone, Default)]
pub struct TcpFacts {
    syn: FrameNo,
    synack: FrameNo,
    ack: FrameNo,
    fin: [FrameNo; 2],
    rst: [FrameNo; 2],
    /// First sequence number seen per direction (Wireshark's base_seq), for stream splitting.
    base_seq: [Option<u32>; 2],
}

impl TcpFacts {
    /// Frame of the client's SYN.
    pub fn syn_frame(&self) -> Option<u64> {
        self.syn.map(NonZeroU64::get)
    }

    /// Frame of the server's SYN/ACK.
    pub fn synack_frame(&self) -> Option<u64> {
        self.synack.map(NonZeroU64::get)
    }

    /// Frame of the client's ACK completing the handshake.
    pub fn ack_frame(&self) -> Option<u64> {
        self.ack.map(NonZeroU64::get)
    }

    /// First FIN per direction (frame; 0 = client→server).
    pub fn fin(&self) -> [Option<u64>; 2] {
        frames(self.fin)
    }

    /// First RST per direction (frame).
    pub fn rst(&self) -> [Option<u64>; 2] {
        frames(self.rst)
    }
}

/// One flow as every analyzer sees it: who talks to whom, its Wireshark
/// stream number, the times of its first and last packets and its TCP ends.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Transport.
    pub l4: L4,
    /// Wireshark `tcp.stream` / `udp.stream` index.
    pub stream: u32,
    /// Side that sent the first SYN (or, mid-stream and for UDP, the first packet).
    pub client: Endpoint,
    /// The other side.
    pub server: Endpoint,
    /// Time of the first frame (ns since epoch).
    pub first_ts: i64,
    /// Time of the last frame.
    pub last_ts: i64,
    /// TCP ends (None for UDP).
    pub tcp: Option<Box<TcpFacts>>,
}

/// What `edgetrace flows` shows of a flow besides its [`Flow`] record: its
/// first and last frame, counters, the longest silence, ICMP errors and TCP
/// sequence analysis.
///
/// Only a table made with [`FlowTable::counting`] keeps them.  No analyzer
/// reads them, and without them a flow costs its 72-byte record alone, a
/// TCP flow 72 bytes of ends more (no sequence analysis), and a packet fewer
/// writes on the one thread that accounts every packet
/// (`docs/performance.md`).
#[derive(Debug, Clone, Default)]
pub struct FlowCounts {
    /// First frame.
    pub first_frame: u64,
    /// Last frame.
    pub last_frame: u64,
    /// Frames per direction (0 = client→server).
    pub packets: [u64; 2],
    /// Wire bytes (`frame.len`) per direction.
    pub bytes: [u64; 2],
    /// Transport payload bytes on the wire per direction.
    pub payload_bytes: [u64; 2],
    /// Longest time without a packet inside the flow, in ns.
    pub max_idle_ns: i64,
    /// Frame that ended the longest idle period.
    pub max_idle_end_frame: u64,
    /// ICMP errors that quote a packet of this flow.
    pub icmp_errors: u32,
    /// TCP sequence analysis per direction (None for UDP).
    pub seq: Option<Box<[tcp::SeqTracker; 2]>>,
}

/// Handle of a flow inside a [`FlowTable`].
pub type FlowId = u32;

/// The table of all flows of a capture.
///
/// It holds at most [`FlowTable::limit`] flows, so a capture of millions of
/// tiny flows (a scan, a flood) cannot exhaust memory: once full, packets of
/// new 5-tuples get no flow (they are counted in [`FlowTable::untracked`] and
/// the pipeline skips them with [`crate::packet::SkipReason::FlowTableFull`]),
/// while the flows already tracked go on being followed.  Stream indices stay
/// Wireshark's for every tracked flow, because untracked flows come after them.
pub struct FlowTable {
    map: Keys,
    flows: Records<Flow>,
    /// Each flow's counters, by id, when the table counts ([`FlowTable::counting`]).
    counts: Option<Records<FlowCounts>>,
    next_stream: [u32; 2],
    limit: usize,
    /// Packets that found the table full.
    pub untracked: Untracked,
}

/// Packets of flows that were not tracked because the table was full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Untracked {
    /// Frames.
    pub packets: u64,
    /// Their wire bytes.
    pub bytes: u64,
    /// The first of them.
    pub first_frame: Option<u64>,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::with_limit(FlowTable::DEFAULT_LIMIT)
    }
}

impl FlowTable {
    /// Flows tracked by default: about 100 MB of flow records and analyzer
    /// state at most, and 6× the flows of the 1 GiB bench capture
    /// (`docs/performance.md`).  `--max-flows` changes it.
    pub const DEFAULT_LIMIT: usize = 250_000;
    /// The highest limit: flow ids share their key-map slot with a bit.
    pub const MAX_LIMIT: usize = (1 << 31) - 1;

    /// An empty table with the default limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table that tracks at most `limit` flows (at least 1, at
    /// most [`Self::MAX_LIMIT`]).
    pub fn with_limit(limit: usize) -> Self {
        FlowTable {
            map: Keys::default(),
            flows: Records::default(),
            counts: None,
            next_stream: [0; 2],
            limit: limit.clamp(1, Self::MAX_LIMIT),
            untracked: Untracked::default(),
        }
    }

    /// The table, keeping each flow's [`FlowCounts`] as well (what
    /// `edgetrace flows` shows).
    pub fn counting(mut self) -> Self {
        self.counts.get_or_insert_with(Records::default);
        self
    }

    /// True when the table keeps [`FlowCounts`].
    pub fn counts_flows(&self) -> bool {
        self.counts.is_some()
    }

    /// Most flows tracked.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Counts a packet that found the table full.
    fn untrack(&mut self, frame: &FrameInfo) -> Option<(FlowId, Dir)> {
        self.untracked.packets += 1;
        self.untracked.bytes += frame.orig_len as u64;
        self.untracked.first_frame.get_or_insert(frame.number);
        None
    }

    /// Accounts a decoded packet; returns its flow and direction (None for non-TCP/UDP).
    #[inline]
    pub fn observe(&mut self, frame: &FrameInfo, pkt: &Packet<'_>) -> Option<(FlowId, Dir)> {
        self.observe_parts(frame, &pkt.src, &pkt.dst, &pkt.transport)
    }

    /// [`Self::observe`] on a packet's parts: the pipeline's flow
    /// accounting reads them from a batch without assembling the packet
    /// (on the thread every packet waits for).
    pub fn observe_parts(
        &mut self,
        frame: &FrameInfo,
        src_ip: &IpAddr,
        dst_ip: &IpAddr,
        transport: &Transport<'_>,
    ) -> Option<(FlowId, Dir)> {
        let (l4, sport, dport, payload_len, tcp) = match transport {
            Transport::Tcp(t) => (L4::Tcp, t.src_port, t.dst_port, t.wire_len, Some(t)),
            Transport::Udp(u) => (L4::Udp, u.src_port, u.dst_port, u.wire_len, None),
            Transport::Icmp(i) => {
                if let Some(q) = i.quoted {
                    self.note_icmp(&q);
                }
                return None;
            }
            Transport::Other(_) => return None,
        };
        let src = || Endpoint {
            ip: *src_ip,
            port: sport,
        };
        let dst = || Endpoint {
            ip: *dst_ip,
            port: dport,
        };
        // (most packets are IPv4: their key is made without the endpoints)
        let (key, src_is_lo) = match (src_ip, dst_ip) {
            (IpAddr::V4(x), IpAddr::V4(y)) => Key::v4(l4, (*x, sport), (*y, dport)),
            _ => Key::new(l4, src(), dst()),
        };
        let mut slot = match self.map.get(&key) {
            Some(slot) => slot,
            None if self.flows.len >= self.limit => return self.untrack(frame),
            None => self.create(key, src_is_lo, src(), dst(), frame, tcp.map(|t| t.flags)),
        };
        // Wireshark splits a TCP conversation when a new SYN reuses the 4-tuple.
        if let Some(t) = tcp {
            if t.flags.0 & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN {
                let f = &self.flows[slot.id() as usize];
                let d = if slot.client_is_lo() == src_is_lo {
                    0
                } else {
                    1
                };
                let base = f.tcp.as_ref().and_then(|x| x.base_seq[d]);
                if matches!(base, Some(b) if b != t.seq) {
                    if self.flows.len >= self.limit {
                        // the new connection is not tracked, and its packets
                        // must not be counted in the old one either
                        self.map.remove(&key);
                        return self.untrack(frame);
                    }
                    slot = self.create(key, src_is_lo, src(), dst(), frame, Some(t.flags));
                }
            }
        }
        let id = slot.id();
        // (a flow between an endpoint and itself counts as client → server)
        let dir = if slot.client_is_lo() == src_is_lo || key.is_loop() {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let d = dir.idx();
        let f = &mut self.flows[id as usize];
        if let Some(counts) = self.counts.as_mut() {
            counts[id as usize].count(frame, f.last_ts, d, payload_len, tcp);
        }
        f.last_ts = frame.ts_ns;
        if let (Some(t), Some(facts)) = (tcp, f.tcp.as_deref_mut()) {
            let fl = t.flags;
            if facts.base_seq[d].is_none() {
                // Wireshark's base_seq: the SYN's sequence number, else seq - 1.
                facts.base_seq[d] = Some(if fl.has(TcpFlags::SYN) {
                    t.seq
                } else {
                    t.seq.wrapping_sub(1)
                });
            }
            let n = frame_no(frame.number);
            if fl.has(TcpFlags::SYN) && !fl.has(TcpFlags::ACK) && dir == Dir::ToServer {
                facts.syn = facts.syn.or(n);
            } else if fl.has(TcpFlags::SYN | TcpFlags::ACK) && dir == Dir::ToClient {
                facts.synack = facts.synack.or(n);
            } else if fl.has(TcpFlags::ACK)
                && dir == Dir::ToServer
                && facts.synack.is_some()
                && facts.ack.is_none()
            {
                facts.ack = n;
            }
            if fl.has(TcpFlags::FIN) {
                facts.fin[d] = facts.fin[d].or(n);
            }
            if fl.has(TcpFlags::RST) {
                facts.rst[d] = facts.rst[d].or(n);
            }
        }
        Some((id, dir))
    }

    fn create(
        &mut self,
        key: Key,
        src_is_lo: bool,
        src: Endpoint,
        dst: Endpoint,
        frame: &FrameInfo,
        flags: Option<TcpFlags>,
    ) -> Slot {
        let l4 = key.l4();
        // Client: the SYN sender; a SYN/ACK seen first means the receiver is the client.
        let synack_first = flags.is_some_and(|f| f.has(TcpFlags::SYN | TcpFlags::ACK));
        let (client, server, client_is_lo) = if synack_first {
            (dst, src, !src_is_lo)
        } else {
            (src, dst, src_is_lo)
        };
        let slot = match l4 {
            L4::Tcp => 0,
            L4::Udp => 1,
        };
        let stream = self.next_stream[slot];
        self.next_stream[slot] += 1;
        let id = self.flows.len as FlowId;
        self.flows.push(Flow {
            l4,
            stream,
            client,
            server,
            first_ts: frame.ts_ns,
            last_ts: frame.ts_ns,
            tcp: (l4 == L4::Tcp).then(Box::default),
        });
        if let Some(counts) = self.counts.as_mut() {
            counts.push(FlowCounts {
                first_frame: frame.number,
                last_frame: frame.number,
                seq: (l4 == L4::Tcp).then(Box::default),
                ..FlowCounts::default()
            });
        }
        let slot = Slot::new(id, client_is_lo);
        self.map.insert(key, slot);
        slot
    }

    fn note_icmp(&mut self, q: &Quoted) {
        if self.counts.is_none() {
            return; // only counted
        }
        if let Some(id) = self.quoted_flow(q) {
            if let Some(c) = self.counts.as_mut() {
                c[id as usize].icmp_errors += 1;
            }
        }
    }

    /// The TCP or UDP flow an ICMP error quotes, if it is in the table.
    pub fn quoted_flow(&self, q: &Quoted) -> Option<FlowId> {
        let (l4, a, b) = quoted_endpoints(q)?;
        self.find(l4, a, b)
    }

    /// The current flow between two endpoints, if any.
    pub fn find(&self, l4: L4, a: Endpoint, b: Endpoint) -> Option<FlowId> {
        if a.ip.is_ipv4() != b.ip.is_ipv4() {
            return None; // no packet goes between two address families
        }
        self.map.get(&Key::new(l4, a, b).0).map(Slot::id)
    }

    /// The flow with this id.
    pub fn get(&self, id: FlowId) -> &Flow {
        &self.flows[id as usize]
    }

    /// All flows in creation order (TCP and UDP interleaved).
    pub fn flows(&self) -> impl Iterator<Item = &Flow> + '_ {
        self.flows.chunks.iter().flatten()
    }

    /// The counters of the flow with this id, when the table counts.
    pub fn counts(&self, id: FlowId) -> Option<&FlowCounts> {
        self.counts.as_ref().map(|c| &c[id as usize])
    }

    /// Consumes the table, returning the flows in creation order, each
    /// with its counters when the table counts.
    pub fn into_flows(self) -> impl Iterator<Item = (Flow, Option<FlowCounts>)> {
        let mut counts = self.counts.map(|c| c.chunks.into_iter().flatten());
        self.flows
            .chunks
            .into_iter()
            .flatten()
            .map(move |f| (f, counts.as_mut().and_then(Iterator::next)))
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.flows.len
    }

    /// True when no flow was seen.
    pub fn is_empty(&self) -> bool {
        self.flows.len == 0
    }
}

impl FlowCounts {
    /// Counts one packet of direction `d` that arrived after the flow's
    /// last packet at `last_ts` (the flow's first packet has no silence before it).
    #[inline]
    fn count(
        &mut self,
        frame: &FrameInfo,
        last_ts: i64,
        d: usize,
        payload_len: u32,
        tcp: Option<&crate::packet::Tcp<'_>>,
    ) {
        let gap = frame.ts_ns - last_ts;
        if self.packets != [0, 0] && gap > self.max_idle_ns {
            self.max_idle_ns = gap;
            self.max_idle_end_frame = frame.number;
        }
        self.last_frame = frame.number;
        self.packets[d] += 1;
        self.bytes[d] += frame.orig_len as u64;
        self.payload_bytes[d] += payload_len as u64;
        if let (Some(t), Some(seq)) = (tcp, self.seq.as_deref_mut()) {
            seq[d].segment(t.seq, t.flags, t.wire_len);
        }
    }
}

/// Per-flow records in chunks of [`CHUNK`]: the table grows a chunk at a
/// time instead of doubling one vector, so it never holds twice the room
/// its flows need, nor copies them all (two copies at once) when it grows.
struct Records<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// Records per chunk of [`Records`].
const CHUNK: usize = 4096;

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Records<T> {
    fn push(&mut self, f: T) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk with room").push(f);
        self.len += 1;
    }
}

impl<T> std::ops::Index<usize> for Records<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for Records<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::{Transport, Udp};

    /// The packed IPv4 key orders its sides as `(address, port)` pairs,
    /// which is what `ordered` does for every key: addresses that differ
    /// only in the top bit or the last octet, equal addresses with ports
    /// either way round, and one side twice.
    #[test]
    fn ipv4_keys_order_sides_as_address_port_pairs() {
        let ips = [
            0u32,
            1,
            0x0a00_0001,
            0x0a00_0002,
            0x7fff_ffff,
            0x8000_0000,
            u32::MAX,
        ];
        let ports = [0u16, 1, 3478, 0x8000, u16::MAX];
        for &ia in &ips {
            for &ib in &ips {
                for &pa in &ports {
                    for &pb in &ports {
                        let a = (Ipv4Addr::from(ia), pa);
                        let b = (Ipv4Addr::from(ib), pb);
                        let ((lo_ip, lo_port), (hi_ip, hi_port), a_lo) =
                            ordered((ia, pa), (ib, pb));
                        let (Key::V4(k), lo) = Key::v4(L4::Udp, a, b) else {
                            panic!("an IPv4 key")
                        };
                        assert_eq!(
                            (k.lo_ip, k.lo_port, k.hi_ip, k.hi_port, lo),
                            (lo_ip, lo_port, hi_ip, hi_port, a_lo),
                            "{a:?} {b:?}"
                        );
                    }
                }
            }
        }
    }

    /// Frame `number` (time `number` ns) of an empty UDP datagram from
    /// 10.0.0.1:`src_port` to 10.0.0.2:3478, observed by `table`.
    pub(crate) fn observe_udp(
        table: &mut FlowTable,
        number: u64,
        src_port: u16,
    ) -> Option<(FlowId, Dir)> {
        let frame = FrameInfo {
            number,
            ts_ns: number as i64,
            orig_len: 60,
            cap_len: 60,
        };
        let pkt = Packet {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            transport: Transport::Udp(Udp {
                src_port,
                dst_port: 3478,
                payload: &[],
                wire_len: 0,
            }),
            ip_truncated: false,
        };
        table.observe(&frame, &pkt)
    }

    /// An endpoint's JSON text is its `Display` text, for IPv4 written by
    /// hand: every octet and port length, and IPv6 at its longest.
    #[test]
    fn endpoint_text_is_its_display_text() {
        let ips = [
            "0.0.0.0",
            "1.2.3.4",
            "10.20.30.40",
            "100.200.255.9",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1:2",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:10.0.0.1",
        ];
        for ip in ips {
            for port in [0, 7, 80, 443, 3478, 50000, 65535] {
                let e = Endpoint {
                    ip: ip.parse().unwrap(),
                    port,
                };
                // what std's own formatting of the address writes
                let std_text = match e.ip {
                    IpAddr::V4(a) => format!("{a}:{port}"),
                    IpAddr::V6(a) => format!("[{a}]:{port}"),
                };
                let mut buf = [0u8; ENDPOINT_TEXT];
                assert_eq!(e.text(&mut buf), std_text);
                assert_eq!(e.to_string(), std_text);
                assert_eq!(
                    serde_json::to_string(&e).unwrap(),
                    format!("\"{std_text}\"")
                );
                let mut ip_only = String::new();
                e.push_ip(&mut ip_only);
                assert_eq!(ip_only, e.ip.to_string());
            }
        }
    }

    /// A table slot (key and flow id) takes 20 bytes for IPv4 and 48 for
    /// IPv6, not 64.
    #[test]
    fn key_slots_are_small() {
        assert_eq!(std::mem::size_of::<(Key4, Slot)>(), 20);
        assert_eq!(std::mem::size_of::<(Key6, Slot)>(), 48);
    }

    /// A slot keeps the id and the client side apart for every id a table
    /// can hand out, and the limit keeps ids below the side's bit.
    #[test]
    fn slots_keep_id_and_side_apart() {
        for id in [0, 1, 4095, 250_000, (FlowTable::MAX_LIMIT - 1) as FlowId] {
            for lo in [false, true] {
                let s = Slot::new(id, lo);
                assert_eq!((s.id(), s.client_is_lo()), (id, lo));
            }
        }
        assert_eq!(
            FlowTable::with_limit(usize::MAX).limit(),
            FlowTable::MAX_LIMIT
        );
        assert_eq!(FlowTable::with_limit(0).limit(), 1);
    }

    /// IPv4 and IPv6 flows have their own keys: an IPv4-mapped IPv6 address
    /// is not the IPv4 address (Wireshark's conversations compare address
    /// types first), the order of the sides is the same in both tables, and
    /// a lookup of a mixed pair finds nothing.
    #[test]
    fn ipv4_and_ipv6_keys_are_apart() {
        let mut t = FlowTable::new();
        let udp = |src: &str, dst: &str, sp: u16, dp: u16| Packet {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            transport: Transport::Udp(Udp {
                src_port: sp,
                dst_port: dp,
                payload: &[],
                wire_len: 0,
            }),
            ip_truncated: false,
        };
        let frame = |number: u64| FrameInfo {
            number,
            ts_ns: number as i64,
            orig_len: 60,
            cap_len: 60,
        };
        let v4 = udp("10.0.0.2", "10.0.0.1", 3478, 5000);
        let mapped = udp("::ffff:10.0.0.2", "::ffff:10.0.0.1", 3478, 5000);
        let v4_back = udp("10.0.0.1", "10.0.0.2", 5000, 3478);
        let mapped_back = udp("::ffff:10.0.0.1", "::ffff:10.0.0.2", 5000, 3478);
        assert_eq!(t.observe(&frame(1), &v4), Some((0, Dir::ToServer)));
        assert_eq!(t.observe(&frame(2), &mapped), Some((1, Dir::ToServer)));
        assert_eq!(t.observe(&frame(3), &v4_back), Some((0, Dir::ToClient)));
        assert_eq!(t.observe(&frame(4), &mapped_back), Some((1, Dir::ToClient)));
        assert_eq!((t.get(0).stream, t.get(1).stream), (0, 1));
        let end = |ip: &str, port| Endpoint {
            ip: ip.parse().unwrap(),
            port,
        };
        assert_eq!(
            t.find(L4::Udp, end("10.0.0.1", 5000), end("10.0.0.2", 3478)),
            Some(0)
        );
        let mixed = t.find(L4::Udp, end("10.0.0.1", 5000), end("::ffff:10.0.0.2", 3478));
        assert_eq!(mixed, None);
    }

    /// What every run keeps per flow: 72 bytes, and 72 more for TCP ends
    /// (the counters and sequence analysis of `flows` are kept apart).
    #[test]
    fn flow_records_are_small() {
        assert!(std::mem::size_of::<Flow>() <= 72);
        assert!(std::mem::size_of::<TcpFacts>() <= 72);
    }

    /// Frame `number` (time `number` s) of a TCP segment between
    /// 10.0.0.1:5000 and 10.0.0.2:443, either way, observed by `table`.
    fn observe_tcp(
        table: &mut FlowTable,
        number: u64,
        to_server: bool,
        flags: u8,
        seq: u32,
        len: u32,
    ) -> Option<(FlowId, Dir)> {
        let frame = FrameInfo {
            number,
            ts_ns: number as i64 * 1_000_000_000,
            orig_len: 54 + len,
            cap_len: 54 + len,
        };
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let ((src, sp), (dst, dp)) = if to_server {
            ((a, 5000), (b, 443))
        } else {
            ((b, 443), (a, 5000))
        };
        let payload = vec![0u8; len as usize];
        table.observe(
            &frame,
            &tcp_packet((src, sp), (dst, dp), seq, flags, &payload),
        )
    }

    /// A TCP segment from `src` to `dst` carrying `payload` whole.
    pub(crate) fn tcp_packet<'a>(
        (src, src_port): (IpAddr, u16),
        (dst, dst_port): (IpAddr, u16),
        seq: u32,
        flags: u8,
        payload: &'a [u8],
    ) -> Packet<'a> {
        Packet {
            src,
            dst,
            transport: Transport::Tcp(crate::packet::Tcp {
                src_port,
                dst_port,
                seq,
                ack: 0,
                flags: TcpFlags(flags),
                window: 0,
                payload,
                wire_len: payload.len() as u32,
            }),
            ip_truncated: false,
        }
    }

    /// A TCP connection with a handshake, data, a retransmission, a pause
    /// and both FINs, and a quoting ICMP error: a counting table and a lean
    /// one keep the same record and ends; only the counting one counts.
    #[test]
    fn a_lean_table_keeps_the_records_and_ends_without_the_counts() {
        const S: u8 = TcpFlags::SYN;
        const A: u8 = TcpFlags::ACK;
        const F: u8 = TcpFlags::FIN;
        let mut lean = FlowTable::new();
        let mut counting = FlowTable::new().counting();
        assert!(!lean.counts_flows() && counting.counts_flows());
        let segments = [
            (1, true, S, 100, 0),
            (2, false, S | A, 900, 0),
            (3, true, A, 101, 0),
            (4, true, A, 101, 10),
            (5, true, A, 101, 10),  // retransmission
            (9, false, A, 901, 20), // after 4 s of silence
            (10, true, F | A, 111, 0),
            (11, false, F | A, 921, 0),
        ];
        for t in [&mut lean, &mut counting] {
            for &(n, to_server, flags, seq, len) in &segments {
                let dir = if to_server {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                assert_eq!(
                    observe_tcp(t, n, to_server, flags, seq, len),
                    Some((0, dir))
                );
            }
            t.note_icmp(&Quoted {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                protocol: 6,
                src_port: 5000,
                dst_port: 443,
            });
        }
        for t in [&lean, &counting] {
            let f = t.get(0);
            assert_eq!((f.l4, f.stream), (L4::Tcp, 0));
            assert_eq!(f.client.to_string(), "10.0.0.1:5000");
            assert_eq!((f.first_ts, f.last_ts), (1_000_000_000, 11_000_000_000));
            let tcp = f.tcp.as_deref().expect("TCP ends");
            assert_eq!(
                (tcp.syn_frame(), tcp.synack_frame(), tcp.ack_frame()),
                (Some(1), Some(2), Some(3))
            );
            assert_eq!((tcp.fin(), tcp.rst()), ([Some(10), Some(11)], [None, None]));
        }
        assert!(lean.counts(0).is_none());
        let c = counting.counts(0).expect("counted");
        assert_eq!((c.first_frame, c.last_frame), (1, 11));
        assert_eq!((c.packets, c.payload_bytes), ([5, 3], [20, 20]));
        assert_eq!(c.bytes, [54 * 5 + 20, 54 * 3 + 20]);
        assert_eq!((c.max_idle_ns, c.max_idle_end_frame), (4_000_000_000, 9));
        assert_eq!(c.icmp_errors, 1);
        let seq = c.seq.as_deref().expect("TCP sequence analysis");
        assert_eq!((seq[0].retransmissions, seq[0].new_bytes), (1, 10));
        let (flows, counts): (Vec<Flow>, Vec<Option<FlowCounts>>) = counting.into_flows().unzip();
        assert_eq!(
            (flows.len(), counts[0].as_ref().map(|c| c.packets)),
            (1, Some([5, 3]))
        );
        assert!(lean.into_flows().all(|(_, c)| c.is_none()));
    }

    /// Flows past a chunk boundary keep their ids, records and order.
    #[test]
    fn records_cross_chunk_boundaries() {
        let mut t = FlowTable::new();
        let n = 2 * CHUNK + 5;
        for i in 0..n {
            assert_eq!(
                observe_udp(&mut t, i as u64 + 1, 10_000 + i as u16),
                Some((i as FlowId, Dir::ToServer))
            );
        }
        assert_eq!(t.len(), n);
        for id in [0, CHUNK - 1, CHUNK, n - 1] {
            let f = t.get(id as FlowId);
            assert_eq!(
                (f.stream as usize, f.client.port as usize),
                (id, 10_000 + id)
            );
        }
        let streams: Vec<u32> = t.flows().map(|f| f.stream).collect();
        assert_eq!(streams, (0..n as u32).collect::<Vec<_>>());
        assert_eq!(t.into_flows().count(), n);
    }
}
