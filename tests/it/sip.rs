//! `edgetrace sip` against the lab truth files (tshark 4.0 + the scenario):
//! every SIP message is found with the same start line, Call-ID, CSeq and
//! the same Via / Record-Route / Route lists in the same order.

use serde_json::Value;

use super::common::{edgetrace, root, sample, shared, shared_capture, temp_file};

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

/// Our message at `frame` (where it starts or, spanning TCP segments, ends)
/// with this Call-ID and CSeq.
fn find_message<'a>(
    msgs: &'a [Value],
    frame: u64,
    call_id: &Value,
    cseq: &Value,
) -> Option<&'a Value> {
    msgs.iter().find(|m| {
        (m["frame"].as_u64() == Some(frame) || m["end_frame"].as_u64() == Some(frame))
            && &m["call_id"] == call_id
            && &m["cseq"] == cseq
    })
}

/// Compares the Via, Record-Route and Route lists, entry by entry in order,
/// with an expectation that has them under `via`, `record_route`, `route`.
fn compare_routing(name: &str, frame: u64, m: &Value, t: &Value, failures: &mut Vec<String>) {
    let vias: Vec<String> = m["via"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["raw"].as_str().unwrap().to_string())
        .collect();
    for (what, ours, theirs) in [
        ("Via", vias, strs(&t["via"])),
        (
            "Record-Route",
            strs(&m["record_route"]),
            strs(&t["record_route"]),
        ),
        ("Route", strs(&m["route"]), strs(&t["route"])),
    ] {
        if ours != theirs {
            failures.push(format!(
                "{name}: frame {frame} {what} {ours:?} vs {theirs:?}"
            ));
        }
    }
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
            let Some(m) = find_message(msgs, frame, &t["Call-ID"], &t["CSeq"]) else {
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
            compare_routing(name, frame, m, t, &mut failures);
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

/// The public SIP captures against tshark's decode (tests/expected/sip/, made
/// by scripts/tshark-sip.py): every message tshark lists is found at its
/// frame with the same method or status, Call-ID, CSeq and the same Via /
/// Record-Route / Route entries in the same order, and we list no message
/// tshark does not.
#[test]
fn every_corpus_sip_message_matches_tshark() {
    let Some(_) = shared() else { return };
    let mut failures = Vec::new();
    let mut total = 0;
    for e in std::fs::read_dir(root().join("tests/expected/sip")).unwrap() {
        let exp: Value =
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
        let name = exp["capture"].as_str().unwrap();
        let Some(path) = shared_capture(name) else {
            continue;
        };
        let ours = sip_json(&path);
        let msgs = ours["messages"].as_array().unwrap();
        let want = exp["messages"].as_array().unwrap();
        if msgs.len() != want.len() {
            failures.push(format!(
                "{name}: {} messages, tshark {}",
                msgs.len(),
                want.len()
            ));
        }
        for t in want {
            total += 1;
            let frame = t["frame"].as_u64().unwrap();
            let Some(m) = find_message(msgs, frame, &t["call_id"], &t["cseq"]) else {
                failures.push(format!("{name}: frame {frame} {} not found", t["cseq"]));
                continue;
            };
            if m["method"] != t["method"] && t["method"].is_string()
                || m["status"] != t["status"] && t["status"].is_u64()
            {
                failures.push(format!("{name}: frame {frame} start line differs"));
            }
            compare_routing(name, frame, m, t, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(total, 705, "messages in tests/expected/sip");
}

fn sip_json_args(path: &std::path::Path, extra: &[&str]) -> Value {
    let out = edgetrace()
        .args(["sip", "--json"])
        .args(extra)
        .arg(path)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(3)));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn host_port(a: &Value, p: &Value) -> String {
    let a = a.as_str().unwrap();
    let p = match p {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if a.contains(':') {
        format!("[{a}]:{p}")
    } else {
        format!("{a}:{p}")
    }
}

/// Every SDP body and MRAS body of the lab captures, against the truth's
/// parse: m-lines, ICE credentials (password redacted by default, shown with
/// --show-secrets), each candidate field by field; the MRAS relay list and
/// credentials (password redacted).
#[test]
fn sdp_and_mras_bodies_match_the_truth() {
    let Some(s) = shared() else { return };
    let (mut candidates, mut relays) = (0, 0);
    let mut failures = Vec::new();
    for name in [
        "sip-invite-udp",
        "sip-invite-tcp",
        "sip-service-mras",
        "session-combined.client-side",
    ] {
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(s.join(format!("captures/{name}.truth.json"))).unwrap(),
        )
        .unwrap();
        let path = s.join(format!("captures/{name}.pcap"));
        let redacted = sip_json(&path);
        let shown = sip_json_args(&path, &["--show-secrets"]);
        for t in truth["sip"].as_array().unwrap() {
            let frame = t["frame"].as_u64().unwrap();
            let find = |v: &Value| -> Value {
                v["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| {
                        (m["frame"].as_u64() == Some(frame)
                            || m["end_frame"].as_u64() == Some(frame))
                            && m["cseq"] == t["CSeq"]
                    })
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let (m, ms) = (find(&redacted), find(&shown));
            if let Some(sdp) = t.get("sdp") {
                let want = sdp["media"].as_array().unwrap();
                let got = m["sdp"][0]["media"].as_array().cloned().unwrap_or_default();
                if got.len() != want.len() {
                    failures.push(format!(
                        "{name} {frame}: {} m-lines vs {}",
                        got.len(),
                        want.len()
                    ));
                    continue;
                }
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    let gs = &ms["sdp"][0]["media"][i];
                    if g["kind"] != w["media"]
                        || g["port"] != w["port"]
                        || g["profile"] != w["proto"]
                    {
                        failures.push(format!("{name} {frame}: m-line {i} {g} vs {}", w["m"]));
                    }
                    if g["ice_ufrag"] != w["ice-ufrag"] || gs["ice_pwd"] != w["ice-pwd"] {
                        failures.push(format!("{name} {frame}: ICE credentials differ"));
                    }
                    let pwd_len = w["ice-pwd"].as_str().map(|p| p.len()).unwrap_or(0);
                    if g["ice_pwd"] != format!("<redacted {pwd_len} chars>").as_str() {
                        failures.push(format!(
                            "{name} {frame}: ice-pwd not redacted: {}",
                            g["ice_pwd"]
                        ));
                    }
                    let gc = g["candidates"].as_array().unwrap();
                    let wc = w["candidates"].as_array().unwrap();
                    if gc.len() != wc.len() {
                        failures.push(format!(
                            "{name} {frame}: {} candidates vs {}",
                            gc.len(),
                            wc.len()
                        ));
                    }
                    for (a, b) in gc.iter().zip(wc) {
                        candidates += 1;
                        let related = b
                            .get("raddr")
                            .map(|r| Value::String(host_port(r, &b["rport"])))
                            .unwrap_or(Value::Null);
                        let same = a["attr"] == b["attr"]
                            && a["foundation"] == b["foundation"]
                            && a["component"] == b["component"]
                            && a["transport"] == b["transport"]
                            && a["priority"] == b["priority"]
                            && a["address"] == host_port(&b["address"], &b["port"]).as_str()
                            && a["typ"] == b["typ"]
                            && a["related"] == related;
                        if !same {
                            failures.push(format!("{name} {frame}: {a} vs {}", b["raw"]));
                        }
                    }
                }
            }
            if let Some(x) = t.get("mras") {
                let g = &m["mras"];
                if g["kind"] != x["kind"] {
                    failures.push(format!("{name} {frame}: MRAS kind {}", g["kind"]));
                }
                if x["kind"] == "request" {
                    if g["identity"] != x["identity"]
                        || g["location"] != x["location"]
                        || g["duration"] != x["duration"]
                    {
                        failures.push(format!("{name} {frame}: MRAS request {g}"));
                    }
                    continue;
                }
                let c = &x["credentials"];
                let pwd = c["password"].as_str().unwrap();
                if g["username"] != c["username"]
                    || g["password"] != format!("<redacted {} chars>", pwd.len()).as_str()
                    || ms["mras"]["password"] != pwd
                    || g["duration"] != c["duration"]
                {
                    failures.push(format!("{name} {frame}: MRAS credentials {g}"));
                }
                let want: Vec<(Value, Value, String, String)> = x["media_relays"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        let host = r
                            .get("hostName")
                            .or(r.get("directIPAddress"))
                            .cloned()
                            .unwrap();
                        (
                            r["location"].clone(),
                            host,
                            r["udpPort"].as_str().unwrap().to_string(),
                            r["tcpPort"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                let got: Vec<(Value, Value, String, String)> = g["relays"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (
                            r["location"].clone(),
                            r["host"].clone(),
                            r["udp_port"].to_string(),
                            r["tcp_port"].to_string(),
                        )
                    })
                    .collect();
                relays += got.len();
                if got != want {
                    failures.push(format!("{name} {frame}: relays {got:?} vs {want:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 10 candidates × 3 copies × 2 captures + the session's offer and answer (×2 hops)
    assert!(candidates >= 60, "{candidates}");
    assert!(relays >= 6, "{relays}");
}

/// The session's INVITE leaves the caller as two IP fragments: it is
/// reassembled and its candidates are the agent's real ones.
#[test]
fn fragmented_invite_lists_its_candidates() {
    let v = sip_json(&sample("session-combined.client-side.pcap"));
    let d = v["dialogs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["method"] == "INVITE")
        .unwrap();
    let offer: Vec<&Value> = d["media"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["side"] == "offer")
        .collect();
    assert_eq!(offer.len(), 1);
    let cands: Vec<&str> = offer[0]["media"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["typ"].as_str().unwrap())
        .collect();
    assert_eq!(cands, ["host", "srflx", "relay"]);
    assert_eq!(offer[0]["media"]["ice_ufrag"], "Aext");
    let answer: Vec<&Value> = d["media"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["side"] == "answer")
        .collect();
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0]["media"]["ice_ufrag"], "Bint");
}

/// `--roles FILE` names the hops of the path; a bad file is exit 2 naming the line.
#[test]
fn roles_file_labels_the_hop_chain() {
    let roles = temp_file(
        "roles.txt",
        b"# lab plan\n127.20.3.1 = client\n127.20.3.2 = edge\n\"127.20.3.4\" = \"director\"\n127.20.3.0/24 = lab\n",
    );
    let v = sip_json_args(
        &sample("sip-invite-udp.pcap"),
        &["--roles", roles.to_str().unwrap()],
    );
    assert_eq!(
        strs(&v["dialogs"][0]["hop_chain"]),
        [
            "client 127.20.3.1",
            "edge 127.20.3.2",
            "director 127.20.3.4",
            "lab 127.20.3.3"
        ]
    );
    assert_eq!(v["messages"][0]["src_role"], "client");
    let roles = temp_file("roles-bad.txt", b"127.20.3.1 = client\nnonsense\n");
    let out = edgetrace()
        .args(["sip", "--roles"])
        .arg(&roles)
        .arg(sample("sip-invite-udp.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

/// A TCP stream the way real stacks write it: a CRLF keep-alive, junk, one
/// message over three segments, two messages in one segment, a padded
/// Content-Length, and a message whose Content-Length is missing.
#[test]
fn tcp_framing_keepalives_junk_and_split_messages() {
    let (c, s) = (([10, 0, 0, 1], 50000), ([10, 0, 0, 2], 5061));
    let invite = b"INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:50000;branch=z9hG4bK1\r\nCall-ID: a1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length:   4\r\n\r\nv=0\n";
    let two = b"SIP/2.0 100 Trying\r\nCall-ID: a1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\nSIP/2.0 180 Ringing\r\nCall-ID: a1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
    let nolen = b"SIP/2.0 200 OK\r\nCall-ID: a1\r\nCSeq: 1 INVITE\r\n\r\n";
    let mut w = super::common::PcapWriter::new(1);
    let mut cseq = 1000u32;
    let mut sseq = 5000u32;
    w.packet(0, &super::common::tcp_frame(c, s, cseq - 1, "S", b""));
    w.packet(1, &super::common::tcp_frame(s, c, sseq - 1, "SA", b""));
    let mut t = 2;
    for chunk in [
        &b"\r\n\r\nsome junk\r\n"[..],
        &invite[..40],
        &invite[40..100],
        &invite[100..],
    ] {
        w.packet(t, &super::common::tcp_frame(c, s, cseq, "AP", chunk));
        cseq += chunk.len() as u32;
        t += 1;
    }
    for chunk in [&two[..], &nolen[..]] {
        w.packet(t, &super::common::tcp_frame(s, c, sseq, "AP", chunk));
        sseq += chunk.len() as u32;
        t += 1;
    }
    let p = temp_file("sip-framing.pcap", &w.bytes);
    let v = sip_json(&p);
    let msgs = v["messages"].as_array().unwrap();
    let got: Vec<(u64, Option<u64>, String)> = msgs
        .iter()
        .map(|m| {
            (
                m["frame"].as_u64().unwrap(),
                m["end_frame"].as_u64(),
                m["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (4, Some(6), "INVITE sip:bob@x".to_string()),
            (7, None, "100 Trying".to_string()),
            (7, None, "180 Ringing".to_string()),
            (8, None, "200 OK".to_string()),
        ]
    );
    assert_eq!(msgs[0]["body_length"], 4);
    assert_eq!(v["summary"]["keepalive_bytes"], 4);
    let problems = strs(&v["summary"]["problems"]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0],
        "frame 3 (tcp 0): 11 bytes of junk before the first SIP message skipped"
    );
}

/// A message claiming a 2 GB body is reported and skipped, never waited
/// for; the message after it on the same stream is still found.
#[test]
fn two_gigabyte_content_length_is_reported_not_awaited() {
    let (c, s) = (([10, 0, 0, 1], 50000), ([10, 0, 0, 2], 5061));
    let liar = b"INVITE sip:bob@x SIP/2.0\r\nCall-ID: big\r\nCSeq: 1 INVITE\r\nContent-Length: 2000000000\r\n\r\n";
    let next = b"OPTIONS sip:bob@x SIP/2.0\r\nCall-ID: after\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let mut w = super::common::PcapWriter::new(1);
    w.packet(0, &super::common::tcp_frame(c, s, 999, "S", b""));
    w.packet(1, &super::common::tcp_frame(s, c, 4999, "SA", b""));
    w.packet(2, &super::common::tcp_frame(c, s, 1000, "AP", liar));
    w.packet(
        3,
        &super::common::tcp_frame(c, s, 1000 + liar.len() as u32, "AP", next),
    );
    let t = std::time::Instant::now();
    let v = sip_json(&temp_file("sip-2gb.pcap", &w.bytes));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    let problems = strs(&v["summary"]["problems"]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Content-Length 2000000000 exceeds")),
        "{problems:?}"
    );
    assert!(
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["call_id"] == "after"),
        "{v}"
    );
}

/// `sip --json` is written message by message; it must be byte for byte
/// the JSON of the whole report built in memory, with and without a
/// `--dialog` filter.
#[test]
fn streamed_json_is_the_built_report() {
    use edgetrace::analyze::sip::{merge, SipFinder};
    use edgetrace::capture::CaptureReader;
    use edgetrace::model::sip::{Messages, SipReport};
    use edgetrace::model::Redaction;
    use edgetrace::roles::Roles;
    let roles = Roles::builtin();
    for name in ["sip-invite-udp.pcap", "session-combined.client-side.pcap"] {
        let reader = CaptureReader::open(&sample(name)).unwrap();
        let (run, shards) =
            edgetrace::pipeline::run_sharded(reader, &Default::default(), SipFinder::default())
                .unwrap();
        let core = merge(shards);
        let r = Redaction::default();
        let built = SipReport::build(&run, &core, name, r, &roles);
        let bare = SipReport::build_with(&run, &core, name, r, &roles, Messages::Streamed);
        assert!(bare.messages.is_empty() && !built.messages.is_empty());
        let a = serde_json::to_string_pretty(&built).unwrap();
        let b = serde_json::to_string_pretty(&bare.stream(&run, &core, r, &roles, None)).unwrap();
        assert_eq!(a, b, "{name}");
        let call = built.dialogs[0].call_id.clone();
        let mut one = built.clone();
        one.messages
            .retain(|m| m.call_id.as_deref() == Some(call.as_str()));
        one.dialogs.retain(|d| d.call_id == call);
        let mut bare_one = bare.clone();
        bare_one.dialogs.retain(|d| d.call_id == call);
        let a = serde_json::to_string_pretty(&one).unwrap();
        let b = serde_json::to_string_pretty(&bare_one.stream(&run, &core, r, &roles, Some(&call)))
            .unwrap();
        assert_eq!(a, b, "{name} --dialog {call}");
    }
}

/// `report` folds SIP dialogs during the pass, batch by batch, and keeps no
/// message; `sip --json` folds them from every message at the end.  Both
/// must give the same dialogs (the report's ladder cut at 200 steps), the
/// same counts, on every sample and shared capture with SIP, and on a
/// capture whose dialog shows a response before its request (the fold
/// waits for the request) with another dialog's messages in between.
#[test]
fn report_dialogs_folded_during_the_pass_are_the_whole_capture_fold() {
    use super::common::{sip_msg as msg, udp_frame, PcapWriter};
    let (a, b) = (([10, 0, 0, 1], 5060), ([10, 0, 0, 2], 5060));
    let mut w = PcapWriter::new(1);
    // call "late": its 180 comes first (the capture started mid-call), then
    // its INVITE retransmission, then 200; call "other" in between; then
    // call "orphan" with responses only
    let frames = [
        (b, a, msg("SIP/2.0 180 Ringing", "late", "1 INVITE")),
        (a, b, msg("INVITE sip:b@x SIP/2.0", "other", "1 INVITE")),
        (a, b, msg("INVITE sip:b@x SIP/2.0", "late", "1 INVITE")),
        (b, a, msg("SIP/2.0 200 OK", "late", "1 INVITE")),
        (
            b,
            a,
            msg("SIP/2.0 503 Service Unavailable", "other", "1 INVITE"),
        ),
        (
            b,
            a,
            msg("SIP/2.0 481 Call Does Not Exist", "orphan", "7 BYE"),
        ),
        (
            b,
            a,
            msg("SIP/2.0 481 Call Does Not Exist", "orphan", "7 BYE"),
        ),
    ];
    for (i, (src, dst, m)) in frames.iter().enumerate() {
        w.packet(1_000_000 + i as u64 * 1000, &udp_frame(*src, *dst, m));
    }
    let late = temp_file("late-request.pcap", &w.bytes);
    let report_json = |p: &std::path::Path| {
        let out = edgetrace()
            .args(["report", "--json"])
            .arg(p)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let mut captures = vec![late.clone()];
    for e in std::fs::read_dir(root().join("samples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
            captures.push(p);
        }
    }
    if let Some(s) = shared() {
        for dir in ["captures", "corpus/public/dev"] {
            for e in std::fs::read_dir(s.join(dir)).unwrap() {
                let p = e.unwrap().path();
                let n = p.to_string_lossy().to_string();
                let capture = n.ends_with(".pcap") || n.ends_with(".pcapng");
                if capture && (n.contains("sip") || n.contains("session")) {
                    captures.push(p);
                }
            }
        }
    }
    captures.sort();
    let mut with_dialogs = 0;
    for c in &captures {
        let report = report_json(c);
        let sip = sip_json(c);
        let name = c.display();
        assert_eq!(
            report["counts"]["sip_messages"], sip["summary"]["messages"],
            "{name}"
        );
        assert_eq!(
            report["counts"]["sip_dialogs"], sip["summary"]["dialogs"],
            "{name}"
        );
        let mut whole = sip["dialogs"].as_array().unwrap().clone();
        for d in &mut whole {
            let ladder = d["ladder"].as_array_mut().unwrap();
            if ladder.len() > 200 {
                let cut = ladder.len() - 200;
                ladder.truncate(200);
                d["ladder_omitted"] = (d["ladder_omitted"].as_u64().unwrap() + cut as u64).into();
            }
        }
        assert_eq!(report["sip"].as_array().unwrap(), &whole, "{name}");
        with_dialogs += usize::from(!whole.is_empty());
    }
    let v = sip_json(&late);
    let d = v["dialogs"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    // the 180 before the INVITE is still the dialog's ringing answer
    assert_eq!(d[0]["call_id"], "late");
    assert_eq!(d[0]["method"], "INVITE");
    assert_eq!(d[0]["final_status"], "200 OK");
    assert!(d[0]["ringing_s"].as_f64().unwrap() < 0.0);
    assert_eq!(d[2]["method"], Value::Null);
    // the fold made the error findings: the 503 (frame 5), and the 481 once
    // for its two copies (frames 6 and 7)
    let report = report_json(&late);
    let errors: Vec<(u64, u64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "sip.error-response")
        .map(|f| {
            (
                f["frames"][0].as_u64().unwrap(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(errors, [(5, 1), (6, 1)], "{report}");
    assert!(with_dialogs >= 3, "{with_dialogs} captures with dialogs");
}
