//! A socket output's thread: connects, sends whole events from the queue, and reconnects with
//! backoff when the collector is down or goes away. Only this thread ever waits on the socket.

use std::{
    collections::VecDeque,
    io::{self, ErrorKind, IoSlice, Write},
    net::{TcpStream, ToSocketAddrs},
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::UnixStream,
    },
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use super::{cost, Address, Shared, QUEUE_BYTES};

/// A write waits this long at most before the writer looks whether it should stop.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(100);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A connection that lasted this long was not refused: the next failure starts over from
/// [`BACKOFF_MIN`].
const STABLE: Duration = Duration::from_secs(1);
/// After connecting, how long to wait before sending, so that a collector that accepts and
/// closes at once is found out before it is sent anything.
const SETTLE: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// While idle, how often the writer looks whether the collector went away.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Events taken from the queue at once, and given to one system call at most.
const BATCH: usize = 64;

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn open(address: &Address) -> io::Result<Stream> {
        let stream = match address {
            Address::Tcp(a) => {
                let mut last = None;
                let mut found = None;
                for sa in a.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let s = match (found, last) {
                    (Some(s), _) => s,
                    (None, Some(e)) => return Err(e),
                    (None, None) => {
                        return Err(io::Error::new(ErrorKind::NotFound, "no address for it"))
                    }
                };
                // Batches go out whole; waiting for the peer's acknowledgement only adds delay.
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Stream::Tcp(s)
            }
            Address::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Stream::Unix(s)
            }
        };
        Ok(stream)
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    /// Makes closing a connection cut inside an event reset it (TCP), so the collector sees an
    /// aborted stream rather than an end (a Unix socket has no reset: the stream ends inside the
    /// event).
    fn abort(&self) {
        if let Stream::Tcp(s) = self {
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: a valid socket and a `linger` of the size given.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            };
        }
    }

    /// Whether the collector closed or reset the connection. It is meant to send nothing: what
    /// it sends is read and dropped (a bounded amount per look).
    fn gone(&self) -> Option<io::Error> {
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            // SAFETY: `buf` is writable for its length.
            let n = unsafe {
                libc::recv(
                    self.fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n == 0 {
                return Some(io::Error::new(
                    ErrorKind::ConnectionAborted,
                    "the collector closed the connection",
                ));
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::Interrupted => None,
                    _ => Some(e),
                };
            }
        }
        None
    }
}

/// How sending on one connection ended.
enum End {
    Stopped,
    Failed(io::Error),
}

pub struct Writer {
    address: Address,
    shared: Arc<Shared>,
    backoff: Duration,
    /// A failure was said and writing has not resumed since.
    down: bool,
}

impl Writer {
    pub(super) fn new(address: Address, shared: Arc<Shared>) -> Writer {
        Writer {
            address,
            shared,
            backoff: BACKOFF_MIN,
            down: false,
        }
    }

    pub fn run(mut self) {
        loop {
            let Some(mut conn) = self.connect() else {
                return;
            };
            let up = Instant::now();
            match self.send(&mut conn) {
                End::Stopped => return,
                End::Failed(e) => {
                    drop(conn);
                    self.failed(&e);
                    if up.elapsed() >= STABLE {
                        self.backoff = BACKOFF_MIN;
                    }
                    if !self.pause() {
                        return;
                    }
                }
            }
        }
    }

    /// Says a failure, once until writing resumes.
    fn failed(&mut self, e: &io::Error) {
        if !self.down {
            eprintln!(
                "sensor: cannot write to {}: {e}; it reconnects, its events wait in a {} MiB queue meanwhile (past that, and an event cut by the failure, they are counted as unwritten)",
                self.shared.name,
                QUEUE_BYTES >> 20
            );
            self.down = true;
        }
    }

    /// A connection the collector has not closed at once; `None` once stopped.
    fn connect(&mut self) -> Option<Stream> {
        loop {
            if self.shared.lock().stop {
                return None;
            }
            match Stream::open(&self.address) {
                Ok(conn) => {
                    std::thread::sleep(SETTLE);
                    match conn.gone() {
                        None => return Some(conn),
                        Some(e) => self.failed(&e),
                    }
                }
                Err(e) => self.failed(&e),
            }
            if !self.pause() {
                return None;
            }
        }
    }

    /// Waits the backoff (a stop ends it), doubling it for next time; false once stopped.
    fn pause(&mut self) -> bool {
        let q = self.shared.lock();
        let (q, _) = self
            .shared
            .more
            .wait_timeout_while(q, self.backoff, |q| !q.stop)
            .unwrap_or_else(|e| e.into_inner());
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        !q.stop
    }

    /// Sends what is queued until the connection fails or the output stops.
    fn send(&mut self, conn: &mut Stream) -> End {
        loop {
            let mut batch = VecDeque::new();
            {
                let mut q = self.shared.lock();
                while q.events.is_empty() {
                    if q.stop {
                        return End::Stopped;
                    }
                    let (g, wait) = self
                        .shared
                        .more
                        .wait_timeout(q, IDLE_CHECK)
                        .unwrap_or_else(|e| e.into_inner());
                    q = g;
                    if wait.timed_out() && q.events.is_empty() {
                        drop(q);
                        if let Some(e) = conn.gone() {
                            return End::Failed(e);
                        }
                        q = self.shared.lock();
                    }
                }
                let n = q.events.len().min(BATCH);
                batch.extend(q.events.drain(..n));
                q.taken += n;
            }
            if let Some(e) = conn.gone() {
                self.give_back(batch);
                return End::Failed(e);
            }
            if let Some(end) = self.write(conn, batch) {
                return end;
            }
        }
    }

    /// Writes `batch`, whole events only; `None` when all of it went out.
    fn write(&mut self, conn: &mut Stream, mut batch: VecDeque<Vec<u8>>) -> Option<End> {
        // Bytes of the first event already written.
        let mut offset = 0;
        while !batch.is_empty() {
            if self.shared.lock().stop {
                // Out of time at stop: what is left is lost, and a cut event aborts.
                self.lose(batch.len(), &batch);
                if offset > 0 {
                    conn.abort();
                }
                return Some(End::Stopped);
            }
            let slices: Vec<IoSlice<'_>> = batch
                .iter()
                .enumerate()
                .map(|(i, e)| IoSlice::new(if i == 0 { &e[offset..] } else { e }))
                .collect();
            let result = match conn.write_vectored(&slices) {
                Ok(0) => Err(io::Error::from(ErrorKind::WriteZero)),
                other => other,
            };
            match result {
                Ok(mut n) => {
                    let (mut sent, mut bytes) = (0, 0);
                    while let Some(first) = batch.front() {
                        let left = first.len() - offset;
                        if n < left {
                            offset += n;
                            break;
                        }
                        n -= left;
                        offset = 0;
                        sent += 1;
                        bytes += cost(first);
                        batch.pop_front();
                    }
                    if sent > 0 {
                        self.shared.release(sent, bytes);
                        if std::mem::take(&mut self.down) {
                            eprintln!("sensor: writing to {} again", self.shared.name);
                        }
                    }
                }
                // Interrupted, or the collector took nothing for a while: look at the stop.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    // The event partly written is gone with the connection; the rest never
                    // touched it, and goes out on the next one.
                    if offset > 0 {
                        let first = batch.pop_front().expect("offset is into the first event");
                        self.lose(1, std::slice::from_ref(&first));
                    }
                    self.give_back(batch);
                    return Some(End::Failed(e));
                }
            }
        }
        None
    }

    /// Counts `events` as lost and lets go of them.
    fn lose<'a>(&self, count: usize, events: impl IntoIterator<Item = &'a Vec<u8>>) {
        let bytes = events.into_iter().map(|e| cost(e)).sum();
        self.shared.lost.fetch_add(count as u64, Ordering::Relaxed);
        self.shared.release(count, bytes);
    }

    /// Puts events taken and not sent back at the head of the queue (counted as lost when the
    /// output stopped meanwhile: nothing sends them any more).
    fn give_back(&self, batch: VecDeque<Vec<u8>>) {
        let n = batch.len();
        let mut q = self.shared.lock();
        if q.stop {
            drop(q);
            self.lose(n, &batch);
            return;
        }
        for e in batch.into_iter().rev() {
            q.events.push_front(e);
        }
        q.taken -= n;
        if q.taken == 0 {
            self.shared.done.notify_all();
        }
    }
}
