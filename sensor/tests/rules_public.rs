//! Issue 13: a public best-practice audit.rules (Florian Roth's, see `tests/data/README.md`:
//! several hundred lines of exec watches, file watches and syscall rules) gets one verdict per line
//! from `sensor rules check`, and an error exactly where auditctl itself refuses the line on this
//! host (a watch under a missing directory, an unknown user, a malformed line). The kernel's rules
//! and settings are left as they were found, also when the test fails half-way.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    process::{Command, Output},
    time::Instant,
};

use common::{exclusive, scratch};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/best-practice.rules"
);

/// A line's words as `auditctl -R` splits them: at spaces only (a tab is part of a word).
fn words(line: &str) -> Vec<&str> {
    line.split(' ').filter(|w| !w.is_empty()).collect()
}

fn auditctl(args: &[&str]) -> Output {
    Command::new("auditctl")
        .args(args)
        .output()
        .expect("auditctl (Debian package auditd) is installed")
}

fn listing() -> String {
    String::from_utf8_lossy(&auditctl(&["-l"]).stdout).into_owned()
}

/// The kernel settings `auditctl -s` reports that the test must leave as found (not the counters).
fn settings() -> Vec<String> {
    let keep = [
        "enabled ",
        "failure ",
        "rate_limit ",
        "backlog_limit ",
        "backlog_wait_time ",
        "loginuid_immutable ",
    ];
    String::from_utf8_lossy(&auditctl(&["-s"]).stdout)
        .lines()
        .filter(|l| keep.iter().any(|k| l.starts_with(k)))
        .map(str::to_string)
        .collect()
}

/// The kernel's rules as `auditctl -l` listed them, loaded again on drop, so a failed assertion
/// does not leave the best-practice set (or nothing) in the host's kernel.
struct KernelRules(String);

impl Drop for KernelRules {
    fn drop(&mut self) {
        let _ = auditctl(&["-D"]);
        for line in self.0.lines().filter(|l| l.starts_with('-')) {
            let _ = auditctl(&words(line));
        }
    }
}

#[test]
fn a_public_best_practice_set_gets_a_verdict_per_line_and_errors_where_auditctl_refuses() {
    let _g = exclusive();
    let started = Instant::now();
    let text = std::fs::read_to_string(RULES).unwrap();
    // Split at '\n' only, as auditctl's fgets does (`lines()` would also eat a '\r').
    let lines: Vec<&str> = text.split('\n').collect();
    // The lines auditctl -R acts on: not blank, first word not a comment. 1-based numbers.
    let rule_lines: Vec<(usize, &str)> = (1..=lines.len())
        .map(|n| (n, lines[n - 1]))
        .filter(|(_, l)| words(l).first().is_some_and(|w| !w.starts_with('#')))
        .collect();
    assert!(rule_lines.len() > 300, "{} rule lines", rule_lines.len());

    // Without `-i` the sensor, as auditctl -R, stops at the first error and calls every later
    // line not-loaded. A copy with `-i` on a line of its own first (auditctl -R -i: report the
    // error, skip the line, go on) gives every line its own verdict whatever the file says, at
    // the cost of numbering its lines one more than the file's.
    let dir = scratch("rules-public");
    let copy = dir.join("best-practice.rules");
    std::fs::write(&copy, format!("-i\n{text}")).unwrap();
    let check = Command::new(common::sensor_bin())
        .args(["rules", "check", "--json"])
        .arg(&copy)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&check.stderr);
    let verdicts: Vec<serde_json::Value> = serde_json::from_slice(&check.stdout)
        .unwrap_or_else(|e| panic!("rules check --json: {e}: {stderr}"));
    // The file's line number -> (status, reason).
    let mut sensor: BTreeMap<usize, (String, String)> = BTreeMap::new();
    for v in &verdicts {
        let n = v["line"].as_u64().unwrap() as usize - 1;
        if n == 0 {
            continue; // the `-i` put first
        }
        let status = v["status"].as_str().unwrap().to_string();
        let reason = v["reason"].as_str().unwrap_or("").to_string();
        assert_eq!(v["text"].as_str(), lines.get(n - 1).copied(), "line {n}");
        assert!(
            sensor.insert(n, (status, reason)).is_none(),
            "line {n}: two verdicts"
        );
    }
    let with_verdict: Vec<usize> = sensor.keys().copied().collect();
    let want: Vec<usize> = rule_lines.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        with_verdict, want,
        "one verdict per rule line, none for blanks or comments"
    );
    let errors: BTreeSet<usize> = sensor
        .iter()
        .filter(|(_, v)| v.0 == "error")
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        check.status.code(),
        Some(if errors.is_empty() { 0 } else { 1 }),
        "{stderr}"
    );

    // auditctl on this host, line by line, cumulatively from an empty list, as `auditctl -R -i`
    // loads the file: a line repeating one already loaded is refused ("Rule exists") there too.
    // Only lines that change the rule list are sent (-a, -A, -w, -W and -D, which deletes only
    // rules, put back below); the settings lines (-b, -f, -e, -r, -i, --backlog_wait_time,
    // --loginuid-immutable, which locks until reboot, ...) would change the host's audit
    // settings, `-e 2` even lock them, so they are counted as accepted and listed below.
    let found = settings();
    assert!(
        !found.iter().any(|l| l == "enabled 2"),
        "kernel audit is locked (-e 2) until reboot: its rules cannot be changed"
    );
    let restore = KernelRules(listing());
    let saved = restore.0.clone();
    let cleared = auditctl(&["-D"]);
    assert!(cleared.status.success(), "auditctl -D: {cleared:?}");
    let mut refused: BTreeMap<usize, String> = BTreeMap::new();
    let mut not_sent = Vec::new();
    for (n, line) in &rule_lines {
        let args = words(line);
        if !["-a", "-A", "-w", "-W", "-D"].contains(&args[0]) {
            not_sent.push(format!("{n}: {line}"));
            continue;
        }
        let out = auditctl(&args);
        if !out.status.success() {
            // Its own message(s), without the trailer every failure ends with.
            let said: Vec<String> = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.starts_with("There was an error"))
                .map(str::to_string)
                .collect();
            refused.insert(*n, said.join(" / "));
        }
    }
    drop(restore);
    let (listed_after, settings_after) = (listing(), settings());

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (status, _) in sensor.values() {
        *counts.entry(status).or_default() += 1;
    }
    eprintln!("{:<28} {:>5}", "rule lines", rule_lines.len());
    for (status, count) in &counts {
        eprintln!("{:<28} {count:>5}", format!("sensor {status}"));
    }
    eprintln!("{:<28} {:>5}", "auditctl refused", refused.len());
    eprintln!("{:<28} {:>5}", "not sent (settings)", not_sent.len());
    for line in &not_sent {
        eprintln!("  not sent {line}");
    }
    for (n, said) in &refused {
        let (status, reason) = &sensor[n];
        let same = if said.contains(reason.as_str()) {
            "same"
        } else {
            "DIFFERS"
        };
        eprintln!("  {n}: auditctl: {said} | sensor {status} ({same}): {reason}");
    }
    let auditctl_refused: BTreeSet<usize> = refused.keys().copied().collect();
    for n in errors.symmetric_difference(&auditctl_refused) {
        let (status, reason) = &sensor[n];
        let said = refused.get(n).map_or("accepted", String::as_str);
        eprintln!(
            "DISAGREE line {n}: {}\n  auditctl: {said}\n  sensor: {status}: {reason}",
            lines[n - 1]
        );
    }
    eprintln!("took {:.1?}", started.elapsed());

    assert_eq!(
        listed_after, saved,
        "the kernel's rules are put back as they were"
    );
    assert_eq!(settings_after, found, "the kernel's settings are untouched");
    assert_eq!(
        errors, auditctl_refused,
        "lines the sensor calls errors = lines auditctl refuses"
    );
}
