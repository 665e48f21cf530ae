//! The agent's one clock: a periodic kernel timer (`timerfd`) that paces the ring buffer's
//! drains and says when the pipeline's housekeeping is due (loss counters, the assembler's
//! sweep, the log's rename check).
//!
//! Why not two tokio intervals: two timers of different periods wake the thread apart, and
//! tokio's timer wheel wakes it once more wherever a deadline lies past the next 64 ms slot. A
//! thread's wake-up costs far more than its work at idle (on this VM a C loop that only reads a
//! timerfd used 74 µs of CPU per wake-up): the agent at idle woke 35 times a second for 4.3 to
//! 4.9 ms of CPU.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{io::unix::AsyncFd, sync::Notify};

/// A periodic timer, read as the number of periods that passed.
pub struct Ticker {
    fd: AsyncFd<OwnedFd>,
}

impl Ticker {
    /// First expiry one `period` from now, then every `period` (at least 1 ms).
    pub fn new(period: Duration) -> io::Result<Self> {
        // SAFETY: plain syscall; the fd it returns is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set(&fd, period, period)?;
        // SAFETY: the timer owns its fd, which stays open and unchanged until the `AsyncFd`
        // (and with it the fd) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)? };
        Ok(Self { fd })
    }

    /// Starts over: the next expiry `first` from now, then every `period`; the expiries not
    /// read yet are forgotten.
    pub fn set_period(&mut self, first: Duration, period: Duration) -> io::Result<()> {
        set(self.fd.get_ref(), first, period)
    }

    /// Waits for the next expiry; how many periods passed since the last call (at least 1).
    pub async fn tick(&mut self) -> io::Result<u64> {
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|fd| {
                let mut n = 0u64;
                // SAFETY: reads 8 bytes into `n`, as timerfd hands out.
                let r =
                    unsafe { libc::read(fd.as_raw_fd(), (&raw mut n).cast(), size_of::<u64>()) };
                match r {
                    8 => Ok(n),
                    _ => Err(io::Error::last_os_error()),
                }
            });
            match read {
                // One read takes every expiry so far: the next comes as a new edge, which
                // clearing leaves in place (tokio clears only the readiness this guard saw).
                Ok(result) => {
                    guard.clear_ready();
                    return result;
                }
                // Readiness was stale: `try_io` cleared it; wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

/// Arms the timer `fd`: first `first` from now, then every `period` (each at least 1 ms).
fn set(fd: &OwnedFd, first: Duration, period: Duration) -> io::Result<()> {
    let ts = |d: Duration| {
        let d = d.max(Duration::from_millis(1));
        libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        }
    };
    let spec = libc::itimerspec {
        it_interval: ts(period),
        it_value: ts(first),
    };
    // SAFETY: `spec` outlives the call; the old value is not asked for.
    match unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Something due every whole number of the clock's periods: as many as fit in `every` (at
/// least one), so never later than asked.
pub struct Every {
    ticks: u64,
    passed: u64,
}

impl Every {
    pub fn new(every: Duration, period: Duration) -> Self {
        Self {
            ticks: (every.as_nanos() / period.as_nanos().max(1)).max(1) as u64,
            passed: 0,
        }
    }

    /// `n` periods passed: whether it is due (it then starts over).
    pub fn ticked(&mut self, n: u64) -> bool {
        self.passed += n;
        let due = self.passed >= self.ticks;
        if due {
            self.passed = 0;
        }
        due
    }
}

/// When the pipeline's housekeeping is due: on the clock, and, while one drain runs longer
/// than its interval (a storm the agent cannot get ahead of), by time.
pub struct Housekeeping {
    notify: Arc<Notify>,
    on_clock: Every,
    every: Duration,
    last: Instant,
}

impl Housekeeping {
    pub fn new(notify: Arc<Notify>, every: Duration, period: Duration) -> Self {
        Self {
            notify,
            on_clock: Every::new(every, period),
            every,
            last: Instant::now(),
        }
    }

    /// How often it is due.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// The clock now ticks every `period`, from now.
    pub fn set_period(&mut self, period: Duration) {
        self.on_clock = Every::new(self.every, period);
    }

    /// `n` periods passed. Due on the clock, or by time when the clock was set anew since.
    pub fn ticked(&mut self, n: u64) {
        if self.on_clock.ticked(n) || self.last.elapsed() >= self.every {
            self.on_clock.passed = 0;
            self.due();
        }
    }

    /// In a long drain: due when a whole interval passed since the last time.
    pub fn check_time(&mut self) {
        if self.last.elapsed() >= self.every {
            self.on_clock.passed = 0;
            self.due();
        }
    }

    fn due(&mut self) {
        self.last = Instant::now();
        // Stores a permit when the pipeline is busy: the next check runs as it gets there.
        self.notify.notify_one();
    }
}

/// The clock's period: the shorter of the coalescing delay and the housekeeping interval, each
/// then due every whole number of periods; the housekeeping's alone with `--coalesce-ms 0`
/// (the ring then wakes the reader for every record).
pub fn period(coalesce: Duration, housekeeping: Duration) -> Duration {
    match coalesce.is_zero() {
        true => housekeeping,
        false => coalesce.min(housekeeping),
    }
    .max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests;
