//! User-space audit messages: libaudit's `__audit_send(fd, type, data, size, seq)` is where
//! `audit_log_user_message()`, `audit_log_acct_message()`, `audit_log_user_comm_message()`,
//! `audit_log_user_avc_message()` (and so libpam's `_pam_auditlog()` and
//! `pam_modutil_audit_write()`) all end, through the library-internal
//! `audit_send_user_message()` and `audit_send()`. The message is captured there, with its type
//! and text as the kernel would receive them, whether or not the kernel takes it. Control
//! requests (status, rules) pass there too and are skipped by type.

use aya_ebpf::{
    helpers::generated::bpf_probe_read_user_str, macros::uprobe, programs::ProbeContext,
};
use sensor_common::{is_user_msg_type, UserMsg, KIND_USER_MSG, USER_MSG_FIXED, USER_MSG_TEXT_MAX};

use crate::{
    kernel::{audit_ids, current_task, header, off, read, task_ns},
    maps::{output_prefix, SCRATCH_USER_MSG},
    path::send_task_paths,
};

#[uprobe]
pub fn audit_send(ctx: ProbeContext) -> u32 {
    let msg_type: u32 = ctx.arg::<i32>(1).unwrap_or(0) as u32;
    let data: u64 = ctx.arg(2).unwrap_or(0);
    if is_user_msg_type(msg_type) {
        user_message(msg_type, data);
    }
    0
}

#[inline(always)]
fn user_message(msg_type: u32, text: u64) {
    let Some(m) = SCRATCH_USER_MSG.get_ptr_mut(0) else {
        return;
    };
    let m = unsafe { &mut *m };
    let task = current_task();
    m.hdr = header(KIND_USER_MSG);
    send_task_paths(m.hdr, task);
    m.msg_type = msg_type;
    let n = unsafe {
        bpf_probe_read_user_str(
            m.text.as_mut_ptr() as *mut _,
            (USER_MSG_TEXT_MAX + 1) as u32,
            text as *const _,
        )
    };
    // The helper counts the NUL. A full buffer means the text may go on.
    let len = if n > 0 { (n - 1) as usize } else { 0 };
    m.len = len as u32;
    m.truncated = (n <= 0 || len >= USER_MSG_TEXT_MAX) as u32;
    let (auid, ses, uid, _gid) = audit_ids(task);
    (m.auid, m.ses, m.uid) = (auid, ses, uid);
    let cred: u64 = read(task, off!(task_cred));
    m.cap_effective = read(cred, off!(cred_cap_effective));
    m.ns = task_ns(task);
    output_prefix(m as *const UserMsg, USER_MSG_FIXED + len);
}
