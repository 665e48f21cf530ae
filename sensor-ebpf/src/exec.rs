//! execve / execveat: the name as passed and the caller's registers and credentials at entry,
//! and the new program's argument area at `sched_process_exec` (past the point of no return, so
//! only for successful execs); the exit is `exec_exit.rs`. The entry is taken at
//! `sched_prepare_exec` with the tracepoints probe set where the kernel has it (6.10 on), and
//! at the exit for an exec refused before it; else at the `syscalls:sys_enter_*` tracepoints.
//! With rules loaded (`filter.rs`) the entry waits in `PENDING_ENTER` until the exec is judged:
//! at `sched_process_exec` for a successful one, at exit otherwise; one no rule selects sends
//! nothing.
//!
//! The `syscalls:` tracepoints skip 32-bit syscalls: a 32-bit exec (`int 0x80`) passes none at
//! entry, and an exec whose new program is 32-bit passes none at exit (the task is then in a
//! 32-bit syscall). `sched_process_exec` sees every successful exec: when no entry was recorded
//! for the thread it sends one, marked compat, as far as it can still be known there; when the
//! exit tracepoint will not fire (a 32-bit new program), or would fire without its entry (a
//! 32-bit task's exec of a 64-bit program, which the kernel turns into a 64-bit execve's exit),
//! it sends the exit itself.

use aya_ebpf::{
    helpers::generated::{
        bpf_probe_read_kernel_str, bpf_probe_read_user, bpf_probe_read_user_str, bpf_task_pt_regs,
    },
    macros::{btf_tracepoint, raw_tracepoint, tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use aya_log_ebpf::warn;
use sensor_common::{
    syscalls::x86_64, ExecArgs, ExecSched, Header, ARGS_CHUNK, ARGS_MAX_CHUNKS, CTR_RINGBUF_FULL,
    EXEC_ARGS_FIXED, FILENAME_MAX, KIND_EXEC_ARGS, KIND_EXEC_ENTER, KIND_EXEC_EXIT,
    KIND_EXEC_SCHED, KIND_EXEC_UNSELECTED,
};

use crate::{
    exec_exit::send_exit,
    exec_state::{
        read_caps, send_enter, send_pending, CHOSEN, ENTERED, LEFT_OUT, NAME_RETRY, PENDING,
        PENDING_ENTER, SENT,
    },
    filter::{self, Exec},
    kernel::{current_task, header, load, off, read, syscall_args, task_ns, tp_field},
    maps::{count, output_prefix, EVENTS, SCRATCH_ARGS, SCRATCH_ENTER},
};

/// PF_KTHREAD: a kernel thread, whose `kernel_execve()` of a usermode helper is no syscall.
const PF_KTHREAD: u32 = 0x0020_0000;
/// x86 `thread_info.status`: the task is in a 32-bit syscall, or runs a 32-bit image.
const TS_COMPAT: u32 = 0x0002;

/// The exec's entry where the kernel has `sched_prepare_exec` (6.10 on) and the tracepoints are
/// the probe set: at the point of no return, where the caller's registers, memory and
/// credentials are still those of the syscall's entry. A `syscalls:sys_enter_*` tracepoint
/// would put the kernel's perf hook on the entry of every syscall of the host (measured: 36 ns
/// a `getppid()`). An exec refused before this point is entered at its exit instead
/// ([`enter_failed`]).
#[btf_tracepoint(function = "sched_prepare_exec")]
pub fn sched_prepare_exec(_ctx: BtfTracePointContext) -> i32 {
    let task = current_task();
    // A 32-bit syscall is entered at `sched_process_exec`, as with the syscall tracepoints. A
    // usermode helper's `kernel_execve()` is no syscall: its registers were zeroed when its
    // thread was made, so its syscall number is not an exec's.
    if load::<u32>(task, off!(task_ti_status)) & TS_COMPAT != 0 {
        return 0;
    }
    // SAFETY: the helper takes the BTF-typed current task and returns its user registers.
    let regs = unsafe { bpf_task_pt_regs(task as *mut _) } as u64;
    let nr: u64 = read(regs, off!(regs_orig_ax));
    if nr == x86_64::EXECVE as u64 {
        enter(syscall_args(regs), x86_64::EXECVE, 0);
    } else if nr == x86_64::EXECVEAT as u64 {
        enter(syscall_args(regs), x86_64::EXECVEAT, 1);
    }
    0
}

/// A 64-bit execve or execveat that failed before `sched_prepare_exec` (a missing file, a
/// refused one, a bad format): entered at its exit, where the registers, memory and credentials
/// are still the caller's, unless an entry was recorded already (by the syscall tracepoints
/// where the kernel lacks `sched_prepare_exec`, or by it, for an exec that failed past it).
#[inline(always)]
pub(crate) fn enter_failed(nr: u64, ret: i64, regs: u64) {
    if ret >= 0
        || unsafe { ENTERED.get(&(aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32)) }.is_some()
    {
        return;
    }
    if load::<u32>(current_task(), off!(task_ti_status)) & TS_COMPAT != 0 {
        return;
    }
    if nr == x86_64::EXECVE as u64 {
        enter(syscall_args(regs), x86_64::EXECVE, 0);
    } else {
        enter(syscall_args(regs), x86_64::EXECVEAT, 1);
    }
}

#[tracepoint]
pub fn sys_enter_execve(ctx: TracePointContext) -> u32 {
    enter(tp_args::<3>(&ctx), x86_64::EXECVE, 0);
    0
}

#[tracepoint]
pub fn sys_enter_execveat(ctx: TracePointContext) -> u32 {
    enter(tp_args::<5>(&ctx), x86_64::EXECVEAT, 1);
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

/// Records the entry of an exec with the argument registers `regs`, whose name is argument
/// `name_arg`: sent now, or held for the rules' decision.
#[inline(always)]
fn enter(regs: [u64; 6], nr: u32, name_arg: usize) {
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
    let name = e.regs[name_arg];
    let n = unsafe {
        bpf_probe_read_user_str(
            e.filename.as_mut_ptr() as *mut _,
            FILENAME_MAX as u32,
            name as *const _,
        )
    };
    if n < 0 {
        let _ = NAME_RETRY.insert(&e.hdr.tid, &name, 0);
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

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    sched(&ctx);
    0
}

#[inline(always)]
fn sched(ctx: &RawTracePointContext) {
    let old_pid: u64 = ctx.arg(1);
    let bprm: u64 = ctx.arg(2);
    let task = current_task();
    let mut hdr = header(KIND_EXEC_ARGS);
    let new_tid = hdr.tid;
    hdr.tid = old_pid as u32;

    // An exec no 64-bit entry was recorded for, by a task that is not a kernel thread's helper:
    // a 32-bit one. Its entry goes first, as for any exec.
    let state = unsafe { ENTERED.get(&hdr.tid) }.copied();
    let entered = state.is_some();
    if !entered && kernel_helper(task) {
        return;
    }
    let filename: u64 = read(bprm, off!(bprm_filename));
    let interp: u64 = read(bprm, off!(bprm_interp));
    let interpreted = filename != interp;
    let chosen = match state {
        None => {
            let x = Exec {
                task,
                entered_ns: hdr.mono_ns,
                compat: true,
                execveat: false,
                ret: 0,
                regs: &[0; 6],
                interpreted,
            };
            filter::selects(&x) && send_compat_enter(hdr, bprm)
        }
        Some(PENDING) => send_pending(hdr.tid, task, 0, interpreted),
        Some(_) => true,
    };
    // The new image is 32-bit: the exit tracepoint will not see this exec's exit.
    let image32 = load::<u32>(task, off!(task_ti_status)) & TS_COMPAT != 0;
    let exit_here = !entered || image32;
    if entered {
        let next = if chosen { CHOSEN } else { LEFT_OUT };
        // The usual case (the same id, a 64-bit image): the state changes in place. An LRU
        // map's update takes a fresh element and frees the old one, which measured a fifth of
        // this program's time. Looked up again just before the write; the lookup marks the
        // element referenced, so the map's eviction, which takes unreferenced ones first, is
        // all but sure to leave it this thread's for the write.
        let in_place = match hdr.tid == new_tid && !image32 {
            true => ENTERED.get_ptr_mut(&hdr.tid),
            false => None,
        };
        match in_place {
            Some(slot) => unsafe { slot.write_volatile(next) },
            // A thread other than the leader took over the leader's id (`de_thread()`): its
            // exit comes under the new id. A 32-bit image: its exit is sent here. Or the LRU
            // pushed the state out since the lookup above: it is put back.
            None => {
                let _ = ENTERED.remove(&hdr.tid);
                if !image32 {
                    let _ = ENTERED.insert(&new_tid, &next, 0);
                }
            }
        }
    }
    if hdr.tid != new_tid {
        let _ = NAME_RETRY.remove(&hdr.tid);
    }
    if !chosen {
        filter::tell_unselected(header(KIND_EXEC_UNSELECTED), task_ns(task).mnt_ns);
        return;
    }
    let mm: u64 = load(task, off!(task_mm));
    let start: u64 = load(mm, off!(mm_arg_start));
    let end: u64 = load(mm, off!(mm_arg_end));
    let total = end.saturating_sub(start);
    let copied = send_args(hdr, start, total);

    let Some(mut entry) = EVENTS.reserve::<ExecSched>(0) else {
        count(CTR_RINGBUF_FULL);
        warn!(
            ctx,
            "exec by tid {}: sched record dropped, ring buffer full", new_tid
        );
        return;
    };
    let s = unsafe { &mut *entry.as_mut_ptr() };
    s.hdr = hdr;
    s.hdr.kind = KIND_EXEC_SCHED;
    s.new_tid = new_tid;
    s.argc = read::<i32>(bprm, off!(bprm_argc)) as u32;
    s.args_total = total;
    s.args_missing = total - copied;
    s.interpreted = interpreted as u32;
    let n = unsafe {
        bpf_probe_read_kernel_str(
            s.interp.as_mut_ptr() as *mut _,
            s.interp.len() as u32,
            interp as *const _,
        )
    };
    s.interp_len = if n > 0 { (n - 1) as i32 } else { n as i32 };
    entry.submit(crate::maps::wake());
    if exit_here {
        send_exit(header(KIND_EXEC_EXIT), 0);
    }
}

/// Whether the exec'ing task was started by a kernel thread (a usermode helper: modprobe,
/// a core dump pipe), whose exec is `kernel_execve()`, no syscall, which auditd does not log.
#[inline(always)]
fn kernel_helper(task: u64) -> bool {
    let parent: u64 = load(task, off!(task_real_parent));
    load::<u32>(parent, off!(task_flags)) & PF_KTHREAD != 0
}

/// The entry of a 32-bit exec, as `sched_process_exec` can tell it: i386's execve, the name the
/// kernel opened (`bprm->filename`), no registers, the credentials after for those before.
/// Always true: the exec goes on to be sent.
#[inline(always)]
fn send_compat_enter(hdr: Header, bprm: u64) -> bool {
    let Some(e) = SCRATCH_ENTER.get_ptr_mut(0) else {
        return true;
    };
    let e = unsafe { &mut *e };
    e.hdr = hdr;
    e.hdr.kind = KIND_EXEC_ENTER;
    e.syscall_nr = sensor_common::syscalls::i386::EXECVE;
    e.compat = 1;
    e.regs = [0; 6];
    let cred: u64 = read(current_task(), off!(task_cred));
    e.old_uid = read(cred, off!(cred_uid));
    e.old_caps = read_caps(cred);
    let filename: u64 = read(bprm, off!(bprm_filename));
    let n = unsafe {
        bpf_probe_read_kernel_str(
            e.filename.as_mut_ptr() as *mut _,
            FILENAME_MAX as u32,
            filename as *const _,
        )
    };
    e.filename_len = if n > 0 { (n - 1) as i32 } else { n as i32 };
    send_enter(e);
    true
}

/// Copies the argument area in chunks; returns how many bytes reached the ring buffer. The
/// running offset lives in the scratch map value (see `path.rs` for why).
#[inline(always)]
fn send_args(hdr: Header, start: u64, total: u64) -> u64 {
    let Some(a) = SCRATCH_ARGS.get_ptr_mut(0) else {
        return 0;
    };
    let a = unsafe { &mut *a };
    a.hdr = hdr;
    a._pad = 0;
    let offset_slot = core::ptr::addr_of_mut!(a.offset);
    unsafe { offset_slot.write_volatile(0) };
    for _ in 0..ARGS_MAX_CHUNKS {
        // Volatile: the offset must come back from memory as an unknown scalar each iteration.
        let offset = unsafe { offset_slot.read_volatile() };
        if offset >= total {
            break;
        }
        let rem = total - offset;
        let n = if rem > ARGS_CHUNK as u64 {
            ARGS_CHUNK as u64
        } else {
            rem
        };
        let ret = unsafe {
            bpf_probe_read_user(
                a.data.as_mut_ptr() as *mut _,
                n as u32,
                (start + offset) as *const _,
            )
        };
        if ret < 0 {
            break;
        }
        a.len = n as u32;
        if !output_prefix(a as *const ExecArgs, EXEC_ARGS_FIXED + n as usize) {
            break;
        }
        unsafe { offset_slot.write_volatile(offset + n) };
    }
    unsafe { offset_slot.read_volatile() }
}
