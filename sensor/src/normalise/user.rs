//! User-space audit messages: who sent them, and whether the kernel would have taken them.

use super::{standalone_context, Normaliser};
use crate::{assemble::AssembledUserMessage, event::UserMessageEvent};

const CAP_AUDIT_WRITE: u64 = 1 << 29;
/// The initial pid namespace's inode number (the kernel's PROC_PID_INIT_INO).
const INIT_PID_NS: u32 = 0xEFFF_FFFC;

impl Normaliser {
    pub fn user_message(&mut self, a: AssembledUserMessage) -> UserMessageEvent {
        let m = a.msg;
        let (exe, container, paths_truncated) =
            standalone_context(a.paths.exe.as_ref(), a.paths.cgroup.as_ref(), &m.ns);
        UserMessageEvent {
            stamp: self.stamp_at(m.origin.boot_ns),
            boot_ns: m.origin.boot_ns,
            msg_type: m.msg_type,
            pid: m.origin.pid,
            uid: m.uid,
            auid: m.auid,
            ses: m.ses,
            text: m.text,
            truncated: m.truncated,
            // audit_netlink_ok(): CAP_AUDIT_WRITE, and only from the initial pid namespace.
            trusted: m.cap_effective & CAP_AUDIT_WRITE != 0 && m.ns.pid_ns == INIT_PID_NS,
            exe,
            container,
            paths_truncated,
        }
    }
}
