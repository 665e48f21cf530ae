//! One exec's records (enter, argument chunks, sched, paths, exit), joined by thread id. Records
//! of one thread arrive in order: the ring buffer keeps reservation order and a thread's records
//! are produced sequentially.

use std::collections::HashMap;

use super::WalkedPath;
use crate::read::record::{ExecArgs, ExecEnter, ExecExit, ExecSched, PathKind, PathRecord};

/// What the exec's program had when it started, as `sched_process_exec` said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sched {
    pub argc: u32,
    pub args_total: u64,
    pub args_missing: u64,
    pub interp: Option<Vec<u8>>,
    /// `bprm->filename` when no interpreter ran.
    pub filename: Option<Vec<u8>>,
}

/// Everything sent about one exec before its exit: what a pending exec holds, and what an
/// assembled one carries beside its exit.
#[derive(Debug, Clone)]
pub struct ExecStart {
    /// The syscall's entry: thread, time, number, registers, credentials before, name.
    pub enter: ExecEnter,
    /// The argument area as copied (a prefix of it when chunks were lost).
    pub args: Vec<u8>,
    /// A chunk went missing: `args` stops at the gap.
    pub args_gap: bool,
    pub sched: Option<Sched>,
    pub cwd: Option<WalkedPath>,
    pub exe: Option<WalkedPath>,
    pub cgroup: Option<WalkedPath>,
    /// The name read again at the exit of a failed exec, when it could not be read at entry.
    pub name_at_exit: Option<Vec<u8>>,
}

impl ExecStart {
    fn new(enter: ExecEnter) -> Self {
        ExecStart {
            enter,
            args: Vec::new(),
            args_gap: false,
            sched: None,
            cwd: None,
            exe: None,
            cgroup: None,
            name_at_exit: None,
        }
    }

    /// The name the caller passed: read at entry, or again at exit, or, for an exec that
    /// succeeded, the one the kernel opened.
    pub fn filename(&self) -> Vec<u8> {
        match (&self.enter.filename, &self.name_at_exit, &self.sched) {
            (Ok(name), _, _) => name.clone(),
            (Err(_), Some(name), _) => name.clone(),
            (
                Err(_),
                None,
                Some(Sched {
                    filename: Some(name),
                    ..
                }),
            ) => name.clone(),
            _ => Vec::new(),
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
/// Pending execs at most: beyond, stale ones are swept, and then the oldest given up (counted as
/// incomplete). Each holds at most a name and three paths of a few KiB, besides its arguments.
const MAX_PENDING: usize = 4096;
/// Argument bytes held for all pending execs together. An exec can stay pending as long as its
/// caller likes (a tracer stops it inside execve), each with up to 4 MiB of arguments: past this,
/// further chunks are not kept and the exec is written with its arguments cut, saying so
/// (`sensor_trunc_args=`), as for a chunk the kernel could not send.
pub const MAX_PENDING_ARG_BYTES: usize = 64 << 20;

/// Execs started and not yet exited, by thread id.
#[derive(Default)]
pub(super) struct Execs {
    pending: HashMap<u32, ExecStart>,
    /// Argument bytes held by `pending`.
    arg_bytes: usize,
    /// The newest kernel timestamp seen, the clock for staleness.
    latest_ns: u64,
}

impl Execs {
    /// Records the start of an exec; returns how many older pending execs had to be given up.
    pub fn enter(&mut self, e: ExecEnter) -> u64 {
        self.latest_ns = self.latest_ns.max(e.origin.mono_ns);
        // A pending exec under this tid lost its exit record, which the kernel counted.
        if let Some(old) = self.pending.insert(e.origin.tid, ExecStart::new(e)) {
            self.arg_bytes -= old.args.len();
        }
        if self.pending.len() <= MAX_PENDING {
            return 0;
        }
        self.sweep();
        let mut given_up = 0;
        while self.pending.len() > MAX_PENDING {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.enter.origin.mono_ns)
                .map(|(tid, _)| *tid);
            if let Some(p) = oldest.and_then(|tid| self.pending.remove(&tid)) {
                self.arg_bytes -= p.args.len();
                given_up += 1;
            }
        }
        given_up
    }

    pub fn args(&mut self, a: ExecArgs) {
        let room = MAX_PENDING_ARG_BYTES.saturating_sub(self.arg_bytes);
        match self.pending.get_mut(&a.origin.tid) {
            Some(p) if !p.args_gap && a.offset == p.args.len() as u64 && a.data.len() <= room => {
                p.args.extend_from_slice(&a.data);
                self.arg_bytes += a.data.len();
            }
            Some(p) => p.args_gap = true,
            None => {}
        }
    }

    pub fn sched(&mut self, s: ExecSched) {
        if let Some(mut p) = self.pending.remove(&s.origin.tid) {
            self.arg_bytes -= p.args.len();
            let held = p.args.len();
            p.sched = Some(Sched {
                argc: s.argc,
                args_total: s.args_total,
                args_missing: s.args_missing,
                interp: s.interp,
                filename: s.filename,
            });
            // An exec still pending under the new tid lost its exit record, which the kernel
            // counted.
            self.arg_bytes += held;
            if let Some(old) = self.pending.insert(s.new_tid, p) {
                self.arg_bytes -= old.args.len();
            }
        }
    }

    pub fn path(&mut self, r: PathRecord) {
        if let Some(p) = self.pending.get_mut(&r.origin.tid) {
            if r.kind == PathKind::ExecName {
                p.name_at_exit = (!r.truncated).then_some(r.data);
                return;
            }
            let walked = Some(WalkedPath {
                components: r.data,
                truncated: r.truncated,
                deleted: r.deleted,
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
        self.arg_bytes -= start.args.len();
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
            .retain(|_, p| now.saturating_sub(p.enter.origin.mono_ns) < STALE_NS);
        self.arg_bytes = self.pending.values().map(|p| p.args.len()).sum();
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Argument bytes held for pending execs.
    pub fn arg_bytes(&self) -> usize {
        self.arg_bytes
    }
}
