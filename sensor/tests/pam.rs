//! PAM and user-space audit messages, with real PAM stacks under /etc/pam.d driven by
//! pamtester, beside real kernel audit: what libpam and its modules write is reproduced byte
//! for byte; the sensor's ANOM_LOGIN_* rules fire for their scenario and not for its near miss;
//! a password typed into the conversation appears in no output.

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use common::{
    auditd::Auditd,
    compare::{events_with, FieldTable},
    exclusive,
    pam::{pamtester, records_of, types, Services},
    scratch, Sensor,
};
use sensor::encode::parse::Record;

#[test]
fn pam_records_rules_and_secrets() {
    let _g = exclusive();
    let dir = scratch("pam");
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let deny_net = file("access-net.conf", "-:root:203.0.113.0/24\n");
    let deny_all = file("access-all.conf", "-:root:ALL\n");
    let time = file("time.conf", "*;*;root;!Al0000-2400\n");
    let limits = file("limits.conf", "nobody hard maxlogins 0\n");
    let mut services = Services(Vec::new());
    let pid = std::process::id();
    let net = services.add(
        &format!("sensor-it-net-{pid}"),
        &format!(
            "auth required pam_permit.so\naccount required pam_access.so accessfile={deny_net}\n"
        ),
    );
    let all = services.add(
        &format!("sensor-it-all-{pid}"),
        &format!("account required pam_access.so accessfile={deny_all}\n"),
    );
    let timed = services.add(
        &format!("sensor-it-time-{pid}"),
        &format!("account required pam_time.so conffile={time}\n"),
    );
    let timed_quiet = services.add(
        &format!("sensor-it-timeq-{pid}"),
        &format!("account required pam_time.so noaudit conffile={time}\n"),
    );
    let limited = services.add(
        &format!("sensor-it-limits-{pid}"),
        &format!("session required pam_limits.so conf={limits}\n"),
    );
    let unix = services.add(
        &format!("sensor-it-unix-{pid}"),
        "auth required pam_unix.so nodelay\n",
    );
    let tally = dir.join("faillock");
    std::fs::create_dir_all(&tally).unwrap();
    let faillock = format!("deny=2 unlock_time=900 dir={}", tally.display());
    let locking = services.add(
        &format!("sensor-it-faillock-{pid}"),
        &format!(
            "auth requisite pam_faillock.so preauth {faillock}\n\
             auth [success=1 default=ignore] pam_unix.so nodelay\n\
             auth [default=die] pam_faillock.so authfail {faillock}\n\
             auth optional pam_permit.so\n"
        ),
    );
    const SECRET: &str = "Sens0r-never-LOG-this-pw";

    let auditd = Auditd::start(&[]);
    let (sensor, logs) = Sensor::start_logging_with(&dir, &["--infer-login-anomalies"]);
    // Beside it, a sensor at its defaults: it must write no record of its own rules.
    let plain_log = dir.join("plain.log");
    let plain_out = format!("audit:{}", plain_log.display());
    let plain = Sensor::start(&["--output", &plain_out]);
    let sensor_pids = [sensor.pid(), plain.pid()];
    let ip = |a: &str| format!("rhost={a}");
    // (scenario, pid, records the sensor must write for it, in order)
    let runs: Vec<(&str, u32, Vec<&str>)> = vec![
        (
            "pam_access names the origin: its own ANOM_LOGIN_LOCATION, reproduced",
            pamtester(
                false,
                &[&ip("203.0.113.9")],
                &net,
                "root",
                &["acct_mgmt"],
                "",
            ),
            vec!["ANOM_LOGIN_LOCATION", "USER_ACCT"],
        ),
        (
            "near miss: an origin the deny line does not name",
            pamtester(
                false,
                &[&ip("198.51.100.7")],
                &net,
                "root",
                &["acct_mgmt"],
                "",
            ),
            vec!["USER_ACCT"],
        ),
        (
            "-:root:ALL from a host: pam_access is silent, rule access_origin",
            pamtester(false, &[&ip("10.9.8.7")], &all, "root", &["acct_mgmt"], ""),
            vec!["USER_ACCT", "ANOM_LOGIN_LOCATION"],
        ),
        (
            "-:root:ALL without an origin: rule access_account",
            pamtester(false, &[], &all, "root", &["acct_mgmt"], ""),
            vec!["USER_ACCT", "ANOM_LOGIN_ACCT"],
        ),
        (
            "near miss: an account the deny line does not name",
            pamtester(
                false,
                &[&ip("10.9.8.7")],
                &all,
                "nobody",
                &["acct_mgmt"],
                "",
            ),
            vec!["USER_ACCT"],
        ),
        (
            "pam_time denies root at any time: its own ANOM_LOGIN_TIME, reproduced",
            pamtester(false, &["tty=pts/9"], &timed, "root", &["acct_mgmt"], ""),
            vec!["ANOM_LOGIN_TIME", "USER_ACCT"],
        ),
        (
            "pam_time noaudit denies silently: rule time",
            pamtester(
                false,
                &["tty=pts/9"],
                &timed_quiet,
                "root",
                &["acct_mgmt"],
                "",
            ),
            vec!["USER_ACCT", "ANOM_LOGIN_TIME"],
        ),
        (
            "near miss: pam_time lets another account in",
            pamtester(false, &["tty=pts/9"], &timed, "nobody", &["acct_mgmt"], ""),
            vec!["USER_ACCT"],
        ),
        (
            "pam_limits maxlogins 0: rule logins",
            pamtester(false, &[], &limited, "nobody", &["open_session"], ""),
            vec!["USER_START", "ANOM_LOGIN_SESSIONS"],
        ),
        (
            "near miss: no limit for another account",
            pamtester(
                false,
                &[],
                &limited,
                "root",
                &["open_session", "close_session"],
                "",
            ),
            vec!["USER_START", "USER_END"],
        ),
    ];
    // Failed authentications without pam_faillock in the stack: nothing locks, so no
    // ANOM_LOGIN_FAILURES, however many.
    let mut failures = Vec::new();
    for _ in 0..3 {
        failures.push(pamtester(
            false,
            &[],
            &unix,
            "nobody",
            &["authenticate"],
            &format!("{SECRET}\n"),
        ));
    }
    let two = [
        pamtester(false, &[], &unix, "daemon", &["authenticate"], "wrong\n"),
        pamtester(false, &[], &unix, "daemon", &["authenticate"], "wrong\n"),
    ];
    // pam_faillock deny=2: the second failure locks the account, and pam_faillock says so itself.
    let locks = [
        pamtester(false, &[], &locking, "bin", &["authenticate"], "wrong\n"),
        pamtester(false, &[], &locking, "bin", &["authenticate"], "wrong\n"),
    ];
    // Without CAP_AUDIT_WRITE the kernel refuses libpam's record; the sensor marks it.
    let untrusted = pamtester(true, &[], &net, "nobody", &["authenticate"], "");
    // su, set-uid root, run by nobody with a wrong password, through the system's own stack.
    let su = {
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["su", "root", "-c", "true"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        (&stdin)
            .write_all(format!("{SECRET}\n").as_bytes())
            .unwrap();
        drop(stdin);
        let pid = child.id();
        assert!(
            !child.wait().unwrap().success(),
            "su accepted a wrong password"
        );
        pid
    };
    let text = sensor.stop_and_read(&logs);
    let (status, stderr) = plain.stop();
    assert!(status.success(), "{stderr}");
    let plain_text = std::fs::read(&plain_log).unwrap();
    let kernel = auditd.collect(&dir.join("auditd.log"), |t| !records_of(t, su).is_empty());
    drop(auditd);
    drop(services);

    let mut table = FieldTable::default();
    for (name, pid, want) in &runs {
        let ours = records_of(&text, *pid);
        assert_eq!(types(&ours), *want, "{name}");
        // What a program wrote is what the kernel logged, byte for byte (sensor fields aside).
        let theirs = records_of(&kernel, *pid);
        for k in &theirs {
            let s = ours
                .iter()
                .find(|s| s.rtype == k.rtype && s.get(b"sensor_rule").is_none())
                .unwrap_or_else(|| panic!("{name}: the sensor lacks the kernel's {:?}", k.rtype));
            table.compare(name, k, s);
        }
        for s in ours.iter().filter(|s| s.get(b"sensor_rule").is_some()) {
            assert!(
                !theirs.iter().any(|k| k.rtype == s.rtype),
                "{name}: a rule duplicated a record the kernel has"
            );
        }
    }
    table.print_and_assert();
    let anomalies = |pid: u32| {
        types(&records_of(&text, pid))
            .into_iter()
            .filter(|t| t == "ANOM_LOGIN_FAILURES")
            .count()
    };
    assert_eq!(
        failures.iter().map(|&p| anomalies(p)).collect::<Vec<_>>(),
        [0, 0, 0],
        "no ANOM_LOGIN_FAILURES without pam_faillock in the stack"
    );
    assert_eq!(
        anomalies(two[0]) + anomalies(two[1]),
        0,
        "two failures are no anomaly"
    );
    // Starting leaves nothing in the host's audit trail (libpam's pam_end of the layout
    // calibration would have written USER_ERR op=PAM:bad_ident).
    for pid in sensor_pids {
        assert_eq!(
            records_of(&kernel, pid),
            vec![],
            "the sensor's own start was audited"
        );
    }
    // At its defaults the sensor writes only what programs wrote: every ANOM_LOGIN_* record is
    // the kernel's, and none names a sensor rule.
    for (name, pid, _) in &runs {
        let (ours, theirs) = (records_of(&plain_text, *pid), records_of(&kernel, *pid));
        let anom = |r: &Vec<Record>| {
            let mut t: Vec<String> = types(r)
                .into_iter()
                .filter(|t| t.starts_with("ANOM_"))
                .collect();
            t.sort();
            t
        };
        assert_eq!(anom(&ours), anom(&theirs), "defaults: {name}");
        assert!(
            ours.iter()
                .all(|r| !r.get(b"sensor_rule").is_some_and(|v| v != b"\"libpam\"")),
            "defaults: {name}: {ours:?}"
        );
    }
    let lock = records_of(&text, locks[1]);
    assert_eq!(
        types(&lock),
        ["ANOM_LOGIN_FAILURES", "RESP_ACCT_LOCK", "USER_AUTH"],
        "pam_faillock's own records of the lock, reproduced"
    );
    assert!(lock.iter().all(|r| r.get(b"sensor_rule").is_none()));
    assert_eq!(
        types(&records_of(&text, locks[0])),
        ["USER_AUTH"],
        "near miss: no lock yet"
    );
    // su's failure: libpam's USER_AUTH, as the kernel logged it.
    let (ours, theirs) = (records_of(&text, su), records_of(&kernel, su));
    assert!(types(&ours).contains(&"USER_AUTH".to_string()), "{ours:?}");
    assert_eq!(types(&ours), types(&theirs), "su");
    let mut su_table = FieldTable::default();
    for (k, s) in theirs.iter().zip(&ours) {
        su_table.compare("su as nobody, wrong password", k, s);
    }
    su_table.print_and_assert();
    let refused = records_of(&text, untrusted);
    assert!(
        !refused.is_empty()
            && refused
                .iter()
                .all(|r| r.get(b"sensor_untrusted") == Some(b"\"1\"")),
        "{refused:?}"
    );
    assert!(records_of(&kernel, untrusted).is_empty());
    assert!(events_with(&text, b"USER_AUTH").len() >= 5);
    for out in [&logs.enriched, &logs.raw, &logs.proto] {
        let bytes = std::fs::read(out).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the password is in {}",
            out.display()
        );
    }
}
