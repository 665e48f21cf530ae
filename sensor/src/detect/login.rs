//! The sensor's inferred ANOM_LOGIN_* records, opt-in (`sensor run --infer-login-anomalies`),
//! for refusals a PAM module makes without writing a record itself. Decided on a normalised
//! [`PamEvent`]: the verdicts of the modules in the stack that ran, and the types of the audit
//! messages its thread sent during the call.
//!
//! The rules (each record names its rule in `exe="sensor:RULE"` and `sensor_rule=`):
//! - `access_origin` → ANOM_LOGIN_LOCATION: pam_access denied an account-management call that
//!   had an origin (rhost or tty), and pam_access wrote no ANOM_LOGIN_LOCATION itself (it does
//!   only when a deny line names the origin, not for `-:root:ALL`).
//! - `access_account` → ANOM_LOGIN_ACCT: pam_access denied a call without any origin.
//! - `account_expired` → ANOM_LOGIN_ACCT: pam_unix said the account expired.
//! - `time` → ANOM_LOGIN_TIME: pam_time denied.
//! - `logins` → ANOM_LOGIN_SESSIONS: pam_limits refused to open a session (maxlogins,
//!   maxsyslogins).
//!
//! There is no rule for failed passwords: where pam_faillock is in the stack it writes
//! ANOM_LOGIN_FAILURES (and RESP_ACCT_LOCK) itself when it locks an account, and those records
//! are reproduced from its messages; where it is not, nothing locks, and auditd would write
//! nothing. A rule never writes a type the call's own messages already hold.

use crate::event::{LoginAnomaly, PamEvent, PamFunction};

const PAM_PERM_DENIED: i32 = 6;
const PAM_ACCT_EXPIRED: i32 = 13;
const ANOM_LOGIN_TIME: u32 = 2101;
const ANOM_LOGIN_SESSIONS: u32 = 2102;
const ANOM_LOGIN_ACCT: u32 = 2103;
const ANOM_LOGIN_LOCATION: u32 = 2104;

/// The anomalies the rules infer for one PAM call, given the message types its thread sent.
pub fn infer(ev: &PamEvent, messages: &[u32]) -> Vec<LoginAnomaly> {
    let mut out = Vec::new();
    let mut add = |msg_type: u32, module: &str, rule: &str| {
        if !messages.contains(&msg_type)
            && !out.iter().any(|a: &LoginAnomaly| a.msg_type == msg_type)
        {
            out.push(LoginAnomaly {
                msg_type,
                module: module.to_string(),
                rule: rule.to_string(),
            });
        }
    };
    // The module's verdict in the stack that ran; a module not in it has none.
    let verdict = |module: &str, function: &str| {
        ev.modules
            .iter()
            .rev()
            .find(|m| m.module == module && m.function == function)
            .map(|m| m.retval)
    };
    let origin = ev
        .items
        .as_ref()
        .is_some_and(|i| i.rhost.is_some() || i.tty.is_some());
    match ev.function {
        PamFunction::AcctMgmt => {
            if verdict("pam_access", "pam_sm_acct_mgmt") == Some(PAM_PERM_DENIED) {
                if origin {
                    add(ANOM_LOGIN_LOCATION, "pam_access", "access_origin");
                } else {
                    add(ANOM_LOGIN_ACCT, "pam_access", "access_account");
                }
            }
            if verdict("pam_unix", "pam_sm_acct_mgmt") == Some(PAM_ACCT_EXPIRED) {
                add(ANOM_LOGIN_ACCT, "pam_unix", "account_expired");
            }
            if verdict("pam_time", "pam_sm_acct_mgmt") == Some(PAM_PERM_DENIED) {
                add(ANOM_LOGIN_TIME, "pam_time", "time");
            }
        }
        PamFunction::OpenSession
            if verdict("pam_limits", "pam_sm_open_session") == Some(PAM_PERM_DENIED) =>
        {
            add(ANOM_LOGIN_SESSIONS, "pam_limits", "logins");
        }
        _ => {}
    }
    out
}
