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
    /// Compare kernel audit with the sensor, record type by record type: live (both run at
    /// once, kernel records read from netlink; needs root) or from two logs.
    Compare(CompareArgs),
    /// The audit message types: number, name, who emits them, and what the sensor does with them.
    Catalog(CatalogArgs),
    /// audit.rules: what the sensor makes of each line.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// One verdict per line of a rules file or directory: applied, unsupported (why) or error
    /// (auditctl's message); not-loaded after an error that stops loading. Exit 0 without
    /// errors, 1 with.
    Check(RulesCheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct RulesCheckArgs {
    /// A rules file, or a directory of `*.rules` (joined as augenrules does).
    #[arg(value_name = "FILE|DIR")]
    pub path: PathBuf,
    /// A JSON list of {file, line, text, status, reason}.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// auditd's log (RAW or ENRICHED) to compare offline; with --sensor-log.
    #[arg(long, requires = "sensor_log")]
    pub audit_log: Option<PathBuf>,
    /// The sensor's output (audit, enriched or proto) to compare offline.
    #[arg(long, requires = "audit_log")]
    pub sensor_log: Option<PathBuf>,
    /// Live: how long to watch, in seconds (until SIGINT when not given).
    #[arg(long, conflicts_with = "audit_log")]
    pub duration: Option<u64>,
    /// Live: keep both logs in this directory.
    #[arg(long, conflicts_with = "audit_log")]
    pub keep: Option<PathBuf>,
    /// Events further apart than this (ms) are never matched.
    #[arg(long, default_value_t = 2000)]
    pub window_ms: u64,
    /// Fail (exit 1) when the sensor has less than this share (percent) of the kernel's records
    /// of a checked type.
    #[arg(long)]
    pub min_coverage: Option<f64>,
    /// Record types the threshold applies to (repeatable); by default every type both saw.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    #[arg(long)]
    pub markdown: bool,
}

#[derive(clap::Args, Debug)]
pub struct CatalogArgs {
    /// One type, by name or number, explained in full.
    pub r#type: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// FORMAT:PATH, repeatable. FORMAT is audit, enriched or proto; PATH `-` is stdout,
    /// `tcp:HOST:PORT` or `unix:SOCKET` a collector's socket the sensor connects to (and
    /// reconnects to, queueing up to 16 MiB meanwhile), anything else a file (`./tcp:…` for a
    /// file of that name). Adds to the log --config names; without either, `audit:-`.
    #[arg(long = "output", short = 'o', value_name = "FORMAT:PATH")]
    pub outputs: Vec<OutputSpec>,
    /// An auditd.conf (the service passes /etc/audit/auditd.conf), read as auditd reads it and
    /// refused where auditd would refuse it: the log file it names is written as auditd writes
    /// it (log_format, log_group, flush/freq, rotation on max_log_file and on SIGUSR1, num_logs,
    /// the space_left, admin_space_left, disk_full and disk_error actions; SIGUSR2 resumes
    /// suspended logging). Read again on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, default_value_t = 16)]
    pub ring_buffer_mib: u32,
    /// Decoded records queued between the ring-buffer reader and the encoders (1 to 1048576).
    #[arg(long, default_value_t = 65536, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 20))]
    pub channel_capacity: usize,
    /// Drain the ring buffer every this many ms, so that one wake-up serves many records (one
    /// clock serves this and `--lost-interval-ms`: it ticks at the shorter of the two, and each
    /// comes at the last whole number of ticks within its own); after a drain that found
    /// nothing, the first record wakes the agent and is drained this long after. 0 wakes on
    /// every record;
    /// records are late by at most this (0 to 1000). Each wake-up costs the agent far more than
    /// a record does: at 5 ms an exec storm cost it twice the CPU per exec it does at 50.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub coalesce_ms: u64,
    /// How often loss counters are checked, in milliseconds (a record is written when they grow,
    /// so a loss is in the stream within this; 10 to 60000). A check is one lookup of the
    /// kernel's counters.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub lost_interval_ms: u64,
    /// How long the pipeline waits for one lookup of a user's file (an exec's ELF interpreter, a
    /// refused open's names; 1 to 10000 ms). A late one is counted (`lookups_late`) and the
    /// record says what the kernel says of an unknown; a slow or emulated machine may need more.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub lookup_deadline_ms: u64,
    /// Leave out user-space audit messages the kernel would refuse (sender without
    /// CAP_AUDIT_WRITE, or outside the initial pid namespace). By default they are written,
    /// marked `sensor_untrusted=1`.
    #[arg(long)]
    pub drop_untrusted: bool,
    /// Also write the sensor's own ANOM_LOGIN_* records for refusals PAM modules make without
    /// writing one (pam_access, pam_time, pam_limits, an expired account). auditd never writes
    /// these: they name the sensor's rule in `exe="sensor:RULE"` and `sensor_rule=`. Off by
    /// default.
    #[arg(long)]
    pub infer_login_anomalies: bool,
    /// An audit.rules file or a rules directory (read as augenrules joins /etc/audit/rules.d):
    /// only the execs the exit list selects are written, with the rule's key. Without it every
    /// exec is written (`key=(null)`), as if `-a always,exit -S execve,execveat` were loaded.
    /// Refused at start on an error the file does not tell to ignore (`-i`); read again on
    /// SIGHUP unless `-e 2` locked it.
    #[arg(long, value_name = "FILE|DIR")]
    pub rules: Option<PathBuf>,
    /// Write the eBPF programs' diagnostics (why a record was dropped) to stderr as
    /// `sensor: ebpf: …` lines. Off by default, and then free: the loss records stay the account
    /// of what was lost.
    #[arg(long)]
    pub ebpf_log: bool,
    /// How uprobes attach: `auto` uses one `uprobe_multi` link per library where the kernel has
    /// them (Linux >= 6.6), `single` one perf event per function, as on older kernels.
    #[arg(long, value_enum, default_value_t = UprobeLinks::Auto)]
    pub uprobe_links: UprobeLinks,
    /// Which kernel probes meet the needs that have two ways: `auto` takes the trampolines
    /// (fentry/fexit at the kernel's own functions, no program on every syscall) where the
    /// kernel lets them attach and says why not otherwise; `tracepoints` or `trampolines` insist.
    #[arg(long, value_enum, default_value_t = ProbeSetArg::Auto)]
    pub probe_set: ProbeSetArg,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeSetArg {
    Auto,
    Tracepoints,
    Trampolines,
}

impl ProbeSetArg {
    pub fn wanted(self) -> Option<sensor_common::probes::ProbeSet> {
        use sensor_common::probes::ProbeSet;
        match self {
            ProbeSetArg::Auto => None,
            ProbeSetArg::Tracepoints => Some(ProbeSet::Tracepoints),
            ProbeSetArg::Trampolines => Some(ProbeSet::Trampolines),
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UprobeLinks {
    Auto,
    Single,
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
