//! The comparison as a readable table, Markdown, or JSON.

use std::fmt::Write;

use super::Comparison;

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
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
            pct(r.coverage()),
            format!("{}/{}", r.identical, r.compared)
        );
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
            pct(r.coverage()),
            r.identical,
            r.compared
        );
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
