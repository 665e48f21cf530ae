//! ANOM_LINK, ANOM_CREAT and ANOM_PROMISCUOUS against lines that real Linux 6.18 kernel audit +
//! auditd 3.0.9 (log_format=ENRICHED) wrote, and properties of the anomaly writer for any input.

use crate::encode::audit::{write_event, Names, INTERP_SEPARATOR};
use crate::event::*;
use crate::testing::audit::{container, names, show, with_container};
use crate::testing::audit::{insert, raw};
use sensor_common::syscalls::x86_64;

/// auditd's lines as logged, `^]` standing for the 0x1d separator: `ln /etc/shadow /tmp/anx/hl`
/// as nobody (fs.protected_hardlinks), `cat /tmp/anx/sl` as root (fs.protected_symlinks), a root
/// shell creating over a file in the sticky /tmp/anx (fs.protected_regular), and
/// `ip link set vtest0 promisc on`.
const KERNEL: &str = r#"type=ANOM_LINK msg=audit(1795651555.847:114335): op=linkat ppid=6151 pid=6168 auid=4294967295 uid=65534 gid=65534 euid=65534 suid=65534 fsuid=65534 egid=65534 sgid=65534 fsgid=65534 tty=(none) ses=4294967295 comm="ln" exe="/usr/bin/ln" res=0^]AUID="unset" UID="nobody" GID="nogroup" EUID="nobody" SUID="nobody" FSUID="nobody" EGID="nogroup" SGID="nogroup" FSGID="nogroup"
type=SYSCALL msg=audit(1795651555.847:114335): arch=c000003e syscall=265 success=no exit=-1 a0=ffffff9c a1=7fffdab26ad9 a2=ffffff9c a3=7fffdab26ae5 items=0 ppid=6151 pid=6168 auid=4294967295 uid=65534 gid=65534 euid=65534 suid=65534 fsuid=65534 egid=65534 sgid=65534 fsgid=65534 tty=(none) ses=4294967295 comm="ln" exe="/usr/bin/ln" key=(null)^]ARCH=x86_64 SYSCALL=linkat AUID="unset" UID="nobody" GID="nogroup" EUID="nobody" SUID="nobody" FSUID="nobody" EGID="nogroup" SGID="nogroup" FSGID="nogroup"
type=PROCTITLE msg=audit(1795651555.847:114335): proctitle=6C6E002F6574632F736861646F77002F746D702F616E782F686C
type=ANOM_LINK msg=audit(1795651555.851:114336): op=follow_link ppid=6151 pid=6170 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="cat" exe="/usr/bin/cat" res=0^]AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"
type=SYSCALL msg=audit(1795651555.851:114336): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c a1=7ffdc41c3ae8 a2=0 a3=0 items=0 ppid=6151 pid=6170 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="cat" exe="/usr/bin/cat" key=(null)^]ARCH=x86_64 SYSCALL=openat AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"
type=PROCTITLE msg=audit(1795651555.851:114336): proctitle=636174002F746D702F616E782F736C
type=ANOM_CREAT msg=audit(1795651555.859:114337): op=sticky_create ppid=6151 pid=6172 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="sh" exe="/usr/bin/dash" res=0^]AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"
type=ANOM_PROMISCUOUS msg=audit(1795651555.883:114339): dev=vtest0 prom=256 old_prom=0 auid=4294967295 uid=0 gid=0 ses=4294967295^]AUID="unset" UID="root" GID="root"
type=SYSCALL msg=audit(1795651555.883:114339): arch=c000003e syscall=46 success=yes exit=32 a0=3 a1=7ffecd246390 a2=0 a3=7ffecd245db4 items=0 ppid=6151 pid=6177 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="ip" exe="/usr/bin/ip" key=(null)^]ARCH=x86_64 SYSCALL=sendmsg AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"
type=PROCTITLE msg=audit(1795651555.883:114339): proctitle=6970006C696E6B00736574007674657374300070726F6D697363006F6E"#;

fn kernel() -> Vec<String> {
    KERNEL.lines().map(|l| l.replace("^]", "\x1d")).collect()
}

/// A task of the test run: all ids `id`, no loginuid, no tty.
fn task(pid: u32, id: u32, comm: &str, exe: &str) -> Task {
    Task {
        personality: 0,
        ppid: 6151,
        pid,
        tid: pid,
        auid: UNSET_ID,
        uid: id,
        gid: id,
        euid: id,
        suid: id,
        fsuid: id,
        egid: id,
        sgid: id,
        fsgid: id,
        ses: UNSET_ID,
        tty: None,
        comm: comm.into(),
        exe: Some(exe.into()),
    }
}

fn part(syscall: Syscall, exit: i64, regs: [u64; 4], task: Task, title: &[u8]) -> SyscallPart {
    SyscallPart {
        syscall,
        success: exit >= 0,
        exit,
        regs,
        task,
        proctitle: title.to_vec(),
    }
}

fn event(msec: u32, serial: u64, anomaly: Anomaly, syscall: SyscallPart) -> AnomalyEvent {
    AnomalyEvent {
        key: None,
        stamp: Stamp {
            sec: 1795651555,
            nsec: msec * 1_000_000,
            serial,
        },
        boot_ns: 1,
        anomaly,
        syscall: Some(syscall),
        container: container(),
        paths_truncated: PathsTruncated::default(),
    }
}

fn denied(denial: PathDenial, names: &[&str], object: &str) -> Anomaly {
    Anomaly::PathDenied {
        denial,
        names: names.iter().map(|&n| n.into()).collect(),
        object: object.into(),
    }
}

fn change(dev: &[u8]) -> Promiscuity {
    Promiscuity {
        dev: dev.to_vec(),
        prom: 256,
        old_prom: 0,
        auid: UNSET_ID,
        uid: 0,
        gid: 0,
        ses: UNSET_ID,
    }
}

const AT_FDCWD: u64 = 0xffffff9c;

fn linkat() -> AnomalyEvent {
    let names = ["/etc/shadow", "/tmp/anx/hl"];
    let regs = [AT_FDCWD, 0x7fffdab26ad9, AT_FDCWD, 0x7fffdab26ae5];
    let t = task(6168, 65534, "ln", "/usr/bin/ln");
    let sc = part(
        Syscall::LINKAT,
        -1,
        regs,
        t,
        b"ln\0/etc/shadow\0/tmp/anx/hl",
    );
    event(
        847,
        114335,
        denied(PathDenial::Linkat, &names, names[0]),
        sc,
    )
}

fn follow_link() -> AnomalyEvent {
    let regs = [AT_FDCWD, 0x7ffdc41c3ae8, 0, 0];
    let t = task(6170, 0, "cat", "/usr/bin/cat");
    let sc = part(Syscall::OPENAT, -13, regs, t, b"cat\0/tmp/anx/sl");
    let d = denied(PathDenial::FollowLink, &["/tmp/anx/sl"], "/tmp/anx/sl");
    event(851, 114336, d, sc)
}

/// Its SYSCALL and PROCTITLE lines are not among the kernel's: those two records are made up.
fn sticky_create() -> AnomalyEvent {
    let regs = [AT_FDCWD, 0x55d0c0ffe010, 0o1101, 0o666];
    let t = task(6172, 0, "sh", "/usr/bin/dash");
    let sc = part(
        Syscall::OPENAT,
        -13,
        regs,
        t,
        b"sh\0-c\0echo x > /tmp/anx/f",
    );
    let d = denied(PathDenial::StickyCreate, &["/tmp/anx/f"], "/tmp/anx/f");
    event(859, 114337, d, sc)
}

fn promiscuous() -> AnomalyEvent {
    let regs = [3, 0x7ffecd246390, 0, 0x7ffecd245db4];
    let t = task(6177, 0, "ip", "/usr/bin/ip");
    let sc = part(
        Syscall(x86_64::SENDMSG),
        32,
        regs,
        t,
        b"ip\0link\0set\0vtest0\0promisc\0on",
    );
    event(
        883,
        114339,
        Anomaly::Promiscuous(vec![change(b"vtest0")]),
        sc,
    )
}

fn encode(ev: &AnomalyEvent, enriched: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let n = names();
    let ev = Event::Anomaly(ev.clone());
    write_event(&mut out, &ev, enriched.then_some(&n as &dyn Names));
    out
}

/// Both outputs of `ev` against the expected ENRICHED lines.
fn assert_lines(ev: &AnomalyEvent, want: &[String]) {
    for enriched in [false, true] {
        let want: String = want
            .iter()
            .map(|l| format!("{}\n", if enriched { l } else { raw(l) }))
            .collect();
        assert_eq!(show(&encode(ev, enriched)), show(want.as_bytes()));
    }
}

#[test]
fn golden_anom_link_linkat() {
    let k = kernel();
    let sensor = " sensor_name=\"/etc/shadow\" sensor_newname=\"/tmp/anx/hl\" \
                  sensor_object=\"/etc/shadow\"";
    let want = [insert(&k[0], sensor), with_container(&k[1]), k[2].clone()];
    assert_lines(&linkat(), &want);
}

#[test]
fn golden_anom_link_follow_link() {
    let k = kernel();
    let sensor = " sensor_name=\"/tmp/anx/sl\" sensor_object=\"/tmp/anx/sl\"";
    let want = [insert(&k[3], sensor), with_container(&k[4]), k[5].clone()];
    assert_lines(&follow_link(), &want);
}

/// Seen at `audit_log_path_denied()` (fentry): the kernel's decision names no object.
#[test]
fn golden_anom_link_follow_link_decided_by_the_kernel() {
    let k = kernel();
    let mut ev = follow_link();
    ev.anomaly = denied(PathDenial::FollowLink, &["/tmp/anx/sl"], "");
    let want = [
        insert(&k[3], " sensor_name=\"/tmp/anx/sl\""),
        with_container(&k[4]),
        k[5].clone(),
    ];
    assert_lines(&ev, &want);
}

#[test]
fn golden_anom_creat_sticky_create() {
    let k = kernel();
    let want = insert(
        &k[6],
        " sensor_name=\"/tmp/anx/f\" sensor_object=\"/tmp/anx/f\"",
    );
    for enriched in [false, true] {
        let out = encode(&sticky_create(), enriched);
        let first = out.split_inclusive(|&b| b == b'\n').next().unwrap();
        let want = format!("{}\n", if enriched { &want } else { raw(&want) });
        assert_eq!(show(first), show(want.as_bytes()));
    }
}

#[test]
fn golden_anom_promiscuous() {
    let k = kernel();
    let want = [k[7].clone(), with_container(&k[8]), k[9].clone()];
    assert_lines(&promiscuous(), &want);
}

/// (type, msg) of every record.
fn records(out: &[u8]) -> Vec<(String, String)> {
    show(out)
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            (f.next().unwrap().into(), f.next().unwrap().into())
        })
        .collect()
}

#[test]
fn records_come_anomaly_syscall_proctitle_with_one_stamp() {
    for (ev, anomaly) in [
        (linkat(), "ANOM_LINK"),
        (follow_link(), "ANOM_LINK"),
        (sticky_create(), "ANOM_CREAT"),
        (promiscuous(), "ANOM_PROMISCUOUS"),
    ] {
        let s = ev.stamp;
        let msg = format!(
            "msg=audit({}.{:03}:{}):",
            s.sec,
            s.nsec / 1_000_000,
            s.serial
        );
        for enriched in [false, true] {
            let recs = records(&encode(&ev, enriched));
            let types: Vec<&str> = recs.iter().map(|r| r.0.as_str()).collect();
            let anomaly = format!("type={anomaly}");
            assert_eq!(types, [anomaly.as_str(), "type=SYSCALL", "type=PROCTITLE"]);
            assert!(recs.iter().all(|r| r.1 == msg), "{recs:?}");
        }
    }
}

const HOSTILE: &[u8] = b"a b\"c\nd\x1de type=SYSCALL msg=audit(1:2): success=yes\n";

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02X}")).collect()
}

/// The records of `out`, each split into its field names before and after the separator;
/// panics on a token that is not `key=value`.
fn fields(out: &[u8]) -> Vec<(Vec<String>, Option<Vec<String>>)> {
    let keys = |part: &[u8]| -> Vec<String> {
        part.split(|&b| b == b' ')
            .map(|tok| {
                let eq = tok.iter().position(|&b| b == b'=');
                show(&tok[..eq.unwrap_or_else(|| panic!("not key=value: {}", show(tok)))])
            })
            .collect()
    };
    let body = out.strip_suffix(b"\n").expect("ends with a newline");
    body.split(|&b| b == b'\n')
        .map(|line| {
            let mut parts = line.split(|&b| b == INTERP_SEPARATOR);
            let kernel = keys(parts.next().unwrap());
            let interp = parts.next().map(keys);
            assert!(parts.next().is_none(), "one separator at most");
            (kernel, interp)
        })
        .collect()
}

const TASK_KEYS: &str = "ppid pid auid uid gid euid suid fsuid egid sgid fsgid tty ses comm exe";
const ID_KEYS: &str = "AUID UID GID EUID SUID FSUID EGID SGID FSGID";

fn split(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

#[test]
fn hostile_names_and_comm_cannot_forge_lines_fields_or_separators() {
    let mut ev = linkat();
    ev.anomaly = Anomaly::PathDenied {
        denial: PathDenial::Linkat,
        names: vec![HOSTILE.to_vec(), [b"\x1d", HOSTILE].concat()],
        object: HOSTILE.to_vec(),
    };
    let sc = ev.syscall.as_mut().unwrap();
    sc.task.comm = HOSTILE.to_vec();
    sc.task.exe = Some(HOSTILE.to_vec());
    sc.proctitle = HOSTILE.to_vec();
    let h = hex(HOSTILE);
    let anom = split(&format!(
        "type msg op {TASK_KEYS} res sensor_name sensor_newname sensor_object"
    ));
    let syscall = split(&format!(
        "type msg arch syscall success exit a0 a1 a2 a3 items {TASK_KEYS} key \
         cgroup_id cgroup pidns mntns netns utsns nspid"
    ));
    for enriched in [false, true] {
        let out = encode(&ev, enriched);
        let interp = |keys: &str| enriched.then(|| split(keys));
        let want = vec![
            (anom.clone(), interp(ID_KEYS)),
            (syscall.clone(), interp(&format!("ARCH SYSCALL {ID_KEYS}"))),
            (split("type msg proctitle"), None),
        ];
        assert_eq!(fields(&out), want, "{}", show(&out));
        let text = show(&out);
        let sensor = format!("sensor_name={h} sensor_newname=1D{h} sensor_object={h}");
        assert!(text.contains(&format!(" comm={h} exe={h} res=0 {sensor}")));
        assert!(text.contains(&format!(" comm={h} exe={h} key=(null) cgroup_id=")));
        assert!(text.ends_with(&format!(" proctitle={h}\n")));
    }
}

#[test]
fn standalone_promiscuous_carries_the_container() {
    let k = kernel();
    let mut ev = promiscuous();
    ev.syscall = None;
    assert_lines(&ev, &[with_container(&k[7])]);

    ev.container.container_id = Some("c0ffee".into());
    ev.paths_truncated.cgroup = true;
    let out = show(&encode(&ev, true));
    let tail =
        " nspid=\"1\" container=\"c0ffee\" sensor_trunc_paths=\"cgroup\"^]AUID=\"unset\" UID=\"root\" \
                GID=\"root\"\n";
    assert!(out.ends_with(tail), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn two_changes_give_two_records_before_one_syscall() {
    let k = kernel();
    let mut ev = promiscuous();
    ev.anomaly = Anomaly::Promiscuous(vec![change(b"vtest0"), change(b"vtest1")]);
    let want = [
        k[7].clone(),
        k[7].replace("dev=vtest0", "dev=vtest1"),
        with_container(&k[8]),
        k[9].clone(),
    ];
    assert_lines(&ev, &want);
}

#[test]
fn device_names_are_raw_only_when_unambiguous() {
    for (dev, text) in [
        (&b"vtest0"[..], "vtest0"),
        (b"br-1a2b.100", "br-1a2b.100"),
        (b"v\x1dx", "761D78"),
        (b"a b", "612062"),
        (b"eth0\ntype=SYSCALL", "657468300A747970653D53595343414C4C"),
        (b"q\"", "7122"),
        (b"AB12", "41423132"),
    ] {
        let mut ev = promiscuous();
        ev.anomaly = Anomaly::Promiscuous(vec![change(dev)]);
        for enriched in [false, true] {
            let out = encode(&ev, enriched);
            let first = show(out.split(|&b| b == b'\n').next().unwrap());
            let want = format!(
                "type=ANOM_PROMISCUOUS msg=audit(1795651555.883:114339): dev={text} prom=256 "
            );
            assert!(first.starts_with(&want), "{first}");
            assert_eq!(fields(&out).len(), 3);
        }
    }
}
