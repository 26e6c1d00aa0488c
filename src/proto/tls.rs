//! TLS records and handshake messages (PROTOCOLS.md §8): the record layer
//! and handshake reassembly are done here, on top of TCP reassembly, because
//! tls-parser 0.12 leaves fragmentation to the caller; each complete
//! handshake message is then parsed by tls-parser.
//!
//! - A record is `type | version | length | fragment`; a length above
//!   2^14 + 2048 (RFC 5246 §6.2.3) or an unknown type means the bytes are not
//!   TLS (reported by the caller, never a panic).
//! - Handshake messages may be split across records or packed several to a
//!   record (RFC 5246 §6.2.1): [`HandshakeAssembler`] joins them per
//!   direction, bounded by [`MAX_HANDSHAKE`].
//! - After a direction's ChangeCipherSpec its handshake records are
//!   encrypted (Finished); in TLS 1.3 everything after ServerHello is.
//!   The caller stops feeding the assembler then.
//! - An SSLv2-style ClientHello (`0x80 len 0x01 …`, RFC 5246 Appendix E.2)
//!   is recognised by [`sslv2_client_hello`].

use tls_parser::{
    parse_tls_client_hello_extensions, parse_tls_message_handshake,
    parse_tls_server_hello_extensions, TlsCipherSuite, TlsExtension, TlsExtensionType, TlsMessage,
    TlsMessageHandshake,
};

/// Largest record fragment accepted (TLS 1.2 ciphertext bound).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Largest handshake message assembled (a certificate chain is < 64 KiB in practice).
pub const MAX_HANDSHAKE: usize = 256 * 1024;

/// TLS 1.3 HelloRetryRequest random: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// Record content types.
pub mod content {
    /// ChangeCipherSpec.
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    /// Alert.
    pub const ALERT: u8 = 21;
    /// Handshake.
    pub const HANDSHAKE: u8 = 22;
    /// Application data.
    pub const APPLICATION_DATA: u8 = 23;
    /// Heartbeat (RFC 6520).
    pub const HEARTBEAT: u8 = 24;
}

/// What the front of a direction's byte stream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Front {
    /// A whole record: content type, record version, fragment range, total length.
    Record {
        /// Content type.
        content_type: u8,
        /// Record-layer version.
        version: u16,
        /// Fragment length.
        len: usize,
    },
    /// Not enough bytes yet.
    NeedMore,
    /// Not a TLS record (why).
    NotTls(String),
}

/// Looks at the front of a stream for a TLS record header.
pub fn front(b: &[u8]) -> Front {
    if b.len() < 5 {
        return if b.is_empty() || (20..=24).contains(&b[0]) {
            Front::NeedMore
        } else {
            Front::NotTls(format!("content type {} is not a TLS record", b[0]))
        };
    }
    let ct = b[0];
    let version = u16::from_be_bytes([b[1], b[2]]);
    let len = usize::from(u16::from_be_bytes([b[3], b[4]]));
    if !(20..=24).contains(&ct) {
        return Front::NotTls(format!("content type {ct} is not a TLS record"));
    }
    if b[1] != 3 || b[2] > 4 {
        return Front::NotTls(format!(
            "record version {version:#06x} is not SSL 3.0–TLS 1.3"
        ));
    }
    if len > MAX_RECORD {
        return Front::NotTls(format!("record length {len} exceeds {MAX_RECORD}"));
    }
    if b.len() < 5 + len {
        return Front::NeedMore;
    }
    Front::Record {
        content_type: ct,
        version,
        len,
    }
}

/// True when `b` starts with an SSLv2-format ClientHello (2-byte header with
/// the high bit set, msg_type 1, version 0x0002–0x0303).
pub fn sslv2_client_hello(b: &[u8]) -> bool {
    b.len() >= 5 && b[0] & 0x80 != 0 && b[2] == 1 && (b[3] == 0 || b[3] == 3)
}

/// Joins handshake fragments of one direction into whole messages.
#[derive(Debug, Default)]
pub struct HandshakeAssembler {
    buf: Vec<u8>,
    /// Set when a message claimed more than [`MAX_HANDSHAKE`]; nothing more is assembled.
    pub overflow: bool,
}

impl HandshakeAssembler {
    /// Adds a handshake record's fragment; returns the whole messages now
    /// complete (each with its 4-byte header).
    pub fn push(&mut self, fragment: &[u8]) -> Vec<Vec<u8>> {
        if self.overflow {
            return Vec::new();
        }
        self.buf.extend_from_slice(fragment);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 4 {
                break;
            }
            let len = (usize::from(self.buf[1]) << 16)
                | (usize::from(self.buf[2]) << 8)
                | usize::from(self.buf[3]);
            if len > MAX_HANDSHAKE {
                self.overflow = true;
                self.buf = Vec::new();
                break;
            }
            if self.buf.len() < 4 + len {
                break;
            }
            out.push(self.buf.drain(..4 + len).collect());
        }
        out
    }

    /// Bytes waiting for the rest of a message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Handshake type names (RFC 8446 §4, RFC 5246 §7.4).
pub fn handshake_name(t: u8) -> &'static str {
    match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        22 => "CertificateStatus",
        24 => "KeyUpdate",
        254 => "MessageHash",
        _ => "unknown",
    }
}

/// Alert description names (RFC 8446 §6, RFC 5246 §7.2).
pub fn alert_name(d: u8) -> &'static str {
    match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    }
}

/// `TLS 1.2`, `SSL 3.0`…
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 (draft {})", v & 0xff),
        0x0002 => "SSL 2.0".into(),
        v if v & 0x0f0f == 0x0a0a => format!("GREASE {v:#06x}"),
        v => format!("{v:#06x}"),
    }
}

/// A cipher suite's IANA name, or its number.
pub fn cipher_name(id: u16) -> String {
    TlsCipherSuite::from_id(id)
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| format!("{id:#06x}"))
}

/// What a ClientHello offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// legacy_version.
    pub version: u16,
    /// supported_versions (extension 43), in order.
    pub supported_versions: Vec<u16>,
    /// server_name.
    pub sni: Option<String>,
    /// ALPN protocols.
    pub alpn: Vec<String>,
    /// Cipher suite ids in order.
    pub ciphers: Vec<u16>,
    /// Extension type numbers in order.
    pub extensions: Vec<u16>,
}

/// What a ServerHello selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// legacy_version.
    pub version: u16,
    /// supported_versions selected (TLS 1.3).
    pub selected_version: Option<u16>,
    /// Cipher suite.
    pub cipher: u16,
    /// ALPN chosen.
    pub alpn: Option<String>,
    /// This is a TLS 1.3 HelloRetryRequest.
    pub hello_retry_request: bool,
    /// Extension type numbers in order.
    pub extensions: Vec<u16>,
}

impl ServerHello {
    /// The negotiated version: supported_versions when present, else legacy_version.
    pub fn negotiated(&self) -> u16 {
        self.selected_version.unwrap_or(self.version)
    }
}

/// A parsed handshake message, reduced to what the analyzer keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// ClientHello.
    ClientHello(ClientHello),
    /// ServerHello (or HelloRetryRequest).
    ServerHello(ServerHello),
    /// Certificate: DER certificates in order (end-entity first).
    Certificate(Vec<Vec<u8>>),
    /// CertificateRequest: certificate types asked for, number of CAs listed.
    CertificateRequest {
        /// certificate_types.
        types: Vec<u8>,
        /// Acceptable CA names listed.
        cas: usize,
    },
    /// Any other type (by number).
    Other(u8),
    /// The message did not parse (type, reason).
    Malformed(u8, String),
}

fn extension_types(exts: &[TlsExtension<'_>]) -> Vec<u16> {
    exts.iter().map(|e| TlsExtensionType::from(e).0).collect()
}

/// True for TLS 1.3 and its drafts (0x7fNN).
pub fn is_tls13(v: u16) -> bool {
    v == 0x0304 || v >> 8 == 0x7f
}

/// A TLS 1.3 draft ≤ 21 ServerHello (`version 0x7fNN | random | cipher |
/// extensions`, no session id or compression): tls-parser only knows draft
/// 18's number, and such hellos still appear in old captures.  Drafts ≥ 22
/// use the final layout and parse normally.
fn draft_server_hello(msg: &[u8]) -> Option<ServerHello> {
    let b = msg.get(4..)?;
    let version = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    if version >> 8 != 0x7f || version > 0x7f15 {
        return None;
    }
    let cipher = u16::from_be_bytes([*b.get(34)?, *b.get(35)?]);
    let ext = b.get(38..).unwrap_or(&[]);
    let extensions = parse_tls_server_hello_extensions(ext)
        .map(|(_, e)| extension_types(&e))
        .unwrap_or_default();
    Some(ServerHello {
        version,
        selected_version: None,
        cipher,
        alpn: None,
        hello_retry_request: false,
        extensions,
    })
}

/// Parses one whole handshake message (with its 4-byte header).
pub fn parse_handshake(msg: &[u8]) -> Handshake {
    let t = msg.first().copied().unwrap_or(255);
    if t == 2 {
        if let Some(sh) = draft_server_hello(msg) {
            return Handshake::ServerHello(sh);
        }
    }
    let parsed = match parse_tls_message_handshake(msg) {
        Ok((_, TlsMessage::Handshake(h))) => h,
        Ok(_) => return Handshake::Other(t),
        Err(e) => {
            return Handshake::Malformed(
                t,
                format!("{} does not parse: {e:?}", handshake_name(t))
                    .chars()
                    .take(160)
                    .collect(),
            )
        }
    };
    match parsed {
        TlsMessageHandshake::ClientHello(ch) => {
            let mut out = ClientHello {
                version: ch.version.0,
                ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
                ..ClientHello::default()
            };
            if let Some(ext) = ch.ext {
                if let Ok((_, exts)) = parse_tls_client_hello_extensions(ext) {
                    out.extensions = extension_types(&exts);
                    for e in exts {
                        match e {
                            TlsExtension::SNI(names) => {
                                out.sni = names
                                    .first()
                                    .map(|(_, n)| String::from_utf8_lossy(n).to_string());
                            }
                            TlsExtension::ALPN(p) => {
                                out.alpn = p
                                    .iter()
                                    .map(|x| String::from_utf8_lossy(x).to_string())
                                    .collect();
                            }
                            TlsExtension::SupportedVersions(v) => {
                                out.supported_versions = v.iter().map(|x| x.0).collect();
                            }
                            _ => {}
                        }
                    }
                }
            }
            Handshake::ClientHello(out)
        }
        TlsMessageHandshake::ServerHello(sh) => {
            let mut out = ServerHello {
                version: sh.version.0,
                cipher: sh.cipher.0,
                hello_retry_request: sh.random == HRR_RANDOM,
                ..ServerHello::default()
            };
            if let Some(ext) = sh.ext {
                if let Ok((_, exts)) = parse_tls_server_hello_extensions(ext) {
                    out.extensions = extension_types(&exts);
                    for e in exts {
                        match e {
                            TlsExtension::SupportedVersions(v) => {
                                out.selected_version = v.first().map(|x| x.0);
                            }
                            TlsExtension::ALPN(p) => {
                                out.alpn =
                                    p.first().map(|x| String::from_utf8_lossy(x).to_string());
                            }
                            _ => {}
                        }
                    }
                }
            }
            Handshake::ServerHello(out)
        }
        TlsMessageHandshake::Certificate(c) => {
            Handshake::Certificate(c.cert_chain.iter().map(|x| x.data.to_vec()).collect())
        }
        TlsMessageHandshake::CertificateRequest(r) => Handshake::CertificateRequest {
            types: r.cert_types.clone(),
            cas: r.unparsed_ca.len(),
        },
        _ => Handshake::Other(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_front() {
        assert_eq!(front(&[]), Front::NeedMore);
        assert_eq!(front(&[22, 3]), Front::NeedMore);
        assert!(matches!(front(b"GET / HTTP/1.1"), Front::NotTls(_)));
        assert!(matches!(front(&[22, 3, 1, 0xff, 0xff]), Front::NotTls(_)));
        assert!(matches!(front(&[22, 9, 1, 0, 1, 0]), Front::NotTls(_)));
        assert_eq!(
            front(&[21, 3, 3, 0, 2, 2, 43]),
            Front::Record {
                content_type: 21,
                version: 0x0303,
                len: 2
            }
        );
    }

    #[test]
    fn handshake_split_and_packed() {
        let mut a = HandshakeAssembler::default();
        // two messages: ServerHelloDone (empty) twice, split oddly
        let two = [14u8, 0, 0, 0, 14, 0, 0, 0];
        assert!(a.push(&two[..3]).is_empty());
        let got = a.push(&two[3..]);
        assert_eq!(got.len(), 2);
        assert_eq!(a.pending(), 0);
        // a lying length stops assembly instead of allocating
        assert!(a.push(&[11, 0xff, 0xff, 0xff]).is_empty());
        assert!(a.overflow);
    }

    #[test]
    fn names() {
        assert_eq!(alert_name(43), "unsupported_certificate");
        assert_eq!(version_name(0x0304), "TLS 1.3");
        assert_eq!(cipher_name(0xc030), "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
        assert_eq!(handshake_name(13), "CertificateRequest");
    }

    #[test]
    fn garbage_handshakes_do_not_panic() {
        for t in 0..=255u8 {
            let _ = parse_handshake(&[t, 0, 0, 4, 1, 2, 3, 4]);
            let _ = parse_handshake(&[t]);
        }
    }

    #[test]
    fn sslv2() {
        assert!(sslv2_client_hello(&[0x80, 0x2e, 0x01, 0x03, 0x01]));
        assert!(!sslv2_client_hello(&[0x16, 0x03, 0x01, 0x00, 0x2e]));
    }
}
