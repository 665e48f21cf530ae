//! Shared harness for the integration tests: they run as root, load real eBPF programs, and
//! touch global state (kernel audit), so each test takes `GLOBAL` for its whole run.

#![allow(dead_code)]

pub mod auditd;
pub mod compare;
pub mod corpus;
pub mod pam;
pub mod sysctl;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sensor::{
    encode::parse::{exec_event, group_events, parse_log},
    event::ExecEvent,
};

static GLOBAL: Mutex<()> = Mutex::new(());

/// Serialises tests that attach probes or change audit state; fails loudly without root.
pub fn exclusive() -> MutexGuard<'static, ()> {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "integration tests load eBPF programs and drive auditd: run them as root"
    );
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn sensor_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sensor")
}

/// A scratch directory unique to this test run.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sensor-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The sensor running in the background.
pub struct Sensor {
    child: Child,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// When the sensor said it had stopped (its last record out).
    stopped: std::sync::mpsc::Receiver<Instant>,
}

/// A test that fails half-way must not leave its sensor running (it holds the probes, and the
/// integration-test lock through an inherited descriptor).
impl Drop for Sensor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Sensor {
    /// Starts `sensor run ARGS` and waits until it says its probes are attached.
    pub fn start(args: &[&str]) -> Sensor {
        // A slower machine (the 6.1 tier's emulated guest) sets a longer lookup deadline, and
        // may set the probe set (where the test does not).
        let deadline = std::env::var("SENSOR_IT_LOOKUP_DEADLINE_MS").ok();
        let probe_set = std::env::var("SENSOR_IT_PROBE_SET")
            .ok()
            .filter(|_| !args.contains(&"--probe-set"));
        let mut child = Command::new(sensor_bin())
            .arg("run")
            .args(args)
            .args(
                deadline
                    .iter()
                    .flat_map(|ms| ["--lookup-deadline-ms", ms.as_str()]),
            )
            .args(probe_set.iter().flat_map(|s| ["--probe-set", s.as_str()]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sensor");
        let (tx, rx) = std::sync::mpsc::channel();
        let (stopped_tx, stopped) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("probes attached") {
                    let _ = tx.send(());
                }
                if line.starts_with("sensor: stopped") {
                    let _ = stopped_tx.send(Instant::now());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sensor did not attach its probes: {}",
                reader.join().unwrap()
            );
        }
        Sensor {
            child,
            stderr: Some(reader),
            stopped,
        }
    }

    /// SIGTERM, as a script would; returns (exit status, stderr).
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let status = self.wait(Duration::from_secs(30));
        (status, self.stderr.take().unwrap().join().unwrap())
    }

    /// When the sensor said `sensor: stopped` (its last record written), waiting at most `limit`.
    pub fn stopped_at(&self, limit: Duration) -> Option<Instant> {
        self.stopped.recv_timeout(limit).ok()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("sensor did not exit within {limit:?} of the signal");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every exec event of an audit log (the sensor's or auditd's), parsed back into the model.
pub fn exec_events(log: &Path) -> Vec<ExecEvent> {
    let text = std::fs::read(log).unwrap_or_default();
    let records =
        parse_log(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", log.display()));
    group_events(records)
        .into_iter()
        .filter(|ev| {
            ev.iter().any(|r| r.rtype == b"SYSCALL") && ev.iter().all(|r| r.rtype != b"DAEMON_ERR")
        })
        .filter_map(|ev| exec_event(&ev).ok())
        .filter(|ev| {
            matches!(
                ev.syscall,
                sensor::event::Syscall::EXECVE | sensor::event::Syscall::EXECVEAT
            )
        })
        .collect()
}

/// Polls `f` until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Where [`Sensor::start_logging`] writes: the same events as enriched text, raw text and
/// protobuf.
pub struct Logs {
    pub enriched: PathBuf,
    pub raw: PathBuf,
    pub proto: PathBuf,
}

impl Sensor {
    /// Starts the sensor writing all three formats into `dir`.
    pub fn start_logging(dir: &Path) -> (Sensor, Logs) {
        Self::start_logging_with(dir, &[])
    }

    /// As [`Sensor::start_logging`], with more options.
    pub fn start_logging_with(dir: &Path, extra: &[&str]) -> (Sensor, Logs) {
        let logs = Logs {
            enriched: dir.join("sensor.log"),
            raw: dir.join("sensor.raw"),
            proto: dir.join("sensor.pb"),
        };
        let (enriched, raw, proto) = (
            format!("enriched:{}", logs.enriched.display()),
            format!("audit:{}", logs.raw.display()),
            format!("proto:{}", logs.proto.display()),
        );
        let mut args = vec!["--output", &enriched, "--output", &raw, "--output", &proto];
        args.extend_from_slice(extra);
        let sensor = Sensor::start(&args);
        (sensor, logs)
    }

    /// Stops the sensor, checks that it exited cleanly and that its protobuf output decodes to
    /// its audit text; returns the enriched text.
    pub fn stop_and_read(self, logs: &Logs) -> Vec<u8> {
        self.stop_and_read_saying(logs).0
    }

    /// As [`Sensor::stop_and_read`], with what the sensor said on stderr.
    pub fn stop_and_read_saying(self, logs: &Logs) -> (Vec<u8>, String) {
        let (status, stderr) = self.stop();
        assert!(status.success(), "{stderr}");
        assert_decodes_to(&logs.proto, &logs.raw);
        (std::fs::read(&logs.enriched).unwrap(), stderr)
    }
}

/// `sensor decode PROTO` gives the `audit` output of the same run, byte for byte.
pub fn assert_decodes_to(proto: &Path, audit: &Path) {
    let decoded = Command::new(sensor_bin())
        .arg("decode")
        .arg(proto)
        .output()
        .unwrap();
    assert!(
        decoded.status.success(),
        "decode: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    assert_eq!(
        decoded.stdout,
        std::fs::read(audit).unwrap(),
        "decode(proto) differs from the audit output"
    );
}

/// A file's text, empty when it cannot be read (yet).
pub fn text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Runs `/bin/true` with a marker argument unique to this test run; returns the marker.
pub fn marker(tag: &str) -> String {
    let m = format!("sensorit-{tag}-{}", std::process::id());
    Command::new("/bin/true").arg(&m).status().unwrap();
    m
}

/// Every line is a whole record: `type=… msg=audit(…): … ` ending in a newline.
pub fn whole_records(log: &str) -> bool {
    log.is_empty()
        || (log.ends_with('\n')
            && log
                .lines()
                .all(|l| l.starts_with("type=") && l.contains(" msg=audit(")))
}

/// The last loss record's value of `field`.
pub fn last_lost(log: &str, field: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("op=sensor_lost"))?;
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))?
        .trim_matches('"')
        .parse()
        .ok()
}

/// A small tmpfs mounted for a test (a file system that fills up), unmounted on drop, also
/// when the test fails.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "sensorit"])
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
