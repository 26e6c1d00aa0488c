//! Where capture bytes come from: a file or standard input, read into a
//! buffer, through a gzip decoder when the bytes start with gzip's magic.
//!
//! Record parsers work on `available()` — the not-yet-consumed bytes — and ask
//! for more with [`Source::fill`].  The buffer grows only up to what one valid
//! record needs, which the record parsers bound *before* asking (never from an
//! untrusted length).
//!
//! Files are read with `read(2)` into a buffer of 256 KiB, not mapped.
//! Until session 13 a plain file was memory-mapped so that no byte was
//! copied, but the copy is the cheap part: the kernel moves page-cache bytes
//! into the buffer as one sequential stream (what `cat` does, 0.07 s per GiB
//! on the project machine), and the buffer is small enough to stay in the
//! core's L2 cache while the record parser and the decoder read it.  Through
//! the map, every record's first touch was a cache and TLB miss on a page the
//! reader had never seen, plus a page fault every 16 pages: on the 1 GiB bench
//! capture the load of each record header's length was 19 % of all CPU
//! samples of a report and the copy of payloads out of the map another 11 %
//! (perf, AMD EPYC host).  docs/performance.md has the measurements.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

/// Size of the read buffer: large enough that a `read(2)` call per chunk
/// costs nothing (about 1,000 records of the bench capture), small enough to
/// stay in a core's L2 cache (1 MiB on the project machine) beside the batch
/// being filled.  It grows only when one record is larger.
const CHUNK: usize = 256 << 10;

/// What the gzip check reads ahead of a stream (standard input): small, so
/// that once it is drained the larger reads of [`StreamBuf`] bypass it
/// instead of being copied through it.
const PEEK: usize = 64 << 10;

/// Compression found in front of the capture, detected by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// The capture bytes are read as they are.
    None,
    /// gzip (RFC 1952), as Wireshark writes `.pcapng.gz`; several members are read in turn.
    Gzip,
}

/// A source of capture bytes with a cursor.
pub struct Source {
    inner: StreamBuf,
    /// Absolute offset (in the decompressed byte stream) of `available()[0]`.
    offset: u64,
    /// Total size of the input file when known (for the progress bar), compressed size for gzip.
    pub input_len: Option<u64>,
    /// How the bytes were compressed.
    pub compression: Compression,
}

struct StreamBuf {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes pulled from the underlying (possibly compressed) reader, for progress.
    raw_read: CountHandle,
}

/// Shared counter of compressed bytes read, so the progress bar can follow gzip input.
#[derive(Clone, Default)]
pub struct CountHandle(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl CountHandle {
    /// Bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn add(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

struct Counting<R> {
    inner: R,
    count: CountHandle,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.add(n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.count.add(amt as u64);
        self.inner.consume(amt)
    }
}

impl Source {
    /// Opens a file or, for `-`, standard input.  A path may name a pipe
    /// (`<(zcat x.pcap.gz)`): it is read once, from its first byte.
    pub fn open(path: &Path) -> io::Result<Source> {
        if path.as_os_str() == "-" {
            let stdin = io::stdin();
            return Source::from_reader(Box::new(stdin), None);
        }
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut magic = [0u8; 2];
        let n = read_up_to(&mut file, &mut magic)?;
        // The magic bytes go back in front of the file rather than the file
        // being opened again: a path can be a pipe (`<(zcat x.pcap.gz)`),
        // which has no second start.
        let file = io::Cursor::new(magic).take(n as u64).chain(file);
        if n == 2 && magic == [0x1f, 0x8b] {
            return Source::from_reader(Box::new(file), Some(len));
        }
        // Not gzip: read straight into the buffer, no peeking reader between.
        let count = CountHandle::default();
        let reader = Counting {
            inner: file,
            count: count.clone(),
        };
        Ok(Source::stream(
            Box::new(reader),
            count,
            Some(len),
            Compression::None,
        ))
    }

    fn stream(
        reader: Box<dyn Read + Send>,
        raw_read: CountHandle,
        input_len: Option<u64>,
        compression: Compression,
    ) -> Source {
        Source {
            inner: StreamBuf {
                reader,
                buf: vec![0; CHUNK],
                start: 0,
                end: 0,
                eof: false,
                raw_read,
            },
            offset: 0,
            input_len,
            compression,
        }
    }

    /// Wraps any reader; gzip is detected from the first two bytes.
    pub fn from_reader(reader: Box<dyn Read + Send>, input_len: Option<u64>) -> io::Result<Source> {
        let count = CountHandle::default();
        let mut buffered = BufReader::with_capacity(
            PEEK,
            Counting {
                inner: reader,
                count: count.clone(),
            },
        );
        let head = buffered.fill_buf()?;
        let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
        Ok(if gz {
            let gunzip = MultiGzDecoder::new(buffered);
            Source::stream(Box::new(gunzip), count, input_len, Compression::Gzip)
        } else {
            Source::stream(Box::new(buffered), count, input_len, Compression::None)
        })
    }

    /// Builds a source over bytes already in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Source {
        let len = bytes.len() as u64;
        let mut s = Source::from_reader(Box::new(io::Cursor::new(bytes)), Some(len))
            .expect("reading from memory cannot fail");
        s.input_len = Some(len);
        s
    }

    /// The bytes not consumed yet (may be fewer than a record: see [`Source::fill`]).
    #[inline]
    pub fn available(&self) -> &[u8] {
        &self.inner.buf[self.inner.start..self.inner.end]
    }

    /// Makes at least `need` bytes available if the input has them.  Returns
    /// `Ok(false)` when the input ends first (what is there stays available).
    /// Callers bound `need` before calling: it is never taken from a length
    /// field that has not been checked.
    #[inline]
    pub fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.inner.end - self.inner.start >= need {
            return Ok(true);
        }
        self.inner.fill(need)
    }

    /// Marks `n` available bytes as read.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available().len());
        self.inner.start += n;
        self.offset += n as u64;
    }

    /// Offset of the next unread byte in the (decompressed) capture.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes read from the input as stored on disk (compressed for gzip), for progress.
    pub fn raw_position(&self) -> u64 {
        self.inner.raw_read.get()
    }
}

impl StreamBuf {
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        while self.end - self.start < need {
            if self.eof {
                return Ok(false);
            }
            if self.buf.len() - self.start < need {
                // Move the unread tail to the front, grow if one record needs more.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if self.buf.len() < need {
                    self.buf.resize(need.next_power_of_two(), 0);
                }
            } else if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_fill_grows_only_to_need_and_keeps_unread_bytes() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let mut s = Source::from_bytes(data.clone());
        assert!(s.fill(10).unwrap());
        s.consume(7);
        assert!(s.fill(2_500_000).unwrap());
        assert_eq!(&s.available()[..3], &data[7..10]);
        s.consume(2_500_000);
        assert!(!s.fill(600_000).unwrap());
        assert_eq!(s.available(), &data[2_500_007..]);
        assert_eq!(s.offset(), 2_500_007);
    }

    #[test]
    fn a_file_is_read_in_chunks_and_every_byte_arrives_once_in_order() {
        // 2.5 chunks, read in records of 1,000 bytes and one larger than a
        // chunk, so that records straddle every chunk boundary and the
        // buffer has to grow once.
        let data: Vec<u8> = (0..CHUNK * 5 / 2).map(|i| (i % 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("edgetrace-source-{}", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        let mut s = Source::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(s.compression, Compression::None);
        assert_eq!(s.input_len, Some(data.len() as u64));
        let mut seen = Vec::new();
        let mut record = 1_000;
        while s.fill(record).unwrap() {
            seen.extend_from_slice(&s.available()[..record]);
            s.consume(record);
            record = if seen.len() == 100_000 {
                CHUNK + 1
            } else {
                1_000
            };
        }
        seen.extend_from_slice(s.available());
        assert_eq!(seen, data);
        assert_eq!(s.raw_position(), data.len() as u64);
    }

    #[test]
    fn gzip_is_detected_by_magic_not_name() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello capture").unwrap();
        let gz = enc.finish().unwrap();
        let mut s = Source::from_bytes(gz);
        assert_eq!(s.compression, Compression::Gzip);
        assert!(s.fill(13).unwrap());
        assert_eq!(s.available(), b"hello capture");
    }
}
