//! User-space audit messages: who sent them, and whether the kernel would have taken them.

use super::{standalone_context, Normaliser};
use crate::{assemble::AssembledUserMessage, event::UserMessageEvent, read::RawEvent};

const CAP_AUDIT_WRITE: u64 = 1 << 29;
/// The initial pid namespace's inode number (the kernel's PROC_PID_INIT_INO).
const INIT_PID_NS: u32 = 0xEFFF_FFFC;

/// The types the kernel relays from user space (`audit_receive_msg()`): AUDIT_USER, the
/// 1100-1199 block and the 2100-2999 block. It refuses anything else, and so does the sensor.
pub fn is_user_type(t: u32) -> bool {
    t == 1005 || (1100..=1199).contains(&t) || (2100..=2999).contains(&t)
}

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
        if !is_user_type(msg_type) {
            return None;
        }
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
