//! `cargo xtask bench exec --throughput`: how fast execs may come before an observer loses some.
//! Several spawners (threads, each a fork+exec+wait loop of /bin/true) run for a few seconds at
//! a quarter, half and three quarters of the rate they reach flat out with no observer, then flat
//! out, with the sensor (defaults, audit text) and with auditd's execve rule (backlog limit
//! 8192). A step is sustained when nothing was lost (the sensor's `op=sensor_lost` records;
//! auditd's `lost` counter of `auditctl -s`), every exec was written, and the observer was done
//! within `KEEPS_UP` of the storm's end. auditd makes the spawners wait when its backlog is full
//! (`backlog_wait_time`) instead of losing: that shows as a lower rate and in
//! `backlog_wait_time_actual`, the kernel's count of the time tasks waited.
//! Last, storms of execs with a 100 KiB argument each (`bench_bigargs`).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{ensure, Result};

use crate::{
    bench::{interrupted, Scratch, Signals, AUDIT_BACKLOG},
    bench_audit::{audit_status, Audit},
    bench_bigargs::{print_big, BIG_RUNS},
    bench_observer::{Observer, Running},
};

/// The rates tried, as fractions of the bare storm's flat-out rate; `None` is flat out.
const STEPS: [Option<f64>; 4] = [Some(0.25), Some(0.5), Some(0.75), None];
const KEEPS_UP: Duration = Duration::from_secs(1);

/// Execs run and how long the spawners took: `spawners` threads at `rate` execs per second in
/// all (flat out without), each exec `/bin/true MARKER [BIG]`.
pub(crate) fn spawn_storm(
    spawners: usize,
    rate: Option<f64>,
    length: Duration,
    marker: &str,
    big: Option<&str>,
) -> Result<(usize, Duration)> {
    let start = Instant::now();
    let end = start + length;
    let interval = rate.map(|r| Duration::from_secs_f64(spawners as f64 / r));
    let results: Vec<Result<usize>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..spawners)
            .map(|i| {
                s.spawn(move || -> Result<usize> {
                    let mut n = 0usize;
                    loop {
                        let now = Instant::now();
                        if let Some(iv) = interval {
                            // Spawner i's n-th slot; one that fell behind runs at once.
                            let slot = start + iv.mul_f64(n as f64 + i as f64 / spawners as f64);
                            if slot >= end {
                                break;
                            }
                            std::thread::sleep(slot.saturating_duration_since(now));
                        } else if now >= end {
                            break;
                        }
                        let mut cmd = Command::new("/bin/true");
                        cmd.arg(marker);
                        if let Some(big) = big {
                            cmd.arg(big);
                        }
                        ensure!(cmd.status()?.success(), "/bin/true failed");
                        ensure!(!interrupted(), "interrupted");
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Ok(0)))
            .collect()
    });
    let took = start.elapsed();
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok((total, took))
}

struct Step {
    target: Option<f64>,
    ran: usize,
    took: Duration,
    written: usize,
    lost: u64,
    lag: Duration,
    /// auditd: growth of `backlog_wait_time_actual`.
    waited: u64,
    /// The observer's own CPU time (with kauditd for auditd), storm start to done.
    own: f64,
}

impl Step {
    fn rate(&self) -> f64 {
        self.ran as f64 / self.took.as_secs_f64()
    }

    fn sustained(&self) -> bool {
        self.lost == 0 && self.written >= self.ran && self.lag <= KEEPS_UP
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) bin: &'a Path,
    pub(crate) dir: &'a Path,
    pub(crate) audit: &'a Audit,
    pub(crate) spawners: usize,
    pub(crate) length: Duration,
}

impl Ctx<'_> {
    fn step(&self, obs: Observer, target: Option<f64>, tag: &str) -> Result<Step> {
        let marker = format!("bench-tp-{tag}-{}", std::process::id());
        let mut running = Running::start(obs, self.bin, self.dir, self.audit, None, &marker)?;
        let waited0 = audit_status("backlog_wait_time_actual ")?;
        let own0 = running.own_cpu();
        let t0 = Instant::now();
        let (ran, took) = spawn_storm(self.spawners, target, self.length, &marker, None)?;
        let done = running.wait_done(ran)?;
        let (written, _) = running.written();
        let (lost, _) = running.stop(self.audit)?;
        let step = Step {
            target,
            ran,
            took,
            written,
            lost,
            lag: done.at.saturating_duration_since(t0 + took),
            waited: audit_status("backlog_wait_time_actual ")? - waited0,
            own: done.own - own0,
        };
        eprintln!(
            "{:<22} target {:>8}  ran {:>6} in {:.2}s = {:>6.0}/s  written {:>6}  lost {:>5}  done +{:.2}s  backlog wait +{}",
            obs.name(None),
            target.map_or("flat out".into(), |t| format!("{t:.0}/s")),
            step.ran,
            step.took.as_secs_f64(),
            step.rate(),
            step.written,
            step.lost,
            step.lag.as_secs_f64(),
            step.waited
        );
        Ok(step)
    }
}

pub fn throughput(bin: &Path, spawners: usize, seconds: f64) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the bench loads eBPF programs and drives auditd: run it as root"
    );
    ensure!(
        spawners > 0 && seconds > 0.0,
        "--spawners and --seconds must be above 0"
    );
    let _lock = crate::test::machine_lock()?;
    let scratch =
        Scratch(std::env::temp_dir().join(format!("sensor-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let signals = Signals::catch();
    let mut audit = Audit::prepare()?;
    audit.set_backlog(AUDIT_BACKLOG)?;
    let length = Duration::from_secs_f64(seconds);
    let ctx = Ctx {
        bin,
        dir: &scratch.0,
        audit: &audit,
        spawners,
        length,
    };
    // Warm-up, then the bare storm flat out: the rate the steps are fractions of.
    // Without audit contexts, as in the observers' rounds but auditd's.
    audit.without_contexts(true)?;
    spawn_storm(spawners, None, length / 5, "bench-warmup", None)?;
    let (ran, took) = spawn_storm(spawners, None, length, "bench-tp-none", None)?;
    audit.without_contexts(false)?;
    let flat = ran as f64 / took.as_secs_f64();
    eprintln!(
        "none flat out: {ran} in {:.2}s = {flat:.0}/s",
        took.as_secs_f64()
    );
    let mut results = Vec::new();
    for (o, obs) in [Observer::Sensor, Observer::Auditd].into_iter().enumerate() {
        let mut steps = Vec::new();
        for (i, f) in STEPS.iter().enumerate() {
            steps.push(ctx.step(obs, f.map(|f| f * flat), &format!("{o}{i}"))?);
        }
        results.push((obs, steps));
    }

    audit.without_contexts(true)?;
    let (ran2, took2) = spawn_storm(spawners, None, length, "bench-tp-none", None)?;
    audit.without_contexts(false)?;
    let flat2 = ran2 as f64 / took2.as_secs_f64();
    eprintln!(
        "none flat out again: {ran2} in {:.2}s = {flat2:.0}/s",
        took2.as_secs_f64()
    );
    let mut bigs = Vec::new();
    for (i, args) in BIG_RUNS.into_iter().enumerate() {
        bigs.push(ctx.big(args, &i.to_string())?);
    }
    drop(audit);
    drop(signals);

    println!(
        "exec throughput: {spawners} spawners of /bin/true, {seconds} s per step; none flat out: {flat:.0} execs/s before the steps, {flat2:.0} after"
    );
    let flat = flat.max(flat2);
    println!(
        "{:<22} {:>9} {:>11} {:>7} {:>8} {:>6} {:>7} {:>13} {:>12}  sustained",
        "observer",
        "target/s",
        "achieved/s",
        "ran",
        "written",
        "lost",
        "done",
        "backlog wait",
        "own µs/exec"
    );
    for (obs, steps) in &results {
        for s in steps {
            println!(
                "{:<22} {:>9} {:>11.0} {:>7} {:>8} {:>6} {:>7} {:>13} {:>12.1}  {}",
                obs.name(None),
                s.target.map_or("flat out".into(), |t| format!("{t:.0}")),
                s.rate(),
                s.ran,
                s.written,
                s.lost,
                format!("+{:.2}s", s.lag.as_secs_f64()),
                if obs.is_sensor() {
                    "-".to_owned()
                } else {
                    format!("+{}", s.waited)
                },
                s.own / s.ran.max(1) as f64 * 1e6,
                if s.sustained() { "yes" } else { "no" }
            );
        }
    }
    for (obs, steps) in &results {
        let best = steps
            .iter()
            .filter(|s| s.sustained())
            .map(Step::rate)
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        let backlog = if obs.is_sensor() {
            String::new()
        } else {
            format!(", backlog limit {AUDIT_BACKLOG}")
        };
        match best {
            Some(b) => println!(
                "{}{backlog}: highest sustained rate with no loss {b:.0} execs/s ({:.0}% of none's flat out)",
                obs.name(None),
                b / flat * 100.0
            ),
            None => println!("{}{backlog}: no step without loss", obs.name(None)),
        }
    }
    println!("sustained: nothing lost, every exec written, the observer done within {} s of the storm's end; backlog wait: growth of auditctl -s backlog_wait_time_actual (the time tasks waited for room in the backlog)", KEEPS_UP.as_secs());
    println!("100 KiB-argument storms, {spawners} spawners flat out for {seconds} s (the sensor's memory: idle -> peak; lost: ring-buffer records, and an exec's arguments travel in 16 KiB chunks of their own, so an exec can be written with arguments cut (sensor_trunc_args=); the bench reads the log only after the storm):");
    for b in &bigs {
        print_big(b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawners_keep_to_the_rate() {
        let (ran, took) =
            spawn_storm(2, Some(40.0), Duration::from_millis(500), "m", Some("x")).unwrap();
        assert!((18..=21).contains(&ran), "{ran}");
        assert!(took >= Duration::from_millis(450), "{took:?}");
    }
}
