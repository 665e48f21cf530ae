//! User-space audit messages: who sent them, and whether the kernel would have taken them.

use super::{container, Normaliser};
use crate::{
    assemble::AssembledUserMessage,
    event::{PathsTruncated, UserMessageEvent},
    read::RawEvent,
};

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
            exe: a.paths.exe.as_ref().map(|p| p.to_path()),
            container: container(a.paths.cgroup.as_ref(), &ns),
            paths_truncated: PathsTruncated {
                cwd: false,
                exe: a.paths.exe.as_ref().is_some_and(|p| p.truncated),
                cgroup: a.paths.cgroup.as_ref().is_none_or(|p| p.truncated),
            },
        })
    }
}
