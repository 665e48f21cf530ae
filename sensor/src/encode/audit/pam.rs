//! PAM calls in audit text: the sensor's ANOM_LOGIN_* records, and, when libpam did not write
//! its own USER_* record for a call (a kernel without audit makes libpam skip it), one
//! synthesized the way libpam and libaudit's `audit_log_acct_message()` write it.
//!
//! Both carry the USER_* family's fields in `msg='…'` (`op=PAM:… acct="…" exe="…" hostname=…
//! addr=… terminal=… res=…`), then `sensor_rule=` naming the rule (`libpam` for a synthesized
//! USER_* record), then the container fields. A reader can always tell them from what a
//! program wrote: only the sensor writes `sensor_rule=`. An inferred anomaly also names its rule
//! in `exe="sensor:RULE"`, the column `aureport --anomaly` shows, and says `res=success` as the
//! PAM modules' own ANOM_LOGIN_* records do (the record reports a detection; the refusal is in
//! the call's own USER_* record).

use super::{
    hexq::{decode_hex, push_hex, raw_safe},
    push_untrusted,
    user::{begin_user_record, end_user_record, MsgIds, Sender},
    Names,
};
use crate::event::{PamEvent, PamFunction};

const PAM_SUCCESS: i32 = 0;
const PAM_USER_UNKNOWN: i32 = 10;

pub fn write_pam(out: &mut Vec<u8>, ev: &PamEvent, enriched: Option<&dyn Names>) {
    if !ev.libpam_reported {
        let grantors: Vec<&str> = ev
            .modules
            .iter()
            .filter(|m| m.retval == PAM_SUCCESS)
            .map(|m| m.module.as_str())
            .collect();
        let op = format!(
            "PAM:{} grantors={}",
            ev.function.action(),
            if ev.retval == PAM_SUCCESS && !grantors.is_empty() {
                grantors.join(",")
            } else {
                "?".into()
            }
        );
        let acct = (ev.retval != PAM_USER_UNKNOWN)
            .then(|| ev.items.as_ref().and_then(|i| i.user.clone()))
            .flatten();
        let exe = ev.exe.as_deref().unwrap_or(b"?");
        let text = acct_text(ev, &op, acct.as_deref(), exe, ev.retval == PAM_SUCCESS);
        write_record(out, ev, libpam_type(ev), &text, "libpam", enriched);
    }
    for a in &ev.anomalies {
        let acct = ev.items.as_ref().and_then(|i| i.user.clone());
        let exe = format!("sensor:{}", a.rule);
        let op = format!("PAM:{}", a.module);
        let text = acct_text(ev, &op, acct.as_deref(), exe.as_bytes(), true);
        write_record(out, ev, a.msg_type, &text, &a.rule, enriched);
    }
}

/// The record type libpam's `_pam_auditlog()` gives the call; for pam_setcred the first
/// credential flag it tests decides (no flags at all mean PAM_ESTABLISH_CRED), and a call with
/// none of them is USER_ERR.
fn libpam_type(ev: &PamEvent) -> u32 {
    const PAM_ESTABLISH_CRED: u32 = 0x2;
    const PAM_DELETE_CRED: u32 = 0x4;
    const PAM_REINITIALIZE_CRED: u32 = 0x8;
    const PAM_REFRESH_CRED: u32 = 0x10;
    match ev.function {
        PamFunction::Authenticate => 1100,
        PamFunction::AcctMgmt => 1101,
        PamFunction::OpenSession => 1105,
        PamFunction::CloseSession => 1106,
        PamFunction::Chauthtok => 1108,
        PamFunction::Setcred if ev.flags == 0 || ev.flags & PAM_ESTABLISH_CRED != 0 => 1103,
        PamFunction::Setcred if ev.flags & (PAM_REINITIALIZE_CRED | PAM_REFRESH_CRED) != 0 => 1110,
        PamFunction::Setcred if ev.flags & PAM_DELETE_CRED != 0 => 1104,
        PamFunction::Setcred => 1109,
    }
}

/// `audit_log_acct_message()`'s text: `op=… acct="…" exe="…" hostname=… addr=… terminal=…
/// res=…`. `addr` is the host when it is a numeric address; libaudit would resolve a name.
///
/// Every value comes from the PAM handle or the process, so each is written such that it can
/// neither end the `msg='…'` nor start a field of its own, and reads back as exactly itself.
/// Where libaudit's own encoding is safe the bytes are libaudit's; where it is not (it writes
/// `hostname` and `terminal` as given, and quotes a `'` in `acct` and `exe`), the value is hex.
fn acct_text(ev: &PamEvent, op: &str, acct: Option<&[u8]>, exe: &[u8], success: bool) -> Vec<u8> {
    let items = ev.items.clone().unwrap_or_default();
    let mut t = format!("op={op} acct=").into_bytes();
    push_in_msg(&mut t, libaudit_acct(acct.unwrap_or(b"?")));
    t.extend_from_slice(b" exe=");
    push_in_msg(&mut t, exe);
    // libaudit takes an empty host or tty for none.
    let host = items.rhost.filter(|h| !h.is_empty());
    let addr = host
        .as_deref()
        .and_then(|h| std::str::from_utf8(h).ok())
        .filter(|h| h.parse::<std::net::IpAddr>().is_ok());
    t.extend_from_slice(b" hostname=");
    push_bare(&mut t, host.as_deref());
    t.extend_from_slice(b" addr=");
    push_bare(&mut t, addr.map(str::as_bytes));
    t.extend_from_slice(b" terminal=");
    push_bare(&mut t, items.tty.as_deref().filter(|t| !t.is_empty()));
    t.extend_from_slice(if success {
        b" res=success"
    } else {
        b" res=failed"
    });
    t
}

/// libaudit keeps at most UT_NAMESIZE bytes of the account name.
fn libaudit_acct(name: &[u8]) -> &[u8] {
    const UT_NAMESIZE: usize = 32;
    &name[..name.len().min(UT_NAMESIZE)]
}

/// A value libaudit writes quoted, or in hex when `audit_value_needs_encoding()` says so (`"`
/// or a byte outside 0x21..=0x7e: the kernel's rule). A `'` would end the `msg='…'`: hex too.
fn push_in_msg(out: &mut Vec<u8>, v: &[u8]) {
    if v.contains(&b'\'') {
        push_hex(out, v);
    } else {
        push_untrusted(out, v);
    }
}

/// A value libaudit writes as given (`hostname`, `addr`, `terminal`), `?` when unset: as given
/// when it holds only host and tty name characters and does not read as hex (of either case:
/// `cafe` is a host name, and two bytes to a reader), else in hex.
fn push_bare(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) if raw_safe(v) && decode_hex(v).is_none() => out.extend_from_slice(v),
        Some(v) => push_hex(out, v),
        None => out.push(b'?'),
    }
}

fn write_record(
    out: &mut Vec<u8>,
    ev: &PamEvent,
    msg_type: u32,
    text: &[u8],
    rule: &str,
    enriched: Option<&dyn Names>,
) {
    let sender = Sender {
        pid: ev.pid,
        uid: ev.uid,
        auid: ev.auid,
        ses: ev.ses,
    };
    begin_user_record(out, msg_type, &ev.stamp, &sender, text);
    out.extend_from_slice(b" sensor_rule=");
    push_untrusted(out, rule.as_bytes());
    let inner = MsgIds { msg_type, text };
    end_user_record(
        out,
        &ev.container,
        &ev.paths_truncated,
        &sender,
        inner,
        enriched,
    );
}
