//! The bench generator's replicas (`examples/gencap/replica.rs`): each one
//! is a call of its own, and what a replica changes in a frame stays valid,
//! so the figures in docs/performance.md come from a capture that works the
//! analyzers as a capture of many calls does.

#[path = "../../examples/gencap/replica.rs"]
mod replica;

use edgetrace::capture::CaptureReader;
use edgetrace::proto::stun;

use super::common::{edgetrace, finding, sample, temp_file, PcapWriter};

const SAMPLE: &str = "session-combined.client-side.pcap";

/// The sample's Ethernet frames with their times in µs.
fn frames(name: &str) -> Vec<(u64, Vec<u8>)> {
    let mut r = CaptureReader::open(&sample(name)).expect("sample");
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().expect("readable") {
        assert_eq!(f.link_type, 1, "the generator replays Ethernet frames");
        out.push(((f.ts_ns / 1000) as u64, f.data.to_vec()));
    }
    out
}

/// Every STUN message a frame carries in UDP (inner ones first): its
/// FINGERPRINT verdict and its transaction id.
fn stun_in(frame: &[u8]) -> Vec<(Option<stun::Fingerprint>, Vec<u8>)> {
    let mut copy = frame.to_vec();
    let mut out = Vec::new();
    if let Some((payload, _)) = replica::udp_payload(&mut copy) {
        replica::each_stun(payload, &mut |m| {
            let msg = stun::parse(m).expect("each_stun hands over whole messages");
            out.push((msg.fingerprint(), m[8..20].to_vec()));
        });
    }
    out
}

/// Replica `r` of the sample.
fn replica_of(frames: &[(u64, Vec<u8>)], id: &replica::Identity, r: u32) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|(_, d)| {
            let mut x = d.clone();
            replica::rewrite(&mut x, 1, r as u16);
            replica::personalize(&mut x, id, r);
            x
        })
        .collect()
}

#[test]
fn a_replica_keeps_every_fingerprint_valid_and_has_its_own_transactions() {
    let fr = frames(SAMPLE);
    let mut next = 0;
    let id = replica::Identity::discover(fr.iter().map(|(_, d)| d.as_slice()), &mut next);
    let before: Vec<_> = fr.iter().map(|(_, d)| stun_in(d)).collect();
    let fingerprinted = before
        .iter()
        .flatten()
        .filter(|(v, _)| *v == Some(stun::Fingerprint::Standard))
        .count();
    // the sample has them, inside ChannelData too, so the test can fail
    assert!(
        fingerprinted >= 10,
        "{fingerprinted} fingerprinted messages"
    );
    let in_channels = fr
        .iter()
        .zip(&before)
        .filter(|((_, d), found)| {
            let mut d = d.clone();
            let channel = replica::udp_payload(&mut d)
                .is_some_and(|(p, _)| p.first().is_some_and(|b| (0x40..0x80).contains(b)));
            channel && !found.is_empty()
        })
        .count();
    assert!(in_channels >= 5, "{in_channels} messages in ChannelData");
    for r in [0u32, 1, 4242] {
        let after: Vec<_> = replica_of(&fr, &id, r).iter().map(|d| stun_in(d)).collect();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert_eq!(b.len(), a.len(), "frame {}", i + 1);
            for ((vb, tb), (va, ta)) in b.iter().zip(a) {
                assert_eq!(vb, va, "frame {} replica {r}: FINGERPRINT verdict", i + 1);
                assert_eq!(
                    tb != ta,
                    r != 0,
                    "frame {} replica {r}: transaction id",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn the_tokens_are_the_calls_and_ice_sessions_names() {
    let fr = frames(SAMPLE);
    let mut next = 0;
    let id = replica::Identity::discover(fr.iter().map(|(_, d)| d.as_slice()), &mut next);
    let replica1 = replica_of(&fr, &id, 1);
    for token in ["1-9335@10.77.0.11", "9335a1", "Aext", "Bint"] {
        let hits = |frames: &mut dyn Iterator<Item = &[u8]>| {
            frames
                .map(|d| memchr::memmem::find_iter(d, token.as_bytes()).count())
                .sum::<usize>()
        };
        assert!(
            hits(&mut fr.iter().map(|(_, d)| d.as_slice())) > 0,
            "{token} in the sample"
        );
        assert_eq!(
            hits(&mut replica1.iter().map(|d| d.as_slice())),
            0,
            "{token} left in replica 1"
        );
    }
}

/// `n` replicas of the sample, one after the other, as a capture file.
fn replicas(n: u32) -> std::path::PathBuf {
    let fr = frames(SAMPLE);
    let mut next = 0;
    let id = replica::Identity::discover(fr.iter().map(|(_, d)| d.as_slice()), &mut next);
    let span = fr.last().unwrap().0 - fr[0].0 + 1_000_000;
    let mut w = PcapWriter::new(1);
    for r in 0..n {
        for ((ts, _), data) in fr.iter().zip(replica_of(&fr, &id, r)) {
            w.packet(ts + r as u64 * span, &data);
        }
    }
    temp_file(&format!("gencap-{n}-replicas.pcap"), &w.bytes)
}

#[test]
fn two_replicas_are_two_calls_and_their_alike_findings_merge() {
    let path = replicas(2);
    let json = |p: &std::path::Path| -> serde_json::Value {
        let out = edgetrace()
            .args(["report", "--json"])
            .arg(p)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).expect("report JSON")
    };
    let one = json(&sample(SAMPLE));
    let two = json(&path);
    for k in [
        "sip_dialogs",
        "ice_sessions",
        "stun_messages",
        "turn_allocations",
    ] {
        let n = one["counts"][k].as_u64().unwrap();
        assert!(n > 0, "{k}");
        assert_eq!(two["counts"][k].as_u64(), Some(2 * n), "{k}");
    }
    // the sample's ICE findings, once per session, each standing for both
    for f in one["findings"].as_array().unwrap() {
        let id = f["id"].as_str().unwrap();
        if id.starts_with("ice.") {
            let merged = finding(&two, id);
            assert_eq!(merged["count"], 2, "{id}");
            assert!(merged["summary"]
                .as_str()
                .unwrap()
                .ends_with("(and 1 more like it)"));
        }
    }
    assert!(one["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == "ice.one-way"));
}

/// A report keeps the first sessions of a capture of many calls whole and
/// reads the others for their findings and counts only: whatever it lists,
/// the counts and the findings are those of every session read whole.
#[test]
fn a_report_lists_the_first_ice_sessions_and_finds_in_all() {
    use edgetrace::findings::{ice_session, Merging};
    use edgetrace::model::ice::IceReport;
    let path = replicas(3);
    let a =
        edgetrace::analyze::all::analyze(CaptureReader::open(&path).unwrap(), &Default::default())
            .unwrap();
    assert_eq!(a.ice.len(), 3, "one session per replica");
    let full = IceReport::build(&a.run, &a.ice, "x");
    let mut merging = Merging::default();
    for (o, s) in full.sessions.iter().zip(&a.ice) {
        let mut v = Vec::new();
        ice_session(o, s, &mut v);
        v.into_iter().for_each(|f| merging.add(f));
    }
    let expected = super::common::findings_in_any_order(&merging.finish());
    assert!(!expected.is_empty(), "the sample has ICE findings");
    for n in 0..=4 {
        let (r, findings) = IceReport::build_for_report(&a.run, a.ice.clone(), "x", n);
        assert_eq!(json(&r.summary), json(&full.summary), "listing {n}");
        assert_eq!(r.sessions.len(), n.min(3), "listing {n}");
        for (listed, whole) in r.sessions.iter().zip(&full.sessions) {
            let mut whole = whole.clone();
            whole.checks.clear();
            assert_eq!(json(listed), json(&whole), "listing {n}");
        }
        assert_eq!(
            super::common::findings_in_any_order(&findings),
            expected,
            "listing {n}"
        );
    }
}

fn json<T: serde::Serialize>(x: &T) -> serde_json::Value {
    serde_json::to_value(x).unwrap()
}
