//! Every syscall's exit, dispatched to the areas that need it: refused opens and links
//! ([`crate::fs`]), short writes and refused ones that may have set a login uid
//! ([`crate::login`]), and the syscall a promiscuity change happened in ([`crate::net`]). They
//! send their records through [`crate::syscall_exit`]; none calls back here.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

use crate::{
    kernel::{off, read},
    syscall_exit::send_syscall_exit,
};

const EPERM: i64 = 1;
const EACCES: i64 = 13;

/// Every syscall's exit (`raw_syscalls:sys_exit`, as a raw tracepoint: no trace record is built,
/// which costs far less than one `syscalls:sys_exit_*` program per syscall). Almost every call
/// returns after two compares.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // The areas watch disjoint syscalls; each says what to send.
    let mut exit = None;
    if crate::net::recent() {
        exit = crate::net::promisc_exit(read(regs, off!(regs_orig_ax)), regs);
    }
    if exit.is_none() && (ret == -EACCES || ret == -EPERM) {
        let nr = read(regs, off!(regs_orig_ax));
        exit = crate::fs::denied(nr, regs);
        if exit.is_none() && ret == -EPERM {
            exit = crate::login::write_exit(nr, ret, regs);
        }
    } else if exit.is_none() && ret > 0 {
        exit = crate::login::write_exit(read(regs, off!(regs_orig_ax)), ret, regs);
    }
    if let Some(e) = exit {
        send_syscall_exit(e.hdr, e.nr, ret, Some(e.args), e.flags, e.cwd);
    }
    0
}
