//! LAUREL (the JSON enricher for auditd, crate `laurel`) reads the sensor's `audit` output right.
//!
//! LAUREL takes a bare value of a field it does not know for hex, so the sensor quotes every
//! value it composes. This test proves both sides with the real programs:
//! - a hand-made SYSCALL record in the old bare format (`pidns=4026531836`, `nspid=12`) comes out
//!   of LAUREL mangled, the same record quoted comes out as the numbers;
//! - under the real sensor, an exec with awkward arguments (a space, a newline, invalid UTF-8,
//!   `%`, `+`) from a cwd with a space, and an exec in a docker-named cgroup in new pid, mount,
//!   net and uts namespaces (nspid 12), fed to LAUREL in both text formats, come out as one JSON
//!   event each whose EXECVE.ARGV, PROCTITLE.ARGV, exe and cwd are the bytes that were run and
//!   whose cgroup_id, cgroup, pidns, mntns, netns, utsns, nspid and container are what the text
//!   says, as numbers; and LAUREL reports no line of the sensor's output as unparsable.
//!
//! Needs LAUREL at /opt/laurel/bin/laurel (.ci/run installs it); without it the test fails.

mod common;

use std::{
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::MetadataExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{exclusive, exec_events, scratch, Sensor};
use sensor::event::ExecEvent;
use serde_json::Value;

const LAUREL: &str = "/opt/laurel/bin/laurel";

/// Runs LAUREL on the records of `input` as auditd feeds a plugin (record lines on stdin), with
/// a minimal config: no `user` (it stays root, with a warning), no state file, its JSON lines in
/// `dir/audit.json`. Returns the JSON events and LAUREL's own log (on its stdout).
fn laurel(input: &Path, dir: &Path) -> (Vec<Value>, String) {
    assert!(
        Path::new(LAUREL).exists(),
        "LAUREL is not installed at {LAUREL}: `apt-get install libclang-dev libacl1-dev && \
         cargo +1.99.0 install laurel --version 0.8.2 --locked --root /opt/laurel` (.ci/run does)"
    );
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("config.toml");
    let toml = format!(
        "directory = \"{}\"\n[auditlog]\nfile = \"audit.json\"\n[state]\nfile = \"\"\n",
        dir.display()
    );
    std::fs::write(&config, toml).unwrap();
    // LAUREL refuses a world-writable config.
    std::fs::set_permissions(&config, PermissionsExt::from_mode(0o600)).unwrap();
    let out = Command::new(LAUREL)
        .arg("--config")
        .arg(&config)
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .expect("run laurel");
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "laurel: {log}{stderr}");
    let json = std::fs::read_to_string(dir.join("audit.json")).unwrap();
    let events = json.lines().map(|l| serde_json::from_str(l).unwrap());
    (events.collect(), log)
}

/// A number as LAUREL read it: a decimal string or a JSON number; decoded hex bytes are `None`.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    }
}

/// A LAUREL string back to its bytes: it percent-encodes control bytes, `%`, `+` and bytes that
/// are not valid UTF-8 (laurel-about(7)).
fn bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let (mut out, mut rest) = (Vec::new(), s.as_bytes());
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            out.push(u8::from_str_radix(std::str::from_utf8(&tail[..2]).unwrap(), 16).unwrap());
            rest = &tail[2..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    out
}

fn argv(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap_or_else(|| panic!("no ARGV: {v}"))
        .iter()
        .map(bytes)
        .collect()
}

/// The cgroup v2 mount: `/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` on hybrid.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let found = mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
    });
    found.expect("a cgroup2 hierarchy is mounted")
}

/// A cgroup made for the test, removed when the test ends, passed or not.
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn laurel_reads_the_sensor_output() {
    let _g = exclusive();
    let dir = scratch("laurel");

    // The failure mode: the same SYSCALL fields bare, as the sensor used to write them, and quoted.
    let record = |serial: u32, q: &str| {
        format!(
            "type=SYSCALL msg=audit(1795644154.341:{serial}): arch=c000003e syscall=59 \
             success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=0 ppid=1 pid=4321 auid=4294967295 \
             uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 \
             comm=\"true\" exe=\"/usr/bin/true\" key=(null) cgroup_id={q}5678{q} cgroup=\"/\" \
             pidns={q}4026531836{q} mntns={q}4026531832{q} nspid={q}12{q}\n"
        )
    };
    let hand = dir.join("hand.log");
    std::fs::write(&hand, record(1, "") + &record(2, "\"")).unwrap();
    let (events, _) = laurel(&hand, &dir.join("laurel-hand"));
    let syscall = |id: &str| {
        let ev = events.iter().find(|e| e["ID"] == id);
        ev.unwrap_or_else(|| panic!("no event {id}: {events:?}"))["SYSCALL"].clone()
    };
    let (bare, quoted) = (syscall("1795644154.341:1"), syscall("1795644154.341:2"));
    for (field, want) in [
        ("cgroup_id", 5678),
        ("pidns", 4026531836),
        ("mntns", 4026531832),
        ("nspid", 12),
    ] {
        assert_eq!(
            number(&bare[field]),
            None,
            "bare {field} read as hex: {bare}"
        );
        assert_eq!(
            number(&quoted[field]),
            Some(want),
            "quoted {field}: {quoted}"
        );
    }

    // The real sensor: an awkward command line from an awkward cwd, and a containerised exec.
    let cwd = dir.join("cwd with space");
    std::fs::create_dir(&cwd).unwrap();
    let marker = format!("sensorit-laurel-{}", std::process::id());
    let args: [&[u8]; 6] = [
        marker.as_bytes(),
        b"two words",
        b"line\nbreak",
        b"caf\xe9",
        "café".as_bytes(),
        b"50%+1",
    ];
    let (sensor, logs) = Sensor::start_logging(&dir);
    let id = format!(
        "{:064x}",
        std::process::id() as u128 * 0x2545_f491_4f6c_dd1d
    );
    let cgroup = Cgroup(cgroup2_root().join(format!("docker-{id}.scope")));
    std::fs::create_dir(&cgroup.0).unwrap();
    let plain = Command::new("/bin/true")
        .args(args.iter().map(|a| OsStr::from_bytes(a)))
        .current_dir(&cwd)
        .status();
    // sh is pid 1 of the new namespace, ten /bin/true are 2..=11: the marked one is 12.
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec unshare -p -f -m -n -u /bin/sh -c \
         'i=0; while [ $i -lt 10 ]; do /bin/true; i=$((i+1)); done; /bin/true {marker}-ns'",
        cgroup.0.display()
    );
    let contained = Command::new("/bin/sh").args(["-c", &script]).status();
    std::thread::sleep(Duration::from_millis(300));
    sensor.stop_and_read(&logs);
    let cgroup_ino = std::fs::metadata(&cgroup.0).unwrap().ino();
    drop(cgroup);
    assert!(plain.unwrap().success() && contained.unwrap().success());

    // What the text says, checked against what was run.
    let text = exec_events(&logs.raw);
    let find = |tag: &[u8]| -> ExecEvent {
        let ev = text
            .iter()
            .find(|e| e.argv.get(1).map(Vec::as_slice) == Some(tag));
        ev.unwrap_or_else(|| panic!("no exec {}", String::from_utf8_lossy(tag)))
            .clone()
    };
    let (plain, contained) = (
        find(marker.as_bytes()),
        find(format!("{marker}-ns").as_bytes()),
    );
    let mut want_argv = vec![b"/bin/true".to_vec()];
    want_argv.extend(args.iter().map(|a| a.to_vec()));
    assert_eq!(plain.argv, want_argv);
    assert_eq!(plain.cwd.as_deref(), Some(cwd.as_os_str().as_bytes()));
    let c = &contained.container;
    assert_eq!((c.ns_pid, c.cgroup_id), (12, cgroup_ino), "{c:?}");
    assert_eq!(c.container_id.as_deref(), Some(id.as_str()), "{c:?}");

    // What LAUREL reads, from the raw and the enriched text alike.
    for (name, log) in [("raw", &logs.raw), ("enriched", &logs.enriched)] {
        let (events, said) = laurel(log, &dir.join(format!("laurel-{name}")));
        // Every line of the sensor's output parses: LAUREL logs an ERROR for each one that doesn't.
        assert!(said.contains(" 0 errors in total"), "{name}: {said}");
        for ev in [&plain, &contained] {
            let json = events
                .iter()
                .filter(|j| j["EXECVE"]["ARGV"].is_array())
                .find(|j| argv(&j["EXECVE"]["ARGV"]) == ev.argv)
                .unwrap_or_else(|| panic!("{name}: LAUREL has no event for {:?}", ev.argv));
            let ctx = format!("{name}: {json}");
            let (sys, c) = (&json["SYSCALL"], &ev.container);
            assert_eq!(number(&sys["pid"]), Some(ev.task.pid.into()), "{ctx}");
            assert_eq!(Some(bytes(&sys["exe"])), ev.task.exe, "{ctx}");
            assert_eq!(Some(bytes(&json["CWD"]["cwd"])), ev.cwd, "{ctx}");
            assert_eq!(argv(&json["PROCTITLE"]["ARGV"]), ev.argv, "{ctx}");
            for (field, want) in [
                ("cgroup_id", c.cgroup_id),
                ("pidns", c.pid_ns.into()),
                ("mntns", c.mnt_ns.into()),
                ("netns", c.net_ns.into()),
                ("utsns", c.uts_ns.into()),
                ("nspid", c.ns_pid.into()),
            ] {
                assert_eq!(number(&sys[field]), Some(want), "{field}: {ctx}");
            }
            assert_eq!(bytes(&sys["cgroup"]), c.cgroup_path, "{ctx}");
            let container = c.container_id.as_ref().map(|id| Value::from(id.as_str()));
            assert_eq!(sys.get("container"), container.as_ref(), "{ctx}");
        }
    }
}
