//! Analyzers run sharded by flow over rayon's pool; the JSON must be the
//! same bytes whatever the number of threads.

use std::path::PathBuf;

use super::common::{edgetrace, root, shared};

fn output(cmd: &str, path: &PathBuf, threads: &str) -> Vec<u8> {
    let out = edgetrace()
        .env("RAYON_NUM_THREADS", threads)
        .args([cmd, "--json"])
        .arg(path)
        .output()
        .unwrap();
    out.stdout
}

#[test]
fn same_json_with_1_2_and_5_threads_for_every_command() {
    let mut captures: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    if let Some(s) = shared() {
        for n in [
            "captures/turn-errors.pcap",
            "captures/ice-turn-tcp-relay.pcap",
            "captures/turn-tcp-channel.pcap",
            "corpus/public/dev/stun-turn_mixed_ice-tcp-vlan_google-fb-turn_ipv6_chandata.pcapng",
            "corpus/public/dev/turn-udp_signal_allocate-refresh-permission-channelbind.pcapng",
            "corpus/public/dev/webrtc_ice_testcall_priority-usecandidate-controlling_487.pcap",
        ] {
            captures.push(s.join(n));
        }
    }
    captures.sort();
    for c in &captures {
        for cmd in ["stun", "turn", "flows", "sip", "ice", "tls", "report"] {
            let one = output(cmd, c, "1");
            assert!(!one.is_empty(), "{cmd} {}", c.display());
            for t in ["2", "5"] {
                assert!(
                    one == output(cmd, c, t),
                    "{cmd} {} differs with {t} threads",
                    c.display()
                );
            }
        }
    }
}
