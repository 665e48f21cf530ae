//! ANOM_PROMISCUOUS. The kernel writes it in `__dev_set_promiscuity()` whenever an interface's
//! IFF_PROMISC flag changes, by whatever route (`ip link … promisc`, SIOCSIFFLAGS, a packet
//! socket joining or leaving PACKET_MR_PROMISC), and logs `<dev>: entered|left promiscuous mode`
//! right there, in the context of the task that caused it. `printk:console` sees that message; no
//! other tracepoint sees the flag change (`dev_set_promiscuity()` sends no netlink notification).
//!
//! The record's SYSCALL part comes at the exit of the syscall the task was in, for the syscalls
//! in `PROMISC_SYSCALLS`: seen by `syscall::sys_exit` (tracepoints) or by a
//! `syscalls:sys_exit_NAME` tracepoint on each of them (with trampolines, which leave out the
//! every-syscall program: an fexit on these hot syscall entry points would be cheaper per call,
//! but patching a function other CPUs are running hung Debian's 6.1 under QEMU in attach and
//! detach, in the smoke suite).

use aya_ebpf::{
    helpers::generated::{bpf_get_stack, bpf_jiffies64, bpf_probe_read_kernel_str},
    macros::{map, tracepoint},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::TracePointContext,
    EbpfContext,
};
use sensor_common::{Promisc, CTR_RINGBUF_FULL, KIND_PROMISC, PROMISC_SYSCALLS, PROMISC_TEXT_MAX};

use crate::{
    kernel::{audit_ids, current_task, header, off, read, task_ns, user_regs},
    maps::{count, EVENTS},
    path::send_task_paths,
    syscall_exit::{send_syscall_exit, Exit},
};

/// Threads in a syscall that changed promiscuity, until its exit.
#[map]
static PROMISC_PENDING: LruHashMap<u32, u32> = LruHashMap::with_max_entries(1024, 0);
/// When (jiffies: the cheapest clock a tracing program may read) the last change was put in
/// `PROMISC_PENDING`.
#[map]
static PROMISC_LAST_JIFFIES: Array<u64> = Array::with_max_entries(1, 0);

/// `task_work_run()`'s code, [start, end), from /proc/kallsyms (set by the agent; zeros when
/// unknown). A change made while it runs comes after the syscall's exit: on kernels where
/// close(2) leaves the last `fput()` to task work (before 6.7: a packet socket leaving
/// PACKET_MR_PROMISC as it is closed), the syscall still shows in the registers but its exit
/// has passed, and the kernel writes the record alone.
#[unsafe(no_mangle)]
pub static TASK_WORK_RUN: [u64; 2] = [0; 2];

/// Frames of the kernel stack looked at for `task_work_run()`.
const STACK_FRAMES: usize = 32;

#[map]
static STACK: PerCpuArray<[u64; STACK_FRAMES]> = PerCpuArray::with_max_entries(1, 0);

const SUFFIX: &[u8; 16] = b"promiscuous mode";
/// write(2)/writev(2): how /dev/kmsg is written. A console line arriving through them is a
/// process's text, not the kernel's report, and is ignored.
use sensor_common::syscalls::x86_64::{CLOSE, IOCTL, SENDMSG, SENDTO, SETSOCKOPT, WRITE, WRITEV};

#[tracepoint]
pub fn console(ctx: TracePointContext) -> u32 {
    // Record: common fields (8 bytes), then `__data_loc char[] msg`: offset | length << 16.
    let loc: u32 = crate::kernel::tp_field(&ctx, 8);
    let mut text = [0u8; PROMISC_TEXT_MAX];
    if (loc >> 16) as usize > PROMISC_TEXT_MAX {
        return 0;
    }
    let src = ctx.as_ptr() as u64 + (loc & 0xffff) as u64;
    // The message is NUL-terminated; the helper counts the NUL.
    let len = unsafe {
        bpf_probe_read_kernel_str(
            text.as_mut_ptr() as *mut _,
            PROMISC_TEXT_MAX as u32,
            src as *const _,
        )
    };
    if len <= 0 {
        return 0;
    }
    let len = len as usize;
    // The length counts the NUL; a trailing newline may remain too.
    let mut end = len;
    for _ in 0..2 {
        let last = text[(end.wrapping_sub(1)) & (PROMISC_TEXT_MAX - 1)];
        if end > 0 && (last == 0 || last == b'\n') {
            end -= 1;
        }
    }
    if end < SUFFIX.len() {
        return 0;
    }
    for (i, &c) in SUFFIX.iter().enumerate() {
        if text[(end - SUFFIX.len() + i) & (PROMISC_TEXT_MAX - 1)] != c {
            return 0;
        }
    }
    promisc(&ctx, &text, end as u32);
    0
}

/// Whether the kernel stack passes through `task_work_run()`: the syscall has exited.
#[inline(always)]
fn in_task_work(ctx: &TracePointContext) -> bool {
    let range = unsafe { core::ptr::read_volatile(&TASK_WORK_RUN) };
    if range[0] == 0 {
        return false;
    }
    let Some(frames) = STACK.get_ptr_mut(0) else {
        return false;
    };
    let frames = unsafe { &mut *frames };
    let n = unsafe {
        bpf_get_stack(
            ctx.as_ptr(),
            frames.as_mut_ptr() as *mut _,
            (STACK_FRAMES * 8) as u32,
            0,
        )
    };
    if n <= 0 {
        return false;
    }
    // Every slot, not the first n: the helper zeroes what it did not fill, and a loop of a
    // fixed count keeps older verifiers (6.1) from losing the bound of the pointer.
    frames.iter().any(|&ip| range[0] <= ip && ip < range[1])
}

#[inline(always)]
fn promisc(ctx: &TracePointContext, text: &[u8; PROMISC_TEXT_MAX], len: u32) {
    let regs = user_regs();
    let nr: i64 = if regs != 0 {
        read(regs, off!(regs_orig_ax))
    } else {
        -1
    };
    if nr == WRITE as i64 || nr == WRITEV as i64 {
        return;
    }
    let exit_follows = nr >= 0 && PROMISC_SYSCALLS.contains(&(nr as u32)) && !in_task_work(ctx);
    let hdr = header(KIND_PROMISC);
    let task = current_task();
    if !exit_follows {
        // No SyscallExit will bring them.
        send_task_paths(hdr, task);
    }
    let Some(mut entry) = EVENTS.reserve::<Promisc>(0) else {
        count(CTR_RINGBUF_FULL);
        return;
    };
    let p = unsafe { &mut *entry.as_mut_ptr() };
    p.hdr = hdr;
    p.nr = nr as i32;
    p.exit_follows = exit_follows as u32;
    (p.auid, p.ses, p.uid, p.gid) = audit_ids(task);
    p.ns = task_ns(task);
    p.text_len = len;
    p._pad = 0;
    p.text = *text;
    entry.submit(crate::maps::wake());
    if exit_follows && PROMISC_PENDING.insert(&hdr.tid, &(nr as u32), 0).is_ok() {
        if let Some(last) = PROMISC_LAST_JIFFIES.get_ptr_mut(0) {
            // Any CPU's recent stamp will do: no atomic needed.
            unsafe { core::ptr::write_volatile(last, bpf_jiffies64()) };
        }
    }
}

/// At a syscall exit shortly after a promiscuity change: the SyscallExit to send when this
/// thread's change is pending.
#[inline(always)]
pub fn promisc_exit(nr: u64, regs: u64) -> Option<Exit> {
    let tid = aya_ebpf::helpers::bpf_get_current_pid_tgid() as u32;
    unsafe { PROMISC_PENDING.get(&tid) }?;
    let _ = PROMISC_PENDING.remove(&tid);
    Some(Exit::plain(nr, regs))
}

/// The exit of syscall `nr` (with trampolines: a `syscalls:sys_exit_NAME` tracepoint each).
#[inline(always)]
fn promisc_syscall_exit(ctx: &TracePointContext, nr: u32) -> u32 {
    if !recent() {
        return 0;
    }
    let regs = user_regs();
    let ret = crate::kernel::exit_ret(ctx);
    if regs != 0 {
        if let Some(exit) = promisc_exit(nr as u64, regs) {
            send_syscall_exit(exit, ret);
        }
    }
    0
}

#[tracepoint]
pub fn promisc_exit_ioctl(ctx: TracePointContext) -> u32 {
    promisc_syscall_exit(&ctx, IOCTL)
}

#[tracepoint]
pub fn promisc_exit_sendto(ctx: TracePointContext) -> u32 {
    promisc_syscall_exit(&ctx, SENDTO)
}

#[tracepoint]
pub fn promisc_exit_sendmsg(ctx: TracePointContext) -> u32 {
    promisc_syscall_exit(&ctx, SENDMSG)
}

#[tracepoint]
pub fn promisc_exit_setsockopt(ctx: TracePointContext) -> u32 {
    promisc_syscall_exit(&ctx, SETSOCKOPT)
}

#[tracepoint]
pub fn promisc_exit_close(ctx: TracePointContext) -> u32 {
    promisc_syscall_exit(&ctx, CLOSE)
}

/// 1 to 10 seconds, whatever CONFIG_HZ (100 to 1000) is.
const RECENT_JIFFIES: u64 = 1000;

/// Whether a promiscuity change happened in the last seconds, on any CPU: only then does
/// `syscall::sys_exit` look for the exiting thread in the pending map. (The change and its
/// syscall's exit are microseconds apart.)
#[inline(always)]
pub fn recent() -> bool {
    let Some(last) = PROMISC_LAST_JIFFIES.get(0) else {
        return false;
    };
    let last = unsafe { core::ptr::read_volatile(last) };
    last != 0 && unsafe { bpf_jiffies64() }.saturating_sub(last) < RECENT_JIFFIES
}
