//! Where capture bytes come from: a memory-mapped file, or a buffered stream
//! (stdin, or anything behind a gzip decoder).
//!
//! Record parsers work on `available()` — the not-yet-consumed bytes — and ask
//! for more with [`Source::fill`].  A mapped file is all available at once, so
//! the common case (a plain file on disk) costs no copy at all; a stream keeps a
//! buffer that grows only up to what one valid record needs, which the record
//! parsers bound *before* asking (never from an untrusted length).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use memmap2::Mmap;

/// Initial size of the stream buffer; it grows only when one record is larger.
const STREAM_CHUNK: usize = 1 << 20;

/// How far a mapped file is read before the pages behind are released.
const RELEASE_EVERY: usize = 4 << 20;

/// Drops already-read pages of a mapped file from this process's resident set.
///
/// The map is read-only and file-backed, so the pages stay in the page cache
/// and would simply fault in again if touched; releasing them keeps RSS flat
/// (bounded by [`RELEASE_EVERY`]) however large the capture is.  The last
/// 64 KiB before `upto` are kept: the current record may still be in use.
fn release(map: &Mmap, released: &mut usize, upto: usize) {
    const PAGE: usize = 4096;
    let end = upto.saturating_sub(64 * 1024) / PAGE * PAGE;
    if end > *released {
        #[cfg(unix)]
        {
            // SAFETY: MADV_DONTNEED on a read-only shared file mapping only
            // drops our references to clean page-cache pages; later reads
            // (there are none for this range) would re-read the file.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    *released,
                    end - *released,
                )
            };
        }
        *released = end;
    }
}

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
    inner: Inner,
    /// Absolute offset (in the decompressed byte stream) of `available()[0]`.
    offset: u64,
    /// Total size of the input file when known (for the progress bar), compressed size for gzip.
    pub input_len: Option<u64>,
    /// How the bytes were compressed.
    pub compression: Compression,
}

enum Inner {
    Mapped {
        map: Mmap,
        pos: usize,
        /// Offset up to which pages were already released (see `release`).
        released: usize,
    },
    Stream(StreamBuf),
    Empty,
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
    /// Opens a file (memory-mapped unless gzipped) or, for `-`, standard input.
    pub fn open(path: &Path) -> io::Result<Source> {
        if path.as_os_str() == "-" {
            let stdin = io::stdin();
            return Source::from_reader(Box::new(stdin), None);
        }
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut magic = [0u8; 2];
        let n = read_up_to(&file, &mut magic)?;
        if n == 2 && magic == [0x1f, 0x8b] {
            let file = File::open(path)?;
            return Source::from_reader(Box::new(file), Some(len));
        }
        if len == 0 {
            return Ok(Source {
                inner: Inner::Empty,
                offset: 0,
                input_len: Some(0),
                compression: Compression::None,
            });
        }
        // SAFETY: the map is read-only; a capture file changed by another process
        // while we read it can only give us wrong bytes, which every parser
        // downstream treats as untrusted input anyway.
        let map = unsafe { Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Source {
            inner: Inner::Mapped {
                map,
                pos: 0,
                released: 0,
            },
            offset: 0,
            input_len: Some(len),
            compression: Compression::None,
        })
    }

    /// Wraps any reader; gzip is detected from the first two bytes.
    pub fn from_reader(reader: Box<dyn Read + Send>, input_len: Option<u64>) -> io::Result<Source> {
        let count = CountHandle::default();
        let mut buffered = BufReader::with_capacity(
            STREAM_CHUNK,
            Counting {
                inner: reader,
                count: count.clone(),
            },
        );
        let head = buffered.fill_buf()?;
        let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
        let (reader, compression): (Box<dyn Read + Send>, _) = if gz {
            (Box::new(MultiGzDecoder::new(buffered)), Compression::Gzip)
        } else {
            (Box::new(buffered), Compression::None)
        };
        Ok(Source {
            inner: Inner::Stream(StreamBuf {
                reader,
                buf: vec![0; STREAM_CHUNK],
                start: 0,
                end: 0,
                eof: false,
                raw_read: count,
            }),
            offset: 0,
            input_len,
            compression,
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
        match &self.inner {
            Inner::Mapped { map, pos, .. } => &map[*pos..],
            Inner::Stream(s) => &s.buf[s.start..s.end],
            Inner::Empty => &[],
        }
    }

    /// Makes at least `need` bytes available if the input has them.  Returns
    /// `Ok(false)` when the input ends first (what is there stays available).
    /// Callers bound `need` before calling: it is never taken from a length
    /// field that has not been checked.
    #[inline]
    pub fn fill(&mut self, need: usize) -> io::Result<bool> {
        match &mut self.inner {
            Inner::Mapped { map, pos, .. } => Ok(map.len() - *pos >= need),
            Inner::Empty => Ok(need == 0),
            Inner::Stream(s) => s.fill(need),
        }
    }

    /// Marks `n` available bytes as read.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available().len());
        match &mut self.inner {
            Inner::Mapped { map, pos, released } => {
                *pos += n;
                if *pos - *released >= RELEASE_EVERY {
                    release(map, released, *pos);
                }
            }
            Inner::Stream(s) => s.start += n,
            Inner::Empty => {}
        }
        self.offset += n as u64;
    }

    /// Offset of the next unread byte in the (decompressed) capture.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes read from the input as stored on disk (compressed for gzip), for progress.
    pub fn raw_position(&self) -> u64 {
        match &self.inner {
            Inner::Mapped { pos, .. } => *pos as u64,
            Inner::Stream(s) => s.raw_read.get(),
            Inner::Empty => 0,
        }
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

fn read_up_to(mut file: &File, buf: &mut [u8]) -> io::Result<usize> {
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
