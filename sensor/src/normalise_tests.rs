//! argv splitting, proctitle trimming, container ids, ELF interpreters and whole execs.

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::assemble::{Sched, WalkedPath};
use crate::event::{Inode, NameType};

/// A pid no process can have (above PID_MAX_LIMIT): `/proc/<pid>/exe` never resolves.
const NO_PID: u32 = 0x7fff_fff0;
const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A file under the temp dir, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str, contents: &[u8]) -> Temp {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("sensor-normalise-{}-{n}-{tag}", std::process::id()));
        std::fs::write(&p, contents).unwrap();
        Temp(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn args(v: &[&[u8]]) -> Vec<Vec<u8>> {
    v.iter().map(|a| a.to_vec()).collect()
}

fn trunc(missing_args: u32, missing_bytes: u64) -> Option<ArgvTruncation> {
    Some(ArgvTruncation {
        missing_args,
        missing_bytes,
    })
}

#[test]
fn split_argv_complete() {
    assert_eq!(
        split_argv(b"ls\0-l\0/tmp\0", 3, 11),
        (args(&[b"ls", b"-l", b"/tmp"]), None)
    );
}

#[test]
fn split_argv_truncated_mid_argument_keeps_the_partial_argument() {
    let (argv, t) = split_argv(b"ls\0-l\0/tm", 3, 11);
    assert_eq!(argv, args(&[b"ls", b"-l", b"/tm"]));
    assert_eq!(t, trunc(0, 2));
}

#[test]
fn split_argv_missing_whole_arguments() {
    assert_eq!(
        split_argv(b"ls\0-l\0", 4, 16),
        (args(&[b"ls", b"-l"]), trunc(2, 10))
    );
}

#[test]
fn split_argv_argc_larger_than_the_copied_area() {
    assert_eq!(split_argv(b"a\0", 2, 2), (args(&[b"a"]), trunc(1, 0)));
    assert_eq!(split_argv(b"", 2, 0), (Vec::new(), trunc(2, 0)));
}

#[test]
fn split_argv_keeps_empty_arguments() {
    assert_eq!(
        split_argv(b"a\0\0\0b\0", 4, 6),
        (args(&[b"a", b"", b"", b"b"]), None)
    );
    assert_eq!(split_argv(b"a\0\0", 2, 3), (args(&[b"a", b""]), None));
    assert_eq!(split_argv(b"\0\0", 2, 2), (args(&[b"", b""]), None));
}

#[test]
fn split_argv_of_an_empty_argv() {
    // Since Linux 5.18 the kernel turns an empty argv into [""] before sched_process_exec:
    // bprm->argc is 1 and the area is one NUL, which auditd logs as `argc=1 a0=""`.
    assert_eq!(split_argv(b"\0", 1, 1), (args(&[b""]), None));
    // Older kernels: argc 0 and an empty area, which they log as `argc=0`.
    assert_eq!(split_argv(b"", 0, 0), (Vec::new(), None));
}

#[test]
fn split_argv_keeps_untrusted_bytes() {
    let (argv, t) = split_argv(b"a b\0new\nline\0\xff\xfe\0", 3, 16);
    assert_eq!(argv, args(&[b"a b", b"new\nline", b"\xff\xfe"]));
    assert_eq!(t, None);
}

#[test]
fn rtrim_proctitle_drops_trailing_nuls() {
    assert_eq!(rtrim_proctitle(b"ls\0-l\0"), b"ls\0-l");
    assert_eq!(rtrim_proctitle(b"ls\0\0\0"), b"ls");
    assert_eq!(rtrim_proctitle(b"\0\0\0"), b"");
}

#[test]
fn rtrim_proctitle_of_a_single_byte() {
    assert_eq!(rtrim_proctitle(b"\0"), b"");
    assert_eq!(rtrim_proctitle(b"\x01"), b"");
    assert_eq!(rtrim_proctitle(b"x"), b"x");
    assert_eq!(rtrim_proctitle(b""), b"");
}

#[test]
fn rtrim_proctitle_keeps_all_printable_and_inner_nuls() {
    assert_eq!(
        rtrim_proctitle(b"/bin/sh\0-c\0echo hi"),
        b"/bin/sh\0-c\0echo hi"
    );
    assert_eq!(rtrim_proctitle(b" ~"), b" ~");
    assert_eq!(rtrim_proctitle(b"a\x7f\n\t"), b"a");
}

#[test]
fn rtrim_proctitle_of_a_128_byte_cut_is_unchanged() {
    let mut raw = b"/usr/bin/python3\0".to_vec();
    raw.resize(PROCTITLE_MAX, b'y');
    assert_eq!(rtrim_proctitle(&raw), raw);
}

#[test]
fn rtrim_proctitle_keeps_trailing_latin1_bytes_like_the_kernel() {
    // audit_proctitle_rtrim() uses the kernel's isprint(): 0xa0..=0xff are printable, only
    // 0x00..=0x1f and 0x7f..=0x9f are not. `echo café` ends with UTF-8 C3 A9.
    assert_eq!(rtrim_proctitle(b"echo\0caf\xc3\xa9"), b"echo\0caf\xc3\xa9");
    assert_eq!(rtrim_proctitle(b"x\xa0"), b"x\xa0");
    // 0x80..=0x9f are not printable for the kernel either.
    assert_eq!(rtrim_proctitle(b"x\xc4\x80"), b"x\xc4");
}

#[test]
fn container_id_from_systemd_scopes() {
    let id = Some(ID.to_string());
    assert_eq!(
        container_id(format!("/system.slice/docker-{ID}.scope").as_bytes()),
        id
    );
    let k8s = format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c.slice/cri-containerd-{ID}.scope");
    assert_eq!(container_id(k8s.as_bytes()), id);
    assert_eq!(
        container_id(format!("/kubepods.slice/crio-{ID}.scope").as_bytes()),
        id
    );
    assert_eq!(
        container_id(format!("/machine.slice/libpod-{ID}.scope").as_bytes()),
        id
    );
    assert_eq!(
        container_id(format!("/machine.slice/libpod-{ID}.scope/container").as_bytes()),
        id
    );
}

#[test]
fn container_id_from_a_bare_component() {
    assert_eq!(
        container_id(format!("/docker/{ID}").as_bytes()),
        Some(ID.to_string())
    );
    assert_eq!(
        container_id(format!("/kubepods/besteffort/pod1b2c/{ID}").as_bytes()),
        Some(ID.to_string())
    );
}

#[test]
fn container_id_rejects_near_misses() {
    assert_eq!(
        container_id(format!("/system.slice/docker-{}.scope", &ID[1..]).as_bytes()),
        None
    );
    assert_eq!(
        container_id(format!("/docker/{}", &ID[1..]).as_bytes()),
        None
    );
    assert_eq!(container_id(format!("/docker/{ID}0").as_bytes()), None);
    let non_hex = format!("g{}", &ID[1..]);
    assert_eq!(
        container_id(format!("/system.slice/docker-{non_hex}.scope").as_bytes()),
        None
    );
    assert_eq!(
        container_id(b"/user.slice/user-1000.slice/session-2.scope"),
        None
    );
}

#[test]
fn container_id_of_the_root_cgroup_is_none() {
    assert_eq!(container_id(b"/"), None);
    assert_eq!(container_id(b""), None);
}

#[test]
fn elf_interp_of_bin_true_is_the_system_loader() {
    let interp = elf_interp(Path::new("/bin/true")).expect("/bin/true is dynamically linked");
    let s = String::from_utf8(interp).unwrap();
    assert!(s.starts_with("/lib") && s.contains("ld-linux"), "{s}");
}

/// A minimal ELF64 LE executable: a PT_LOAD and, if given, a PT_INTERP naming `interp`.
fn elf(interp: Option<&[u8]>) -> Vec<u8> {
    let phnum = 1 + interp.is_some() as u16;
    let mut f = vec![0u8; 64];
    f[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    f[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    f[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
    let strings = 64 + 56 * phnum as u64;
    let mut ph = |p_type: u32, off: u64, size: u64| {
        let mut p = [0u8; 56];
        p[..4].copy_from_slice(&p_type.to_le_bytes());
        p[0x08..0x10].copy_from_slice(&off.to_le_bytes());
        p[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        f.extend_from_slice(&p);
    };
    ph(1, 0, strings);
    if let Some(name) = interp {
        ph(3, strings, name.len() as u64 + 1);
        f.extend_from_slice(name);
        f.push(0);
    }
    f
}

#[test]
fn elf_interp_reads_pt_interp() {
    let t = Temp::new("interp", &elf(Some(b"/lib/custom-ld.so.1")));
    assert_eq!(elf_interp(&t.0), Some(b"/lib/custom-ld.so.1".to_vec()));
}

#[test]
fn elf_interp_of_a_static_binary_is_none() {
    let t = Temp::new("static", &elf(None));
    assert_eq!(elf_interp(&t.0), None);
}

#[test]
fn elf_interp_of_a_shell_script_is_none() {
    let t = Temp::new(
        "script",
        b"#!/bin/sh\necho hello, this is long enough to fill an ELF header ......\n",
    );
    assert_eq!(elf_interp(&t.0), None);
}

#[test]
fn elf_interp_of_a_truncated_or_foreign_elf_is_none() {
    let real = std::fs::read("/bin/true").unwrap();
    assert_eq!(elf_interp(&Temp::new("cut", &real[..40]).0), None);
    let full = elf(Some(b"/lib/ld.so"));
    assert_eq!(
        elf_interp(&Temp::new("phdrs-cut", &full[..64 + 60]).0),
        None
    );
    let mut elf32 = full.clone();
    elf32[4] = 1;
    assert_eq!(elf_interp(&Temp::new("elf32", &elf32).0), None);
    let mut big_endian = full;
    big_endian[5] = 2;
    assert_eq!(elf_interp(&Temp::new("be", &big_endian).0), None);
    assert_eq!(elf_interp(Path::new("/nonexistent/sensor-test")), None);
}

fn walked(path: &[u8]) -> WalkedPath {
    let mut components = Vec::new();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev() {
        components.extend_from_slice(c);
        components.push(0);
    }
    WalkedPath {
        components,
        truncated: false,
    }
}

fn boot_now() -> u64 {
    clock(libc::CLOCK_BOOTTIME)
}

fn fill(dst: &mut [u8], src: &[u8]) {
    dst[..src.len()].copy_from_slice(src);
}

/// An exec of `name` by pid `pid`, as assembled from its records.
fn assembled(pid: u32, ret: i64, name: &[u8], argv: &[u8], argc: u32, exe: &[u8]) -> Assembled {
    // SAFETY: plain integers and byte arrays: all-zero is a valid value.
    let mut x: wire::ExecExit = unsafe { std::mem::zeroed() };
    x.hdr = wire::Header {
        kind: wire::KIND_EXEC_EXIT,
        tid: pid,
        pid,
        _pad: 0,
        boot_ns: boot_now(),
    };
    x.ret = ret;
    (x.ppid, x.auid, x.ses, x.uid, x.gid, x.euid) = (1, 1000, 3, 1000, 1000, 0);
    (x.ns_pid, x.pid_ns, x.mnt_ns, x.net_ns, x.uts_ns) =
        (7, 4026532001, 4026532002, 4026532003, 4026532004);
    x.cgroup_id = 9876;
    x.has_exe = 1;
    x.exe = wire::InodeFacts {
        ino: 4242,
        dev: 254 << 20,
        rdev: 0,
        mode: 0o100755,
        uid: 0,
        gid: 0,
        _pad: 0,
    };
    fill(&mut x.comm, b"true\0junk");
    x.proctitle_len = argv.len().min(PROCTITLE_MAX) as u32;
    fill(&mut x.proctitle, &argv[..x.proctitle_len as usize]);
    Assembled {
        enter: wire::Header {
            kind: wire::KIND_EXEC_ENTER,
            tid: pid,
            pid,
            _pad: 0,
            boot_ns: x.hdr.boot_ns,
        },
        syscall_nr: 59,
        regs: [0x10, 0x20, 0x30, 0x40, 0x50, 0x60],
        filename: Ok(name.to_vec()),
        args: if ret == 0 { argv.to_vec() } else { Vec::new() },
        args_gap: false,
        sched: (ret == 0).then_some(Sched {
            argc,
            args_total: argv.len() as u64,
            args_missing: 0,
            interp: None,
        }),
        cwd: Some(walked(b"/home/user")),
        exe: Some(walked(exe)),
        cgroup: Some(walked(
            format!("/system.slice/docker-{ID}.scope").as_bytes(),
        )),
        exit: Box::new(x),
    }
}

fn stat(path: &[u8]) -> std::fs::Metadata {
    std::fs::metadata(OsStr::from_bytes(path)).unwrap()
}

#[test]
fn exec_of_bin_true_builds_the_event_from_kernel_facts() {
    let mut n = Normaliser::default();
    let e = n.exec(assembled(
        NO_PID,
        0,
        b"/bin/true",
        b"/bin/true\0--version\0",
        2,
        b"/usr/bin/true",
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        e.stamp.sec.abs_diff(now) <= 5,
        "stamp {} vs now {now}",
        e.stamp.sec
    );
    assert_eq!(e.stamp.serial, 1);
    assert_eq!(
        (e.arch, e.syscall, e.success, e.exit),
        (AUDIT_ARCH_X86_64, Syscall::Execve, true, 0)
    );
    assert_eq!(e.regs, [0x10, 0x20, 0x30, 0x40]);
    assert_eq!(e.argv, args(&[b"/bin/true", b"--version"]));
    assert_eq!(e.argv_truncated, None);
    assert_eq!(e.proctitle, b"/bin/true\0--version");
    assert_eq!(e.cwd.as_deref(), Some(&b"/home/user"[..]));
    assert_eq!(e.task.exe.as_deref(), Some(&b"/usr/bin/true"[..]));
    assert_eq!(
        (e.task.pid, e.task.tid, e.task.ppid, e.task.auid, e.task.ses),
        (NO_PID, NO_PID, 1, 1000, 3)
    );
    assert_eq!(e.task.comm, b"true");
    assert_eq!(e.task.tty, None);
    assert_eq!(e.key, None);

    assert_eq!(e.paths.len(), 2, "{:?}", e.paths);
    assert_eq!(e.paths[0].name, b"/bin/true");
    assert_eq!(e.paths[0].nametype, NameType::Normal);
    let want = Inode {
        ino: 4242,
        dev_major: 254,
        dev_minor: 0,
        mode: 0o100755,
        ..Inode::default()
    };
    assert_eq!(e.paths[0].inode, Some(want));
    let ld = &e.paths[1];
    let s = String::from_utf8_lossy(&ld.name);
    assert!(s.starts_with("/lib") && s.contains("ld-linux"), "{s}");
    assert_eq!(ld.inode.map(|i| i.ino), Some(stat(&ld.name).ino()));
    assert_eq!(ld.nametype, NameType::Normal);

    let c = &e.container;
    assert_eq!(
        c.cgroup_path,
        format!("/system.slice/docker-{ID}.scope").as_bytes()
    );
    assert_eq!(c.container_id.as_deref(), Some(ID));
    assert_eq!(
        (c.cgroup_id, c.ns_pid, c.pid_ns, c.mnt_ns),
        (9876, 7, 4026532001, 4026532002)
    );
    assert_eq!((c.net_ns, c.uts_ns), (4026532003, 4026532004));

    assert_eq!(
        n.exec(assembled(
            NO_PID,
            0,
            b"/bin/true",
            b"x\0",
            1,
            b"/usr/bin/true"
        ))
        .stamp
        .serial,
        2
    );
}

#[test]
fn exec_splits_kernel_dev_t_and_reports_tty_and_full_comm() {
    let mut a = assembled(NO_PID, 0, b"/bin/true", b"true\0", 1, b"/usr/bin/true");
    a.exit.exe.dev = (8 << 20) | 0x12345;
    a.exit.exe.rdev = (136 << 20) | 7;
    fill(&mut a.exit.tty, b"pts7\0");
    a.exit.comm = *b"0123456789abcdef";
    let e = Normaliser::default().exec(a);
    let i = e.paths[0].inode.unwrap();
    assert_eq!(
        (i.dev_major, i.dev_minor, i.rdev_major, i.rdev_minor),
        (8, 0x12345, 136, 7)
    );
    assert_eq!(e.task.tty.as_deref(), Some(&b"pts7"[..]));
    assert_eq!(e.task.comm, b"0123456789abcdef");
}

#[test]
fn exec_prefers_the_live_proc_exe_for_the_elf_interpreter() {
    // The test binary itself is dynamically linked: /proc/<our pid>/exe resolves even though
    // the kernel-side exe path does not exist here.
    let pid = std::process::id();
    let e = Normaliser::default().exec(assembled(
        pid,
        0,
        b"./prog",
        b"prog\0",
        1,
        b"/nonexistent/prog",
    ));
    assert_eq!(e.paths.len(), 2, "{:?}", e.paths);
    assert!(String::from_utf8_lossy(&e.paths[1].name).contains("ld-linux"));
}

#[test]
fn exec_reports_argv_truncation_and_cuts_proctitle_at_128() {
    let mut a = assembled(NO_PID, 0, b"/bin/true", &[b'x'; 300], 2, b"/usr/bin/true");
    a.args.truncate(100);
    a.args_gap = true;
    a.exit.proctitle_len = 4000;
    let e = Normaliser::default().exec(a);
    assert_eq!(e.argv, vec![vec![b'x'; 100]]);
    assert_eq!(e.argv_truncated, trunc(1, 200));
    assert_eq!(e.proctitle, vec![b'x'; PROCTITLE_MAX]);
}

#[test]
fn exec_of_a_script_names_the_script_then_its_interpreter_then_the_loader() {
    let script = Temp::new("script-exec", b"#!/bin/sh\ntrue\n");
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    let name = script.0.as_os_str().as_bytes();
    let mut a = assembled(NO_PID, 0, name, b"script\0", 1, sh.as_os_str().as_bytes());
    a.sched.as_mut().unwrap().interp = Some(b"/bin/sh".to_vec());
    let e = Normaliser::default().exec(a);
    let names: Vec<_> = e
        .paths
        .iter()
        .map(|p| String::from_utf8_lossy(&p.name).into_owned())
        .collect();
    assert_eq!(e.paths.len(), 3, "{names:?}");
    assert_eq!(e.paths[0].name, name);
    assert_eq!(e.paths[0].inode.map(|i| i.ino), Some(stat(name).ino()));
    assert_eq!(e.paths[1].name, b"/bin/sh");
    assert_eq!(
        e.paths[1].inode.map(|i| i.ino),
        Some(4242),
        "the interpreter carries the kernel's exe facts"
    );
    assert!(names[2].contains("ld-linux"), "{names:?}");
}

#[test]
fn failed_exec_with_enoent_has_one_unresolved_path_and_no_argv() {
    let e = Normaliser::default().exec(assembled(
        NO_PID,
        -2,
        b"/nonexistent/prog",
        b"bash\0",
        0,
        b"/usr/bin/bash",
    ));
    assert!(!e.success);
    assert_eq!(e.exit, -2);
    assert_eq!(
        e.paths,
        vec![PathItem {
            name: b"/nonexistent/prog".to_vec(),
            inode: None,
            nametype: NameType::Unknown
        }]
    );
    assert!(e.argv.is_empty());
    assert_eq!(e.argv_truncated, None);
    assert_eq!(e.proctitle, b"bash", "the caller's command line");
    assert_eq!(e.task.exe.as_deref(), Some(&b"/usr/bin/bash"[..]));
}

#[test]
fn failed_exec_with_eacces_stats_the_name_relative_to_cwd() {
    let mut a = assembled(
        NO_PID,
        -(libc::EACCES as i64),
        b"true",
        b"sh\0",
        0,
        b"/usr/bin/sh",
    );
    a.cwd = Some(walked(b"/usr/bin"));
    let e = Normaliser::default().exec(a);
    assert_eq!(e.paths.len(), 1);
    assert_eq!(e.paths[0].name, b"true");
    assert_eq!(e.paths[0].nametype, NameType::Normal);
    assert_eq!(
        e.paths[0].inode.map(|i| i.ino),
        Some(stat(b"/usr/bin/true").ino())
    );
}

#[test]
fn exec_with_unreadable_filename_and_no_cgroup_path() {
    let mut a = assembled(NO_PID, -2, b"", b"", 0, b"/usr/bin/bash");
    a.filename = Err(-libc::EFAULT);
    a.cgroup = None;
    let e = Normaliser::default().exec(a);
    assert_eq!(e.paths[0].name, b"");
    assert_eq!(e.container.cgroup_path, b"/");
    assert_eq!(e.container.container_id, None);
    assert_eq!(e.proctitle, b"");
}
