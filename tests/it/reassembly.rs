//! TCP reassembly through the library API on real captures.

use std::collections::BTreeMap;
use std::path::Path;

use edgetrace::capture::CaptureReader;
use edgetrace::flow::reassembly::Event;
use edgetrace::flow::streams::{CloseReason, StreamConsumer, StreamLimits, TcpStreams};
use edgetrace::flow::{Dir, FlowId};
use edgetrace::pipeline::{self, RunOptions};

use super::common::{sample, shared_capture};

#[derive(Default)]
struct Collect {
    bytes: BTreeMap<(FlowId, usize), Vec<u8>>,
    /// frame of the first byte of each direction
    first_frame: BTreeMap<(FlowId, usize), u64>,
    gap_bytes: u64,
    closed: Vec<(FlowId, CloseReason)>,
}

impl StreamConsumer for Collect {
    fn event(&mut self, flow: FlowId, _: &edgetrace::flow::Flow, dir: Dir, ev: Event<'_>) {
        match ev {
            Event::Data { bytes, frame, .. } => {
                self.first_frame.entry((flow, dir.idx())).or_insert(frame);
                self.bytes
                    .entry((flow, dir.idx()))
                    .or_default()
                    .extend_from_slice(bytes)
            }
            Event::Gap { len, .. } => self.gap_bytes += len,
        }
    }
    fn closed(&mut self, flow: FlowId, _: &edgetrace::flow::Flow, reason: CloseReason) {
        self.closed.push((flow, reason));
    }
}

fn reassemble(path: &Path) -> (Collect, edgetrace::pipeline::RunResult) {
    let reader = CaptureReader::open(path).unwrap();
    let mut streams = TcpStreams::new(Collect::default(), StreamLimits::default());
    let opts = RunOptions {
        flow_counts: true,
        ..RunOptions::default()
    };
    let r = pipeline::run(reader, &opts, &mut streams).unwrap();
    (streams.into_consumer(), r)
}

/// Two independent paths must agree: the flow table's sequence analysis
/// (payload bytes, missing bytes) and the reassembler's delivered bytes.
#[test]
fn delivered_bytes_match_flow_payload_on_every_sample() {
    for name in [
        "turn-tcp-relay-6062.pcap",
        "tls-8057-idle-rst-reconnect.pcap",
        "session-combined.client-side.pcap",
    ] {
        let (c, r) = reassemble(&sample(name));
        assert_eq!(c.gap_bytes, 0, "{name}");
        for id in 0..r.flows.len() as FlowId {
            let f = r.flows.counts(id).expect("a counting table");
            let Some(seq) = &f.seq else { continue };
            for d in 0..2 {
                let got = c.bytes.get(&(id, d)).map_or(0, |b| b.len() as u64);
                let expect = f.payload_bytes[d];
                assert_eq!(got, seq[d].new_bytes, "{name} flow {id} dir {d}");
                assert!(got <= expect, "{name} flow {id} dir {d}");
            }
        }
    }
}

/// The 8057 story starts with the Edge — the TCP *server* — sending the TLS
/// ClientHello: its first reassembled bytes are a handshake record.
#[test]
fn edge_sends_first_tls_record_on_8057() {
    let (c, r) = reassemble(&sample("tls-8057-idle-rst-reconnect.pcap"));
    let f0 = r.flows.get(0);
    assert_eq!(f0.server.port, 8057);
    let from_server = &c.bytes[&(0, Dir::ToClient.idx())];
    assert_eq!(
        &from_server[..3],
        &[0x16, 0x03, 0x01],
        "TLS handshake record from the Edge"
    );
    assert_eq!(from_server[5], 1, "ClientHello");
    let first_client_data = c.first_frame[&(0, Dir::ToServer.idx())];
    let first_server_data = c.first_frame[&(0, Dir::ToClient.idx())];
    assert!(first_server_data < first_client_data);
    assert_eq!(c.closed[0], (0, CloseReason::Reset));
}

/// SIP messages split over many segments come out whole (the capture holds 37 INVITEs).
#[test]
fn multi_segment_sip_over_tcp_is_whole() {
    let Some(p) =
        shared_capture("sip-tcp_port-6060_record-route_route_multi-segment-messages.pcap")
    else {
        return;
    };
    let (c, _) = reassemble(&p);
    let invites: usize = c
        .bytes
        .values()
        .map(|b| {
            let s = String::from_utf8_lossy(b);
            s.match_indices("INVITE sip:")
                .filter(|(i, _)| *i == 0 || s[..*i].ends_with('\n'))
                .count()
        })
        .sum();
    assert_eq!(invites, 37);
}
