//! Real programs beside real auditd: a throwaway sshd on a loopback port logged into with sshpass
//! (right and wrong password), sudo, su through a pty, useradd/userdel, an exec from a memfd, an
//! exec of an unlinked binary, a failed fork+exec, EACCES execs, a 32-bit exec and a root shell
//! writing /proc/self/loginuid. The kernel runs the execve/execveat rules for both
//! architectures; the sensor runs at its defaults. Each scenario's records are found by pid in
//! both logs and compared: per record type counts, then field by field; a table prints what
//! differs. Then auditd's own views (aureport, ausearch) run on both logs, cut down to the
//! scenarios' events, and must read the same. Users, sshd, files and audit state are put back.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{auditd::Auditd, exclusive, scratch, wait_until, Sensor};
use sensor::{
    compare::check_fields,
    encode::parse::{parse_line, Record},
};

/// The kernel's rules: every exec, 64- and 32-bit, as the sensor records at its defaults.
const B64: &[&str] = &["always,exit", "-F", "arch=b64", "-S", "execve,execveat"];
const B32: &[&str] = &["always,exit", "-F", "arch=b32", "-S", "execve,execveat"];

/// Every program below runs with this PATH, so that the PATH walks (sshpass's execvp of ssh)
/// are the same on every machine.
const PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How far apart the kernel's and the sensor's stamps of one event may be.
const STAMP_SLACK_MS: u64 = 10;

/// What may differ, and why. Anything else that differs fails the test.
struct Known {
    rtype: &'static str,
    /// A field name, `(count)` for the number of records of the type.
    field: &'static str,
    applies: fn(&Ctx) -> bool,
    why: &'static str,
}

/// What an allow-list entry may look at.
struct Ctx<'a> {
    /// The kernel's event is not the first audited syscall of its task.
    later_in_task: bool,
    /// The kernel's SYSCALL record of the event (the record itself in an event without one).
    kernel: Option<&'a Record>,
}

const KNOWN: &[Known] = &[
    Known {
        rtype: "PROCTITLE",
        field: "proctitle",
        // The kernel fills context->proctitle at a task's first audited syscall and keeps it
        // until the task exits: a second exec (python → memfd, setpriv → helper, sh → su,
        // the i386 program → /bin/true) still shows the first command line. The sensor shows
        // the running program's (README, "PROCTITLE after a re-exec").
        applies: |c| c.later_in_task,
        why: "the kernel keeps the first audited command line of a task",
    },
    Known {
        rtype: "SYSCALL",
        field: "a3",
        // execve has three arguments; the kernel's a3 is whatever r10 held, which the
        // tracepoints do not carry, so the sensor writes a3=0 (README, "Fields auditd has that
        // the sensor cannot know").
        applies: |c| c.kernel.and_then(|k| k.get(b"syscall")) == Some(b"59"),
        why: "a3 of a 64-bit execve is a stray register the tracepoints do not carry",
    },
    Known {
        rtype: "SYSCALL",
        field: "a0",
        // A 32-bit exec passes no syscall tracepoint: the sensor sees it at sched_process_exec,
        // where the registers are already the new program's (README, "32-bit execs").
        applies: |c| c.kernel.and_then(|k| k.get(b"arch")) == Some(b"40000003"),
        why: "a 32-bit exec's registers are gone when the sensor sees it",
    },
    Known {
        rtype: "SYSCALL",
        field: "a1",
        applies: |c| c.kernel.and_then(|k| k.get(b"arch")) == Some(b"40000003"),
        why: "a 32-bit exec's registers are gone when the sensor sees it",
    },
    Known {
        rtype: "SYSCALL",
        field: "a2",
        applies: |c| c.kernel.and_then(|k| k.get(b"arch")) == Some(b"40000003"),
        why: "a 32-bit exec's registers are gone when the sensor sees it",
    },
    Known {
        rtype: "ADD_USER",
        field: "enriched.ID",
        // auditd names the id as it writes the record, which can be before useradd has
        // written /etc/passwd (`unknown(N)`); the sensor reads the files a moment later
        // (README, `enriched`).
        applies: |_| true,
        why: "auditd may name a new account before it is in /etc/passwd",
    },
];

fn known(rtype: &str, field: &str, ctx: &Ctx) -> Option<&'static Known> {
    KNOWN
        .iter()
        .find(|k| k.rtype == rtype && k.field == field && (k.applies)(ctx))
}

// ---------------------------------------------------------------- state put back on drop

/// A rule added with auditctl (beside the one `Auditd` adds), deleted on drop.
struct Rule(&'static [&'static str]);

impl Rule {
    fn add(rule: &'static [&'static str]) -> Rule {
        let out = Command::new("auditctl")
            .arg("-a")
            .args(rule)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "auditctl -a {rule:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Rule(rule)
    }
}

impl Drop for Rule {
    fn drop(&mut self) {
        let _ = Command::new("auditctl").arg("-d").args(self.0).output();
    }
}

fn user_exists(name: &str) -> bool {
    fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(':').next() == Some(name))
}

/// A throwaway account, removed with its home on drop when it still exists.
struct User {
    name: String,
}

impl User {
    /// A name for an account the test will create; it must not exist yet.
    fn reserve(name: String) -> User {
        assert!(!user_exists(&name), "user {name} exists: not the test's");
        User { name }
    }

    /// Creates the account (home, /bin/sh) with `password`.
    fn create(name: String, password: &str) -> User {
        let user = User::reserve(name);
        let ok = Command::new("/usr/sbin/useradd")
            .args(["-m", "-s", "/bin/sh", &user.name])
            .status()
            .unwrap();
        assert!(ok.success(), "useradd {}", user.name);
        let mut chpasswd = Command::new("/usr/sbin/chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{}:{password}\n", user.name).as_bytes())
            .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd");
        user
    }

    fn uid(&self) -> u32 {
        fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f[0] == self.name).then(|| f[2].parse().unwrap())
            })
            .unwrap()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if user_exists(&self.name) {
            let _ = Command::new("/usr/sbin/userdel")
                .args(["-r", "-f", &self.name])
                .output();
        }
    }
}

/// A process killed (SIGTERM, then SIGKILL) and reaped on drop.
struct Daemon(Child);

impl Daemon {
    fn stop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            if !wait_until(Duration::from_secs(5), || {
                matches!(self.0.try_wait(), Ok(Some(_)))
            }) {
                let _ = self.0.kill();
            }
            let _ = self.0.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory the test created where a program needs it (sshd's /run/sshd), removed on drop.
struct MadeDir(Option<PathBuf>);

impl Drop for MadeDir {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = fs::remove_dir(d);
        }
    }
}

/// The scratch directory, removed on drop unless SENSOR_IT_KEEP is set.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("SENSOR_IT_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        } else {
            println!("kept {}", self.0.display());
        }
    }
}

// ---------------------------------------------------------------- running programs

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Programs run in `dir`, with a fixed PATH and SHELL, stdin from /dev/null and their output in
/// a file of their own.
struct Runner {
    dir: PathBuf,
    n: usize,
}

impl Runner {
    fn command(&mut self, prog: &str, args: &[&str]) -> (Command, PathBuf) {
        self.n += 1;
        let out = self.dir.join(format!("out-{}.txt", self.n));
        let file = fs::File::create(&out).unwrap();
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("PATH", PATH_ENV)
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        (cmd, out)
    }

    /// Runs `prog args` to its end (killed after 20 s); its pid, status and output.
    fn run(&mut self, prog: &str, args: &[&str]) -> (u32, ExitStatus, String) {
        let (mut cmd, out) = self.command(prog, args);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{prog} {args:?}: {e}"));
        let status = wait_for(&mut child, Duration::from_secs(20), prog);
        (
            child.id(),
            status,
            fs::read_to_string(out).unwrap_or_default(),
        )
    }
}

fn wait_for(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the command and insists that it succeeded; returns its pid.
fn ok(run: (u32, ExitStatus, String), what: &str) -> u32 {
    assert!(run.1.success(), "{what}: {:?}\n{}", run.1, run.2);
    run.0
}

/// Runs the command and insists that it failed; returns its pid.
fn fails(run: (u32, ExitStatus, String), what: &str) -> u32 {
    assert!(!run.1.success(), "{what} succeeded\n{}", run.2);
    run.0
}

/// Whether something listens on 127.0.0.1:`port` (read from /proc, so that waiting for sshd
/// neither connects to it nor runs a program).
fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A")
        })
}

/// One scenario: the pids it started (its processes' children are found in the logs) and when
/// it ran.
struct Scenario {
    name: &'static str,
    roots: Vec<u32>,
    from_ms: u64,
    to_ms: u64,
    skipped: Option<String>,
}

/// Runs `body`, which returns the pids it started, or why it cannot run here.
fn scenario(
    list: &mut Vec<Scenario>,
    name: &'static str,
    body: impl FnOnce() -> Result<Vec<u32>, String>,
) {
    // The kernel stamps with the coarse clock, up to a tick behind the precise one.
    let from_ms = now_ms() - 50;
    let started = Instant::now();
    let result = body();
    // What the scenario's processes still do as they end.
    std::thread::sleep(Duration::from_millis(200));
    let to_ms = now_ms() + 50;
    let (roots, skipped) = match result {
        Ok(pids) => (pids, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    println!(
        "scenario {name}: pids {roots:?}, {:?}{}",
        started.elapsed(),
        skipped
            .as_ref()
            .map(|w| format!(", SKIPPED: {w}"))
            .unwrap_or_default()
    );
    list.push(Scenario {
        name,
        roots,
        from_ms,
        to_ms,
        skipped,
    });
}

// ---------------------------------------------------------------- programs built for the test

const HELPER_C: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    char *none[] = {NULL};
    if (argc > 1 && strcmp(argv[1], "seccomp") == 0) {
        /* A filter that refuses execveat and allows everything else, execve whatever its
           arguments. */
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execveat, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
            perror("seccomp");
            return 3;
        }
        char *args[] = {"sensor-it-seccomp", NULL};
        /* Refused before it ran: kernel audit records nothing. */
        if (syscall(__NR_execveat, AT_FDCWD, "/bin/true", args, none, 0) != -1 || errno != EPERM)
            return 4;
        /* Allowed, and failed: a record in both logs. */
        execve("/nonexistent/sensor-it-seccomp", args, none);
        return errno == ENOENT ? 0 : 5;
    }
    if (argc > 1 && strcmp(argv[1], "high-nr") == 0) {
        /* The kernel runs a syscall by the low 32 bits of rax: this is an execve. */
        static char path[] = "/bin/true";
        char *args[] = {"sensor-it-high-nr", NULL};
        long ret;
        __asm__ volatile("syscall"
                         : "=a"(ret)
                         : "a"((1UL << 32) | __NR_execve), "D"(path), "S"(args), "d"(none)
                         : "rcx", "r11", "memory");
        return 6;
    }
    if (argc > 1 && strcmp(argv[1], "missing") == 0) {
        pid_t p = fork();
        if (p == 0) {
            execl("/nonexistent/sensor-it-missing", "sensor-it-missing", (char *)0);
            _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
        printf("child %d\n", p);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "exec") == 0) {
        execv(argv[2], argv + 2);
        perror("execv");
        return 126;
    }
    return 2;
}
"#;

/// A static i386 program (no multilib needed) that runs `/bin/true` with i386's execve.
const I386_S: &str = r#"
    .section .data
path:   .asciz "/bin/true"
arg1:   .asciz "sensor-it-i386"
argv:   .long path, arg1, 0
envp:   .long 0
    .section .text
    .globl _start
_start:
    movl $11, %eax
    movl $path, %ebx
    movl $argv, %ecx
    movl $envp, %edx
    int $0x80
    movl %eax, %ebx
    negl %ebx
    movl $1, %eax
    int $0x80
"#;

/// python3 -c: execs a memfd copy of /bin/sleep through /proc/self/fd/N.
const MEMFD_PY: &str = r#"
import os
fd = os.memfd_create("sensor-it", os.MFD_CLOEXEC)
with open("/bin/sleep", "rb") as f:
    os.write(fd, f.read())
os.execv(f"/proc/self/fd/{fd}", ["payload", "0.2"])
"#;

/// python3 -c PATH: opens PATH, unlinks it, execs the open file (fexecve: execveat(fd, "",
/// AT_EMPTY_PATH)).
const UNLINKED_PY: &str = r#"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
os.execve(fd, ["prog", "0.2"], {"PATH": "/usr/bin:/bin"})
"#;

fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let c = dir.join("helper.c");
    fs::write(&c, HELPER_C).unwrap();
    let helper = dir.join("helper");
    let out = Command::new("gcc")
        .arg("-O1")
        .arg("-o")
        .arg(&helper)
        .arg(&c)
        .output()
        .expect("gcc (Debian package gcc) is installed");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = dir.join("i386.s");
    fs::write(&s, I386_S).unwrap();
    let (o, i386) = (dir.join("i386.o"), dir.join("i386"));
    for (prog, args) in [
        ("as", vec!["--32".into(), "-o".into(), o.clone(), s]),
        (
            "ld",
            vec!["-m".into(), "elf_i386".into(), "-o".into(), i386.clone(), o],
        ),
    ] {
        let out = Command::new(prog)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{prog} (Debian package binutils): {e}"));
        assert!(
            out.status.success(),
            "{prog}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (helper, i386)
}

// ---------------------------------------------------------------- reading the logs

/// One event: its records (and their lines) and what ties it to a process.
struct Event {
    recs: Vec<Record>,
    lines: Vec<Vec<u8>>,
    ms: u64,
    pid: Option<u32>,
    ppid: Option<u32>,
    ses: Option<u32>,
    /// The session a successful LOGIN record opened.
    new_ses: Option<u32>,
}

fn num(r: &Record, name: &[u8]) -> Option<u32> {
    std::str::from_utf8(r.get(name)?).ok()?.parse().ok()
}

const UNSET: u32 = u32::MAX;

/// The log's events in order of first record; lines that do not parse are left out (and
/// counted).
fn events(text: &[u8]) -> (Vec<Event>, usize) {
    let mut index: HashMap<(u64, u32, u64), usize> = HashMap::new();
    let mut out: Vec<Event> = Vec::new();
    let mut bad = 0;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(rec) = parse_line(line) else {
            bad += 1;
            continue;
        };
        let i = *index.entry(rec.event_key()).or_insert_with(|| {
            out.push(Event {
                recs: Vec::new(),
                lines: Vec::new(),
                ms: rec.sec * 1000 + u64::from(rec.msec),
                pid: None,
                ppid: None,
                ses: None,
                new_ses: None,
            });
            out.len() - 1
        });
        out[i].recs.push(rec);
        out[i].lines.push(line.to_vec());
    }
    for ev in &mut out {
        let login = ev.recs.iter().find(|r| r.rtype == b"LOGIN");
        let syscall = ev.recs.iter().find(|r| r.rtype == b"SYSCALL");
        ev.pid = login
            .or(syscall)
            .and_then(|r| num(r, b"pid"))
            .or_else(|| ev.recs.iter().find_map(|r| num(r, b"pid")));
        ev.ppid = syscall.and_then(|r| num(r, b"ppid"));
        ev.ses = syscall
            .and_then(|r| num(r, b"ses"))
            .or_else(|| ev.recs.iter().find_map(|r| num(r, b"ses")))
            .filter(|&s| s != UNSET);
        ev.new_ses = login
            .filter(|l| l.get(b"res") == Some(b"1"))
            .and_then(|l| num(l, b"ses"))
            .filter(|&s| s != UNSET);
    }
    (out, bad)
}

/// The scenario's processes: its roots, every process whose exec names one of them as parent,
/// and every process in a session a LOGIN of theirs opened (sshd's session child never execs),
/// from the events of both logs in the scenario's time.
fn members(scn: &Scenario, logs: [&[Event]; 2]) -> BTreeSet<u32> {
    let mut pids: BTreeSet<u32> = scn.roots.iter().copied().collect();
    let mut sessions = BTreeSet::new();
    let during: Vec<&Event> = logs
        .into_iter()
        .flatten()
        .filter(|e| e.ms >= scn.from_ms && e.ms <= scn.to_ms)
        .collect();
    loop {
        let mut changed = false;
        for ev in &during {
            let Some(pid) = ev.pid else { continue };
            let joins = ev.ppid.is_some_and(|p| pids.contains(&p))
                || ev.ses.is_some_and(|s| sessions.contains(&s));
            if !pids.contains(&pid) && joins {
                changed |= pids.insert(pid);
            }
            if pids.contains(&pid) {
                if let Some(s) = ev.new_ses {
                    changed |= sessions.insert(s);
                }
            }
        }
        if !changed {
            return pids;
        }
    }
}

fn select<'a>(scn: &Scenario, pids: &BTreeSet<u32>, log: &'a [Event]) -> Vec<&'a Event> {
    log.iter()
        .filter(|e| e.ms >= scn.from_ms && e.ms <= scn.to_ms)
        .filter(|e| e.pid.is_some_and(|p| pids.contains(&p)))
        .collect()
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn short(v: &[u8]) -> String {
    let t = text(v);
    if t.chars().count() > 70 {
        format!("{}…", t.chars().take(70).collect::<String>())
    } else {
        t
    }
}

/// What pairs a kernel event with the sensor's: the main record's type, the syscall, the
/// user message's op.
fn signature(ev: &Event) -> String {
    let main = ev
        .recs
        .iter()
        .find(|r| r.rtype == b"LOGIN")
        .or_else(|| ev.recs.iter().find(|r| r.rtype == b"SYSCALL"))
        .unwrap_or(&ev.recs[0]);
    let mut sig = text(&main.rtype);
    if let Some(sc) = ev
        .recs
        .iter()
        .find(|r| r.rtype == b"SYSCALL")
        .and_then(|r| r.get(b"syscall"))
    {
        sig.push_str(&format!(" syscall={}", text(sc)));
    }
    if let Some(msg) = main.get(b"msg") {
        let op = text(msg).split(' ').find_map(|w| {
            w.trim_start_matches('\'')
                .strip_prefix("op=")
                .map(String::from)
        });
        sig.push_str(&format!(" op={}", op.unwrap_or_default()));
    }
    sig
}

/// Fields the sensor adds to the kernel's (README, "Fields the sensor adds"): `sensor_*`, the
/// container fields and `container=`.
fn is_sensor_field(name: &[u8]) -> bool {
    name.starts_with(b"sensor_")
        || name == b"container"
        || sensor::encode::audit::CONTAINER_FIELDS
            .iter()
            .any(|f| f.as_bytes() == name)
}

/// One row of the table: a record type in a scenario.
#[derive(Default)]
struct Row {
    kernel: usize,
    sensor: usize,
    diffs: BTreeMap<String, Diff>,
}

struct Diff {
    count: usize,
    example: String,
    known: Option<&'static str>,
}

#[derive(Default)]
struct Table {
    rows: BTreeMap<(&'static str, String), Row>,
}

impl Table {
    fn row(&mut self, scenario: &'static str, rtype: &str) -> &mut Row {
        self.rows.entry((scenario, rtype.to_string())).or_default()
    }

    fn differ(
        &mut self,
        scenario: &'static str,
        rtype: &str,
        field: &str,
        example: String,
        ctx: &Ctx,
    ) {
        let known = known(rtype, field, ctx).map(|k| k.why);
        let d = self
            .row(scenario, rtype)
            .diffs
            .entry(field.to_string())
            .or_insert(Diff {
                count: 0,
                example,
                known,
            });
        d.count += 1;
        // One unexplained instance makes the whole field unexplained.
        if known.is_none() {
            d.known = None;
        }
    }
}

/// The records of a pair of events, side by side: PATH by item, others by type and order.
fn compare_events(scn: &'static str, k: &Event, s: &Event, later: bool, table: &mut Table) {
    let ctx = |rec| Ctx {
        later_in_task: later,
        kernel: rec,
    };
    let syscall = k.recs.iter().find(|r| r.rtype == b"SYSCALL");
    if k.ms.abs_diff(s.ms) > STAMP_SLACK_MS {
        table.differ(
            scn,
            "(event)",
            "stamp",
            format!("kernel {} | sensor {}", k.ms, s.ms),
            &ctx(syscall),
        );
    }
    let order = |e: &Event| {
        e.recs
            .iter()
            .map(|r| text(&r.rtype))
            .collect::<Vec<_>>()
            .join(",")
    };
    if order(k) != order(s) {
        table.differ(
            scn,
            "(event)",
            "record order",
            format!("kernel {} | sensor {}", order(k), order(s)),
            &ctx(syscall),
        );
    }
    let key = |r: &Record| (r.rtype.clone(), r.get(b"item").map(<[u8]>::to_vec));
    let mut ours: Vec<Option<&Record>> = s.recs.iter().map(Some).collect();
    for kr in &k.recs {
        let Some(sr) = ours
            .iter_mut()
            .find(|o| o.is_some_and(|o| key(o) == key(kr)))
            .and_then(Option::take)
        else {
            continue; // counted in the type's row
        };
        let rtype = text(&kr.rtype);
        let c = ctx(syscall.or(Some(kr)));
        for check in check_fields(kr, sr).into_iter().filter(|c| !c.agrees()) {
            table.differ(
                scn,
                &rtype,
                &check.name,
                format!(
                    "kernel {} | sensor {}",
                    short(check.kernel),
                    check.sensor.map(short).unwrap_or("(absent)".into())
                ),
                &c,
            );
        }
        // Fields only the sensor wrote, beyond its documented own.
        for (side, kf, sf) in [
            ("", &kr.fields, &sr.fields),
            ("enriched.", &kr.enriched, &sr.enriched),
        ] {
            if side == "enriched." && kf.is_empty() {
                continue; // a RAW kernel log has no enrichment to compare with
            }
            for (name, value) in sf {
                if !is_sensor_field(name) && !kf.iter().any(|(n, _)| n == name) {
                    table.differ(
                        scn,
                        &rtype,
                        &format!("+{side}{}", text(name)),
                        format!("kernel (absent) | sensor {}", short(value)),
                        &c,
                    );
                }
            }
        }
        let names = |f: &[(Vec<u8>, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let (kn, sn) = (names(&kr.fields), names(&sr.fields));
        let sn: Vec<_> = sn.into_iter().filter(|n| kn.contains(n)).collect();
        if kn.iter().filter(|n| sn.contains(n)).ne(sn.iter()) {
            table.differ(
                scn,
                &rtype,
                "(field order)",
                format!(
                    "kernel {:?} | sensor {:?}",
                    kn.iter().map(|n| text(n)).collect::<Vec<_>>(),
                    sn.iter().map(|n| text(n)).collect::<Vec<_>>()
                ),
                &c,
            );
        }
    }
}

/// A scenario's events, kernel's against sensor's, into the table.
fn compare_scenario(
    scn: &Scenario,
    kernel: &[&Event],
    sensor: &[&Event],
    table: &mut Table,
    unpaired: &mut Vec<String>,
) {
    for (side, evs) in [("kernel", kernel), ("sensor", sensor)] {
        for ev in evs {
            for r in &ev.recs {
                let row = table.row(scn.name, &text(&r.rtype));
                if side == "kernel" {
                    row.kernel += 1;
                } else {
                    row.sensor += 1;
                }
            }
        }
    }
    let mut used = vec![false; sensor.len()];
    // Per task, the events that had a SYSCALL record before (the kernel's proctitle cache).
    let mut seen_syscall: BTreeSet<u32> = BTreeSet::new();
    for k in kernel {
        let pid = k.pid;
        let later = pid.is_some_and(|p| seen_syscall.contains(&p));
        if k.recs.iter().any(|r| r.rtype == b"SYSCALL") {
            seen_syscall.extend(pid);
        }
        let sig = signature(k);
        let found = sensor
            .iter()
            .enumerate()
            .find(|(i, s)| !used[*i] && s.pid == pid && signature(s) == sig);
        match found {
            Some((i, s)) => {
                used[i] = true;
                compare_events(scn.name, k, s, later, table);
            }
            None => unpaired.push(format!(
                "{}: only the kernel has pid {pid:?} {sig}: {}",
                scn.name,
                short(&k.lines[0])
            )),
        }
    }
    for s in sensor
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(s, _)| s)
    {
        unpaired.push(format!(
            "{}: only the sensor has pid {:?} {}: {}",
            scn.name,
            s.pid,
            signature(s),
            short(&s.lines[0])
        ));
    }
}

// ---------------------------------------------------------------- auditd's views

fn is_date(t: &str) -> bool {
    let p: Vec<&str> = t.split('/').collect();
    p.len() == 3
        && p.iter()
            .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
}

fn is_time(t: &str) -> bool {
    let main = t.split('.').next().unwrap_or("");
    let p: Vec<&str> = main.split(':').collect();
    p.len() == 3
        && p.iter()
            .all(|x| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit()))
        && t[main.len()..]
            .strip_prefix('.')
            .is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()))
}

/// A report's rows without what differs between two logs of the same events: dates, times,
/// row numbers and event serials; sorted.
fn normalise(report: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut event_column = false;
    for line in report.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("# ") {
            event_column = toks.last() == Some(&"event");
            rows.push(line.to_string());
            continue;
        }
        let numbered = toks.first().is_some_and(|t| {
            t.strip_suffix('.')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        let mut keep: Vec<&str> = toks
            .iter()
            .copied()
            .filter(|t| !is_date(t) && !is_time(t))
            .collect();
        if numbered {
            keep.remove(0);
            if event_column {
                keep.pop();
            }
        }
        rows.push(keep.join(" "));
    }
    rows.sort();
    rows
}

fn view(tool: &str, args: &[&str], log: &Path) -> Vec<String> {
    let out = Command::new(tool)
        .arg("-if")
        .arg(log)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("{tool} (Debian package auditd): {e}"));
    let mut all = text(&out.stdout);
    // ausearch says "<no matches>" on stderr and exits 1.
    all.push_str(&text(&out.stderr));
    normalise(&all)
}

// ---------------------------------------------------------------- the test

#[test]
fn real_programs_beside_auditd() {
    let _g = exclusive();
    let began = Instant::now();
    let dir = scratch("real");
    let _scratch = Scratch(dir.clone());
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let me = std::process::id() % 100_000;

    // Everything built and set up before audit is on.
    let (helper, i386) = build(&dir);
    let helper = helper.display().to_string();
    let noexec = dir.join("noexec");
    fs::copy("/bin/true", &noexec).unwrap();
    fs::set_permissions(&noexec, fs::Permissions::from_mode(0o644)).unwrap();
    let locked = dir.join("locked");
    fs::create_dir(&locked).unwrap();
    fs::copy("/bin/true", locked.join("prog")).unwrap();
    fs::set_permissions(locked.join("prog"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
    let doomed = dir.join("doomed");
    fs::copy("/bin/sleep", &doomed).unwrap();

    const PASSWORD: &str = "Sit-Real-7391x";
    let ssh_user = User::create(format!("sit-ssh-{me}"), PASSWORD);
    let ssh_uid = ssh_user.uid();
    let added = User::reserve(format!("sit-add-{me}"));
    let hostkey = dir.join("ssh_host_ed25519_key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&hostkey)
        .output()
        .expect("ssh-keygen (Debian package openssh-client) is installed");
    assert!(out.status.success(), "ssh-keygen");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sshd_config = dir.join("sshd_config");
    fs::write(
        &sshd_config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM yes\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication no\nPermitRootLogin no\nAuthorizedKeysFile none\nUseDNS no\n\
             AllowUsers {}\nLogLevel VERBOSE\n",
            hostkey.display(),
            dir.join("sshd.pid").display(),
            ssh_user.name
        ),
    )
    .unwrap();
    let _run_sshd = {
        let d = Path::new("/run/sshd");
        if d.exists() {
            MadeDir(None)
        } else {
            fs::create_dir(d).unwrap();
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
            MadeDir(Some(d.to_path_buf()))
        }
    };
    let t = Command::new("/usr/sbin/sshd")
        .arg("-t")
        .arg("-f")
        .arg(&sshd_config)
        .output()
        .expect("sshd (Debian package openssh-server) is installed");
    assert!(
        t.status.success(),
        "sshd -t: {}",
        String::from_utf8_lossy(&t.stderr)
    );

    let auditd = Auditd::start(B64);
    let b32 = Rule::add(B32);
    let (sensor, logs) = Sensor::start_logging(&dir);
    let mut run = Runner {
        dir: dir.clone(),
        n: 0,
    };
    let mut scenarios = Vec::new();
    let setup_done = began.elapsed();

    scenario(&mut scenarios, "sshd", || {
        let (mut cmd, _) = run.command("/usr/sbin/sshd", &["-D", "-e", "-f"]);
        let mut sshd = Daemon(cmd.arg(&sshd_config).spawn().unwrap());
        let listener = sshd.0.id();
        assert!(
            wait_until(Duration::from_secs(10), || listening(port)),
            "sshd does not listen on {port}"
        );
        let ssh = |run: &mut Runner, pw: &str| {
            let port = port.to_string();
            let to = format!("{}@127.0.0.1", ssh_user.name);
            run.run(
                "/usr/bin/sshpass",
                &[
                    "-p",
                    pw,
                    "ssh",
                    "-F",
                    "/dev/null",
                    "-p",
                    &port,
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "PubkeyAuthentication=no",
                    "-o",
                    "PreferredAuthentications=password",
                    "-o",
                    "NumberOfPasswordPrompts=1",
                    "-o",
                    "LogLevel=ERROR",
                    &to,
                    "true",
                ],
            )
        };
        let good = ok(ssh(&mut run, PASSWORD), "ssh with the right password");
        let bad = fails(ssh(&mut run, "wrong-password"), "ssh with a wrong password");
        std::thread::sleep(Duration::from_millis(300));
        sshd.stop();
        Ok(vec![listener, good, bad])
    });
    scenario(&mut scenarios, "sudo", || {
        Ok(vec![ok(
            run.run("/usr/bin/sudo", &["-u", "nobody", "true"]),
            "sudo",
        )])
    });
    scenario(&mut scenarios, "su (pty)", || {
        Ok(vec![ok(
            run.run(
                "/usr/bin/script",
                &["-qc", "su -s /bin/sh -c true nobody", "/dev/null"],
            ),
            "script su",
        )])
    });
    scenario(&mut scenarios, "useradd/userdel", || {
        let add = ok(run.run("/usr/sbin/useradd", &[&added.name]), "useradd");
        // The sensor checks the account files at least every second: an account that lives
        // for less may be `unknown(N)` in userdel's records (README, `enriched`).
        std::thread::sleep(Duration::from_millis(1200));
        let del = ok(run.run("/usr/sbin/userdel", &[&added.name]), "userdel");
        Ok(vec![add, del])
    });
    scenario(&mut scenarios, "memfd", || {
        Ok(vec![ok(
            run.run("/usr/bin/python3", &["-c", MEMFD_PY]),
            "memfd exec",
        )])
    });
    scenario(&mut scenarios, "unlinked", || {
        let doomed = doomed.display().to_string();
        Ok(vec![ok(
            run.run("/usr/bin/python3", &["-c", UNLINKED_PY, &doomed]),
            "exec of an unlinked file",
        )])
    });
    // A seccomp filter's refusal is no exec (the kernel checks it before the syscall and its
    // audit entry): nothing in either log; an exec the filter allows and that fails is in both.
    scenario(&mut scenarios, "seccomp", || {
        Ok(vec![ok(run.run(&helper, &["seccomp"]), "helper seccomp")])
    });
    scenario(&mut scenarios, "execve as 1<<32|59", || {
        Ok(vec![ok(run.run(&helper, &["high-nr"]), "helper high-nr")])
    });
    scenario(&mut scenarios, "failed fork+exec", || {
        Ok(vec![ok(run.run(&helper, &["missing"]), "helper missing")])
    });
    scenario(&mut scenarios, "EACCES", || {
        let noexec = noexec.display().to_string();
        let prog = locked.join("prog").display().to_string();
        let root = fails(run.run(&helper, &["exec", &noexec, "a"]), "exec of 0644");
        let nobody = fails(
            run.run(
                "/usr/bin/setpriv",
                &[
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    &helper,
                    "exec",
                    &prog,
                    "b",
                ],
            ),
            "exec through a directory without search permission",
        );
        Ok(vec![root, nobody])
    });
    scenario(&mut scenarios, "i386", || {
        let (mut cmd, out) = run.command(&i386.display().to_string(), &[]);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
                return Err(format!(
                    "this kernel runs no i386 programs (IA32 emulation): {e}"
                ));
            }
            Err(e) => panic!("exec of the i386 program: {e}"),
        };
        let status = wait_for(&mut child, Duration::from_secs(10), "i386");
        assert!(
            status.success(),
            "i386 → /bin/true: {status:?} {}",
            fs::read_to_string(out).unwrap_or_default()
        );
        Ok(vec![child.id()])
    });
    scenario(&mut scenarios, "loginuid", || {
        // The second write is refused where `--loginuid-immutable` has locked the kernel (until
        // reboot): both sides then write LOGIN res=0, which is compared all the same.
        let script = format!(
            "echo {ssh_uid} > /proc/self/loginuid; echo 65534 > /proc/self/loginuid 2>/dev/null; true"
        );
        Ok(vec![ok(
            run.run("/bin/sh", &["-c", &script]),
            "loginuid writes",
        )])
    });
    let ran = began.elapsed() - setup_done;

    std::thread::sleep(Duration::from_millis(200));
    let sensor_text = sensor.stop_and_read(&logs);
    let roots: Vec<u32> = scenarios.iter().flat_map(|s| s.roots.clone()).collect();
    let kernel_text = auditd.collect(&dir.join("auditd.log"), |t| {
        let (evs, _) = events(t);
        roots.iter().all(|p| evs.iter().any(|e| e.pid == Some(*p)))
    });
    drop(b32);
    drop(auditd);

    // ------------------------------------------------------------ records
    let (kernel, kernel_bad) = events(&kernel_text);
    let (ours, ours_bad) = events(&sensor_text);
    assert_eq!(ours_bad, 0, "the sensor wrote lines that do not parse");
    if kernel_bad > 0 {
        println!("auditd's log: {kernel_bad} lines that do not parse, left out");
    }
    let mut table = Table::default();
    let mut unpaired = Vec::new();
    let (mut kernel_keep, mut sensor_keep) = (Vec::new(), Vec::new());
    for scn in scenarios.iter().filter(|s| s.skipped.is_none()) {
        let pids = members(scn, [&kernel, &ours]);
        println!("{}: processes {pids:?}", scn.name);
        let (k, s) = (select(scn, &pids, &kernel), select(scn, &pids, &ours));
        assert!(!k.is_empty(), "{}: auditd logged nothing", scn.name);
        compare_scenario(scn, &k, &s, &mut table, &mut unpaired);
        kernel_keep.extend(k);
        sensor_keep.extend(s);
    }

    let mut failures = Vec::new();
    let mut used_known = BTreeSet::new();
    println!();
    println!(
        "{:<18} {:<12} {:>6} {:>6}  differing fields (one example)",
        "scenario", "type", "kernel", "sensor"
    );
    for ((scn, rtype), row) in &table.rows {
        println!(
            "{scn:<18} {rtype:<12} {:>6} {:>6}  {}",
            row.kernel,
            row.sensor,
            if row.diffs.is_empty() { "-" } else { "" }
        );
        if row.kernel != row.sensor && rtype != "(event)" {
            let ctx = Ctx {
                later_in_task: false,
                kernel: None,
            };
            match known(rtype, "(count)", &ctx) {
                Some(k) => {
                    used_known.insert((k.rtype, k.field, k.why));
                }
                None => failures.push(format!(
                    "{scn}: {rtype}: kernel {} records, sensor {}",
                    row.kernel, row.sensor
                )),
            }
        }
        for (field, d) in &row.diffs {
            let tag = match d.known {
                Some(why) => {
                    used_known.insert((rtype.as_str(), field.as_str(), why));
                    "known"
                }
                None => {
                    failures.push(format!("{scn}: {rtype}.{field}: {}", d.example));
                    "DIFFERS"
                }
            };
            println!(
                "{:<18} {:<12} {:>6} {:>6}    {tag} {field} ×{}: {}",
                "", "", "", "", d.count, d.example
            );
        }
    }
    for s in scenarios.iter().filter(|s| s.skipped.is_some()) {
        println!("{:<18} skipped: {}", s.name, s.skipped.as_ref().unwrap());
    }
    for u in &unpaired {
        println!("unpaired: {u}");
    }
    failures.extend(unpaired.iter().cloned());
    for (rtype, field, why) in &used_known {
        println!("known difference {rtype}.{field}: {why}");
    }

    // ------------------------------------------------------------ auditd's views
    let write_filtered = |name: &str, evs: &[&Event], log: &[Event]| {
        let keep: BTreeSet<*const Event> = evs.iter().map(|e| *e as *const Event).collect();
        let mut out = Vec::new();
        for ev in log.iter().filter(|e| keep.contains(&(*e as *const Event))) {
            for l in &ev.lines {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
        }
        let path = dir.join(name);
        fs::write(&path, out).unwrap();
        path
    };
    let kernel_filtered = write_filtered("kernel.filtered.log", &kernel_keep, &kernel);
    let sensor_filtered = write_filtered("sensor.filtered.log", &sensor_keep, &ours);
    let uid = ssh_uid.to_string();
    let views: Vec<(&str, Vec<&str>)> = vec![
        ("aureport", vec!["-au"]),
        ("aureport", vec!["-l"]),
        ("aureport", vec!["-m"]),
        ("aureport", vec!["--failed"]),
        ("aureport", vec!["--anomaly"]),
        ("aureport", vec!["-x", "--summary"]),
        ("aureport", vec!["-e", "--summary"]),
        ("ausearch", vec!["-m", "LOGIN", "--format", "text"]),
        ("ausearch", vec!["-ua", &uid, "--format", "text"]),
    ];
    println!();
    for (tool, args) in &views {
        let name = format!("{tool} {}", args.join(" "));
        let (k, s) = (
            view(tool, args, &kernel_filtered),
            view(tool, args, &sensor_filtered),
        );
        if k == s {
            println!("view {name:<40} same ({} rows)", k.len());
            continue;
        }
        println!("view {name:<40} DIFFERS");
        for r in k.iter().filter(|r| !s.contains(r)) {
            println!("    kernel only: {r}");
        }
        for r in s.iter().filter(|r| !k.contains(r)) {
            println!("    sensor only: {r}");
        }
        failures.push(format!("view {name} differs"));
    }
    println!(
        "\nset-up {setup_done:?}, scenarios {ran:?}, whole test {:?}",
        began.elapsed()
    );
    drop(ssh_user);
    drop(added);
    assert!(
        failures.is_empty(),
        "the sensor and auditd differ:\n{}",
        failures.join("\n")
    );
}
