//! The observers of `bench exec`: started before a round's storm, waited for until they have
//! done the storm's work, stopped after. The sensor writes audit text, with its default (every
//! exec) or with `--rules FILE`, or protobuf alone; auditd gets kernel audit's records, with the
//! execve rule beside the rules found or with the file's rules alone; bpftrace prints each
//! exec's argv or counts; an empty program on `sys_exit` does nothing, where every syscall's
//! exit sees it.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};

use crate::{
    bench::{host_cpu_seconds, interrupted},
    bench_audit::{audit_status, Audit, Loaded, RulesCopy},
    bench_bpftrace::Bpftrace,
    bench_hook::{EmptyExitPrograms, WATCHED},
    bench_log::{sensor_lost, LogFollower},
    bench_proc::{cpu_of, kauditd},
    bench_sensor::{
        proto_lost, proto_output, proto_path, start_sensor, start_sensor_to, SensorProcess,
    },
};

const AUDIT_LOG: &str = "/var/log/audit/audit.log";
/// How long to wait for an observer to write the storm's events, unless told otherwise.
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// An observer is idle once its CPU time has grown by less than `IDLE_CPU` seconds (1% of one
/// CPU) over `IDLE_FOR`.
const IDLE_FOR: Duration = Duration::from_millis(300);
const IDLE_CPU: f64 = 0.003;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Observer {
    None,
    /// An empty program on the raw tracepoint `sys_exit` ([`EmptyExitPrograms`]): the floor of
    /// any program on every syscall's exit.
    EmptyExit,
    /// Empty programs on each watched syscall's `syscalls:sys_exit_*` tracepoint: the floor of
    /// the design the sensor's raw tracepoint was chosen over.
    EmptyWatchedExits,
    Sensor,
    /// The sensor at its defaults writing protobuf alone, to a file: its own CPU against
    /// `Sensor`'s is what the audit text costs beside the stream.
    SensorProto,
    /// Another build of the sensor (`--baseline`), at its defaults as `Sensor`.
    SensorBaseline,
    Auditd,
    Bpftrace,
    BpftraceCount,
    SensorRules,
    AuditdRules,
}

impl Observer {
    pub(crate) fn name(self, rules: Option<&RulesCopy>) -> String {
        let file = rules.map_or("FILE", |r| r.name.as_str());
        match self {
            Observer::None => "none".into(),
            Observer::EmptyExit => "empty program on sys_exit".into(),
            Observer::EmptyWatchedExits => {
                format!("empty programs on {} sys_exit_*", WATCHED.len())
            }
            Observer::Sensor => "sensor (audit text)".into(),
            Observer::SensorProto => "sensor (protobuf)".into(),
            Observer::SensorBaseline => "sensor baseline (audit text)".into(),
            Observer::Auditd => "auditd (execve rule)".into(),
            Observer::Bpftrace => "bpftrace join(argv)".into(),
            Observer::BpftraceCount => "bpftrace count()".into(),
            Observer::SensorRules => format!("sensor --rules {file}"),
            Observer::AuditdRules => format!("auditd with {file}"),
        }
    }

    /// An empty program or programs: nothing in user space, nothing written.
    pub(crate) fn is_floor(self) -> bool {
        matches!(self, Observer::EmptyExit | Observer::EmptyWatchedExits)
    }

    pub(crate) fn is_sensor(self) -> bool {
        matches!(
            self,
            Observer::Sensor
                | Observer::SensorProto
                | Observer::SensorBaseline
                | Observer::SensorRules
        )
    }

    /// auditd's rounds: the storm's tasks get audit contexts. The others' run without, as on a
    /// host where audit was never enabled ([`Audit::without_contexts`]).
    pub(crate) fn is_kernel_audit(self) -> bool {
        matches!(self, Observer::Auditd | Observer::AuditdRules)
    }
}

/// How the wait for an observer ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum End {
    /// Nothing to wait for: no observer, or one that only counts in the kernel.
    Storm,
    /// Its log holds every exec of the storm.
    AllEvents,
    /// Not every exec of the storm is in its log (a rules file need not select them, an
    /// observer may lose some), and it has been idle for `IDLE_FOR`.
    Idle,
    Timeout,
}

/// The moment an observer had done the storm's work.
pub(crate) struct Done {
    /// Host CPU time (as `host_cpu_seconds`) and the observer's own (`Running::own_cpu`) then.
    pub(crate) host: f64,
    pub(crate) own: f64,
    pub(crate) at: Instant,
    pub(crate) end: End,
}

/// An observer during one round. A round that failed leaves nothing running: the sensor and
/// bpftrace stop when dropped, auditd's rules are `Audit`'s to put back.
pub(crate) struct Running {
    obs: Observer,
    sensor: Option<SensorProcess>,
    /// Held for the round: detached when the round's `Running` is dropped.
    _empty: Option<EmptyExitPrograms>,
    /// The protobuf row's binary and stream, for `sensor decode` to read its loss from.
    stream: Option<(PathBuf, PathBuf)>,
    bpftrace: Option<Bpftrace>,
    sensor_log: PathBuf,
    log: Option<LogFollower>,
    /// The processes that do its work: the sensor's, bpftrace's, or auditd and kauditd.
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
        Running::start_with(obs, bin, dir, audit, rules, marker, &[])
    }

    /// `start`, with more arguments for `sensor run`.
    pub(crate) fn start_with(
        obs: Observer,
        bin: &Path,
        dir: &Path,
        audit: &Audit,
        rules: Option<&RulesCopy>,
        marker: &str,
        sensor_args: &[&str],
    ) -> Result<Running> {
        let audit_lost = audit_status("lost ")?;
        let sensor_log = dir.join("sensor.log");
        let _ = std::fs::remove_file(&sensor_log);
        let _ = std::fs::remove_file(proto_path(dir));
        let rules_path = || rules.map(|r| r.path.as_path()).context("no rules file");
        let (mut sensor, mut bpftrace, mut loaded, mut empty) = (None, None, None, None);
        if !obs.is_kernel_audit() {
            audit.without_contexts(true)?;
        }
        match obs {
            Observer::None => {}
            Observer::EmptyExit => empty = Some(EmptyExitPrograms::on_sys_exit()?),
            Observer::EmptyWatchedExits => empty = Some(EmptyExitPrograms::on_each_watched_exit()?),
            Observer::Sensor | Observer::SensorBaseline => {
                sensor = Some(start_sensor(bin, dir, None, sensor_args)?)
            }
            Observer::SensorProto => {
                let output = proto_output(dir);
                sensor = Some(start_sensor_to(bin, &output, None, sensor_args)?.0)
            }
            Observer::SensorRules => {
                sensor = Some(start_sensor(bin, dir, Some(rules_path()?), sensor_args)?)
            }
            Observer::Auditd => audit.set(true)?,
            Observer::AuditdRules => loaded = Some(audit.load(rules.context("no rules file")?)?),
            Observer::Bpftrace => bpftrace = Some(Bpftrace::start(dir, false)?),
            Observer::BpftraceCount => bpftrace = Some(Bpftrace::start(dir, true)?),
        }
        let (log, pids) = match (obs, &sensor, &bpftrace) {
            (Observer::None, _, _) => (None, Vec::new()),
            (obs, _, _) if obs.is_floor() => (None, Vec::new()),
            (Observer::SensorProto, Some(child), _) => (
                Some(LogFollower::proto(&proto_path(dir), marker)),
                vec![child.id()],
            ),
            (_, Some(child), _) => (
                Some(LogFollower::new(&sensor_log, marker, false)),
                vec![child.id()],
            ),
            (Observer::BpftraceCount, _, Some(bt)) => (None, vec![bt.child.id()]),
            (_, _, Some(bt)) => (
                Some(LogFollower::words(&bt.out, marker)),
                vec![bt.child.id()],
            ),
            _ => {
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
            _empty: empty,
            stream: (obs == Observer::SensorProto).then(|| (bin.to_owned(), proto_path(dir))),
            bpftrace,
            sensor_log,
            log,
            pids,
            audit_lost,
            loaded,
        })
    }

    /// The observer's process in user space (auditd's for auditd), if any.
    pub(crate) fn process(&self) -> Option<u32> {
        match self.obs {
            Observer::None => None,
            obs if obs.is_floor() => None,
            Observer::Auditd | Observer::AuditdRules => self.pids.last().copied(),
            _ => self.pids.first().copied(),
        }
    }

    /// CPU time of the observer's processes (with kauditd for auditd), in seconds.
    pub(crate) fn own_cpu(&self) -> f64 {
        cpu_of(&self.pids)
    }

    /// Waits until the observer has done the storm's work.
    ///
    /// Exact: every exec of the storm is in the log (each is counted by the round's marker, so
    /// the order they are written in does not matter). This ends every round of the execve rule
    /// and of the sensor without rules, and of a rules file that selects `/bin/true` run by root.
    ///
    /// A rules file need not select the storm's execs (most rules want `auid>=1000`, and the
    /// bench runs without a login uid), and an observer that lost events (bpftrace's perf buffer,
    /// the sensor's ring buffer when overrun) never writes them all; then nothing in a log marks
    /// the end, and the wait ends when the observer has been idle for `IDLE_FOR`, its CPU time
    /// (auditd's and kauditd's, or the sensor's or bpftrace's threads') measured and not its log:
    /// the sensor decodes every exec in user space and writes nothing for one no rule selects, so
    /// its log stays still while it works. For auditd the kernel decides at each syscall's exit,
    /// in the storm's own time, and an exec no rule selects leaves auditd nothing to do: the wait
    /// only covers the records the rules did select. The CPU time counted is the host's at the
    /// start of the idle stretch, so the wait itself is not charged. Not exact: an observer
    /// stalled for `IDLE_FOR` with work left (blocked on a disk, say) would end the wait early.
    pub(crate) fn wait_done(&mut self, execs: usize) -> Result<Done> {
        self.wait_done_within(execs, DEADLINE)
    }

    /// `wait_done`, giving up after `deadline` rather than `DEADLINE`.
    pub(crate) fn wait_done_within(&mut self, execs: usize, deadline: Duration) -> Result<Done> {
        let Some(log) = &mut self.log else {
            let (host, own) = (host_cpu_seconds()?, cpu_of(&self.pids));
            let (at, end) = (Instant::now(), End::Storm);
            return Ok(Done { host, own, at, end });
        };
        let deadline = Instant::now() + deadline;
        // The protobuf follower does not see the sensor's loss records (`LogFollower::proto`).
        let may_miss = matches!(
            self.obs,
            Observer::SensorRules
                | Observer::AuditdRules
                | Observer::Bpftrace
                | Observer::SensorProto
        );
        // Since when the observer has been idle: (then, host cpu, its cpu, storm execs seen).
        let mut quiet: Option<(Instant, f64, f64, usize)> = None;
        loop {
            ensure!(!interrupted(), "interrupted");
            log.poll();
            let (at, host, own) = (Instant::now(), host_cpu_seconds()?, cpu_of(&self.pids));
            if log.storm_execs >= execs {
                let end = End::AllEvents;
                return Ok(Done { host, own, at, end });
            }
            if may_miss || log.lost > 0 {
                match quiet {
                    Some((since, host, own_then, seen))
                        if own - own_then < IDLE_CPU && seen == log.storm_execs =>
                    {
                        if at - since >= IDLE_FOR {
                            let (own, end) = (own_then, End::Idle);
                            return Ok(Done {
                                host,
                                own,
                                at: since,
                                end,
                            });
                        }
                    }
                    _ => quiet = Some((at, host, own, log.storm_execs)),
                }
            }
            if at > deadline {
                let end = End::Timeout;
                return Ok(Done { host, own, at, end });
            }
            std::thread::sleep(POLL);
        }
    }

    /// The storm's exec records and all records read from the observer's log.
    pub(crate) fn written(&self) -> (usize, usize) {
        self.log
            .as_ref()
            .map_or((0, 0), |l| (l.storm_execs, l.records))
    }

    /// Stops the observer; returns the events it lost, and what bpftrace's `count()` counted.
    pub(crate) fn stop(mut self, audit: &Audit) -> Result<(u64, Option<u64>)> {
        if !self.obs.is_kernel_audit() {
            audit.without_contexts(false)?;
        }
        if let Some(sensor) = self.sensor.take() {
            sensor.stop()?;
            if let Some((bin, stream)) = &self.stream {
                return Ok((proto_lost(bin, stream)?, None));
            }
            return Ok((sensor_lost(&self.sensor_log), None));
        }
        if let Some(bt) = self.bpftrace.take() {
            let counted = bt.stop()?;
            // What it printed at exit, "Lost N events" among it.
            let lost = self.log.as_mut().map_or(0, |l| {
                l.poll();
                l.lost
            });
            return Ok((lost, counted));
        }
        match self.obs {
            Observer::Auditd => audit.set(false)?,
            Observer::AuditdRules => audit.unload()?,
            _ => return Ok((0, None)),
        }
        Ok((audit_status("lost ")? - self.audit_lost, None))
    }
}
