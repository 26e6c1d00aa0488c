//! Output model of `edgetrace turn`: one entry per allocation with its life in order.

use serde::Serialize;

use super::{CaptureSummary, Meta, SCHEMA_VERSION};
use crate::analyze::turn::Allocation;
use crate::flow::{Endpoint, L4};
use crate::pipeline::RunResult;

fn ep(a: Option<std::net::SocketAddr>) -> Option<String> {
    a.map(|x| Endpoint::from(x).to_string())
}

/// One step of the life of an allocation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StepOut {
    /// Frame.
    pub frame: u64,
    /// Seconds since the first frame of the capture.
    pub time_s: f64,
    /// Stream (ConnectionBind runs on its own connection).
    pub stream: u32,
    /// What happened.
    pub event: String,
    /// Details.
    pub detail: String,
}

/// A channel binding and its traffic.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChannelBindingOut {
    /// Channel number.
    pub channel: String,
    /// Peer it is bound to.
    pub peer: Option<String>,
    /// ChannelData frames seen on the control flow.
    pub frames: u64,
    /// Data bytes.
    pub bytes: u64,
}

/// Send/Data indication traffic per peer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct IndicationOut {
    /// Peer.
    pub peer: String,
    /// Send indications.
    pub send: u64,
    /// Data indications.
    pub data: u64,
    /// DATA bytes.
    pub bytes: u64,
}

/// An RFC 6062 connection.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConnectionOut {
    /// CONNECTION-ID.
    pub connection_id: String,
    /// Peer.
    pub peer: Option<String>,
    /// `connect` (client asked) or `connection-attempt` (peer connected).
    pub initiated_by: &'static str,
    /// Frame of Connect / ConnectionAttempt.
    pub announced_frame: u64,
    /// tcp.stream of the data connection.
    pub data_stream: Option<u32>,
    /// Frame of ConnectionBind.
    pub bind_frame: Option<u64>,
    /// `success`, `error …`, or null (no answer / not bound).
    pub bind_result: Option<String>,
    /// Bytes relayed on the data connection after binding.
    pub relayed_bytes: u64,
}

/// One allocation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AllocationOut {
    /// Transport of the control connection.
    pub transport: L4,
    /// Its stream index.
    pub stream: u32,
    /// Wireshark filter for the control flow.
    pub filter: String,
    /// TURN client as the server sees it.
    pub client: Endpoint,
    /// TURN server.
    pub server: Endpoint,
    /// `allocated`, `deallocated`, `expired`, `failed`.
    pub outcome: &'static str,
    /// Why, in words.
    pub detail: String,
    /// First frame.
    pub first_frame: u64,
    /// USERNAME (redacted with --redact-usernames).
    pub username: Option<String>,
    /// REALM.
    pub realm: Option<String>,
    /// REQUESTED-TRANSPORT.
    pub requested_transport: Option<&'static str>,
    /// Relayed address.
    pub relayed: Option<String>,
    /// Reflexive address.
    pub mapped: Option<String>,
    /// Frame of Allocate success.
    pub success_frame: Option<u64>,
    /// Last granted lifetime.
    pub lifetime_s: Option<u32>,
    /// Peers permitted.
    pub permissions: Vec<String>,
    /// Channels.
    pub channels: Vec<ChannelBindingOut>,
    /// Send/Data indications.
    pub indications: Vec<IndicationOut>,
    /// RFC 6062 connections.
    pub connections: Vec<ConnectionOut>,
    /// The life in order.
    pub timeline: Vec<StepOut>,
}

/// `edgetrace turn --json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TurnReport {
    /// Schema version.
    pub schema_version: u32,
    /// Volatile fields.
    pub meta: Meta,
    /// The capture.
    pub capture: CaptureSummary,
    /// Allocations by first frame.
    pub allocations: Vec<AllocationOut>,
}

impl TurnReport {
    /// Builds the report.
    pub fn build(
        run: &RunResult,
        allocs: &[Allocation],
        input: &str,
        redact_usernames: bool,
    ) -> TurnReport {
        let t0 = run.read.first_ts.unwrap_or(0);
        let mut allocations: Vec<AllocationOut> = allocs
            .iter()
            .map(|al| AllocationOut {
                transport: al.l4,
                stream: al.stream,
                filter: super::flow_filter(run.flows.get(al.flow)),
                client: al.client,
                server: al.server,
                outcome: al.outcome,
                detail: al.detail.clone(),
                first_frame: al.first_frame,
                username: al.username.as_ref().map(|u| {
                    if redact_usernames {
                        format!("<redacted {} bytes>", u.len())
                    } else {
                        u.clone()
                    }
                }),
                realm: al.realm.clone(),
                requested_transport: al.requested_transport.map(|p| match p {
                    17 => "UDP",
                    6 => "TCP",
                    _ => "other",
                }),
                relayed: ep(al.relayed),
                mapped: ep(al.mapped),
                success_frame: al.success_frame,
                lifetime_s: al.lifetime_s,
                permissions: al
                    .permissions
                    .iter()
                    .map(|p| ep(Some(*p)).unwrap_or_default())
                    .collect(),
                channels: al
                    .channels
                    .iter()
                    .map(|(c, peer)| {
                        let (frames, bytes) = al.channel_traffic.get(c).copied().unwrap_or((0, 0));
                        ChannelBindingOut {
                            channel: format!("{c:#06x}"),
                            peer: ep(*peer),
                            frames,
                            bytes,
                        }
                    })
                    .collect(),
                indications: al
                    .indications
                    .iter()
                    .map(|(p, (s, d, b))| IndicationOut {
                        peer: p.clone(),
                        send: *s,
                        data: *d,
                        bytes: *b,
                    })
                    .collect(),
                connections: al
                    .connections
                    .iter()
                    .map(|c| ConnectionOut {
                        connection_id: format!("{:#010x}", c.id),
                        peer: ep(c.peer),
                        initiated_by: if c.peer_initiated {
                            "connection-attempt"
                        } else {
                            "connect"
                        },
                        announced_frame: c.announced_frame,
                        data_stream: c.bind_stream,
                        bind_frame: c.bind_frame,
                        bind_result: c.bind_result.clone(),
                        relayed_bytes: c.relayed_bytes,
                    })
                    .collect(),
                timeline: al
                    .steps
                    .iter()
                    .map(|s| StepOut {
                        frame: s.frame,
                        time_s: crate::timefmt::seconds(s.ts_ns - t0),
                        stream: s.stream,
                        event: s.what.clone(),
                        detail: if redact_usernames {
                            redact_user(&s.detail)
                        } else {
                            s.detail.clone()
                        },
                    })
                    .collect(),
            })
            .collect();
        allocations.sort_by_key(|a| (a.first_frame, a.stream));
        TurnReport {
            schema_version: SCHEMA_VERSION,
            meta: Meta::new(input),
            capture: CaptureSummary::from_run(run),
            allocations,
        }
    }
}

fn redact_user(detail: &str) -> String {
    detail
        .split(", ")
        .map(|p| {
            if p.starts_with("user ") {
                "user <redacted>".to_string()
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The TURN allocations a report's pass finished before the end of the
/// capture ([`crate::analyze::turn::AllocationSink`]): counted, checked for
/// findings as they come (merged at once: memory is bounded by the groups),
/// and the first `listed` of them (flow order) kept whole for the listing.
pub struct EndedAllocations {
    /// How many were finished.
    pub count: usize,
    /// The ones the listing may show: the lowest (flow, first frame).
    listed: std::collections::BTreeMap<(crate::flow::FlowId, u64), Allocation>,
    max_listed: usize,
    findings: crate::findings::Merging,
    options: crate::findings::Options,
}

impl EndedAllocations {
    /// For a report that lists `max_listed` allocations, with its finding knobs.
    pub fn new(max_listed: usize, options: crate::findings::Options) -> Self {
        EndedAllocations {
            count: 0,
            listed: Default::default(),
            max_listed,
            findings: Default::default(),
            options,
        }
    }

    /// The first `n` allocations of the capture in flow order (and, within a
    /// flow, in the order they started), from these and the ones finished at
    /// the end (`rest`, in that order); every one of them recorded what a
    /// listing shows.
    pub fn first(&self, rest: &[Allocation], n: usize) -> Vec<Allocation> {
        let mut v: Vec<&Allocation> = self.listed.values().chain(rest.iter().take(n)).collect();
        v.sort_by_key(|a| (a.flow, a.first_frame));
        v.into_iter().take(n).cloned().collect()
    }

    /// The TURN findings of the whole capture: these and those of `rest`,
    /// merged as [`crate::findings::findings`] merges them.
    pub fn findings(self, rest: &[Allocation]) -> Vec<crate::findings::Finding> {
        let mut m = self.findings;
        let mut v = Vec::new();
        for al in rest {
            crate::findings::turn_allocation(al, &self.options, &mut v);
            for f in v.drain(..) {
                m.add(f);
            }
        }
        m.finish()
    }
}

impl crate::analyze::turn::AllocationSink for EndedAllocations {
    fn allocation(&mut self, al: Allocation, listed: bool) {
        self.count += 1;
        let mut v = Vec::new();
        crate::findings::turn_allocation(&al, &self.options, &mut v);
        for f in v {
            self.findings.add(f);
        }
        // one that could not be listed in its shard is not among the first
        // `max_listed` of the capture (`analyze::FirstN`)
        if listed && self.max_listed > 0 {
            self.listed.insert((al.flow, al.first_frame), al);
            if self.listed.len() > self.max_listed {
                self.listed.pop_last();
            }
        }
    }
}
