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
//! output); per-flow heavy state such as reassembly buffers lives with the
//! consumers and is bounded there.

pub mod reassembly;
pub mod seq;
pub mod streams;
pub mod tcp;

use std::fmt;
use std::net::IpAddr;

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

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
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

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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

/// Hash key: the unordered endpoint pair plus transport, packed into
/// integers (IPv4 as IPv4-mapped IPv6) so hashing and comparing are a few
/// word operations on the hot path.  The addresses are held as two 64-bit
/// words each, not as `u128`, whose 16-byte alignment would pad a table
/// slot (key and flow id) from 48 to 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    lo_ip: [u64; 2],
    hi_ip: [u64; 2],
    lo_port: u16,
    hi_port: u16,
    l4: L4,
}

#[inline]
fn words(ip: u128) -> [u64; 2] {
    [(ip >> 64) as u64, ip as u64]
}

#[inline]
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => 0xffff_0000_0000 | u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Key {
    /// The key and whether `a` is its low side.
    #[inline]
    fn new(l4: L4, a: Endpoint, b: Endpoint) -> (Key, bool) {
        let (ai, bi) = (ip_bits(a.ip), ip_bits(b.ip));
        if (ai, a.port) <= (bi, b.port) {
            (
                Key {
                    lo_ip: words(ai),
                    hi_ip: words(bi),
                    lo_port: a.port,
                    hi_port: b.port,
                    l4,
                },
                true,
            )
        } else {
            (
                Key {
                    lo_ip: words(bi),
                    hi_ip: words(ai),
                    lo_port: b.port,
                    hi_port: a.port,
                    l4,
                },
                false,
            )
        }
    }
}

/// TCP-specific facts of a flow.
#[derive(Debug, Clone, Default)]
pub struct TcpFacts {
    /// Frame of the client's SYN.
    pub syn_frame: Option<u64>,
    /// Frame of the server's SYN/ACK.
    pub synack_frame: Option<u64>,
    /// Frame of the client's ACK completing the handshake.
    pub ack_frame: Option<u64>,
    /// First FIN per direction (frame).
    pub fin: [Option<u64>; 2],
    /// First RST per direction (frame).
    pub rst: [Option<u64>; 2],
    /// Sequence analysis per direction.
    pub seq: [tcp::SeqTracker; 2],
    /// First sequence number seen per direction (Wireshark's base_seq), for stream splitting.
    base_seq: [Option<u32>; 2],
}

/// One flow: a row of `edgetrace flows`.
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
    /// First frame.
    pub first_frame: u64,
    /// Last frame.
    pub last_frame: u64,
    /// Time of the first frame (ns since epoch).
    pub first_ts: i64,
    /// Time of the last frame.
    pub last_ts: i64,
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
    /// TCP details (None for UDP).
    pub tcp: Option<Box<TcpFacts>>,
    /// True when the client is the low side of the hash key (direction test without address compares).
    client_is_lo: bool,
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
    map: FxHashMap<Key, FlowId>,
    flows: Records,
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

    /// An empty table with the default limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table that tracks at most `limit` flows (at least 1).
    pub fn with_limit(limit: usize) -> Self {
        FlowTable {
            map: FxHashMap::default(),
            flows: Records::default(),
            next_stream: [0; 2],
            limit: limit.max(1),
            untracked: Untracked::default(),
        }
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
        let (l4, sport, dport, payload_len, tcp) = match &pkt.transport {
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
        let src = Endpoint {
            ip: pkt.src,
            port: sport,
        };
        let dst = Endpoint {
            ip: pkt.dst,
            port: dport,
        };
        let (key, src_is_lo) = Key::new(l4, src, dst);
        let mut id = match self.map.get(&key) {
            Some(&id) => id,
            None if self.flows.len >= self.limit => return self.untrack(frame),
            None => self.create(key, src_is_lo, src, dst, frame, tcp.map(|t| t.flags)),
        };
        // Wireshark splits a TCP conversation when a new SYN reuses the 4-tuple.
        if let Some(t) = tcp {
            if t.flags.0 & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN {
                let f = &self.flows[id as usize];
                let d = if f.client_is_lo == src_is_lo { 0 } else { 1 };
                let base = f.tcp.as_ref().and_then(|x| x.base_seq[d]);
                if matches!(base, Some(b) if b != t.seq) {
                    if self.flows.len >= self.limit {
                        // the new connection is not tracked, and its packets
                        // must not be counted in the old one either
                        self.map.remove(&key);
                        return self.untrack(frame);
                    }
                    id = self.create(key, src_is_lo, src, dst, frame, Some(t.flags));
                }
            }
        }
        let f = &mut self.flows[id as usize];
        // (a flow between an endpoint and itself counts as client → server)
        let dir = if f.client_is_lo == src_is_lo || f.client == f.server {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let d = dir.idx();
        let gap = frame.ts_ns - f.last_ts;
        if f.packets[0] + f.packets[1] > 0 && gap > f.max_idle_ns {
            f.max_idle_ns = gap;
            f.max_idle_end_frame = frame.number;
        }
        f.last_frame = frame.number;
        f.last_ts = frame.ts_ns;
        f.packets[d] += 1;
        f.bytes[d] += frame.orig_len as u64;
        f.payload_bytes[d] += payload_len as u64;
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
            if fl.has(TcpFlags::SYN) && !fl.has(TcpFlags::ACK) && dir == Dir::ToServer {
                facts.syn_frame.get_or_insert(frame.number);
            } else if fl.has(TcpFlags::SYN | TcpFlags::ACK) && dir == Dir::ToClient {
                facts.synack_frame.get_or_insert(frame.number);
            } else if fl.has(TcpFlags::ACK)
                && dir == Dir::ToServer
                && facts.synack_frame.is_some()
                && facts.ack_frame.is_none()
            {
                facts.ack_frame = Some(frame.number);
            }
            if fl.has(TcpFlags::FIN) {
                facts.fin[d].get_or_insert(frame.number);
            }
            if fl.has(TcpFlags::RST) {
                facts.rst[d].get_or_insert(frame.number);
            }
            facts.seq[d].segment(t.seq, fl, t.wire_len);
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
    ) -> FlowId {
        let l4 = key.l4;
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
            first_frame: frame.number,
            last_frame: frame.number,
            first_ts: frame.ts_ns,
            last_ts: frame.ts_ns,
            packets: [0; 2],
            bytes: [0; 2],
            payload_bytes: [0; 2],
            max_idle_ns: 0,
            max_idle_end_frame: 0,
            icmp_errors: 0,
            tcp: (l4 == L4::Tcp).then(Box::default),
            client_is_lo,
        });
        self.map.insert(key, id);
        id
    }

    fn note_icmp(&mut self, q: &Quoted) {
        if let Some(id) = self.quoted_flow(q) {
            self.flows[id as usize].icmp_errors += 1;
        }
    }

    /// The TCP or UDP flow an ICMP error quotes, if it is in the table.
    pub fn quoted_flow(&self, q: &Quoted) -> Option<FlowId> {
        let (l4, a, b) = quoted_endpoints(q)?;
        self.find(l4, a, b)
    }

    /// The current flow between two endpoints, if any.
    pub fn find(&self, l4: L4, a: Endpoint, b: Endpoint) -> Option<FlowId> {
        self.map.get(&Key::new(l4, a, b).0).copied()
    }

    /// The flow with this id.
    pub fn get(&self, id: FlowId) -> &Flow {
        &self.flows[id as usize]
    }

    /// All flows in creation order (TCP and UDP interleaved).
    pub fn flows(&self) -> impl Iterator<Item = &Flow> + '_ {
        self.flows.chunks.iter().flatten()
    }

    /// Consumes the table, returning the flows in creation order.
    pub fn into_flows(self) -> impl Iterator<Item = Flow> {
        self.flows.chunks.into_iter().flatten()
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

/// Flow records in chunks of [`Records::CHUNK`]: the table grows a chunk at
/// a time instead of doubling one vector, so it never holds twice the room
/// its flows need, nor copies them all (two copies at once) when it grows.
#[derive(Default)]
struct Records {
    chunks: Vec<Vec<Flow>>,
    len: usize,
}

impl Records {
    const CHUNK: usize = 4096;

    fn push(&mut self, f: Flow) {
        if self.len % Self::CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(Self::CHUNK));
        }
        self.chunks.last_mut().expect("a chunk with room").push(f);
        self.len += 1;
    }
}

impl std::ops::Index<usize> for Records {
    type Output = Flow;
    fn index(&self, i: usize) -> &Flow {
        &self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Records {
    fn index_mut(&mut self, i: usize) -> &mut Flow {
        &mut self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::{Transport, Udp};

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

    /// A table slot (key and flow id) takes 48 bytes, not 64.
    #[test]
    fn key_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<(Key, FlowId)>(), 48);
    }

    /// Flows past a chunk boundary keep their ids, records and order.
    #[test]
    fn records_cross_chunk_boundaries() {
        let mut t = FlowTable::new();
        let n = 2 * Records::CHUNK + 5;
        for i in 0..n {
            assert_eq!(
                observe_udp(&mut t, i as u64 + 1, 10_000 + i as u16),
                Some((i as FlowId, Dir::ToServer))
            );
        }
        assert_eq!(t.len(), n);
        for id in [0, Records::CHUNK - 1, Records::CHUNK, n - 1] {
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
