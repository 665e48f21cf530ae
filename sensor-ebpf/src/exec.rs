//! execve / execveat past the point of no return: the new program's argument area at
//! `sched_process_exec` (so only for successful execs). The entry (the name as passed, the
//! caller's registers and credentials) is `exec_entry.rs`; the exit is `exec_exit.rs`.
//! With rules loaded (`filter.rs`) the entry waits in `PENDING_ENTER` until the exec is judged:
//! at `sched_process_exec` for a successful one, at exit otherwise; one no rule selects sends
//! nothing.
//!
//! The entry and exit programs skip 32-bit syscalls: a 32-bit exec (`int 0x80`) records no
//! entry, and an exec whose new program is 32-bit passes no exit tracepoint (the task is then in a
//! 32-bit syscall). `sched_process_exec` sees every successful exec: when no entry was recorded
//! for the thread it sends one, marked compat, as far as it can still be known there; when the
//! exit tracepoint will not fire (a 32-bit new program), or would fire without its entry (a
//! 32-bit task's exec of a 64-bit program, which the kernel turns into a 64-bit execve's exit),
//! it sends the exit itself.

use aya_ebpf::{
    helpers::generated::{bpf_probe_read_kernel_str, bpf_probe_read_user},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use aya_log_ebpf::warn;
use sensor_common::{
    ExecArgs, ExecArgsOf, ExecSched, Header, ARGS_CHUNK, ARGS_MAX_CHUNKS, ARGS_SMALL,
    CTR_RINGBUF_FULL, EXEC_ARGS_FIXED, FILENAME_MAX, KIND_EXEC_ARGS, KIND_EXEC_ENTER,
    KIND_EXEC_EXIT, KIND_EXEC_SCHED, KIND_EXEC_UNSELECTED,
};

use crate::{
    exec_entry::TS_COMPAT,
    exec_exit::send_exit,
    exec_state::{
        read_caps, send_enter, send_pending, CHOSEN, ENTERED, LEFT_OUT, NAME_RETRY, PENDING,
    },
    filter::{self, Exec},
    kernel::{arg_area, current_task, header, load, off, put_header, task_ns},
    maps::{count, output_prefix, EVENTS, SCRATCH_ARGS, SCRATCH_ENTER},
};

/// PF_KTHREAD: a kernel thread, whose `kernel_execve()` of a usermode helper is no syscall.
const PF_KTHREAD: u32 = 0x0020_0000;

/// A BTF-typed tracepoint: `bprm` is read through with loads (as a raw tracepoint, with its
/// three helper reads, it took about 200 ns more per exec here). Inlined into the entry the
/// macro makes, as `sys_exit` is: a subprogram taking the context is refused on 6.1 ("reg type
/// unsupported for arg#0").
#[btf_tracepoint(function = "sched_process_exec")]
#[inline(always)]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    sched(&ctx);
    0
}

#[inline(always)]
fn sched(ctx: &BtfTracePointContext) {
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
    let filename: u64 = load(bprm, off!(bprm_filename));
    let interp: u64 = load(bprm, off!(bprm_interp));
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
    let (start, end) = arg_area(task);
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
    put_header(&mut s.hdr, hdr);
    s.hdr.kind = KIND_EXEC_SCHED;
    s.new_tid = new_tid;
    s.argc = load::<i32>(bprm, off!(bprm_argc)) as u32;
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
    let cred: u64 = load(current_task(), off!(task_cred));
    e.old_uid = load(cred, off!(cred_uid));
    e.old_caps = read_caps(cred);
    let filename: u64 = load(bprm, off!(bprm_filename));
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

/// Reads an argument area of at most [`ARGS_SMALL`] bytes straight into a record reserved in
/// the ring buffer; returns how many bytes it holds. The copy through the 16 KiB scratch value
/// and out again measured 50-80 ns more per exec here.
#[inline(always)]
fn send_small_args(hdr: Header, start: u64, total: u64) -> u64 {
    let Some(mut entry) = EVENTS.reserve::<ExecArgsOf<ARGS_SMALL>>(0) else {
        count(CTR_RINGBUF_FULL);
        warn!(&(), "ring buffer full: a {}-byte record dropped", total);
        return 0;
    };
    let a = unsafe { &mut *entry.as_mut_ptr() };
    put_header(&mut a.hdr, hdr);
    a.offset = 0;
    a._pad = 0;
    let n = if total > ARGS_SMALL as u64 {
        ARGS_SMALL as u32
    } else {
        total as u32
    };
    a.len = n;
    let ret = unsafe { bpf_probe_read_user(a.data.as_mut_ptr() as *mut _, n, start as *const _) };
    if ret < 0 {
        entry.discard(0);
        return 0;
    }
    entry.submit(crate::maps::wake());
    n as u64
}

/// Copies the argument area in chunks; returns how many bytes reached the ring buffer. The
/// running offset lives in the scratch map value: read back from memory, it is the same unknown
/// number to the verifier at the top of every chunk, whatever the last one did, so its walk of
/// the loop stays linear.
#[inline(always)]
fn send_args(hdr: Header, start: u64, total: u64) -> u64 {
    if total <= ARGS_SMALL as u64 {
        return send_small_args(hdr, start, total);
    }
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
