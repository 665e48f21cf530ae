//! Encoders: turn normalised [`crate::event::Event`]s into bytes, and back where a format allows
//! it. `audit` is auditd's text (RAW and ENRICHED), `proto` the versioned protobuf stream,
//! `parse` reads audit text back (for `compare` and the golden tests).

pub mod audit;
pub mod parse;
pub mod proto;
