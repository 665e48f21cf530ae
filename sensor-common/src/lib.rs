//! Wire types shared by the eBPF programs and the agent: defined once, `#[repr(C)]`, with explicit
//! padding so both sides agree byte for byte. The agent decodes them with `read_unaligned`.
#![no_std]

pub mod filter;
pub mod offsets;
pub mod probes;
pub mod syscalls;
mod uprobes;
pub use offsets::KernelOffsets;
pub use uprobes::*;

/// Every event starts with this header; `kind` says which struct follows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub kind: u32,
    /// Thread id (kernel pid) of the task that produced the event.
    pub tid: u32,
    /// Thread-group id (userspace pid).
    pub pid: u32,
    pub _pad: u32,
    /// CLOCK_MONOTONIC, nanoseconds (the agent derives the kernel's coarse audit stamp from it:
    /// `normalise::clock`).
    pub mono_ns: u64,
}

pub const KIND_EXEC_ENTER: u32 = 1;
pub const KIND_EXEC_SCHED: u32 = 2;
pub const KIND_EXEC_ARGS: u32 = 3;
pub const KIND_EXEC_PATH: u32 = 4;
pub const KIND_EXEC_EXIT: u32 = 5;
pub const KIND_ABEND: u32 = 6;
pub const KIND_PROMISC: u32 = 7;
pub const KIND_SYSCALL_EXIT: u32 = 8;
pub const KIND_USER_MSG: u32 = 9;
pub const KIND_PAM_CALL: u32 = 10;
pub const KIND_PAM_MODULE: u32 = 11;
pub const KIND_LOGIN_UID: u32 = 12;
pub const KIND_EXEC_UNSELECTED: u32 = 13;

/// PATH_MAX: the kernel refuses longer names, so this never cuts a valid one.
pub const FILENAME_MAX: usize = 4096;

/// An execve / execveat's entry (`exec_entry.rs`: at `sched_prepare_exec`, at a failed exec's
/// exit, or at the `syscalls:sys_enter_*` tracepoints). Variable length: only `filename_len`
/// bytes of `filename` are sent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEnter {
    pub hdr: Header,
    pub syscall_nr: u32,
    /// Bytes of `filename` (without NUL), or a negative errno when it could not be read.
    pub filename_len: i32,
    /// The syscall's six argument registers (execveat: dirfd, name, argv, envp, flags).
    pub regs: [u64; 6],
    /// Credentials before the exec, for the kernel's BPRM_FCAPS decision.
    pub old_uid: u32,
    /// 1: the exec came in through the 32-bit syscall entry (`int 0x80`), which the entry
    /// programs leave out. Sent at `sched_process_exec`, so only for execs that succeeded:
    /// `syscall_nr` is i386's execve, the name is the one the kernel opened, registers and
    /// credentials before are unknown (zero registers; the credentials after).
    pub compat: u32,
    pub old_caps: Caps,
    pub filename: [u8; FILENAME_MAX],
}
pub const EXEC_ENTER_FIXED: usize = core::mem::size_of::<ExecEnter>() - FILENAME_MAX;

/// sched_process_exec: the exec succeeded past the point of no return.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecSched {
    pub hdr: Header,
    /// The thread id after exec. `hdr.tid` (like the argument chunks' header) holds the id
    /// before: they differ when a non-leader thread execs and takes over the leader's pid.
    pub new_tid: u32,
    /// `bprm->argc`: the true argument count, whatever the sensor manages to copy.
    pub argc: u32,
    /// Total bytes of the argument area (`mm->arg_end - mm->arg_start`).
    pub args_total: u64,
    /// Argument bytes the sensor could not copy (beyond ARGS_MAX_CHUNKS, or a failed read).
    /// Sent after the chunks, so the agent knows the argument area is complete.
    pub args_missing: u64,
    /// 1 when `bprm->interp` differs from `bprm->filename` (a `#!` script or binfmt_misc).
    pub interpreted: u32,
    /// Bytes of `interp` (without NUL); negative errno when unreadable.
    pub interp_len: i32,
    pub interp: [u8; 256],
}

/// Size of one argument chunk. The whole argument area is copied in chunks of this size.
pub const ARGS_CHUNK: usize = 16384;
/// At most this many chunks (4 MiB): more than the default argument limit (stack rlimit / 4).
pub const ARGS_MAX_CHUNKS: u32 = 256;

/// A slice of the new program's argument area (NUL-separated argv), at most `N` bytes. Variable
/// length: `len` bytes of `data` are sent, and the record may be longer (see [`ARGS_SMALL`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecArgsOf<const N: usize> {
    pub hdr: Header,
    pub offset: u64,
    pub len: u32,
    pub _pad: u32,
    pub data: [u8; N],
}
/// A chunk of the argument area, copied through a scratch value and sent by its length.
pub type ExecArgs = ExecArgsOf<ARGS_CHUNK>;
pub const EXEC_ARGS_FIXED: usize = core::mem::size_of::<ExecArgs>() - ARGS_CHUNK;
/// An argument area of at most this many bytes (most are) is read straight into one record of
/// this capacity reserved in the ring buffer, whatever its length: no copy through the scratch.
pub const ARGS_SMALL: usize = 512;

pub const PATH_CWD: u32 = 1;
pub const PATH_EXE: u32 = 2;
pub const PATH_CGROUP: u32 = 3;
/// Paths sent before a standalone event of the same thread (ABEND, or a [`SyscallExit`]): the
/// exe, cgroup and cwd walked in the kernel, and the syscall's path arguments as the caller
/// passed them (raw bytes, not components).
pub const PATH_TASK_EXE: u32 = 4;
pub const PATH_TASK_CGROUP: u32 = 5;
pub const PATH_TASK_CWD: u32 = 6;
pub const PATH_ARG_NAME: u32 = 7;
pub const PATH_ARG_NEWNAME: u32 = 8;
/// A failed exec's name read again at syscall exit, when it could not be read at entry (sent
/// before its [`ExecExit`]).
pub const PATH_EXEC_NAME: u32 = 9;

/// Bytes of path components; a component is at most NAME_MAX (255) + NUL.
pub const PATH_BUF: usize = 4096;
pub const PATH_NAME_MAX: usize = 256;
/// Components walked before giving up (the record then says the path was cut).
pub const PATH_MAX_DEPTH: u32 = 64;

/// A path resolved in the kernel by walking dentries up to the task's root. `data` holds the
/// components leaf first, each NUL-terminated; the agent reverses them. Variable length.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecPath {
    pub hdr: Header,
    pub which: u32,
    pub len: u32,
    /// 1 when the walk stopped before reaching the root (too deep or a read failed).
    pub truncated: u32,
    /// 1 when `d_path()` would end the path with ` (deleted)`: the file was unlinked, or it is
    /// a pseudo file that never had a directory (a memfd: `/memfd:NAME (deleted)`).
    pub deleted: u32,
    pub data: [u8; PATH_BUF + PATH_NAME_MAX],
}
pub const EXEC_PATH_FIXED: usize = core::mem::size_of::<ExecPath>() - PATH_BUF - PATH_NAME_MAX;

/// A task's capability sets (`kernel_cap_t`, one bit per capability).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub ambient: u64,
}

/// Where a task lives: its namespaces, its pid inside its pid namespace, its cgroup v2 id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskNs {
    pub pid_ns: u32,
    pub mnt_ns: u32,
    pub net_ns: u32,
    pub uts_ns: u32,
    pub ns_pid: u32,
    pub _pad: u32,
    pub cgroup_id: u64,
}

/// Inode facts of the executable (`mm->exe_file`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InodeFacts {
    pub ino: u64,
    /// Kernel-internal dev_t (major << 20 | minor).
    pub dev: u32,
    pub rdev: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub _pad: u32,
}

/// Who the task is, as a SYSCALL record and `audit_log_task_info()` show it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    pub ppid: u32,
    pub auid: u32,
    pub ses: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// `task->personality` (auditd's `per=`).
    pub personality: u32,
    pub comm: [u8; 16],
    /// Controlling tty name (`pts0`), NUL-terminated; empty when none.
    pub tty: [u8; 64],
}

/// sys_exit_execve / sys_exit_execveat: the verdict and who the task is now.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecExit {
    pub hdr: Header,
    pub ret: i64,
    pub task: TaskInfo,
    pub ns: TaskNs,
    pub exe: InodeFacts,
    /// Capability sets after the exec (or unchanged, when it failed).
    pub caps: Caps,
    /// 1 when `exe` was read.
    pub has_exe: u32,
    /// Kernel reads that failed while building this event (fields left zero).
    pub read_errors: u32,
    /// Bytes of `proctitle` read from the argument area at exit (the new program's on success,
    /// the caller's on failure), as the kernel's PROCTITLE record does. 0 for a successful exec
    /// whose area is at most [`ARGS_SMALL`] bytes: its one argument record holds the same bytes.
    pub proctitle_len: u32,
    pub _pad2: u32,
    pub proctitle: [u8; PROCTITLE_MAX],
}

/// A task is about to dump core: a core-dumping signal other than SIGQUIT is delivered with
/// its default action (the kernel's `audit_core_dumps()`, ANOM_ABEND). Preceded by PATH records
/// PATH_ABEND_EXE and PATH_ABEND_CGROUP of the same thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abend {
    pub hdr: Header,
    pub sig: u32,
    pub auid: u32,
    pub uid: u32,
    pub gid: u32,
    pub ses: u32,
    pub _pad: u32,
    pub ns: TaskNs,
    pub comm: [u8; 16],
}

/// The exit of a syscall during which the kernel would have written an anomaly record, as the
/// event's SYSCALL and PROCTITLE records need it. Sent for open/link syscalls refused with
/// EACCES/EPERM (the agent decides whether a protected_* sysctl refused them) and for the
/// syscall that changed an interface's promiscuity (after its [`Promisc`]). Preceded by
/// PATH_TASK_* and PATH_ARG_* records of the same thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallExit {
    pub hdr: Header,
    pub nr: u32,
    /// 1 when the syscall's argument registers could not be read (`args` are zero).
    pub no_args: u32,
    pub ret: i64,
    pub args: [u64; 6],
    /// The open flags (`open_how.flags` for openat2, O_CREAT|O_WRONLY|O_TRUNC for creat), or
    /// linkat's flags; 0 for other syscalls.
    pub flags: u64,
    /// Effective capabilities (CAP_FOWNER and CAP_DAC_* matter to the hard link check).
    pub cap_effective: u64,
    pub task: TaskInfo,
    pub ns: TaskNs,
    pub read_errors: u32,
    pub proctitle_len: u32,
    /// The kernel's own refusal, seen in `audit_log_path_denied()` (trampolines): its record type
    /// (ANOM_LINK 1702, ANOM_CREAT 1703) and `op=`, NUL-padded; 0 when the agent judges.
    pub denial_type: u32,
    pub _pad: u32,
    pub denial_op: [u8; DENIAL_OP_MAX],
    pub proctitle: [u8; PROCTITLE_MAX],
}

/// Bytes of a refusal's `op=` kept (the longest, `sticky_create_regular`, has 21).
pub const DENIAL_OP_MAX: usize = 32;

/// Bytes of a loginuid write kept: the kernel parses at most 23 (`kstrtou32_from_user()`).
pub const LOGIN_VALUE_MAX: usize = 24;

/// A write to `/proc/<pid>/loginuid` returned (the kernel's `audit_log_set_loginuid()`, LOGIN):
/// successfully, or refused by `audit_set_loginuid()` (EPERM on the writer's own file). The
/// write's [`SyscallExit`] follows (who the task is now: its new login uid and session).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginUid {
    pub hdr: Header,
    pub ret: i64,
    /// The login uid and session before the write: kept at the PAM call the write happened in
    /// (`old_exact` 1), else the parent's (`old_exact` 0).
    pub old_auid: u32,
    pub old_ses: u32,
    pub old_exact: u32,
    /// The bytes of `value` written (at most LOGIN_VALUE_MAX).
    pub value_len: u32,
    pub value: [u8; LOGIN_VALUE_MAX],
}

/// Longest console message kept for a promiscuity change (`<dev>: entered promiscuous mode`,
/// IFNAMSIZ 16 plus the text and a driver/bus prefix).
pub const PROMISC_TEXT_MAX: usize = 128;

/// The kernel logged a promiscuity change (`__dev_set_promiscuity()`, which is also where it
/// writes ANOM_PROMISCUOUS) in the context of the task that caused it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promisc {
    pub hdr: Header,
    /// The syscall the task is in (`orig_ax`), or -1. When it is one whose exit the sensor
    /// watches, a [`SyscallExit`] of the same thread follows.
    pub nr: i32,
    /// 1 when a [`SyscallExit`] follows.
    pub exit_follows: u32,
    pub auid: u32,
    pub uid: u32,
    pub gid: u32,
    pub ses: u32,
    pub ns: TaskNs,
    pub text_len: u32,
    pub _pad: u32,
    pub text: [u8; PROMISC_TEXT_MAX],
}

/// Syscalls after whose exit a promiscuity change gets its SYSCALL record (x86_64 numbers):
/// ioctl (SIOCSIFFLAGS), sendto/sendmsg (rtnetlink), setsockopt (PACKET_MR_PROMISC), close
/// (a packet socket leaving).
pub const PROMISC_SYSCALLS: [u32; 5] = [
    syscalls::x86_64::IOCTL,
    syscalls::x86_64::SENDTO,
    syscalls::x86_64::SENDMSG,
    syscalls::x86_64::SETSOCKOPT,
    syscalls::x86_64::CLOSE,
];

/// The kernel's MAX_PROCTITLE_AUDIT_LEN.
pub const PROCTITLE_MAX: usize = 128;

/// A NUL-terminated field (comm, tty, interp) up to its first NUL.
pub fn cstr(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(&[])
}

/// Indexes in [`Counters`].
pub const CTR_RINGBUF_FULL: u32 = 0;
pub const CTR_READ_ERROR: u32 = 1;
/// Execs whose exit record could not be sent: the agent never learns of them otherwise, as their
/// other records may be lost too. (Argument and path truncation is said in the records.)
pub const CTR_EXIT_LOST: u32 = 2;
/// PAM calls that returned without their start having been seen (the sensor started during the
/// call, or the pending-call map was full): not reported, counted in `incomplete`.
pub const CTR_PAM_UNMATCHED: u32 = 3;
/// Messages handed to libaudit's `__audit_send()` that never reached kernel audit (a negative
/// fd, a text too long for libaudit, a failed `sendto()`, a socket other than NETLINK_AUDIT):
/// not written, as the kernel never saw them. Not a loss.
pub const CTR_USER_MSG_UNSENT: u32 = 4;
/// Messages whose send could not be followed (the pending-send map refused the thread): not
/// reported, counted in `incomplete`.
pub const CTR_USER_MSG_UNTRACKED: u32 = 5;
/// Execs the rules left out in the kernel (`--rules`): not a loss.
pub const CTR_EXEC_UNSELECTED: u32 = 6;
/// Execs whose entry, held in the kernel until the rules judged them, was not found when they
/// were (a thread id reused under an exec in flight): lost, counted in `incomplete`.
pub const CTR_EXEC_ENTRY_LOST: u32 = 7;
pub const CTR_COUNT: u32 = 8;
/// Every counter, as the per-CPU map `COUNTERS` holds them in its one element: the agent reads
/// them all in one lookup.
pub type Counters = [u64; CTR_COUNT as usize];

/// `signal_struct.flags`: the task is a (container) init that ignores default-action signals.
pub const SIGNAL_UNKILLABLE: u32 = 0x40;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` integers and arrays with explicit padding, valid for any bytes.
    unsafe impl aya::Pod for super::KernelOffsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PamLayout {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::filter::FilterConf {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::filter::FilterRule {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::filter::WatchInode {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::filter::WatchName {}
}
