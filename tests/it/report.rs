//! `edgetrace report` and `edgetrace check`: every finding of the catalogue
//! on a capture that triggers it and on one that must not, `--fail-on`, the
//! baseline workflow, determinism across thread counts, and that no secret
//! of the lab captures reaches default output.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::common::{
    edgetrace, finding, sample, shared, sip_msg, stun_addr, stun_error, stun_msg, tcp_frame,
    temp_file, udp_frame, PcapWriter,
};

fn report(path: &Path, extra: &[&str]) -> Value {
    let out = edgetrace()
        .args(["report", "--json"])
        .args(extra)
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

fn ids(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// The `.pcap` files of a directory, sorted.
fn pcaps_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    v
}

fn lab(name: &str) -> Option<PathBuf> {
    Some(shared()?.join(format!("captures/{name}.pcap")))
}

/// (finding, capture that triggers it, capture that must not, extra args for the second run)
fn assert_trigger(id: &str, yes: &Path, no: &Path, no_args: &[&str]) {
    let y = report(yes, &[]);
    assert!(
        ids(&y).iter().any(|x| x == id),
        "{id} not on {}: {:?}",
        yes.display(),
        ids(&y)
    );
    let f = finding(&y, id);
    assert!(!f["summary"].as_str().unwrap().is_empty());
    assert!(
        !f["filter"].as_str().unwrap().is_empty(),
        "{id} has no display filter"
    );
    let n = report(no, no_args);
    assert!(
        !ids(&n).iter().any(|x| x == id),
        "{id} on {}: {:?}",
        no.display(),
        ids(&n)
    );
}

#[test]
fn catalogue_on_lab_captures() {
    let Some(_) = shared() else { return };
    let l = |n: &str| lab(n).unwrap();
    assert_trigger(
        "turn.auth-loop",
        &l("turn-errors"),
        &l("turn-udp-channel"),
        &[],
    );
    assert_trigger(
        "turn.request-rejected",
        &l("turn-errors"),
        &l("turn-tcp-relay-6062"),
        &[],
    );
    assert_trigger(
        "turn.relay-private",
        &l("ice-udp-nat"),
        &l("turn-udp-channel"),
        &[],
    );
    assert_trigger(
        "turn.relay-port-range",
        &l("turn-udp-channel"),
        &l("turn-udp-channel"),
        &["--relay-ports", "49152-65535"],
    );
    assert_trigger("ice.one-way", &l("ice-oneway-req"), &l("ice-udp-nat"), &[]);
    assert_trigger(
        "ice.no-nomination",
        &l("ice-oneway-req"),
        &l("ice-udp-nat"),
        &[],
    );
    assert_trigger(
        "tls.client-cert-eku",
        &l("tls-8057-reversed-badeku"),
        &l("tls-8057-reversed-ok"),
        &[],
    );
    assert_trigger(
        "tls.fatal-alert",
        &l("tls-8057-reversed-badeku"),
        &l("tls-8057-reversed-ok"),
        &[],
    );
    assert_trigger(
        "tls.idle-reset",
        &l("tls-8057-idle-rst-reconnect"),
        &l("tls-8057-reversed-ok"),
        &[],
    );
    assert_trigger(
        "sip.error-response",
        &l("sip-errors"),
        &l("sip-invite-udp"),
        &[],
    );

    // the meaning of the diagnostics travels with the finding
    let v = report(&l("sip-errors"), &[]);
    let text: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["summary"].as_str().unwrap())
        .collect();
    assert!(
        text.iter().any(|t| t.contains("404") && t.contains("4005")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.contains("504") && t.contains("1046")),
        "{text:?}"
    );
    // 403 and 440 each explained
    let v = report(&l("turn-errors"), &[]);
    let text: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["summary"].as_str().unwrap())
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("403") && t.contains("forbidden")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("440") && t.contains("address family")),
        "{text:?}"
    );
}

#[test]
fn damaged_capture_finding() {
    let bytes = std::fs::read(sample("sip-invite-udp.pcap")).unwrap();
    let cut = temp_file("report-truncated.pcap", &bytes[..bytes.len() - 30]);
    assert_trigger("capture.damaged", &cut, &sample("sip-invite-udp.pcap"), &[]);
}

fn write(name: &str, frames: &[Vec<u8>]) -> PathBuf {
    let mut w = PcapWriter::new(1);
    for (i, f) in frames.iter().enumerate() {
        w.packet(i as u64 * 1_000_000, f);
    }
    temp_file(name, &w.bytes)
}

const C: ([u8; 4], u16) = ([192, 0, 2, 10], 50000);
const S: ([u8; 4], u16) = ([198, 51, 100, 1], 3478);

#[test]
fn synthetic_turn_and_stun_findings() {
    // MAPPED-ADDRESS rewritten by an ALG while XOR-MAPPED-ADDRESS survived
    let tid = [7u8; 12];
    let bad = write(
        "mapped-mismatch.pcap",
        &[
            udp_frame(C, S, &stun_msg(0x0001, tid, &[])),
            udp_frame(
                S,
                C,
                &stun_msg(
                    0x0101,
                    tid,
                    &[
                        (0x0001, stun_addr([10, 0, 0, 1], 1, false)),
                        (0x0020, stun_addr([192, 0, 2, 10], 50000, true)),
                    ],
                ),
            ),
        ],
    );
    let good = write(
        "mapped-same.pcap",
        &[
            udp_frame(C, S, &stun_msg(0x0001, tid, &[])),
            udp_frame(
                S,
                C,
                &stun_msg(
                    0x0101,
                    tid,
                    &[
                        (0x0001, stun_addr([192, 0, 2, 10], 50000, false)),
                        (0x0020, stun_addr([192, 0, 2, 10], 50000, true)),
                    ],
                ),
            ),
        ],
    );
    assert_trigger("stun.mapped-mismatch", &bad, &good, &[]);

    // Allocate never answered; the same Allocate answered with success
    let user = (0x0006u16, b"alice".to_vec());
    let transport = (0x0019u16, vec![17, 0, 0, 0]);
    let silent = write(
        "allocate-unanswered.pcap",
        &[
            udp_frame(
                C,
                S,
                &stun_msg(0x0003, [1; 12], std::slice::from_ref(&transport)),
            ),
            udp_frame(
                C,
                S,
                &stun_msg(0x0003, [2; 12], std::slice::from_ref(&transport)),
            ),
        ],
    );
    let answered = write(
        "allocate-answered.pcap",
        &[
            udp_frame(
                C,
                S,
                &stun_msg(0x0003, [1; 12], &[transport.clone(), user.clone()]),
            ),
            udp_frame(
                S,
                C,
                &stun_msg(
                    0x0103,
                    [1; 12],
                    &[
                        (0x0016, stun_addr([198, 51, 100, 1], 50001, true)),
                        (0x000d, vec![0, 0, 2, 88]),
                    ],
                ),
            ),
        ],
    );
    assert_trigger("turn.no-answer", &silent, &answered, &[]);

    // 438 Stale Nonce again and again
    let stale = write(
        "stale-nonce.pcap",
        &[
            udp_frame(
                C,
                S,
                &stun_msg(0x0003, [3; 12], &[transport.clone(), user.clone()]),
            ),
            udp_frame(
                S,
                C,
                &stun_msg(0x0113, [3; 12], &[(0x0009, stun_error(438, "Stale Nonce"))]),
            ),
            udp_frame(
                C,
                S,
                &stun_msg(0x0003, [4; 12], &[transport.clone(), user.clone()]),
            ),
            udp_frame(
                S,
                C,
                &stun_msg(0x0113, [4; 12], &[(0x0009, stun_error(438, "Stale Nonce"))]),
            ),
            udp_frame(
                C,
                S,
                &stun_msg(0x0003, [5; 12], &[transport.clone(), user.clone()]),
            ),
            udp_frame(
                S,
                C,
                &stun_msg(0x0113, [5; 12], &[(0x0009, stun_error(438, "Stale Nonce"))]),
            ),
        ],
    );
    assert_trigger("turn.stale-nonce-loop", &stale, &answered, &[]);
}

fn mras_200(body: &str) -> Vec<u8> {
    let msg = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\nCall-ID: m1\r\nCSeq: 1 SERVICE\r\nContent-Type: application/msrtc-media-relay-auth+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    udp_frame(
        ([198, 51, 100, 1], 5060),
        ([192, 0, 2, 10], 5060),
        msg.as_bytes(),
    )
}

#[test]
fn mras_without_relay() {
    let empty = r#"<response xmlns="http://schemas.microsoft.com/2006/09/sip/mrasp" requestID="1" reasonPhrase="OK"><credentialsResponse><credentials><username>u</username><password>p</password><duration>480</duration></credentials><mediaRelayList/></credentialsResponse></response>"#;
    let full = r#"<response xmlns="http://schemas.microsoft.com/2006/09/sip/mrasp" requestID="1" reasonPhrase="OK"><credentialsResponse><credentials><username>u</username><password>p</password><duration>480</duration></credentials><mediaRelayList><mediaRelay><location>internet</location><hostName>av.example</hostName><udpPort>3478</udpPort><tcpPort>443</tcpPort></mediaRelay></mediaRelayList></credentialsResponse></response>"#;
    let bad = write("mras-empty.pcap", &[mras_200(empty)]);
    let good = write("mras-full.pcap", &[mras_200(full)]);
    assert_trigger("mras.no-relay", &bad, &good, &[]);
}

/// Four short TLS connections from the same Front End to the Edge's 8057,
/// each reset, each reopened a second later: a reconnect loop.
#[test]
fn tls_reconnect_loop() {
    let edge = ([10, 0, 0, 2], 8057);
    let record = [22u8, 3, 3, 0, 4, 14, 0, 0, 0]; // a handshake record (ServerHelloDone)
    let mut frames = Vec::new();
    for i in 0..4u16 {
        let fe = ([10, 0, 0, 1], 40000 + i);
        frames.push(tcp_frame(fe, edge, 1000, "S", b""));
        frames.push(tcp_frame(edge, fe, 5000, "SA", b""));
        frames.push(tcp_frame(edge, fe, 5001, "AP", &record));
        frames.push(tcp_frame(fe, edge, 1001, "R", b""));
    }
    let looped = write("tls-reconnect-loop.pcap", &frames);
    let once = write("tls-once.pcap", &frames[..4]);
    assert_trigger("tls.reconnect-loop", &looped, &once, &[]);
}

/// tls-443-normal with port 443 rewritten to 8057: a normal-direction
/// handshake where the Edge should have been the TLS client.
#[test]
fn tls_8057_normal_direction() {
    let Some(s) = shared() else { return };
    let mut bytes = std::fs::read(s.join("captures/tls-443-normal.pcap")).unwrap();
    // classic pcap, Ethernet + IPv4 (20-byte headers in this capture): patch TCP ports
    let mut off = 24;
    while off + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        let pkt = off + 16;
        let tcp = pkt + 14 + 20;
        if bytes[pkt + 23] == 6 && tcp + 4 <= bytes.len() {
            for p in [tcp, tcp + 2] {
                if bytes[p..p + 2] == 443u16.to_be_bytes() {
                    bytes[p..p + 2].copy_from_slice(&8057u16.to_be_bytes());
                }
            }
        }
        off = pkt + caplen;
    }
    let patched = temp_file("tls-8057-normal.pcap", &bytes);
    assert_trigger(
        "tls.8057-normal-direction",
        &patched,
        &s.join("captures/tls-8057-reversed-ok.pcap"),
        &[],
    );
}

#[test]
fn fail_on_sets_exit_1() {
    let Some(_) = shared() else { return };
    let run = |name: &str, level: &str| {
        edgetrace()
            .args(["report", "--fail-on", level])
            .arg(lab(name).unwrap())
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(run("tls-8057-reversed-badeku", "error"), Some(1));
    assert_eq!(run("tls-8057-reversed-ok", "error"), Some(0));
    assert_eq!(run("tls-8057-idle-rst-reconnect", "error"), Some(0));
    assert_eq!(run("tls-8057-idle-rst-reconnect", "warning"), Some(1));
}

/// Same bytes of JSON with one thread and with many.
#[test]
fn report_is_deterministic_across_threads() {
    let mut inputs = pcaps_in(&super::common::root().join("samples"));
    if let Some(s) = shared() {
        inputs.push(s.join("captures/turn-errors.pcap"));
        inputs.push(s.join("captures/ice-udp-nat.pcap"));
    }
    for p in inputs {
        let run = |threads: &str| {
            edgetrace()
                .env("RAYON_NUM_THREADS", threads)
                .args(["report", "--json"])
                .arg(&p)
                .output()
                .unwrap()
                .stdout
        };
        assert_eq!(run("1"), run("7"), "{}", p.display());
    }
}

/// No secret of the lab captures appears in default output of any command;
/// with --show-secrets they do (so this test can fail).
#[test]
fn secrets_stay_out() {
    let Some(s) = shared() else { return };
    let mut secrets: Vec<String> = vec!["alicepass".into(), "bobpass".into()];
    let mut captures = Vec::new();
    for e in std::fs::read_dir(s.join("captures")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".truth.json") || name.ends_with(".candidates.json") {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            collect_secrets(&v, &mut secrets);
        } else if name.ends_with(".pcap") {
            captures.push(p);
        }
    }
    secrets.sort();
    secrets.dedup();
    secrets.retain(|x| x.len() >= 8);
    assert!(secrets.len() >= 8, "{secrets:?}");
    let mut shown_any = false;
    for p in &captures {
        for cmd in ["report", "stun", "turn", "sip", "ice", "tls"] {
            let out = edgetrace().args([cmd, "--json"]).arg(p).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            for x in &secrets {
                assert!(
                    !text.contains(x.as_str()),
                    "{cmd} on {} shows secret {x}",
                    p.display()
                );
            }
        }
        let out = edgetrace()
            .args(["sip", "--json", "--show-secrets"])
            .arg(p)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        shown_any |= secrets.iter().any(|x| text.contains(x.as_str()));
    }
    assert!(
        shown_any,
        "--show-secrets shows none of them: the test would prove nothing"
    );
}

/// ICE passwords, SRTP keys, MRAS and TURN passwords named in the truth files.
fn collect_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("ice-pwd" | "pwd" | "password", Value::String(s)) => out.push(s.clone()),
                    ("crypto", Value::Array(a)) => {
                        for c in a.iter().filter_map(|c| c.as_str()) {
                            if let Some(k) = c.split("inline:").nth(1) {
                                out.push(k.split('|').next().unwrap().to_string());
                            }
                        }
                    }
                    _ => collect_secrets(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secrets(x, out)),
        _ => {}
    }
}

/// The CI workflow: baselines written with --update, checked unchanged, a
/// changed value reported with its JSON path and exit 1; directory mode.
#[test]
fn check_against_baselines() {
    let dir = std::env::temp_dir().join(format!("edgetrace-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for n in ["sip-invite-udp.pcap", "tls-8057-idle-rst-reconnect.pcap"] {
        std::fs::copy(sample(n), dir.join(n)).unwrap();
    }
    let cap = dir.join("sip-invite-udp.pcap");
    let st = edgetrace()
        .args(["check", "--update"])
        .arg(&cap)
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(0));
    let base = dir.join("sip-invite-udp.expected.json");
    assert!(base.exists());
    let ok = edgetrace().arg("check").arg(&cap).output().unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // change one value
    let text = std::fs::read_to_string(&base).unwrap().replacen(
        "\"sip_messages\": 21",
        "\"sip_messages\": 20",
        1,
    );
    std::fs::write(&base, text).unwrap();
    let bad = edgetrace().arg("check").arg(&cap).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let said = String::from_utf8_lossy(&bad.stdout);
    assert!(said.contains("counts.sip_messages: 20 → 21"), "{said}");
    // directory mode: one baseline wrong, the other capture has none yet
    let d = edgetrace().arg("check").arg(&dir).output().unwrap();
    assert_eq!(d.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&d.stdout).contains("0 passed, 1 failed"));
    let u = edgetrace()
        .args(["check", "--update"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(u.status.code(), Some(0));
    let d = edgetrace().arg("check").arg(&dir).output().unwrap();
    assert_eq!(d.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&d.stdout).contains("1 passed, 0 failed"));
}

/// The project's own samples against their committed baselines (what CI runs).
#[test]
fn samples_match_their_baselines() {
    let out = edgetrace()
        .arg("check")
        .arg(super::common::root().join("samples"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("5 passed, 0 failed"), "{said}");
}

/// RFC 6062 over TCP: a Connect that succeeds but whose connection is never
/// bound, and one whose ConnectionBind is refused.
#[test]
fn rfc6062_connection_findings() {
    let (cl, sv) = (([192, 0, 2, 10], 50000), ([198, 51, 100, 1], 3478));
    let data = (([192, 0, 2, 10], 50001), sv);
    let peer = (0x0012u16, stun_addr([203, 0, 113, 5], 80, true));
    let cid = (0x002au16, vec![0, 0, 0, 7]);
    let user = (0x0006u16, b"alice".to_vec());
    let mut seq_c = 1001u32;
    let mut seq_s = 5001u32;
    let mut frames = vec![
        tcp_frame(cl, sv, 1000, "S", b""),
        tcp_frame(sv, cl, 5000, "SA", b""),
    ];
    let mut send = |frames: &mut Vec<Vec<u8>>, from_client: bool, m: Vec<u8>| {
        if from_client {
            frames.push(tcp_frame(cl, sv, seq_c, "AP", &m));
            seq_c += m.len() as u32;
        } else {
            frames.push(tcp_frame(sv, cl, seq_s, "AP", &m));
            seq_s += m.len() as u32;
        }
    };
    send(
        &mut frames,
        true,
        stun_msg(0x0003, [1; 12], &[(0x0019, vec![6, 0, 0, 0]), user.clone()]),
    );
    send(
        &mut frames,
        false,
        stun_msg(
            0x0103,
            [1; 12],
            &[(0x0016, stun_addr([198, 51, 100, 1], 50002, true))],
        ),
    );
    send(
        &mut frames,
        true,
        stun_msg(0x000a, [2; 12], &[peer.clone(), user.clone()]),
    );
    send(
        &mut frames,
        false,
        stun_msg(0x010a, [2; 12], std::slice::from_ref(&cid)),
    );
    let unbound = write("rfc6062-unbound.pcap", &frames);
    // the same, then a data connection whose ConnectionBind gets 446
    let mut refused = frames.clone();
    refused.push(tcp_frame(data.0, data.1, 2000, "S", b""));
    refused.push(tcp_frame(data.1, data.0, 6000, "SA", b""));
    let bind = stun_msg(0x000b, [3; 12], &[cid.clone(), user.clone()]);
    refused.push(tcp_frame(data.0, data.1, 2001, "AP", &bind));
    let err = stun_msg(
        0x011b,
        [3; 12],
        &[(0x0009, stun_error(446, "Connection Already Exists"))],
    );
    refused.push(tcp_frame(data.1, data.0, 6001, "AP", &err));
    let refused = write("rfc6062-refused.pcap", &refused);
    assert_trigger("turn.connection-never-bound", &unbound, &refused, &[]);
    assert_trigger("turn.connectionbind-failed", &refused, &unbound, &[]);
}

/// SDP offers three candidates, the checks use one pair: the two others
/// are listed as never checked; when every candidate is checked, nothing is.
#[test]
fn unchecked_candidates() {
    let (a, b) = (([192, 0, 2, 10], 5060), ([198, 51, 100, 1], 5060));
    let sdp = |ufrag: &str, cands: &[&str]| {
        let mut s = format!("v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:passwordpasswordpassword\r\n");
        for c in cands {
            s.push_str(&format!("a=candidate:{c}\r\n"));
        }
        s
    };
    let sip = |first: &str, cseq: &str, body: &str| {
        format!("{first}\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK9\r\nCall-ID: ice1\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len())
    };
    let build = |offer: &[&str]| {
        let o = sdp("aaaa", offer);
        let ans = sdp("bbbb", &["1 1 UDP 2130706431 198.51.100.1 40002 typ host"]);
        let check = stun_msg(
            0x0001,
            [9; 12],
            &[
                (0x0006, b"bbbb:aaaa".to_vec()),
                (0x0024, 1862270975u32.to_be_bytes().to_vec()),
            ],
        );
        let ok = stun_msg(
            0x0101,
            [9; 12],
            &[(0x0020, stun_addr([192, 0, 2, 10], 40000, true))],
        );
        vec![
            udp_frame(
                a,
                b,
                sip("INVITE sip:b@example SIP/2.0", "1 INVITE", &o).as_bytes(),
            ),
            udp_frame(b, a, sip("SIP/2.0 200 OK", "1 INVITE", &ans).as_bytes()),
            udp_frame(([192, 0, 2, 10], 40000), ([198, 51, 100, 1], 40002), &check),
            udp_frame(([198, 51, 100, 1], 40002), ([192, 0, 2, 10], 40000), &ok),
        ]
    };
    let some = write(
        "ice-unchecked.pcap",
        &build(&[
            "1 1 UDP 2130706431 192.0.2.10 40000 typ host",
            "2 1 UDP 1694498815 203.0.113.9 40000 typ srflx raddr 192.0.2.10 rport 40000",
            "3 1 UDP 16777215 198.51.100.7 50010 typ relay raddr 203.0.113.9 rport 40000",
        ]),
    );
    let all = write(
        "ice-all-checked.pcap",
        &build(&["1 1 UDP 2130706431 192.0.2.10 40000 typ host"]),
    );
    assert_trigger("ice.unchecked-candidates", &some, &all, &[]);
    let v = report(&some, &[]);
    let f = finding(&v, "ice.unchecked-candidates");
    let s = f["summary"].as_str().unwrap();
    assert!(
        s.contains("2 offered candidate(s)")
            && s.contains("203.0.113.9:40000")
            && s.contains("198.51.100.7:50010"),
        "{s}"
    );
}

/// A TLS server presenting a certificate whose EKU is clientAuth only (a
/// hand-built ClientHello / ServerHello / Certificate around a real DER
/// certificate made with openssl, tests/data/): `tls.server-cert-eku`.
#[test]
fn tls_server_cert_without_serverauth() {
    let der =
        std::fs::read(super::common::root().join("tests/data/cert-clientauth-only.der")).unwrap();
    let handshake = |t: u8, body: &[u8]| {
        let mut m = vec![t, 0, (body.len() >> 8) as u8, body.len() as u8];
        m.extend_from_slice(body);
        m
    };
    let record = |msgs: &[Vec<u8>]| {
        let body: Vec<u8> = msgs.concat();
        let mut r = vec![22, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
        r.extend_from_slice(&body);
        r
    };
    // ClientHello: TLS 1.2, random, no session id, one suite, null compression
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[7u8; 32]);
    ch.extend_from_slice(&[0, 0, 2, 0xc0, 0x2f, 1, 0]);
    // ServerHello: TLS 1.2, random, no session id, the suite, null compression
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[9u8; 32]);
    sh.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
    // Certificate: u24 list length, u24 cert length, DER
    let n = der.len();
    let mut cert = vec![
        0,
        ((n + 3) >> 8) as u8,
        (n + 3) as u8,
        0,
        (n >> 8) as u8,
        n as u8,
    ];
    cert.extend_from_slice(&der);
    let client_hello = record(&[handshake(1, &ch)]);
    let server_flight = record(&[handshake(2, &sh), handshake(11, &cert), handshake(14, &[])]);
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 443));
    let frames = |flight: &[u8]| {
        vec![
            tcp_frame(c, s, 1000, "S", b""),
            tcp_frame(s, c, 5000, "SA", b""),
            tcp_frame(c, s, 1001, "AP", &client_hello),
            tcp_frame(s, c, 5001, "AP", flight),
        ]
    };
    let bad = write(
        "tls-server-cert-clientauth-only.pcap",
        &frames(&server_flight),
    );
    // the same handshake without a Certificate message: nothing to judge
    let no_cert = record(&[handshake(2, &sh), handshake(14, &[])]);
    let good = write("tls-server-no-cert.pcap", &frames(&no_cert));
    assert_trigger("tls.server-cert-eku", &bad, &good, &[]);
    let v = report(&bad, &[]);
    let f = finding(&v, "tls.server-cert-eku");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("EKU lacks serverAuth (has clientAuth)"),
        "{}",
        f["summary"]
    );
}

/// A report lists the first 1,000 allocations and counts the rest; the
/// findings still see every allocation.
#[test]
fn long_lists_are_capped_and_counted() {
    let frames: Vec<Vec<u8>> = (0..1001u32)
        .map(|i| {
            let client = ([10, 9, (i >> 8) as u8, i as u8], 40000);
            let tid = [(i >> 8) as u8, i as u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
            // an unanswered Allocate: each one is an allocation that failed
            udp_frame(client, S, &stun_msg(0x0003, tid, &[]))
        })
        .collect();
    let v = report(&write("many-allocations.pcap", &frames), &[]);
    assert_eq!(v["counts"]["turn_allocations"], 1001);
    assert_eq!(v["turn"].as_array().unwrap().len(), 1000);
    assert_eq!(v["omitted"]["turn"], 1);
    let f = finding(&v, "turn.no-answer");
    assert_eq!(f["count"], 1001, "the finding counts every allocation");
    // the allocations past the listed ones do not record their timelines, and
    // the listed ones keep theirs, whatever the number of shards
    let file = write("many-allocations-1.pcap", &frames);
    for threads in ["1", "2", "3"] {
        let out = edgetrace()
            .env("RAYON_NUM_THREADS", threads)
            .args(["report", "--json"])
            .arg(&file)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed = v["turn"].as_array().unwrap();
        assert_eq!(listed.len(), 1000);
        assert!(
            listed
                .iter()
                .all(|a| a["timeline"].as_array().is_some_and(|t| t.len() == 1)),
            "{threads} thread(s): a listed allocation lost its timeline"
        );
        assert_eq!(listed[999]["first_frame"], 1000);
    }
    // the table says what it leaves out: 500 rows by --limit, then the
    // report's own cap
    let out = edgetrace().arg("report").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("… 501 more not shown (edgetrace turn lists them all)"),
        "{text}"
    );
    let out = edgetrace()
        .args(["report", "--limit", "0"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("… 1 more not shown (edgetrace turn lists them all)"));
    // nothing left out: no `omitted` at all
    let small = report(&sample("turn-udp-channel.pcap"), &[]);
    assert!(small.get("omitted").is_none());
}

/// Past the 1,000 dialogs a report lists, dialogs are counted and their
/// errors still reach the findings, but no summary is built for them.
#[test]
fn dialogs_past_the_listed_ones_are_counted_and_their_errors_found() {
    let (a, b) = (([10, 0, 0, 1], 5060), ([10, 0, 0, 2], 5060));
    let msg = |start: &str, call: u32| sip_msg(start, &format!("call-{call}"), "1 OPTIONS");
    let mut frames = Vec::new();
    for call in 0..1003u32 {
        frames.push(udp_frame(a, b, &msg("OPTIONS sip:b@x SIP/2.0", call)));
        let answer = if call == 1001 {
            "SIP/2.0 503 Service Unavailable"
        } else {
            "SIP/2.0 200 OK"
        };
        frames.push(udp_frame(b, a, &msg(answer, call)));
    }
    let v = report(&write("many-dialogs.pcap", &frames), &[]);
    assert_eq!(v["counts"]["sip_dialogs"], 1003);
    assert_eq!(v["counts"]["sip_messages"], 2006);
    assert_eq!(v["omitted"]["sip"], 3);
    let listed = v["sip"].as_array().unwrap();
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed[999]["call_id"], "call-999");
    let f = finding(&v, "sip.error-response");
    assert_eq!(f["frames"], serde_json::json!([2004]));
    assert!(f["summary"].as_str().unwrap().contains("call-1001"), "{f}");
}

/// The same refused certificate on two connections (the Front End
/// reconnecting from another port) is one finding of each kind standing for
/// both, as the README promises for many connections alike.
#[test]
fn the_same_refusal_on_two_connections_is_one_finding() {
    let Some(path) = lab("tls-8057-reversed-badeku") else {
        return;
    };
    let mut r = edgetrace::capture::CaptureReader::open(&path).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        frames.push(((f.ts_ns / 1000) as u64, f.data.to_vec()));
    }
    let span = frames.last().unwrap().0 - frames[0].0 + 1_000_000;
    let mut w = PcapWriter::new(1);
    for copy in 0..2u16 {
        for (ts, data) in &frames {
            let mut d = data.clone();
            // Ethernet, IPv4, TCP: the side that is not 8057 moves one port up
            let tcp = 14 + ((d[14] & 0x0f) as usize) * 4;
            for at in [tcp, tcp + 2] {
                let port = u16::from_be_bytes([d[at], d[at + 1]]);
                if port != 8057 {
                    d[at..at + 2].copy_from_slice(&(port + copy).to_be_bytes());
                }
            }
            w.packet(ts + copy as u64 * span, &d);
        }
    }
    let two = temp_file("badeku-twice.pcap", &w.bytes);
    let (once, twice) = (report(&path, &[]), report(&two, &[]));
    assert_eq!(twice["counts"]["tls_connections"], 2);
    for id in ["tls.client-cert-eku", "tls.fatal-alert"] {
        assert_eq!(finding(&once, id)["count"], 1, "{id}");
        assert_eq!(finding(&twice, id)["count"], 2, "{id}");
        assert_eq!(
            ids(&twice).iter().filter(|x| *x == id).count(),
            1,
            "{id} is listed once"
        );
    }
}

/// `report --json` writes its long lists in parallel
/// (`render::json::write_report`): the bytes are those of the plain
/// serializer, on every sample and lab capture, with and without the
/// optional fields.
#[test]
fn the_parallel_report_writer_writes_what_serde_writes() {
    use edgetrace::model::report::{analyze, Report, ReportOptions};
    use edgetrace::render::json;
    let mut inputs = pcaps_in(&super::common::root().join("samples"));
    if let Some(s) = shared() {
        inputs.extend(pcaps_in(&s.join("captures")));
    }
    let options = ReportOptions {
        roles: edgetrace::roles::Roles::builtin(),
        ..Default::default()
    };
    let mut with_8057 = 0;
    for p in &inputs {
        let reader = edgetrace::capture::CaptureReader::open(p).unwrap();
        let (mut a, folds) = analyze(reader, &Default::default(), "x", &options).unwrap();
        let mut r = Report::build(&mut a, folds, "x", &options);
        with_8057 += usize::from(r.port_8057.is_some());
        for variant in 0..2 {
            if variant == 1 {
                // what only a capture of over 1,000 entries has, and lists
                // long enough to be cut in several chunks
                r.omitted.insert("sip".into(), 7);
                r.omitted.insert("turn".into(), 1);
                r.port_8057 = None;
                fn long<T: Clone>(v: &mut Vec<T>) {
                    *v = v.iter().cycle().take(77).cloned().collect();
                }
                long(&mut r.turn);
                long(&mut r.sip);
                long(&mut r.ice);
                long(&mut r.tls);
                long(&mut r.findings);
            }
            let (mut plain, mut parallel) = (Vec::new(), Vec::new());
            json::write(&mut plain, &r).unwrap();
            json::write_report(&mut parallel, &r).unwrap();
            assert!(
                plain == parallel,
                "{} (variant {variant}): the writers differ",
                p.display()
            );
        }
    }
    assert!(with_8057 > 0, "a capture with the 8057 section");
}
