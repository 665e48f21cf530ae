//! Anomaly events: the tests of the parent module, for the kinds added in schema 3.

use super::*;

use crate::encode::audit::{write_event, FixedNames};
use crate::event::{Anomaly, PathDenial};

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
    let env = to_envelope(Event::Anomaly(anomaly(30, follow, None)), &host());
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("AnomalyEvent.syscall"))
    ));

    for shape in anomaly_shapes() {
        let mut env = to_envelope(Event::Anomaly(shape), &host());
        anomaly_body(&mut env).anomaly = None;
        assert!(matches!(
            decode_via_bytes(&env),
            Err(ProtoError::MissingField("AnomalyEvent.anomaly"))
        ));
    }

    let empty = anomaly(31, Anomaly::Promiscuous(Vec::new()), None);
    let env = to_envelope(Event::Anomaly(empty), &host());
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("Promiscuous.changes"))
    ));
}
