//! `edgetrace tls` against tshark's decode (tests/expected/tls/, made by
//! scripts/tshark-tls.py) and the lab scenarios' truth (who opened TCP, who
//! sent the ClientHello, certificate EKUs, alerts, resets).

use serde_json::Value;

use super::common::{edgetrace, report_pass, root, shared, shared_capture};
use edgetrace::proto::tls::{cipher_name, handshake_name, version_name};

fn tls_json(path: &std::path::Path) -> Value {
    let out = edgetrace()
        .args(["tls", "--json"])
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

const HANDSHAKE_TYPES: [u8; 14] = [0, 1, 2, 4, 8, 11, 12, 13, 14, 15, 16, 20, 22, 24];

/// The handshake type a timeline step names, if it is a clear handshake message.
fn step_type(what: &str) -> Option<u8> {
    if what.contains("encrypted") {
        return None;
    }
    if what.starts_with("HelloRetryRequest") {
        return Some(2);
    }
    let word = what.split_whitespace().next()?;
    HANDSHAKE_TYPES
        .into_iter()
        .find(|&t| handshake_name(t) == word)
}

#[test]
fn every_handshake_frame_agrees_with_tshark() {
    if shared().is_none() {
        return;
    }
    let mut failures = Vec::new();
    let mut frames = 0;
    for e in std::fs::read_dir(root().join("tests/expected/tls")).unwrap() {
        let exp: Value =
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
        let name = exp["capture"].as_str().unwrap();
        let Some(path) = shared_capture(name) else {
            continue;
        };
        let v = tls_json(&path);
        for t in exp["frames"].as_array().unwrap() {
            frames += 1;
            let f = t["frame"].as_u64().unwrap();
            let Some(c) = v["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["stream"] == t["stream"])
            else {
                failures.push(format!("{name}: stream {} not found", t["stream"]));
                continue;
            };
            let at = |s: &Value| s["end_frame"].as_u64().or(s["frame"].as_u64()) == Some(f);
            let steps: Vec<&Value> = c["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| at(s))
                .collect();
            let types: Vec<u64> = steps
                .iter()
                .filter_map(|s| step_type(s["what"].as_str().unwrap()).map(u64::from))
                .collect();
            let want: Vec<u64> = t["handshake_types"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            if types != want {
                failures.push(format!(
                    "{name} frame {f}: handshake types {types:?} vs tshark {want:?}"
                ));
            }
            let alerts: Vec<u64> = c["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["frame"].as_u64() == Some(f) && a["code"].is_u64())
                .map(|a| a["code"].as_u64().unwrap())
                .collect();
            let want_alerts: Vec<u64> = t["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            if alerts != want_alerts {
                failures.push(format!(
                    "{name} frame {f}: alerts {alerts:?} vs {want_alerts:?}"
                ));
            }
            if want.contains(&1) {
                let ch = &c["client_hello"];
                if ch["sni"] != t["sni"]
                    || ch["cipher_suites"].as_array().map(|a| a.len() as u64)
                        != t["cipher_suites"].as_u64()
                {
                    failures.push(format!(
                        "{name} frame {f}: ClientHello sni/ciphers {} vs {}",
                        ch["sni"], t["sni"]
                    ));
                }
            }
            if let Some(cs) = t["cipher_suite"].as_u64() {
                let sh = &c["server_hello"];
                if sh["cipher_suite"] != cipher_name(cs as u16).as_str() {
                    failures.push(format!(
                        "{name} frame {f}: ServerHello cipher {} vs {cs:#06x}",
                        sh["cipher_suite"]
                    ));
                }
                if let Some(sv) = t["selected_version"].as_u64() {
                    if sh["version"] != version_name(sv as u16).as_str() {
                        failures.push(format!(
                            "{name} frame {f}: version {} vs {sv:#06x}",
                            sh["version"]
                        ));
                    }
                }
            }
            // certificates carried by the Certificate messages ending in this frame
            let cert_frames: Vec<u64> = steps
                .iter()
                .filter(|s| step_type(s["what"].as_str().unwrap()) == Some(11))
                .map(|s| s["frame"].as_u64().unwrap())
                .collect();
            let certs: Vec<&Value> = c["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| cert_frames.contains(&x["frame"].as_u64().unwrap()))
                .collect();
            let sans: Vec<String> = certs
                .iter()
                .flat_map(|x| {
                    x["san_dns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                })
                .collect();
            let want_sans: Vec<String> = t["san_dns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            if certs.len() as u64 != t["certificates"].as_u64().unwrap() || sans != want_sans {
                failures.push(format!(
                    "{name} frame {f}: {} certs {sans:?} vs {} {want_sans:?}",
                    certs.len(),
                    t["certificates"]
                ));
            }
        }
        for c in v["connections"].as_array().unwrap() {
            for p in c["problems"].as_array().unwrap() {
                failures.push(format!("{name} stream {}: problem {p}", c["stream"]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(frames >= 50, "{frames}");
}

/// Roles, certificates and alerts against what each lab scenario did.
#[test]
fn lab_scenarios() {
    let Some(s) = shared() else { return };
    let truth = |n: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(s.join(format!("captures/{n}.truth.json"))).unwrap(),
        )
        .unwrap()
    };
    let cap = |n: &str| tls_json(&s.join(format!("captures/{n}.pcap")));

    // every connection: reversed as the truth says, ClientHello sender and frame
    for n in [
        "tls-8057-reversed-ok",
        "tls-8057-reversed-badeku",
        "tls-443-normal",
        "tls-8057-idle-rst-reconnect",
    ] {
        let t = truth(n);
        let v = cap(n);
        for tc in t["tcp_connections"].as_array().unwrap() {
            let c = v["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["stream"] == tc["stream"])
                .unwrap();
            assert_eq!(
                c["roles"] == "reversed",
                tc["tls"]["reversed_roles"] == true,
                "{n}"
            );
            assert_eq!(c["tls_client"], tc["tls"]["client_hello_from"], "{n}");
            assert_eq!(
                c["client_hello"]["frame"], tc["tls"]["client_hello_frame"],
                "{n}"
            );
            assert_eq!(c["tcp_client"], tc["client"], "{n}");
        }
    }

    let v = cap("tls-8057-reversed-ok");
    let c = &v["connections"][0];
    assert_eq!(c["handshake"], "complete");
    let client_cert = c["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tls_role"] == "client" && x["index"] == 0)
        .unwrap();
    assert_eq!(client_cert["eku_ok"], true);
    assert!(client_cert["eku"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "clientAuth"));
    assert_eq!(v["port_8057"]["flags"][0]["id"], "reversed-as-expected");

    let v = cap("tls-8057-reversed-badeku");
    let c = &v["connections"][0];
    let client_cert = c["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tls_role"] == "client" && x["index"] == 0)
        .unwrap();
    assert_eq!(client_cert["eku_ok"], false);
    assert_eq!(client_cert["eku"], serde_json::json!(["serverAuth"]));
    let alert = &c["alerts"][0];
    assert_eq!(
        (alert["level"].as_str(), alert["code"].as_u64()),
        (Some("fatal"), Some(43))
    );
    assert_eq!(
        alert["sender"], c["tcp_client"],
        "the alert comes from the TCP client (the TLS server)"
    );
    assert_eq!(alert["sender_tls_role"], "server");
    assert_eq!(c["health"]["rst_by"], c["tcp_client"]);
    assert_eq!(c["handshake"], "failed");
    let ids: Vec<&str> = v["port_8057"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"client-cert-without-clientauth"), "{ids:?}");

    let v = cap("tls-443-normal");
    let versions: Vec<&str> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["TLS 1.2", "TLS 1.3"]);
    assert!(v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["roles"] == "normal" && c["handshake"] == "complete"));
    assert_eq!(v["connections"][1]["certificates_encrypted"], true);
    assert!(v["port_8057"].is_null());

    let t = truth("tls-8057-idle-rst-reconnect");
    let v = cap("tls-8057-idle-rst-reconnect");
    let (first, second) = (&v["connections"][0], &v["connections"][1]);
    let rst = &t["tcp_connections"][0]["rst_from"][0];
    assert_eq!(first["health"]["rst_frame"], rst["frame"]);
    assert_eq!(first["health"]["rst_by"], rst["from"]);
    assert_eq!(
        first["health"]["rst_by"], first["tcp_server"],
        "the Edge side resets"
    );
    let idle = first["health"]["idle_before_rst_s"].as_f64().unwrap();
    assert!((idle - 8.0).abs() < 0.5, "{idle}");
    assert_eq!(second["reconnect_of"], first["stream"]);
    let after = second["reconnect_after_s"].as_f64().unwrap();
    assert!((after - 1.0).abs() < 0.3, "{after}");
    assert_ne!(second["tcp_client"], first["tcp_client"], "new source port");
    let ids: Vec<&str> = v["port_8057"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"idle-reset"), "{ids:?}");
    assert_eq!(v["port_8057"]["pairs"][0]["reconnects"], 1);
}

/// A report lists the first connections whole and cuts the others down, in
/// the finder and in the model: the listed ones must come out whole, and
/// the findings, the 8057 section and the summary must be those of every
/// connection read whole.
#[test]
fn connections_beyond_the_listing_keep_what_findings_read() {
    use edgetrace::findings::{tls_8057, tls_connection, Merging};
    use edgetrace::model::tls::TlsReport;
    let mut paths = vec![super::common::sample("tls-8057-idle-rst-reconnect.pcap")];
    paths.extend(shared_capture("tls-8057-reversed-badeku.pcap"));
    let (mut failing_certs, mut cut) = (0, 0);
    for p in paths {
        let open = || edgetrace::capture::CaptureReader::open(&p).unwrap();
        let a = edgetrace::analyze::all::analyze(open(), &Default::default()).unwrap();
        let full = TlsReport::build(&a.run, &a.tls, "x");
        assert!(!full.connections.is_empty(), "{}", p.display());
        let mut merging = Merging::default();
        for c in &full.connections {
            let mut v = Vec::new();
            tls_connection(c, &mut v);
            v.into_iter().for_each(|f| merging.add(f));
        }
        let mut expected = merging.finish();
        if let Some(x) = &full.port_8057 {
            tls_8057(x, &mut expected);
        }
        let json = |v: &dyn Fn() -> serde_json::Result<Value>| v().unwrap();
        for n in [0, 1] {
            let mut b = report_pass(&p, n);
            cut += b.tls.conns.values().filter(|c| c.cut).count();
            let what = format!("{}, listing {n}", p.display());
            let tls = std::mem::take(&mut b.tls);
            let (listed, findings) = TlsReport::build_for_report(&b.run, tls, "x", n);
            assert_eq!(
                listed.connections.len(),
                n.min(full.connections.len()),
                "{what}"
            );
            assert_eq!(
                json(&|| serde_json::to_value(&full.summary)),
                json(&|| serde_json::to_value(&listed.summary)),
                "{what}"
            );
            assert_eq!(
                json(&|| serde_json::to_value(&full.port_8057)),
                json(&|| serde_json::to_value(&listed.port_8057)),
                "{what}"
            );
            for (f, c) in full.connections.iter().zip(&listed.connections) {
                assert_eq!(
                    json(&|| serde_json::to_value(f)),
                    json(&|| serde_json::to_value(c)),
                    "{what}: a listed connection is whole"
                );
            }
            assert_eq!(
                super::common::findings_in_any_order(&expected),
                super::common::findings_in_any_order(&findings),
                "{what}: findings"
            );
            failing_certs += findings
                .iter()
                .filter(|f| f.id.ends_with("cert-eku"))
                .count();
        }
    }
    assert!(
        cut > 0,
        "the finder cut the connections a report will not list"
    );
    if shared_capture("tls-8057-reversed-badeku.pcap").is_some() {
        assert!(
            failing_certs > 0,
            "the bad-EKU capture keeps its failing certificate"
        );
    }
}

/// Application data is counted, never read: a record that spans segments is
/// passed over as its bytes arrive.  Counted once whole, with its last
/// byte's frame; one cut off by the end of the capture is a problem that
/// says how much of it came.
#[test]
fn records_spanning_segments_are_counted_and_a_cut_one_is_reported() {
    use super::common::{tcp_frame, temp_file, PcapWriter};
    let (c, s) = (([192, 0, 2, 1], 50000), ([198, 51, 100, 1], 443));
    let mut first = vec![0x14, 3, 3, 0, 1, 1]; // ChangeCipherSpec
    first.extend([0x17, 3, 3, 0x0b, 0xb8]); // application data, 3,000 bytes
    first.extend(vec![0xaa; 1000]);
    let second = vec![0xbb; 1500];
    let mut third = vec![0xcc; 500];
    third.extend([0x17, 3, 3, 0x07, 0xd0]); // 2,000 bytes, of which 100 come
    third.extend(vec![0xdd; 100]);
    let mut w = PcapWriter::new(1);
    let mut seq = 1001u32;
    w.packet(0, &tcp_frame(c, s, 1000, "S", &[]));
    w.packet(1000, &tcp_frame(s, c, 5000, "SA", &[]));
    for (i, p) in [&first, &second, &third].into_iter().enumerate() {
        w.packet(2000 + i as u64 * 1000, &tcp_frame(c, s, seq, "AP", p));
        seq += p.len() as u32;
    }
    let v = tls_json(&temp_file("tls-record-spans-segments.pcap", &w.bytes));
    let conn = &v["connections"][0];
    assert_eq!(conn["data_from_tcp_client"]["records"], 1, "{conn}");
    assert_eq!(conn["data_from_tcp_client"]["bytes"], 3000);
    let problems: Vec<&str> = conn["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        problems,
        ["frame 5: 105 bytes of an incomplete record at the end"]
    );
}
