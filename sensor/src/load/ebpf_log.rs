//! Diagnostics from the eBPF programs (`aya_log_ebpf` calls in `sensor-ebpf`), forwarded to
//! stderr as `sensor: ebpf: …` when `sensor run --ebpf-log` asks for them. They explain a
//! failure; the loss counters stay the record of what was lost.
//!
//! Off must cost nothing, and aya-log-ebpf's default is on: its `AYA_LOG_LEVEL` global starts
//! at 0xff (every level), so a log call on a failure path would write into the `AYA_LOGS` ring
//! whether or not anyone reads it. [`configure`] therefore sets the level before load: 0 when
//! off. The global is read-only data (`.rodata`, frozen by aya), so the verifier knows every
//! call's level check is false and drops the call's body as dead code; the log ring must still
//! exist (the programs refer to it) and is cut to one page.

use std::io::Write;

use anyhow::{Context, Result};
use aya::{Ebpf, EbpfLoader};
use aya_log::{EbpfLogger, Level};
use tokio::io::{unix::AsyncFd, Interest};

/// The ring the log calls write to (`aya_log_ebpf::macro_support::AYA_LOGS`).
const LOG_MAP: &str = "AYA_LOGS";
const OFF: u8 = 0;
const ALL: u8 = Level::Trace as u8;

/// Before `EbpfLoader::load`: the level is fixed in the programs' read-only data at load time.
pub fn configure(loader: &mut EbpfLoader<'_>, on: bool) {
    loader.override_global(aya_log::LEVEL, if on { &ALL } else { &OFF }, true);
    if !on {
        // Rounded up to one page by aya.
        loader.map_max_entries(LOG_MAP, 1);
    }
}

/// After every program is loaded (the logger takes `AYA_LOGS` out of `ebpf`, so a program loaded
/// later would not find it), inside the tokio runtime: forwards the programs' log records to
/// stderr until the runtime stops. Does nothing when `on` is false.
pub fn start(ebpf: &mut Ebpf, on: bool) -> Result<()> {
    if !on {
        return Ok(());
    }
    let logger = EbpfLogger::init_with_logger(ebpf, Stderr).context("starting the eBPF logger")?;
    // SAFETY: the logger owns its map fd, which stays open and unchanged until the `AsyncFd`
    // (and with it the logger) is dropped.
    let mut fd = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
        .context("watching the eBPF log ring")?;
    tokio::spawn(async move {
        while let Ok(mut guard) = fd.readable_mut().await {
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
    Ok(())
}

/// A `log::Log` that writes each record as one stderr line; aya-log hands records to it
/// directly, so no global logger is installed.
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "sensor: ebpf: {} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}
