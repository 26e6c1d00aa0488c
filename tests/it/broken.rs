//! The damaged captures of the public corpus (`broken_*`) each give the
//! documented exit code and a message that says what is wrong.

use super::common::{edgetrace, flows_json, shared_capture};

fn run(name: &str) -> Option<(i32, serde_json::Value, String)> {
    shared_capture(name).map(|p| flows_json(&p))
}

#[test]
fn pcap_major_version_1_is_refused_with_exit_2() {
    let Some((code, _, err)) = run("broken_pcap-major-version-1.pcap") else {
        return;
    };
    assert_eq!(code, 2);
    assert!(err.contains("broken_pcap-major-version-1.pcap"), "{err}");
    assert!(err.contains("pcap major version 1"), "{err}");
}

#[test]
fn pcapng_version_0_1_is_refused_with_exit_2() {
    let Some((code, _, err)) = run("broken_pcapng-shb-version-0.1.pcapng") else {
        return;
    };
    assert_eq!(code, 2);
    assert!(err.contains("pcapng section header version 0.1"), "{err}");
}

#[test]
fn file_cut_mid_record_gives_partial_results_and_exit_3() {
    // pcap 2.0 (lengths stored swapped, as Wireshark knows): one whole
    // record, then 2 bytes of the next record header.
    let Some((code, v, err)) = run("broken_file-truncated-mid-record_null-nanosec_fuzz.pcap")
    else {
        return;
    };
    assert_eq!(code, 3);
    assert!(
        err.contains("truncated at byte 237 (after frame 1)"),
        "{err}"
    );
    assert_eq!(v["capture"]["frames"], 1);
    assert_eq!(v["capture"]["truncated"], true);
    assert_eq!(
        v["capture"]["bytes"], 524501,
        "frame.len as tshark shows it"
    );
}

#[test]
fn garbled_tcp_header_is_skipped_not_fatal() {
    let Some((code, v, _)) = run("broken_tcp-header-heapoverflow.pcap") else {
        return;
    };
    assert_eq!(code, 0);
    assert_eq!(v["capture"]["skipped"]["transport-header-truncated"], 1);
    assert_eq!(v["flows"].as_array().unwrap().len(), 0);
}

#[test]
fn lying_ipv4_total_length_is_counted_and_decoded() {
    let Some((code, v, _)) = run("broken_ipv4-invalid-total-length.pcap") else {
        return;
    };
    assert_eq!(code, 0);
    assert_eq!(v["capture"]["decoded"]["ip_length_exceeds_frame"], 1);
    assert!(v["flows"][0]["filter"]
        .as_str()
        .unwrap()
        .contains("udp.dstport == 53"));
}

#[test]
fn empty_pcapng_is_fine() {
    let Some(p) = shared_capture("empty_pcapng_no-packets.pcapng") else {
        return;
    };
    let out = edgetrace().args(["flows"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no TCP or UDP flows"));
}
