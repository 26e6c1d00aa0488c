//! The SIP finder: every SIP message in UDP datagrams (fragmented ones come
//! reassembled from the packet layer) and in TCP streams on any port, framed
//! by Content-Length, with junk before a message skipped and counted; then
//! dialogs grouped by Call-ID.
//!
//! A TCP direction is recognised by a SIP start line; one that shows none in
//! its first 4 KiB (TLS, STUN, media…) is left alone.

use std::collections::BTreeSet;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::capture::FrameInfo;
use crate::flow::reassembly::{ByteQueue, Event};
use crate::flow::streams::{CloseReason, StreamConsumer, TcpStreams};
use crate::flow::{Dir, Endpoint, FlowId, FlowTable, L4};
use crate::packet::{Packet, Transport};
use crate::pipeline::{PacketSink, ShardSink};
use crate::proto::sip::{self, Framed, Message};

/// One SIP message found.
#[derive(Debug, Clone)]
pub struct Found {
    /// First frame.
    pub frame: u64,
    /// Last frame (a TCP message may span segments).
    pub end_frame: u64,
    /// Time of the first frame.
    pub ts_ns: i64,
    /// Flow.
    pub flow: FlowId,
    /// Transport.
    pub l4: L4,
    /// Stream index.
    pub stream: u32,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// The message.
    pub msg: Message,
}

/// Something wrong on the way (junk, impossible lengths), with its frame.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Frame.
    pub frame: u64,
    /// Stream index.
    pub stream: u32,
    /// Transport.
    pub l4: L4,
    /// What.
    pub what: String,
}

struct DirState {
    queue: ByteQueue,
    seen: super::Recognition,
    /// Frame of the first bytes skipped before the first message.
    junk_frame: Option<u64>,
}

/// What the finder collects (also the TCP stream consumer).
#[derive(Default)]
pub struct Core {
    /// Messages in order found.
    pub found: Vec<Found>,
    /// Junk skipped and malformed framing.
    pub problems: Vec<Problem>,
    /// Bytes of CRLF keep-alives (RFC 5626) between messages on streams.
    pub keepalive_bytes: u64,
    /// Only looked up (never walked in order), once per TCP segment.
    dirs: FxHashMap<(FlowId, usize), DirState>,
    /// Bodies kept, by content: a body relayed again shares the first copy.
    bodies: FxHashSet<Arc<[u8]>>,
    /// Messages are taken at each barrier ([`SipFinder::streamed`]), so
    /// bodies are not kept for sharing.
    streamed: bool,
    /// Flows that carried a message (filled by [`merge`] or, when streamed,
    /// by whoever takes the messages).
    pub flows: BTreeSet<FlowId>,
}

/// Takes SIP messages in capture order while the pass runs, so that they
/// need not be kept to its end (the report's dialog fold implements it).
pub trait MessageSink: Send {
    /// The next message; `t0` is the time of the capture's first frame.
    fn message(&mut self, found: Found, t0: i64);
}

/// Distinct bodies looked up for sharing (beyond, a body is kept as it is).
const BODIES_SHARED: usize = 1 << 16;

impl Core {
    /// Keeps a message until the end of the run, with only the body bytes
    /// an analyzer reads, stored once however many copies were relayed.
    fn keep(&mut self, mut found: Found) {
        found.msg.drop_unread_body();
        if !found.msg.body.is_empty() && !self.streamed {
            if let Some(same) = self.bodies.get(&*found.msg.body) {
                found.msg.body = Arc::clone(same);
            } else if self.bodies.len() < BODIES_SHARED {
                self.bodies.insert(Arc::clone(&found.msg.body));
            }
        }
        self.found.push(found);
    }

    fn drain(&mut self, flow: FlowId, f: &crate::flow::Flow, d: usize, at_end: bool) {
        let (l4, stream, client, server) = (f.l4, f.stream, f.client, f.server);
        let (src, dst) = if d == 0 {
            (client, server)
        } else {
            (server, client)
        };
        loop {
            let Some(ds) = self.dirs.get_mut(&(flow, d)) else {
                return;
            };
            if ds.seen.given_up() {
                ds.queue.release();
                return;
            }
            if ds.queue.is_empty() {
                return;
            }
            let ka = sip::keepalive_prefix(ds.queue.data());
            if ka > 0 {
                ds.queue.consume(ka);
                self.keepalive_bytes += ka as u64;
                continue;
            }
            let data = ds.queue.data();
            let start = ds.queue.start();
            let (frame, ts) = ds.queue.frame_at(start).unwrap_or((0, 0));
            match sip::frame_stream(data) {
                Framed::Message(n) => {
                    let (end_frame, _) = ds
                        .queue
                        .frame_at(start + n as u64 - 1)
                        .unwrap_or((frame, ts));
                    let msg = sip::parse(&data[..n], false);
                    ds.queue.consume(n);
                    let before = ds.seen.hit();
                    if before > 0 {
                        self.problems.push(Problem {
                            frame: ds.junk_frame.unwrap_or(frame),
                            stream,
                            l4,
                            what: format!(
                                "{before} bytes of junk before the first SIP message skipped"
                            ),
                        });
                    }
                    if let Some(msg) = msg {
                        self.keep(Found {
                            frame,
                            end_frame,
                            ts_ns: ts,
                            flow,
                            l4,
                            stream,
                            src,
                            dst,
                            msg,
                        });
                    }
                }
                Framed::NeedMore if !at_end => return,
                Framed::NeedMore => {
                    let n = data.len();
                    ds.queue.consume(n);
                    if ds.seen.recognised() {
                        self.problems.push(Problem {
                            frame,
                            stream,
                            l4,
                            what: format!(
                                "{n} bytes of an incomplete SIP message at the end of the stream"
                            ),
                        });
                    }
                    return;
                }
                Framed::BadLength(n, why) => {
                    ds.queue.consume(n);
                    self.problems.push(Problem {
                        frame,
                        stream,
                        l4,
                        what: format!("message skipped: {why}"),
                    });
                }
                Framed::NotSip => {
                    // skip to the next line that starts a message
                    let skip = sip::next_start_line(data, at_end);
                    if skip == 0 {
                        return;
                    }
                    let dlen = data.len();
                    ds.queue.consume(skip);
                    ds.junk_frame.get_or_insert(frame);
                    if ds.seen.skipped(skip) {
                        self.problems.push(Problem {
                            frame,
                            stream,
                            l4,
                            what: format!("{skip} bytes of junk before a SIP message skipped"),
                        });
                    }
                    if skip == dlen && !at_end {
                        return;
                    }
                }
            }
        }
    }
}

impl StreamConsumer for Core {
    fn event(&mut self, flow: FlowId, f: &crate::flow::Flow, dir: Dir, ev: Event<'_>) {
        let d = dir.idx();
        let ds = self.dirs.entry((flow, d)).or_insert_with(|| DirState {
            queue: ByteQueue::new(),
            seen: Default::default(),
            junk_frame: None,
        });
        match ev {
            Event::Data {
                offset,
                bytes,
                frame,
                ts_ns,
            } => {
                if ds.seen.given_up() {
                    return;
                }
                ds.queue.push(offset, bytes, frame, ts_ns);
                self.drain(flow, f, d, false);
            }
            Event::Gap { offset, len, frame } => {
                self.drain(flow, f, d, true);
                if let Some(ds) = self.dirs.get_mut(&(flow, d)) {
                    if ds.seen.recognised() {
                        self.problems.push(Problem {
                            frame,
                            stream: f.stream,
                            l4: f.l4,
                            what: format!("{len} bytes missing from the TCP stream"),
                        });
                    }
                    ds.queue.reset(offset + len);
                }
            }
        }
    }

    fn closed(&mut self, flow: FlowId, f: &crate::flow::Flow, _reason: CloseReason) {
        for d in 0..2 {
            self.drain(flow, f, d, true);
            self.dirs.remove(&(flow, d));
        }
    }

    fn wants(&self, flow: FlowId, dir: Dir) -> bool {
        // a direction given up is never recognised, so its gaps are not reported
        self.dirs
            .get(&(flow, dir.idx()))
            .is_none_or(|ds| !ds.seen.given_up())
    }
    /// A direction given up holds nothing this finder reads again before
    /// `closed` (whose drain of it would stop at once).
    fn let_go(&mut self, flow: FlowId, dir: Dir) {
        self.dirs.remove(&(flow, dir.idx()));
    }
}

/// The finder as a pipeline sink.
#[derive(Default)]
pub struct SipFinder {
    streams: TcpStreams<Core>,
}

impl PacketSink for SipFinder {
    fn wants_payload(&self) -> bool {
        true
    }

    /// A SIP start line begins with a method or `SIP/2.0` (RFC 3261 §7.1,
    /// upper case on the wire): the UDP branch below reads nothing else.
    fn wants_udp_payload(&self, first: u8) -> bool {
        first.is_ascii_uppercase()
    }

    fn packet(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
    ) {
        let Some((id, dir)) = flow else { return };
        let f = flows.get(id);
        match &pkt.transport {
            Transport::Udp(u) => {
                if u.payload.len() < 8 || !u.payload[0].is_ascii_uppercase() {
                    return;
                }
                let Some(msg) = sip::parse(u.payload, true) else {
                    return;
                };
                let (src, dst) = if dir == Dir::ToServer {
                    (f.client, f.server)
                } else {
                    (f.server, f.client)
                };
                self.streams.consumer_mut().keep(Found {
                    frame: frame.number,
                    end_frame: frame.number,
                    ts_ns: frame.ts_ns,
                    flow: id,
                    l4: L4::Udp,
                    stream: f.stream,
                    src,
                    dst,
                    msg,
                });
            }
            Transport::Tcp(_) => self.streams.packet(frame, pkt, Some((id, dir)), flows),
            _ => {}
        }
    }

    fn finish(&mut self, flows: &FlowTable) {
        self.streams.finish(flows);
    }
}

impl ShardSink for SipFinder {
    fn fork(&self) -> Self {
        let mut s = SipFinder::default();
        s.streams.consumer_mut().streamed = self.streams.consumer().streamed;
        s
    }
}

impl SipFinder {
    /// The stream consumer, for a reassembly shared with other finders
    /// ([`crate::flow::streams::Fanout`]).
    pub fn core_mut(&mut self) -> &mut Core {
        self.streams.consumer_mut()
    }

    /// A finder whose messages are taken at each barrier with
    /// [`SipFinder::take_found`] instead of kept to the end.
    pub fn streamed() -> Self {
        let mut s = SipFinder::default();
        s.streams.consumer_mut().streamed = true;
        s
    }

    /// The messages found since the last call, in the order found.
    pub fn take_found(&mut self) -> Vec<Found> {
        std::mem::take(&mut self.streams.consumer_mut().found)
    }
}

/// The messages the shards of a [`crate::pipeline::run_sharded_with`] pass
/// found since the last barrier, in capture order (they were found in the
/// same batch, so this order does not depend on the shard count).
pub fn take_batch<'a>(shards: impl Iterator<Item = &'a mut SipFinder>) -> Vec<Found> {
    let mut batch: Vec<Found> = Vec::new();
    for s in shards {
        batch.append(&mut s.take_found());
    }
    batch.sort_by_key(capture_order);
    batch
}

/// The order of messages in a capture: by the frame that completes them
/// (as Wireshark shows a reassembled message), then first frame and flow.
pub fn capture_order(f: &Found) -> (u64, u64, FlowId) {
    (f.end_frame, f.frame, f.flow)
}

/// Merges shards in frame order (independent of the shard count).
pub fn merge(shards: Vec<SipFinder>) -> Core {
    let mut core = Core::default();
    for s in shards {
        let c = s.streams.into_consumer();
        core.found.extend(c.found);
        core.problems.extend(c.problems);
        core.keepalive_bytes += c.keepalive_bytes;
    }
    core.found.sort_by_key(capture_order);
    core.flows = core.found.iter().map(|f| f.flow).collect();
    core.problems
        .sort_by(|a, b| (a.frame, a.stream, &a.what).cmp(&(b.frame, b.stream, &b.what)));
    core
}
