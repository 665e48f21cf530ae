//! The sensor's ANOM_LOGIN_* rules, for the cases no PAM module reports, decided on a
//! normalised [`PamEvent`] and the types of the audit messages its thread sent during the call.
//!
//! The rules (each record names its rule in `sensor_rule=`):
//! - `access_origin` → ANOM_LOGIN_LOCATION: pam_access denied an account-management call that
//!   had an origin (rhost or tty), and pam_access wrote no ANOM_LOGIN_LOCATION itself (it does
//!   only when a deny line names the origin, not for `-:root:ALL`).
//! - `access_account` → ANOM_LOGIN_ACCT: pam_access denied a call without any origin.
//! - `account_expired` → ANOM_LOGIN_ACCT: pam_unix said the account expired.
//! - `time` → ANOM_LOGIN_TIME: pam_time denied.
//! - `logins` → ANOM_LOGIN_SESSIONS: pam_limits refused to open a session (maxlogins,
//!   maxsyslogins).
//! - `failures` → ANOM_LOGIN_FAILURES: the N-th failed authentication of one account within the
//!   window (default 3 in 15 minutes, like pam_faillock's deny=3); the count then starts again.
//!
//! pam_faillock writes ANOM_LOGIN_FAILURES and RESP_ACCT_LOCK itself when it locks an account:
//! those are reproduced from its messages, like pam_access's and pam_time's.
//!
//! A rule never writes a type the call's own messages already hold.

use std::collections::{HashMap, VecDeque};

use crate::event::{LoginAnomaly, PamEvent, PamFunction};

const PAM_SUCCESS: i32 = 0;
const PAM_PERM_DENIED: i32 = 6;
const PAM_ACCT_EXPIRED: i32 = 13;
const ANOM_LOGIN_FAILURES: u32 = 2100;
const ANOM_LOGIN_TIME: u32 = 2101;
const ANOM_LOGIN_SESSIONS: u32 = 2102;
const ANOM_LOGIN_ACCT: u32 = 2103;
const ANOM_LOGIN_LOCATION: u32 = 2104;

/// ANOM_LOGIN_FAILURES: how many failed authentications of one account within how long.
#[derive(Clone, Copy, Debug)]
pub struct FailureRule {
    pub count: usize,
    pub window_ns: u64,
}

impl Default for FailureRule {
    fn default() -> Self {
        FailureRule {
            count: 3,
            window_ns: 15 * 60 * 1_000_000_000,
        }
    }
}

/// Failed authentications per (service, account), by CLOCK_BOOTTIME.
#[derive(Default)]
pub struct LoginState {
    pub failures: FailureRule,
    recent: HashMap<Vec<u8>, VecDeque<u64>>,
}

impl LoginState {
    pub fn rules(&mut self, ev: &PamEvent, messages: &[u32]) -> Vec<LoginAnomaly> {
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
        let verdict = |module: &str, function: &str| {
            ev.modules
                .iter()
                .rev()
                .find(|m| m.module == module && m.function == function)
                .map(|m| m.retval)
        };
        let items = ev.items.clone().unwrap_or_default();
        match ev.function {
            PamFunction::AcctMgmt => {
                if verdict("pam_access", "pam_sm_acct_mgmt") == Some(PAM_PERM_DENIED) {
                    if items.rhost.is_some() || items.tty.is_some() {
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
            PamFunction::OpenSession => {
                if verdict("pam_limits", "pam_sm_open_session") == Some(PAM_PERM_DENIED) {
                    add(ANOM_LOGIN_SESSIONS, "pam_limits", "logins");
                }
            }
            PamFunction::Authenticate if ev.retval != PAM_SUCCESS => {
                if let Some(user) = &items.user {
                    let key = [items.service.clone().unwrap_or_default(), user.clone()].join(&0u8);
                    let rule = self.failures;
                    let times = self.recent.entry(key.clone()).or_default();
                    times.push_back(ev.boot_ns);
                    while times
                        .front()
                        .is_some_and(|&t| ev.boot_ns.saturating_sub(t) > rule.window_ns)
                    {
                        times.pop_front();
                    }
                    if times.len() >= rule.count.max(1) {
                        self.recent.remove(&key);
                        let module = ev
                            .modules
                            .iter()
                            .rev()
                            .find(|m| m.retval != PAM_SUCCESS)
                            .map_or("pam_unix", |m| m.module.as_str())
                            .to_string();
                        add(ANOM_LOGIN_FAILURES, &module, "failures");
                    }
                }
            }
            _ => {}
        }
        // Accounts not seen failing for a while are forgotten.
        if self.recent.len() > 4096 {
            let (now, window) = (ev.boot_ns, self.failures.window_ns);
            self.recent
                .retain(|_, t| t.back().is_some_and(|&b| now.saturating_sub(b) <= window));
        }
        out
    }
}
