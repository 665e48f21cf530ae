//! User messages and PAM calls through protobuf: model → envelope → bytes → envelope → model
//! gives the same event and the same audit text; what the model cannot hold is refused.

use prost::Message;

use sensor_proto::v1;

use crate::encode::audit::{write_event, FixedNames};
use crate::encode::proto::pam::*;
use crate::encode::proto::{
    from_envelope, to_envelope, write_delimited, DelimitedReader, HostInfo, ProtoError,
};
use crate::event::*;
use crate::event::{Event, PathsTruncated, UserMessageEvent};
use crate::testing::pam::*;

fn host() -> HostInfo {
    HostInfo {
        hostname: b"web-1".to_vec(),
        boot_id: b"3f1c2a9e-8d4b-4e6f-9a1b-2c3d4e5f6a7b".to_vec(),
        machine_id: b"0123456789abcdef0123456789abcdef".to_vec(),
    }
}

fn user_messages() -> Vec<UserMessageEvent> {
    let acct = b"op=PAM:accounting grantors=? acct=\"root\" exe=\"/usr/bin/pamtester\" \
                 hostname=203.0.113.9 addr=203.0.113.9 terminal=? res=failed";
    let mut untrusted = user_message(2, 2104, b"op=PAM:pam_access acct=\"root\" res=success");
    untrusted.trusted = false;
    untrusted.truncated = true;
    untrusted.exe = None;
    untrusted.container = container(Some("c0ffee"));
    untrusted.paths_truncated = PathsTruncated {
        cwd: false,
        exe: true,
        cgroup: true,
    };
    vec![
        user_message(1, 1101, acct),
        untrusted,
        user_message(3, 2999, b"it's\n\x1d\xff\x00"),
        user_message(4, 1005, b""),
    ]
}

fn pam_events() -> Vec<PamEvent> {
    let mut out: Vec<PamEvent> = PamFunction::ALL
        .iter()
        .enumerate()
        .map(|(i, &f)| pam(10 + i as u64, f))
        .collect();
    let mut no_items = pam(20, PamFunction::Authenticate);
    no_items.items = None;
    no_items.modules.clear();
    no_items.anomalies.clear();
    no_items.exe = None;
    no_items.retval = -1;
    let mut unset_items = pam(21, PamFunction::Setcred);
    unset_items.items = Some(PamItems::default());
    unset_items.libpam_reported = true;
    unset_items.flags = 0x4;
    unset_items.retval = 0;
    let mut empty_items = pam(22, PamFunction::OpenSession);
    empty_items.items = Some(PamItems {
        service: Some(Vec::new()),
        user: Some(Vec::new()),
        rhost: None,
        ruser: Some(Vec::new()),
        tty: None,
    });
    out.extend([no_items, unset_items, empty_items]);
    out
}

fn all_events() -> Vec<Event> {
    let users = user_messages().into_iter().map(Event::UserMessage);
    users
        .chain(pam_events().into_iter().map(Event::Pam))
        .collect()
}

fn envelope(ev: &Event) -> v1::Envelope {
    to_envelope(ev.clone(), &host())
}

/// Decodes from bytes, as a real reader would.
fn decode_via_bytes(env: &v1::Envelope) -> Result<Event, ProtoError> {
    from_envelope(v1::Envelope::decode(env.encode_to_vec().as_slice()).unwrap())
}

fn audit_text(ev: &Event, enriched: bool) -> Vec<u8> {
    let names = FixedNames::new()
        .with_user(0, b"root")
        .with_user(1000, b"alice");
    let mut out = Vec::new();
    write_event(&mut out, ev, enriched.then_some(&names as _));
    out
}

#[test]
fn user_messages_and_pam_calls_round_trip_with_the_same_audit_text() {
    for ev in all_events() {
        let back = decode_via_bytes(&envelope(&ev)).unwrap();
        assert_eq!(back, ev);
        for enriched in [false, true] {
            assert_eq!(audit_text(&back, enriched), audit_text(&ev, enriched));
        }
    }
}

#[test]
fn only_a_reported_call_without_anomalies_writes_no_audit_text() {
    for p in pam_events() {
        let silent = p.libpam_reported && p.anomalies.is_empty();
        assert_eq!(audit_text(&Event::Pam(p), false).is_empty(), silent);
    }
}

#[test]
fn a_stream_of_them_reads_back_in_order() {
    let events = all_events();
    let mut buf = Vec::new();
    for ev in &events {
        write_delimited(&mut buf, &envelope(ev));
    }
    let mut r = DelimitedReader::new(buf.as_slice());
    for ev in &events {
        let env = r.next().unwrap().unwrap();
        assert_eq!(env.host, Some(v1::Host::from(&host())));
        assert_eq!(env.boot_ns, ev_boot_ns(ev));
        assert_eq!(&from_envelope(env).unwrap(), ev);
    }
    assert!(r.next().is_none());
}

fn ev_boot_ns(ev: &Event) -> u64 {
    match ev {
        Event::UserMessage(m) => m.boot_ns,
        Event::Pam(p) => p.boot_ns,
        _ => unreachable!(),
    }
}

#[test]
fn unset_and_empty_items_stay_distinct() {
    for p in pam_events() {
        let env = envelope(&Event::Pam(p.clone()));
        let Some(v1::envelope::Body::Pam(body)) = &env.body else {
            unreachable!()
        };
        assert_eq!(body.items.is_some(), p.items.is_some());
        let Ok(Event::Pam(back)) = decode_via_bytes(&env) else {
            unreachable!()
        };
        assert_eq!(back.items, p.items);
    }
}

#[test]
fn functions_have_the_schemas_numbers() {
    for (f, name) in PamFunction::ALL.iter().zip([
        "PAM_FUNCTION_AUTHENTICATE",
        "PAM_FUNCTION_SETCRED",
        "PAM_FUNCTION_ACCT_MGMT",
        "PAM_FUNCTION_OPEN_SESSION",
        "PAM_FUNCTION_CLOSE_SESSION",
        "PAM_FUNCTION_CHAUTHTOK",
    ]) {
        let want = v1::PamFunction::from_str_name(name).unwrap() as i32;
        assert_eq!(to_proto(pam(1, *f)).function, want, "{f:?}");
    }
}

fn pam_body(env: &mut v1::Envelope) -> &mut v1::PamEvent {
    match env.body.as_mut() {
        Some(v1::envelope::Body::Pam(p)) => p,
        _ => unreachable!(),
    }
}

#[test]
fn unknown_functions_are_rejected() {
    for value in [0, 7, 99, -1, i32::MAX, i32::MIN] {
        let mut env = envelope(&Event::Pam(pam(1, PamFunction::AcctMgmt)));
        pam_body(&mut env).function = value;
        match decode_via_bytes(&env) {
            Err(ProtoError::UnknownEnum { field, value: v }) => {
                assert_eq!((field, v), ("PamEvent.function", value));
            }
            other => panic!("function {value}: {other:?}"),
        }
    }
}

#[test]
fn missing_containers_are_rejected() {
    let mut env = envelope(&Event::Pam(pam(1, PamFunction::AcctMgmt)));
    pam_body(&mut env).container = None;
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("PamEvent.container"))
    ));

    let mut env = envelope(&Event::UserMessage(user_messages().remove(0)));
    match env.body.as_mut() {
        Some(v1::envelope::Body::UserMessage(m)) => m.container = None,
        _ => unreachable!(),
    }
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("UserMessageEvent.container"))
    ));
}
