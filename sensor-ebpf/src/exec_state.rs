//! Where an exec's records stand between its programs: the threads inside an exec, the entries
//! held for the rules' decision, and the sending of an entry.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap},
};
use sensor_common::{syscalls::x86_64, Caps, ExecEnter, CTR_EXEC_ENTRY_LOST, EXEC_ENTER_FIXED};

use crate::{
    filter::{self, Exec},
    kernel::{load, off},
    maps::{count, output_prefix},
};

/// Name pointers whose read failed at entry, by thread: at a `syscalls:sys_enter_*`
/// tracepoint, a string literal in a page a freshly forked child has not touched yet is not
/// mapped until the kernel's own copy faults it in, and a tracepoint may not fault (at
/// `sched_prepare_exec` or at the exit the kernel has faulted it in already). At exit the page is there, and a failed exec still has
/// the caller's memory, so the name is read again. LRU: a thread that never exits is forgotten.
#[map]
pub(crate) static NAME_RETRY: LruHashMap<u32, u64> = LruHashMap::with_max_entries(1024, 0);

/// Threads inside an execve/execveat whose 64-bit entry was recorded, and where the exec's
/// records stand (`SENT`…).
#[map]
pub(crate) static ENTERED: LruHashMap<u32, u8> = LruHashMap::with_max_entries(8192, 0);

/// The entry was sent as it happened (no rules).
pub(crate) const SENT: u8 = 1;
/// The entry waits in `PENDING_ENTER` for the rules' decision.
pub(crate) const PENDING: u8 = 2;
/// Decided at `sched_process_exec`: sent, the exit follows.
pub(crate) const CHOSEN: u8 = 3;
/// Decided at `sched_process_exec`: left out, the exit too.
pub(crate) const LEFT_OUT: u8 = 4;

/// Entries held until the rules judge the exec (`--rules`). The agent sizes it: one entry when
/// no rules are loaded. Not LRU: threads parked inside execve (on a hung FUSE file, say) must
/// not push other execs' entries out; when it is full, an entry is sent as it happens and the
/// agent judges the exec.
#[map]
pub(crate) static PENDING_ENTER: HashMap<u32, ExecEnter> = HashMap::with_max_entries(1024, 0);

/// The capability sets of `cred`, a BTF-typed `struct cred` (the current task's).
#[inline(always)]
pub(crate) fn read_caps(cred: u64) -> Caps {
    Caps {
        inheritable: load_cap(cred, off!(cred_cap_inheritable)),
        permitted: load_cap(cred, off!(cred_cap_permitted)),
        effective: load_cap(cred, off!(cred_cap_effective)),
        ambient: load_cap(cred, off!(cred_cap_ambient)),
    }
}

/// A `kernel_cap_t` at `at` in `cred`, as two 32-bit loads: it is two `__u32` before 6.3 (an
/// 8-byte load across them was refused on 6.1) and one `u64` since (a load may be narrower than
/// its field). Loads, not helper reads: each read measured about 40 ns here.
#[inline(always)]
fn load_cap(cred: u64, at: u64) -> u64 {
    let low: u32 = load(cred, at);
    let high: u32 = load(cred, at + 4);
    (high as u64) << 32 | low as u64
}

/// Sends an entry.
#[inline(always)]
pub(crate) fn send_enter(e: &ExecEnter) {
    let len = if e.filename_len > 0 {
        e.filename_len as usize
    } else {
        0
    };
    output_prefix(e as *const ExecEnter, EXEC_ENTER_FIXED + len);
}

/// Sends the entry held for thread `tid`, if the rules select the exec the entry and `x`
/// describe; false when it is left out (or its entry was lost, counted).
#[inline(always)]
pub(crate) fn send_pending(tid: u32, task: u64, ret: i64, interpreted: bool) -> bool {
    let Some(e) = (unsafe { PENDING_ENTER.get(&tid) }) else {
        count(CTR_EXEC_ENTRY_LOST);
        return false;
    };
    let chosen = filter::selects(&Exec {
        task,
        entered_ns: e.hdr.mono_ns,
        compat: e.compat != 0,
        execveat: e.syscall_nr == x86_64::EXECVEAT,
        ret,
        regs: &e.regs,
        interpreted,
    });
    if chosen {
        send_enter(e);
    }
    let _ = PENDING_ENTER.remove(&tid);
    chosen
}
