//! `sensor compare`: what kernel audit saw against what the sensor saw, record type by record
//! type.
//!
//! Matching. Both logs are grouped into events (records sharing a stamp). An event is matched
//! with one of the other side that has the same identity and lies within the time window
//! (default 2 s; both stamps are wall-clock): the closest in time wins. The identity is
//! - for a syscall event: the syscall number, its pid, its exit value and, for execve and
//!   execveat, the name of its first PATH item (a program that execs several candidates in a
//!   row, as `execvp` does, gives one event per candidate);
//! - otherwise: the first record's type and pid, and the `op=` inside a user message's text.
//!
//! Within a matched pair, records are paired by type and order (PATH by `item=`). For each pair,
//! every field the kernel wrote is looked up in the sensor's record (its own extra fields are not
//! compared) and differences are counted with a few examples.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::encode::parse::{group_events, parse_log, ParseError, Record};

pub mod cmd;
pub mod live;
pub mod report;

/// Examples kept per differing field.
const EXAMPLES: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Identity {
    kind: String,
    pid: Vec<u8>,
    detail: Vec<u8>,
}

struct Event {
    id: Identity,
    at_ms: u64,
    records: Vec<Record>,
}

fn field<'a>(r: &'a Record, name: &str) -> &'a [u8] {
    r.get(name.as_bytes()).unwrap_or(b"")
}

fn identity(records: &[Record]) -> Identity {
    if let Some(sc) = records.iter().find(|r| r.rtype == b"SYSCALL") {
        let exec = matches!(field(sc, "syscall"), b"59" | b"322");
        let path0 = records
            .iter()
            .find(|r| exec && r.rtype == b"PATH" && field(r, "item") == b"0")
            .map(|r| field(r, "name").to_vec())
            .unwrap_or_default();
        return Identity {
            kind: format!("syscall {}", String::from_utf8_lossy(field(sc, "syscall"))),
            pid: field(sc, "pid").to_vec(),
            detail: [field(sc, "exit"), b" ", &path0].concat(),
        };
    }
    let first = &records[0];
    let op = field(first, "msg")
        .split(|&b| b == b' ')
        .find(|w| w.starts_with(b"'op=") || w.starts_with(b"op="))
        .unwrap_or(b"")
        .to_vec();
    Identity {
        kind: String::from_utf8_lossy(&first.rtype).into_owned(),
        pid: field(first, "pid").to_vec(),
        detail: op,
    }
}

fn events(text: &[u8]) -> Result<Vec<Event>, ParseError> {
    Ok(group_events(parse_log(text)?)
        .into_iter()
        // The kernel's end-of-event marker carries nothing to compare.
        .map(|recs| {
            recs.into_iter()
                .filter(|r| r.rtype != b"EOE")
                .collect::<Vec<_>>()
        })
        .filter(|recs| !recs.is_empty())
        .map(|records| Event {
            id: identity(&records),
            at_ms: records[0].sec * 1000 + records[0].msec as u64,
            records,
        })
        .collect())
}

/// One field that differed, on one record type.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct FieldDiff {
    pub count: usize,
    /// (kernel value, sensor value or `None` when the sensor's record lacks it).
    pub examples: Vec<(String, Option<String>)>,
}

/// Per record type.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct TypeRow {
    pub kernel: usize,
    pub sensor: usize,
    /// Kernel records with a sensor counterpart.
    pub both: usize,
    pub kernel_only: usize,
    pub sensor_only: usize,
    /// Matched record pairs whose fields were compared, and those with no difference.
    pub compared: usize,
    pub identical: usize,
    pub fields: BTreeMap<String, FieldDiff>,
}

impl TypeRow {
    /// Share of the kernel's records the sensor also has (1 when the kernel has none).
    pub fn coverage(&self) -> f64 {
        if self.kernel == 0 {
            1.0
        } else {
            self.both as f64 / self.kernel as f64
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Comparison {
    pub window_ms: u64,
    pub kernel_events: usize,
    pub sensor_events: usize,
    pub matched_events: usize,
    pub types: BTreeMap<String, TypeRow>,
}

/// Compares a kernel audit log (auditd's RAW or ENRICHED file, or records read from netlink)
/// with the sensor's audit text.
pub fn compare(kernel: &[u8], sensor: &[u8], window_ms: u64) -> Result<Comparison, ParseError> {
    let (theirs, ours) = (events(kernel)?, events(sensor)?);
    let mut by_id: HashMap<&Identity, Vec<usize>> = HashMap::new();
    for (i, e) in ours.iter().enumerate() {
        by_id.entry(&e.id).or_default().push(i);
    }
    let mut taken = vec![false; ours.len()];
    let mut out = Comparison {
        window_ms,
        kernel_events: theirs.len(),
        sensor_events: ours.len(),
        ..Comparison::default()
    };
    for k in &theirs {
        let best = by_id.get(&k.id).and_then(|cands| {
            cands
                .iter()
                .copied()
                .filter(|&i| !taken[i] && ours[i].at_ms.abs_diff(k.at_ms) <= window_ms)
                .min_by_key(|&i| ours[i].at_ms.abs_diff(k.at_ms))
        });
        match best {
            Some(i) => {
                taken[i] = true;
                out.matched_events += 1;
                pair_records(&k.records, &ours[i].records, &mut out.types);
            }
            None => pair_records(&k.records, &[], &mut out.types),
        }
    }
    for (i, s) in ours.iter().enumerate() {
        if !taken[i] {
            pair_records(&[], &s.records, &mut out.types);
        }
    }
    Ok(out)
}

/// Records of one event side by side: by type and order, PATH by item.
fn pair_records(kernel: &[Record], sensor: &[Record], types: &mut BTreeMap<String, TypeRow>) {
    let key = |r: &Record| {
        let item = if r.rtype == b"PATH" {
            field(r, "item")
        } else {
            b""
        };
        (r.rtype.clone(), item.to_vec())
    };
    let mut ours: Vec<Option<&Record>> = sensor.iter().map(Some).collect();
    for k in kernel {
        let row = types
            .entry(String::from_utf8_lossy(&k.rtype).into_owned())
            .or_default();
        row.kernel += 1;
        let found = ours
            .iter_mut()
            .find(|s| s.is_some_and(|s| key(s) == key(k)))
            .and_then(Option::take);
        match found {
            Some(s) => {
                row.sensor += 1;
                row.both += 1;
                compare_fields(k, s, row);
            }
            None => row.kernel_only += 1,
        }
    }
    for s in ours.into_iter().flatten() {
        let row = types
            .entry(String::from_utf8_lossy(&s.rtype).into_owned())
            .or_default();
        row.sensor += 1;
        row.sensor_only += 1;
    }
}

/// One field of a kernel record against the sensor's record of the same type.
pub struct FieldCheck<'a> {
    /// `name`, or `enriched.NAME` for auditd's interpretation after 0x1d.
    pub name: String,
    pub kernel: &'a [u8],
    /// `None` when the sensor's record lacks the field.
    pub sensor: Option<&'a [u8]>,
}

impl FieldCheck<'_> {
    pub fn agrees(&self) -> bool {
        self.sensor == Some(self.kernel)
    }
}

/// Every field the kernel wrote (and auditd's enrichment of it), looked up in the sensor's
/// record; the sensor's own extra fields are not visited.
pub fn check_fields<'a>(kernel: &'a Record, sensor: &'a Record) -> Vec<FieldCheck<'a>> {
    let sides = [
        (&kernel.fields, &sensor.fields, ""),
        (&kernel.enriched, &sensor.enriched, "enriched."),
    ];
    let mut out = Vec::new();
    for (theirs, ours, prefix) in sides {
        for (name, kv) in theirs.iter() {
            out.push(FieldCheck {
                name: format!("{prefix}{}", String::from_utf8_lossy(name)),
                kernel: kv,
                sensor: ours
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_slice()),
            });
        }
    }
    out
}

fn compare_fields(k: &Record, s: &Record, row: &mut TypeRow) {
    row.compared += 1;
    let mut same = true;
    for check in check_fields(k, s).into_iter().filter(|c| !c.agrees()) {
        same = false;
        let diff = row.fields.entry(check.name).or_default();
        diff.count += 1;
        if diff.examples.len() < EXAMPLES {
            diff.examples.push((
                String::from_utf8_lossy(check.kernel).into_owned(),
                check
                    .sensor
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            ));
        }
    }
    row.identical += same as usize;
}

#[cfg(test)]
mod tests;
