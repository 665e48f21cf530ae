//! What the ring buffer said, decoded: one owned, typed struct per record kind. The stages after
//! `read` see only these, never a wire struct, a raw array or a length field.
//!
//! The fixed numeric groups (capability sets, namespaces, inode facts) are the kernel's own
//! values with no lengths in them, so they are kept as the wire defines them.

pub use sensor_common::{Caps, InodeFacts, TaskNs};

/// The PAM handle's items, and who a task is as a SYSCALL record shows it (its exe is filled in
/// by normalise): the event model's own types, as they need no normalising.
pub use crate::event::{PamItems, Task as TaskInfo};

/// Who sent a record, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Thread id (kernel pid) of the task that produced the record.
    pub tid: u32,
    /// Thread-group id (userspace pid).
    pub pid: u32,
    /// CLOCK_MONOTONIC, nanoseconds (the agent derives the kernel's coarse audit stamp from it:
    /// `normalise::clock`).
    pub mono_ns: u64,
}

/// The audit identity of a task: login uid and session, and its real ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditIds {
    pub auid: u32,
    pub uid: u32,
    pub gid: u32,
    pub ses: u32,
}

/// An execve / execveat's entry (at `sched_prepare_exec`, at a failed exec's exit, or at the
/// `syscalls:sys_enter_*` tracepoints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecEnter {
    pub origin: Origin,
    /// The syscall's number: x86_64's, or i386's when `compat`.
    pub syscall: u32,
    /// Entered through the 32-bit syscall entry (seen only at `sched_process_exec`: the
    /// registers are zero and the credentials before are those after).
    pub compat: bool,
    /// The six argument registers (execveat: dirfd, name, argv, envp, flags).
    pub regs: [u64; 6],
    /// Real uid and capability sets before the exec.
    pub old_uid: u32,
    pub old_caps: Caps,
    /// The name as passed, or the negative errno of reading it.
    pub filename: Result<Vec<u8>, i32>,
}

/// A slice of the new program's argument area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecArgs {
    pub origin: Origin,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// sched_process_exec: the exec went past the point of no return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSched {
    /// `tid` is the thread id before the exec (a non-leader thread takes the leader's).
    pub origin: Origin,
    pub new_tid: u32,
    pub argc: u32,
    pub args_total: u64,
    pub args_missing: u64,
    /// The `#!` interpreter (or binfmt_misc's) when the kernel ran one.
    pub interp: Option<Vec<u8>>,
    /// `bprm->filename` (at most 255 bytes) when no interpreter ran: the name as the kernel
    /// opened it, for when the caller's name could not be read at entry.
    pub filename: Option<Vec<u8>>,
}

/// Which path a [`PathRecord`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// Of an exec: its cwd, the new exe and the cgroup.
    ExecCwd,
    ExecExe,
    ExecCgroup,
    /// Of a failed exec: its name read again at exit (it could not be read at entry).
    ExecName,
    /// Of the task behind the standalone event that follows.
    TaskExe,
    TaskCgroup,
    TaskCwd,
    /// A syscall's path arguments, as passed.
    ArgName,
    ArgNewname,
}

/// A path walked in the kernel (components leaf first, NUL-terminated), or a path argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRecord {
    pub origin: Origin,
    pub kind: PathKind,
    /// The walk stopped before the root, or the argument could not be read whole.
    pub truncated: bool,
    /// The file is gone from its directory (or never had one): `d_path()` adds ` (deleted)`.
    pub deleted: bool,
    pub data: Vec<u8>,
}

/// sys_exit_execve / sys_exit_execveat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecExit {
    pub origin: Origin,
    pub ret: i64,
    pub task: TaskInfo,
    pub ns: TaskNs,
    /// `mm->exe_file`'s inode, when it could be read.
    pub exe: Option<InodeFacts>,
    /// Capability sets after the exec (unchanged when it failed).
    pub caps: Caps,
    /// The first bytes of the argument area read at exit (the kernel's PROCTITLE source).
    pub proctitle: Vec<u8>,
}

/// A core-dumping signal about to be delivered (ANOM_ABEND).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abend {
    pub origin: Origin,
    pub sig: u32,
    pub ids: AuditIds,
    pub ns: TaskNs,
    pub comm: Vec<u8>,
}

/// The kernel's console line about a promiscuity change, in the causing task's context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promisc {
    pub origin: Origin,
    /// A [`SyscallExit`] of the same thread follows.
    pub exit_follows: bool,
    pub ids: AuditIds,
    pub ns: TaskNs,
    pub text: Vec<u8>,
}

/// The exit of a syscall during which the kernel would have written an anomaly record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallExit {
    pub origin: Origin,
    /// The syscall's x86_64 number.
    pub syscall: u32,
    pub ret: i64,
    /// The argument registers; zero when they could not be read.
    pub args: [u64; 6],
    /// Open flags (openat2's `how.flags`, creat's implied ones) or linkat's flags.
    pub flags: u64,
    pub cap_effective: u64,
    pub task: TaskInfo,
    pub ns: TaskNs,
    pub proctitle: Vec<u8>,
    /// The kernel's own refusal, when a trampoline saw it: no judging needed.
    pub kernel_denial: Option<KernelDenial>,
}

/// What `audit_log_path_denied()` was called with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelDenial {
    /// ANOM_LINK (1702) or ANOM_CREAT (1703).
    pub record_type: u32,
    pub op: Vec<u8>,
}

/// A user-space audit message as kernel audit received it from libaudit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMsg {
    pub origin: Origin,
    pub msg_type: u32,
    pub truncated: bool,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
    /// The sender's effective capabilities and the level of its user namespace (0: the initial
    /// one; `sensor_common::NS_LEVEL_UNKNOWN` when unreadable).
    pub cap_effective: u64,
    pub user_ns_level: u32,
    /// The same for the credentials the socket was opened with.
    pub sock_cap_effective: u64,
    pub sock_user_ns_level: u32,
    pub ns: TaskNs,
    pub text: Vec<u8>,
}

/// A libpam API call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PamCall {
    pub origin: Origin,
    /// Index in `sensor_common::PAM_FUNCTIONS`.
    pub func: u32,
    pub retval: i32,
    pub flags: u32,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
    pub ns: TaskNs,
    /// `None` when the handle's layout is unknown or it could not be read.
    pub items: Option<PamItems>,
}

/// A watched PAM module's `pam_sm_*` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PamModule {
    pub origin: Origin,
    /// Index in `sensor_common::PAM_MODULES`.
    pub module: u32,
    /// Index in `sensor_common::PAM_SM_FUNCTIONS`.
    pub func: u32,
    pub retval: i32,
}

/// A write to a loginuid file that set it or was refused (LOGIN); its [`SyscallExit`] follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginUid {
    pub origin: Origin,
    pub ret: i64,
    pub old_auid: u32,
    pub old_ses: u32,
    /// The old ids were kept at the PAM call's entry (else they are the parent's).
    pub old_exact: bool,
    /// The bytes written (at most 24: the kernel parses 23).
    pub value: Vec<u8>,
}

/// An exec the rules left out in the kernel, in a mount namespace other than the sensor's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecUnselected {
    pub origin: Origin,
    pub mnt_ns: u32,
}

/// One ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    ExecEnter(ExecEnter),
    ExecArgs(ExecArgs),
    ExecSched(ExecSched),
    Path(PathRecord),
    ExecExit(Box<ExecExit>),
    Abend(Abend),
    Promisc(Promisc),
    SyscallExit(Box<SyscallExit>),
    UserMsg(UserMsg),
    PamCall(Box<PamCall>),
    PamModule(PamModule),
    LoginUid(LoginUid),
    ExecUnselected(ExecUnselected),
}

impl Record {
    pub fn origin(&self) -> &Origin {
        match self {
            Record::ExecEnter(r) => &r.origin,
            Record::ExecArgs(r) => &r.origin,
            Record::ExecSched(r) => &r.origin,
            Record::Path(r) => &r.origin,
            Record::ExecExit(r) => &r.origin,
            Record::Abend(r) => &r.origin,
            Record::Promisc(r) => &r.origin,
            Record::SyscallExit(r) => &r.origin,
            Record::UserMsg(r) => &r.origin,
            Record::PamCall(r) => &r.origin,
            Record::PamModule(r) => &r.origin,
            Record::LoginUid(r) => &r.origin,
            Record::ExecUnselected(r) => &r.origin,
        }
    }
}
