//! An exec's entry: the name as passed, the caller's argument registers, real uid and
//! capability sets, recorded in `ENTERED` (and `PENDING_ENTER` with rules) for the programs
//! after it. With the tracepoints probe set, where the kernel has `sched_prepare_exec` (6.10
//! on), it is taken there, and at the exit for an exec refused before it; else at the
//! `syscalls:sys_enter_execve(at)` tracepoints. A `syscalls:sys_enter_*` tracepoint puts the
//! kernel's perf hook on the entry of every syscall of the host (measured: 36 ns a `getppid()`).
//!
//! 32-bit syscalls record no entry here: `sched_process_exec` sends theirs (`exec.rs`).

use aya_ebpf::{
    helpers::generated::{bpf_probe_read_kernel_str, bpf_probe_read_user_str, bpf_task_pt_regs},
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use sensor_common::{syscalls::x86_64, FILENAME_MAX, KIND_EXEC_ENTER};

use crate::{
    exec_state::{read_caps, send_enter, ENTERED, NAME_RETRY, PENDING, PENDING_ENTER, SENT},
    filter,
    kernel::{current_task, header, load, off, read, syscall_args, tp_field},
    maps::SCRATCH_ENTER,
};

/// 1 where the kernel has `sched_prepare_exec` (set at load): only then may a failed exec reach
/// its exit with no entry recorded. Where it is 0, `sys_exit` is what it was before the entry
/// moved (see [`at_exit`]).
#[no_mangle]
static EXEC_ENTRY_AT_EXIT: u32 = 0;

/// Whether `sys_exit` enters the execs refused before `sched_prepare_exec` and tells an exec
/// by the low 32 bits of its syscall number. A constant to the verifier, which walks neither
/// where it is false: `sys_exit` is verified near the kernel's limit of a million instructions
/// (827 000 on 6.18 with it, 971 000 with `--ebpf-log`), and Debian's 6.1, whose verifier
/// prunes less, refused it with them (E2BIG).
#[inline(always)]
pub(crate) fn at_exit() -> bool {
    // SAFETY: a global the agent sets before load; volatile, so the zero is not folded in.
    unsafe { core::ptr::read_volatile(&EXEC_ENTRY_AT_EXIT) != 0 }
}

/// The bits of a syscall number `sys_exit` compares: the low 32 where [`at_exit`], else all.
/// It reads the flag itself rather than through [`at_exit`]: a bool made by a compare is a
/// branch in BPF, the branch this mask is there to avoid.
#[inline(always)]
pub(crate) fn nr_mask() -> u64 {
    // SAFETY: as in `at_exit`.
    let flag = unsafe { core::ptr::read_volatile(&EXEC_ENTRY_AT_EXIT) } as u64;
    u64::MAX >> (32 * flag)
}

/// x86 `thread_info.status`: the task is in a 32-bit syscall, or runs a 32-bit image.
pub(crate) const TS_COMPAT: u32 = 0x0002;
const ENOSYS: i64 = 38;

/// Where an entry's name is read from.
#[derive(Clone, Copy)]
enum Name {
    /// The caller's memory.
    User(u64),
    /// The kernel's own copy (`bprm->filename`).
    Kernel(u64),
}

/// The exec's entry where the kernel has `sched_prepare_exec` and the tracepoints are the probe
/// set: before the point of no return, where the caller's registers, memory map and credentials
/// are still those of the syscall. The name of an execve is the kernel's own copy of it, which
/// another thread cannot change as the exec goes on; an execveat's is read from the caller's
/// memory (the kernel's may be `/dev/fd/N/name`), as at a syscall tracepoint.
#[btf_tracepoint(function = "sched_prepare_exec")]
pub fn sched_prepare_exec(ctx: BtfTracePointContext) -> i32 {
    let task = current_task();
    // A 32-bit syscall is entered at `sched_process_exec`, as with the syscall tracepoints. A
    // usermode helper's `kernel_execve()` is no syscall: its registers were zeroed when its
    // thread was made, so its syscall number is not an exec's.
    if load::<u32>(task, off!(task_ti_status)) & TS_COMPAT != 0 {
        return 0;
    }
    // SAFETY: the helper takes the BTF-typed current task and returns its user registers.
    let regs = unsafe { bpf_task_pt_regs(task as *mut _) } as u64;
    // The kernel runs a syscall by the low 32 bits of its number.
    let nr = load::<u64>(regs, off!(regs_orig_ax)) as u32;
    let args = syscall_args(regs);
    if nr == x86_64::EXECVE {
        let bprm: u64 = ctx.arg(1);
        enter(args, nr, Name::Kernel(load(bprm, off!(bprm_filename))));
    } else if nr == x86_64::EXECVEAT {
        enter(args, nr, Name::User(args[1]));
    }
    0
}

/// A 64-bit execve or execveat (`nr`, the low 32 bits) that failed: entered at its exit, where
/// the registers, memory and credentials are still the caller's, unless an entry was recorded
/// already (by the syscall tracepoints where the kernel lacks `sched_prepare_exec`, or by it,
/// for an exec that failed past it), or unless the syscall may never have run.
#[inline(always)]
pub(crate) fn enter_failed(nr: u32, ret: i64, regs: u64) {
    if ret >= 0
        || ENTERED
            .get_ptr(&(aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32))
            .is_some()
    {
        return;
    }
    let task = current_task();
    if load::<u32>(task, off!(task_ti_status)) & TS_COMPAT != 0 || !syscall_ran(task, nr, ret) {
        return;
    }
    let args = syscall_args(regs);
    let name = if nr == x86_64::EXECVE {
        args[0]
    } else {
        args[1]
    };
    enter(args, nr, Name::User(name));
}

/// Whether syscall `nr`, exiting with `ret`, certainly ran. The kernel checks ptrace and seccomp
/// before a syscall and its audit entry, and a syscall they refuse still passes the exit:
/// auditd writes nothing for it, and neither must the sensor. One a tracer skipped returns
/// -ENOSYS, which no exec returns. Seccomp's filters may refuse it with any error; where their
/// cache (`seccomp_filter.cache.allow_native`, 5.11 on, each filter's bitmap the AND of its
/// own and those before it) says they allow `nr` whatever its arguments, as a container
/// runtime's default profile does for execve, they did not refuse it. Where it does not, the
/// exec is left out: a filter that refuses execve is the likelier reason.
#[inline(always)]
fn syscall_ran(task: u64, nr: u32, ret: i64) -> bool {
    if ret == -ENOSYS {
        return false;
    }
    let at = off!(task_seccomp_filter);
    if at == 0 {
        // A kernel without seccomp filters.
        return true;
    }
    let filter: u64 = read(task, at);
    if filter == 0 {
        return true;
    }
    let cache = off!(seccomp_filter_allow_native);
    if cache == 0 {
        return false;
    }
    let word: u64 = read(filter, cache + (nr as u64 / 64) * 8);
    (word >> (nr % 64)) & 1 != 0
}

#[tracepoint]
pub fn sys_enter_execve(ctx: TracePointContext) -> u32 {
    let args = tp_args::<3>(&ctx);
    enter(args, x86_64::EXECVE, Name::User(args[0]));
    0
}

#[tracepoint]
pub fn sys_enter_execveat(ctx: TracePointContext) -> u32 {
    let args = tp_args::<5>(&ctx);
    enter(args, x86_64::EXECVEAT, Name::User(args[1]));
    0
}

/// A `syscalls:sys_enter_*` record's `NARGS` arguments: the record holds no more, and the
/// verifier bounds a context load by the largest record, not by this one's size.
#[inline(always)]
fn tp_args<const NARGS: usize>(ctx: &TracePointContext) -> [u64; 6] {
    let mut regs = [0; 6];
    for (i, reg) in regs.iter_mut().enumerate().take(NARGS) {
        // Syscall tracepoint records: 8 bytes of common fields, the syscall number, then args.
        *reg = tp_field(ctx, 16 + 8 * i);
    }
    regs
}

/// Records the entry of exec syscall `nr` with the argument registers `regs`: sent now, or held
/// for the rules' decision. A name the caller's memory did not give (a page not faulted in
/// yet) is read again at the exit of a failed exec (`NAME_RETRY`).
#[inline(always)]
fn enter(regs: [u64; 6], nr: u32, name: Name) {
    let Some(e) = SCRATCH_ENTER.get_ptr_mut(0) else {
        return;
    };
    let e = unsafe { &mut *e };
    e.hdr = header(KIND_EXEC_ENTER);
    e.syscall_nr = nr;
    e.compat = 0;
    e.regs = regs;
    let cred: u64 = load(current_task(), off!(task_cred));
    e.old_uid = load(cred, off!(cred_uid));
    e.old_caps = read_caps(cred);
    let buf = e.filename.as_mut_ptr() as *mut _;
    let n = match name {
        Name::User(p) => unsafe {
            bpf_probe_read_user_str(buf, FILENAME_MAX as u32, p as *const _)
        },
        Name::Kernel(p) => unsafe {
            bpf_probe_read_kernel_str(buf, FILENAME_MAX as u32, p as *const _)
        },
    };
    if let (true, Name::User(p)) = (n < 0, name) {
        let _ = NAME_RETRY.insert(&e.hdr.tid, &p, 0);
    }
    // The helper counts the NUL; the event does not.
    e.filename_len = if n > 0 { (n - 1) as i32 } else { n as i32 };
    if filter::active() && PENDING_ENTER.insert(&e.hdr.tid, e, 0).is_ok() {
        let _ = ENTERED.insert(&e.hdr.tid, &PENDING, 0);
    } else {
        let _ = ENTERED.insert(&e.hdr.tid, &SENT, 0);
        send_enter(e);
    }
}
