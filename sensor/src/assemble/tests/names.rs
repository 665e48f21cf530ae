//! The exec's name when it could not be read at entry, and paths of files that are gone.

use super::*;

fn unreadable_enter(tid: u32) -> Record {
    let Record::ExecEnter(mut e) = enter(tid, tid, b"") else {
        unreachable!()
    };
    e.filename = Err(-14);
    Record::ExecEnter(e)
}

fn paths(tid: u32) -> Vec<Record> {
    vec![
        path(tid, tid, PathKind::ExecCwd, b""),
        path(tid, tid, PathKind::ExecExe, b"true\0bin\0usr\0"),
        path(tid, tid, PathKind::ExecCgroup, b""),
    ]
}

#[test]
fn a_failed_exec_takes_the_name_read_again_at_exit() {
    let mut asm = Assembler::default();
    let mut records = vec![unreadable_enter(300)];
    records.push(path(300, 300, PathKind::ExecName, b"/nonexistent/x"));
    records.extend(paths(300));
    records.push(exit(300, 300, -2));
    let out = feed(&mut asm, records);
    assert_eq!(out[0].start.filename(), b"/nonexistent/x");
}

#[test]
fn a_successful_exec_takes_the_name_the_kernel_opened() {
    let mut asm = Assembler::default();
    let Record::ExecSched(mut s) = sched(301, 301, 301, 1, 0) else {
        unreachable!()
    };
    s.filename = Some(b"/usr/bin/true".to_vec());
    let mut records = vec![unreadable_enter(301), Record::ExecSched(s)];
    records.extend(paths(301));
    records.push(exit(301, 301, 0));
    let out = feed(&mut asm, records);
    assert_eq!(out[0].start.filename(), b"/usr/bin/true");
    // Read at entry, the caller's name wins over the kernel's.
    let mut records = vec![enter(302, 302, b"true")];
    let Record::ExecSched(mut s) = sched(302, 302, 302, 1, 0) else {
        unreachable!()
    };
    s.filename = Some(b"/usr/bin/true".to_vec());
    records.push(Record::ExecSched(s));
    records.extend(paths(302));
    records.push(exit(302, 302, 0));
    assert_eq!(feed(&mut asm, records)[0].start.filename(), b"true");
}

#[test]
fn nothing_read_at_all_is_an_empty_name() {
    let mut asm = Assembler::default();
    let mut records = vec![unreadable_enter(303)];
    records.extend(paths(303));
    records.push(exit(303, 303, -14));
    assert_eq!(feed(&mut asm, records)[0].start.filename(), b"");
}

#[test]
fn a_deleted_file_and_a_memfd_read_as_d_path_writes_them() {
    let gone = WalkedPath {
        components: b"sl\0gt\0tmp\0".to_vec(),
        truncated: false,
        deleted: true,
    };
    assert_eq!(gone.to_path(), b"/tmp/gt/sl (deleted)");
    let memfd = WalkedPath {
        components: b"memfd:payload\0".to_vec(),
        truncated: false,
        deleted: true,
    };
    assert_eq!(memfd.to_path(), b"/memfd:payload (deleted)");
}
