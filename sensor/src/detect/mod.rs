//! Stateful rules that decide whether an anomaly happened.

pub mod protect;
