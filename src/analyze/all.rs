//! Every analyzer in one pass over the capture (for `report`, `check` and
//! the whole-pipeline fuzz target): the STUN, SIP and TLS finders run side
//! by side in each rayon shard, then TURN allocations and ICE sessions are
//! built from what they found.  The merge of each finder does not depend on
//! the shard count, so the result is the same for any thread count.

use crate::capture::{CaptureError, CaptureReader};
use crate::pipeline::{self, RunOptions, RunResult};

use super::{ice, sip, stun, tls, turn};

/// Everything the analyzers found.
pub struct Analysis {
    /// Capture, flows and read statistics.
    pub run: RunResult,
    /// STUN / TURN / MS-TURN messages.
    pub stun: stun::Core,
    /// SIP messages.
    pub sip: sip::Core,
    /// TLS connections.
    pub tls: tls::Core,
    /// TURN allocations.
    pub allocations: Vec<turn::Allocation>,
    /// ICE sessions.
    pub ice: Vec<ice::Session>,
    /// Wall time of each phase (the pass, the merges, TURN + ICE), for
    /// `EDGETRACE_TIMINGS` and docs/performance.md.
    pub timings: Vec<(&'static str, std::time::Duration)>,
}

/// Runs every analyzer over the capture.
pub fn analyze(reader: CaptureReader, opts: &RunOptions) -> Result<Analysis, CaptureError> {
    analyze_with(reader, opts, stun::StunFinder::default())
}

/// Runs every analyzer for a report that lists `listed` allocations: the
/// others are built and checked, but their timelines are not recorded.
pub fn analyze_for_report(
    reader: CaptureReader,
    opts: &RunOptions,
    listed: usize,
) -> Result<Analysis, CaptureError> {
    let stun = stun::StunFinder::default().allocation_steps_for_first(listed);
    analyze_with(reader, opts, stun)
}

fn analyze_with(
    reader: CaptureReader,
    opts: &RunOptions,
    stun: stun::StunFinder,
) -> Result<Analysis, CaptureError> {
    let finders = (stun, (sip::SipFinder::default(), tls::TlsFinder::default()));
    let t0 = std::time::Instant::now();
    let (run, shards) = pipeline::run_sharded(reader, opts, finders)?;
    let t1 = std::time::Instant::now();
    let mut stun_shards = Vec::with_capacity(shards.len());
    let mut sip_shards = Vec::with_capacity(shards.len());
    let mut tls_shards = Vec::with_capacity(shards.len());
    for (a, (b, c)) in shards {
        stun_shards.push(a);
        sip_shards.push(b);
        tls_shards.push(c);
    }
    // merges, then TURN and ICE, each pair side by side (they share nothing
    // but read-only inputs, so the result does not depend on the threads)
    let (mut stun, (sip, tls)) = rayon::join(
        || stun::merge(stun_shards, &run.flows),
        || rayon::join(|| sip::merge(sip_shards), || tls::merge(tls_shards)),
    );
    let t2 = std::time::Instant::now();
    let end = run.read.last_ts.unwrap_or(0);
    let trackers = stun.take_turn();
    let (allocations, ice) = rayon::join(
        || turn::allocations(trackers, &stun, &run.flows, end),
        || ice::sessions(&stun, &ice::sdp_media(&sip)),
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
