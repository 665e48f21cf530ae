//! The catalogue of audit message types: every number the kernel header or libaudit defines,
//! its name, who emits it and when (`catalog/types.tsv`, transcribed from the reviewed
//! `shared/reference/audit-types.md`). Record names written by the encoders come from here.

use std::{borrow::Cow, sync::LazyLock};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TypeInfo {
    pub number: u32,
    pub name: &'static str,
    /// Defined by the kernel's `include/uapi/linux/audit.h`.
    pub in_kernel_header: bool,
    /// In libaudit 3.0.9's table, so auditd prints the name (else `UNKNOWN[n]`).
    pub in_libaudit: bool,
    /// The block of numbers it belongs to, as the reference groups them.
    pub range: &'static str,
    pub emitter: &'static str,
    pub when: &'static str,
    pub note: &'static str,
    /// What the sensor does with it: `captured: how`, `synthesized: which rule`, or
    /// `not covered: why`.
    pub sensor: &'static str,
}

const TABLE: &str = include_str!("types.tsv");

static TYPES: LazyLock<Vec<TypeInfo>> = LazyLock::new(|| parse(TABLE));

fn parse(text: &'static str) -> Vec<TypeInfo> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("number\t") && !l.is_empty())
        .map(|line| {
            let c: Vec<&'static str> = line.split('\t').collect();
            assert_eq!(c.len(), 9, "catalog line: {line}");
            TypeInfo {
                number: c[0].parse().expect("catalog number"),
                name: c[1],
                in_kernel_header: c[2] == "yes",
                in_libaudit: c[3] == "yes",
                range: c[4],
                emitter: c[5],
                when: c[6],
                note: c[7],
                sensor: c[8],
            }
        })
        .collect()
}

pub fn all() -> &'static [TypeInfo] {
    &TYPES
}

pub fn by_number(number: u32) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.number == number)
}

/// A type by name (`ANOM_LOGIN_LOCATION`, any case) or number.
pub fn find(key: &str) -> Option<&'static TypeInfo> {
    match key.parse::<u32>() {
        Ok(n) => by_number(n),
        Err(_) => TYPES.iter().find(|t| t.name.eq_ignore_ascii_case(key)),
    }
}

/// What auditd 3.0.9 prints after `type=`: libaudit's name, or `UNKNOWN[n]`.
pub fn record_name(number: u32) -> Cow<'static, str> {
    match by_number(number) {
        Some(t) if t.in_libaudit => Cow::Borrowed(t.name),
        _ => Cow::Owned(format!("UNKNOWN[{number}]")),
    }
}

#[cfg(test)]
mod tests;
