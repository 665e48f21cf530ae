//! The exit list's decision for an exec, in the kernel (`--rules`): an exec no rule selects
//! leaves nothing but a counter behind. Conservative by design (see `sensor_common::filter`):
//! each condition holds, fails, or "may hold" where the kernel side cannot judge it; the first
//! rule that does not fail decides, and only a certain failure of every rule, or a certain `never`
//! before any doubt, leaves the exec out. The agent judges every exec it receives exactly.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::bpf_loop,
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray},
};
use sensor_common::{
    filter::{
        ExecUnselected, FilterCond, FilterConf, FilterRule, ACTION_NEVER, FF_A0, FF_A1, FF_A2,
        FF_A3, FF_ARCH, FF_COMPARE, FF_EGID, FF_EUID, FF_EXIT, FF_FSGID, FF_FSUID, FF_GID,
        FF_LOGINUID, FF_LOGINUID_SET, FF_PERS, FF_PID, FF_PPID, FF_SESSIONID, FF_SGID, FF_SUCCESS,
        FF_SUID, FF_UID, FF_WATCH, FILTER_CONDS_MAX, FILTER_RULES_MAX, FILTER_VALUES, OP_BITMASK,
        OP_BITTEST, OP_EQ, OP_GE, OP_GT, OP_LE, OP_LT, OP_NE, SYS_EXECVEAT_32, SYS_EXECVEAT_64,
        SYS_EXECVE_32, SYS_EXECVE_64, WATCH_EXE, WATCH_TREE,
    },
    Header, CTR_EXEC_UNSELECTED, CTR_RINGBUF_FULL, KIND_EXEC_UNSELECTED,
};

use crate::{
    kernel::{off, read},
    maps::{count, EVENTS},
    watched::{add_file, interpreter, Found},
};

#[map]
pub static FILTER_CONF: Array<FilterConf> = Array::with_max_entries(1, 0);
/// Bank `b`'s rule `i` at `b * FILTER_RULES_MAX + i`.
#[map]
static FILTER_RULES: Array<FilterRule> = Array::with_max_entries(2 * FILTER_RULES_MAX, 0);
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
    let b = bank & 1;
    let trees = conf.trees[b] != 0;
    let mut found = Found::default();
    let mm: u64 = read(x.task, off!(task_mm));
    add_file(read(mm, off!(mm_exe_file)), b, trees, &mut found);
    // The objects of a successful exec's PATH items the kernel side sees: the program and its
    // ELF interpreter. A script's own, or a failed exec's item, it does not.
    let mut seen = !x.interpreted && conf.doubt[b] == 0;
    if success {
        match interpreter(x.task) {
            Some(file) => add_file(file, b, trees, &mut found),
            None => seen = false,
        }
    }
    let bit = match (x.compat, x.execveat) {
        (false, false) => SYS_EXECVE_64,
        (false, true) => SYS_EXECVEAT_64,
        (true, false) => SYS_EXECVE_32,
        (true, true) => SYS_EXECVEAT_32,
    };
    let mut walk = Walk {
        base: b as u32 * FILTER_RULES_MAX,
        bit,
        verdict: NONE_YET,
        objects_seen: (success && seen) as u8,
        caller_seen: (!success && conf.doubt[b] == 0) as u8,
        _pad: 0,
        found,
    };
    let n = conf.nrules[b].min(FILTER_RULES_MAX);
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
    /// A successful exec whose every PATH item's object was seen.
    objects_seen: u8,
    /// A failed exec, whose program (the caller's, for `exe=`) was seen.
    caller_seen: u8,
    _pad: u64,
    found: Found,
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
            let slot = (c.value & 0xff) as usize;
            let (word, bit) = (slot >> 6, 1u64 << (slot & 63));
            let (bits, seen) = match c.op {
                WATCH_TREE => (&w.found.tree, w.objects_seen != 0),
                WATCH_EXE => (&w.found.own, w.objects_seen != 0 || w.caller_seen != 0),
                _ => (&w.found.own, w.objects_seen != 0),
            };
            let r = if bits[word & 3] & bit != 0 {
                HOLDS
            } else if seen {
                FAILS
            } else {
                MAYBE
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
    if EVENTS.output(&ev, crate::maps::wake()).is_err() {
        count(CTR_RINGBUF_FULL);
    }
}
