//! Properties of the audit encoder that must hold for any input; shared helpers are in
//! `crate::testing::audit`.

use super::*;
use crate::encode::audit::hexq::push_untrusted;
use crate::encode::parse::{exec_event, execve_argv, group_events, parse_log, Record};
use crate::event::*;
use crate::testing::audit::*;

fn inode(ino: u64) -> Option<Inode> {
    Some(Inode {
        ino,
        dev_major: 0xfe,
        mode: 0o100755,
        ..Inode::default()
    })
}

pub(super) fn path(name: &[u8], ino: u64) -> PathItem {
    PathItem {
        fcaps: Default::default(),
        name: name.to_vec(),
        inode: inode(ino),
        nametype: NameType::Normal,
    }
}

/// A root `/bin/true` exec from the real run, with the stamp of `serial`.
pub(super) fn true_event(msec: u32, serial: u64, argv: Vec<Vec<u8>>) -> ExecEvent {
    ExecEvent {
        bprm_fcaps: None,
        paths_truncated: PathsTruncated::default(),
        stamp: Stamp {
            sec: 1795642256,
            nsec: msec * 1_000_000,
            serial,
        },
        boot_ns: 0,
        arch: AUDIT_ARCH_X86_64,
        syscall: Syscall::EXECVE,
        success: true,
        exit: 0,
        regs: [
            0x56070347a240,
            0x560703471ed0,
            0x560703473ef0,
            0x154958638bf4a070,
        ],
        task: Task {
            ppid: 4877,
            pid: 4900,
            auid: UNSET_ID,
            ses: UNSET_ID,
            comm: b"true".to_vec(),
            exe: Some(b"/usr/bin/true".to_vec()),
            ..Task::default()
        },
        proctitle: argv.join(&b"\0"[..]).into_iter().take(128).collect(),
        argv,
        argv_truncated: None,
        cwd: Some(b"/tmp/auditchk".to_vec()),
        paths: vec![
            path(b"/bin/true", 247857),
            path(b"/lib64/ld-linux-x86-64.so.2", 325843),
        ],
        container: container(),
        key: Some(b"t".to_vec()),
    }
}

pub(super) fn encode(ev: &ExecEvent, enriched: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let n = names();
    write_exec(&mut out, ev, enriched.then_some(&n as &dyn Names));
    out
}

pub(super) fn execve_lines(out: &[u8]) -> Vec<u8> {
    out.split_inclusive(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"type=EXECVE "))
        .flatten()
        .copied()
        .collect()
}

/// Rebuilds an event from its records, panicking on what the encoder must never write.
pub(super) fn event_from_records(recs: &[Record]) -> ExecEvent {
    exec_event(recs).expect("records of one execve")
}

#[test]
fn quoting_rule_byte_classes() {
    let enc = |s: &[u8]| {
        let mut o = Vec::new();
        push_untrusted(&mut o, s);
        o
    };
    assert_eq!(enc(b""), b"\"\"");
    assert_eq!(enc(b"a\x20z"), b"61207A"); // space: below 0x21
    assert_eq!(enc(b"a\x21z"), b"\"a!z\"");
    assert_eq!(enc(b"a\x22z"), b"61227A"); // the quote itself
    assert_eq!(enc(b"a\x23z"), b"\"a#z\"");
    assert_eq!(enc(b"a\x7ez"), b"\"a~z\"");
    assert_eq!(enc(b"a\x7fz"), b"617F7A");
    assert_eq!(enc(b"a\x80z"), b"61807A");
    assert_eq!(enc(b"\xff\x00"), b"FF00");
    assert_eq!(enc(b"\x1d"), b"1D");
    for b in 0..=255u8 {
        let quoted = enc(&[b'a', b, b'z'])[0] == b'"';
        assert_eq!(
            quoted,
            (0x21..=0x7e).contains(&b) && b != b'"',
            "byte {b:#04x}"
        );
    }
}

fn hostile_event() -> ExecEvent {
    let mut ev = true_event(903, 19, Vec::new());
    ev.argv = vec![
        b"/bin/e\"cho".to_vec(),
        b"sp ace".to_vec(),
        b"new\nline\n".to_vec(),
        b"type=EXECVE msg=audit(1:2): argc=1 a0=\"x\"".to_vec(),
        b"\x1dARCH=x86_64 UID=\"root\"".to_vec(),
        b"\xff\xfe".to_vec(),
        Vec::new(),
        (0..200 * 1024).map(|i| b"ab \"\n\x1d\xff"[i % 7]).collect(),
        b"last".to_vec(),
    ];
    ev.proctitle = ev.argv.concat().into_iter().take(128).collect();
    ev.task.comm = b"x\ny\x1d".to_vec();
    ev.task.exe = Some(b"/tmp/a b\n".to_vec());
    ev.task.tty = Some(b"pts 0\n".to_vec());
    ev.cwd = Some(b"/tmp/\x1d\n".to_vec());
    ev.paths[0].name = b"/tmp/\ntype=PATH".to_vec();
    ev.paths.push(PathItem {
        fcaps: Default::default(),
        name: b"\"".to_vec(),
        inode: None,
        nametype: NameType::Unknown,
    });
    ev.key = Some(b"k y".to_vec());
    ev.container.cgroup_path = b"/a b\n".to_vec();
    ev.container.container_id = Some("id with space\u{1d}".to_string());
    ev.argv_truncated = Some(ArgvTruncation {
        missing_args: 2,
        missing_bytes: 77,
    });
    ev
}

#[test]
fn hostile_values_round_trip() {
    let ev = hostile_event();
    for enriched in [false, true] {
        let out = encode(&ev, enriched);
        let recs = parse_log(&out).expect("parse own output");
        // (a) one line per record, each a record.
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), recs.len());
        assert_eq!(out.last(), Some(&b'\n'));
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(
                line.starts_with(b"type="),
                "{}",
                show(&line[..line.len().min(80)])
            );
        }
        // (b) 0x1d only as the enrichment separator, once, in SYSCALL and resolved PATH.
        for (line, rec) in out.split(|&b| b == b'\n').zip(&recs) {
            let seps = line.iter().filter(|&&b| b == INTERP_SEPARATOR).count();
            let want = enriched
                && (rec.rtype == b"SYSCALL"
                    || (rec.rtype == b"PATH" && rec.get(b"inode").is_some()));
            assert_eq!(seps, usize::from(want), "{}", show(&rec.rtype));
            assert_eq!(rec.enriched.is_empty(), !want);
        }
        // (c) argv exactly; (d) everything else the text carries.
        let events = group_events(recs);
        assert_eq!(events.len(), 1);
        assert_eq!(execve_argv(&events[0]).unwrap(), ev.argv);
        assert_eq!(event_from_records(&events[0]), ev);
        let argc = events[0]
            .iter()
            .find(|r| r.rtype == b"EXECVE")
            .unwrap()
            .get(b"argc");
        assert_eq!(
            argc,
            Some(&b"11"[..]),
            "true argc includes the missing arguments"
        );
    }
}

#[test]
fn tty_raw_only_when_unambiguous() {
    for (tty, text) in [
        (&b"pts0"[..], "tty=pts0 "),
        (b"ttyS0", "tty=ttyS0 "),
        (b"console", "tty=console "),
        (b"'x", "tty=2778 "),
        (b"{y", "tty=7B79 "),
        (b"AB12", "tty=41423132 "),
        (b"", "tty= "),
    ] {
        let mut ev = true_event(1, 1, vec![b"x".to_vec()]);
        ev.task.tty = Some(tty.to_vec());
        let out = encode(&ev, false);
        assert!(show(&out).contains(text), "{}", show(&out));
        assert_eq!(event_from_records(&parse_log(&out).unwrap()), ev);
    }
}

#[test]
fn enrichment_resolves_names_like_auditd() {
    let mut ev = true_event(959, 30, vec![b"/bin/true".to_vec()]);
    (ev.task.uid, ev.task.euid, ev.task.gid, ev.task.sgid) = (1234, 0, 3_000_000_000, UNSET_ID);
    let n = names().with_user(1234, b"al ice");
    let mut out = Vec::new();
    write_exec(&mut out, &ev, Some(&n));
    let recs = parse_log(&out).unwrap();
    let e = &recs[0].enriched;
    let get = |k: &[u8]| e.iter().find(|(n, _)| n == k).map(|(_, v)| show(v));
    assert_eq!(get(b"ARCH").as_deref(), Some("x86_64"));
    assert_eq!(get(b"SYSCALL").as_deref(), Some("execve"));
    assert_eq!(get(b"AUID").as_deref(), Some("\"unset\""));
    assert_eq!(
        get(b"UID").as_deref(),
        Some("616C20696365"),
        "names use the untrusted rule"
    );
    assert_eq!(get(b"EUID").as_deref(), Some("\"root\""));
    assert_eq!(
        get(b"GID").as_deref(),
        Some("\"unknown(-1294967296)\""),
        "auparse's %d"
    );
    assert_eq!(get(b"SGID").as_deref(), Some("\"unset\""));
}

#[test]
fn truncation_and_edge_cases() {
    // Nothing captured but something missing: EXECVE is still written, so the loss shows.
    let mut ev = true_event(1, 1, Vec::new());
    ev.argv_truncated = Some(ArgvTruncation {
        missing_args: 3,
        missing_bytes: 12,
    });
    ev.proctitle.clear();
    ev.paths.clear();
    ev.cwd = None;
    ev.syscall = Syscall::EXECVEAT;
    ev.container.container_id = Some("0123abcd".into());
    let out = show(&encode(&ev, true));
    let want = "type=EXECVE msg=audit(1795642256.001:1): argc=3 sensor_trunc_args=\"3\" sensor_trunc_bytes=\"12\"\ntype=PROCTITLE msg=audit(1795642256.001:1): proctitle=\"(null)\"\n";
    assert!(out.ends_with(want), "{out}");
    assert!(
        out.contains(" syscall=322 ")
            && out.contains(" items=0 ")
            && out.contains("SYSCALL=execveat ")
    );
    assert!(
        out.contains(" nspid=\"1\" container=\"0123abcd\"^]ARCH=x86_64 "),
        "{out}"
    );
    // A failed exec has no EXECVE record even if argv was captured.
    let mut ev = true_event(1, 1, vec![b"x".to_vec()]);
    ev.success = false;
    assert!(execve_lines(&encode(&ev, false)).is_empty());
}

#[test]
fn lost_record() {
    let ev = Event::Lost(LostEvent {
        stamp: Stamp {
            sec: 17,
            nsec: 5_999_999,
            serial: 9,
        },
        total: 10,
        delta: 4,
        ringbuf: 1,
        read_errors: 2,
        channel: 7,
        incomplete: 3,
        lookups_late: 5,
        roots_unwatched: 1,
        unwritten: 2,
    });
    let mut out = Vec::new();
    write_event(&mut out, &ev, Some(&names()));
    assert_eq!(show(&out), "type=DAEMON_ERR msg=audit(17.005:9): op=sensor_lost lost=\"10\" delta=\"4\" ringbuf=\"1\" read_errors=\"2\" channel=\"7\" incomplete=\"3\" lookups_late=\"5\" roots_unwatched=\"1\" unwritten=\"2\" res=failed\n");
}

/// BPRM_FCAPS's numbers as `audit_log_exit()` writes them: `fver=%x` (0x1a, for a hex letter),
/// `fe=%d`, `frootid=%d` (a root uid outside the initial namespace's map is -1); and a nonzero
/// mode in PATH, `%#ho`.
#[test]
fn bprm_fcaps_numbers_and_path_mode() {
    let mut ev = true_event(1, 9, vec![b"/bin/true".to_vec()]);
    let file = FileCaps {
        permitted: 1 << 13,
        inheritable: 0,
        effective: true,
        version: 0x1a,
        rootid: u32::MAX,
    };
    ev.bprm_fcaps = Some(BprmFcaps {
        file,
        old: Caps::default(),
        new: Caps::default(),
    });
    if let Some(i) = ev.paths[0].inode.as_mut() {
        i.mode = 0o4755;
    }
    let text = show(&encode(&ev, false));
    assert!(
        text.contains("): fver=1a fp=0000000000002000 fi=0 fe=1 old_pp=0 "),
        "{text}"
    );
    assert!(text.contains(" pa=0 frootid=-1\n"), "{text}");
    assert!(text.contains(" mode=04755 ouid="), "{text}");
    ev.bprm_fcaps = Some(BprmFcaps {
        file: FileCaps {
            rootid: 100000,
            ..file
        },
        old: Caps::default(),
        new: Caps::default(),
    });
    assert!(show(&encode(&ev, false)).contains(" frootid=100000\n"));
}

mod anomaly;
mod compat;
mod golden;
mod hostile;
mod login;
mod pam;
mod user;
