use super::*;

const KERNEL: &str = "\
type=SYSCALL msg=audit(100.000:1): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=1 pid=10 comm=\"ls\" exe=\"/usr/bin/ls\" key=\"x\"
type=EXECVE msg=audit(100.000:1): argc=1 a0=\"ls\"
type=PATH msg=audit(100.000:1): item=0 name=\"/bin/ls\" inode=5
type=PATH msg=audit(100.000:1): item=1 name=\"/lib64/ld\" inode=6
type=PROCTITLE msg=audit(100.000:1): proctitle=\"ls\"
type=SYSCALL msg=audit(101.000:2): arch=c000003e syscall=59 success=yes exit=0 items=1 ppid=1 pid=11 comm=\"id\" exe=\"/usr/bin/id\" key=\"x\"
type=EXECVE msg=audit(101.000:2): argc=1 a0=\"id\"
type=PATH msg=audit(101.000:2): item=0 name=\"/bin/id\" inode=7
type=USER_ACCT msg=audit(102.000:3): pid=12 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting acct=\"root\" res=success'
type=CONFIG_CHANGE msg=audit(103.000:4): op=set audit_enabled=1 res=1
";

const SENSOR: &str = "\
type=SYSCALL msg=audit(100.004:7): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=1 pid=10 comm=\"ls\" exe=\"/usr/bin/ls\" key=(null) cgroup_id=1
type=EXECVE msg=audit(100.004:7): argc=1 a0=\"ls\"
type=PATH msg=audit(100.004:7): item=0 name=\"/bin/ls\" inode=5
type=PATH msg=audit(100.004:7): item=1 name=\"/lib64/ld\" inode=9
type=PROCTITLE msg=audit(100.004:7): proctitle=\"ls\"
type=USER_ACCT msg=audit(102.001:8): pid=12 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting acct=\"root\" res=success' cgroup_id=1
type=ANOM_ABEND msg=audit(104.000:9): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=13 sig=11 res=1
";

#[test]
fn events_match_by_identity_and_time_and_fields_are_compared() {
    let c = compare(KERNEL.as_bytes(), SENSOR.as_bytes(), 2000).unwrap();
    assert_eq!(
        (c.kernel_events, c.sensor_events, c.matched_events),
        (4, 3, 2)
    );
    let execve = &c.types["EXECVE"];
    assert_eq!((execve.kernel, execve.both, execve.kernel_only), (2, 1, 1));
    assert!((execve.coverage() - 0.5).abs() < 1e-9);
    let path = &c.types["PATH"];
    assert_eq!(
        (path.both, path.kernel_only, path.compared, path.identical),
        (2, 1, 2, 1)
    );
    assert_eq!(path.fields["inode"].count, 1);
    assert_eq!(
        path.fields["inode"].examples[0],
        ("6".into(), Some("9".into()))
    );
    let syscall = &c.types["SYSCALL"];
    assert_eq!(
        syscall.fields["key"].count, 1,
        "key differs; the sensor's cgroup_id is not compared"
    );
    assert!(!syscall.fields.contains_key("cgroup_id"));
    assert_eq!(c.types["USER_ACCT"].identical, 1);
    assert_eq!(c.types["CONFIG_CHANGE"].kernel_only, 1);
    assert_eq!(c.types["ANOM_ABEND"].sensor_only, 1);
}

#[test]
fn events_outside_the_window_or_of_another_process_do_not_match() {
    let shifted = SENSOR.replace("audit(100.004", "audit(103.004");
    let c = compare(KERNEL.as_bytes(), shifted.as_bytes(), 2000).unwrap();
    assert_eq!(c.types["EXECVE"].both, 0);
    let other_pid = SENSOR.replace("pid=10 ", "pid=99 ");
    let c = compare(KERNEL.as_bytes(), other_pid.as_bytes(), 2000).unwrap();
    assert_eq!(c.types["EXECVE"].both, 0);
}

#[test]
fn reports_render_every_type_and_difference() {
    let c = compare(KERNEL.as_bytes(), SENSOR.as_bytes(), 2000).unwrap();
    let t = report::table(&c);
    assert!(t.contains("EXECVE") && t.contains("50.0%") && t.contains("kernel 6 | sensor 9"));
    let m = report::markdown(&c);
    assert!(m.contains("| EXECVE | 2 | 1 | 1 | 1 | 0 | 50.0% |"), "{m}");
    let j: serde_json::Value = serde_json::from_str(&report::json(&c)).unwrap();
    assert_eq!(j["types"]["PATH"]["fields"]["inode"]["count"], 1);
}

#[test]
fn netlink_messages_become_log_lines() {
    let mut data = Vec::new();
    for (t, text) in [
        (1300u16, &b"audit(1.002:3): arch=c000003e syscall=59\0"[..]),
        (1320, b"audit(1.002:3): \0"),
    ] {
        let len = 16 + text.len();
        data.extend_from_slice(&(len as u32).to_ne_bytes());
        data.extend_from_slice(&t.to_ne_bytes());
        data.extend_from_slice(&[0; 10]);
        data.extend_from_slice(text);
        data.resize(data.len().next_multiple_of(4), 0);
    }
    let mut out = Vec::new();
    live::append_messages(&data, &mut out);
    assert_eq!(
        out,
        b"type=SYSCALL msg=audit(1.002:3): arch=c000003e syscall=59\n"
    );
}

/// Accepts `room` bytes, then fails as a closed pipe (or with `kind`) does.
struct Pipe {
    room: usize,
    kind: std::io::ErrorKind,
}

impl std::io::Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(self.kind.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_reader_that_went_away_ends_the_output_quietly() {
    use std::io::{ErrorKind, Write};
    let lines = |out: &mut cmd::Output<Pipe>| {
        for i in 0..100_000 {
            writeln!(out, "line {i}")?;
        }
        Ok(())
    };
    let closed = |room| Pipe {
        room,
        kind: ErrorKind::BrokenPipe,
    };
    // Closed at once, after a partial write, or only when the buffer is flushed.
    for room in [0, 10, 1 << 30] {
        assert!(cmd::write_quietly(closed(room), lines).is_ok(), "{room}");
    }
    let buffered = std::io::BufWriter::new(closed(0));
    assert!(cmd::write_quietly(buffered, |out| Ok(writeln!(out, "one")?)).is_ok());
    // Any other failure is an error, and so is one the command met before the pipe closed.
    let full = Pipe {
        room: 10,
        kind: ErrorKind::StorageFull,
    };
    assert!(cmd::write_quietly(full, lines).is_err());
    let err = cmd::write_quietly(closed(1 << 30), |_| anyhow::bail!("no such type")).unwrap_err();
    assert_eq!(err.to_string(), "no such type");
}
