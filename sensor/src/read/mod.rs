//! Stage 2: drain the ring buffer (every `--coalesce-ms`, or woken by `AsyncFd` for each record
//! with `--coalesce-ms 0`), decode each record into a [`Record`]
//! and hand it to the bounded channel. A full channel makes the reader wait: records then stay
//! in the kernel's ring buffer, whose overflow the programs count. A record that cannot be
//! decoded is counted and skipped. The reader's clock ([`ticker`]) also tells the pipeline when
//! its housekeeping is due, so that one wake-up serves both.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, Notify},
};

mod clocked;
mod decode;
pub mod record;
mod ticker;
pub use clocked::WakeFlag;
pub use decode::DecodeError;
pub use record::Record;
use ticker::{Housekeeping, Ticker};

/// Counters of what the reader itself could not pass on.
#[derive(Default, Debug)]
pub struct ReadStats {
    pub undecodable: AtomicU64,
    /// Records still in the ring when the drain at stop ran out of time.
    pub undrained: AtomicU64,
}

/// How long the drain at stop may take.
pub const STOP_DRAIN: Duration = Duration::from_millis(1200);

/// The reader's timing: how long records may wait in the ring (zero: read each as it comes),
/// and how often the pipeline's housekeeping is due (`notify` is told).
pub struct Timing {
    pub coalesce: Duration,
    pub housekeeping: Duration,
    pub notify: Arc<Notify>,
}

/// Drains `ring` into `tx` until `tx` closes or `stop` fires; at stop (the tracepoints are
/// detached by then), drains what the ring holds for at most [`STOP_DRAIN`], counts what is left,
/// then returns, which closes the channel and lets the consumer flush.
pub async fn run(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Record>,
    stats: Arc<ReadStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    timing: Timing,
    wake: WakeFlag,
) -> std::io::Result<()> {
    let period = ticker::period(timing.coalesce, timing.housekeeping);
    let mut clock = Ticker::new(period)?;
    let mut chores = Housekeeping::new(timing.notify.clone(), timing.housekeeping, period);
    if !timing.coalesce.is_zero() {
        let periods = clocked::Periods {
            busy: period,
            idle: timing.housekeeping,
            coalesce: timing.coalesce,
        };
        return clocked::run(ring, tx, stats, stop, periods, wake, (clock, chores)).await;
    }
    // Every record wakes the reader: the programs' flag stays 0, as the map starts.
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged until the
    // `AsyncFd` (and with it the ring) is dropped.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
    loop {
        tokio::select! {
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                if drain(guard.get_inner_mut(), &tx, &stats, None, &mut chores).await.is_none() {
                    return Ok(());
                }
                guard.clear_ready();
            }
            n = clock.tick() => chores.ticked(n?),
            _ = stop.changed() => break,
        }
    }
    drain_at_stop(fd.get_mut(), &tx, &stats, &mut chores).await;
    Ok(())
}

/// At stop (the tracepoints are detached by then): drains what the ring holds for at most
/// [`STOP_DRAIN`], then counts what is left, never silently dropped.
async fn drain_at_stop(
    ring: &mut RingBuf<MapData>,
    tx: &mpsc::Sender<Record>,
    stats: &ReadStats,
    chores: &mut Housekeeping,
) {
    drain(ring, tx, stats, Some(Instant::now() + STOP_DRAIN), chores).await;
    // Nothing refills the ring but the uprobes still being detached, so this ends; the bound
    // is for a storm of those.
    let mut left = 0u64;
    while left < 1 << 24 && ring.next().is_some() {
        left += 1;
    }
    stats.undrained.fetch_add(left, Ordering::Relaxed);
}

/// Moves every ready record to the channel (until `deadline`, if any): how many it took, or
/// `None` once the consumer is gone or the deadline passed. A full channel makes the reader
/// wait, leaving records in the kernel's ring buffer, whose overflow the programs count: the
/// agent drops nothing that the kernel could still hold.
async fn drain(
    ring: &mut RingBuf<MapData>,
    tx: &mpsc::Sender<Record>,
    stats: &ReadStats,
    deadline: Option<Instant>,
    chores: &mut Housekeeping,
) -> Option<u64> {
    let mut taken = 0u64;
    loop {
        let permit = match tx.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => room(tx, deadline, chores).await?,
            Err(mpsc::error::TrySendError::Closed(())) => return None,
        };
        // The item borrows the ring: decode it before awaiting again.
        let decoded = match ring.next() {
            Some(item) => Record::try_from(&*item),
            None => return Some(taken),
        };
        match decoded {
            Ok(ev) => permit.send(ev),
            Err(_) => {
                stats.undecodable.fetch_add(1, Ordering::Relaxed);
            }
        }
        taken += 1;
        // One thread runs reader and consumer: let the consumer encode what is queued.
        if taken.is_multiple_of(256) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            // A storm that keeps this drain going must not hold back the loss records.
            chores.check_time();
            tokio::task::yield_now().await;
        }
    }
}

/// The channel is full: waits for room (until `deadline`, if any). The reader's clock is not
/// read while it waits, so the housekeeping is made due by time meanwhile: a slow consumer must
/// not hold back the loss records.
async fn room<'a>(
    tx: &'a mpsc::Sender<Record>,
    deadline: Option<Instant>,
    chores: &mut Housekeeping,
) -> Option<mpsc::Permit<'a, Record>> {
    loop {
        chores.check_time();
        let mut until = Instant::now() + chores.every();
        if let Some(d) = deadline {
            until = until.min(d);
        }
        match tokio::time::timeout_at(until.into(), tx.reserve()).await {
            Ok(permit) => return permit.ok(),
            Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => return None,
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
