//! The built binary on hostile input and hostile readers: a closed pipe is a quiet end, `compare`
//! and `decode` run in bounded memory whatever the files hold, and refusals are one sentence.
//! Needs no root and no eBPF. Set SENSOR_BIN to run these checks against another build.

use std::{
    ffi::OsString,
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    os::fd::{FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

fn sensor_bin() -> OsString {
    std::env::var_os("SENSOR_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_sensor").into())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sensor-hio-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A pipe that holds one page, so that a writer with more to say blocks until it is read or
/// closed (a default 64 KiB pipe would take all of a short output and hide EPIPE).
fn small_pipe() -> (File, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: plain pipe and fcntl calls on descriptors owned right away.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let (r, w) = (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
        assert!(libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) >= 4096);
        (r, w)
    }
}

/// `sensor ARGS | head -1`: the first line, then the reader goes away. Returns the line, the
/// exit status and everything said on stderr.
fn head_1(args: &[&str]) -> (String, ExitStatus, String) {
    let (read, write) = small_pipe();
    let mut child = Command::new(sensor_bin())
        .args(args)
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(read).read_line(&mut first).unwrap();
    // The reader is closed here, with the writer blocked on a full pipe.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (first, child.wait().unwrap(), stderr)
}

/// A file of `copies` exec envelopes, each with `args` empty arguments, length-delimited,
/// written as an attacker would (schema revision 4; field numbers from
/// `proto/sensor/v1/events.proto`) and without holding it in memory.
fn write_execs(path: &Path, args: usize, copies: usize) {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut head = vec![0x08];
    varint(0xc000_003e, &mut head); // arch
    head.extend_from_slice(&[0x10, 0x01, 0x18, 0x01]); // syscall EXECVE, success
    head.extend_from_slice(&[0x2a, 4, 0, 0, 0, 0]); // regs, packed
    head.extend_from_slice(&[0x32, 0]); // task
    let tail = [0x62, 0]; // container
    let exec_len = head.len() + 2 * args + tail.len();
    let mut env_head = vec![0x08, 4, 0x10, 1, 0x18, 1, 0x82, 0x01]; // version, serial, sec, exec
    varint(exec_len as u64, &mut env_head);
    let mut prefix = Vec::new();
    varint((env_head.len() + exec_len) as u64, &mut prefix);
    let mut out = std::io::BufWriter::new(File::create(path).unwrap());
    for _ in 0..copies {
        out.write_all(&prefix).unwrap();
        out.write_all(&env_head).unwrap();
        out.write_all(&head).unwrap();
        for _ in 0..args {
            out.write_all(&[0x3a, 0]).unwrap(); // argv: an empty argument
        }
        out.write_all(&tail).unwrap();
    }
    out.flush().unwrap();
}

/// What a finished run left: status, output, and its peak memory (VmHWM) in KiB.
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
    peak_kib: u64,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the sensor, reading its VmHWM every few ms while it runs; fails the test if it has not
/// ended within `limit`. (Not the child's rusage: a spawned child's `ru_maxrss` starts from
/// the parent's high-water mark, this test process's.) A run too short to be sampled is one
/// too short to have taken much.
fn run_measured(args: &[&Path], limit: Duration) -> Run {
    let mut child = Command::new(sensor_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut peak_kib = 0;
    let status = loop {
        peak_kib = peak_kib.max(vm_hwm_kib(pid).unwrap_or(0));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{args:?} still running after {limit:?}, at {} MiB",
                peak_kib >> 10
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status: status
            .code()
            .unwrap_or_else(|| panic!("{args:?}: {status}")),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        peak_kib,
    }
}

/// One sentence on stderr, from the sensor, and no panic.
fn assert_one_sentence(stderr: &str, want: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("sensor: ") && stderr.contains(want),
        "{want:?} not in {stderr:?}"
    );
}

#[test]
fn catalog_into_a_closed_pipe_ends_quietly() {
    for args in [&["catalog"][..], &["catalog", "--json"]] {
        let (first, status, stderr) = head_1(args);
        assert!(!first.is_empty(), "{args:?}");
        assert!(status.success(), "{args:?}: {status}, stderr {stderr:?}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn decode_into_a_closed_pipe_ends_quietly() {
    let dir = scratch("decode-pipe");
    let file = dir.join("events.pb");
    // 20,000 small execs: megabytes of text, far more than the pipe holds.
    write_execs(&file, 3, 20_000);
    let (first, status, stderr) = head_1(&["decode", file.to_str().unwrap()]);
    assert!(first.starts_with("type=SYSCALL "), "{first}");
    assert!(status.success(), "{status}, stderr {stderr:?}");
    assert_eq!(stderr, "");
}

#[test]
fn compare_into_a_closed_pipe_ends_quietly() {
    let dir = scratch("compare-pipe");
    let log = dir.join("audit.log");
    let mut text = String::new();
    for i in 0..3000 {
        text += &format!(
            "type=T{} msg=audit(1.{:03}:{i}): pid={i} v=1\n",
            i % 400,
            i % 1000
        );
    }
    std::fs::write(&log, text).unwrap();
    let log = log.to_str().unwrap();
    for format in [&[][..], &["--json"], &["--markdown"]] {
        let mut args = vec!["compare", "--audit-log", log, "--sensor-log", log];
        args.extend_from_slice(format);
        let (first, status, stderr) = head_1(&args);
        assert!(!first.is_empty());
        assert!(status.success(), "{format:?}: {status}, stderr {stderr:?}");
        assert_eq!(stderr, "", "{format:?}");
    }
}

#[test]
fn compare_of_dev_zero_ends_at_once_in_bounded_memory() {
    let dir = scratch("compare-zero");
    let small = dir.join("small.log");
    std::fs::write(
        &small,
        "type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 success=yes exit=0 pid=1\n",
    )
    .unwrap();
    let zero = Path::new("/dev/zero");
    for (audit, sensor) in [(zero, small.as_path()), (small.as_path(), zero)] {
        let args = [
            Path::new("compare"),
            Path::new("--audit-log"),
            audit,
            Path::new("--sensor-log"),
            sensor,
        ];
        let run = run_measured(&args, Duration::from_secs(10));
        assert_eq!(run.status, 1, "{}", run.stderr);
        let which = if audit == zero { "audit" } else { "sensor" };
        assert_one_sentence(&run.stderr, &format!("the {which} log"));
        assert!(run.peak_kib < 100 << 10, "{} KiB", run.peak_kib);
    }
}

/// Two logs of the same execs, a few ms apart, the kernel's with its EOE records.
fn write_logs(dir: &Path, bytes: usize) -> (PathBuf, PathBuf, usize) {
    let (k, s) = (dir.join("kernel.log"), dir.join("sensor.log"));
    let mut kernel = std::io::BufWriter::new(File::create(&k).unwrap());
    let mut sensor = std::io::BufWriter::new(File::create(&s).unwrap());
    let (mut written, mut n) = (0, 0);
    while written < bytes {
        let t = 1_795_644_154_000u64 + n as u64 / 2;
        for (out, at, serial, sensor_side) in [
            (&mut kernel, t, n + 1, false),
            (&mut sensor, t + 3, n + 7, true),
        ] {
            let h = format!("msg=audit({}.{:03}:{serial}):", at / 1000, at % 1000);
            let mut ev = format!(
                "type=SYSCALL {h} arch=c000003e syscall=59 success=yes exit=0 items=1 ppid=1 \
                 pid={} auid=4294967295 uid=0 gid=0 comm=\"ls\" exe=\"/usr/bin/ls\" key={}\n\
                 type=EXECVE {h} argc=2 a0=\"ls\" a1=\"-l{n}\"\n\
                 type=PATH {h} item=0 name=\"/bin/ls\" inode={} dev=fe:00 mode=0100755\n",
                10_000 + n % 30_000,
                if sensor_side { "(null)" } else { "\"x\"" },
                if sensor_side && n % 10 == 0 { 1 } else { 2 },
            );
            if !sensor_side {
                ev += &format!("type=EOE {h}\n");
                written += ev.len();
            }
            out.write_all(ev.as_bytes()).unwrap();
        }
        n += 1;
    }
    kernel.flush().unwrap();
    sensor.flush().unwrap();
    (k, s, n)
}

#[test]
fn compare_of_large_logs_runs_in_bounded_memory() {
    let dir = scratch("compare-large");
    // 64 MB of kernel log: matching whole logs took more than twice their size.
    let (kernel, sensor, events) = write_logs(&dir, 64 << 20);
    let args = [
        Path::new("compare"),
        Path::new("--json"),
        Path::new("--audit-log"),
        kernel.as_path(),
        Path::new("--sensor-log"),
        sensor.as_path(),
    ];
    let run = run_measured(&args, Duration::from_secs(120));
    assert_eq!(run.status, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["kernel_events"], events);
    assert_eq!(report["matched_events"], events);
    let path = &report["types"]["PATH"];
    assert_eq!(path["fields"]["inode"]["count"], events.div_ceil(10));
    assert!(
        run.peak_kib < 100 << 10,
        "{} MiB for {} MiB of logs",
        run.peak_kib >> 10,
        (std::fs::metadata(&kernel).unwrap().len() + std::fs::metadata(&sensor).unwrap().len())
            >> 20
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn decode_of_an_oversized_or_overexpanding_message_fails_in_one_sentence() {
    let dir = scratch("decode-big");
    // 30 million empty arguments: 60 MB that decoded to over 1 GB.
    let big = dir.join("big.pb");
    write_execs(&big, 30_000_000, 1);
    // Under the size cap, but more arguments than any exec can have.
    let many = dir.join("many.pb");
    write_execs(&many, (1 << 20) + 1, 1);
    for (file, want) in [
        (&big, "over the 9437184-byte limit"),
        (&many, "field ExecEvent.argv is invalid"),
    ] {
        let run = run_measured(
            &[Path::new("decode"), file.as_path()],
            Duration::from_secs(30),
        );
        assert_eq!(run.status, 1, "{}", run.stderr);
        assert_one_sentence(&run.stderr, want);
        assert!(run.stdout.is_empty());
        assert!(run.peak_kib < 100 << 10, "{} KiB", run.peak_kib);
    }
    // The same file as compare's sensor log: refused the same way.
    let small = dir.join("small.log");
    std::fs::write(&small, "type=EOE msg=audit(1.000:1): \n").unwrap();
    let run = run_measured(
        &[
            Path::new("compare"),
            Path::new("--audit-log"),
            small.as_path(),
            Path::new("--sensor-log"),
            big.as_path(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_one_sentence(&run.stderr, "over the 9437184-byte limit");
    assert!(run.peak_kib < 100 << 10, "{} KiB", run.peak_kib);
    let _ = std::fs::remove_dir_all(&dir);
}
