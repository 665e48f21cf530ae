//! `cargo xtask`: the project's build and test entry points, so a developer and CI run the same
//! steps with the toolchains pinned in `toolchains.env`.
//!
//! This binary is compiled by whatever toolchain runs `cargo xtask` (rustup's default), not by the
//! pins, so it keeps to a few dependencies that build with any recent stable, and drives the
//! pinned toolchains as child processes.

mod bench;
mod bench_apart;
mod bench_audit;
mod bench_bigargs;
mod bench_bpf;
mod bench_bpftrace;
mod bench_hook;
mod bench_json;
mod bench_log;
mod bench_observer;
mod bench_pam;
mod bench_proc;
mod bench_sensor;
mod bench_static;
mod bench_syscalls;
mod bench_table;
mod bench_throughput;
mod build;
mod elf;
mod install;
mod test;
mod toolchain;
mod vm;
mod vm_console;
mod vm_root;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Build and test the sensor with the toolchains pinned in toolchains.env")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the pinned toolchains and bpf-linker if missing, then build target/release/sensor.
    Build,
    /// Build, then fmt, clippy, unit tests and the root-only integration tests; stops at the first
    /// failing step.
    Test {
        /// Only the smoke suite on a second kernel booted under QEMU (`debian-6.1`: Debian 12's
        /// 6.1 cloud kernel), after the build. Without it, every step runs, this tier last.
        #[arg(long, value_name = "NAME")]
        kernel: Option<String>,
        /// Passed to every test binary, e.g. a test name filter: `cargo xtask test -- exec`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then run the sensor (as root) with its defaults; arguments go to `sensor run`.
    Run {
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then install the sensor, its systemd unit and the drop-in that makes it replace
    /// auditd (see README, "As a service").
    Install {
        /// Install under this directory instead of `/` (the files name the paths seen from it).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Build, then measure: `cargo xtask bench exec`, `bench syscalls`, `bench pam`.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// An exec storm with no observer, with the sensor, with auditd's execve rule and with
    /// bpftrace (and with the sensor and auditd under an audit.rules file, with --rules); or, with
    /// --throughput, the highest exec rate each observer takes without loss.
    Exec {
        /// fork+exec of /bin/true per round and observer.
        #[arg(long, default_value_t = 5000)]
        execs: usize,
        /// Rounds; observers alternate within each. This VM's own speed drifts by 20% between
        /// minutes, so medians of several rounds are needed.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// An audit.rules file: two more observers, `sensor run --rules` and auditd with the
        /// file's rule lines alone in the kernel (loaded with `auditctl -R`; kernel settings such
        /// as -e, -f, -b and -D are left out, lines auditctl refuses here are skipped). The
        /// kernel's rules are put back afterwards.
        #[arg(long, value_name = "FILE", conflicts_with = "throughput")]
        rules: Option<PathBuf>,
        /// Another build of the sensor (say, an earlier commit's `target/release/sensor`, copied
        /// aside), timed in the same rounds as a row of its own: before and after a change.
        #[arg(long, value_name = "BIN", conflicts_with = "throughput")]
        baseline: Option<PathBuf>,
        /// Instead of the storm above: several spawners run /bin/true at rising rates, then flat
        /// out, with the sensor and with auditd, for the highest rate without loss; then a storm
        /// of 100 KiB-argument execs past what the sensor's ring buffer holds.
        #[arg(long)]
        throughput: bool,
        /// With --throughput: threads spawning /bin/true at once.
        #[arg(long, default_value_t = 4, requires = "throughput")]
        spawners: usize,
        /// With --throughput: seconds per step.
        #[arg(long, default_value_t = 5.0, requires = "throughput")]
        seconds: f64,
    },
    /// pam_authenticate + pam_acct_mgmt in one process, without and with the sensor.
    Pam {
        /// authenticate + acct_mgmt pairs per round.
        #[arg(long, default_value_t = 2000)]
        pairs: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// open+close in a loop with no observer, with the sensor, with empty programs where it could
    /// watch syscall exits, and with kernel audit enabled.
    Syscalls {
        /// open+close pairs per round and observer.
        #[arg(long, default_value_t = 1_000_000)]
        calls: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Inside a kernel tier's guest under QEMU (`debian-6.1`) instead of on this host; under
        /// emulation compare the ratios, not the times.
        #[arg(long)]
        kernel: Option<String>,
        /// Another build of the sensor, timed in the same rounds as a row of its own (on this
        /// host).
        #[arg(long, value_name = "BIN", conflicts_with = "kernel")]
        baseline: Option<PathBuf>,
        /// Inside the guest: the sensor already built, benched without building anything.
        #[arg(long, hide = true)]
        guest_sensor: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Inside the kernel tier's guest there is no checkout and no toolchain: the bench alone.
    if let Cmd::Bench {
        what:
            BenchCmd::Syscalls {
                calls,
                rounds,
                guest_sensor: Some(bin),
                ..
            },
    } = &cli.command
    {
        return match bench_syscalls::syscalls(bin, None, *calls, *rounds, true) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut steps = Steps::default();
    let result = Ctx::new().and_then(|mut ctx| match cli.command {
        Cmd::Build => build::run(&mut ctx, &mut steps, false).map(Some),
        Cmd::Test { kernel, args } => {
            test::run(&mut ctx, &mut steps, kernel.as_deref(), &args).map(|()| None)
        }
        Cmd::Run { args } => {
            let bin = build::run(&mut ctx, &mut steps, false)?;
            steps.summary();
            // The sensor runs until interrupted; its exit status is ours.
            let status = Command::new(&bin).arg("run").args(&args).status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Install { root } => {
            let bin = build::run(&mut ctx, &mut steps, false)?;
            steps
                .run("install", || install::install(&ctx.root, &bin, &root))
                .map(|_| None)
        }
        Cmd::Bench {
            what:
                BenchCmd::Exec {
                    execs,
                    rounds,
                    rules,
                    baseline,
                    throughput,
                    spawners,
                    seconds,
                },
        } => {
            let bin = build::run(&mut ctx, &mut steps, false)?;
            steps
                .run("bench exec", || {
                    if throughput {
                        bench_throughput::throughput(&bin, spawners, seconds)
                    } else {
                        bench::exec(&bin, execs, rounds, rules.as_deref(), baseline.as_deref())
                    }
                })
                .map(|()| None)
        }
        Cmd::Bench {
            what: BenchCmd::Pam { pairs, rounds },
        } => {
            let bin = build::run(&mut ctx, &mut steps, false)?;
            steps
                .run("bench pam", || bench_pam::pam(&bin, pairs, rounds))
                .map(|()| None)
        }
        Cmd::Bench {
            what:
                BenchCmd::Syscalls {
                    calls,
                    rounds,
                    kernel,
                    baseline,
                    ..
                },
        } => {
            let bin = build::run(&mut ctx, &mut steps, false)?;
            match kernel {
                Some(kernel) => steps
                    .run(&format!("bench syscalls on {kernel} (QEMU)"), || {
                        vm::bench_syscalls(&ctx, &kernel, calls, rounds)
                    })
                    .map(|()| None),
                None => steps
                    .run("bench syscalls", || {
                        bench_syscalls::syscalls(&bin, baseline.as_deref(), calls, rounds, false)
                    })
                    .map(|()| None),
            }
        }
    });
    steps.summary();
    match result {
        Ok(built) => {
            // The one line on stdout, so scripts can take the path.
            if let Some(bin) = built {
                println!("{}", bin.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What every step needs: where the repository is, the pins, and the PATH for child processes
/// (which may gain the directory where bpf-linker was just installed).
pub struct Ctx {
    pub root: PathBuf,
    pub pins: toolchain::Pins,
    pub path: OsString,
}

impl Ctx {
    fn new() -> Result<Ctx> {
        // xtask/ sits in the workspace root; the compile-time path is right because xtask is only
        // ever run by `cargo xtask` from this checkout.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent directory")?
            .to_owned();
        let pins = toolchain::Pins::load(&root)?;
        let path = std::env::var_os("PATH").unwrap_or_default();
        Ok(Ctx { root, pins, path })
    }

    /// `cargo +TOOLCHAIN` run in the workspace root.
    pub fn cargo(&self, toolchain: &str) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.arg(format!("+{toolchain}")).current_dir(&self.root);
        self.clean_env(&mut cmd);
        cmd
    }

    /// rustup sets RUSTUP_TOOLCHAIN for the `cargo xtask` process (the default toolchain), and a
    /// RUSTC/RUSTDOC in the environment would bypass `+TOOLCHAIN`: children must see the pins only.
    pub fn clean_env(&self, cmd: &mut Command) {
        cmd.env("PATH", &self.path);
        for key in [
            "RUSTUP_TOOLCHAIN",
            "RUSTUP_TOOLCHAIN_SOURCE",
            "RUSTC",
            "RUSTDOC",
        ] {
            cmd.env_remove(key);
        }
    }
}

/// Runs a command with inherited stdio; an error names the command and its exit status.
pub fn exec(cmd: &mut Command) -> Result<()> {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a command for its stdout (stderr still goes to the terminal, so errors are seen).
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = show(cmd);
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !out.status.success() {
        bail!("`{shown}` failed ({})", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{shown}` printed non-UTF-8"))
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Times named steps and prints one line per step as it ends, and all of them again at the end
/// (cargo's output scrolls the per-step lines away).
#[derive(Default)]
pub struct Steps {
    done: Vec<(String, Duration, bool)>,
}

impl Steps {
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!("==> {name}");
        let start = Instant::now();
        let result = f();
        let took = start.elapsed();
        let line = line(name, took, result.is_ok());
        eprintln!("{line}");
        self.done.push((name.to_owned(), took, result.is_ok()));
        result.with_context(|| format!("step `{name}` failed"))
    }

    fn summary(&self) {
        if self.done.is_empty() {
            return;
        }
        eprintln!("---- xtask summary ----");
        for (name, took, ok) in &self.done {
            eprintln!("{}", line(name, *took, *ok));
        }
        let total: Duration = self.done.iter().map(|d| d.1).sum();
        eprintln!("total {:.1}s", total.as_secs_f64());
    }
}

fn line(name: &str, took: Duration, ok: bool) -> String {
    let verdict = if ok { "ok    " } else { "FAILED" };
    format!("{verdict} {name:<40} {:>7.1}s", took.as_secs_f64())
}
