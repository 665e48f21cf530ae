//! The user's exit-list rules as the exec programs judge them in the kernel (`--rules`), so that
//! an exec no rule selects never reaches the agent. The agent compiles its rules into this form
//! (`sensor/src/filter/rules/compile.rs`); the verdict here is conservative: an exec is left out
//! only when it is certain that no rule selects it, and anything the kernel side cannot judge
//! exactly (a script's own PATH item, a failed exec's, an object's owner) is sent, for the
//! agent's exact decision. Watched paths and trees are judged by the objects the exec ran: the
//! program and its ELF interpreter.
//!
//! Two banks of rules: a reload writes the idle bank, then says from which moment (the exec's
//! entry time) it is in force, as the agent judges the events it receives.

/// Rules per bank. A rule set needing more runs with every exec sent (the agent says so).
pub const FILTER_RULES_MAX: u32 = 128;
/// Conditions per compiled rule. A rule with more is compiled as "may match".
pub const FILTER_CONDS_MAX: usize = 8;

/// What a condition compares: an index into the per-exec values.
pub const FF_PID: u8 = 0;
pub const FF_PPID: u8 = 1;
pub const FF_UID: u8 = 2;
pub const FF_EUID: u8 = 3;
pub const FF_SUID: u8 = 4;
pub const FF_FSUID: u8 = 5;
pub const FF_GID: u8 = 6;
pub const FF_EGID: u8 = 7;
pub const FF_SGID: u8 = 8;
pub const FF_FSGID: u8 = 9;
pub const FF_LOGINUID: u8 = 10;
pub const FF_LOGINUID_SET: u8 = 11;
pub const FF_SESSIONID: u8 = 12;
pub const FF_PERS: u8 = 13;
pub const FF_ARCH: u8 = 14;
pub const FF_EXIT: u8 = 15;
/// 1 for a successful exec, 0 otherwise.
pub const FF_SUCCESS: u8 = 16;
pub const FF_A0: u8 = 17;
pub const FF_A1: u8 = 18;
pub const FF_A2: u8 = 19;
pub const FF_A3: u8 = 20;
/// Values per exec.
pub const FILTER_VALUES: usize = 21;
/// A watched object (`path=`, `exe=`) or tree (`dir=`): `value` is its slot in the watch maps'
/// bitmaps, `op` the kind (`WATCH_*`).
pub const FF_WATCH: u8 = 32;
/// `path=`: the exec's objects themselves.
pub const WATCH_PATH: u8 = 0;
/// `exe=`: as `path=`, but a failed exec's is the caller's program, which is seen.
pub const WATCH_EXE: u8 = 1;
/// `dir=`: the objects or a directory above them.
pub const WATCH_TREE: u8 = 2;
/// `-C left op right`: `value` is `left << 8 | right`, field indexes.
pub const FF_COMPARE: u8 = 33;
/// A condition the kernel side cannot judge: "may hold".
pub const FF_MAYBE: u8 = 34;

/// `audit_comparator()`'s operators.
pub const OP_EQ: u8 = 0;
pub const OP_NE: u8 = 1;
pub const OP_LT: u8 = 2;
pub const OP_GT: u8 = 3;
pub const OP_LE: u8 = 4;
pub const OP_GE: u8 = 5;
pub const OP_BITMASK: u8 = 6;
pub const OP_BITTEST: u8 = 7;

pub const ACTION_ALWAYS: u8 = 0;
pub const ACTION_NEVER: u8 = 1;

/// `FilterRule::syscalls` bits: which exec syscalls of which architecture the rule names.
pub const SYS_EXECVE_64: u8 = 1;
pub const SYS_EXECVEAT_64: u8 = 2;
pub const SYS_EXECVE_32: u8 = 4;
pub const SYS_EXECVEAT_32: u8 = 8;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterCond {
    pub field: u8,
    pub op: u8,
    /// `!=` on a watch: the condition holds when the object is not the watched one.
    pub negate: u8,
    pub _pad: [u8; 5],
    pub value: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterRule {
    pub action: u8,
    pub syscalls: u8,
    pub nconds: u8,
    pub _pad: [u8; 5],
    pub conds: [FilterCond; FILTER_CONDS_MAX],
}

/// The filter's state, one value of `FILTER_CONF`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterConf {
    /// 0: no rules, every exec is sent as it happens; 1: the banks decide.
    pub mode: u32,
    /// The sensor's own mount namespace: an unselected exec elsewhere is told to the agent, which
    /// watches a container's own libraries.
    pub own_mnt_ns: u32,
    /// `(switch_ns << 1) | bank`: execs that entered at or after `switch_ns` (CLOCK_MONOTONIC)
    /// are judged by `bank`, earlier ones by the other. One word, written at once.
    pub switch: u64,
    /// Rules in each bank.
    pub nrules: [u32; 2],
    /// Per bank, 1 when a rule has a tree (`dir=`): the objects' directories are then walked.
    pub trees: [u32; 2],
    /// Per bank, 1 when the watch maps could not take every object: every watch may hold.
    pub doubt: [u32; 2],
}

/// A watched object: `(dev, ino)` with the kernel's `dev_t` encoding (`MKDEV`: major << 20).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WatchInode {
    pub ino: u64,
    pub dev: u32,
    pub _pad: u32,
}

/// Bytes of a name kept in [`WatchName`]: longer names share a key with those they start like,
/// which only ever sends more.
pub const WATCH_NAME_PREFIX: usize = 32;

/// A watched path by its directory and last component, so that a file just put at that path
/// (a package upgrade renames a new file over the old) is matched before the agent has looked
/// up its inode.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WatchName {
    pub dir_ino: u64,
    pub dir_dev: u32,
    pub len: u32,
    pub name: [u8; WATCH_NAME_PREFIX],
}

/// Words of a slot bitmap: 256 slots.
pub const SLOT_WORDS: usize = 4;
/// A bitmap of watch slots.
pub type Slots = [u64; SLOT_WORDS];
/// Bitmaps of watch slots per bank, the value of both watch maps.
pub type WatchSlots = [Slots; 2];
/// Entries of each watch map.
pub const WATCH_MAX: u32 = 4096;

/// An exec no rule selected, outside the sensor's mount namespace: its libraries may need
/// watching (a container's own libpam). At most a few per namespace and second.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecUnselected {
    pub hdr: crate::Header,
    pub mnt_ns: u32,
    pub _pad: u32,
}
