//! `bench exec --throughput`, last part: storms of execs with a 100 KiB argument each, from
//! several spawners flat out. With the sensor at its defaults, its 65536-record queue takes what
//! the encoder cannot write yet: the storm is written late, and the memory that holds is shown.
//! Then with a 1 MiB ring buffer and a 64-record queue, which pushes past the limit within the
//! storm: the point is that the loss is counted, in loss records written while the storm runs
//! or right after it (their time stamps are read against the storm's start and end).

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Result;

use crate::{
    bench_observer::{Observer, Running},
    bench_proc::{MemSampler, Memory},
    bench_throughput::{spawn_storm, Ctx},
};

const BIG_ARG: usize = 100 * 1024;
/// How long a 100 KiB-argument storm may take to be written.
const BIG_DEADLINE: Duration = Duration::from_secs(180);
/// The sensor's arguments for each 100 KiB-argument storm.
pub(crate) const BIG_RUNS: [&[&str]; 2] =
    [&[], &["--ring-buffer-mib", "1", "--channel-capacity", "64"]];

/// One 100 KiB-argument storm with the sensor.
pub(crate) struct Big {
    args: &'static [&'static str],
    ran: usize,
    took: Duration,
    written: usize,
    lost: u64,
    lag: Duration,
    mem: Memory,
    /// What the log holds.
    scan: Scan,
    /// The storm's start and end (Unix time), for the loss records' time stamps.
    start: f64,
    end: f64,
}

impl Ctx<'_> {
    pub(crate) fn big(&self, args: &'static [&'static str], tag: &str) -> Result<Big> {
        let big = "x".repeat(BIG_ARG);
        let marker = format!("bench-tp-big{tag}-{}", std::process::id());
        let (obs, audit) = (Observer::Sensor, self.audit);
        let mut running = Running::start_with(obs, self.bin, self.dir, audit, None, &marker, args)?;
        let sampler = running.process().map(MemSampler::start);
        let (start, t0) = (unix_now(), Instant::now());
        let (ran, took) = spawn_storm(self.spawners, None, self.length, &marker, Some(&big))?;
        let end = unix_now();
        let done = running.wait_done_within(ran, BIG_DEADLINE)?;
        let mem = sampler.map(MemSampler::finish).unwrap_or_default();
        let (written, _) = running.written();
        let (lost, _) = running.stop(audit)?;
        let scan = Scan::of(&self.dir.join("sensor.log"));
        let b = Big {
            args,
            ran,
            took,
            written,
            lost,
            lag: done.at.saturating_duration_since(t0 + took),
            mem,
            scan,
            start,
            end,
        };
        eprintln!(
            "sensor {:<40} 100 KiB args: ran {:>6} in {:.2}s  written {:>6}  lost {:>5}  done +{:.2}s ({:?})",
            b.args.join(" "),
            b.ran,
            b.took.as_secs_f64(),
            b.written,
            b.lost,
            b.lag.as_secs_f64(),
            done.end
        );
        Ok(b)
    }
}

pub(crate) fn print_big(b: &Big) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let args = match b.args.join(" ") {
        a if a.is_empty() => "(defaults)".to_owned(),
        a => a,
    };
    println!(
        "  sensor {args}: ran {} in {:.2} s ({:.0}/s), written {} ({} with arguments cut), lost {}; its log {:.2} GiB, read to the end +{:.2} s after the storm; RssAnon {:.1} -> {:.1} MiB, RssFile {:.1} -> {:.1} MiB",
        b.ran,
        b.took.as_secs_f64(),
        b.ran as f64 / b.took.as_secs_f64(),
        b.written,
        b.scan.cut,
        b.lost,
        b.scan.bytes as f64 / f64::from(1u32 << 30),
        b.lag.as_secs_f64(),
        mib(b.mem.idle.anon),
        mib(b.mem.peak.anon),
        mib(b.mem.idle.file),
        mib(b.mem.peak.file),
    );
    let total = b.scan.losses.iter().map(|l| l.1).max().unwrap_or(0);
    let first = b.scan.losses.iter().find(|l| l.1 > 0);
    let reached = b.scan.losses.iter().find(|l| l.1 == total && total > 0);
    match (first, reached) {
        (Some(first), Some(reached)) => {
            println!(
                "    loss records: the first with lost > 0 at {:+.2} s from the storm's start (it lasted {:.2} s), lost={total} reached at {:+.2} s from its end; the last record:",
                first.0 - b.start,
                b.end - b.start,
                reached.0 - b.end,
            );
            if let Some(l) = &b.scan.last {
                println!("    {l}");
            }
        }
        _ => println!("    no loss record with lost > 0"),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The sensor's log after a storm, read a line at a time (it can hold gigabytes).
#[derive(Default)]
struct Scan {
    bytes: u64,
    /// Loss records: time stamp (`msg=audit(SECS.MS:N)`) and `lost=`; the last one whole.
    losses: Vec<(f64, u64)>,
    last: Option<String>,
    /// Execs written with arguments missing (`sensor_trunc_args=`, at the end of an EXECVE).
    cut: usize,
}

impl Scan {
    fn of(path: &Path) -> Scan {
        let mut scan = Scan::default();
        let Ok(file) = File::open(path) else {
            return scan;
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            scan.line(&line);
            line.clear();
        }
        scan
    }

    fn line(&mut self, line: &[u8]) {
        self.bytes += line.len() as u64;
        if line.starts_with(b"type=EXECVE") {
            let tail = &line[line.len().saturating_sub(TRUNC_WITHIN)..];
            if tail.windows(TRUNC.len()).any(|w| w == TRUNC) {
                self.cut += 1;
            }
        }
        if !line.starts_with(b"type=DAEMON_ERR") {
            return;
        }
        let l = String::from_utf8_lossy(line);
        if !l.contains("op=sensor_lost") {
            return;
        }
        let stamp = l.split("audit(").nth(1).and_then(|r| r.split(':').next());
        let lost = l
            .split_whitespace()
            .find_map(|f| f.strip_prefix("lost="))
            .map(|v| v.trim_matches('"'));
        if let (Some(Ok(stamp)), Some(Ok(lost))) = (stamp.map(str::parse), lost.map(str::parse)) {
            self.losses.push((stamp, lost));
        }
        self.last = Some(l.trim_end().to_owned());
    }
}

const TRUNC: &[u8] = b" sensor_trunc_args=";
/// `sensor_trunc_args=N sensor_trunc_bytes=N` end the record.
const TRUNC_WITHIN: usize = 96;

#[cfg(test)]
mod tests {
    use super::Scan;

    #[test]
    fn loss_records_are_read_with_their_time() {
        let log = "type=EXECVE msg=audit(100.000:1): argc=2 a0=\"x\"\n\
            type=EXECVE msg=audit(100.000:2): argc=3 a0=\"x\" a1=\"y\" sensor_trunc_args=\"1\" sensor_trunc_bytes=\"102401\"\n\
            type=DAEMON_ERR msg=audit(101.250:7): op=sensor_lost lost=\"4\" delta=\"4\" res=failed\n\
            type=DAEMON_ERR msg=audit(102.500:9): op=sensor_lost lost=\"10\" delta=\"6\" res=failed\n";
        let path = std::env::temp_dir().join(format!("xtask-scan-{}", std::process::id()));
        std::fs::write(&path, log).unwrap();
        let scan = Scan::of(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(scan.losses, [(101.25, 4), (102.5, 10)]);
        assert!(scan
            .last
            .unwrap()
            .ends_with("lost=\"10\" delta=\"6\" res=failed"));
        assert_eq!((scan.cut, scan.bytes), (1, log.len() as u64));
    }
}
