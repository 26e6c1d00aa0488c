//! Replays the fuzz regression inputs and damaged variants of the samples.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::common::{edgetrace, root, temp_file};

fn files(dir: &str) -> Vec<PathBuf> {
    let d = root().join("tests/fuzz_regressions").join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fuzz_regressions_stay_fixed() {
    for f in files("capture") {
        // as the capture fuzz target does: the pipeline, then every analyzer and the report
        let data = std::fs::read(&f).unwrap();
        edgetrace::fuzzing::capture(&data);
        edgetrace::fuzzing::analyzers_capture(&data);
    }
    for f in files("packet") {
        edgetrace::fuzzing::packet(&std::fs::read(&f).unwrap());
    }
    for f in files("reassembly") {
        edgetrace::fuzzing::reassembly(&std::fs::read(&f).unwrap());
    }
    for f in files("stun") {
        edgetrace::fuzzing::stun(&std::fs::read(&f).unwrap());
    }
    for f in files("tcp_framing") {
        edgetrace::fuzzing::tcp_framing(&std::fs::read(&f).unwrap());
    }
    for f in files("sip") {
        edgetrace::fuzzing::sip(&std::fs::read(&f).unwrap());
    }
    for f in files("tls") {
        edgetrace::fuzzing::tls(&std::fs::read(&f).unwrap());
    }
}

/// xorshift64*: a small seeded generator, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

/// Every sample cut at random offsets and with random bytes flipped: the
/// whole pipeline (with reassembly) neither panics nor takes long.
#[test]
fn damaged_samples_never_panic() {
    let mut rng = Rng(0x5EED_0001);
    let mut variants = 0;
    for s in samples() {
        let bytes = std::fs::read(&s).unwrap();
        for _ in 0..200 {
            let mut v = bytes.clone();
            v.truncate(rng.below(bytes.len() + 1));
            let flips = rng.below(8);
            for _ in 0..flips {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
            }
            let t = Instant::now();
            edgetrace::fuzzing::capture(&v);
            edgetrace::fuzzing::analyzers_capture(&v);
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{}: slow variant",
                s.display()
            );
            variants += 1;
        }
    }
    assert!(variants >= 1000);
}

/// Through the binary, every analyzer: damaged files give 0, 2 or 3 as
/// documented (3 with a warning naming the truncation or the damage, 2 with
/// an error), in bounded memory.
#[test]
fn damaged_samples_exit_codes() {
    let mut rng = Rng(0x5EED_0002);
    let mut runs = 0;
    for s in samples() {
        let bytes = std::fs::read(&s).unwrap();
        for i in 0..8 {
            let mut v = bytes.clone();
            v.truncate(rng.below(bytes.len() + 1));
            if i % 2 == 0 && v.len() > 40 {
                let j = 24 + rng.below(v.len() - 24);
                v[j] ^= 0xFF;
            }
            let p = temp_file(&format!("damaged-{runs}.pcap"), &v);
            let out = edgetrace()
                .env("EDGETRACE_PEAK_RSS", "1")
                .args(["report", "--json"])
                .arg(&p)
                .output()
                .unwrap();
            let code = out.status.code().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            match code {
                0 => assert!(
                    !stderr.contains("warning") && !stderr.contains("error"),
                    "{stderr}"
                ),
                3 => assert!(
                    stderr.contains("is truncated at byte")
                        || stderr.contains("damaged record(s) skipped"),
                    "exit 3 must say what was damaged: {stderr}"
                ),
                2 => assert!(stderr.contains("edgetrace: error:"), "{stderr}"),
                _ => panic!("exit {code}: {stderr}"),
            }
            if code != 2 {
                assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok());
            }
            let kib: u64 = stderr
                .lines()
                .find_map(|l| l.strip_prefix("edgetrace: peak RSS "))
                .and_then(|l| l.trim_end_matches(" KiB").parse().ok())
                .expect("peak RSS line");
            assert!(
                kib < 64 * 1024,
                "{kib} KiB for a damaged {} byte file",
                v.len()
            );
            runs += 1;
        }
    }
    assert_eq!(runs, 40);
}
