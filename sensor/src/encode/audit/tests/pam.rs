//! PAM calls in audit text: the USER_* record synthesized when libpam wrote none, against the
//! line libpam + libaudit + kernel audit + auditd 3.0.9 (log_format=ENRICHED) really wrote, and
//! the sensor's ANOM_LOGIN_* records.

use crate::encode::audit::{write_event, Names};
use crate::event::*;
use crate::testing::audit::{container, names, show, with_container};
use crate::testing::audit::{insert, raw};

/// auditd's lines as logged, `^]` standing for the 0x1d separator: `pamtester` as root from
/// 203.0.113.9, refused by pam_access (`-:root:203.0.113.9` in access.conf).
const KERNEL: &str = r#"type=USER_ACCT msg=audit(1795654095.700:166542): pid=20120 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting grantors=? acct="root" exe="/usr/bin/pamtester" hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=failed'^]UID="root" AUID="unset"
type=ANOM_LOGIN_LOCATION msg=audit(1795654095.700:166541): pid=20120 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:pam_access acct="root" exe="/usr/bin/pamtester" hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=success'^]UID="root" AUID="unset""#;

const PAM_SUCCESS: i32 = 0;
const PAM_PERM_DENIED: i32 = 6;
const PAM_AUTH_ERR: i32 = 7;
const PAM_USER_UNKNOWN: i32 = 10;

fn kernel() -> Vec<String> {
    KERNEL.lines().map(|l| l.replace("^]", "\x1d")).collect()
}

fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn module(module: &str, function: &str, retval: i32) -> ModuleResult {
    ModuleResult {
        module: module.into(),
        function: function.into(),
        retval,
    }
}

fn anomaly(msg_type: u32, module: &str, rule: &str) -> LoginAnomaly {
    LoginAnomaly {
        msg_type,
        module: module.into(),
        rule: rule.into(),
    }
}

/// A call of the test run: root, from 203.0.113.9, no tty.
fn call(function: PamFunction, flags: u32, retval: i32, modules: Vec<ModuleResult>) -> PamEvent {
    PamEvent {
        stamp: Stamp {
            sec: 1795654095,
            nsec: 700_000_000,
            serial: 166542,
        },
        boot_ns: 1,
        function,
        flags,
        retval,
        pid: 20120,
        uid: 0,
        auid: UNSET_ID,
        ses: UNSET_ID,
        items: Some(PamItems {
            service: bytes("pamtester"),
            user: bytes("root"),
            rhost: bytes("203.0.113.9"),
            ruser: None,
            tty: None,
        }),
        modules,
        libpam_reported: false,
        anomalies: Vec::new(),
        exe: bytes("/usr/bin/pamtester"),
        container: container(),
        paths_truncated: PathsTruncated::default(),
    }
}

/// The refused pamtester call of the golden lines.
fn refused() -> PamEvent {
    let denied = module("pam_access", "pam_sm_acct_mgmt", PAM_PERM_DENIED);
    call(PamFunction::AcctMgmt, 0, PAM_PERM_DENIED, vec![denied])
}

fn encode(ev: &PamEvent, enriched: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let n = names();
    write_event(
        &mut out,
        &Event::Pam(ev.clone()),
        enriched.then_some(&n as &dyn Names),
    );
    out
}

/// A sensor record: auditd's line with `sensor_rule=` and the container fields.
fn sensor_line(line: &str, rule: &str) -> String {
    with_container(&insert(line, &format!(" sensor_rule=\"{rule}\"")))
}

/// Both outputs of `ev` against the expected ENRICHED lines, byte for byte.
fn assert_lines(ev: &PamEvent, want: &[String]) {
    for enriched in [false, true] {
        let want: String = want
            .iter()
            .map(|l| format!("{}\n", if enriched { l } else { raw(l) }))
            .collect();
        assert_eq!(show(&encode(ev, enriched)), show(want.as_bytes()));
    }
}

/// The USER_* line libpam would have had auditd write for `ev`, with the sensor's fields.
fn libpam_line(rtype: &str, text: &str) -> String {
    let line = format!(
        "type={rtype} msg=audit(1795654095.700:166542): pid=20120 uid=0 auid=4294967295 \
         ses=4294967295 msg='{text}'\x1dUID=\"root\" AUID=\"unset\""
    );
    sensor_line(&line, "libpam")
}

fn text(action: &str, grantors: &str, acct: &str, host: &str, addr: &str, res: &str) -> String {
    format!(
        "op=PAM:{action} grantors={grantors} acct={acct} exe=\"/usr/bin/pamtester\" \
         hostname={host} addr={addr} terminal=? res={res}"
    )
}

#[test]
fn golden_synthesized_user_acct_is_libpams_text() {
    assert_lines(&refused(), &[sensor_line(&kernel()[0], "libpam")]);
}

#[test]
fn one_synthesized_record_of_libpams_type_per_function() {
    use PamFunction::*;
    for (function, flags, number, rtype) in [
        (Authenticate, 0, 1100, "USER_AUTH"),
        (AcctMgmt, 0, 1101, "USER_ACCT"),
        (OpenSession, 0, 1105, "USER_START"),
        (CloseSession, 0, 1106, "USER_END"),
        (Chauthtok, 0x20, 1108, "USER_CHAUTHTOK"),
        (Setcred, 0x2, 1103, "CRED_ACQ"),
        (Setcred, 0x8002, 1103, "CRED_ACQ"),
        // pam_setcred() turns no flags into PAM_ESTABLISH_CRED.
        (Setcred, 0, 1103, "CRED_ACQ"),
        (Setcred, 0x4, 1104, "CRED_DISP"),
        (Setcred, 0x8004, 1104, "CRED_DISP"),
        (Setcred, 0x8, 1110, "CRED_REFR"),
        (Setcred, 0x10, 1110, "CRED_REFR"),
    ] {
        assert_eq!(crate::catalog::record_name(number), rtype);
        let action = function.action();
        let ev = call(
            function,
            flags,
            PAM_SUCCESS,
            vec![module("pam_unix", "pam_sm_x", 0)],
        );
        let t = text(
            action,
            "pam_unix",
            "\"root\"",
            "203.0.113.9",
            "203.0.113.9",
            "success",
        );
        assert_lines(&ev, &[libpam_line(rtype, &t)]);
    }
}

/// libpam's `_pam_auditlog()` tests PAM_ESTABLISH_CRED first, then PAM_REINITIALIZE_CRED or
/// PAM_REFRESH_CRED, then PAM_DELETE_CRED, and writes USER_ERR when none is set (flags given,
/// but only PAM_SILENT).
#[test]
fn setcred_flag_precedence_is_libpams() {
    let wrong: Vec<String> = [
        (0x2 | 0x4, "CRED_ACQ"),
        (0x2 | 0x10, "CRED_ACQ"),
        (0x4 | 0x8, "CRED_REFR"),
        (0x4 | 0x10, "CRED_REFR"),
        (0x8000, "USER_ERR"),
    ]
    .into_iter()
    .filter_map(|(flags, rtype)| {
        let ev = call(PamFunction::Setcred, flags, PAM_SUCCESS, Vec::new());
        let out = show(&encode(&ev, false));
        let got = out.split(' ').next().unwrap().to_string();
        (got != format!("type={rtype}")).then(|| format!("{flags:#x}: {got}, libpam {rtype}"))
    })
    .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn grantors_are_the_watched_modules_that_succeeded_in_a_successful_call() {
    let modules = vec![
        module("pam_faillock", "pam_sm_authenticate", PAM_AUTH_ERR),
        module("pam_unix", "pam_sm_authenticate", PAM_SUCCESS),
        module("pam_succeed_if", "pam_sm_authenticate", PAM_SUCCESS),
    ];
    let ip = "203.0.113.9";
    for (retval, modules, grantors, res) in [
        (
            PAM_SUCCESS,
            modules.clone(),
            "pam_unix,pam_succeed_if",
            "success",
        ),
        (PAM_AUTH_ERR, modules, "?", "failed"),
        (PAM_SUCCESS, Vec::new(), "?", "success"),
    ] {
        let ev = call(PamFunction::Authenticate, 0, retval, modules);
        let t = text("authentication", grantors, "\"root\"", ip, ip, res);
        assert_lines(&ev, &[libpam_line("USER_AUTH", &t)]);
    }
}

#[test]
fn account_host_address_and_terminal_as_libaudit_writes_them() {
    // (user, rhost, tty) with "" for an unset item, then acct, hostname, addr, terminal.
    for (user, rhost, tty, fields) in [
        ("root", "", "", r#""root" ? ? ?"#),
        ("root", "client.example", "", r#""root" client.example ? ?"#),
        (
            "root",
            "2001:db8::1",
            "pts/0",
            r#""root" 2001:db8::1 2001:db8::1 pts/0"#,
        ),
        ("root", "", "/dev/tty1", r#""root" ? ? /dev/tty1"#),
        ("", "", "", r#""?" ? ? ?"#),
        ("ro ot", "", "", "726F206F74 ? ? ?"),
        ("r\"t", "", "", "722274 ? ? ?"),
        ("caf\u{e9}", "", "", "636166C3A9 ? ? ?"),
    ] {
        let item = |s: &str| (!s.is_empty()).then(|| s.as_bytes().to_vec());
        for retval in [PAM_SUCCESS, PAM_PERM_DENIED, PAM_USER_UNKNOWN] {
            let mut ev = call(PamFunction::AcctMgmt, 0, retval, Vec::new());
            ev.items = Some(PamItems {
                service: bytes("sshd"),
                user: item(user),
                rhost: item(rhost),
                ruser: None,
                tty: item(tty),
            });
            let f: Vec<&str> = fields.split(' ').collect();
            // libpam names no account for PAM_USER_UNKNOWN.
            let acct = if retval == PAM_USER_UNKNOWN {
                "\"?\""
            } else {
                f[0]
            };
            let res = if retval == PAM_SUCCESS {
                "success"
            } else {
                "failed"
            };
            let t = text("accounting", "?", acct, f[1], f[2], res)
                .replace(" terminal=? ", &format!(" terminal={} ", f[3]));
            assert_lines(&ev, &[libpam_line("USER_ACCT", &t)]);
        }
    }
}

#[test]
fn without_items_or_exe_every_value_is_unknown() {
    let mut ev = call(PamFunction::OpenSession, 0, PAM_SUCCESS, Vec::new());
    ev.items = None;
    ev.exe = None;
    let t = "op=PAM:session_open grantors=? acct=\"?\" exe=\"?\" hostname=? addr=? terminal=? \
             res=success";
    assert_lines(&ev, &[libpam_line("USER_START", t)]);
}

#[test]
fn no_user_record_when_libpam_wrote_its_own() {
    let mut ev = refused();
    ev.libpam_reported = true;
    for enriched in [false, true] {
        assert!(encode(&ev, enriched).is_empty());
    }
}

#[test]
fn golden_anomaly_record_is_pam_accesss_with_the_rule_as_exe() {
    let mut ev = refused();
    ev.libpam_reported = true;
    ev.anomalies = vec![anomaly(2104, "pam_access", "access_origin")];
    let real = kernel()[1]
        .replace(":166541)", ":166542)")
        .replace("/usr/bin/pamtester", "sensor:access_origin");
    assert_lines(&ev, &[sensor_line(&real, "access_origin")]);
}

#[test]
fn each_anomaly_adds_one_record_after_the_user_record() {
    let mut ev = refused();
    ev.anomalies = vec![
        anomaly(2101, "pam_time", "time"),
        anomaly(2102, "pam_limits", "logins"),
        anomaly(2103, "pam_access", "access_account"),
        anomaly(2104, "pam_access", "access_origin"),
    ];
    let mut want = vec![sensor_line(&kernel()[0], "libpam")];
    for (rtype, a) in [
        "ANOM_LOGIN_TIME",
        "ANOM_LOGIN_SESSIONS",
        "ANOM_LOGIN_ACCT",
        "ANOM_LOGIN_LOCATION",
    ]
    .iter()
    .zip(&ev.anomalies)
    {
        let line = format!(
            "type={rtype} msg=audit(1795654095.700:166542): pid=20120 uid=0 auid=4294967295 \
             ses=4294967295 msg='op=PAM:{} acct=\"root\" exe=\"sensor:{}\" \
             hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=success'\x1dUID=\"root\" \
             AUID=\"unset\"",
            a.module, a.rule
        );
        want.push(sensor_line(&line, &a.rule));
    }
    assert_lines(&ev, &want);
}

#[test]
fn anomaly_account_is_hex_when_it_needs_to_be() {
    let mut ev = refused();
    ev.libpam_reported = true;
    ev.items.as_mut().unwrap().user = bytes("ro ot");
    ev.anomalies = vec![anomaly(2104, "pam_access", "access_origin")];
    let out = show(&encode(&ev, false));
    assert!(
        out.contains(" msg='op=PAM:pam_access acct=726F206F74 exe=\"sensor:access_origin\" "),
        "{out}"
    );
}
