//! Helpers of the golden-line tests: expected ENRICHED lines from auditd, turned into what the
//! sensor writes.

/// `extra` where the sensor puts its own fields: after auditd's, before the separator.
pub fn insert(line: &str, extra: &str) -> String {
    match line.find('\x1d') {
        Some(i) => format!("{}{extra}{}", &line[..i], &line[i..]),
        None => format!("{line}{extra}"),
    }
}

/// The RAW form of an ENRICHED line.
pub fn raw(line: &str) -> &str {
    line.split('\x1d').next().unwrap()
}
