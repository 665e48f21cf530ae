//! The exit list's decision for an exec, in the kernel (`--rules`): an exec no rule selects
//! leaves nothing but a counter behind. Conservative by design (see `sensor_common::filter`):
//! each condition holds, fails, or "may hold" where the kernel side cannot judge it; the first
//! rule that does not fail decides, and only a certain failure of every rule, or a certain `never`
//! before any doubt, leaves the exec out. The agent judges every exec it receives exactly.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{bpf_loop, bpf_probe_read_kernel_str},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray},
};
use sensor_common::{
    filter::{
        ExecUnselected, FilterCond, FilterConf, FilterRule, WatchInode, WatchName, WatchSlots,
        ACTION_NEVER, FF_A0, FF_A1, FF_A2, FF_A3, FF_ARCH, FF_COMPARE, FF_EGID, FF_EUID, FF_EXIT,
        FF_FSGID, FF_FSUID, FF_GID, FF_LOGINUID, FF_LOGINUID_SET, FF_PERS, FF_PID, FF_PPID,
        FF_SESSIONID, FF_SGID, FF_SUCCESS, FF_SUID, FF_UID, FF_WATCH, FILTER_CONDS_MAX,
        FILTER_RULES_MAX, FILTER_VALUES, OP_BITMASK, OP_BITTEST, OP_EQ, OP_GE, OP_GT, OP_LE, OP_LT,
        OP_NE, SYS_EXECVEAT_32, SYS_EXECVEAT_64, SYS_EXECVE_32, SYS_EXECVE_64, WATCH_MAX,
        WATCH_NAME_PREFIX,
    },
    Header, CTR_EXEC_UNSELECTED, CTR_RINGBUF_FULL, KIND_EXEC_UNSELECTED,
};

use crate::{
    kernel::{off, read},
    maps::{count, EVENTS},
};

#[map]
pub static FILTER_CONF: Array<FilterConf> = Array::with_max_entries(1, 0);
/// Bank `b`'s rule `i` at `b * FILTER_RULES_MAX + i`.
#[map]
static FILTER_RULES: Array<FilterRule> = Array::with_max_entries(2 * FILTER_RULES_MAX, 0);
/// Watched objects, by inode, the ones a path held in the last seconds included.
#[map]
static WATCH_INODES: HashMap<WatchInode, WatchSlots> = HashMap::with_max_entries(WATCH_MAX, 0);
/// Watched paths, by directory and name.
#[map]
static WATCH_NAMES: HashMap<WatchName, WatchSlots> = HashMap::with_max_entries(WATCH_MAX, 0);
/// Per mount namespace: the second (CLOCK_MONOTONIC) an unselected exec was last told in, and how
/// many were told in it.
#[map]
static TOLD: LruHashMap<u32, [u64; 2]> = LruHashMap::with_max_entries(1024, 0);
/// Unselected execs told per mount namespace and second, as the agent asks for them.
const TOLD_PER_SECOND: u64 = 8;

/// The per-exec values conditions compare, indexed by `FF_*`.
#[map]
static SCRATCH_VALUES: PerCpuArray<[u64; FILTER_VALUES]> = PerCpuArray::with_max_entries(1, 0);

/// Whether rules are loaded: the exec programs then hold entries back for the decision.
#[inline(always)]
pub fn active() -> bool {
    FILTER_CONF.get(0).is_some_and(|c| c.mode != 0)
}

/// An exec as the rules judge it.
pub struct Exec<'a> {
    pub task: u64,
    /// When it entered (CLOCK_MONOTONIC): which bank judges it.
    pub entered_ns: u64,
    pub compat: bool,
    pub execveat: bool,
    pub ret: i64,
    pub regs: &'a [u64; 6],
    /// A `#!` script: its own inode is a PATH item the kernel side does not see.
    pub interpreted: bool,
}

const FAILS: u8 = 0;
const HOLDS: u8 = 1;
const MAYBE: u8 = 2;

/// Whether the exec may be selected; counts it when it certainly is not.
#[inline(always)]
pub fn selects(x: &Exec) -> bool {
    let Some(conf) = FILTER_CONF.get(0) else {
        return true;
    };
    if conf.mode == 0 {
        return true;
    }
    let switch = conf.switch;
    let bank = if x.entered_ns >= switch >> 1 {
        (switch & 1) as usize
    } else {
        (!switch & 1) as usize
    };
    let Some(vals) = SCRATCH_VALUES.get_ptr_mut(0) else {
        return true;
    };
    let vals = unsafe { &mut *vals };
    fill(vals, x);
    let success = x.ret == 0;
    let watched = watch_slots(x.task, bank);
    let interp = conf.interp_slots[bank & 1];
    // A path watch: the exec's PATH items are the program, for a script the script, and the
    // ELF interpreter; only the program is seen here. A failed exec's item is unseen.
    let path_doubt = if !success || x.interpreted {
        u64::MAX
    } else {
        interp
    };
    // `exe=`: the task's program, matched as the agent does on a successful exec's items too.
    let exe_doubt = if success && x.interpreted {
        u64::MAX
    } else if success {
        interp
    } else {
        0
    };
    let bit = match (x.compat, x.execveat) {
        (false, false) => SYS_EXECVE_64,
        (false, true) => SYS_EXECVEAT_64,
        (true, false) => SYS_EXECVE_32,
        (true, true) => SYS_EXECVEAT_32,
    };
    let mut walk = Walk {
        base: (bank as u32 & 1) * FILTER_RULES_MAX,
        bit,
        verdict: NONE_YET,
        _pad: [0; 2],
        watched,
        path_doubt,
        exe_doubt,
    };
    let n = conf.nrules[bank & 1].min(FILTER_RULES_MAX);
    // A helper-driven loop: the verifier checks `judge` once, not once per rule.
    let walked = unsafe {
        bpf_loop(
            n,
            judge as *mut c_void,
            &mut walk as *mut Walk as *mut c_void,
            0,
        )
    };
    if walked < 0 || walk.verdict == SEND {
        return true;
    }
    count(CTR_EXEC_UNSELECTED);
    false
}

/// The rule walk's state, shared with [`judge`].
#[repr(C)]
struct Walk {
    base: u32,
    bit: u8,
    verdict: u8,
    _pad: [u8; 2],
    watched: u64,
    path_doubt: u64,
    exe_doubt: u64,
}

/// `Walk::verdict`: every rule so far certainly fails; one may select; a `never` certainly
/// matched first.
const NONE_YET: u8 = 0;
const SEND: u8 = 1;
const LEAVE_OUT: u8 = 2;

/// Rule `i` of the walk: 0 to go on to the next rule, 1 when the walk is decided.
extern "C" fn judge(i: u64, ctx: *mut c_void) -> i64 {
    let w = unsafe { &mut *(ctx as *mut Walk) };
    let (Some(rule), Some(vals)) = (
        FILTER_RULES.get(w.base + (i as u32 & (FILTER_RULES_MAX - 1))),
        SCRATCH_VALUES.get(0),
    ) else {
        w.verdict = SEND;
        return 1;
    };
    if rule.syscalls & w.bit == 0 {
        return 0;
    }
    let mut verdict = HOLDS;
    for j in 0..FILTER_CONDS_MAX {
        if j >= rule.nconds as usize {
            break;
        }
        let r = cond(&rule.conds[j], vals, w);
        if r == FAILS {
            return 0;
        }
        if r == MAYBE {
            verdict = MAYBE;
        }
    }
    w.verdict = if verdict == HOLDS && rule.action == ACTION_NEVER {
        LEAVE_OUT
    } else {
        SEND
    };
    1
}

#[inline(always)]
fn cond(c: &FilterCond, vals: &[u64; FILTER_VALUES], w: &Walk) -> u8 {
    match c.field {
        FF_WATCH => {
            let slot = 1u64 << (c.value & 63);
            let doubt = if c.op == 0 { w.path_doubt } else { w.exe_doubt };
            let r = if w.watched & slot != 0 {
                HOLDS
            } else if doubt & slot != 0 {
                MAYBE
            } else {
                FAILS
            };
            match (c.negate, r) {
                (0, r) => r,
                (_, HOLDS) => FAILS,
                (_, FAILS) => HOLDS,
                (_, r) => r,
            }
        }
        FF_COMPARE => match (value(vals, c.value >> 8), value(vals, c.value)) {
            (Some(l), Some(r)) => tri(compare(c.op, l, r)),
            _ => MAYBE,
        },
        f if f < FF_WATCH => match value(vals, f as u64) {
            Some(l) => tri(compare(c.op, l & 0xffff_ffff, c.value)),
            None => MAYBE,
        },
        // FF_MAYBE, and anything this program does not know.
        _ => MAYBE,
    }
}

/// The value of field `index` (its low byte), if there is such a field.
#[inline(always)]
fn value(vals: &[u64; FILTER_VALUES], index: u64) -> Option<u64> {
    let i = (index & 0x1f) as usize;
    if i < FILTER_VALUES {
        Some(vals[i])
    } else {
        None
    }
}

#[inline(always)]
fn tri(b: bool) -> u8 {
    if b {
        HOLDS
    } else {
        FAILS
    }
}

/// `audit_comparator()`.
#[inline(always)]
fn compare(op: u8, l: u64, r: u64) -> bool {
    match op {
        OP_EQ => l == r,
        OP_NE => l != r,
        OP_LT => l < r,
        OP_GT => l > r,
        OP_LE => l <= r,
        OP_GE => l >= r,
        OP_BITMASK => l & r != 0,
        OP_BITTEST => l & r == r,
        _ => false,
    }
}

#[inline(always)]
fn fill(v: &mut [u64; FILTER_VALUES], x: &Exec) {
    let t = x.task;
    let parent: u64 = read(t, off!(task_real_parent));
    let cred: u64 = read(t, off!(task_cred));
    let id = |o: u64| read::<u32>(cred, o) as u64;
    let auid: u32 = read(t, off!(task_loginuid));
    v[FF_PID as usize] = read::<u32>(t, off!(task_tgid)) as u64;
    v[FF_PPID as usize] = read::<u32>(parent, off!(task_tgid)) as u64;
    v[FF_UID as usize] = id(off!(cred_uid));
    v[FF_EUID as usize] = id(off!(cred_euid));
    v[FF_SUID as usize] = id(off!(cred_suid));
    v[FF_FSUID as usize] = id(off!(cred_fsuid));
    v[FF_GID as usize] = id(off!(cred_gid));
    v[FF_EGID as usize] = id(off!(cred_egid));
    v[FF_SGID as usize] = id(off!(cred_sgid));
    v[FF_FSGID as usize] = id(off!(cred_fsgid));
    v[FF_LOGINUID as usize] = auid as u64;
    v[FF_LOGINUID_SET as usize] = (auid != u32::MAX) as u64;
    v[FF_SESSIONID as usize] = read::<u32>(t, off!(task_sessionid)) as u64;
    v[FF_PERS as usize] = read::<u32>(t, off!(task_personality)) as u64;
    v[FF_ARCH as usize] = if x.compat { 0x4000_0003 } else { 0xc000_003e };
    v[FF_EXIT as usize] = x.ret as u64;
    v[FF_SUCCESS as usize] = (x.ret == 0) as u64;
    v[FF_A0 as usize] = x.regs[0];
    v[FF_A1 as usize] = x.regs[1];
    v[FF_A2 as usize] = x.regs[2];
    v[FF_A3 as usize] = x.regs[3];
}

/// The watch slots the task's program is in: by inode, or by its directory and name (a name
/// longer than the key's prefix shares its key with others: more is sent, never less).
#[inline(always)]
fn watch_slots(task: u64, bank: usize) -> u64 {
    let mm: u64 = read(task, off!(task_mm));
    let exe: u64 = read(mm, off!(mm_exe_file));
    if exe == 0 {
        return 0;
    }
    let inode: u64 = read(exe, off!(file_f_inode));
    let sb: u64 = read(inode, off!(inode_sb));
    let key = WatchInode {
        ino: read(inode, off!(inode_ino)),
        dev: read(sb, off!(sb_dev)),
        _pad: 0,
    };
    let slots = unsafe { WATCH_INODES.get(&key) }.map_or(0, |s| s[bank & 1]);
    let dentry: u64 = read(exe, off!(file_f_path) + off!(path_dentry));
    let parent: u64 = read(dentry, off!(dentry_parent));
    let dir: u64 = read(parent, off!(dentry_inode));
    let dir_sb: u64 = read(dir, off!(inode_sb));
    let mut name = WatchName {
        dir_ino: read(dir, off!(inode_ino)),
        dir_dev: read(dir_sb, off!(sb_dev)),
        len: read(dentry, off!(dentry_name) + 4),
        name: [0; WATCH_NAME_PREFIX],
    };
    let ptr: u64 = read(dentry, off!(dentry_name) + off!(qstr_name));
    let mut buf = [0u8; WATCH_NAME_PREFIX + 1];
    unsafe {
        bpf_probe_read_kernel_str(
            buf.as_mut_ptr() as *mut _,
            buf.len() as u32,
            ptr as *const _,
        )
    };
    name.name.copy_from_slice(&buf[..WATCH_NAME_PREFIX]);
    slots | unsafe { WATCH_NAMES.get(&name) }.map_or(0, |s| s[bank & 1])
}

/// Tells the agent of an exec the rules left out in another mount namespace than its own, a few
/// per namespace and second: a container's first execs, whose libraries it watches.
#[inline(always)]
pub fn tell_unselected(hdr: Header, mnt_ns: u32) {
    let Some(conf) = FILTER_CONF.get(0) else {
        return;
    };
    if mnt_ns == conf.own_mnt_ns {
        return;
    }
    let second = hdr.mono_ns / 1_000_000_000;
    match TOLD.get_ptr_mut(&mnt_ns) {
        Some(t) => {
            let t = unsafe { &mut *t };
            if t[0] != second {
                *t = [second, 0];
            }
            if t[1] >= TOLD_PER_SECOND {
                return;
            }
            t[1] += 1;
        }
        None => {
            let _ = TOLD.insert(&mnt_ns, &[second, 1], 0);
        }
    }
    let ev = ExecUnselected {
        hdr: Header {
            kind: KIND_EXEC_UNSELECTED,
            ..hdr
        },
        mnt_ns,
        _pad: 0,
    };
    if EVENTS.output(&ev, 0).is_err() {
        count(CTR_RINGBUF_FULL);
    }
}
