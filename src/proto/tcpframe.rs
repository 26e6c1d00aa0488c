//! How STUN-family traffic is framed in one direction of a TCP stream
//! (PROTOCOLS.md §3.2–3.3), recognised per stream and allowed to change
//! mid-stream:
//!
//! - **Plain**: STUN messages and ChannelData (padded to 4) back to back
//!   [RFC 8656 §3.1, §12.5];
//! - **RFC 4571**: a u16 length before every packet (ICE-TCP [RFC 6544 §3],
//!   and the relayed bytes of RFC 6062 data connections);
//! - **MS-TURN**: `02|03 00 LEN(2)` before every control message (02) or
//!   end-to-end data (03) [MS-TURN §2.1.4];
//! - **MS pseudo-TLS**: the fixed 50-byte fake ClientHello and 83-byte
//!   ServerHello+ServerHelloDone that may open an A/V Edge connection on 443
//!   [MS-TURN §2.1.1; byte layout from libnice `socket/pseudossl.c`]; it is not
//!   real TLS and MS-TURN framing follows it;
//! - real TLS (`16 03 0x`): not ours, the framer stops.
//!
//! After unrecognised bytes the framer resynchronises by scanning for a valid
//! header, and reports how many bytes it skipped.

use super::channel::{self, ChannelData};
use super::stun::{self, MAGIC_COOKIE};
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// Framing of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// STUN and ChannelData back to back.
    Plain,
    /// RFC 4571 length-prefixed.
    Rfc4571,
    /// MS-TURN 4-byte framing.
    MsTurn,
    /// MS pseudo-TLS handshake.
    PseudoTls,
}

impl Framing {
    /// Short name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Plain => "tcp",
            Framing::Rfc4571 => "rfc4571",
            Framing::MsTurn => "ms-turn",
            Framing::PseudoTls => "pseudo-tls",
        }
    }
}

/// One unit taken off the front of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit<'a> {
    /// Exactly one STUN/TURN message.
    Stun(&'a [u8]),
    /// A ChannelData frame.
    Channel(ChannelData<'a>),
    /// RFC 4571 frame that is not STUN (RTP, RTCP…), or MS end-to-end data.
    Data(&'a [u8]),
    /// MS pseudo-TLS ClientHello (true) or ServerHello+Done (false).
    PseudoTls(bool),
    /// Real TLS: this stream is not STUN-framed.
    Tls,
    /// Bytes skipped while resynchronising.
    Skipped(usize),
}

/// Per-direction framing state.
#[derive(Debug, Clone, Default)]
pub struct Framer {
    mode: Option<Framing>,
    /// After RFC 6062 ConnectionBind success: the bytes are the peer's, any framing.
    relay_data: bool,
    stopped: bool,
}

const PSEUDO_CLIENT_LEN: usize = 50;
const PSEUDO_SERVER_LEN: usize = 83;

/// True when `b` starts with MS pseudo-TLS's fixed fake ClientHello (MS-TURN §2.1.1).
pub fn is_pseudo_client(b: &[u8]) -> bool {
    b.len() >= PSEUDO_CLIENT_LEN
        && b[..11]
            == [
                0x16, 0x03, 0x01, 0x00, 0x2d, 0x01, 0x00, 0x00, 0x29, 0x03, 0x01,
            ]
        && b[43..50] == [0x00, 0x00, 0x02, 0x00, 0x18, 0x01, 0x00]
}

fn is_pseudo_server(b: &[u8]) -> bool {
    b.len() >= PSEUDO_SERVER_LEN
        && b[..11]
            == [
                0x16, 0x03, 0x01, 0x00, 0x4e, 0x02, 0x00, 0x00, 0x46, 0x03, 0x01,
            ]
        && b[43] == 0x20
        && b[76..83] == [0x00, 0x18, 0x00, 0x0e, 0x00, 0x00, 0x00]
}

/// Result of looking at the front of the buffer in one framing.
enum Try<'a> {
    Unit(Unit<'a>, usize),
    NeedMore,
    No,
}

impl Framer {
    /// Current framing, if recognised.
    pub fn mode(&self) -> Option<Framing> {
        self.mode
    }

    /// True once real TLS was seen.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// RFC 6062: after ConnectionBind succeeds, the connection carries the
    /// peer's bytes; framing is detected anew (ICE-TCP uses RFC 4571).
    pub fn switch_to_relay_data(&mut self) {
        self.relay_data = true;
        self.mode = None;
    }

    /// True after [`Framer::switch_to_relay_data`].
    pub fn is_relay_data(&self) -> bool {
        self.relay_data
    }

    /// Takes the next unit off `b`; returns it and the bytes it used, or
    /// `None` when more bytes are needed (`at_end`: no more will come, so
    /// leftovers are reported as skipped).
    pub fn next<'a>(&mut self, b: &'a [u8], at_end: bool) -> Option<(Unit<'a>, usize)> {
        if b.is_empty() {
            return None;
        }
        if self.stopped {
            return Some((Unit::Skipped(b.len()), b.len()));
        }
        if let Some(m) = self.mode {
            match self.try_mode(m, b) {
                Try::Unit(u, n) => return Some((u, n)),
                Try::NeedMore if !at_end => return None,
                _ => self.mode = None,
            }
        }
        // Detection order of PROTOCOLS.md §3.3.
        let mut need_more = false;
        for m in [
            Framing::PseudoTls,
            Framing::MsTurn,
            Framing::Plain,
            Framing::Rfc4571,
        ] {
            match self.try_mode(m, b) {
                Try::Unit(Unit::Tls, n) => {
                    self.stopped = true;
                    return Some((Unit::Tls, n));
                }
                Try::Unit(u, n) => {
                    self.mode = Some(match u {
                        Unit::PseudoTls(_) => Framing::MsTurn,
                        _ => m,
                    });
                    return Some((u, n));
                }
                Try::NeedMore => need_more = true,
                Try::No => {}
            }
        }
        if need_more && !at_end && b.len() < 64 {
            return None;
        }
        if self.relay_data && !need_more {
            // relayed application bytes with no framing we know: pass them on as data
            return Some((Unit::Data(b), b.len()));
        }
        let skip = self.resync(b);
        if skip == b.len() && !at_end {
            // keep the tail: a header may be split across deliveries
            let keep = b.len().min(64);
            let n = b.len() - keep;
            return if n == 0 {
                None
            } else {
                Some((Unit::Skipped(n), n))
            };
        }
        Some((Unit::Skipped(skip), skip))
    }

    /// Resynchronises: the next offset (from 1) where some framing starts
    /// a STUN message, or `b.len()`.  Each framing resync accepts has the
    /// magic cookie at a fixed offset (plain STUN 4, RFC 4571 6, MS-TURN 8)
    /// or MS-TURN's marker at 24, so only the offsets those put in reach are
    /// tried, in increasing order, found with `memmem`: a text stream (SIP
    /// on TCP, which the finder reads up to
    /// [`crate::analyze::Recognition::GIVE_UP_AFTER`] bytes of before giving
    /// up) then costs a byte search instead of three framings per offset.
    /// The next cookie and marker are searched for again only once the
    /// offset has passed them, so `b` is searched once in all, however many
    /// cookies it holds.
    fn resync(&self, b: &[u8]) -> usize {
        self.resync_searching(b).0
    }

    /// [`Self::resync`], and the bytes its searches went over (for the test
    /// that it goes over `b` about once, not once per candidate).
    fn resync_searching(&self, b: &[u8]) -> (usize, usize) {
        // built once: a searcher's set-up (~310 instructions each) cost
        // more than many of the searches it ran
        static COOKIE: [u8; 4] = MAGIC_COOKIE.to_be_bytes();
        static COOKIES: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(&COOKIE));
        static MARKERS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(&MS_MARKER));
        let (cookies, markers) = (&*COOKIES, &*MARKERS);
        let searched = std::cell::Cell::new(0usize);
        let next = |f: &Finder<'_>, from: usize| {
            let rest = b.get(from..)?;
            let found = f.find(rest);
            let upto = found.map_or(rest.len(), |p| p + f.needle().len());
            searched.set(searched.get() + upto);
            found.map(|p| from + p)
        };
        let mut lo = 1;
        let mut cookie_at = next(cookies, lo + 4);
        let mut marker_at = next(markers, lo + 24);
        loop {
            if cookie_at.is_some_and(|q| q < lo + 4) {
                cookie_at = next(cookies, lo + 4);
            }
            if marker_at.is_some_and(|r| r < lo + 24) {
                marker_at = next(markers, lo + 24);
            }
            // the lowest offset from `lo` on that one of them puts in reach
            let by_cookie = cookie_at.map(|q| {
                [8, 6, 4]
                    .into_iter()
                    .filter_map(|d| q.checked_sub(d))
                    .find(|&i| i >= lo)
                    .unwrap_or(q - 4)
            });
            let by_marker = marker_at.map(|r| r - 24);
            let candidate = match (by_cookie, by_marker) {
                (Some(c), Some(m)) => Some(c.min(m)),
                (c, m) => c.or(m),
            };
            let Some(i) = candidate else {
                return (b.len(), searched.get());
            };
            let starts = [Framing::MsTurn, Framing::Plain, Framing::Rfc4571]
                .iter()
                .any(|&m| matches!(self.try_mode(m, &b[i..]), Try::Unit(Unit::Stun(_), _)));
            if starts {
                return (i, searched.get());
            }
            lo = i + 1;
        }
    }

    fn try_mode<'a>(&self, m: Framing, b: &'a [u8]) -> Try<'a> {
        match m {
            Framing::PseudoTls => {
                if b.len() < 3 || b[0] != 0x16 || b[1] != 0x03 {
                    return Try::No;
                }
                if b.len() < 5 {
                    return Try::NeedMore;
                }
                let rec_len = u16::from_be_bytes([b[3], b[4]]);
                if b[2] <= 0x04 && rec_len != 0x2d && rec_len != 0x4e {
                    return Try::Unit(Unit::Tls, 0); // a real TLS record
                }
                if b.len() < PSEUDO_CLIENT_LEN {
                    return Try::NeedMore;
                }
                if is_pseudo_client(b) {
                    return Try::Unit(Unit::PseudoTls(true), PSEUDO_CLIENT_LEN);
                }
                if b.len() < PSEUDO_SERVER_LEN && b[5] == 0x02 {
                    return Try::NeedMore;
                }
                if is_pseudo_server(b) {
                    return Try::Unit(Unit::PseudoTls(false), PSEUDO_SERVER_LEN);
                }
                if b[2] <= 0x04 {
                    Try::Unit(Unit::Tls, 0)
                } else {
                    Try::No
                }
            }
            Framing::MsTurn => {
                if b.len() < 4 || !(b[0] == 0x02 || b[0] == 0x03) || b[1] != 0 {
                    return Try::No;
                }
                let len = u16::from_be_bytes([b[2], b[3]]) as usize;
                if b[0] == 0x02 {
                    if b.len() < 12 {
                        return Try::NeedMore;
                    }
                    let inner = &b[4..];
                    let cookie = inner[4..8] == MAGIC_COOKIE.to_be_bytes();
                    let ms_magic = inner.len() >= 28 && inner[20..28] == MS_MARKER;
                    let stun_len = u16::from_be_bytes([inner[2], inner[3]]) as usize;
                    if inner[0] & 0xC0 != 0 || len != 20 + stun_len {
                        return Try::No;
                    }
                    if !cookie && !ms_magic {
                        if inner.len() < 28 {
                            return Try::NeedMore;
                        }
                        return Try::No;
                    }
                    if b.len() < 4 + len {
                        return Try::NeedMore;
                    }
                    Try::Unit(Unit::Stun(&b[4..4 + len]), 4 + len)
                } else {
                    // end-to-end data: only inside an established MS-TURN stream
                    if self.mode != Some(Framing::MsTurn) {
                        return Try::No;
                    }
                    if b.len() < 4 + len {
                        return Try::NeedMore;
                    }
                    Try::Unit(Unit::Data(&b[4..4 + len]), 4 + len)
                }
            }
            Framing::Plain => {
                if b.len() < 4 {
                    return Try::NeedMore;
                }
                if b[0] & 0xC0 == 0 {
                    let Some(h) = stun::header(b) else {
                        return Try::NeedMore; // fewer than 20 bytes (the top bits are 00)
                    };
                    if !h.cookie || h.length % 4 != 0 {
                        return Try::No;
                    }
                    if b.len() < h.total() {
                        return Try::NeedMore;
                    }
                    Try::Unit(Unit::Stun(&b[..h.total()]), h.total())
                } else if b[0] & 0xC0 == 0x40 && self.mode == Some(Framing::Plain) {
                    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
                    if b.len() < 4 + len {
                        return Try::NeedMore;
                    }
                    match channel::parse(b, true) {
                        Some(c) => Try::Unit(Unit::Channel(c), c.frame_len),
                        None => Try::No,
                    }
                } else {
                    Try::No
                }
            }
            Framing::Rfc4571 => {
                if b.len() < 2 {
                    return Try::NeedMore;
                }
                let len = u16::from_be_bytes([b[0], b[1]]) as usize;
                if len == 0 {
                    return Try::No;
                }
                let established = self.mode == Some(Framing::Rfc4571);
                if !established {
                    // only a STUN message with its cookie can start RFC 4571 framing
                    if b.len() < 10 {
                        return Try::NeedMore;
                    }
                    let stun_len = u16::from_be_bytes([b[4], b[5]]) as usize;
                    if b[2] & 0xC0 != 0
                        || b[6..10] != MAGIC_COOKIE.to_be_bytes()
                        || len != 20 + stun_len
                    {
                        return Try::No;
                    }
                }
                if b.len() < 2 + len {
                    return Try::NeedMore;
                }
                let inner = &b[2..2 + len];
                match stun::header(inner) {
                    Some(h) if h.cookie && h.total() == len => {
                        Try::Unit(Unit::Stun(inner), 2 + len)
                    }
                    _ => Try::Unit(Unit::Data(inner), 2 + len),
                }
            }
        }
    }
}

/// MS-TURN's marker attribute (type 0x000F, length 4, value 0x72C64BC6:
/// MAGIC-COOKIE of [MS-TURN] 2.2.2.8) as the first attribute of a message
/// without the RFC 5389 cookie.
const MS_MARKER: [u8; 8] = [0x00, 0x0F, 0x00, 0x04, 0x72, 0xC6, 0x4B, 0xC6];

#[cfg(test)]
mod tests {
    use super::*;

    /// Resynchronisation finds the offset trying every framing at every
    /// offset finds, on text with STUN messages of each framing, cut-off
    /// ones and stray cookies planted at random offsets (seeded,
    /// reproducible).
    #[test]
    fn resync_finds_what_trying_every_offset_finds() {
        let brute = |f: &Framer, b: &[u8]| {
            (1..b.len())
                .find(|&i| {
                    [Framing::MsTurn, Framing::Plain, Framing::Rfc4571]
                        .iter()
                        .any(|&m| matches!(f.try_mode(m, &b[i..]), Try::Unit(Unit::Stun(_), _)))
                })
                .unwrap_or(b.len())
        };
        let plain = binding(8);
        let mut rfc4571 = (plain.len() as u16).to_be_bytes().to_vec();
        rfc4571.extend(&plain);
        let mut ms = vec![0x02, 0x00];
        let mut inner = vec![0x00, 0x01, 0x00, 0x08, 1, 2, 3, 4];
        inner.extend([9u8; 12]);
        inner.extend(MS_MARKER);
        ms.extend((inner.len() as u16).to_be_bytes());
        ms.extend(&inner);
        let cookie = MAGIC_COOKIE.to_be_bytes().to_vec();
        let pieces = [plain, rfc4571, ms, cookie, MS_MARKER.to_vec()];
        let mut seed = 0x2545_f491_u64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut found = 0;
        for _ in 0..2_000 {
            let mut b = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n".repeat(1 + rnd(3));
            for _ in 0..rnd(3) {
                let p = &pieces[rnd(pieces.len())];
                let cut = if rnd(4) == 0 { rnd(p.len()) } else { p.len() };
                let at = rnd(b.len());
                b.splice(at..at, p[..cut].iter().copied());
            }
            for mode in [
                None,
                Some(Framing::Plain),
                Some(Framing::Rfc4571),
                Some(Framing::MsTurn),
            ] {
                let f = Framer {
                    mode,
                    ..Framer::default()
                };
                let want = brute(&f, &b);
                assert_eq!(f.resync(&b), want, "{b:?}");
                found += usize::from(want < b.len());
            }
        }
        assert!(found > 1_000, "the inputs hold STUN to find ({found})");
    }

    fn binding(len_attrs: usize) -> Vec<u8> {
        let mut v = vec![0x00, 0x01, 0x00, len_attrs as u8, 0x21, 0x12, 0xA4, 0x42];
        v.extend([7u8; 12]);
        v.extend(vec![0u8; len_attrs]);
        v
    }

    fn drain(f: &mut Framer, b: &[u8]) -> Vec<String> {
        let mut out = vec![];
        let mut pos = 0;
        while let Some((u, n)) = f.next(&b[pos..], true) {
            out.push(format!("{u:?}").split('(').next().unwrap().to_string());
            pos += n;
            if n == 0 {
                break;
            }
        }
        out
    }

    #[test]
    fn plain_stun_and_channel_data_back_to_back() {
        let mut b = binding(0);
        b.extend([0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0]); // ChannelData padded
        b.extend(binding(4));
        let mut f = Framer::default();
        assert_eq!(drain(&mut f, &b), ["Stun", "Channel", "Stun"]);
        assert_eq!(f.mode(), Some(Framing::Plain));
    }

    #[test]
    fn rfc4571_stun_then_rtp() {
        let s = binding(0);
        let mut b = vec![0, s.len() as u8];
        b.extend(&s);
        b.extend([0, 4, 0x80, 0x00, 0x12, 0x34]);
        let mut f = Framer::default();
        assert_eq!(drain(&mut f, &b), ["Stun", "Data"]);
        assert_eq!(f.mode(), Some(Framing::Rfc4571));
    }

    /// The Cisco TAC hex dump quoted in DOMAIN.md story 6: an SfB check on
    /// an RFC 6062 data connection starts `00 6c 00 01` — length 0x6C, then
    /// a Binding request.
    #[test]
    fn cisco_tac_rfc4571_check() {
        let mut b = vec![0x00, 0x6C];
        let mut s = vec![0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xA4, 0x42];
        s.extend([0xAB; 12]);
        s.extend(vec![0u8; 0x58]);
        b.extend(&s);
        assert_eq!(b.len(), 2 + 0x6C);
        let mut f = Framer::default();
        f.switch_to_relay_data();
        let (u, n) = f.next(&b, false).unwrap();
        assert_eq!(n, b.len());
        assert!(matches!(u, Unit::Stun(m) if m.len() == 0x6C));
    }

    #[test]
    fn ms_turn_framing_after_pseudo_tls() {
        let mut client = vec![
            0x16, 0x03, 0x01, 0x00, 0x2d, 0x01, 0x00, 0x00, 0x29, 0x03, 0x01,
        ];
        client.extend([0x55; 32]);
        client.extend([0x00, 0x00, 0x02, 0x00, 0x18, 0x01, 0x00]);
        assert_eq!(client.len(), 50);
        // MS-TURN Allocate: MAGIC-COOKIE attribute first
        let mut stun = vec![0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42];
        stun.extend([1u8; 12]);
        stun.extend([0x00, 0x0F, 0x00, 0x04, 0x72, 0xC6, 0x4B, 0xC6]);
        let mut b = client.clone();
        b.extend([0x02, 0x00, 0x00, stun.len() as u8]);
        b.extend(&stun);
        b.extend([0x03, 0x00, 0x00, 0x02, 0xEE, 0xFF]);
        let mut f = Framer::default();
        assert_eq!(drain(&mut f, &b), ["PseudoTls", "Stun", "Data"]);
        assert_eq!(f.mode(), Some(Framing::MsTurn));
    }

    /// PROTOCOLS.md §3.2 D: the 83-byte pseudo ServerHello + ServerHelloDone
    /// (cipher 0x0018, 32-byte session id) in one record, then MS framing.
    #[test]
    fn pseudo_tls_server_reply_then_ms_framing() {
        let mut server = vec![
            0x16, 0x03, 0x01, 0x00, 0x4e, 0x02, 0x00, 0x00, 0x46, 0x03, 0x01,
        ];
        server.extend([0x11; 32]);
        server.push(0x20);
        server.extend([0x22; 32]);
        server.extend([0x00, 0x18, 0x00, 0x0e, 0x00, 0x00, 0x00]);
        assert_eq!(server.len(), 83);
        let mut stun = vec![0x01, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42];
        stun.extend([3u8; 12]);
        stun.extend([0x00, 0x0F, 0x00, 0x04, 0x72, 0xC6, 0x4B, 0xC6]);
        let mut b = server;
        b.extend([0x02, 0x00, 0x00, stun.len() as u8]);
        b.extend(&stun);
        let mut f = Framer::default();
        assert_eq!(drain(&mut f, &b), ["PseudoTls", "Stun"]);
        assert!(!f.stopped(), "pseudo-TLS is not real TLS");
    }

    #[test]
    fn real_tls_stops_the_framer() {
        let b = [
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        let mut f = Framer::default();
        assert_eq!(drain(&mut f, &b)[0], "Tls");
        assert!(f.stopped());
    }

    #[test]
    fn junk_then_stun_resynchronises() {
        let mut b = b"RSP/1.0 CLI_STUN_FIREWALLCHECK".to_vec();
        b.extend(binding(0));
        let mut f = Framer::default();
        assert_eq!(drain(&mut f, &b), ["Skipped", "Stun"]);
    }

    #[test]
    fn split_deliveries_wait_for_more() {
        let s = binding(8);
        let mut f = Framer::default();
        assert!(f.next(&s[..10], false).is_none());
        assert!(matches!(f.next(&s, false), Some((Unit::Stun(_), 28))));
    }

    /// A buffer of cookies and nothing else (no candidate starts a
    /// message) is searched about once: a search per candidate went over
    /// the rest of the buffer for a marker each time, quadratic in its size
    /// (resynchronisation gets up to a flushed out-of-order run, 256 KiB).
    #[test]
    fn resync_searches_a_buffer_of_cookies_once() {
        let b = MAGIC_COOKIE.to_be_bytes().repeat(16 * 1024);
        let (skip, searched) = Framer::default().resync_searching(&b);
        assert_eq!(skip, b.len());
        // each search counts up to the end of the cookie it found, so
        // back-to-back cookies are counted about three times (180,188 bytes
        // for these 65,536); a search per candidate: billions
        assert!(
            searched <= 4 * b.len(),
            "{searched} bytes searched in {}",
            b.len()
        );
    }
}
