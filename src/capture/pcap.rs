//! Classic libpcap files: both byte orders, micro- and nanosecond
//! resolution, and Kuznetzov's "modified" variant (24-byte record headers).
//!
//! The file header is decoded with `pcap-parser`.  A record header is four
//! words read here: its lengths must be bounded before anything trusts them
//! (the streaming parsers would otherwise ask for whatever a lying `caplen`
//! says — see pcap-parser issues #29 and #57 on refill loops), and once they
//! are read, the two timestamp words cost less by hand than a second parse.
//! After a damaged record the reader scans for the next offset where two
//! consecutive record headers are plausible, the way `pcapfix` recovers files.

use pcap_parser::pcap::parse_pcap_header;

use super::{
    CaptureError, Damage, Format, RawRecord, ReadStats, Source, Truncation, MAX_PACKET,
    MAX_RESYNC_SCAN,
};

/// LINKTYPE values occupy the low 26 bits; the top bits carry FCS flags
/// (pcap-savefile(5), "LinkType and additional information").
const LINKTYPE_MASK: u32 = 0x03FF_FFFF;

/// True for the six libpcap magic numbers as stored in the first four bytes.
pub(super) fn is_pcap_magic(m: [u8; 4]) -> bool {
    matches!(
        u32::from_le_bytes(m),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0xa1b2_cd34 | 0x34cd_b2a1
    )
}

/// Whether record lengths are stored swapped (Wireshark `libpcap.c`:
/// files older than 2.3 always, 2.3 files sometimes — DG/UX and old libpcap
/// wrote `len` before `caplen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LengthOrder {
    Normal,
    Swapped,
    MaybeSwapped,
}

pub(super) struct PcapState {
    lengths: LengthOrder,
    big_endian: bool,
    nanos: bool,
    modified: bool,
    link_type: u32,
    /// Record data bound: the snapshot length when sane, else [`MAX_PACKET`].
    max_caplen: u32,
    ended: bool,
}

impl PcapState {
    pub(super) fn open(src: &mut Source, stats: &mut ReadStats) -> Result<PcapState, CaptureError> {
        src.fill(24)?;
        let b = src.available();
        if b.len() < 24 {
            return Err(CaptureError::Unsupported(format!(
                "pcap file header cut short ({} of 24 bytes)",
                b.len()
            )));
        }
        let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let (big_endian, modified) = match magic {
            // pcap-parser only knows the little-endian "modified" magic; the
            // swapped one is read here by hand (same layout, other byte order).
            0x34cd_b2a1 => (true, true),
            0xa1b2_cd34 => (false, true),
            0xd4c3_b2a1 | 0x4d3c_b2a1 => (true, false),
            _ => (false, false),
        };
        let nanos = matches!(magic, 0xa1b2_3c4d | 0x4d3c_b2a1);
        let (major, minor, snaplen, network) = if magic == 0x34cd_b2a1 {
            let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
            let be32 = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
            (be16(4), be16(6), be32(16), be32(20))
        } else {
            let (_, h) = parse_pcap_header(&b[..24])
                .map_err(|_| CaptureError::Unsupported("pcap file header not recognised".into()))?;
            (
                h.version_major,
                h.version_minor,
                h.snaplen,
                h.network.0 as u32,
            )
        };
        // libpcap and Wireshark read only major version 2 (1.x files predate
        // the current record header and cannot be told apart reliably).
        if major != 2 {
            return Err(CaptureError::Unsupported(format!(
                "pcap major version {major}.{minor} (only 2.x exists in practice)"
            )));
        }
        src.consume(24);
        // The snapshot length is only a hint: writers store 0, or a smaller
        // value than they then write.  Records are bounded by the standard
        // maximum instead, like Wireshark does.
        let _ = snaplen;
        let max_caplen = MAX_PACKET;
        stats.format = Some(if modified {
            Format::PcapModified
        } else if nanos {
            Format::PcapNs
        } else {
            Format::Pcap
        });
        stats.big_endian = big_endian;
        let lengths = match minor {
            0..=2 => LengthOrder::Swapped,
            3 => LengthOrder::MaybeSwapped,
            _ => LengthOrder::Normal,
        };
        Ok(PcapState {
            lengths,
            big_endian,
            nanos,
            modified,
            link_type: network & LINKTYPE_MASK,
            max_caplen,
            ended: false,
        })
    }

    fn header_len(&self) -> usize {
        if self.modified {
            24
        } else {
            16
        }
    }

    #[inline]
    fn read_u32(&self, b: &[u8], o: usize) -> u32 {
        // one bounds check for the four bytes, not four
        let a: [u8; 4] = b[o..o + 4].try_into().expect("a 4-byte slice");
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// Captured and wire length of the record header at `b[0..]`, unswapped.
    #[inline]
    fn lengths(&self, b: &[u8]) -> (u32, u32) {
        let (a, o) = (self.read_u32(b, 8), self.read_u32(b, 12));
        match self.lengths {
            LengthOrder::Swapped => (o, a),
            LengthOrder::MaybeSwapped if a > o => (o, a),
            _ => (a, o),
        }
    }

    /// What a sequential read checks, like Wireshark: only the captured
    /// length bound (writers do store caplen > origlen, e.g. SLL captures
    /// whose origlen omits the cooked header; odd timestamps are kept).
    /// The error is the bad captured length, made into text by
    /// [`Self::too_long`] only when it is reported: this runs for every
    /// record, and a `String` in its result cost a third of its time.
    #[inline]
    fn acceptable(&self, b: &[u8]) -> Result<(u32, u32), u32> {
        let (caplen, origlen) = self.lengths(b);
        if caplen > self.max_caplen {
            return Err(caplen);
        }
        Ok((caplen, origlen))
    }

    /// Why a record's captured length `caplen` was refused.
    fn too_long(&self, caplen: u32) -> String {
        format!(
            "record claims {caplen} captured bytes, more than the maximum of {}",
            self.max_caplen
        )
    }

    /// The stricter test used when scanning for the next record after damage.
    fn plausible(&self, b: &[u8]) -> Result<(u32, u32), String> {
        let (caplen, origlen) = self.acceptable(b).map_err(|c| self.too_long(c))?;
        let frac = self.read_u32(b, 4);
        let frac_limit = if self.nanos { 1_000_000_000 } else { 1_000_000 };
        if frac >= frac_limit {
            return Err(format!("record timestamp fraction {frac} out of range"));
        }
        if origlen < caplen && origlen != 0 {
            // Some writers put 0 in origlen; caplen > origlen otherwise means garbage.
            return Err(format!(
                "record captured length {caplen} exceeds its wire length {origlen}"
            ));
        }
        Ok((caplen, origlen))
    }

    /// The next record.  A record that is whole in the buffer and whose
    /// length is acceptable (nearly all) is made here, in a few
    /// instructions; the rest (refills, the end, damage) goes to
    /// [`Self::next_slow`].
    #[inline]
    pub(super) fn next(
        &mut self,
        src: &mut Source,
        stats: &mut ReadStats,
    ) -> Result<Option<RawRecord>, CaptureError> {
        let hl = self.header_len();
        let b = src.available();
        if !self.ended && b.len() >= hl {
            if let Ok((caplen, origlen)) = self.acceptable(b) {
                if b.len() - hl >= caplen as usize {
                    return Ok(Some(self.record(b, caplen, origlen)));
                }
            }
        }
        self.next_slow(src, stats)
    }

    /// The record at the start of `b`, whose lengths were read and bounded.
    #[inline]
    fn record(&self, b: &[u8], caplen: u32, origlen: u32) -> RawRecord {
        // The timestamp words by hand, as the lengths: the record header is
        // four words in the file's byte order (the modified format appends
        // 8 bytes we do not read), and pcap-parser's record parser re-read
        // all four and built a record per frame, 24 instructions of the
        // reader's ~700 a frame.
        let (sec, frac) = (self.read_u32(b, 0), self.read_u32(b, 4));
        let ts_ns = sec as i64 * 1_000_000_000
            + if self.nanos {
                frac as i64
            } else {
                frac as i64 * 1000
            };
        let hl = self.header_len();
        RawRecord {
            start: hl,
            len: caplen as usize,
            record_len: hl + caplen as usize,
            orig_len: origlen,
            ts_ns: Some(ts_ns),
            link_type: self.link_type,
            interface: 0,
        }
    }

    #[cold]
    fn next_slow(
        &mut self,
        src: &mut Source,
        stats: &mut ReadStats,
    ) -> Result<Option<RawRecord>, CaptureError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let hl = self.header_len();
            if !src.fill(hl)? {
                let left = src.available().len();
                if left > 0 {
                    stats.truncated = Some(Truncation {
                        offset: src.offset(),
                        after_frame: stats.frames,
                        reason: format!("record header cut short ({left} of {hl} bytes)"),
                    });
                }
                self.ended = true;
                return Ok(None);
            }
            match self.acceptable(src.available()) {
                Ok((caplen, origlen)) => {
                    let total = hl + caplen as usize;
                    if !src.fill(total)? {
                        stats.truncated = Some(Truncation {
                            offset: src.offset(),
                            after_frame: stats.frames,
                            reason: format!(
                                "record data cut short ({} of {} bytes)",
                                src.available().len() - hl,
                                caplen
                            ),
                        });
                        self.ended = true;
                        return Ok(None);
                    }
                    return Ok(Some(self.record(src.available(), caplen, origlen)));
                }
                Err(caplen) => {
                    let reason = self.too_long(caplen);
                    let offset = src.offset();
                    let skipped = self.resync(src)?;
                    stats.record_damage(Damage {
                        offset,
                        after_frame: stats.frames,
                        reason,
                        skipped_bytes: skipped,
                    });
                }
            }
        }
    }

    /// Skips forward to the next offset where a record header and the one
    /// after it look valid; returns the bytes skipped.  Always makes progress.
    fn resync(&mut self, src: &mut Source) -> Result<u64, CaptureError> {
        let hl = self.header_len();
        let mut skipped = 0u64;
        // Always skip at least one byte past the bad header.
        src.consume(1);
        skipped += 1;
        while (skipped as usize) < MAX_RESYNC_SCAN {
            // Enough for a header, a maximal record and the next header would be
            // ideal, but a window of 2 headers + 64 KiB covers real packets.
            let want = hl * 2 + 65_536;
            src.fill(want)?;
            let b = src.available();
            if b.len() < hl {
                // End of input: nothing valid follows.
                let n = b.len();
                src.consume(n);
                self.ended = true;
                return Ok(skipped + n as u64);
            }
            let mut found = None;
            let limit = b.len().saturating_sub(hl) + 1;
            for i in 0..limit {
                let Ok((caplen, _)) = self.plausible(&b[i..]) else {
                    continue;
                };
                let next = i + hl + caplen as usize;
                let accept = if next > b.len() {
                    false // cannot be checked; a real record would have been found first
                } else if next == b.len() || next + hl > b.len() {
                    // ends exactly at the end of input, or only a cut header follows
                    b.len() < want
                } else {
                    self.plausible(&b[next..]).is_ok()
                };
                if accept {
                    found = Some(i);
                    break;
                }
            }
            match found {
                Some(i) => {
                    src.consume(i);
                    return Ok(skipped + i as u64);
                }
                None => {
                    let step = limit.max(1).min(b.len());
                    src.consume(step);
                    skipped += step as u64;
                }
            }
        }
        self.ended = true;
        Ok(skipped)
    }
}
