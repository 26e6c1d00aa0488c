//! Renderers: they read the output model ([`crate::model`]) and write text.
//! They never parse capture data.  JSON is one renderer among others;
//! [`mermaid`] draws sequence diagrams for tickets.

pub mod diff;
pub mod json;
pub mod mermaid;
pub mod table;
