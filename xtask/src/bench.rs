//! `cargo xtask bench exec`: an exec storm (fork+exec of /bin/true, many thousand times) timed
//! with nothing observing, with the sensor writing audit text and protobuf, and with auditd's
//! execve rule, in alternating rounds; with `--rules FILE` also with the sensor and with auditd
//! under that file's rules. The cost of an observer is what the host spends beyond the bare
//! storm of the same round: wall time of the storm, and host CPU time (all CPUs, from /proc/stat)
//! from the storm's start until the observer has done the storm's work (`Running::wait_done`).
//! Kernel audit's state (daemon, enabled, rules) is restored at the end, also after an error or
//! Ctrl-C (`bench_audit`).

use std::{
    path::Path,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};

use crate::{
    bench_audit::{Audit, Loaded, RulesCopy},
    bench_observer::{sensor_rules_check, End, Observer, Running},
};

struct Sample {
    wall: Duration,
    cpu: f64,
    /// The storm's exec events written, and all records written, until the wait ended.
    seen: usize,
    records: usize,
    /// From the storm's end until the observer had done its work.
    lag: Duration,
    lost: u64,
    end: End,
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
struct Signals([libc::sighandler_t; 3]);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

impl Signals {
    fn catch() -> Signals {
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
struct Scratch(std::path::PathBuf);

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
}

impl Bench<'_> {
    /// One round of one observer; with auditd and the rules file also what the kernel loaded.
    fn round(&self, obs: Observer, tag: &str) -> Result<(Sample, Option<Loaded>)> {
        let marker = format!("bench-{tag}");
        let mut running = Running::start(obs, self.bin, self.dir, self.audit, self.rules, &marker)?;
        let cpu0 = host_cpu_seconds()?;
        let t0 = Instant::now();
        storm(self.execs, &marker)?;
        let wall = t0.elapsed();
        let (cpu1, done, end) = running.wait_done(self.execs)?;
        let (seen, records) = running.written();
        let loaded = running.loaded.take();
        let lost = running.stop(self.audit)?;
        let sample = Sample {
            wall,
            cpu: cpu1 - cpu0,
            lag: done.saturating_duration_since(t0 + wall),
            seen,
            records,
            lost,
            end,
        };
        Ok((sample, loaded))
    }
}

/// Runs the bench; `bin` is the built agent.
pub fn exec(bin: &Path, execs: usize, rounds: usize, rules: Option<&Path>) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the bench loads eBPF programs and drives auditd: run it as root"
    );
    ensure!(
        execs > 0 && rounds > 0,
        "--execs and --rounds must be above 0"
    );
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
    let mut order = vec![Observer::None, Observer::Sensor, Observer::Auditd];
    if rules.is_some() {
        order.extend([Observer::SensorRules, Observer::AuditdRules]);
    }
    let names: Vec<String> = order.iter().map(|o| o.name(rules.as_ref())).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);

    let signals = Signals::catch();
    let audit = Audit::prepare()?;
    let bench = Bench {
        bin,
        dir,
        audit: &audit,
        rules: rules.as_ref(),
        execs,
    };
    let mut samples: Vec<Vec<Sample>> = Vec::new();
    let mut loaded = None;
    // A warm-up storm fills the page cache so the first measured round is not penalised.
    storm(execs / 10, "bench-warmup")?;
    for r in 0..rounds {
        let mut row = Vec::new();
        for (i, obs) in order.iter().enumerate() {
            let (s, l) = bench.round(*obs, &format!("{r}-{i}-{}", std::process::id()))?;
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
                "round {r} {:<width$}  wall {:>6.2}s  host cpu {:>6.2}s  done +{:.2}s ({:?})  storm events {:>6}  records {:>7}  lost {}",
                names[i],
                s.wall.as_secs_f64(),
                s.cpu,
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
    drop(audit);
    drop(signals);

    println!("exec storm: {execs} fork+exec of /bin/true, {rounds} rounds; overheads against the same round's none: median [min .. max]");
    if rules.is_some() {
        println!("{about}; {}", loaded.unwrap_or_default());
    }
    table(&samples, &names, width, execs);
    Ok(())
}

fn spread(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(v.to_vec());
    format!("{m:+.digits$} [{lo:+.digits$} .. {hi:+.digits$}]")
}

fn table(samples: &[Vec<Sample>], names: &[String], width: usize, execs: usize) {
    let rounds = samples.len();
    let col = |k: usize, f: &dyn Fn(&Sample, &Sample) -> f64| -> Vec<f64> {
        samples.iter().map(|row| f(&row[k], &row[0])).collect()
    };
    println!(
        "{:<width$}  {:<26} {:<30} {:>6} {:>21} {:>13}  ended",
        "observer",
        "wall +%",
        "extra host cpu µs/exec",
        "lost",
        "storm execs written",
        "records/round"
    );
    let wall0 = median(col(0, &|s, _| s.wall.as_secs_f64()));
    let cpu0 = median(col(0, &|s, _| s.cpu));
    println!(
        "{:<width$}  {:<26} {:<30}",
        names[0],
        format!("{wall0:.2} s"),
        format!("{cpu0:.2} s host cpu")
    );
    // A bare storm keeps about one CPU busy (the storm, then each child); more means other work
    // on the host, which is in every number below.
    let busiest = samples
        .iter()
        .map(|row| row[0].cpu / row[0].wall.as_secs_f64())
        .fold(0.0, f64::max);
    if busiest > 1.5 {
        println!("warning: the host was busy: a round with no observer kept {busiest:.1} CPUs busy (a bare storm keeps about 1)");
    }
    let mut extra = vec![f64::NAN; names.len()];
    for (k, name) in names.iter().enumerate().skip(1) {
        let wall = col(k, &|s, n| {
            (s.wall.as_secs_f64() / n.wall.as_secs_f64() - 1.0) * 100.0
        });
        let cpu = col(k, &|s, n| (s.cpu - n.cpu) / execs as f64 * 1e6);
        extra[k] = median(cpu.clone());
        let lost: u64 = samples.iter().map(|row| row[k].lost).sum();
        let seen: usize = samples.iter().map(|row| row[k].seen).sum();
        let records = median(col(k, &|s, _| s.records as f64));
        let mut ends: Vec<String> = Vec::new();
        for end in [End::AllEvents, End::Idle, End::Timeout] {
            let n = samples.iter().filter(|row| row[k].end == end).count();
            if n > 0 {
                ends.push(format!("{n} {end:?}"));
            }
        }
        println!(
            "{name:<width$}  {:<26} {:<30} {lost:>6} {:>21} {records:>13.0}  {}",
            format!("{}%", spread(&wall, 1)),
            spread(&cpu, 1),
            format!("{seen}/{}", execs * rounds),
            ends.join(", ")
        );
    }
    let ratio = |a: usize, b: usize| {
        let (x, y) = (extra[a], extra[b]);
        if y > 0.0 {
            format!("{:.2}", x / y)
        } else {
            "n/a (auditd cost nothing)".into()
        }
    };
    println!(
        "{} / {}, extra host cpu: {} (target < 0.5)",
        names[1],
        names[2],
        ratio(1, 2)
    );
    if names.len() > 4 {
        println!(
            "{} / {}, extra host cpu: {}",
            names[3],
            names[4],
            ratio(3, 4)
        );
    }
}
