//! The command line on the bundled samples: formats, stdin, gzip, exit codes.

use std::io::Write;

use super::common::{edgetrace, flows_json, sample, temp_file};

#[test]
fn flows_table_on_a_sample() {
    let out = edgetrace()
        .args([
            "flows",
            sample("tls-8057-idle-rst-reconnect.pcap").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("tcp 0"), "{s}");
    assert!(s.contains("127.20.4.1:45295 → 127.20.4.2:8057"), "{s}");
    assert!(s.contains("RST server"), "{s}");
    assert!(s.contains("33 frames"), "{s}");
}

#[test]
fn flows_json_has_schema_and_the_8057_story() {
    let (code, v, _) = flows_json(&sample("tls-8057-idle-rst-reconnect.pcap"));
    assert_eq!(code, 0);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["meta"]["tool"], "edgetrace");
    assert_eq!(v["capture"]["format"], "pcap");
    let f = &v["flows"];
    assert_eq!(f.as_array().unwrap().len(), 2);
    // first connection: reset by the Edge side after ~8 s of silence
    assert_eq!(f[0]["filter"], "tcp.stream eq 0");
    assert_eq!(f[0]["tcp"]["handshake"], "complete");
    assert_eq!(f[0]["tcp"]["rst_by"], "server");
    assert!(f[0]["max_idle_s"].as_f64().unwrap() > 7.9);
    // reconnect from a new port about 1 s later, closed gracefully
    assert_eq!(f[1]["client"], "127.20.4.1:32871");
    assert_eq!(f[1]["tcp"]["fin_by"], "both");
    let gap = f[1]["start_s"].as_f64().unwrap()
        - (f[0]["start_s"].as_f64().unwrap() + f[0]["duration_s"].as_f64().unwrap());
    assert!((0.9..1.2).contains(&gap), "reconnect after {gap} s");
}

#[test]
fn json_is_byte_for_byte_deterministic() {
    let run = || {
        edgetrace()
            .args(["flows", "--json"])
            .arg(sample("session-combined.client-side.pcap"))
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(run(), run());
}

#[test]
fn stdin_and_gzip_give_the_same_flows() {
    let raw = std::fs::read(sample("turn-udp-channel.pcap")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    // a gzip file whose name says nothing about gzip
    let gz_path = temp_file("capture.bin", &gz);
    let (c1, from_gz, _) = flows_json(&gz_path);
    assert_eq!(c1, 0);
    assert_eq!(from_gz["capture"]["gzip"], true);
    let out = edgetrace()
        .args(["flows", "--json", "-"])
        .write_stdin(raw)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, from_file, _) = flows_json(&sample("turn-udp-channel.pcap"));
    assert_eq!(from_stdin["flows"], from_file["flows"]);
    assert_eq!(from_gz["flows"], from_file["flows"]);
    let out = edgetrace()
        .args(["flows", "--json", "-"])
        .write_stdin(gz)
        .output()
        .unwrap();
    let from_gz_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_gz_stdin["flows"], from_file["flows"]);
}

/// A path that names a pipe (`edgetrace flows <(zcat x.pcap.gz)`) is read
/// as a stream: its first bytes, read to tell gzip, are not lost (a pipe
/// cannot be opened a second time from its start).
#[cfg(target_os = "linux")]
#[test]
fn a_pipe_given_as_a_path_is_read_whole() {
    let raw = std::fs::read(sample("turn-udp-channel.pcap")).unwrap();
    let (_, from_file, _) = flows_json(&sample("turn-udp-channel.pcap"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    for bytes in [raw.clone(), gz.finish().unwrap()] {
        let out = edgetrace()
            .args(["flows", "--json", "/dev/stdin"])
            .write_stdin(bytes)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let from_pipe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            from_pipe["capture"]["frames"],
            from_file["capture"]["frames"]
        );
        assert_eq!(from_pipe["flows"], from_file["flows"]);
    }
}

#[test]
fn not_a_capture_exits_2_naming_the_file() {
    let p = temp_file("notes.txt", b"these are my notes about the Edge server\n");
    let out = edgetrace().args(["flows"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt"), "{err}");
    assert!(err.contains("not a pcap or pcapng capture: text"), "{err}");
}

#[test]
fn missing_file_exits_2() {
    let out = edgetrace()
        .args(["flows", "/nonexistent/capture.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/capture.pcap"));
}

#[test]
fn help_and_bad_usage() {
    let out = edgetrace().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
    let out = edgetrace().args(["flows"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let out = edgetrace()
        .args([
            "flows",
            sample("turn-tcp-relay-6062.pcap").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stun_and_turn_json_are_deterministic() {
    for cmd in ["stun", "turn"] {
        let run = || {
            edgetrace()
                .args([cmd, "--json"])
                .arg(sample("session-combined.client-side.pcap"))
                .output()
                .unwrap()
                .stdout
        };
        let a = run();
        assert!(!a.is_empty());
        assert_eq!(a, run(), "{cmd}");
    }
}

#[test]
fn table_limit_caps_rows_and_says_so() {
    let out = edgetrace()
        .args(["flows", "--limit", "1"])
        .arg(sample("tls-8057-idle-rst-reconnect.pcap"))
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("tcp 0") && !s.contains("tcp 1"), "{s}");
    assert!(s.contains("… 1 more flows not shown"), "{s}");
    let out = edgetrace()
        .args(["stun", "--limit", "0"])
        .arg(sample("turn-tcp-relay-6062.pcap"))
        .output()
        .unwrap();
    assert!(!String::from_utf8(out.stdout).unwrap().contains("not shown"));
}

/// `flows --json` writes its rows straight from the flow table: the same
/// JSON as the report built whole (which the table format uses): TCP rows
/// first, then UDP, each in stream order.
#[test]
fn streamed_flows_json_is_the_built_report() {
    use edgetrace::capture::CaptureReader;
    use edgetrace::model::FlowsReport;
    use edgetrace::pipeline::{self, NoSink, RunOptions};
    let opts = RunOptions {
        flow_counts: true,
        ..RunOptions::default()
    };
    for name in [
        "session-combined.client-side.pcap", // 1 TCP and 5 UDP flows
        "turn-tcp-relay-6062.pcap",
        "sip-invite-udp.pcap",
    ] {
        let run = || {
            let reader = CaptureReader::open(&sample(name)).unwrap();
            pipeline::run(reader, &opts, &mut NoSink).unwrap()
        };
        let r = run();
        let streamed = serde_json::to_value(FlowsReport::stream(&r, name)).unwrap();
        let built = serde_json::to_value(FlowsReport::from_run(run(), name)).unwrap();
        assert!(!built["flows"].as_array().unwrap().is_empty(), "{name}");
        let strip = |mut v: serde_json::Value| {
            v["meta"] = serde_json::Value::Null; // the time it was made
            v
        };
        assert_eq!(strip(streamed), strip(built), "{name}");
    }
}

/// A reader that stops early (`edgetrace stun --json big.pcap | head`) ends
/// the run quietly with 0, for every command writing JSON: serde_json's
/// write errors keep their I/O kind, so the CLI knows a broken pipe.
#[test]
fn a_reader_closing_the_json_pipe_early_is_not_an_error() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut w = super::common::PcapWriter::new(1);
    // 5,000 Allocate requests from 2,500 client ports: every command's JSON
    // (messages, allocations, flows) is far larger than a pipe's buffer
    for i in 0..5_000u32 {
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&i.to_be_bytes());
        let msg = super::common::stun_msg(0x0003, tid, &[]);
        let port = 40_000 + (i % 2_500) as u16;
        w.packet(
            u64::from(i) * 1000,
            &super::common::udp_frame(([10, 0, 0, 1], port), ([10, 0, 0, 2], 3478), &msg),
        );
    }
    let path = temp_file("many-stun.pcap", &w.bytes);
    for cmd in ["stun", "report", "flows"] {
        let out = edgetrace()
            .args([cmd, "--json"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.stdout.len() > 256 * 1024,
            "{cmd}: {} bytes",
            out.stdout.len()
        );
    }
    let bin = assert_cmd::cargo::cargo_bin("edgetrace");
    for cmd in ["stun", "report", "flows"] {
        let mut child = Command::new(&bin)
            .args([cmd, "--json"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // stdout is closed here, with most of the JSON still to come
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
