//! The command line: a contract other tools script against. Keep names and defaults stable.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::sink::OutputSpec;

#[derive(Parser, Debug)]
#[command(
    name = "sensor",
    version,
    about = "auditd-compatible security records from eBPF, without auditd"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Attach every probe and write records as events happen (needs root).
    Run(RunArgs),
    /// Turn a `proto` output stream back into audit text on stdout.
    Decode(DecodeArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// FORMAT:PATH, repeatable. FORMAT is audit, enriched or proto; PATH `-` is stdout.
    #[arg(
        long = "output",
        short = 'o',
        value_name = "FORMAT:PATH",
        default_value = "audit:-"
    )]
    pub outputs: Vec<OutputSpec>,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, default_value_t = 16)]
    pub ring_buffer_mib: u32,
    /// Decoded records queued between the ring-buffer reader and the encoders.
    #[arg(long, default_value_t = 65536)]
    pub channel_capacity: usize,
    /// After draining the ring buffer, wait this long (ms) before the next drain, so that one
    /// wake-up serves many records. 0 wakes on every record; records are late by at most this.
    #[arg(long, default_value_t = 5)]
    pub coalesce_ms: u64,
    /// How often loss counters are checked, in milliseconds (a record is written when they grow).
    #[arg(long, default_value_t = 1000)]
    pub lost_interval_ms: u64,
    /// Leave out user-space audit messages the kernel would refuse (sender without
    /// CAP_AUDIT_WRITE, or outside the initial pid namespace). By default they are written,
    /// marked `sensor_untrusted=1`.
    #[arg(long)]
    pub drop_untrusted: bool,
}

#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// A file written by `sensor run --output proto:FILE`.
    pub file: PathBuf,
    /// Text format to write.
    #[arg(long, value_enum, default_value_t = TextFormat::Audit)]
    pub format: TextFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    Audit,
    Enriched,
}
