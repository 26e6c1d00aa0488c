//! Names of STUN/TURN/MS-TURN message types, attributes and error codes
//! (PROTOCOLS.md §1.3, §1.4, §2.3; the names tshark 4.0 prints where it
//! knows them, so output can be compared with Wireshark).

use serde::Serialize;

/// Which rule set a message follows (recorded per message, never global).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// RFC 5389/8489 (magic cookie 0x2112A442 at bytes 4–7), with TURN (RFC 8656) and RFC 6062.
    Rfc5389,
    /// Classic RFC 3489: 128-bit transaction id, no cookie.
    Rfc3489,
    /// Microsoft TURN [MS-TURN]: MAGIC-COOKIE attribute first, TURN-08 numbering,
    /// REALM/NONCE swapped, REMOTE-ADDRESS not XORed, attributes not padded.
    MsTurn,
}

/// Message class [RFC 8489 §5].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Request.
    Request,
    /// Indication.
    Indication,
    /// Success response.
    Success,
    /// Error response.
    Error,
}

impl Class {
    /// Class bits of a message type.
    pub fn of(t: u16) -> Class {
        match ((t >> 4) & 1) | ((t >> 7) & 2) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        }
    }

    /// "request", "indication", "success", "error".
    pub fn name(self) -> &'static str {
        match self {
            Class::Request => "request",
            Class::Indication => "indication",
            Class::Success => "success",
            Class::Error => "error",
        }
    }

    /// True for success and error responses.
    pub fn is_response(self) -> bool {
        matches!(self, Class::Success | Class::Error)
    }
}

/// Method bits of a message type.
pub fn method_of(t: u16) -> u16 {
    (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
}

/// Name of a method in a dialect.
pub fn method_name(dialect: Dialect, msg_type: u16) -> &'static str {
    if dialect == Dialect::MsTurn {
        // [MS-TURN §2.2.1]: TURN-08 numbering, by whole type.
        match msg_type {
            0x0004 => return "Send",
            0x0115 => return "Data",
            0x0006 | 0x0106 | 0x0116 => return "SetActiveDestination",
            _ => {}
        }
    }
    match method_of(msg_type) {
        0x001 => "Binding",
        0x002 => "SharedSecret",
        0x003 => "Allocate",
        0x004 => "Refresh",
        0x006 => "Send",
        0x007 => "Data",
        0x008 => "CreatePermission",
        0x009 => "ChannelBind",
        0x00A => "Connect",
        0x00B => "ConnectionBind",
        0x00C => "ConnectionAttempt",
        0x080 => "GooglePing",
        _ => "Unknown",
    }
}

/// Class of a message in a dialect (MS Data Indication 0x0115 looks like an error response).
pub fn class_in(dialect: Dialect, msg_type: u16) -> Class {
    if dialect == Dialect::MsTurn && msg_type == 0x0115 {
        Class::Indication
    } else {
        Class::of(msg_type)
    }
}

/// Attribute type numbers used by the decoder.
pub mod attr {
    /// MAPPED-ADDRESS (MS: relayed address in Allocate responses, MS-VERSION ≤ 3).
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// RESPONSE-ADDRESS (RFC 3489).
    pub const RESPONSE_ADDRESS: u16 = 0x0002;
    /// CHANGE-REQUEST.
    pub const CHANGE_REQUEST: u16 = 0x0003;
    /// SOURCE-ADDRESS (RFC 3489).
    pub const SOURCE_ADDRESS: u16 = 0x0004;
    /// CHANGED-ADDRESS (RFC 3489).
    pub const CHANGED_ADDRESS: u16 = 0x0005;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// PASSWORD (RFC 3489).
    pub const PASSWORD: u16 = 0x0007;
    /// MESSAGE-INTEGRITY.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES.
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// REFLECTED-FROM (RFC 3489).
    pub const REFLECTED_FROM: u16 = 0x000B;
    /// CHANNEL-NUMBER.
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    /// LIFETIME.
    pub const LIFETIME: u16 = 0x000D;
    /// MS ALTERNATE-SERVER (plain address).
    pub const MS_ALTERNATE_SERVER: u16 = 0x000E;
    /// MS MAGIC-COOKIE (must be first in MS-TURN messages).
    pub const MAGIC_COOKIE: u16 = 0x000F;
    /// MS BANDWIDTH.
    pub const BANDWIDTH: u16 = 0x0010;
    /// MS DESTINATION-ADDRESS (plain).
    pub const DESTINATION_ADDRESS: u16 = 0x0011;
    /// XOR-PEER-ADDRESS (RFC) / REMOTE-ADDRESS (MS, plain).
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA.
    pub const DATA: u16 = 0x0013;
    /// REALM (RFC) / NONCE (MS).
    pub const REALM: u16 = 0x0014;
    /// NONCE (RFC) / REALM (MS).
    pub const NONCE: u16 = 0x0015;
    /// XOR-RELAYED-ADDRESS.
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-ADDRESS-FAMILY.
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    /// EVEN-PORT.
    pub const EVEN_PORT: u16 = 0x0018;
    /// REQUESTED-TRANSPORT.
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// MESSAGE-INTEGRITY-SHA256.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// USERHASH.
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY.
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE.
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// XOR-RESPONSE-TARGET (draft).
    pub const XOR_RESPONSE_TARGET: u16 = 0x0027;
    /// XOR-REFLECTED-FROM (draft).
    pub const XOR_REFLECTED_FROM: u16 = 0x0028;
    /// CONNECTION-ID (RFC 6062).
    pub const CONNECTION_ID: u16 = 0x002A;
    /// ICMP (RFC 8656).
    pub const ICMP: u16 = 0x8004;
    /// SOFTWARE.
    pub const SOFTWARE: u16 = 0x8022;
    /// ALTERNATE-SERVER.
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    /// MS-VERSION.
    pub const MS_VERSION: u16 = 0x8008;
    /// MS XOR-MAPPED-ADDRESS.
    pub const MS_XOR_MAPPED_ADDRESS: u16 = 0x8020;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED.
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING.
    pub const ICE_CONTROLLING: u16 = 0x802A;
    /// RESPONSE-ORIGIN.
    pub const RESPONSE_ORIGIN: u16 = 0x802B;
    /// OTHER-ADDRESS.
    pub const OTHER_ADDRESS: u16 = 0x802C;
    /// MS-SEQUENCE-NUMBER.
    pub const MS_SEQUENCE_NUMBER: u16 = 0x8050;
    /// CANDIDATE-IDENTIFIER (MS-ICE2).
    pub const CANDIDATE_IDENTIFIER: u16 = 0x8054;
    /// MS-SERVICE-QUALITY.
    pub const MS_SERVICE_QUALITY: u16 = 0x8055;
    /// Bandwidth reservation amount (MS-TURNBWM).
    pub const BANDWIDTH_RESERVATION_AMOUNT: u16 = 0x8058;
    /// MS-IMPLEMENTATION-VERSION.
    pub const MS_IMPLEMENTATION_VERSION: u16 = 0x8070;
    /// MS-Alternate Mapped Address.
    pub const MS_ALTERNATE_MAPPED_ADDRESS: u16 = 0x8090;
    /// Multiplexed TURN session id.
    pub const MS_MULTIPLEXED_SESSION_ID: u16 = 0x8095;
}

/// Attribute name in a dialect.
pub fn attr_name(dialect: Dialect, t: u16) -> &'static str {
    if dialect == Dialect::MsTurn {
        match t {
            0x0012 => return "REMOTE-ADDRESS",
            0x0014 => return "NONCE",
            0x0015 => return "REALM",
            0x0001 => return "MAPPED-ADDRESS",
            _ => {}
        }
    }
    match t {
        0x0001 => "MAPPED-ADDRESS",
        0x0002 => "RESPONSE-ADDRESS",
        0x0003 => "CHANGE-REQUEST",
        0x0004 => "SOURCE-ADDRESS",
        0x0005 => "CHANGED-ADDRESS",
        0x0006 => "USERNAME",
        0x0007 => "PASSWORD",
        0x0008 => "MESSAGE-INTEGRITY",
        0x0009 => "ERROR-CODE",
        0x000A => "UNKNOWN-ATTRIBUTES",
        0x000B => "REFLECTED-FROM",
        0x000C => "CHANNEL-NUMBER",
        0x000D => "LIFETIME",
        0x000E => "MS-ALTERNATE-SERVER",
        0x000F => "MAGIC-COOKIE",
        0x0010 => "BANDWIDTH",
        0x0011 => "DESTINATION-ADDRESS",
        0x0012 => "XOR-PEER-ADDRESS",
        0x0013 => "DATA",
        0x0014 => "REALM",
        0x0015 => "NONCE",
        0x0016 => "XOR-RELAYED-ADDRESS",
        0x0017 => "REQUESTED-ADDRESS-FAMILY",
        0x0018 => "EVEN-PORT",
        0x0019 => "REQUESTED-TRANSPORT",
        0x001A => "DONT-FRAGMENT",
        0x001B => "ACCESS-TOKEN",
        0x001C => "MESSAGE-INTEGRITY-SHA256",
        0x001D => "PASSWORD-ALGORITHM",
        0x001E => "USERHASH",
        0x0020 => "XOR-MAPPED-ADDRESS",
        0x0022 => "RESERVATION-TOKEN",
        0x0024 => "PRIORITY",
        0x0025 => "USE-CANDIDATE",
        0x0026 => "PADDING",
        0x0027 => "XOR-RESPONSE-TARGET",
        0x0028 => "XOR-REFLECTED-FROM",
        0x002A => "CONNECTION-ID",
        0x0030 | 0x8004 => "ICMP",
        0x8000 => "ADDITIONAL-ADDRESS-FAMILY",
        0x8001 => "ADDRESS-ERROR-CODE",
        0x8002 => "PASSWORD-ALGORITHMS",
        0x8003 => "ALTERNATE-DOMAIN",
        0x8006 => "MS-TURN-UNKNOWN-8006",
        0x8008 => "MS-VERSION",
        0x8020 => "MS-XOR-MAPPED-ADDRESS",
        0x8022 => "SOFTWARE",
        0x8023 => "ALTERNATE-SERVER",
        0x8025 => "TRANSACTION-TRANSMIT-COUNTER",
        0x8027 => "CACHE-TIMEOUT",
        0x8028 => "FINGERPRINT",
        0x8029 => "ICE-CONTROLLED",
        0x802A => "ICE-CONTROLLING",
        0x802B => "RESPONSE-ORIGIN",
        0x802C => "OTHER-ADDRESS",
        0x8032 => "MS-ALTERNATE-HOST-NAME",
        0x8037 => "MS-APP-ID",
        0x8039 => "MS-SECURE-TAG",
        0x8050 => "MS-SEQUENCE-NUMBER",
        0x8054 => "CANDIDATE-IDENTIFIER",
        0x8055 => "MS-SERVICE-QUALITY",
        0x8056 => "BANDWIDTH-ADMISSION-CONTROL",
        0x8057 => "BANDWIDTH-RESERVATION-ID",
        0x8058 => "BANDWIDTH-RESERVATION-AMOUNT",
        0x8059 => "REMOTE-SITE-ADDRESS",
        0x805A => "REMOTE-RELAY-SITE-ADDRESS",
        0x805B => "LOCAL-SITE-ADDRESS",
        0x805C => "LOCAL-RELAY-SITE-ADDRESS",
        0x805D => "REMOTE-SITE-ADDRESS-RESPONSE",
        0x805E => "REMOTE-RELAY-SITE-ADDRESS-RESPONSE",
        0x805F => "LOCAL-SITE-ADDRESS-RESPONSE",
        0x8060 => "LOCAL-RELAY-SITE-ADDRESS-RESPONSE",
        0x8061 => "SIP-DIALOG-ID",
        0x8062 => "SIP-CALL-ID",
        0x8068 => "LOCATION-PROFILE",
        0x8070 => "MS-IMPLEMENTATION-VERSION",
        0x8090 => "MS-ALTERNATE-MAPPED-ADDRESS",
        0x8095 => "MULTIPLEXED-TURN-SESSION-ID",
        _ => "UNKNOWN",
    }
}

/// Reason phrase for an error code when the message carries none we can read.
pub fn error_name(code: u16) -> &'static str {
    match code {
        274 => "Disable Candidate",
        275 => "Disable Candidate Pair",
        300 => "Try Alternate",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        434 => "Missing Realm",
        435 => "Missing Nonce",
        436 => "Unknown User",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        446 => "Connection Already Exists",
        447 => "Connection Timeout or Failure",
        486 => "Allocation Quota Reached",
        487 => "Role Conflict",
        500 => "Server Error",
        508 => "Insufficient Capacity",
        600 => "Global Failure",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bits() {
        assert_eq!((method_of(0x0113), Class::of(0x0113)), (3, Class::Error));
        assert_eq!(
            (method_of(0x001C), Class::of(0x001C)),
            (0xC, Class::Indication)
        );
        assert_eq!(
            (method_of(0x010B), Class::of(0x010B)),
            (0xB, Class::Success)
        );
        assert_eq!(method_name(Dialect::MsTurn, 0x0115), "Data");
        assert_eq!(class_in(Dialect::MsTurn, 0x0115), Class::Indication);
        assert_eq!(method_name(Dialect::Rfc5389, 0x0004), "Refresh");
        assert_eq!(method_name(Dialect::MsTurn, 0x0004), "Send");
    }
}
