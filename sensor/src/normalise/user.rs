//! User-space audit messages: who sent them, and whether the kernel would have taken them.

use super::{standalone_context, Normaliser};
use crate::{assemble::AssembledUserMessage, event::UserMessageEvent, read::record::UserMsg};

const CAP_AUDIT_WRITE: u64 = 1 << 29;
/// The initial pid namespace's inode number (the kernel's PROC_PID_INIT_INO).
const INIT_PID_NS: u32 = 0xEFFF_FFFC;

impl Normaliser {
    pub fn user_message(&mut self, a: AssembledUserMessage) -> UserMessageEvent {
        let m = a.msg;
        let (exe, container, paths_truncated) =
            standalone_context(a.paths.exe.as_ref(), a.paths.cgroup.as_ref(), &m.ns);
        UserMessageEvent {
            stamp: self.stamp_at(m.origin.mono_ns),
            boot_ns: super::clock::boot_ns(m.origin.mono_ns),
            msg_type: m.msg_type,
            pid: m.origin.pid,
            uid: m.uid,
            auid: m.auid,
            ses: m.ses,
            trusted: kernel_takes(&m),
            text: m.text,
            truncated: m.truncated,
            exe,
            container,
            paths_truncated,
        }
    }
}

/// `audit_netlink_ok()` with audit on: a sender in the initial user namespace (else
/// ECONNREFUSED) and the initial pid namespace (else EPERM), and `netlink_capable(skb,
/// CAP_AUDIT_WRITE)`: CAP_AUDIT_WRITE in the initial user namespace both in the sender's
/// credentials and in those the socket was opened with. Capable in the initial namespace means
/// credentials of that namespace with the bit effective (`cap_capable()`): CAP_AUDIT_WRITE in a
/// child namespace (`unshare -Ur`) does not count. LSM hooks on the capability check are not
/// modelled.
pub fn kernel_takes(m: &UserMsg) -> bool {
    let capable = |caps: u64, level: u32| level == 0 && caps & CAP_AUDIT_WRITE != 0;
    m.ns.pid_ns == INIT_PID_NS
        && capable(m.cap_effective, m.user_ns_level)
        && capable(m.sock_cap_effective, m.sock_user_ns_level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::record::Origin;
    use sensor_common::{TaskNs, NS_LEVEL_UNKNOWN};

    fn msg(caps: u64, level: u32, sock_caps: u64, sock_level: u32, pid_ns: u32) -> UserMsg {
        UserMsg {
            origin: Origin::default(),
            msg_type: 1112,
            truncated: false,
            uid: 0,
            auid: u32::MAX,
            ses: u32::MAX,
            cap_effective: caps,
            user_ns_level: level,
            sock_cap_effective: sock_caps,
            sock_user_ns_level: sock_level,
            ns: TaskNs {
                pid_ns,
                ..TaskNs::default()
            },
            text: b"op=login acct=\"root\" res=success".to_vec(),
        }
    }

    #[test]
    fn only_cap_audit_write_in_the_initial_namespaces_is_trusted() {
        const ALL: u64 = u64::MAX >> 23;
        const ONLY: u64 = CAP_AUDIT_WRITE;
        const OTHER_PID_NS: u32 = 4026532000;
        // (sender caps, sender user ns level, socket caps, socket level, pid ns, trusted)
        for (caps, level, sock, sock_level, pid_ns, want) in [
            (ALL, 0, ALL, 0, INIT_PID_NS, true),
            (ONLY, 0, ONLY, 0, INIT_PID_NS, true),
            // nobody: no capability.
            (0, 0, 0, 0, INIT_PID_NS, false),
            // Every capability but CAP_AUDIT_WRITE.
            (ALL & !ONLY, 0, ALL, 0, INIT_PID_NS, false),
            // `unshare -Ur`: every capability, in a child user namespace; socket opened there.
            (ALL, 1, ALL, 1, INIT_PID_NS, false),
            // A socket opened in the initial namespace, sent on from a child one, or the reverse.
            (ALL, 1, ALL, 0, INIT_PID_NS, false),
            (ALL, 0, ALL, 1, INIT_PID_NS, false),
            // A socket opened by someone without CAP_AUDIT_WRITE.
            (ALL, 0, 0, 0, INIT_PID_NS, false),
            // A container's pid namespace.
            (ALL, 0, ALL, 0, OTHER_PID_NS, false),
            // Unreadable namespaces never pass for the initial ones.
            (ALL, NS_LEVEL_UNKNOWN, ALL, 0, INIT_PID_NS, false),
            (ALL, 0, ALL, NS_LEVEL_UNKNOWN, INIT_PID_NS, false),
            (ALL, 0, ALL, 0, 0, false),
        ] {
            let m = msg(caps, level, sock, sock_level, pid_ns);
            assert_eq!(kernel_takes(&m), want, "{m:?}");
        }
    }
}
