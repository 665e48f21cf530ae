//! Fuzzing the audit-text parser, which `compare` runs on logs anyone may hand it: arbitrary
//! bytes never panic, and what the encoder writes from hostile argv, paths and names parses back
//! to the same event.

use proptest::prelude::*;

use super::*;
use crate::{
    encode::audit::{write_event, FixedNames, Names},
    event::{ArgvTruncation, Event, ExecEvent, PathItem},
    testing::events::full_exec,
};

/// Every way in: a line, a log, the stream reader, and the event rebuilders on what parsed.
fn parse_everything(bytes: &[u8]) {
    let _ = parse_line(bytes);
    if let Ok(records) = parse_log(bytes) {
        let _ = execve_argv(&records);
        let _ = exec_event(&records);
        for event in group_events(records) {
            let _ = exec_event(&event);
        }
    }
    for cap in [1, 4096] {
        let reader = LogReader::new(std::io::BufReader::with_capacity(cap, bytes));
        let records: Vec<Record> = reader.map_while(Result::ok).collect();
        let _ = exec_event(&records);
    }
    for r in parse_log(bytes).iter().flatten() {
        for (_, v) in r.fields.iter().chain(&r.enriched) {
            let _ = decode_value(v);
        }
    }
}

/// Text shaped like audit records, so that the fuzzer gets past the header: record types,
/// stamps, field names and values (quoted, hex, `'…'`, `{…}`, cut) drawn from what matters.
fn audit_like() -> impl Strategy<Value = Vec<u8>> {
    let rtype = prop::sample::select(vec![
        "SYSCALL",
        "EXECVE",
        "PATH",
        "CWD",
        "PROCTITLE",
        "BPRM_FCAPS",
        "EOE",
        "USER_ACCT",
    ]);
    let name = prop_oneof![
        prop::sample::select(vec![
            "arch",
            "syscall",
            "success",
            "exit",
            "a0",
            "a1",
            "a2",
            "a3",
            "items",
            "ppid",
            "pid",
            "auid",
            "uid",
            "gid",
            "euid",
            "suid",
            "fsuid",
            "egid",
            "sgid",
            "fsgid",
            "tty",
            "ses",
            "comm",
            "exe",
            "key",
            "argc",
            "a0_len",
            "a0[0]",
            "a1[1]",
            "a4294967296",
            "a0[99]",
            "item",
            "name",
            "inode",
            "dev",
            "mode",
            "ouid",
            "ogid",
            "rdev",
            "nametype",
            "cap_fp",
            "cap_fi",
            "cap_fe",
            "cap_fver",
            "cap_frootid",
            "cwd",
            "proctitle",
            "cgroup_id",
            "cgroup",
            "pidns",
            "mntns",
            "netns",
            "utsns",
            "nspid",
            "container",
            "msg",
            "sensor_trunc_args",
            "sensor_trunc_bytes",
            "sensor_trunc_paths",
            "fp",
            "old_pp",
        ])
        .prop_map(str::to_string),
        "[a-z_\\[\\]0-9]{0,8}",
    ];
    let value = prop_oneof![
        "[0-9]{0,22}",
        "-?[0-9]{1,20}",
        "[0-9a-fA-F]{0,40}",
        "\"[^\"\n]{0,30}\"",
        "\"[^\n]{0,30}",
        "'[^\n]{0,30}'?",
        "\\{[^\n]{0,20}\\}?",
        "[0-9a-f]{1,3}:[0-9a-f]{1,3}",
        prop::sample::select(vec![
            "(null)", "(none)", "?", "yes", "no", "NORMAL", "c000003e"
        ])
        .prop_map(str::to_string),
    ];
    let field = (name, prop::option::of(value)).prop_map(|(n, v)| match v {
        Some(v) => format!("{n}={v}"),
        None => n,
    });
    let line = (
        rtype,
        0u64..3,
        0u32..1200,
        0u64..4,
        prop::collection::vec(field, 0..24),
        prop::option::of("[ -~]{0,40}"),
    )
        .prop_map(|(t, sec, ms, serial, fields, enriched)| {
            let mut l = format!(
                "type={t} msg=audit({sec}.{ms:03}:{serial}): {}",
                fields.join(" ")
            );
            if let Some(e) = enriched {
                l.push('\x1d');
                l.push_str(&e);
            }
            l
        });
    prop::collection::vec(line, 0..12).prop_map(|l| (l.join("\n") + "\n").into_bytes())
}

/// Arbitrary bytes, sometimes as long as a line may be.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Arbitrary bytes, or text that means something to the encoder or the parser.
fn hostile(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let special = prop::sample::select(vec![
        &b""[..],
        b"(null)",
        b"(none)",
        b"?",
        b"\"",
        b"AB12",
        b"ab12",
        b"0",
        b"\x1d",
        b"a b",
        b"\n",
        b"'x'",
        b"{ x }",
        b"type=EXECVE msg=audit(1.000:1): argc=1 a0=\"x\"",
        b"\x1dUID=\"root\"",
        b"x=1 y=\"2",
    ]);
    prop_oneof![
        3 => bytes(max),
        1 => special.prop_map(<[u8]>::to_vec),
    ]
}

/// A hostile exec: arbitrary bytes wherever the event carries untrusted text.
fn hostile_exec() -> impl Strategy<Value = ExecEvent> {
    let arg = prop_oneof![
        8 => hostile(40),
        // Past the kernel's 7500-byte chunk (`aN[i]=`), across EXECVE records.
        1 => bytes(20_000),
    ];
    (
        prop::collection::vec(arg, 0..10),
        prop::collection::vec(hostile(80), 0..4),
        (
            hostile(20),
            prop::option::of(hostile(80)),
            prop::option::of(hostile(12)),
        ),
        (
            prop::option::of(hostile(80)),
            hostile(128),
            prop::option::of(hostile(40)),
        ),
        (
            hostile(80),
            prop::option::of(hostile(20).prop_map(|b| String::from_utf8_lossy(&b).into_owned())),
            prop::option::of((0u32..5, 0u64..99)),
        ),
    )
        .prop_map(
            |(argv, names, (comm, exe, tty), (cwd, proctitle, key), (cgroup, id, trunc))| {
                let mut ev = full_exec();
                // What the text does not carry: boot time, tid, time below the millisecond.
                ev.boot_ns = 0;
                ev.task.tid = 0;
                ev.stamp.nsec -= ev.stamp.nsec % 1_000_000;
                ev.argv = argv;
                let template = ev.paths[0].clone();
                ev.paths = names
                    .into_iter()
                    .map(|name| PathItem {
                        name,
                        ..template.clone()
                    })
                    .collect();
                (ev.task.comm, ev.task.exe, ev.task.tty) = (comm, exe, tty);
                (ev.cwd, ev.proctitle, ev.key) = (cwd, proctitle, key);
                (ev.container.cgroup_path, ev.container.container_id) = (cgroup, id);
                ev.argv_truncated = trunc.map(|(missing_args, missing_bytes)| ArgvTruncation {
                    missing_args,
                    missing_bytes,
                });
                ev
            },
        )
}

fn names() -> FixedNames {
    crate::testing::audit::names()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(b in bytes(600)) {
        parse_everything(&b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn audit_shaped_text_never_panics(text in audit_like()) {
        parse_everything(&text);
    }

    #[test]
    fn audit_shaped_text_with_hostile_bytes_never_panics(
        text in audit_like(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut text = text;
        for (at, byte) in edits {
            if !text.is_empty() {
                let i = at.index(text.len());
                text[i] = byte;
            }
        }
        parse_everything(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// parse(write(event)) is the event, in RAW and ENRICHED text, whatever its bytes.
    #[test]
    fn hostile_exec_round_trips(ev in hostile_exec()) {
        let n = names();
        for enriched in [None, Some(&n as &dyn Names)] {
            let mut out = Vec::new();
            write_event(&mut out, &Event::Exec(ev.clone()), enriched);
            let records = parse_log(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // One line per record: no value broke out of its field or record.
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), records.len());
            let back = exec_event(&records).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // The kernel writes an empty command line as the text "(null)"
            // (`audit_log_proctitle()`), as the sensor does: a command line of those six bytes
            // reads back as empty, in auditd's logs too.
            let mut want = ev.clone();
            if want.proctitle == b"(null)" {
                want.proctitle.clear();
            }
            prop_assert_eq!(&back, &want);
            // The stream reader sees the same records.
            let streamed: Vec<Record> = LogReader::new(out.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(streamed, records);
        }
    }
}
