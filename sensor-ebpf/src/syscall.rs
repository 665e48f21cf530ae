//! Every syscall's exit, dispatched to the areas that need it: refused opens and links
//! ([`crate::fs`]) and the syscall a promiscuity change happened in ([`crate::net`]). Both send
//! their record through [`crate::syscall_exit`]; neither calls back here.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

use crate::kernel::{off, read};

const EPERM: i64 = 1;
const EACCES: i64 = 13;

/// Every syscall's exit (`raw_syscalls:sys_exit`, as a raw tracepoint: no trace record is built,
/// which costs far less than one `syscalls:sys_exit_*` program per syscall). Almost every call
/// returns after two compares.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    if ret == -EACCES || ret == -EPERM {
        crate::fs::denied(read(regs, off!(regs_orig_ax)), ret, regs);
    }
    if crate::net::recent() {
        crate::net::promisc_exit(read(regs, off!(regs_orig_ax)), ret, regs);
    }
    0
}
