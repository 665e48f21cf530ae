//! Loss accounting: the kernel's counters and the agent's, turned into a loss record whenever
//! any of them grew since the last one.

use std::sync::atomic::{AtomicU64, Ordering};

use aya::maps::{MapData, PerCpuArray};
use sensor_common::{
    Counters, CTR_EXEC_ENTRY_LOST, CTR_EXIT_LOST, CTR_PAM_UNMATCHED, CTR_READ_ERROR,
    CTR_RINGBUF_FULL, CTR_USER_MSG_UNTRACKED,
};

use crate::{event::LostEvent, fsio, load, normalise::Normaliser, read::ReadStats};

/// What has been lost so far, from the kernel counters and the reader's.
#[derive(Default)]
pub struct LostTracker {
    reported: LostEvent,
}

impl LostTracker {
    /// The counters now; `incomplete` is what the assembler could not complete.
    pub fn snapshot(
        counters: &PerCpuArray<MapData, Counters>,
        stats: &ReadStats,
        unwatched: &AtomicU64,
        incomplete: u64,
    ) -> LostEvent {
        let c = load::counters(counters);
        let at = |i: u32| c[i as usize];
        LostEvent {
            ringbuf: at(CTR_RINGBUF_FULL),
            read_errors: at(CTR_READ_ERROR),
            channel: stats.undecodable.load(Ordering::Relaxed)
                + stats.undrained.load(Ordering::Relaxed),
            lookups_late: fsio::late(),
            roots_unwatched: unwatched.load(Ordering::Relaxed),
            incomplete: incomplete
                + at(CTR_EXIT_LOST)
                + at(CTR_EXEC_ENTRY_LOST)
                + at(CTR_PAM_UNMATCHED)
                + at(CTR_USER_MSG_UNTRACKED)
                + crate::detect::protect::unknown_ops(),
            ..LostEvent::default()
        }
    }

    /// A record to write when anything grew since the last report.
    pub fn check(&mut self, now: LostEvent, norm: &mut Normaliser) -> Option<LostEvent> {
        let r = &self.reported;
        let key = |l: &LostEvent| {
            (
                l.ringbuf,
                l.read_errors,
                l.channel,
                l.incomplete,
                l.lookups_late,
                l.roots_unwatched,
                l.unwritten,
            )
        };
        if key(&now) == key(r) {
            return None;
        }
        let total = now.ringbuf + now.channel;
        let ev = LostEvent {
            stamp: norm.stamp_now(),
            total,
            delta: total.saturating_sub(r.total),
            ..now
        };
        self.reported = ev.clone();
        Some(ev)
    }
}
