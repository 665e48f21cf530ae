//! The image of packaging/container built with podman from the sensor under test, and run on this
//! host with the pod spec of packaging/kubernetes/daemonset.yaml translated to podman's flags,
//! field by field (a field the translation does not know fails the test, so the run stays the
//! manifest's).

use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::common::{exec_events, scratch, sensor_bin, wait_until};

/// kubernetes-validate from PyPI, pinned in .ci/run, in a virtualenv of its own.
pub const VALIDATOR: &str = "/opt/kubernetes-validate/bin/kubernetes-validate";
/// That virtualenv's Python, which has PyYAML (a dependency of the validator).
const PYTHON: &str = "/opt/kubernetes-validate/bin/python";

/// podman as it works on this machine (shared/reference/containers.md): runc, since crun refuses
/// the hybrid cgroup layout; cgroupfs; and rlimits lowered, since root lacks CAP_SYS_RESOURCE.
fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
    cmd
}
const LIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} (podman: Debian packages podman, runc): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Removes the test's container and image, also when it fails.
struct Cleanup {
    image: String,
    container: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "-f", "-t", "0", &self.container])
            .output();
        let _ = podman().args(["rmi", "-f", &self.image]).output();
    }
}

/// The DaemonSet's pod spec, as JSON.
fn pod_spec(manifest: &Path) -> Value {
    let out = run(Command::new(PYTHON)
        .arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
        .arg(manifest));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "DaemonSet");
    doc["spec"]["template"]["spec"].clone()
}

/// podman's flags for the pod spec's one container, and its arguments. The pod's writable host
/// directories (`DirectoryOrCreate`, the log directory) are `logs` instead.
fn translate(spec: &Value, logs: &Path) -> (Vec<String>, Vec<String>) {
    let mut flags = Vec::new();
    assert_eq!(spec["hostPID"], true, "the sensor needs the host's PIDs");
    flags.push("--pid=host".to_owned());
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = c["securityContext"].as_object().unwrap();
    for (key, value) in sc {
        match (key.as_str(), value) {
            ("privileged", Value::Bool(false)) => {}
            ("allowPrivilegeEscalation", Value::Bool(false)) => {
                flags.push("--security-opt=no-new-privileges".into())
            }
            ("readOnlyRootFilesystem", Value::Bool(true)) => flags.push("--read-only".into()),
            // podman would otherwise write its own /etc/passwd entry for a numeric user over
            // the image's link to the host's (naming root "0"); Kubernetes' runtimes do not.
            ("runAsUser", v) => flags.extend([format!("--user={v}"), "--passwd=false".into()]),
            ("capabilities", caps) => {
                for cap in caps["drop"].as_array().into_iter().flatten() {
                    flags.push(format!("--cap-drop={}", cap.as_str().unwrap()));
                }
                for cap in caps["add"].as_array().into_iter().flatten() {
                    flags.push(format!("--cap-add={}", cap.as_str().unwrap()));
                }
            }
            ("seccompProfile", p) if p["type"] == "Unconfined" => {
                flags.push("--security-opt=seccomp=unconfined".into())
            }
            ("seccompProfile", p) if p["type"] == "RuntimeDefault" => {}
            _ => panic!("securityContext.{key}: {value} has no translation to podman here"),
        }
    }
    let volumes = spec["volumes"].as_array().unwrap();
    for m in c["volumeMounts"].as_array().unwrap() {
        let v = volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("volume {} is declared", m["name"]));
        let host = v["hostPath"]["path"].as_str().expect("hostPath volumes");
        let host = match v["hostPath"]["type"].as_str() {
            Some("DirectoryOrCreate") => logs.to_str().unwrap(),
            _ => host,
        };
        let ro = if m["readOnly"] == true { ":ro" } else { "" };
        flags.push(format!(
            "--volume={host}:{}{ro}",
            m["mountPath"].as_str().unwrap()
        ));
    }
    let args = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    (flags, args)
}

pub fn run_and_check(repo: &Path) {
    let id = std::process::id();
    let clean = Cleanup {
        image: format!("localhost/sensor-test-{id}:latest"),
        container: format!("sensor-test-{id}"),
    };
    let dir = scratch("image");
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();

    let t = Instant::now();
    run(Command::new(repo.join("packaging/container/build-image"))
        .arg(sensor_bin())
        .arg(&clean.image));
    let built = t.elapsed();
    let size = run(podman().args(["image", "inspect", "--format", "{{.Size}}", &clean.image]));
    eprintln!(
        "image: built in {:.1}s, {} bytes",
        built.as_secs_f64(),
        String::from_utf8_lossy(&size.stdout).trim()
    );

    let spec = pod_spec(&repo.join("packaging/kubernetes/daemonset.yaml"));
    let (flags, args) = translate(&spec, &logs);
    eprintln!("podman flags: {flags:?} {args:?}");
    let t = Instant::now();
    run(podman()
        .args(["run", "--detach", "--name", &clean.container])
        .args(LIMITS)
        .args(&flags)
        .arg(&clean.image)
        .args(&args));
    let said = || {
        let out = podman().args(["logs", &clean.container]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let running = || {
        let out = podman()
            .args([
                "inspect",
                "--format",
                "{{.State.Running}}",
                &clean.container,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    };
    // A sensor that refused to start ends the wait at once.
    wait_until(Duration::from_secs(60), || {
        said().contains("probes attached") || !running()
    });
    assert!(
        said().contains("probes attached"),
        "the sensor in the container did not attach: {}",
        said()
    );
    eprintln!("container: attached in {:.1}s", t.elapsed().as_secs_f64());

    // On the host, as nobody: the record names the user from the host's /etc/passwd.
    run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["/bin/echo", "packaging-host-marker"]));
    // In another container: the sensor's own image, whose `decode` of a missing file fails.
    let cidfile = dir.join("cid");
    let _ = podman()
        .args(["run", "--rm", "--cidfile"])
        .arg(&cidfile)
        .args(LIMITS)
        .args(["--entrypoint", "/usr/sbin/sensor", &clean.image])
        .args(["decode", "/packaging-container-marker"])
        .output()
        .unwrap();
    let cid = std::fs::read_to_string(&cidfile).unwrap().trim().to_owned();

    let log = logs.join("audit.log");
    // The program itself, not the setpriv or podman that started it with the same argument.
    let find = |argv: &[&str]| {
        exec_events(&log).into_iter().find(|e| {
            e.argv.len() == argv.len() && e.argv.iter().zip(argv).all(|(a, b)| a == b.as_bytes())
        })
    };
    let host_argv = ["/bin/echo", "packaging-host-marker"];
    let inside_argv = ["/usr/sbin/sensor", "decode", "/packaging-container-marker"];
    assert!(
        wait_until(Duration::from_secs(10), || {
            find(&host_argv).is_some() && find(&inside_argv).is_some()
        }),
        "no records of the markers in {}: {}",
        log.display(),
        said()
    );
    run(podman().args(["stop", "--time", "30", &clean.container]));
    let state = run(podman().args([
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &clean.container,
    ]));
    assert_eq!(
        String::from_utf8_lossy(&state.stdout).trim(),
        "0",
        "{}",
        said()
    );
    assert!(said().contains("sensor: stopped"), "{}", said());
    eprintln!(
        "container: ran and stopped in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let host = find(&host_argv).unwrap();
    let own_mnt = std::fs::metadata("/proc/self/ns/mnt").unwrap().ino() as u32;
    assert_eq!(host.task.uid, 65534);
    assert_eq!(
        host.container.mnt_ns, own_mnt,
        "the host's execs, by host PID"
    );
    assert_eq!(host.container.container_id, None);
    let inside = find(&inside_argv).unwrap();
    assert_eq!(inside.container.container_id.as_deref(), Some(cid.as_str()));
    assert_eq!(inside.container.ns_pid, 1);
    assert_ne!(inside.container.mnt_ns, own_mnt);
    assert!(String::from_utf8_lossy(&inside.container.cgroup_path).contains(&cid));

    let text = String::from_utf8(std::fs::read(&log).unwrap()).unwrap();
    let echo = text
        .lines()
        .find(|l| {
            l.contains("type=SYSCALL")
                && l.contains("exe=\"/usr/bin/echo\"")
                && l.contains(" uid=65534 ")
        })
        .expect("the echo's SYSCALL record");
    assert!(echo.contains("UID=\"nobody\""), "{echo}");
    // Container context on every record of an event that has a task.
    for line in text.lines().filter(|l| l.contains("type=SYSCALL")) {
        assert!(line.contains(" cgroup_id="), "no container context: {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
