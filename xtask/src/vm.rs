//! `cargo xtask test --kernel debian-6.1`: the smoke suite on a second kernel, Debian 12's own
//! 6.1 cloud kernel, booted under QEMU (KVM when it boots, TCG emulation otherwise). The guest
//! runs from an initramfs built here: busybox, the host's programs the tests run (with their
//! libraries), the sensor at its build path (the tests find it there), and the integration test
//! binaries of [`SMOKE`], which run inside against the guest kernel's own audit; or
//! `xtask bench syscalls` (`cargo xtask bench syscalls --kernel debian-6.1`). Results come back on
//! the serial console (`vm_console`). A guest that reports a soft lockup is booted again, once.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};

use crate::{
    output,
    vm_console::{between, parse},
    vm_root, Ctx,
};

/// The integration tests that make the smoke suite: the exec corpus against auditd in the
/// guest, the exec checks, ANOM_ABEND, ANOM_LINK/ANOM_CREAT and ANOM_PROMISCUOUS.
pub const SMOKE: [&str; 8] = [
    "versus_auditd",
    "exec",
    "abend",
    "fs_anomalies",
    "promisc",
    "login_uid",
    "probe_set",
    "pam_call",
];

/// Debian packages the tier needs on the host.
const PACKAGES: [&str; 3] = ["qemu-system-x86", "busybox-static", "cpio"];

/// What a run found, per test.
pub struct Report {
    pub kernel: String,
    pub accel: &'static str,
    pub results: Vec<(String, String, bool)>,
    /// What the bench printed (without the kernel's console messages), when it ran.
    pub bench: Option<String>,
    /// Where an earlier boot stalled, when one did.
    pub stalls: Vec<String>,
    pub took: Duration,
}

/// What the guest runs.
pub enum Guest {
    /// The test binaries of [`SMOKE`].
    Smoke,
    /// `xtask bench syscalls` with this many calls and rounds: its output is the report's
    /// `bench` text.
    BenchSyscalls { calls: usize, rounds: usize },
}

/// Builds the guest, boots it and reports. Ok(None) when QEMU cannot be installed: the tier is
/// skipped with one line saying why.
pub fn run(ctx: &Ctx, kernel: &str, guest: &Guest) -> Result<Option<Report>> {
    if kernel != "debian-6.1" {
        bail!("unknown kernel {kernel:?}: the tier knows debian-6.1");
    }
    if let Err(e) = install(&PACKAGES) {
        eprintln!("skipping the debian-6.1 tier: QEMU cannot be installed here ({e:#})");
        return Ok(None);
    }
    let dir = ctx.root.join("target/vm");
    fs::create_dir_all(&dir)?;
    let (vmlinuz, modules, version) = fetch_kernel(&dir)?;
    let sensor = ctx.root.join("target/release/sensor");
    let (tests, bench) = match guest {
        Guest::Smoke => (test_binaries(ctx)?, None),
        Guest::BenchSyscalls { calls, rounds } => {
            // This very xtask, at its host path, with the sensor already built: no toolchains.
            let xtask = std::env::current_exe()?;
            let line = format!(
                "{} bench syscalls --guest-sensor {} --calls {calls} --rounds {rounds}",
                xtask.display(),
                sensor.display()
            );
            (Vec::new(), Some((xtask, line)))
        }
    };
    let initrd = vm_root::build(&dir, &sensor, &tests, bench.as_ref(), &modules)?;
    let accel = if kvm_boots(&vmlinuz, &dir)? {
        "kvm"
    } else {
        "tcg"
    };
    eprintln!(
        "booting {version} under QEMU ({accel}) with {}",
        match bench {
            Some(_) => "the syscalls bench".to_string(),
            None => format!("{} test binaries", tests.len()),
        }
    );
    let start = Instant::now();
    let console = dir.join("console.log");
    // A guest whose CPUs stall (seen under TCG, now and then, as trampolines attach) is booted
    // again, once; the stall is reported, and its console kept.
    let mut stalls = Vec::new();
    let text = loop {
        let booted = boot(
            &vmlinuz,
            &initrd,
            accel,
            &console,
            Duration::from_secs(40 * 60),
        )?;
        let text = fs::read_to_string(&console).unwrap_or_default();
        if booted != Boot::Stalled || !stalls.is_empty() {
            break text;
        }
        let kept = dir.join("console-stalled.log");
        fs::copy(&console, &kept)?;
        let during = parse(&text)
            .last()
            .map_or("the boot".to_string(), |(b, t, _)| format!("{b}::{t}"));
        eprintln!(
            "the guest stalled (soft lockup) after {during}: booting it again (console: {})",
            kept.display()
        );
        stalls.push(during);
    };
    let results = parse(&text);
    let guest_kernel = text
        .lines()
        // The console may start with the firmware's escape sequences.
        .find_map(|l| l.split_once("VM: kernel ").map(|(_, k)| k.trim_end()))
        .unwrap_or("unknown")
        .to_string();
    Ok(Some(Report {
        kernel: guest_kernel,
        accel,
        results,
        bench: between(&text, "VMBENCH-BEGIN", "VMBENCH-END"),
        stalls,
        took: start.elapsed(),
    }))
}

/// `bench syscalls` inside the guest, its table printed here.
pub fn bench_syscalls(ctx: &Ctx, kernel: &str, calls: usize, rounds: usize) -> Result<()> {
    let Some(report) = run(ctx, kernel, &Guest::BenchSyscalls { calls, rounds })? else {
        return Ok(());
    };
    let text = report
        .bench
        .context("the guest never started the bench (console: target/vm/console.log)")?;
    eprintln!(
        "guest kernel {} ({}), {:.0} s:",
        report.kernel,
        report.accel,
        report.took.as_secs_f64()
    );
    print!("{text}");
    ensure!(
        !text.contains("xtask: error") && !text.contains("(no end"),
        "the bench failed in the guest"
    );
    Ok(())
}

fn install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let status = Command::new("apt-get")
        .args([
            "-o",
            "DPkg::Lock::Timeout=600",
            "install",
            "-y",
            "--no-install-recommends",
        ])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("apt-get")?;
    if !status.success() {
        bail!("apt-get install {} failed ({status})", missing.join(" "));
    }
    Ok(())
}

/// The newest `linux-image-6.1.0-N-cloud-amd64-unsigned` in the Debian archive, downloaded and
/// unpacked once into `dir`: its vmlinuz, its modules directory and its version.
fn fetch_kernel(dir: &Path) -> Result<(PathBuf, PathBuf, String)> {
    let list = output(Command::new("apt-cache").args([
        "search",
        "--names-only",
        "^linux-image-6.1.0-[0-9]+-cloud-amd64-unsigned$",
    ]))?;
    let newest = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|p| {
            let n: u32 = p
                .strip_prefix("linux-image-6.1.0-")?
                .strip_suffix("-cloud-amd64-unsigned")?
                .parse()
                .ok()?;
            Some((n, p.to_string()))
        })
        .max()
        .context("no linux-image-6.1.0-*-cloud-amd64-unsigned in apt (run apt-get update)")?;
    let version = format!("6.1.0-{}-cloud-amd64", newest.0);
    let unpacked = dir.join(&version);
    let vmlinuz = unpacked.join(format!("boot/vmlinuz-{version}"));
    if !vmlinuz.exists() {
        let debs = dir.join("debs");
        fs::create_dir_all(&debs)?;
        let status = Command::new("apt-get")
            .args(["download", &newest.1])
            .current_dir(&debs)
            .status()?;
        if !status.success() {
            bail!("apt-get download {} failed", newest.1);
        }
        let deb = fs::read_dir(&debs)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().contains(&newest.1))
            .context("the downloaded kernel package is not where apt-get put it")?;
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status()?;
        if !status.success() {
            bail!("dpkg-deb -x {} failed", deb.display());
        }
    }
    let modules = unpacked.join("lib/modules").join(&version);
    Ok((vmlinuz, modules, version))
}

/// The smoke suite's integration test binaries, built for the host (the guest runs them).
fn test_binaries(ctx: &Ctx) -> Result<Vec<PathBuf>> {
    let mut cmd = ctx.cargo(&ctx.pins.stable);
    cmd.args([
        "test",
        "--release",
        "-p",
        "sensor",
        "--no-run",
        "--message-format=json",
    ]);
    for t in SMOKE {
        cmd.args(["--test", t]);
    }
    let out = output(&mut cmd)?;
    let mut found = Vec::new();
    for line in out.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let name = msg["target"]["name"].as_str().unwrap_or_default();
        if let (true, Some(exe)) = (SMOKE.contains(&name), msg["executable"].as_str()) {
            found.push(PathBuf::from(exe));
        }
    }
    if found.len() != SMOKE.len() {
        bail!(
            "cargo built {} of the {} smoke test binaries",
            found.len(),
            SMOKE.len()
        );
    }
    Ok(found)
}

fn qemu(vmlinuz: &Path, initrd: &Path, accel: &str) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-m",
        "2048",
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
        "-accel",
        accel,
    ])
    .arg("-kernel")
    .arg(vmlinuz)
    .arg("-initrd")
    .arg(initrd)
    .args(["-append", "console=ttyS0 panic=-1 quiet"])
    .stdin(Stdio::null());
    if accel == "kvm" {
        cmd.args(["-cpu", "host"]);
    }
    cmd
}

/// How a boot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Boot {
    PoweredOff,
    /// The kernel reported a soft lockup: killed at once rather than at the limit.
    Stalled,
    TimedOut,
}

/// Boots, the console going to `console`, killed after `limit` or when it reports a stall.
fn boot(
    vmlinuz: &Path,
    initrd: &Path,
    accel: &str,
    console: &Path,
    limit: Duration,
) -> Result<Boot> {
    let log = fs::File::create(console)?;
    let mut child = qemu(vmlinuz, initrd, accel)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let start = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            return Ok(Boot::PoweredOff);
        }
        let stalled =
            || fs::read_to_string(console).is_ok_and(|t| t.contains("watchdog: BUG: soft lockup"));
        let end = match start.elapsed() > limit {
            true => Some(Boot::TimedOut),
            false => stalled().then_some(Boot::Stalled),
        };
        if let Some(end) = end {
            let _ = child.kill();
            let _ = child.wait();
            if end == Boot::TimedOut {
                eprintln!("the guest did not power off within {limit:?}: killed");
            }
            return Ok(end);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Nested KVM stalls at boot on some hosts: a guest that only says it is up, given 30 s.
fn kvm_boots(vmlinuz: &Path, dir: &Path) -> Result<bool> {
    if !Path::new("/dev/kvm").exists() {
        return Ok(false);
    }
    let probe = vm_root::probe(dir)?;
    let console = dir.join("kvm-probe.log");
    boot(vmlinuz, &probe, "kvm", &console, Duration::from_secs(30))?;
    Ok(fs::read_to_string(&console)
        .unwrap_or_default()
        .contains("VM-UP"))
}
