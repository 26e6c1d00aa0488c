//! Protocol parsers and finders: pure functions over borrowed bytes, one
//! file (or folder) per protocol.  They never print; analyzers turn what
//! they find into timelines.
//!
//! - [`stun`]: STUN / TURN / MS-TURN messages (all dialects);
//! - [`channel`]: TURN ChannelData and MS multiplexed TURN (0xFF10) frames;
//! - [`tcpframe`]: how STUN-family traffic is framed inside a TCP stream
//!   (plain, RFC 4571, MS-TURN 4-byte framing, MS pseudo-TLS);
//! - [`sip`]: SIP messages (start line, headers, framing on streams);
//! - [`sdp`]: SDP bodies: media lines, ICE credentials and candidates;
//! - [`mras`]: MRAS XML bodies (A/V Edge credentials and relay list);
//! - [`tls`]: TLS records, handshake reassembly and hello messages;
//! - [`x509`]: certificates (subject, SAN, EKU judged by TLS role).

pub mod channel;
pub mod mras;
pub mod sdp;
pub mod sip;
pub mod stun;
pub mod tcpframe;
pub mod tls;
pub mod x509;

/// Bytes as text, invalid UTF-8 replaced (U+FFFD), as
/// `String::from_utf8_lossy` gives it.  `std::str::from_utf8` checks ASCII a
/// word at a time and the lossy decoder walks byte by byte, so the lossy one
/// runs only on invalid text: for SIP headers and SDP bodies, read for every
/// message, that is most of the cost of decoding them.
pub fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_the_lossy_decoding() {
        for b in [
            &b"INVITE sip:a@b"[..],
            b"caf\xc3\xa9",
            b"bad \xff\xfe end",
            b"cut \xe2\x82",
            b"",
        ] {
            assert_eq!(super::text(b), String::from_utf8_lossy(b));
        }
        assert!(matches!(super::text(b"ok"), std::borrow::Cow::Borrowed(_)));
    }
}
