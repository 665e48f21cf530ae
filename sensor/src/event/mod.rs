//! The normalised event model: what every encoder (audit text, enriched text, protobuf) reads and
//! what `sensor decode` rebuilds from protobuf. Every string that comes from a process is kept as
//! raw bytes: arguments, paths and names are untrusted and may hold anything.

use sensor_common::syscalls::{self, x86_64};
/// The architectures as auditd writes them in `arch=`.
pub use sensor_common::syscalls::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
/// The value the kernel uses for an unset loginuid / sessionid.
pub const UNSET_ID: u32 = u32::MAX;

/// `msg=audit(SEC.MS:SERIAL)`: one per event, shared by all its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Wall clock, seconds since the epoch.
    pub sec: u64,
    /// Wall clock, nanoseconds within the second (audit text prints milliseconds).
    pub nsec: u32,
    pub serial: u64,
}

/// A syscall, by its x86_64 number: the table the probes see. Any number is a value: one the
/// sensor has no name for is written as a number, as auditd writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Syscall(pub u32);

impl Syscall {
    pub const EXECVE: Syscall = Syscall(x86_64::EXECVE);
    pub const EXECVEAT: Syscall = Syscall(x86_64::EXECVEAT);
    pub const OPEN: Syscall = Syscall(x86_64::OPEN);
    pub const OPENAT: Syscall = Syscall(x86_64::OPENAT);
    pub const OPENAT2: Syscall = Syscall(x86_64::OPENAT2);
    pub const CREAT: Syscall = Syscall(x86_64::CREAT);
    pub const LINK: Syscall = Syscall(x86_64::LINK);
    pub const LINKAT: Syscall = Syscall(x86_64::LINKAT);

    /// The x86_64 number.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The name auditctl and auparse give it, if the table has one.
    pub fn name(self) -> Option<&'static str> {
        syscalls::name(AUDIT_ARCH_X86_64, self.0)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        syscalls::number(AUDIT_ARCH_X86_64, name).map(Syscall)
    }

    /// Its number under `arch` (i386's execve is 11), found by name.
    pub fn number_in(self, arch: u32) -> Option<u32> {
        match arch {
            AUDIT_ARCH_X86_64 => Some(self.0),
            _ => syscalls::number(arch, self.name()?),
        }
    }

    /// Syscall `nr` of `arch`, when the x86_64 table has one of the same name.
    pub fn from_arch(arch: u32, nr: u32) -> Option<Self> {
        match arch {
            AUDIT_ARCH_X86_64 => Some(Syscall(nr)),
            _ => Self::from_name(syscalls::name(arch, nr)?),
        }
    }
}

/// Credentials and identity of the task at syscall exit (after a set-id exec took effect).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Task {
    pub ppid: u32,
    pub pid: u32,
    pub tid: u32,
    pub auid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub ses: u32,
    /// `task->personality`: auditd writes `per=` on SYSCALL when it is not 0 (PER_LINUX).
    pub personality: u32,
    /// Controlling terminal name (`pts0`); `None` is written `tty=(none)`.
    pub tty: Option<Vec<u8>>,
    pub comm: Vec<u8>,
    /// Resolved executable (`mm->exe_file`); `None` is written `exe=(null)`.
    pub exe: Option<Vec<u8>>,
}

/// Where the task lives: what kernel audit cannot say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Container {
    /// cgroup v2 id (the kernfs node id of the task's default-hierarchy cgroup).
    pub cgroup_id: u64,
    /// cgroup v2 path, `/` for the root.
    pub cgroup_path: Vec<u8>,
    pub pid_ns: u32,
    pub mnt_ns: u32,
    pub net_ns: u32,
    pub uts_ns: u32,
    /// The task's pid as seen inside its own pid namespace.
    pub ns_pid: u32,
    /// Container id recognised in the cgroup path (docker, containerd, cri-o, podman), if any.
    pub container_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameType {
    Normal,
    Unknown,
}

impl NameType {
    pub fn as_str(self) -> &'static str {
        match self {
            NameType::Normal => "NORMAL",
            NameType::Unknown => "UNKNOWN",
        }
    }
}

/// Inode facts of a PATH item that the kernel resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inode {
    pub ino: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub mode: u32,
    pub ouid: u32,
    pub ogid: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
}

/// File capabilities (`security.capability`), as PATH `cap_f*=` and BPRM_FCAPS `f*=` show them.
/// All zero when the file has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCaps {
    pub permitted: u64,
    pub inheritable: u64,
    pub effective: bool,
    /// VFS_CAP_REVISION (1, 2 or 3); 0 without capabilities.
    pub version: u32,
    /// The namespaced root uid of a revision 3 entry.
    pub rootid: u32,
}

/// One PATH record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathItem {
    pub name: Vec<u8>,
    /// `None` when the name did not resolve (auditd then writes only item, name and nametype).
    pub inode: Option<Inode>,
    pub nametype: NameType,
    pub fcaps: FileCaps,
}

/// A task's capability sets: the kernel's layout is the model's.
pub use sensor_common::Caps;

/// The BPRM_FCAPS record: the exec changed capabilities in a way the kernel reports
/// (`nonroot_raised_pE()` in security/commoncap.c).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BprmFcaps {
    pub file: FileCaps,
    pub old: Caps,
    pub new: Caps,
}

/// What the sensor had to leave out of argv: never silent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgvTruncation {
    /// Arguments the kernel passed but the sensor did not capture.
    pub missing_args: u32,
    /// Bytes of argument text (NUL separators included) not captured.
    pub missing_bytes: u64,
}

/// Paths walked in the kernel that had to be cut (deeper than the walk's bound): never silent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathsTruncated {
    pub cwd: bool,
    pub exe: bool,
    pub cgroup: bool,
}

impl PathsTruncated {
    pub fn any(&self) -> bool {
        self.cwd || self.exe || self.cgroup
    }
}

/// One execve/execveat, successful or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub stamp: Stamp,
    /// CLOCK_BOOTTIME nanoseconds at syscall entry (monotonic, survives wall-clock jumps).
    pub boot_ns: u64,
    pub arch: u32,
    pub syscall: Syscall,
    pub success: bool,
    /// The syscall's return value (0 or -errno).
    pub exit: i64,
    /// The first four syscall argument registers, as auditd writes a0..a3 (hex).
    pub regs: [u64; 4],
    pub task: Task,
    /// The argument vector; empty for a failed exec (auditd writes no EXECVE record then).
    pub argv: Vec<Vec<u8>>,
    pub argv_truncated: Option<ArgvTruncation>,
    /// Present when the kernel would write a BPRM_FCAPS record for this exec.
    pub bprm_fcaps: Option<BprmFcaps>,
    /// The command line with NUL separators, at most 128 bytes, trailing non-printables trimmed.
    pub proctitle: Vec<u8>,
    pub cwd: Option<Vec<u8>>,
    pub paths: Vec<PathItem>,
    pub container: Container,
    /// Which of cwd, exe and the cgroup path are cut (their leading components are missing) or
    /// lost altogether (their record never arrived).
    pub paths_truncated: PathsTruncated,
    /// auditd's rule key; the sensor has no rules, so normally `None` (written `key=(null)`).
    pub key: Option<Vec<u8>>,
}

/// ANOM_ABEND: a task killed by a core-dumping signal (not SIGQUIT), as `audit_core_dumps()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbendEvent {
    pub stamp: Stamp,
    pub boot_ns: u64,
    pub pid: u32,
    pub auid: u32,
    pub uid: u32,
    pub gid: u32,
    pub ses: u32,
    pub comm: Vec<u8>,
    /// `None` is written `exe=(null)`, as the kernel does for a task without an mm.
    pub exe: Option<Vec<u8>>,
    pub sig: u32,
    pub container: Container,
    /// Set when the exe or cgroup path was cut or its record lost.
    pub paths_truncated: PathsTruncated,
}

/// Which fs.protected_* check refused a syscall, as the kernel's `op=` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathDenial {
    /// `may_linkat()`: fs.protected_hardlinks (ANOM_LINK).
    Linkat,
    /// `may_follow_link()`: fs.protected_symlinks (ANOM_LINK).
    FollowLink,
    /// `may_create_in_sticky()`: fs.protected_regular / fs.protected_fifos (ANOM_CREAT), as
    /// kernels since 6.12 name a refusal in a world-writable directory.
    StickyCreate,
    /// The same for a FIFO: every refusal before 6.12, a group-writable directory's since.
    StickyCreateFifo,
    /// The same for a regular file.
    StickyCreateRegular,
}

impl PathDenial {
    pub fn record_type(self) -> &'static str {
        match self {
            PathDenial::Linkat | PathDenial::FollowLink => "ANOM_LINK",
            PathDenial::StickyCreate
            | PathDenial::StickyCreateFifo
            | PathDenial::StickyCreateRegular => "ANOM_CREAT",
        }
    }
    pub fn op(self) -> &'static str {
        match self {
            PathDenial::Linkat => "linkat",
            PathDenial::FollowLink => "follow_link",
            PathDenial::StickyCreate => "sticky_create",
            PathDenial::StickyCreateFifo => "sticky_create_fifo",
            PathDenial::StickyCreateRegular => "sticky_create_regular",
        }
    }
    /// The refusal the kernel names `op` in a record of type `record_type` (1702, 1703).
    pub fn from_kernel(record_type: u32, op: &[u8]) -> Option<PathDenial> {
        [
            PathDenial::Linkat,
            PathDenial::FollowLink,
            PathDenial::StickyCreate,
            PathDenial::StickyCreateFifo,
            PathDenial::StickyCreateRegular,
        ]
        .into_iter()
        .find(|d| d.op().as_bytes() == op)
        .filter(|d| match d.record_type() {
            "ANOM_LINK" => record_type == 1702,
            _ => record_type == 1703,
        })
    }
}

/// One IFF_PROMISC change, as `__dev_set_promiscuity()` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Promiscuity {
    pub dev: Vec<u8>,
    /// IFF_PROMISC (256) or 0, after and before.
    pub prom: u32,
    pub old_prom: u32,
    pub auid: u32,
    pub uid: u32,
    pub gid: u32,
    pub ses: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// ANOM_LINK / ANOM_CREAT: the task fields are the SYSCALL part's.
    PathDenied {
        denial: PathDenial,
        /// The path arguments as passed (linkat: old and new name).
        names: Vec<Vec<u8>>,
        /// The object the protection applied to, as the sensor resolved it: the hard link's
        /// source, the refused symlink, the existing file. Empty when the kernel's own refusal
        /// was seen (fentry), which does not name it.
        object: Vec<u8>,
    },
    /// ANOM_PROMISCUOUS, one record per change made during the syscall.
    Promiscuous(Vec<Promiscuity>),
    /// LOGIN: the task's login uid set (or refused) through its loginuid file.
    Login(LoginChange),
}

/// LOGIN as `audit_log_set_loginuid()` writes it: `pid= uid= old-auid= auid= tty= old-ses= ses=
/// res=`; the task fields are the SYSCALL part's (the write's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginChange {
    pub old_auid: u32,
    /// The login uid set, or the one refused.
    pub auid: u32,
    pub old_ses: u32,
    /// The new session, or 4294967295 when refused (or when the login uid was unset).
    pub ses: u32,
    pub res: bool,
    /// The old ids were kept at the entry of the PAM call the write was made in; else they are
    /// the parent's at the write (what the task inherited, unless either changed since).
    pub old_exact: bool,
}

/// The SYSCALL and PROCTITLE records of the syscall event an anomaly belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallPart {
    pub syscall: Syscall,
    pub success: bool,
    pub exit: i64,
    pub regs: [u64; 4],
    pub task: Task,
    pub proctitle: Vec<u8>,
}

/// A kernel anomaly record with the rest of its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalyEvent {
    pub stamp: Stamp,
    pub boot_ns: u64,
    pub anomaly: Anomaly,
    /// `None` when the change came outside a watched syscall (a packet socket closed as its
    /// process exits): the anomaly record is then written alone.
    pub syscall: Option<SyscallPart>,
    pub container: Container,
    pub paths_truncated: PathsTruncated,
    /// The key of the audit rule that selected the SYSCALL part (`--rules`); `None` is
    /// `key=(null)`.
    pub key: Option<Vec<u8>>,
}

mod user;
pub use user::*;

/// Events the sensor could not deliver, reported whenever the count grows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostEvent {
    pub stamp: Stamp,
    /// Total lost since start, all causes.
    pub total: u64,
    /// Lost since the previous report.
    pub delta: u64,
    /// Failed ring-buffer reservations/outputs in the kernel.
    pub ringbuf: u64,
    /// Failed kernel reads (`bpf_probe_read_*`) that left a field unknown.
    pub read_errors: u64,
    /// Records the agent received but could not decode, or left in the ring buffer when the
    /// drain at stop ran out of time. (A full channel makes the reader wait instead: records then
    /// stay in the kernel's ring buffer, whose overflow is `ringbuf`.)
    pub channel: u64,
    /// Execs that could not be assembled because one of their records was lost, or was in
    /// flight when the sensor started, and PAM calls whose start was not seen. Not part of
    /// `total`: the loss behind it already is.
    pub incomplete: u64,
    /// File lookups (an exec'd file, a name a refused syscall walked, a container's root) that
    /// missed their deadline or found no free worker: the fields they would have filled read as
    /// unknown. Not part of `total`.
    pub lookups_late: u64,
    /// Container roots whose libraries are not watched (past the bound). Not part of `total`.
    pub roots_unwatched: u64,
    /// Events an output could not take (a full disk, an I/O error, a closed pipe), summed over
    /// the outputs; the outputs that could write them have them. Not part of `total`.
    pub unwritten: u64,
}

/// What flows from normalise to the encoders and sinks.
// Each event is built once and moved through the pipeline; boxing would add an allocation per
// exec for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Exec(ExecEvent),
    Abend(AbendEvent),
    Anomaly(AnomalyEvent),
    UserMessage(UserMessageEvent),
    Pam(PamEvent),
    Lost(LostEvent),
}

#[cfg(test)]
mod tests;
