//! ANOM_LINK and ANOM_CREAT candidates: open and link syscalls that returned EACCES or EPERM.
//!
//! The kernel decides in `may_linkat()`, `may_follow_link()` and `may_create_in_sticky()`, which
//! no tracepoint reaches. At the syscall's exit the sensor sends the path arguments, the cwd and
//! the task; the agent then decides from the fs.protected_* sysctls and the ownership and mode of
//! the objects whether a protection refused it, or something else did.

use aya_ebpf::{
    helpers::generated::bpf_probe_read_user, macros::tracepoint, programs::TracePointContext,
};
use sensor_common::{KIND_SYSCALL_EXIT, PATH_ARG_NAME, PATH_ARG_NEWNAME};

use crate::{
    kernel::{header, syscall_args, user_regs},
    path::send_user_string,
    syscall::{exit_ret, send_syscall_exit},
};

const EPERM: i64 = 1;
const EACCES: i64 = 13;
/// O_WRONLY | O_CREAT | O_TRUNC: what creat(2) means.
const CREAT_FLAGS: u64 = 0o1 | 0o100 | 0o1000;

/// Where a syscall keeps its arguments.
#[derive(Clone, Copy)]
enum Flags {
    None,
    Arg(usize),
    Fixed(u64),
    /// openat2: `struct open_how *` in this argument; `flags` is its first member.
    OpenHow(usize),
}

#[inline(always)]
fn denied(ctx: &TracePointContext, nr: u32, name: usize, newname: Option<usize>, flags: Flags) {
    let ret = exit_ret(ctx);
    if ret != -EACCES && ret != -EPERM {
        return;
    }
    let regs = user_regs();
    if regs == 0 {
        return;
    }
    let args = syscall_args(regs);
    let hdr = header(KIND_SYSCALL_EXIT);
    send_user_string(hdr, PATH_ARG_NAME, args[name % 6]);
    if let Some(i) = newname {
        send_user_string(hdr, PATH_ARG_NEWNAME, args[i % 6]);
    }
    let flags = match flags {
        Flags::None => 0,
        Flags::Arg(i) => args[i % 6],
        Flags::Fixed(f) => f,
        Flags::OpenHow(i) => {
            let mut f = 0u64;
            unsafe {
                bpf_probe_read_user(&mut f as *mut u64 as *mut _, 8, args[i % 6] as *const _)
            };
            f
        }
    };
    send_syscall_exit(hdr, nr, ret, Some(args), flags, true);
}

#[tracepoint]
pub fn sys_exit_open(ctx: TracePointContext) -> u32 {
    denied(&ctx, 2, 0, None, Flags::Arg(1));
    0
}

#[tracepoint]
pub fn sys_exit_openat(ctx: TracePointContext) -> u32 {
    denied(&ctx, 257, 1, None, Flags::Arg(2));
    0
}

#[tracepoint]
pub fn sys_exit_openat2(ctx: TracePointContext) -> u32 {
    denied(&ctx, 437, 1, None, Flags::OpenHow(2));
    0
}

#[tracepoint]
pub fn sys_exit_creat(ctx: TracePointContext) -> u32 {
    denied(&ctx, 85, 0, None, Flags::Fixed(CREAT_FLAGS));
    0
}

#[tracepoint]
pub fn sys_exit_link(ctx: TracePointContext) -> u32 {
    denied(&ctx, 86, 0, Some(1), Flags::None);
    0
}

#[tracepoint]
pub fn sys_exit_linkat(ctx: TracePointContext) -> u32 {
    denied(&ctx, 265, 1, Some(3), Flags::Arg(4));
    0
}
