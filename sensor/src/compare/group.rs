//! One log's records grouped into events by stamp as they stream in: an event is whole once the
//! log has moved a window past it (see `stream.rs` for the order this assumes).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{identity, Event};
use crate::encode::parse::Record;

type Stamp = (u64, u32, u64);

/// The time of a record, in ms (saturating: a hostile stamp cannot overflow).
fn at_ms(r: &Record) -> u64 {
    r.sec.saturating_mul(1000).saturating_add(u64::from(r.msec))
}

/// An estimate of a parsed record's heap bytes: its text, and a vector pair per field.
pub(super) fn weight(r: &Record) -> usize {
    let fields =
        |f: &[(Vec<u8>, Vec<u8>)]| f.iter().map(|(k, v)| k.len() + v.len() + 80).sum::<usize>();
    160 + r.rtype.len()
        + r.node.as_ref().map_or(0, Vec::len)
        + fields(&r.fields)
        + fields(&r.enriched)
}

struct Pending {
    stamp: Stamp,
    at_ms: u64,
    records: Vec<Record>,
    weight: usize,
    /// Whole a window after this: the event's own time, as no record of it comes later than a
    /// window after it; for an event that started late (its log out of order), the newest time
    /// when its last record came, so that its other records still join it.
    touched: u64,
    late: bool,
    open: bool,
}

/// One log's records grouped into events by stamp.
pub(super) struct Grouper {
    window: u64,
    /// Hand events out in order of first appearance (the kernel's side), or as they are whole.
    in_order: bool,
    next_seq: u64,
    /// The newest record time seen, in ms.
    pub(super) newest: u64,
    /// Events not handed out yet, by order of first appearance.
    events: BTreeMap<u64, Pending>,
    open: HashMap<Stamp, u64>,
    /// Open events by `touched`, to close them.
    touched: BTreeSet<(u64, u64)>,
    /// Whole events, when not handed out in order.
    ready: Vec<u64>,
    /// Times of the events held (a multiset): the oldest bounds what may still match.
    times: BTreeMap<u64, usize>,
    pub(super) weight: usize,
    pub(super) late: u64,
}

impl Grouper {
    pub(super) fn new(window: u64, in_order: bool) -> Self {
        Grouper {
            window,
            in_order,
            next_seq: 0,
            newest: 0,
            events: BTreeMap::new(),
            open: HashMap::new(),
            touched: BTreeSet::new(),
            ready: Vec::new(),
            times: BTreeMap::new(),
            weight: 0,
            late: 0,
        }
    }

    pub(super) fn push(&mut self, r: Record) {
        let at = at_ms(&r);
        let late = at.saturating_add(self.window) < self.newest;
        self.late += u64::from(late);
        self.newest = self.newest.max(at);
        let seq = match self.open.get(&r.event_key()) {
            Some(&seq) => seq,
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.open.insert(r.event_key(), seq);
                self.events.insert(
                    seq,
                    Pending {
                        stamp: r.event_key(),
                        at_ms: at,
                        records: Vec::new(),
                        weight: 0,
                        touched: if late { self.newest } else { at },
                        late,
                        open: true,
                    },
                );
                self.touched.insert((self.events[&seq].touched, seq));
                *self.times.entry(at).or_default() += 1;
                seq
            }
        };
        let e = self.events.get_mut(&seq).expect("an open event is held");
        if e.late {
            self.touched.remove(&(e.touched, seq));
            e.touched = self.newest;
            self.touched.insert((e.touched, seq));
        }
        // The kernel's end-of-event marker carries nothing to compare; its event may be empty.
        if r.rtype != b"EOE" {
            let w = weight(&r);
            e.weight += w;
            self.weight += w;
            e.records.push(r);
        }
        self.close(false);
    }

    /// Closes the events a window behind the newest record (all of them at the end).
    pub(super) fn close(&mut self, all: bool) {
        while let Some(&(touched, seq)) = self.touched.first() {
            if !all && touched.saturating_add(self.window) >= self.newest {
                break;
            }
            self.close_one(touched, seq);
        }
    }

    fn close_one(&mut self, touched: u64, seq: u64) {
        self.touched.remove(&(touched, seq));
        let e = self.events.get_mut(&seq).expect("an open event is held");
        e.open = false;
        self.open.remove(&e.stamp);
        if !self.in_order {
            self.ready.push(seq);
        }
    }

    /// The first event not handed out, when it is whole: its time.
    pub(super) fn front_whole(&self) -> Option<u64> {
        self.events
            .first_key_value()
            .filter(|(_, e)| !e.open)
            .map(|(_, e)| e.at_ms)
    }

    /// The first event not handed out is still open (or there is none).
    pub(super) fn front_open(&self) -> bool {
        self.events.first_key_value().is_none_or(|(_, e)| e.open)
    }

    /// Closes the first event now, whole or not.
    pub(super) fn force_front(&mut self) {
        if let Some((&seq, e)) = self.events.first_key_value() {
            if e.open {
                self.close_one(e.touched, seq);
            }
        }
    }

    /// Closes the open event touched longest ago.
    pub(super) fn force_oldest(&mut self) -> bool {
        match self.touched.first() {
            Some(&(touched, seq)) => {
                self.close_one(touched, seq);
                true
            }
            None => false,
        }
    }

    /// The next whole event (in order, or any), `None` for none yet. An event of EOE alone is
    /// handed out as `Some(None)`.
    pub(super) fn pop(&mut self) -> Option<Option<Event>> {
        let seq = if self.in_order {
            let (&seq, e) = self.events.first_key_value()?;
            if e.open {
                return None;
            }
            seq
        } else {
            self.ready.pop()?
        };
        let e = self.events.remove(&seq).expect("a whole event is held");
        self.weight -= e.weight;
        if let Some(n) = self.times.get_mut(&e.at_ms) {
            *n -= 1;
            if *n == 0 {
                self.times.remove(&e.at_ms);
            }
        }
        Some((!e.records.is_empty()).then(|| Event {
            id: identity(&e.records),
            at_ms: e.at_ms,
            seq,
            records: e.records,
        }))
    }

    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub(super) fn oldest(&self) -> Option<u64> {
        self.times.first_key_value().map(|(&t, _)| t)
    }
}
