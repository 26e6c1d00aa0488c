//! Renderers: they read the output model ([`crate::model`]) and write text.
//! They never parse capture data.  JSON is one renderer among others.

pub mod diff;
pub mod json;
pub mod table;
