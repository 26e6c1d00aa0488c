//! TURN ChannelData [RFC 8656 §12.4] and MS multiplexed TURN [MS-TURN §2.2.3].
//!
//! ChannelData: `u16 channel | u16 length | data`, padded to 4 bytes on TCP
//! (MUST, §12.5) and optionally on UDP.  Channel numbers 0x4000–0x7FFF (RFC
//! 5766; RFC 8656 narrowed them to 0x4FFF).  MS multiplexed TURN: channel
//! 0xFF10, `u16 length` (bytes after the length field), an 8-byte session id,
//! then the data.

/// The MS multiplexed TURN channel number.
pub const MS_MULTIPLEXED: u16 = 0xFF10;

/// A ChannelData (or MS multiplexed) frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// Channel number (0xFF10 for MS multiplexed).
    pub channel: u16,
    /// MS multiplexed session id (0xFF10 only).
    pub session: Option<u64>,
    /// The carried bytes.
    pub data: &'a [u8],
    /// Bytes the frame occupies including header and padding.
    pub frame_len: usize,
}

/// True for channel numbers RFC 5766/8656 allow, or the MS multiplexed one.
pub fn valid_channel(c: u16) -> bool {
    (0x4000..=0x7FFF).contains(&c) || c == MS_MULTIPLEXED
}

/// True when a ChannelData frame can start with this byte (the channel
/// number's high byte): stage 1 uses it to skip copying UDP media.
pub fn may_start_with(b: u8) -> bool {
    (0x40..=0x7F).contains(&b) || b == (MS_MULTIPLEXED >> 8) as u8
}

/// Parses a frame at the start of `b`.  `stream` selects TCP rules
/// (padding to 4 required, trailing bytes allowed: the next frame follows);
/// for UDP the datagram must be exactly the frame, with or without padding.
pub fn parse(b: &[u8], stream: bool) -> Option<ChannelData<'_>> {
    if b.len() < 4 {
        return None;
    }
    let channel = u16::from_be_bytes([b[0], b[1]]);
    if !valid_channel(channel) {
        return None;
    }
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    let (session, data_start, data_len) = if channel == MS_MULTIPLEXED {
        if len < 8 || b.len() < 12 {
            return None;
        }
        let s = u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
        (Some(s), 12, len - 8)
    } else {
        (None, 4, len)
    };
    let end = data_start + data_len;
    if end > b.len() {
        return None;
    }
    let padded = end.div_ceil(4) * 4;
    let frame_len = if stream {
        if channel == MS_MULTIPLEXED {
            end // MS pads nothing (PROTOCOLS.md §12: unconfirmed; libnice pads nothing)
        } else {
            padded.min(b.len()).max(end)
        }
    } else if b.len() == end || b.len() == padded {
        b.len()
    } else {
        return None;
    };
    Some(ChannelData {
        channel,
        session,
        data: &b[data_start..end],
        frame_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_channel_starts_with_a_byte_stage_1_keeps() {
        for c in 0..=u16::MAX {
            if valid_channel(c) {
                assert!(may_start_with((c >> 8) as u8), "{c:#06x}");
            }
        }
        // RTP and RTCP (RFC 7983 §7) are not kept
        assert!((128..=191).all(|b| !may_start_with(b)));
    }

    #[test]
    fn udp_with_and_without_padding() {
        let mut d = vec![0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5];
        assert_eq!(parse(&d, false).unwrap().data, &[1, 2, 3, 4, 5]);
        d.extend([0, 0, 0]);
        assert_eq!(parse(&d, false).unwrap().frame_len, 12);
        d.push(0);
        assert!(parse(&d, false).is_none());
    }

    #[test]
    fn tcp_consumes_padding() {
        let d = [0x40, 0x00, 0x00, 0x01, 9, 0, 0, 0, 0x40, 0x00];
        let c = parse(&d, true).unwrap();
        assert_eq!((c.data, c.frame_len), (&[9u8][..], 8));
    }

    #[test]
    fn ms_multiplexed() {
        let mut d = vec![0xFF, 0x10, 0x00, 0x0A];
        d.extend(7u64.to_be_bytes());
        d.extend([0xAA, 0xBB]);
        let c = parse(&d, false).unwrap();
        assert_eq!((c.session, c.data), (Some(7), &[0xAA, 0xBB][..]));
    }

    #[test]
    fn rtp_and_junk_are_not_channel_data() {
        assert!(parse(&[0x80, 0x00, 0x00, 0x00], false).is_none());
        assert!(parse(&[0x40, 0x00, 0x10, 0x00, 1], false).is_none());
    }
}
