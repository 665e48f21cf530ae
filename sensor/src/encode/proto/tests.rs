use super::*;
use crate::event::AUDIT_ARCH_X86_64;
use crate::testing::events::*;
use prost::Message;
use std::io::Read;

fn host() -> HostInfo {
    HostInfo {
        hostname: b"web-1\xff".to_vec(),
        boot_id: b"3f1c2a9e-8d4b-4e6f-9a1b-2c3d4e5f6a7b".to_vec(),
        machine_id: b"0123456789abcdef0123456789abcdef".to_vec(),
    }
}

fn empty_exec() -> ExecEvent {
    ExecEvent {
        paths_truncated: PathsTruncated::default(),
        bprm_fcaps: None,
        stamp: stamp(7),
        boot_ns: 0,
        arch: AUDIT_ARCH_X86_64,
        syscall: Syscall::EXECVE,
        success: false,
        exit: -2,
        regs: [0; 4],
        task: Task::default(),
        argv: Vec::new(),
        argv_truncated: None,
        proctitle: Vec::new(),
        cwd: None,
        paths: Vec::new(),
        container: Container::default(),
        key: None,
    }
}

/// Through the whole path, as the `proto` output writes it: model → stream bytes → envelope →
/// model. The envelope read back is the one `to_envelope` makes, host header included.
fn round_trip(ev: &Event) -> Event {
    let mut buf = Vec::new();
    StreamWriter::new(&host()).write(&mut buf, ev.clone());
    let mut r = DelimitedReader::new(buf.as_slice());
    let env = r.next().unwrap().unwrap();
    assert!(r.next().is_none());
    assert_eq!(env, to_envelope(ev.clone(), &host()));
    from_envelope(env).unwrap()
}

fn stream(events: &[Event]) -> Vec<u8> {
    let mut buf = Vec::new();
    let writer = StreamWriter::new(&host());
    for ev in events {
        writer.write(&mut buf, ev.clone());
    }
    buf
}

fn exec_envelope() -> v1::Envelope {
    to_envelope(Event::Exec(full_exec()), &host())
}

fn exec_body(env: &mut v1::Envelope) -> &mut v1::ExecEvent {
    match env.body.as_mut() {
        Some(v1::envelope::Body::Exec(e)) => e,
        _ => unreachable!(),
    }
}

/// Decodes from bytes, as a real reader would, so prost's handling of odd values is covered too.
fn decode_via_bytes(env: &v1::Envelope) -> Result<Event, ProtoError> {
    from_envelope(v1::Envelope::decode(env.encode_to_vec().as_slice()).unwrap())
}

#[test]
fn full_exec_round_trips() {
    let ev = Event::Exec(full_exec());
    assert_eq!(round_trip(&ev), ev);
}

#[test]
fn unset_and_empty_fields_stay_distinct() {
    let ev = Event::Exec(empty_exec());
    assert_eq!(round_trip(&ev), ev);
    let mut e = empty_exec();
    e.cwd = Some(Vec::new());
    e.key = Some(Vec::new());
    e.task.tty = Some(Vec::new());
    e.task.exe = Some(Vec::new());
    e.container.container_id = Some(String::new());
    e.argv_truncated = Some(ArgvTruncation::default());
    e.argv = vec![Vec::new()];
    let ev = Event::Exec(e);
    assert_eq!(round_trip(&ev), ev);
}

#[test]
fn lost_round_trips_with_header() {
    let ev = Event::Lost(lost());
    let env = to_envelope(ev.clone(), &host());
    assert_eq!(env.schema_version, SCHEMA_VERSION);
    assert_eq!(
        (env.serial, env.wall_sec, env.wall_nsec),
        (9, 1_700_000_000, 999_999_999)
    );
    assert_eq!(env.boot_ns, 0);
    assert_eq!(round_trip(&ev), ev);
}

#[test]
fn exec_header_carries_stamp_and_boot_time() {
    let env = exec_envelope();
    assert_eq!((env.serial, env.boot_ns), (42, 123_456_789_012));
}

/// Pins the wire layout: renumbering a header field or a body member breaks this.
#[test]
fn wire_layout_is_stable() {
    let env = v1::Envelope {
        schema_version: 1,
        serial: 2,
        body: Some(v1::envelope::Body::Lost(v1::LostEvent {
            total: 3,
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_eq!(
        env.encode_to_vec(),
        [0x08, 1, 0x10, 2, 0x8a, 0x01, 2, 0x08, 3]
    );
    assert_eq!(v1::Syscall::Execve as i32, 1);
    assert_eq!(v1::Syscall::Execveat as i32, 2);
    assert_eq!(v1::NameType::Normal as i32, 1);
    assert_eq!(v1::NameType::Unknown as i32, 2);
}

#[test]
fn stream_of_envelopes_reads_back_in_order() {
    let events = vec![
        Event::Exec(full_exec()),
        Event::Lost(lost()),
        Event::Exec(empty_exec()),
        Event::Lost(LostEvent::default()),
    ];
    let buf = stream(&events);
    let back: Vec<Event> = DelimitedReader::new(buf.as_slice())
        .map(|env| from_envelope(env.unwrap()).unwrap())
        .collect();
    assert_eq!(back, events);
}

/// Hands out one byte per read and an `Interrupted` between reads, like a slow pipe.
struct Trickle<'a>(&'a [u8], bool);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = !self.1;
        if self.1 {
            return Err(io::Error::from(ErrorKind::Interrupted));
        }
        let n = self.0.len().min(buf.len()).min(1);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn short_and_interrupted_reads_are_retried() {
    let events = vec![Event::Lost(lost()), Event::Exec(empty_exec())];
    let buf = stream(&events);
    let back: Vec<Event> = DelimitedReader::new(Trickle(&buf, false))
        .map(|env| from_envelope(env.unwrap()).unwrap())
        .collect();
    assert_eq!(back, events);
}

#[test]
fn empty_stream_has_no_items() {
    assert!(DelimitedReader::new(&[][..]).next().is_none());
}

fn assert_truncated_at(data: &[u8], first_len: usize) {
    let mut r = DelimitedReader::new(data);
    assert!(r.next().unwrap().is_ok());
    let cut = data.len();
    match r.next() {
        Some(Err(ProtoError::Truncated {
            offset,
            needed,
            got,
        })) => {
            assert_eq!(offset, first_len as u64);
            assert!(got < needed, "cut {cut}");
        }
        Some(Err(ProtoError::TruncatedLength { offset })) => assert_eq!(offset, first_len as u64),
        other => panic!("cut {cut}: {other:?}"),
    }
    assert!(r.next().is_none(), "a framing error ends the stream");
}

#[test]
fn truncated_final_message_is_an_error() {
    let first = stream(&[Event::Lost(lost())]).len();
    // Every cut of a small message, including inside its length prefix...
    let small = stream(&[Event::Lost(lost()), Event::Exec(empty_exec())]);
    for cut in first + 1..small.len() {
        assert_truncated_at(&small[..cut], first);
    }
    // ...and of a large one, whose prefix takes several bytes.
    let big = stream(&[Event::Lost(lost()), Event::Exec(full_exec())]);
    for cut in [
        first + 1,
        first + 2,
        first + 3,
        first + 4,
        big.len() / 2,
        big.len() - 1,
    ] {
        assert_truncated_at(&big[..cut], first);
    }
}

#[test]
fn oversized_and_malformed_lengths_are_errors() {
    let buf = stream(&[Event::Exec(full_exec())]);
    let mut r = DelimitedReader::with_max_len(buf.as_slice(), 1024);
    assert!(matches!(
        r.next(),
        Some(Err(ProtoError::TooLarge {
            offset: 0,
            max: 1024,
            ..
        }))
    ));
    assert!(r.next().is_none());

    let mut r = DelimitedReader::new(&[0xff; 11][..]);
    assert!(matches!(
        r.next(),
        Some(Err(ProtoError::BadLength { offset: 0 }))
    ));
    assert!(r.next().is_none());
}

#[test]
fn undecodable_message_is_reported_and_reading_goes_on() {
    // A well-framed message whose body is a field header with no value.
    let mut buf = vec![1, 0x08];
    buf.extend(stream(&[Event::Lost(lost())]));
    let mut r = DelimitedReader::new(buf.as_slice());
    assert!(matches!(
        r.next(),
        Some(Err(ProtoError::Decode { offset: 0, .. }))
    ));
    let env = r.next().unwrap().unwrap();
    assert_eq!(from_envelope(env).unwrap(), Event::Lost(lost()));
    assert!(r.next().is_none());
}

#[test]
fn body_from_a_newer_writer_is_reported_as_unknown() {
    let mut bytes = v1::Envelope {
        schema_version: 99,
        ..Default::default()
    }
    .encode_to_vec();
    // Field 999, length-delimited, empty: a body kind this reader does not know.
    bytes.extend([0xba, 0x3e, 0x00]);
    let env = v1::Envelope::decode(bytes.as_slice()).unwrap();
    assert!(matches!(
        from_envelope(env),
        Err(ProtoError::UnknownBody { schema_version: 99 })
    ));
}

#[test]
fn unknown_and_unspecified_enums_are_rejected() {
    for (value, field) in [
        (0, "ExecEvent.syscall"),
        (7, "ExecEvent.syscall"),
        (99, "ExecEvent.syscall"),
        (-1, "ExecEvent.syscall"),
    ] {
        let mut env = exec_envelope();
        exec_body(&mut env).syscall = value;
        match decode_via_bytes(&env) {
            Err(ProtoError::UnknownEnum { field: f, value: v }) => {
                assert_eq!((f, v), (field, value))
            }
            other => panic!("{value}: {other:?}"),
        }
    }
    for value in [0, 99] {
        let mut env = exec_envelope();
        exec_body(&mut env).paths[1].nametype = value;
        assert!(matches!(
            decode_via_bytes(&env),
            Err(ProtoError::UnknownEnum {
                field: "PathItem.nametype",
                ..
            })
        ));
    }
}

/// A syscall the schema names no value for (any number is a `Syscall`) is written unspecified,
/// never a panic, and a reader refuses it instead of guessing.
#[test]
fn a_syscall_the_schema_cannot_name_is_written_unspecified() {
    let mut ev = full_exec();
    for nr in [0, 4000] {
        ev.syscall = Syscall(nr);
        let env = to_envelope(Event::Exec(ev.clone()), &host());
        let Some(v1::envelope::Body::Exec(body)) = &env.body else {
            panic!("{env:?}")
        };
        assert_eq!(body.syscall, v1::Syscall::Unspecified as i32);
        assert!(matches!(
            decode_via_bytes(&env),
            Err(ProtoError::UnknownEnum {
                field: "ExecEvent.syscall",
                value: 0
            })
        ));
    }
}

#[test]
fn missing_or_invalid_fields_are_rejected() {
    let mut env = exec_envelope();
    exec_body(&mut env).task = None;
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("ExecEvent.task"))
    ));

    let mut env = exec_envelope();
    exec_body(&mut env).container = None;
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("ExecEvent.container"))
    ));

    for n in [0, 3, 5] {
        let mut env = exec_envelope();
        exec_body(&mut env).regs = vec![1; n];
        assert!(matches!(
            decode_via_bytes(&env),
            Err(ProtoError::InvalidField {
                field: "ExecEvent.regs",
                ..
            })
        ));
    }

    let mut env = exec_envelope();
    env.schema_version = 0;
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::MissingField("Envelope.schema_version"))
    ));

    let mut env = exec_envelope();
    env.wall_nsec = 1_000_000_000;
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::InvalidField {
            field: "Envelope.wall_nsec",
            ..
        })
    ));

    let mut env = exec_envelope();
    env.body = None;
    assert!(matches!(
        decode_via_bytes(&env),
        Err(ProtoError::UnknownBody {
            schema_version: SCHEMA_VERSION
        })
    ));
}

#[test]
fn host_info_reads_this_machine() {
    let h = HostInfo::current().unwrap();
    // boot_id is a UUID with its trailing newline stripped.
    assert_eq!(
        h.boot_id.len(),
        36,
        "{:?}",
        String::from_utf8_lossy(&h.boot_id)
    );
    assert!(!h.hostname.ends_with(b"\n"));
    assert!(!h.machine_id.ends_with(b"\n"));
    assert_eq!(HostInfo::from(v1::Host::from(&h)), h);
}

#[test]
fn abend_round_trips() {
    let ev = abend();
    assert_eq!(round_trip(&ev), ev);
}

pub(crate) mod anomaly;

mod pam;

#[test]
fn every_syscall_the_schema_names_is_written_by_its_value_and_read_back() {
    let mut named = 0;
    for value in 1..64 {
        let Ok(s) = v1::Syscall::try_from(value) else {
            continue;
        };
        // The schema spells the kernel's names: x86_64's syscall 18 is __NR_pwrite64, which
        // libaudit (and the audit text) calls pwrite.
        let name = s.as_str_name().strip_prefix("SYSCALL_").unwrap();
        let spelled = match name {
            "PWRITE64" => "pwrite".to_owned(),
            _ => name.to_lowercase(),
        };
        let syscall = Syscall::from_name(&spelled).expect(name);
        assert_eq!(syscall_to_proto(syscall), value, "{name}");
        assert_eq!(syscall_from_proto(value, "f").unwrap(), syscall, "{name}");
        named += 1;
    }
    assert_eq!(named, SYSCALLS.len());
    // Named in the syscall table, not in the schema; and not named at all.
    assert_eq!(syscall_to_proto(Syscall::from_name("getppid").unwrap()), 0);
    assert_eq!(syscall_to_proto(Syscall(100_000)), 0);
    assert!(syscall_from_proto(0, "f").is_err());
    assert!(syscall_from_proto(64, "f").is_err());
}
