//! Terminal tables (comfy-table).  Plain ASCII borders when `NO_COLOR` is
//! set or the output is not a terminal, so pasted output stays clean.

use std::io::{self, Write};

use comfy_table::presets::{ASCII_MARKDOWN, UTF8_FULL_CONDENSED};
use comfy_table::{ContentArrangement, Table};

use crate::model::{CaptureSummary, FlowsReport, PerDir};

/// How tables are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Unicode box drawing (terminal) or ASCII (pipes, files, NO_COLOR).
    pub unicode: bool,
    /// Terminal width to wrap to, if known.
    pub width: Option<u16>,
}

fn new_table(style: Style) -> Table {
    let mut t = Table::new();
    t.load_style(if style.unicode {
        UTF8_FULL_CONDENSED
    } else {
        ASCII_MARKDOWN
    });
    match style.width {
        Some(w) => {
            t.set_width(w);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    t
}

fn pair(p: PerDir) -> String {
    format!("{} / {}", p.to_server, p.to_client)
}

/// Writes the capture summary block shared by every command.
pub fn capture_summary(out: &mut dyn Write, input: &str, c: &CaptureSummary) -> io::Result<()> {
    let links: Vec<String> = c
        .link_types
        .iter()
        .map(|l| format!("{} ({}) ×{}", l.name, l.link_type, l.frames))
        .collect();
    writeln!(
        out,
        "{input}: {}{}, {} frames, {} bytes, {} → {} ({:.6} s)",
        c.format,
        if c.gzip { " (gzip)" } else { "" },
        c.frames,
        c.bytes,
        c.first_time.as_deref().unwrap_or("-"),
        c.last_time.as_deref().unwrap_or("-"),
        c.duration_s
    )?;
    if !links.is_empty() {
        writeln!(out, "link types: {}", links.join(", "))?;
    }
    if let Some(t) = &c.truncation {
        writeln!(
            out,
            "TRUNCATED at offset {} after frame {}: {}",
            t.offset, t.after_frame, t.reason
        )?;
    }
    if c.damaged_records > 0 {
        writeln!(out, "DAMAGED: {} record(s) skipped", c.damaged_records)?;
        for d in &c.damage {
            writeln!(out, "  {d}")?;
        }
    }
    if !c.skipped.is_empty() {
        let s: Vec<String> = c.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "frames not analysed: {}", s.join(", "))?;
    }
    if c.snaplen_cut_frames > 0 {
        writeln!(out, "frames cut by snaplen: {}", c.snaplen_cut_frames)?;
    }
    Ok(())
}

/// `edgetrace flows` as a table, at most `limit` rows (0 = all).
pub fn flows(out: &mut dyn Write, r: &FlowsReport, style: Style, limit: usize) -> io::Result<()> {
    capture_summary(out, &r.meta.input, &r.capture)?;
    writeln!(out)?;
    if r.flows.is_empty() {
        return writeln!(out, "no TCP or UDP flows");
    }
    let mut t = new_table(style);
    t.set_header(vec![
        "stream",
        "proto",
        "client → server",
        "frames",
        "start s",
        "dur s",
        "pkts →/←",
        "bytes →/←",
        "tcp",
        "retrans →/←",
        "ooo →/←",
        "missing →/←",
        "idle s",
    ]);
    let shown = if limit == 0 {
        r.flows.len()
    } else {
        limit.min(r.flows.len())
    };
    for f in &r.flows[..shown] {
        let (hs, re, oo, mi) = match &f.tcp {
            Some(t) => {
                let mut hs = t.handshake.to_string();
                if let Some(by) = t.fin_by {
                    hs.push_str(&format!(", FIN {by}"));
                }
                if let Some(by) = t.rst_by {
                    hs.push_str(&format!(", RST {by}"));
                }
                (
                    hs,
                    pair(t.retransmissions),
                    pair(t.out_of_order),
                    pair(t.missing_bytes),
                )
            }
            None => (String::new(), String::new(), String::new(), String::new()),
        };
        t.add_row(vec![
            format!("{} {}", f.transport.name(), f.stream),
            f.protocol.clone(),
            format!("{} → {}", f.client, f.server),
            format!("{}–{}", f.first_frame, f.last_frame),
            format!("{:.6}", f.start_s),
            format!("{:.6}", f.duration_s),
            pair(f.packets),
            pair(f.bytes),
            hs,
            re,
            oo,
            mi,
            format!("{:.3}", f.max_idle_s),
        ]);
    }
    writeln!(out, "{t}")?;
    if shown < r.flows.len() {
        writeln!(
            out,
            "… {} more flows not shown (--limit 0 shows all; --json gives everything)",
            r.flows.len() - shown
        )?;
    }
    Ok(())
}
