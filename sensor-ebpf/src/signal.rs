//! ANOM_ABEND: the kernel writes it from `do_coredump()` → `audit_core_dumps()` when a
//! core-dumping signal other than SIGQUIT kills a task, whether or not a core file is written.
//! `signal:signal_deliver` fires as `get_signal()` dequeues the signal; with the default action
//! (SIG_DFL) a core-dumping signal leads to `do_coredump()` right after.

use aya_ebpf::{helpers::bpf_get_current_comm, macros::tracepoint, programs::TracePointContext};
use sensor_common::{Abend, CTR_RINGBUF_FULL, KIND_ABEND, SIGNAL_UNKILLABLE};

use crate::{
    kernel::{audit_ids, current_task, header, off, read, task_ns},
    maps::{count, EVENTS},
    path::send_task_paths,
};

/// SIG_KERNEL_COREDUMP_MASK without SIGQUIT (3), which `audit_core_dumps()` skips: SIGILL,
/// SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS.
const ABEND_SIGNALS: u64 =
    1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 11 | 1 << 24 | 1 << 25 | 1 << 31;

#[tracepoint]
pub fn signal_deliver(ctx: TracePointContext) -> u32 {
    // Record: common fields (8 bytes), int sig, int errno, int code, unsigned long sa_handler.
    let sig: i32 = crate::kernel::tp_field(&ctx, 8);
    let handler: u64 = crate::kernel::tp_field(&ctx, 24);
    if !(1..64).contains(&sig) || ABEND_SIGNALS & (1u64 << sig) == 0 || handler != 0 {
        return 0;
    }
    abend(sig as u32);
    0
}

#[inline(always)]
fn abend(sig: u32) {
    let task = current_task();
    // get_signal() drops a default-action signal sent to a (container) init right after this
    // tracepoint; a fault's forced signal has cleared the flag first.
    let signal: u64 = read(task, off!(task_signal));
    let flags: u32 = read(signal, off!(signal_flags));
    if flags & SIGNAL_UNKILLABLE != 0 {
        return;
    }
    let hdr = header(KIND_ABEND);
    send_task_paths(hdr, task);

    let Some(mut entry) = EVENTS.reserve::<Abend>(0) else {
        count(CTR_RINGBUF_FULL);
        return;
    };
    let a = unsafe { &mut *entry.as_mut_ptr() };
    a.hdr = hdr;
    a.sig = sig;
    (a.auid, a.ses, a.uid, a.gid) = audit_ids(task);
    a._pad = 0;
    a.ns = task_ns(task);
    a.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    entry.submit(crate::maps::wake());
}
