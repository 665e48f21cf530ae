//! The event model of the user-space probes: libaudit's messages and libpam's calls.

use super::{Container, PathsTruncated, Stamp};

/// A user-space audit message (libpam, sudo, sshd, shadow-utils…) as its program handed it to
/// libaudit, and as the kernel would log it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMessageEvent {
    pub stamp: Stamp,
    pub boot_ns: u64,
    pub msg_type: u32,
    pub pid: u32,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
    /// The text as sent (`op=PAM:accounting … res=failed`), at most the kernel's 8560 bytes.
    pub text: Vec<u8>,
    /// The text went on past the kernel's limit (and is cut there, as the kernel cuts it).
    pub truncated: bool,
    /// The kernel would have taken it: the sender held CAP_AUDIT_WRITE and lives in the initial
    /// pid namespace (`audit_netlink_ok()`).
    pub trusted: bool,
    pub exe: Option<Vec<u8>>,
    pub container: Container,
    pub paths_truncated: PathsTruncated,
}

/// The libpam API functions, in the order of `sensor_common::PAM_FUNCTIONS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PamFunction {
    Authenticate,
    Setcred,
    AcctMgmt,
    OpenSession,
    CloseSession,
    Chauthtok,
}

impl PamFunction {
    pub const ALL: [PamFunction; 6] = [
        PamFunction::Authenticate,
        PamFunction::Setcred,
        PamFunction::AcctMgmt,
        PamFunction::OpenSession,
        PamFunction::CloseSession,
        PamFunction::Chauthtok,
    ];
    /// libpam's `op=PAM:<action>` word (`_pam_auditlog()`).
    pub fn action(self) -> &'static str {
        match self {
            PamFunction::Authenticate => "authentication",
            PamFunction::Setcred => "setcred",
            PamFunction::AcctMgmt => "accounting",
            PamFunction::OpenSession => "session_open",
            PamFunction::CloseSession => "session_close",
            PamFunction::Chauthtok => "chauthtok",
        }
    }
}

/// The handle's items when the call returned; `None` for an unset item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PamItems {
    pub service: Option<Vec<u8>>,
    pub user: Option<Vec<u8>>,
    pub rhost: Option<Vec<u8>>,
    pub ruser: Option<Vec<u8>>,
    pub tty: Option<Vec<u8>>,
}

/// A watched module's verdict during the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleResult {
    /// `pam_access`, `pam_unix`…
    pub module: String,
    /// `pam_sm_acct_mgmt`…
    pub function: String,
    pub retval: i32,
}

/// An ANOM_LOGIN_* record the sensor's rules wrote, for a case no module reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginAnomaly {
    /// 2100 ANOM_LOGIN_FAILURES … 2104 ANOM_LOGIN_LOCATION.
    pub msg_type: u32,
    /// The module the record is about (`op=PAM:<module>`).
    pub module: String,
    /// The sensor rule that wrote it (`sensor_rule=`); see the README.
    pub rule: String,
}

/// A libpam API call: its result, the handle's items, the watched modules' verdicts, and what
/// the sensor synthesized from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PamEvent {
    pub stamp: Stamp,
    pub boot_ns: u64,
    pub function: PamFunction,
    /// The flags argument (for pam_setcred: which credential operation).
    pub flags: u32,
    pub retval: i32,
    pub pid: u32,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
    /// `None` when libpam's handle layout is unknown.
    pub items: Option<PamItems>,
    pub modules: Vec<ModuleResult>,
    /// libpam wrote its own USER_* record for the call (captured as a user message); when it did
    /// not (kernel without audit), the audit text has one synthesized from this event.
    pub libpam_reported: bool,
    pub anomalies: Vec<LoginAnomaly>,
    pub exe: Option<Vec<u8>>,
    pub container: Container,
    pub paths_truncated: PathsTruncated,
}
