//! `edgetrace ice` against the ICE agents' own ground truth
//! (`NAME.candidates.json` from the lab: each agent's pairs, their state and
//! nomination), never against our own output.

use serde_json::Value;

use super::common::{edgetrace, shared, shared_capture};

fn ice_json(path: &std::path::Path) -> Value {
    let out = edgetrace()
        .args(["ice", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(3)));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The wire address of an agent's local candidate: behind a NAT the agent's
/// host address leaves as its server-reflexive one (the srflx candidate whose
/// related address is the host address).
fn on_wire(agent: &Value, local: &str) -> String {
    for c in agent["candidates"].as_array().unwrap() {
        if c["type"] == "srflx" {
            let rel = format!(
                "{}:{}",
                c["related_address"].as_str().unwrap_or(""),
                c["related_port"]
            );
            if rel == local {
                return format!("{}:{}", c["address"].as_str().unwrap(), c["port"]);
            }
        }
    }
    local.to_string()
}

/// Every agent pair of a lab ICE capture: succeeded ⇔ its checks got a
/// success on the wire; nominated ⇔ our nominated pair.
fn compare_with_agents(name: &str, agents: &Value, outcomes: &Value) -> (usize, Vec<String>) {
    let path = shared_capture(&format!("{name}.pcap")).unwrap();
    let v = ice_json(&path);
    let pairs: Vec<&Value> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["pairs"].as_array().unwrap())
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (agent, list) in outcomes.as_object().unwrap() {
        for o in list.as_array().unwrap() {
            checked += 1;
            let local = on_wire(&agents[agent], o["local_addr"].as_str().unwrap());
            let remote = o["remote_addr"].as_str().unwrap();
            let found = pairs.iter().find(|p| {
                (p["a"] == local.as_str() && p["b"] == remote)
                    || (p["b"] == local.as_str() && p["a"] == remote)
            });
            let succeeded = !o["first_succeeded_epoch"].is_null();
            let nominated = o["nominated"].as_bool().unwrap();
            let Some(p) = found else {
                if succeeded || nominated {
                    failures.push(format!(
                        "{name}: {agent} {local} → {remote} succeeded but not found"
                    ));
                }
                continue;
            };
            let dir = if p["a"] == local.as_str() {
                &p["a_to_b"]
            } else {
                &p["b_to_a"]
            };
            let ok = dir["successes"].as_u64().unwrap() > 0;
            if ok != succeeded {
                failures.push(format!(
                    "{name}: {agent} {local} → {remote}: agent says succeeded={succeeded}, wire {dir}"
                ));
            }
            if p["nominated"].as_bool().unwrap() != nominated {
                failures.push(format!(
                    "{name}: {agent} {local} → {remote}: nominated={nominated}, ours {}",
                    p["nominated"]
                ));
            }
        }
    }
    (checked, failures)
}

#[test]
fn pairs_and_nomination_agree_with_the_agents() {
    let Some(s) = shared() else { return };
    let mut total = 0;
    let mut failures = Vec::new();
    for name in ["ice-udp-nat", "ice-oneway-req", "ice-turn-tcp-relay"] {
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(s.join(format!("captures/{name}.candidates.json"))).unwrap(),
        )
        .unwrap();
        let (n, f) = compare_with_agents(name, &truth["agents"], &truth["pair_outcomes"]);
        total += n;
        failures.extend(f);
    }
    let session: Value = serde_json::from_str(
        &std::fs::read_to_string(s.join("captures/session-combined.client-side.truth.json"))
            .unwrap(),
    )
    .unwrap();
    let ice = &session["scenario"]["ice"];
    let (n, f) = compare_with_agents(
        "session-combined.client-side",
        &ice["agents"],
        &ice["pair_outcomes"],
    );
    total += n;
    failures.extend(f);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total >= 10, "{total}");
}

/// A's checks to C and their retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5 s
/// go unanswered, C's checks to A succeed: "one way only", naming A → C.
#[test]
fn oneway_names_the_failing_direction() {
    let Some(s) = shared() else { return };
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(s.join("captures/ice-oneway-req.candidates.json")).unwrap(),
    )
    .unwrap();
    let a = &truth["pair_outcomes"]["A"][0];
    let (a_addr, c_addr) = (
        a["local_addr"].as_str().unwrap(),
        a["remote_addr"].as_str().unwrap(),
    );
    let v = ice_json(&s.join("captures/ice-oneway-req.pcap"));
    let sess = &v["sessions"][0];
    assert_eq!(sess["outcome"], "one-way");
    assert!(sess["nominated"].is_null());
    let p = &sess["pairs"][0];
    assert_eq!(p["verdict"], "one-way");
    let failing = format!("{a_addr} → {c_addr} fails");
    assert!(
        p["detail"].as_str().unwrap().contains(&failing),
        "{}",
        p["detail"]
    );
    let check = sess["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["from"] == a_addr)
        .unwrap();
    assert_eq!(check["result"], "no answer");
    let resent: Vec<f64> = check["retransmitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["after_s"].as_f64().unwrap())
        .collect();
    let want = [0.5, 1.5, 3.5, 7.5, 15.5];
    assert_eq!(resent.len(), want.len(), "{resent:?}");
    for (g, w) in resent.iter().zip(want) {
        assert!((g - w).abs() < 0.05, "{resent:?}");
    }
    // the roles the agents had
    let role = |ufrag: &str| {
        sess["sides"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["ufrag"] == ufrag)
            .unwrap()["role"]
            .clone()
    };
    assert_eq!(
        role(truth["agents"]["A"]["ufrag"].as_str().unwrap()),
        "controlling"
    );
    assert_eq!(
        role(truth["agents"]["B"]["ufrag"].as_str().unwrap()),
        "controlled"
    );
}

/// Relay-only ICE over TURN/TCP: the relay/relay pair is found through
/// ChannelData on the TCP connections and is the nominated one.
#[test]
fn relay_pair_through_channeldata_on_tcp() {
    let Some(s) = shared() else { return };
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(s.join("captures/ice-turn-tcp-relay.candidates.json")).unwrap(),
    )
    .unwrap();
    let sel = &truth["agents"]["A"]["selected_pair"];
    let v = ice_json(&s.join("captures/ice-turn-tcp-relay.pcap"));
    let sess = &v["sessions"][0];
    let p = &sess["pairs"][sess["nominated"]["pair"].as_u64().unwrap() as usize];
    let ends = [p["a"].as_str().unwrap(), p["b"].as_str().unwrap()];
    assert!(
        ends.contains(&sel["local_addr"].as_str().unwrap())
            && ends.contains(&sel["remote_addr"].as_str().unwrap())
    );
    assert!(p["carried_by"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.as_str().unwrap().starts_with("tcp ")));
    assert!(sess["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["carrier"].as_str().unwrap().starts_with("channel 0x")));
}

/// The session's checks are tied to the INVITE that carried the ufrags.
#[test]
fn session_tied_to_the_invite_by_ufrags() {
    let Some(s) = shared() else { return };
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(s.join("captures/session-combined.client-side.truth.json"))
            .unwrap(),
    )
    .unwrap();
    let invite = truth["sip"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "INVITE" && m["kind"] == "request")
        .unwrap();
    let v = ice_json(&s.join("captures/session-combined.client-side.pcap"));
    let sess = &v["sessions"][0];
    assert_eq!(sess["call_id"], invite["Call-ID"]);
    let agents = &truth["scenario"]["ice"]["agents"];
    for (agent, side) in [("A", "offer"), ("B", "answer")] {
        let ufrag = agents[agent]["ufrag"].as_str().unwrap();
        let x = sess["sides"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["ufrag"] == ufrag)
            .unwrap();
        assert_eq!(x["sdp"]["side"], side);
    }
}

/// Public captures: a WebRTC call (roles, USE-CANDIDATE, error responses to
/// retransmitted checks: 500 ×2 and 401 ×5 as tshark decodes them — the
/// file's name promises a 487 it does not contain) and a Skype for Business
/// call with MS-ICE2 attributes.
#[test]
fn public_ice_captures() {
    let Some(p) = shared_capture("webrtc_ice_testcall_priority-usecandidate-controlling_487.pcap")
    else {
        return;
    };
    let v = ice_json(&p);
    let sess = &v["sessions"][0];
    assert_eq!(v["summary"]["sessions"], 1);
    assert_eq!(sess["role_conflict"], false);
    let roles: Vec<&str> = sess["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["controlling", "controlled"]);
    let errors: usize = sess["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["result"].as_str().unwrap().matches("error").count())
        .sum();
    assert_eq!(errors, 7);
    assert!(sess["nominated"]["pair"].is_u64());

    let v = ice_json(&shared_capture("ms-ice_skype_conference-call_2017.pcap").unwrap());
    let sess = &v["sessions"][0];
    let checks = sess["checks"].as_array().unwrap();
    assert!(checks
        .iter()
        .any(|c| c["ms_version"] == 3 && c["candidate_id"] == "1"));
    assert_eq!(sess["pairs"][0]["verdict"], "both-ways");
    let roles: Vec<&str> = sess["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["controlled", "controlling"]);
}

/// MS-ICE v1 (OCS 2007 / the 2007 fallback part): per-candidate base64
/// usernames in draft-6 SDP, binary check USERNAME `recv:1:send:1` + NULs.
/// The session is tied to the dialog through the decoded usernames.
#[test]
fn ms_ice_v1_binary_usernames_match_draft6_sdp() {
    use super::common::{stun_addr, stun_msg, temp_file, udp_frame, PcapWriter};
    let (a, b) = (([192, 0, 2, 10], 5060), ([198, 51, 100, 1], 5060));
    let part = |user: &str, addr: &str| {
        format!(
            "--b\r\nContent-Type: application/sdp\r\nContent-Disposition: session; handling=optional; ms-proxy-2007fallback\r\n\r\nv=0\r\no=- 0 0 IN IP4 {addr}\r\ns=session\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=candidate:{user} 1 cGFzc3dvcmRwYXNzd29yZA UDP 0.830 {addr} 40000 \r\n\r\n--b--\r\n"
        )
    };
    let sip = |first: &str, body: &str| {
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK7\r\nCall-ID: v1call\r\nCSeq: 1 INVITE\r\nContent-Type: multipart/alternative;boundary=b\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // offer user bytes fa fb fc ("+vv8"), answer user bytes f0 f1 f2 ("8PHy")
    let offer = part("+vv8", "192.0.2.10");
    let answer = part("8PHy", "198.51.100.1");
    // the offerer checks the answerer: receiver's name first
    let mut user = vec![0xf0, 0xf1, 0xf2];
    user.extend_from_slice(b":1:");
    user.extend_from_slice(&[0xfa, 0xfb, 0xfc]);
    user.extend_from_slice(b":1");
    while user.len() % 4 != 0 {
        user.push(0);
    }
    let check = stun_msg(0x0001, [5; 12], &[(0x0006, user)]);
    let ok = stun_msg(
        0x0101,
        [5; 12],
        &[(0x0001, stun_addr([192, 0, 2, 10], 40000, false))],
    );
    let mut w = PcapWriter::new(1);
    w.packet(
        0,
        &udp_frame(a, b, sip("INVITE sip:b@example SIP/2.0", &offer).as_bytes()),
    );
    w.packet(
        1000,
        &udp_frame(b, a, sip("SIP/2.0 200 OK", &answer).as_bytes()),
    );
    w.packet(
        2000,
        &udp_frame(([192, 0, 2, 10], 40000), ([198, 51, 100, 1], 40000), &check),
    );
    w.packet(
        3000,
        &udp_frame(([198, 51, 100, 1], 40000), ([192, 0, 2, 10], 40000), &ok),
    );
    let v = ice_json(&temp_file("ms-ice-v1.pcap", &w.bytes));
    let s = &v["sessions"][0];
    assert_eq!(s["call_id"], "v1call", "{s}");
    let sides: Vec<&str> = s["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["sdp"]["side"].as_str().unwrap())
        .collect();
    assert_eq!(sides, ["answer", "offer"]);
    let p = &s["pairs"][0];
    assert_eq!(p["a_to_b"]["successes"], 1);
    assert!(
        p["a_candidate"]
            .as_str()
            .unwrap()
            .contains("foundation +vv8"),
        "{p}"
    );
    assert!(s["checks"][0]["username"]
        .as_str()
        .unwrap()
        .starts_with("hex:f0f1f2"));
}

/// An SDP body is read for a session when a check names one of its ufrags
/// within five minutes of it (`ice::SDP_WAIT_NS`); later, it belongs to a
/// call whose media the capture does not show and has been dropped.  The
/// report's pass, `edgetrace ice` and the library's whole read agree.
#[test]
fn sdp_is_read_when_a_check_names_it_within_five_minutes() {
    use super::common::{stun_addr, stun_msg, temp_file, udp_frame, PcapWriter};
    let (a, b) = (([192, 0, 2, 10], 5060), ([198, 51, 100, 1], 5060));
    let (ma, mb) = (([192, 0, 2, 10], 40000), ([198, 51, 100, 1], 40000));
    let sip = |first: &str, body: &str| {
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK8\r\nCall-ID: waitcall\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let sdp = |ufrag: &str, addr: &str| {
        format!("v=0\r\no=- 0 0 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:pwpwpwpwpwpwpwpwpwpwpwpw\r\na=candidate:1 1 UDP 2130706431 {addr} 40000 typ host\r\n")
    };
    // (check time in µs, sides read: the offer came at 0 s, the answer at 1 s)
    for (at, read) in [(200_000_000u64, 2), (300_500_000, 1), (330_000_000, 0)] {
        let check = stun_msg(0x0001, [9; 12], &[(0x0006, b"answ:offr\0\0\0".to_vec())]);
        let ok = stun_msg(
            0x0101,
            [9; 12],
            &[(0x0020, stun_addr([192, 0, 2, 10], 40000, true))],
        );
        let mut w = PcapWriter::new(1);
        w.packet(
            0,
            &udp_frame(
                a,
                b,
                sip("INVITE sip:b@example SIP/2.0", &sdp("offr", "192.0.2.10")).as_bytes(),
            ),
        );
        w.packet(
            1_000_000,
            &udp_frame(
                b,
                a,
                sip("SIP/2.0 200 OK", &sdp("answ", "198.51.100.1")).as_bytes(),
            ),
        );
        w.packet(at, &udp_frame(ma, mb, &check));
        w.packet(at + 1000, &udp_frame(mb, ma, &ok));
        // later SIP, so that a pass gets to decide on the bodies
        w.packet(
            at + 500_000_000,
            &udp_frame(a, b, sip("OPTIONS sip:b@example SIP/2.0", "").as_bytes()),
        );
        let path = temp_file(&format!("sdp-wait-{at}.pcap"), &w.bytes);
        let read_in = |s: &Value| {
            s["sides"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["sdp"].is_object())
                .count()
        };
        let ice = ice_json(&path);
        assert_eq!(ice["summary"]["sessions"], 1);
        assert_eq!(read_in(&ice["sessions"][0]), read, "ice, check at {at} µs");
        let out = edgetrace()
            .args(["report", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(read_in(&report["ice"][0]), read, "report, check at {at} µs");
        let whole = edgetrace::analyze::all::analyze(
            edgetrace::capture::CaptureReader::open(&path).unwrap(),
            &Default::default(),
        )
        .unwrap();
        let sides: std::collections::BTreeSet<&str> =
            whole.ice[0].sdp.iter().map(|m| m.side).collect();
        assert_eq!(sides.len(), read, "whole read, check at {at} µs");
        let call = if read > 0 {
            Value::from("waitcall")
        } else {
            Value::Null
        };
        assert_eq!(ice["sessions"][0]["call_id"], call);
    }
}
