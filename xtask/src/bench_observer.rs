//! The observers of `bench exec`: started before a round's storm, waited for until they have
//! done the storm's work, stopped after. The sensor writes audit text and protobuf, with its
//! default (every exec) or with `--rules FILE`; auditd gets kernel audit's records, with the
//! execve rule beside the rules found or with the file's rules alone.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};

use crate::{
    bench::{host_cpu_seconds, interrupted},
    bench_audit::{audit_status, Audit, Loaded, RulesCopy},
    bench_log::{sensor_lost, LogFollower},
};

const AUDIT_LOG: &str = "/var/log/audit/audit.log";
/// How long to wait for an observer to write the storm's events.
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// An observer is idle once its CPU time has grown by less than `IDLE_CPU` seconds (1% of one
/// CPU) over `IDLE_FOR`.
const IDLE_FOR: Duration = Duration::from_millis(300);
const IDLE_CPU: f64 = 0.003;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Observer {
    None,
    Sensor,
    Auditd,
    SensorRules,
    AuditdRules,
}

impl Observer {
    pub(crate) fn name(self, rules: Option<&RulesCopy>) -> String {
        let file = rules.map_or("FILE", |r| r.name.as_str());
        match self {
            Observer::None => "none".into(),
            Observer::Sensor => "sensor (audit+proto)".into(),
            Observer::Auditd => "auditd (execve rule)".into(),
            Observer::SensorRules => format!("sensor --rules {file}"),
            Observer::AuditdRules => format!("auditd with {file}"),
        }
    }
}

/// How the wait for an observer ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum End {
    /// No observer: nothing to wait for.
    Storm,
    /// Its log holds every exec of the storm.
    AllEvents,
    /// Not every exec of the storm is in its log (a rules file need not select them), and it
    /// has been idle for `IDLE_FOR`.
    Idle,
    Timeout,
}

pub(crate) fn start_sensor(bin: &Path, dir: &Path, rules: Option<&Path>) -> Result<Child> {
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("--output")
        .arg(format!("audit:{}", dir.join("sensor.log").display()))
        .arg("--output")
        .arg(format!("proto:{}", dir.join("sensor.pb").display()));
    if let Some(rules) = rules {
        cmd.arg("--rules").arg(rules);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
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

/// What `sensor rules check` makes of the rules: how many lines it applies (exec rules), leaves
/// unsupported (other syscalls, file watches without x…) and refuses, the `-i` line aside.
pub(crate) fn sensor_rules_check(bin: &Path, rules: &RulesCopy) -> Result<String> {
    let out = Command::new(bin)
        .args(["rules", "check"])
        .arg(&rules.path)
        .output()?;
    let prefix = format!("{}:", rules.path.display());
    let mut counts = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let mut words = rest.splitn(3, ": ");
        if words.next() == Some("1") {
            continue; // the -i the copy starts with
        }
        if let Some(status) = words.next() {
            *counts.entry(status.to_owned()).or_insert(0) += 1;
        }
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    Ok(parts.join(", "))
}

/// CPU time (seconds) of every thread of these processes, from the scheduler's own count in
/// nanoseconds (`/proc/PID/task/TID/schedstat`).
fn cpu_of(pids: &[u32]) -> f64 {
    let mut ns = 0u64;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

/// The kernel thread that hands kernel audit's records to auditd.
fn kauditd() -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "kauditd")
        })
        .collect()
}

/// An observer during one round.
pub(crate) struct Running {
    obs: Observer,
    sensor: Option<Child>,
    sensor_log: PathBuf,
    log: Option<LogFollower>,
    /// The processes that do its work after the storm.
    pids: Vec<u32>,
    audit_lost: u64,
    /// For auditd with the file: rules in the kernel, lines auditctl refused.
    pub(crate) loaded: Option<Loaded>,
}

impl Running {
    pub(crate) fn start(
        obs: Observer,
        bin: &Path,
        dir: &Path,
        audit: &Audit,
        rules: Option<&RulesCopy>,
        marker: &str,
    ) -> Result<Running> {
        let audit_lost = audit_status("lost ")?;
        let sensor_log = dir.join("sensor.log");
        let _ = std::fs::remove_file(&sensor_log);
        let _ = std::fs::remove_file(dir.join("sensor.pb"));
        let rules_path = || rules.map(|r| r.path.as_path()).context("no rules file");
        let (mut sensor, mut loaded) = (None, None);
        match obs {
            Observer::None => {}
            Observer::Sensor => sensor = Some(start_sensor(bin, dir, None)?),
            Observer::SensorRules => sensor = Some(start_sensor(bin, dir, Some(rules_path()?))?),
            Observer::Auditd => audit.set(true)?,
            Observer::AuditdRules => loaded = Some(audit.load(rules.context("no rules file")?)?),
        }
        let (log, pids) = match (obs, &sensor) {
            (Observer::None, _) => (None, Vec::new()),
            (_, Some(child)) => (
                Some(LogFollower::new(&sensor_log, marker, false)),
                vec![child.id()],
            ),
            (_, None) => {
                let mut pids = kauditd();
                pids.push(audit.pid);
                (
                    Some(LogFollower::new(Path::new(AUDIT_LOG), marker, true)),
                    pids,
                )
            }
        };
        Ok(Running {
            obs,
            sensor,
            sensor_log,
            log,
            pids,
            audit_lost,
            loaded,
        })
    }

    /// Waits until the observer has done the storm's work; returns the host CPU time (as
    /// `host_cpu_seconds`) and the time at that moment, and how the wait ended.
    ///
    /// Exact: every exec of the storm is in the log (each is counted by the round's marker, so
    /// the order they are written in does not matter). This ends every round of the execve rule
    /// and of the sensor without rules, and of a rules file that selects `/bin/true` run by root.
    ///
    /// A rules file need not select the storm's execs (most rules want `auid>=1000`, and the
    /// bench runs without a login uid); then nothing in a log marks the end, and the wait ends
    /// when the observer has been idle for `IDLE_FOR`, its CPU time (auditd's and kauditd's, or
    /// the sensor's threads') measured and not its log: the sensor decodes every exec in user space
    /// and writes nothing for one no rule selects, so its log stays still while it works. For
    /// auditd the kernel decides at each syscall's exit, in the storm's own time, and an exec no
    /// rule selects leaves auditd nothing to do: the wait only covers the records the rules did
    /// select. The CPU time counted is the host's at the start of the idle stretch, so the wait
    /// itself is not charged. Not exact: an observer stalled for `IDLE_FOR` with work left
    /// (blocked on a disk, say) would end the wait early.
    pub(crate) fn wait_done(&mut self, execs: usize) -> Result<(f64, Instant, End)> {
        let Some(log) = &mut self.log else {
            return Ok((host_cpu_seconds()?, Instant::now(), End::Storm));
        };
        let deadline = Instant::now() + DEADLINE;
        let rules = matches!(self.obs, Observer::SensorRules | Observer::AuditdRules);
        // Since when the observer has been idle: (then, host cpu, its cpu, storm execs seen).
        let mut quiet: Option<(Instant, f64, f64, usize)> = None;
        loop {
            ensure!(!interrupted(), "interrupted");
            log.poll();
            let (now, host) = (Instant::now(), host_cpu_seconds()?);
            if log.storm_execs >= execs {
                return Ok((host, now, End::AllEvents));
            }
            if rules {
                let busy = cpu_of(&self.pids);
                match quiet {
                    Some((since, host_then, busy_then, seen))
                        if busy - busy_then < IDLE_CPU && seen == log.storm_execs =>
                    {
                        if now - since >= IDLE_FOR {
                            return Ok((host_then, since, End::Idle));
                        }
                    }
                    _ => quiet = Some((now, host, busy, log.storm_execs)),
                }
            }
            if now > deadline {
                return Ok((host, now, End::Timeout));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The storm's EXECVE records and all records read from the observer's log.
    pub(crate) fn written(&self) -> (usize, usize) {
        self.log
            .as_ref()
            .map_or((0, 0), |l| (l.storm_execs, l.records))
    }

    /// Stops the observer; returns the events it lost.
    pub(crate) fn stop(mut self, audit: &Audit) -> Result<u64> {
        if let Some(child) = self.sensor.take() {
            stop_sensor(child)?;
            return Ok(sensor_lost(&self.sensor_log));
        }
        match self.obs {
            Observer::Auditd => audit.set(false)?,
            Observer::AuditdRules => audit.unload()?,
            _ => return Ok(0),
        }
        Ok(audit_status("lost ")? - self.audit_lost)
    }
}

impl Drop for Running {
    /// A round that failed does not leave the sensor running (auditd's rules are `Audit`'s).
    fn drop(&mut self) {
        if let Some(mut child) = self.sensor.take() {
            // SAFETY: plain signal to our child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}
