//! Stage 3: join the records that make one event. An exec's records are joined in [`exec`];
//! a standalone event (ABEND, an anomaly's syscall, a user message, a PAM call) takes the task
//! paths sent just before it by the same thread, and a PAM call the module results and audit
//! messages of its thread since the last call.

use std::collections::HashMap;

use crate::read::record::{
    Abend, LoginUid, PamCall, PamModule, PathKind, PathRecord, Promisc, Record, SyscallExit,
    UserMsg,
};

pub mod exec;
pub use exec::{Assembled, ExecStart, Sched};

/// A path walked in the kernel: components leaf first, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkedPath {
    pub components: Vec<u8>,
    pub truncated: bool,
    /// Unlinked, or a pseudo file: written with d_path()'s ` (deleted)`.
    pub deleted: bool,
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
        if self.deleted {
            out.extend_from_slice(b" (deleted)");
        }
        out
    }
}

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
    pub abend: Abend,
    pub exe: Option<WalkedPath>,
    pub cgroup: Option<WalkedPath>,
}

/// A syscall during which the kernel would write a record of its own besides SYSCALL: a refused
/// open/link (the candidate for ANOM_LINK/ANOM_CREAT), promiscuity changes with the syscall they
/// happened in (`exit` is `None` when they happened outside a watched syscall), or a login uid
/// set (LOGIN).
#[derive(Debug, Clone)]
pub struct AssembledAnomaly {
    pub exit: Option<Box<SyscallExit>>,
    pub promisc: Vec<Promisc>,
    pub login: Option<LoginUid>,
    pub paths: TaskPaths,
}

/// A libpam API call with what happened during it in the same thread: the watched modules'
/// results and the types of the audit messages the thread sent (libpam's own USER_* record,
/// a module's ANOM_LOGIN_LOCATION…).
#[derive(Debug, Clone)]
pub struct AssembledPam {
    pub call: Box<PamCall>,
    pub modules: Vec<PamModule>,
    pub messages: Vec<u32>,
    pub paths: TaskPaths,
}

/// A user-space audit message with the sender's exe and cgroup paths (sent just before it).
#[derive(Debug, Clone)]
pub struct AssembledUserMessage {
    pub msg: UserMsg,
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

/// What a thread did since its last PAM call returned.
#[derive(Debug, Default)]
struct PamProgress {
    modules: Vec<PamModule>,
    messages: Vec<u32>,
}

/// Module results and message types kept per thread and PAM call (a stack has a dozen modules).
const PROGRESS_MAX: usize = 64;

/// Beyond this many threads with partial state (paths, promiscuity changes, PAM progress whose
/// final record was lost, a loss counted as `ringbuf`), that state is dropped.
const PARTIAL_MAX: usize = 1024;

#[derive(Default)]
pub struct Assembler {
    execs: exec::Execs,
    /// PATH_TASK_* / PATH_ARG_* records by tid, until the event they precede arrives.
    task_paths: HashMap<u32, TaskPaths>,
    /// Module results and audit messages by tid, until the PAM call they happen in returns.
    pam: HashMap<u32, PamProgress>,
    /// Promiscuity changes by tid, until the exit of the syscall they happened in.
    promisc: HashMap<u32, Vec<Promisc>>,
    /// A login uid write by tid, until its syscall's exit.
    login: HashMap<u32, LoginUid>,
    /// Execs that could not be assembled whole: an exit whose enter was lost, and execs written
    /// with one of their records missing. An exec whose exit was lost is counted by the kernel
    /// (CTR_EXIT_LOST), so its pending entry is dropped uncounted when replaced or stale.
    /// Records of execs no syscall started (the kernel's own `kernel_execve`, which auditd does
    /// not log either) are ignored.
    pub incomplete: u64,
}

impl Assembler {
    /// Exec records only: what tests of exec assembly feed.
    pub fn push(&mut self, r: Record) -> Option<Assembled> {
        match self.push_record(r)? {
            Assembly::Exec(a) => Some(a),
            _ => None,
        }
    }

    pub fn push_record(&mut self, r: Record) -> Option<Assembly> {
        match r {
            Record::ExecEnter(e) => self.incomplete += self.execs.enter(e),
            Record::ExecArgs(a) => self.execs.args(a),
            Record::ExecSched(s) => self.execs.sched(s),
            Record::Path(p) => self.path(p),
            Record::ExecExit(x) => {
                let Some((exec, missing)) = self.execs.exit(x) else {
                    self.incomplete += 1;
                    return None;
                };
                self.incomplete += missing as u64;
                return Some(Assembly::Exec(exec));
            }
            Record::Abend(abend) => {
                let paths = self.take_paths(abend.origin.tid);
                return Some(Assembly::Abend(AssembledAbend {
                    abend,
                    exe: paths.exe,
                    cgroup: paths.cgroup,
                }));
            }
            Record::Promisc(p) if !p.exit_follows => {
                return Some(Assembly::Anomaly(AssembledAnomaly {
                    exit: None,
                    paths: self.take_paths(p.origin.tid),
                    promisc: vec![p],
                    login: None,
                }));
            }
            Record::Promisc(p) => self.promisc.entry(p.origin.tid).or_default().push(p),
            // Handled before assembly (`pipeline`): nothing to assemble.
            Record::ExecUnselected(_) => {}
            Record::LoginUid(l) => {
                self.login.insert(l.origin.tid, l);
            }
            Record::SyscallExit(exit) => {
                let tid = exit.origin.tid;
                return Some(Assembly::Anomaly(AssembledAnomaly {
                    login: self.login.remove(&tid),
                    promisc: self.promisc.remove(&tid).unwrap_or_default(),
                    paths: self.take_paths(tid),
                    exit: Some(exit),
                }));
            }
            Record::UserMsg(msg) => {
                let tid = msg.origin.tid;
                let progress = self.pam.entry(tid).or_default();
                // Only which types were sent matters: a thread that sends without end keeps few.
                if progress.messages.len() < PROGRESS_MAX
                    && !progress.messages.contains(&msg.msg_type)
                {
                    progress.messages.push(msg.msg_type);
                }
                let paths = self.take_paths(tid);
                return Some(Assembly::UserMessage(AssembledUserMessage { msg, paths }));
            }
            Record::PamModule(m) => {
                let progress = self.pam.entry(m.origin.tid).or_default();
                if progress.modules.len() < PROGRESS_MAX {
                    progress.modules.push(m);
                }
            }
            Record::PamCall(call) => {
                let tid = call.origin.tid;
                let progress = self.pam.remove(&tid).unwrap_or_default();
                return Some(Assembly::Pam(AssembledPam {
                    call,
                    modules: progress.modules,
                    messages: progress.messages,
                    paths: self.take_paths(tid),
                }));
            }
        }
        None
    }

    /// A task path goes to the standalone event it precedes; an exec's to that exec.
    fn path(&mut self, p: PathRecord) {
        if matches!(
            p.kind,
            PathKind::ExecCwd | PathKind::ExecExe | PathKind::ExecCgroup | PathKind::ExecName
        ) {
            return self.execs.path(p);
        }
        let slot = self.task_paths.entry(p.origin.tid).or_default();
        let (data, truncated, deleted) = (p.data, p.truncated, p.deleted);
        let walked = |data| {
            Some(WalkedPath {
                components: data,
                truncated,
                deleted,
            })
        };
        match p.kind {
            PathKind::TaskExe => slot.exe = walked(data),
            PathKind::TaskCgroup => slot.cgroup = walked(data),
            PathKind::TaskCwd => slot.cwd = walked(data),
            PathKind::ArgName => slot.name = (!truncated).then_some(data),
            _ => slot.newname = (!truncated).then_some(data),
        }
    }

    fn take_paths(&mut self, tid: u32) -> TaskPaths {
        self.task_paths.remove(&tid).unwrap_or_default()
    }

    /// Drops stale pending execs and partial state whose final record was lost.
    pub fn sweep(&mut self) {
        if self.task_paths.len() > PARTIAL_MAX {
            self.task_paths.clear();
        }
        if self.promisc.len() > PARTIAL_MAX {
            self.promisc.clear();
        }
        if self.pam.len() > PARTIAL_MAX {
            self.pam.clear();
        }
        if self.login.len() > PARTIAL_MAX {
            self.login.clear();
        }
        self.execs.sweep();
    }

    /// Execs started and not yet complete.
    pub fn pending(&self) -> usize {
        self.execs.len()
    }

    /// Argument bytes held for execs not yet complete (at most `exec::MAX_PENDING_ARG_BYTES`).
    pub fn pending_arg_bytes(&self) -> usize {
        self.execs.arg_bytes()
    }
}

#[cfg(test)]
mod tests;
