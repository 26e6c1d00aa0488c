//! Helpers: locating inputs, running the binary, writing small captures.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use etherparse::PacketBuilder;

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under samples/.
pub fn sample(name: &str) -> PathBuf {
    root().join("samples").join(name)
}

/// `../shared` beside the project (or $EDGETRACE_SHARED), if present.
pub fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("EDGETRACE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("..").join("shared"));
    if p.join("captures").is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} not found; tests over the shared captures are skipped",
            p.display()
        );
        None
    }
}

/// A capture from the shared lab set or the public dev corpus, if present.
pub fn shared_capture(name: &str) -> Option<PathBuf> {
    let s = shared()?;
    [
        s.join("captures").join(name),
        s.join("corpus/public/dev").join(name),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// Every analyzer over a capture, as a report that lists the first `listed`
/// items of each kind runs them (SIP dialogs folded, unlisted allocations
/// and connections cut down).
pub fn report_pass(path: &Path, listed: usize) -> edgetrace::analyze::all::Analysis {
    let roles = edgetrace::roles::Roles::builtin();
    let mut folder =
        edgetrace::model::sip::DialogFolder::for_report(Default::default(), &roles, listed);
    let mut ended = Ended::default();
    let reader = edgetrace::capture::CaptureReader::open(path).unwrap();
    let sinks = edgetrace::analyze::all::Sinks {
        sip: &mut folder,
        turn: &mut ended,
    };
    let mut a =
        edgetrace::analyze::all::analyze_for_report(reader, &Default::default(), listed, sinks)
            .unwrap();
    // the allocations finished during the pass, back among the others
    a.allocations.extend(ended.0);
    a.allocations.sort_by_key(|al| (al.flow, al.first_frame));
    a
}

/// Every TURN allocation a report's pass finished before the end.
#[derive(Default)]
pub struct Ended(pub Vec<edgetrace::analyze::turn::Allocation>);

impl edgetrace::analyze::turn::AllocationSink for Ended {
    fn allocation(&mut self, al: edgetrace::analyze::turn::Allocation, _listed: bool) {
        self.0.push(al);
    }
}

/// The finding `id` of a report's JSON; the test fails naming the ids it
/// has when there is none.
pub fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let all = report["findings"].as_array().expect("a findings list");
    all.iter().find(|f| f["id"] == id).unwrap_or_else(|| {
        let ids: Vec<&str> = all.iter().filter_map(|f| f["id"].as_str()).collect();
        panic!("no finding {id}: the report has {ids:?}")
    })
}

/// The binary under test.
pub fn edgetrace() -> Command {
    let mut c = Command::cargo_bin("edgetrace").expect("binary built");
    c.env_remove("NO_COLOR");
    c
}

/// Runs `edgetrace flows --json FILE` and parses the output; returns (exit code, json, stderr).
pub fn flows_json(path: &Path) -> (i32, serde_json::Value, String) {
    let out = edgetrace()
        .args(["flows", "--json"])
        .arg(path)
        .output()
        .expect("run edgetrace");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (code, v, stderr)
}

/// A classic pcap file being written in memory (little-endian, µs, Ethernet by default).
pub struct PcapWriter {
    pub bytes: Vec<u8>,
}

impl PcapWriter {
    pub fn new(link_type: u32) -> Self {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&link_type.to_le_bytes());
        PcapWriter { bytes: b }
    }

    /// Appends a record with timestamp `us` microseconds.
    pub fn packet(&mut self, us: u64, data: &[u8]) -> &mut Self {
        self.packet_cut(us, data, data.len())
    }

    /// Appends a record holding only the first `cap` bytes of `data`.
    pub fn packet_cut(&mut self, us: u64, data: &[u8], cap: usize) -> &mut Self {
        let b = &mut self.bytes;
        b.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(cap as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&data[..cap]);
        self
    }
}

/// A pcapng file being written in memory (little-endian).
pub struct PcapngWriter {
    pub bytes: Vec<u8>,
}

fn block(btype: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&btype.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

impl PcapngWriter {
    pub fn new() -> Self {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        PcapngWriter {
            bytes: block(0x0A0D_0D0A, &body),
        }
    }

    /// Adds an interface; `tsresol` is the raw if_tsresol option byte (None: default µs).
    pub fn interface(&mut self, link_type: u16, tsresol: Option<u8>) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&link_type.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        if let Some(r) = tsresol {
            body.extend_from_slice(&9u16.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.bytes.extend(block(1, &body));
        self
    }

    /// Adds an Enhanced Packet Block with a raw timestamp in interface units.
    pub fn epb(&mut self, if_id: u32, ts_units: u64, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&if_id.to_le_bytes());
        body.extend_from_slice(&((ts_units >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts_units as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        self.bytes.extend(block(6, &body));
        self
    }

    /// Adds a Simple Packet Block (interface 0, no timestamp).
    pub fn spb(&mut self, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        self.bytes.extend(block(3, &body));
        self
    }

    /// Adds an obsolete Packet Block (type 2).
    pub fn opb(&mut self, if_id: u16, ts_units: u64, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&if_id.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&((ts_units >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts_units as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        self.bytes.extend(block(2, &body));
        self
    }
}

/// An Ethernet/IPv4/TCP frame.
pub fn tcp_frame(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src.0, dst.0, 64)
        .tcp(src.1, dst.1, seq, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => b,
        };
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// An Ethernet/IPv4/UDP frame.
pub fn udp_frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// A minimal SIP message (one Via, no body) of dialog `call_id`: `start` is
/// its start line, `cseq` its CSeq value.
pub fn sip_msg(start: &str, call_id: &str, cseq: &str) -> Vec<u8> {
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call_id}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Writes bytes to a fresh temporary file and returns its path.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgetrace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A STUN message (RFC 5389 header with the magic cookie) with TLV attributes, padded.
pub fn stun_msg(msg_type: u16, tid: [u8; 12], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in attrs {
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut m = Vec::new();
    m.extend_from_slice(&msg_type.to_be_bytes());
    m.extend_from_slice(&(body.len() as u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&tid);
    m.extend_from_slice(&body);
    m
}

/// An IPv4 (X)MAPPED-ADDRESS value; `xor` applies the RFC 5389 cookie.
pub fn stun_addr(ip: [u8; 4], port: u16, xor: bool) -> Vec<u8> {
    let (mut p, mut a) = (port, ip);
    if xor {
        p ^= 0x2112;
        for (i, b) in a.iter_mut().enumerate() {
            *b ^= 0x2112_A442u32.to_be_bytes()[i];
        }
    }
    let mut v = vec![0, 1];
    v.extend_from_slice(&p.to_be_bytes());
    v.extend_from_slice(&a);
    v
}

/// An ERROR-CODE value.
pub fn stun_error(code: u16, reason: &str) -> Vec<u8> {
    let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
    v.extend_from_slice(reason.as_bytes());
    v
}

/// Findings as JSON lines, sorted: how two lists made in different orders
/// (a `findings::Merging` keeps no order) are compared.
pub fn findings_in_any_order(v: &[edgetrace::findings::Finding]) -> Vec<String> {
    let mut v: Vec<String> = v
        .iter()
        .map(|f| serde_json::to_string(f).unwrap())
        .collect();
    v.sort();
    v
}
