//! The service and the image as shipped in packaging/: the systemd unit's capability bounding set
//! is enough for the sensor and each capability in it is needed; the container image, run with
//! the DaemonSet's settings, records the host's execs and a container's, with container context;
//! the DaemonSet validates against the Kubernetes schema. (`systemd-analyze verify` of the
//! installed unit is an xtask test: `cargo xtask install` is what installs it.)

mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{exclusive, exec_events, scratch, sensor_bin};
use sensor::event::ExecEvent;

#[path = "packaging/image.rs"]
mod image;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `CapabilityBoundingSet=` of the unit, lower-case without `CAP_` (as setpriv names them).
fn unit_caps() -> Vec<String> {
    let unit = std::fs::read_to_string(repo().join("packaging/systemd/sensor.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit sets CapabilityBoundingSet");
    line.split_whitespace()
        .map(|c| c.strip_prefix("CAP_").unwrap().to_lowercase())
        .collect()
}

/// The sensor under `setpriv` with only `caps` in its bounding set (so, as root, only those
/// permitted and effective) and no new privileges, as systemd starts the unit.
struct Limited {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Limited {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What one run under a capability set gave.
struct Outcome {
    /// The sensor said its probes were attached.
    attached: bool,
    stderr: String,
    events: Vec<ExecEvent>,
}

/// Where the three execs each capability is checked by happen.
struct Stage {
    dir: PathBuf,
    /// A copy of sleep under a 0700 directory of nobody's, watched by the rules.
    watched: PathBuf,
    /// A root with a copy of sleep (and its libraries) at /only/sleeper, a path the host lacks.
    chroot: PathBuf,
    rules: PathBuf,
}

fn stage(name: &str) -> Stage {
    let dir = scratch(name);
    let secret = dir.join("secret");
    std::fs::create_dir(&secret).unwrap();
    let watched = secret.join("prog");
    std::fs::copy("/bin/sleep", &watched).unwrap();
    let chroot = dir.join("root");
    let ldd = Command::new("ldd").arg("/bin/sleep").output().unwrap();
    let libs = String::from_utf8(ldd.stdout).unwrap();
    for lib in libs.split_whitespace().filter(|w| w.starts_with('/')) {
        let to = chroot.join(&lib[1..]);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, to).unwrap();
    }
    std::fs::create_dir_all(chroot.join("only")).unwrap();
    std::fs::copy("/bin/sleep", chroot.join("only/sleeper")).unwrap();
    let nobody = Command::new("chown")
        .args(["-R", "nobody"])
        .arg(&secret)
        .status()
        .unwrap();
    assert!(nobody.success());
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let rules = dir.join("watch.rules");
    let text = format!(
        "-w {} -p x -k watched\n-a always,exit -F arch=b64 -S execve,execveat -k all\n",
        watched.display()
    );
    std::fs::write(&rules, text).unwrap();
    Stage {
        dir,
        watched,
        chroot,
        rules,
    }
}

fn run_with(caps: &[String], st: &Stage) -> Outcome {
    let log = st.dir.join(format!("audit-{}.log", caps.join("-")));
    let set = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    let mut child = Command::new("setpriv")
        .args([
            "--bounding-set",
            &set,
            "--inh-caps",
            "-all",
            "--no-new-privs",
            "--",
        ])
        .arg(sensor_bin())
        .args(["run", "--rules"])
        .arg(&st.rules)
        .arg("--output")
        .arg(format!("audit:{}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut sensor = Limited { child, stderr: rx };
    let mut said = String::new();
    let start = Instant::now();
    let mut attached = false;
    while start.elapsed() < Duration::from_secs(60) {
        match sensor.stderr.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                attached |= line.contains("probes attached");
                said += &line;
                said.push('\n');
                if attached {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    if !attached {
        // Exited (the usual refusal), or hung: either way no longer running.
        let _ = sensor.child.kill();
        let _ = sensor.child.wait();
        return Outcome {
            attached,
            stderr: said,
            events: Vec::new(),
        };
    }
    let ran = |cmd: &mut Command| assert!(cmd.status().unwrap().success(), "{cmd:?}");
    ran(Command::new("/bin/echo")
        .arg("packaging-marker")
        .stdout(Stdio::null()));
    ran(Command::new(&st.watched).arg("0.01"));
    // Its own mount namespace too, as a container's task; it must live while the sensor reads
    // its /proc/PID/exe.
    ran(Command::new("unshare")
        .args(["-m", "chroot"])
        .arg(&st.chroot)
        .args(["/only/sleeper", "0.5"]));
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(sensor.child.id() as i32, libc::SIGTERM) };
    let status = sensor.child.wait().unwrap();
    said.extend(sensor.stderr.try_iter().map(|l| l + "\n"));
    assert!(status.success(), "{said}");
    Outcome {
        attached,
        stderr: said,
        events: exec_events(&log),
    }
}

fn exec_of<'a>(events: &'a [ExecEvent], argv0: &str) -> Option<&'a ExecEvent> {
    events
        .iter()
        .find(|e| e.argv.first().map(Vec::as_slice) == Some(argv0.as_bytes()))
}

/// What each capability is for, seen in the records: true when the run did it all.
fn check(o: &Outcome, st: &Stage) -> Result<(), String> {
    if !o.attached {
        return Err(format!("did not start: {}", o.stderr));
    }
    let echo = exec_of(&o.events, "/bin/echo").ok_or("no exec record of /bin/echo")?;
    if echo.argv.get(1).map(Vec::as_slice) != Some(b"packaging-marker") {
        return Err("the echo record lacks its marker".into());
    }
    let watched = st.watched.display().to_string();
    let watched = exec_of(&o.events, &watched).ok_or("no exec record of the watched program")?;
    if watched.key.as_deref() != Some(b"watched") {
        return Err(format!(
            "the watch under a 0700 directory did not select its exec (key {:?})",
            watched
                .key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
        ));
    }
    let sleeper = exec_of(&o.events, "/only/sleeper").ok_or("no exec record of the chroot's")?;
    // The program and its ELF interpreter, as auditd writes them: the interpreter is found
    // through /proc/PID/exe, the only way to the program from outside its root.
    if sleeper.paths.len() != 2 {
        return Err(format!(
            "the chroot's exec has {} PATH records, not 2",
            sleeper.paths.len()
        ));
    }
    Ok(())
}

#[test]
fn the_units_capabilities_are_enough_and_each_is_needed() {
    let _g = exclusive();
    let caps = unit_caps();
    assert!(!caps.contains(&"sys_admin".to_owned()), "{caps:?}");
    let st = stage("caps");
    let all = run_with(&caps, &st);
    check(&all, &st).unwrap_or_else(|e| panic!("with the unit's set {caps:?}: {e}"));
    // CAP_CHOWN is for auditd.conf's log_group, which this run does not use.
    for dropped in ["bpf", "perfmon", "sys_ptrace", "dac_read_search"] {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != dropped).cloned().collect();
        assert_ne!(fewer.len(), caps.len(), "{dropped} is in the unit's set");
        let outcome = run_with(&fewer, &st);
        let verdict = check(&outcome, &st);
        eprintln!("without {dropped}: {verdict:?}");
        assert!(
            verdict.is_err(),
            "without {dropped} everything still worked"
        );
    }
    let _ = std::fs::remove_dir_all(&st.dir);
}

/// The DaemonSet against the schema of the Kubernetes version the validator pins, strictly (an
/// unknown field is an error); and the validator refuses a manifest with a misspelt field or a
/// wrong type, so its passing means something.
#[test]
fn the_daemonset_validates_against_the_kubernetes_schema() {
    let manifest = repo().join("packaging/kubernetes/daemonset.yaml");
    let validate = |path: &Path| {
        let out = Command::new(image::VALIDATOR)
            .args(["--strict", "--no-warn"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("{} (installed by .ci/run): {e}", image::VALIDATOR));
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), said)
    };
    let (ok, said) = validate(&manifest);
    assert!(ok && said.contains("passed"), "{said}");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let dir = scratch("k8s");
    for (from, to) in [
        ("hostPID: true", "hostPid: true"),
        ("hostPID: true", "hostPID: \"yes\""),
        ("readOnly: true", "readonly: true"),
    ] {
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        let (ok, said) = validate(&bad);
        assert!(!ok, "{to}: passed: {said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_image_runs_as_the_daemonset_says_and_records_host_and_container_execs() {
    let _g = exclusive();
    let started = Instant::now();
    image::run_and_check(&repo());
    eprintln!("image test: {:.1}s in all", started.elapsed().as_secs_f64());
}
