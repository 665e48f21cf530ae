//! ANOM_LINK and ANOM_CREAT.
//!
//! The kernel decides in `may_linkat()`, `may_follow_link()` and `may_create_in_sticky()`, and
//! each refusal calls `audit_log_path_denied()`, whatever the audit state.
//!
//! - With trampolines, [`path_denied`] is at that call: the kernel's decision, for every syscall.
//! - With tracepoints, nothing reaches them: at the exit of an open or link syscall that returned
//!   EACCES or EPERM (seen by `syscall::sys_exit`, which calls [`denied`]) the sensor sends the
//!   path arguments, the cwd and the task; the agent then decides from the fs.protected_* sysctls
//!   and the ownership and mode of the objects whether a protection refused it.

use sensor_common::{
    syscalls::x86_64::{CREAT, LINK, LINKAT, OPEN, OPENAT, OPENAT2},
    KIND_SYSCALL_EXIT, PATH_ARG_NAME, PATH_ARG_NEWNAME,
};

use aya_ebpf::{macros::fentry, programs::FEntryContext};

use crate::{
    kernel::{header, off, read, read_user, syscall_args, user_regs},
    path::send_user_string,
    syscall_exit::{send_syscall_exit, Exit},
};

/// O_WRONLY | O_CREAT | O_TRUNC: what creat(2) means.
const CREAT_FLAGS: u64 = 0o1 | 0o100 | 0o1000;

/// At the exit of syscall `nr` (which returned -EACCES or -EPERM): when it is one of the open
/// or link syscalls, sends its path arguments and says what SyscallExit to send.
#[inline(always)]
pub fn denied(nr: u64, regs: u64) -> Option<Exit> {
    if nr > u32::MAX as u64 {
        return None;
    }
    let nr = nr as u32;
    if !matches!(nr, OPEN | OPENAT | OPENAT2 | CREAT | LINK | LINKAT) {
        return None;
    }
    let a = syscall_args(regs);
    // The name, the new name (link, linkat) and the open or linkat flags of each syscall.
    let (name, newname, flags) = match nr {
        OPEN => (a[0], 0, a[1]),
        OPENAT => (a[1], 0, a[2]),
        // openat2: `struct open_how *`, whose first member is the flags.
        OPENAT2 => (a[1], 0, read_user::<u64>(a[2])),
        CREAT => (a[0], 0, CREAT_FLAGS),
        LINK => (a[0], a[1], 0),
        _ => (a[1], a[3], a[4]),
    };
    let hdr = header(KIND_SYSCALL_EXIT);
    send_user_string(hdr, PATH_ARG_NAME, name);
    if newname != 0 {
        send_user_string(hdr, PATH_ARG_NEWNAME, newname);
    }
    Some(Exit {
        hdr,
        nr,
        args: a,
        flags,
        cwd: true,
        denial: (0, 0),
    })
}

/// ANOM_LINK, the type `may_linkat()` and `may_follow_link()` log.
const ANOM_LINK: u32 = 1702;

/// `audit_log_path_denied(int type, const char *operation)`: a protection refused the current
/// syscall. Its names are sent for the open and link syscalls, as [`denied`] would; the exit is
/// the one each check returns (`may_linkat()` -EPERM, the others -EACCES), which the syscall
/// returns.
#[fentry(function = "audit_log_path_denied")]
pub fn path_denied(ctx: FEntryContext) -> i32 {
    let record_type: u32 = ctx.arg(0);
    let op: u64 = ctx.arg(1);
    let regs = user_regs();
    if regs == 0 {
        return 0;
    }
    let nr: u64 = read(regs, off!(regs_orig_ax));
    let mut exit = denied(nr, regs).unwrap_or_else(|| Exit::plain(nr, regs));
    // The judging needs the cwd; the kernel's decision does not.
    exit.cwd = false;
    exit.denial = (record_type, op);
    // "linkat" is the only op starting with 'l'.
    let first: u8 = read(op, 0);
    let ret = if record_type == ANOM_LINK && first == b'l' {
        -1
    } else {
        -13
    };
    send_syscall_exit(exit, ret);
    0
}
