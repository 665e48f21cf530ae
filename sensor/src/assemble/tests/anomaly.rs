//! Anomaly events: the tests of the parent module, for the kinds added in schema 3.

use super::*;

fn raw_path(tid: u32, kind: PathKind, truncated: bool, data: &[u8]) -> Record {
    Record::Path(PathRecord {
        deleted: false,
        origin: origin(tid, tid, 6_000),
        kind,
        truncated,
        data: data.to_vec(),
    })
}

fn syscall_exit(tid: u32, syscall: u32, ret: i64) -> Record {
    Record::SyscallExit(Box::new(SyscallExit {
        origin: origin(tid, tid, 7_000),
        syscall,
        ret,
        args: [0; 6],
        flags: 0,
        cap_effective: 0,
        task: TaskInfo::default(),
        ns: TaskNs::default(),
        proctitle: Vec::new(),
        kernel_denial: None,
    }))
}

fn promisc(tid: u32, exit_follows: bool, auid: u32) -> Record {
    Record::Promisc(Promisc {
        origin: origin(tid, tid, 6_500),
        exit_follows,
        ids: AuditIds {
            auid,
            ..AuditIds::default()
        },
        ns: TaskNs::default(),
        text: Vec::new(),
    })
}

fn anomaly(out: Option<Assembly>) -> AssembledAnomaly {
    match out {
        Some(Assembly::Anomaly(a)) => a,
        other => panic!("not an anomaly: {other:?}"),
    }
}

#[test]
fn task_paths_then_syscall_exit_give_one_anomaly_of_that_thread() {
    let mut asm = Assembler::default();
    for r in [
        raw_path(50, PathKind::ArgName, false, b"/etc/shadow"),
        raw_path(51, PathKind::ArgName, false, b"/other"),
        raw_path(50, PathKind::ArgNewname, false, b"/tmp/anx/hl"),
        raw_path(50, PathKind::TaskCwd, false, b"anx\0tmp\0"),
        promisc(51, true, 7),
        raw_path(50, PathKind::TaskExe, false, b"ln\0bin\0usr\0"),
        raw_path(51, PathKind::TaskExe, false, b"ip\0"),
        raw_path(50, PathKind::TaskCgroup, true, b"x.scope\0"),
    ] {
        assert!(asm.push_record(r).is_none(), "held until the exit");
    }
    let a = anomaly(asm.push_record(syscall_exit(50, 265, -1)));
    let x = a.exit.expect("the syscall's exit");
    assert_eq!((x.origin.tid, x.syscall, x.ret), (50, 265, -1));
    assert!(a.promisc.is_empty());
    assert_eq!(a.paths.name.as_deref(), Some(&b"/etc/shadow"[..]));
    assert_eq!(a.paths.newname.as_deref(), Some(&b"/tmp/anx/hl"[..]));
    assert_eq!(a.paths.cwd, Some(walked(b"anx\0tmp\0")));
    assert_eq!(a.paths.exe, Some(walked(b"ln\0bin\0usr\0")));
    let cgroup = WalkedPath {
        deleted: false,
        components: b"x.scope\0".to_vec(),
        truncated: true,
    };
    assert_eq!(a.paths.cgroup, Some(cgroup));

    // Thread 51 keeps its own records, and only those.
    let b = anomaly(asm.push_record(syscall_exit(51, 46, 32)));
    assert_eq!(b.paths.name.as_deref(), Some(&b"/other"[..]));
    assert_eq!(b.paths.exe, Some(walked(b"ip\0")));
    assert_eq!(
        (b.paths.newname, b.paths.cwd, b.paths.cgroup),
        (None, None, None)
    );
    assert_eq!(b.promisc.len(), 1);
    assert_eq!(b.promisc[0].ids.auid, 7);

    // Consumed: a later exit of thread 50 starts empty.
    let c = anomaly(asm.push_record(syscall_exit(50, 257, -13)));
    assert!(c.paths.name.is_none() && c.paths.exe.is_none() && c.promisc.is_empty());
    assert_eq!(asm.pending(), 0);
    assert_eq!(asm.incomplete, 0);
}

#[test]
fn a_cut_path_argument_is_unknown() {
    let mut asm = Assembler::default();
    asm.push_record(raw_path(52, PathKind::ArgName, true, b"/very/lo"));
    asm.push_record(raw_path(52, PathKind::ArgNewname, false, b""));
    let a = anomaly(asm.push_record(syscall_exit(52, 86, -1)));
    assert_eq!(a.paths.name, None);
    assert_eq!(a.paths.newname, Some(Vec::new()));
}

#[test]
fn promiscuity_changes_wait_for_their_syscall_exit() {
    let mut asm = Assembler::default();
    assert!(asm.push_record(promisc(60, true, 1)).is_none());
    assert!(asm.push_record(promisc(60, true, 2)).is_none());
    let a = anomaly(asm.push_record(syscall_exit(60, 16, 0)));
    assert_eq!(a.exit.map(|x| (x.origin.tid, x.syscall)), Some((60, 16)));
    let auids: Vec<u32> = a.promisc.iter().map(|p| p.ids.auid).collect();
    assert_eq!(auids, [1, 2], "both changes, in order");
    assert!(a.promisc.iter().all(|p| p.origin.tid == 60));
    let again = anomaly(asm.push_record(syscall_exit(60, 16, 0)));
    assert!(again.promisc.is_empty(), "handed on once");
}

#[test]
fn promiscuity_change_without_exit_is_handed_on_at_once() {
    let mut asm = Assembler::default();
    asm.push_record(raw_path(
        70,
        PathKind::TaskExe,
        false,
        b"tcpdump\0sbin\0usr\0",
    ));
    asm.push_record(raw_path(70, PathKind::TaskCgroup, false, b""));
    let a = anomaly(asm.push_record(promisc(70, false, 9)));
    assert!(a.exit.is_none());
    assert_eq!(a.promisc.len(), 1);
    assert_eq!((a.promisc[0].origin.tid, a.promisc[0].ids.auid), (70, 9));
    assert_eq!(a.paths.exe, Some(walked(b"tcpdump\0sbin\0usr\0")));
    assert_eq!(a.paths.cgroup, Some(walked(b"")));
    // Nothing of it is left for a later exit of the same thread.
    let b = anomaly(asm.push_record(syscall_exit(70, 3, 0)));
    assert!(b.promisc.is_empty() && b.paths.exe.is_none());
}
