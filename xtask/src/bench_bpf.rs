//! The observers' in-kernel BPF time: `kernel.bpf_stats_enabled=1` for the bench (the previous
//! value put back on drop), and each program's `run_time_ns` and `run_cnt` read before and after
//! a round. An observer's programs are those whose id one of its file descriptors names: a
//! program fd (`anon_inode:bpf-prog`) or a link fd (`anon_inode:bpf_link`), whose
//! `/proc/PID/fdinfo` gives the `prog_id` (Debian's bpftool prints no `pids`). The counters are
//! read from the program fds' fdinfo too; the names from `bpftool prog show --json`.
//!
//! With the statistics on, every run of every BPF program on the host also reads the clock
//! twice (some 20-40 ns): the bench's sensor and bpftrace rounds include that cost.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use anyhow::{ensure, Context, Result};

use crate::bench_json::Json;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// `kernel.bpf_stats_enabled=1` while it lives.
pub(crate) struct BpfStats {
    was: String,
}

impl BpfStats {
    pub(crate) fn enable() -> Result<BpfStats> {
        let was = std::fs::read_to_string(SYSCTL)
            .with_context(|| format!("reading {SYSCTL}"))?
            .trim()
            .to_owned();
        std::fs::write(SYSCTL, "1").with_context(|| format!("writing 1 to {SYSCTL}"))?;
        Ok(BpfStats { was })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.was);
        let now = std::fs::read_to_string(SYSCTL).unwrap_or_default();
        if now.trim() != self.was {
            eprintln!(
                "bench: kernel.bpf_stats_enabled is {} (was {})",
                now.trim(),
                self.was
            );
        }
    }
}

/// Run time (ns) and runs of a program.
pub(crate) type Counters = (u64, u64);

/// `prog_id` of each program or link fd of a process, with the program fds' own counters.
fn fds(pid: u32) -> Vec<(u32, Option<Counters>)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let field = |info: &str, key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
    };
    let mut out = Vec::new();
    for fd in dir.flatten() {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        let prog = target == "anon_inode:bpf-prog";
        if !prog && target != "anon_inode:bpf_link" {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        if let Some(id) = field(&info, "prog_id:") {
            let counters = field(&info, "run_time_ns:").zip(field(&info, "run_cnt:"));
            out.push((id as u32, counters.filter(|_| prog)));
        }
    }
    out
}

/// Runs of the programs a process holds fds of (0 while the statistics are off): bpftrace is
/// attached once a probe exec makes this grow.
pub(crate) fn runs_of(pid: u32) -> u64 {
    fds(pid).iter().filter_map(|(_, c)| c.map(|c| c.1)).sum()
}

/// One program: its name and counters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prog {
    pub(crate) name: String,
    pub(crate) ns: u64,
    pub(crate) runs: u64,
}

/// The programs a process holds, by id, as bpftool lists them (their names).
pub(crate) fn listing(pid: u32) -> Result<BTreeMap<u32, Prog>> {
    let ids: BTreeSet<u32> = fds(pid).into_iter().map(|(id, _)| id).collect();
    bpftool(&ids)
}

fn bpftool(ids: &BTreeSet<u32>) -> Result<BTreeMap<u32, Prog>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .context("bpftool (Debian package bpftool)")?;
    ensure!(
        out.status.success(),
        "bpftool prog show: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    programs(&String::from_utf8_lossy(&out.stdout), ids)
}

/// The counters of the programs a process holds, by id: from `/proc/PID/fdinfo` of its program
/// fds, which costs a few reads and no process, so that the window measured holds little else;
/// from bpftool for a program the process only holds a link to.
pub(crate) fn counters(pid: u32) -> Result<BTreeMap<u32, Counters>> {
    let mut by_id = BTreeMap::new();
    let mut linked = BTreeSet::new();
    for (id, c) in fds(pid) {
        match c {
            Some(c) => {
                by_id.insert(id, c);
            }
            None => {
                linked.insert(id);
            }
        }
    }
    linked.retain(|id| !by_id.contains_key(id));
    for (id, p) in bpftool(&linked)? {
        by_id.insert(id, (p.ns, p.runs));
    }
    Ok(by_id)
}

fn programs(json: &str, ids: &BTreeSet<u32>) -> Result<BTreeMap<u32, Prog>> {
    let list = Json::parse(json)?;
    let mut progs = BTreeMap::new();
    for p in list.as_array() {
        let num = |k: &str| p.get(k).and_then(Json::as_u64).unwrap_or(0);
        let id = num("id") as u32;
        if ids.contains(&id) {
            let name = p.get("name").and_then(Json::as_str).unwrap_or("?");
            let prog = Prog {
                name: name.to_owned(),
                ns: num("run_time_ns"),
                runs: num("run_cnt"),
            };
            progs.insert(id, prog);
        }
    }
    Ok(progs)
}

/// Time and runs per program name between two readings of `counters` (programs of one name
/// added up; one missing from `names` is named by its id).
pub(crate) fn delta(
    before: &BTreeMap<u32, Counters>,
    after: &BTreeMap<u32, Counters>,
    names: &BTreeMap<u32, Prog>,
) -> BTreeMap<String, Counters> {
    let mut by_name = BTreeMap::new();
    for (id, &(ns, runs)) in after {
        let (ns0, runs0) = before.get(id).copied().unwrap_or((0, 0));
        let name = names.get(id).map_or(format!("id {id}"), |p| p.name.clone());
        let e = by_name.entry(name).or_insert((0, 0));
        e.0 += ns.saturating_sub(ns0);
        e.1 += runs.saturating_sub(runs0);
    }
    by_name
}

/// Time and runs of all the programs in a `delta`.
pub(crate) fn total(d: &BTreeMap<String, Counters>) -> Counters {
    d.values()
        .fold((0, 0), |(n, r), &(dn, dr)| (n + dn, r + dr))
}

/// One observer's programs over all rounds: ns and runs per name, and the execs they served.
#[derive(Default, Clone)]
pub(crate) struct BpfTotals {
    pub(crate) by_name: BTreeMap<String, (u64, u64)>,
    pub(crate) execs: usize,
}

impl BpfTotals {
    pub(crate) fn add(&mut self, round: &BTreeMap<String, (u64, u64)>, execs: usize) {
        for (name, (ns, runs)) in round {
            let e = self.by_name.entry(name.clone()).or_insert((0, 0));
            e.0 += ns;
            e.1 += runs;
        }
        self.execs += execs;
    }

    /// All its programs' ns per exec.
    pub(crate) fn ns_per_exec(&self) -> f64 {
        let ns: u64 = self.by_name.values().map(|v| v.0).sum();
        ns as f64 / self.execs.max(1) as f64
    }

    /// One line per program: ns per run, runs per exec, ns per exec; then the total.
    pub(crate) fn lines(&self, observer: &str) -> Vec<String> {
        let per = |v: u64| v as f64 / self.execs.max(1) as f64;
        let mut lines: Vec<String> = self
            .by_name
            .iter()
            .filter(|(_, (_, runs))| *runs > 0)
            .map(|(name, &(ns, runs))| {
                format!(
                    "  {observer:<24} {name:<24} {:>10.0} {:>12.2} {:>12.0}",
                    ns as f64 / runs as f64,
                    per(runs),
                    per(ns)
                )
            })
            .collect();
        lines.push(format!(
            "  {observer:<24} {:<24} {:>10} {:>12} {:>12.0}",
            "total",
            "",
            "",
            self.ns_per_exec()
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters_of_nothing() -> bool {
        counters(u32::MAX).is_ok_and(|c| c.is_empty())
    }

    #[test]
    fn an_observers_programs_are_picked_by_id_and_their_time_added_up_by_name() {
        let json = |n: u64| {
            format!(
                r#"[{{"id":1,"name":"sys_exit","run_time_ns":{},"run_cnt":{}}},
                {{"id":2,"name":"other","run_time_ns":5,"run_cnt":1}},
                {{"id":3,"name":"sys_enter_execve","run_time_ns":{},"run_cnt":{n}}},
                {{"id":4,"name":"sys_enter_execve"}}]"#,
                100 * n,
                2 * n,
                300 * n
            )
        };
        let ids: BTreeSet<u32> = [1, 3, 4].into();
        let names = programs(&json(1), &ids).unwrap();
        assert_eq!(names.len(), 3);
        assert_eq!(names[&4].runs, 0);
        let counters = |n| {
            let c: BTreeMap<u32, Counters> = programs(&json(n), &ids)
                .unwrap()
                .into_iter()
                .map(|(id, p)| (id, (p.ns, p.runs)))
                .collect();
            c
        };
        let (before, mut after) = (counters(1), counters(11));
        after.insert(9, (7, 1));
        let d = delta(&before, &after, &names);
        assert_eq!(d["id 9"], (7, 1));
        assert_eq!(d["sys_exit"], (1000, 20));
        assert_eq!(d["sys_enter_execve"], (3000, 10));
        assert!(!d.contains_key("other"));
        let mut t = BpfTotals::default();
        t.add(&d, 10);
        t.add(&d, 10);
        assert_eq!(t.ns_per_exec(), 400.7);
        let lines = t.lines("sensor");
        assert_eq!(lines.len(), 4);
        assert!(lines[0].contains("id 9"));
        assert!(lines[1].contains("sys_enter_execve") && lines[1].ends_with(" 300"));
        assert!(lines[2].contains("sys_exit") && lines[2].contains(" 50 "));
        assert!(lines[3].contains("total") && lines[3].ends_with(" 401"));
        assert_eq!(runs_of(u32::MAX), 0);
        assert!(counters_of_nothing());
    }
}
