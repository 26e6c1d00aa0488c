//! What makes each replica of a lab sample its own: its addresses, and
//! the names of its calls, ICE sessions and STUN transactions.
//!
//! Shared by `gencap` and by the test that checks it (`tests/it/gencap.rs`
//! includes this file), so that the bench's realism is itself tested.

use edgetrace::proto::stun::crc::{crc32, crc32_ms_legacy, FINGERPRINT_XOR};
use std::collections::BTreeSet;

/// Rewrites IPv4 addresses (outer header only) to (10+S).(R/256).(R%256).(last octet)
/// and fixes the header checksum; inner addresses (STUN, SDP) are left as they are.
pub fn rewrite(frame: &mut [u8], s: u8, r: u16) {
    let mut off = 14;
    let mut et = u16::from_be_bytes([frame[12], frame[13]]);
    while et == 0x8100 && frame.len() >= off + 4 {
        et = u16::from_be_bytes([frame[off + 2], frame[off + 3]]);
        off += 4;
    }
    if et != 0x0800 || frame.len() < off + 20 {
        return;
    }
    let ip = &mut frame[off..];
    for a in [12usize, 16] {
        ip[a] = 10 + s;
        ip[a + 1] = (r >> 8) as u8;
        ip[a + 2] = (r & 0xff) as u8;
        // keep the last octet: it distinguishes hosts within the sample
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    if ihl < 20 || ip.len() < ihl {
        return;
    }
    ip[10] = 0;
    ip[11] = 0;
    let mut sum = 0u32;
    for i in (0..ihl).step_by(2) {
        sum += u16::from_be_bytes([ip[i], ip[i + 1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The text that names a call or an ICE session in one sample: Call-ID
/// values, From/To tags and `a=ice-ufrag` values, as its frames spell them.
/// Each is replaced in replica `r` by text of the same length (so no length
/// field changes) whose first four characters encode (token, replica) in
/// base 62: no two (token, replica) pairs share a spelling.
pub struct Identity {
    /// Tokens with their global index (which makes their replacement unique
    /// across samples), longest first.
    tokens: Vec<(usize, Vec<u8>)>,
}

/// Replicas a token's replacement can tell apart (the address rewrite wraps
/// at the same number).
const REPLICAS: usize = 65_536;

impl Identity {
    /// Finds the tokens of one sample; `next` numbers them across samples.
    pub fn discover<'a>(frames: impl IntoIterator<Item = &'a [u8]>, next: &mut usize) -> Identity {
        let mut set = BTreeSet::new();
        let fields: [(&[u8], &[u8]); 4] = [
            (b"Call-ID: ", b"\r\n"),
            (b"\r\ni: ", b"\r\n"),
            (b";tag=", b";>\r\n ,"),
            (b"a=ice-ufrag:", b"\r\n"),
        ];
        for data in frames {
            for (prefix, stops) in fields {
                for at in memchr::memmem::find_iter(data, prefix) {
                    let start = at + prefix.len();
                    // a value cut by the end of an IP fragment has no stop
                    // byte here; other messages carry it whole
                    if let Some(len) = data[start..].iter().position(|b| stops.contains(b)) {
                        if len >= 4 {
                            set.insert(data[start..start + len].to_vec());
                        }
                    }
                }
            }
        }
        let mut tokens: Vec<(usize, Vec<u8>)> = set
            .into_iter()
            .map(|t| {
                *next += 1;
                (*next - 1, t)
            })
            .collect();
        tokens.sort_by_key(|(_, t)| std::cmp::Reverse(t.len()));
        assert!(
            *next * REPLICAS < 62usize.pow(4),
            "too many tokens to spell apart"
        );
        Identity { tokens }
    }

    /// Replaces every token in `frame` by replica `r`'s spelling of it.
    fn apply(&self, frame: &mut [u8], r: u32) {
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for (k, tok) in &self.tokens {
            let mut code = k * REPLICAS + (r as usize % REPLICAS);
            let mut spelled = tok.clone();
            for c in spelled[..4].iter_mut().rev() {
                *c = DIGITS[code % 62];
                code /= 62;
            }
            let hits: Vec<usize> = memchr::memmem::find_iter(frame, tok).collect();
            for at in hits {
                frame[at..at + tok.len()].copy_from_slice(&spelled);
            }
        }
    }
}

const COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_DATA: u16 = 0x0013;
const ATTR_FINGERPRINT: u16 = 0x8028;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Which CRC a STUN message's FINGERPRINT was made with, so that it is
/// remade the same way [MS-ICE2 §3.1.4.8.2: checks are sent with each].
#[derive(Clone, Copy, PartialEq, Debug)]
enum Crc {
    Standard,
    Legacy,
    /// No FINGERPRINT, or one that did not match before: left alone.
    Neither,
}

/// Offset of a STUN message's FINGERPRINT attribute (the last one).
fn fingerprint_at(m: &[u8]) -> Option<usize> {
    let at = m.len().checked_sub(8)?;
    (at >= 20 && be16(m, at) == ATTR_FINGERPRINT && be16(m, at + 2) == 4).then_some(at)
}

fn crc_of(m: &[u8]) -> Crc {
    let Some(at) = fingerprint_at(m) else {
        return Crc::Neither;
    };
    let v = u32::from_be_bytes([m[at + 4], m[at + 5], m[at + 6], m[at + 7]]);
    if crc32(&m[..at]) ^ FINGERPRINT_XOR == v {
        Crc::Standard
    } else if crc32_ms_legacy(&m[..at]) ^ FINGERPRINT_XOR == v {
        Crc::Legacy
    } else {
        Crc::Neither
    }
}

fn set_crc(m: &mut [u8], crc: Crc) {
    let Some(at) = fingerprint_at(m) else { return };
    let v = match crc {
        Crc::Standard => crc32(&m[..at]),
        Crc::Legacy => crc32_ms_legacy(&m[..at]),
        Crc::Neither => return,
    } ^ FINGERPRINT_XOR;
    m[at + 4..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Calls `f` on every STUN message in a UDP payload: the payload itself, a
/// ChannelData message's data, a TURN DATA attribute's value; inner
/// messages before the one that carries them, so that an outer FINGERPRINT
/// is remade over inner messages already changed.
pub fn each_stun(payload: &mut [u8], f: &mut impl FnMut(&mut [u8])) {
    if payload.len() >= 4 && (0x40..0x80).contains(&payload[0]) {
        let len = be16(payload, 2) as usize;
        if 4 + len <= payload.len() {
            each_stun(&mut payload[4..4 + len], f);
        }
        return;
    }
    let m = payload;
    if m.len() < 20 || m[0] & 0xC0 != 0 || m[4..8] != COOKIE || 20 + be16(m, 2) as usize != m.len()
    {
        return;
    }
    let mut off = 20;
    while off + 4 <= m.len() {
        let (t, l) = (be16(m, off), be16(m, off + 2) as usize);
        if off + 4 + l > m.len() {
            break;
        }
        if t == ATTR_DATA {
            each_stun(&mut m[off + 4..off + 4 + l], f);
        }
        off += 4 + l.div_ceil(4) * 4;
    }
    f(m);
}

/// The UDP payload of an unfragmented IPv4 datagram, and where its checksum is.
pub fn udp_payload(frame: &mut [u8]) -> Option<(&mut [u8], usize)> {
    let mut off = 14;
    let mut et = be16(frame, 12);
    while et == 0x8100 && frame.len() >= off + 4 {
        et = be16(frame, off + 2);
        off += 4;
    }
    let ip = frame.get(off..)?;
    if et != 0x0800 || ip.len() < 20 || ip[9] != 17 || be16(ip, 6) & 0x3fff != 0 {
        return None;
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let total = (be16(ip, 2) as usize).min(ip.len());
    if ihl < 20 || total < ihl + 8 {
        return None;
    }
    let (start, end) = (off + ihl + 8, off + total);
    Some((&mut frame[start..end], off + ihl + 6))
}

/// Makes one frame of a sample replica `r`'s own: its tokens, and the
/// transaction ids and FINGERPRINTs of the STUN messages it carries in UDP.
pub fn personalize(frame: &mut [u8], id: &Identity, r: u32) {
    let mut crcs = Vec::new();
    if let Some((p, _)) = udp_payload(frame) {
        each_stun(p, &mut |m| crcs.push(crc_of(m)));
    }
    id.apply(frame, r);
    if let Some((p, csum)) = udp_payload(frame) {
        let mut i = 0;
        each_stun(p, &mut |m| {
            for (b, x) in m[16..20].iter_mut().zip(r.to_be_bytes()) {
                *b ^= x;
            }
            set_crc(m, crcs[i]);
            i += 1;
        });
        // the payload changed; 0 is "no checksum" in IPv4 (RFC 768)
        frame[csum..csum + 2].fill(0);
    }
}
