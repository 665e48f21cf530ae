//! Anomaly events: the tests of the parent module, for the kinds added in schema 3.

use super::*;

use crate::encode::audit::{write_event, FixedNames};
use crate::event::{Anomaly, AnomalyEvent, PathDenial, Promiscuity, SyscallPart};

fn syscall_part(syscall: Syscall, exit: i64) -> SyscallPart {
    SyscallPart {
        syscall,
        success: exit >= 0,
        exit,
        regs: [0xffff_ff9c, 0x7ffd_c41c_3ae8, u64::MAX, 0],
        task: full_exec().task,
        proctitle: b"ln\0/etc/shadow\0\x1d \n".to_vec(),
    }
}

fn anomaly(serial: u64, anomaly: Anomaly, syscall: Option<SyscallPart>) -> AnomalyEvent {
    AnomalyEvent {
        stamp: stamp(serial),
        boot_ns: 77 + serial,
        anomaly,
        syscall,
        container: full_exec().container,
        paths_truncated: PathsTruncated {
            cwd: false,
            exe: true,
            cgroup: true,
        },
    }
}

fn path_denied(denial: PathDenial, names: &[&[u8]]) -> Anomaly {
    Anomaly::PathDenied {
        denial,
        names: names.iter().map(|n| n.to_vec()).collect(),
        object: b"/etc/sha dow\xff".to_vec(),
    }
}

fn promiscuity(dev: &[u8], prom: u32, old_prom: u32) -> Promiscuity {
    Promiscuity {
        dev: dev.to_vec(),
        prom,
        old_prom,
        auid: UNSET_ID,
        uid: 1000,
        gid: 1001,
        ses: 4,
    }
}

pub(crate) fn anomaly_shapes() -> Vec<AnomalyEvent> {
    let link = path_denied(PathDenial::Linkat, &[b"/etc/shadow", b"/tmp/h\nl"]);
    let follow = path_denied(PathDenial::FollowLink, &[b"/tmp/anx/sl"]);
    let sticky = path_denied(PathDenial::StickyCreate, &[b"/tmp/anx/f\x1d"]);
    let changes = vec![promiscuity(b"vtest0", 256, 0), promiscuity(b"v x", 0, 256)];
    let closed = vec![promiscuity(b"eth0", 0, 256)];
    vec![
        anomaly(20, link, Some(syscall_part(Syscall::Linkat, -1))),
        anomaly(21, follow, Some(syscall_part(Syscall::Openat, -13))),
        anomaly(22, sticky, Some(syscall_part(Syscall::Openat2, -13))),
        anomaly(
            23,
            Anomaly::Promiscuous(changes),
            Some(syscall_part(Syscall::Sendmsg, 32)),
        ),
        anomaly(24, Anomaly::Promiscuous(closed), None),
    ]
}

fn audit_text(ev: &Event, enriched: bool) -> Vec<u8> {
    let names = FixedNames::new()
        .with_user(1000, b"u")
        .with_group(1001, b"g");
    let mut out = Vec::new();
    write_event(&mut out, ev, enriched.then_some(&names as _));
    out
}

#[test]
fn anomalies_round_trip_with_the_same_audit_text() {
    for a in anomaly_shapes() {
        let ev = Event::Anomaly(a);
        let back = round_trip(&ev);
        assert_eq!(back, ev);
        for enriched in [false, true] {
            let text = audit_text(&ev, enriched);
            assert!(!text.is_empty());
            assert_eq!(audit_text(&back, enriched), text);
        }
    }
}

fn anomaly_body(env: &mut v1::Envelope) -> &mut v1::AnomalyEvent {
    match env.body.as_mut() {
        Some(v1::envelope::Body::Anomaly(a)) => a,
        _ => unreachable!(),
    }
}

#[test]
fn incomplete_anomalies_are_rejected() {
    let follow = path_denied(PathDenial::FollowLink, &[b"/tmp/anx/sl"]);
    let env = to_envelope(&Event::Anomaly(anomaly(30, follow, None)), &host());
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("AnomalyEvent.syscall"))
    ));

    for shape in anomaly_shapes() {
        let mut env = to_envelope(&Event::Anomaly(shape), &host());
        anomaly_body(&mut env).anomaly = None;
        assert!(matches!(
            decode_via_bytes(&env),
            Err(ProtoError::MissingField("AnomalyEvent.anomaly"))
        ));
    }

    let empty = anomaly(31, Anomaly::Promiscuous(Vec::new()), None);
    let env = to_envelope(&Event::Anomaly(empty), &host());
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("Promiscuous.changes"))
    ));
}
