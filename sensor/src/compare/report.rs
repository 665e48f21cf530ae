//! The comparison as a readable table, Markdown, or JSON.

use std::fmt::Write;

use super::{Comparison, TypeRow};

/// The coverage column: a percentage of the kernel's records, or `extra` for records of a type
/// the kernel did not write at all.
fn pct(r: &TypeRow) -> String {
    match r.coverage() {
        Some(x) => format!("{:.1}%", x * 100.0),
        None if r.sensor > 0 => "extra".into(),
        None => "-".into(),
    }
}

/// One line naming the types only the sensor wrote, with their counts.
fn extras(c: &Comparison) -> Option<String> {
    let list: Vec<String> = c
        .types
        .iter()
        .filter(|(_, r)| r.kernel == 0 && r.sensor > 0)
        .map(|(t, r)| format!("{t} {}", r.sensor))
        .collect();
    (!list.is_empty()).then(|| {
        format!(
            "extras (types the kernel did not write, not counted as coverage): {}",
            list.join(", ")
        )
    })
}

/// A plain-text table per record type, then every differing field with examples.
pub fn table(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "events: kernel {}, sensor {}, matched {} (window {} ms)\n",
        c.kernel_events, c.sensor_events, c.matched_events, c.window_ms
    );
    let _ = writeln!(
        s,
        "{:<22} {:>8} {:>8} {:>8} {:>12} {:>12} {:>9} {:>10}",
        "type", "kernel", "sensor", "both", "kernel only", "sensor only", "coverage", "identical"
    );
    for (t, r) in &c.types {
        let _ = writeln!(
            s,
            "{t:<22} {:>8} {:>8} {:>8} {:>12} {:>12} {:>9} {:>10}",
            r.kernel,
            r.sensor,
            r.both,
            r.kernel_only,
            r.sensor_only,
            pct(r),
            format!("{}/{}", r.identical, r.compared)
        );
    }
    if let Some(line) = extras(c) {
        let _ = writeln!(s, "\n{line}");
    }
    for (t, r) in c.types.iter().filter(|(_, r)| !r.fields.is_empty()) {
        let _ = writeln!(s, "\n{t}: fields that differ in matched records");
        for (f, d) in &r.fields {
            let _ = writeln!(s, "  {f}: {} of {}", d.count, r.compared);
            for (k, v) in &d.examples {
                let v = v.as_deref().unwrap_or("(absent)");
                let _ = writeln!(s, "    kernel {k} | sensor {v}");
            }
        }
    }
    s
}

/// The same as Markdown, for pasting into a report.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Events: kernel {}, sensor {}, matched {} (window {} ms).\n",
        c.kernel_events, c.sensor_events, c.matched_events, c.window_ms
    );
    s.push_str(
        "| type | kernel | sensor | both | kernel only | sensor only | coverage | identical |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (t, r) in &c.types {
        let _ = writeln!(
            s,
            "| {t} | {} | {} | {} | {} | {} | {} | {}/{} |",
            r.kernel,
            r.sensor,
            r.both,
            r.kernel_only,
            r.sensor_only,
            pct(r),
            r.identical,
            r.compared
        );
    }
    if let Some(line) = extras(c) {
        let _ = writeln!(s, "\n{}.", line.replacen("extras", "Extras", 1));
    }
    let diffs: Vec<_> = c
        .types
        .iter()
        .filter(|(_, r)| !r.fields.is_empty())
        .collect();
    if !diffs.is_empty() {
        s.push_str(
            "\n| type | field | differs | example (kernel → sensor) |\n|---|---|---:|---|\n",
        );
        for (t, r) in diffs {
            for (f, d) in &r.fields {
                let ex = d
                    .examples
                    .first()
                    .map(|(k, v)| format!("`{k}` → `{}`", v.as_deref().unwrap_or("(absent)")))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "| {t} | {f} | {} of {} | {} |",
                    d.count,
                    r.compared,
                    ex.replace('|', "\\|")
                );
            }
        }
    }
    s
}

pub fn json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).expect("the comparison serialises")
}
