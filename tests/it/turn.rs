//! `edgetrace turn`: allocation life cycles on the lab captures.

use serde_json::Value;

use super::common::{edgetrace, report_pass, sample, shared_capture};

fn turn_json(path: &std::path::Path) -> Value {
    let out = edgetrace()
        .args(["turn", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// DOMAIN.md story 6 / RFC 6062: Connect and ConnectionAttempt on their
/// control connections, and two ConnectionBinds on new TCP connections,
/// linked by CONNECTION-ID, each followed by relayed bytes.
#[test]
fn rfc6062_connections_are_linked_to_their_control_connection() {
    let v = turn_json(&sample("turn-tcp-relay-6062.pcap"));
    let al = v["allocations"].as_array().unwrap();
    assert_eq!(al.len(), 3);
    let with_conn: Vec<&Value> = al
        .iter()
        .filter(|a| !a["connections"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(with_conn.len(), 2);
    let mut kinds: Vec<&str> = with_conn
        .iter()
        .map(|a| a["connections"][0]["initiated_by"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["connect", "connection-attempt"]);
    for a in &with_conn {
        let c = &a["connections"][0];
        assert_eq!(c["bind_result"], "success");
        assert_ne!(
            c["data_stream"], a["stream"],
            "ConnectionBind runs on its own data connection"
        );
        assert!(c["relayed_bytes"].as_u64().unwrap() > 0);
        assert_eq!(a["requested_transport"], "TCP");
        assert_eq!(a["outcome"], "deallocated");
        assert!(a["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["event"] == "ConnectionBind success"));
    }
    // the first allocation's control connection simply closes
    assert!(al[0]["detail"]
        .as_str()
        .unwrap()
        .contains("control connection closed"));
}

/// turn-errors: the 401 loop (wrong password), 403 Forbidden IP for a denied
/// peer, 440 for an IPv6 relay on an IPv4-only server — failed, with the reason.
#[test]
fn turn_errors_are_failed_allocations_with_the_reason() {
    let Some(p) = shared_capture("turn-errors.pcap") else {
        return;
    };
    let v = turn_json(&p);
    let al = v["allocations"].as_array().unwrap();
    let by_client = |c: &str| {
        al.iter()
            .filter(|a| a["client"].as_str().unwrap().starts_with(c))
            .collect::<Vec<_>>()
    };
    let wrong = by_client("127.20.1.1:");
    assert_eq!(wrong.len(), 1);
    assert_eq!(wrong[0]["outcome"], "failed");
    assert!(
        wrong[0]["detail"].as_str().unwrap().contains("401 loop"),
        "{}",
        wrong[0]["detail"]
    );
    assert!(wrong[0]["detail"]
        .as_str()
        .unwrap()
        .contains("wrong credentials"));
    let forbidden: Vec<&Value> = by_client("127.20.1.2:")
        .into_iter()
        .filter(|a| a["outcome"] == "failed")
        .collect();
    assert_eq!(forbidden.len(), 1);
    assert!(forbidden[0]["detail"].as_str().unwrap().contains("403"));
    assert!(forbidden[0]["detail"]
        .as_str()
        .unwrap()
        .contains("127.20.9.9"));
    assert!(
        forbidden[0]["relayed"].is_string(),
        "the allocation itself succeeded"
    );
    let family = by_client("127.20.1.3:");
    assert!(!family.is_empty());
    for a in family {
        assert_eq!(a["outcome"], "failed");
        assert!(a["detail"].as_str().unwrap().contains("440"));
    }
}

/// turn-udp-channel: channels bound, ChannelData counted, deallocation by Refresh lifetime 0.
#[test]
fn channels_and_deallocation_over_udp() {
    let v = turn_json(&sample("turn-udp-channel.pcap"));
    let al = v["allocations"].as_array().unwrap();
    assert!(!al.is_empty());
    let bound: Vec<&Value> = al
        .iter()
        .filter(|a| !a["channels"].as_array().unwrap().is_empty())
        .collect();
    assert!(!bound.is_empty());
    for a in &bound {
        let chans = a["channels"].as_array().unwrap();
        assert!(
            chans.iter().all(|c| c["peer"].is_string()),
            "every channel names its peer"
        );
        // a bound channel may stay unused; traffic shows on the one in use
        assert!(
            chans.iter().any(|c| c["frames"].as_u64().unwrap() > 0),
            "ChannelData counted: {a}"
        );
    }
    assert!(al.iter().any(|a| a["outcome"] == "deallocated"
        && a["detail"].as_str().unwrap().contains("Refresh lifetime 0")));
}

/// Two TURN servers reusing the same CONNECTION-IDs (here: the 6062 sample
/// replayed against a second server address): each allocation links only
/// its own ConnectionBind — ids are unique per server only (RFC 6062 §5.2).
#[test]
fn connection_ids_are_matched_per_server() {
    use super::common::{temp_file, PcapWriter};
    use edgetrace::capture::CaptureReader;
    let mut r = CaptureReader::open(&sample("turn-tcp-relay-6062.pcap")).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        frames.push((f.ts_ns, f.data.to_vec()));
    }
    let mut w = PcapWriter::new(1);
    for copy in 0..2u8 {
        for (ts, data) in &frames {
            let mut d = data.clone();
            // IPv4 source and destination first octet: 127 → 126 in the second copy
            d[26] -= copy;
            d[30] -= copy;
            w.packet((*ts / 1000) as u64 + copy as u64 * 10_000_000, &d);
        }
    }
    let v = turn_json(&temp_file("two-servers-6062.pcap", &w.bytes));
    let al = v["allocations"].as_array().unwrap();
    assert_eq!(al.len(), 6);
    for a in al {
        let binds = a["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["event"] == "ConnectionBind request")
            .count();
        assert!(binds <= 1, "{} links {binds} ConnectionBinds", a["client"]);
        for c in a["connections"].as_array().unwrap() {
            assert_eq!(c["bind_result"], "success");
        }
    }
}

/// Retransmissions of an unanswered Allocate are not counted as more
/// requests; each transaction is, with the frame of its first copy.
#[test]
fn unanswered_allocates_count_transactions_not_retransmissions() {
    use super::common::{stun_msg, temp_file, udp_frame, PcapWriter};
    let c = ([192, 0, 2, 10], 50000);
    let s = ([198, 51, 100, 1], 3478);
    let transport = (0x0019u16, vec![17, 0, 0, 0]);
    let a = stun_msg(0x0003, [1; 12], std::slice::from_ref(&transport));
    let b = stun_msg(0x0003, [2; 12], std::slice::from_ref(&transport));
    let mut w = PcapWriter::new(1);
    for (i, m) in [&a, &a, &a, &b, &b].iter().enumerate() {
        w.packet(i as u64 * 500_000, &udp_frame(c, s, m));
    }
    let v = turn_json(&temp_file("allocate-retransmitted.pcap", &w.bytes));
    let al = &v["allocations"][0];
    assert_eq!(al["outcome"], "failed");
    assert_eq!(
        al["detail"], "2 Allocate request(s) never answered by the server",
        "{al}"
    );
    assert_eq!(al["first_frame"], 1);
}

/// A report lists the first allocations and records less of those it cannot
/// list (no steps, permissions, channels, indications, username or realm):
/// the listed ones must come out whole, and what findings read of the others
/// — ends, relayed address, success, issues, outcome — must not change.
#[test]
fn allocations_beyond_the_listing_keep_what_findings_read() {
    let mut paths = vec![
        sample("turn-udp-channel.pcap"),
        sample("turn-tcp-relay-6062.pcap"),
        sample("session-combined.client-side.pcap"),
    ];
    paths.extend(shared_capture("turn-errors.pcap"));
    paths.extend(shared_capture("turn-tcp-channel.pcap"));
    let (mut unlisted, mut detail_dropped, mut issues) = (0, 0, 0);
    for p in paths {
        let open = || edgetrace::capture::CaptureReader::open(&p).unwrap();
        let full = edgetrace::analyze::all::analyze(open(), &Default::default()).unwrap();
        assert!(!full.allocations.is_empty(), "{}", p.display());
        for n in [0, 1] {
            let b = report_pass(&p, n);
            let what = format!("{}, listing {n}", p.display());
            assert_eq!(full.allocations.len(), b.allocations.len(), "{what}");
            for (i, (f, c)) in full.allocations.iter().zip(&b.allocations).enumerate() {
                if i < n {
                    assert_eq!(
                        format!("{f:?}"),
                        format!("{c:?}"),
                        "{what}: listed is whole"
                    );
                    continue;
                }
                let read = |a: &edgetrace::analyze::turn::Allocation| {
                    format!(
                        "{} {:?} {} {} {} {:?} {:?} {:?} {} {}",
                        a.flow,
                        a.l4,
                        a.stream,
                        a.client,
                        a.server,
                        a.relayed,
                        a.success_frame,
                        a.issues,
                        a.outcome,
                        a.detail
                    )
                };
                assert_eq!(read(f), read(c), "{what}");
                // a shard keeps its own first N whole, so one beyond the
                // listing may still be whole; the others are cut down
                if format!("{f:?}") == format!("{c:?}") {
                    continue;
                }
                assert!(
                    c.steps.is_empty() && c.permissions.is_empty() && c.channels.is_empty(),
                    "{what}: {i}"
                );
                unlisted += 1;
                issues += f.issues.len();
                if !f.permissions.is_empty() || !f.channels.is_empty() || f.username.is_some() {
                    detail_dropped += 1;
                }
            }
        }
    }
    assert!(
        unlisted > 0 && detail_dropped > 0,
        "{unlisted} {detail_dropped}"
    );
    if shared_capture("turn-errors.pcap").is_some() {
        assert!(issues > 0, "the errors capture has issues to keep");
    }
}
