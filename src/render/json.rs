//! JSON renderer: the model as pretty-printed JSON with a trailing newline.
//! Key order follows the struct definitions and every list is pre-sorted by
//! the model, so the same capture always gives the same bytes.

use std::io::{self, Write};

use serde::Serialize;

use crate::model::report::Report;

/// Writes `value` as pretty JSON followed by a newline.  Generic over the
/// writer: serde_json makes a write call per token, and through `dyn Write`
/// each was an indirect call into the buffer (a 13 MB report: 0.04 s).
pub fn write<W: Write + ?Sized, T: Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// `edgetrace report --json`, byte for byte what [`write`] makes of the
/// report, with its four long lists (TURN allocations, SIP dialogs, ICE
/// sessions, TLS connections: up to 1,000 entries each, 29 MB for the 1 GiB
/// bench capture) serialized in parallel.  The rest of a run is over by
/// then, so the writer was the only thread at work for about 50 ms of a
/// 0.9 s run.
///
/// The top level is written here as the pretty printer writes an object:
/// each field on its own line indented by two spaces, its value's lines by
/// two more.  The fields are [`Report`]'s, in its order, with its
/// `skip_serializing_if` rules; a test compares this with [`write`] on every
/// sample, with every optional field present, so a field added to
/// [`Report`] and not here fails it.
pub fn write_report<W: Write + ?Sized>(out: &mut W, r: &Report) -> io::Result<()> {
    let ((turn, sip), (ice, tls)) = rayon::join(
        || rayon::join(|| list(&r.turn), || list(&r.sip)),
        || rayon::join(|| list(&r.ice), || list(&r.tls)),
    );
    let mut fields: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("schema_version", vec![value(&r.schema_version)?]),
        ("meta", vec![value(&r.meta)?]),
        ("capture", vec![value(&r.capture)?]),
        ("flows", vec![value(&r.flows)?]),
        ("counts", vec![value(&r.counts)?]),
        ("findings", list(&r.findings)?),
        ("turn", turn?),
        ("sip", sip?),
        ("ice", ice?),
        ("tls", tls?),
    ];
    if let Some(x) = &r.port_8057 {
        fields.push(("port_8057", vec![value(x)?]));
    }
    if !r.omitted.is_empty() {
        fields.push(("omitted", vec![value(&r.omitted)?]));
    }
    out.write_all(b"{")?;
    for (i, (name, v)) in fields.iter().enumerate() {
        out.write_all(if i == 0 { b"\n  " } else { b",\n  " })?;
        serde_json::to_writer(&mut *out, name).map_err(io::Error::other)?;
        out.write_all(b": ")?;
        for piece in v {
            out.write_all(piece)?;
        }
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
    v.serialize(&mut ser).map_err(io::Error::other)
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
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline(w, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"}")
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

/// A list as the value of a top-level field, in pieces to write in order:
/// `[`, each entry on its own lines two levels deep, `  ]`; entries
/// serialized in parallel, in chunks.
fn list<T: Serialize + Sync>(items: &[T]) -> io::Result<Vec<Vec<u8>>> {
    use rayon::prelude::*;
    if items.is_empty() {
        return Ok(vec![b"[]".to_vec()]);
    }
    let chunk = items.len().div_ceil(32);
    let mut parts: Vec<Vec<u8>> = items
        .par_chunks(chunk)
        .enumerate()
        .map(|(i, c)| -> io::Result<Vec<u8>> {
            // "[" opens the first chunk; entries are ",\n" apart
            let mut buf = if i == 0 { b"[".to_vec() } else { Vec::new() };
            for (j, item) in c.iter().enumerate() {
                let first = i == 0 && j == 0;
                buf.extend_from_slice(if first { b"\n    " } else { b",\n    " });
                pretty_at(&mut buf, item, 2)?;
            }
            Ok(buf)
        })
        .collect::<io::Result<_>>()?;
    parts.push(b"\n  ]".to_vec());
    Ok(parts)
}
