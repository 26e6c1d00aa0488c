//! Every analyzer in one pass over the capture (for `report`, `check` and
//! the whole-pipeline fuzz target): the STUN, SIP and TLS finders run side
//! by side in each rayon shard, then TURN allocations and ICE sessions are
//! built from what they found.  The merge of each finder does not depend on
//! the shard count, so the result is the same for any thread count.
//!
//! For `report`, SIP and STUN messages do not wait for the end: after each
//! batch the shards' new messages are put in capture order and handed to a
//! [`sip::MessageSink`] (the report's dialog fold) and to the ICE check fold
//! ([`ice::CheckFold`]) while the shards read the next batch, and the SDP
//! that ICE needs is collected on the way.  TURN allocations that are over
//! (`turn::OVER_AFTER_NS`) are finished at the barriers and handed to a
//! [`turn::AllocationSink`] (the report's count, listing and findings), so
//! only the allocations still alive wait for the end.

use crate::capture::{CaptureError, CaptureReader, FrameInfo};
use crate::flow::streams::{Fanout, StreamTable};
use crate::flow::{Dir, FlowId, FlowTable};
use crate::packet::{Packet, Transport};
use crate::pipeline::{self, PacketSink, RunOptions, RunResult, ShardSink};

use super::{ice, sip, stun, tls, turn};

/// Everything the analyzers found.
pub struct Analysis {
    /// Capture, flows and read statistics.
    pub run: RunResult,
    /// STUN / TURN / MS-TURN messages.
    pub stun: stun::Core,
    /// SIP messages (none when they went to a [`sip::MessageSink`]: then
    /// only the framing problems, keep-alives and the flows that carried SIP).
    pub sip: sip::Core,
    /// TLS connections.
    pub tls: tls::Core,
    /// TURN allocations (for a report, those its [`turn::AllocationSink`]
    /// did not get during the pass), in flow order.
    pub allocations: Vec<turn::Allocation>,
    /// ICE sessions.
    pub ice: Vec<ice::Session>,
    /// Wall time of each phase (the pass, the merges, TURN + ICE), for
    /// `EDGETRACE_TIMINGS` and docs/performance.md.
    pub timings: Vec<(&'static str, std::time::Duration)>,
}

/// Runs every analyzer over the capture.
pub fn analyze(reader: CaptureReader, opts: &RunOptions) -> Result<Analysis, CaptureError> {
    analyze_with(
        reader,
        opts,
        stun::StunFinder::default(),
        tls::TlsFinder::default(),
        None,
    )
}

/// Where a report's pass hands what it folds: SIP messages, and the TURN
/// allocations it finished before the end of the capture.
pub struct Sinks<'a> {
    /// SIP messages in capture order.
    pub sip: &'a mut dyn sip::MessageSink,
    /// TURN allocations that were over, in no particular order.
    pub turn: &'a mut dyn turn::AllocationSink,
}

/// Runs every analyzer for a report that lists `listed` allocations and TLS
/// connections: the others are built and checked, but only what findings
/// read of them is recorded.  SIP messages go to `sip` and STUN messages to
/// the ICE check fold in capture order as the pass finds them (batch by
/// batch), and are not kept; only what the TURN allocations read of the
/// RFC 6062 ConnectionBinds ([`turn::Bind`]) waits for the end.
/// TURN allocations that are over go to `sinks.turn` during the pass; the
/// others are in [`Analysis::allocations`].
pub fn analyze_for_report(
    reader: CaptureReader,
    opts: &RunOptions,
    listed: usize,
    sinks: Sinks<'_>,
) -> Result<Analysis, CaptureError> {
    let stun = stun::StunFinder::default()
        .allocation_steps_for_first(listed)
        .finishing_allocations();
    let tls = tls::TlsFinder::whole_for_first(listed);
    let a = analyze_with(reader, opts, stun, tls, Some(sinks))?;
    // the pass's state is freed: give it back before the report's models
    // take their room
    crate::memory::give_back_freed();
    Ok(a)
}

/// The STUN, SIP and TLS finders of one shard, reading one TCP reassembly
/// ([`Fanout`]): each gets the same events its own reassembly would give
/// it, and an open connection with its out-of-order bytes is held once, not
/// three times.  Every other packet goes to each finder as it would alone.
struct Finders {
    tcp: StreamTable,
    stun: stun::StunFinder,
    sip: sip::SipFinder,
    tls: tls::TlsFinder,
}

impl PacketSink for Finders {
    fn wants_payload(&self) -> bool {
        true
    }

    fn wants_udp_payload(&self, first: u8) -> bool {
        self.stun.wants_udp_payload(first)
            || self.sip.wants_udp_payload(first)
            || self.tls.wants_udp_payload(first)
    }

    fn packet(
        &mut self,
        frame: &FrameInfo,
        pkt: &Packet<'_>,
        flow: Option<(FlowId, Dir)>,
        flows: &FlowTable,
    ) {
        match (&pkt.transport, flow) {
            (Transport::Tcp(t), Some((id, dir))) => {
                self.tls.health(frame, t, id, dir);
                let mut to = Fanout(
                    self.stun.core_mut(),
                    self.sip.core_mut(),
                    self.tls.core_mut(),
                );
                self.tcp.packet(frame, pkt, flow, flows, &mut to);
            }
            _ => {
                self.stun.packet(frame, pkt, flow, flows);
                self.sip.packet(frame, pkt, flow, flows);
                self.tls.packet(frame, pkt, flow, flows);
            }
        }
    }

    fn barrier(&mut self, now_ns: i64, flows: &FlowTable) {
        self.stun.barrier(now_ns, flows);
        self.sip.barrier(now_ns, flows);
        self.tls.barrier(now_ns, flows);
    }

    fn finish(&mut self, flows: &FlowTable) {
        let mut to = Fanout(
            self.stun.core_mut(),
            self.sip.core_mut(),
            self.tls.core_mut(),
        );
        self.tcp.finish(flows, &mut to);
        // their own reassemblies were never fed; this finishes the rest
        self.stun.finish(flows);
        self.sip.finish(flows);
        self.tls.finish(flows);
    }
}

impl ShardSink for Finders {
    fn fork(&self) -> Self {
        Finders {
            tcp: StreamTable::default(),
            stun: self.stun.fork(),
            sip: self.sip.fork(),
            tls: self.tls.fork(),
        }
    }
}

fn analyze_with(
    reader: CaptureReader,
    opts: &RunOptions,
    stun: stun::StunFinder,
    tls: tls::TlsFinder,
    mut sinks: Option<Sinks<'_>>,
) -> Result<Analysis, CaptureError> {
    let sip_finder = match sinks {
        Some(_) => sip::SipFinder::streamed(),
        None => sip::SipFinder::default(),
    };
    let finders = Finders {
        tcp: StreamTable::default(),
        stun,
        sip: sip_finder,
        tls,
    };
    let t0 = std::time::Instant::now();
    let mut sdp = ice::SdpCollector::default();
    let mut sip_flows = std::collections::BTreeSet::new();
    let streamed = sinks.is_some();
    // each barrier takes the messages the shards found in the batch: capture
    // order among them; they are folded while the shards read the next batch
    // RFC 6062 ConnectionBinds are kept (as `turn::Bind`) for the TURN
    // allocations, indexed here, where every flow's binds so far are known:
    // an allocation with peer connections that is over is finished here
    let mut binds = turn::Binds::default();
    let take = |shards: &mut [Finders], b: pipeline::Barrier, flows: &FlowTable| {
        if !streamed {
            return (Vec::new(), 0, Vec::new(), Vec::new());
        }
        let sip = sip::take_batch(shards.iter_mut().map(|s| &mut s.sip));
        // the listing's ranks of the whole pass, not of each shard
        stun::StunFinder::cap_listing(shards.iter_mut().map(|s| &mut s.stun));
        tls::TlsFinder::cap_listing(shards.iter_mut().map(|s| &mut s.tls));
        let stun = stun::take_batch(shards.iter_mut().map(|s| &mut s.stun));
        for f in &stun {
            if let Some(x) = turn::Bind::of(f) {
                binds.push(x, flows);
            }
        }
        let mut ended = stun::take_finished(shards.iter_mut().map(|s| &mut s.stun));
        let over = stun::take_over_with_connections(shards.iter_mut().map(|s| &mut s.stun));
        if !over.is_empty() {
            let relayed = |f| {
                shards
                    .iter()
                    .find_map(|s| s.stun.relayed_bytes(f))
                    .unwrap_or(0)
            };
            for (id, t) in over {
                let listed = t.is_listed();
                let (conns, until) = t.connections_until();
                let server = flows.get(id).server;
                ended.extend(
                    t.finish(id, flows.get(id), &binds, &relayed, b.latest_ts)
                        .map(|al| (al, listed)),
                );
                // its binds are read by no other allocation
                for c in conns {
                    binds.forget(server, c, until);
                }
            }
        }
        (sip, b.first_ts.unwrap_or(0), stun, ended)
    };
    // ICE checks are folded at the barriers too; every message dropped
    let mut checks = ice::CheckFold::default();
    type Taken = (
        Vec<sip::Found>,
        i64,
        Vec<stun::Found>,
        Vec<(turn::Allocation, bool)>,
    );
    let fold = |(batch, t0, stun_batch, ended): Taken| {
        if let Some(sinks) = sinks.as_mut() {
            for f in batch {
                sdp.push(&f);
                sip_flows.insert(f.flow);
                sinks.sip.message(f, t0);
            }
            for (al, listed) in ended {
                sinks.turn.allocation(al, listed);
            }
        }
        for f in stun_batch {
            checks.push(&f);
        }
        // the SDP no check named in time goes, now that the checks up to
        // the batch's last SIP message are in
        sdp.settle(checks.sdp_wanted());
    };
    let (run, shards) = pipeline::run_sharded_with(reader, opts, finders, take, fold)?;
    let t1 = std::time::Instant::now();
    let mut stun_shards = Vec::with_capacity(shards.len());
    let mut sip_shards = Vec::with_capacity(shards.len());
    let mut tls_shards = Vec::with_capacity(shards.len());
    for s in shards {
        stun_shards.push(s.stun);
        sip_shards.push(s.sip);
        tls_shards.push(s.tls);
    }
    // merges, then TURN and ICE, each pair side by side (they share nothing
    // but read-only inputs, so the result does not depend on the threads)
    let (mut stun, (mut sip, tls)) = rayon::join(
        || stun::merge(stun_shards, &run.flows),
        || rayon::join(|| sip::merge(sip_shards), || tls::merge(tls_shards)),
    );
    let t2 = std::time::Instant::now();
    let sdp = if streamed {
        sip.flows = sip_flows;
        sdp.finish_for(checks.sdp_wanted())
    } else {
        binds = turn::Binds::of_messages(&stun.found, &run.flows);
        Vec::new()
    };
    let end = run.read.last_ts.unwrap_or(0);
    let trackers = stun.take_turn();
    let (allocations, ice) = rayon::join(
        || turn::allocations(trackers, &binds, &stun, &run.flows, end),
        || {
            if streamed {
                checks.finish(sdp, &stun, &run.flows)
            } else {
                ice::sessions(&stun, &sip, &run.flows)
            }
        },
    );
    let t3 = std::time::Instant::now();
    let timings = vec![
        ("read, decode, flows, finders", t1 - t0),
        ("merge shards", t2 - t1),
        ("TURN allocations, ICE sessions", t3 - t2),
    ];
    Ok(Analysis {
        timings,
        run,
        stun,
        sip,
        tls,
        allocations,
        ice,
    })
}
