//! The tables `bench exec` prints from its rounds: the overheads against the same round's bare
//! storm, then each observer's own CPU, BPF time and memory, then its BPF programs one by one.

use std::collections::BTreeMap;

use crate::{
    bench::{median, Sample},
    bench_bpf::BpfTotals,
    bench_observer::{End, Observer},
};

pub(crate) fn spread(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(v.to_vec());
    format!("{m:+.digits$} [{lo:+.digits$} .. {hi:+.digits$}]")
}

pub(crate) fn table(
    samples: &[Vec<Sample>],
    order: &[Observer],
    names: &[String],
    width: usize,
    execs: usize,
) {
    let rounds = samples.len();
    let col = |k: usize, f: &dyn Fn(&Sample, &Sample) -> f64| -> Vec<f64> {
        samples.iter().map(|row| f(&row[k], &row[0])).collect()
    };
    println!(
        "{:<width$}  {:<26} {:<30} {:>6} {:>21} {:>13}  ended",
        "observer",
        "wall +%",
        "extra host cpu µs/exec",
        "lost",
        "storm execs written",
        "records/round"
    );
    let wall0 = median(col(0, &|s, _| s.wall.as_secs_f64()));
    let cpu0 = median(col(0, &|s, _| s.cpu));
    println!(
        "{:<width$}  {:<26} {:<30}",
        names[0],
        format!("{wall0:.2} s"),
        format!("{cpu0:.2} s host cpu")
    );
    // A bare storm keeps about one CPU busy (the storm, then each child); more means other work
    // on the host, which is in every number below.
    let busiest = samples
        .iter()
        .map(|row| row[0].cpu / row[0].wall.as_secs_f64())
        .fold(0.0, f64::max);
    if busiest > 1.5 {
        println!("warning: the host was busy: a round with no observer kept {busiest:.1} CPUs busy (a bare storm keeps about 1)");
    }
    let mut extra = vec![f64::NAN; names.len()];
    for (k, name) in names.iter().enumerate().skip(1) {
        let wall = col(k, &|s, n| {
            (s.wall.as_secs_f64() / n.wall.as_secs_f64() - 1.0) * 100.0
        });
        let cpu = col(k, &|s, n| (s.cpu - n.cpu) / execs as f64 * 1e6);
        extra[k] = median(cpu.clone());
        let lost: u64 = samples.iter().map(|row| row[k].lost).sum();
        let seen: usize = samples.iter().map(|row| row[k].seen).sum();
        let counted: Option<u64> = samples.iter().map(|row| row[k].counted).sum();
        let written = match counted {
            // Nothing to write: it only runs in the kernel.
            _ if order[k].is_floor() => "-".to_owned(),
            // Every exec on the host while it ran, the probe execs that showed it attached too.
            Some(n) => format!("count() {n}/{}", execs * rounds),
            None => format!("{seen}/{}", execs * rounds),
        };
        let records = median(col(k, &|s, _| s.records as f64));
        let mut ends: Vec<String> = Vec::new();
        for end in [End::Storm, End::AllEvents, End::Idle, End::Timeout] {
            let n = samples.iter().filter(|row| row[k].end == end).count();
            if n > 0 {
                ends.push(format!("{n} {end:?}"));
            }
        }
        println!(
            "{name:<width$}  {:<26} {:<30} {lost:>6} {written:>21} {records:>13.0}  {}",
            format!("{}%", spread(&wall, 1)),
            spread(&cpu, 1),
            ends.join(", ")
        );
    }
    let at = |o: Observer| order.iter().position(|x| *x == o);
    let ratio = |a: Option<usize>, b: Option<usize>, note: &str| {
        let (Some(a), Some(b)) = (a, b) else {
            return;
        };
        let (x, y) = (extra[a], extra[b]);
        let r = if y > 0.0 {
            format!("{:.2}", x / y)
        } else {
            format!("n/a ({} cost nothing)", names[b])
        };
        println!("{} / {}, extra host cpu: {r}{note}", names[a], names[b]);
    };
    ratio(
        at(Observer::Sensor),
        at(Observer::Auditd),
        " (target < 0.5)",
    );
    ratio(at(Observer::Sensor), at(Observer::Bpftrace), "");
    ratio(at(Observer::SensorRules), at(Observer::AuditdRules), "");
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The observers' own CPU per exec, BPF time per exec (from `bpf_rounds`: each observer's
/// round with `kernel.bpf_stats_enabled=1`) and memory; then their BPF programs.
pub(crate) fn details(
    samples: &[Vec<Sample>],
    bpf_rounds: &[BTreeMap<String, (u64, u64)>],
    order: &[Observer],
    names: &[String],
    width: usize,
    execs: usize,
) {
    println!();
    println!(
        "{:<width$}  {:<30} {:>12}  {:<24} {:<24}",
        "observer",
        "own cpu µs/exec",
        "bpf ns/exec",
        "RssAnon MiB idle/peak",
        "RssFile MiB idle/peak"
    );
    let mut bpf: Vec<(usize, BpfTotals)> = Vec::new();
    for (k, name) in names.iter().enumerate().skip(1) {
        let own: Vec<f64> = samples
            .iter()
            .map(|row| row[k].own / execs as f64 * 1e6)
            .collect();
        let mut totals = BpfTotals::default();
        totals.add(&bpf_rounds[k], execs);
        let bpf_col = if totals.by_name.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.0}", totals.ns_per_exec())
        };
        let mems: Vec<_> = samples.iter().filter_map(|row| row[k].mem).collect();
        let (anon, file) = if mems.is_empty() {
            ("-".to_owned(), "-".to_owned())
        } else {
            let idle = |f: &dyn Fn(&crate::bench_proc::Memory) -> u64| {
                mib(median(mems.iter().map(|m| f(m) as f64).collect()) as u64)
            };
            let peak = |f: &dyn Fn(&crate::bench_proc::Memory) -> u64| {
                mib(mems.iter().map(f).max().unwrap_or(0))
            };
            (
                format!(
                    "{:.1} / {:.1}",
                    idle(&|m| m.idle.anon),
                    peak(&|m| m.peak.anon)
                ),
                format!(
                    "{:.1} / {:.1}",
                    idle(&|m| m.idle.file),
                    peak(&|m| m.peak.file)
                ),
            )
        };
        let own = match order[k] {
            obs if obs.is_floor() => "-".to_owned(),
            _ => spread(&own, 1).replace('+', ""),
        };
        println!("{name:<width$}  {own:<30} {bpf_col:>12}  {anon:<24} {file:<24}");
        if !totals.by_name.is_empty() {
            bpf.push((k, totals));
        }
    }
    println!("own cpu: the observer's processes, all threads (auditd: with kauditd), storm start to done; memory: idle = median after start, peak = highest 50 ms sample during the storm (auditd: its daemon)");
    if order.contains(&Observer::Sensor) {
        println!("RssFile counts the sensor's BPF ring buffer twice: the kernel maps its data pages two times in a row");
    }
    if bpf.is_empty() {
        return;
    }
    println!();
    println!(
        "in-kernel BPF time, from one more round of each (kernel.bpf_stats_enabled=1, which adds two clock reads to every run; off in the timed rounds):"
    );
    println!(
        "  {:<24} {:<24} {:>10} {:>12} {:>12}",
        "observer", "program", "ns/run", "runs/exec", "ns/exec"
    );
    for (k, totals) in bpf {
        for line in totals.lines(&names[k]) {
            println!("{line}");
        }
    }
}
