//! `edgetrace sip` against the lab truth files (tshark 4.0 + the scenario):
//! every SIP message is found with the same start line, Call-ID, CSeq and
//! the same Via / Record-Route / Route lists in the same order.

use serde_json::Value;

use super::common::{edgetrace, sample, shared};

fn sip_json(path: &std::path::Path) -> Value {
    let out = edgetrace()
        .args(["sip", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(3)));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_lab_sip_message_matches_the_truth() {
    let Some(s) = shared() else { return };
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in [
        "sip-invite-udp",
        "sip-invite-tcp",
        "sip-service-mras",
        "sip-errors",
        "session-combined.client-side",
    ] {
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(s.join(format!("captures/{name}.truth.json"))).unwrap(),
        )
        .unwrap();
        let ours = sip_json(&s.join(format!("captures/{name}.pcap")));
        let msgs = ours["messages"].as_array().unwrap();
        let want = truth["sip"].as_array().unwrap();
        if msgs.len() != want.len() {
            failures.push(format!(
                "{name}: {} messages, truth {}",
                msgs.len(),
                want.len()
            ));
        }
        for t in want {
            checked += 1;
            let frame = t["frame"].as_u64().unwrap();
            let found = msgs.iter().find(|m| {
                (m["frame"].as_u64() == Some(frame) || m["end_frame"].as_u64() == Some(frame))
                    && m["call_id"] == t["Call-ID"]
                    && m["cseq"] == t["CSeq"]
            });
            let Some(m) = found else {
                failures.push(format!(
                    "{name}: frame {frame} {} not found",
                    t["start_line"]
                ));
                continue;
            };
            let start = t["start_line"].as_str().unwrap();
            let summary = m["summary"].as_str().unwrap();
            if !start.contains(summary.split_whitespace().next().unwrap()) {
                failures.push(format!("{name}: frame {frame} {start} vs {summary}"));
            }
            let vias: Vec<String> = m["via"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["raw"].as_str().unwrap().to_string())
                .collect();
            if vias != strs(&t["via"]) {
                failures.push(format!(
                    "{name}: frame {frame} Via {vias:?} vs {:?}",
                    strs(&t["via"])
                ));
            }
            if strs(&m["record_route"]) != strs(&t["record_route"])
                || strs(&m["route"]) != strs(&t["route"])
            {
                failures.push(format!("{name}: frame {frame} Record-Route/Route differ"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 81);
}

/// The callee-side INVITE carries 3 Vias and 2 Record-Routes, and the hop
/// chain reads UAC → edge → director (→ UAS).
#[test]
fn invite_hop_chain_through_edge_and_director() {
    let v = sip_json(&sample("sip-invite-udp.pcap"));
    let callee_invite = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "INVITE" && m["dst"] == "127.20.3.3:5060" && m["status"].is_null())
        .unwrap();
    assert_eq!(callee_invite["via"].as_array().unwrap().len(), 3);
    assert_eq!(callee_invite["record_route"].as_array().unwrap().len(), 2);
    let d = &v["dialogs"][0];
    assert_eq!(
        strs(&d["hop_chain"]),
        ["127.20.3.1", "127.20.3.2", "127.20.3.4", "127.20.3.3"]
    );
    assert_eq!(d["final_status"], "200 OK");
    assert!(d["ringing_s"].as_f64().unwrap() < d["final_s"].as_f64().unwrap());
}

/// 404 with ms-diagnostics 4005 and 504 with 1046, decoded.
#[test]
fn sip_errors_diagnostics() {
    let Some(s) = shared() else { return };
    let v = sip_json(&s.join("captures/sip-errors.pcap"));
    let diag = |status: u64| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"].as_u64() == Some(status))
            .flat_map(|m| m["diagnostics"].as_array().cloned().unwrap_or_default())
            .map(|d| d["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(diag(404).iter().any(|c| c == "4005"), "{:?}", diag(404));
    assert!(diag(504).iter().any(|c| c == "1046"), "{:?}", diag(504));
}
