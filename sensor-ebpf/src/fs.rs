//! ANOM_LINK and ANOM_CREAT candidates: open and link syscalls that returned EACCES or EPERM
//! (seen by `syscall::sys_exit`, which calls [`denied`]).
//!
//! The kernel decides in `may_linkat()`, `may_follow_link()` and `may_create_in_sticky()`, which
//! no tracepoint reaches. At the syscall's exit the sensor sends the path arguments, the cwd and
//! the task; the agent then decides from the fs.protected_* sysctls and the ownership and mode of
//! the objects whether a protection refused it, or something else did.

use sensor_common::{
    syscalls::x86_64::{CREAT, LINK, LINKAT, OPEN, OPENAT, OPENAT2},
    KIND_SYSCALL_EXIT, PATH_ARG_NAME, PATH_ARG_NEWNAME,
};

use crate::{
    kernel::{header, read_user, syscall_args},
    path::send_user_string,
    syscall_exit::Exit,
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
    })
}
