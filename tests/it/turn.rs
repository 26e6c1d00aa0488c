//! `edgetrace turn`: allocation life cycles on the lab captures.

use serde_json::Value;

use super::common::{
    edgetrace, report_pass, sample, shared_capture, temp_file, udp_frame, PcapWriter,
};

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

/// The lab's TURN captures played `plays` times, 40 minutes apart, each
/// source 5 minutes after the one before, with a media stream throughout (a
/// packet every 400 ms, so a report's pass crosses many barriers) and a last
/// packet 40 minutes after the last play.  Every allocation of a play is
/// over (released, failed, expired — the lab's lifetimes are at most 777 s —
/// or closed) long before the next begins.  UDP keeps its addresses, so a
/// play's allocations are on the 5-tuples of the one before; TCP ports
/// other than 3478 move by 7 per play, as new connections would (the same
/// ports and initial sequence numbers would make them retransmissions).
/// `tag` names the file (tests run side by side).
fn replayed(plays: u64, tag: &str) -> std::path::PathBuf {
    let mut sources = vec![
        sample("turn-udp-channel.pcap"),
        sample("turn-tcp-relay-6062.pcap"),
        sample("session-combined.client-side.pcap"),
    ];
    sources.extend(shared_capture("turn-errors.pcap"));
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    const MIN: u64 = 60_000_000;
    for play in 0..plays {
        for (k, p) in sources.iter().enumerate() {
            let mut r = edgetrace::capture::CaptureReader::open(p).unwrap();
            let mut t0 = None;
            while let Some(fr) = r.next_frame().unwrap() {
                assert_eq!(fr.link_type, 1, "{}: Ethernet", p.display());
                let us = (fr.ts_ns / 1000) as u64;
                let base = *t0.get_or_insert(us);
                let mut data = fr.data.to_vec();
                move_tcp_ports(&mut data, play as u16 * 7);
                frames.push((play * 40 * MIN + k as u64 * 5 * MIN + us - base, data));
            }
        }
    }
    let end = plays * 40 * MIN;
    let rtp = |i: u64| {
        let mut b = [0u8; 160];
        b[0] = 0x80;
        b[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        udp_frame(([192, 0, 2, 1], 50_000), ([192, 0, 2, 2], 50_002), &b)
    };
    for i in 0..end / 400_000 {
        frames.push((i * 400_000 + 7, rtp(i)));
    }
    frames.push((end, rtp(0)));
    frames.sort_by_key(|f| f.0); // stable: each source keeps its order
    let mut w = PcapWriter::new(1);
    for (us, data) in &frames {
        w.packet(1_790_000_000_000_000 + us, data);
    }
    temp_file(&format!("turn-replayed-{plays}-{tag}.pcap"), &w.bytes)
}

/// Adds `by` to the TCP ports of an Ethernet/IPv4 frame but 3478.
fn move_tcp_ports(frame: &mut [u8], by: u16) {
    if by == 0 || frame.len() < 34 || frame[12..14] != [8, 0] || frame[23] != 6 {
        return;
    }
    let at = 14 + usize::from(frame[14] & 0x0f) * 4;
    for p in [at, at + 2] {
        if frame.len() >= p + 2 {
            let port = u16::from_be_bytes([frame[p], frame[p + 1]]);
            if port != 3478 {
                frame[p..p + 2].copy_from_slice(&port.wrapping_add(by).to_be_bytes());
            }
        }
    }
}

/// A TURN message on a 5-tuple whose allocation is over and has been quiet
/// for two minutes starts a new allocation (`turn::OVER_AFTER_NS`): the
/// same traffic played twice on the same addresses gives twice the
/// allocations, each play's as the first play's, in every command.
#[test]
fn a_later_allocation_on_the_same_five_tuple_is_a_new_one() {
    let once = turn_json(&replayed(1, "split"));
    let twice_path = replayed(2, "split");
    let twice = turn_json(&twice_path);
    let (one, two) = (
        once["allocations"].as_array().unwrap(),
        twice["allocations"].as_array().unwrap(),
    );
    let rfc6062 = |a: &&Value| !a["connections"].as_array().unwrap().is_empty();
    assert!(one.len() >= 7 && one.iter().filter(rfc6062).count() == 2);
    assert_eq!(two.len(), 2 * one.len());
    let udp = |v: &[Value]| v.iter().filter(|a| a["transport"] == "udp").count();
    assert!(udp(one) >= 4, "allocations on the same 5-tuples");
    let outcomes = |v: &[Value]| {
        let mut o: Vec<String> = v
            .iter()
            .filter(|a| a["transport"] == "udp")
            .map(|a| {
                format!(
                    "{} {} {} {} {}",
                    a["client"], a["server"], a["outcome"], a["relayed"], a["channels"]
                )
            })
            .collect();
        o.sort();
        o
    };
    let mut doubled = outcomes(one);
    doubled.extend(outcomes(one));
    doubled.sort();
    assert_eq!(outcomes(two), doubled);
    // the report lists the same allocations
    let out = edgetrace()
        .args(["report", "--json"])
        .arg(&twice_path)
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["counts"]["turn_allocations"], two.len());
    assert_eq!(report["turn"].as_array().unwrap(), two);
}

/// A report's pass finishes the allocations that are over as it goes, and
/// keeps only the live ones to the end; what the report says of them — the
/// count, the listing (whole, whatever its length) and the findings — is
/// what the whole capture's allocations give.
#[test]
fn allocations_finished_during_the_pass_report_as_at_the_end() {
    use edgetrace::model::turn::EndedAllocations;
    let path = replayed(2, "pass");
    let open = || edgetrace::capture::CaptureReader::open(&path).unwrap();
    let whole = edgetrace::analyze::all::analyze(open(), &Default::default()).unwrap();
    let opts = edgetrace::findings::Options::default();
    let mut expected = EndedAllocations::new(0, opts);
    for al in &whole.allocations {
        edgetrace::analyze::turn::AllocationSink::allocation(&mut expected, al.clone(), false);
    }
    let expected = format!("{:?}", sorted(expected.findings(&[])));
    assert!(
        expected.contains("turn."),
        "the lab's captures have TURN findings"
    );
    for n in [0, 1, 2, 5, 1000] {
        let roles = edgetrace::roles::Roles::builtin();
        let mut folder =
            edgetrace::model::sip::DialogFolder::for_report(Default::default(), &roles, n);
        let mut ended = EndedAllocations::new(n, opts);
        let sinks = edgetrace::analyze::all::Sinks {
            sip: &mut folder,
            turn: &mut ended,
        };
        let a = edgetrace::analyze::all::analyze_for_report(open(), &Default::default(), n, sinks)
            .unwrap();
        // every one was over and quiet for minutes at a barrier: all were
        // finished during the pass, RFC 6062 ones included
        assert_eq!(ended.count, whole.allocations.len(), "listing {n}");
        assert!(whole
            .allocations
            .iter()
            .any(|al| !al.connections.is_empty()));
        assert_eq!(ended.count + a.allocations.len(), whole.allocations.len());
        let first = ended.first(&a.allocations, n);
        assert_eq!(first.len(), n.min(whole.allocations.len()));
        for (x, y) in first.iter().zip(&whole.allocations) {
            assert_eq!(format!("{x:?}"), format!("{y:?}"), "listing {n}: whole");
        }
        assert_eq!(
            format!("{:?}", sorted(ended.findings(&a.allocations))),
            expected
        );
    }
}

fn sorted(mut v: Vec<edgetrace::findings::Finding>) -> Vec<edgetrace::findings::Finding> {
    v.sort_by(|a, b| (a.id, &a.group).cmp(&(b.id, &b.group)));
    v
}
