//! STUN, TURN and MS-TURN messages: a pure decoder over borrowed bytes.
//!
//! One parser serves three dialects, chosen **per message** (PROTOCOLS.md
//! §11.1): a first attribute MAGIC-COOKIE (0x000F = 0x72C64BC6) means MS-TURN
//! [MS-TURN §2.2.2.8]; otherwise the RFC 5389 magic cookie at bytes 4–7 means
//! RFC 5389/8489; otherwise the message is classic RFC 3489, accepted only
//! when it is confidently one (known type, attribute walk ends exactly).
//!
//! Differences handled per dialect: MS-TURN swaps REALM (0x0015) and NONCE
//! (0x0014), reads 0x0012 as a plain REMOTE-ADDRESS instead of
//! XOR-PEER-ADDRESS, numbers methods after TURN-08 (0x0004 Send request,
//! 0x0115 Data indication, 0x0006 Set Active Destination) and does not pad
//! attributes to 4 bytes.  When a walk does not land on the end of the
//! message with the dialect's padding rule, the other rule is tried and the
//! one that worked is recorded (§2.1).  XOR addresses use bytes 4–7 (and 4–19
//! for IPv6) of the message itself, which covers both the RFC rule and the
//! MS 0x8020 transaction-id rule (§2.2).  Nothing here panics or allocates
//! from an untrusted length: every length is checked against the buffer.

pub mod crc;
pub mod names;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use names::{attr as a, attr_name, class_in, method_name};
pub use names::{Class, Dialect};

/// The RFC 5389 magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The MS-TURN MAGIC-COOKIE attribute value.
pub const MS_MAGIC_COOKIE: u32 = 0x72C6_4BC6;
/// STUN header length.
pub const HEADER_LEN: usize = 20;

/// Result of checking FINGERPRINT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Fingerprint {
    /// Standard CRC-32 matched.
    Standard,
    /// Microsoft's legacy (mistyped table) CRC matched [MS-ICE2 §3.1.4.8.2].
    MsLegacy,
    /// Neither matched.
    Mismatch,
}

/// A decoded attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A transport address; `xor` tells whether it was XOR-encoded on the wire.
    Address {
        /// The decoded address.
        addr: SocketAddr,
        /// XOR-encoded on the wire.
        xor: bool,
    },
    /// ERROR-CODE.
    ErrorCode {
        /// Class × 100 + number.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Text (USERNAME, REALM, NONCE, SOFTWARE…), trailing NULs stripped.
    Text(String),
    /// Binary value that is not text (e.g. MS-ICE v1 usernames), hex-shown.
    Opaque(Vec<u8>),
    /// A 32-bit number (LIFETIME, PRIORITY, MS-VERSION, BANDWIDTH…).
    U32(u32),
    /// A 64-bit number (ICE tie-breakers, MS multiplexed session id).
    U64(u64),
    /// CHANNEL-NUMBER.
    Channel(u16),
    /// REQUESTED-TRANSPORT: an IP protocol number (17 UDP, 6 TCP).
    Transport(u8),
    /// REQUESTED-ADDRESS-FAMILY: 1 IPv4, 2 IPv6.
    Family(u8),
    /// EVEN-PORT with its R bit.
    EvenPort(bool),
    /// CONNECTION-ID (RFC 6062).
    ConnectionId(u32),
    /// CHANGE-REQUEST flags.
    ChangeRequest {
        /// Change IP.
        ip: bool,
        /// Change port.
        port: bool,
    },
    /// DATA: where the relayed bytes are inside the message (decoded separately).
    Data {
        /// Offset of the value in the message.
        offset: usize,
        /// Length of the value.
        len: usize,
    },
    /// A secret (MESSAGE-INTEGRITY, PASSWORD…): kept for `--show-secrets`, redacted otherwise.
    Secret(Vec<u8>),
    /// FINGERPRINT value and what it matched.
    Fingerprint {
        /// The CRC on the wire.
        value: u32,
        /// Which table matched.
        check: Fingerprint,
    },
    /// MS-SEQUENCE-NUMBER: connection id and sequence number.
    SequenceNumber {
        /// 20-byte connection id.
        connection: Vec<u8>,
        /// Sequence number.
        seq: u32,
    },
    /// MS-SERVICE-QUALITY.
    ServiceQuality {
        /// 1 audio, 2 video, 3 supplemental video, 4 data.
        stream_type: u16,
        /// 0 best effort, 1 reliable.
        quality: u16,
    },
    /// UNKNOWN-ATTRIBUTES.
    UnknownAttributes(Vec<u16>),
    /// Several 32-bit numbers: MS-TURNBWM bandwidth reservation amount (max/min
    /// send, max/min receive, kbit/s) and site address responses (flags, max
    /// send, max receive).
    Numbers(Vec<u32>),
    /// MS-TURNBWM Location Profile: peer location, own location (0 unknown,
    /// 1 internet, 2 intranet) and federation (0 none, 1 enterprise, 2 public cloud).
    LocationProfile {
        /// Peer's location.
        peer: u8,
        /// Own location.
        own: u8,
        /// Federation.
        federation: u8,
    },
    /// MS-TURNBWM Bandwidth Admission Control message type (0 check, 1 commit, 2 update).
    AdmissionControl(u16),
    /// ICMP (RFC 8656 §18.13).
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
    /// No value (USE-CANDIDATE, DONT-FRAGMENT…).
    Flag,
    /// Any other attribute, kept raw.
    Raw(Vec<u8>),
    /// A value whose length does not fit its type.
    Malformed(String),
}

/// One attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Type number (its name depends on the dialect: [`Message::attr_name`]).
    pub typ: u16,
    /// Decoded value.
    pub value: Value,
}

/// A decoded STUN / TURN / MS-TURN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The 16-bit type on the wire.
    pub msg_type: u16,
    /// Dialect it was decoded in.
    pub dialect: Dialect,
    /// Class (MS Data Indication 0x0115 is an indication).
    pub class: Class,
    /// Method name in the dialect.
    pub method: &'static str,
    /// Length field (attribute bytes).
    pub length: u16,
    /// Bytes 4..20: the RFC 3489 / MS 128-bit transaction id (cookie + 96-bit id in RFC 5389).
    pub tid: [u8; 16],
    /// Attributes in wire order.
    pub attrs: Vec<Attr>,
    /// True when attributes were walked without 4-byte padding (MS-TURN, RFC 3489).
    pub unpadded: bool,
    /// What was wrong with the attribute walk, if anything (attributes up to there are kept).
    pub malformed: Option<String>,
}

/// Why bytes are not a STUN message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Fewer than 20 bytes.
    #[error("shorter than a STUN header")]
    Short,
    /// The top two bits are not zero.
    #[error("first two bits are not 00")]
    NotStun,
    /// Header length and buffer disagree.
    #[error("length field {field} does not match {actual} bytes")]
    Length {
        /// 20 + the length field.
        field: usize,
        /// Bytes available.
        actual: usize,
    },
    /// No cookie, no MS MAGIC-COOKIE, and not confidently RFC 3489.
    #[error("no magic cookie and not a recognisable RFC 3489 message")]
    NoCookie,
}

impl Message {
    /// The name of one of this message's attributes, in its dialect.
    pub fn attr_name(&self, at: &Attr) -> &'static str {
        attr_name(self.dialect, at.typ)
    }

    /// True when bytes 4–7 hold the RFC 5389 cookie.
    pub fn has_cookie(&self) -> bool {
        self.tid[..4] == MAGIC_COOKIE.to_be_bytes()
    }

    /// Transaction id as hex, as Wireshark's `stun.id` shows it: 96 bits after the
    /// cookie, or all 128 bits when there is no cookie.
    pub fn txid_hex(&self) -> String {
        let b = if self.has_cookie() {
            &self.tid[4..]
        } else {
            &self.tid[..]
        };
        hex(b)
    }

    /// "Allocate request", "Binding success", "Data indication"…
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.class.name())
    }

    /// First attribute of a type.
    pub fn attr(&self, typ: u16) -> Option<&Attr> {
        self.attrs.iter().find(|x| x.typ == typ)
    }

    /// ERROR-CODE, if any.
    pub fn error_code(&self) -> Option<(u16, &str)> {
        self.attrs.iter().find_map(|x| match &x.value {
            Value::ErrorCode { code, reason } if x.typ == a::ERROR_CODE => {
                Some((*code, reason.as_str()))
            }
            _ => None,
        })
    }

    /// Address value of an attribute type.
    pub fn address(&self, typ: u16) -> Option<SocketAddr> {
        self.attrs.iter().find_map(|x| match x.value {
            Value::Address { addr, .. } if x.typ == typ => Some(addr),
            _ => None,
        })
    }

    /// Text value of an attribute (by its meaning: pass the RFC number; MS swaps are handled).
    pub fn text(&self, typ: u16) -> Option<&str> {
        self.attrs.iter().find_map(|x| match &x.value {
            Value::Text(s) if x.typ == typ => Some(s.as_str()),
            _ => None,
        })
    }

    /// REALM, whatever the dialect's number for it.
    pub fn realm(&self) -> Option<&str> {
        self.text(if self.dialect == Dialect::MsTurn {
            a::NONCE
        } else {
            a::REALM
        })
    }

    /// NONCE, whatever the dialect's number for it.
    pub fn nonce(&self) -> Option<&str> {
        self.text(if self.dialect == Dialect::MsTurn {
            a::REALM
        } else {
            a::NONCE
        })
    }

    /// u32 value of an attribute.
    pub fn u32_value(&self, typ: u16) -> Option<u32> {
        self.attrs.iter().find_map(|x| match x.value {
            Value::U32(v) if x.typ == typ => Some(v),
            _ => None,
        })
    }

    /// FINGERPRINT check result, if the attribute is present.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.attrs.iter().find_map(|x| match x.value {
            Value::Fingerprint { check, .. } => Some(check),
            _ => None,
        })
    }

    /// Where the DATA attribute's value sits in the message bytes.
    pub fn data_range(&self) -> Option<(usize, usize)> {
        self.attrs.iter().find_map(|x| match x.value {
            Value::Data { offset, len } => Some((offset, len)),
            _ => None,
        })
    }
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Quick header facts, for framing decisions before a full parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: u16,
    /// Length field.
    pub length: u16,
    /// RFC 5389 cookie present.
    pub cookie: bool,
    /// MS MAGIC-COOKIE attribute first (needs 28 bytes to tell).
    pub ms_magic: bool,
}

impl Header {
    /// Total message length (header + attributes).
    pub fn total(&self) -> usize {
        HEADER_LEN + self.length as usize
    }
}

/// Reads the header of a possible STUN message (top bits 00, 20 bytes).
pub fn header(b: &[u8]) -> Option<Header> {
    if b.len() < HEADER_LEN || b[0] & 0xC0 != 0 {
        return None;
    }
    Some(Header {
        msg_type: u16::from_be_bytes([b[0], b[1]]),
        length: u16::from_be_bytes([b[2], b[3]]),
        cookie: b[4..8] == MAGIC_COOKIE.to_be_bytes(),
        ms_magic: b.len() >= 28 && b[20..28] == [0x00, 0x0F, 0x00, 0x04, 0x72, 0xC6, 0x4B, 0xC6],
    })
}

/// Types a classic RFC 3489 message may have (Binding and Shared Secret).
const RFC3489_TYPES: &[u16] = &[0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112];

/// Decodes exactly one message occupying all of `b`.
pub fn parse(b: &[u8]) -> Result<Message, StunError> {
    let h = header(b).ok_or(if b.len() < HEADER_LEN {
        StunError::Short
    } else {
        StunError::NotStun
    })?;
    if h.total() != b.len() {
        return Err(StunError::Length {
            field: h.total(),
            actual: b.len(),
        });
    }
    let dialect = if h.ms_magic {
        Dialect::MsTurn
    } else if h.cookie {
        Dialect::Rfc5389
    } else {
        Dialect::Rfc3489
    };
    // RFC 5389+ lengths are multiples of 4; MS-TURN's need not be (no padding).
    if dialect == Dialect::Rfc5389 && h.length % 4 != 0 {
        return Err(StunError::Length {
            field: h.total(),
            actual: b.len(),
        });
    }
    let padded_first = dialect == Dialect::Rfc5389;
    let (spans, unpadded, malformed) = match walk(b, padded_first) {
        Ok(s) => (s, !padded_first, None),
        Err((partial, why)) => match walk(b, !padded_first) {
            Ok(s) => (s, padded_first, None),
            Err(_) => (partial, !padded_first, Some(why)),
        },
    };
    if dialect == Dialect::Rfc3489 {
        // Confidence test for cookie-less messages: a classic type, a length
        // that is a multiple of 4 and matches the datagram, and an attribute walk
        // that ends exactly on the last byte (what Wireshark's classicstun requires).
        if !RFC3489_TYPES.contains(&h.msg_type)
            || malformed.is_some()
            || h.length % 4 != 0
            || unpadded_mismatch(&spans)
        {
            return Err(StunError::NoCookie);
        }
    }
    let mut tid = [0u8; 16];
    tid.copy_from_slice(&b[4..20]);
    let attrs = spans
        .iter()
        .map(|&(t, off, len)| decode_attr(b, dialect, t, off, len))
        .collect();
    Ok(Message {
        msg_type: h.msg_type,
        dialect,
        class: class_in(dialect, h.msg_type),
        method: method_name(dialect, h.msg_type),
        length: h.length,
        tid,
        attrs,
        unpadded,
        malformed,
    })
}

type Span = (u16, usize, usize);

/// RFC 3489 values are multiples of 4: an odd length means this is not one.
fn unpadded_mismatch(spans: &[Span]) -> bool {
    spans.iter().any(|s| s.2 % 4 != 0)
}

/// Walks the attributes: (type, value offset, value length) each.
fn walk(b: &[u8], padded: bool) -> Result<Vec<Span>, (Vec<Span>, String)> {
    // room for the usual count at once (an ICE check has 5–8 attributes of
    // 8–12 bytes): growing from empty took two or three reallocations per
    // message.  The bytes are there, so this is no claimed length.
    let mut out = Vec::with_capacity((b.len().saturating_sub(HEADER_LEN) / 8).clamp(1, 32));
    let mut pos = HEADER_LEN;
    let end = b.len();
    while pos < end {
        if end - pos < 4 {
            return Err((
                out,
                format!("{} stray bytes after the last attribute", end - pos),
            ));
        }
        let t = u16::from_be_bytes([b[pos], b[pos + 1]]);
        let len = u16::from_be_bytes([b[pos + 2], b[pos + 3]]) as usize;
        let vstart = pos + 4;
        if len > end - vstart {
            // keep what is there (Wireshark decodes the value it has), then stop
            out.push((t, vstart, end - vstart));
            return Err((
                out,
                format!(
                    "attribute {t:#06x} claims {len} bytes, {} remain",
                    end - vstart
                ),
            ));
        }
        out.push((t, vstart, len));
        let mut next = vstart + len;
        if padded {
            let padded_next = vstart + len.div_ceil(4) * 4;
            // a final attribute may omit its padding (lenient, as Wireshark)
            next = padded_next.min(end.max(next));
            if padded_next > end {
                next = end;
            }
        }
        pos = next;
    }
    Ok(out)
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Plain address (MAPPED-ADDRESS layout, RFC 8489 §14.1).
fn address(v: &[u8]) -> Result<SocketAddr, String> {
    if v.len() < 4 {
        return Err(format!("address of {} bytes", v.len()));
    }
    let port = u16_at(v, 2);
    match v[1] {
        1 if v.len() >= 8 => Ok(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(v[4], v[5], v[6], v[7])),
            port,
        )),
        2 if v.len() >= 20 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&v[4..20]);
            Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        f => Err(format!("address family {f} with {} bytes", v.len())),
    }
}

/// XOR address: port ^ bytes 4–5, IPv4 ^ bytes 4–7, IPv6 ^ bytes 4–19 of the message.
fn xor_address(v: &[u8], msg: &[u8]) -> Result<SocketAddr, String> {
    let plain = address(v)?;
    let port = plain.port() ^ u16_at(msg, 4);
    Ok(match plain.ip() {
        IpAddr::V4(ip) => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(u32::from(ip) ^ u32_at(msg, 4))),
            port,
        ),
        IpAddr::V6(ip) => {
            let mut o = ip.octets();
            for (i, x) in o.iter_mut().enumerate() {
                *x ^= msg[4 + i];
            }
            SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port)
        }
    })
}

/// True when `s` holds a control character (`char::is_control`: C0, DEL,
/// C1).  Nearly every value is ASCII, checked by byte; C1 is not ASCII.
fn has_control(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        s.chars().any(|c| c.is_control())
    }
}

fn text_or_opaque(v: &[u8]) -> Value {
    let mut end = v.len();
    while end > 0 && v[end - 1] == 0 {
        end -= 1;
    }
    match std::str::from_utf8(&v[..end]) {
        Ok(s) if !has_control(s) => Value::Text(s.to_string()),
        _ => Value::Opaque(v.to_vec()),
    }
}

fn decode_attr(msg: &[u8], dialect: Dialect, t: u16, off: usize, len: usize) -> Attr {
    let v = &msg[off..off + len];
    let ms = dialect == Dialect::MsTurn;
    let need = |n: usize| -> Result<(), String> {
        if v.len() < n {
            Err(format!("{} bytes, {n} expected", v.len()))
        } else {
            Ok(())
        }
    };
    let value: Result<Value, String> = match t {
        a::XOR_PEER_ADDRESS if ms => address(v).map(|addr| Value::Address { addr, xor: false }),
        a::XOR_MAPPED_ADDRESS
        | a::XOR_PEER_ADDRESS
        | a::XOR_RELAYED_ADDRESS
        | a::MS_XOR_MAPPED_ADDRESS
        | a::XOR_RESPONSE_TARGET
        | a::XOR_REFLECTED_FROM
        | 0x8059..=0x805C => xor_address(v, msg).map(|addr| Value::Address { addr, xor: true }),
        a::MAPPED_ADDRESS
        | a::RESPONSE_ADDRESS
        | a::SOURCE_ADDRESS
        | a::CHANGED_ADDRESS
        | a::REFLECTED_FROM
        | a::MS_ALTERNATE_SERVER
        | a::DESTINATION_ADDRESS
        | a::ALTERNATE_SERVER
        | a::RESPONSE_ORIGIN
        | a::OTHER_ADDRESS
        | a::MS_ALTERNATE_MAPPED_ADDRESS => {
            address(v).map(|addr| Value::Address { addr, xor: false })
        }
        a::ERROR_CODE => need(4).map(|_| {
            let code = (v[2] & 0x07) as u16 * 100 + v[3] as u16;
            let reason = match text_or_opaque(&v[4..]) {
                Value::Text(s) => s,
                _ => String::from_utf8_lossy(&v[4..])
                    .trim_end_matches('\0')
                    .to_string(),
            };
            Value::ErrorCode { code, reason }
        }),
        a::USERNAME
        | a::REALM
        | a::NONCE
        | a::SOFTWARE
        | 0x8003
        | 0x8032
        | a::CANDIDATE_IDENTIFIER => Ok(text_or_opaque(v)),
        a::MESSAGE_INTEGRITY | a::MESSAGE_INTEGRITY_SHA256 | a::PASSWORD | a::USERHASH => {
            Ok(Value::Secret(v.to_vec()))
        }
        a::LIFETIME
        | a::PRIORITY
        | a::MS_VERSION
        | a::MS_IMPLEMENTATION_VERSION
        | a::BANDWIDTH
        | a::MAGIC_COOKIE
        | 0x8027 => need(4).map(|_| Value::U32(u32_at(v, 0))),
        a::ICE_CONTROLLED | a::ICE_CONTROLLING | a::MS_MULTIPLEXED_SESSION_ID => {
            need(8).map(|_| {
                Value::U64(u64::from_be_bytes([
                    v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                ]))
            })
        }
        a::CHANNEL_NUMBER => need(2).map(|_| Value::Channel(u16_at(v, 0))),
        a::REQUESTED_TRANSPORT => need(1).map(|_| Value::Transport(v[0])),
        a::REQUESTED_ADDRESS_FAMILY => need(1).map(|_| Value::Family(v[0])),
        a::EVEN_PORT => need(1).map(|_| Value::EvenPort(v[0] & 0x80 != 0)),
        a::CONNECTION_ID => need(4).map(|_| Value::ConnectionId(u32_at(v, 0))),
        a::CHANGE_REQUEST => need(4).map(|_| {
            let f = u32_at(v, 0);
            Value::ChangeRequest {
                ip: f & 4 != 0,
                port: f & 2 != 0,
            }
        }),
        a::DATA => Ok(Value::Data { offset: off, len }),
        a::FINGERPRINT => need(4).map(|_| {
            let value = u32_at(v, 0);
            // CRC over everything before this attribute (RFC 8489 §14.7).
            let covered = &msg[..off - 4];
            let check = if crc::crc32(covered) ^ crc::FINGERPRINT_XOR == value {
                Fingerprint::Standard
            } else if crc::crc32_ms_legacy(covered) ^ crc::FINGERPRINT_XOR == value {
                Fingerprint::MsLegacy
            } else {
                Fingerprint::Mismatch
            };
            Value::Fingerprint { value, check }
        }),
        a::MS_SEQUENCE_NUMBER => need(24).map(|_| Value::SequenceNumber {
            connection: v[..20].to_vec(),
            seq: u32_at(v, 20),
        }),
        a::MS_SERVICE_QUALITY => need(4).map(|_| Value::ServiceQuality {
            stream_type: u16_at(v, 0),
            quality: u16_at(v, 2),
        }),
        // MS-TURNBWM: reservation amount (4 × u32) and site address responses (3 × u32)
        a::BANDWIDTH_RESERVATION_AMOUNT | 0x805D..=0x8060 => {
            let n = if t == a::BANDWIDTH_RESERVATION_AMOUNT {
                16
            } else {
                12
            };
            need(n).map(|_| Value::Numbers(v[..n].chunks_exact(4).map(|c| u32_at(c, 0)).collect()))
        }
        0x8068 => need(3).map(|_| Value::LocationProfile {
            peer: v[0],
            own: v[1],
            federation: v[2],
        }),
        0x8056 => need(4).map(|_| Value::AdmissionControl(u16_at(v, 2))),
        0x8061 | 0x8062 => Ok(text_or_opaque(v)),
        0x8025 => need(4).map(|_| Value::U32(u32_at(v, 0))),
        a::UNKNOWN_ATTRIBUTES => Ok(Value::UnknownAttributes(
            v.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
        )),
        a::ICMP | 0x0030 => need(4).map(|_| Value::Icmp {
            icmp_type: v[2],
            code: v[3],
        }),
        a::USE_CANDIDATE | 0x001A => Ok(Value::Flag),
        _ if v.is_empty() => Ok(Value::Flag),
        _ => Ok(Value::Raw(v.to_vec())),
    };
    Attr {
        typ: t,
        value: value.unwrap_or_else(Value::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_control_check_is_char_is_control() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let s = format!("ab{c}");
            assert_eq!(has_control(&s), c.is_control(), "{:#x}", c as u32);
        }
    }

    fn hexb(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5769 §2.2: sample IPv4 response (XOR-MAPPED-ADDRESS 192.0.2.1:32853).
    #[test]
    fn rfc5769_ipv4_response() {
        let b = hexb(
            "0101 003c 2112a442 b7e7a701 bc34d686 fa87dfae
             8022 000b 74657374 20766563 746f7220
             0020 0008 0001a147 e112a643
             0008 0014 2b91f599 fd9e9019 38c3a91d 8ab22e67 1a10f9a1
             8028 0004 c07d4c96",
        );
        let m = parse(&b).unwrap();
        assert_eq!(m.dialect, Dialect::Rfc5389);
        assert_eq!(m.name(), "Binding success");
        assert_eq!(m.txid_hex(), "b7e7a701bc34d686fa87dfae");
        assert_eq!(
            m.address(a::XOR_MAPPED_ADDRESS),
            Some("192.0.2.1:32853".parse().unwrap())
        );
        assert_eq!(m.text(a::SOFTWARE), Some("test vector"));
        assert!(
            matches!(m.attr(a::MESSAGE_INTEGRITY).unwrap().value, Value::Secret(ref v) if v.len() == 20)
        );
    }

    /// RFC 5769 §2.3: sample IPv6 response.
    #[test]
    fn rfc5769_ipv6_response() {
        let b = hexb(
            "0101 0048 2112a442 b7e7a701 bc34d686 fa87dfae
             8022 000b 74657374 20766563 746f7220
             0020 0014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
             0008 0014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
             8028 0004 c8fb0b4c",
        );
        let m = parse(&b).unwrap();
        assert_eq!(
            m.address(a::XOR_MAPPED_ADDRESS),
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
        assert_eq!(m.fingerprint(), Some(Fingerprint::Standard));
    }

    #[test]
    fn attribute_length_ffff_is_malformed_not_a_panic() {
        let mut b = hexb("0001 0008 2112a442 000000000000000000000000 0006 ffff 61626364");
        let m = parse(&b).unwrap();
        assert!(m.malformed.is_some());
        assert_eq!(
            m.text(a::USERNAME),
            Some("abcd"),
            "the bytes present are still decoded"
        );
        b.truncate(22);
        assert!(parse(&b).is_err());
    }

    #[test]
    fn ms_turn_dialect_swaps_realm_and_nonce_and_reads_plain_remote_address() {
        // Allocate-style message: MAGIC-COOKIE first, NONCE (0x0014) and REALM (0x0015) swapped,
        // REMOTE-ADDRESS (0x0012) plain, an odd-length USERNAME not padded.
        let mut body = hexb("000f 0004 72c64bc6");
        body.extend(hexb("0014 0004 6e6f6e63")); // "nonc" is the NONCE in MS numbering
        body.extend(hexb("0015 0005 7265616c6d")); // "realm", 5 bytes, no padding
        body.extend(hexb("0012 0008 0001 0d96 0a000005")); // 10.0.0.5:3478 plain
        let mut b = vec![0x01, 0x15, 0, body.len() as u8];
        b.extend(hexb("2112a442 0102030405060708090a0b0c"));
        b.extend(body);
        let m = parse(&b).unwrap();
        assert_eq!(m.dialect, Dialect::MsTurn);
        assert_eq!(m.name(), "Data indication");
        assert!(m.unpadded);
        assert_eq!(m.realm(), Some("realm"));
        assert_eq!(m.nonce(), Some("nonc"));
        assert_eq!(
            m.address(a::XOR_PEER_ADDRESS),
            Some("10.0.0.5:3478".parse().unwrap())
        );
        assert_eq!(
            m.attr_name(m.attr(a::XOR_PEER_ADDRESS).unwrap()),
            "REMOTE-ADDRESS"
        );
    }

    #[test]
    fn classic_rfc3489_needs_confidence() {
        // Binding request, 16-byte tid, CHANGE-REQUEST
        let b = hexb("0001 0008 00112233445566778899aabbccddeeff 0003 0004 00000000");
        let m = parse(&b).unwrap();
        assert_eq!(m.dialect, Dialect::Rfc3489);
        assert_eq!(m.txid_hex(), "00112233445566778899aabbccddeeff");
        // RTP-looking junk is not STUN
        let junk = hexb("0003 0008 00112233445566778899aabbccddeeff 9999 0004 00000000");
        assert_eq!(parse(&junk), Err(StunError::NoCookie));
    }

    #[test]
    fn never_panics_on_short_or_odd_inputs() {
        for n in 0..64 {
            let mut b = vec![0u8; n];
            if n >= 8 {
                b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            }
            if n >= 4 {
                b[3] = (n.saturating_sub(20)) as u8;
            }
            let _ = parse(&b);
        }
    }
}

#[cfg(test)]
mod bandwidth_tests {
    use super::*;

    /// MS-TURNBWM attributes (PROTOCOLS.md §2.3) decode to their fields.
    #[test]
    fn bandwidth_management_attributes() {
        let mut body = vec![0x80, 0x58, 0x00, 0x10];
        for x in [500u32, 100, 400, 50] {
            body.extend(x.to_be_bytes());
        }
        body.extend([0x80, 0x68, 0x00, 0x04, 1, 2, 1, 0]);
        body.extend([0x80, 0x56, 0x00, 0x04, 0, 0, 0, 1]);
        let mut b = vec![0x00, 0x03, 0x00, body.len() as u8, 0x21, 0x12, 0xA4, 0x42];
        b.extend([9u8; 12]);
        b.extend(body);
        let m = parse(&b).unwrap();
        assert_eq!(m.attrs[0].value, Value::Numbers(vec![500, 100, 400, 50]));
        assert_eq!(
            m.attrs[1].value,
            Value::LocationProfile {
                peer: 1,
                own: 2,
                federation: 1
            }
        );
        assert_eq!(m.attrs[2].value, Value::AdmissionControl(1));
        assert_eq!(m.attr_name(&m.attrs[0]), "BANDWIDTH-RESERVATION-AMOUNT");
    }
}
