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
}

/// Runs every analyzer over the capture.
pub fn analyze(reader: CaptureReader, opts: &RunOptions) -> Result<Analysis, CaptureError> {
    let finders = (
        stun::StunFinder::default(),
        (sip::SipFinder::default(), tls::TlsFinder::default()),
    );
    let (run, shards) = pipeline::run_sharded(reader, opts, finders)?;
    let mut stun_shards = Vec::with_capacity(shards.len());
    let mut sip_shards = Vec::with_capacity(shards.len());
    let mut tls_shards = Vec::with_capacity(shards.len());
    for (a, (b, c)) in shards {
        stun_shards.push(a);
        sip_shards.push(b);
        tls_shards.push(c);
    }
    let stun = stun::merge(stun_shards, &run.flows);
    let sip = sip::merge(sip_shards);
    let tls = tls::merge(tls_shards);
    let end = run.read.last_ts.unwrap_or(0);
    let allocations = turn::allocations(&stun, &run.flows, end);
    let ice = ice::sessions(&stun, &ice::sdp_media(&sip));
    Ok(Analysis {
        run,
        stun,
        sip,
        tls,
        allocations,
        ice,
    })
}
