//! `cargo xtask bench exec`: an exec storm (fork+exec of /bin/true, many thousand times) timed
//! with nothing observing, with the sensor writing audit text, with auditd's execve rule (backlog
//! limit 8192), with bpftrace printing each exec's argv or only counting execs, and with the
//! floors of watching syscall exits (empty programs, `bench_hook.rs`), in alternating rounds;
//! with `--rules FILE` also with the sensor and with auditd under that file's rules. The cost of
//! an observer is what the host spends beyond the bare storm of the same round: wall time of the
//! storm, and host CPU time (all CPUs, from /proc/stat) from the storm's start until the
//! observer has done the storm's work (`Running::wait_done`); then the observer's own CPU time,
//! its BPF programs' time in the kernel (`bench_bpf`), and its memory. Kernel audit's state
//! (daemon, enabled, rules, backlog limit) and `kernel.bpf_stats_enabled` are restored at the
//! end, also after an error or Ctrl-C (`bench_audit`). `--throughput` is `bench_throughput`.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};

use crate::{
    bench_apart,
    bench_audit::{Audit, Loaded, RulesCopy},
    bench_bpf::{counters, delta, listing, BpfStats},
    bench_observer::{End, Observer, Running},
    bench_proc::{MemSampler, Memory},
    bench_sensor::sensor_rules_check,
    bench_table::{details, table},
};

/// The backlog limit auditd's rounds run with: Debian's audit.rules sets it.
pub(crate) const AUDIT_BACKLOG: u64 = 8192;

pub(crate) struct Sample {
    pub(crate) wall: Duration,
    pub(crate) cpu: f64,
    /// The observer's own CPU time (its processes, and kauditd for auditd), storm to done.
    pub(crate) own: f64,
    /// The storm's exec events written, and all records written, until the wait ended.
    pub(crate) seen: usize,
    pub(crate) records: usize,
    /// From the storm's end until the observer had done its work.
    pub(crate) lag: Duration,
    pub(crate) lost: u64,
    pub(crate) end: End,
    /// What bpftrace's `count()` counted (every exec on the host while it ran).
    pub(crate) counted: Option<u64>,
    /// Its BPF programs' time and runs by name, storm to done.
    pub(crate) bpf: BTreeMap<String, (u64, u64)>,
    pub(crate) mem: Option<Memory>,
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

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether SIGINT, SIGTERM or SIGHUP came: the round in progress fails, and kernel audit is put
/// back as it was on the way out (a rules file loaded with `-D` first must not stay behind).
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The signals caught while it lives (their former handling put back on drop).
pub(crate) struct Signals([libc::sighandler_t; 3]);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

impl Signals {
    pub(crate) fn catch() -> Signals {
        // SAFETY: the handler only stores to an atomic.
        Signals(
            SIGNALS.map(|sig| unsafe {
                libc::signal(sig, on_signal as *const () as libc::sighandler_t)
            }),
        )
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (sig, was) in SIGNALS.into_iter().zip(self.0) {
            // SAFETY: a disposition `signal` returned.
            unsafe { libc::signal(sig, was) };
        }
    }
}

fn storm(execs: usize, marker: &str) -> Result<()> {
    for _ in 0..execs {
        let status = Command::new("/bin/true").arg(marker).status()?;
        ensure!(!interrupted(), "interrupted");
        ensure!(status.success(), "/bin/true failed");
    }
    Ok(())
}

/// The bench's scratch directory, removed on the way out whatever happened.
pub(crate) struct Scratch(pub(crate) std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Bench<'a> {
    bin: &'a Path,
    dir: &'a Path,
    audit: &'a Audit,
    rules: Option<&'a RulesCopy>,
    execs: usize,
    /// `--baseline`: another build of the sensor.
    baseline: Option<&'a Path>,
    /// Whether bpftool runs here.
    bpftool: bool,
}

impl Bench<'_> {
    /// One round of one observer; with auditd and the rules file also what the kernel loaded.
    /// Its BPF programs' time is taken only when `kernel.bpf_stats_enabled` is on (`stats`).
    fn round(&self, obs: Observer, tag: &str, stats: bool) -> Result<(Sample, Option<Loaded>)> {
        let marker = format!("bench-{tag}");
        let bin = match (obs, self.baseline) {
            (Observer::SensorBaseline, Some(b)) => b,
            _ => self.bin,
        };
        let mut running = Running::start(obs, bin, self.dir, self.audit, self.rules, &marker)?;
        let process = running.process();
        // auditd's work is in the kernel's audit code, not in BPF programs.
        let auditd = obs.is_kernel_audit();
        let bpf_of = process.filter(|_| stats && self.bpftool && !auditd);
        let names = bpf_of.map(listing).transpose()?.unwrap_or_default();
        let bpf0 = bpf_of.map(counters).transpose()?;
        let sampler = process.map(MemSampler::start);
        let own0 = running.own_cpu();
        let cpu0 = host_cpu_seconds()?;
        let t0 = Instant::now();
        storm(self.execs, &marker)?;
        let wall = t0.elapsed();
        let done = running.wait_done(self.execs)?;
        let mem = sampler.map(MemSampler::finish);
        let bpf = match (bpf_of, bpf0) {
            (Some(pid), Some(bpf0)) => delta(&bpf0, &counters(pid)?, &names),
            _ => BTreeMap::new(),
        };
        let (seen, records) = running.written();
        let loaded = running.loaded.take();
        let (lost, counted) = running.stop(self.audit)?;
        let sample = Sample {
            wall,
            cpu: done.host - cpu0,
            own: done.own - own0,
            lag: done.at.saturating_duration_since(t0 + wall),
            seen,
            records,
            lost,
            end: done.end,
            counted,
            bpf,
            mem,
        };
        Ok((sample, loaded))
    }
}

/// Runs the bench; `bin` is the built agent.
/// `baseline`: another build of the sensor, timed in the same rounds (before and after a
/// change, on a host whose speed drifts between minutes).
pub fn exec(
    bin: &Path,
    execs: usize,
    rounds: usize,
    rules: Option<&Path>,
    baseline: Option<&Path>,
) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the bench loads eBPF programs and drives auditd: run it as root"
    );
    ensure!(
        execs > 0 && rounds > 0,
        "--execs and --rounds must be above 0"
    );
    let bpftrace = crate::bench_bpftrace::available();
    let bpftool = crate::bench_bpftrace::installed("bpftool", "the BPF programs' time is left out");
    // Held until kernel audit is put back (dropped last).
    let _lock = crate::test::machine_lock()?;
    let scratch =
        Scratch(std::env::temp_dir().join(format!("sensor-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let dir = scratch.0.as_path();
    let rules = rules.map(|r| RulesCopy::new(r, dir)).transpose()?;
    let mut about = String::new();
    if let Some(r) = &rules {
        let skipped = match r.skipped.len() {
            0 => String::new(),
            n => format!(", {n} other lines left out ({})", r.skipped.join(" ")),
        };
        about = format!(
            "rules: {}: {} rule lines kept{skipped}; sensor rules check: {}",
            r.name,
            r.kept,
            sensor_rules_check(bin, r)?
        );
        eprintln!("{about}");
    }
    let mut order = vec![
        Observer::None,
        Observer::EmptyExit,
        Observer::EmptyWatchedExits,
        Observer::Sensor,
        Observer::SensorProto,
    ];
    if baseline.is_some() {
        order.push(Observer::SensorBaseline);
    }
    order.push(Observer::Auditd);
    if bpftrace {
        order.extend([Observer::Bpftrace, Observer::BpftraceCount]);
    }
    if rules.is_some() {
        order.extend([Observer::SensorRules, Observer::AuditdRules]);
    }
    let names: Vec<String> = order.iter().map(|o| o.name(rules.as_ref())).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);

    let signals = Signals::catch();
    let mut audit = Audit::prepare()?;
    audit.set_backlog(AUDIT_BACKLOG)?;
    let bench = Bench {
        bin,
        dir,
        audit: &audit,
        rules: rules.as_ref(),
        execs,
        baseline,
        bpftool,
    };
    let mut samples: Vec<Vec<Sample>> = Vec::new();
    let mut loaded = None;
    // A warm-up storm fills the page cache so the first measured round is not penalised.
    storm(execs / 10, "bench-warmup")?;
    for r in 0..rounds {
        let mut row = Vec::new();
        for (i, obs) in order.iter().enumerate() {
            let (s, l) = bench.round(*obs, &format!("{r}-{i}-{}", std::process::id()), false)?;
            if let Some(l) = l.filter(|_| loaded.is_none()) {
                let held = format!(
                    "kernel holds {} rules, auditctl refused {} lines",
                    l.rules,
                    l.refused.len()
                );
                eprintln!("rules: {held}");
                for line in l.refused {
                    eprintln!("    refused: {line}");
                }
                loaded = Some(held);
            }
            eprintln!(
                "round {r} {:<width$}  wall {:>6.2}s  host cpu {:>6.2}s  own cpu {:>5.2}s  done +{:.2}s ({:?})  storm events {:>6}  records {:>7}  lost {}",
                names[i],
                s.wall.as_secs_f64(),
                s.cpu,
                s.own,
                s.lag.as_secs_f64(),
                s.end,
                s.seen,
                s.records,
                s.lost,
            );
            row.push(s);
        }
        samples.push(row);
    }
    // The programs' in-kernel time, from one more round of each observer that has BPF programs:
    // `kernel.bpf_stats_enabled` adds two clock reads to every program run, which the timed
    // rounds above must not pay (with a program on every syscall, it doubled the sensor's wall
    // overhead on an open+close loop).
    let mut bpf = vec![BTreeMap::new(); order.len()];
    if bpftool {
        let _stats = BpfStats::enable()?;
        for (i, obs) in order.iter().enumerate() {
            // The protobuf row runs the same programs as the audit text's.
            if obs.is_floor()
                || matches!(
                    obs,
                    Observer::None
                        | Observer::Auditd
                        | Observer::AuditdRules
                        | Observer::SensorProto
                )
            {
                continue;
            }
            let (s, _) = bench.round(*obs, &format!("stats-{i}-{}", std::process::id()), true)?;
            eprintln!(
                "stats round {:<width$}  wall {:>6.2}s (bpf stats on)",
                names[i],
                s.wall.as_secs_f64()
            );
            bpf[i] = s.bpf;
        }
    }
    // The sensor's programs apart (`bench_apart.rs`), each build in its own loops.
    let mut apart = Vec::new();
    if bpftool {
        for (i, obs) in order.iter().enumerate() {
            let bin = match obs {
                Observer::Sensor => bin,
                Observer::SensorBaseline => baseline.unwrap_or(bin),
                _ => continue,
            };
            // Best effort: what the rounds measured is printed whatever happens here.
            match bench_apart::measure(bin, dir) {
                Ok(a) => apart.push((i, a)),
                Err(e) => eprintln!("bench: {}'s programs apart left out: {e:#}", names[i]),
            }
        }
    }
    let floor = match bpftool && bpftrace && !apart.is_empty() {
        true => bench_apart::floor(dir)
            .inspect_err(|e| eprintln!("bench: the empty program's time left out: {e:#}"))
            .ok(),
        false => None,
    };
    drop(audit);
    drop(signals);

    println!("exec storm: {execs} fork+exec of /bin/true, {rounds} rounds; overheads against the same round's none: median [min .. max]");
    if rules.is_some() {
        println!("{about}; {}", loaded.unwrap_or_default());
    }
    table(&samples, &order, &names, width, execs);
    details(&samples, &bpf, &order, &names, width, execs);
    if !apart.is_empty() {
        println!();
        println!(
            "the sensor's programs apart (bpf stats on): per failed execve of a missing file, median of 3 loops of {} (exit: an upper bound, the program's other runs on the host in that time count in), and per open+close of /dev/null, {}:",
            bench_apart::FAILED_EXECS,
            bench_apart::PAIRS
        );
        for (i, a) in &apart {
            println!("{}", bench_apart::line(&names[*i], a, &bpf[*i], execs));
        }
        println!(
            "per exec of a static program that exits at once, from a clone(CLONE_VM | CLONE_VFORK) child (some 4-5 runs of sys_exit per exec), the loop of 3 of {} with the median total:",
            bench_apart::STATIC_EXECS
        );
        for (i, a) in &apart {
            println!("{}", bench_apart::static_line(&names[*i], a));
        }
    }
    if let Some(f) = floor {
        println!("  an empty program on raw_syscalls:sys_exit (bpftrace): {f:.0} ns per run, the floor of what the statistics measure of a program here");
        for (i, _) in &apart {
            println!(
                "{}",
                bench_apart::beyond_floor(&names[*i], &bpf[*i], execs, f)
            );
        }
    }
    Ok(())
}
