//! `cargo xtask bench syscalls`: what the sensor's per-syscall probes cost the host. With the
//! tracepoint probe set a program runs at every syscall's exit; with trampolines, at the exits of
//! ioctl, sendto, sendmsg, setsockopt and close (one of the two calls here). This times a loop of
//! open("/dev/null") + close in this process with no observer, with the sensor (and, where its
//! default is the trampolines, with `--probe-set tracepoints`), and with kernel audit enabled
//! without rules (the state in which the kernel itself writes the anomaly records), in
//! alternating rounds. `--kernel debian-6.1` runs it inside the kernel tier's guest.

use std::{collections::BTreeMap, ffi::CString, path::Path, time::Instant};

use anyhow::{ensure, Result};

use crate::{
    bench::{host_cpu_seconds, median},
    bench_audit::Audit,
    bench_bpf::{counters, delta, BpfStats},
    bench_sensor::{proto_output, start_sensor, start_sensor_saying, stop_sensor},
};

fn open_close_loop(calls: usize) -> Result<()> {
    let path = CString::new("/dev/null")?;
    for _ in 0..calls {
        // SAFETY: a valid C string; the fd is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
        ensure!(fd >= 0, "open /dev/null failed");
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// An observer of the loop.
#[derive(Clone, Copy, PartialEq)]
enum Observer {
    None,
    /// The sensor with its defaults (the best probe set the kernel allows).
    Sensor,
    /// The sensor with `--probe-set tracepoints`, where its default is the trampolines.
    SensorTracepoints,
    KernelAudit,
}

impl Observer {
    fn name(self) -> &'static str {
        match self {
            Observer::None => "none",
            Observer::Sensor => "sensor",
            Observer::SensorTracepoints => "sensor (tracepoints)",
            Observer::KernelAudit => "kernel audit (no rules)",
        }
    }
}

/// `bin`: the sensor. Inside the kernel tier's guest (`--kernel`) no machine lock is taken: the
/// guest is the bench's alone.
pub fn syscalls(bin: &Path, calls: usize, rounds: usize, in_guest: bool) -> Result<()> {
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
    // The sensor's programs' runs and time per pair: exact where the wall time of an emulated
    // guest is not (its rounds vary by a third).
    let _stats = BpfStats::enable()?;
    let proto = proto_output(&dir);
    // Which set the sensor takes by default: with trampolines, the tracepoints are a row too.
    let (probe, said) = start_sensor_saying(bin, &dir, None, &["--output", &proto])?;
    stop_sensor(probe)?;
    let set_line = said
        .lines()
        .find(|l| l.starts_with("sensor: probe set "))
        .unwrap_or("sensor: probe set unknown")
        .to_string();
    let mut observers = vec![Observer::None, Observer::Sensor];
    if set_line.starts_with("sensor: probe set fentry/fexit") {
        observers.push(Observer::SensorTracepoints);
    }
    observers.push(Observer::KernelAudit);
    let mut ns_per_pair: Vec<Vec<f64>> = vec![Vec::new(); observers.len()];
    // BPF runs and ns per pair, for the sensor's rows.
    let mut bpf_per_pair: Vec<Vec<(f64, f64)>> = vec![Vec::new(); observers.len()];
    open_close_loop(calls / 10)?;
    for r in 0..rounds {
        for (i, &observer) in observers.iter().enumerate() {
            let sensor = match observer {
                Observer::Sensor => Some(start_sensor(bin, &dir, None, &["--output", &proto])?),
                Observer::SensorTracepoints => Some(start_sensor(
                    bin,
                    &dir,
                    None,
                    &["--output", &proto, "--probe-set", "tracepoints"],
                )?),
                _ => None,
            };
            if observer == Observer::KernelAudit {
                audit.enable(true)?;
            }
            let bpf0 = sensor.as_ref().map(|s| counters(s.id())).transpose()?;
            let c0 = host_cpu_seconds()?;
            let t0 = Instant::now();
            open_close_loop(calls)?;
            let wall = t0.elapsed().as_secs_f64();
            let c = host_cpu_seconds()? - c0;
            if let (Some(s), Some(bpf0)) = (&sensor, &bpf0) {
                let d = delta(bpf0, &counters(s.id())?, &BTreeMap::new());
                let (ns, runs) = d
                    .values()
                    .fold((0, 0), |(n, r), &(dn, dr)| (n + dn, r + dr));
                let per = |v: u64| v as f64 / calls as f64;
                bpf_per_pair[i].push((per(runs), per(ns)));
            }
            if let Some(s) = sensor {
                stop_sensor(s)?;
            }
            if observer == Observer::KernelAudit {
                audit.enable(false)?;
            }
            let per = wall * 1e9 / calls as f64;
            let name = observer.name();
            eprintln!("round {r} {name:<24} {per:>7.0} ns per open+close  host cpu {c:>6.2}s");
            ns_per_pair[i].push(per);
        }
    }
    drop(audit);
    let _ = std::fs::remove_dir_all(&dir);
    println!("open+close of /dev/null: {calls} per round, {rounds} rounds, medians");
    println!("{set_line}");
    println!(
        "{:<24} {:>12} {:>9} {:>14} {:>13}",
        "observer", "ns per pair", "+%", "BPF runs/pair", "BPF ns/pair"
    );
    let base = median(ns_per_pair[0].clone());
    for (i, observer) in observers.iter().enumerate() {
        let m = median(ns_per_pair[i].clone());
        let name = observer.name();
        let bpf = match bpf_per_pair[i].is_empty() {
            true => String::new(),
            false => {
                let runs = median(bpf_per_pair[i].iter().map(|b| b.0).collect());
                let ns = median(bpf_per_pair[i].iter().map(|b| b.1).collect());
                format!(" {runs:>14.2} {ns:>13.0}")
            }
        };
        println!(
            "{name:<24} {m:>12.0} {:>8.1}%{bpf}",
            (m / base - 1.0) * 100.0
        );
    }
    Ok(())
}
