//! execve end to end: real programs under the real sensor (root, real eBPF), its records
//! checked against what was run, against `ausearch`, and against its own protobuf stream.

mod common;

use std::{process::Command, time::Duration};

use common::{
    assert_decodes_to, corpus::run_corpus, exclusive, exec_events, scratch, sensor_bin, wait_until,
    Sensor,
};
use sensor::{encode::parse::decode_value, event::NameType};

fn proc_id(file: &str) -> u32 {
    std::fs::read_to_string(format!("/proc/self/{file}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn corpus_records_are_what_was_run() {
    let _g = exclusive();
    let dir = scratch("corpus");
    let (audit, proto) = (dir.join("sensor.log"), dir.join("sensor.pb"));
    let sensor = Sensor::start(&[
        "--output",
        &format!("audit:{}", audit.display()),
        "--output",
        &format!("proto:{}", proto.display()),
    ]);
    let cases = run_corpus(&dir, "solo");
    std::thread::sleep(Duration::from_millis(300));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "sensor exit {status:?}: {stderr}");

    let events = exec_events(&audit);
    let (auid, ses) = (proc_id("loginuid"), proc_id("sessionid"));
    let me = std::process::id();
    for case in &cases {
        let ev = case
            .find(&events)
            .unwrap_or_else(|| panic!("no record of case {}", case.name));
        let ctx = format!("case {}: {ev:?}", case.name);
        assert_eq!(ev.exit, case.exit, "{ctx}");
        assert_eq!(ev.success, case.exit == 0, "{ctx}");
        assert_eq!(ev.argv, case.argv, "{ctx}");
        assert_eq!(ev.argv_truncated, None, "{ctx}");
        assert_eq!(
            ev.cwd.as_deref(),
            Some(case.cwd.as_os_str().as_encoded_bytes()),
            "{ctx}"
        );
        assert_eq!(ev.task.uid, case.uid, "{ctx}");
        assert_eq!(ev.task.euid, case.uid, "{ctx}");
        assert_eq!((ev.task.auid, ev.task.ses), (auid, ses), "{ctx}");
        if case.name != "nobody" && case.name != "execveat" {
            assert_eq!(ev.task.ppid, me, "{ctx}");
        }
        let item0 = ev.paths.first().expect("PATH item 0");
        if case.name != "execveat" {
            assert_eq!(item0.name, case.program, "{ctx}");
        }
        match &case.exe {
            Some(exe) => {
                assert_eq!(
                    ev.task.exe.as_deref(),
                    Some(exe.as_os_str().as_encoded_bytes()),
                    "{ctx}"
                );
                assert!(item0.inode.is_some(), "{ctx}");
                assert_eq!(item0.nametype, NameType::Normal, "{ctx}");
                assert!(!ev.proctitle.is_empty(), "{ctx}");
            }
            None if case.exit == -2 => assert_eq!(item0.nametype, NameType::Unknown, "{ctx}"),
            None => {}
        }
        // Container context: this test runs on the host.
        let host_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        assert_eq!(
            format!("pid:[{}]", ev.container.pid_ns),
            host_pidns.to_string_lossy(),
            "{ctx}"
        );
        assert_eq!(ev.container.ns_pid, ev.task.pid, "{ctx}");
        assert!(ev.container.cgroup_id != 0, "{ctx}");
    }

    // auditd's own tools read the log: every successful exec is found by ausearch.
    let out = Command::new("ausearch")
        .arg("-if")
        .arg(&audit)
        .args(["-m", "EXECVE", "--raw"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ausearch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = exec_events_from_text(&out.stdout);
    for case in cases.iter().filter(|c| c.exit == 0) {
        assert!(
            case.find(&found).is_some(),
            "ausearch -m EXECVE did not find case {}",
            case.name
        );
    }

    // The protobuf stream holds the same events: decoding it gives the audit text, byte for byte.
    assert_decodes_to(&proto, &audit);
}

fn exec_events_from_text(text: &[u8]) -> Vec<sensor::event::ExecEvent> {
    let path = scratch("ausearch").join("out.log");
    std::fs::write(&path, text).unwrap();
    exec_events(&path)
}

#[test]
fn refuses_to_run_without_privileges() {
    let _g = exclusive();
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sensor_bin(),
            "run",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one sentence expected: {err}");
    assert!(err.contains("must run as root"), "{err}");
}

#[test]
fn sigint_flushes_and_exits_zero() {
    let _g = exclusive();
    let dir = scratch("sigint");
    let log = dir.join("sensor.log");
    let mut sensor = Sensor::start(&["--output", &format!("audit:{}", log.display())]);
    let marker = format!("sensorit-sigint-{}", std::process::id());
    // Signalled right after the last exec: what is still in the ring buffer must be drained.
    for _ in 0..50 {
        Command::new("/bin/true").arg(&marker).status().unwrap();
    }
    sensor.signal(libc::SIGINT);
    let status = sensor.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let events = exec_events(&log);
    let seen = events
        .iter()
        .filter(|e| e.argv.iter().any(|a| a == marker.as_bytes()))
        .count();
    assert_eq!(seen, 50, "every exec finished before the signal is written");
}

#[test]
fn lost_records_are_reported_not_silent() {
    let stderr = lost_storm(&[]);
    assert!(!stderr.contains("sensor: ebpf:"), "{stderr}");
}

/// With `--ebpf-log` the programs say why records were dropped; the loss records are unchanged.
#[test]
fn ebpf_log_explains_drops_when_asked() {
    let stderr = lost_storm(&["--ebpf-log"]);
    let lines = stderr
        .lines()
        .filter(|l| l.starts_with("sensor: ebpf: WARN") && l.contains("ring buffer full"))
        .count();
    assert!(lines > 0, "{stderr}");
}

/// Forty 100 KB argument areas into a 1 MiB ring drained every 500 ms: the kernel side must drop
/// (never wait) and the agent must say so, and account for every exec. Returns stderr.
fn lost_storm(extra: &[&str]) -> String {
    let _g = exclusive();
    let dir = scratch("lost");
    let log = dir.join("sensor.log");
    let _ = std::fs::remove_file(&log);
    let output = format!("audit:{}", log.display());
    let mut args = vec![
        "--output",
        &output,
        "--ring-buffer-mib",
        "1",
        "--coalesce-ms",
        "500",
        "--lost-interval-ms",
        "50",
    ];
    args.extend_from_slice(extra);
    let sensor = Sensor::start(&args);
    let marker = format!("sensorit-lost-{}", std::process::id());
    let big = "z".repeat(100_000);
    let mut children: Vec<_> = (0..40)
        .map(|_| {
            Command::new("/bin/true")
                .arg(&marker)
                .arg(&big)
                .spawn()
                .unwrap()
        })
        .collect();
    for c in &mut children {
        c.wait().unwrap();
    }
    // The loss is in the stream while the sensor runs, within the loss interval of the storm's
    // end (the reader drains every 500 ms here), not only at shutdown.
    let reported = wait_until(Duration::from_millis(1500), || {
        std::fs::read(&log).is_ok_and(|t| String::from_utf8_lossy(&t).contains("op=sensor_lost"))
    });
    assert!(reported, "the loss was not reported while running");
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let text = std::fs::read(&log).unwrap();
    let records = sensor::encode::parse::parse_log(&text).unwrap();
    let lost: Vec<_> = records
        .iter()
        .filter(|r| r.rtype == b"DAEMON_ERR")
        .collect();
    assert!(
        !lost.is_empty(),
        "drops happened but no DAEMON_ERR record was written"
    );
    let last = lost.last().unwrap();
    let field = |n: &[u8]| -> u64 {
        std::str::from_utf8(&decode_value(last.get(n).unwrap()))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(field(b"ringbuf") > 0, "{last:?}");
    assert_eq!(field(b"lost"), field(b"ringbuf") + field(b"channel"));
    // Every exec is written whole, written with what is missing said, or counted incomplete.
    // Told by its parent and name, not its arguments: an exec whose argument records were all
    // dropped (a ring with room for small records only) is written without them, said cut.
    let storm: Vec<_> = exec_events(&log)
        .into_iter()
        .filter(|e| e.task.ppid == std::process::id() && e.task.comm == b"true")
        .collect();
    let whole = storm
        .iter()
        .filter(|e| e.argv.iter().any(|a| a == marker.as_bytes()))
        .count() as u64;
    let cut = storm.iter().filter(|e| e.argv_truncated.is_some()).count() as u64;
    let ours = storm
        .iter()
        .filter(|e| e.argv_truncated.is_some() || e.argv.iter().any(|a| a == marker.as_bytes()))
        .count() as u64;
    assert!(
        ours + field(b"incomplete") >= 40,
        "written {ours} ({whole} with the marker, {cut} said cut, of {} by the storm), incomplete {}",
        storm.len(),
        field(b"incomplete")
    );
    stderr
}

/// The cgroup v2 mount: `/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` on hybrid.
fn cgroup2_root() -> std::path::PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let dir = mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
        })
        .expect("a cgroup2 hierarchy is mounted");
    std::path::PathBuf::from(dir)
}

#[test]
fn container_context_is_recorded() {
    let _g = exclusive();
    let dir = scratch("container");
    let log = dir.join("sensor.log");
    // A cgroup named the way docker's systemd driver names it, and fresh pid/net/uts/mount
    // namespaces, as a container runtime would set them up.
    let id = format!(
        "{:064x}",
        std::process::id() as u128 * 0x9e37_79b9_7f4a_7c15
    );
    let cgroup = cgroup2_root().join(format!("docker-{id}.scope"));
    std::fs::create_dir(&cgroup).unwrap();
    let marker = format!("sensorit-container-{}", std::process::id());
    let sensor = Sensor::start(&["--output", &format!("audit:{}", log.display())]);
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec unshare -p -f -n -u -m /bin/true {marker}",
        cgroup.display()
    );
    let status = Command::new("/bin/sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (stopped, stderr) = sensor.stop();
    // The cgroup id is the inode number of the cgroup's directory in cgroupfs.
    let cgroup_ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cgroup).unwrap());
    let _ = std::fs::remove_dir(&cgroup);
    assert!(status.success() && stopped.success(), "{stderr}");

    let events = exec_events(&log);
    let ev = events
        .iter()
        .find(|e| {
            e.argv.first().map(Vec::as_slice) == Some(b"/bin/true")
                && e.argv.iter().any(|a| a == marker.as_bytes())
        })
        .expect("the exec inside the namespaces was recorded");
    let host = |ns: &str| -> u32 {
        let link = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let s = link.to_string_lossy();
        s[s.find('[').unwrap() + 1..s.len() - 1].parse().unwrap()
    };
    let c = &ev.container;
    assert_eq!(c.ns_pid, 1, "first process of a new pid namespace: {c:?}");
    assert_ne!(c.ns_pid, ev.task.pid);
    assert_ne!(c.pid_ns, host("pid"), "{c:?}");
    assert_ne!(c.net_ns, host("net"), "{c:?}");
    assert_ne!(c.uts_ns, host("uts"), "{c:?}");
    assert_ne!(c.mnt_ns, host("mnt"), "{c:?}");
    assert_eq!(
        c.cgroup_path,
        format!("/docker-{id}.scope").into_bytes(),
        "{c:?}"
    );
    assert_eq!(c.container_id.as_deref(), Some(id.as_str()), "{c:?}");
    assert_eq!(c.cgroup_id, cgroup_ino, "{c:?}");
}

#[test]
fn a_cwd_too_deep_to_walk_is_marked_cut() {
    let _g = exclusive();
    let dir = scratch("deep");
    let log = dir.join("sensor.log");
    let mut deep = dir.clone();
    for _ in 0..80 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let marker = format!("sensorit-deep-{}", std::process::id());
    let sensor = Sensor::start(&["--output", &format!("audit:{}", log.display())]);
    Command::new("/bin/true")
        .arg(&marker)
        .current_dir(&deep)
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let ev = exec_events(&log)
        .into_iter()
        .find(|e| e.argv.iter().any(|a| a == marker.as_bytes()))
        .expect("recorded");
    assert!(
        ev.paths_truncated.cwd && !ev.paths_truncated.exe,
        "{:?}",
        ev.paths_truncated
    );
    let cwd = ev.cwd.unwrap();
    let real = deep.as_os_str().as_encoded_bytes();
    assert!(
        cwd.len() < real.len() && real.ends_with(&cwd),
        "cut cwd must be the tail of the real one"
    );
}

/// Unmounts what a test mounted, also when it fails.
struct Mounts(Vec<std::path::PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// The cwd and the executable are walked up across mount points: a tmpfs mounted in a tmpfs
/// mounted under the scratch directory, so the walk crosses two mounts before the root file
/// system's. Each path must be whole, as the kernel's own `getcwd` gives it.
#[test]
fn paths_across_mount_points_are_whole() {
    let _g = exclusive();
    let dir = scratch("mounts");
    let log = dir.join("sensor.log");
    let outer = dir.join("outer");
    let inner = outer.join("a/inner");
    let mut mounts = Mounts(Vec::new());
    std::fs::create_dir_all(&outer).unwrap();
    for m in [&outer, &inner] {
        std::fs::create_dir_all(m).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "sensorit", m.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(ok.success(), "mount {}", m.display());
        mounts.0.push(m.clone());
    }
    let cwd = inner.join("b/c");
    std::fs::create_dir_all(&cwd).unwrap();
    let program = inner.join("b/true");
    std::fs::copy("/bin/true", &program).unwrap();
    let marker = format!("sensorit-mounts-{}", std::process::id());
    let sensor = Sensor::start(&["--output", &format!("audit:{}", log.display())]);
    let ran = Command::new(&program)
        .arg(&marker)
        .current_dir(&cwd)
        .status()
        .unwrap();
    assert!(ran.success());
    std::thread::sleep(Duration::from_millis(300));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    drop(mounts);
    let ev = exec_events(&log)
        .into_iter()
        .find(|e| e.argv.iter().any(|a| a == marker.as_bytes()))
        .expect("recorded");
    assert!(!ev.paths_truncated.any(), "{:?}", ev.paths_truncated);
    let real = |p: &std::path::Path| p.as_os_str().as_encoded_bytes().to_vec();
    assert_eq!(ev.cwd, Some(real(&cwd)));
    assert_eq!(ev.task.exe, Some(real(&program)));
}
