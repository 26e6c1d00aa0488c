//! Capture reading: pcap and pcapng files (gzipped or not, or stdin) turned
//! into a stream of [`Frame`]s numbered exactly like Wireshark's `frame.number`.
//!
//! The reader never trusts a length field it has not bounded, never stops on
//! a damaged record when the format lets it resynchronise, and records every
//! skip in [`ReadStats`] so that the report can say what was lost and why.
//! Record syntax comes from `pcap-parser`; this module adds the bounds,
//! resynchronisation, time arithmetic and the few things the crate lacks
//! (see `pcapng.rs`).

mod pcap;
mod pcapng;
pub mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;

use serde::Serialize;

pub use source::{Compression, Source};

/// Largest packet record accepted: Wireshark's `WTAP_MAX_PACKET_SIZE_STANDARD`.
/// A record that claims more is treated as damage, never allocated.
pub const MAX_PACKET: u32 = 262_144;

/// Largest pcapng block accepted (Wireshark's limit for any block is 16 MiB).
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;

/// How far the reader scans for the next valid record after damage.
pub const MAX_RESYNC_SCAN: usize = 64 * 1024 * 1024;

/// Timestamps are kept within ±(2^62 − 1) ns of the epoch (the years 1824 to
/// 2116): a pcapng resolution or `if_tsoffset` can place a packet anywhere in
/// the i64 range, and the analyzers subtract and add times (gaps, lifetimes,
/// windows), which then could not overflow.  Real captures are never near.
pub const MAX_ABS_TS_NS: i64 = (1 << 62) - 1;

/// One captured packet as stored in the file.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Wireshark's `frame.number`: 1-based, in file order.
    pub number: u64,
    /// Capture time in nanoseconds since the Unix epoch (timezone fields ignored, as Wireshark does),
    /// within ±[`MAX_ABS_TS_NS`].
    pub ts_ns: i64,
    /// LINKTYPE_* value of the interface that captured it (upper flag bits removed).
    pub link_type: u32,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// Length of the packet on the wire (`frame.len`).
    pub orig_len: u32,
    /// The captured bytes (`frame.cap_len` of them); shorter than `orig_len` when snaplen cut it.
    pub data: &'a [u8],
}

/// Frame facts that travel with a decoded packet (the bytes stay behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Wireshark's `frame.number`.
    pub number: u64,
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// Wire length (`frame.len`).
    pub orig_len: u32,
    /// Captured length.
    pub cap_len: u32,
}

/// Which container the capture uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Classic libpcap, microsecond timestamps.
    Pcap,
    /// Classic libpcap, nanosecond timestamps (magic a1b23c4d).
    PcapNs,
    /// Kuznetzov's "modified" libpcap (magic a1b2cd34, 24-byte record headers).
    PcapModified,
    /// pcapng (any number of sections and interfaces).
    Pcapng,
}

impl Format {
    /// Short name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNs => "pcap-ns",
            Format::PcapModified => "pcap-modified",
            Format::Pcapng => "pcapng",
        }
    }
}

/// Why a record or a stretch of bytes was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Damage {
    /// Byte offset (in the decompressed capture) where the bad record starts.
    pub offset: u64,
    /// Frame number of the last good frame before it (0 if none).
    pub after_frame: u64,
    /// What was wrong, in words.
    pub reason: String,
    /// Bytes skipped to reach the next valid record (or the end).
    pub skipped_bytes: u64,
}

/// Where and why the capture ended early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Truncation {
    /// Offset of the incomplete record.
    pub offset: u64,
    /// Frame number of the last complete frame.
    pub after_frame: u64,
    /// What was missing.
    pub reason: String,
}

/// Everything the reader learned about the file itself.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    /// Container format (set once the header is read).
    pub format: Option<Format>,
    /// Byte order of the (first) header.
    pub big_endian: bool,
    /// gzip or not.
    pub compressed: bool,
    /// Frames read.
    pub frames: u64,
    /// Sum of wire lengths (`frame.len`).
    pub wire_bytes: u64,
    /// Sum of captured lengths.
    pub captured_bytes: u64,
    /// Frames cut by the snapshot length (captured < wire length): normal, decoded as far as they go.
    pub snaplen_cut: u64,
    /// Frames per link type (a short list: captures have one or a few).
    link_type_counts: Vec<(u32, u64)>,
    /// First and last timestamp (file order), ns since epoch.
    pub first_ts: Option<i64>,
    /// Last timestamp seen.
    pub last_ts: Option<i64>,
    /// pcapng sections and interfaces seen.
    pub sections: u32,
    /// pcapng interfaces seen (all sections).
    pub interfaces: u32,
    /// Damaged records skipped (the first [`MAX_DAMAGE_LIST`] are listed).
    pub damage: Vec<Damage>,
    /// Total damaged records, including those not listed.
    pub damage_count: u64,
    /// Set when the file ends inside a record.
    pub truncated: Option<Truncation>,
}

/// How many damage entries are kept verbatim.
pub const MAX_DAMAGE_LIST: usize = 32;

impl ReadStats {
    fn record_damage(&mut self, d: Damage) {
        self.damage_count += 1;
        if self.damage.len() < MAX_DAMAGE_LIST {
            self.damage.push(d);
        }
    }

    /// Frames per link type, by link type.
    pub fn link_types(&self) -> BTreeMap<u32, u64> {
        self.link_type_counts.iter().copied().collect()
    }

    /// True when anything was lost (truncation or damaged records): exit code 3.
    pub fn is_damaged(&self) -> bool {
        self.truncated.is_some() || self.damage_count > 0
    }
}

/// Errors that stop reading before any frame could be produced, or I/O failures.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The operating system refused or failed a read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The first bytes are not a capture format we read.
    #[error("not a pcap or pcapng capture: {found}")]
    NotACapture {
        /// A description of what the first bytes look like.
        found: String,
    },
    /// A recognised container in a version or variant we cannot read.
    #[error("unsupported capture: {0}")]
    Unsupported(String),
}

enum Kind {
    Pcap(pcap::PcapState),
    Pcapng(pcapng::NgState),
    /// Empty input: zero frames, reported as an error by `open`.
    Done,
}

/// Streaming reader over a capture: call [`CaptureReader::next_frame`] until `None`.
pub struct CaptureReader {
    source: Source,
    kind: Kind,
    stats: ReadStats,
    /// Timestamp of the previous frame (for pcapng Simple Packet Blocks, which have none).
    last_ts: i64,
    /// Length of the record the last [`Frame`] borrowed, consumed when the
    /// next one is asked for.
    pending_consume: usize,
}

impl CaptureReader {
    /// Opens a capture file, or stdin for `-`.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        let source = Source::open(path)?;
        CaptureReader::new(source)
    }

    /// Reads the file header from `source` and prepares to stream frames.
    pub fn new(mut source: Source) -> Result<CaptureReader, CaptureError> {
        let mut stats = ReadStats {
            compressed: source.compression == Compression::Gzip,
            ..Default::default()
        };
        source.fill(4)?;
        let head = source.available();
        if head.len() < 4 {
            return Err(CaptureError::NotACapture {
                found: if head.is_empty() {
                    "the file is empty".to_string()
                } else {
                    format!("only {} byte(s)", head.len())
                },
            });
        }
        let magic = [head[0], head[1], head[2], head[3]];
        let kind = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                let st = pcapng::NgState::open(&mut source, &mut stats)?;
                Kind::Pcapng(st)
            }
            _ if pcap::is_pcap_magic(magic) => {
                let st = pcap::PcapState::open(&mut source, &mut stats)?;
                Kind::Pcap(st)
            }
            _ => {
                source.fill(64)?;
                return Err(CaptureError::NotACapture {
                    found: describe_unknown(source.available()),
                });
            }
        };
        Ok(CaptureReader {
            source,
            kind,
            stats,
            last_ts: 0,
            pending_consume: 0,
        })
    }

    /// The next frame, or `None` at the end of the capture (also after
    /// truncation: see [`ReadStats::truncated`]).  Only I/O errors are returned
    /// as errors; damaged records are skipped and recorded.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        // the record handed out last is let go only now: its bytes were borrowed
        self.source
            .consume(std::mem::take(&mut self.pending_consume));
        let raw = match &mut self.kind {
            Kind::Pcap(st) => st.next(&mut self.source, &mut self.stats)?,
            Kind::Pcapng(st) => st.next(&mut self.source, &mut self.stats)?,
            Kind::Done => None,
        };
        let Some(raw) = raw else {
            self.kind = Kind::Done;
            return Ok(None);
        };
        let ts_ns = raw
            .ts_ns
            .unwrap_or(self.last_ts)
            .clamp(-MAX_ABS_TS_NS, MAX_ABS_TS_NS);
        self.last_ts = ts_ns;
        let s = &mut self.stats;
        s.frames += 1;
        s.wire_bytes += raw.orig_len as u64;
        s.captured_bytes += raw.len as u64;
        if raw.len < raw.orig_len as usize {
            s.snaplen_cut += 1;
        }
        match s
            .link_type_counts
            .iter_mut()
            .find(|(lt, _)| *lt == raw.link_type)
        {
            Some((_, n)) => *n += 1,
            None => s.link_type_counts.push((raw.link_type, 1)),
        }
        if s.first_ts.is_none() {
            s.first_ts = Some(ts_ns);
        }
        s.last_ts = Some(ts_ns);
        let number = s.frames;
        let avail = self.source.available();
        let data = &avail[raw.start..raw.start + raw.len];
        // The record is consumed lazily: the bytes stay valid until the next call.
        let frame = Frame {
            number,
            ts_ns,
            link_type: raw.link_type,
            interface: raw.interface,
            orig_len: raw.orig_len,
            data,
        };
        self.pending_consume = raw.record_len;
        Ok(Some(frame))
    }

    /// What has been read so far; complete once `next_frame` returned `None`.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Bytes of the input consumed as stored (for progress display).
    pub fn position(&self) -> u64 {
        self.source.raw_position()
    }

    /// Size of the input file, when known.
    pub fn input_len(&self) -> Option<u64> {
        self.source.input_len
    }
}

/// A record located by a format reader: where its data sits in `available()`.
struct RawRecord {
    /// Offset of the packet data inside `available()`.
    start: usize,
    /// Captured length.
    len: usize,
    /// Total record length to consume before the next record.
    record_len: usize,
    orig_len: u32,
    ts_ns: Option<i64>,
    link_type: u32,
    interface: u32,
}

/// Describes unknown leading bytes so the user learns what the file is.
fn describe_unknown(b: &[u8]) -> String {
    let hex: String = b
        .iter()
        .take(8)
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    let what = if b.starts_with(b"snoop\0\0\0") {
        "a Solaris snoop capture; open it in Wireshark and save it as pcapng"
    } else if b.starts_with(b"\xd4\xc3\xb2\xa1") || b.starts_with(b"\xa1\xb2\xc3\xd4") {
        "a pcap header"
    } else if b.starts_with(b"XCP\0") {
        "a NetMon/NetXray capture; save it as pcapng in Wireshark"
    } else if b.starts_with(b"GMBU") {
        "a Microsoft Network Monitor capture; save it as pcapng in Wireshark"
    } else if b.starts_with(b"PK\x03\x04") {
        "a zip archive; unzip it first"
    } else if b.starts_with(b"ETL") || b.get(..4) == Some(&[0x00, 0x00, 0x02, 0x00]) {
        "possibly an ETL trace; convert it with etl2pcapng"
    } else if !b.is_empty()
        && b.iter()
            .take(64)
            .all(|&c| c == b'\n' || c == b'\r' || c == b'\t' || (0x20..0x7f).contains(&c))
    {
        "text"
    } else {
        "unknown data"
    };
    format!("{what} (first bytes {hex})")
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "offset {} (after frame {}): {}; {} bytes skipped",
            self.offset, self.after_frame, self.reason, self.skipped_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_not_a_capture() {
        let err = CaptureReader::new(Source::from_bytes(b"hello world, this is text\n".to_vec()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("text"), "{err}");
    }

    #[test]
    fn snoop_is_named() {
        let mut b = b"snoop\0\0\0".to_vec();
        b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 4]);
        let err = CaptureReader::new(Source::from_bytes(b)).err().unwrap();
        assert!(err.to_string().contains("snoop"), "{err}");
    }

    #[test]
    fn empty_input_is_a_clear_error() {
        let err = CaptureReader::new(Source::from_bytes(vec![]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
