//! Analyzers: state over the messages protocol finders locate — STUN
//! transactions now; TURN allocations, ICE pairs, SIP dialogs and TLS sessions
//! build on the same pattern.  They run as pipeline sinks and never print.

pub mod sip;
pub mod stun;
pub mod turn;
