//! File access for paths an attacker may control (an exec'd file, a container's libraries, the
//! names a refused syscall walked). Nothing on the path from ring buffer to outputs may wait on
//! such a file: a FIFO swapped in where a binary was, a user's FUSE mount that never answers, a
//! 2 GB sparse file.
//!
//! - [`with_deadline`] runs a lookup on a small pool of worker threads and waits for it at most a
//!   deadline. A lookup that misses it is abandoned (its thread finishes it, or stays stuck on a
//!   hung file system) and counted in [`late`]; when every worker is busy, a lookup is refused at
//!   once and counted too. The caller then writes what the kernel writes for an unknown.
//! - [`open_regular`] opens without blocking (`O_NONBLOCK`), optionally without following a final
//!   symlink (`O_NOFOLLOW`), and only a regular file of bounded size.

use std::{
    collections::VecDeque,
    fs::File,
    io,
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc, Arc, Condvar, Mutex, OnceLock,
    },
    time::Duration,
};

/// How long the pipeline waits for one lookup by default. Local file systems answer in
/// microseconds.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);

static DEADLINE_MS: AtomicU64 = AtomicU64::new(DEFAULT_DEADLINE.as_millis() as u64);

/// How long the pipeline waits for one lookup (`--lookup-deadline-ms`).
pub fn deadline() -> Duration {
    Duration::from_millis(DEADLINE_MS.load(Ordering::Relaxed))
}

/// Sets [`deadline`], once at start.
pub fn set_deadline(d: Duration) {
    DEADLINE_MS.store(d.as_millis().max(1) as u64, Ordering::Relaxed);
}
/// Workers at most: threads stuck on a hung file system are not replaced past this.
const MAX_WORKERS: usize = 8;
/// Lookups queued at most while every worker is busy.
const MAX_QUEUED: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

/// Worker threads and the lookups waiting for one.
pub struct Pool {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    workers: AtomicUsize,
    idle: AtomicUsize,
    late: AtomicU64,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// The agent's lookup pool.
pub fn pool() -> &'static Pool {
    POOL.get_or_init(Pool::new)
}

/// Lookups of the agent's pool that missed their deadline or found no free worker, since start.
pub fn late() -> u64 {
    pool().late.load(Ordering::Relaxed)
}

/// [`Pool::run`] on the agent's pool.
pub fn with_deadline<T: Send + 'static>(
    deadline: Duration,
    job: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    pool().run(deadline, job)
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            workers: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            late: AtomicU64::new(0),
        }
    }

    fn work(&'static self) {
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(job) = q.pop_front() {
                        break job;
                    }
                    self.idle.fetch_add(1, Ordering::SeqCst);
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                }
            };
            job();
        }
    }

    /// Runs `job` on a worker and returns its answer, or `None` (counted) when it does not come
    /// within `deadline` or no worker is free. An abandoned job that has not started never runs.
    pub fn run<T: Send + 'static>(
        &'static self,
        deadline: Duration,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let cancelled = Arc::new(AtomicBool::new(false));
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if self.idle.load(Ordering::SeqCst) <= q.len() {
                // No worker will be free for this one: add one, or refuse.
                let n = self.workers.load(Ordering::SeqCst);
                if n >= MAX_WORKERS || q.len() >= MAX_QUEUED {
                    self.late.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                self.workers.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("sensor-lookup".into())
                    .spawn(move || self.work());
                if spawned.is_err() {
                    self.workers.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let flag = cancelled.clone();
            q.push_back(Box::new(move || {
                if !flag.load(Ordering::SeqCst) {
                    let _ = tx.send(job());
                }
            }));
        }
        self.ready.notify_one();
        match rx.recv_timeout(deadline) {
            Ok(v) => Some(v),
            Err(_) => {
                cancelled.store(true, Ordering::SeqCst);
                self.late.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

/// Opens `path` for reading without waiting on it: `O_NONBLOCK` (a FIFO opens at once, and is
/// then refused), `O_NOFOLLOW` unless `follow_last` (for `/proc/PID/exe` and the like, whose
/// magic link is the point), and only a regular file of at most `max_len` bytes.
pub fn open_regular(path: &Path, follow_last: bool, max_len: u64) -> io::Result<File> {
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if !follow_last {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() || kind.is_fifo() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > max_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("larger than {max_len} bytes"),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::{os::unix::ffi::OsStrExt, time::Instant};

    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sensor-fsio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = scratch("fifo");
        let fifo = dir.join("f");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = Instant::now();
        let err = open_regular(&fifo, false, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(t.elapsed() < Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_oversized_and_special_files_are_refused() {
        let dir = scratch("kinds");
        std::fs::write(dir.join("small"), b"abc").unwrap();
        std::os::unix::fs::symlink(dir.join("small"), dir.join("link")).unwrap();
        let sparse = File::create(dir.join("sparse")).unwrap();
        sparse.set_len(3 << 30).unwrap();
        assert!(open_regular(&dir.join("small"), false, 10).is_ok());
        assert!(open_regular(&dir.join("link"), false, 10).is_err());
        assert!(open_regular(&dir.join("link"), true, 10).is_ok());
        assert!(open_regular(&dir.join("sparse"), false, 1 << 20).is_err());
        assert!(open_regular(Path::new("/dev/null"), false, 10).is_err());
        assert!(open_regular(&dir, false, 1 << 20).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn own_pool() -> &'static Pool {
        Box::leak(Box::new(Pool::new()))
    }

    #[test]
    fn a_lookup_that_hangs_is_abandoned_and_counted() {
        let pool = own_pool();
        let t = Instant::now();
        let got = pool.run(Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_millis(300));
            1
        });
        assert_eq!(got, None);
        assert!(t.elapsed() < Duration::from_millis(200));
        assert_eq!(pool.late.load(Ordering::Relaxed), 1);
        // Another worker takes the next lookup.
        assert_eq!(pool.run(Duration::from_secs(2), || 2), Some(2));
    }

    #[test]
    fn when_every_worker_is_stuck_lookups_are_refused_without_waiting() {
        let pool = own_pool();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..MAX_WORKERS + MAX_QUEUED {
            let ran = ran.clone();
            let _ = pool.run(Duration::from_millis(1), move || {
                ran.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(400));
            });
        }
        let t = Instant::now();
        assert_eq!(pool.run(Duration::from_secs(5), || 3), None);
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
        assert!(pool.workers.load(Ordering::SeqCst) <= MAX_WORKERS);
        // Queued lookups abandoned before they started never run; the stuck ones free up.
        std::thread::sleep(Duration::from_millis(600));
        assert!(ran.load(Ordering::SeqCst) <= MAX_WORKERS);
        assert_eq!(pool.run(Duration::from_secs(2), || 4), Some(4));
    }
}
