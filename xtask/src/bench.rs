//! `cargo xtask bench exec`: an exec storm (fork+exec of /bin/true, many thousand times) timed
//! with nothing observing, with the sensor writing audit text and protobuf, and with auditd's
//! execve rule, in alternating rounds. The cost of an observer is what the host spends beyond
//! the bare storm: wall time of the storm and host CPU time (all CPUs, from /proc/stat) from the
//! storm's start until the observer has written the storm's last event. Kernel audit's state
//! (daemon, enabled, rules) is restored at the end.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};

const AUDIT_LOG: &str = "/var/log/audit/audit.log";
const RULE: &[&str] = &[
    "always,exit",
    "-F",
    "arch=b64",
    "-S",
    "execve",
    "-k",
    "sensor-bench",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Observer {
    None,
    Sensor,
    Auditd,
}

impl Observer {
    fn name(self) -> &'static str {
        match self {
            Observer::None => "none",
            Observer::Sensor => "sensor (audit+proto)",
            Observer::Auditd => "auditd (execve rule)",
        }
    }
}

struct Sample {
    wall: Duration,
    cpu: f64,
    seen: usize,
    lost: u64,
}

/// Busy jiffies of all CPUs (user, nice, system, irq, softirq, steal), in seconds.
pub(crate) fn host_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    ensure!(v.len() >= 8, "unexpected /proc/stat: {line}");
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(busy as f64 / hz)
}

fn auditctl(args: &[&str]) -> Result<String> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("auditctl (Debian package auditd)")?;
    ensure!(
        out.status.success(),
        "auditctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn audit_status(field: &str) -> Result<u64> {
    let s = auditctl(&["-s"])?;
    Ok(s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0))
}

/// Where a log was when a round started; auditd rotates its log (`max_log_file`), so a storm
/// can continue in a new file while the old one becomes `.1`.
#[derive(Clone, Copy)]
struct LogMark {
    ino: u64,
    offset: u64,
}

fn mark(log: &Path) -> LogMark {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(log)
        .map(|m| LogMark {
            ino: m.ino(),
            offset: m.len(),
        })
        .unwrap_or(LogMark { ino: 0, offset: 0 })
}

/// Counts EXECVE records with `a1="MARKER"` in `log` from byte `from` on.
fn count_in(log: &Path, from: u64, needle: &[u8]) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = Vec::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let _ = f.read_to_end(&mut text);
        }
    }
    text.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"type=EXECVE") && l.windows(needle.len()).any(|w| w == needle))
        .count()
}

/// The storm's events written since `start`, across one rotation.
fn count_marker(log: &Path, start: LogMark, marker: &str) -> usize {
    use std::os::unix::fs::MetadataExt;
    let needle = format!(" a1=\"{marker}\"");
    let now = std::fs::metadata(log).map(|m| m.ino()).unwrap_or(0);
    if now == start.ino {
        return count_in(log, start.offset, needle.as_bytes());
    }
    let rotated = PathBuf::from(format!("{}.1", log.display()));
    count_in(&rotated, start.offset, needle.as_bytes()) + count_in(log, 0, needle.as_bytes())
}

/// Sum of `lost=` deltas in the sensor's DAEMON_ERR records.
fn sensor_lost(log: &Path) -> u64 {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    text.lines()
        .filter(|l| l.starts_with("type=DAEMON_ERR") && l.contains("op=sensor_lost"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("lost="))
                .and_then(|v| v.parse().ok())
        })
        .max()
        .unwrap_or(0)
}

pub(crate) struct Audit {
    was_enabled: u64,
    started: Option<u32>,
}

impl Audit {
    pub(crate) fn prepare() -> Result<Audit> {
        let was_enabled = audit_status("enabled ")?;
        let started = if audit_status("pid ")? == 0 {
            ensure!(
                Command::new("auditd").status()?.success(),
                "auditd failed to start"
            );
            let t = Instant::now();
            while audit_status("pid ")? == 0 {
                ensure!(
                    t.elapsed() < Duration::from_secs(10),
                    "auditd did not register"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(audit_status("pid ")? as u32)
        } else {
            None
        };
        auditctl(&["-e", "0"])?;
        Ok(Audit {
            was_enabled,
            started,
        })
    }

    fn set(&self, on: bool) -> Result<()> {
        let mut args = vec![if on { "-a" } else { "-d" }];
        args.extend_from_slice(RULE);
        auditctl(&args)?;
        self.enable(on)
    }

    /// Kernel audit on or off, without rules.
    pub(crate) fn enable(&self, on: bool) -> Result<()> {
        auditctl(&["-e", if on { "1" } else { "0" }])?;
        Ok(())
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        let mut del = vec!["-d"];
        del.extend_from_slice(RULE);
        let _ = Command::new("auditctl").args(&del).output();
        if let Some(pid) = self.started {
            // SAFETY: plain signal to a pid we started.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let t = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && t.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = Command::new("auditctl")
            .args(["-e", &self.was_enabled.to_string()])
            .output();
    }
}

pub(crate) fn start_sensor(bin: &Path, dir: &Path) -> Result<Child> {
    let mut child = Command::new(bin)
        .arg("run")
        .arg("--output")
        .arg(format!("audit:{}", dir.join("sensor.log").display()))
        .arg("--output")
        .arg(format!("proto:{}", dir.join("sensor.pb").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // Wait for "probes attached" on stderr.
    let mut stderr = child.stderr.take().context("sensor stderr")?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("probes attached") {
        let n = std::io::Read::read(&mut stderr, &mut buf)?;
        if n == 0 {
            bail!("sensor exited: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    // Keep draining stderr so the sensor never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Ok(child)
}

pub(crate) fn stop_sensor(mut child: Child) -> Result<()> {
    // SAFETY: plain signal to our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait()?;
    ensure!(status.success(), "sensor exited with {status}");
    Ok(())
}

fn storm(execs: usize, marker: &str) -> Result<()> {
    for _ in 0..execs {
        let status = Command::new("/bin/true").arg(marker).status()?;
        ensure!(status.success(), "/bin/true failed");
    }
    Ok(())
}

fn round(
    obs: Observer,
    execs: usize,
    tag: &str,
    bin: &Path,
    dir: &Path,
    audit: &Audit,
) -> Result<Sample> {
    let marker = format!("bench-{tag}");
    let sensor_log = dir.join("sensor.log");
    let _ = std::fs::remove_file(&sensor_log);
    let _ = std::fs::remove_file(dir.join("sensor.pb"));
    let sensor = match obs {
        Observer::Sensor => Some(start_sensor(bin, dir)?),
        _ => None,
    };
    if obs == Observer::Auditd {
        audit.set(true)?;
    }
    let audit_from = mark(Path::new(AUDIT_LOG));
    let audit_lost = audit_status("lost ")?;

    let cpu0 = host_cpu_seconds()?;
    let t0 = Instant::now();
    storm(execs, &marker)?;
    let wall = t0.elapsed();
    // The observer's work is done when the storm's last event is written.
    let (log, from) = match obs {
        Observer::Sensor => (
            Some(sensor_log.clone()),
            LogMark {
                ino: mark(&sensor_log).ino,
                offset: 0,
            },
        ),
        Observer::Auditd => (Some(PathBuf::from(AUDIT_LOG)), audit_from),
        Observer::None => (None, audit_from),
    };
    let mut seen = 0;
    if let Some(log) = &log {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            seen = count_marker(log, from, &marker);
            if seen >= execs || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let cpu = host_cpu_seconds()? - cpu0;

    let lost = match obs {
        Observer::Sensor => {
            stop_sensor(sensor.context("sensor")?)?;
            sensor_lost(&sensor_log)
        }
        Observer::Auditd => {
            audit.set(false)?;
            audit_status("lost ")? - audit_lost
        }
        Observer::None => 0,
    };
    Ok(Sample {
        wall,
        cpu,
        seen,
        lost,
    })
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the bench; `bin` is the built agent.
pub fn exec(bin: &Path, execs: usize, rounds: usize) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the bench loads eBPF programs and drives auditd: run it as root"
    );
    let dir = std::env::temp_dir().join(format!("sensor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let audit = Audit::prepare()?;
    let order = [Observer::None, Observer::Sensor, Observer::Auditd];
    let mut samples: Vec<(Observer, Sample)> = Vec::new();
    // A warm-up storm fills the page cache so the first measured round is not penalised.
    storm(execs / 10, "bench-warmup")?;
    for r in 0..rounds {
        for (i, obs) in order.iter().enumerate() {
            let s = round(
                *obs,
                execs,
                &format!("{r}-{i}-{}", std::process::id()),
                bin,
                &dir,
                &audit,
            )?;
            eprintln!(
                "round {r} {:<22} wall {:>6.2}s  host cpu {:>6.2}s  events {:>6}  lost {}",
                obs.name(),
                s.wall.as_secs_f64(),
                s.cpu,
                s.seen,
                s.lost
            );
            samples.push((*obs, s));
        }
    }
    drop(audit);
    let _ = std::fs::remove_dir_all(&dir);

    let of = |o: Observer, f: &dyn Fn(&Sample) -> f64| {
        median(
            samples
                .iter()
                .filter(|s| s.0 == o)
                .map(|s| f(&s.1))
                .collect(),
        )
    };
    let wall = |s: &Sample| s.wall.as_secs_f64();
    let cpu = |s: &Sample| s.cpu;
    let (w0, c0) = (of(Observer::None, &wall), of(Observer::None, &cpu));
    println!("exec storm: {execs} fork+exec of /bin/true, {rounds} rounds, medians");
    println!(
        "{:<22} {:>9} {:>10} {:>9} {:>10} {:>7} {:>8}",
        "observer", "wall s", "wall +%", "cpu s", "cpu +%", "lost", "missing"
    );
    let mut over = [0.0f64; 2];
    for (k, obs) in order.iter().enumerate() {
        let (w, c) = (of(*obs, &wall), of(*obs, &cpu));
        let lost: u64 = samples
            .iter()
            .filter(|s| s.0 == *obs)
            .map(|s| s.1.lost)
            .sum();
        let missing: usize = match obs {
            Observer::None => 0,
            _ => samples
                .iter()
                .filter(|s| s.0 == *obs)
                .map(|s| execs.saturating_sub(s.1.seen))
                .sum(),
        };
        println!(
            "{:<22} {w:>9.2} {:>9.1}% {c:>9.2} {:>9.1}% {lost:>7} {missing:>8}",
            obs.name(),
            (w / w0 - 1.0) * 100.0,
            (c / c0 - 1.0) * 100.0
        );
        if k > 0 {
            over[k - 1] = c / c0 - 1.0;
        }
    }
    println!(
        "sensor overhead / auditd overhead (host cpu): {:.2} (target < 0.5)",
        if over[1] > 0.0 {
            over[0] / over[1]
        } else {
            f64::NAN
        }
    );
    Ok(())
}
