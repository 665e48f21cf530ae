//! `bench exec`'s sensor programs apart. In the storm an exec's exit is one of some 160-330 runs
//! of `sys_exit` per exec (the tracepoints set takes it there), too few to tell from the others'
//! spread. So, with `kernel.bpf_stats_enabled=1`, under each sensor build, three loops in this
//! process: failed execve (ENOENT: only the entry and exit programs run, the exit with its whole
//! bundle: cwd, exe and cgroup paths, credentials, ids, command line; where `sched_prepare_exec`
//! takes the entries, a failed execve's entry is taken in its exit), execs of a static program
//! that exits at once (`bench_static.rs`: every exec program, and few other syscalls), and
//! open+close of /dev/null (the syscalls no area watches). Beside them an empty program on
//! `raw_syscalls:sys_exit` (bpftrace): its time per run is the floor of what the statistics
//! measure of any program here (a perf-event program where `sys_exit` is `tp_btf`: the
//! statistics' clock reads are the same code).

use std::{collections::BTreeMap, ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use anyhow::{ensure, Result};

use crate::{
    bench::{interrupted, median},
    bench_bpf::{counters, delta, listing, total, BpfStats, Counters},
    bench_bpftrace::Bpftrace,
    bench_sensor::start_sensor,
    bench_static::{static_execs, write_exit0},
    bench_syscalls::open_close_loop,
};

pub(crate) const FAILED_EXECS: usize = 10_000;
pub(crate) const PAIRS: usize = 200_000;
pub(crate) const STATIC_EXECS: usize = 10_000;
const EMPTY_SYS_EXIT: &str = "tracepoint:raw_syscalls:sys_exit { }";

/// One sensor build's programs, in ns.
pub(crate) struct Apart {
    /// The program that took the exec's exit: `sys_exit_execve` or `sys_exit`.
    pub(crate) exit_program: &'static str,
    /// The exit's program per failed execve (median of three loops): every other run of it on
    /// the host during a loop (the agent writing the records, say) counts in, so this is an
    /// upper bound.
    pub(crate) exec_exit: f64,
    /// The entry's program per failed execve.
    pub(crate) exec_enter: f64,
    /// All the sensor's programs per open+close pair, and their runs per pair.
    pub(crate) pair: f64,
    pub(crate) pair_runs: f64,
    /// The exec programs per exec of a static program that exits at once (`bench_static.rs`),
    /// the loop of the three with the median total.
    pub(crate) static_exec: PerExec,
}

/// An exec's programs per exec in a loop or storm: its entry, `sched_process_exec` and its
/// exit, in ns, and how the exit was told from the exit program's other runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PerExec {
    pub(crate) entry: &'static str,
    pub(crate) enter: f64,
    pub(crate) sched: f64,
    pub(crate) exit: f64,
    pub(crate) how: String,
}

impl PerExec {
    /// From the counters `c` of `execs` execs, `sys_exit`'s other runs at `per_run` ns each.
    fn of(c: &BTreeMap<String, Counters>, execs: usize, per_run: f64) -> PerExec {
        let per_exec = |p: &str| c.get(p).map_or(0.0, |c| c.0 as f64 / execs as f64);
        let entry = entry_program(c);
        let (exit, how) = exit_in(c, execs, per_run);
        PerExec {
            entry,
            enter: per_exec(entry),
            sched: per_exec("sched_process_exec"),
            exit,
            how,
        }
    }

    pub(crate) fn total(&self) -> f64 {
        self.enter + self.sched + self.exit
    }
}

impl std::fmt::Display for PerExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "entry ({}) {:.0} + sched_process_exec {:.0} + exit {:.0} ({}) = {:.0} ns",
            self.entry,
            self.enter,
            self.sched,
            self.exit,
            self.how,
            self.total()
        )
    }
}

/// `n` execve of `missing`, a file that does not exist: each fails with ENOENT and returns.
fn failed_execs(missing: &Path, n: usize) -> Result<()> {
    // Were it there, the exec would replace this process, which holds the host's settings to
    // put back.
    ensure!(!missing.exists(), "{} exists", missing.display());
    let path = CString::new(missing.as_os_str().as_bytes())?;
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    for _ in 0..n {
        ensure!(!interrupted(), "interrupted");
        // SAFETY: NUL-terminated strings in NULL-terminated arrays.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let err = std::io::Error::last_os_error();
        ensure!(err.raw_os_error() == Some(libc::ENOENT), "execve: {err}");
    }
    Ok(())
}

/// The exec's exit program: `sys_exit_execve` where the probe set has it, else `sys_exit`;
/// its time.
fn exit_program(d: &BTreeMap<String, Counters>) -> (&'static str, u64) {
    match d.get("sys_exit_execve") {
        Some(c) => ("sys_exit_execve", c.0),
        None => ("sys_exit", d.get("sys_exit").map_or(0, |c| c.0)),
    }
}

/// Median of three loops of failed execve; one of open+close.
pub(crate) fn measure(bin: &Path, dir: &Path) -> Result<Apart> {
    let _stats = BpfStats::enable()?;
    let sensor = start_sensor(bin, dir, None, &[])?;
    let pid = sensor.id();
    let names = listing(pid)?;
    let missing = dir.join("never-created");
    let n = FAILED_EXECS as f64;
    let (mut exits, mut enters, mut exit_name) = (Vec::new(), Vec::new(), "sys_exit");
    for _ in 0..3 {
        let c0 = counters(pid)?;
        failed_execs(&missing, FAILED_EXECS)?;
        let execs = delta(&c0, &counters(pid)?, &names);
        let (name, ns) = exit_program(&execs);
        exit_name = name;
        exits.push(ns as f64 / n);
        enters.push(execs.get("sys_enter_execve").map_or(0, |c| c.0) as f64 / n);
    }
    let exit0 = dir.join("exit0");
    write_exit0(&exit0)?;
    let mut statics = Vec::new();
    for _ in 0..3 {
        let c0 = counters(pid)?;
        static_execs(&exit0, STATIC_EXECS)?;
        statics.push(delta(&c0, &counters(pid)?, &names));
    }
    let c0 = counters(pid)?;
    open_close_loop(PAIRS)?;
    let pairs = delta(&c0, &counters(pid)?, &names);
    sensor.stop()?;
    let (ns, runs) = total(&pairs);
    let (pair, pair_runs) = (ns as f64 / PAIRS as f64, runs as f64 / PAIRS as f64);
    let mut statics: Vec<PerExec> = statics
        .iter()
        .map(|c| PerExec::of(c, STATIC_EXECS, per_run(pair, pair_runs)))
        .collect();
    statics.sort_by(|a, b| a.total().total_cmp(&b.total()));
    Ok(Apart {
        exit_program: exit_name,
        exec_exit: median(exits),
        exec_enter: median(enters),
        pair,
        pair_runs,
        static_exec: statics.swap_remove(1),
    })
}

/// ns per run of the sensor's programs on the open+close loop, where no area watches the
/// syscalls.
fn per_run(pair: f64, pair_runs: f64) -> f64 {
    match pair_runs > 0.0 {
        true => pair / pair_runs,
        false => 0.0,
    }
}

/// ns per run of an empty program on every syscall's exit, over open+close pairs.
pub(crate) fn floor(dir: &Path) -> Result<f64> {
    let _stats = BpfStats::enable()?;
    let bt = Bpftrace::start_program(dir, EMPTY_SYS_EXIT)?;
    let pid = bt.child.id();
    let c0 = counters(pid)?;
    open_close_loop(PAIRS)?;
    let c1 = counters(pid)?;
    bt.stop()?;
    let d = delta(&c0, &c1, &BTreeMap::new());
    let (ns, runs) = total(&d);
    ensure!(runs > 0, "the empty program did not run");
    Ok(ns as f64 / runs as f64)
}

/// The program that took the storm's exec entries: `sched_prepare_exec` where the build and
/// kernel have it (a failed execve's entry is then taken in its exit, and counts in the exit's
/// time), else `sys_enter_execve`.
fn entry_program(storm: &BTreeMap<String, Counters>) -> &'static str {
    match storm.contains_key("sched_prepare_exec") {
        true => "sched_prepare_exec",
        false => "sys_enter_execve",
    }
}

/// The exec's exit in a loop or storm of `execs` execs, in ns per exec: its own tracepoint's
/// time where the probe set has one; else `sys_exit`'s time less its other runs (every other
/// syscall of the host), each at `per_run`, what a run cost on the open+close loop. Not the
/// failed execve's exit: where `sched_prepare_exec` takes the entries, that one holds the
/// failed exec's entry too, which a successful exec's exit does not do.
fn exit_in(c: &BTreeMap<String, Counters>, execs: usize, per_run: f64) -> (f64, String) {
    let per_exec = |c: &Counters| (c.0 as f64 / execs as f64, c.1 as f64 / execs as f64);
    if let Some(c) = c.get("sys_exit_execve") {
        return (per_exec(c).0, "sys_exit_execve".to_owned());
    }
    let (ns, runs) = c.get("sys_exit").map_or((0.0, 0.0), per_exec);
    let other = (runs - 1.0).max(0.0);
    (
        ns - other * per_run,
        format!("sys_exit less its other {other:.1} runs at {per_run:.0} ns"),
    )
}

/// The line `bench exec` prints per build: the two loops, and the exec programs per exec in
/// the storm's stats round `storm`.
pub(crate) fn line(
    name: &str,
    a: &Apart,
    storm: &BTreeMap<String, Counters>,
    execs: usize,
) -> String {
    let storm = PerExec::of(storm, execs, per_run(a.pair, a.pair_runs));
    format!(
        "  {name:<28} failed execve: exit ({}) {:>6.0}  entry {:>6.0};  per pair {:>4.0} ns in {:.2} runs;  exec programs per exec in the storm: {storm}",
        a.exit_program, a.exec_exit, a.exec_enter, a.pair, a.pair_runs,
    )
}

/// The line of the exec programs per exec of the static program (`bench_static.rs`).
pub(crate) fn static_line(name: &str, a: &Apart) -> String {
    format!(
        "  {name:<28} exec programs per exec of a static program that exits at once: {}",
        a.static_exec
    )
}

/// All of a build's programs per exec in the storm's stats round, less `floor` (an empty
/// program's ns per run, the floor of what the statistics measure) for each run.
pub(crate) fn beyond_floor(
    name: &str,
    storm: &BTreeMap<String, Counters>,
    execs: usize,
    floor: f64,
) -> String {
    let (ns, runs) = total(storm);
    let (ns, runs) = (ns as f64 / execs as f64, runs as f64 / execs as f64);
    format!(
        "  {name:<28} storm: {ns:.0} ns per exec in {runs:.1} runs; beyond the empty program's {floor:.0} ns for each run: {:.0} ns per exec",
        ns - runs * floor
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(pairs: &[(&str, u64)]) -> BTreeMap<String, Counters> {
        pairs
            .iter()
            .map(|&(n, ns)| (n.to_owned(), (ns, 1)))
            .collect()
    }

    #[test]
    fn the_exec_exit_is_its_own_tracepoint_where_the_probe_set_has_one() {
        let both = counters(&[("sys_exit", 7), ("sys_exit_execve", 5)]);
        assert_eq!(exit_program(&both), ("sys_exit_execve", 5));
        assert_eq!(exit_program(&counters(&[("sys_exit", 7)])), ("sys_exit", 7));
        assert_eq!(
            exit_program(&counters(&[("sched_process_exec", 7)])),
            ("sys_exit", 0)
        );
    }

    #[test]
    fn the_exec_programs_are_the_storms_with_sys_exits_other_runs_taken_out() {
        let a = Apart {
            exit_program: "sys_exit",
            exec_exit: 2000.0,
            exec_enter: 700.0,
            pair: 110.0,
            pair_runs: 2.0,
            static_exec: PerExec::of(&BTreeMap::new(), 1, 0.0),
        };
        let runs = |ns: u64, runs: u64| (ns, runs);
        // 2000 execs: sys_exit 101 runs and 7500 ns per exec, 100 of them at 55 ns.
        let storm: BTreeMap<String, Counters> = [
            ("sys_enter_execve".to_owned(), runs(3_000_000, 2000)),
            ("sched_process_exec".to_owned(), runs(2_000_000, 2000)),
            ("sys_exit".to_owned(), runs(15_000_000, 202_000)),
        ]
        .into();
        let first = line("sensor", &a, &storm, 2000);
        assert!(
            first.ends_with("entry (sys_enter_execve) 1500 + sched_process_exec 1000 + exit 2000 (sys_exit less its other 100.0 runs at 55 ns) = 4500 ns"),
            "{first}"
        );
        assert!(
            first.contains("failed execve: exit (sys_exit)   2000  entry    700"),
            "{first}"
        );
        // Where `sched_prepare_exec` took the entries, the syscall tracepoint is not counted.
        let mut storm = storm;
        storm.insert("sched_prepare_exec".to_owned(), runs(2_000_000, 2000));
        storm.insert("sys_enter_execve".to_owned(), runs(9_000_000, 9));
        let prepared = line("sensor", &a, &storm, 2000);
        assert!(
            prepared.ends_with("entry (sched_prepare_exec) 1000 + sched_process_exec 1000 + exit 2000 (sys_exit less its other 100.0 runs at 55 ns) = 4000 ns"),
            "{prepared}"
        );
        // The trampolines set: the exit's own program, as the storm timed it.
        storm.insert("sys_exit_execve".to_owned(), runs(5_000_000, 2000));
        let own = line("sensor", &a, &storm, 2000);
        assert!(
            own.ends_with("+ exit 2500 (sys_exit_execve) = 4500 ns"),
            "{own}"
        );
    }

    /// The static program's loop: few other runs of `sys_exit`, taken out at the pair loop's
    /// cost per run.
    #[test]
    fn a_static_programs_execs_are_told_apart_the_same_way() {
        // 10 execs: sys_exit 4.5 runs and 2200 ns per exec, 3.5 of them at 60 ns.
        let c: BTreeMap<String, Counters> = [
            ("sched_prepare_exec".to_owned(), (13_000, 10)),
            ("sched_process_exec".to_owned(), (12_000, 10)),
            ("sys_exit".to_owned(), (22_000, 45)),
        ]
        .into();
        let p = PerExec::of(&c, 10, per_run(120.0, 2.0));
        assert_eq!((p.enter, p.sched, p.exit), (1300.0, 1200.0, 1990.0));
        let a = Apart {
            exit_program: "sys_exit",
            exec_exit: 0.0,
            exec_enter: 0.0,
            pair: 120.0,
            pair_runs: 2.0,
            static_exec: p,
        };
        let line = static_line("sensor", &a);
        assert!(
            line.ends_with("a static program that exits at once: entry (sched_prepare_exec) 1300 + sched_process_exec 1200 + exit 1990 (sys_exit less its other 3.5 runs at 60 ns) = 4490 ns"),
            "{line}"
        );
    }

    #[test]
    fn what_is_beyond_the_floor_is_each_runs_time_less_the_floor() {
        let storm: BTreeMap<String, Counters> = [
            ("sys_exit".to_owned(), (60_000, 1000)),
            ("sys_enter_execve".to_owned(), (20_000, 10)),
        ]
        .into();
        let line = beyond_floor("sensor", &storm, 10, 50.0);
        assert!(
            line.ends_with("storm: 8000 ns per exec in 101.0 runs; beyond the empty program's 50 ns for each run: 2950 ns per exec"),
            "{line}"
        );
    }
}
