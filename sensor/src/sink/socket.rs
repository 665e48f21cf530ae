//! An output to a collector's socket (`proto:tcp:HOST:PORT`, `proto:unix:PATH`; the text formats
//! work the same way): the sensor connects as a client, and a writer thread of its own sends what
//! the pipeline queued, so a collector that is down, slow or never reads never holds up the
//! pipeline or the other outputs.
//!
//! Delivery is at most once, a whole event at a time:
//! - The queue is bounded in bytes ([`QUEUE_BYTES`]); an event that does not fit is counted as
//!   unwritten at once.
//! - Events stay queued while the collector is down and go out, in order, once it is back.
//! - When a connection fails, the event whose bytes were partly accepted by the kernel is counted
//!   as unwritten (the next connection starts at an event's first byte); events no byte of
//!   which had gone out are sent on the next connection.
//! - Bytes the kernel accepted on a connection the collector then closed without reading them
//!   cannot be known to the sensor, and are not counted. To keep that window small, the writer
//!   looks for the collector's end of stream before each write and soon after connecting (the
//!   collector sends nothing: what it sends is read and thrown away, its end of stream is taken
//!   as its going away).
//! - At stop, what is still queued after [`DRAIN`] is counted as unwritten, and a TCP
//!   connection cut inside an event is reset, so the collector sees an aborted stream.

use std::{
    collections::VecDeque,
    fmt,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

mod writer;

/// Bytes queued per socket output at most (with [`PER_EVENT`] for each event).
pub const QUEUE_BYTES: usize = 16 << 20;
/// What holding one event costs besides its bytes: its allocation and its slot in the queue.
const PER_EVENT: usize = 64;
/// How long a stop waits for a socket output to send what it holds.
pub const DRAIN: Duration = Duration::from_secs(1);

/// Where a socket output connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `HOST:PORT`, as `ToSocketAddrs` takes it (resolved again on every connect).
    Tcp(String),
    Unix(PathBuf),
}

impl Address {
    /// `tcp:HOST:PORT` or `unix:PATH`; `None` for anything else (a file path).
    pub fn parse(s: &str) -> Option<Result<Address, String>> {
        if let Some(rest) = s.strip_prefix("tcp:") {
            return Some(parse_tcp(rest));
        }
        let path = s.strip_prefix("unix:")?;
        Some(if path.is_empty() {
            Err("unix: needs the socket's path".into())
        } else {
            Ok(Address::Unix(PathBuf::from(path)))
        })
    }
}

fn parse_tcp(s: &str) -> Result<Address, String> {
    let bad = || format!("tcp:{s}: expected tcp:HOST:PORT (an IPv6 address in brackets)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty(),
        None => !host.is_empty() && !host.contains([':', '[', ']']),
    };
    if !host_ok {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 && !port.starts_with('+') => Ok(Address::Tcp(format!("{host}:{p}"))),
        _ => Err(bad()),
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "tcp:{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Vec<u8>>,
    /// Bytes held: queued, plus taken by the writer and not done with yet.
    held: usize,
    /// Events the writer has taken and not done with yet.
    taken: usize,
    /// No more sending: at stop, once [`DRAIN`] ran out.
    stop: bool,
}

struct Shared {
    name: String,
    queue: Mutex<Queue>,
    /// The writer waits here for events.
    more: Condvar,
    /// A stop waits here for the writer to be done with what it holds.
    done: Condvar,
    /// Events lost with a connection, or left at stop (counted here, read by the pipeline).
    lost: AtomicU64,
    /// Events are being refused because the queue is full (said once).
    refusing: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer is done with `events` events of `bytes` bytes (sent or lost).
    fn release(&self, events: usize, bytes: usize) {
        let mut q = self.lock();
        q.taken -= events;
        q.held -= bytes;
        if q.taken == 0 {
            self.done.notify_all();
        }
        // Half empty again: refusing is over (not at the first free byte, or it would flap).
        if q.held <= QUEUE_BYTES / 2 && self.refusing.swap(false, Ordering::Relaxed) {
            eprintln!("sensor: {} takes events again", self.name);
        }
    }
}

fn cost(event: &[u8]) -> usize {
    event.len() + PER_EVENT
}

/// One socket output: the queue, and the writer thread behind it.
pub struct SocketOutput {
    shared: Arc<Shared>,
}

impl SocketOutput {
    /// Starts the writer thread; it connects (and reconnects) by itself.
    pub fn start(address: Address) -> std::io::Result<SocketOutput> {
        let shared = Arc::new(Shared {
            name: address.to_string(),
            queue: Mutex::new(Queue::default()),
            more: Condvar::new(),
            done: Condvar::new(),
            lost: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
        });
        let writer = writer::Writer::new(address, shared.clone());
        std::thread::Builder::new()
            .name("sensor-socket".into())
            .spawn(move || writer.run())?;
        Ok(SocketOutput { shared })
    }

    /// Queues one whole encoded event; false when it does not fit (the caller counts it).
    pub fn push(&self, event: &[u8]) -> bool {
        let mut q = self.shared.lock();
        if q.stop || q.held + cost(event) > QUEUE_BYTES {
            // After a stop, nothing is sent any more: no news to tell.
            let stopped = q.stop;
            drop(q);
            if !stopped && !self.shared.refusing.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "sensor: {} takes no more events: {} MiB wait for it (the collector is down or not reading); the events it cannot take are counted as unwritten",
                    self.shared.name,
                    QUEUE_BYTES >> 20
                );
            }
            return false;
        }
        q.held += cost(event);
        q.events.push_back(event.to_vec());
        true
    }

    /// Tells the writer that events are queued (once per batch: a wake-up costs a system call).
    pub fn wake(&self) {
        self.shared.more.notify_one();
    }

    /// Events the writer lost with a connection or left at stop.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }

    /// Waits until everything queued is sent or `deadline` passes; then what is left is counted
    /// as lost and nothing more is sent.
    pub fn drain(&self, deadline: Instant) {
        self.wake();
        let mut q = self.shared.lock();
        while !q.events.is_empty() || q.taken > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self
                .shared
                .done
                .wait_timeout(q, (deadline - now).min(Duration::from_millis(20)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if q.events.is_empty() && q.taken == 0 {
            return;
        }
        q.stop = true;
        let left = q.events.len();
        let bytes: usize = q.events.drain(..).map(|e| cost(&e)).sum();
        q.held -= bytes;
        self.shared.lost.fetch_add(left as u64, Ordering::Relaxed);
        self.shared.more.notify_one();
        // The writer sees the stop within one write timeout, counts what it holds and lets go.
        let limit = Instant::now() + writer::WRITE_TIMEOUT * 3;
        while q.taken > 0 && Instant::now() < limit {
            q = self
                .shared
                .done
                .wait_timeout(q, writer::WRITE_TIMEOUT)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests;
