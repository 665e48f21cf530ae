//! libpam: the API calls (`pam_authenticate` … `pam_chauthtok`) with their result and the
//! handle's items (service, user, rhost, ruser, tty), and the result of each watched module's
//! `pam_sm_*`, so that a denial is attributed to the module that made it. The items are read
//! from libpam's private handle at offsets the agent found at start-up (`PAM_LAYOUT`); the
//! authentication tokens are never read.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_attach_cookie, bpf_probe_read_user_str},
    },
    macros::{map, uprobe, uretprobe},
    maps::LruHashMap,
    programs::{ProbeContext, RetProbeContext},
    EbpfContext,
};
use sensor_common::{
    PamCall, PamLayout, PamModule, CTR_PAM_UNMATCHED, CTR_RINGBUF_FULL, KIND_PAM_CALL,
    KIND_PAM_MODULE, PAM_ITEM_MAX,
};

use crate::{
    kernel::{audit_ids, current_task, header, offset, read_user, task_ns},
    maps::{count, EVENTS},
    path::send_task_paths,
};

/// Filled in by the agent before load.
#[unsafe(no_mangle)]
pub static PAM_LAYOUT: PamLayout = unsafe { core::mem::zeroed() };

/// The handle and flags of the API call each thread is in.
#[map]
static PAM_HANDLES: LruHashMap<u32, [u64; 2]> = LruHashMap::with_max_entries(4096, 0);

#[uprobe]
pub fn pam_api_enter(ctx: ProbeContext) -> u32 {
    on_pam_api_enter(&ctx)
}

/// The same program for a `uprobe_multi` link (one link per library file), which the
/// loader chooses where the kernel has them: it attaches and detaches far faster.
#[uprobe(multi)]
pub fn pam_api_enter_multi(ctx: ProbeContext) -> u32 {
    on_pam_api_enter(&ctx)
}

#[inline(always)]
fn on_pam_api_enter(ctx: &ProbeContext) -> u32 {
    let pamh: u64 = ctx.arg(0).unwrap_or(0);
    let flags: u64 = ctx.arg::<u32>(1).unwrap_or(0) as u64;
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = PAM_HANDLES.insert(&tid, &[pamh, flags], 0);
    crate::login::remember(tid);
    0
}

#[uretprobe]
pub fn pam_api_exit(ctx: RetProbeContext) -> u32 {
    on_pam_api_exit(&ctx)
}

/// The same program for a `uprobe_multi` link (one link per library file), which the
/// loader chooses where the kernel has them: it attaches and detaches far faster.
#[uretprobe(multi)]
pub fn pam_api_exit_multi(ctx: RetProbeContext) -> u32 {
    on_pam_api_exit(&ctx)
}

#[inline(always)]
fn on_pam_api_exit(ctx: &RetProbeContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let Some(&[pamh, flags]) = (unsafe { PAM_HANDLES.get(&tid) }) else {
        count(CTR_PAM_UNMATCHED);
        return 0;
    };
    let _ = PAM_HANDLES.remove(&tid);
    crate::login::forget(tid);
    let func = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    let retval: i32 = ctx.ret();
    let task = current_task();
    let hdr = header(KIND_PAM_CALL);
    send_task_paths(hdr, task);
    let Some(mut entry) = EVENTS.reserve::<PamCall>(0) else {
        count(CTR_RINGBUF_FULL);
        return 0;
    };
    let c = unsafe { &mut *entry.as_mut_ptr() };
    c.hdr = hdr;
    c.func = func;
    c.retval = retval;
    c.flags = flags as u32;
    c._pad = 0;
    let (auid, ses, uid, _gid) = audit_ids(task);
    (c.auid, c.ses, c.uid) = (auid, ses, uid);
    c.ns = task_ns(task);
    let known = unsafe { core::ptr::read_volatile(&PAM_LAYOUT.known) } != 0;
    c.has_items = known as u32;
    for i in 0..5 {
        c.items[i][0] = 0;
        if !known {
            continue;
        }
        let off = offset(&PAM_LAYOUT.item[i]);
        let ptr: u64 = read_user(pamh + off);
        if ptr != 0 {
            unsafe {
                bpf_probe_read_user_str(
                    c.items[i].as_mut_ptr() as *mut _,
                    PAM_ITEM_MAX as u32,
                    ptr as *const _,
                )
            };
        }
    }
    entry.submit(crate::maps::wake());
    0
}

#[uretprobe]
pub fn pam_sm_exit(ctx: RetProbeContext) -> u32 {
    on_pam_sm_exit(&ctx)
}

/// The same program for a `uprobe_multi` link (one link per library file), which the
/// loader chooses where the kernel has them: it attaches and detaches far faster.
#[uretprobe(multi)]
pub fn pam_sm_exit_multi(ctx: RetProbeContext) -> u32 {
    on_pam_sm_exit(&ctx)
}

#[inline(always)]
fn on_pam_sm_exit(ctx: &RetProbeContext) -> u32 {
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let Some(mut entry) = EVENTS.reserve::<PamModule>(0) else {
        count(CTR_RINGBUF_FULL);
        return 0;
    };
    let m = unsafe { &mut *entry.as_mut_ptr() };
    m.hdr = header(KIND_PAM_MODULE);
    m.module = (cookie >> 8) as u32;
    m.func = (cookie & 0xff) as u32;
    m.retval = ctx.ret();
    m._pad = 0;
    entry.submit(crate::maps::wake());
    0
}
