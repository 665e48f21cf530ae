//! The sensor's userspace agent, one module per pipeline stage:
//! load → read → assemble → normalise → encode → sink. Data flows one way.

pub mod assemble;
pub mod catalog;
pub mod cli;
pub mod compare;
pub mod encode;
pub mod event;
pub mod load;
pub mod normalise;
pub mod offsets;
pub mod read;
pub mod sink;
