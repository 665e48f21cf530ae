//! One plugin's program and the thread that writes to it, so a plugin that reads slowly or not
//! at all holds up only itself. The program is started as auditd 3.0.9 starts it (`safe_exec`
//! in `audisp/audispd.c`): `path` with argv `[path, args…]`, an empty environment, stdin one end
//! of a `socketpair(AF_UNIX, SOCK_STREAM)`, the sensor's other descriptors closed; it runs as the
//! sensor does (root). Where auditd's daemon leaves things to chance the sensor picks what
//! auditd as a daemon gives: stdout and stderr on /dev/null, SIGPIPE ignored (auditd ignores
//! every signal it does not handle, and its children inherit that); and the plugin gets a process
//! group of its own, so a Ctrl-C at the sensor's terminal reaches the sensor, which stops its
//! plugins in order, and not the plugins directly.
//!
//! A plugin is found dead when a write fails (EPIPE), as auditd finds it; it is started again
//! and the event written again, up to `max_restarts` times (auditd's count: a plugin is not
//! started again once it has died more than `max_restarts` times); then its events are counted
//! as unwritten.

use std::{
    io::{self, Write},
    os::unix::{net::UnixStream, process::CommandExt},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{
    conf::PluginConf,
    queue::{Next, Queue},
};

/// How long one write may wait before the writer looks whether it should give up or pass on a
/// SIGHUP.
const WRITE_SLICE: Duration = Duration::from_millis(100);
/// After its stdin closed, how long a plugin has to exit before SIGTERM, then before SIGKILL.
const EXIT_GRACE: Duration = Duration::from_secs(2);
const TERM_GRACE: Duration = Duration::from_secs(1);
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// What the pipeline and the writer thread share besides the queue.
pub struct Control {
    pub max_restarts: AtomicU32,
    /// Stopping ran out of time: writes still waiting are abandoned.
    pub abort: AtomicBool,
}

pub struct Plugin {
    pub conf: PluginConf,
    pub queue: Arc<Queue>,
    pub control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl Plugin {
    /// Starts the program and its writer thread.
    pub fn start(conf: PluginConf, queue: Arc<Queue>, max_restarts: u32) -> Plugin {
        let control = Arc::new(Control {
            max_restarts: AtomicU32::new(max_restarts),
            abort: AtomicBool::new(false),
        });
        let mut writer = Writer {
            conf: conf.clone(),
            queue: queue.clone(),
            control: control.clone(),
            child: None,
            restarts: 0,
        };
        writer.spawn_or_count();
        let thread = std::thread::Builder::new()
            .name(format!("plugin {}", conf.name))
            .spawn(move || writer.run())
            .map_err(|e| {
                eprintln!(
                    "sensor: plugin {}: cannot start its writer thread: {e}",
                    conf.name
                )
            })
            .ok();
        if thread.is_none() {
            queue.discard();
        }
        Plugin {
            conf,
            queue,
            control,
            thread,
        }
    }

    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the writer thread, which has been told to stop.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Running {
    child: Child,
    stdin: UnixStream,
    /// Reaped: its pid may belong to another process now.
    exited: bool,
}

struct Writer {
    conf: PluginConf,
    queue: Arc<Queue>,
    control: Arc<Control>,
    child: Option<Running>,
    /// Times the plugin died or could not be started (auditd's `restart_cnt`).
    restarts: u32,
}

/// Waits up to `limit` for `child` to be reaped: one the kernel holds after SIGKILL (a hung file
/// system) is not waited for, so neither restarting nor stopping hangs on it.
fn reap_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

fn spawn(conf: &PluginConf, path: &Path) -> io::Result<Running> {
    let (ours, theirs) = UnixStream::pair()?;
    let mut cmd = Command::new(path);
    cmd.args(&conf.args)
        .env_clear()
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            // The plugin hears the SIGHUP of a reload and the SIGTERM of a stop even when the
            // sensor was started with them ignored (`nohup`, some service managers): an ignored
            // signal stays ignored across exec, and a shell cannot even trap it.
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            // Descriptors a library opened without O_CLOEXEC are not the plugin's: closed at
            // exec (CLOSE_RANGE_CLOEXEC, Linux 5.11; older kernels rely on O_CLOEXEC alone).
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    ours.set_write_timeout(Some(WRITE_SLICE))?;
    Ok(Running {
        child,
        stdin: ours,
        exited: false,
    })
}

impl Writer {
    fn name(&self) -> String {
        match &self.conf.path {
            Some(p) => format!("{} ({})", self.conf.name, p.display()),
            None => self.conf.name.clone(),
        }
    }

    /// Starts the program unless it died too often; `false` when it will not run again.
    fn spawn_or_count(&mut self) -> bool {
        let Some(path) = self.conf.path.clone() else {
            return false;
        };
        while self.restarts <= self.control.max_restarts.load(Ordering::Relaxed) {
            match spawn(&self.conf, &path) {
                Ok(r) => {
                    self.child = Some(r);
                    return true;
                }
                Err(e) => {
                    eprintln!("sensor: plugin {}: cannot start it: {e}", self.name());
                    self.restarts += 1;
                }
            }
        }
        false
    }

    fn run(mut self) {
        loop {
            match self.queue.next(IDLE_WAIT) {
                Next::Item(item) => {
                    if !self.deliver(&item.bytes) {
                        self.queue.unwritten.fetch_add(1, Ordering::Relaxed);
                        if !self.control.abort.load(Ordering::Relaxed) {
                            self.give_up();
                        }
                        break;
                    }
                }
                Next::Hup => self.signal(libc::SIGHUP),
                Next::Idle => self.reap(),
                Next::Closed => break,
            }
        }
        self.queue.discard();
        let aborted = self.control.abort.load(Ordering::Relaxed);
        self.finish(aborted);
    }

    /// Writes one event, starting the plugin again when it died; `false` when it was not
    /// written (the plugin is gone for good, or stopping ran out of time).
    fn deliver(&mut self, bytes: &[u8]) -> bool {
        loop {
            if self.child.is_none() && !self.spawn_or_count() {
                return false;
            }
            match self.write(bytes) {
                Ok(()) => return true,
                Err(_) if self.control.abort.load(Ordering::Relaxed) => return false,
                Err(e) => {
                    let status = self.bury();
                    self.restarts += 1;
                    let max = self.control.max_restarts.load(Ordering::Relaxed);
                    eprintln!(
                        "sensor: plugin {} terminated unexpectedly ({e}; {status}){}",
                        self.name(),
                        if self.restarts <= max {
                            format!("; restarting it ({} of {max})", self.restarts)
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
    }

    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.queue.take_hup() {
                self.signal(libc::SIGHUP);
            }
            let Some(r) = &mut self.child else {
                return Err(io::ErrorKind::BrokenPipe.into());
            };
            match r.stdin.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    if self.control.abort.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(r) = self.child.as_ref().filter(|r| !r.exited) {
            // SAFETY: the child is not reaped yet, so its pid is still its own.
            unsafe { libc::kill(r.child.id() as libc::pid_t, sig) };
        }
    }

    /// Collects a plugin that exited by itself (it is started again at the next event).
    fn reap(&mut self) {
        if let Some(r) = &mut self.child {
            // Its socket stays: the next write fails with EPIPE and restarts it, as in auditd.
            r.exited |= matches!(r.child.try_wait(), Ok(Some(_)));
        }
    }

    /// The dead plugin's exit, for the report.
    fn bury(&mut self) -> String {
        let Some(mut r) = self.child.take() else {
            return "not running".into();
        };
        drop(r.stdin);
        let _ = r.child.kill();
        match reap_within(&mut r.child, TERM_GRACE) {
            Some(s) => s.to_string(),
            None => "not reaped".into(),
        }
    }

    fn give_up(&mut self) {
        eprintln!(
            "sensor: plugin {} has exceeded max_restarts ({}): its events are counted as unwritten from now on",
            self.name(),
            self.control.max_restarts.load(Ordering::Relaxed)
        );
    }

    /// Stopping: stdin closed, so the plugin sees the end of its input and can finish its
    /// work; then SIGTERM, then SIGKILL, each after a grace period. One that was not reading
    /// (`aborted`) gets SIGTERM at once.
    fn finish(&mut self, aborted: bool) {
        let Some(mut r) = self.child.take() else {
            return;
        };
        let _ = r.stdin.shutdown(std::net::Shutdown::Both);
        drop(r.stdin);
        if aborted && !r.exited {
            // SAFETY: not reaped, so the pid is still its own.
            unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM) };
        }
        for (grace, sig) in [(EXIT_GRACE, libc::SIGTERM), (TERM_GRACE, libc::SIGKILL)] {
            let until = Instant::now() + grace;
            while Instant::now() < until {
                if let Ok(Some(_)) = r.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // SAFETY: try_wait found it running, so it is not reaped and the pid is still its own.
            unsafe { libc::kill(r.child.id() as libc::pid_t, sig) };
        }
        reap_within(&mut r.child, TERM_GRACE);
    }
}
