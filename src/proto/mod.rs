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
