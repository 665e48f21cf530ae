//! `cargo xtask bench syscalls`: what the sensor's per-syscall probes cost the host. With the
//! tracepoint probe set a program runs at every syscall's exit; with trampolines, at the exits of
//! ioctl, sendto, sendmsg, setsockopt and close (one of the two calls here). This times a loop of
//! open("/dev/null") + close, in a child forked for each round, with no observer, with the sensor
//! (and, where its default is the trampolines, with `--probe-set tracepoints`), with the floors
//! of the two ways to watch syscall exits without trampolines (empty programs on the raw
//! `sys_exit` and on each watched syscall's `syscalls:sys_exit_*` tracepoint, `bench_hook.rs`),
//! and with kernel audit enabled without rules (the state in which the kernel itself writes the
//! anomaly records), in alternating rounds. The rounds without kernel audit run without audit
//! contexts, as on a host where audit was never enabled. `--kernel debian-6.1` runs it inside
//! the kernel tier's guest.
use std::{
    collections::BTreeMap,
    ffi::{CStr, CString},
    path::Path,
    time::Instant,
};

use anyhow::{ensure, Result};

use crate::{
    bench::median,
    bench_audit::Audit,
    bench_bpf::{counters, delta, total, BpfStats},
    bench_hook::EmptyExitPrograms,
    bench_sensor::{proto_output, start_sensor, start_sensor_saying},
    bench_table::spread,
};

pub(crate) fn open_close_loop(calls: usize) -> Result<()> {
    let path = CString::new("/dev/null")?;
    ensure!(open_close(&path, calls), "open /dev/null failed");
    Ok(())
}

/// `calls` opens of `path`, each closed at once; false when one failed. Neither allocates nor
/// locks, so a forked child may run it.
fn open_close(path: &CStr, calls: usize) -> bool {
    for _ in 0..calls {
        // SAFETY: a valid C string; the fd is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
        if fd < 0 {
            return false;
        }
        unsafe { libc::close(fd) };
    }
    true
}

/// ns per pair of `open_close_loop(calls)`, timed in a child forked now. The kernel decides
/// whether a task has an audit context when it is forked, so a child runs under the round's
/// audit state: without a context in the rounds without kernel audit, with one in kernel
/// audit's ([`Audit::without_contexts`]). The bench's own process was forked before it set any.
fn loop_in_child(calls: usize) -> Result<f64> {
    let path = CString::new("/dev/null")?;
    let mut fds = [0; 2];
    // SAFETY: a two-int array for pipe(2).
    ensure!(unsafe { libc::pipe(fds.as_mut_ptr()) } == 0, "pipe failed");
    // SAFETY: the child makes only async-signal-safe calls (open, close, clock_gettime,
    // write, _exit): the bench may have other threads.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let t0 = Instant::now();
        let ns = match open_close(&path, calls) {
            true => t0.elapsed().as_nanos() as f64 / calls as f64,
            false => -1.0,
        };
        let bytes = ns.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live array, then ends the child without unwinding.
        unsafe {
            libc::write(fds[1], bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0)
        }
    }
    let mut bytes = [0u8; 8];
    // SAFETY: the pipe's ends are ours; reads into a live array; reaps the child.
    let read = unsafe {
        libc::close(fds[1]);
        let n = libc::read(fds[0], bytes.as_mut_ptr().cast(), bytes.len());
        libc::close(fds[0]);
        if pid > 0 {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        n
    };
    ensure!(pid > 0, "fork failed");
    let ns = f64::from_ne_bytes(bytes);
    ensure!(
        read == 8 && ns >= 0.0,
        "the loop's child failed to open /dev/null"
    );
    Ok(ns)
}

/// An observer of the loop.
#[derive(Clone, Copy, PartialEq)]
enum Observer {
    None,
    /// The sensor with its defaults (the best probe set the kernel allows).
    Sensor,
    /// The sensor with `--probe-set tracepoints`, where its default is the trampolines.
    SensorTracepoints,
    /// Another build of the sensor (`--baseline`), at its defaults.
    SensorBaseline,
    KernelAudit,
    /// An empty program on the raw tracepoint `sys_exit`: the floor of the sensor's design.
    EmptyExit,
    /// Empty programs on each watched syscall's `syscalls:sys_exit_*` tracepoint: the floor of
    /// the design it was chosen over.
    EmptyWatchedExits,
}

impl Observer {
    fn name(self) -> &'static str {
        match self {
            Observer::None => "none",
            Observer::Sensor => "sensor",
            Observer::SensorTracepoints => "sensor (tracepoints)",
            Observer::SensorBaseline => "sensor baseline",
            Observer::KernelAudit => "kernel audit (no rules)",
            Observer::EmptyExit => "empty on sys_exit",
            Observer::EmptyWatchedExits => "empty on sys_exit_*",
        }
    }
}

/// What a round needs.
struct Run<'a> {
    bin: &'a Path,
    baseline: Option<&'a Path>,
    dir: &'a Path,
    proto: &'a str,
    audit: &'a Audit,
    calls: usize,
}

impl Run<'_> {
    /// One round of `observer`: ns per pair; with `stats` (`kernel.bpf_stats_enabled` on), the
    /// sensor's BPF runs and ns per pair too.
    fn round(&self, observer: Observer, stats: bool) -> Result<(f64, Option<(f64, f64)>)> {
        let (bin, dir, proto) = (self.bin, self.dir, self.proto);
        match observer {
            Observer::KernelAudit => self.audit.enable(true)?,
            _ => self.audit.without_contexts(true)?,
        }
        let sensor = match observer {
            Observer::Sensor => Some(start_sensor(bin, dir, None, &["--output", proto])?),
            Observer::SensorBaseline => {
                let bin = self.baseline.unwrap_or(bin);
                Some(start_sensor(bin, dir, None, &["--output", proto])?)
            }
            Observer::SensorTracepoints => Some(start_sensor(
                bin,
                dir,
                None,
                &["--output", proto, "--probe-set", "tracepoints"],
            )?),
            _ => None,
        };
        let _empty = match observer {
            Observer::EmptyExit => Some(EmptyExitPrograms::on_sys_exit()?),
            Observer::EmptyWatchedExits => Some(EmptyExitPrograms::on_each_watched_exit()?),
            _ => None,
        };
        let bpf0 = match (&sensor, stats) {
            (Some(s), true) => Some(counters(s.id())?),
            _ => None,
        };
        let per_pair = loop_in_child(self.calls)?;
        let mut bpf = None;
        if let (Some(s), Some(bpf0)) = (&sensor, &bpf0) {
            let d = delta(bpf0, &counters(s.id())?, &BTreeMap::new());
            let (ns, runs) = total(&d);
            let per = |v: u64| v as f64 / self.calls as f64;
            bpf = Some((per(runs), per(ns)));
        }
        if let Some(s) = sensor {
            s.stop()?;
        }
        match observer {
            Observer::KernelAudit => self.audit.enable(false)?,
            _ => self.audit.without_contexts(false)?,
        }
        Ok((per_pair, bpf))
    }
}

/// `bin`: the sensor; `baseline`: another build of it. Inside the kernel tier's guest
/// (`--kernel`) no machine lock is taken: the guest is the bench's alone.
pub fn syscalls(
    bin: &Path,
    baseline: Option<&Path>,
    calls: usize,
    rounds: usize,
    in_guest: bool,
) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the bench loads eBPF programs and drives kernel audit: run it as root"
    );
    let dir = std::env::temp_dir().join(format!("sensor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _lock = match in_guest {
        true => None,
        false => Some(crate::test::machine_lock()?),
    };
    let audit = Audit::prepare()?;
    let proto = proto_output(&dir);
    // Which set the sensor takes by default: with trampolines, the tracepoints are a row too.
    let (probe, said) = start_sensor_saying(bin, &dir, None, &["--output", &proto])?;
    probe.stop()?;
    let set_line = said
        .lines()
        .find(|l| l.starts_with("sensor: probe set "))
        .unwrap_or("sensor: probe set unknown")
        .to_string();
    let mut observers = vec![Observer::None, Observer::Sensor];
    if set_line.starts_with("sensor: probe set fentry/fexit") {
        observers.push(Observer::SensorTracepoints);
    }
    if baseline.is_some() {
        observers.push(Observer::SensorBaseline);
    }
    observers.extend([Observer::EmptyExit, Observer::EmptyWatchedExits]);
    // Last: the goal's comparison below is against it.
    observers.push(Observer::KernelAudit);
    let run = Run {
        bin,
        baseline,
        dir: &dir,
        proto: &proto,
        audit: &audit,
        calls,
    };
    let mut ns_per_pair: Vec<Vec<f64>> = vec![Vec::new(); observers.len()];
    open_close_loop(calls / 10)?;
    for r in 0..rounds {
        for (i, &observer) in observers.iter().enumerate() {
            let (per, _) = run.round(observer, false)?;
            eprintln!(
                "round {r} {:<24} {per:>7.0} ns per open+close",
                observer.name()
            );
            ns_per_pair[i].push(per);
        }
    }
    // The sensor's BPF runs and ns per pair, from one more round of each sensor row with
    // `kernel.bpf_stats_enabled=1` (exact where the wall time of an emulated guest is not: its
    // rounds vary by a third), which adds two clock reads to every program run and so stays off
    // in the timed rounds.
    let mut bpf_per_pair: Vec<Option<(f64, f64)>> = vec![None; observers.len()];
    {
        let _stats = BpfStats::enable()?;
        for (i, &observer) in observers.iter().enumerate() {
            if !matches!(
                observer,
                Observer::None
                    | Observer::KernelAudit
                    | Observer::EmptyExit
                    | Observer::EmptyWatchedExits
            ) {
                bpf_per_pair[i] = run.round(observer, true)?.1;
            }
        }
    }
    drop(audit);
    let _ = std::fs::remove_dir_all(&dir);
    println!("open+close of /dev/null: {calls} per round, {rounds} rounds; ns per pair: median; +%: against the same round's none, median [min .. max]");
    println!("{set_line}");
    println!(
        "{:<24} {:>12} {:>26} {:>14} {:>13}",
        "observer", "ns per pair", "+%", "BPF runs/pair", "BPF ns/pair"
    );
    for (i, observer) in observers.iter().enumerate() {
        let m = median(ns_per_pair[i].clone());
        let name = observer.name();
        // This VM's speed drifts by a tenth between rounds: each round against its own none.
        let over = format!("{}%", spread(&against(&ns_per_pair[i], &ns_per_pair[0]), 1));
        let bpf = match bpf_per_pair[i] {
            None => String::new(),
            Some((runs, ns)) => format!(" {runs:>14.2} {ns:>13.0}"),
        };
        println!("{name:<24} {m:>12.0} {over:>26}{bpf}");
    }
    // The goal's own comparison, round by round: the sensor against kernel audit (the last row).
    let kernel_audit = observers.len() - 1;
    for (i, observer) in observers.iter().enumerate() {
        if matches!(observer, Observer::None | Observer::KernelAudit) {
            continue;
        }
        let over = against(&ns_per_pair[i], &ns_per_pair[kernel_audit]);
        let faster = over.iter().filter(|&&o| o < 0.0).count();
        println!(
            "{} against {}, same round: {}%, faster in {faster} of {rounds} rounds",
            observer.name(),
            observers[kernel_audit].name(),
            spread(&over, 1)
        );
    }
    Ok(())
}

/// Each round's `rows` against the same round's `base`, in percent.
fn against(rows: &[f64], base: &[f64]) -> Vec<f64> {
    rows.iter()
        .zip(base)
        .map(|(o, n)| (o / n - 1.0) * 100.0)
        .collect()
}
