//! PAM calls as the probes send them, through `Normaliser::pam()`: the items, the modules, and
//! the ANOM_LOGIN_* rules.

use sensor_common as wire;

use super::*;
use crate::assemble::TaskPaths;
use crate::detect::login;
use crate::event::{LoginAnomaly, PamItems, UNSET_ID as UNSET};
use crate::read::record::{Origin, PamCall, PamModule, TaskNs};

const PAM_AUTH_ERR: i32 = 7;
const MIN: u64 = 60 * 1_000_000_000;

/// The handle's items, as the probe copies them (NUL-terminated, empty when unset).
#[derive(Clone, Copy, Default)]
struct Items<'a> {
    service: &'a [u8],
    user: &'a [u8],
    rhost: &'a [u8],
    tty: &'a [u8],
}

fn sshd<'a>(user: &'a str, rhost: &'a str, tty: &'a str) -> Items<'a> {
    Items {
        service: b"sshd",
        user: user.as_bytes(),
        rhost: rhost.as_bytes(),
        tty: tty.as_bytes(),
    }
}

/// Thread 4321.
fn origin(mono_ns: u64) -> Origin {
    Origin {
        tid: 4321,
        pid: 4321,
        mono_ns,
    }
}

fn item(value: &[u8]) -> Option<Vec<u8>> {
    Some(value.to_vec()).filter(|v| !v.is_empty())
}

fn call(func: PamFunction, retval: i32, items: Option<Items>, mono_ns: u64) -> PamCall {
    PamCall {
        origin: origin(mono_ns),
        func: PamFunction::ALL.iter().position(|&f| f == func).unwrap() as u32,
        retval,
        uid: 0,
        auid: UNSET,
        ses: UNSET,
        flags: 0,
        ns: TaskNs::default(),
        items: items.map(|i| PamItems {
            service: item(i.service),
            user: item(i.user),
            rhost: item(i.rhost),
            ruser: None,
            tty: item(i.tty),
        }),
    }
}

fn module(name: &str, function: &str, retval: i32) -> PamModule {
    let index = |list: &[&str], n: &str| list.iter().position(|&x| x == n).unwrap() as u32;
    PamModule {
        origin: origin(1),
        module: index(&wire::PAM_MODULES, name),
        func: index(&wire::PAM_SM_FUNCTIONS, function),
        retval,
    }
}

fn assembled(call: PamCall, modules: Vec<PamModule>, messages: &[u32]) -> AssembledPam {
    AssembledPam {
        call: Box::new(call),
        modules,
        messages: messages.to_vec(),
        paths: TaskPaths::default(),
    }
}

/// Normalises the call and runs the login rules on it, as the pipeline does.
fn run(n: &mut Normaliser, a: AssembledPam) -> PamEvent {
    let mut c = n.pam(a).expect("a known function");
    c.event.anomalies = login::infer(&c.event, &c.messages);
    c.event
}

fn anomaly(msg_type: u32, module: &str, rule: &str) -> LoginAnomaly {
    LoginAnomaly {
        msg_type,
        module: module.into(),
        rule: rule.into(),
    }
}

/// pam_acct_mgmt() with `module`'s pam_sm_acct_mgmt returning `retval`.
fn acct(items: Option<Items>, module_name: &str, retval: i32, messages: &[u32]) -> PamEvent {
    let c = call(PamFunction::AcctMgmt, retval, items, 1);
    let m = module(module_name, "pam_sm_acct_mgmt", retval);
    run(&mut Normaliser::default(), assembled(c, vec![m], messages))
}

#[test]
fn items_modules_and_identity_come_from_the_call() {
    let long = [b'h'; wire::PAM_ITEM_MAX];
    let items = Items {
        service: b"sshd",
        user: b"ro ot",
        rhost: &long,
        tty: b"",
    };
    let c = call(PamFunction::Chauthtok, 0, Some(items), 5);
    let m = vec![
        module("pam_unix", "pam_sm_chauthtok", 0),
        module("pam_succeed_if", "pam_sm_chauthtok", 0),
    ];
    let ev = run(&mut Normaliser::default(), assembled(c, m, &[]));
    assert_eq!(ev.function, PamFunction::Chauthtok);
    assert_eq!(
        (ev.pid, ev.uid, ev.auid, ev.ses, ev.boot_ns),
        (4321, 0, UNSET, UNSET, 5)
    );
    let want = PamItems {
        service: Some(b"sshd".to_vec()),
        user: Some(b"ro ot".to_vec()),
        rhost: Some(long.to_vec()),
        ruser: None,
        tty: None,
    };
    assert_eq!(ev.items, Some(want));
    let names: Vec<String> = ev
        .modules
        .iter()
        .map(|m| format!("{}.{}", m.module, m.function))
        .collect();
    assert_eq!(
        names,
        [
            "pam_unix.pam_sm_chauthtok",
            "pam_succeed_if.pam_sm_chauthtok"
        ]
    );
    assert!(ev.modules.iter().all(|m| m.retval == 0));
    assert!(ev.anomalies.is_empty());
    // No paths came with it: exe unknown, the cgroup path lost.
    assert_eq!(ev.exe, None);
    assert_eq!(ev.container.cgroup_path, b"/");
    assert!(ev.paths_truncated.cgroup && !ev.paths_truncated.exe);

    let c = call(PamFunction::Chauthtok, 0, None, 5);
    let ev = run(&mut Normaliser::default(), assembled(c, vec![], &[]));
    assert_eq!(ev.items, None);
}

#[test]
fn unknown_functions_and_modules_are_dropped() {
    let mut c = call(PamFunction::Authenticate, 0, None, 1);
    c.func = PamFunction::ALL.len() as u32;
    assert!(Normaliser::default()
        .pam(assembled(c, vec![], &[]))
        .is_none());

    let c = call(PamFunction::Authenticate, 0, None, 1);
    let mut bad_module = module("pam_unix", "pam_sm_authenticate", 0);
    bad_module.module = wire::PAM_MODULES.len() as u32;
    let mut bad_function = module("pam_unix", "pam_sm_authenticate", 0);
    bad_function.func = 99;
    let ev = run(
        &mut Normaliser::default(),
        assembled(c, vec![bad_module, bad_function], &[]),
    );
    assert!(ev.modules.is_empty());
}

#[test]
fn pam_access_denial_with_an_origin_is_a_location_anomaly() {
    let want = vec![anomaly(2104, "pam_access", "access_origin")];
    for items in [
        sshd("root", "203.0.113.9", ""),
        sshd("root", "", "tty1"),
        sshd("root", "203.0.113.9", "ssh"),
    ] {
        assert_eq!(acct(Some(items), "pam_access", 6, &[]).anomalies, want);
        assert_eq!(acct(Some(items), "pam_access", 6, &[1101]).anomalies, want);
    }
}

#[test]
fn no_location_anomaly_when_pam_access_wrote_one() {
    let items = Some(sshd("root", "203.0.113.9", ""));
    for messages in [&[2104][..], &[2104, 1101], &[1101, 2104]] {
        let ev = acct(items, "pam_access", 6, messages);
        assert!(ev.anomalies.is_empty(), "{messages:?}: {:?}", ev.anomalies);
    }
}

#[test]
fn pam_access_denial_without_an_origin_is_an_account_anomaly() {
    let ev = acct(Some(sshd("root", "", "")), "pam_access", 6, &[]);
    assert_eq!(
        ev.anomalies,
        [anomaly(2103, "pam_access", "access_account")]
    );
    let ev = acct(Some(sshd("root", "", "")), "pam_access", 6, &[2103]);
    assert!(ev.anomalies.is_empty());
}

#[test]
fn other_pam_access_results_are_no_anomaly() {
    let items = Some(sshd("root", "203.0.113.9", ""));
    for retval in [0, 7, 9, 13, 25] {
        assert!(acct(items, "pam_access", retval, &[]).anomalies.is_empty());
    }
    // Denied, but not in account management.
    let c = call(PamFunction::OpenSession, 6, items, 1);
    let m = module("pam_access", "pam_sm_open_session", 6);
    let ev = run(&mut Normaliser::default(), assembled(c, vec![m], &[]));
    assert!(ev.anomalies.is_empty());
}

#[test]
fn pam_unix_expired_account_is_an_account_anomaly() {
    let ev = acct(Some(sshd("root", "203.0.113.9", "")), "pam_unix", 13, &[]);
    assert_eq!(ev.anomalies, [anomaly(2103, "pam_unix", "account_expired")]);
    for retval in [0, 6, 12] {
        let ev = acct(Some(sshd("root", "", "")), "pam_unix", retval, &[]);
        assert!(ev.anomalies.is_empty(), "{retval}");
    }
}

#[test]
fn one_call_writes_each_type_once() {
    let c = call(PamFunction::AcctMgmt, 6, Some(sshd("root", "", "")), 1);
    let m = vec![
        module("pam_access", "pam_sm_acct_mgmt", 6),
        module("pam_unix", "pam_sm_acct_mgmt", 13),
        module("pam_time", "pam_sm_acct_mgmt", 6),
    ];
    let ev = run(&mut Normaliser::default(), assembled(c, m, &[]));
    let want = [
        anomaly(2103, "pam_access", "access_account"),
        anomaly(2101, "pam_time", "time"),
    ];
    assert_eq!(ev.anomalies, want);
}

#[test]
fn pam_time_denial_is_a_time_anomaly() {
    let ev = acct(Some(sshd("root", "", "tty1")), "pam_time", 6, &[]);
    assert_eq!(ev.anomalies, [anomaly(2101, "pam_time", "time")]);
    let ev = acct(Some(sshd("root", "", "tty1")), "pam_time", 6, &[2101]);
    assert!(ev.anomalies.is_empty());
    assert!(acct(None, "pam_time", 0, &[]).anomalies.is_empty());
}

#[test]
fn pam_limits_refusing_a_session_is_a_sessions_anomaly() {
    let open = |retval: i32, messages: &[u32]| {
        let c = call(PamFunction::OpenSession, retval, Some(sshd("u", "", "")), 1);
        let m = module("pam_limits", "pam_sm_open_session", retval);
        run(&mut Normaliser::default(), assembled(c, vec![m], messages)).anomalies
    };
    assert_eq!(open(6, &[]), [anomaly(2102, "pam_limits", "logins")]);
    assert!(open(6, &[2102]).is_empty());
    assert!(open(0, &[]).is_empty());
}

/// A failed pam_authenticate() of `user` on `service` at `at`, pam_faillock in the stack or not.
fn failed_auth(n: &mut Normaliser, with_faillock: bool, at: u64) -> Vec<LoginAnomaly> {
    let items = Items {
        service: b"sshd",
        user: b"alice",
        ..Items::default()
    };
    let c = call(PamFunction::Authenticate, PAM_AUTH_ERR, Some(items), at);
    let mut m = vec![module("pam_unix", "pam_sm_authenticate", PAM_AUTH_ERR)];
    if with_faillock {
        m.push(module("pam_faillock", "pam_sm_authenticate", PAM_AUTH_ERR));
    }
    run(n, assembled(c, m, &[1100])).anomalies
}

#[test]
fn failed_passwords_never_infer_a_lockout_auditd_would_not_record() {
    let mut n = Normaliser::default();
    for i in 0..9 {
        assert!(failed_auth(&mut n, false, 1 + i * MIN).is_empty(), "{i}");
        assert!(failed_auth(&mut n, true, 1 + i * MIN).is_empty(), "{i}");
    }
}

#[test]
fn libpam_reported_means_a_user_record_of_libpams_among_the_messages() {
    let reported = |messages: &[u32]| {
        let c = call(PamFunction::Setcred, 0, None, 1);
        run(&mut Normaliser::default(), assembled(c, vec![], messages)).libpam_reported
    };
    for t in 1100..=1108 {
        assert!(reported(&[t]), "{t}");
        assert!(reported(&[2104, t, 1112]), "{t}");
    }
    // libpam also writes 1109 USER_ERR and 1110 CRED_REFR for pam_setcred(): left out here,
    // as they arguably should count as libpam's own record too.
    for messages in [
        &[][..],
        &[1005],
        &[1099],
        &[1112],
        &[1111, 1112, 1199],
        &[2100, 2104],
        &[1005, 1099, 2103],
    ] {
        assert!(!reported(messages), "{messages:?}");
    }
}
