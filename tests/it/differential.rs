//! Flows, frame numbers, stream indices and per-direction frame and byte
//! counts agree with tshark on every capture in ../shared.
//!
//! The expectations in tests/expected/flows/ were generated once with
//! `scripts/tshark-flows.py` (TShark 4.0.17, default preferences); tshark is
//! not needed to run this test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::common::{flows_json, root, shared, shared_capture};

/// Captures where Wireshark's numbering is known to differ, with the reason.
/// For these the test checks what still must hold (frame count, TCP streams,
/// total UDP frames) instead of every UDP index.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "sip-udp_ice-candidates-in-sdp_xlite-zfone-asterisk.pcap",
    "Wireshark's SDP dissector pre-creates one-sided RTP conversations (address+port, any peer) \
     from each offer/answer, so one UDP 5-tuple gets several udp.stream values and a packet to a \
     third party joins them; edgetrace numbers plain 5-tuples (its UDP filters spell the tuple out)",
)];

fn expectations() -> Vec<(String, Value)> {
    let dir = root().join("tests/expected/flows");
    let mut v: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("tests/expected/flows")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let j: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (j["capture"].as_str().unwrap().to_string(), j)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// (transport, stream) → (first endpoint, second endpoint, first, last, frames a→b, b→a, bytes a→b, b→a)
type Row = (String, String, u64, u64, u64, u64, u64, u64);

fn ours(v: &Value) -> BTreeMap<(String, u64), Row> {
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                (
                    f["transport"].as_str().unwrap().to_string(),
                    f["stream"].as_u64().unwrap(),
                ),
                (
                    f["client"].as_str().unwrap().to_string(),
                    f["server"].as_str().unwrap().to_string(),
                    f["first_frame"].as_u64().unwrap(),
                    f["last_frame"].as_u64().unwrap(),
                    f["packets"]["to_server"].as_u64().unwrap(),
                    f["packets"]["to_client"].as_u64().unwrap(),
                    f["bytes"]["to_server"].as_u64().unwrap(),
                    f["bytes"]["to_client"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn theirs(v: &Value) -> BTreeMap<(String, u64), Row> {
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                (
                    f["transport"].as_str().unwrap().to_string(),
                    f["stream"].as_u64().unwrap(),
                ),
                (
                    f["a"].as_str().unwrap().to_string(),
                    f["b"].as_str().unwrap().to_string(),
                    f["first_frame"].as_u64().unwrap(),
                    f["last_frame"].as_u64().unwrap(),
                    f["frames_a_to_b"].as_u64().unwrap(),
                    f["frames_b_to_a"].as_u64().unwrap(),
                    f["bytes_a_to_b"].as_u64().unwrap(),
                    f["bytes_b_to_a"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// tshark's "a" is the sender of the first frame; ours is the SYN sender, which
/// is the same except when the capture starts with the SYN/ACK: compare both ways.
fn same(a: &Row, b: &Row) -> bool {
    a == b || *a == (b.1.clone(), b.0.clone(), b.2, b.3, b.5, b.4, b.7, b.6)
}

#[test]
fn flows_agree_with_tshark_on_every_shared_capture() {
    if shared().is_none() {
        return;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, exp) in expectations() {
        let Some(path) = shared_capture(&name) else {
            failures.push(format!("{name}: expectation without capture"));
            continue;
        };
        let (code, got, stderr) = flows_json(&path);
        if exp["frames"].as_u64() == Some(0)
            && exp["flows"].as_array().unwrap().is_empty()
            && code == 2
        {
            // unreadable for tshark too (checked with its message in broken.rs)
            checked += 1;
            continue;
        }
        if code != 0 && code != 3 {
            failures.push(format!("{name}: exit {code}: {stderr}"));
            continue;
        }
        if got["capture"]["frames"] != exp["frames"] {
            failures.push(format!(
                "{name}: frames {} vs tshark {}",
                got["capture"]["frames"], exp["frames"]
            ));
        }
        let (o, t) = (ours(&got), theirs(&exp));
        if let Some((_, why)) = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == name) {
            eprintln!("{name}: UDP stream indices not compared: {why}");
            let tcp = |m: &BTreeMap<(String, u64), Row>| {
                m.iter()
                    .filter(|(k, _)| k.0 == "tcp")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            };
            if tcp(&o) != tcp(&t) {
                failures.push(format!("{name}: TCP flows differ"));
            }
            let udp_frames = |m: &BTreeMap<(String, u64), Row>| -> u64 {
                m.iter()
                    .filter(|(k, _)| k.0 == "udp")
                    .map(|(_, v)| v.4 + v.5)
                    .sum()
            };
            if udp_frames(&o) != udp_frames(&t) {
                failures.push(format!(
                    "{name}: UDP frame totals {} vs {}",
                    udp_frames(&o),
                    udp_frames(&t)
                ));
            }
            // the first UDP conversation precedes any SDP and must agree exactly
            let k = ("udp".to_string(), 0);
            if !matches!((o.get(&k), t.get(&k)), (Some(a), Some(b)) if same(a, b)) {
                failures.push(format!("{name}: udp.stream 0 differs"));
            }
            checked += 1;
            continue;
        }
        for key in o
            .keys()
            .chain(t.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            match (o.get(key), t.get(key)) {
                (Some(a), Some(b)) if same(a, b) => {}
                (a, b) => failures.push(format!(
                    "{name}: {}.stream {}: ours {a:?} tshark {b:?}",
                    key.0, key.1
                )),
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 60, "only {checked} captures checked");
}

/// A capture added to ../shared without an expectation would go untested.
#[test]
fn every_shared_capture_has_an_expectation() {
    let Some(s) = shared() else { return };
    let have: std::collections::BTreeSet<String> =
        expectations().into_iter().map(|(n, _)| n).collect();
    let mut missing = Vec::new();
    for dir in [s.join("captures"), s.join("corpus/public/dev")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p: PathBuf = e.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            if (n.ends_with(".pcap") || n.ends_with(".pcapng")) && !have.contains(&n) {
                missing.push(n);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "run scripts/tshark-flows.py on: {missing:?}"
    );
}
