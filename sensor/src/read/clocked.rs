//! Draining on the reader's clock (`--coalesce-ms`), in two modes:
//!
//! - busy: the programs submit without waking anyone (`BPF_RB_NO_WAKEUP`), so no record costs
//!   an interrupt, and the reader drains every coalescing delay;
//! - idle, entered when a whole delay brought nothing: the programs' flag is 0, so the first
//!   record wakes the reader (the kernel wakes it when it had caught up), and the clock ticks
//!   only for the housekeeping. The first record switches back to busy, drained one delay later.
//!
//! A record whose program read the busy flag just before the switch to idle wakes no one (nor do
//! the records after it, behind it in the ring): the first idle tick comes one coalescing delay
//! after the switch, and every idle tick drains, so such a record is no later than any other.

use std::{sync::Arc, time::Duration};

use aya::maps::{Array, MapData, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc};

use super::{
    drain, drain_at_stop,
    ticker::{Every, Housekeeping, Ticker},
    ReadStats, Record,
};

/// `BPF_RB_NO_WAKEUP`.
const RB_NO_WAKEUP: u64 = 1;

/// The programs' wake-up flag (`WAKE_FLAGS`).
pub struct WakeFlag {
    map: Array<MapData, u64>,
    failed: bool,
}

impl WakeFlag {
    pub fn new(map: Array<MapData, u64>) -> Self {
        Self { map, failed: false }
    }

    /// Whether a record wakes the reader. A failed update leaves the mode as it was: busy
    /// costs a wake-up per drain at most, idle's ticks still drain.
    fn set(&mut self, wake: bool) {
        let flags = if wake { 0 } else { RB_NO_WAKEUP };
        if let Err(e) = self.map.set(0, &flags, 0) {
            if !std::mem::replace(&mut self.failed, true) {
                eprintln!("sensor: cannot set the programs' ring-buffer wake-up flag: {e}");
            }
        }
    }
}

/// The clock's period while busy and while idle, and the coalescing delay.
pub(super) struct Periods {
    pub busy: Duration,
    pub idle: Duration,
    pub coalesce: Duration,
}

pub(super) async fn run(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Record>,
    stats: Arc<ReadStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    periods: Periods,
    mut wake: WakeFlag,
    (mut clock, mut chores): (Ticker, Housekeeping),
) -> std::io::Result<()> {
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged until the
    // `AsyncFd` (and with it the ring) is dropped.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
    wake.set(false);
    let mut drains = Some(Every::new(periods.coalesce, periods.busy));
    loop {
        match &mut drains {
            // Busy.
            Some(due) => tokio::select! {
                n = clock.tick() => {
                    let n = n?;
                    chores.ticked(n);
                    if !due.ticked(n) {
                        continue;
                    }
                    let Some(got) = drain(fd.get_mut(), &tx, &stats, None, &mut chores).await else {
                        return Ok(());
                    };
                    if got > 0 {
                        continue;
                    }
                    // A whole delay brought nothing: from now on the first record wakes the
                    // reader. Those submitted before the switch woke no one: taken now.
                    wake.set(true);
                    let Some(got) = drain(fd.get_mut(), &tx, &stats, None, &mut chores).await else {
                        return Ok(());
                    };
                    if got > 0 {
                        wake.set(false);
                        continue;
                    }
                    // The first idle tick comes one delay on: a record the switch missed is no
                    // later than any other.
                    clock.set_period(periods.coalesce, periods.idle)?;
                    chores.set_period(periods.idle);
                    drains = None;
                }
                _ = stop.changed() => break,
            },
            // Idle.
            None => tokio::select! {
                guard = fd.readable_mut() => {
                    // Busy again: every record is drained on the clock from here, so this
                    // readiness is spent. (One left from a record that woke the reader as it
                    // switched back costs one busy spell for nothing on the next idle; clearing
                    // it on entering idle could swallow a real one.)
                    guard?.clear_ready();
                    wake.set(false);
                    clock.set_period(periods.busy, periods.busy)?;
                    chores.set_period(periods.busy);
                    drains = Some(Every::new(periods.coalesce, periods.busy));
                }
                n = clock.tick() => {
                    chores.ticked(n?);
                    if drain(fd.get_mut(), &tx, &stats, None, &mut chores).await.is_none() {
                        return Ok(());
                    }
                }
                _ = stop.changed() => break,
            },
        }
    }
    drain_at_stop(fd.get_mut(), &tx, &stats, &mut chores).await;
    Ok(())
}
