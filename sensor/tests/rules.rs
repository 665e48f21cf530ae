//! The same audit.rules loaded into kernel audit (`auditctl -R`) and into the sensor
//! (`--rules`): execs that hit and miss each kind of rule (a `never` rule by `exe=`, an exec
//! watch, a `-C` comparison, uid, euid and exit fields), run as root and as nobody, give the same
//! exec events with the same keys on both sides. Restores the kernel's rules as they were.

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{auditd::Auditd, exclusive, exec_events, scratch, Sensor};

const RULES: &str = "\
## test rules: first match wins
-D
-a never,exit -F arch=b64 -S execve -F exe=/usr/bin/true
-w /usr/bin/id -p x -k id-watch
-a always,exit -F arch=b64 -S execve -C uid!=euid -k setuid
-a always,exit -F arch=b64 -S execve -F uid=65534 -k nobody
-a always,exit -F arch=b64 -S execve -F euid=0 -F exit=-ENOENT -k root-missing
-a always,exit -F arch=b64 -S execve -F euid=0 -k root
";

/// The kernel's rules as found, put back on drop.
struct KernelRules(String);

impl KernelRules {
    fn save() -> KernelRules {
        let out = Command::new("auditctl").arg("-l").output().unwrap();
        KernelRules(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for KernelRules {
    fn drop(&mut self) {
        let _ = Command::new("auditctl").arg("-D").output();
        for line in self.0.lines().filter(|l| l.starts_with('-')) {
            let _ = Command::new("auditctl")
                .args(line.split(' ').filter(|w| !w.is_empty()))
                .output();
        }
    }
}

fn run(cmd: &[&str]) -> u32 {
    let mut child = Command::new(cmd[0]).args(&cmd[1..]).spawn().unwrap();
    let pid = child.id();
    let _ = child.wait();
    pid
}

fn as_nobody(cmd: &[&str]) -> u32 {
    let mut args = vec![
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    args.extend_from_slice(cmd);
    run(&args)
}

/// The kernel's rules as found (put back on drop), auditd running with `file` loaded by
/// `auditctl -R`, and the sensor running with `--rules file`, writing audit text to the log
/// returned.
fn beside_auditd(dir: &Path, file: &Path) -> (KernelRules, Auditd, Sensor, PathBuf) {
    let restore = KernelRules::save();
    let auditd = Auditd::start(&[]);
    let loaded = Command::new("auditctl")
        .arg("-R")
        .arg(file)
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    let log = dir.join("sensor.log");
    let out = format!("audit:{}", log.display());
    let sensor = Sensor::start(&["--output", &out, "--rules", file.to_str().unwrap()]);
    (restore, auditd, sensor, log)
}

/// A rules file without the kernel settings lines (`-e`, `-b`, `-f`, `-r`,
/// `--backlog_wait_time`, `--loginuid-immutable`, which locks until reboot): loaded into the
/// kernel, it leaves the host's audit settings as they were.
fn without_settings(text: &str) -> String {
    let settings = ["-e", "-b", "-f", "-r", "--backlog", "--loginuid", "--reset"];
    text.lines()
        .filter(|l| !settings.iter().any(|s| l.starts_with(s)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Process `pid`'s exec events in `log`: the program and the key, in order.
fn execs(log: &Path, pid: u32) -> Vec<(String, Option<String>)> {
    exec_events(log)
        .into_iter()
        .filter(|e| e.task.pid == pid)
        .map(|e| {
            let exe = String::from_utf8_lossy(&e.task.exe.unwrap_or_default()).into_owned();
            (exe, e.key.map(|k| String::from_utf8_lossy(&k).into_owned()))
        })
        .collect()
}

#[test]
fn the_kernels_and_the_sensors_exit_list_select_the_same_execs_with_the_same_keys() {
    let _g = exclusive();
    let dir = scratch("rules");
    let file = dir.join("test.rules");
    std::fs::write(&file, RULES).unwrap();
    let check = Command::new(common::sensor_bin())
        .args(["rules", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let (_restore, auditd, sensor, log) = beside_auditd(&dir, &file);

    // (what, pid, the key both must write; None: no event at all)
    let runs: Vec<(&str, u32, Vec<Option<&str>>)> = vec![
        (
            "root runs true: never by exe",
            run(&["/usr/bin/true"]),
            vec![],
        ),
        (
            "root runs id: the watch",
            run(&["/usr/bin/id"]),
            vec![Some("id-watch")],
        ),
        (
            "root runs echo",
            run(&["/bin/echo", "hi"]),
            vec![Some("root")],
        ),
        (
            "root execs a missing file",
            run(&["/bin/sh", "-c", "exec /nonexistent/x 2>/dev/null"]),
            vec![Some("root"), Some("root-missing")],
        ),
        (
            "nobody runs echo (setpriv first, as root)",
            as_nobody(&["/bin/echo", "hi"]),
            vec![Some("root"), Some("nobody")],
        ),
        (
            "nobody runs set-uid su: uid!=euid",
            as_nobody(&["/usr/bin/su", "--help"]),
            vec![Some("root"), Some("setuid")],
        ),
        (
            "nobody runs true",
            as_nobody(&["/usr/bin/true"]),
            vec![Some("root")],
        ),
        (
            "nobody runs id: the watch first",
            as_nobody(&["/usr/bin/id"]),
            vec![Some("root"), Some("id-watch")],
        ),
    ];
    // Left out in the kernel (the `never` rule matches for certain): the agent only counts them.
    const LEFT_OUT: u64 = 50;
    for _ in 0..LEFT_OUT {
        run(&["/usr/bin/true"]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("sensor: rules"), "{stderr}");
    let left_out: u64 = stderr
        .lines()
        .find_map(|l| l.strip_suffix(" execs left out by the rules in the kernel"))
        .and_then(|l| l.strip_prefix("sensor: ")?.parse().ok())
        .unwrap_or_else(|| panic!("no count of execs left out in the kernel: {stderr}"));
    assert!(left_out >= LEFT_OUT, "{left_out} < {LEFT_OUT}: {stderr}");
    let last = runs.last().unwrap().1.to_string();
    let kernel_log = dir.join("auditd.log");
    auditd.collect(&kernel_log, |t| {
        String::from_utf8_lossy(t).contains(&format!(" pid={last} "))
    });
    drop(auditd);

    let keys = |log: &Path, pid: u32| -> BTreeSet<(String, Option<String>)> {
        execs(log, pid).into_iter().collect()
    };
    for (what, pid, want) in &runs {
        let (k, s) = (keys(&kernel_log, *pid), keys(&log, *pid));
        eprintln!("{what}: kernel {k:?} | sensor {s:?}");
        assert_eq!(s, k, "{what}: the sensor's execs and keys are the kernel's");
        let got: BTreeSet<Option<String>> = k.iter().map(|(_, key)| key.clone()).collect();
        let want: BTreeSet<Option<String>> = want.iter().map(|k| k.map(str::to_string)).collect();
        assert_eq!(got, want, "{what}");
    }
}

/// The rule sets auditd ships (`/usr/share/doc/auditd/examples/rules`: STIG, PCI DSS, OSPP,
/// NISPOM…), each loaded with `auditctl -R` and checked with `sensor rules check`: the kernel
/// holds as many rules as the sensor loads, and loading stops on a file exactly where the sensor
/// reports an error. The kernel settings lines (`-e`, `-b`, `-f`, `-r`, `--backlog_wait_time`,
/// `--loginuid-immutable`, which locks until reboot) are left out of both, so the host's audit
/// settings are never touched.
#[test]
fn the_rule_sets_auditd_ships_load_the_same_in_the_kernel_and_the_sensor() {
    let _g = exclusive();
    let dir = scratch("rules-examples");
    let _restore = KernelRules::save();
    let examples = std::path::Path::new("/usr/share/doc/auditd/examples/rules");
    let mut files: Vec<_> = std::fs::read_dir(examples)
        .expect("auditd's example rules (Debian package auditd)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    let mut total = 0;
    for src in &files {
        let text = std::fs::read_to_string(src).unwrap();
        let file = dir.join(src.file_name().unwrap());
        std::fs::write(&file, without_settings(&text)).unwrap();
        let _ = Command::new("auditctl").arg("-D").output();
        let kernel = Command::new("auditctl")
            .arg("-R")
            .arg(&file)
            .output()
            .unwrap();
        let listed = Command::new("auditctl").arg("-l").output().unwrap();
        let in_kernel = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter(|l| l.contains("-a ") || l.contains("-w ") || l.contains("-A "))
            .count();
        let check = Command::new(common::sensor_bin())
            .args(["rules", "check", "--json"])
            .arg(&file)
            .output()
            .unwrap();
        let verdicts: Vec<serde_json::Value> = serde_json::from_slice(&check.stdout).unwrap();
        let status = |v: &serde_json::Value| v["status"].as_str().unwrap().to_string();
        let text = |v: &serde_json::Value| v["text"].as_str().unwrap().to_string();
        let in_sensor = verdicts
            .iter()
            .filter(|v| ["applied", "unsupported"].contains(&status(v).as_str()))
            .filter(|v| ["-a ", "-w ", "-A "].iter().any(|p| text(v).starts_with(p)))
            .count();
        let errors = verdicts.iter().filter(|v| status(v) == "error").count();
        let name = src.file_name().unwrap().to_string_lossy();
        eprintln!(
            "{name}: kernel {in_kernel} rules (auditctl exit {:?}), sensor {in_sensor} rules, {errors} errors",
            kernel.status.code()
        );
        assert_eq!(in_sensor, in_kernel, "{name}");
        assert_eq!(errors > 0, !kernel.status.success(), "{name}");
        assert_eq!(check.status.success(), errors == 0, "{name}");
        total += in_kernel;
    }
    assert!(total > 150, "{total}");
}

/// A PAM service file under /etc/pam.d, removed on drop.
struct Service(std::path::PathBuf);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The user list (`never` by message type) and the exclude list (by record type), in auditd and
/// in the sensor: pamtester's USER_AUTH is dropped, its USER_ACCT kept, and no PROCTITLE record is
/// written for any event, on both sides alike.
#[test]
fn the_user_and_exclude_lists_leave_out_the_same_records() {
    let _g = exclusive();
    let dir = scratch("rules-lists");
    let file = dir.join("lists.rules");
    std::fs::write(
        &file,
        "-a never,user -F msgtype=USER_AUTH\n-a always,exclude -F msgtype=PROCTITLE\n\
         -a always,exit -F arch=b64 -S execve -k exec\n",
    )
    .unwrap();
    let service = format!("sensor-it-rules-{}", std::process::id());
    let _service = Service(std::path::PathBuf::from(format!("/etc/pam.d/{service}")));
    std::fs::write(
        &_service.0,
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    )
    .unwrap();

    let (_restore, auditd, sensor, log) = beside_auditd(&dir, &file);
    let pid = run(&[
        "/usr/bin/pamtester",
        &service,
        "root",
        "authenticate",
        "acct_mgmt",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let kernel_log = dir.join("auditd.log");
    let kernel = auditd.collect(&kernel_log, |t| {
        String::from_utf8_lossy(t).contains("type=USER_ACCT")
    });
    drop(auditd);

    let types_of = |text: &[u8]| -> Vec<String> {
        let pid = format!(" pid={pid} ");
        let mut t: Vec<String> = String::from_utf8_lossy(text)
            .lines()
            .filter(|l| l.contains(&pid))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    let (k, s) = (types_of(&kernel), types_of(&std::fs::read(&log).unwrap()));
    eprintln!("kernel {k:?}\nsensor {s:?}");
    assert_eq!(s, k);
    assert!(k.contains(&"type=USER_ACCT".to_string()) && k.contains(&"type=SYSCALL".to_string()));
    assert!(!k
        .iter()
        .any(|t| t == "type=USER_AUTH" || t == "type=PROCTITLE"));
    let sensor_text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(!sensor_text.contains("type=PROCTITLE"));
}

/// An exec watch follows the file replaced at its path (as a package upgrade does), on both
/// sides; SIGHUP puts an edited rules file in force for the next exec, and `-e 2` keeps the rules
/// as they were.
#[test]
fn a_watch_follows_a_replaced_binary_and_sighup_reloads_unless_locked() {
    let _g = exclusive();
    let dir = scratch("rules-reload");
    let prog = dir.join("prog");
    std::fs::copy("/usr/bin/true", &prog).unwrap();
    let prog_s = prog.to_str().unwrap().to_string();
    let file = dir.join("reload.rules");
    std::fs::write(&file, format!("-w {prog_s} -p x -k first\n")).unwrap();

    let (_restore, auditd, sensor, log) = beside_auditd(&dir, &file);

    let before = run(&[&prog_s]);
    // Replaced: a new file renamed over the old one.
    let new = dir.join("prog.new");
    std::fs::copy("/usr/bin/true", &new).unwrap();
    std::fs::rename(&new, &prog).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let replaced = run(&[&prog_s]);

    // Edited and reloaded: the sensor on SIGHUP (auditd's side is reloaded by auditctl).
    std::fs::write(&file, format!("-w {prog_s} -p x -k second\n-e 2\n")).unwrap();
    sensor.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let reloaded = run(&[&prog_s]);
    // Locked by -e 2: a further edit is not taken.
    std::fs::write(&file, format!("-w {prog_s} -p x -k third\n")).unwrap();
    sensor.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let locked = run(&[&prog_s]);
    std::thread::sleep(Duration::from_millis(300));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("locked by -e 2"), "{stderr}");
    let kernel_log = dir.join("auditd.log");
    auditd.collect(&kernel_log, |t| {
        String::from_utf8_lossy(t).contains(&format!(" pid={replaced} "))
    });
    drop(auditd);

    let key = |log: &Path, pid: u32| -> Vec<Option<String>> {
        execs(log, pid).into_iter().map(|(_, key)| key).collect()
    };
    let first = vec![Some("first".to_string())];
    // The kernel's side, with its rules as loaded: the watch followed the replacement.
    assert_eq!(key(&kernel_log, before), first);
    assert_eq!(key(&kernel_log, replaced), first);
    assert_eq!(key(&log, before), first);
    assert_eq!(key(&log, replaced), first);
    assert_eq!(key(&log, reloaded), [Some("second".to_string())]);
    assert_eq!(key(&log, locked), [Some("second".to_string())]);
}

/// Priorities across syscall and watch rules, and trees: a keyless watch that wins keeps the key
/// of the syscall rule that matched after it; a directory watch fires on an exec whose ELF
/// interpreter lies under it (however its name is spelt), and not on a static program.
#[test]
fn a_keyless_watch_keeps_the_syscall_key_and_a_tree_sees_the_loader() {
    let _g = exclusive();
    let dir = scratch("rules-prio");
    let file = dir.join("prio.rules");
    std::fs::write(
        &file,
        "-w /usr/bin/env -p x\n\
         -a always,exit -F arch=b64 -S execve -F euid=0 -F exe=/usr/bin/env -k env-exec\n\
         -w /usr/lib/ -p x -k lib\n",
    )
    .unwrap();
    let (_restore, auditd, sensor, log) = beside_auditd(&dir, &file);
    let env = run(&["/usr/bin/env", "/usr/bin/true"]);
    let echo = run(&["/bin/echo", "hi"]);
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let kernel_log = dir.join("auditd.log");
    auditd.collect(&kernel_log, |t| {
        String::from_utf8_lossy(t).contains(&format!(" pid={echo} "))
    });
    drop(auditd);
    let keys = execs;
    for pid in [env, echo] {
        let (k, s) = (keys(&kernel_log, pid), keys(&log, pid));
        eprintln!("pid {pid}: kernel {k:?} | sensor {s:?}");
        assert_eq!(s, k);
    }
    let env_keys: Vec<_> = keys(&kernel_log, env).into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        env_keys,
        [Some("env-exec".to_string()), Some("lib".to_string())]
    );
}

/// Neo23x0's best-practice set (`tests/data/best-practice.rules`, its settings lines left out)
/// loaded in the kernel and the sensor: execs that hit its exec watches, its `never` tree on
/// /dev/shm and its syscall rules, and execs it selects nothing of, as root and as nobody, give
/// the same events with the same keys, while the sensor judges the misses in the kernel.
#[test]
fn a_best_practice_set_selects_the_same_execs_in_the_kernel_and_the_sensor() {
    let _g = exclusive();
    let dir = scratch("rules-best");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/best-practice.rules"),
    )
    .unwrap();
    let file = dir.join("best.rules");
    std::fs::write(&file, without_settings(&text)).unwrap();
    let shm = Path::new("/dev/shm").join(format!("sensor-it-{}", std::process::id()));
    std::fs::copy("/usr/bin/id", &shm).unwrap();
    let shm = shm.to_str().unwrap().to_string();
    let script = dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\n/usr/bin/whoami\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = script.to_str().unwrap().to_string();

    let (_restore, auditd, sensor, log) = beside_auditd(&dir, &file);
    let loader = "/lib64/ld-linux-x86-64.so.2";
    let mut pids = vec![
        run(&["/usr/bin/id"]),
        run(&["/usr/bin/whoami"]),
        run(&["/usr/bin/true"]),
        run(&["/usr/bin/grep", "-q", "x", "/dev/null"]),
        run(&[&shm]),
        run(&[loader, "/usr/bin/id"]),
        run(&[&script]),
        run(&["/bin/sh", "-c", "exec /nonexistent/x 2>/dev/null"]),
        as_nobody(&["/usr/bin/id"]),
        as_nobody(&["/usr/bin/true"]),
        as_nobody(&[&shm]),
        as_nobody(&[&script]),
    ];
    for _ in 0..20 {
        pids.push(run(&["/usr/bin/true"]));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = sensor.stop();
    let _ = std::fs::remove_file(&shm);
    assert!(status.success(), "{stderr}");
    let last = pids.last().unwrap().to_string();
    let kernel_log = dir.join("auditd.log");
    auditd.collect(&kernel_log, |t| {
        String::from_utf8_lossy(t).contains(&format!(" pid={last} "))
    });
    drop(auditd);
    let mut selected = 0;
    for pid in &pids {
        let (k, s) = (execs(&kernel_log, *pid), execs(&log, *pid));
        eprintln!("pid {pid}: kernel {k:?} | sensor {s:?}");
        let sorted = |mut v: Vec<(String, Option<String>)>| {
            v.sort();
            v
        };
        assert_eq!(sorted(s), sorted(k.clone()), "pid {pid}");
        selected += k.len();
    }
    assert!(selected >= 5, "the set selects some of these: {selected}");
    let left_out = stderr
        .lines()
        .find_map(|l| l.strip_suffix(" execs left out by the rules in the kernel"))
        .and_then(|l| l.strip_prefix("sensor: ")?.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(left_out >= 20, "{left_out}: {stderr}");
}
