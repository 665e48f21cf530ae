//! The reader's bounds: the message cap is what the sensor can write, and a message under it
//! whose lists would expand a hundredfold is refused before it is decoded.

use prost::Message;

use super::super::{
    from_envelope, to_envelope, write_delimited, HostInfo, ProtoError, DEFAULT_MAX_MESSAGE_LEN,
    MAX_ARGV,
};
use super::*;
use crate::{event::Event, testing::events::full_exec};

fn framed(env: &v1::Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    write_delimited(&mut out, env);
    out
}

fn exec_with(edit: impl FnOnce(&mut v1::ExecEvent)) -> v1::Envelope {
    let mut env = to_envelope(Event::Exec(full_exec()), &HostInfo::default());
    match env.body.as_mut() {
        Some(v1::envelope::Body::Exec(e)) => edit(e),
        _ => unreachable!(),
    }
    env
}

/// A length-delimited envelope with an exec body for each of `bodies` (prost merges them).
fn with_exec_bodies(bodies: &[&[u8]]) -> Vec<u8> {
    let mut env = v1::Envelope {
        schema_version: 4,
        serial: 1,
        wall_sec: 1,
        ..Default::default()
    }
    .encode_to_vec();
    for body in bodies {
        env.extend_from_slice(&[0x82, 0x01]); // field 16 (exec), length-delimited
        prost::encoding::encode_varint(body.len() as u64, &mut env);
        env.extend_from_slice(body);
    }
    let mut out = Vec::new();
    prost::encoding::encode_varint(env.len() as u64, &mut out);
    out.extend_from_slice(&env);
    out
}

fn exec_body(edit: impl FnOnce(&mut v1::ExecEvent)) -> Vec<u8> {
    match exec_with(edit).body {
        Some(v1::envelope::Body::Exec(e)) => e.encode_to_vec(),
        _ => unreachable!(),
    }
}

/// A length-delimited envelope whose exec holds `n` empty arguments, written by hand (as an
/// attacker would) rather than built as a `Vec` of `n` elements.
pub(super) fn empty_args_message(n: usize) -> Vec<u8> {
    let mut body = exec_body(|e| e.argv.clear());
    body.reserve(2 * n);
    for _ in 0..n {
        body.extend_from_slice(&[0x3a, 0x00]); // field 7 (argv), length 0
    }
    with_exec_bodies(&[&body])
}

#[test]
fn the_cap_is_what_the_sensor_can_write() {
    assert_eq!(DEFAULT_MAX_MESSAGE_LEN, 9 << 20);
    // The largest argv a successful exec has: one 4 MiB argument, or 699,050 empty ones.
    let one_big = exec_with(|e| e.argv = vec![vec![b'x'; 4 << 20]]);
    let many = exec_with(|e| e.argv = vec![Vec::new(); 699_050]);
    for env in [one_big, many] {
        let bytes = framed(&env);
        assert!(bytes.len() < DEFAULT_MAX_MESSAGE_LEN as usize);
        let back = DelimitedReader::new(bytes.as_slice())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back, env);
        assert!(from_envelope(back).is_ok());
    }
}

#[test]
fn a_message_over_the_cap_is_refused_unread() {
    // 30 million empty arguments: 60 MB that decoded to 720 MB of argument headers.
    let bytes = empty_args_message(30_000_000);
    let mut r = DelimitedReader::new(bytes.as_slice());
    let err = r.next().unwrap().unwrap_err();
    assert!(
        matches!(err, ProtoError::TooLarge { offset: 0, max, .. } if max == 9 << 20),
        "{err}"
    );
    assert_eq!(r.offset, 4, "only the length prefix was read: {}", r.offset);
    assert!(r.next().is_none());
}

#[test]
fn too_many_arguments_are_refused_by_name_and_reading_goes_on() {
    let mut bytes = empty_args_message(MAX_ARGV + 1);
    assert!(bytes.len() < DEFAULT_MAX_MESSAGE_LEN as usize);
    bytes.extend(framed(&exec_with(|_| {})));
    let mut r = DelimitedReader::new(bytes.as_slice());
    let err = r.next().unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ProtoError::InvalidField {
                field: "ExecEvent.argv",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "field ExecEvent.argv is invalid: the message at byte 0 holds more than {MAX_ARGV} \
             elements, more than the sensor ever writes"
        )
    );
    let next = r.next().unwrap().unwrap();
    assert_eq!(from_envelope(next).unwrap(), Event::Exec(full_exec()));
    assert!(r.next().is_none());

    // At the bound it is read; the model's conversion holds the same bound.
    let at = empty_args_message(MAX_ARGV);
    let env = DelimitedReader::new(at.as_slice()).next().unwrap().unwrap();
    assert!(from_envelope(env).is_ok());
    let over = exec_with(|e| e.argv = vec![Vec::new(); MAX_ARGV + 1]);
    assert!(matches!(
        from_envelope(over),
        Err(ProtoError::InvalidField {
            field: "ExecEvent.argv",
            ..
        })
    ));
}

#[test]
fn every_list_is_bounded_and_occurrences_add_up() {
    let paths = exec_with(|e| {
        e.paths = vec![v1::PathItem::default(); 4097];
    });
    let regs = exec_with(|e| e.regs = vec![1; 7]);
    for (env, field) in [(paths, "ExecEvent.paths"), (regs, "ExecEvent.regs")] {
        let bytes = framed(&env);
        match DelimitedReader::new(bytes.as_slice()).next() {
            Some(Err(ProtoError::InvalidField { field: f, .. })) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // An exec body sent twice is merged by prost: its lists add up.
    let half = exec_body(|e| {
        e.paths = vec![v1::PathItem::default(); 2100];
        e.regs.clear();
    });
    let bytes = with_exec_bodies(&[&half, &half]);
    assert!(matches!(
        DelimitedReader::new(bytes.as_slice()).next(),
        Some(Err(ProtoError::InvalidField {
            field: "ExecEvent.paths",
            ..
        }))
    ));
    let once = with_exec_bodies(&[&half]);
    assert!(DelimitedReader::new(once.as_slice())
        .next()
        .unwrap()
        .is_ok());
    // Under the bounds, nothing changes.
    let fine = exec_with(|e| {
        e.paths = vec![
            v1::PathItem {
                name: b"/bin/x".to_vec(),
                nametype: v1::NameType::Normal as i32,
                ..Default::default()
            };
            3
        ]
    });
    let bytes = framed(&fine);
    assert_eq!(
        DelimitedReader::new(bytes.as_slice())
            .next()
            .unwrap()
            .unwrap(),
        fine
    );
}

#[test]
fn a_short_stream_with_a_large_claimed_length_allocates_what_is_there() {
    let mut bytes = Vec::new();
    prost::encoding::encode_varint(8 << 20, &mut bytes);
    bytes.extend_from_slice(&[0u8; 1000]);
    let mut r = DelimitedReader::new(bytes.as_slice());
    let mut buf = Vec::new();
    r.read_len().unwrap();
    assert_eq!(r.read_into(&mut buf, 8 << 20).unwrap(), 1000);
    assert!(buf.capacity() <= 64 << 10, "{}", buf.capacity());
    // A full message grows to exactly its length.
    let bytes = vec![7u8; 300_000];
    let mut r = DelimitedReader::new(bytes.as_slice());
    let mut buf = Vec::new();
    assert_eq!(r.read_into(&mut buf, 300_000).unwrap(), 300_000);
    assert_eq!(buf.capacity(), 300_000);
    assert_eq!(r.offset, 300_000);
}
