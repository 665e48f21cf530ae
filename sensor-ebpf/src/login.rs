//! LOGIN: a write to `/proc/<pid>/loginuid` (pam_loginuid in the login, sshd and cron stacks,
//! or anyone with CAP_AUDIT_CONTROL). The kernel writes LOGIN from `audit_log_set_loginuid()`
//! in the write, then the write's SYSCALL and PROCTITLE at its exit, whatever the rules.
//!
//! With trampolines, [`loginuid_written`] is at `proc_loginuid_write()`'s return. No tracepoint
//! is inside it, so with tracepoints `syscall::sys_exit` hands over every syscall that wrote
//! something or returned EPERM; for the write family (write, pwrite64, writev, pwritev, pwritev2)
//! this module looks at the file written.
//!
//! The old login uid and session are gone by the write's return: they are kept at the entry of
//! each libpam call ([`remember`]), where pam_loginuid writes, and after each write that set
//! them; a thread that never wrote before, outside PAM, gets its parent's, which it inherited
//! unless one of them changed since the fork.

use aya_ebpf::{
    macros::{fexit, map},
    maps::LruHashMap,
    programs::FExitContext,
};
use sensor_common::{
    syscalls::x86_64::{PWRITE64, PWRITEV, PWRITEV2, WRITE, WRITEV},
    LoginUid, CTR_RINGBUF_FULL, KIND_LOGIN_UID, LOGIN_VALUE_MAX,
};

use crate::{
    kernel::{current_task, fd_file, header, off, read, syscall_args, user_regs},
    maps::{count, EVENTS},
    syscall_exit::{send_syscall_exit, Exit},
};

/// procfs's `s_magic`.
const PROC_SUPER_MAGIC: u64 = 0x9fa0;

/// Login uid and session of each thread at the entry of its current libpam call.
#[map]
static BEFORE: LruHashMap<u32, [u32; 2]> = LruHashMap::with_max_entries(4096, 0);

/// Login uid and session each thread set by its last successful write.
#[map]
static SET: LruHashMap<u32, [u32; 2]> = LruHashMap::with_max_entries(4096, 0);

/// At a libpam call's entry: the thread's login uid and session, in case a module sets them.
#[inline(always)]
pub fn remember(tid: u32) {
    let task = current_task();
    let ids = [
        read(task, off!(task_loginuid)),
        read(task, off!(task_sessionid)),
    ];
    let _ = BEFORE.insert(&tid, &ids, 0);
}

/// At the libpam call's return.
#[inline(always)]
pub fn forget(tid: u32) {
    let _ = BEFORE.remove(&tid);
}

/// Whether syscall `nr` is of the write family at offset 0 (pwrite, writev and the like, not
/// only write).
#[inline(always)]
pub fn is_write(nr: u64) -> bool {
    matches!(nr as u32, WRITE | PWRITE64 | WRITEV | PWRITEV | PWRITEV2)
}

/// At the exit of syscall `nr`, returning `ret`: when it is a write to a loginuid file that set
/// it, or that `audit_set_loginuid()` refused, sends the LOGIN facts and says what SyscallExit
/// to send after them.
#[inline(always)]
pub fn write_exit(nr: u64, ret: i64, regs: u64) -> Option<Exit> {
    if !is_write(nr) {
        return None;
    }
    let task = current_task();
    // Only the fd until the file is known to be a loginuid one: most writes go elsewhere.
    let file = fd_file(task, read(regs, off!(regs_di)));
    if file == 0 || !is_loginuid(file) {
        return None;
    }
    let args = syscall_args(regs);
    written(task, file, nr, ret, args, args[1], args[2])
}

/// `proc_loginuid_write(struct file *, const char __user *buf, size_t count, loff_t *)`
/// returned: the write itself, whichever syscall made it (trampolines).
#[fexit(function = "proc_loginuid_write")]
pub fn loginuid_written(ctx: FExitContext) -> i32 {
    let file: u64 = ctx.arg(0);
    let (buf, len): (u64, u64) = (ctx.arg(1), ctx.arg(2));
    let ret: i64 = ctx.arg(4);
    let regs = user_regs();
    if regs == 0 {
        return 0;
    }
    let nr: u64 = read(regs, off!(regs_orig_ax));
    let args = syscall_args(regs);
    if let Some(exit) = written(current_task(), file, nr, ret, args, buf, len) {
        send_syscall_exit(exit, ret);
    }
    0
}

/// A write of `len` bytes at `buf` to the loginuid `file` returned `ret`: sends the LOGIN facts
/// and says what SyscallExit to send after them.
#[inline(always)]
fn written(
    task: u64,
    file: u64,
    nr: u64,
    ret: i64,
    args: [u64; 6],
    buf: u64,
    len: u64,
) -> Option<Exit> {
    // EPERM also comes from writing another task's file, which the kernel does not audit.
    if ret < 0 && !own_file(task, file) {
        return None;
    }
    let hdr = header(KIND_LOGIN_UID);
    let Some(mut entry) = EVENTS.reserve::<LoginUid>(0) else {
        count(CTR_RINGBUF_FULL);
        return None;
    };
    let l = unsafe { &mut *entry.as_mut_ptr() };
    l.hdr = hdr;
    l.ret = ret;
    let known = match unsafe { BEFORE.get(&hdr.tid) } {
        Some(ids) => Some(*ids),
        None => unsafe { SET.get(&hdr.tid) }.copied(),
    };
    match known {
        Some([auid, ses]) => {
            (l.old_auid, l.old_ses, l.old_exact) = (auid, ses, 1);
        }
        None => {
            let parent: u64 = read(task, off!(task_real_parent));
            l.old_auid = read(parent, off!(task_loginuid));
            l.old_ses = read(parent, off!(task_sessionid));
            l.old_exact = 0;
        }
    }
    let n = if len > LOGIN_VALUE_MAX as u64 {
        LOGIN_VALUE_MAX as u32
    } else {
        len as u32
    };
    l.value = [0; LOGIN_VALUE_MAX];
    let got = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user(
            l.value.as_mut_ptr() as *mut _,
            n,
            buf as *const _,
        )
    };
    l.value_len = if got == 0 { n } else { 0 };
    let in_pam_call = l.old_exact == 1;
    entry.submit(crate::maps::wake());
    // A second write starts from what this one set.
    if ret > 0 {
        let ids = [
            read(task, off!(task_loginuid)),
            read(task, off!(task_sessionid)),
        ];
        let _ = SET.insert(&hdr.tid, &ids, 0);
        if in_pam_call {
            let _ = BEFORE.insert(&hdr.tid, &ids, 0);
        }
    }
    // The write's SYSCALL and PROCTITLE, with the task as it is now (its new ids).
    Some(Exit {
        hdr,
        nr: nr as u32,
        args,
        flags: 0,
        cwd: false,
        denial: (0, 0),
    })
}

/// A file named `loginuid` on procfs: `/proc/<pid>/loginuid` or `/proc/<pid>/task/<tid>/loginuid`.
#[inline(always)]
fn is_loginuid(file: u64) -> bool {
    let inode: u64 = read(file, off!(file_f_inode));
    let sb: u64 = read(inode, off!(inode_sb));
    let magic: u64 = read(sb, off!(sb_magic));
    if magic != PROC_SUPER_MAGIC {
        return false;
    }
    let dentry: u64 = read(file, off!(file_f_path) + off!(path_dentry));
    let name: u64 = read(dentry, off!(dentry_name) + off!(qstr_name));
    let text: [u8; 9] = read(name, 0);
    &text == b"loginuid\0"
}

/// The file's proc inode belongs to the writing task (`proc_pid(inode)` is its pid).
#[inline(always)]
fn own_file(task: u64, file: u64) -> bool {
    let inode: u64 = read(file, off!(file_f_inode));
    let proc_inode = inode.wrapping_sub(off!(proc_inode_vfs_inode));
    let pid: u64 = read(proc_inode, off!(proc_inode_pid));
    let own: u64 = read(task, off!(task_thread_pid));
    pid != 0 && pid == own
}
