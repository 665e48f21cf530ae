//! argv splitting, proctitle trimming, container ids, ELF interpreters and whole execs.

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::assemble::{Assembled, ExecStart, Sched, WalkedPath};
use crate::event::*;
use crate::read::record::{Caps, ExecEnter, ExecExit, InodeFacts, Origin, TaskInfo, TaskNs};
use sensor_common::PROCTITLE_MAX;

/// A pid no process can have (above PID_MAX_LIMIT): `/proc/<pid>/exe` never resolves.
const NO_PID: u32 = 0x7fff_fff0;
const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SCOPE: &str = "/system.slice/docker-@.scope";

/// A file under the temp dir, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str, contents: &[u8]) -> Temp {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("sensor-normalise-{}-{n}-{tag}", std::process::id());
        let p = std::env::temp_dir().join(name);
        std::fs::write(&p, contents).unwrap();
        Temp(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

type Split = (Vec<Vec<u8>>, Option<ArgvTruncation>);

fn want(argv: &[&[u8]], trunc: Option<(u32, u64)>) -> Split {
    let t = trunc.map(|(missing_args, missing_bytes)| ArgvTruncation {
        missing_args,
        missing_bytes,
    });
    (argv.iter().map(|a| a.to_vec()).collect(), t)
}

#[test]
fn split_argv_complete() {
    let got = split_argv(b"ls\0-l\0/tmp\0", 3, 11);
    assert_eq!(got, want(&[b"ls", b"-l", b"/tmp"], None));
}

#[test]
fn split_argv_truncated_mid_argument_keeps_the_partial_argument() {
    let got = split_argv(b"ls\0-l\0/tm", 3, 11);
    assert_eq!(got, want(&[b"ls", b"-l", b"/tm"], Some((0, 2))));
}

#[test]
fn split_argv_missing_whole_arguments() {
    let got = split_argv(b"ls\0-l\0", 4, 16);
    assert_eq!(got, want(&[b"ls", b"-l"], Some((2, 10))));
}

#[test]
fn split_argv_argc_larger_than_the_copied_area() {
    assert_eq!(split_argv(b"a\0", 2, 2), want(&[b"a"], Some((1, 0))));
    assert_eq!(split_argv(b"", 2, 0), want(&[], Some((2, 0))));
}

#[test]
fn split_argv_keeps_empty_arguments() {
    let got = split_argv(b"a\0\0\0b\0", 4, 6);
    assert_eq!(got, want(&[b"a", b"", b"", b"b"], None));
    assert_eq!(split_argv(b"a\0\0", 2, 3), want(&[b"a", b""], None));
    assert_eq!(split_argv(b"\0\0", 2, 2), want(&[b"", b""], None));
}

#[test]
fn split_argv_of_an_empty_argv() {
    // Since Linux 5.18 the kernel turns an empty argv into [""] before sched_process_exec:
    // bprm->argc is 1 and the area is one NUL, which auditd logs as `argc=1 a0=""`.
    assert_eq!(split_argv(b"\0", 1, 1), want(&[b""], None));
    // Older kernels: argc 0 and an empty area, which they log as `argc=0`.
    assert_eq!(split_argv(b"", 0, 0), want(&[], None));
}

#[test]
fn split_argv_keeps_untrusted_bytes() {
    let got = split_argv(b"a b\0new\nline\0\xff\xfe\0", 3, 16);
    assert_eq!(got, want(&[b"a b", b"new\nline", b"\xff\xfe"], None));
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
    let raw = b"/bin/sh\0-c\0echo hi";
    assert_eq!(rtrim_proctitle(raw), raw);
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
    assert_eq!(rtrim_proctitle(b"x\xc4\x80"), b"x\xc4");
}

fn cid(template: &str) -> Option<String> {
    container_id(template.replace('@', ID).as_bytes())
}

#[test]
fn container_id_from_systemd_scopes() {
    for p in [
        SCOPE,
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c.slice/cri-containerd-@.scope",
        "/kubepods.slice/crio-@.scope",
        "/machine.slice/libpod-@.scope",
        "/machine.slice/libpod-@.scope/container",
    ] {
        assert_eq!(cid(p).as_deref(), Some(ID), "{p}");
    }
}

#[test]
fn container_id_from_a_bare_component() {
    assert_eq!(cid("/docker/@").as_deref(), Some(ID));
    assert_eq!(cid("/kubepods/besteffort/pod1b2c/@").as_deref(), Some(ID));
}

#[test]
fn container_id_rejects_near_misses() {
    let short = &ID[1..];
    let non_hex = format!("g{short}");
    assert_eq!(cid(&SCOPE.replace('@', short)), None, "63 hex digits");
    assert_eq!(cid(&format!("/docker/{short}")), None, "63 hex digits");
    assert_eq!(cid("/docker/@0"), None, "65 hex digits");
    assert_eq!(cid(&SCOPE.replace('@', &non_hex)), None, "a non-hex digit");
    assert_eq!(cid("/user.slice/user-1000.slice/session-2.scope"), None);
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
    let put = |f: &mut Vec<u8>, at: usize, v: &[u8]| f[at..at + v.len()].copy_from_slice(v);
    put(&mut f, 0, b"\x7fELF\x02\x01\x01");
    put(&mut f, 0x10, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut f, 0x12, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut f, 0x20, &64u64.to_le_bytes()); // e_phoff
    put(&mut f, 0x34, &64u16.to_le_bytes()); // e_ehsize
    put(&mut f, 0x36, &56u16.to_le_bytes()); // e_phentsize
    put(&mut f, 0x38, &phnum.to_le_bytes());
    let strings = 64 + 56 * phnum as u64;
    let ph = |f: &mut Vec<u8>, p_type: u32, off: u64, size: u64| {
        let at = f.len();
        f.resize(at + 56, 0);
        put(f, at, &p_type.to_le_bytes());
        put(f, at + 0x08, &off.to_le_bytes());
        put(f, at + 0x20, &size.to_le_bytes()); // p_filesz
    };
    ph(&mut f, 1, 0, strings);
    if let Some(name) = interp {
        ph(&mut f, 3, strings, name.len() as u64 + 1);
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
fn elf_interp_of_a_static_binary_or_a_script_is_none() {
    assert_eq!(elf_interp(&Temp::new("static", &elf(None)).0), None);
    let script = b"#!/bin/sh\necho 'long enough to fill a whole ELF header, 64 bytes'\n";
    assert_eq!(elf_interp(&Temp::new("script", script).0), None);
}

#[test]
fn elf_interp_of_a_truncated_or_foreign_elf_is_none() {
    let real = std::fs::read("/bin/true").unwrap();
    assert_eq!(elf_interp(&Temp::new("cut", &real[..40]).0), None);
    let full = elf(Some(b"/lib/ld.so"));
    let cut = Temp::new("phdrs-cut", &full[..64 + 60]);
    assert_eq!(elf_interp(&cut.0), None);
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
        deleted: false,
        components,
        truncated: false,
    }
}

/// An exec by `NO_PID` returning `ret`, with `argv` as its argument area (and proctitle), as
/// the assembler would hand it over.
fn assembled(ret: i64, name: &[u8], argv: &[u8], exe: &[u8]) -> Assembled {
    let origin = Origin {
        tid: NO_PID,
        pid: NO_PID,
        mono_ns: super::clock::clock(libc::CLOCK_MONOTONIC),
    };
    let task = TaskInfo {
        pid: NO_PID,
        tid: NO_PID,
        ppid: 1,
        auid: 1000,
        ses: 3,
        uid: 1000,
        gid: 1000,
        euid: 1000,
        comm: b"true".to_vec(),
        ..TaskInfo::default()
    };
    let ns = TaskNs {
        ns_pid: 7,
        pid_ns: 4026532001,
        mnt_ns: 4026532002,
        net_ns: 4026532003,
        uts_ns: 4026532004,
        cgroup_id: 9876,
        ..TaskNs::default()
    };
    let exe_inode = InodeFacts {
        ino: 4242,
        dev: 254 << 20,
        mode: 0o100755,
        ..InodeFacts::default()
    };
    let x = ExecExit {
        origin,
        ret,
        task,
        ns,
        exe: Some(exe_inode),
        caps: Caps::default(),
        proctitle: argv[..argv.len().min(PROCTITLE_MAX)].to_vec(),
    };
    let argc = argv.iter().filter(|&&b| b == 0).count() as u32;
    let total = argv.len() as u64;
    let sched = Sched {
        filename: None,
        argc,
        args_total: total,
        args_missing: 0,
        interp: None,
    };
    Assembled {
        start: ExecStart {
            name_at_exit: None,
            enter: ExecEnter {
                compat: false,
                origin,
                syscall: 59,
                regs: [0x10, 0x20, 0x30, 0x40, 0x50, 0x60],
                old_uid: 1000,
                old_caps: Caps::default(),
                filename: Ok(name.to_vec()),
            },
            args: if ret == 0 { argv.to_vec() } else { Vec::new() },
            args_gap: false,
            sched: (ret == 0).then_some(sched),
            cwd: Some(walked(b"/home/user")),
            exe: Some(walked(exe)),
            cgroup: Some(walked(SCOPE.replace('@', ID).as_bytes())),
        },
        exit: Box::new(x),
    }
}

fn true_exec(argv: &[u8]) -> Assembled {
    assembled(0, b"/bin/true", argv, b"/usr/bin/true")
}

fn ino(path: &[u8]) -> u64 {
    std::fs::metadata(OsStr::from_bytes(path)).unwrap().ino()
}

fn names(e: &ExecEvent) -> Vec<String> {
    e.paths
        .iter()
        .map(|p| String::from_utf8_lossy(&p.name).into_owned())
        .collect()
}

#[test]
fn exec_of_bin_true_builds_the_event_from_kernel_facts() {
    let mut n = Normaliser::default();
    let a = true_exec(b"/bin/true\0--version\0");
    let mono_ns = a.start.enter.origin.mono_ns;
    let e = n.exec(a);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    assert!(e.stamp.sec.abs_diff(now.unwrap().as_secs()) <= 5);
    assert_eq!(e.stamp.serial, 1);
    assert!(e.boot_ns >= mono_ns);
    assert_eq!((e.arch, e.syscall), (AUDIT_ARCH_X86_64, Syscall::EXECVE));
    assert_eq!((e.success, e.exit), (true, 0));
    assert_eq!(e.regs, [0x10, 0x20, 0x30, 0x40]);
    let got = (e.argv.clone(), e.argv_truncated);
    assert_eq!(got, want(&[b"/bin/true", b"--version"], None));
    assert_eq!(e.proctitle, b"/bin/true\0--version");
    assert_eq!(e.cwd.as_deref(), Some(&b"/home/user"[..]));
    let t = &e.task;
    assert_eq!(t.exe.as_deref(), Some(&b"/usr/bin/true"[..]));
    assert_eq!((t.pid, t.tid, t.ppid), (NO_PID, NO_PID, 1));
    assert_eq!((t.auid, t.ses, t.uid, t.euid), (1000, 3, 1000, 1000));
    assert_eq!((t.comm.as_slice(), t.tty.as_ref()), (&b"true"[..], None));
    assert_eq!(e.key, None);
    assert_eq!(e.bprm_fcaps, None, "a plain exec changes no capabilities");

    // item 0: the name as passed, with the kernel's inode facts.
    let names = names(&e);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], "/bin/true");
    assert_eq!(e.paths[0].nametype, NameType::Normal);
    let i = e.paths[0].inode.expect("kernel inode facts");
    assert_eq!((i.ino, i.mode, i.ouid, i.ogid), (4242, 0o100755, 0, 0));
    assert_eq!((i.dev_major, i.dev_minor), (254, 0));
    // item 1: the ELF interpreter, looked up and stat'ed from userspace.
    assert!(names[1].starts_with("/lib") && names[1].contains("ld-linux"));
    let ld = &e.paths[1];
    assert_eq!(ld.inode.map(|i| i.ino), Some(ino(&ld.name)));
    assert_eq!(ld.nametype, NameType::Normal);
    assert!(e.paths.iter().all(|p| p.fcaps == FileCaps::default()));

    let c = &e.container;
    assert_eq!(c.cgroup_path, SCOPE.replace('@', ID).as_bytes());
    assert_eq!(c.container_id.as_deref(), Some(ID));
    assert_eq!((c.cgroup_id, c.ns_pid), (9876, 7));
    assert_eq!((c.pid_ns, c.mnt_ns), (4026532001, 4026532002));
    assert_eq!((c.net_ns, c.uts_ns), (4026532003, 4026532004));

    assert_eq!(n.exec(true_exec(b"x\0")).stamp.serial, 2);
}

#[test]
fn exec_splits_kernel_dev_t_and_reports_tty_and_full_comm() {
    let mut a = true_exec(b"true\0");
    let exe = a.exit.exe.as_mut().unwrap();
    exe.dev = (8 << 20) | 0x12345;
    exe.rdev = (136 << 20) | 7;
    a.exit.task.tty = Some(b"pts7".to_vec());
    a.exit.task.comm = b"0123456789abcdef".to_vec();
    let e = Normaliser::default().exec(a);
    let i = e.paths[0].inode.unwrap();
    assert_eq!((i.dev_major, i.dev_minor), (8, 0x12345));
    assert_eq!((i.rdev_major, i.rdev_minor), (136, 7));
    assert_eq!(e.task.tty.as_deref(), Some(&b"pts7"[..]));
    assert_eq!(e.task.comm, b"0123456789abcdef");
}

/// Sets the kernel's exe inode facts of `a` to those of `file`.
fn exe_facts_of(a: &mut Assembled, file: &Path) {
    let m = std::fs::metadata(file).unwrap();
    let dev = (libc::major(m.dev()) << 20) | libc::minor(m.dev());
    let exe = a.exit.exe.as_mut().unwrap();
    (exe.ino, exe.dev) = (m.ino(), dev);
}

#[test]
fn exec_prefers_the_live_proc_exe_for_the_elf_interpreter() {
    // The pid is ours and still runs the exec'd file (this dynamically linked test binary);
    // the kernel-side exe path does not resolve from here (another mount namespace).
    let mut a = assembled(0, b"./prog", b"prog\0", b"/nonexistent/prog");
    a.exit.origin.pid = std::process::id();
    exe_facts_of(&mut a, Path::new("/proc/self/exe"));
    let e = Normaliser::default().exec(a);
    assert_eq!(e.paths.len(), 2, "{:?}", names(&e));
    assert!(names(&e)[1].contains("ld-linux"), "{:?}", names(&e));
}

#[test]
fn exec_ignores_a_live_proc_exe_that_is_another_program_now() {
    // The process exec'd again before this event was normalised (`sh -c 'exec ...'`, env,
    // nice): /proc/PID/exe is this test binary, not the file the kernel reported.
    let t = Temp::new("reexec", &elf(Some(b"/lib/custom-ld.so.1")));
    let name = t.0.as_os_str().as_bytes();
    let mut a = assembled(0, name, b"prog\0", name);
    a.exit.origin.pid = std::process::id();
    exe_facts_of(&mut a, &t.0);
    let e = Normaliser::default().exec(a);
    assert_eq!(
        names(&e).get(1).map(String::as_str),
        Some("/lib/custom-ld.so.1")
    );
}

#[test]
fn exec_retries_the_elf_interpreter_after_a_failed_lookup() {
    let mut n = Normaliser::default();
    // First exec: the process is gone and its exe path does not resolve from here.
    let mut a = assembled(0, b"./prog", b"prog\0", b"/nonexistent/prog");
    exe_facts_of(&mut a, Path::new("/proc/self/exe"));
    assert_eq!(n.exec(a).paths.len(), 1);
    // Second exec of the same file: the process is alive, the lookup can succeed now.
    let mut a = assembled(0, b"./prog", b"prog\0", b"/nonexistent/prog");
    a.exit.origin.pid = std::process::id();
    exe_facts_of(&mut a, Path::new("/proc/self/exe"));
    assert_eq!(n.exec(a).paths.len(), 2);
}

#[test]
fn exec_reports_argv_truncation_and_keeps_the_128_byte_proctitle() {
    let mut a = true_exec(&[b'x'; 300]);
    a.start.sched.as_mut().unwrap().argc = 2;
    a.start.args.truncate(100);
    a.start.args_gap = true;
    let e = Normaliser::default().exec(a);
    let got = (e.argv, e.argv_truncated);
    assert_eq!(got, want(&[&[b'x'; 100][..]], Some((1, 200))));
    assert_eq!(e.proctitle, vec![b'x'; PROCTITLE_MAX]);
}

/// The exit program reads no command line for a successful exec whose argument area came in one
/// record: it is the area's first 128 bytes. A failed exec's is the caller's, read at its exit.
#[test]
fn a_successful_exec_whose_exit_read_no_command_line_takes_it_from_its_arguments() {
    let mut a = true_exec(b"/bin/true\0--version\0");
    a.exit.proctitle.clear();
    assert_eq!(
        Normaliser::default().exec(a).proctitle,
        b"/bin/true\0--version"
    );
    let mut a = true_exec(&[b'y'; 300]);
    a.exit.proctitle.clear();
    assert_eq!(
        Normaliser::default().exec(a).proctitle,
        vec![b'y'; PROCTITLE_MAX]
    );
    let mut a = assembled(-2, b"/nonexistent", b"", b"/usr/bin/bash");
    a.start.args = b"stale\0".to_vec();
    assert_eq!(Normaliser::default().exec(a).proctitle, b"");
}

#[test]
fn exec_of_a_script_names_the_script_then_its_interpreter_then_the_loader() {
    let script = Temp::new("script-exec", b"#!/bin/sh\ntrue\n");
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    let name = script.0.as_os_str().as_bytes();
    let mut a = assembled(0, name, b"script\0", sh.as_os_str().as_bytes());
    a.start.sched.as_mut().unwrap().interp = Some(b"/bin/sh".to_vec());
    let e = Normaliser::default().exec(a);
    assert_eq!(e.paths.len(), 3, "{:?}", names(&e));
    assert_eq!(e.paths[0].name, name);
    assert_eq!(e.paths[1].name, b"/bin/sh");
    // The script is stat'ed; the interpreter carries the kernel's exe facts.
    let inos: Vec<_> = e.paths.iter().map(|p| p.inode.map(|i| i.ino)).collect();
    assert_eq!(inos[..2], [Some(ino(name)), Some(4242)]);
    assert!(names(&e)[2].contains("ld-linux"), "{:?}", names(&e));
}

#[test]
fn failed_exec_with_enoent_has_one_unresolved_path_and_no_argv() {
    let name = b"/nonexistent/prog";
    let e = Normaliser::default().exec(assembled(-2, name, b"bash\0", b"/usr/bin/bash"));
    assert_eq!((e.success, e.exit), (false, -2));
    assert_eq!(e.paths.len(), 1);
    assert_eq!(e.paths[0].name, name);
    assert_eq!(e.paths[0].inode, None);
    assert_eq!(e.paths[0].nametype, NameType::Unknown);
    assert_eq!((e.argv, e.argv_truncated), want(&[], None));
    assert_eq!(e.proctitle, b"bash", "the caller's command line");
    assert_eq!(e.task.exe.as_deref(), Some(&b"/usr/bin/bash"[..]));
}

#[test]
fn failed_exec_with_eacces_stats_the_name_relative_to_cwd() {
    // A file without execute permission refused it: the kernel has its inode.
    let mut a = assembled(-(libc::EACCES as i64), b"passwd", b"sh\0", b"/usr/bin/sh");
    a.start.cwd = Some(walked(b"/etc"));
    let e = Normaliser::default().exec(a);
    assert_eq!(e.paths.len(), 1);
    assert_eq!(e.paths[0].name, b"passwd");
    assert_eq!(e.paths[0].nametype, NameType::Normal);
    assert_eq!(e.paths[0].inode.map(|i| i.ino), Some(ino(b"/etc/passwd")));
}

#[test]
fn failed_exec_with_eacces_refused_on_the_way_has_no_inode() {
    // A directory on the way the caller (nobody) may not search: the name stayed unresolved,
    // as the kernel records it.
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("sensor-walk-{}", std::process::id()));
    let closed = dir.join("closed");
    std::fs::create_dir_all(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy("/usr/bin/true", closed.join("prog")).unwrap();
    let name = closed.join("prog");
    let name = name.to_str().unwrap().as_bytes();
    let mut a = assembled(-(libc::EACCES as i64), name, b"sh\0", b"/usr/bin/sh");
    a.exit.task.fsuid = 65534;
    a.exit.task.fsgid = 65534;
    let e = Normaliser::default().exec(a);
    assert_eq!(e.paths.len(), 1);
    assert_eq!(e.paths[0].nametype, NameType::Unknown);
    assert_eq!(e.paths[0].inode, None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exec_with_unreadable_filename_and_no_cgroup_path() {
    let mut a = assembled(-2, b"", b"", b"/usr/bin/bash");
    a.start.enter.filename = Err(-libc::EFAULT);
    a.start.cgroup = None;
    let e = Normaliser::default().exec(a);
    assert_eq!(e.paths[0].name, b"");
    assert_eq!(e.container.cgroup_path, b"/");
    assert_eq!(e.container.container_id, None);
    assert_eq!(e.proctitle, b"");
}

#[test]
fn exec_marks_paths_cut_in_the_kernel() {
    let mut a = true_exec(b"");
    a.start.cwd.as_mut().unwrap().truncated = true;
    let e = Normaliser::default().exec(a);
    assert_eq!(
        e.paths_truncated,
        crate::event::PathsTruncated {
            cwd: true,
            exe: false,
            cgroup: false
        }
    );
    assert!(!Normaliser::default()
        .exec(true_exec(b""))
        .paths_truncated
        .any());
}

mod elf_fuzz {
    //! The ELF reader sees whatever file a user exec'd: arbitrary bytes, and real-looking headers
    //! whose offsets, counts and sizes lie, never panic and read at most a few KiB.
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::elf;
    use crate::normalise::lookup::parse_elf_interp;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_elf_interp(Cursor::new(bytes));
        }

        #[test]
        fn lying_headers_never_panic(
            phoff in any::<u64>(),
            phnum in any::<u16>(),
            interp_off in any::<u64>(),
            interp_size in any::<u64>(),
            cut in 0usize..300,
        ) {
            let mut f = elf(Some(b"/lib/ld.so"));
            f[0x20..0x28].copy_from_slice(&phoff.to_le_bytes());
            f[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
            // The PT_INTERP header is the second one.
            let ph = 64 + 56;
            f[ph + 0x08..ph + 0x10].copy_from_slice(&interp_off.to_le_bytes());
            f[ph + 0x20..ph + 0x28].copy_from_slice(&interp_size.to_le_bytes());
            let keep = f.len().saturating_sub(cut);
            f.truncate(keep);
            if let Some(name) = parse_elf_interp(Cursor::new(f)) {
                prop_assert!(name.len() <= 4096);
            }
        }

        #[test]
        fn a_real_header_still_reads(name in "/[a-z/]{1,200}") {
            let f = elf(Some(name.as_bytes()));
            prop_assert_eq!(parse_elf_interp(Cursor::new(f)), Some(name.into_bytes()));
        }
    }
}

#[test]
fn with_tomoyo_the_program_is_named_twice_under_bprm_filename() {
    let lsms = ["lockdown", "capability", "apparmor", "tomoyo", "bpf"].map(String::from);
    let run = |n: &mut Normaliser, name: &[u8], syscall: u32, dirfd: u64| {
        let mut a = assembled(0, name, b"prog\0", b"/nonexistent/prog");
        a.start.enter.syscall = syscall;
        a.start.enter.regs[0] = dirfd;
        n.exec(a)
    };
    let execve = sensor_common::syscalls::x86_64::EXECVE;
    let execveat = sensor_common::syscalls::x86_64::EXECVEAT;
    let mut tomoyo = Normaliser::for_lsms(&lsms);
    // A real file: its second item is the first again.
    let t = Temp::new("tomoyo", b"x");
    let link = t.0.with_extension("link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&t.0, &link).unwrap();
    let name = t.0.as_os_str().as_bytes();
    let e = run(&mut tomoyo, name, execve, 0);
    assert_eq!(names(&e)[..2], [t.0.to_str().unwrap(); 2]);
    assert_eq!(
        (e.paths[0].inode, e.paths[1].nametype),
        (e.paths[1].inode, NameType::Normal)
    );
    // Through a symlink: TOMOYO's lookup does not follow it.
    let e = run(&mut tomoyo, link.as_os_str().as_bytes(), execve, 0);
    let again = e.paths[1].inode.unwrap();
    assert_eq!(again.mode & libc::S_IFMT, libc::S_IFLNK, "{:?}", e.paths[1]);
    std::fs::remove_file(&link).unwrap();
    // A name that does not resolve now: unresolved, as the kernel writes it.
    let e = run(&mut tomoyo, b"/nonexistent/prog", execve, 0);
    assert_eq!(e.paths[1].nametype, NameType::Unknown);
    // execveat(fd, "", AT_EMPTY_PATH) and execveat(fd, "rel"): alloc_bprm's /dev/fd names.
    assert_eq!(
        names(&run(&mut tomoyo, b"", execveat, 3))[..2],
        ["", "/dev/fd/3"]
    );
    assert_eq!(
        names(&run(&mut tomoyo, b"rel", execveat, 5))[..2],
        ["rel", "/dev/fd/5/rel"]
    );
    let at_fdcwd = libc::AT_FDCWD as u32 as u64;
    assert_eq!(
        names(&run(&mut tomoyo, b"rel", execveat, at_fdcwd))[..2],
        ["rel", "rel"]
    );
    // Without TOMOYO: once.
    let e = run(&mut Normaliser::for_lsms(&lsms[..3]), name, execve, 0);
    assert_eq!(names(&e)[0], t.0.to_str().unwrap());
    assert_ne!(names(&e).get(1), names(&e).first());
}
