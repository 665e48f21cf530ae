//! Decoding of ring-buffer records, serialised exactly as the eBPF programs send them: the fixed
//! part plus `len` bytes for the variable-length kinds, the whole struct for SCHED and EXIT.

use std::mem::offset_of;

use sensor_common as wire;

use super::record::*;
use super::{DecodeError, Record};

fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: the wire types are `repr(C)` integers and byte arrays with no implicit padding
    // (checked by `wire_structs_have_no_implicit_padding`), so every byte is initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

fn origin_of(h: &wire::Header) -> Origin {
    Origin {
        tid: h.tid,
        pid: h.pid,
        mono_ns: h.mono_ns,
    }
}

fn header(kind: u32, tid: u32) -> wire::Header {
    let mut h = wire::Header::default();
    (h.kind, h.tid, h.pid, h.mono_ns) = (kind, tid, tid - 1, 0x0102_0304_0506_0708);
    h
}

fn short(kind: &'static str, len: usize, need: usize) -> Result<Record, DecodeError> {
    Err(DecodeError::Short { kind, len, need })
}

fn bad(field: &'static str, value: usize, len: usize) -> Result<Record, DecodeError> {
    Err(DecodeError::BadLength { field, value, len })
}

fn enter(name: &[u8]) -> wire::ExecEnter {
    // SAFETY: plain integers and byte arrays: all-zero is a valid value.
    let mut e: wire::ExecEnter = unsafe { std::mem::zeroed() };
    e.hdr = header(wire::KIND_EXEC_ENTER, 4242);
    e.syscall_nr = 59;
    e.filename_len = name.len() as i32;
    e.regs = [0x7ffd_1000, 0x7ffd_2000, 0x7ffd_3000, 4, 5, 6];
    e.old_uid = 1000;
    e.old_caps = caps(0x20);
    e.filename[..name.len()].copy_from_slice(name);
    // Bytes beyond `filename_len` (scratch map leftovers) are never sent.
    e.filename[name.len()..name.len() + 8].copy_from_slice(b"LEFTOVER");
    e
}

fn caps(base: u64) -> wire::Caps {
    let mut c = wire::Caps::default();
    (c.inheritable, c.permitted, c.effective, c.ambient) = (base, base + 1, base + 2, base + 3);
    c
}

fn enter_record(e: &wire::ExecEnter) -> Vec<u8> {
    let len = e.filename_len.max(0) as usize;
    bytes_of(e)[..wire::EXEC_ENTER_FIXED + len].to_vec()
}

fn args(offset: u64, data: &[u8]) -> Vec<u8> {
    // SAFETY: as in `enter`.
    let mut a: wire::ExecArgs = unsafe { std::mem::zeroed() };
    a.hdr = header(wire::KIND_EXEC_ARGS, 4242);
    a.offset = offset;
    a.len = data.len() as u32;
    a.data[..data.len()].copy_from_slice(data);
    bytes_of(&a)[..wire::EXEC_ARGS_FIXED + data.len()].to_vec()
}

fn sched(interpreted: u32, interp: &[u8], interp_len: i32) -> wire::ExecSched {
    // SAFETY: as in `enter`.
    let mut s: wire::ExecSched = unsafe { std::mem::zeroed() };
    s.hdr = header(wire::KIND_EXEC_SCHED, 4243);
    s.new_tid = 4241;
    s.argc = 3;
    s.args_total = 70_000;
    s.args_missing = 1234;
    s.interpreted = interpreted;
    s.interp_len = interp_len;
    s.interp[..interp.len()].copy_from_slice(interp);
    s
}

fn path(which: u32, truncated: u32, data: &[u8]) -> Vec<u8> {
    // SAFETY: as in `enter`.
    let mut p: wire::ExecPath = unsafe { std::mem::zeroed() };
    p.hdr = header(wire::KIND_EXEC_PATH, 4241);
    p.which = which;
    p.len = data.len() as u32;
    p.truncated = truncated;
    p.data[..data.len()].copy_from_slice(data);
    bytes_of(&p)[..wire::EXEC_PATH_FIXED + data.len()].to_vec()
}

fn exit() -> wire::ExecExit {
    // SAFETY: as in `enter`.
    let mut x: wire::ExecExit = unsafe { std::mem::zeroed() };
    x.hdr = header(wire::KIND_EXEC_EXIT, 4241);
    x.ret = -13;
    (x.task.ppid, x.task.auid, x.task.ses) = (1, 1000, 7);
    (
        x.task.uid,
        x.task.gid,
        x.task.euid,
        x.task.suid,
        x.task.fsuid,
    ) = (1000, 1001, 0, 1002, 1003);
    (x.task.egid, x.task.sgid, x.task.fsgid) = (1004, 1005, 1006);
    (
        x.ns.ns_pid,
        x.ns.pid_ns,
        x.ns.mnt_ns,
        x.ns.net_ns,
        x.ns.uts_ns,
    ) = (12, 4026531836, 4026531841, 4026531840, 4026531838);
    x.ns.cgroup_id = 0xdead_beef_0000_0001;
    (x.exe.ino, x.exe.dev, x.exe.mode) = (0x1_0000_0001, (254 << 20) | 3, 0o100755);
    (x.exe.rdev, x.exe.uid, x.exe.gid) = ((136 << 20) | 1, 2, 3);
    x.caps = caps(0x1ff_ffff_ffff);
    x.has_exe = 1;
    x.read_errors = 2;
    x.task.comm[..4].copy_from_slice(b"true");
    x.task.tty[..4].copy_from_slice(b"pts0");
    x.proctitle_len = 10;
    x.proctitle[..10].copy_from_slice(b"/bin/true\0");
    x
}

fn decode(rec: &[u8]) -> Result<Record, DecodeError> {
    Record::try_from(rec)
}

/// Decodes `rec` from an odd address inside a larger buffer filled with junk.
fn decode_unaligned(rec: &[u8]) -> Result<Record, DecodeError> {
    let mut buf = vec![0xa5u8; rec.len() + 16];
    let off = if (buf.as_ptr() as usize).is_multiple_of(2) {
        3
    } else {
        4
    };
    buf[off..off + rec.len()].copy_from_slice(rec);
    let slice = &buf[off..off + rec.len()];
    assert_eq!(slice.as_ptr() as usize % 2, 1, "not at an odd address");
    Record::try_from(slice)
}

#[test]
fn wire_structs_have_no_implicit_padding() {
    use wire::*;
    assert_eq!(size_of::<Header>(), 24);
    assert_eq!(EXEC_ENTER_FIXED, offset_of!(ExecEnter, filename));
    assert_eq!(size_of::<Caps>(), 4 * 8);
    assert_eq!(EXEC_ENTER_FIXED, 24 + 4 + 4 + 48 + 4 + 4 + 32);
    assert_eq!(size_of::<ExecEnter>(), EXEC_ENTER_FIXED + FILENAME_MAX);
    assert_eq!(EXEC_ARGS_FIXED, offset_of!(ExecArgs, data));
    assert_eq!(EXEC_ARGS_FIXED, 24 + 8 + 4 + 4);
    assert_eq!(size_of::<ExecArgs>(), EXEC_ARGS_FIXED + ARGS_CHUNK);
    assert_eq!(EXEC_PATH_FIXED, offset_of!(ExecPath, data));
    assert_eq!(EXEC_PATH_FIXED, 24 + 4 * 4);
    let path_data = PATH_BUF + PATH_NAME_MAX;
    assert_eq!(size_of::<ExecPath>(), EXEC_PATH_FIXED + path_data);
    assert_eq!(size_of::<ExecSched>(), 24 + 4 + 4 + 8 + 8 + 4 + 4 + 256);
    assert_eq!(size_of::<InodeFacts>(), 8 + 6 * 4);
    assert_eq!(size_of::<TaskNs>(), 6 * 4 + 8);
    // ppid..fsgid and the explicit pad, TaskNs, exe, caps, has_exe, read_errors, comm, tty, ...
    let exit = 24 + 8 + 12 * 4 + 32 + 32 + 32 + 4 + 4 + 16 + 64 + 4 + 4 + PROCTITLE_MAX;
    assert_eq!(size_of::<ExecExit>(), exit);
    assert_eq!(size_of::<Abend>(), 24 + 6 * 4 + 32 + 16);
}

#[test]
fn enter_decodes_header_regs_and_exactly_filename_len_bytes() {
    let e = enter(b"/bin/true");
    let rec = enter_record(&e);
    assert_eq!(rec.len(), wire::EXEC_ENTER_FIXED + 9);
    let want = Record::ExecEnter(ExecEnter {
        compat: false,
        origin: origin_of(&e.hdr),
        syscall: 59,
        regs: e.regs,
        old_uid: 1000,
        old_caps: caps(0x20),
        filename: Ok(b"/bin/true".to_vec()),
    });
    assert_eq!(decode(&rec), Ok(want.clone()));
    assert_eq!(decode_unaligned(&rec), Ok(want));
}

#[test]
fn enter_keeps_untrusted_filename_bytes_verbatim() {
    let name = b"./a b\n\xff\xfe\"x";
    let rec = enter_record(&enter(name));
    match decode(&rec) {
        Ok(Record::ExecEnter(ExecEnter { filename, .. })) => {
            assert_eq!(filename, Ok(name.to_vec()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn enter_with_empty_filename_decodes_to_empty_name() {
    let rec = enter_record(&enter(b""));
    assert_eq!(rec.len(), wire::EXEC_ENTER_FIXED);
    match decode(&rec) {
        Ok(Record::ExecEnter(ExecEnter { filename, .. })) => assert_eq!(filename, Ok(Vec::new())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn enter_with_full_length_filename_decodes() {
    let name = vec![b'x'; wire::FILENAME_MAX - 8];
    let rec = enter_record(&enter(&name));
    match decode_unaligned(&rec) {
        Ok(Record::ExecEnter(ExecEnter { filename, .. })) => assert_eq!(filename, Ok(name)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn enter_with_negative_filename_len_is_a_read_error_carrying_the_errno() {
    let mut e = enter(b"");
    e.filename_len = -libc::EFAULT;
    let rec = enter_record(&e);
    assert_eq!(rec.len(), wire::EXEC_ENTER_FIXED);
    let got = decode_unaligned(&rec);
    let Ok(Record::ExecEnter(ExecEnter { filename, regs, .. })) = got else {
        panic!("{got:?}")
    };
    assert_eq!(filename, Err(-libc::EFAULT));
    assert_eq!(regs, e.regs);
}

#[test]
fn args_chunk_decodes_offset_and_len_bytes() {
    let data = b"/bin/echo\0a b\0\0\xff";
    let rec = args(16384, data);
    let want = Record::ExecArgs(ExecArgs {
        origin: origin_of(&header(wire::KIND_EXEC_ARGS, 4242)),
        offset: 16384,
        data: data.to_vec(),
    });
    assert_eq!(decode(&rec), Ok(want.clone()));
    assert_eq!(decode_unaligned(&rec), Ok(want));
}

/// A small argument area is read into a record of `ARGS_SMALL` bytes reserved in the ring
/// buffer: what lies past its `len` is whatever the ring held before, and is not argv.
#[test]
fn small_args_record_decodes_its_len_bytes_not_its_capacity() {
    // SAFETY: as in `enter`.
    let mut a: wire::ExecArgsOf<{ wire::ARGS_SMALL }> = unsafe { std::mem::zeroed() };
    a.hdr = header(wire::KIND_EXEC_ARGS, 4242);
    a.len = 5;
    a.data[..8].copy_from_slice(b"true\0old");
    let rec = bytes_of(&a).to_vec();
    assert_eq!(rec.len(), wire::EXEC_ARGS_FIXED + wire::ARGS_SMALL);
    let want = Record::ExecArgs(ExecArgs {
        origin: origin_of(&header(wire::KIND_EXEC_ARGS, 4242)),
        offset: 0,
        data: b"true\0".to_vec(),
    });
    assert_eq!(decode_unaligned(&rec), Ok(want));
}

#[test]
fn args_chunk_of_full_size_decodes() {
    let data = vec![0x41u8; wire::ARGS_CHUNK];
    let rec = args(0, &data);
    assert_eq!(rec.len(), size_of::<wire::ExecArgs>());
    let got = decode_unaligned(&rec);
    assert!(
        matches!(&got, Ok(Record::ExecArgs(ExecArgs { data: d, offset: 0, .. })) if *d == data)
    );
}

#[test]
fn sched_decodes_counts_and_interpreter_of_a_script() {
    let s = sched(1, b"/bin/sh", 7);
    let want = Record::ExecSched(ExecSched {
        filename: None,
        origin: origin_of(&s.hdr),
        new_tid: 4241,
        argc: 3,
        args_total: 70_000,
        args_missing: 1234,
        interp: Some(b"/bin/sh".to_vec()),
    });
    assert_eq!(decode(bytes_of(&s)), Ok(want.clone()));
    assert_eq!(decode_unaligned(bytes_of(&s)), Ok(want));
}

#[test]
fn sched_interp_is_none_unless_interpreted_and_readable() {
    let interp = |s: &wire::ExecSched| match decode(bytes_of(s)) {
        Ok(Record::ExecSched(ExecSched { interp, .. })) => interp,
        other => panic!("{other:?}"),
    };
    // Not a script: bprm->interp == bprm->filename.
    assert_eq!(interp(&sched(0, b"/bin/true", 9)), None);
    // The interpreter name could not be read.
    assert_eq!(interp(&sched(1, b"", -libc::EFAULT)), None);
    // The name stops at its NUL even if interp_len says more.
    let got = interp(&sched(1, b"/bin/sh\0junk", 12));
    assert_eq!(got.as_deref(), Some(&b"/bin/sh"[..]));
    // interp_len larger than the array is clamped, not a panic.
    assert_eq!(interp(&sched(1, &[b'a'; 256], 300)), Some(vec![b'a'; 256]));
}

#[test]
fn path_decodes_which_truncated_and_len_bytes() {
    let data = b"true\0bin\0usr\0";
    let rec = path(wire::PATH_EXE, 1, data);
    assert_eq!(rec.len(), wire::EXEC_PATH_FIXED + data.len());
    let want = Record::Path(PathRecord {
        deleted: false,
        origin: origin_of(&header(wire::KIND_EXEC_PATH, 4241)),
        kind: PathKind::ExecExe,
        truncated: true,
        data: data.to_vec(),
    });
    assert_eq!(decode(&rec), Ok(want.clone()));
    assert_eq!(decode_unaligned(&rec), Ok(want));
}

#[test]
fn path_of_the_root_is_an_empty_record() {
    let rec = path(wire::PATH_CWD, 0, b"");
    let want = Record::Path(PathRecord {
        deleted: false,
        origin: origin_of(&header(wire::KIND_EXEC_PATH, 4241)),
        kind: PathKind::ExecCwd,
        truncated: false,
        data: vec![],
    });
    assert_eq!(decode_unaligned(&rec), Ok(want));
}

#[test]
fn path_of_an_unknown_kind_is_an_error() {
    let rec = path(99, 0, b"weird\0");
    assert_eq!(decode(&rec), Err(DecodeError::UnknownPath(99)));
}

#[test]
fn exit_decodes_every_field_and_cuts_the_arrays() {
    let x = exit();
    let want = Record::ExecExit(Box::new(ExecExit {
        origin: origin_of(&x.hdr),
        ret: -13,
        task: TaskInfo {
            personality: 0,
            pid: 4240,
            tid: 4241,
            ppid: 1,
            auid: 1000,
            ses: 7,
            uid: 1000,
            gid: 1001,
            euid: 0,
            suid: 1002,
            fsuid: 1003,
            egid: 1004,
            sgid: 1005,
            fsgid: 1006,
            comm: b"true".to_vec(),
            tty: Some(b"pts0".to_vec()),
            exe: None,
        },
        ns: x.ns,
        exe: Some(x.exe),
        caps: x.caps,
        proctitle: b"/bin/true\0".to_vec(),
    }));
    assert_eq!(decode(bytes_of(&x)), Ok(want.clone()));
    let got = decode_unaligned(bytes_of(&x)).unwrap();
    assert_eq!(got, want);
    assert_eq!(got.origin(), &origin_of(&x.hdr));
}

#[test]
fn exit_without_exe_tty_or_proctitle() {
    let mut x = exit();
    (x.has_exe, x.proctitle_len) = (0, 0);
    x.task.tty = [0; 64];
    // A length past the array is cut at the array.
    let Ok(Record::ExecExit(got)) = decode(bytes_of(&x)) else {
        panic!()
    };
    assert_eq!(
        (got.exe, got.task.tty, got.proctitle.len()),
        (None, None, 0)
    );
    x.proctitle_len = 10_000;
    let Ok(Record::ExecExit(got)) = decode(bytes_of(&x)) else {
        panic!()
    };
    assert_eq!(got.proctitle.len(), wire::PROCTITLE_MAX);
}

#[test]
fn origin_accessor_returns_each_kinds_sender() {
    let e = enter(b"/x");
    let origin = |rec: &[u8]| *decode(rec).unwrap().origin();
    assert_eq!(origin(&enter_record(&e)), origin_of(&e.hdr));
    assert_eq!(
        origin(&args(0, b"x\0")),
        origin_of(&header(wire::KIND_EXEC_ARGS, 4242))
    );
    assert_eq!(origin(bytes_of(&sched(0, b"", 0))).tid, 4243);
    assert_eq!(origin(&path(wire::PATH_CGROUP, 0, b"")).tid, 4241);
}

#[test]
fn records_shorter_than_the_header_are_short() {
    let x = exit();
    for n in [0, 1, 23] {
        assert_eq!(decode(&bytes_of(&x)[..n]), short("header", n, 24));
    }
}

#[test]
fn records_shorter_than_their_fixed_part_are_short() {
    let e = enter_record(&enter(b"/bin/true"));
    let n = wire::EXEC_ENTER_FIXED - 1;
    assert_eq!(decode(&e[..n]), short("exec enter", n, n + 1));

    let a = args(0, b"abc");
    let n = wire::EXEC_ARGS_FIXED - 1;
    assert_eq!(decode(&a[..n]), short("exec args", n, n + 1));

    let p = path(wire::PATH_CWD, 0, b"a\0");
    let n = wire::EXEC_PATH_FIXED - 1;
    assert_eq!(decode_unaligned(&p[..n]), short("exec path", n, n + 1));

    let s = sched(0, b"", 0);
    let n = size_of::<wire::ExecSched>() - 1;
    assert_eq!(decode(&bytes_of(&s)[..n]), short("exec sched", n, n + 1));

    let x = exit();
    let n = size_of::<wire::ExecExit>() - 1;
    assert_eq!(
        decode_unaligned(&bytes_of(&x)[..n]),
        short("exec exit", n, n + 1)
    );
}

#[test]
fn length_field_beyond_the_record_is_bad_length() {
    let e = enter_record(&enter(b"/bin/true"));
    let cut = &e[..e.len() - 1];
    assert_eq!(decode(cut), bad("filename_len", 9, cut.len()));

    let a = args(0, b"abc\0");
    let cut = &a[..a.len() - 1];
    assert_eq!(decode_unaligned(cut), bad("len", 4, cut.len()));

    let p = path(wire::PATH_EXE, 0, b"true\0");
    let cut = &p[..p.len() - 2];
    assert_eq!(decode(cut), bad("len", 5, cut.len()));
}

#[test]
fn huge_length_field_is_bad_length_without_panic() {
    let mut a = args(0, b"");
    let at = offset_of!(wire::ExecArgs, len);
    a[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert_eq!(decode(&a), bad("len", u32::MAX as usize, a.len()));
    let mut e = enter_record(&enter(b""));
    let at = offset_of!(wire::ExecEnter, filename_len);
    e[at..at + 4].copy_from_slice(&i32::MAX.to_ne_bytes());
    assert_eq!(decode(&e), bad("filename_len", i32::MAX as usize, e.len()));
}

#[test]
fn unknown_kind_is_rejected() {
    for kind in [0, 99, u32::MAX] {
        let mut x = exit();
        x.hdr.kind = kind;
        assert_eq!(decode(bytes_of(&x)), Err(DecodeError::UnknownKind(kind)));
        let hdr_only = decode_unaligned(bytes_of(&x.hdr));
        assert_eq!(hdr_only, Err(DecodeError::UnknownKind(kind)));
    }
}
