//! `cargo xtask test`: the project's whole check, as CI runs it. Each step is timed and the first
//! failure stops the run.

use std::{fs, path::Path};

use anyhow::{bail, Context, Result};

use crate::{build, exec, Ctx, Steps};

pub fn run(
    ctx: &mut Ctx,
    steps: &mut Steps,
    kernel: Option<&str>,
    test_args: &[String],
) -> Result<()> {
    build::run(ctx, steps, true)?;
    let ctx = &*ctx;
    if let Some(kernel) = kernel {
        return second_kernel(ctx, steps, kernel);
    }
    let (stable, nightly) = (ctx.pins.stable.as_str(), ctx.pins.nightly.as_str());

    steps.run("fmt workspace", || {
        exec(ctx.cargo(stable).args(["fmt", "--all", "--", "--check"]))
    })?;
    // sensor-ebpf is outside the workspace, so `--all` skips it. The stable rustfmt checks it:
    // it is what a developer's plain `cargo fmt` runs there, and nightlies may lack rustfmt.
    steps.run("fmt sensor-ebpf", || {
        exec(ctx.cargo(stable).args([
            "fmt",
            "--manifest-path",
            "sensor-ebpf/Cargo.toml",
            "--",
            "--check",
        ]))
    })?;
    steps.run("clippy workspace", || {
        exec(ctx.cargo(stable).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    steps.run("clippy sensor-ebpf (nightly, bpfel)", || {
        let mut cmd = ctx.cargo(nightly);
        cmd.args([
            "clippy",
            "--manifest-path",
            "sensor-ebpf/Cargo.toml",
            "--release",
        ])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        // Its own directory: target/ebpf belongs to sensor/build.rs, whose flags differ, and
        // sharing would make the two rebuild core for each other.
        .args(["--target-dir", "target/ebpf-clippy", "--", "-D", "warnings"]);
        // As in sensor/build.rs: host compiler settings must not leak into the BPF target.
        for key in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "RUSTC_WRAPPER",
        ] {
            cmd.env_remove(key);
        }
        exec(&mut cmd)
    })?;
    // `--lib --bins`, not the whole workspace: sensor/tests/* are the root-only integration
    // tests, run below on their own.
    steps.run("unit tests", || {
        exec(
            ctx.cargo(stable)
                .args(["test", "--workspace", "--release", "--lib", "--bins"])
                .args(pass(test_args)),
        )
    })?;
    steps.run("doc tests", || {
        exec(
            ctx.cargo(stable)
                .args(["test", "--workspace", "--release", "--doc"])
                .args(pass(test_args)),
        )
    })?;
    steps.run("integration tests (root, eBPF, auditd)", || {
        integration_prerequisites()?;
        let _lock = machine_lock()?;
        exec(
            ctx.cargo(stable)
                .args(["test", "--release", "-p", "sensor", "--test", "*"])
                .args(pass(test_args)),
        )
    })?;
    second_kernel(ctx, steps, "debian-6.1")
}

/// The smoke suite in a guest booted on `kernel`, one line per test; fails when one failed.
fn second_kernel(ctx: &Ctx, steps: &mut Steps, kernel: &str) -> Result<()> {
    // No machine lock: the guest's kernel audit and probes are its own.
    steps.run(&format!("smoke suite on {kernel} (QEMU)"), || {
        let Some(report) = crate::vm::run(ctx, kernel, &crate::vm::Guest::Smoke)? else {
            return Ok(());
        };
        eprintln!(
            "guest kernel {} ({}), {:.0} s:",
            report.kernel,
            report.accel,
            report.took.as_secs_f64()
        );
        for during in &report.stalls {
            eprintln!(
                "  stalled once, after {during}: booted again (target/vm/console-stalled.log)"
            );
        }
        for (binary, test, ok) in &report.results {
            eprintln!(
                "  {} {binary}::{test}",
                if *ok { "ok    " } else { "FAILED" }
            );
        }
        let failed = report.results.iter().filter(|r| !r.2).count();
        if report.results.is_empty() || failed > 0 {
            bail!(
                "{failed} of {} tests failed in the guest (console: target/vm/console.log)",
                report.results.len()
            );
        }
        Ok(())
    })
}

/// `-- ARGS` for the test binaries, or nothing.
fn pass(args: &[String]) -> Vec<&str> {
    if args.is_empty() {
        return Vec::new();
    }
    std::iter::once("--")
        .chain(args.iter().map(String::as_str))
        .collect()
}

/// Fails early and plainly where the tests would otherwise fail one by one with EPERM or a
/// missing program.
fn integration_prerequisites() -> Result<()> {
    if effective_uid()? != 0 {
        bail!(
            "the integration tests load eBPF programs and start auditd, so they need root: \
             run `cargo xtask test` as root (the steps before this one passed)"
        );
    }
    let missing: Vec<&str> = [
        "auditctl",
        "auditd",
        "ausearch",
        "pamtester",
        "setcap",
        "ip",
        "setpriv",
        "unshare",
    ]
    .into_iter()
    .filter(|p| !on_path(p))
    .collect();
    if !missing.is_empty() {
        bail!(
            "the integration tests need {} (Debian packages auditd, pamtester, libcap2-bin, \
             iproute2, util-linux; .ci/run installs them)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The integration tests change machine-wide state (probes, kernel audit, auditd), so two runs
/// at once, from two checkouts or two people, break each other (seen: auditd saw no events while
/// another run's auditd held the audit socket). The tests' own mutex only covers one process.
/// The benches change the same state (seen: a test's `auditctl -D` removed `bench exec`'s rule
/// mid-round), and take the same lock.
pub(crate) fn machine_lock() -> Result<fs::File> {
    let path = std::env::temp_dir().join("sensor-integration-tests.lock");
    let file = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    if file.try_lock().is_err() {
        eprintln!(
            "waiting for another run of the integration tests or a bench ({})",
            path.display()
        );
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}

/// From /proc/self/status (`Uid: real effective saved fs`), to avoid a libc dependency.
fn effective_uid() -> Result<u32> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    euid_from_status(&status)
}

fn euid_from_status(status: &str) -> Result<u32> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .context("no Uid: line")?;
    let euid = line.split_whitespace().nth(1).context("short Uid: line")?;
    Ok(euid.parse()?)
}

/// auditd's tools live in /usr/sbin, which a non-login PATH may lack.
pub(crate) fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(Into::into))
        .any(|dir| Path::new(&dir).join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = "Name:\tx\nUmask:\t0022\nUid:\t1000\t0\t1000\t1000\nGid:\t5\t5\t5\t5\n";
        assert_eq!(euid_from_status(status).unwrap(), 0);
        assert!(euid_from_status("Name:\tx\n").is_err());
        assert!(effective_uid().is_ok());
    }

    #[test]
    fn test_args_follow_a_double_dash() {
        assert!(pass(&[]).is_empty());
        assert_eq!(
            pass(&["exec".into(), "--nocapture".into()]),
            ["--", "exec", "--nocapture"]
        );
    }
}
