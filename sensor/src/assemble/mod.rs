//! Stage 3: join the records of one exec (enter, argument chunks, sched, paths, exit) by thread
//! id into one [`Assembled`] exec. Records of one thread arrive in order: the ring buffer keeps
//! reservation order and a thread's records are produced sequentially.

use std::collections::HashMap;

use sensor_common as wire;

use crate::read::RawEvent;

/// A path walked in the kernel: components leaf first, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkedPath {
    pub components: Vec<u8>,
    pub truncated: bool,
}

impl WalkedPath {
    /// `/a/b/c` from `c\0b\0a\0`; the root alone is `/`.
    pub fn to_path(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.components.len() + 1);
        for name in self
            .components
            .split(|&b| b == 0)
            .filter(|c| !c.is_empty())
            .rev()
        {
            out.push(b'/');
            out.extend_from_slice(name);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sched {
    pub argc: u32,
    pub args_total: u64,
    pub args_missing: u64,
    pub interp: Option<Vec<u8>>,
}

/// Everything the kernel side said about one exec.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub enter: wire::Header,
    pub syscall_nr: u32,
    pub regs: [u64; 6],
    /// Real uid and capability sets before the exec.
    pub old_uid: u32,
    pub old_caps: wire::Caps,
    pub filename: Result<Vec<u8>, i32>,
    /// The argument area as copied (a prefix of it when chunks were lost).
    pub args: Vec<u8>,
    /// A chunk went missing: `args` stops at the gap.
    pub args_gap: bool,
    pub sched: Option<Sched>,
    pub cwd: Option<WalkedPath>,
    pub exe: Option<WalkedPath>,
    pub cgroup: Option<WalkedPath>,
    pub exit: Box<wire::ExecExit>,
}

struct Pending {
    enter: wire::Header,
    syscall_nr: u32,
    regs: [u64; 6],
    old_uid: u32,
    old_caps: wire::Caps,
    filename: Result<Vec<u8>, i32>,
    args: Vec<u8>,
    args_gap: bool,
    sched: Option<Sched>,
    cwd: Option<WalkedPath>,
    exe: Option<WalkedPath>,
    cgroup: Option<WalkedPath>,
}

/// An exec still pending after this long lost its exit record (or its thread vanished).
const STALE_NS: u64 = 60_000_000_000;

/// Paths sent just before a standalone event of the same thread (PATH_TASK_*, PATH_ARG_*).
#[derive(Debug, Clone, Default)]
pub struct TaskPaths {
    pub exe: Option<WalkedPath>,
    pub cgroup: Option<WalkedPath>,
    pub cwd: Option<WalkedPath>,
    /// Path arguments as the caller passed them; `None` when unreadable.
    pub name: Option<Vec<u8>>,
    pub newname: Option<Vec<u8>>,
}

/// A task killed by a core-dumping signal, with its paths (sent just before it).
#[derive(Debug, Clone)]
pub struct AssembledAbend {
    pub abend: Box<wire::Abend>,
    pub exe: Option<WalkedPath>,
    pub cgroup: Option<WalkedPath>,
}

/// A syscall during which the kernel would write an anomaly record: a refused open/link (the
/// candidate for ANOM_LINK/ANOM_CREAT), or promiscuity changes with the syscall they happened in
/// (`exit` is `None` when they happened outside a watched syscall).
#[derive(Debug, Clone)]
pub struct AssembledAnomaly {
    pub exit: Option<Box<wire::SyscallExit>>,
    pub promisc: Vec<wire::Promisc>,
    pub paths: TaskPaths,
}

/// What the assembler hands on.
// Moved once, straight to normalise: boxing the exec would cost an allocation per exec.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Assembly {
    Exec(Assembled),
    Abend(AssembledAbend),
    Anomaly(AssembledAnomaly),
    UserMessage(AssembledUserMessage),
    Pam(AssembledPam),
}

/// A libpam API call with what happened during it in the same thread: the watched modules'
/// results and the types of the audit messages the thread sent (libpam's own USER_* record,
/// a module's ANOM_LOGIN_LOCATION…).
#[derive(Debug, Clone)]
pub struct AssembledPam {
    pub call: Box<wire::PamCall>,
    pub modules: Vec<wire::PamModule>,
    pub messages: Vec<u32>,
    pub paths: TaskPaths,
}

/// What a thread did since its last PAM call returned.
#[derive(Debug, Default)]
struct PamProgress {
    modules: Vec<wire::PamModule>,
    messages: Vec<u32>,
}

/// A user-space audit message with the sender's exe and cgroup paths (sent just before it).
#[derive(Debug, Clone)]
pub struct AssembledUserMessage {
    pub msg: RawEvent,
    pub paths: TaskPaths,
}

#[derive(Default)]
pub struct Assembler {
    pending: HashMap<u32, Pending>,
    /// PATH_TASK_* / PATH_ARG_* records by tid, until the event they precede arrives.
    task_paths: HashMap<u32, TaskPaths>,
    /// Module results and audit messages by tid, until the PAM call they happen in returns.
    pam: HashMap<u32, PamProgress>,
    /// Promiscuity changes by tid, until the exit of the syscall they happened in.
    promisc: HashMap<u32, Vec<wire::Promisc>>,
    /// Execs that could not be assembled whole: an exit whose enter was lost, and execs written
    /// with one of their records missing. An exec whose exit was lost is counted by the kernel
    /// (CTR_EXIT_LOST), so its pending entry is dropped uncounted when replaced or stale.
    /// Records of execs no syscall started (the kernel's own `kernel_execve`, which auditd does
    /// not log either) are ignored.
    pub incomplete: u64,
    /// The newest kernel timestamp seen, the clock for staleness.
    latest_ns: u64,
}

impl Assembler {
    /// Exec records only: what tests of exec assembly feed.
    pub fn push(&mut self, ev: RawEvent) -> Option<Assembled> {
        match self.push_record(ev)? {
            Assembly::Exec(a) => Some(a),
            _ => None,
        }
    }

    pub fn push_record(&mut self, ev: RawEvent) -> Option<Assembly> {
        match ev {
            RawEvent::Path {
                hdr,
                which:
                    which @ (wire::PATH_TASK_EXE
                    | wire::PATH_TASK_CGROUP
                    | wire::PATH_TASK_CWD
                    | wire::PATH_ARG_NAME
                    | wire::PATH_ARG_NEWNAME),
                truncated,
                data,
            } => {
                let slot = self.task_paths.entry(hdr.tid).or_default();
                let walked = || {
                    Some(WalkedPath {
                        components: data.clone(),
                        truncated,
                    })
                };
                match which {
                    wire::PATH_TASK_EXE => slot.exe = walked(),
                    wire::PATH_TASK_CGROUP => slot.cgroup = walked(),
                    wire::PATH_TASK_CWD => slot.cwd = walked(),
                    wire::PATH_ARG_NAME => slot.name = (!truncated).then_some(data),
                    _ => slot.newname = (!truncated).then_some(data),
                }
                None
            }
            RawEvent::Abend(abend) => {
                let paths = self.task_paths.remove(&abend.hdr.tid).unwrap_or_default();
                Some(Assembly::Abend(AssembledAbend {
                    abend,
                    exe: paths.exe,
                    cgroup: paths.cgroup,
                }))
            }
            RawEvent::Promisc(p) if p.exit_follows == 0 => {
                let paths = self.task_paths.remove(&p.hdr.tid).unwrap_or_default();
                Some(Assembly::Anomaly(AssembledAnomaly {
                    exit: None,
                    promisc: vec![*p],
                    paths,
                }))
            }
            RawEvent::Promisc(p) => {
                self.promisc.entry(p.hdr.tid).or_default().push(*p);
                None
            }
            msg @ RawEvent::UserMsg { .. } => {
                let tid = msg.header().tid;
                if let RawEvent::UserMsg { msg_type, .. } = &msg {
                    self.pam.entry(tid).or_default().messages.push(*msg_type);
                }
                let paths = self.task_paths.remove(&tid).unwrap_or_default();
                Some(Assembly::UserMessage(AssembledUserMessage { msg, paths }))
            }
            RawEvent::PamModule(m) => {
                self.pam.entry(m.hdr.tid).or_default().modules.push(m);
                None
            }
            RawEvent::PamCall(call) => {
                let tid = call.hdr.tid;
                let progress = self.pam.remove(&tid).unwrap_or_default();
                Some(Assembly::Pam(AssembledPam {
                    call,
                    modules: progress.modules,
                    messages: progress.messages,
                    paths: self.task_paths.remove(&tid).unwrap_or_default(),
                }))
            }
            RawEvent::SyscallExit(exit) => {
                let tid = exit.hdr.tid;
                Some(Assembly::Anomaly(AssembledAnomaly {
                    promisc: self.promisc.remove(&tid).unwrap_or_default(),
                    paths: self.task_paths.remove(&tid).unwrap_or_default(),
                    exit: Some(exit),
                }))
            }
            other => self.push_exec(other).map(Assembly::Exec),
        }
    }

    fn push_exec(&mut self, ev: RawEvent) -> Option<Assembled> {
        match ev {
            RawEvent::Enter {
                hdr,
                syscall_nr,
                regs,
                old_uid,
                old_caps,
                filename,
            } => {
                self.latest_ns = self.latest_ns.max(hdr.boot_ns);
                // A pending exec under this tid lost its exit record, which the kernel counted.
                self.pending.insert(
                    hdr.tid,
                    Pending {
                        enter: hdr,
                        syscall_nr,
                        regs,
                        old_uid,
                        old_caps,
                        filename,
                        args: Vec::new(),
                        args_gap: false,
                        sched: None,
                        cwd: None,
                        exe: None,
                        cgroup: None,
                    },
                );
                if self.pending.len() > 4096 {
                    self.sweep();
                }
                None
            }
            RawEvent::Args { hdr, offset, data } => {
                match self.pending.get_mut(&hdr.tid) {
                    Some(p) if !p.args_gap && offset == p.args.len() as u64 => {
                        p.args.extend_from_slice(&data)
                    }
                    Some(p) => p.args_gap = true,
                    None => {}
                }
                None
            }
            RawEvent::Sched {
                hdr,
                new_tid,
                argc,
                args_total,
                args_missing,
                interp,
            } => {
                if let Some(mut p) = self.pending.remove(&hdr.tid) {
                    p.sched = Some(Sched {
                        argc,
                        args_total,
                        args_missing,
                        interp,
                    });
                    // An exec still pending under the new tid lost its exit record, which the
                    // kernel counted.
                    self.pending.insert(new_tid, p);
                }
                None
            }
            RawEvent::Path {
                hdr,
                which,
                truncated,
                data,
            } => {
                if let Some(p) = self.pending.get_mut(&hdr.tid) {
                    let walked = Some(WalkedPath {
                        components: data,
                        truncated,
                    });
                    match which {
                        wire::PATH_CWD => p.cwd = walked,
                        wire::PATH_EXE => p.exe = walked,
                        wire::PATH_CGROUP => p.cgroup = walked,
                        _ => {}
                    }
                }
                None
            }
            RawEvent::Abend(_)
            | RawEvent::Promisc(_)
            | RawEvent::SyscallExit(_)
            | RawEvent::PamCall(_)
            | RawEvent::PamModule(_)
            | RawEvent::UserMsg { .. } => None,
            RawEvent::Exit(exit) => {
                let Some(p) = self.pending.remove(&exit.hdr.tid) else {
                    self.incomplete += 1;
                    return None;
                };
                // Written anyway, with what is there; normalise marks the missing paths.
                let missing_sched = exit.ret == 0 && p.sched.is_none();
                let missing_path = p.cwd.is_none() || p.exe.is_none() || p.cgroup.is_none();
                self.incomplete += (missing_sched || missing_path) as u64;
                Some(Assembled {
                    enter: p.enter,
                    syscall_nr: p.syscall_nr,
                    regs: p.regs,
                    old_uid: p.old_uid,
                    old_caps: p.old_caps,
                    filename: p.filename,
                    args: p.args,
                    args_gap: p.args_gap,
                    sched: p.sched,
                    cwd: p.cwd,
                    exe: p.exe,
                    cgroup: p.cgroup,
                    exit,
                })
            }
        }
    }

    /// Drops execs pending for longer than STALE_NS: their exit record was lost (and counted by
    /// the kernel).
    pub fn sweep(&mut self) {
        // Paths or changes whose final record was lost (the loss is counted as `ringbuf`).
        if self.task_paths.len() > 1024 {
            self.task_paths.clear();
        }
        if self.promisc.len() > 1024 {
            self.promisc.clear();
        }
        if self.pam.len() > 1024 {
            self.pam.clear();
        }
        let now = self.latest_ns;
        self.pending
            .retain(|_, p| now.saturating_sub(p.enter.boot_ns) < STALE_NS);
    }

    /// Execs started and not yet complete.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests;
