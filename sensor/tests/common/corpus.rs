//! A corpus of real execs, each carrying a marker so that its records can be found in any log:
//! plain and hostile arguments, long and many arguments, failures, relative names, a script,
//! another user, and execveat.

use std::{
    ffi::{CString, OsStr, OsString},
    os::unix::{
        ffi::{OsStrExt, OsStringExt},
        fs::PermissionsExt,
    },
    path::{Path, PathBuf},
    process::Command,
};

use sensor::event::ExecEvent;

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub marker: String,
    /// The program as passed to execve (PATH item 0 `name=`).
    pub program: Vec<u8>,
    /// argv as passed (empty when the exec fails: no EXECVE record then).
    pub argv: Vec<Vec<u8>>,
    pub cwd: PathBuf,
    pub exit: i64,
    pub uid: u32,
    /// The executable the kernel ends up running (`exe=`), for successful execs.
    pub exe: Option<PathBuf>,
}

impl Case {
    /// The event of this case in a log: by marker in argv (or in the name, for failures), and
    /// by argv[0] so that a launcher's own exec (setpriv) is not mistaken for it.
    pub fn find<'a>(&self, events: &'a [ExecEvent]) -> Option<&'a ExecEvent> {
        let marker = self.marker.as_bytes();
        events.iter().find(|ev| {
            if self.exit != 0 {
                let name = ev
                    .paths
                    .first()
                    .map(|p| p.name.as_slice())
                    .unwrap_or_default();
                !ev.success && name == self.program.as_slice()
            } else {
                ev.argv.first() == self.argv.first()
                    && ev.argv.iter().any(|a| a.as_slice() == marker)
            }
        })
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Runs `program argv[1..]` with `argv[0]` and waits; spawn errors (failed execs) are expected.
fn run(program: &[u8], argv: &[Vec<u8>], cwd: &Path) {
    let mut cmd = Command::new(OsStr::from_bytes(program));
    std::os::unix::process::CommandExt::arg0(&mut cmd, OsStr::from_bytes(&argv[0]));
    cmd.args(
        argv[1..]
            .iter()
            .map(|a| OsString::from(OsStr::from_bytes(a))),
    );
    cmd.current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Ok(mut child) = cmd.spawn() {
        child.wait().unwrap();
    }
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH) of /bin/true from a forked child.
fn run_execveat(argv: &[Vec<u8>]) {
    let path = CString::new("/bin/true").unwrap();
    let empty = CString::new("").unwrap();
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.clone()).unwrap())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        assert!(fd >= 0);
        let pid = libc::fork();
        if pid == 0 {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                empty.as_ptr(),
                ptrs.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            libc::_exit(127);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        libc::close(fd);
    }
}

/// Runs every case once and returns them. `tag` makes markers unique to this run.
pub fn run_corpus(dir: &Path, tag: &str) -> Vec<Case> {
    let here = std::env::current_dir().unwrap();
    let m = |name: &str| format!("sensorit-{tag}-{name}");
    let mut cases = Vec::new();
    let mut add = |name: &'static str,
                   program: Vec<u8>,
                   argv: Vec<Vec<u8>>,
                   cwd: &Path,
                   exit: i64,
                   uid: u32,
                   exe: Option<&str>| {
        let marker = m(name);
        let argv: Vec<Vec<u8>> = argv
            .into_iter()
            .map(|a| {
                if a == b"MARK" {
                    marker.clone().into_bytes()
                } else {
                    a
                }
            })
            .collect();
        let program = if program == b"MARK" {
            marker.clone().into_bytes()
        } else {
            program
        };
        run(&program, &argv, cwd);
        cases.push(Case {
            name,
            marker,
            argv: if exit == 0 { argv } else { Vec::new() },
            program,
            cwd: cwd.to_path_buf(),
            exit,
            uid,
            exe: exe.map(PathBuf::from),
        });
    };

    add(
        "echo",
        b("/bin/echo"),
        vec![b("/bin/echo"), b("MARK"), b("hello"), b("a b")],
        &here,
        0,
        0,
        Some("/usr/bin/echo"),
    );
    add(
        "shell",
        b("/bin/sh"),
        vec![b("sh"), b("-c"), b("exit 3"), b("MARK")],
        &here,
        0,
        0,
        Some("/usr/bin/dash"),
    );
    let hostile = vec![
        b("/bin/true"),
        b("MARK"),
        b("a\"b"),
        b("sp ace"),
        b("nl\nx"),
        "é".as_bytes().to_vec(),
        Vec::new(),
        b("type=EXECVE msg=audit(1:2): argc=1 a0=\"x\""),
        vec![0x1d],
        vec![0xff, 0xfe],
    ];
    add(
        "hostile",
        b("/bin/true"),
        hostile,
        &here,
        0,
        0,
        Some("/usr/bin/true"),
    );
    // An argument area of ARGS_SMALL bytes (512) goes to the ring buffer in one record of that
    // capacity; one byte more goes through the chunked copy.
    for (name, total) in [("args512", 512), ("args513", 513)] {
        // "/bin/true\0", the marker and its NUL, the padding and its NUL.
        let pad = total - 10 - (m(name).len() + 1) - 1;
        add(
            name,
            b("/bin/true"),
            vec![b("/bin/true"), b("MARK"), vec![b'z'; pad]],
            &here,
            0,
            0,
            Some("/usr/bin/true"),
        );
    }
    add(
        "long9000",
        b("/bin/true"),
        vec![b("/bin/true"), b("MARK"), vec![b'x'; 9000]],
        &here,
        0,
        0,
        Some("/usr/bin/true"),
    );
    add(
        "long130000",
        b("/bin/true"),
        vec![b("/bin/true"), b("MARK"), vec![b'y'; 130_000]],
        &here,
        0,
        0,
        Some("/usr/bin/true"),
    );
    let mut many = vec![b("/bin/true"), b("MARK")];
    many.extend((0..3000).map(|i| format!("arg{i}").into_bytes()));
    add(
        "many",
        b("/bin/true"),
        many,
        &here,
        0,
        0,
        Some("/usr/bin/true"),
    );

    // Failures: a name that does not resolve, and a file that is not executable.
    let missing = format!("/nonexistent-{}/prog", m("enoent"));
    add(
        "enoent",
        missing.clone().into_bytes(),
        vec![missing.into_bytes()],
        &here,
        -2,
        0,
        None,
    );
    let noexec = dir.join(m("eacces"));
    std::fs::write(&noexec, b"not a program\n").unwrap();
    let noexec = noexec.into_os_string().into_vec_bytes();
    add("eacces", noexec.clone(), vec![noexec], &here, -13, 0, None);

    // A relative name, resolved against the working directory.
    std::fs::copy("/bin/true", dir.join("true-rel")).unwrap();
    let real = std::fs::canonicalize(dir.join("true-rel")).unwrap();
    add(
        "relative",
        b("./true-rel"),
        vec![b("./true-rel"), b("MARK")],
        dir,
        0,
        0,
        real.to_str(),
    );

    // A #! script: the kernel runs its interpreter.
    let script = dir.join("script.sh");
    std::fs::write(&script, b"#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = script.into_os_string().into_vec_bytes();
    add(
        "script",
        script.clone(),
        vec![script.clone(), b("MARK")],
        &here,
        0,
        0,
        Some("/usr/bin/dash"),
    );
    drop(add);
    // The kernel hands the interpreter `/bin/sh SCRIPT ARGS...`: that is the recorded argv.
    let case = cases.last_mut().unwrap();
    case.argv = vec![b("/bin/sh"), script, case.marker.clone().into_bytes()];

    // Another user: setpriv execs /bin/true as nobody; the case is that second exec.
    let marker = m("nobody");
    let status = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/true",
            &marker,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "setpriv failed");
    cases.push(Case {
        name: "nobody",
        program: b("/bin/true"),
        argv: vec![b("/bin/true"), marker.clone().into_bytes()],
        marker,
        cwd: here.clone(),
        exit: 0,
        uid: 65534,
        exe: Some(PathBuf::from("/usr/bin/true")),
    });

    // File capabilities: nobody runs a copy of /bin/true that carries cap_net_raw+ep, which
    // makes the kernel write BPRM_FCAPS and PATH cap_f* fields.
    let capped = dir.join("capped-true");
    std::fs::copy("/bin/true", &capped).unwrap();
    let status = Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(&capped)
        .status()
        .expect("setcap (libcap2-bin)");
    assert!(status.success(), "setcap failed");
    let marker = m("fcaps");
    let status = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&capped)
        .arg(&marker)
        .status()
        .unwrap();
    assert!(status.success(), "setpriv capped-true failed");
    let capped = capped.into_os_string().into_vec_bytes();
    cases.push(Case {
        name: "fcaps",
        program: capped.clone(),
        argv: vec![capped.clone(), marker.clone().into_bytes()],
        marker,
        cwd: here.clone(),
        exit: 0,
        uid: 65534,
        exe: Some(PathBuf::from(std::ffi::OsString::from_vec(capped))),
    });

    let marker = m("execveat");
    let argv = vec![b("true-at"), marker.clone().into_bytes()];
    run_execveat(&argv);
    cases.push(Case {
        name: "execveat",
        marker,
        program: Vec::new(),
        argv,
        cwd: here.clone(),
        exit: 0,
        uid: 0,
        exe: Some(PathBuf::from("/usr/bin/true")),
    });
    cases
}

trait IntoVecBytes {
    fn into_vec_bytes(self) -> Vec<u8>;
}

impl IntoVecBytes for OsString {
    fn into_vec_bytes(self) -> Vec<u8> {
        std::os::unix::ffi::OsStringExt::into_vec(self)
    }
}
