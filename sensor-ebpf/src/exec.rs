//! execve / execveat: the name as passed at syscall entry, the new program's argument area at
//! `sched_process_exec` (past the point of no return, so only for successful execs), and at
//! syscall exit the verdict, credentials, paths and container context.
//!
//! The `syscalls:` tracepoints skip 32-bit syscalls: a 32-bit exec (`int 0x80`) passes none at
//! entry, and an exec whose new program is 32-bit passes none at exit (the task is then in a
//! 32-bit syscall). `sched_process_exec` sees every successful exec: when no entry was recorded
//! for the thread it sends one, marked compat, as far as it can still be known there; when the
//! exit tracepoint will not fire (a 32-bit new program), or would fire without its entry (a
//! 32-bit task's exec of a 64-bit program, which the kernel turns into a 64-bit execve's exit),
//! it sends the exit itself.

use aya_ebpf::{
    helpers::generated::{bpf_probe_read_kernel_str, bpf_probe_read_user, bpf_probe_read_user_str},
    macros::{map, raw_tracepoint, tracepoint},
    maps::LruHashMap,
    programs::{RawTracePointContext, TracePointContext},
};
use aya_log_ebpf::{debug, warn};
use sensor_common::{
    syscalls::x86_64, Caps, ExecArgs, ExecEnter, ExecExit, ExecSched, Header, ARGS_CHUNK,
    ARGS_MAX_CHUNKS, CTR_EXEC_ENTRY_LOST, CTR_EXIT_LOST, CTR_RINGBUF_FULL, EXEC_ARGS_FIXED,
    EXEC_ENTER_FIXED, FILENAME_MAX, KIND_EXEC_ARGS, KIND_EXEC_ENTER, KIND_EXEC_EXIT,
    KIND_EXEC_SCHED, KIND_EXEC_UNSELECTED, PATH_CGROUP, PATH_CWD, PATH_EXE, PATH_EXEC_NAME,
};

use crate::{
    filter::{self, Exec},
    kernel::{current_task, header, off, proctitle, read, read_errors_so_far, task_info, task_ns},
    maps::{count, output_prefix, EVENTS, SCRATCH_ARGS, SCRATCH_ENTER},
    path::{send_exe_and_cgroup, send_path, send_user_string, TaskRoot},
};

/// Name pointers whose read failed at syscall entry, by thread: a string literal in a page a
/// freshly forked child has not touched yet is not mapped until the kernel's own copy faults it
/// in, and a tracepoint may not fault. At exit the page is there, and a failed exec still has
/// the caller's memory, so the name is read again. LRU: a thread that never exits is forgotten.
#[map]
static NAME_RETRY: LruHashMap<u32, u64> = LruHashMap::with_max_entries(1024, 0);

/// Threads inside an execve/execveat the 64-bit tracepoints saw enter, and where the exec's
/// records stand (`SENT`…).
#[map]
static ENTERED: LruHashMap<u32, u8> = LruHashMap::with_max_entries(8192, 0);
/// The entry was sent as it happened (no rules).
const SENT: u8 = 1;
/// The entry waits in `PENDING_ENTER` for the rules' decision.
const PENDING: u8 = 2;
/// Decided at `sched_process_exec`: sent, the exit follows.
const CHOSEN: u8 = 3;
/// Decided at `sched_process_exec`: left out, the exit too.
const LEFT_OUT: u8 = 4;

/// Entries held until the rules judge the exec (`--rules`). The agent sizes it: one entry when
/// no rules are loaded. LRU: more execs in flight than it holds push the oldest out, counted
/// (`CTR_EXEC_ENTRY_LOST`) when that exec turns out selected.
#[map]
static PENDING_ENTER: LruHashMap<u32, ExecEnter> = LruHashMap::with_max_entries(1024, 0);

/// PF_KTHREAD: a kernel thread, whose `kernel_execve()` of a usermode helper is no syscall.
const PF_KTHREAD: u32 = 0x0020_0000;
/// x86 `thread_info.status`: the task is in a 32-bit syscall, or runs a 32-bit image.
const TS_COMPAT: u32 = 0x0002;

#[inline(always)]
fn read_caps(cred: u64) -> Caps {
    Caps {
        inheritable: read(cred, off!(cred_cap_inheritable)),
        permitted: read(cred, off!(cred_cap_permitted)),
        effective: read(cred, off!(cred_cap_effective)),
        ambient: read(cred, off!(cred_cap_ambient)),
    }
}

#[tracepoint]
pub fn sys_enter_execve(ctx: TracePointContext) -> u32 {
    enter::<3>(&ctx, x86_64::EXECVE, 0);
    0
}

#[tracepoint]
pub fn sys_enter_execveat(ctx: TracePointContext) -> u32 {
    enter::<5>(&ctx, x86_64::EXECVEAT, 1);
    0
}

/// `NARGS` is the syscall's argument count: reading past the tracepoint record is refused.
#[inline(always)]
fn enter<const NARGS: usize>(ctx: &TracePointContext, nr: u32, name_arg: usize) {
    let Some(e) = SCRATCH_ENTER.get_ptr_mut(0) else {
        return;
    };
    let e = unsafe { &mut *e };
    e.hdr = header(KIND_EXEC_ENTER);
    e.syscall_nr = nr;
    e.compat = 0;
    e.regs = [0; 6];
    for (i, reg) in e.regs.iter_mut().enumerate().take(NARGS) {
        // Syscall tracepoint records: 8 bytes of common fields, the syscall number, then args.
        *reg = unsafe { ctx.read_at::<u64>(16 + 8 * i) }.unwrap_or(0);
    }
    let cred: u64 = read(current_task(), off!(task_cred));
    e.old_uid = read(cred, off!(cred_uid));
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
    if filter::active() {
        let _ = PENDING_ENTER.insert(&e.hdr.tid, e, 0);
        let _ = ENTERED.insert(&e.hdr.tid, &PENDING, 0);
    } else {
        let _ = ENTERED.insert(&e.hdr.tid, &SENT, 0);
        send_enter(e);
    }
}

/// Sends an entry.
#[inline(always)]
fn send_enter(e: &ExecEnter) {
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
fn send_pending(tid: u32, task: u64, ret: i64, interpreted: bool) -> bool {
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

    // An exec no 64-bit tracepoint saw enter, by a task that is not a kernel thread's helper:
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
    let image32 = read::<u32>(task, off!(task_ti_status)) & TS_COMPAT != 0;
    let exit_here = !entered || image32;
    if entered {
        // A thread other than the leader took over the leader's id (`de_thread()`): its exit
        // comes under the new id.
        let _ = ENTERED.remove(&hdr.tid);
        if !image32 {
            let _ = ENTERED.insert(&new_tid, if chosen { &CHOSEN } else { &LEFT_OUT }, 0);
        }
    }
    if hdr.tid != new_tid {
        let _ = NAME_RETRY.remove(&hdr.tid);
    }
    if !chosen {
        filter::tell_unselected(header(KIND_EXEC_UNSELECTED), task_ns(task).mnt_ns);
        return;
    }
    let mm: u64 = read(task, off!(task_mm));
    let start: u64 = read(mm, off!(mm_arg_start));
    let end: u64 = read(mm, off!(mm_arg_end));
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
    entry.submit(0);
    if exit_here {
        send_exit(header(KIND_EXEC_EXIT), 0);
    }
}

/// Whether the exec'ing task was started by a kernel thread (a usermode helper: modprobe,
/// a core dump pipe), whose exec is `kernel_execve()`, no syscall, which auditd does not log.
#[inline(always)]
fn kernel_helper(task: u64) -> bool {
    let parent: u64 = read(task, off!(task_real_parent));
    read::<u32>(parent, off!(task_flags)) & PF_KTHREAD != 0
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

#[tracepoint]
pub fn sys_exit_execve(ctx: TracePointContext) -> u32 {
    exit(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_execveat(ctx: TracePointContext) -> u32 {
    exit(&ctx);
    0
}

#[inline(always)]
fn exit(ctx: &TracePointContext) {
    let ret: i64 = unsafe { ctx.read_at::<i64>(16) }.unwrap_or(0);
    let hdr = header(KIND_EXEC_EXIT);
    // Entered through the 32-bit entry: `sched_process_exec` sent the exit already (a 32-bit
    // task's execve of a 64-bit program reaches this tracepoint as a 64-bit execve's exit).
    let Some(state) = (unsafe { ENTERED.get(&hdr.tid) }).copied() else {
        return;
    };
    let _ = ENTERED.remove(&hdr.tid);
    let chosen = match state {
        // A failed exec (a successful one was decided at `sched_process_exec`).
        PENDING => send_pending(hdr.tid, current_task(), ret, false),
        LEFT_OUT => false,
        _ => true,
    };
    if chosen {
        send_exit(hdr, ret);
    } else {
        let _ = NAME_RETRY.remove(&hdr.tid);
    }
}

/// The exit bundle: the name read again when it could not be at entry, the cwd, exe and cgroup
/// paths, and the [`ExecExit`].
#[inline(always)]
fn send_exit(hdr: Header, ret: i64) {
    let task = current_task();
    let errors_before = read_errors_so_far();

    if let Some(&name) = unsafe { NAME_RETRY.get(&hdr.tid) } {
        let _ = NAME_RETRY.remove(&hdr.tid);
        // After a successful exec the pointer is the old program's; the agent takes the name
        // from bprm (the sched record) instead.
        if ret < 0 {
            send_user_string(hdr, PATH_EXEC_NAME, name);
        }
    }
    let root = TaskRoot::of(task);
    send_path(hdr, PATH_CWD, root.fs + off!(fs_pwd), &root);
    let exe_file = send_exe_and_cgroup(hdr, task, &root, PATH_EXE, PATH_CGROUP);

    let Some(mut entry) = EVENTS.reserve::<ExecExit>(0) else {
        count(CTR_RINGBUF_FULL);
        count(CTR_EXIT_LOST);
        warn!(
            &(),
            "exec by tid {}: exit record lost, ring buffer full", hdr.tid
        );
        return;
    };
    let e = unsafe { &mut *entry.as_mut_ptr() };
    e.hdr = hdr;
    e.ret = ret;
    task_info(task, &mut e.task);
    let cred: u64 = read(task, off!(task_cred));
    e.caps = read_caps(cred);

    e.ns = task_ns(task);

    e.has_exe = 0;
    if exe_file != 0 {
        let inode: u64 = read(exe_file, off!(file_f_inode));
        e.exe.ino = read(inode, off!(inode_ino));
        e.exe.mode = read::<u16>(inode, off!(inode_mode)) as u32;
        e.exe.uid = read(inode, off!(inode_uid));
        e.exe.gid = read(inode, off!(inode_gid));
        e.exe.rdev = read(inode, off!(inode_rdev));
        let sb: u64 = read(inode, off!(inode_sb));
        e.exe.dev = read(sb, off!(sb_dev));
        e.exe._pad = 0;
        e.has_exe = 1;
    }
    e._pad2 = 0;
    e.proctitle_len = proctitle(task, &mut e.proctitle);
    let read_errors = (read_errors_so_far() - errors_before) as u32;
    e.read_errors = read_errors;
    entry.submit(0);
    if read_errors != 0 {
        debug!(
            &(),
            "exec by tid {}: {} kernel reads failed", hdr.tid, read_errors
        );
    }
}
