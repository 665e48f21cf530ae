//! Encoders: turn normalised [`crate::event::Event`]s into bytes, and back where a format allows it.

pub mod audit;
pub mod hexq;
pub mod names;
pub mod parse;
pub mod proto;
