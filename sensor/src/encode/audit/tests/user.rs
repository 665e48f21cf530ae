//! User-space audit messages against lines that real kernel audit + auditd 3.0.9
//! (log_format=ENRICHED) wrote, and properties of the writer for any text.

use crate::encode::audit::{write_event, Names, INTERP_SEPARATOR};
use crate::event::*;
use crate::testing::audit::{container, names, show, with_container};
use crate::testing::audit::{insert, raw};

/// auditd's lines as logged, `^]` standing for the 0x1d separator: `pamtester` as root from
/// 203.0.113.9, refused by pam_access (`-:root:203.0.113.9` in access.conf).
const KERNEL: &str = r#"type=USER_ACCT msg=audit(1795654095.700:166542): pid=20120 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting grantors=? acct="root" exe="/usr/bin/pamtester" hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=failed'^]UID="root" AUID="unset"
type=ANOM_LOGIN_LOCATION msg=audit(1795654095.700:166541): pid=20120 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:pam_access acct="root" exe="/usr/bin/pamtester" hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=success'^]UID="root" AUID="unset""#;

/// The texts libpam and pam_access handed to libaudit for those two lines.
const ACCT_TEXT: &str = r#"op=PAM:accounting grantors=? acct="root" exe="/usr/bin/pamtester" hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=failed"#;
const LOCATION_TEXT: &str = r#"op=PAM:pam_access acct="root" exe="/usr/bin/pamtester" hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=success"#;

fn kernel() -> Vec<String> {
    KERNEL.lines().map(|l| l.replace("^]", "\x1d")).collect()
}

fn message(msg_type: u32, serial: u64, text: &[u8]) -> UserMessageEvent {
    UserMessageEvent {
        stamp: Stamp {
            sec: 1795654095,
            nsec: 700_000_000,
            serial,
        },
        boot_ns: 1,
        msg_type,
        pid: 20120,
        uid: 0,
        auid: UNSET_ID,
        ses: UNSET_ID,
        text: text.to_vec(),
        truncated: false,
        trusted: true,
        exe: Some(b"/usr/bin/pamtester".to_vec()),
        container: container(),
        paths_truncated: PathsTruncated::default(),
    }
}

fn user_acct() -> UserMessageEvent {
    message(1101, 166542, ACCT_TEXT.as_bytes())
}

fn encode(ev: &UserMessageEvent, enriched: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let n = names();
    let ev = Event::UserMessage(ev.clone());
    write_event(&mut out, &ev, enriched.then_some(&n as &dyn Names));
    out
}

/// Both outputs of `ev` against the expected ENRICHED line, byte for byte.
fn assert_line(ev: &UserMessageEvent, want: &str) {
    for enriched in [false, true] {
        let want = format!("{}\n", if enriched { want } else { raw(want) });
        let got = encode(ev, enriched);
        assert_eq!(show(&got), show(want.as_bytes()));
        assert_eq!(got, want.as_bytes());
    }
}

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn golden_user_acct_from_libpam() {
    assert_line(&user_acct(), &with_container(&kernel()[0]));
}

#[test]
fn golden_anom_login_location_from_pam_access() {
    let ev = message(2104, 166541, LOCATION_TEXT.as_bytes());
    assert_line(&ev, &with_container(&kernel()[1]));
}

#[test]
fn an_untrusted_message_is_marked() {
    let mut ev = user_acct();
    ev.trusted = false;
    let want = with_container(&insert(&kernel()[0], " sensor_untrusted=\"1\""));
    assert_line(&ev, &want);
}

#[test]
fn a_truncated_message_is_marked() {
    let mut ev = user_acct();
    ev.truncated = true;
    let want = with_container(&insert(&kernel()[0], " sensor_trunc_msg=\"1\""));
    assert_line(&ev, &want);

    ev.trusted = false;
    let both = " sensor_untrusted=\"1\" sensor_trunc_msg=\"1\"";
    assert_line(&ev, &with_container(&insert(&kernel()[0], both)));
}

#[test]
fn container_id_and_cut_paths_follow_the_container_fields() {
    let mut ev = user_acct();
    ev.container.container_id = Some("c0ffee".into());
    ev.paths_truncated.exe = true;
    ev.paths_truncated.cgroup = true;
    let extra = " container=\"c0ffee\" sensor_trunc_paths=\"exe,cgroup\"";
    assert_line(&ev, &insert(&with_container(&kernel()[0]), extra));
}

#[test]
fn enrichment_names_unknown_ids() {
    let mut ev = user_acct();
    ev.uid = 1234;
    ev.auid = 65534;
    let out = show(&encode(&ev, true));
    assert!(out.contains(" pid=20120 uid=1234 auid=65534 ses=4294967295 msg='op="));
    assert!(
        out.ends_with("^]UID=\"unknown(1234)\" AUID=\"nobody\"\n"),
        "{out}"
    );
}

#[test]
fn unknown_types_print_as_auditd_does() {
    assert!(crate::catalog::by_number(2999).is_none());
    for (msg_type, name) in [
        (2999, "UNKNOWN[2999]"),
        (1005, "USER"),
        (1112, "USER_LOGIN"),
        (2100, "ANOM_LOGIN_FAILURES"),
    ] {
        let ev = message(msg_type, 7, b"op=x res=success");
        for enriched in [false, true] {
            let out = show(&encode(&ev, enriched));
            let want = format!("type={name} msg=audit(1795654095.700:7): pid=20120 ");
            assert!(out.starts_with(&want), "{out}");
        }
    }
}

/// Texts that could end the quoted value or the line, or forge a record.
const HOSTILE: [&[u8]; 9] = [
    b"op=it's res=success",
    b"op=x res=success'",
    b"op=a\nb res=success",
    b"op=a\x1db res=success",
    b"op=x res=failed\ntype=USER_ACCT msg=audit(1795654095.700:166543): pid=1 uid=0 \
      auid=0 ses=1 msg='op=PAM:accounting acct=\"root\" res=success'",
    b"op=x\r res=success",
    b"op=x\t res=success",
    b"op=x\x7f res=success",
    b"\x00",
];

#[test]
fn hostile_texts_are_hex_and_cannot_forge_lines_or_separators() {
    for text in HOSTILE {
        let mut ev = message(1101, 9, text);
        for (trusted, truncated) in [(true, false), (false, true)] {
            ev.trusted = trusted;
            ev.truncated = truncated;
            for enriched in [false, true] {
                let out = encode(&ev, enriched);
                let shown = show(&out);
                assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "{shown}");
                assert_eq!(out.last(), Some(&b'\n'));
                let seps = out.iter().filter(|&&b| b == INTERP_SEPARATOR).count();
                assert_eq!(seps, enriched as usize, "{shown}");
                assert!(!out.contains(&b'\''), "{shown}");
                assert_eq!(shown.matches("type=").count(), 1, "{shown}");
                assert_eq!(shown.matches("msg=audit(").count(), 1, "{shown}");
                let mut marks = String::new();
                if !trusted {
                    marks.push_str(" sensor_untrusted=\"1\"");
                }
                if truncated {
                    marks.push_str(" sensor_trunc_msg=\"1\"");
                }
                let want = format!(
                    "type=USER_ACCT msg=audit(1795654095.700:9): pid=20120 uid=0 \
                     auid=4294967295 ses=4294967295 msg={}{marks} cgroup_id=\"4242\" ",
                    hex(text)
                );
                assert!(shown.starts_with(&want), "{shown}");
            }
        }
    }
}

#[test]
fn hex_text_is_upper_case_and_unquoted() {
    let out = show(&encode(&message(1101, 9, b"a'\n\x1d\xff"), false));
    assert!(out.contains(" msg=61270A1DFF cgroup_id="), "{out}");
}

#[test]
fn benign_texts_stay_quoted_as_sent() {
    for text in [
        &b""[..],
        b"op=x acct=\"a b\" res=success",
        b"op=x exe=\"/usr/bin/caf\xc3\xa9\" res=success",
        b"op=x data=\xff\x80 res=success",
        b"0123456789ABCDEF",
        b"op=x ~!@#$%^&*()_+{}|:<>?`-=[]\\;,./ res=success",
    ] {
        let out = encode(&message(1101, 9, text), false);
        let want = [b" msg='", text, b"' cgroup_id=\"4242\" "].concat();
        assert!(
            out.windows(want.len()).any(|w| w == want.as_slice()),
            "{}",
            show(&out)
        );
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    }
}

#[test]
fn hostile_container_fields_stay_inside_their_values() {
    let mut ev = user_acct();
    ev.container.cgroup_path = b"/a b\n\x1dtype=USER_ACCT msg='".to_vec();
    ev.container.container_id = Some("x y\n".into());
    for enriched in [false, true] {
        let out = encode(&ev, enriched);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let seps = out.iter().filter(|&&b| b == INTERP_SEPARATOR).count();
        assert_eq!(seps, enriched as usize);
        let shown = show(&out);
        let want = format!(" cgroup={} pidns=", hex(b"/a b\n\x1dtype=USER_ACCT msg='"));
        assert!(shown.contains(&want), "{shown}");
        let id = format!(" container={}", hex(b"x y\n"));
        let tail = if enriched { "^]" } else { "\n" };
        assert!(shown.contains(&format!("{id}{tail}")), "{shown}");
    }
}

#[test]
fn ids_inside_the_text_are_enriched_as_auditd_does() {
    // sshd's USER_LOGIN names the account by id; shadow's group records use id= for a group.
    let login = message(
        1112,
        7,
        br#"op=login id=0 exe="/usr/sbin/sshd" hostname=? addr=127.0.0.1 terminal=ssh res=success"#,
    );
    let out = show(&encode(&login, true));
    assert!(
        out.ends_with("^]UID=\"root\" AUID=\"unset\" ID=\"root\"\n"),
        "{out}"
    );
    let group = message(
        1116,
        8,
        b"op=add-group id=0 exe=\"/usr/sbin/groupadd\" res=success",
    );
    let out = show(&encode(&group, true));
    assert!(out.ends_with("AUID=\"unset\" ID=\"root\"\n"), "{out}");
    let unset = message(1112, 9, b"op=login id=4294967295 old-auid=-1 res=failed");
    let out = show(&encode(&unset, true));
    assert!(
        out.ends_with("AUID=\"unset\" ID=\"unset\" OLD-AUID=\"unset\"\n"),
        "{out}"
    );
    // Not an id, or not decimal: nothing added; the raw output never has any.
    let other = message(1112, 10, b"op=login acct=\"0\" id=? uid=0x1 res=failed");
    assert!(show(&encode(&other, true)).ends_with("^]UID=\"root\" AUID=\"unset\"\n"));
    assert!(!show(&encode(&login, false)).contains("ID="));
}
