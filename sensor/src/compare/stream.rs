//! Matching as the logs stream in. Each log's records are grouped into events; an event is
//! finalised (matched, or counted on its own side) as soon as nothing later in either log can
//! change its outcome, and then dropped.
//!
//! What makes that safe is the order audit logs are written in: by stamp, give or take the
//! records of events that overlap in time. The rule assumed is that a record is never more than
//! the window older than the newest record before it in its log (`late_records` counts those
//! that are; their events are matched among what is still held). Then
//! - an event is whole once its log has moved a window past it;
//! - a kernel event, taken in the order events first appear (as matching whole logs does), has
//!   every candidate once the sensor's log has moved two windows past it: its candidates lie
//!   within one window of it, and are whole a window later;
//! - a sensor event no kernel event still held or yet to come can reach is counted unmatched.
//!
//! Memory is the records of about three windows, and never more than [`HELD_MAX`] per side: past
//! it the oldest event is finalised early, and counted in `early_events`.

use std::collections::{BTreeSet, HashMap};

use super::{
    group::{weight, Grouper},
    pair_records, Comparison, Event, Identity,
};
use crate::encode::parse::Record;

/// Estimated bytes of parsed records held per side (see [`weight`]): tens of thousands of exec
/// events, far more than a window of a busy host holds.
pub const HELD_MAX: usize = 128 << 20;

/// The sensor's whole events no kernel event has taken yet.
#[derive(Default)]
struct Pool {
    events: HashMap<u64, (Event, usize)>,
    by_id: HashMap<Identity, BTreeSet<(u64, u64)>>,
    by_time: BTreeSet<(u64, u64)>,
    weight: usize,
}

impl Pool {
    fn insert(&mut self, e: Event) {
        let w = e.records.iter().map(weight).sum();
        self.weight += w;
        self.by_time.insert((e.at_ms, e.seq));
        self.by_id
            .entry(e.id.clone())
            .or_default()
            .insert((e.at_ms, e.seq));
        self.events.insert(e.seq, (e, w));
    }

    fn remove(&mut self, at: u64, seq: u64) -> Event {
        let (e, w) = self.events.remove(&seq).expect("a pooled event");
        self.weight -= w;
        self.by_time.remove(&(at, seq));
        if let Some(set) = self.by_id.get_mut(&e.id) {
            set.remove(&(at, seq));
            if set.is_empty() {
                self.by_id.remove(&e.id);
            }
        }
        e
    }

    /// The closest event of identity `id` within `window` of `at`, the first seen among equals.
    fn take_best(&mut self, id: &Identity, at: u64, window: u64) -> Option<Event> {
        let set = self.by_id.get(id)?;
        let (lo, hi) = (at.saturating_sub(window), at.saturating_add(window));
        // The nearest time at or after `at`, the first seen at it (the set is by time, then seq).
        let after = set.range((at, 0)..=(hi, u64::MAX)).next().copied();
        // The nearest time before `at`, then the first seen at that time.
        let before = set
            .range((lo, 0)..(at, 0))
            .next_back()
            .and_then(|&(t, _)| set.range((t, 0)..).next().copied());
        let best = match (before, after) {
            (Some(b), Some(a)) => {
                let (db, da) = (at - b.0, a.0 - at);
                if db < da || (db == da && b.1 < a.1) {
                    b
                } else {
                    a
                }
            }
            (b, a) => b.or(a)?,
        };
        Some(self.remove(best.0, best.1))
    }

    /// The earliest event, if it lies more than a window before `horizon`.
    fn pop_before(&mut self, horizon: u64, window: u64) -> Option<Event> {
        let &(at, seq) = self.by_time.first()?;
        (at.saturating_add(window) < horizon).then(|| self.remove(at, seq))
    }

    fn pop_earliest(&mut self) -> Option<Event> {
        let &(at, seq) = self.by_time.first()?;
        Some(self.remove(at, seq))
    }
}

/// What the matcher needs next.
pub enum Want {
    Kernel,
    Sensor,
    Nothing,
}

pub struct Matcher {
    window: u64,
    /// [`HELD_MAX`], but for tests.
    budget: usize,
    kernel: Grouper,
    sensor: Grouper,
    kernel_done: bool,
    sensor_done: bool,
    pool: Pool,
    out: Comparison,
}

impl Matcher {
    pub fn new(window_ms: u64, budget: usize) -> Self {
        Matcher {
            window: window_ms,
            budget,
            kernel: Grouper::new(window_ms, true),
            sensor: Grouper::new(window_ms, false),
            kernel_done: false,
            sensor_done: false,
            pool: Pool::default(),
            out: Comparison {
                window_ms,
                ..Comparison::default()
            },
        }
    }

    pub fn wants(&self) -> Want {
        if !self.kernel_done && self.kernel.front_open() {
            Want::Kernel
        } else if !self.sensor_done {
            // The first kernel event waits for the sensor's log to move on (or it has none).
            Want::Sensor
        } else if !self.kernel_done {
            Want::Kernel
        } else {
            Want::Nothing
        }
    }

    pub fn kernel(&mut self, r: Record) {
        self.kernel.push(r);
        self.settle();
    }

    pub fn sensor(&mut self, r: Record) {
        self.sensor.push(r);
        self.settle();
    }

    pub fn kernel_end(&mut self) {
        self.kernel_done = true;
        self.kernel.close(true);
        self.settle();
    }

    pub fn sensor_end(&mut self) {
        self.sensor_done = true;
        self.sensor.close(true);
        self.settle();
    }

    /// Events held, on both sides.
    pub fn held(&self) -> usize {
        self.kernel.len() + self.sensor.len() + self.pool.events.len()
    }

    /// The result, once both logs have ended.
    pub fn finish(mut self) -> Comparison {
        self.settle();
        while let Some(e) = self.pool.pop_earliest() {
            pair_records(&[], &e.records, &mut self.out);
        }
        self.out.late_records.kernel = self.kernel.late;
        self.out.late_records.sensor = self.sensor.late;
        self.out
    }

    /// Finalises every event whose outcome can no longer change, and what is over budget.
    fn settle(&mut self) {
        self.pool_whole_sensor_events();
        // Kernel events, in order, once the sensor's log has moved two windows past them.
        while let Some(at) = self.kernel.front_whole() {
            let reach = at.saturating_add(self.window.saturating_mul(2));
            if !(self.sensor_done || self.sensor.newest > reach) {
                break;
            }
            self.take_kernel_front();
        }
        while self.kernel.weight > self.budget {
            self.kernel.force_front();
            self.take_kernel_front();
            self.out.early_events.kernel += 1;
        }
        // Sensor events no kernel event held or to come can reach.
        let horizon = if self.kernel_done && self.kernel.is_empty() {
            u64::MAX
        } else {
            let oldest = self.kernel.oldest().unwrap_or(u64::MAX);
            oldest.min(self.kernel.newest.saturating_sub(self.window))
        };
        while let Some(e) = self.pool.pop_before(horizon, self.window) {
            pair_records(&[], &e.records, &mut self.out);
        }
        while self.sensor.weight + self.pool.weight > self.budget {
            if let Some(e) = self.pool.pop_earliest() {
                pair_records(&[], &e.records, &mut self.out);
                self.out.early_events.sensor += 1;
            } else if self.sensor.force_oldest() {
                self.pool_whole_sensor_events();
            } else {
                break;
            }
        }
    }

    fn pool_whole_sensor_events(&mut self) {
        while let Some(e) = self.sensor.pop() {
            if let Some(e) = e {
                self.out.sensor_events += 1;
                self.pool.insert(e);
            }
        }
    }

    fn take_kernel_front(&mut self) {
        let Some(k) = self.kernel.pop() else { return };
        let Some(k) = k else { return };
        self.out.kernel_events += 1;
        match self.pool.take_best(&k.id, k.at_ms, self.window) {
            Some(s) => {
                self.out.matched_events += 1;
                pair_records(&k.records, &s.records, &mut self.out);
            }
            None => pair_records(&k.records, &[], &mut self.out),
        }
    }
}
