//! `cargo xtask bench pam`: what watching PAM costs a login path. One pamtester process runs
//! pam_authenticate + pam_acct_mgmt many times against a stack of pam_permit and pam_access
//! (watched modules, no network, no password hashing), with no observer and with the sensor,
//! in alternating rounds. libpam writes a USER_AUTH and a USER_ACCT record per pair either way;
//! the sensor adds its uprobes on libpam, pam_access and libaudit.

use std::{path::Path, process::Command, time::Instant};

use anyhow::{ensure, Context, Result};

use crate::{
    bench::median,
    bench_sensor::{proto_output, start_sensor},
};

pub fn pam(bin: &Path, pairs: usize, rounds: usize) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the bench loads eBPF programs and writes /etc/pam.d: run it as root"
    );
    let dir = std::env::temp_dir().join(format!("sensor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let access = dir.join("access.conf");
    std::fs::write(&access, "+:ALL:ALL\n")?;
    let _lock = crate::test::machine_lock()?;
    let service = format!("sensor-bench-{}", std::process::id());
    let stack = Path::new("/etc/pam.d").join(&service);
    ensure!(!stack.exists(), "{} exists", stack.display());
    std::fs::write(
        &stack,
        format!(
            "auth required pam_permit.so\naccount required pam_access.so accessfile={}\n",
            access.display()
        ),
    )?;
    let result = (|| {
        let mut ops = vec![service.as_str(), "root"];
        for _ in 0..pairs {
            ops.extend(["authenticate", "acct_mgmt"]);
        }
        let run = || -> Result<f64> {
            let t = Instant::now();
            let out = Command::new("pamtester")
                .args(&ops)
                .output()
                .context("pamtester (Debian package pamtester)")?;
            ensure!(
                out.status.success(),
                "pamtester: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(t.elapsed().as_secs_f64() * 1e6 / pairs as f64)
        };
        run()?;
        let (mut none, mut sensor) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let a = run()?;
            let running = start_sensor(bin, &dir, None, &["--output", &proto_output(&dir)])?;
            let b = run()?;
            running.stop()?;
            eprintln!("round {r}: none {a:>7.1} µs per pair, sensor {b:>7.1} µs per pair");
            none.push(a);
            sensor.push(b);
        }
        let (a, b) = (median(none), median(sensor));
        println!(
            "pam_authenticate + pam_acct_mgmt: {pairs} pairs per round, {rounds} rounds, medians"
        );
        println!("none   {a:>8.1} µs per pair");
        println!(
            "sensor {b:>8.1} µs per pair ({:+.1}%)",
            (b / a - 1.0) * 100.0
        );
        Ok(())
    })();
    let _ = std::fs::remove_file(&stack);
    let _ = std::fs::remove_dir_all(&dir);
    result
}
