//! The sensor's userspace agent. Its folders are its pipeline, in the order data flows:
//!
//! load → read → assemble → normalise → detect → filter → encode → sink
//!
//! [`pipeline`] wires them; `docs/ARCHITECTURE.md` walks through adding a record type or a sink.
//! No stage calls one that comes before it.

pub mod assemble;
pub mod catalog;
pub mod cli;
pub mod compare;
pub mod config;
pub mod detect;
pub mod encode;
pub mod event;
pub mod filter;
pub mod fsio;
pub mod load;
pub mod normalise;
pub mod pipeline;
pub mod read;
pub mod sink;

#[cfg(test)]
pub(crate) mod testing;
