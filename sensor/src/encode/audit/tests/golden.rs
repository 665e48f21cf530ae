//! Golden lines copied from the log of real auditd 3.0.9 (log_format=ENRICHED, Linux 6.18),
//! recorded with `auditctl -a always,exit -F arch=b64 -S execve -S execveat -F ppid=<script> -k t`
//! around scripts that ran the commands named on each test. `{U*N}` stands for U repeated N times
//! so that multi-kilobyte lines stay readable.

use super::{encode, event_from_records, execve_lines, path, true_event};
use crate::encode::audit::write_event;
use crate::encode::parse::{execve_argv, parse_log};
use crate::event::*;
use crate::testing::audit::{container, lines, names, show, with_container};

/// auditd's full records of `/bin/echo 'a"b' 'sp ace' $'nl\nx' é '' 'type=EXECVE …'` (serial 19)
/// and of the failed `/nonexistent/x` from bash (serial 26), from events built by hand.
#[test]
fn golden_full_events() {
    let argv: Vec<Vec<u8>> = vec![
        b"/bin/echo".to_vec(),
        b"a\"b".to_vec(),
        b"sp ace".to_vec(),
        b"nl\nx".to_vec(),
        "é".into(),
        Vec::new(),
        b"type=EXECVE msg=audit(1:2): argc=1 a0=\"x\"".to_vec(),
    ];
    let mut ev = true_event(903, 19, argv);
    (ev.task.comm, ev.task.exe) = (b"echo".to_vec(), Some(b"/usr/bin/echo".to_vec()));
    ev.paths[0] = path(b"/bin/echo", 247145);
    let root = "AUID=\"unset\" UID=\"root\" GID=\"root\" EUID=\"root\" SUID=\"root\" FSUID=\"root\" EGID=\"root\" SGID=\"root\" FSGID=\"root\"";
    let p = "ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"";
    let want = [
        with_container(&format!("type=SYSCALL msg=audit(1795642256.903:19): arch=c000003e syscall=59 success=yes exit=0 a0=56070347a240 a1=560703471ed0 a2=560703473ef0 a3=154958638bf4a070 items=2 ppid=4877 pid=4900 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"echo\" exe=\"/usr/bin/echo\" key=\"t\"\x1dARCH=x86_64 SYSCALL=execve {root}")),
        "type=EXECVE msg=audit(1795642256.903:19): argc=7 a0=\"/bin/echo\" a1=612262 a2=737020616365 a3=6E6C0A78 a4=C3A9 a5=\"\" a6=747970653D455845435645206D73673D617564697428313A32293A20617267633D312061303D227822".into(),
        "type=CWD msg=audit(1795642256.903:19): cwd=\"/tmp/auditchk\"".into(),
        format!("type=PATH msg=audit(1795642256.903:19): item=0 name=\"/bin/echo\" inode=247145 dev=fe:00 mode=0100755 {p}"),
        format!("type=PATH msg=audit(1795642256.903:19): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=325843 dev=fe:00 mode=0100755 {p}"),
        "type=PROCTITLE msg=audit(1795642256.903:19): proctitle=2F62696E2F6563686F0061226200737020616365006E6C0A7800C3A90000747970653D455845435645206D73673D617564697428313A32293A20617267633D312061303D227822".into(),
    ];
    assert_eq!(show(&encode(&ev, true)), show(&lines(&want)));

    let mut ev = true_event(947, 26, Vec::new());
    (ev.success, ev.exit) = (false, -2);
    ev.regs = [
        0x560703476f90,
        0x560703476570,
        0x560703473ef0,
        0x154958638bf4a070,
    ];
    (ev.task.pid, ev.task.comm) = (4934, b"run.sh".to_vec());
    ev.task.exe = Some(b"/usr/bin/bash".to_vec());
    ev.proctitle = b"/bin/bash\0./run.sh".to_vec();
    ev.paths = vec![PathItem {
        fcaps: Default::default(),
        name: b"/nonexistent/x".to_vec(),
        inode: None,
        nametype: NameType::Unknown,
    }];
    let want = [
        with_container(&format!("type=SYSCALL msg=audit(1795642256.947:26): arch=c000003e syscall=59 success=no exit=-2 a0=560703476f90 a1=560703476570 a2=560703473ef0 a3=154958638bf4a070 items=1 ppid=4877 pid=4934 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"run.sh\" exe=\"/usr/bin/bash\" key=\"t\"\x1dARCH=x86_64 SYSCALL=execve {root}")),
        "type=CWD msg=audit(1795642256.947:26): cwd=\"/tmp/auditchk\"".into(),
        "type=PATH msg=audit(1795642256.947:26): item=0 name=\"/nonexistent/x\" nametype=UNKNOWN cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0".into(),
        "type=PROCTITLE msg=audit(1795642256.947:26): proctitle=2F62696E2F62617368002E2F72756E2E7368".into(),
    ];
    assert_eq!(show(&encode(&ev, true)), show(&lines(&want)));
}

/// Parsed from auditd's lines, re-encoded, compared byte for byte: `cd /usr/bin; ./true` (27,
/// relative name, quoted proctitle), `setpriv --reuid=1234 …` (30, unknown uid), `'/tmp/auditchk/my
/// prog' z` (31, hex comm/exe/name), `execveat(AT_FDCWD, "/bin/true", {"true-at", "x y"})` (51),
/// `setpriv --reuid=65534 …` (55, known names) and `/bin/true tty` under `script` (60, tty=pts0).
#[test]
fn golden_reencode_auditd_events() {
    let u = "AUID=\"unset\" UID=\"unknown(1234)\" GID=\"unknown(1234)\" EUID=\"unknown(1234)\" SUID=\"unknown(1234)\" FSUID=\"unknown(1234)\" EGID=\"unknown(1234)\" SGID=\"unknown(1234)\" FSGID=\"unknown(1234)\"";
    let p = "dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"";
    let ld = format!("item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=325843 {p}");
    let events: [Vec<String>; 6] = [
        vec![
            "type=SYSCALL msg=audit(1795642256.951:27): arch=c000003e syscall=59 success=yes exit=0 a0=560703467330 a1=5607034792c0 a2=560703473ef0 a3=154958638bf4a070 items=2 ppid=4877 pid=4935 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"true\" exe=\"/usr/bin/true\" key=\"t\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"unset\" UID=\"root\" GID=\"root\" EUID=\"root\" SUID=\"root\" FSUID=\"root\" EGID=\"root\" SGID=\"root\" FSGID=\"root\"".into(),
            "type=EXECVE msg=audit(1795642256.951:27): argc=1 a0=\"./true\"".into(),
            "type=CWD msg=audit(1795642256.951:27): cwd=\"/usr/bin\"".into(),
            format!("type=PATH msg=audit(1795642256.951:27): item=0 name=\"./true\" inode=247857 {p}"),
            format!("type=PATH msg=audit(1795642256.951:27): {ld}"),
            "type=PROCTITLE msg=audit(1795642256.951:27): proctitle=\"./true\"".into(),
        ],
        vec![
            format!("type=SYSCALL msg=audit(1795642256.959:30): arch=c000003e syscall=59 success=yes exit=0 a0=7ffc0a6e5adb a1=7ffc0a6e4fb8 a2=7ffc0a6e4fc8 a3=e136158fcf0004a6 items=2 ppid=4877 pid=4937 auid=4294967295 uid=1234 gid=1234 euid=1234 suid=1234 fsuid=1234 egid=1234 sgid=1234 fsgid=1234 tty=(none) ses=4294967295 comm=\"true\" exe=\"/usr/bin/true\" key=\"t\"\x1dARCH=x86_64 SYSCALL=execve {u}"),
            "type=EXECVE msg=audit(1795642256.959:30): argc=1 a0=\"/bin/true\"".into(),
            "type=CWD msg=audit(1795642256.959:30): cwd=\"/tmp/auditchk\"".into(),
            format!("type=PATH msg=audit(1795642256.959:30): item=0 name=\"/bin/true\" inode=247857 {p}"),
            format!("type=PATH msg=audit(1795642256.959:30): {ld}"),
            "type=PROCTITLE msg=audit(1795642256.959:30): proctitle=73657470726976002D2D72657569643D31323334002D2D72656769643D31323334002D2D636C6561722D67726F757073002F62696E2F74727565".into(),
        ],
        vec![
            "type=SYSCALL msg=audit(1795642256.963:31): arch=c000003e syscall=59 success=yes exit=0 a0=560703476bd0 a1=560703476270 a2=560703473ef0 a3=154958638bf4a070 items=2 ppid=4877 pid=4938 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=6D792070726F67 exe=2F746D702F617564697463686B2F6D792070726F67 key=\"t\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"unset\" UID=\"root\" GID=\"root\" EUID=\"root\" SUID=\"root\" FSUID=\"root\" EGID=\"root\" SGID=\"root\" FSGID=\"root\"".into(),
            "type=EXECVE msg=audit(1795642256.963:31): argc=2 a0=2F746D702F617564697463686B2F6D792070726F67 a1=\"z\"".into(),
            "type=CWD msg=audit(1795642256.963:31): cwd=\"/tmp/auditchk\"".into(),
            format!("type=PATH msg=audit(1795642256.963:31): item=0 name=2F746D702F617564697463686B2F6D792070726F67 inode=10010689 {p}"),
            format!("type=PATH msg=audit(1795642256.963:31): {ld}"),
            "type=PROCTITLE msg=audit(1795642256.963:31): proctitle=2F746D702F617564697463686B2F6D792070726F67007A".into(),
        ],
        vec![
            "type=SYSCALL msg=audit(1795642883.855:51): arch=c000003e syscall=322 success=yes exit=0 a0=ffffff9c a1=5649dbec500b a2=7ffde75a9cb0 a3=7ffde75a9cc8 items=2 ppid=14344 pid=14347 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"true\" exe=\"/usr/bin/true\" key=\"t\"\x1dARCH=x86_64 SYSCALL=execveat AUID=\"unset\" UID=\"root\" GID=\"root\" EUID=\"root\" SUID=\"root\" FSUID=\"root\" EGID=\"root\" SGID=\"root\" FSGID=\"root\"".into(),
            "type=EXECVE msg=audit(1795642883.855:51): argc=2 a0=\"true-at\" a1=782079".into(),
            "type=CWD msg=audit(1795642883.855:51): cwd=\"/tmp/auditchk\"".into(),
            "type=PATH msg=audit(1795642883.855:51): item=0 name=\"/bin/true\" inode=247857 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"".into(),
            "type=PATH msg=audit(1795642883.855:51): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=325843 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"".into(),
            "type=PROCTITLE msg=audit(1795642883.855:51): proctitle=\"./xat\"".into(),
        ],
        vec![
            "type=SYSCALL msg=audit(1795642883.907:55): arch=c000003e syscall=59 success=yes exit=0 a0=7ffe724bead9 a1=7ffe724bdfe8 a2=7ffe724bdff8 a3=3a598c9719728f1b items=2 ppid=14344 pid=14349 auid=4294967295 uid=65534 gid=65534 euid=65534 suid=65534 fsuid=65534 egid=65534 sgid=65534 fsgid=65534 tty=(none) ses=4294967295 comm=\"true\" exe=\"/usr/bin/true\" key=\"t\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"unset\" UID=\"nobody\" GID=\"nogroup\" EUID=\"nobody\" SUID=\"nobody\" FSUID=\"nobody\" EGID=\"nogroup\" SGID=\"nogroup\" FSGID=\"nogroup\"".into(),
            "type=EXECVE msg=audit(1795642883.907:55): argc=1 a0=\"/bin/true\"".into(),
            "type=CWD msg=audit(1795642883.907:55): cwd=\"/tmp/auditchk\"".into(),
            "type=PATH msg=audit(1795642883.907:55): item=0 name=\"/bin/true\" inode=247857 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"".into(),
            "type=PATH msg=audit(1795642883.907:55): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=325843 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"".into(),
            "type=PROCTITLE msg=audit(1795642883.907:55): proctitle=73657470726976002D2D72657569643D3635353334002D2D72656769643D3635353334002D2D636C6561722D67726F757073002F62696E2F74727565".into(),
        ],
        vec![
            "type=SYSCALL msg=audit(1795642883.935:60): arch=c000003e syscall=59 success=yes exit=0 a0=55cbd4d7a1a0 a1=55cbd4d78330 a2=55cbd4d77790 a3=7dabfd4b539ec1aa items=2 ppid=14355 pid=14358 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=4294967295 comm=\"true\" exe=\"/usr/bin/true\" key=\"t\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"unset\" UID=\"root\" GID=\"root\" EUID=\"root\" SUID=\"root\" FSUID=\"root\" EGID=\"root\" SGID=\"root\" FSGID=\"root\"".into(),
            "type=EXECVE msg=audit(1795642883.935:60): argc=2 a0=\"/bin/true\" a1=\"tty\"".into(),
            "type=CWD msg=audit(1795642883.935:60): cwd=\"/tmp/auditchk\"".into(),
            "type=PATH msg=audit(1795642883.935:60): item=0 name=\"/bin/true\" inode=247857 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"".into(),
            "type=PATH msg=audit(1795642883.935:60): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=325843 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"".into(),
            "type=PROCTITLE msg=audit(1795642883.935:60): proctitle=2F62696E2F7472756500747479".into(),
        ],
    ];
    for mut real in events {
        let mut ev = event_from_records(&parse_log(&lines(&real)).unwrap());
        ev.container = container();
        real[0] = with_container(&real[0]);
        assert_eq!(show(&encode(&ev, true)), show(&lines(&real)));
    }
}

/// EXECVE records of real runs with long arguments, from argv built by hand.
#[test]
fn golden_long_arguments() {
    let r = |c: u8, n: usize| vec![c; n];
    let t = b"/bin/true".to_vec();
    let h = |msec: u32, serial: u32| format!("type=EXECVE msg=audit(1795642256.{msec}:{serial}):");
    let cases: Vec<(ExecEvent, Vec<String>)> = vec![
        (true_event(875, 15, vec![t.clone(), r(b'x', 9000)]), vec![
            format!("{} argc=2 a0=\"/bin/true\" a1_len=18000 a1[0]={{78*3732}}", h(875, 15)),
            format!("{}  a1[1]={{78*3746}}", h(875, 15)),
            format!("{}  a1[2]={{78*1522}}", h(875, 15)),
        ]),
        (true_event(891, 16, vec![t.clone(), r(b'a', 3000), r(b'b', 3000), r(b'c', 3000), r(b'd', 3000)]), vec![
            format!("{} argc=5 a0=\"/bin/true\" a1=\"{{aa*1500}}\" a2=\"{{bb*1500}}\" a3_len=3000 a3[0]=\"{{cc*726}}\"", h(891, 16)),
            format!("{}  a3[1]=\"{{cc*774}}\" a4=\"{{dd*1500}}\"", h(891, 16)),
        ]),
        (true_event(907, 20, vec![t.clone(), r(b'y', 7499)]), vec![
            format!("{} argc=2 a0=\"/bin/true\" a1_len=7499 a1[0]=\"{{yy*3732}}\"", h(907, 20)),
            format!("{}  a1[1]=\"{{yy*17}}y\"", h(907, 20)),
        ]),
        (true_event(915, 21, vec![t.clone(), r(b'y', 7500)]), vec![
            format!("{} argc=2 a0=\"/bin/true\" a1_len=15000 a1[0]={{79*3732}}", h(915, 21)),
            format!("{}  a1[1]={{79*3746}}", h(915, 21)),
            format!("{}  a1[2]={{79*22}}", h(915, 21)),
        ]),
        (true_event(919, 22, vec![t.clone(), r(b'y', 7501)]), vec![
            format!("{} argc=2 a0=\"/bin/true\" a1_len=15002 a1[0]={{79*3732}}", h(919, 22)),
            format!("{}  a1[1]={{79*3746}}", h(919, 22)),
            format!("{}  a1[2]={{79*23}}", h(919, 22)),
        ]),
        (true_event(927, 23, vec![t.clone(), r(b'y', 7480), r(b'z', 30)]), vec![
            format!("{} argc=3 a0=\"/bin/true\" a1_len=7480 a1[0]=\"{{yy*3732}}\"", h(927, 23)),
            format!("{}  a1[1]=\"{{y*16}}\" a2=\"{{z*30}}\"", h(927, 23)),
        ]),
        (true_event(935, 24, vec![t.clone(), r(b' ', 3000), r(b' ', 3000), r(b' ', 3000)]), vec![
            format!("{} argc=4 a0=\"/bin/true\" a1={{20*3000}} a2_len=6000 a2[0]={{20*731}}", h(935, 24)),
            format!("{}  a2[1]={{20*2269}} a3_len=6000 a3[0]={{20*1468}}", h(935, 24)),
            format!("{}  a3[1]={{20*1532}}", h(935, 24)),
        ]),
        (true_event(943, 25, vec![t.clone(), r(b'q', 131071)]), {
            let mut v = vec![format!("{} argc=2 a0=\"/bin/true\" a1_len=262142 a1[0]={{71*3732}}", h(943, 25))];
            v.extend((1..=33).map(|i| format!("{}  a1[{i}]={{71*3746}}", h(943, 25))));
            v.push(format!("{}  a1[34]={{71*3721}}", h(943, 25)));
            v
        }),
        (true_event(971, 34, vec![t.clone(), r(b'y', 7400), r(b'z', 200)]), vec![
            format!("{} argc=3 a0=\"/bin/true\" a1_len=7400 a1[0]=\"{{yy*3700}}\"", h(971, 34)),
            format!("{}  a2=\"{{zz*100}}\"", h(971, 34)),
        ]),
        (true_event(983, 35, vec![t.clone(), r(b'y', 7380), r(b'z', 3), r(b'w', 7000)]), vec![
            format!("{} argc=4 a0=\"/bin/true\" a1=\"{{yy*3690}}\"", h(983, 35)),
            format!("{}  a2=\"zzz\" a3=\"{{ww*3500}}\"", h(983, 35)),
        ]),
    ];
    for (ev, want) in cases {
        let got = execve_lines(&encode(&ev, true));
        assert_eq!(
            show(&got),
            show(&lines(&want)),
            "serial {}",
            ev.stamp.serial
        );
        assert_eq!(execve_argv(&parse_log(&got).unwrap()).unwrap(), ev.argv);
    }
}

/// 1000 short arguments (serial 18): the first record ends after a543.
#[test]
fn golden_many_short_arguments() {
    let mut argv = vec![b"/bin/true".to_vec()];
    argv.extend((1..=1000).map(|i| format!("arg{i}").into_bytes()));
    let ev = true_event(903, 18, argv);
    let h = "type=EXECVE msg=audit(1795642256.903:18):";
    let args = |r: std::ops::RangeInclusive<u32>| {
        r.map(|i| format!(" a{i}=\"arg{i}\"")).collect::<String>()
    };
    let want = format!(
        "{h} argc=1001 a0=\"/bin/true\"{}\n{h} {}\n",
        args(1..=543),
        args(544..=1000)
    );
    assert_eq!(show(&execve_lines(&encode(&ev, false))), want);
}

/// Lines of /work/shared/reference/audit-records.md.
#[test]
fn golden_reference_document() {
    let mut ev = true_event(204, 35484, vec![b"sleep".to_vec(), b"0.5".to_vec()]);
    ev.stamp.sec = 1795578021;
    ev.regs = [
        0x55d2ef99c510,
        0x55d2ef9a2980,
        0x55d2ef9af0e0,
        0x473c06c16d9921d3,
    ];
    (ev.task.ppid, ev.task.pid, ev.task.comm) = (16813, 16862, b"sleep".to_vec());
    ev.task.exe = Some(b"/usr/bin/sleep".to_vec());
    ev.key = Some(b"exec".to_vec());
    let out = encode(&ev, true);
    let mut got = out.split(|&b| b == b'\n');
    let want = with_container("type=SYSCALL msg=audit(1795578021.204:35484): arch=c000003e syscall=59 success=yes exit=0 a0=55d2ef99c510 a1=55d2ef9a2980 a2=55d2ef9af0e0 a3=473c06c16d9921d3 items=2 ppid=16813 pid=16862 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"sleep\" exe=\"/usr/bin/sleep\" key=\"exec\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"unset\" UID=\"root\" GID=\"root\" EUID=\"root\" SUID=\"root\" FSUID=\"root\" EGID=\"root\" SGID=\"root\" FSGID=\"root\"");
    assert_eq!(show(got.next().unwrap()), show(want.as_bytes()));
    assert_eq!(
        show(got.next().unwrap()),
        "type=EXECVE msg=audit(1795578021.204:35484): argc=2 a0=\"sleep\" a1=\"0.5\""
    );
    assert_eq!(
        show(out.split(|&b| b == b'\n').nth(5).unwrap()),
        "type=PROCTITLE msg=audit(1795578021.204:35484): proctitle=736C65657000302E35"
    );

    let mut ev = true_event(764, 8, Vec::new());
    ev.stamp.sec = 1795575698;
    ev.cwd = Some(b"/srv/app".to_vec());
    ev.paths = vec![
        path(b"/usr/bin/tail", 247834),
        path(b"/lib64/ld-linux-x86-64.so.2", 325843),
    ];
    let out = encode(&ev, true);
    let got: Vec<_> = out
        .split(|&b| b == b'\n')
        .skip(1)
        .take(3)
        .map(show)
        .collect();
    assert_eq!(got, [
        "type=CWD msg=audit(1795575698.764:8): cwd=\"/srv/app\"",
        "type=PATH msg=audit(1795575698.764:8): item=0 name=\"/usr/bin/tail\" inode=247834 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0^]OUID=\"root\" OGID=\"root\"",
        "type=PATH msg=audit(1795575698.764:8): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=325843 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0^]OUID=\"root\" OGID=\"root\"",
    ]);

    let argv = [
        &b"/bin/echo"[..],
        b"a\"b",
        b"sp ace",
        b"nl\nx",
        "é".as_bytes(),
    ];
    let ev = true_event(1, 35245, argv.iter().map(|a| a.to_vec()).collect());
    let got = show(&execve_lines(&encode(&ev, false)));
    assert!(
        got.ends_with(": argc=5 a0=\"/bin/echo\" a1=612262 a2=737020616365 a3=6E6C0A78 a4=C3A9\n"),
        "{got}"
    );
}

/// BPRM_FCAPS as auditd wrote it for a root exec in a sandbox whose bounding set lacks one
/// capability (serial 205), and a PATH for a file with capabilities (`setcap cap_net_raw+ep`).
#[test]
fn golden_capabilities() {
    let set = 0x0000_01ff_feff_ffff;
    let mut ev = true_event(395, 205, vec![b"/bin/true".to_vec()]);
    ev.bprm_fcaps = Some(BprmFcaps {
        file: FileCaps::default(),
        old: Caps {
            permitted: set,
            effective: set,
            ..Caps::default()
        },
        new: Caps {
            permitted: set,
            effective: set,
            ..Caps::default()
        },
    });
    let out = encode(&ev, false);
    let text = show(&out);
    let want = "type=BPRM_FCAPS msg=audit(1795642256.395:205): fver=0 fp=0 fi=0 fe=0 old_pp=000001fffeffffff old_pi=0 old_pe=000001fffeffffff old_pa=0 pp=000001fffeffffff pi=0 pe=000001fffeffffff pa=0 frootid=0";
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("type=SYSCALL"), "{text}");
    assert_eq!(lines[1], want);
    assert!(lines[2].starts_with("type=EXECVE"), "{text}");

    ev.paths[0].fcaps = FileCaps {
        permitted: 1 << 13,
        inheritable: 0,
        effective: true,
        version: 2,
        rootid: 0,
    };
    let text = show(&encode(&ev, false));
    assert!(
        text.contains(
            "nametype=NORMAL cap_fp=0000000000002000 cap_fi=0 cap_fe=1 cap_fver=2 cap_frootid=0"
        ),
        "{text}"
    );
    // And back: the parser restores both.
    let records = parse_log(text.as_bytes()).unwrap();
    let back = crate::encode::parse::exec_event(&records).unwrap();
    assert_eq!(back.bprm_fcaps, ev.bprm_fcaps);
    assert_eq!(back.paths[0].fcaps, ev.paths[0].fcaps);
}

/// A cut path says so on SYSCALL, and nowhere else; the parser reads it back.
#[test]
fn truncated_paths_are_named_on_syscall() {
    let mut ev = true_event(1, 7, vec![b"/bin/true".to_vec()]);
    let plain = show(&encode(&ev, false));
    assert!(!plain.contains("sensor_trunc_paths"), "{plain}");
    ev.paths_truncated = PathsTruncated {
        cwd: true,
        exe: false,
        cgroup: true,
    };
    let text = show(&encode(&ev, false));
    let syscall = text.lines().next().unwrap();
    assert!(
        syscall.ends_with(" sensor_trunc_paths=\"cwd,cgroup\""),
        "{syscall}"
    );
    assert_eq!(text.matches("sensor_trunc_paths").count(), 1);
    let back = crate::encode::parse::exec_event(&parse_log(text.as_bytes()).unwrap()).unwrap();
    assert_eq!(back.paths_truncated, ev.paths_truncated);
}

fn abend() -> AbendEvent {
    AbendEvent {
        stamp: Stamp {
            sec: 1795649012,
            nsec: 183_000_000,
            serial: 73529,
        },
        boot_ns: 0,
        pid: 5781,
        auid: UNSET_ID,
        uid: 0,
        gid: 0,
        ses: UNSET_ID,
        comm: b"sh".to_vec(),
        exe: Some(b"/usr/bin/dash".to_vec()),
        sig: 11,
        container: Container {
            cgroup_id: 1,
            cgroup_path: b"/".to_vec(),
            ..Container::default()
        },
        paths_truncated: PathsTruncated::default(),
    }
}

/// ANOM_ABEND from real auditd (`sh -c 'kill -SEGV $$'`): the kernel's fields byte for byte,
/// the sensor's container fields between them and the enrichment.
#[test]
fn golden_anom_abend() {
    let mut out = Vec::new();
    write_event(&mut out, &Event::Abend(abend()), Some(&names()));
    let want_prefix = "type=ANOM_ABEND msg=audit(1795649012.183:73529): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=5781 comm=\"sh\" exe=\"/usr/bin/dash\" sig=11 res=1 cgroup_id=\"1\" cgroup=\"/\" pidns=\"0\"";
    let want_suffix = "^]AUID=\"unset\" UID=\"root\" GID=\"root\"\n";
    let text = show(&out);
    assert!(
        text.starts_with(want_prefix) && text.ends_with(want_suffix),
        "{text}"
    );
    assert_eq!(text.matches('\n').count(), 1);
    // A hostile comm cannot forge a field.
    let mut ev = abend();
    ev.comm = b"x res=0 sig=9".to_vec();
    let mut out = Vec::new();
    write_event(&mut out, &Event::Abend(ev), None);
    let rec = &parse_log(&out).unwrap()[0];
    assert_eq!(rec.get(b"sig"), Some(&b"11"[..]));
    assert_eq!(rec.get(b"res"), Some(&b"1"[..]));
}
