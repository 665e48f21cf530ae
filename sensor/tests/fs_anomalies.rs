//! ANOM_LINK and ANOM_CREAT: opens and links refused by fs.protected_*, triggered for real (as
//! nobody where the kernel needs another user) beside real kernel audit, and near misses refused
//! for another reason, which neither side may report.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command, time::Duration};

use common::{
    auditd::Auditd,
    compare::{events_with, record, FieldTable},
    exclusive, scratch,
    sysctl::Sysctls,
    Sensor,
};
use sensor::encode::parse::Record;

/// Runs `argv` (as nobody with `as_nobody`) and returns its pid once it has exited (or was
/// killed after 5 s: an open of a FIFO that was not refused would wait for a reader).
fn run(as_nobody: bool, argv: &[&str]) -> u32 {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    if !common::wait_until(Duration::from_secs(5), || {
        child.try_wait().unwrap().is_some()
    }) {
        let _ = child.kill();
        let _ = child.wait();
    }
    pid
}

/// The anomaly event (ANOM record, SYSCALL, PROCTITLE) of process `pid`, if any.
fn event_of(events: &[Vec<Record>], rtype: &[u8], pid: u32) -> Option<Vec<Record>> {
    let pid = pid.to_string();
    events
        .iter()
        .find(|ev| record(ev, rtype).and_then(|r| r.get(b"pid")) == Some(pid.as_bytes()))
        .cloned()
}

/// A rule that matches none of the scenarios' syscalls.
const NO_MATCH_RULE: &[&str] = &["always,exit", "-F", "arch=b64", "-S", "sethostname"];

/// Linux before 6.18 (checked on Debian's 6.1) writes ANOM_LINK and ANOM_CREAT only inside an
/// audit context, which a task has only while some syscall rule is loaded
/// (`audit_log_path_denied()` returns early otherwise); 6.18 writes them without one. Older
/// kernels are compared under [`NO_MATCH_RULE`].
fn kernel_needs_rule() -> bool {
    kernel_version() < (6, 18)
}

fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// ANOM_CREAT's op in a world-writable sticky directory: `sticky_create` since 6.12, named by
/// the file's type before (checked on 6.1).
fn sticky_op(fifo: bool) -> &'static [u8] {
    match (kernel_version() >= (6, 12), fifo) {
        (true, _) => b"sticky_create",
        (false, true) => b"sticky_create_fifo",
        (false, false) => b"sticky_create_regular",
    }
}

/// Under a rule the kernel also collects the syscall's names: SYSCALL `items=N` with CWD and
/// PATH records, which the sensor does not write for these syscalls (`items=0`). Those are left
/// out of the comparison on both sides, and said so.
fn without_names(mut event: Vec<Record>) -> Vec<Record> {
    event.retain(|r| r.rtype != b"CWD" && r.rtype != b"PATH");
    for r in &mut event {
        if r.rtype == b"SYSCALL" {
            r.fields.retain(|(n, _)| n != b"items");
        }
    }
    println!(
        "under a rule: the kernel's SYSCALL items= and its CWD and PATH records are not compared"
    );
    event
}

#[test]
fn protected_links_and_sticky_creates_agree_with_the_kernel() {
    let _g = exclusive();
    let dir = scratch("fs-anomalies");
    let _sysctls = Sysctls::set(&[
        ("fs.protected_hardlinks", "1"),
        ("fs.protected_symlinks", "1"),
        ("fs.protected_regular", "1"),
        ("fs.protected_fifos", "1"),
    ]);
    // A sticky world-writable directory owned by root, as /tmp is.
    let sticky = dir.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let closed = dir.join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = |name: &str| sticky.join(name).display().to_string();
    let secret = p("secret");
    std::fs::write(&secret, b"root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Objects owned by nobody, made before anything is watched.
    run(true, &["ln", "-s", "/etc/hostname", &p("sl")]);
    run(true, &["ln", "-s", &secret, &p("own-sl")]);
    run(true, &["touch", &p("f")]);
    run(true, &["mkfifo", &p("fifo")]);
    assert!(Path::new(&p("sl")).is_symlink() && Path::new(&p("fifo")).exists());

    let under_rule = kernel_needs_rule();
    let auditd = Auditd::start(if under_rule { NO_MATCH_RULE } else { &[] });
    let (sensor, logs) = Sensor::start_logging(&dir);
    let expected: Vec<(&str, &[u8], &[u8], u32)> = vec![
        (
            "hard link to root's file by nobody",
            b"ANOM_LINK",
            b"linkat",
            run(true, &["ln", &secret, &p("hl")]),
        ),
        (
            "root follows nobody's symlink",
            b"ANOM_LINK",
            b"follow_link",
            run(false, &["cat", &p("sl")]),
        ),
        (
            "root appends to nobody's file",
            b"ANOM_CREAT",
            sticky_op(false),
            run(false, &["sh", "-c", &format!(": >> {}", p("f"))]),
        ),
        (
            "root opens nobody's FIFO with O_CREAT",
            b"ANOM_CREAT",
            sticky_op(true),
            run(false, &["sh", "-c", &format!(": > {}", p("fifo"))]),
        ),
    ];
    // The kernel applies fs.protected_symlinks to every path walk: stat(2) too. Seen with the
    // fentry/fexit probe set (the kernel's own refusal); not with the tracepoints, which judge
    // open and link syscalls only (a documented difference).
    let stat_follows = run(false, &["stat", "-L", &p("sl")]);
    // Refused, but by plain permissions: no protection is involved.
    let near_misses: Vec<(&str, u32)> = vec![
        (
            "nobody links into a directory it cannot write (EACCES)",
            run(
                true,
                &["ln", &p("f"), &closed.join("x").display().to_string()],
            ),
        ),
        (
            "nobody follows its own symlink to root's file (EACCES)",
            run(true, &["cat", &p("own-sl")]),
        ),
        (
            "nobody appends to root's file in the sticky directory (EACCES)",
            run(true, &["sh", "-c", &format!(": >> {secret}")]),
        ),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let (sensor_text, said) = sensor.stop_and_read_saying(&logs);
    let trampolines = said.contains("sensor: probe set fentry/fexit: ");
    let last = expected.last().unwrap();
    let kernel_text = auditd.collect(&dir.join("auditd.log"), |t| {
        event_of(&events_with(t, last.1), last.1, last.3).is_some()
    });
    drop(auditd);

    let stat_name = "root stats nobody's symlink (stat -L)";
    let (kernel_stat, sensor_stat) = (
        event_of(
            &events_with(&kernel_text, b"ANOM_LINK"),
            b"ANOM_LINK",
            stat_follows,
        ),
        event_of(
            &events_with(&sensor_text, b"ANOM_LINK"),
            b"ANOM_LINK",
            stat_follows,
        ),
    );
    assert!(
        kernel_stat.is_some(),
        "{stat_name}: the kernel wrote no ANOM_LINK"
    );
    assert_eq!(
        sensor_stat.is_some(),
        trampolines,
        "{stat_name}: reported by the sensor with the fentry/fexit set only; it said:\n{said}"
    );
    let mut expected = expected;
    if trampolines {
        expected.push((stat_name, b"ANOM_LINK", b"follow_link", stat_follows));
    }
    let mut table = FieldTable::default();
    for (name, rtype, op, pid) in &expected {
        let theirs = event_of(&events_with(&kernel_text, rtype), rtype, *pid)
            .unwrap_or_else(|| panic!("{name}: the kernel wrote no {rtype:?}"));
        let ours = event_of(&events_with(&sensor_text, rtype), rtype, *pid).unwrap_or_else(|| {
            let anomalies: Vec<String> = String::from_utf8_lossy(&sensor_text)
                .lines()
                .filter(|l| l.starts_with("type=ANOM_") || l.contains("op=sensor_lost"))
                .map(String::from)
                .collect();
            panic!(
                "{name} (pid {pid}): the sensor wrote no {}; its anomaly and loss records:\n{}",
                String::from_utf8_lossy(rtype),
                anomalies.join("\n")
            )
        });
        assert_eq!(
            record(&ours, rtype).unwrap().get(b"op"),
            Some(*op),
            "{name}"
        );
        let (theirs, ours) = if under_rule {
            (without_names(theirs), without_names(ours))
        } else {
            (theirs, ours)
        };
        let types = |ev: &[Record]| ev.iter().map(|r| r.rtype.clone()).collect::<Vec<_>>();
        assert_eq!(types(&ours), types(&theirs), "{name}: records of the event");
        for rt in [*rtype, b"SYSCALL", b"PROCTITLE"] {
            table.compare(
                name,
                record(&theirs, rt).unwrap(),
                record(&ours, rt).unwrap(),
            );
        }
    }
    table.print_and_assert();
    for (name, pid) in &near_misses {
        for rtype in [&b"ANOM_LINK"[..], b"ANOM_CREAT"] {
            assert!(
                event_of(&events_with(&sensor_text, rtype), rtype, *pid).is_none(),
                "{name}: the sensor reported it"
            );
            assert!(
                event_of(&events_with(&kernel_text, rtype), rtype, *pid).is_none(),
                "{name}: the kernel reported it"
            );
        }
    }
}
