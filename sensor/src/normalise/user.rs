//! User-space audit messages: who sent them, and whether the kernel would have taken them.

use super::{standalone_context, Normaliser};
use crate::{assemble::AssembledUserMessage, event::UserMessageEvent, read::RawEvent};

const CAP_AUDIT_WRITE: u64 = 1 << 29;
/// The initial pid namespace's inode number (the kernel's PROC_PID_INIT_INO).
const INIT_PID_NS: u32 = 0xEFFF_FFFC;

impl Normaliser {
    pub fn user_message(&mut self, a: AssembledUserMessage) -> Option<UserMessageEvent> {
        let RawEvent::UserMsg {
            hdr,
            msg_type,
            truncated,
            uid,
            auid,
            ses,
            cap_effective,
            ns,
            text,
        } = a.msg
        else {
            return None;
        };
        let (exe, container, paths_truncated) =
            standalone_context(a.paths.exe.as_ref(), a.paths.cgroup.as_ref(), &ns);
        Some(UserMessageEvent {
            stamp: self.stamp_at(hdr.boot_ns),
            boot_ns: hdr.boot_ns,
            msg_type,
            pid: hdr.pid,
            uid,
            auid,
            ses,
            text,
            truncated,
            // audit_netlink_ok(): CAP_AUDIT_WRITE, and only from the initial pid namespace.
            trusted: cap_effective & CAP_AUDIT_WRITE != 0 && ns.pid_ns == INIT_PID_NS,
            exe,
            container,
            paths_truncated,
        })
    }
}
