//! LOGIN against lines that real Linux 6.18 kernel audit + auditd 3.0.9 (log_format=ENRICHED)
//! wrote: a root shell writing 1001 to /proc/self/loginuid after 1000 (set), and the same as a
//! root shell without CAP_AUDIT_CONTROL (refused).

use crate::encode::audit::{write_event, FixedNames, Names};
use crate::event::*;
use crate::testing::audit::{container, raw, show, with_container};
use sensor_common::syscalls::x86_64;

const KERNEL: &str = r#"type=LOGIN msg=audit(1796149914.576:154846): pid=13114 uid=0 old-auid=1000 auid=1001 tty=(none) old-ses=2 ses=3 res=1^]UID="root" OLD-AUID="cloudsdk" AUID="gtuser"
type=SYSCALL msg=audit(1796149914.576:154846): arch=c000003e syscall=1 success=yes exit=5 a0=1 a1=5653d4a3a1c0 a2=5 a3=0 items=0 ppid=13052 pid=13114 auid=1001 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="sh" exe="/usr/bin/dash" key=(null)^]ARCH=x86_64 SYSCALL=write AUID="gtuser" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"
type=PROCTITLE msg=audit(1796149914.576:154846): proctitle=7368002D63006563686F20227368207069643D2424206C6F67696E7569643D2428636174202F70726F632F73656C662F6C6F67696E75696429223B206563686F2031303030203E202F70726F632F73656C662F6C6F67696E7569643B206563686F20227263313D243F223B206563686F2031303031203E202F70726F632F7365
type=LOGIN msg=audit(1796149914.884:154877): pid=13141 uid=0 old-auid=1000 auid=1001 tty=(none) old-ses=4 ses=4294967295 res=0^]UID="root" OLD-AUID="cloudsdk" AUID="gtuser"
type=SYSCALL msg=audit(1796149914.884:154877): arch=c000003e syscall=1 success=no exit=-1 a0=1 a1=55ddcf4b23d0 a2=5 a3=0 items=0 ppid=13052 pid=13141 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4 comm="sh" exe="/usr/bin/dash" key=(null)^]ARCH=x86_64 SYSCALL=write AUID="cloudsdk" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"
type=PROCTITLE msg=audit(1796149914.884:154877): proctitle=73657470726976002D2D626F756E64696E672D7365743D2D61756469745F636F6E74726F6C002D2D696E682D636170733D2D61756469745F636F6E74726F6C007368002D63006563686F20227368207069643D2424206C6F67696E7569643D2428636174202F70726F632F73656C662F6C6F67696E75696429223B2067726570"#;

fn kernel() -> Vec<String> {
    KERNEL.lines().map(|l| l.replace("^]", "\x1d")).collect()
}

fn names() -> FixedNames {
    FixedNames::new()
        .with_user(0, b"root")
        .with_group(0, b"root")
        .with_user(1000, b"cloudsdk")
        .with_user(1001, b"gtuser")
}

fn shell(pid: u32, auid: u32, ses: u32) -> Task {
    Task {
        personality: 0,
        ppid: 13052,
        pid,
        tid: pid,
        auid,
        uid: 0,
        gid: 0,
        euid: 0,
        suid: 0,
        fsuid: 0,
        egid: 0,
        sgid: 0,
        fsgid: 0,
        ses,
        tty: None,
        comm: b"sh".to_vec(),
        exe: Some(b"/usr/bin/dash".to_vec()),
    }
}

/// The proctitle as the kernel read it: the argument area's first 128 bytes.
fn title(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn event(
    msec: u32,
    serial: u64,
    change: LoginChange,
    exit: i64,
    a1: u64,
    task: Task,
    k: &str,
) -> AnomalyEvent {
    let hex = k.rsplit("proctitle=").next().unwrap();
    AnomalyEvent {
        key: None,
        stamp: Stamp {
            sec: 1796149914,
            nsec: msec * 1_000_000,
            serial,
        },
        boot_ns: 1,
        anomaly: Anomaly::Login(change),
        syscall: Some(SyscallPart {
            syscall: Syscall(x86_64::WRITE),
            success: exit >= 0,
            exit,
            regs: [1, a1, 5, 0],
            task,
            proctitle: title(hex),
        }),
        container: container(),
        paths_truncated: PathsTruncated::default(),
    }
}

fn assert_lines(ev: &AnomalyEvent, want: &[String]) {
    let n = names();
    for enriched in [false, true] {
        let mut out = Vec::new();
        write_event(
            &mut out,
            &Event::Anomaly(ev.clone()),
            enriched.then_some(&n as &dyn Names),
        );
        let want: String = want
            .iter()
            .map(|l| format!("{}\n", if enriched { l.as_str() } else { raw(l) }))
            .collect();
        assert_eq!(show(&out), show(want.as_bytes()));
    }
}

#[test]
fn golden_login_set_then_syscall_and_proctitle() {
    let k = kernel();
    let change = LoginChange {
        old_auid: 1000,
        auid: 1001,
        old_ses: 2,
        ses: 3,
        res: true,
        old_exact: true,
    };
    let ev = event(
        576,
        154846,
        change,
        5,
        0x5653d4a3a1c0,
        shell(13114, 1001, 3),
        &k[2],
    );
    assert_lines(&ev, &[k[0].clone(), with_container(&k[1]), k[2].clone()]);
}

#[test]
fn golden_login_refused_names_the_uid_asked_for_and_no_session() {
    let k = kernel();
    let change = LoginChange {
        old_auid: 1000,
        auid: 1001,
        old_ses: 4,
        ses: UNSET_ID,
        res: false,
        old_exact: false,
    };
    let ev = event(
        884,
        154877,
        change,
        -1,
        0x55ddcf4b23d0,
        shell(13141, 1000, 4),
        &k[5],
    );
    assert_lines(&ev, &[k[3].clone(), with_container(&k[4]), k[5].clone()]);
}
