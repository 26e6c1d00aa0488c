//! edgetrace: an offline packet-capture analyzer for Skype for Business /
//! Lync / Teams Edge traffic.
//!
//! The module tree is the pipeline, one way:
//!
//! ```text
//! capture → packet  → flow            → proto            → analyze         → model → render
//! pcap/     link, IP,  stream indices,   STUN/MS-TURN,      STUN finder and   serde   table,
//! pcapng    tunnels,   TCP analysis,     ChannelData, TCP   transactions,     types   JSON
//!           defrag     reassembly        framing, SIP,      TURN, SIP dialogs
//!                                        SDP, MRAS
//! ```
//!
//! - [`capture`] reads pcap/pcapng (gzip, stdin) into numbered frames;
//! - [`packet`] decodes link layers, IP (with tunnels and fragments), TCP/UDP/ICMP;
//! - [`flow`] assigns Wireshark-compatible stream indices and reassembles TCP;
//! - [`proto`] holds the pure protocol parsers, one file per protocol;
//! - [`pipeline`] streams a capture through those stages (reader thread, flow
//!   accounting in file order, analyzers sharded by flow over rayon);
//! - [`analyze`] finds protocol messages in flows and builds their state;
//! - [`findings`] says what is wrong, with evidence and a Wireshark filter;
//! - [`model`] is the output model every renderer reads;
//! - [`render`] prints tables and JSON; [`cli`] is the command line;
//! - [`roles`] labels addresses with deployment roles (`--roles`, Microsoft 365 ranges).
//! - [`memory`] hands freed heap pages back to the OS between phases.
//!
//! Parsers never print; renderers never parse.

#![warn(missing_docs)]

pub mod analyze;
pub mod capture;
pub mod cli;
pub mod findings;
pub mod flow;
pub mod fuzzing;
pub mod memory;
pub mod model;
pub mod packet;
pub mod pipeline;
pub mod proto;
pub mod render;
pub mod roles;
pub mod timefmt;
