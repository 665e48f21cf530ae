//! LOGIN: a task writes its own `/proc/self/loginuid`, checked against what the kernel writes.
//! The kernel writes it from `audit_log_set_loginuid()` in the write, then the write's SYSCALL
//! and PROCTITLE, whatever the rules; the sensor sees the write at `proc_loginuid_write()`'s
//! return (trampolines) or at the syscall's exit (tracepoints): both are compared the same way.

mod common;

use std::{process::Command, time::Duration};

use common::{
    auditd::Auditd,
    compare::{events_with, record, FieldTable},
    exclusive, scratch, Sensor,
};
use sensor::encode::parse::Record;

/// The LOGIN events (LOGIN, SYSCALL, PROCTITLE) of process `pid`, in order.
fn logins_of(text: &[u8], pid: u32) -> Vec<Vec<Record>> {
    let pid = pid.to_string();
    events_with(text, b"LOGIN")
        .into_iter()
        .filter(|ev| record(ev, b"LOGIN").and_then(|r| r.get(b"pid")) == Some(pid.as_bytes()))
        .collect()
}

#[test]
fn loginuid_writes_agree_with_the_kernel() {
    let _g = exclusive();
    let dir = scratch("loginuid");
    let auditd = Auditd::start(&[]);
    let (sensor, logs) = Sensor::start_logging(&dir);
    // A shell sets its login uid, then sets it again: refused (res=0, EPERM) where
    // `--loginuid-immutable` locked the kernel, allowed to root otherwise. Both are LOGIN records.
    let out = Command::new("/bin/sh")
        .args([
            "-c",
            "echo 4321 > /proc/self/loginuid; echo 65534 > /proc/self/loginuid 2>/dev/null; echo $$",
        ])
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // Near miss: writing another task's file is refused without a record.
    let other = Command::new("/bin/sh")
        .args(["-c", "echo 99 > /proc/$PPID/loginuid 2>/dev/null; echo $$"])
        .output()
        .unwrap();
    let other: u32 = String::from_utf8_lossy(&other.stdout)
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let ours = sensor.stop_and_read(&logs);
    let kernel = auditd.collect(&dir.join("auditd.log"), |t| logins_of(t, pid).len() == 2);
    drop(auditd);

    let (k, s) = (logins_of(&kernel, pid), logins_of(&ours, pid));
    assert_eq!(k.len(), 2, "the kernel's LOGIN events: {k:?}");
    assert_eq!(s.len(), 2, "the sensor's LOGIN events: {s:?}");
    let mut table = FieldTable::default();
    for (i, (k, s)) in k.iter().zip(&s).enumerate() {
        for rtype in [&b"LOGIN"[..], b"SYSCALL", b"PROCTITLE"] {
            let name = String::from_utf8_lossy(rtype);
            let kr = record(k, rtype).unwrap_or_else(|| panic!("write {i}: no kernel {name}"));
            let sr = record(s, rtype).unwrap_or_else(|| panic!("write {i}: no sensor {name}"));
            table.compare(&format!("write {i}"), kr, sr);
        }
    }
    table.print_and_assert();
    assert!(
        logins_of(&kernel, other).is_empty(),
        "the kernel reported a write to another task's file"
    );
    assert!(
        logins_of(&ours, other).is_empty(),
        "the sensor reported a write to another task's file"
    );
}
