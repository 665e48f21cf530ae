//! Every syscall's exit (the tracepoints probe set), dispatched to the areas that need it:
//! refused opens and links ([`crate::fs`]), short writes and refused ones that may have set a
//! login uid ([`crate::login`]), the syscall a promiscuity change happened in ([`crate::net`]),
//! and the exits of execve ([`crate::exec_exit`]) and of libaudit's sendto
//! ([`crate::libaudit`]). The first three send their records through [`crate::syscall_exit`];
//! none calls back here.
//!
//! The exec and sendto exits are here rather than on their `syscalls:sys_exit_*` tracepoints:
//! attaching any of those puts the kernel's perf syscall-exit hook on every syscall of the host,
//! which measured more than this program's compares on every syscall.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};

use sensor_common::syscalls::x86_64::{EXECVE, EXECVEAT, SENDTO};

use crate::{kernel::off, syscall_exit::send_syscall_exit};

const EPERM: i64 = 1;
const EACCES: i64 = 13;

/// Every syscall's exit (`raw_syscalls:sys_exit`, as a typed raw tracepoint: no trace record is
/// built, which costs far less than one `syscalls:sys_exit_*` program per syscall, and the
/// registers are read directly, without a helper call).
///
/// Almost every call returns after a few compares and one array load (the promiscuity window),
/// in this function alone: inlined into the program's entry, it needs no call and almost no
/// stack. What the areas
/// do is [`watched_exit`], a subprogram of its own, called only for the syscalls they watch;
/// before this split, the entry called the whole body as a subprogram at every syscall, and
/// that call, its frame and its return were most of the program's time (perf). An area that
/// watches another syscall or return value adds it to this filter, then its call to
/// [`watched_exit`].
#[btf_tracepoint(function = "sys_exit")]
#[inline(always)]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // `regs` is a typed pointer: the syscall number is one load away. The kernel runs a syscall
    // by the low 32 bits of it (`rax = 1 << 32 | 59` is an execve); where the exec's entry is
    // not taken here, the number is as it was read (see `exec_entry::at_exit`).
    // SAFETY: the verifier checks the load against `struct pt_regs`.
    let raw = unsafe { core::ptr::read_volatile((regs + off!(regs_orig_ax)) as *const u64) };
    // A mask, not a branch: a branch here doubled the states the verifier walks after it.
    let nr = raw & crate::exec_entry::nr_mask();
    if nr == EXECVE as u64
        || nr == EXECVEAT as u64
        || nr == SENDTO as u64
        || ret == -EACCES
        || ret == -EPERM
        || (ret > 0 && crate::login::is_write(nr))
        || crate::net::recent()
    {
        watched_exit(nr, ret, regs);
    }
    0
}

/// The exit of a syscall some area watches (see [`sys_exit`] for the filter).
#[inline(never)]
fn watched_exit(nr: u64, ret: i64, regs: u64) {
    // Threads in an exec or in libaudit's send are looked up only at these syscalls' exits.
    if nr == EXECVE as u64 || nr == EXECVEAT as u64 {
        if crate::exec_entry::at_exit() {
            crate::exec_entry::enter_failed(nr as u32, ret, regs);
        }
        crate::exec_exit::exit(ret);
        return;
    }
    if nr == SENDTO as u64 {
        crate::libaudit::sendto_exit(ret);
    }
    // The areas watch disjoint syscalls; each says what to send.
    let mut exit = None;
    if crate::net::recent() {
        exit = crate::net::promisc_exit(nr, regs);
    }
    if exit.is_none() && (ret == -EACCES || ret == -EPERM) {
        exit = crate::fs::denied(nr, regs);
        if exit.is_none() && ret == -EPERM {
            exit = crate::login::write_exit(nr, ret, regs);
        }
    } else if exit.is_none() && ret > 0 {
        exit = crate::login::write_exit(nr, ret, regs);
    }
    if let Some(e) = exit {
        send_syscall_exit(e, ret);
    }
}
