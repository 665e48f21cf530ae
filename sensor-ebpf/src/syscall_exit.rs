//! The SYSCALL record of an event the kernel writes outside exec (ANOM_LINK, ANOM_CREAT,
//! ANOM_PROMISCUOUS): who the task is, its syscall and arguments, its paths and container, sent at
//! the syscall's exit.

use sensor_common::{
    SyscallExit, CTR_RINGBUF_FULL, KIND_SYSCALL_EXIT, PATH_TASK_CGROUP, PATH_TASK_CWD,
    PATH_TASK_EXE,
};

use crate::{
    kernel::{current_task, off, proctitle, read, read_errors_so_far, task_info, task_ns},
    maps::{count, EVENTS},
    path::{send_exe_and_cgroup, send_path, TaskRoot},
};

/// A SyscallExit to send, as an area decided at a syscall's exit. `syscall::sys_exit` sends at
/// most one per syscall, from one call site: the path walks it inlines are verified once.
pub struct Exit {
    pub hdr: sensor_common::Header,
    pub nr: u32,
    pub args: [u64; 6],
    pub flags: u64,
    pub cwd: bool,
}

/// Sends the exe, cgroup (and with `cwd`, the working directory) paths, then the
/// [`SyscallExit`]. `args` are the syscall's argument registers, when they could be read.
#[inline(always)]
pub fn send_syscall_exit(
    hdr: sensor_common::Header,
    nr: u32,
    ret: i64,
    args: Option<[u64; 6]>,
    flags: u64,
    cwd: bool,
) {
    let task = current_task();
    let errors_before = read_errors_so_far();
    let root = TaskRoot::of(task);
    if cwd {
        send_path(hdr, PATH_TASK_CWD, root.fs + off!(fs_pwd), &root);
    }
    send_exe_and_cgroup(hdr, task, &root, PATH_TASK_EXE, PATH_TASK_CGROUP);

    let Some(mut entry) = EVENTS.reserve::<SyscallExit>(0) else {
        count(CTR_RINGBUF_FULL);
        return;
    };
    let e = unsafe { &mut *entry.as_mut_ptr() };
    e.hdr = hdr;
    // The thread and time of the event it completes (a LoginUid's, say), its own kind.
    e.hdr.kind = KIND_SYSCALL_EXIT;
    e.nr = nr;
    e.ret = ret;
    e.no_args = args.is_none() as u32;
    e.args = args.unwrap_or([0; 6]);
    e.flags = flags;
    task_info(task, &mut e.task);
    let cred: u64 = read(task, off!(task_cred));
    e.cap_effective = read(cred, off!(cred_cap_effective));
    e.ns = task_ns(task);
    e.proctitle_len = proctitle(task, &mut e.proctitle);
    e.read_errors = (read_errors_so_far() - errors_before) as u32;
    entry.submit(crate::maps::wake());
}
