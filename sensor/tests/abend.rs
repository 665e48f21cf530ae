//! Kernel anomaly records written from eBPF, checked against what the kernel itself writes with
//! audit enabled. ANOM_ABEND: a core-dumping signal other than SIGQUIT kills a task.

mod common;

use std::{process::Command, time::Duration};

use common::{
    auditd::Auditd,
    compare::{events_with, FieldTable},
    exclusive, scratch, Sensor,
};
use sensor::encode::parse::Record;

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

/// The ANOM_ABEND record of process `pid`, if any.
fn abend_of(text: &[u8], pid: u32) -> Option<Record> {
    let pid = pid.to_string();
    events_with(text, b"ANOM_ABEND")
        .into_iter()
        .flatten()
        .find(|r| r.rtype == b"ANOM_ABEND" && r.get(b"pid") == Some(pid.as_bytes()))
}

#[test]
fn abend_records_agree_with_the_kernel() {
    let _g = exclusive();
    let dir = scratch("abend");
    let auditd = Auditd::start(&[]);
    let (sensor, logs) = Sensor::start_logging(&dir);
    let reported: Vec<(&str, u32)> = vec![
        ("SEGV", die_by("SEGV")),
        ("ABRT", die_by("ABRT")),
        ("BUS", die_by("BUS")),
    ];
    // Near misses: SIGQUIT dumps core but the kernel skips it; SIGKILL and SIGTERM do not dump;
    // the init of a pid namespace ignores a default-action SIGSEGV.
    let silent: Vec<(&str, u32)> = vec![
        ("QUIT", die_by("QUIT")),
        ("KILL", die_by("KILL")),
        ("TERM", die_by("TERM")),
        ("SEGV to a namespace's init", segv_to_namespace_init()),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let ours = sensor.stop_and_read(&logs);
    let last_pid = reported.last().unwrap().1;
    let kernel = auditd.collect(&dir.join("auditd.log"), |t| abend_of(t, last_pid).is_some());
    drop(auditd);

    let mut table = FieldTable::default();
    for (sig, pid) in &reported {
        let k = abend_of(&kernel, *pid)
            .unwrap_or_else(|| panic!("the kernel wrote no ANOM_ABEND for SIG{sig}"));
        let s = abend_of(&ours, *pid)
            .unwrap_or_else(|| panic!("the sensor wrote no ANOM_ABEND for SIG{sig}"));
        table.compare(&format!("SIG{sig}"), &k, &s);
    }
    table.print_and_assert();
    for (sig, pid) in &silent {
        assert!(
            abend_of(&ours, *pid).is_none(),
            "the sensor reported SIG{sig}"
        );
        assert!(
            abend_of(&kernel, *pid).is_none(),
            "the kernel reported SIG{sig}"
        );
    }
}

/// `unshare --pid --fork sh -c 'kill -SEGV $$; …'`: the shell is pid 1 of its namespace, so the
/// signal is ignored and the shell goes on to print its pid as the host sees it (the ppid of a
/// child reading the host's /proc).
fn segv_to_namespace_init() -> u32 {
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "sh", "-c"])
        .arg("kill -SEGV $$; cut -d' ' -f4 /proc/self/stat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("the namespace's init did not survive SIGSEGV: {out:?}"))
}
