//! Link layers: from a frame's bytes to the network-layer payload and its
//! EtherType.  Covers what Wireshark users capture on Edge servers and
//! Linux hosts: Ethernet (802.1Q, 802.1ad and stacked tags, PPPoE session,
//! MPLS), Linux cooked SLL and SLL2 (`tcpdump -i any`), raw IP and BSD loopback.
//!
//! Ethernet and VLAN headers are read with etherparse's header slices;
//! SLL (see below), SLL2, NULL/LOOP, PPPoE and MPLS are read here
//! (tcpdump.org link-layer header types; RFC 2516; RFC 3032).

use etherparse::{Ethernet2HeaderSlice, SingleVlanHeaderSlice};

use super::SkipReason;

/// LINKTYPE_NULL: BSD loopback, 4-byte address family in the writer's byte order.
pub const LINKTYPE_NULL: u32 = 0;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// DLT_RAW as some BSDs number it.
pub const LINKTYPE_RAW_BSD12: u32 = 12;
/// DLT_RAW as OpenBSD numbers it.
pub const LINKTYPE_RAW_BSD14: u32 = 14;
/// LINKTYPE_RAW: the frame starts with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;
/// LINKTYPE_LOOP: OpenBSD loopback, address family in network byte order.
pub const LINKTYPE_LOOP: u32 = 108;
/// LINKTYPE_LINUX_SLL: Linux cooked capture v1.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4: raw IPv4.
pub const LINKTYPE_IPV4: u32 = 228;
/// LINKTYPE_IPV6: raw IPv6.
pub const LINKTYPE_IPV6: u32 = 229;
/// LINKTYPE_LINUX_SLL2: Linux cooked capture v2.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// EtherType values this crate acts on.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer).
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ tag used by some switches.
    pub const QINQ_OLD: u16 = 0x9100;
    /// PPPoE session stage.
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MC: u16 = 0x8848;
    /// Transparent Ethernet bridging (inside GRE).
    pub const TEB: u16 = 0x6558;
    /// ERSPAN type II (inside GRE).
    pub const ERSPAN2: u16 = 0x88BE;
    /// ERSPAN type III (inside GRE).
    pub const ERSPAN3: u16 = 0x22EB;
}

/// Network-layer payload found under the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetPayload<'a> {
    /// EtherType of `data` (IPv4 or IPv6 after normalisation; others mean "not IP").
    pub ethertype: u16,
    /// Bytes starting at the network header.
    pub data: &'a [u8],
}

/// Strips the link header of a frame.
pub fn strip(link_type: u32, data: &[u8]) -> Result<NetPayload<'_>, SkipReason> {
    match link_type {
        LINKTYPE_ETHERNET => ethernet(data),
        LINKTYPE_LINUX_SLL => {
            // pkttype(2) arphrd(2) addrlen(2) addr(8) protocol(2).  Read by
            // hand: etherparse's LinuxSllHeaderSlice rejects ARPHRD values it
            // does not know (e.g. 512, PPP), which Wireshark decodes fine.
            if data.len() < 16 {
                return Err(SkipReason::LinkTruncated);
            }
            ether_payload(u16::from_be_bytes([data[14], data[15]]), &data[16..])
        }
        LINKTYPE_LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) arphrd(2) pkttype(1) addrlen(1) addr(8)
            if data.len() < 20 {
                return Err(SkipReason::LinkTruncated);
            }
            ether_payload(u16::from_be_bytes([data[0], data[1]]), &data[20..])
        }
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            if data.len() < 4 {
                return Err(SkipReason::LinkTruncated);
            }
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28
            // (FreeBSD), 30 (Darwin) or 10 (Linux).  The writer's byte order is
            // unknown for LINKTYPE_NULL, so both are tried.
            let fam = if matches!(be, 2 | 10 | 24 | 28 | 30) {
                be
            } else {
                le
            };
            let ethertype = match fam {
                2 => ethertype::IPV4,
                10 | 24 | 28 | 30 => ethertype::IPV6,
                _ => return Err(SkipReason::NotIp),
            };
            Ok(NetPayload {
                ethertype,
                data: &data[4..],
            })
        }
        LINKTYPE_RAW | LINKTYPE_RAW_BSD12 | LINKTYPE_RAW_BSD14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => {
            raw_ip(data)
        }
        other => Err(SkipReason::UnsupportedLinkType(other)),
    }
}

/// Raw IP: the version nibble says which.
pub fn raw_ip(data: &[u8]) -> Result<NetPayload<'_>, SkipReason> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok(NetPayload {
            ethertype: ethertype::IPV4,
            data,
        }),
        Some(6) => Ok(NetPayload {
            ethertype: ethertype::IPV6,
            data,
        }),
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkTruncated),
    }
}

/// Ethernet II (an 802.3 length field means LLC, which carries no IP we read).
pub fn ethernet(data: &[u8]) -> Result<NetPayload<'_>, SkipReason> {
    let eth = Ethernet2HeaderSlice::from_slice(data).map_err(|_| SkipReason::LinkTruncated)?;
    let t = eth.ether_type().0;
    if t < 0x0600 {
        return Err(SkipReason::NotIp);
    }
    ether_payload(t, &data[eth.slice().len()..])
}

/// Follows VLAN tags, PPPoE and MPLS from an EtherType to IPv4/IPv6.
fn ether_payload(mut t: u16, mut data: &[u8]) -> Result<NetPayload<'_>, SkipReason> {
    // Bounded: each step consumes at least 4 bytes, and tags stack a few deep.
    for _ in 0..16 {
        match t {
            ethertype::IPV4 | ethertype::IPV6 => return Ok(NetPayload { ethertype: t, data }),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                let v = SingleVlanHeaderSlice::from_slice(data)
                    .map_err(|_| SkipReason::LinkTruncated)?;
                t = v.ether_type().0;
                data = &data[4..];
            }
            ethertype::PPPOE_SESSION => {
                // ver/type(1) code(1) session(2) length(2) then the PPP protocol (RFC 2516 §4, RFC 1661)
                if data.len() < 8 {
                    return Err(SkipReason::LinkTruncated);
                }
                let ppp = u16::from_be_bytes([data[6], data[7]]);
                t = match ppp {
                    0x0021 => ethertype::IPV4,
                    0x0057 => ethertype::IPV6,
                    _ => return Err(SkipReason::NotIp),
                };
                data = &data[8..];
            }
            ethertype::MPLS | ethertype::MPLS_MC => {
                // label stack entries of 4 bytes until the bottom-of-stack bit (RFC 3032)
                loop {
                    if data.len() < 4 {
                        return Err(SkipReason::LinkTruncated);
                    }
                    let bos = data[2] & 1 == 1;
                    data = &data[4..];
                    if bos {
                        break;
                    }
                }
                return raw_ip(data);
            }
            _ => return Err(SkipReason::NotIp),
        }
    }
    Err(SkipReason::NotIp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_vlan_tags_reach_ipv4() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xA8, 0x00, 0x0A, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        let p = strip(LINKTYPE_ETHERNET, &f).unwrap();
        assert_eq!(p.ethertype, ethertype::IPV4);
        assert_eq!(p.data, &[0x45, 0, 0, 20]);
    }

    #[test]
    fn null_loopback_either_byte_order() {
        let le = [2, 0, 0, 0, 0x45];
        let be = [0, 0, 0, 30, 0x60];
        assert_eq!(
            strip(LINKTYPE_NULL, &le).unwrap().ethertype,
            ethertype::IPV4
        );
        assert_eq!(
            strip(LINKTYPE_NULL, &be).unwrap().ethertype,
            ethertype::IPV6
        );
    }

    #[test]
    fn sll2_protocol_is_first() {
        let mut f = vec![0x86, 0xDD];
        f.extend_from_slice(&[0u8; 18]);
        f.push(0x60);
        assert_eq!(
            strip(LINKTYPE_LINUX_SLL2, &f).unwrap().ethertype,
            ethertype::IPV6
        );
    }

    #[test]
    fn unknown_link_type_is_reported_not_fatal() {
        assert_eq!(
            strip(147, &[1, 2, 3]),
            Err(SkipReason::UnsupportedLinkType(147))
        );
    }

    #[test]
    fn truncated_headers_never_panic() {
        for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
            for n in 0..24 {
                let _ = strip(lt, &vec![0x81; n]);
            }
        }
    }
}
