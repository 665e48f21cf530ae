//! Joining the records of one exec, in the order the eBPF programs send them:
//! success: ENTER(T) → ARGS(T)* → SCHED(T → N) → PATH(N)* → EXIT(N);
//! failure: ENTER(T) → PATH(T)* → EXIT(T).

use super::*;
use crate::read::record::*;

fn origin(tid: u32, pid: u32, mono_ns: u64) -> Origin {
    Origin { tid, pid, mono_ns }
}

fn enter(tid: u32, pid: u32, name: &[u8]) -> Record {
    enter_at(tid, pid, name, 1_000)
}

fn enter_at(tid: u32, pid: u32, name: &[u8], mono_ns: u64) -> Record {
    Record::ExecEnter(ExecEnter {
        compat: false,
        origin: origin(tid, pid, mono_ns),
        syscall: 59,
        regs: [tid as u64, 2, 3, 4, 5, 6],
        old_uid: tid + 1000,
        old_caps: Caps {
            inheritable: 1,
            permitted: 2,
            effective: 3,
            ambient: tid as u64,
        },
        filename: Ok(name.to_vec()),
    })
}

fn args(tid: u32, pid: u32, offset: u64, data: &[u8]) -> Record {
    Record::ExecArgs(ExecArgs {
        origin: origin(tid, pid, 2_000),
        offset,
        data: data.to_vec(),
    })
}

fn sched(tid: u32, pid: u32, new_tid: u32, argc: u32, total: u64) -> Record {
    Record::ExecSched(ExecSched {
        filename: None,
        origin: origin(tid, pid, 3_000),
        new_tid,
        argc,
        args_total: total,
        args_missing: 0,
        interp: None,
    })
}

fn path(tid: u32, pid: u32, kind: PathKind, data: &[u8]) -> Record {
    Record::Path(PathRecord {
        deleted: false,
        origin: origin(tid, pid, 4_000),
        kind,
        truncated: false,
        data: data.to_vec(),
    })
}

fn exit(tid: u32, pid: u32, ret: i64) -> Record {
    Record::ExecExit(Box::new(ExecExit {
        origin: origin(tid, pid, 5_000),
        ret,
        task: TaskInfo::default(),
        ns: TaskNs::default(),
        exe: None,
        caps: Caps::default(),
        proctitle: Vec::new(),
    }))
}

fn feed(asm: &mut Assembler, events: Vec<Record>) -> Vec<Assembled> {
    events.into_iter().filter_map(|e| asm.push(e)).collect()
}

fn walked(components: &[u8]) -> WalkedPath {
    WalkedPath {
        deleted: false,
        components: components.to_vec(),
        truncated: false,
    }
}

#[test]
fn successful_exec_in_order_yields_one_assembled_exec_at_exit() {
    let mut asm = Assembler::default();
    let records = vec![
        enter(100, 100, b"/bin/echo"),
        args(100, 100, 0, b"/bin/echo\0hel"),
        args(100, 100, 13, b"lo\0"),
        sched(100, 100, 100, 2, 16),
        path(100, 100, PathKind::ExecCwd, b"tmp\0"),
        path(100, 100, PathKind::ExecExe, b"echo\0bin\0usr\0"),
        path(
            100,
            100,
            PathKind::ExecCgroup,
            b"ssh.service\0system.slice\0",
        ),
    ];
    for r in records {
        assert!(
            asm.push(r).is_none(),
            "nothing comes out before the exit record"
        );
    }
    let a = asm.push(exit(100, 100, 0)).expect("assembled at exit");
    assert_eq!(a.start.enter.origin.tid, 100);
    assert_eq!(a.start.enter.syscall, 59);
    assert_eq!(a.start.enter.regs, [100, 2, 3, 4, 5, 6]);
    assert_eq!(a.start.enter.old_uid, 1100);
    assert_eq!(a.start.enter.old_caps.ambient, 100);
    assert_eq!(a.start.enter.filename, Ok(b"/bin/echo".to_vec()));
    assert_eq!(a.start.args, b"/bin/echo\0hello\0");
    assert!(!a.start.args_gap);
    assert_eq!(
        a.start.sched,
        Some(Sched {
            filename: None,
            argc: 2,
            args_total: 16,
            args_missing: 0,
            interp: None
        })
    );
    assert_eq!(a.start.cwd, Some(walked(b"tmp\0")));
    assert_eq!(a.start.exe, Some(walked(b"echo\0bin\0usr\0")));
    assert_eq!(a.start.cgroup, Some(walked(b"ssh.service\0system.slice\0")));
    assert_eq!(a.exit.origin.tid, 100);
    assert_eq!(a.exit.ret, 0);
    assert_eq!(asm.incomplete, 0);
    // The exec is gone once assembled: a late exit for the same tid is an orphan.
    assert!(asm.push(exit(100, 100, 0)).is_none());
    assert_eq!(asm.incomplete, 1);
}

#[test]
fn failed_exec_has_no_args_and_no_sched() {
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            enter(200, 200, b"/nonexistent"),
            path(200, 200, PathKind::ExecCwd, b"root\0"),
            path(200, 200, PathKind::ExecExe, b"bash\0bin\0usr\0"),
            path(200, 200, PathKind::ExecCgroup, b""),
            exit(200, 200, -2),
        ],
    );
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(a.start.enter.filename, Ok(b"/nonexistent".to_vec()));
    assert!(a.start.args.is_empty());
    assert!(!a.start.args_gap);
    assert_eq!(a.start.sched, None);
    assert_eq!(a.exit.ret, -2);
    assert_eq!(a.start.cwd, Some(walked(b"root\0")));
    assert_eq!(a.start.cgroup, Some(walked(b"")));
    assert_eq!(asm.incomplete, 0);
}

#[test]
fn non_leader_thread_exec_comes_out_under_the_new_tid_with_its_args() {
    // Thread 301 of process 300 execs: it takes over tid 300.
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            enter(301, 300, b"/bin/true"),
            args(301, 300, 0, b"/bin/true\0"),
            sched(301, 300, 300, 1, 10),
            path(300, 300, PathKind::ExecCwd, b""),
            path(300, 300, PathKind::ExecCgroup, b""),
            path(300, 300, PathKind::ExecExe, b"true\0bin\0usr\0"),
        ],
    );
    assert!(out.is_empty());
    // The old tid no longer has a pending exec.
    assert!(asm.push(exit(301, 300, 0)).is_none());
    assert_eq!(asm.incomplete, 1);
    let a = asm
        .push(exit(300, 300, 0))
        .expect("assembled under the new tid");
    assert_eq!(
        a.start.enter.origin.tid, 301,
        "the enter header keeps the tid before exec"
    );
    assert_eq!(a.exit.origin.tid, 300);
    assert_eq!(
        a.start.enter.old_uid, 1301,
        "credentials from the enter of the execing thread"
    );
    assert_eq!(a.start.enter.filename, Ok(b"/bin/true".to_vec()));
    assert_eq!(a.start.args, b"/bin/true\0");
    assert_eq!(a.start.sched.as_ref().map(|s| s.argc), Some(1));
    assert_eq!(a.start.exe, Some(walked(b"true\0bin\0usr\0")));
    assert_eq!(asm.incomplete, 1);
}

#[test]
fn sched_onto_a_tid_with_a_pending_exec_replaces_it() {
    // The leader's own exec (its exit record lost) is pending when a sibling's exec takes over
    // its tid: that exec can never be assembled. The kernel counted its lost exit
    // (CTR_EXIT_LOST), so the assembler must not count it again.
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            enter(400, 400, b"/leader"),
            enter(401, 400, b"/sibling"),
            sched(401, 400, 400, 0, 0),
            path(400, 400, PathKind::ExecCwd, b""),
            path(400, 400, PathKind::ExecExe, b"x\0"),
            path(400, 400, PathKind::ExecCgroup, b""),
            exit(400, 400, 0),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].start.enter.filename, Ok(b"/sibling".to_vec()));
    assert_eq!(asm.incomplete, 0);
    assert_eq!(
        asm.pending(),
        0,
        "the leader's exec is gone, not left behind"
    );
}

#[test]
fn args_offset_mismatch_sets_args_gap_and_stops_args_at_the_gap() {
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            enter(10, 10, b"/bin/x"),
            args(10, 10, 0, b"abcd"),
            // The chunk at offset 4 was lost.
            args(10, 10, 8, b"ijkl"),
            // Even a late chunk that would fit again is not appended after a gap.
            args(10, 10, 4, b"efgh"),
            sched(10, 10, 10, 1, 12),
            path(10, 10, PathKind::ExecCwd, b""),
            path(10, 10, PathKind::ExecExe, b"x\0"),
            path(10, 10, PathKind::ExecCgroup, b""),
            exit(10, 10, 0),
        ],
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].start.args_gap);
    assert_eq!(out[0].start.args, b"abcd");
    assert_eq!(asm.incomplete, 0);
}

#[test]
fn missing_first_chunk_or_duplicate_chunk_sets_args_gap() {
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            enter(11, 11, b"/x"),
            args(11, 11, 16384, b"tail\0"),
            sched(11, 11, 11, 1, 16389),
            exit(11, 11, 0),
        ],
    );
    assert!(out[0].start.args_gap);
    assert!(out[0].start.args.is_empty());

    let out = feed(
        &mut asm,
        vec![
            enter(12, 12, b"/x"),
            args(12, 12, 0, b"ab"),
            args(12, 12, 0, b"ab"),
            exit(12, 12, 0),
        ],
    );
    assert!(out[0].start.args_gap);
    assert_eq!(out[0].start.args, b"ab");
}

#[test]
fn interleaved_records_of_two_threads_assemble_separately() {
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            enter(1, 1, b"/bin/a"),
            enter(2, 2, b"/bin/b"),
            args(2, 2, 0, b"b\0"),
            args(1, 1, 0, b"a\0"),
            args(2, 2, 2, b"bb\0"),
            sched(1, 1, 1, 1, 2),
            path(1, 1, PathKind::ExecCwd, b"one\0"),
            sched(2, 2, 2, 2, 5),
            path(2, 2, PathKind::ExecCwd, b"two\0"),
            path(2, 2, PathKind::ExecCgroup, b""),
            exit(2, 2, 0),
            path(1, 1, PathKind::ExecExe, b"a\0bin\0"),
            path(1, 1, PathKind::ExecCgroup, b""),
            exit(1, 1, 0),
        ],
    );
    assert_eq!(out.len(), 2);
    let (b, a) = (&out[0], &out[1]);
    assert_eq!(b.start.enter.filename, Ok(b"/bin/b".to_vec()));
    assert_eq!(b.start.args, b"b\0bb\0");
    assert_eq!(b.start.cwd, Some(walked(b"two\0")));
    assert_eq!(b.start.exe, None);
    assert_eq!(a.start.enter.filename, Ok(b"/bin/a".to_vec()));
    assert_eq!(a.start.args, b"a\0");
    assert_eq!(a.start.cwd, Some(walked(b"one\0")));
    assert_eq!(a.start.exe, Some(walked(b"a\0bin\0")));
    assert!(!a.start.args_gap && !b.start.args_gap);
    assert_eq!(asm.incomplete, 1, "thread 2's exe record is missing");
}

#[test]
fn exit_without_enter_counts_an_orphan_and_yields_nothing() {
    let mut asm = Assembler::default();
    assert!(asm.push(exit(7, 7, 0)).is_none());
    assert_eq!(asm.incomplete, 1);
}

#[test]
fn args_sched_and_path_without_enter_are_ignored() {
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            args(8, 8, 0, b"x\0"),
            sched(8, 8, 8, 1, 2),
            path(8, 8, PathKind::ExecCwd, b""),
        ],
    );
    assert!(out.is_empty());
    assert_eq!(
        asm.incomplete, 0,
        "kernel-started execs have no enter and are not a loss"
    );
}

#[test]
fn second_enter_for_the_same_tid_replaces_the_first() {
    let mut asm = Assembler::default();
    let out = feed(
        &mut asm,
        vec![
            enter(9, 9, b"/first"),
            args(9, 9, 0, b"first\0"),
            path(9, 9, PathKind::ExecCwd, b"old\0"),
            enter(9, 9, b"/second"),
            exit(9, 9, -2),
        ],
    );
    assert_eq!(
        asm.incomplete, 1,
        "the second one's missing paths (the first's lost exit is the kernel's count)"
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].start.enter.filename, Ok(b"/second".to_vec()));
    assert!(
        out[0].start.args.is_empty(),
        "nothing of the first exec leaks into the second"
    );
    assert_eq!(out[0].start.cwd, None);
}

#[test]
fn stale_pending_execs_are_swept_when_the_table_grows() {
    let mut asm = Assembler::default();
    for tid in 1..=4096u32 {
        asm.push(enter_at(tid, tid, b"/x", 0));
    }
    assert_eq!(asm.pending(), 4096, "nothing is stale yet");
    asm.push(enter_at(10_000, 10_000, b"/fresh", 61_000_000_000));
    assert_eq!(
        asm.pending(),
        1,
        "their exits were lost (and counted by the kernel)"
    );
    assert_eq!(asm.incomplete, 0);
    assert!(asm.push(exit(1, 1, 0)).is_none());
    assert_eq!(asm.incomplete, 1, "an exit whose exec was swept");
    let a = asm
        .push(exit(10_000, 10_000, 0))
        .expect("the fresh exec survives the sweep");
    assert_eq!(a.start.enter.filename, Ok(b"/fresh".to_vec()));
}

#[test]
fn to_path_reverses_leaf_first_components() {
    assert_eq!(walked(b"c\0b\0a\0").to_path(), b"/a/b/c");
    assert_eq!(walked(b"true\0bin\0usr\0").to_path(), b"/usr/bin/true");
    assert_eq!(walked(b"only\0").to_path(), b"/only");
}

#[test]
fn to_path_of_the_root_is_slash() {
    assert_eq!(walked(b"").to_path(), b"/");
    let truncated = WalkedPath {
        deleted: false,
        components: Vec::new(),
        truncated: true,
    };
    assert_eq!(truncated.to_path(), b"/");
}

#[test]
fn to_path_tolerates_a_missing_final_nul() {
    assert_eq!(walked(b"c\0b").to_path(), b"/b/c");
}

#[test]
fn to_path_preserves_spaces_newlines_and_invalid_utf8() {
    let comps = b"we ird\0new\nline\0\xff\xfe\x80\0\"q\"\0";
    assert_eq!(
        walked(comps).to_path(),
        b"/\"q\"/\xff\xfe\x80/new\nline/we ird"
    );
}

mod anomaly;
mod names;

#[test]
fn argument_bytes_of_pending_execs_are_bounded_and_the_cut_is_said() {
    let mut asm = Assembler::default();
    let chunk = vec![b'a'; 16384];
    let per_exec = 64;
    let execs = (exec::MAX_PENDING_ARG_BYTES / (chunk.len() * per_exec)) as u32 + 8;
    // Execs that stay pending (their exit never comes), each with 1 MiB of arguments.
    for tid in 1..=execs {
        asm.push(enter(tid, tid, b"/bin/true"));
        for i in 0..per_exec {
            asm.push(args(tid, tid, (i * chunk.len()) as u64, &chunk));
        }
    }
    assert!(asm.pending_arg_bytes() <= exec::MAX_PENDING_ARG_BYTES);
    // The last exec got nothing kept: it completes with its arguments cut (args_gap).
    let out = feed(&mut asm, vec![exit(execs, execs, -2)]);
    assert!(out[0].start.args_gap);
    // A completed exec gives its bytes back.
    let before = asm.pending_arg_bytes();
    let out = feed(&mut asm, vec![exit(1, 1, -2)]);
    assert_eq!(out[0].start.args.len(), per_exec * chunk.len());
    assert_eq!(asm.pending_arg_bytes(), before - per_exec * chunk.len());
}

#[test]
fn past_the_bound_the_oldest_pending_exec_is_given_up_and_counted() {
    let mut asm = Assembler::default();
    for tid in 1..=4100u32 {
        asm.push(enter_at(tid, tid, b"/x", tid as u64));
    }
    assert_eq!(asm.pending(), 4096);
    assert_eq!(asm.incomplete, 4, "given up, never silent");
    // The four oldest are gone; the newest are still there.
    assert!(asm.push(exit(4, 4, 0)).is_none());
    assert!(asm.push(exit(4100, 4100, -2)).is_some());
}
