//! `--format mermaid`: every diagram edgetrace emits is checked against a
//! strict grammar of the Mermaid sequenceDiagram subset we use (fenced
//! block, `sequenceDiagram`, `title`, declared participants, the four arrow
//! kinds, notes; no raw `;` or `#` in text, which Mermaid would misread),
//! and with the Mermaid CLI too when `mmdc` is installed.

use std::collections::HashSet;
use std::path::PathBuf;

use super::common::{edgetrace, root, shared};

/// Checks one Markdown document of diagrams; returns how many diagrams.
fn validate(doc: &str) -> Result<usize, String> {
    let mut lines = doc.lines().peekable();
    let mut diagrams = 0;
    while let Some(l) = lines.next() {
        if l.trim().is_empty() || l.starts_with("### ") {
            continue;
        }
        if l != "```mermaid" {
            return Err(format!("outside a block: {l:?}"));
        }
        if lines.next() != Some("sequenceDiagram") {
            return Err("block does not start with sequenceDiagram".into());
        }
        let mut declared: HashSet<String> = HashSet::new();
        let mut body = 0;
        loop {
            let Some(l) = lines.next() else {
                return Err("unterminated block".into());
            };
            if l == "```" {
                break;
            }
            let l = l
                .strip_prefix("    ")
                .ok_or_else(|| format!("not indented: {l:?}"))?;
            let text_ok = |t: &str| {
                let bare = t.replace("#35;", "").replace("#59;", "");
                !t.is_empty() && !bare.contains(';') && !bare.contains('#')
            };
            if let Some(t) = l.strip_prefix("title ") {
                if !text_ok(t) {
                    return Err(format!("bad title {t:?}"));
                }
            } else if let Some(rest) = l.strip_prefix("participant ") {
                let (id, label) = rest
                    .split_once(" as ")
                    .ok_or_else(|| format!("bad participant {l:?}"))?;
                if !id.chars().all(|c| c.is_ascii_alphanumeric()) || !text_ok(label) {
                    return Err(format!("bad participant {l:?}"));
                }
                if !declared.insert(id.to_string()) {
                    return Err(format!("participant {id} declared twice"));
                }
            } else if let Some(rest) = l.strip_prefix("Note over ") {
                let (who, t) = rest
                    .split_once(": ")
                    .ok_or_else(|| format!("bad note {l:?}"))?;
                if who.split(',').any(|p| !declared.contains(p)) || !text_ok(t) {
                    return Err(format!("bad note {l:?}"));
                }
                body += 1;
            } else {
                let (arrow_part, t) = l
                    .split_once(": ")
                    .ok_or_else(|| format!("bad line {l:?}"))?;
                let arrow = ["-->>", "->>", "--x", "-x"]
                    .into_iter()
                    .find(|a| arrow_part.contains(a))
                    .ok_or_else(|| format!("no arrow in {l:?}"))?;
                let (a, b) = arrow_part.split_once(arrow).unwrap();
                if !declared.contains(a) || !declared.contains(b) || !text_ok(t) {
                    return Err(format!("bad message {l:?}"));
                }
                body += 1;
            }
        }
        if body == 0 {
            return Err("empty diagram".into());
        }
        diagrams += 1;
    }
    Ok(diagrams)
}

#[test]
fn diagrams_are_valid_mermaid() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    if let Some(s) = shared() {
        for n in [
            "ice-oneway-req",
            "ice-udp-nat",
            "sip-errors",
            "turn-errors",
            "sip-service-mras",
        ] {
            inputs.push(s.join(format!("captures/{n}.pcap")));
        }
    }
    let mmdc = std::process::Command::new("mmdc")
        .arg("--version")
        .output()
        .is_ok();
    let mut total = 0;
    for p in &inputs {
        for cmd in ["sip", "turn", "ice"] {
            let out = edgetrace()
                .args([cmd, "--format", "mermaid"])
                .arg(p)
                .output()
                .unwrap();
            assert!(matches!(out.status.code(), Some(0) | Some(3)));
            let doc = String::from_utf8(out.stdout).unwrap();
            match validate(&doc) {
                Ok(n) => total += n,
                Err(e) => panic!("{cmd} {}: {e}\n{doc}", p.display()),
            }
            if mmdc && !doc.is_empty() {
                let md = std::env::temp_dir()
                    .join(format!("edgetrace-mermaid-{}.md", std::process::id()));
                std::fs::write(&md, &doc).unwrap();
                let st = std::process::Command::new("mmdc")
                    .arg("-i")
                    .arg(&md)
                    .arg("-o")
                    .arg(md.with_extension("out.md"))
                    .status()
                    .unwrap();
                assert!(st.success(), "mmdc rejects {cmd} on {}", p.display());
            }
        }
    }
    assert!(total >= 10, "{total} diagrams");
}

#[test]
fn validator_rejects_what_mermaid_would() {
    assert!(
        validate("```mermaid\nsequenceDiagram\n    P1->>P2: x\n```\n").is_err(),
        "undeclared"
    );
    assert!(
        validate("```mermaid\nsequenceDiagram\n    participant P1 as a\n    P1->>P1: a;b\n```\n")
            .is_err(),
        "raw ;"
    );
    assert!(validate(
        "```mermaid\nsequenceDiagram\n    participant P1 as a\n    P1->>P1: #35;1 ok\n```\n"
    )
    .is_ok());
}

#[test]
fn mermaid_only_where_there_are_diagrams() {
    let out = edgetrace()
        .args(["tls", "--format", "mermaid"])
        .arg(root().join("samples/sip-invite-udp.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sip, turn and ice"));
}
