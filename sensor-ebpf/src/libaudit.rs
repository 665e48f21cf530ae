//! User-space audit messages: libaudit's `__audit_send(fd, type, data, size, seq)` is where
//! `audit_log_user_message()`, `audit_log_acct_message()`, `audit_log_user_comm_message()`,
//! `audit_log_user_avc_message()` (and so libpam's `_pam_auditlog()` and
//! `pam_modutil_audit_write()`) all end, through the library-internal
//! `audit_send_user_message()` and `audit_send()`. Control requests (status, rules) pass there
//! too and are skipped by type.
//!
//! A message is written only when it reached kernel audit, and with what the kernel judges
//! trust by. The uprobe notes that the thread is about to send (or counts a send libaudit gives
//! up before any syscall: a negative fd, a text too long); the
//! `sendto()` that follows is seen at its exit (`syscalls:sys_exit_sendto`). There
//! the kernel has received the frame or refused it: only a complete send to a NETLINK_AUDIT
//! socket is written, its type and text read from the bytes sent, with the sender's credentials
//! and those the socket was opened with (`audit_netlink_ok()` and `netlink_capable()` check
//! both), never the library's view of the kernel's answer.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_user_str},
    },
    macros::{map, tracepoint, uprobe},
    maps::LruHashMap,
    programs::{ProbeContext, TracePointContext},
};
use aya_log_ebpf::debug;
use sensor_common::{
    is_user_msg_type, UserMsg, CTR_READ_ERROR, CTR_USER_MSG_UNSENT, CTR_USER_MSG_UNTRACKED,
    KIND_USER_MSG, NS_LEVEL_UNKNOWN, USER_MSG_FIXED, USER_MSG_TEXT_MAX,
};

use crate::{
    kernel::{
        audit_ids, current_task, fd_file, header, off, read, read_user, syscall_args, task_ns,
        user_regs,
    },
    maps::{count, output_prefix, SCRATCH_USER_MSG},
    path::send_task_paths,
};

/// libaudit's MAX_AUDIT_MESSAGE_LENGTH: `__audit_send()` gives up (EINVAL) before sending when
/// the frame, NLMSG_SPACE(size), is longer.
const MAX_AUDIT_MESSAGE_LENGTH: u32 = 8970;
const NLMSG_HDRLEN: u64 = 16;
const EINTR: i64 = 4;
const AF_NETLINK: u16 = 16;
const NETLINK_AUDIT: u16 = 9;
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

/// Threads inside `__audit_send()` whose `sendto()` has not returned yet: the fd they send on.
#[map]
static AUDIT_SENDS: LruHashMap<u32, i32> = LruHashMap::with_max_entries(4096, 0);

#[uprobe]
pub fn audit_send(ctx: ProbeContext) -> u32 {
    on_audit_send(&ctx)
}

/// The same program for a `uprobe_multi` link (one link per library file), which the
/// loader chooses where the kernel has them: it attaches and detaches far faster.
#[uprobe(multi)]
pub fn audit_send_multi(ctx: ProbeContext) -> u32 {
    on_audit_send(&ctx)
}

#[inline(always)]
fn on_audit_send(ctx: &ProbeContext) -> u32 {
    let fd: i32 = ctx.arg(0).unwrap_or(-1);
    let msg_type: u32 = ctx.arg::<i32>(1).unwrap_or(0) as u32;
    let size: u32 = ctx.arg(3).unwrap_or(0);
    if !is_user_msg_type(msg_type) {
        return 0;
    }
    // `__audit_send()` returns at once for these (EBADF, EINVAL), in 32-bit arithmetic as it
    // computes them: no syscall, nothing reaches the kernel.
    if fd < 0 || size.wrapping_add(NLMSG_HDRLEN as u32 + 3) & !3 > MAX_AUDIT_MESSAGE_LENGTH {
        count(CTR_USER_MSG_UNSENT);
        debug!(ctx, "user message not sent: fd {} size {}", fd, size);
        return 0;
    }
    let tid = bpf_get_current_pid_tgid() as u32;
    if AUDIT_SENDS.insert(&tid, &fd, 0).is_err() {
        count(CTR_USER_MSG_UNTRACKED);
    }
    0
}

/// Every `sendto()`'s exit, with trampolines (with tracepoints `syscall::sys_exit` calls
/// [`sendto_exit`]).
#[tracepoint]
pub fn sys_exit_sendto(ctx: TracePointContext) -> u32 {
    sendto_exit(crate::kernel::exit_ret(&ctx));
    0
}

/// At a `sendto()`'s exit: for a thread in `__audit_send()`, writes the message if the kernel
/// received it, and counts it otherwise.
#[inline(always)]
pub(crate) fn sendto_exit(ret: i64) {
    let tid = bpf_get_current_pid_tgid() as u32;
    if let Some(&fd) = unsafe { AUDIT_SENDS.get(&tid) } {
        send_exit(tid, fd, ret);
    }
}

#[inline(always)]
fn send_exit(tid: u32, fd: i32, ret: i64) {
    let regs = user_regs();
    let a = syscall_args(regs);
    // A signal handler's send, or a send interrupted before anything went (libaudit sends
    // again): the send is still to come.
    if regs == 0 || a[0] as i32 != fd || ret == -EINTR {
        return;
    }
    let _ = AUDIT_SENDS.remove(&tid);
    let (frame, size) = (a[1], a[2]);
    // The netlink header as the kernel parses it: nlmsg_len (u32), nlmsg_type (u16).
    let nlmsg_len = read_user::<u32>(frame) as u64;
    let msg_type = read_user::<u16>(frame + 4) as u32;
    // A frame the kernel would not take as one message of at least a character and its NUL
    // (`audit_receive_msg()`: "data_len < 2").
    let whole = ret >= 0 && ret as u64 == size && nlmsg_len >= NLMSG_HDRLEN + 2;
    if !whole || nlmsg_len > size || !is_user_msg_type(msg_type) {
        count(CTR_USER_MSG_UNSENT);
        debug!(
            &(),
            "user message not sent: sendto {} of {} bytes", ret, size
        );
        return;
    }
    let Some(sock_cred) = audit_socket_cred(fd) else {
        count(CTR_USER_MSG_UNSENT);
        debug!(
            &(),
            "user message not sent: fd {} is no NETLINK_AUDIT socket", fd
        );
        return;
    };
    user_message(
        msg_type,
        frame + NLMSG_HDRLEN,
        nlmsg_len - NLMSG_HDRLEN,
        sock_cred,
    );
}

/// The credentials socket `fd` of the current task was opened with (`file->f_cred`), when it is
/// a NETLINK_AUDIT socket.
#[inline(always)]
fn audit_socket_cred(fd: i32) -> Option<u64> {
    if fd < 0 {
        return None;
    }
    let file = fd_file(current_task(), fd as u64);
    if file == 0 {
        return None;
    }
    let inode: u64 = read(file, off!(file_f_inode));
    if read::<u16>(inode, off!(inode_mode)) & S_IFMT != S_IFSOCK {
        return None;
    }
    // A socket's file holds its `struct socket`.
    let sock: u64 = read(file, off!(file_private_data));
    let sk: u64 = read(sock, off!(socket_sk));
    let family: u16 = read(sk, off!(sock_family));
    let protocol: u16 = read(sk, off!(sock_protocol));
    (family == AF_NETLINK && protocol == NETLINK_AUDIT).then(|| read(file, off!(file_f_cred)))
}

/// The `level` of the user namespace of credentials `cred`; [`NS_LEVEL_UNKNOWN`] when it cannot
/// be read, so that a failed read never passes for the initial namespace (level 0).
#[inline(always)]
fn user_ns_level(cred: u64) -> u32 {
    let user_ns: u64 = read(cred, off!(cred_user_ns));
    if user_ns == 0 {
        return NS_LEVEL_UNKNOWN;
    }
    let mut level: i32 = 0;
    let ret = unsafe {
        bpf_probe_read_kernel(
            &mut level as *mut i32 as *mut _,
            4,
            (user_ns + off!(userns_level)) as *const _,
        )
    };
    if ret != 0 {
        count(CTR_READ_ERROR);
        return NS_LEVEL_UNKNOWN;
    }
    level as u32
}

/// Sends the message the kernel received: `data_len` bytes at `text` (the frame's payload).
#[inline(always)]
fn user_message(msg_type: u32, text: u64, data_len: u64, sock_cred: u64) {
    let Some(m) = SCRATCH_USER_MSG.get_ptr_mut(0) else {
        return;
    };
    let m = unsafe { &mut *m };
    let task = current_task();
    m.hdr = header(KIND_USER_MSG);
    send_task_paths(m.hdr, task);
    m.msg_type = msg_type;
    // The kernel ends the text at the payload's last byte (`str[data_len - 1] = '\0'`), at its
    // first NUL, and after AUDIT_MESSAGE_TEXT_MAX bytes; the helper reads at most `max - 1`
    // bytes and counts the NUL it adds. A full buffer means the text may go on.
    let max = if data_len > USER_MSG_TEXT_MAX as u64 + 1 {
        USER_MSG_TEXT_MAX as u64 + 1
    } else {
        data_len
    };
    let n = unsafe {
        bpf_probe_read_user_str(m.text.as_mut_ptr() as *mut _, max as u32, text as *const _)
    };
    let len = if n > 0 { (n - 1) as usize } else { 0 };
    m.len = len as u32;
    m.truncated = (n <= 0 || len >= USER_MSG_TEXT_MAX) as u32;
    let (auid, ses, uid, _gid) = audit_ids(task);
    (m.auid, m.ses, m.uid) = (auid, ses, uid);
    let cred: u64 = read(task, off!(task_cred));
    m.cap_effective = read(cred, off!(cred_cap_effective));
    m.user_ns_level = user_ns_level(cred);
    m.sock_cap_effective = read(sock_cred, off!(cred_cap_effective));
    m.sock_user_ns_level = user_ns_level(sock_cred);
    m.ns = task_ns(task);
    output_prefix(m as *const UserMsg, USER_MSG_FIXED + len);
}
