//! Hostile values in the records the sensor composes itself (the synthesized USER_* and
//! ANOM_LOGIN_* records, the container fields after a user message): whatever a PAM item, an
//! executable or a cgroup is called, every record stays one line with the sensor's fields, and
//! each field reads back, by the parser's rules (quoted, or hex), as exactly the value.

use crate::encode::audit::{write_event, Names, INTERP_SEPARATOR};
use crate::encode::parse::{decode_value, parse_line, Fields, Record};
use crate::event::*;
use crate::testing::audit::{container, names, show};

const PAM_PERM_DENIED: i32 = 6;

const HOSTILE: &[&[u8]] = &[
    b"evil res=success addr=10.9.9.9",
    b"evil' res=success x='",
    b"'",
    b"a\"b",
    b"it's",
    b"x\ny",
    b"x\ry",
    b"x\x1dtype=USER_ACCT msg=audit(1.2:3): res=success",
    b"\x7f",
    b"caf\xc3\xa9",
    b"a=b",
    b"CAFE",
    b"cafe",
    b"?",
    b"(null)",
    b"pts/0",
    b"10.9.9.9",
    b"2001:db8::1",
    b"account-name-much-longer-than-thirty-two-bytes",
];

fn pam_event(v: &[u8]) -> PamEvent {
    let mut c = container();
    c.cgroup_path = v.to_vec();
    PamEvent {
        stamp: Stamp {
            sec: 1795654095,
            nsec: 700_000_000,
            serial: 7,
        },
        boot_ns: 1,
        function: PamFunction::AcctMgmt,
        flags: 0,
        retval: PAM_PERM_DENIED,
        pid: 20120,
        uid: 0,
        auid: UNSET_ID,
        ses: UNSET_ID,
        items: Some(PamItems {
            service: Some(b"sshd".to_vec()),
            user: Some(v.to_vec()),
            rhost: Some(v.to_vec()),
            ruser: Some(v.to_vec()),
            tty: Some(v.to_vec()),
        }),
        modules: vec![ModuleResult {
            module: "pam_access".into(),
            function: "pam_sm_acct_mgmt".into(),
            retval: PAM_PERM_DENIED,
        }],
        libpam_reported: false,
        anomalies: vec![LoginAnomaly {
            msg_type: 2104,
            module: "pam_access".into(),
            rule: "access_origin".into(),
        }],
        exe: Some(v.to_vec()),
        container: c,
        paths_truncated: PathsTruncated::default(),
    }
}

fn encode(ev: &Event, enriched: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let n = names();
    write_event(&mut out, ev, enriched.then_some(&n as &dyn Names));
    out
}

/// The records of `out`, checked to be `lines` lines with one separator each when enriched.
fn records(out: &[u8], lines: usize, enriched: bool) -> Vec<Record> {
    let shown = show(out);
    assert_eq!(
        out.iter().filter(|&&b| b == b'\n').count(),
        lines,
        "{shown}"
    );
    let seps = out.iter().filter(|&&b| b == INTERP_SEPARATOR).count();
    assert_eq!(seps, lines * enriched as usize, "{shown}");
    out.split_inclusive(|&b| b == b'\n')
        .map(|l| parse_line(l).unwrap_or_else(|e| panic!("{e}: {shown}")))
        .collect()
}

fn keys(f: &Fields) -> Vec<String> {
    f.iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// The fields inside `msg='…'`, which must hold no quote of its own.
fn msg_fields(r: &Record) -> Record {
    let msg = r.get(b"msg").expect("msg=");
    let inner = &msg[1..msg.len() - 1];
    assert!(
        msg.starts_with(b"'") && msg.ends_with(b"'"),
        "{}",
        show(msg)
    );
    assert!(!inner.contains(&b'\''), "{}", show(msg));
    let mut line = b"type=X msg=audit(1.000:1): ".to_vec();
    line.extend_from_slice(inner);
    parse_line(&line).unwrap()
}

use crate::encode::audit::CONTAINER_FIELDS as CONTAINER_KEYS;

#[test]
fn hostile_pam_items_and_exe_read_back_as_themselves() {
    for &v in HOSTILE {
        let ev = Event::Pam(pam_event(v));
        for enriched in [false, true] {
            let recs = records(&encode(&ev, enriched), 2, enriched);
            let want_types: [&[u8]; 2] = [b"USER_ACCT", b"ANOM_LOGIN_LOCATION"];
            for (r, (rtype, rule)) in recs
                .iter()
                .zip(want_types.iter().zip(["libpam", "access_origin"]))
            {
                let what = format!("{} for {}", show(rtype), show(v));
                assert_eq!(r.rtype, *rtype, "{what}");
                let mut want = vec!["pid", "uid", "auid", "ses", "msg", "sensor_rule"];
                want.extend(CONTAINER_KEYS);
                assert_eq!(keys(&r.fields), want, "{what}");
                assert_eq!(
                    r.get(b"sensor_rule").map(decode_value),
                    Some(rule.as_bytes().to_vec()),
                    "{what}"
                );
                assert_eq!(decode_value(r.get(b"cgroup").unwrap()), v, "{what}");

                let m = msg_fields(r);
                let mut want = vec!["op", "grantors", "acct", "exe"];
                if *rtype != b"USER_ACCT" {
                    want.remove(1);
                }
                want.extend(["hostname", "addr", "terminal", "res"]);
                assert_eq!(keys(&m.fields), want, "{what}");
                let res: &[u8] = if *rtype == b"USER_ACCT" {
                    b"failed"
                } else {
                    b"success"
                };
                assert_eq!(m.get(b"res"), Some(res), "{what}");
                // libaudit keeps 32 bytes of an account name.
                let acct = &v[..v.len().min(32)];
                assert_eq!(decode_value(m.get(b"acct").unwrap()), acct, "{what}");
                let exe = if *rtype == b"USER_ACCT" {
                    v.to_vec()
                } else {
                    format!("sensor:{rule}").into_bytes()
                };
                assert_eq!(decode_value(m.get(b"exe").unwrap()), exe, "{what}");
                assert_eq!(decode_value(m.get(b"hostname").unwrap()), v, "{what}");
                assert_eq!(decode_value(m.get(b"terminal").unwrap()), v, "{what}");
                let ip = std::str::from_utf8(v)
                    .ok()
                    .filter(|s| s.parse::<std::net::IpAddr>().is_ok());
                let addr = decode_value(m.get(b"addr").unwrap());
                assert_eq!(addr, ip.unwrap_or("?").as_bytes(), "{what}");
            }
        }
    }
}

#[test]
fn empty_items_are_unset_as_libaudit_takes_them() {
    let ev = Event::Pam(pam_event(b""));
    let recs = records(&encode(&ev, false), 2, false);
    for r in &recs {
        let m = msg_fields(r);
        for key in [&b"hostname"[..], b"addr", b"terminal"] {
            assert_eq!(m.get(key), Some(&b"?"[..]), "{}", show(key));
        }
    }
}

#[test]
fn a_quote_in_the_cgroup_cannot_reach_into_a_user_messages_text() {
    let mut c = container();
    c.cgroup_path = b"/user.slice/user-1000.slice/user@1000.service/x'y".to_vec();
    let ev = Event::UserMessage(UserMessageEvent {
        stamp: Stamp {
            sec: 1795654095,
            nsec: 0,
            serial: 8,
        },
        boot_ns: 1,
        msg_type: 1112,
        pid: 4242,
        uid: 65534,
        auid: UNSET_ID,
        ses: UNSET_ID,
        text: b"op=login acct=\"root\" res=success".to_vec(),
        truncated: false,
        trusted: false,
        exe: Some(b"/usr/bin/login".to_vec()),
        container: c.clone(),
        paths_truncated: PathsTruncated::default(),
    });
    for enriched in [false, true] {
        let r = &records(&encode(&ev, enriched), 1, enriched)[0];
        assert_eq!(
            r.get(b"msg"),
            Some(&b"'op=login acct=\"root\" res=success'"[..])
        );
        assert_eq!(r.get(b"sensor_untrusted"), Some(&b"\"1\""[..]));
        assert_eq!(decode_value(r.get(b"cgroup").unwrap()), c.cgroup_path);
    }
}
