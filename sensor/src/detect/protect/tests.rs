use super::*;

const ON: Sysctls = Sysctls {
    hardlinks: 1,
    symlinks: 1,
    regular: 1,
    fifos: 1,
};
const OFF: Sysctls = Sysctls {
    hardlinks: 0,
    symlinks: 0,
    regular: 0,
    fifos: 0,
};
const NOBODY: Caller = Caller {
    fsuid: 65534,
    fsgid: 65534,
    cap_effective: 0,
};
const ROOT: Caller = Caller {
    fsuid: 0,
    fsgid: 0,
    cap_effective: u64::MAX,
};

fn meta(uid: u32, gid: u32, mode: u32) -> Meta {
    Meta { uid, gid, mode }
}

#[test]
fn hard_link_to_a_file_one_may_not_read_and_write_is_refused() {
    let shadow = meta(0, 42, 0o100640);
    assert!(linkat_refused(&ON, shadow, &NOBODY));
    assert!(!linkat_refused(&OFF, shadow, &NOBODY), "sysctl off");
    assert!(!linkat_refused(&ON, shadow, &ROOT), "CAP_FOWNER");
    let own = meta(65534, 65534, 0o100600);
    assert!(!linkat_refused(&ON, own, &NOBODY), "owner");
    let world_rw = meta(0, 0, 0o100666);
    assert!(!linkat_refused(&ON, world_rw, &NOBODY), "safe source");
    let setuid = meta(0, 0, 0o104777);
    assert!(
        linkat_refused(&ON, setuid, &NOBODY),
        "set-uid is never safe"
    );
    let setgid_exec = meta(0, 0, 0o102777);
    assert!(
        linkat_refused(&ON, setgid_exec, &NOBODY),
        "set-gid executable"
    );
    let setgid_noexec = meta(0, 0, 0o102666);
    assert!(
        !linkat_refused(&ON, setgid_noexec, &NOBODY),
        "mandatory-locking bit"
    );
    let dir = meta(0, 0, 0o040777);
    assert!(linkat_refused(&ON, dir, &NOBODY), "not a regular file");
    let group_rw = meta(0, 65534, 0o100660);
    assert!(!linkat_refused(&ON, group_rw, &NOBODY), "group bits");
}

#[test]
fn symlink_in_a_sticky_world_writable_directory_owned_by_a_third_party() {
    let tmp = meta(0, 0, 0o041777);
    let link = meta(65534, 65534, 0o120777);
    assert!(follow_refused(&ON, tmp, link, 0));
    assert!(!follow_refused(&OFF, tmp, link, 0), "sysctl off");
    assert!(!follow_refused(&ON, tmp, link, 65534), "follower owns it");
    let not_sticky = meta(0, 0, 0o040777);
    assert!(!follow_refused(&ON, not_sticky, link, 0));
    let not_world_writable = meta(0, 0, 0o041775);
    assert!(!follow_refused(&ON, not_world_writable, link, 0));
    let dir_of_link_owner = meta(65534, 0, 0o041777);
    assert!(
        !follow_refused(&ON, dir_of_link_owner, link, 0),
        "directory owner"
    );
}

#[test]
fn o_creat_of_someone_elses_file_or_fifo_in_a_sticky_directory() {
    let tmp = meta(0, 0, 0o041777);
    let file = meta(65534, 65534, 0o100644);
    let fifo = meta(65534, 65534, 0o010644);
    let refused = |s: &Sysctls, dir, f, fsuid| {
        sticky_create_refused(s, dir, f, fsuid, StickyWording::ByDirectory).is_some()
    };
    assert!(refused(&ON, tmp, file, 0));
    assert!(refused(&ON, tmp, fifo, 0));
    assert!(!refused(&OFF, tmp, file, 0));
    assert!(!refused(&OFF, tmp, fifo, 0));
    assert!(!refused(&ON, tmp, file, 65534), "opener owns it");
    assert!(!refused(&ON, meta(0, 0, 0o040777), file, 0), "not sticky");
    let dir_owner_file = meta(0, 0, 0o100644);
    assert!(
        !refused(&ON, tmp, dir_owner_file, 1000),
        "directory owner's file"
    );
    // Group-writable only: level 2 of each sysctl.
    let group_tmp = meta(0, 0, 0o041770);
    assert!(!refused(&ON, group_tmp, file, 0));
    let two = Sysctls {
        regular: 2,
        fifos: 2,
        ..ON
    };
    assert!(refused(&two, group_tmp, file, 0));
    assert!(refused(&two, group_tmp, fifo, 0));
}

#[test]
fn the_op_is_named_as_the_running_kernel_names_it() {
    use crate::event::PathDenial::{StickyCreate, StickyCreateFifo, StickyCreateRegular};
    let (tmp, group_tmp) = (meta(0, 0, 0o041777), meta(0, 0, 0o041770));
    let file = meta(65534, 65534, 0o100644);
    let fifo = meta(65534, 65534, 0o010644);
    let two = Sysctls {
        regular: 2,
        fifos: 2,
        ..ON
    };
    let op = |dir, f, w| sticky_create_refused(&two, dir, f, 0, w);
    // 6.12 and later: world-writable by directory, group-writable by type.
    assert_eq!(
        op(tmp, file, StickyWording::ByDirectory),
        Some(StickyCreate)
    );
    assert_eq!(
        op(tmp, fifo, StickyWording::ByDirectory),
        Some(StickyCreate)
    );
    assert_eq!(
        op(group_tmp, fifo, StickyWording::ByDirectory),
        Some(StickyCreateFifo)
    );
    // Before: always by type.
    assert_eq!(
        op(tmp, file, StickyWording::ByFileType),
        Some(StickyCreateRegular)
    );
    assert_eq!(
        op(tmp, fifo, StickyWording::ByFileType),
        Some(StickyCreateFifo)
    );
    assert_eq!(
        op(group_tmp, file, StickyWording::ByFileType),
        Some(StickyCreateRegular)
    );
}

#[test]
fn resolve_follows_links_like_the_kernel_walk() {
    let dir = std::env::temp_dir().join(format!("sensor-protect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    std::fs::write(dir.join("a/b/target"), b"x").unwrap();
    std::os::unix::fs::symlink("b/target", dir.join("a/rel")).unwrap();
    std::os::unix::fs::symlink(dir.join("a/b"), dir.join("abs")).unwrap();
    let fs = TaskFs {
        root: PathBuf::from("/"),
        pin: None,
        base: dir.as_os_str().as_bytes().to_vec(),
    };
    let me = std::fs::metadata(&dir).unwrap().uid();
    let under = |p: &str| [dir.as_os_str().as_bytes(), p.as_bytes()].concat();
    let object = |path: Vec<u8>, exists| Resolved::Object { path, exists };
    assert_eq!(
        fs.resolve(b"a/rel", true, &ON, me),
        object(under("/a/b/target"), true)
    );
    assert_eq!(
        fs.resolve(b"a/rel", false, &ON, me),
        object(under("/a/rel"), true),
        "last link not followed"
    );
    assert_eq!(
        fs.resolve(b"abs/../b/./target", true, &ON, me),
        object(under("/a/b/target"), true),
        "`..` after a link goes up from its target"
    );
    assert_eq!(
        fs.resolve(b"a/b/new", true, &ON, me),
        object(under("/a/b/new"), false)
    );
    assert_eq!(fs.resolve(b"missing/x", true, &ON, me), Resolved::Unknown);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_tasks_root_stays_reachable_after_it_exits() {
    let mut child = std::process::Command::new("/bin/sleep")
        .arg("0.2")
        .spawn()
        .unwrap();
    let ns = std::fs::metadata("/proc/self/ns/mnt").unwrap().ino() as u32;
    let (root, pin) = task_root(child.id(), ns).unwrap();
    assert!(pin.is_some(), "a live task's root is held open");
    child.wait().unwrap();
    // Gone and reaped: its /proc entry no longer resolves, the held root still does.
    assert!(!std::path::Path::new(&format!("/proc/{}/root/etc", child.id())).exists());
    assert!(root.join("etc/passwd").exists(), "{}", root.display());
    // A task that is gone: `/` for the sensor's own mount namespace, nothing for another.
    assert_eq!(
        task_root(child.id(), ns).map(|r| r.0),
        Some(PathBuf::from("/"))
    );
    assert!(task_root(child.id(), ns.wrapping_add(1)).is_none());
}

/// Seen at `audit_log_path_denied()` (fentry): the kernel's decision is taken as it is, with the
/// names the syscall passed and no object; an op this sensor does not know, or one under the other
/// record type, is not reported.
#[test]
fn the_kernels_own_refusal_is_taken_as_it_is() {
    use crate::{
        assemble::{AssembledAnomaly, TaskPaths},
        event::{Anomaly, PathDenial},
        read::record::{KernelDenial, Origin, SyscallExit, TaskInfo, TaskNs},
    };
    let of = |record_type: u32, op: &[u8]| AssembledAnomaly {
        exit: Some(Box::new(SyscallExit {
            origin: Origin {
                tid: 1,
                pid: 1,
                mono_ns: 0,
            },
            // stat(2): judged by no replay, decided by the kernel.
            syscall: 4,
            ret: -13,
            args: [0; 6],
            flags: 0,
            cap_effective: 0,
            task: TaskInfo::default(),
            ns: TaskNs::default(),
            proctitle: Vec::new(),
            kernel_denial: Some(KernelDenial {
                record_type,
                op: op.to_vec(),
            }),
        })),
        promisc: Vec::new(),
        login: None,
        paths: TaskPaths {
            name: Some(b"/tmp/sl".to_vec()),
            ..TaskPaths::default()
        },
    };
    assert_eq!(
        path_denied(&of(1702, b"follow_link")),
        Some(Anomaly::PathDenied {
            denial: PathDenial::FollowLink,
            names: vec![b"/tmp/sl".to_vec()],
            object: Vec::new(),
        })
    );
    let creat = path_denied(&of(1703, b"sticky_create_fifo"));
    assert!(matches!(
        creat,
        Some(Anomaly::PathDenied {
            denial: PathDenial::StickyCreateFifo,
            ..
        })
    ));
    let before = unknown_ops();
    assert_eq!(path_denied(&of(1702, b"sticky_create")), None);
    assert_eq!(path_denied(&of(1703, b"protected_something")), None);
    // Not reported, but counted (as incomplete events in the loss report).
    assert_eq!(unknown_ops() - before, 2);
}
