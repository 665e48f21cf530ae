//! execve / execveat at syscall exit: the verdict (the rules' decision for a failed exec, a
//! successful one was decided at `sched_process_exec`), then the name read again when it could
//! not be at entry, the cwd, exe and cgroup paths, credentials and container context.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use aya_log_ebpf::{debug, warn};
use sensor_common::{
    ExecExit, Header, ARGS_SMALL, CTR_EXIT_LOST, CTR_RINGBUF_FULL, KIND_EXEC_EXIT, PATH_CGROUP,
    PATH_CWD, PATH_EXE, PATH_EXEC_NAME,
};

use crate::{
    exec_state::{read_caps, send_pending, ENTERED, LEFT_OUT, NAME_RETRY, PENDING},
    kernel::{
        arg_area, current_task, exit_ret, header, load, off, proctitle_of, put_header,
        read_errors_so_far, task_info, task_ns,
    },
    maps::{count, EVENTS},
    path::{send_exe_and_cgroup, send_path, send_user_string, TaskRoot},
};

/// With trampolines: execve's exit tracepoint. With tracepoints, `syscall::sys_exit` (which runs
/// at every syscall's exit anyway) calls [`exit`] instead: a `syscalls:sys_exit_*` tracepoint
/// puts the perf syscall-exit hook on every syscall of the host.
#[tracepoint]
pub fn sys_exit_execve(ctx: TracePointContext) -> u32 {
    exit(exit_ret(&ctx));
    0
}

#[tracepoint]
pub fn sys_exit_execveat(ctx: TracePointContext) -> u32 {
    exit(exit_ret(&ctx));
    0
}

/// The exit of an execve or execveat (64-bit numbering) that returned `ret`.
#[inline(always)]
pub(crate) fn exit(ret: i64) {
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
pub(crate) fn send_exit(hdr: Header, ret: i64) {
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
    put_header(&mut e.hdr, hdr);
    e.ret = ret;
    task_info(task, &mut e.task);
    let cred: u64 = load(task, off!(task_cred));
    e.caps = read_caps(cred);

    e.ns = task_ns(task);

    e.has_exe = 0;
    if exe_file != 0 {
        let inode: u64 = load(exe_file, off!(file_f_inode));
        e.exe.ino = load(inode, off!(inode_ino));
        e.exe.mode = load::<u16>(inode, off!(inode_mode)) as u32;
        e.exe.uid = load(inode, off!(inode_uid));
        e.exe.gid = load(inode, off!(inode_gid));
        e.exe.rdev = load(inode, off!(inode_rdev));
        let sb: u64 = load(inode, off!(inode_sb));
        e.exe.dev = load(sb, off!(sb_dev));
        e.exe._pad = 0;
        e.has_exe = 1;
    }
    e._pad2 = 0;
    // A successful exec's argument area of at most ARGS_SMALL bytes went whole in one record
    // at `sched_process_exec`, and its command line is the first bytes of it: the agent takes
    // it from there (reading it again here measured 150-250 ns per exec).
    let (start, end) = arg_area(task);
    e.proctitle_len = match ret == 0 && end.saturating_sub(start) <= ARGS_SMALL as u64 {
        true => 0,
        false => proctitle_of((start, end), &mut e.proctitle),
    };
    let read_errors = (read_errors_so_far() - errors_before) as u32;
    e.read_errors = read_errors;
    entry.submit(crate::maps::wake());
    if read_errors != 0 {
        debug!(
            &(),
            "exec by tid {}: {} kernel reads failed", hdr.tid, read_errors
        );
    }
}
