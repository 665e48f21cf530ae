//! Kernel anomaly records written from eBPF, checked against what the kernel itself writes with
//! audit enabled. ANOM_ABEND: a core-dumping signal other than SIGQUIT kills a task.

mod common;

use std::{collections::BTreeMap, process::Command, time::Duration};

use common::{auditd::Auditd, exclusive, scratch, Sensor};
use sensor::encode::parse::{parse_log, Record};

/// `sh -c 'kill -SIG $$'`: the shell kills itself; returns its pid.
fn die_by(sig: &str) -> u32 {
    let mut child = Command::new("/bin/sh")
        .args(["-c", &format!("kill -{sig} $$")])
        .spawn()
        .unwrap();
    let pid = child.id();
    let _ = child.wait();
    pid
}

fn abends(text: &[u8]) -> Vec<Record> {
    parse_log(text)
        .unwrap()
        .into_iter()
        .filter(|r| r.rtype == b"ANOM_ABEND")
        .collect()
}

const FIELDS: &[&str] = &[
    "auid", "uid", "gid", "ses", "pid", "comm", "exe", "sig", "res",
];

#[test]
fn abend_records_agree_with_the_kernel() {
    let _g = exclusive();
    let dir = scratch("abend");
    let log = dir.join("sensor.log");
    let auditd = Auditd::start(&[]);
    let sensor = Sensor::start(&["--output", &format!("enriched:{}", log.display())]);
    let reported: Vec<(&str, u32)> = vec![
        ("SEGV", die_by("SEGV")),
        ("ABRT", die_by("ABRT")),
        ("BUS", die_by("BUS")),
    ];
    // Near misses: SIGQUIT dumps core but the kernel skips it; SIGKILL and SIGTERM do not dump.
    let silent: Vec<(&str, u32)> = vec![
        ("QUIT", die_by("QUIT")),
        ("KILL", die_by("KILL")),
        ("TERM", die_by("TERM")),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let last_pid = reported.last().unwrap().1.to_string();
    let kernel_log = dir.join("auditd.log");
    let kernel = auditd.collect(&kernel_log, |t| {
        abends(t)
            .iter()
            .any(|r| r.get(b"pid") == Some(last_pid.as_bytes()))
    });
    drop(auditd);

    let ours = abends(&std::fs::read(&log).unwrap());
    let theirs = abends(&kernel);
    let by_pid = |recs: &[Record], pid: u32| {
        recs.iter()
            .find(|r| r.get(b"pid") == Some(pid.to_string().as_bytes()))
            .cloned()
    };
    let mut table: BTreeMap<&str, (usize, Vec<String>)> = BTreeMap::new();
    for (sig, pid) in &reported {
        let k = by_pid(&theirs, *pid)
            .unwrap_or_else(|| panic!("the kernel wrote no ANOM_ABEND for SIG{sig}"));
        let s = by_pid(&ours, *pid)
            .unwrap_or_else(|| panic!("the sensor wrote no ANOM_ABEND for SIG{sig}"));
        for f in FIELDS {
            let (kv, sv) = (k.get(f.as_bytes()), s.get(f.as_bytes()));
            let row = table.entry(f).or_default();
            if kv == sv {
                row.0 += 1;
            } else {
                row.1.push(format!(
                    "SIG{sig}: kernel {:?} | sensor {:?}",
                    kv.map(String::from_utf8_lossy),
                    sv.map(String::from_utf8_lossy)
                ));
            }
        }
        // auditd's enrichment, too.
        assert_eq!(k.enriched, s.enriched, "SIG{sig}: enriched fields");
        // The sensor's own fields come after the kernel's, which are identical and in order.
        assert_eq!(
            &s.fields[..k.fields.len()],
            &k.fields[..],
            "SIG{sig}: record prefix"
        );
    }
    println!("{:<6} {:>7} {:>7}", "field", "agreed", "differ");
    for (f, (agreed, diffs)) in &table {
        println!("{f:<6} {agreed:>7} {:>7}", diffs.len());
        for d in diffs {
            println!("    {d}");
        }
    }
    assert!(
        table.values().all(|(_, d)| d.is_empty()),
        "fields differ: {table:?}"
    );
    for (sig, pid) in &silent {
        assert!(
            by_pid(&ours, *pid).is_none(),
            "the sensor reported SIG{sig}"
        );
        assert!(
            by_pid(&theirs, *pid).is_none(),
            "the kernel reported SIG{sig}"
        );
    }
}
