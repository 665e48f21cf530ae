//! One exec's records (enter, argument chunks, sched, paths, exit), joined by thread id. Records
//! of one thread arrive in order: the ring buffer keeps reservation order and a thread's records
//! are produced sequentially.

use std::collections::HashMap;

use super::WalkedPath;
use crate::read::record::{
    Caps, ExecArgs, ExecEnter, ExecExit, ExecSched, Origin, PathKind, PathRecord,
};

/// What the exec's program had when it started, as `sched_process_exec` said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sched {
    pub argc: u32,
    pub args_total: u64,
    pub args_missing: u64,
    pub interp: Option<Vec<u8>>,
}

/// Everything sent about one exec before its exit: what a pending exec holds, and what an
/// assembled one carries beside its exit.
#[derive(Debug, Clone)]
pub struct ExecStart {
    /// The thread at syscall entry and when.
    pub origin: Origin,
    /// The syscall's x86_64 number.
    pub syscall: u32,
    pub regs: [u64; 6],
    /// Real uid and capability sets before the exec.
    pub old_uid: u32,
    pub old_caps: Caps,
    pub filename: Result<Vec<u8>, i32>,
    /// The argument area as copied (a prefix of it when chunks were lost).
    pub args: Vec<u8>,
    /// A chunk went missing: `args` stops at the gap.
    pub args_gap: bool,
    pub sched: Option<Sched>,
    pub cwd: Option<WalkedPath>,
    pub exe: Option<WalkedPath>,
    pub cgroup: Option<WalkedPath>,
}

impl ExecStart {
    fn new(e: ExecEnter) -> Self {
        ExecStart {
            origin: e.origin,
            syscall: e.syscall,
            regs: e.regs,
            old_uid: e.old_uid,
            old_caps: e.old_caps,
            filename: e.filename,
            args: Vec::new(),
            args_gap: false,
            sched: None,
            cwd: None,
            exe: None,
            cgroup: None,
        }
    }
}

/// Everything the kernel side said about one exec.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub start: ExecStart,
    pub exit: Box<ExecExit>,
}

/// An exec still pending after this long lost its exit record (or its thread vanished).
const STALE_NS: u64 = 60_000_000_000;
/// Beyond this many pending execs, stale ones are swept at once.
const PENDING_SWEEP: usize = 4096;

/// Execs started and not yet exited, by thread id.
#[derive(Default)]
pub(super) struct Execs {
    pending: HashMap<u32, ExecStart>,
    /// The newest kernel timestamp seen, the clock for staleness.
    latest_ns: u64,
}

impl Execs {
    pub fn enter(&mut self, e: ExecEnter) {
        self.latest_ns = self.latest_ns.max(e.origin.boot_ns);
        // A pending exec under this tid lost its exit record, which the kernel counted.
        self.pending.insert(e.origin.tid, ExecStart::new(e));
        if self.pending.len() > PENDING_SWEEP {
            self.sweep();
        }
    }

    pub fn args(&mut self, a: ExecArgs) {
        match self.pending.get_mut(&a.origin.tid) {
            Some(p) if !p.args_gap && a.offset == p.args.len() as u64 => {
                p.args.extend_from_slice(&a.data)
            }
            Some(p) => p.args_gap = true,
            None => {}
        }
    }

    pub fn sched(&mut self, s: ExecSched) {
        if let Some(mut p) = self.pending.remove(&s.origin.tid) {
            p.sched = Some(Sched {
                argc: s.argc,
                args_total: s.args_total,
                args_missing: s.args_missing,
                interp: s.interp,
            });
            // An exec still pending under the new tid lost its exit record, which the kernel
            // counted.
            self.pending.insert(s.new_tid, p);
        }
    }

    pub fn path(&mut self, r: PathRecord) {
        if let Some(p) = self.pending.get_mut(&r.origin.tid) {
            let walked = Some(WalkedPath {
                components: r.data,
                truncated: r.truncated,
            });
            match r.kind {
                PathKind::ExecCwd => p.cwd = walked,
                PathKind::ExecExe => p.exe = walked,
                PathKind::ExecCgroup => p.cgroup = walked,
                _ => {}
            }
        }
    }

    /// The assembled exec, and whether it had to be written with a record missing; `None`
    /// when its start was never seen.
    pub fn exit(&mut self, exit: Box<ExecExit>) -> Option<(Assembled, bool)> {
        let start = self.pending.remove(&exit.origin.tid)?;
        // Written anyway, with what is there; normalise marks the missing paths.
        let missing_sched = exit.ret == 0 && start.sched.is_none();
        let missing_path = start.cwd.is_none() || start.exe.is_none() || start.cgroup.is_none();
        Some((Assembled { start, exit }, missing_sched || missing_path))
    }

    /// Drops execs pending for longer than STALE_NS: their exit record was lost (and counted by
    /// the kernel).
    pub fn sweep(&mut self) {
        let now = self.latest_ns;
        self.pending
            .retain(|_, p| now.saturating_sub(p.origin.boot_ns) < STALE_NS);
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }
}
