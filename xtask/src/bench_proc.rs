//! What `/proc` tells about an observer's processes: their CPU time (every thread), kauditd's pid,
//! and resident memory, sampled during a storm for its peak.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

/// CPU time (seconds) of every thread of these processes, from the scheduler's own count in
/// nanoseconds (`/proc/PID/task/TID/schedstat`).
pub(crate) fn cpu_of(pids: &[u32]) -> f64 {
    let mut ns = 0u64;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

/// The kernel thread that hands kernel audit's records to auditd.
pub(crate) fn kauditd() -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "kauditd")
        })
        .collect()
}

/// Resident memory in KiB: anonymous (heap, stacks) and file-backed. A BPF ring buffer mapped by
/// the agent counts as file-backed, and twice: its data pages are mapped two times in a row so
/// that a record can run past the end.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub(crate) struct Rss {
    pub(crate) anon: u64,
    pub(crate) file: u64,
}

impl Rss {
    pub(crate) fn of(pid: u32) -> Option<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(Rss::parse(&status))
    }

    fn parse(status: &str) -> Rss {
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Rss {
            anon: kib("RssAnon:"),
            file: kib("RssFile:"),
        }
    }

    fn max(self, o: Rss) -> Rss {
        Rss {
            anon: self.anon.max(o.anon),
            file: self.file.max(o.file),
        }
    }
}

/// Memory at idle before a storm and the peaks (each on its own) during it.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Memory {
    pub(crate) idle: Rss,
    pub(crate) peak: Rss,
}

/// Samples a process's memory every 50 ms from its start until `finish`.
pub(crate) struct MemSampler {
    idle: Rss,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Rss>,
}

pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(50);

impl MemSampler {
    pub(crate) fn start(pid: u32) -> MemSampler {
        let idle = Rss::of(pid).unwrap_or_default();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = idle;
            while !flag.load(Ordering::Relaxed) {
                if let Some(now) = Rss::of(pid) {
                    peak = peak.max(now);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            peak
        });
        MemSampler { idle, stop, thread }
    }

    pub(crate) fn finish(self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.join().unwrap_or(self.idle);
        Memory {
            idle: self.idle,
            peak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_apart_and_sampled() {
        let status = "Name:\tsensor\nVmRSS:\t   40000 kB\nRssAnon:\t    7000 kB\n\
                      RssFile:\t   33000 kB\nRssShmem:\t       0 kB\n";
        assert_eq!(
            Rss::parse(status),
            Rss {
                anon: 7000,
                file: 33000
            }
        );
        let me = std::process::id();
        let m = MemSampler::start(me);
        // Fresh pages from mmap, not the heap: other tests' threads free memory in this
        // process, which malloc may hand back here already resident (the test once failed so).
        let len = 8 << 20;
        // SAFETY: a new private anonymous mapping, written within its length, unmapped below.
        let grown = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            std::ptr::write_bytes(p as *mut u8, 1, len);
            p
        };
        std::thread::sleep(SAMPLE_EVERY * 3);
        let m2 = m.finish();
        assert!(m2.peak.anon >= m2.idle.anon + 4096, "{m2:?}");
        // SAFETY: the mapping made above, of that length.
        unsafe { libc::munmap(grown, len) };
        assert!(cpu_of(&[me]) > 0.0);
        assert!(Rss::of(u32::MAX).is_none());
    }
}
