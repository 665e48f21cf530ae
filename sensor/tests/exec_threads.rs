//! An exec from a threaded process, end to end under the real sensor: the exec state the
//! kernel-side programs keep per thread follows the exec when another thread takes over the
//! leader's id. Host only (not in the kernel tier's smoke suite): the guest has no python3.

mod common;

use std::{process::Command, time::Duration};

use common::{exclusive, exec_events, scratch, Sensor};

/// A threaded process's exec, from its leader (whose exec state changes in place at
/// `sched_process_exec`) and from another thread (which takes over the leader's id there, so
/// its state moves to that id): both are recorded, successful, under the process's pid. With
/// no rules and with a rule that selects every exec, whose entry waits for the verdict at
/// `sched_process_exec`: the exit is sent only if the state that verdict left is found.
#[test]
fn an_exec_from_any_thread_of_a_process_is_recorded() {
    let _g = exclusive();
    let dir = scratch("thread-exec");
    let rules = dir.join("exec.rules");
    std::fs::write(
        &rules,
        "-a always,exit -F arch=b64 -S execve -k thread-exec\n",
    )
    .unwrap();
    // One thread execs while the other sleeps in the kernel; argv[2] says which. A failed
    // exec ends the process at once with status 1.
    let script = r#"
import os, sys, threading, time
def exec_it():
    try:
        os.execv("/bin/true", ["/bin/true", sys.argv[1], sys.argv[2]])
    finally:
        os._exit(1)
if sys.argv[2] == "leader":
    threading.Thread(target=lambda: time.sleep(30), daemon=True).start()
    exec_it()
threading.Thread(target=exec_it).start()
time.sleep(30)
"#;
    for with_rules in [false, true] {
        let log = dir.join(format!("sensor-{with_rules}.log"));
        let output = format!("audit:{}", log.display());
        let mut args = vec!["--output", &output];
        if with_rules {
            args.extend(["--rules", rules.to_str().unwrap()]);
        }
        let sensor = Sensor::start(&args);
        let marker = format!("sensorit-thread-exec-{}-{with_rules}", std::process::id());
        let mut pids = Vec::new();
        for from in ["leader", "thread"] {
            let mut child = Command::new("/usr/bin/python3")
                .args(["-c", script, &marker, from])
                .spawn()
                .unwrap();
            pids.push((from, child.id()));
            let status = child.wait().unwrap();
            assert!(status.success(), "{from}: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
        let (status, stderr) = sensor.stop();
        assert!(status.success(), "{stderr}");
        let events = exec_events(&log);
        for (from, pid) in pids {
            let ctx = format!("{from}, rules {with_rules}");
            let argv = [
                b"/bin/true".to_vec(),
                marker.clone().into_bytes(),
                from.into(),
            ];
            let ev = events
                .iter()
                .find(|e| e.argv == argv)
                .unwrap_or_else(|| panic!("{ctx}: the exec is not recorded"));
            assert!(ev.success && ev.exit == 0, "{ctx}: {ev:?}");
            assert_eq!(ev.task.pid, pid, "{ctx}: {ev:?}");
            let key = with_rules.then(|| b"thread-exec".to_vec());
            assert_eq!(ev.key, key, "{ctx}: {ev:?}");
        }
    }
}
