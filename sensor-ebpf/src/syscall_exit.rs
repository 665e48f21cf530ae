//! The SYSCALL record of an event the kernel writes outside exec (ANOM_LINK, ANOM_CREAT,
//! ANOM_PROMISCUOUS): who the task is, its syscall and arguments, its paths and container, sent at
//! the syscall's exit.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel_str;
use sensor_common::{
    SyscallExit, CTR_RINGBUF_FULL, DENIAL_OP_MAX, KIND_SYSCALL_EXIT, PATH_TASK_CGROUP,
    PATH_TASK_CWD, PATH_TASK_EXE,
};

use crate::{
    kernel::{
        current_task, header, off, proctitle, read, read_errors_so_far, syscall_args, task_info,
        task_ns,
    },
    maps::{count, EVENTS},
    path::{send_exe_and_cgroup, send_path, TaskRoot},
};

/// A SyscallExit to send, as an area decided at a syscall's exit (or, with trampolines, where
/// the kernel decided). Each program sends at most one, from one call site: the path walks it
/// inlines are verified once per program.
pub struct Exit {
    pub hdr: sensor_common::Header,
    pub nr: u32,
    pub args: [u64; 6],
    pub flags: u64,
    pub cwd: bool,
    /// `audit_log_path_denied()`'s record type and `op` string (a kernel pointer), or zeros.
    pub denial: (u32, u64),
}

impl Exit {
    /// The SYSCALL record of syscall `nr` alone: its arguments from `regs`, no names or cwd.
    #[inline(always)]
    pub fn plain(nr: u64, regs: u64) -> Exit {
        Exit {
            hdr: header(KIND_SYSCALL_EXIT),
            nr: nr as u32,
            args: syscall_args(regs),
            flags: 0,
            cwd: false,
            denial: (0, 0),
        }
    }
}

/// Sends the exe, cgroup (and with `cwd`, the working directory) paths, then the
/// [`SyscallExit`] of `x`, the syscall returning `ret`.
#[inline(always)]
pub fn send_syscall_exit(x: Exit, ret: i64) {
    let Exit {
        hdr,
        nr,
        args,
        flags,
        cwd,
        denial,
    } = x;
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
    e.no_args = 0;
    e.args = args;
    e.flags = flags;
    task_info(task, &mut e.task);
    let cred: u64 = read(task, off!(task_cred));
    e.cap_effective = read(cred, off!(cred_cap_effective));
    e.ns = task_ns(task);
    e.proctitle_len = proctitle(task, &mut e.proctitle);
    (e.denial_type, e._pad) = (denial.0, 0);
    e.denial_op = [0; DENIAL_OP_MAX];
    if denial.1 != 0 {
        // NUL-terminated and at most 21 bytes in every kernel; a longer one is cut, never
        // matches a known op, and is not reported.
        unsafe {
            bpf_probe_read_kernel_str(
                e.denial_op.as_mut_ptr() as *mut _,
                DENIAL_OP_MAX as u32,
                denial.1 as *const _,
            )
        };
    }
    e.read_errors = (read_errors_so_far() - errors_before) as u32;
    entry.submit(crate::maps::wake());
}
