//! JSON renderer: the model as pretty-printed JSON with a trailing newline.
//! Key order follows the struct definitions and every list is pre-sorted by
//! the model, so the same capture always gives the same bytes.

use std::io::{self, Write};

use serde::Serialize;

use crate::model::report::Report;

/// Writes `value` as pretty JSON followed by a newline.  Generic over the
/// writer: serde_json makes a write call per token, and through `dyn Write`
/// each was an indirect call into the buffer (a 13 MB report: 0.04 s).
/// serde_json's errors become `io::Error`s with their I/O kind kept, so a
/// reader that closes the pipe early (`| head`) ends the run quietly, as the
/// CLI does for every broken pipe.
pub fn write<W: Write + ?Sized, T: Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// `edgetrace report --json`, byte for byte what [`write()`] makes of the
/// report, with its long lists (TURN allocations, SIP dialogs, ICE
/// sessions, TLS connections: up to 1,000 entries each, 27 MB for the 1 GiB
/// bench capture) serialized in parallel, a window of entries at a time, so
/// that little of the text is held before it is written.  The rest of a run
/// is over by then, so the writer was the only thread at work for about
/// 50 ms of a 0.9 s run.
///
/// The top level is written here as the pretty printer writes an object:
/// each field on its own line indented by two spaces, its value's lines by
/// two more.  The fields are [`Report`]'s, in its order, with its
/// `skip_serializing_if` rules; a test compares this with [`write()`] on every
/// sample, with every optional field present, so a field added to
/// [`Report`] and not here fails it.
pub fn write_report<W: Write + ?Sized>(out: &mut W, r: &Report) -> io::Result<()> {
    let mut first = true;
    let mut key = |out: &mut W, name: &str| -> io::Result<()> {
        out.write_all(if first { b"{\n  " } else { b",\n  " })?;
        first = false;
        serde_json::to_writer(&mut *out, name).map_err(io::Error::from)?;
        out.write_all(b": ")
    };
    key(out, "schema_version")?;
    out.write_all(&value(&r.schema_version)?)?;
    key(out, "meta")?;
    out.write_all(&value(&r.meta)?)?;
    key(out, "capture")?;
    out.write_all(&value(&r.capture)?)?;
    key(out, "flows")?;
    out.write_all(&value(&r.flows)?)?;
    key(out, "counts")?;
    out.write_all(&value(&r.counts)?)?;
    key(out, "findings")?;
    list(out, &r.findings)?;
    key(out, "turn")?;
    list(out, &r.turn)?;
    key(out, "sip")?;
    list(out, &r.sip)?;
    key(out, "ice")?;
    list(out, &r.ice)?;
    key(out, "tls")?;
    list(out, &r.tls)?;
    if let Some(x) = &r.port_8057 {
        key(out, "port_8057")?;
        out.write_all(&value(x)?)?;
    }
    if !r.omitted.is_empty() {
        key(out, "omitted")?;
        out.write_all(&value(&r.omitted)?)?;
    }
    out.write_all(b"\n}\n")
}

/// The pretty text of a top-level field's value (its lines after the
/// first indented by two spaces).
fn value<T: Serialize + ?Sized>(v: &T) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    pretty_at(&mut out, v, 1)?;
    Ok(out)
}

/// `v` as serde_json's pretty printer writes it `level` levels deep
/// (two spaces a level), straight into `out`.
fn pretty_at<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T, level: usize) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(
        out,
        Pretty {
            level,
            has_value: false,
        },
    );
    v.serialize(&mut ser).map_err(io::Error::from)
}

/// serde_json's `PrettyFormatter` (two-space indent) that starts at a
/// given depth, which serde_json's does not offer; its methods are that
/// formatter's, line for line.
struct Pretty {
    level: usize,
    has_value: bool,
}

impl Pretty {
    fn newline<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        for _ in 0..self.level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    /// `[` or `{`: one level deeper, nothing in it yet.
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    /// `]` or `}`: on a line of its own unless the container is empty.
    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline(w, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline(w, !first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Entries serialized side by side before they are written.
const WINDOW: usize = 64;

/// A list as the value of a top-level field: `[`, each entry on its own
/// lines two levels deep, `  ]`.  Entries are serialized in parallel a
/// [`WINDOW`] at a time (eight to a task) and written in order.
fn list<W: Write + ?Sized, T: Serialize + Sync>(out: &mut W, items: &[T]) -> io::Result<()> {
    use rayon::prelude::*;
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    for (w, window) in items.chunks(WINDOW).enumerate() {
        let parts: Vec<Vec<u8>> = window
            .par_chunks(8)
            .enumerate()
            .map(|(i, c)| -> io::Result<Vec<u8>> {
                let mut buf = Vec::new();
                for (j, item) in c.iter().enumerate() {
                    // entries are ",\n" apart
                    let first = w == 0 && i == 0 && j == 0;
                    buf.extend_from_slice(if first { b"\n    " } else { b",\n    " });
                    pretty_at(&mut buf, item, 2)?;
                }
                Ok(buf)
            })
            .collect::<io::Result<_>>()?;
        for p in parts {
            out.write_all(&p)?;
        }
    }
    out.write_all(b"\n  ]")
}
