//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and by the test
//! that replays their corpus (`tests/it/fuzz_replay.rs`), so every input that
//! once crashed a parser stays a regression test in plain `cargo test`.

use crate::capture::{CaptureReader, Source};
use crate::flow::reassembly::{Event, Reassembler};
use crate::flow::streams::{
    CloseReason, Fanout, StreamConsumer, StreamLimits, StreamTable, TcpStreams,
};
use crate::flow::{Dir, FlowId, FlowTable};
use crate::packet::{self, TcpFlags};
use crate::pipeline::{self, RunOptions};

struct Sink;

impl StreamConsumer for Sink {
    fn event(&mut self, _: FlowId, _: &crate::flow::Flow, _: Dir, ev: Event<'_>) {
        if let Event::Data { bytes, .. } = ev {
            std::hint::black_box(bytes);
        }
    }
}

/// Runs the whole pipeline (with TCP reassembly) over `data` as a capture file.
pub fn capture(data: &[u8]) {
    let Ok(reader) = CaptureReader::new(Source::from_bytes(data.to_vec())) else {
        return;
    };
    let limits = StreamLimits {
        max_pending_per_dir: 4096,
        max_pending_total: 16 * 1024,
        max_connections: 8,
        idle_timeout_ns: 1_000_000_000,
    };
    let mut streams = TcpStreams::new(Sink, limits);
    let _ = pipeline::run(reader, &RunOptions::default(), &mut streams);
}

/// Decodes `data` as a frame of every link type we know (and one we do not),
/// then as a run of raw IP packets (each behind a 2-byte length) through
/// fragment reassembly, whose pending bytes must stay within its bound.
pub fn packet(data: &[u8]) {
    for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147] {
        std::hint::black_box(packet::decode_frame(lt, data));
    }
    assert!(
        packet::decode_ip_general_agrees(data),
        "the IPv4 fast path and etherparse's lax slice disagree"
    );
    let mut defrag = packet::defrag::Defragmenter::new();
    let mut rest = data;
    let mut frame = 0u64;
    while rest.len() >= 2 {
        let len = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let (pkt, tail) = rest[2..].split_at(len);
        rest = tail;
        frame += 1;
        // time steps of 1 s: fragments expire after 30 of them
        let ts = frame as i64 * 1_000_000_000;
        if let packet::Decoded::Fragment(f) = packet::decode_frame(101, pkt) {
            if let Some(r) = defrag.push(&f, frame, ts) {
                std::hint::black_box(r.decode());
            }
        }
        defrag.expire(ts);
        assert!(defrag.pending_bytes() <= packet::defrag::Defragmenter::MAX_PENDING_BYTES);
    }
    defrag.finish();
}

/// Interprets `data` as segments: `[seq: 4][flags: 1][len: 1][payload…]…` and
/// checks that delivered bytes are contiguous.
pub fn reassembly(data: &[u8]) {
    let mut r = Reassembler::new(1024);
    let mut next: Option<u64> = None;
    let mut check = |e: Event<'_>| {
        let (off, len) = match e {
            Event::Data { offset, bytes, .. } => (offset, bytes.len() as u64),
            Event::Gap { offset, len, .. } => (offset, len),
        };
        if let Some(n) = next {
            assert_eq!(off, n, "events must be contiguous");
        }
        next = Some(off + len);
    };
    let mut i = 0;
    let mut frame = 0;
    while i + 6 <= data.len() {
        let seq = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let flags = TcpFlags(data[i + 4] & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::FIN));
        let len = (data[i + 5] as usize).min(data.len() - i - 6);
        let payload = &data[i + 6..i + 6 + len];
        frame += 1;
        // the wire length may exceed the captured payload (snaplen)
        let wire = len as u32 + (data[i + 4] >> 4) as u32;
        r.segment(seq, flags, payload, wire, frame, 0, &mut check);
        assert!(r.pending_bytes() <= 1024 + 255);
        i += 6 + len;
    }
    r.finish(&mut check);
    stream_fanout(data);
}

/// What a consumer of reassembled streams was given, in order.
#[derive(Debug, Default, PartialEq)]
struct Recorded {
    /// (flow, direction, offset, data or gap length, bytes, frame).
    events: Vec<(FlowId, usize, u64, bool, Vec<u8>, u64)>,
    closed: Vec<(FlowId, CloseReason)>,
    let_go: Vec<(FlowId, usize)>,
    /// Bytes delivered per (flow, direction).
    got: std::collections::BTreeMap<(FlowId, usize), usize>,
    /// Gives a direction up once it got this many bytes (None: never).
    enough: Option<usize>,
}

impl StreamConsumer for Recorded {
    fn event(&mut self, flow: FlowId, _: &crate::flow::Flow, dir: Dir, ev: Event<'_>) {
        let d = dir.idx();
        match ev {
            Event::Data {
                offset,
                bytes,
                frame,
                ..
            } => {
                *self.got.entry((flow, d)).or_default() += bytes.len();
                self.events
                    .push((flow, d, offset, true, bytes.to_vec(), frame));
            }
            Event::Gap { offset, len, frame } => {
                self.events
                    .push((flow, d, offset, false, len.to_be_bytes().to_vec(), frame));
            }
        }
    }
    fn closed(&mut self, flow: FlowId, _: &crate::flow::Flow, reason: CloseReason) {
        self.closed.push((flow, reason));
        self.got.retain(|&(f, _), _| f != flow);
    }
    fn wants(&self, flow: FlowId, dir: Dir) -> bool {
        let got = self.got.get(&(flow, dir.idx())).copied().unwrap_or(0);
        self.enough.is_none_or(|n| got < n)
    }
    fn let_go(&mut self, flow: FlowId, dir: Dir) {
        self.let_go.push((flow, dir.idx()));
    }
}

/// One TCP reassembly shared by three consumers ([`Fanout`], as a report's
/// finders share one) against three reassemblies of their own, over the
/// segments `data` describes on two connections: each consumer must be
/// given exactly the same events, closes and let-gos either way.  The
/// first three bytes say after how many bytes each consumer gives a
/// direction up (255: never); then each segment is a 5-byte header
/// (connection, direction and SYN/FIN/RST bits; a 16-bit sequence offset;
/// its length; seconds since the last segment) and its bytes.  Connections
/// are evicted (one open at a time) and time out (100 s) as in a capture.
pub fn stream_fanout(data: &[u8]) {
    let Some((head, mut rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let make = |b: u8| Recorded {
        enough: (b != 255).then_some(b as usize),
        ..Default::default()
    };
    let limits = StreamLimits {
        max_pending_per_dir: 64,
        // (a global flush may differ: alone, a reassembly holds only the
        // directions its consumer still wants)
        max_pending_total: usize::MAX / 2,
        max_connections: 1,
        idle_timeout_ns: 100_000_000_000,
    };
    let mut alone: Vec<TcpStreams<Recorded>> = head
        .iter()
        .map(|&b| TcpStreams::new(make(b), limits))
        .collect();
    let (mut a, mut b, mut c) = (make(head[0]), make(head[1]), make(head[2]));
    let mut shared = StreamTable::new(limits);
    let mut table = FlowTable::new();
    let (client, server) = (
        std::net::IpAddr::from([10, 0, 0, 1]),
        std::net::IpAddr::from([10, 0, 0, 2]),
    );
    let (mut ts, mut frame) = (0i64, 0u64);
    while let Some((h, tail)) = rest.split_first_chunk::<5>() {
        let len = (h[3] as usize).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        frame += 1;
        ts += i64::from(h[4]) * 1_000_000_000;
        let cport = 1000 + u16::from(h[0] & 1);
        let to_server = h[0] & 2 == 0;
        let mut flags = TcpFlags::ACK;
        for (bit, flag) in [(4, TcpFlags::SYN), (8, TcpFlags::FIN), (16, TcpFlags::RST)] {
            if h[0] & bit != 0 {
                flags |= flag;
            }
        }
        let (src, dst, sport, dport) = if to_server {
            (client, server, cport, 443)
        } else {
            (server, client, 443, cport)
        };
        let pkt = packet::Packet {
            src,
            dst,
            transport: packet::Transport::Tcp(packet::Tcp {
                src_port: sport,
                dst_port: dport,
                seq: 1_000 + u32::from(u16::from_be_bytes([h[1], h[2]])),
                ack: 0,
                flags: TcpFlags(flags),
                window: 65_535,
                payload,
                wire_len: len as u32,
            }),
            ip_truncated: false,
        };
        let info = crate::capture::FrameInfo {
            number: frame,
            ts_ns: ts,
            orig_len: 54 + len as u32,
            cap_len: 54 + len as u32,
        };
        let flow = table.observe(&info, &pkt);
        for s in &mut alone {
            crate::pipeline::PacketSink::packet(s, &info, &pkt, flow, &table);
        }
        shared.packet(
            &info,
            &pkt,
            flow,
            &table,
            &mut Fanout(&mut a, &mut b, &mut c),
        );
    }
    for s in &mut alone {
        crate::pipeline::PacketSink::finish(s, &table);
    }
    shared.finish(&table, &mut Fanout(&mut a, &mut b, &mut c));
    for (own, shared) in alone.into_iter().zip([a, b, c]) {
        let own = own.into_consumer();
        assert_eq!(own.events, shared.events, "events");
        assert_eq!(own.closed, shared.closed, "closes");
        assert_eq!(own.let_go, shared.let_go, "let-gos");
    }
}

/// The STUN decoder on any bytes (exact message), and the whole STUN finder
/// on the bytes as a UDP payload and as a TCP stream.
pub fn stun(data: &[u8]) {
    if let Ok(m) = crate::proto::stun::parse(data) {
        std::hint::black_box((m.name(), m.txid_hex(), m.data_range()));
    }
    let _ = crate::proto::channel::parse(data, false);
    let _ = crate::proto::channel::parse(data, true);
}

/// The TCP framing recogniser over `data` delivered in two pieces (split at
/// the first byte's value), as a stream would arrive.
pub fn tcp_framing(data: &[u8]) {
    use crate::proto::tcpframe::{Framer, Unit};
    let split = data
        .first()
        .map(|&b| b as usize)
        .unwrap_or(0)
        .min(data.len());
    let mut f = Framer::default();
    let mut buf: Vec<u8> = Vec::new();
    for (i, piece) in [&data[..split], &data[split..]].into_iter().enumerate() {
        buf.extend_from_slice(piece);
        let at_end = i == 1;
        let mut guard = 0;
        while let Some((u, n)) = f.next(&buf, at_end) {
            assert!(n <= buf.len(), "a unit cannot use more bytes than given");
            if let Unit::Stun(m) = u {
                let _ = crate::proto::stun::parse(m);
            }
            buf.drain(..n);
            guard += 1;
            if n == 0 || guard > 100_000 {
                break;
            }
        }
    }
}

/// Every analyzer (STUN, TURN, SIP, ICE, TLS) over `data` as a capture
/// file, then the report with its findings and JSON, the streamed `sip`
/// JSON, and every per-command output model built from what they found;
/// first the counted flow table, written as `flows` writes it.
pub fn analyzers_capture(data: &[u8]) {
    let Ok(reader) = CaptureReader::new(Source::from_bytes(data.to_vec())) else {
        return;
    };
    let counted = RunOptions {
        flow_counts: true,
        ..RunOptions::default()
    };
    if let Ok(run) = pipeline::run(reader, &counted, &mut pipeline::NoSink) {
        let json = serde_json::to_vec(&crate::model::FlowsReport::stream(&run, "fuzz"));
        let (table, total) = crate::model::FlowsReport::first_rows(&run, "fuzz", 2);
        std::hint::black_box((json.map(|v| v.len()).unwrap_or(0), table.flows.len(), total));
    }
    let Ok(reader) = CaptureReader::new(Source::from_bytes(data.to_vec())) else {
        return;
    };
    let r = crate::model::Redaction::default();
    let roles = crate::roles::Roles::builtin();
    // a report listing 2 allocations and 2 dialogs: the timeline trimming
    // runs too; SIP dialogs are folded during the pass, as in `report`
    let mut folder = crate::model::sip::DialogFolder::for_report(r, &roles, 2);
    let mut turn = crate::model::turn::EndedAllocations::new(2, Default::default());
    let sinks = crate::analyze::all::Sinks {
        sip: &mut folder,
        turn: &mut turn,
    };
    let Ok(mut a) =
        crate::analyze::all::analyze_for_report(reader, &RunOptions::default(), 2, sinks)
    else {
        return;
    };
    let sip = folder.finish(&a.run, &a.sip, "fuzz");
    let folds = crate::model::report::Folds { sip, turn };
    let report = crate::model::report::Report::build(&mut a, folds, "fuzz", &Default::default());
    // `report --json`'s parallel writer gives the plain serializer's bytes
    let (mut plain, mut parallel) = (Vec::new(), Vec::new());
    crate::render::json::write(&mut plain, &report).expect("serializable");
    crate::render::json::write_report(&mut parallel, &report).expect("serializable");
    assert!(plain == parallel, "the parallel report writer differs");
    // the per-command models, from a pass that keeps every message
    let Ok(reader) = CaptureReader::new(Source::from_bytes(data.to_vec())) else {
        return;
    };
    let Ok(a) = crate::analyze::all::analyze(reader, &RunOptions::default()) else {
        return;
    };
    let sip = crate::model::sip::SipReport::build_with(
        &a.run,
        &a.sip,
        "fuzz",
        r,
        &roles,
        crate::model::sip::Messages::Streamed,
    );
    let stream = sip.stream(&a.run, &a.sip, r, &roles, None);
    std::hint::black_box(serde_json::to_vec(&stream).map(|v| v.len()).unwrap_or(0));
    std::hint::black_box((
        crate::model::stun::StunReport::build(&a.run, &a.stun, "fuzz", r)
            .messages
            .len(),
        crate::model::turn::TurnReport::build(&a.run, &a.allocations, "fuzz", false)
            .allocations
            .len(),
        crate::model::sip::SipReport::build(&a.run, &a.sip, "fuzz", r, &roles)
            .messages
            .len(),
        crate::model::ice::IceReport::build(&a.run, &a.ice, "fuzz")
            .sessions
            .len(),
        crate::model::tls::TlsReport::build(&a.run, &a.tls, "fuzz")
            .connections
            .len(),
    ));
}

/// The SIP parser and stream framer on any bytes.
pub fn sip(data: &[u8]) {
    if let Some(m) = crate::proto::sip::parse(data, true) {
        std::hint::black_box((
            m.call_id(),
            m.cseq(),
            m.vias().len(),
            m.values("Record-Route").len(),
        ));
        // the bodies a SIP message may carry: SDP (single or multipart) and MRAS XML
        let ct = m.header("Content-Type");
        for part in crate::proto::sdp::from_body(ct, &m.body) {
            for media in &part.sdp.media {
                assert!(media.candidates.len() <= crate::proto::sdp::MAX_CANDIDATES);
            }
        }
        crate::analyze::ice::assert_may_name_is_safe(ct, &m.body);
        let _ = crate::proto::mras::parse(&m.body);
    }
    // the body parsers on raw bytes too, so the fuzzer need not build a SIP head
    let sdp = crate::proto::sdp::parse(data);
    assert!(sdp.media.len() <= crate::proto::sdp::MAX_MEDIA);
    let _ = crate::proto::sdp::from_body(Some("multipart/alternative;boundary=b"), data);
    // the ICE SDP reader skips bodies without parsing them: never one it needs
    for ct in ["application/sdp", "multipart/alternative;boundary=b"] {
        crate::analyze::ice::assert_may_name_is_safe(Some(ct), data);
    }
    if let Ok(crate::proto::mras::Mras::Response { relays, .. }) = crate::proto::mras::parse(data) {
        assert!(relays.len() <= crate::proto::mras::MAX_RELAYS);
    }
    if let crate::proto::sip::Framed::Message(n) = crate::proto::sip::frame_stream(data) {
        assert!(n <= data.len());
        let _ = crate::proto::sip::parse(&data[..n], false);
    }
    // where a stream that is not SIP may resume: never past its end
    for at_end in [false, true] {
        assert!(crate::proto::sip::next_start_line(data, at_end) <= data.len());
    }
}

/// TLS: the record layer over arbitrary stream bytes, handshake reassembly
/// (split and packed messages, lying lengths), every handshake parser and
/// the certificate reader.
pub fn tls(data: &[u8]) {
    use crate::proto::tls::{self, Front, HandshakeAssembler};

    let mut hs = HandshakeAssembler::default();
    let mut rest = data;
    let _ = tls::sslv2_client_hello(data);
    while let Front::Record {
        content_type, len, ..
    } = tls::front(rest)
    {
        assert!(len <= tls::MAX_RECORD && 5 + len <= rest.len());
        if content_type == tls::content::HANDSHAKE {
            for m in hs.push(&rest[5..5 + len]) {
                assert!(m.len() <= tls::MAX_HANDSHAKE + 4);
                if let tls::Handshake::Certificate(chain) = tls::parse_handshake(&m) {
                    for der in chain {
                        let _ = crate::proto::x509::parse(&der);
                    }
                }
            }
        }
        rest = &rest[5 + len..];
    }
    // the bytes as one handshake message and as one certificate, too
    let _ = tls::parse_handshake(data);
    let _ = crate::proto::x509::parse(data);
}

#[cfg(test)]
mod tests {
    /// The SDP pre-filter against parsing, on seeded random bodies built
    /// from SDP lines and near misses (the sip fuzz target runs the same
    /// check on what it finds).
    #[test]
    fn the_sdp_prefilter_never_turns_away_a_needed_body() {
        let pieces: [&[u8]; 14] = [
            b"v=0\r\n",
            b"m=audio 5000 RTP/AVP 0\r\n",
            b"m=video 1 RTP/AVP 96\n",
            b"a=ice-ufrag:ab\r\n",
            b"a=ICE-Ufrag: ab \r\r\n",
            b"a=ice-ufrag:\xffab\n",
            b" a=ice-ufrag:ab\r\n",
            b"a=ice-ufrag\r\n",
            b"a=candidate:1 1 UDP 2130706431 10.0.0.1 5000 typ host\r\n",
            b"a=candidate:2Tr+uGbG 1 kCq9Pz7e UDP 0.830 10.0.0.5 50040 \r\n",
            b"--b\r\nContent-Type: application/sdp\r\n\r\n",
            b"\r\n--b--\r\n",
            b"a=ice-ufrag:cd\r",
            b"\n",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut body = Vec::new();
            for _ in 0..(x % 12) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.extend_from_slice(pieces[(x % 14) as usize]);
            }
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            super::sip(&body);
        }
    }

    /// The shared reassembly against three of their own, on seeded random
    /// segment sequences (the reassembly fuzz target runs the same check on
    /// what it finds).
    #[test]
    fn a_shared_reassembly_matches_three_own_ones_on_random_segments() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let mut data: Vec<u8> = (0..3)
                .map(|_| [0u8, 3, 20, 255][next() as usize % 4])
                .collect();
            for _ in 0..next() % 40 {
                let r = next();
                // small sequence offsets, so segments overlap, repeat and leave holes
                let seq = (r >> 8) % 160;
                let len = (r >> 24) % 24;
                let flags = (r as u8) & 0b11111 & if r % 5 == 0 { 0xff } else { 0b00011 };
                let secs = if r % 11 == 0 { 120 } else { 0 };
                data.extend_from_slice(&[flags, (seq >> 8) as u8, seq as u8, len as u8, secs]);
                data.extend((0..len).map(|i| (r >> (i % 56)) as u8));
            }
            super::stream_fanout(&data);
        }
    }
}
