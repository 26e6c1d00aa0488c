//! Packet decoding: link layer → IP (with tunnels) → TCP / UDP / ICMP.
//!
//! Pure functions over borrowed bytes: nothing here allocates except the
//! fragment reassembler (`defrag.rs`), and nothing panics on any input.  The
//! common packet (plain IPv4 with TCP or UDP) is read by hand and checked
//! against etherparse by the `packet` fuzz target; every other one has its
//! IP and transport headers sliced with etherparse in its lax mode, so a
//! packet cut by the snapshot length still yields its addresses, ports and
//! the captured part of its payload; the length the headers claim is kept
//! beside it, so TCP analysis counts the bytes that were on the wire.
//!
//! Tunnels are followed to the innermost IP header that carries TCP or UDP,
//! which is also what Wireshark's `tcp.stream`/`udp.stream` refer to:
//! IPv4/IPv6-in-IP (protocols 4 and 41) and GRE (47) with IP, transparent
//! Ethernet bridging or ERSPAN type I/II/III inside.

pub mod defrag;
pub mod link;

use std::fmt;
use std::net::IpAddr;

use etherparse::{IpNumber, LaxIpSlice, TcpHeaderSlice, UdpHeaderSlice};
use serde::Serialize;

use link::ethertype;

/// Maximum tunnel nesting followed before giving up on a packet.
pub const MAX_TUNNEL_DEPTH: u8 = 4;

/// Why a frame did not yield an IP packet we analyse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The interface's link type is not one we decode.
    UnsupportedLinkType(u32),
    /// The link-layer header is cut short.
    LinkTruncated,
    /// Not IPv4/IPv6 (ARP, LLDP, STP, LLC…): normal traffic, counted apart.
    NotIp,
    /// IP header cut short or inconsistent (bad version, IHL below 5…).
    IpInvalid,
    /// TCP or UDP header cut short or with an impossible header length.
    TransportTruncated,
    /// More tunnel layers than [`MAX_TUNNEL_DEPTH`].
    TunnelTooDeep,
    /// A GRE header with a version or protocol we do not follow.
    UnsupportedTunnel,
    /// A TCP/UDP packet of a new flow while the flow table was full
    /// ([`crate::flow::FlowTable::limit`], `--max-flows`).
    FlowTableFull,
}

impl SkipReason {
    /// Stable key for JSON and tables.
    pub fn key(&self) -> String {
        match self {
            SkipReason::UnsupportedLinkType(n) => format!("unsupported-link-type-{n}"),
            SkipReason::LinkTruncated => "link-header-truncated".into(),
            SkipReason::NotIp => "not-ip".into(),
            SkipReason::IpInvalid => "ip-header-invalid".into(),
            SkipReason::TransportTruncated => "transport-header-truncated".into(),
            SkipReason::TunnelTooDeep => "tunnel-too-deep".into(),
            SkipReason::UnsupportedTunnel => "unsupported-tunnel".into(),
            SkipReason::FlowTableFull => "flow-table-full".into(),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// TCP flag bits as on the wire (low byte of the flags field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// True if every bit of `mask` is set.
    #[inline]
    pub fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
}

/// A TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window (unscaled).
    pub window: u16,
    /// Captured payload (may be shorter than `wire_len` when snaplen cut it).
    pub payload: &'a [u8],
    /// Payload length according to the IP header: what was on the wire.
    pub wire_len: u32,
}

/// A UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Captured payload.
    pub payload: &'a [u8],
    /// Payload length on the wire (UDP length field when sane).
    pub wire_len: u32,
}

/// The flow an ICMP error message quotes (RFC 792 / RFC 4443: the offending
/// packet's IP header and first 8 bytes follow the ICMP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Source of the quoted (original) packet.
    pub src: IpAddr,
    /// Destination of the quoted packet.
    pub dst: IpAddr,
    /// IP protocol of the quoted packet.
    pub protocol: u8,
    /// Source port of the quoted packet.
    pub src_port: u16,
    /// Destination port of the quoted packet.
    pub dst_port: u16,
}

/// An ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct Icmp<'a> {
    /// True for ICMPv6.
    pub v6: bool,
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// For error messages (unreachable, time exceeded…), the quoted flow.
    pub quoted: Option<Quoted>,
    /// Bytes after the 8-byte ICMP header (for errors: the quoted IP packet).
    pub body: &'a [u8],
}

/// What an IP packet carries.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// TCP segment.
    Tcp(Tcp<'a>),
    /// UDP datagram.
    Udp(Udp<'a>),
    /// ICMP / ICMPv6.
    Icmp(Icmp<'a>),
    /// Any other IP protocol (by number).
    Other(u8),
}

/// A decoded IP packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Innermost IP source.
    pub src: IpAddr,
    /// Innermost IP destination.
    pub dst: IpAddr,
    /// Payload.
    pub transport: Transport<'a>,
    /// The IP header claims more bytes than the frame holds (snaplen cut, or a lying length).
    pub ip_truncated: bool,
}

/// An IP fragment, to be handed to [`defrag::Defragmenter`].
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// Reassembly key.
    pub key: defrag::FragKey,
    /// Offset of `data` in the original datagram's payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// The fragment's payload bytes (captured).
    pub data: &'a [u8],
    /// Tunnel depth at which it was found (to continue decoding after reassembly).
    pub depth: u8,
}

/// Result of decoding one frame.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    /// A whole IP packet.
    Packet(Packet<'a>),
    /// A fragment: reassemble, then call [`decode_ip_payload`].
    Fragment(Fragment<'a>),
    /// Nothing to analyse, and why.
    Skip(SkipReason),
}

/// Decodes a captured frame of the given link type.
pub fn decode_frame(link_type: u32, data: &[u8]) -> Decoded<'_> {
    match link::strip(link_type, data) {
        Ok(net) => decode_net(net.ethertype, net.data, 0),
        Err(r) => Decoded::Skip(r),
    }
}

/// Decodes from a network header of the given EtherType.
pub fn decode_net(ethertype: u16, data: &[u8], depth: u8) -> Decoded<'_> {
    match ethertype {
        ethertype::IPV4 | ethertype::IPV6 => decode_ip(data, depth),
        _ => Decoded::Skip(SkipReason::NotIp),
    }
}

/// Decodes an IPv4 or IPv6 packet (version from the first nibble).
#[inline]
pub fn decode_ip(data: &[u8], depth: u8) -> Decoded<'_> {
    match plain_ipv4(data) {
        Some((src, dst, proto, payload)) => {
            decode_ip_payload(src, dst, proto, payload, payload.len() as u32, depth)
        }
        None => decode_ip_lax(data, depth),
    }
}

/// The packet nearly every frame of a capture is, read without
/// etherparse's general walk: IPv4 without options (IHL 5), whole
/// (total length within the captured bytes, at least the header), not a
/// fragment (no MF flag, offset 0), carrying TCP or UDP.  Returns its
/// addresses, protocol and payload (the total length's, without the
/// Ethernet padding after it), exactly what [`decode_ip_lax`] makes of such
/// a packet; anything else returns `None` and goes the general way.
///
/// Why by hand: etherparse's lax slice walks extension headers and
/// records why it stopped, which on the 1 GiB bench capture cost about 65
/// instructions of the 225 a frame's decoding took.  The `packet` fuzz
/// target checks on every input that both ways give the same result
/// ([`decode_ip_general_agrees`]).
#[inline]
fn plain_ipv4(data: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    let h: &[u8; 20] = data.get(..20)?.try_into().ok()?;
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff;
    let proto = h[9];
    if h[0] != 0x45
        || total < 20
        || total > data.len()
        || fragment != 0
        || (proto != IpNumber::TCP.0 && proto != IpNumber::UDP.0)
    {
        return None;
    }
    let src = IpAddr::V4(std::net::Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(std::net::Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    Some((src, dst, proto, &data[20..total]))
}

/// True when the fast path of [`decode_ip`] and the general one give the
/// same result for `data` (or the fast path passes it on): the `packet`
/// fuzz target asserts it.
pub(crate) fn decode_ip_general_agrees(data: &[u8]) -> bool {
    plain_ipv4(data).is_none()
        || format!("{:?}", decode_ip(data, 0)) == format!("{:?}", decode_ip_lax(data, 0))
}

/// Decodes any IPv4 or IPv6 packet with etherparse's lax slice: options,
/// extension headers, fragments, a total length beyond the captured bytes
/// (snaplen) or lying.
fn decode_ip_lax(data: &[u8], depth: u8) -> Decoded<'_> {
    let Ok((ip, _ext_err)) = LaxIpSlice::from_slice(data) else {
        return Decoded::Skip(SkipReason::IpInvalid);
    };
    let src = ip.source_addr();
    let dst = ip.destination_addr();
    let payload = ip.payload();
    let proto = payload.ip_number.0;
    // Payload length the header claims (for snaplen-cut packets).
    let claimed = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (h.total_len() as usize)
                .saturating_sub(h.slice().len())
                .saturating_sub(v4.extensions().auth.map(|a| a.slice().len()).unwrap_or(0))
        }
        LaxIpSlice::Ipv6(v6) => {
            let pl = v6.header().payload_length() as usize;
            if pl == 0 {
                payload.payload.len()
            } else {
                pl.saturating_sub(v6.extensions().slice().len())
            }
        }
    };
    let wire_len = claimed.max(payload.payload.len()) as u32;
    if payload.fragmented {
        let (id, offset, more, v6) = match &ip {
            LaxIpSlice::Ipv4(v4) => {
                let h = v4.header();
                (
                    h.identification() as u32,
                    h.fragments_offset().byte_offset() as u32,
                    h.more_fragments(),
                    false,
                )
            }
            LaxIpSlice::Ipv6(v6) => {
                // Walked by hand: etherparse 0.21's Ipv6ExtensionSliceIter reads out
                // of bounds on some lax-parsed packets (found by our `packet` fuzz
                // target; input kept in tests/fuzz_regressions/packet/).
                let (id, off, more) =
                    ipv6_fragment_header(v6.header().next_header().0, v6.extensions().slice())
                        .unwrap_or((0, 0, false));
                (id, off, more, true)
            }
        };
        let _ = v6;
        return Decoded::Fragment(Fragment {
            key: defrag::FragKey {
                src,
                dst,
                id,
                protocol: proto,
            },
            offset,
            more,
            data: payload.payload,
            depth,
        });
    }
    let truncated = claimed > payload.payload.len();
    match decode_ip_payload(src, dst, proto, payload.payload, wire_len, depth) {
        Decoded::Packet(mut p) => {
            p.ip_truncated |= truncated;
            Decoded::Packet(p)
        }
        other => other,
    }
}

/// Finds the IPv6 Fragment header (RFC 8200 §4.5) in an extension-header
/// chain: (identification, byte offset, more fragments).  Every length is
/// checked against `exts`.
fn ipv6_fragment_header(mut next: u8, exts: &[u8]) -> Option<(u32, u32, bool)> {
    let mut pos = 0usize;
    // bounded: each step consumes at least 8 bytes
    while pos + 8 <= exts.len() {
        let h = &exts[pos..];
        let len = match next {
            44 => {
                let off_flags = u16::from_be_bytes([h[2], h[3]]);
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                return Some((id, ((off_flags >> 3) as u32) * 8, off_flags & 1 == 1));
            }
            0 | 43 | 60 | 135 | 139 | 140 => (h[1] as usize + 1) * 8,
            51 => (h[1] as usize + 2) * 4,
            _ => return None,
        };
        next = h[0];
        pos += len;
    }
    None
}

/// Decodes what an IP packet (or a reassembled datagram) carries.
#[inline]
pub fn decode_ip_payload<'a>(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    data: &'a [u8],
    wire_len: u32,
    depth: u8,
) -> Decoded<'a> {
    let transport = match IpNumber(proto) {
        IpNumber::TCP => match TcpHeaderSlice::from_slice(data) {
            Ok(h) => {
                let hl = h.slice().len();
                Transport::Tcp(Tcp {
                    src_port: h.source_port(),
                    dst_port: h.destination_port(),
                    seq: h.sequence_number(),
                    ack: h.acknowledgment_number(),
                    flags: TcpFlags(h.slice()[13]),
                    window: h.window_size(),
                    payload: &data[hl..],
                    wire_len: wire_len
                        .saturating_sub(hl as u32)
                        .max((data.len() - hl) as u32),
                })
            }
            Err(_) => return Decoded::Skip(SkipReason::TransportTruncated),
        },
        IpNumber::UDP => match UdpHeaderSlice::from_slice(data) {
            Ok(h) => {
                let body = &data[8..];
                let ulen = h.length() as usize;
                // A UDP length below 8 or beyond the IP payload is ignored (lax),
                // as are trailing bytes beyond a smaller UDP length (padding).
                let (payload, wire) = if ulen >= 8 && ulen - 8 <= body.len() {
                    (&body[..ulen - 8], (ulen - 8) as u32)
                } else if ulen >= 8 && (ulen as u32) <= wire_len {
                    (body, (ulen - 8) as u32)
                } else {
                    (body, wire_len.saturating_sub(8).max(body.len() as u32))
                };
                Transport::Udp(Udp {
                    src_port: h.source_port(),
                    dst_port: h.destination_port(),
                    payload,
                    wire_len: wire,
                })
            }
            Err(_) => return Decoded::Skip(SkipReason::TransportTruncated),
        },
        IpNumber::ICMP | IpNumber::IPV6_ICMP => {
            let v6 = proto == IpNumber::IPV6_ICMP.0;
            if data.len() < 4 {
                Transport::Other(proto)
            } else {
                let (t, c) = (data[0], data[1]);
                let is_error = if v6 {
                    matches!(t, 1..=4)
                } else {
                    matches!(t, 3 | 4 | 5 | 11 | 12)
                };
                let quoted = if is_error && data.len() > 8 {
                    quoted_flow(&data[8..])
                } else {
                    None
                };
                Transport::Icmp(Icmp {
                    v6,
                    icmp_type: t,
                    code: c,
                    quoted,
                    body: data.get(8..).unwrap_or(&[]),
                })
            }
        }
        IpNumber::IPV4 | IpNumber::IPV6 => {
            // IP-in-IP (RFC 2003) / IPv6-in-IP (RFC 4213)
            if depth >= MAX_TUNNEL_DEPTH {
                return Decoded::Skip(SkipReason::TunnelTooDeep);
            }
            return decode_ip(data, depth + 1);
        }
        IpNumber::GRE => {
            if depth >= MAX_TUNNEL_DEPTH {
                return Decoded::Skip(SkipReason::TunnelTooDeep);
            }
            return decode_gre(data, depth + 1);
        }
        _ => Transport::Other(proto),
    };
    Decoded::Packet(Packet {
        src,
        dst,
        transport,
        ip_truncated: false,
    })
}

/// GRE (RFC 2784/2890) carrying IP, Ethernet (TEB) or ERSPAN.
fn decode_gre(data: &[u8], depth: u8) -> Decoded<'_> {
    if data.len() < 4 {
        return Decoded::Skip(SkipReason::TransportTruncated);
    }
    let flags = data[0];
    let version = data[1] & 0x07;
    if version != 0 {
        return Decoded::Skip(SkipReason::UnsupportedTunnel); // PPTP's enhanced GRE
    }
    let proto = u16::from_be_bytes([data[2], data[3]]);
    let mut off = 4;
    let has_seq = flags & 0x10 != 0;
    if flags & 0x80 != 0 {
        off += 4; // checksum + reserved
    }
    if flags & 0x20 != 0 {
        off += 4; // key
    }
    if has_seq {
        off += 4; // sequence number
    }
    if data.len() < off {
        return Decoded::Skip(SkipReason::TransportTruncated);
    }
    let inner = &data[off..];
    match proto {
        ethertype::IPV4 | ethertype::IPV6 => decode_ip(inner, depth),
        ethertype::TEB => ether_inner(inner, depth),
        // ERSPAN type I has no header and no sequence bit; type II has an
        // 8-byte header (draft-foschiano-erspan §4.1/4.2).
        ethertype::ERSPAN2 => {
            if !has_seq {
                ether_inner(inner, depth)
            } else if inner.len() >= 8 {
                ether_inner(&inner[8..], depth)
            } else {
                Decoded::Skip(SkipReason::TransportTruncated)
            }
        }
        // ERSPAN type III: 12-byte header, plus an 8-byte platform
        // sub-header when the O bit (lowest bit of byte 11) is set.
        ethertype::ERSPAN3 => {
            if inner.len() < 12 {
                return Decoded::Skip(SkipReason::TransportTruncated);
            }
            let skip = if inner[11] & 0x01 != 0 { 20 } else { 12 };
            if inner.len() < skip {
                return Decoded::Skip(SkipReason::TransportTruncated);
            }
            ether_inner(&inner[skip..], depth)
        }
        _ => Decoded::Skip(SkipReason::UnsupportedTunnel),
    }
}

fn ether_inner(data: &[u8], depth: u8) -> Decoded<'_> {
    match link::ethernet(data) {
        Ok(n) => decode_net(n.ethertype, n.data, depth),
        Err(r) => Decoded::Skip(r),
    }
}

/// Reads addresses and ports of the packet quoted in an ICMP error.
fn quoted_flow(data: &[u8]) -> Option<Quoted> {
    let (ip, _) = LaxIpSlice::from_slice(data).ok()?;
    let p = ip.payload();
    if p.payload.len() < 4 {
        return None;
    }
    let proto = p.ip_number.0;
    if proto != IpNumber::TCP.0 && proto != IpNumber::UDP.0 {
        return None;
    }
    Some(Quoted {
        src: ip.source_addr(),
        dst: ip.destination_addr(),
        protocol: proto,
        src_port: u16::from_be_bytes([p.payload[0], p.payload[1]]),
        dst_port: u16::from_be_bytes([p.payload[2], p.payload[3]]),
    })
}

/// Per-category frame counters of the decoding stage (for the capture summary).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct DecodeCounts {
    /// Frames carrying TCP.
    pub tcp: u64,
    /// Frames carrying UDP (counted where the datagram completes).
    pub udp: u64,
    /// ICMP/ICMPv6 frames.
    pub icmp: u64,
    /// Other IP protocols.
    pub other_ip: u64,
    /// Frames that held an IP fragment (including the one that completed a datagram).
    pub ip_fragments: u64,
    /// Non-IP frames (ARP, LLDP…): normal, not an error.
    pub non_ip: u64,
    /// Frames captured whole whose IP header claims more bytes than they hold
    /// (a lying length field; decoded with the bytes present).
    pub ip_length_exceeds_frame: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(3478, 50000);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn udp_over_ethernet() {
        let f = udp_frame(b"hello");
        let Decoded::Packet(p) = decode_frame(1, &f) else {
            panic!()
        };
        let Transport::Udp(u) = p.transport else {
            panic!()
        };
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (3478, 50000, &b"hello"[..])
        );
        assert_eq!(p.src.to_string(), "10.0.0.1");
    }

    /// Every variation the fast path of `decode_ip` must pass on or get
    /// right: padding after the total length, a cut or lying total length,
    /// options, fragments, other protocols, a short TCP header.
    #[test]
    fn the_ipv4_fast_path_agrees_with_the_general_one() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for (tcp, payload) in [
            (false, &b""[..]),
            (false, b"hello"),
            (true, b"x"),
            (true, b""),
        ] {
            let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
            let mut v = Vec::new();
            if tcp {
                b.tcp(5061, 443, 7, 9).write(&mut v, payload).unwrap();
            } else {
                b.udp(3478, 50000).write(&mut v, payload).unwrap();
            }
            cases.push(v);
        }
        let base = cases.clone();
        for v in &base {
            let mut padded = v.clone();
            padded.extend_from_slice(&[0; 6]); // Ethernet minimum-frame padding
            cases.push(padded);
            cases.push(v[..v.len() - 1].to_vec()); // snaplen cut
            for (at, byte) in [(0, 0x46), (0, 0x65), (3, 0), (3, 19), (3, 0xff), (6, 0x20)] {
                let mut w = v.clone();
                w[at] = byte; // options, IPv6 nibble, total 0 / 19 / lying, MF
                cases.push(w);
            }
            for (at, byte) in [(7, 1), (9, 1), (9, 4), (9, 51), (32, 0x40), (32, 0x10)] {
                let mut w = v.clone();
                if at < w.len() {
                    w[at] = byte; // offset, ICMP, IP-in-IP, AH, TCP data offset
                    cases.push(w);
                }
            }
        }
        for c in &cases {
            assert!(decode_ip_general_agrees(c), "{c:02x?}");
        }
        // and the fast path was taken where it should be
        assert!(cases.iter().filter(|c| plain_ipv4(c).is_some()).count() >= 8);
    }

    #[test]
    fn snaplen_cut_tcp_keeps_wire_length() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(5061, 443, 1000, 100);
        let mut v = Vec::new();
        b.write(&mut v, &[7u8; 1000]).unwrap();
        v.truncate(14 + 20 + 20 + 10);
        let Decoded::Packet(p) = decode_frame(1, &v) else {
            panic!()
        };
        let Transport::Tcp(t) = p.transport else {
            panic!()
        };
        assert_eq!(t.payload.len(), 10);
        assert_eq!(t.wire_len, 1000);
        assert_eq!(t.seq, 1000);
    }

    #[test]
    fn ip_in_ip_reaches_inner_udp() {
        let inner = {
            let b = PacketBuilder::ipv4([192, 168, 0, 1], [192, 168, 0, 2], 64).udp(5060, 5060);
            let mut v = Vec::new();
            b.write(&mut v, b"SIP").unwrap();
            v
        };
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64);
        let mut outer = Vec::new();
        b.write(&mut outer, IpNumber::IPV4, &inner).unwrap();
        let Decoded::Packet(p) = decode_frame(1, &outer) else {
            panic!()
        };
        assert_eq!(p.src.to_string(), "192.168.0.1");
        assert!(matches!(p.transport, Transport::Udp(_)));
    }

    /// etherparse 0.21's extension iterator over-reads on this input (ASan
    /// heap-buffer-overflow); our own walk must not.
    #[test]
    fn ipv6_extension_walk_regression() {
        let b = include_bytes!(
            "../../tests/fuzz_regressions/packet/etherparse-0.21-ipv6-ext-iter-overread.bin"
        );
        for lt in [1, 101, 228, 229] {
            let _ = decode_frame(lt, b);
        }
        // a well-formed fragment header is found behind a hop-by-hop header
        let mut exts = vec![44, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop, next = fragment
        exts.extend([17, 0, 0x05, 0x01, 0, 0, 0x12, 0x34]); // offset 0xA0 * 8… M=1, id 0x1234
        assert_eq!(
            ipv6_fragment_header(0, &exts),
            Some((0x1234, 0xA0 * 8, true))
        );
        assert_eq!(ipv6_fragment_header(0, &exts[..12]), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let mut v = vec![0u8; len];
            for b in v.iter_mut() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (seed >> 16) as u8;
            }
            if len > 14 {
                v[12] = 0x08;
                v[13] = 0x00;
                v[14] = 0x45;
            }
            let _ = decode_frame(1, &v);
            let _ = decode_frame(101, &v);
        }
    }
}
