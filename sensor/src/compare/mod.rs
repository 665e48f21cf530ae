//! `sensor compare`: what kernel audit saw against what the sensor saw, record type by record
//! type.
//!
//! Matching. Both logs are grouped into events (records sharing a stamp). An event is matched
//! with one of the other side that has the same identity and lies within the time window
//! (default 2 s; both stamps are wall-clock): the closest in time wins, the first seen among
//! equals. The identity is
//! - for a syscall event: the syscall number, its pid, its exit value and, for execve and
//!   execveat, the name of its first PATH item (a program that execs several candidates in a
//!   row, as `execvp` does, gives one event per candidate);
//! - otherwise: the first record's type and pid, and the `op=` inside a user message's text.
//!
//! Within a matched pair, records are paired by type and order (PATH by `item=`). For each pair,
//! every field the kernel wrote is looked up in the sensor's record (its own extra fields are not
//! compared) and differences are counted with a few examples.
//!
//! Both logs are read as streams (`stream.rs`), in the memory of the events one window holds:
//! the result is the one of matching whole logs as long as each is in time order to within the
//! window, as audit logs are. The report's size is bounded too: at most [`MAX_TYPES`] record
//! types, [`MAX_FIELD_ROWS`] differing fields and [`EXAMPLES`] examples of [`EXAMPLE_MAX`] bytes
//! each; what is over goes to an `(other)` row.

use std::{collections::BTreeMap, io::BufRead};

use serde::Serialize;

use crate::{
    encode::parse::{LogError, LogReader, Record},
    event::Syscall,
};

pub mod cmd;
mod group;
pub mod input;
pub mod live;
pub mod report;
mod stream;

/// Examples kept per differing field.
const EXAMPLES: usize = 3;
/// Bytes of a value kept in an example.
pub const EXAMPLE_MAX: usize = 256;
/// Record types counted by name (the catalogue has about 230); more are counted as `(other)`.
pub const MAX_TYPES: usize = 512;
/// Differing fields listed by name over all types; more are counted as `(other)` in their type.
pub const MAX_FIELD_ROWS: usize = 4096;
/// A record type or field name longer than this is counted as `(other)`.
const MAX_NAME: usize = 64;
const OTHER: &str = "(other)";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Identity {
    kind: String,
    pid: Vec<u8>,
    detail: Vec<u8>,
}

struct Event {
    id: Identity,
    at_ms: u64,
    /// Order of first appearance in its log.
    seq: u64,
    records: Vec<Record>,
}

fn field<'a>(r: &'a Record, name: &str) -> &'a [u8] {
    r.get(name.as_bytes()).unwrap_or(b"")
}

/// Whether a SYSCALL record is an execve or execveat, on its own architecture's table.
fn is_exec(sc: &Record) -> bool {
    let num = |name, radix| {
        std::str::from_utf8(field(sc, name))
            .ok()
            .and_then(|v| u32::from_str_radix(v, radix).ok())
    };
    match (num("arch", 16), num("syscall", 10)) {
        (Some(arch), Some(nr)) => Syscall::from_arch(arch, nr)
            .is_some_and(|s| s == Syscall::EXECVE || s == Syscall::EXECVEAT),
        _ => false,
    }
}

fn identity(records: &[Record]) -> Identity {
    if let Some(sc) = records.iter().find(|r| r.rtype == b"SYSCALL") {
        let exec = is_exec(sc);
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
    /// Share of the kernel's records the sensor also has; none when the kernel has none, so a
    /// type only the sensor writes is an extra, never coverage.
    pub fn coverage(&self) -> Option<f64> {
        (self.kernel > 0).then(|| self.both as f64 / self.kernel as f64)
    }
}

/// A count on each side.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Sides {
    pub kernel: u64,
    pub sensor: u64,
}

impl Sides {
    pub fn is_zero(&self) -> bool {
        self.kernel == 0 && self.sensor == 0
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Comparison {
    pub window_ms: u64,
    pub kernel_events: usize,
    pub sensor_events: usize,
    pub matched_events: usize,
    pub types: BTreeMap<String, TypeRow>,
    /// Lines over [`crate::encode::parse::MAX_LINE`], skipped.
    #[serde(skip_serializing_if = "Sides::is_zero")]
    pub long_lines: Sides,
    /// Records more than the window older than the newest before them: their log is not in
    /// time order, and their events were matched among those still held.
    #[serde(skip_serializing_if = "Sides::is_zero")]
    pub late_records: Sides,
    /// Events finalised before their window closed, because the window held more records than
    /// the memory set aside for it (`stream::HELD_MAX`).
    #[serde(skip_serializing_if = "Sides::is_zero")]
    pub early_events: Sides,
    /// Field rows over all types, against [`MAX_FIELD_ROWS`].
    #[serde(skip)]
    field_rows: usize,
}

/// Why two logs could not be compared.
#[derive(Debug, thiserror::Error)]
#[error("the {side} log")]
pub struct CompareError {
    pub side: &'static str,
    #[source]
    pub source: LogError,
}

/// Compares a kernel audit log (auditd's RAW or ENRICHED file, or records read from netlink)
/// with the sensor's audit text, both read as streams.
pub fn compare(
    kernel: impl BufRead,
    sensor: impl BufRead,
    window_ms: u64,
) -> Result<Comparison, CompareError> {
    compare_watched(kernel, sensor, window_ms, stream::HELD_MAX, |_| {})
}

/// [`compare`] with `budget` bytes of records held per side, telling `watch` how many events
/// are held after each record.
fn compare_watched(
    kernel: impl BufRead,
    sensor: impl BufRead,
    window_ms: u64,
    budget: usize,
    mut watch: impl FnMut(usize),
) -> Result<Comparison, CompareError> {
    let err = |side| move |source| CompareError { side, source };
    let (mut kernel, mut sensor) = (LogReader::new(kernel), LogReader::new(sensor));
    let mut m = stream::Matcher::new(window_ms, budget);
    loop {
        match m.wants() {
            stream::Want::Kernel => match kernel.next() {
                Some(r) => m.kernel(r.map_err(err("audit"))?),
                None => m.kernel_end(),
            },
            stream::Want::Sensor => match sensor.next() {
                Some(r) => m.sensor(r.map_err(err("sensor"))?),
                None => m.sensor_end(),
            },
            stream::Want::Nothing => break,
        }
        watch(m.held());
    }
    let mut out = m.finish();
    out.long_lines = Sides {
        kernel: kernel.long_lines,
        sensor: sensor.long_lines,
    };
    Ok(out)
}

/// The row of a record type: `(other)` past [`MAX_TYPES`] names or for an overlong one.
fn row<'a>(types: &'a mut BTreeMap<String, TypeRow>, rtype: &[u8]) -> &'a mut TypeRow {
    let name = String::from_utf8_lossy(rtype);
    let known = types.contains_key(name.as_ref());
    let key = if known || (rtype.len() <= MAX_NAME && types.len() < MAX_TYPES) {
        name.into_owned()
    } else {
        OTHER.to_string()
    };
    types.entry(key).or_default()
}

/// Records of one event side by side: by type and order, PATH by item.
fn pair_records(kernel: &[Record], sensor: &[Record], out: &mut Comparison) {
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
        let found = ours
            .iter_mut()
            .find(|s| s.is_some_and(|s| key(s) == key(k)))
            .and_then(Option::take);
        match found {
            Some(s) => compare_fields(k, s, out),
            None => {
                let row = row(&mut out.types, &k.rtype);
                row.kernel += 1;
                row.kernel_only += 1;
            }
        }
    }
    for s in ours.into_iter().flatten() {
        let row = row(&mut out.types, &s.rtype);
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

/// A matched pair of records of one type.
fn compare_fields(k: &Record, s: &Record, out: &mut Comparison) {
    let rows = &mut out.field_rows;
    let row = row(&mut out.types, &k.rtype);
    row.kernel += 1;
    row.sensor += 1;
    row.both += 1;
    row.compared += 1;
    let mut same = true;
    for check in check_fields(k, s).into_iter().filter(|c| !c.agrees()) {
        same = false;
        let known = row.fields.contains_key(&check.name);
        let name = if known || (check.name.len() <= MAX_NAME && *rows < MAX_FIELD_ROWS) {
            check.name
        } else {
            OTHER.to_string()
        };
        let diff = row.fields.entry(name).or_insert_with(|| {
            *rows += 1;
            FieldDiff::default()
        });
        diff.count += 1;
        if diff.examples.len() < EXAMPLES {
            diff.examples
                .push((example(check.kernel), check.sensor.map(example)));
        }
    }
    row.identical += same as usize;
}

/// A value as an example: its first [`EXAMPLE_MAX`] bytes.
fn example(v: &[u8]) -> String {
    match v.get(..EXAMPLE_MAX) {
        Some(head) if v.len() > EXAMPLE_MAX => format!("{}…", String::from_utf8_lossy(head)),
        _ => String::from_utf8_lossy(v).into_owned(),
    }
}

#[cfg(test)]
mod tests;
