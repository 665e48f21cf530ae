//! Hardening: whom a user-space audit message is trusted from, what counts as sent, and values
//! that try to forge fields in the records the sensor composes itself.
//!
//! - A USER_LOGIN sent from inside `unshare -Ur` (CAP_AUDIT_WRITE in a child user namespace
//!   only: the kernel answers ECONNREFUSED) is written with `sensor_untrusted=1` and left out
//!   with `--drop-untrusted`, as root and as nobody; root in the initial namespaces stays
//!   trusted. Each verdict is checked against the kernel's own answer to the same sender.
//! - A message that never reached kernel audit (libaudit called on fd -1, a `sendto()` that
//!   fails, a socket that is not NETLINK_AUDIT) is written nowhere.
//! - `pamtester -I 'rhost=evil res=success addr=10.9.9.9'` against a denying stack: the sensor's
//!   ANOM_LOGIN_LOCATION and synthesized USER_ACCT read back with exactly that host, and
//!   `ausearch --success yes` finds none of them.
//!
//! After each attack, an exec is still recorded within a second.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{exclusive, pam::Services, scratch, wait_until, Sensor};
use sensor::encode::parse::{decode_value, parse_line, parse_log, Record};

/// Sends user-space audit messages through the system's libaudit (`dlopen`: no headers needed),
/// printing what it returned and errno; or runs a command that cannot open an audit socket, as
/// on a kernel without audit (libpam then writes no record of its own).
const HELPER_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) { fprintf(stderr, "no %s\n", name); exit(2); }
    return p;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "noaudit")) {
        /* socket(AF_NETLINK, *, NETLINK_AUDIT) fails with EPROTONOSUPPORT. */
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 5),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NETLINK_AUDIT, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPROTONOSUPPORT),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof f / sizeof f[0], f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
            perror("seccomp");
            return 2;
        }
        execvp(argv[2], argv + 2);
        perror("exec");
        return 2;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: helper noaudit CMD... | helper HOW TYPE TEXT\n");
        return 2;
    }
    void *h = dlopen("libaudit.so.1", RTLD_NOW);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 2; }
    int (*audit_open)(void) = sym(h, "audit_open");
    int (*audit_send)(int, int, const void *, unsigned) = sym(h, "audit_send");
    int (*log_user)(int, int, const char *, const char *, const char *, const char *, int) =
        sym(h, "audit_log_user_message");
    int (*log_acct)(int, int, const char *, const char *, const char *, unsigned, const char *,
                    const char *, const char *, int) = sym(h, "audit_log_acct_message");
    const char *how = argv[1], *text = argv[3];
    int type = atoi(argv[2]), rc;
    unsigned len = strlen(text) + 1;
    if (!strcmp(how, "acct")) {
        /* What login(1) sends: TEXT is the account. libaudit hides the kernel's refusal. */
        rc = log_acct(audit_open(), type, NULL, "login", text, -1, "203.0.113.5", NULL, "pts/7", 1);
    } else if (!strcmp(how, "send")) {
        /* The kernel's answer itself: the sequence number, or minus its error. */
        rc = audit_send(audit_open(), type, text, len);
    } else if (!strcmp(how, "user-fd-1")) {
        rc = log_user(-1, type, text, NULL, NULL, NULL, 1);
    } else if (!strcmp(how, "send-fd-1")) {
        rc = audit_send(-1, type, text, len);
    } else if (!strcmp(how, "send-devnull")) {
        rc = audit_send(open("/dev/null", O_WRONLY), type, text, len);
    } else if (!strcmp(how, "send-route")) {
        rc = audit_send(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), type, text, len);
    } else {
        fprintf(stderr, "unknown %s\n", how);
        return 2;
    }
    printf("%d %d\n", rc, errno);
    return 0;
}
"#;

const USER_LOGIN: &str = "1112";

/// The helper, compiled into `dir` with the C compiler cargo links with.
fn build_helper(dir: &Path) -> PathBuf {
    let src = dir.join("helper.c");
    let bin = dir.join("helper");
    std::fs::write(&src, HELPER_C).unwrap();
    let out = Command::new("cc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("cc (the C compiler cargo links with) is installed");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // nobody runs it from the scratch directory.
    chmod(dir, 0o755);
    bin
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[derive(Clone, Copy, Debug)]
struct Sender {
    name: &'static str,
    nobody: bool,
    /// Inside `unshare -Ur`: root of a child user namespace, every capability there.
    userns: bool,
    /// Whether the kernel takes its messages.
    trusted: bool,
}

const SENDERS: [Sender; 4] = [
    Sender {
        name: "root",
        nobody: false,
        userns: false,
        trusted: true,
    },
    Sender {
        name: "root-userns",
        nobody: false,
        userns: true,
        trusted: false,
    },
    Sender {
        name: "nobody",
        nobody: true,
        userns: false,
        trusted: false,
    },
    Sender {
        name: "nobody-userns",
        nobody: true,
        userns: true,
        trusted: false,
    },
];

/// Runs `argv` as `who`; returns its stdout.
fn run_as(nobody: bool, userns: bool, argv: &[&str]) -> String {
    let mut cmd = Vec::new();
    if nobody {
        cmd.extend([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    if userns {
        cmd.extend(["unshare", "-Ur"]);
    }
    cmd.extend(argv);
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helper HOW USER_LOGIN TEXT` as `s`: what libaudit returned.
fn send(helper: &Path, s: Sender, how: &str, text: &str) -> i64 {
    let out = run_as(
        s.nobody,
        s.userns,
        &[helper.to_str().unwrap(), how, USER_LOGIN, text],
    );
    out.split_whitespace().next().unwrap().parse().unwrap()
}

/// Runs `/bin/true sensor-marker-TAG` and waits for its exec in every log: within a second.
fn marker_recorded(tag: &str, logs: &[&Path]) {
    let marker = format!("sensor-marker-{tag}");
    let start = Instant::now();
    assert!(Command::new("/bin/true")
        .arg(&marker)
        .status()
        .unwrap()
        .success());
    let seen = wait_until(Duration::from_secs(1), || {
        logs.iter().all(|l| {
            let text = std::fs::read(l).unwrap_or_default();
            text.windows(marker.len()).any(|w| w == marker.as_bytes())
        })
    });
    assert!(
        seen,
        "the exec of {marker} was not recorded within a second ({:?})",
        start.elapsed()
    );
}

/// The records of `log` whose line holds `needle`.
fn records_with(log: &Path, needle: &str) -> Vec<Record> {
    let text = std::fs::read(log).unwrap();
    text.split_inclusive(|&b| b == b'\n')
        .filter(|l| l.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|l| parse_line(l).unwrap())
        .collect()
}

fn show(r: &Record) -> String {
    format!(
        "{} {:?}",
        String::from_utf8_lossy(&r.rtype),
        r.fields
            .iter()
            .map(|(k, v)| format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ))
            .collect::<Vec<_>>()
    )
}

#[test]
fn trust_is_the_kernels_and_unsent_messages_are_not_written() {
    let _g = exclusive();
    let dir = scratch("hard-trust");
    let helper = build_helper(&dir);
    let all = dir.join("all.log");
    let kept = dir.join("drop-untrusted.log");
    let sensor = Sensor::start(&["--output", &format!("audit:{}", all.display())]);
    let dropping = Sensor::start(&[
        "--drop-untrusted",
        "--output",
        &format!("audit:{}", kept.display()),
    ]);
    let tag = format!("{}", std::process::id());

    for s in SENDERS {
        let acct = format!("hard-{}-{tag}", s.name);
        // libaudit's answer here is its own (it hides ECONNREFUSED): not looked at.
        send(&helper, s, "acct", &acct);
        // The kernel's own verdict on this sender: a sequence number, or its refusal.
        let text = format!(
            "op=login acct=\"root\" res=success hard-send-{}-{tag}",
            s.name
        );
        let answer = send(&helper, s, "send", &text);
        assert_eq!(answer > 0, s.trusted, "{s:?}: the kernel answered {answer}");
    }
    // Never sent: libaudit called on fd -1 (audit_open() failed), a sendto() that fails, a
    // socket that is not kernel audit's. Each returns an error to the caller.
    let unsent = ["user-fd-1", "send-fd-1", "send-devnull", "send-route"];
    for s in [SENDERS[0], SENDERS[2]] {
        for how in unsent {
            let text = format!("op=login acct=\"root\" res=success hard-unsent-{how}-{tag}");
            let rc = send(&helper, s, how, &text);
            assert!(how == "user-fd-1" || rc < 0, "{how} as {s:?}: {rc}");
        }
    }
    marker_recorded(&tag, &[&all, &kept]);
    for (sensor, log) in [(sensor, &all), (dropping, &kept)] {
        let (status, stderr) = sensor.stop();
        assert!(status.success(), "{stderr}");
        parse_log(&std::fs::read(log).unwrap()).unwrap();
    }

    for s in SENDERS {
        for (needle, text) in [
            (
                format!("acct=\"hard-{}-{tag}\"", s.name),
                format!(
                    "'op=login acct=\"hard-{}-{tag}\" exe=\"{}\" hostname=203.0.113.5 \
                     addr=203.0.113.5 terminal=pts/7 res=success'",
                    s.name,
                    helper.display()
                ),
            ),
            (
                format!("hard-send-{}-{tag}'", s.name),
                format!(
                    "'op=login acct=\"root\" res=success hard-send-{}-{tag}'",
                    s.name
                ),
            ),
        ] {
            let ours = records_with(&all, &needle);
            assert_eq!(
                ours.len(),
                1,
                "{s:?} {needle}: {:?}",
                ours.iter().map(show).collect::<Vec<_>>()
            );
            let r = &ours[0];
            assert_eq!(r.rtype, b"USER_LOGIN");
            assert_eq!(r.get(b"msg"), Some(text.as_bytes()), "{}", show(r));
            let untrusted = r.get(b"sensor_untrusted") == Some(b"\"1\"");
            assert_eq!(untrusted, !s.trusted, "{s:?}: {}", show(r));
            let kept_count = records_with(&kept, &needle).len();
            assert_eq!(kept_count, s.trusted as usize, "--drop-untrusted, {s:?}");
        }
    }
    for log in [&all, &kept] {
        let leaked = records_with(log, "hard-unsent-");
        assert!(
            leaked.is_empty(),
            "never sent, yet written: {:?}",
            leaked.iter().map(show).collect::<Vec<_>>()
        );
    }
}

const RHOST: &str = "evil res=success addr=10.9.9.9";
const TTY: &str = "pts/1 res=success";

/// The fields inside a record's `msg='…'`.
fn msg_fields(r: &Record) -> Record {
    let msg = r.get(b"msg").unwrap();
    assert!(msg.starts_with(b"'") && msg.ends_with(b"'"), "{}", show(r));
    let mut line = b"type=X msg=audit(1.000:1): ".to_vec();
    line.extend_from_slice(&msg[1..msg.len() - 1]);
    parse_line(&line).unwrap()
}

/// `ausearch -if LOG ARGS`: its exit status and output.
fn ausearch(log: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("ausearch")
        .arg("-if")
        .arg(log)
        .args(args)
        .output()
        .expect("ausearch (Debian package auditd) is installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn pam_items_cannot_forge_fields_in_the_sensors_records() {
    let _g = exclusive();
    let dir = scratch("hard-pam");
    let helper = build_helper(&dir);
    let access = dir.join("access.conf");
    // Everyone denied from everywhere: pam_access writes nothing of its own, the sensor's
    // access_origin rule writes ANOM_LOGIN_LOCATION.
    std::fs::write(&access, "-:ALL:ALL\n").unwrap();
    chmod(&access, 0o644);
    let name = format!("sensor-it-hard-{}", std::process::id());
    let mut services = Services(Vec::new());
    services.add(
        &name,
        &format!(
            "account required pam_access.so accessfile={}\n",
            access.display()
        ),
    );
    let log = dir.join("sensor.log");
    let out = format!("audit:{}", log.display());
    let sensor = Sensor::start(&["--output", &out, "--infer-login-anomalies"]);

    let rhost = format!("rhost={RHOST}");
    let tty = format!("tty={TTY}");
    let helper_path = helper.to_str().unwrap();
    // (scenario, as nobody, libpam can reach kernel audit)
    let runs = [
        ("root, libpam writes USER_ACCT itself", false, true),
        (
            "root, no audit socket: the sensor writes USER_ACCT",
            false,
            false,
        ),
        ("nobody, libpam's USER_ACCT untrusted", true, true),
        ("nobody, no audit socket", true, false),
    ];
    let mut pids = Vec::new();
    for (what, nobody, audit) in runs {
        let user = if nobody { "nobody" } else { "root" };
        let mut argv = Vec::new();
        if nobody {
            argv.extend([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]);
        }
        if !audit {
            argv.extend([helper_path, "noaudit"]);
        }
        argv.extend([
            "pamtester",
            "-I",
            &rhost,
            "-I",
            &tty,
            &name,
            user,
            "acct_mgmt",
        ]);
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pamtester (Debian package pamtester) is installed");
        let pid = child.id();
        let status = child.wait_with_output().unwrap().status;
        assert!(!status.success(), "{what}: the stack let {user} in");
        pids.push((what, pid, audit));
    }
    marker_recorded(&format!("pam-{}", std::process::id()), &[&log]);
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    drop(services);

    let text = std::fs::read(&log).unwrap();
    let records = parse_log(&text).unwrap();
    let mut own_lines = Vec::new();
    for (what, pid, audit) in &pids {
        let pid = pid.to_string();
        let ours: Vec<&Record> = records
            .iter()
            .filter(|r| r.get(b"pid") == Some(pid.as_bytes()) && r.get(b"msg").is_some())
            .collect();
        let rule = |r: &Record| {
            r.get(b"sensor_rule")
                .map(|v| String::from_utf8_lossy(&decode_value(v)).into_owned())
        };
        let mut want = vec![(
            "ANOM_LOGIN_LOCATION".to_string(),
            Some("access_origin".to_string()),
        )];
        // libpam's own record when it reached kernel audit; the sensor's when it could not.
        want.push(("USER_ACCT".into(), (!audit).then(|| "libpam".to_string())));
        let mut got: Vec<_> = ours
            .iter()
            .map(|r| (String::from_utf8_lossy(&r.rtype).into_owned(), rule(r)))
            .collect();
        got.sort();
        assert_eq!(got, want, "{what}");
        for r in ours.iter().filter(|r| rule(r).is_some()) {
            // Every field of the sensor's records is one field, holding exactly the item.
            let m = msg_fields(r);
            let mut keys = vec![
                "op", "grantors", "acct", "exe", "hostname", "addr", "terminal", "res",
            ];
            if r.rtype != b"USER_ACCT" {
                keys.remove(1);
            }
            let got: Vec<&[u8]> = m.fields.iter().map(|(k, _)| k.as_slice()).collect();
            let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
            assert_eq!(got, keys, "{what}: {}", show(r));
            assert_eq!(
                decode_value(m.get(b"hostname").unwrap()),
                RHOST.as_bytes(),
                "{what}"
            );
            assert_eq!(
                decode_value(m.get(b"terminal").unwrap()),
                TTY.as_bytes(),
                "{what}"
            );
            assert_eq!(m.get(b"addr"), Some(&b"?"[..]), "{what}");
            // The rule's anomaly reports a detection (res=success, as the modules' own do); the
            // synthesized USER_ACCT the refusal.
            let res: &[u8] = if r.rtype == b"USER_ACCT" {
                b"failed"
            } else {
                b"success"
            };
            assert_eq!(m.get(b"res"), Some(res), "{what}");
        }
        if *audit {
            // What libpam sent is written as the kernel writes it, untouched: libaudit puts the
            // host in as given (auditd's own log holds the same forged fields).
            let theirs = ours.iter().find(|r| rule(r).is_none()).unwrap();
            let msg = String::from_utf8_lossy(theirs.get(b"msg").unwrap()).into_owned();
            assert!(
                msg.contains(&format!(" hostname={RHOST} ")),
                "{what}: {msg}"
            );
        }
    }
    for line in text.split_inclusive(|&b| b == b'\n') {
        if parse_line(line).unwrap().get(b"sensor_rule").is_some() {
            own_lines.extend_from_slice(line);
        }
    }
    let own = dir.join("sensor-own.log");
    std::fs::write(&own, &own_lines).unwrap();
    // A forged `res=success` in an item never makes a refusal read as a success.
    let accts = ["-m", "USER_ACCT"];
    let (found, out) = ausearch(&own, &[&accts[..], &["--success", "yes"]].concat());
    assert!(
        !found && out.contains("<no matches>"),
        "a forged success: {out}"
    );
    let (found, failed) = ausearch(&own, &[&accts[..], &["--success", "no"]].concat());
    assert!(found, "{failed}");
    // The rule's records report a detection (res=success, as pam_access's own does) and name the
    // rule where `aureport --anomaly` shows the program.
    let anoms = ["-m", "ANOM_LOGIN_LOCATION"];
    let (found, detected) = ausearch(&own, &[&anoms[..], &["--success", "yes"]].concat());
    assert!(found, "{detected}");
    let anom_lines: Vec<&str> = detected
        .lines()
        .filter(|l| l.starts_with("type="))
        .collect();
    assert!(
        anom_lines
            .iter()
            .all(|l| l.contains("exe=\"sensor:access_origin\"")),
        "{detected}"
    );
    let records = failed.matches("type=").count() + anom_lines.len();
    assert_eq!(records, 6, "{failed}{detected}");
    // Without an audit socket, every PAM record of the call is the sensor's: none says success.
    for (what, pid, audit) in &pids {
        if !audit {
            let pid = pid.to_string();
            let args = [&accts[..], &["-p", &pid, "--success", "yes"]].concat();
            let (found, out) = ausearch(&log, &args);
            assert!(!found, "{what}: {out}");
        }
    }
}
