//! The loaded programs live on a thread of their own. Attaching to a new container root (opening
//! its libraries, resolving symbols, the kernel's uprobe registration) takes milliseconds, and
//! detaching uprobes at stop waits for the kernel; neither may hold up the pipeline, which only
//! sends requests it never waits for.

use std::{
    collections::{HashMap, HashSet},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
        Arc,
    },
    time::{Duration, Instant},
};

use aya::{programs::UProbe, Ebpf};
use sensor_common::probes::PROBES;

use super::libraries::Libraries;
use crate::fsio;

/// Container roots watched at most (each costs a few file descriptors and kernel uprobes).
pub const MAX_ROOTS: usize = 64;
/// Requests waiting for the thread at most.
const QUEUE: usize = 256;
/// Threads that detach uprobe links at stop.
const DETACH_THREADS: usize = 32;
/// Requests per mount namespace and second at most: a namespace's first execs (`unshare`, then
/// `chroot`, then the program) each ask, since its root may change between them; a storm of
/// execs in one namespace does not flood the queue.
const ASKS_PER_SECOND: u32 = 8;

enum Request {
    Watch {
        pid: u32,
    },
    /// Detach the tracepoints, say so, then detach everything else and say so again.
    Stop {
        tracepoints_off: SyncSender<()>,
        all_off: SyncSender<()>,
    },
}

/// The pipeline's side.
pub struct Attacher {
    tx: SyncSender<Request>,
    own_ns: Option<u32>,
    /// Per mount namespace: the second its requests are counted in, and how many.
    asked: HashMap<u32, (Instant, u32)>,
    /// Roots not watched: past [`MAX_ROOTS`]. (A request that finds the queue full is left out
    /// uncounted: the namespace's next exec asks again.)
    pub unwatched: Arc<AtomicU64>,
    /// Said when every probe is detached, after a stop.
    all_off: Option<Receiver<()>>,
}

impl Attacher {
    pub fn spawn(ebpf: Ebpf, libraries: Libraries) -> Attacher {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let unwatched = Arc::new(AtomicU64::new(0));
        let counter = unwatched.clone();
        let own_ns = super::own_mnt_ns();
        std::thread::Builder::new()
            .name("sensor-attach".into())
            .spawn(move || serve(ebpf, libraries, rx, counter))
            .expect("starting the attach thread");
        Attacher {
            tx,
            own_ns,
            asked: HashMap::new(),
            unwatched,
            all_off: None,
        }
    }

    /// A task of mount namespace `mnt_ns` exec'd: unless it is the sensor's own namespace or its
    /// namespace asked often this second, have its root looked at. Never waits.
    pub fn watch(&mut self, pid: u32, mnt_ns: u32) {
        if Some(mnt_ns) == self.own_ns {
            return;
        }
        let now = Instant::now();
        let second = Duration::from_secs(1);
        if self.asked.len() >= 4096 {
            self.asked
                .retain(|_, (t, _)| now.duration_since(*t) < second);
        }
        let (since, n) = self.asked.entry(mnt_ns).or_insert((now, 0));
        if now.duration_since(*since) >= second {
            (*since, *n) = (now, 0);
        }
        if *n >= ASKS_PER_SECOND {
            return;
        }
        *n += 1;
        let _ = self.tx.try_send(Request::Watch { pid });
    }

    /// Stops attaching and detaches the tracepoints, waiting for that at most `limit`; the
    /// uprobes are detached afterwards on the thread ([`Attacher::wait_detached`]). True when the
    /// tracepoints are off.
    pub fn stop(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (tp_tx, tp_rx) = mpsc::sync_channel(1);
        let (all_tx, all_rx) = mpsc::sync_channel(1);
        self.all_off = Some(all_rx);
        let mut request = Request::Stop {
            tracepoints_off: tp_tx,
            all_off: all_tx,
        };
        // A full queue: the thread is busy attaching; it sees the stop after the queued work.
        loop {
            match self.tx.try_send(request) {
                Ok(()) => break,
                Err(TrySendError::Full(r)) if Instant::now() < deadline => {
                    request = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        tp_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Waits at most `limit` for every probe to be detached after [`Attacher::stop`]: probes
    /// still attached when the process exits are detached by the kernel one by one, slowly.
    pub fn wait_detached(&self, limit: Duration) -> bool {
        self.all_off
            .as_ref()
            .is_some_and(|rx| rx.recv_timeout(limit).is_ok())
    }
}

fn serve(
    mut ebpf: Ebpf,
    mut libraries: Libraries,
    rx: Receiver<Request>,
    unwatched: Arc<AtomicU64>,
) {
    let mut roots: HashSet<(u64, u64)> = std::fs::metadata("/")
        .map(|m| (m.dev(), m.ino()))
        .into_iter()
        .collect();
    let mut said_full = false;
    while let Ok(request) = rx.recv() {
        match request {
            Request::Watch { pid } => {
                let root = PathBuf::from(format!("/proc/{pid}/root"));
                // A task already gone leaves its root to the next task that execs there.
                let probe = root.clone();
                let Some(Ok(id)) = fsio::with_deadline(fsio::deadline(), move || {
                    std::fs::metadata(probe).map(|m| (m.dev(), m.ino()))
                }) else {
                    continue;
                };
                if roots.contains(&id) {
                    continue;
                }
                if roots.len() > MAX_ROOTS {
                    unwatched.fetch_add(1, Ordering::Relaxed);
                    if !said_full {
                        said_full = true;
                        eprintln!("sensor: watching {MAX_ROOTS} container roots already: the libraries of further roots are not watched (counted as roots_unwatched)");
                    }
                    continue;
                }
                roots.insert(id);
                for message in libraries.attach_under(&mut ebpf, Path::new(&root)) {
                    eprintln!("sensor: {message}");
                }
            }
            Request::Stop {
                tracepoints_off,
                all_off,
            } => {
                detach_tracepoints(&mut ebpf);
                let _ = tracepoints_off.send(());
                detach_uprobes(&mut ebpf, &mut libraries);
                drop(ebpf);
                let _ = all_off.send(());
                return;
            }
        }
    }
}

/// Unloads every kernel probe's program (tracepoints, trampolines), all at once: each detach
/// waits for the kernel (an RCU grace period), and waits made together overlap.
fn detach_tracepoints(ebpf: &mut Ebpf) {
    let kernel: HashSet<&str> = PROBES
        .iter()
        .filter(|p| super::kernel_probes::is_kernel(p))
        .map(|p| p.program)
        .collect();
    std::thread::scope(|scope| {
        for (name, prog) in ebpf.programs_mut() {
            if kernel.contains(name) {
                scope.spawn(move || super::kernel_probes::unload(prog));
            }
        }
    });
}

/// Detaches every uprobe link, many at once (one by one, a hundred links take seconds).
fn detach_uprobes(ebpf: &mut Ebpf, libraries: &mut Libraries) {
    let mut links = Vec::new();
    for (program, id) in libraries.links.drain(..) {
        if let Some(up) = ebpf
            .program_mut(program)
            .and_then(|p| <&mut UProbe>::try_from(p).ok())
        {
            if let Ok(link) = up.take_link(id) {
                links.push(link);
            }
        }
    }
    let per_thread = links.len().div_ceil(DETACH_THREADS).max(1);
    std::thread::scope(|scope| {
        while !links.is_empty() {
            let chunk: Vec<_> = links.drain(..per_thread.min(links.len())).collect();
            scope.spawn(move || drop(chunk));
        }
    });
}
