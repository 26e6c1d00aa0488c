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

/// The first `limit` items (all when `limit` is 0): the table row cap.
fn capped<T>(items: &[T], limit: usize) -> &[T] {
    if limit == 0 {
        items
    } else {
        &items[..limit.min(items.len())]
    }
}

/// One section of the report table: a title, a line per entry (at most
/// `limit`), and how many were left out, by the table and by the report
/// itself (`omitted`, which `edgetrace KEY` lists).
fn report_section<T>(
    out: &mut dyn Write,
    title: &str,
    key: &str,
    items: &[T],
    limit: usize,
    omitted: usize,
    line: impl Fn(&T) -> String,
) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}")?;
    let rows = capped(items, limit);
    for item in rows {
        writeln!(out, "  {}", line(item))?;
    }
    let left = omitted + items.len() - rows.len();
    if left > 0 {
        writeln!(
            out,
            "  … {left} more not shown (edgetrace {key} lists them all)"
        )?;
    }
    Ok(())
}

/// The line under a capped table saying how many rows were left out.
fn more_line(out: &mut dyn Write, total: usize, shown: usize, what: &str) -> io::Result<()> {
    if shown < total {
        writeln!(
            out,
            "… {} more {what} not shown (--limit 0 shows all; --json gives everything)",
            total - shown
        )?;
    }
    Ok(())
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

/// `edgetrace flows` as a table of the report's rows ([`FlowsReport::first_rows`]
/// makes only those a table shows) out of `total`.
pub fn flows(out: &mut dyn Write, r: &FlowsReport, style: Style, total: usize) -> io::Result<()> {
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
    for f in &r.flows {
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
    more_line(out, total, r.flows.len(), "flows")
}

/// The attributes worth a column: error, addresses, lifetime, username, realm, channel, connection id.
fn stun_details(m: &crate::model::stun::MessageOut) -> String {
    let mut parts = Vec::new();
    for at in &m.attrs {
        let v = &at.value;
        let short = match at.name {
            "ERROR-CODE" => Some(format!(
                "{} {}",
                v["code"],
                v["reason"].as_str().unwrap_or("")
            )),
            "XOR-MAPPED-ADDRESS" | "MS-XOR-MAPPED-ADDRESS" => {
                Some(format!("mapped {}", v.as_str().unwrap_or("?")))
            }
            "MAPPED-ADDRESS" => Some(format!("mapped(plain) {}", v.as_str().unwrap_or("?"))),
            "XOR-RELAYED-ADDRESS" => Some(format!("relayed {}", v.as_str().unwrap_or("?"))),
            "XOR-PEER-ADDRESS" | "REMOTE-ADDRESS" | "DESTINATION-ADDRESS" => {
                Some(format!("peer {}", v.as_str().unwrap_or("?")))
            }
            "LIFETIME" => Some(format!("lifetime {v}")),
            "USERNAME" => Some(format!("user {}", v.as_str().unwrap_or("?"))),
            "REALM" => Some(format!("realm {}", v.as_str().unwrap_or("?"))),
            "CHANNEL-NUMBER" => Some(format!("channel {}", v.as_str().unwrap_or("?"))),
            "CONNECTION-ID" => Some(format!("conn {}", v.as_str().unwrap_or("?"))),
            "REQUESTED-TRANSPORT" => Some(format!("transport {}", v.as_str().unwrap_or("?"))),
            "USE-CANDIDATE" => Some("USE-CANDIDATE".to_string()),
            _ => None,
        };
        parts.extend(short);
    }
    parts.join(", ")
}

/// `edgetrace stun` as a timeline table.
pub fn stun(
    out: &mut dyn Write,
    r: &crate::model::stun::StunReport,
    style: Style,
    limit: usize,
) -> io::Result<()> {
    capture_summary(out, &r.meta.input, &r.capture)?;
    let s = &r.summary;
    writeln!(
        out,
        "\n{} STUN messages ({} nested), {} unanswered requests, {} retransmissions, {} MS-ICE2 duplicates",
        s.messages, s.nested, s.unanswered_requests, s.retransmissions, s.ms_duplicates
    )?;
    if !s.errors.is_empty() {
        let e: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        writeln!(out, "errors: {}", e.join(", "))?;
    }
    if r.messages.is_empty() {
        return Ok(());
    }
    let mut t = new_table(style);
    t.set_header(vec![
        "frame",
        "time s",
        "stream",
        "src → dst",
        "via",
        "message",
        "details",
        "answer",
    ]);
    let rows = capped(&r.messages, limit);
    for m in rows {
        let mut via = m.framing.to_string();
        if m.carrier != "direct" {
            via = format!("{via}, {}", m.carrier);
        }
        if m.dialect != crate::proto::stun::Dialect::Rfc5389 {
            via = format!(
                "{via}, {}",
                serde_json::to_value(m.dialect)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
            );
        }
        let mut name = m.name.clone();
        if m.retransmission {
            name.push_str(" (retrans)");
        }
        if m.ms_duplicate {
            name.push_str(" (MS dup)");
        }
        let answer = match (m.answer_frame, m.rtt_ms, m.request_frame) {
            (Some(f), Some(rtt), _) => format!("{f} ({rtt:.3} ms)"),
            (Some(f), None, _) => f.to_string(),
            (None, _, Some(req)) => format!("↩ {req}"),
            _ if m.name.ends_with("request") => "none".to_string(),
            _ => String::new(),
        };
        let frame = match m.end_frame {
            Some(e) => format!("{}–{e}", m.frame),
            None => m.frame.to_string(),
        };
        let mut route = format!("{} → {}", m.src, m.dst);
        if let Some(leg) = &m.relay_leg {
            route.push_str(&format!(
                "\n  relay leg {} → {}",
                leg["src"].as_str().unwrap_or("?"),
                leg["dst"].as_str().unwrap_or("?")
            ));
        }
        t.add_row(vec![
            frame,
            format!("{:.6}", m.time_s),
            format!("{} {}", m.transport.name(), m.stream),
            route,
            via,
            name,
            stun_details(m),
            answer,
        ]);
    }
    writeln!(out, "{t}")?;
    more_line(out, r.messages.len(), rows.len(), "messages")?;
    if !r.channels.is_empty() {
        writeln!(out, "\nChannelData:")?;
        for c in &r.channels {
            writeln!(
                out,
                "  {} {} channel {}: {} frames, {} bytes, first frame {}",
                c.transport.name(),
                c.stream,
                c.channel,
                c.frames,
                c.bytes,
                c.first_frame
            )?;
        }
    }
    Ok(())
}

/// `edgetrace turn`: one block per allocation with its life as a ladder.
pub fn turn(
    out: &mut dyn Write,
    r: &crate::model::turn::TurnReport,
    style: Style,
) -> io::Result<()> {
    capture_summary(out, &r.meta.input, &r.capture)?;
    writeln!(out, "\n{} TURN allocation(s)", r.allocations.len())?;
    for al in &r.allocations {
        writeln!(
            out,
            "\n{} {}  {} → {}  {}: {}",
            al.transport.name(),
            al.stream,
            al.client,
            al.server,
            al.outcome.to_uppercase(),
            al.detail
        )?;
        let mut facts = Vec::new();
        if let Some(u) = &al.username {
            facts.push(format!("user {u}"));
        }
        if let Some(r) = &al.realm {
            facts.push(format!("realm {r}"));
        }
        if let Some(t) = al.requested_transport {
            facts.push(format!("transport {t}"));
        }
        if let Some(x) = &al.relayed {
            facts.push(format!("relayed {x}"));
        }
        if let Some(x) = &al.mapped {
            facts.push(format!("reflexive {x}"));
        }
        if let Some(l) = al.lifetime_s {
            facts.push(format!("lifetime {l} s"));
        }
        if !facts.is_empty() {
            writeln!(out, "  {}", facts.join(", "))?;
        }
        if !al.permissions.is_empty() {
            writeln!(out, "  permissions: {}", al.permissions.join(", "))?;
        }
        for c in &al.channels {
            writeln!(
                out,
                "  channel {} → {}: {} ChannelData frames, {} bytes",
                c.channel,
                c.peer.as_deref().unwrap_or("?"),
                c.frames,
                c.bytes
            )?;
        }
        for i in &al.indications {
            writeln!(
                out,
                "  peer {}: {} Send, {} Data indications, {} bytes",
                i.peer, i.send, i.data, i.bytes
            )?;
        }
        for c in &al.connections {
            writeln!(
                out,
                "  connection {} ({}) peer {}: bound on tcp {} in frame {} → {}, {} bytes relayed",
                c.connection_id,
                c.initiated_by,
                c.peer.as_deref().unwrap_or("?"),
                c.data_stream
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.bind_frame
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.bind_result.as_deref().unwrap_or("no answer"),
                c.relayed_bytes
            )?;
        }
        let mut t = new_table(style);
        t.set_header(vec!["frame", "time s", "stream", "event", "detail"]);
        for s in &al.timeline {
            t.add_row(vec![
                s.frame.to_string(),
                format!("{:.6}", s.time_s),
                s.stream.to_string(),
                s.event.clone(),
                s.detail.clone(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(())
}

/// `edgetrace sip`: timeline, then per dialog the ladder, route set and hop chain.
pub fn sip(
    out: &mut dyn Write,
    r: &crate::model::sip::SipReport,
    style: Style,
    limit: usize,
    dialog: Option<&str>,
) -> io::Result<()> {
    capture_summary(out, &r.meta.input, &r.capture)?;
    let s = &r.summary;
    writeln!(
        out,
        "\n{} SIP messages in {} dialog(s)",
        s.messages, s.dialogs
    )?;
    for p in &s.problems {
        writeln!(out, "  problem: {p}")?;
    }
    let short_call = |c: &Option<String>| {
        c.as_deref()
            .map(|c| {
                if c.len() > 16 {
                    format!(
                        "{}…",
                        &c[..c.char_indices().nth(16).map(|x| x.0).unwrap_or(c.len())]
                    )
                } else {
                    c.to_string()
                }
            })
            .unwrap_or_default()
    };
    if dialog.is_none() && !r.messages.is_empty() {
        let mut t = new_table(style);
        t.set_header(vec![
            "frame",
            "time s",
            "stream",
            "src → dst",
            "message",
            "call-id",
            "diagnostics",
        ]);
        let rows = capped(&r.messages, limit);
        for m in rows {
            let diag: Vec<String> = m
                .diagnostics
                .iter()
                .map(|d| format!("{} {}", d.code, d.reason.as_deref().unwrap_or("")))
                .collect();
            t.add_row(vec![
                match m.end_frame {
                    Some(e) => format!("{}–{e}", m.frame),
                    None => m.frame.to_string(),
                },
                format!("{:.6}", m.time_s),
                format!("{} {}", m.transport.name(), m.stream),
                format!("{} → {}", m.src, m.dst),
                m.summary.clone(),
                short_call(&m.call_id),
                diag.join("; "),
            ]);
        }
        writeln!(out, "{t}")?;
        more_line(out, r.messages.len(), rows.len(), "messages")?;
    }
    for d in r
        .dialogs
        .iter()
        .filter(|d| dialog.is_none_or(|c| d.call_id == c))
    {
        writeln!(
            out,
            "\nDialog {} — {} from frame {}: {}",
            d.call_id,
            d.method.as_deref().unwrap_or("?"),
            d.first_frame,
            d.final_status.as_deref().unwrap_or("no final response")
        )?;
        if let Some(x) = d.ringing_s {
            writeln!(out, "  ringing after {x:.3} s")?;
        }
        if let Some(x) = d.final_s {
            writeln!(out, "  final response after {x:.3} s")?;
        }
        if !d.hop_chain.is_empty() {
            writeln!(out, "  path: {}", d.hop_chain.join(" → "))?;
        }
        if !d.route_set.is_empty() {
            writeln!(out, "  route set: {}", d.route_set.join(", "))?;
        }
        for g in &d.diagnostics {
            write!(
                out,
                "  {}: {} ({}) {}",
                g.header,
                g.code,
                g.component,
                g.reason.as_deref().unwrap_or("")
            )?;
            match &g.source {
                Some(src) => writeln!(out, " — source {src}")?,
                None => writeln!(out)?,
            }
        }
        for m in &d.media {
            let x = &m.media;
            writeln!(
                out,
                "  {} #{} from {}{}: {} {} {} ufrag {}, {} candidate(s)",
                m.side,
                m.frame,
                m.sender,
                if m.fallback_2007 {
                    " (2007 fallback)"
                } else {
                    ""
                },
                x.kind,
                x.port,
                x.profile,
                x.ice_ufrag.as_deref().unwrap_or("-"),
                x.candidates.len()
            )?;
            for c in &x.candidates {
                let line = format!(
                    "      {:<6} {:<4} {:<8} c{} {:<24} prio {:>10} {}{}",
                    c.typ.as_deref().unwrap_or("-"),
                    c.protocol,
                    c.tcp_type.as_deref().unwrap_or(""),
                    c.component,
                    c.address,
                    c.priority,
                    c.related
                        .as_deref()
                        .map(|r| format!("from {r} "))
                        .unwrap_or_default(),
                    if c.attr == "candidate" {
                        String::new()
                    } else {
                        format!("[{}]", c.attr)
                    }
                );
                writeln!(out, "{}", line.trim_end())?;
            }
        }
        for st in &d.ladder {
            writeln!(
                out,
                "  {:>7.3}s  #{:<6} {} → {}  {}",
                st.at_s, st.frame, st.src, st.dst, st.summary
            )?;
        }
    }
    Ok(())
}

/// `edgetrace ice`: per session a header, the pair table and the checks.
pub fn ice(
    out: &mut dyn Write,
    r: &crate::model::ice::IceReport,
    style: Style,
    limit: usize,
) -> io::Result<()> {
    capture_summary(out, &r.meta.input, &r.capture)?;
    let s = &r.summary;
    writeln!(
        out,
        "\n{} ICE session(s), {} check(s), {} pair(s)",
        s.sessions, s.checks, s.pairs
    )?;
    for (n, x) in r.sessions.iter().enumerate() {
        writeln!(
            out,
            "\nSession {} — ufrags {}{}: {}",
            n + 1,
            x.ufrags.join(" / "),
            x.call_id
                .as_deref()
                .map(|c| format!(" (Call-ID {c})"))
                .unwrap_or_default(),
            x.outcome
        )?;
        writeln!(out, "  {}", x.detail)?;
        for side in &x.sides {
            write!(
                out,
                "  {}: {}",
                side.ufrag,
                side.role.as_deref().unwrap_or("role not seen")
            )?;
            if let Some(d) = &side.sdp {
                write!(
                    out,
                    " — SDP {} #{} m-line {}, {} candidate(s)",
                    d.side, d.frame, d.m_line, d.candidates
                )?;
            }
            writeln!(out)?;
        }
        let mut t = new_table(style);
        t.set_header(vec![
            "pair",
            "a",
            "b",
            "tr",
            "c",
            "verdict",
            "a→b req/ok",
            "b→a req/ok",
            "rtt ms",
            "nom",
        ]);
        let rtt = |d: &crate::model::ice::DirOut| d.min_rtt_ms.map(|x| format!("{x:.1}"));
        for p in &x.pairs {
            let rtts: Vec<String> = [rtt(&p.a_to_b), rtt(&p.b_to_a)]
                .into_iter()
                .map(|r| r.unwrap_or_else(|| "-".into()))
                .collect();
            t.add_row(vec![
                p.index.to_string(),
                format!(
                    "{}{}",
                    p.a,
                    p.a_candidate
                        .as_deref()
                        .map(|c| format!("\n{c}"))
                        .unwrap_or_default()
                ),
                format!(
                    "{}{}",
                    p.b,
                    p.b_candidate
                        .as_deref()
                        .map(|c| format!("\n{c}"))
                        .unwrap_or_default()
                ),
                p.transport.to_string(),
                p.component.map(|c| c.to_string()).unwrap_or_default(),
                serde_json::to_value(p.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                format!("{}/{}", p.a_to_b.requests, p.a_to_b.successes),
                format!("{}/{}", p.b_to_a.requests, p.b_to_a.successes),
                rtts.join(" / "),
                if p.nominated { "yes" } else { "" }.to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
        for p in x
            .pairs
            .iter()
            .filter(|p| p.verdict != crate::analyze::ice::Verdict::BothWays)
        {
            writeln!(out, "  pair {}: {}", p.index, p.detail)?;
        }
        for c in &x.unchecked_candidates {
            writeln!(out, "  never checked: {c}")?;
        }
        let rows = capped(&x.checks, limit);
        for c in rows {
            writeln!(
                out,
                "  #{:<6} {:>10.6}s  pair {} {}  {} → {}{}{}  {}{}",
                c.frame,
                c.time_s,
                c.pair,
                c.direction,
                c.from,
                c.to,
                if c.use_candidate {
                    "  USE-CANDIDATE"
                } else {
                    ""
                },
                if c.retransmissions > 0 {
                    let at: Vec<String> = c
                        .retransmitted
                        .iter()
                        .map(|r| format!("{:.1}", r.after_s))
                        .collect();
                    format!("  (resent after {} s)", at.join(", "))
                } else {
                    String::new()
                },
                c.result,
                c.answer_frame.map(|f| format!(" #{f}")).unwrap_or_default()
            )?;
        }
        more_line(out, x.checks.len(), rows.len(), "checks")?;
        writeln!(out, "  filter: {}", x.filter)?;
    }
    Ok(())
}

/// `edgetrace tls`: one row per connection, then details and the 8057 section.
pub fn tls(
    out: &mut dyn Write,
    r: &crate::model::tls::TlsReport,
    style: Style,
    limit: usize,
) -> io::Result<()> {
    capture_summary(out, &r.meta.input, &r.capture)?;
    let s = &r.summary;
    writeln!(
        out,
        "\n{} TLS connection(s): {} reversed, {} complete, {} fatal alert(s), {} EKU failure(s), {} MS pseudo-TLS",
        s.connections, s.reversed, s.completed, s.fatal_alerts, s.eku_failures, s.pseudo_tls
    )?;
    if r.connections.is_empty() {
        return Ok(());
    }
    let mut t = new_table(style);
    t.set_header(vec![
        "stream",
        "tcp client → server",
        "roles",
        "version",
        "sni",
        "certificates",
        "alerts",
        "handshake",
        "ended",
    ]);
    let rows = capped(&r.connections, limit);
    for c in rows {
        let certs: Vec<String> = c
            .certificates
            .iter()
            .filter(|x| x.index == 0)
            .map(|x| {
                format!(
                    "{} {}: {}",
                    x.tls_role,
                    x.subject.as_deref().unwrap_or("?"),
                    match x.eku_ok {
                        Some(true) => "EKU ok",
                        Some(false) => "EKU WRONG",
                        None => "-",
                    }
                )
            })
            .collect();
        let alerts: Vec<String> = c
            .alerts
            .iter()
            .map(|a| match a.description {
                Some(d) => format!("{} {d} from {}", a.level, a.sender),
                None => format!("encrypted alert from {}", a.sender),
            })
            .collect();
        t.add_row(vec![
            c.stream.to_string(),
            format!("{} → {}", c.tcp_client, c.tcp_server),
            if c.pseudo_tls { "pseudo-TLS" } else { c.roles }.to_string(),
            c.version.clone().unwrap_or_default(),
            c.client_hello
                .as_ref()
                .and_then(|h| h.sni.clone())
                .unwrap_or_default(),
            if c.certificates_encrypted && certs.is_empty() {
                "encrypted (TLS 1.3)".to_string()
            } else {
                certs.join("\n")
            },
            alerts.join("\n"),
            match c.handshake_ms {
                Some(ms) => format!("{} ({ms:.1} ms)", c.handshake),
                None => c.handshake.to_string(),
            },
            c.ended.clone(),
        ]);
    }
    writeln!(out, "{t}")?;
    more_line(out, r.connections.len(), rows.len(), "connections")?;
    for c in rows
        .iter()
        .filter(|c| !c.notes.is_empty() || !c.problems.is_empty())
    {
        writeln!(out, "  stream {} ({}):", c.stream, c.filter)?;
        for n in c.notes.iter().chain(&c.problems) {
            writeln!(out, "    {n}")?;
        }
    }
    if let Some(x) = &r.port_8057 {
        writeln!(out, "\nPort 8057 (Front End → Edge, PSOM over MTLS)")?;
        for p in &x.pairs {
            writeln!(
                out,
                "  {} → {}: {} connection(s), at most {} at once, {} reconnect(s)",
                p.front_end, p.edge, p.connections, p.max_concurrent, p.reconnects
            )?;
        }
        for f in &x.flags {
            writeln!(out, "  [{}] stream {}: {}", f.id, f.stream, f.detail)?;
        }
    }
    Ok(())
}

/// `edgetrace report`: capture, flows by protocol, findings worst first, then
/// one line per TURN allocation, ICE session, SIP dialog and TLS connection.
pub fn report(
    out: &mut dyn Write,
    r: &crate::model::report::Report,
    style: Style,
    limit: usize,
) -> io::Result<()> {
    capture_summary(out, &r.meta.input, &r.capture)?;
    let flows: Vec<String> = r
        .flows
        .iter()
        .map(|(p, f)| format!("{p} {}", f.count))
        .collect();
    writeln!(out, "flows: {}", flows.join(", "))?;
    let c = &r.counts;
    writeln!(
        out,
        "found: {} STUN message(s), {} TURN allocation(s), {} SIP message(s) in {} dialog(s), {} ICE session(s), {} TLS connection(s)",
        c.stun_messages, c.turn_allocations, c.sip_messages, c.sip_dialogs, c.ice_sessions, c.tls_connections
    )?;
    writeln!(
        out,
        "\n{} finding(s): {} error, {} warning, {} info",
        r.findings.len(),
        c.findings.get("error").unwrap_or(&0),
        c.findings.get("warning").unwrap_or(&0),
        c.findings.get("info").unwrap_or(&0)
    )?;
    if !r.findings.is_empty() {
        let mut t = new_table(style);
        t.set_header(vec!["severity", "finding", "what", "frames", "filter"]);
        let rows = capped(&r.findings, limit);
        for f in rows {
            let mut what = f.summary.clone();
            if let Some(h) = f.hint {
                what.push_str("\nhint: ");
                what.push_str(h);
            }
            let fr: Vec<String> = f.frames.iter().take(6).map(|x| x.to_string()).collect();
            t.add_row(vec![
                f.severity.name().to_string(),
                f.id.to_string(),
                what,
                if f.frames.len() > 6 {
                    format!("{} …", fr.join(" "))
                } else {
                    fr.join(" ")
                },
                f.filter.clone(),
            ]);
        }
        writeln!(out, "{t}")?;
        more_line(out, r.findings.len(), rows.len(), "findings")?;
    }
    let omitted = |key: &str| r.omitted.get(key).copied().unwrap_or(0);
    report_section(
        out,
        "TURN allocations",
        "turn",
        &r.turn,
        limit,
        omitted("turn"),
        |a| {
            format!(
                "{} {} {} → {}: {} — {}",
                a.transport.name(),
                a.stream,
                a.client,
                a.server,
                a.outcome,
                a.detail
            )
        },
    )?;
    report_section(
        out,
        "ICE sessions",
        "ice",
        &r.ice,
        limit,
        omitted("ice"),
        |s| format!("{}: {} — {}", s.ufrags.join("/"), s.outcome, s.detail),
    )?;
    report_section(
        out,
        "SIP dialogs",
        "sip",
        &r.sip,
        limit,
        omitted("sip"),
        |d| {
            format!(
                "{} {} (frame {}): {}",
                d.method.as_deref().unwrap_or("?"),
                d.call_id,
                d.first_frame,
                d.final_status.as_deref().unwrap_or("no final response")
            )
        },
    )?;
    report_section(
        out,
        "TLS connections",
        "tls",
        &r.tls,
        limit,
        omitted("tls"),
        |t| {
            format!(
                "tcp {} {} → {}: {} {}, {} — {}",
                t.stream,
                t.tcp_client,
                t.tcp_server,
                if t.pseudo_tls { "pseudo-TLS" } else { t.roles },
                t.version.as_deref().unwrap_or("?"),
                t.handshake,
                t.ended
            )
        },
    )?;
    Ok(())
}
