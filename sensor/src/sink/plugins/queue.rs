//! One plugin's queue: the pipeline puts events in without ever waiting, the plugin's writer
//! thread takes them out. Bounded as auditd bounds its dispatcher queue, by `q_depth` records,
//! and by the bytes auditd would hold for as many (`q_depth` event_t of 8986 bytes, at most
//! 64 MiB), so a plugin that stops reading costs a known amount of memory; what does not fit is
//! handled by `overflow_action` and counted.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    time::Duration,
};

use super::{frame::DATA_LEN, Overflow};

/// auditd's QUEUE_FULL_LIMIT: how many times `syslog` says an event was dropped.
const FULL_REPORTS: u32 = 5;
/// Bytes one plugin's queue holds at most, whatever `q_depth` says (auditd's largest, 99999
/// records of 8986 bytes, would be 900 MB).
const MAX_BYTES: usize = 64 << 20;

pub struct Item {
    pub bytes: Arc<[u8]>,
    pub records: usize,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    records: usize,
    bytes: usize,
    q_depth: usize,
    action: Option<Overflow>,
    /// `suspend` fired: nothing more is queued until a reload.
    suspended: bool,
    full_reports: u32,
    /// The plugin is stopping: the writer empties the queue, then ends.
    closing: bool,
    /// A reload asked for the plugin to be sent SIGHUP.
    hup: bool,
}

/// What the writer thread is told when it wakes.
pub enum Next {
    Item(Item),
    Hup,
    /// Nothing within the wait: the writer looks after its child and waits again.
    Idle,
    /// Stopping, and the queue is empty.
    Closed,
}

#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    /// Events this plugin could not take, since start.
    pub unwritten: AtomicU64,
}

impl Queue {
    pub fn new(q_depth: usize, action: Overflow) -> Arc<Queue> {
        let q = Queue::default();
        q.configure(q_depth, action);
        Arc::new(q)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not stop the pipeline: the state stays consistent per call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// New auditd.conf values (a reload): auditd only ever grows its queue, and a reload ends
    /// `suspend` and restarts the reports.
    pub fn configure(&self, q_depth: usize, action: Overflow) {
        let mut s = self.lock();
        s.q_depth = s.q_depth.max(q_depth.max(1));
        s.action = Some(action);
        s.suspended = false;
        s.full_reports = 0;
    }

    /// Queues an event without waiting; `false` when it was dropped (and counted).
    pub fn push(&self, name: &str, item: Item) -> bool {
        let mut s = self.lock();
        let fits = s.records + item.records <= s.q_depth
            && s.bytes + item.bytes.len() <= (s.q_depth * (DATA_LEN + 16)).min(MAX_BYTES);
        if s.closing || s.suspended || !fits {
            if !fits && !s.suspended && !s.closing {
                overflow(&mut s, name);
            }
            drop(s);
            self.unwritten.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        s.records += item.records;
        s.bytes += item.bytes.len();
        s.items.push_back(item);
        drop(s);
        self.ready.notify_one();
        true
    }

    /// Waits up to `wait` for something to do.
    pub fn next(&self, wait: Duration) -> Next {
        let mut s = self.lock();
        if s.items.is_empty() && !s.closing && !s.hup {
            s = self
                .ready
                .wait_timeout(s, wait)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if std::mem::take(&mut s.hup) {
            return Next::Hup;
        }
        match s.items.pop_front() {
            Some(item) => {
                s.records -= item.records;
                s.bytes -= item.bytes.len();
                Next::Item(item)
            }
            None if s.closing => Next::Closed,
            None => Next::Idle,
        }
    }

    /// Whether a SIGHUP is waiting to be passed on (the writer looks while a write waits).
    pub fn take_hup(&self) -> bool {
        std::mem::take(&mut self.lock().hup)
    }

    pub fn hup(&self) {
        self.lock().hup = true;
        self.ready.notify_one();
    }

    pub fn close(&self) {
        self.lock().closing = true;
        self.ready.notify_one();
    }

    /// Drops what is queued, counting it (the plugin is gone for good, or stopping ran out of
    /// time); later pushes are counted too.
    pub fn discard(&self) {
        let mut s = self.lock();
        let n = s.items.len() as u64;
        s.items.clear();
        s.records = 0;
        s.bytes = 0;
        s.closing = true;
        drop(s);
        self.unwritten.fetch_add(n, Ordering::Relaxed);
    }
}

fn overflow(s: &mut State, name: &str) {
    match s.action.unwrap_or(Overflow::Syslog) {
        Overflow::Ignore => {}
        Overflow::Suspend => {
            eprintln!("sensor: plugin {name}: its queue is full; no more events are sent to it until a reload (SIGHUP), and they are counted as unwritten");
            s.suspended = true;
        }
        Overflow::Syslog | Overflow::Single | Overflow::Halt => {
            if s.full_reports < FULL_REPORTS {
                s.full_reports += 1;
                eprintln!(
                    "sensor: plugin {name}: its queue of {} records is full, dropping an event (counted as unwritten){}",
                    s.q_depth,
                    if s.full_reports == FULL_REPORTS {
                        "; reporting limit reached, ending dropped event notifications"
                    } else {
                        ""
                    }
                );
            }
        }
    }
}
