//! `cargo xtask bench syscalls`: what the sensor's per-syscall probes cost the host. The anomaly
//! probes run at the exit of every open, openat, close, ioctl, sendto, sendmsg and setsockopt;
//! this times a loop of open("/dev/null") + close in this process with no observer, with the
//! sensor, and with kernel audit enabled without rules (the state in which the kernel itself
//! writes the anomaly records), in alternating rounds.

use std::{ffi::CString, path::Path, time::Instant};

use anyhow::{ensure, Result};

use crate::{
    bench::{host_cpu_seconds, median},
    bench_audit::Audit,
    bench_sensor::{proto_output, start_sensor, stop_sensor},
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

pub fn syscalls(bin: &Path, calls: usize, rounds: usize) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the bench loads eBPF programs and drives kernel audit: run it as root"
    );
    let dir = std::env::temp_dir().join(format!("sensor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _lock = crate::test::machine_lock()?;
    let audit = Audit::prepare()?;
    let names = ["none", "sensor", "kernel audit (no rules)"];
    let mut ns_per_pair: [Vec<f64>; 3] = Default::default();
    let mut cpu: [Vec<f64>; 3] = Default::default();
    open_close_loop(calls / 10)?;
    for r in 0..rounds {
        for (i, name) in names.iter().enumerate() {
            let sensor = if i == 1 {
                Some(start_sensor(
                    bin,
                    &dir,
                    None,
                    &["--output", &proto_output(&dir)],
                )?)
            } else {
                None
            };
            if i == 2 {
                audit.enable(true)?;
            }
            let c0 = host_cpu_seconds()?;
            let t0 = Instant::now();
            open_close_loop(calls)?;
            let wall = t0.elapsed().as_secs_f64();
            let c = host_cpu_seconds()? - c0;
            if let Some(s) = sensor {
                stop_sensor(s)?;
            }
            if i == 2 {
                audit.enable(false)?;
            }
            let per = wall * 1e9 / calls as f64;
            eprintln!("round {r} {name:<24} {per:>7.0} ns per open+close  host cpu {c:>6.2}s");
            ns_per_pair[i].push(per);
            cpu[i].push(c);
        }
    }
    drop(audit);
    let _ = std::fs::remove_dir_all(&dir);
    println!("open+close of /dev/null: {calls} per round, {rounds} rounds, medians");
    println!("{:<24} {:>12} {:>9}", "observer", "ns per pair", "+%");
    let base = median(ns_per_pair[0].clone());
    for (i, name) in names.iter().enumerate() {
        let m = median(ns_per_pair[i].clone());
        println!("{name:<24} {m:>12.0} {:>8.1}%", (m / base - 1.0) * 100.0);
    }
    Ok(())
}
