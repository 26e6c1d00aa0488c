//! Mermaid `sequenceDiagram`s for pasting into GitHub / GitLab tickets: one
//! diagram per SIP dialog, TURN allocation or ICE session, each in a
//! ```` ```mermaid ```` fenced block under a Markdown heading, so the output
//! pastes into an issue as is.
//!
//! Only a small, safe subset of the grammar is emitted: `title`,
//! `participant ID as TEXT`, messages `->>` (request), `-->>` (answer),
//! `-x` (never answered) and `Note over`.  Text is escaped for Mermaid:
//! `#` and `;` become entity codes (`#35;`, `#59;`), line breaks spaces.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::model::ice::IceReport;
use crate::model::sip::SipReport;
use crate::model::turn::TurnReport;

/// Escapes text for a Mermaid message, note, title or participant label.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Participants in order of appearance, with stable ids P1, P2…
#[derive(Default)]
struct Participants {
    ids: BTreeMap<String, String>,
    order: Vec<String>,
}

impl Participants {
    fn id(&mut self, label: &str) -> String {
        if let Some(id) = self.ids.get(label) {
            return id.clone();
        }
        let id = format!("P{}", self.order.len() + 1);
        self.ids.insert(label.to_string(), id.clone());
        self.order.push(label.to_string());
        id
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        for l in &self.order {
            writeln!(out, "    participant {} as {}", self.ids[l], text(l))?;
        }
        Ok(())
    }
}

fn block(
    out: &mut dyn Write,
    heading: &str,
    title: &str,
    parts: &Participants,
    lines: &[String],
) -> io::Result<()> {
    writeln!(out, "### {heading}\n")?;
    writeln!(out, "```mermaid")?;
    writeln!(out, "sequenceDiagram")?;
    writeln!(out, "    title {}", text(title))?;
    parts.write(out)?;
    for l in lines {
        writeln!(out, "    {l}")?;
    }
    writeln!(out, "```\n")
}

/// One diagram per SIP dialog: every message with its frame and time.
pub fn sip(out: &mut dyn Write, r: &SipReport) -> io::Result<()> {
    for d in &r.dialogs {
        let mut p = Participants::default();
        // the ladder's endpoints, in order of appearance
        let mut lines = Vec::new();
        for st in &d.ladder {
            let (a, b) = (p.id(&st.src.to_string()), p.id(&st.dst.to_string()));
            let answer = st
                .summary
                .as_bytes()
                .first()
                .is_some_and(|c| c.is_ascii_digit());
            let arrow = if answer { "-->>" } else { "->>" };
            lines.push(format!(
                "{a}{arrow}{b}: {}",
                text(&format!("#{} +{:.3}s {}", st.frame, st.at_s, st.summary))
            ));
        }
        let title = format!(
            "{} {} — {}",
            d.method.as_deref().unwrap_or("?"),
            d.call_id,
            d.final_status.as_deref().unwrap_or("no final response")
        );
        block(
            out,
            &format!("SIP dialog {}", d.call_id),
            &title,
            &p,
            &lines,
        )?;
    }
    Ok(())
}

/// One diagram per TURN allocation: requests, answers and indications, the
/// RFC 6062 data connections' ConnectionBind included.
pub fn turn(out: &mut dyn Write, r: &TurnReport) -> io::Result<()> {
    for a in &r.allocations {
        let mut p = Participants::default();
        let client = p.id(&format!("client {}", a.client));
        let server = p.id(&format!("TURN {}", a.server));
        let mut lines = Vec::new();
        for s in &a.timeline {
            let label = text(&format!("#{} {} {}", s.frame, s.event, s.detail));
            let data = if s.stream != a.stream {
                format!(" (stream {})", s.stream)
            } else {
                String::new()
            };
            let line = if s.event.contains(" request") {
                format!("{client}->>{server}: {label}{}", text(&data))
            } else if s.event.contains(" success")
                || s.event.contains(" error")
                || s.event.contains(" indication")
            {
                format!("{server}-->>{client}: {label}{}", text(&data))
            } else {
                format!("Note over {client},{server}: {label}")
            };
            lines.push(line);
        }
        let title = format!("TURN allocation {} → {}: {}", a.client, a.server, a.outcome);
        block(
            out,
            &format!(
                "TURN allocation {} {} ({} → {})",
                a.transport.name(),
                a.stream,
                a.client,
                a.server
            ),
            &title,
            &p,
            &lines,
        )?;
    }
    Ok(())
}

/// One diagram per ICE session: each check from its sender to its receiver,
/// answered (dashed) or crossed out when nothing answered.
pub fn ice(out: &mut dyn Write, r: &IceReport) -> io::Result<()> {
    for (n, s) in r.sessions.iter().enumerate() {
        let mut p = Participants::default();
        let mut lines = Vec::new();
        for c in &s.checks {
            let (a, b) = (p.id(&c.from.to_string()), p.id(&c.to.to_string()));
            let what = format!(
                "#{} pair {}{}{}",
                c.frame,
                c.pair,
                if c.use_candidate {
                    " USE-CANDIDATE"
                } else {
                    ""
                },
                if c.retransmissions > 0 {
                    format!(" (+{} resent)", c.retransmissions)
                } else {
                    String::new()
                }
            );
            match c.answer_frame {
                Some(f) => {
                    lines.push(format!("{a}->>{b}: {}", text(&what)));
                    lines.push(format!(
                        "{b}-->>{a}: {}",
                        text(&format!("#{f} {}", c.result))
                    ));
                }
                None => lines.push(format!("{a}-x{b}: {}", text(&format!("{what} no answer")))),
            }
        }
        let title = format!("ICE {} — {}", s.ufrags.join("/"), s.outcome);
        block(out, &format!("ICE session {}", n + 1), &title, &p, &lines)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn escapes_once() {
        assert_eq!(text("#1 a;b\nc"), "#35;1 a#59;b c");
    }
}
