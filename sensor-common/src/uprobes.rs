//! Wire types of the user-space probes: libaudit's messages and libpam's calls.

use crate::{Header, TaskNs};

/// The types the kernel relays from user space (`audit_receive_msg()`): AUDIT_USER, the
/// 1100-1199 block and the 2100-2999 block. Anything else a program hands to libaudit is a
/// control request (status, rules), not a message.
pub const fn is_user_msg_type(t: u32) -> bool {
    t == 1005 || (t >= 1100 && t <= 1199) || (t >= 2100 && t <= 2999)
}

/// The kernel keeps at most AUDIT_MESSAGE_TEXT_MAX bytes of a user message's text.
pub const USER_MSG_TEXT_MAX: usize = 8560;

/// A user-space audit message a program sent to kernel audit through libaudit's
/// `__audit_send()` (where every libaudit logging function, and so libpam, ends), as the kernel
/// received it: sent at the exit of the `sendto()` that delivered it to a NETLINK_AUDIT socket,
/// with the type and text read from the bytes sent, never for a send that did not reach the
/// kernel. Preceded by PATH_TASK_EXE and PATH_TASK_CGROUP of the same thread. Variable length:
/// only `len` bytes of `text` are sent.
///
/// Whether the kernel took it is the agent's to say, from the credentials read here as
/// `audit_netlink_ok()` reads them: the sender's (`current_cred()`) and those of whoever opened
/// the socket (`netlink_capable()` checks both), with the pid namespace in `ns`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserMsg {
    pub hdr: Header,
    pub msg_type: u32,
    /// Bytes of `text`, without the NUL.
    pub len: u32,
    /// 1 when the text went on past USER_MSG_TEXT_MAX (the kernel cuts it there too), or could
    /// not be read.
    pub truncated: u32,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
    /// `level` of the sender's user namespace (`cred->user_ns`): 0 only for the initial one;
    /// [`NS_LEVEL_UNKNOWN`] when it could not be read.
    pub user_ns_level: u32,
    /// The same for the credentials the socket was opened with (`file->f_cred`).
    pub sock_user_ns_level: u32,
    /// Effective capabilities of the sender: the kernel takes user messages only from holders
    /// of CAP_AUDIT_WRITE in the initial user namespace.
    pub cap_effective: u64,
    /// Effective capabilities the socket was opened with.
    pub sock_cap_effective: u64,
    pub ns: TaskNs,
    /// The text and room for its NUL.
    pub text: [u8; USER_MSG_TEXT_MAX + 8],
}
/// A user namespace level that could not be read: never the initial namespace's 0.
pub const NS_LEVEL_UNKNOWN: u32 = u32::MAX;
pub const USER_MSG_FIXED: usize = core::mem::size_of::<UserMsg>() - (USER_MSG_TEXT_MAX + 8);

/// The libpam API functions watched; a probe's attach cookie is the index here.
pub const PAM_FUNCTIONS: [&str; 6] = [
    "pam_authenticate",
    "pam_setcred",
    "pam_acct_mgmt",
    "pam_open_session",
    "pam_close_session",
    "pam_chauthtok",
];
/// The modules whose decisions are watched, and their entry points (same order as
/// PAM_FUNCTIONS); a probe's cookie is `module << 8 | function`.
pub const PAM_MODULES: [&str; 7] = [
    "pam_access",
    "pam_time",
    "pam_limits",
    "pam_faillock",
    "pam_unix",
    "pam_nologin",
    "pam_succeed_if",
];
pub const PAM_SM_FUNCTIONS: [&str; 6] = [
    "pam_sm_authenticate",
    "pam_sm_setcred",
    "pam_sm_acct_mgmt",
    "pam_sm_open_session",
    "pam_sm_close_session",
    "pam_sm_chauthtok",
];

/// Where libpam keeps the items in its private `pam_handle`: byte offsets of the `char *`
/// members, found at start-up by creating a handle with known items (`load::pam_layout`).
/// `known` is 0 when they could not be found: the probes then send no items.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PamLayout {
    /// Indexed by PAM_ITEM_SERVICE .. PAM_ITEM_TTY.
    pub item: [u32; 5],
    pub known: u32,
}
pub const PAM_ITEM_SERVICE: usize = 0;
pub const PAM_ITEM_USER: usize = 1;
pub const PAM_ITEM_RHOST: usize = 2;
pub const PAM_ITEM_RUSER: usize = 3;
pub const PAM_ITEM_TTY: usize = 4;
/// Longest item kept (a host name is at most 255 bytes).
pub const PAM_ITEM_MAX: usize = 256;

/// A libpam API call returned: which, its result and the handle's items then. Never the
/// authentication token: only the items above are read.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PamCall {
    pub hdr: Header,
    /// Index in PAM_FUNCTIONS.
    pub func: u32,
    pub retval: i32,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
    /// 1 when the items were read (the layout is known and the handle readable).
    pub has_items: u32,
    /// The call's flags argument (pam_setcred's PAM_ESTABLISH_CRED… decide its record type).
    pub flags: u32,
    pub _pad: u32,
    pub ns: TaskNs,
    /// NUL-terminated; empty when unset.
    pub items: [[u8; PAM_ITEM_MAX]; 5],
}

/// A watched module's `pam_sm_*` returned (during the PamCall of the same thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PamModule {
    pub hdr: Header,
    /// Index in PAM_MODULES.
    pub module: u32,
    /// Index in PAM_SM_FUNCTIONS.
    pub func: u32,
    pub retval: i32,
    pub _pad: u32,
}
