//! `edgetrace stun` against tshark: every STUN message tshark 4.0 decodes
//! (with the stun_turn heuristic, so also inside ChannelData) is found with
//! the same frame, type, transaction id and decoded addresses.
//! Expectations: tests/expected/stun/, made by scripts/tshark-stun.py.

use std::collections::BTreeMap;

use serde_json::Value;

use super::common::{edgetrace, root, sample, shared, shared_capture};

/// Where we decode more than tshark, and why (checked exactly).
const MORE_THAN_TSHARK: &[(&str, usize, &str)] = &[
    (
        "stun-turn_mixed_ice-tcp-vlan_google-fb-turn_ipv6_chandata.pcapng",
        37,
        "relayed ICE checks inside the DATA attribute of TURN Send/Data indications (UDP and TCP), \
         which tshark shows as opaque data",
    ),
    (
        "turn-udp_signal_allocate-refresh-permission-channelbind.pcapng",
        6,
        "relayed STUN inside the DATA attribute of Send/Data indications",
    ),
];

fn stun_json(path: &std::path::Path) -> Value {
    let out = edgetrace()
        .args(["stun", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every (type, value) of attributes whose value is a string (addresses among them).
fn addresses(m: &Value) -> Vec<(String, String)> {
    m["attrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| {
            Some((
                a["type"].as_str()?.to_string(),
                a["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn every_message_tshark_decodes_is_found_with_the_same_fields() {
    if shared().is_none() {
        return;
    }
    let dir = root().join("tests/expected/stun");
    let mut failures = Vec::new();
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let exp: Value =
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
        let name = exp["capture"].as_str().unwrap().to_string();
        let tshark = exp["messages"].as_array().unwrap();
        let Some(path) = shared_capture(&name) else {
            continue;
        };
        if tshark.is_empty() && name.starts_with("broken_") {
            continue;
        }
        let ours = stun_json(&path);
        let ours = ours["messages"].as_array().unwrap().clone();
        // index ours by (frame, type, txid); a TCP message may span frames: tshark names the last
        let mut index: BTreeMap<(u64, String, String), Vec<&Value>> = BTreeMap::new();
        for m in &ours {
            let key = |f: u64| {
                (
                    f,
                    m["type"].as_str().unwrap().to_string(),
                    m["txid"].as_str().unwrap().to_string(),
                )
            };
            index
                .entry(key(m["frame"].as_u64().unwrap()))
                .or_default()
                .push(m);
            if let Some(end) = m["end_frame"].as_u64() {
                index.entry(key(end)).or_default().push(m);
            }
        }
        for t in tshark {
            total += 1;
            let key = (
                t["frame"].as_u64().unwrap(),
                t["type"].as_str().unwrap().to_string(),
                t["txid"].as_str().unwrap().to_string(),
            );
            let Some(cands) = index.get(&key) else {
                failures.push(format!(
                    "{name}: frame {} {} {} not found",
                    key.0, key.1, key.2
                ));
                continue;
            };
            let want: Vec<(String, String)> = t["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a[0].as_str().unwrap().to_string(),
                        a[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            // tshark's addresses ⊆ ours (classic 0x0020 is decoded by us only)
            if !cands.iter().any(|m| {
                let have = addresses(m);
                want.iter().all(|w| have.contains(w))
            }) {
                failures.push(format!(
                    "{name}: frame {} addresses {want:?} vs {:?}",
                    key.0,
                    cands.iter().map(|m| addresses(m)).collect::<Vec<_>>()
                ));
            }
        }
        let extra = ours.len() as i64 - tshark.len() as i64;
        match MORE_THAN_TSHARK.iter().find(|(n, _, _)| *n == name) {
            Some((_, n, why)) => {
                eprintln!("{name}: {n} messages more than tshark: {why}");
                if extra != *n as i64 {
                    failures.push(format!("{name}: {extra} more than tshark, expected {n}"));
                }
            }
            None if extra != 0 => failures.push(format!(
                "{name}: {extra} messages more than tshark, unexplained"
            )),
            None => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total > 900, "only {total} tshark messages compared");
}

/// RFC 6062 (DOMAIN.md story 6): Connect, ConnectionAttempt and two
/// ConnectionBinds on their own data connections, each answered.
#[test]
fn rfc6062_connect_and_connectionbind() {
    let v = stun_json(&sample("turn-tcp-relay-6062.pcap"));
    let msgs = v["messages"].as_array().unwrap();
    let named = |n: &str| msgs.iter().filter(|m| m["name"] == n).collect::<Vec<_>>();
    assert_eq!(named("Connect request").len(), 1);
    assert_eq!(named("Connect success").len(), 1);
    assert_eq!(named("ConnectionAttempt indication").len(), 1);
    let binds = named("ConnectionBind request");
    assert_eq!(binds.len(), 2);
    for b in &binds {
        assert!(b["answer_frame"].is_u64(), "ConnectionBind answered");
        // each on its own TCP connection, not the control connection of its Connect
        assert_ne!(b["stream"], named("Connect request")[0]["stream"]);
    }
    assert_eq!(v["summary"]["messages"], 41);
    assert!(
        v["summary"]["rfc6062_relayed_bytes"].as_u64().unwrap() > 0,
        "bytes after ConnectionBind are relayed data"
    );
    assert_eq!(v["summary"]["tcp_bytes_skipped"], 0);
}

/// A TLS stream is not STUN: once the framer sees a TLS record it stops,
/// and the stream's bytes are not counted as skipped STUN junk (they were,
/// up to the first segment of every TLS stream).
#[test]
fn tls_streams_are_not_counted_as_skipped_stun_bytes() {
    let v = stun_json(&sample("tls-8057-idle-rst-reconnect.pcap"));
    assert_eq!(v["summary"]["messages"], 0);
    assert_eq!(v["summary"]["tcp_bytes_skipped"], 0);
}

/// Secrets stay out by default.
#[test]
fn message_integrity_is_redacted_unless_asked() {
    let p = sample("turn-udp-channel.pcap");
    let out = edgetrace()
        .args(["stun", "--json"])
        .arg(&p)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("<redacted 20 bytes>"));
    let out = edgetrace()
        .args(["stun", "--json", "--show-secrets"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("<redacted"));
    let out = edgetrace()
        .args(["stun", "--json", "--redact-usernames"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"alice\""));
}

fn shared_stun(name: &str) -> Option<Value> {
    shared_capture(name).map(|p| stun_json(&p))
}

fn attr<'a>(m: &'a Value, name: &str) -> Option<&'a Value> {
    m["attrs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .map(|a| &a["value"])
}

/// MS-TURN (Arkime's trace): MAGIC-COOKIE first ⇒ MS dialect, MS-VERSION 6,
/// REALM read from 0x0015 (swapped with NONCE); the text "RSP/1.0
/// CLI_STUN_FIREWALLCHECK" on TCP 3478, which Wireshark mis-decodes as
/// ChannelData 0x5253, is not taken for STUN.
#[test]
fn ms_turn_allocate_is_decoded_in_its_dialect() {
    let Some(v) = shared_stun("msturn_allocate_plus_non-stun-text-on-3478_vlan.pcap") else {
        return;
    };
    let msgs = v["messages"].as_array().unwrap();
    let alloc = msgs
        .iter()
        .find(|m| m["name"] == "Allocate request")
        .unwrap();
    assert_eq!(alloc["dialect"], "ms-turn");
    assert_eq!(alloc["attrs"][0]["name"], "MAGIC-COOKIE");
    assert_eq!(attr(alloc, "MS-VERSION"), Some(&Value::from(6)));
    assert_eq!(
        alloc["attrs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "0x0015")
            .unwrap()["name"],
        "REALM"
    );
    assert!(attr(alloc, "MS-SERVICE-QUALITY").is_some());
    assert!(
        msgs.iter().all(|m| m["transport"] == "udp"),
        "nothing taken from the TCP text"
    );
    assert_eq!(v["channels"].as_array().unwrap().len(), 0);
    assert_eq!(msgs.iter().filter(|m| m["dialect"] == "rfc3489").count(), 3);
}

/// MS-ICE2 checks of a Skype call: MS-IMPLEMENTATION-VERSION and
/// CANDIDATE-IDENTIFIER decoded, every check answered.
#[test]
fn ms_ice2_checks_of_a_skype_call() {
    let Some(v) = shared_stun("ms-ice_skype_conference-call_2017.pcap") else {
        return;
    };
    let msgs = v["messages"].as_array().unwrap();
    let reqs: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["name"] == "Binding request")
        .collect();
    assert_eq!(reqs.len(), 7);
    assert!(msgs
        .iter()
        .all(|m| attr(m, "MS-IMPLEMENTATION-VERSION").is_some()));
    assert_eq!(
        reqs.iter()
            .filter(|m| attr(m, "CANDIDATE-IDENTIFIER").is_some())
            .count(),
        4
    );
    assert_eq!(v["summary"]["unanswered_requests"], 0);
}

/// Teams, one direction only: responses whose requests are not in the capture.
#[test]
fn teams_unidirectional_responses() {
    let Some(v) = shared_stun("msteams_stun_binding-responses_unidirectional.pcapng") else {
        return;
    };
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4);
    assert!(msgs
        .iter()
        .all(|m| m["name"] == "Binding success" && m["request_frame"].is_null()));
    assert!(msgs
        .iter()
        .all(|m| attr(m, "MS-IMPLEMENTATION-VERSION").is_some()));
}

/// The MS-ICE-TCP flow of nDPI's mixed trace: RFC 4571 framing on TCP with
/// MS-ICE attributes.
#[test]
fn ms_ice_tcp_rfc4571_flow() {
    let Some(v) = shared_stun("stun-turn_mixed_ice-tcp-vlan_google-fb-turn_ipv6_chandata.pcapng")
    else {
        return;
    };
    let framed: Vec<&Value> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["framing"] == "rfc4571")
        .collect();
    assert_eq!(framed.len(), 12);
    assert!(framed
        .iter()
        .any(|m| attr(m, "CANDIDATE-IDENTIFIER").is_some()));
    assert!(framed
        .iter()
        .all(|m| attr(m, "MS-IMPLEMENTATION-VERSION").is_some()));
}

/// Relay-only ICE over TURN/TCP: every check travels inside ChannelData on the
/// TCP connection; they come out as messages naming the relay leg.
#[test]
fn checks_inside_channel_data_on_tcp() {
    let Some(v) = shared_stun("ice-turn-tcp-relay.pcap") else {
        return;
    };
    let nested: Vec<&Value> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["carrier"].as_str().unwrap().starts_with("channel"))
        .collect();
    // as many as the lab's truth file lists inside ChannelData
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(
            shared()
                .unwrap()
                .join("captures/ice-turn-tcp-relay.truth.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let in_cd: Vec<&Value> = truth["stun"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.get("in_channeldata"))
        .collect();
    assert_eq!(nested.len(), in_cd.len());
    // the relay↔peer leg of each check, as the lab recorded it
    for t in in_cd {
        let m = nested.iter().find(|m| m["frame"] == t["frame"]).unwrap();
        assert_eq!(m["relay_leg"]["src"], t["ice_src"], "frame {}", t["frame"]);
        assert_eq!(m["relay_leg"]["dst"], t["ice_dst"], "frame {}", t["frame"]);
    }
    assert!(nested
        .iter()
        .all(|m| m["transport"] == "tcp" && m["name"].as_str().unwrap().starts_with("Binding")));
    assert!(
        nested.iter().any(|m| attr(m, "USE-CANDIDATE").is_some()),
        "nomination is visible"
    );
}

/// `stun --json` is written message by message; it must be byte for byte
/// the JSON of the whole report built in memory.
#[test]
fn streamed_json_is_the_built_report() {
    use edgetrace::analyze::stun::{merge, StunFinder};
    use edgetrace::capture::CaptureReader;
    use edgetrace::model::stun::StunReport;
    use edgetrace::model::Redaction;
    for name in [
        "turn-udp-channel.pcap",
        "turn-tcp-relay-6062.pcap",
        "session-combined.client-side.pcap",
    ] {
        let reader = CaptureReader::open(&sample(name)).unwrap();
        let (run, shards) = edgetrace::pipeline::run_sharded(
            reader,
            &Default::default(),
            StunFinder::keeping_all(),
        )
        .unwrap();
        let core = merge(shards, &run.flows);
        for r in [
            Redaction::default(),
            Redaction {
                show_secrets: true,
                redact_usernames: false,
            },
        ] {
            let built = StunReport::build(&run, &core, name, r);
            let bare = StunReport::build_without_messages(&run, &core, name);
            let a = serde_json::to_string_pretty(&built).unwrap();
            let b = serde_json::to_string_pretty(&bare.stream(&run, &core, r)).unwrap();
            assert!(!built.messages.is_empty());
            assert_eq!(a, b, "{name}");
        }
    }
}
