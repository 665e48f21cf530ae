//! bpftrace as an observer of `bench exec`, the yardstick of a plain eBPF tool: one program on
//! `syscalls:sys_enter_execve` that prints each exec's argv joined by spaces to a file, and one
//! that only counts (`@ = count()`, printed at exit). Installed with apt-get (Debian package
//! bpftrace) when missing, as .ci/run installs its packages; where that fails the bench goes on
//! without these two observers.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{
    bench::interrupted,
    bench_bpf::{runs_of, BpfStats},
};

/// bpftrace 0.17 (Debian 12) spells the tracepoint's arguments `args->`, and `join` prints.
const PRINT: &str = "tracepoint:syscalls:sys_enter_execve { join(args->argv); }";
const COUNT: &str = "tracepoint:syscalls:sys_enter_execve { @ = count(); }";
/// bpftrace compiles its program with LLVM before it attaches: seconds on this VM.
const ATTACH_WITHIN: Duration = Duration::from_secs(60);

/// Whether bpftrace is there, installed now if it was not.
pub(crate) fn available() -> bool {
    installed("bpftrace", "its observers are skipped")
}

/// Whether `program` (of the Debian package of that name) is on PATH, installed now if it was
/// not; `without` says what the bench leaves out otherwise.
pub(crate) fn installed(program: &str, without: &str) -> bool {
    if crate::test::on_path(program) {
        return true;
    }
    eprintln!("{program}: not installed, installing (Debian package {program})");
    let install =
        apt(&["update"]).and_then(|()| apt(&["install", "-y", "--no-install-recommends", program]));
    match install {
        Ok(()) if crate::test::on_path(program) => true,
        Ok(()) => {
            eprintln!("bench: {program} installed but not found on PATH: {without}");
            false
        }
        Err(e) => {
            eprintln!("bench: {program} cannot be installed ({e:#}): {without}");
            false
        }
    }
}

/// apt-get as .ci/run runs it; its progress goes to stderr, which keeps stdout for the table.
fn apt(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("apt-get");
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()));
    crate::exec(&mut cmd)
}

/// A running bpftrace and the file it writes.
pub(crate) struct Bpftrace {
    pub(crate) child: Child,
    pub(crate) out: PathBuf,
    err: PathBuf,
}

impl Bpftrace {
    /// Started, and returned once its program runs: a probe exec (`bench-bpftrace-ready`, not
    /// a storm's marker) made its run count grow (`kernel.bpf_stats_enabled`, which counts
    /// runs, is on until then).
    pub(crate) fn start(dir: &Path, counting: bool) -> Result<Bpftrace> {
        Bpftrace::start_program(dir, if counting { COUNT } else { PRINT })
    }

    /// As [`Bpftrace::start`], with another program (one that runs at execs, or at every
    /// syscall).
    pub(crate) fn start_program(dir: &Path, program: &str) -> Result<Bpftrace> {
        let _stats = BpfStats::enable()?;
        let out = dir.join("bpftrace.out");
        let err = dir.join("bpftrace.err");
        let _ = std::fs::remove_file(&out);
        let child = Command::new("bpftrace")
            .arg("-o")
            .arg(&out)
            .arg("-e")
            .arg(program)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&err)?)
            .spawn()
            .context("bpftrace")?;
        let mut bt = Bpftrace { child, out, err };
        let t = Instant::now();
        loop {
            if let Some(status) = bt.child.try_wait()? {
                bail!("bpftrace exited ({status}): {}", bt.stderr());
            }
            if interrupted() || t.elapsed() > ATTACH_WITHIN {
                bt.kill();
                bail!("bpftrace did not attach: {}", bt.stderr());
            }
            Command::new("/bin/true")
                .arg("bench-bpftrace-ready")
                .status()?;
            if runs_of(bt.child.id()) > 0 {
                return Ok(bt);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Interrupted as a person would stop it (it prints its maps then); returns the count the
    /// counting program printed.
    pub(crate) fn stop(mut self) -> Result<Option<u64>> {
        // SAFETY: plain signal to our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        while self.child.try_wait()?.is_none() {
            if t.elapsed() > Duration::from_secs(10) {
                self.kill();
                bail!("bpftrace did not stop on SIGINT: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(count(
            &std::fs::read_to_string(&self.out).unwrap_or_default(),
        ))
    }
}

impl Drop for Bpftrace {
    /// A round that failed does not leave bpftrace attached.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// `@: N`, the counting program's map as bpftrace prints it at exit.
fn count(out: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix("@: ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn the_count_is_read_from_bpftraces_exit_output() {
        assert_eq!(count("Attaching 1 probe...\n\n\n@: 5014\n"), Some(5014));
        assert_eq!(count("Attaching 1 probe...\n"), None);
    }
}
