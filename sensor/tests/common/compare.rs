//! Field-by-field comparison of the sensor's records with the kernel's, for the tests that run
//! both: every field the kernel wrote (and auditd's enrichment of it) must be in the sensor's
//! record with the same value; the sensor's own fields come after and are not compared.

use std::collections::BTreeMap;

use sensor::{
    compare::check_fields,
    encode::parse::{group_events, parse_log, Record},
};

/// Kernel fields the sensor does not write, and why: where the kernel writes one, the table
/// lists it apart instead of failing.
pub const LISTED: &[(&str, &str)] = &[(
    "subj",
    "the task's LSM label (AppArmor's, on Debian's 6.1): the sensor reads no LSM label",
)];

/// Per `TYPE.field`: how many scenarios agreed, and a line per disagreement.
#[derive(Default)]
pub struct FieldTable {
    rows: BTreeMap<String, (usize, Vec<String>)>,
}

impl FieldTable {
    pub fn compare(&mut self, scenario: &str, kernel: &Record, sensor: &Record) {
        let rtype = String::from_utf8_lossy(&kernel.rtype).into_owned();
        // A listed field the kernel wrote and the sensor did not: shown, never a failure.
        let mut kernel = kernel.clone();
        for (field, why) in LISTED {
            let absent = !sensor.fields.iter().any(|(n, _)| n == field.as_bytes());
            if absent && kernel.fields.iter().any(|(n, _)| n == field.as_bytes()) {
                kernel.fields.retain(|(n, _)| n != field.as_bytes());
                kernel.enriched.retain(|(n, _)| n != field.as_bytes());
                self.rows
                    .entry(format!("{rtype}.{field} (listed: {why})"))
                    .or_default()
                    .0 += 1;
            }
        }
        let kernel = &kernel;
        for check in check_fields(kernel, sensor) {
            let row = self
                .rows
                .entry(format!("{rtype}.{}", check.name))
                .or_default();
            if check.agrees() {
                row.0 += 1;
            } else {
                row.1.push(format!(
                    "{scenario}: kernel {:?} | sensor {:?}",
                    String::from_utf8_lossy(check.kernel),
                    check.sensor.map(String::from_utf8_lossy)
                ));
            }
        }
        // The kernel's fields are a prefix of the sensor's, in the same order.
        let names = |r: &Record| r.fields.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let (k, s) = (names(kernel), names(sensor));
        let row = self
            .rows
            .entry(format!("{rtype}.(field order)"))
            .or_default();
        if s.get(..k.len()) == Some(&k[..]) {
            row.0 += 1;
        } else {
            row.1
                .push(format!("{scenario}: kernel {k:?} | sensor {s:?}"));
        }
    }

    /// Prints the table and fails the test when any field differs.
    pub fn print_and_assert(&self) {
        println!("{:<40} {:>7} {:>7}", "record.field", "agreed", "differ");
        for (f, (agreed, diffs)) in &self.rows {
            println!("{f:<40} {agreed:>7} {:>7}", diffs.len());
            for d in diffs {
                println!("    {d}");
            }
        }
        let differing: Vec<&String> = self
            .rows
            .iter()
            .filter(|(_, (_, d))| !d.is_empty())
            .map(|(k, _)| k)
            .collect();
        assert!(differing.is_empty(), "fields differ: {differing:?}");
    }
}

/// The events of an audit log (records grouped by stamp) that contain a record of `rtype`.
pub fn events_with(text: &[u8], rtype: &[u8]) -> Vec<Vec<Record>> {
    group_events(parse_log(text).unwrap())
        .into_iter()
        .filter(|ev| ev.iter().any(|r| r.rtype == rtype))
        .collect()
}

/// The record of `rtype` in an event.
pub fn record<'a>(event: &'a [Record], rtype: &[u8]) -> Option<&'a Record> {
    event.iter().find(|r| r.rtype == rtype)
}
