//! Events of every kind, with hostile bytes where a record carries them: what the encoder,
//! protobuf and catalogue tests feed.

use crate::event::*;
use sensor_common::syscalls::x86_64;

pub fn stamp(serial: u64) -> Stamp {
    Stamp {
        sec: 1_700_000_000,
        nsec: 999_999_999,
        serial,
    }
}

pub fn full_exec() -> ExecEvent {
    ExecEvent {
        paths_truncated: PathsTruncated {
            cwd: true,
            exe: false,
            cgroup: true,
        },
        bprm_fcaps: Some(BprmFcaps {
            file: FileCaps {
                permitted: 1 << 13,
                inheritable: 1,
                effective: true,
                version: 3,
                rootid: 1000,
            },
            old: Caps {
                inheritable: 1,
                permitted: 2,
                effective: 3,
                ambient: 4,
            },
            new: Caps {
                inheritable: 5,
                permitted: 6,
                effective: 7,
                ambient: 8,
            },
        }),
        stamp: stamp(42),
        boot_ns: 123_456_789_012,
        arch: AUDIT_ARCH_X86_64,
        syscall: Syscall::EXECVEAT,
        success: true,
        exit: 0,
        regs: [u64::MAX, 0x7ffc_0000_1000, 0, 0x1000],
        task: Task {
            personality: 0,
            ppid: 1,
            pid: 4242,
            tid: 4243,
            auid: UNSET_ID,
            uid: 1000,
            gid: 1000,
            euid: 0,
            suid: 0,
            fsuid: 0,
            egid: 5,
            sgid: 6,
            fsgid: 7,
            ses: UNSET_ID,
            tty: Some(b"pts0".to_vec()),
            comm: b"b\xc3\x28d\n".to_vec(),
            exe: Some(b"/usr/bin/\x1d\xfe".to_vec()),
        },
        argv: vec![
            b"/bin/sh".to_vec(),
            Vec::new(),
            b"\xff\xfe invalid utf-8".to_vec(),
            b"group\x1dseparator".to_vec(),
            b"two\nlines\r\n".to_vec(),
            vec![b'A'; 200 * 1024],
            b"nul\0inside".to_vec(),
            Vec::new(),
        ],
        argv_truncated: Some(ArgvTruncation {
            missing_args: 3,
            missing_bytes: u64::MAX,
        }),
        proctitle: b"/bin/sh\0\0\xff\xfe".to_vec(),
        cwd: Some(b"/home/u/\xe2\x80".to_vec()),
        paths: vec![
            PathItem {
                fcaps: Default::default(),
                name: b"/bin/sh".to_vec(),
                inode: Some(Inode {
                    ino: u64::MAX,
                    dev_major: 8,
                    dev_minor: 1,
                    mode: 0o100755,
                    ouid: 0,
                    ogid: 0,
                    rdev_major: 0,
                    rdev_minor: 0,
                }),
                nametype: NameType::Normal,
            },
            PathItem {
                fcaps: Default::default(),
                name: b"gone\n".to_vec(),
                inode: None,
                nametype: NameType::Unknown,
            },
        ],
        container: Container {
            cgroup_id: 9876,
            cgroup_path: b"/system.slice/docker-abc.scope\xff".to_vec(),
            pid_ns: 4026531836,
            mnt_ns: 4026531841,
            net_ns: 4026531840,
            uts_ns: 4026531838,
            ns_pid: 1,
            container_id: Some("abc".into()),
        },
        key: Some(b"k\x1d".to_vec()),
    }
}

pub fn lost() -> LostEvent {
    LostEvent {
        stamp: stamp(9),
        total: 100,
        delta: 10,
        ringbuf: 7,
        read_errors: 2,
        channel: 1,
        incomplete: 5,
        lookups_late: 3,
        roots_unwatched: 1,
        unwritten: 2,
    }
}

pub fn abend() -> Event {
    Event::Abend(AbendEvent {
        stamp: stamp(11),
        boot_ns: 42,
        pid: 7,
        auid: UNSET_ID,
        uid: 1000,
        gid: 1000,
        ses: 3,
        comm: vec![0xff, b'\n', 0x1d],
        exe: None,
        sig: 6,
        container: Container {
            cgroup_id: 9,
            cgroup_path: b"/docker-x.scope".to_vec(),
            container_id: Some("x".into()),
            ..Container::default()
        },
        paths_truncated: PathsTruncated {
            cwd: false,
            exe: true,
            cgroup: false,
        },
    })
}

pub fn syscall_part(syscall: Syscall, exit: i64) -> SyscallPart {
    SyscallPart {
        syscall,
        success: exit >= 0,
        exit,
        regs: [0xffff_ff9c, 0x7ffd_c41c_3ae8, u64::MAX, 0],
        task: full_exec().task,
        proctitle: b"ln\0/etc/shadow\0\x1d \n".to_vec(),
    }
}

pub fn anomaly(serial: u64, anomaly: Anomaly, syscall: Option<SyscallPart>) -> AnomalyEvent {
    AnomalyEvent {
        key: None,
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

pub fn path_denied(denial: PathDenial, names: &[&[u8]]) -> Anomaly {
    Anomaly::PathDenied {
        denial,
        names: names.iter().map(|n| n.to_vec()).collect(),
        object: b"/etc/sha dow\xff".to_vec(),
    }
}

pub fn promiscuity(dev: &[u8], prom: u32, old_prom: u32) -> Promiscuity {
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

pub fn anomaly_shapes() -> Vec<AnomalyEvent> {
    let link = path_denied(PathDenial::Linkat, &[b"/etc/shadow", b"/tmp/h\nl"]);
    let follow = path_denied(PathDenial::FollowLink, &[b"/tmp/anx/sl"]);
    let sticky = path_denied(PathDenial::StickyCreate, &[b"/tmp/anx/f\x1d"]);
    let changes = vec![promiscuity(b"vtest0", 256, 0), promiscuity(b"v x", 0, 256)];
    let closed = vec![promiscuity(b"eth0", 0, 256)];
    vec![
        anomaly(20, link, Some(syscall_part(Syscall::LINKAT, -1))),
        anomaly(21, follow, Some(syscall_part(Syscall::OPENAT, -13))),
        anomaly(22, sticky, Some(syscall_part(Syscall::OPENAT2, -13))),
        anomaly(
            23,
            Anomaly::Promiscuous(changes),
            Some(syscall_part(Syscall(x86_64::SENDMSG), 32)),
        ),
        anomaly(24, Anomaly::Promiscuous(closed), None),
        anomaly(
            25,
            Anomaly::Login(login(true)),
            Some(syscall_part(Syscall(x86_64::WRITE), 5)),
        ),
        anomaly(
            26,
            Anomaly::Login(login(false)),
            Some(syscall_part(Syscall(x86_64::WRITE), -1)),
        ),
        // The kernel's own refusal in statx(2) (fentry): a syscall the proto enum does not
        // name, no object; and syscall 0 (read), the number the enum's UNSPECIFIED shares.
        anomaly(
            27,
            Anomaly::PathDenied {
                denial: PathDenial::FollowLink,
                names: Vec::new(),
                object: Vec::new(),
            },
            Some(syscall_part(Syscall(332), -13)),
        ),
        anomaly(
            28,
            Anomaly::PathDenied {
                denial: PathDenial::FollowLink,
                names: Vec::new(),
                object: Vec::new(),
            },
            Some(syscall_part(Syscall(0), -13)),
        ),
    ]
}

/// A login uid set (1000, session 2, from unset), or a change to 1001 refused.
pub fn login(res: bool) -> LoginChange {
    match res {
        true => LoginChange {
            old_auid: UNSET_ID,
            auid: 1000,
            old_ses: UNSET_ID,
            ses: 2,
            res,
            old_exact: true,
        },
        false => LoginChange {
            old_auid: 1000,
            auid: 1001,
            old_ses: 4,
            ses: UNSET_ID,
            res,
            old_exact: false,
        },
    }
}
