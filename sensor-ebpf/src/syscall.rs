//! Every syscall's exit, dispatched to the areas that need it: refused opens and links
//! ([`crate::fs`]), short writes and refused ones that may have set a login uid
//! ([`crate::login`]), and the syscall a promiscuity change happened in ([`crate::net`]). They
//! send their records through [`crate::syscall_exit`]; none calls back here.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};

use crate::{kernel::off, syscall_exit::send_syscall_exit};

const EPERM: i64 = 1;
const EACCES: i64 = 13;

/// Every syscall's exit (`raw_syscalls:sys_exit`, as a typed raw tracepoint: no trace record is
/// built, which costs far less than one `syscalls:sys_exit_*` program per syscall, and the
/// registers are read directly, without a helper call). Almost every call returns after a
/// few compares.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // `regs` is a typed pointer: the syscall number is one load away.
    // SAFETY: the verifier checks the load against `struct pt_regs`.
    let nr = || unsafe { core::ptr::read_volatile((regs + off!(regs_orig_ax)) as *const u64) };
    // The areas watch disjoint syscalls; each says what to send.
    let mut exit = None;
    if crate::net::recent() {
        exit = crate::net::promisc_exit(nr(), regs);
    }
    if exit.is_none() && (ret == -EACCES || ret == -EPERM) {
        let nr = nr();
        exit = crate::fs::denied(nr, regs);
        if exit.is_none() && ret == -EPERM {
            exit = crate::login::write_exit(nr, ret, regs);
        }
    } else if exit.is_none() && ret > 0 {
        exit = crate::login::write_exit(nr(), ret, regs);
    }
    if let Some(e) = exit {
        send_syscall_exit(e, ret);
    }
    0
}
