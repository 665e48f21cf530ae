//! `sensor compare`, live, beside auditd running an execve rule: the exec corpus, an ABEND, a
//! protected hard link and a PAM call happen while it watches; it must match at least 99% of
//! the kernel's EXECVE records and list the fields that differ. Then offline, on the two logs it
//! kept, with the same result.

mod common;

use std::{
    io::Read,
    process::{Command, Stdio},
    time::Duration,
};

use common::{auditd::Auditd, corpus::run_corpus, exclusive, scratch, sensor_bin, wait_until};

const SECONDS: u64 = 12;

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

#[test]
fn live_comparison_beside_auditd() {
    let _g = exclusive();
    let dir = scratch("compare");
    let keep = dir.join("logs");
    let auditd = Auditd::start(&[
        "always,exit",
        "-F",
        "arch=b64",
        "-S",
        "execve,execveat",
        "-k",
        "sensor-it-compare",
    ]);
    let service = format!("sensor-it-compare-{}", std::process::id());
    let stack = std::path::Path::new("/etc/pam.d").join(&service);
    std::fs::write(
        &stack,
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    )
    .unwrap();

    let mut compare = Command::new(sensor_bin())
        .args([
            "compare",
            "--json",
            "--min-coverage",
            "99",
            "--type",
            "EXECVE",
        ])
        .args(["--duration", &SECONDS.to_string(), "--keep"])
        .arg(&keep)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = compare.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 256];
    assert!(wait_until(Duration::from_secs(60), || {
        let n = stderr.read(&mut buf).unwrap_or(0);
        said.extend_from_slice(&buf[..n]);
        n == 0 || String::from_utf8_lossy(&said).contains("watching")
    }));
    assert!(
        String::from_utf8_lossy(&said).contains("watching"),
        "{}",
        String::from_utf8_lossy(&said)
    );

    let cases = run_corpus(&dir, "compare");
    let _ = Command::new("/bin/sh")
        .args(["-c", "kill -SEGV $$"])
        .status();
    let _ = Command::new("pamtester")
        .args([service.as_str(), "root", "authenticate", "acct_mgmt"])
        .stdout(Stdio::null())
        .status();
    let out = compare.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&stack);
    drop(auditd);

    let report = json(&out.stdout);
    let execve = &report["types"]["EXECVE"];
    let (kernel, both) = (
        execve["kernel"].as_u64().unwrap(),
        execve["both"].as_u64().unwrap(),
    );
    println!("EXECVE: kernel {kernel}, both {both}; report: {report:#}");
    assert!(
        kernel >= cases.len() as u64 / 2,
        "the kernel saw {kernel} EXECVE records"
    );
    assert!(
        both * 100 >= kernel * 99,
        "EXECVE matched {both} of {kernel}"
    );
    assert!(
        out.status.success(),
        "exit status {:?} with coverage {both}/{kernel}",
        out.status
    );
    // The rule's key is the kernel's; the sensor has no rules. Every difference is listed.
    let syscall = &report["types"]["SYSCALL"];
    let key = &syscall["fields"]["key"];
    assert_eq!(key["count"], syscall["compared"], "{key}");
    assert_eq!(key["examples"][0][0], "\"sensor-it-compare\"");
    for t in ["ANOM_ABEND", "USER_AUTH", "USER_ACCT"] {
        assert!(
            report["types"][t]["both"].as_u64().unwrap_or(0) >= 1,
            "{t}: {}",
            report["types"][t]
        );
    }

    // Offline, on the logs it kept: the same comparison.
    let offline = Command::new(sensor_bin())
        .args(["compare", "--json", "--audit-log"])
        .arg(keep.join("kernel.log"))
        .arg("--sensor-log")
        .arg(keep.join("sensor.log"))
        .output()
        .unwrap();
    assert!(offline.status.success());
    assert_eq!(json(&offline.stdout), report);
    // A threshold it cannot meet fails.
    let strict = Command::new(sensor_bin())
        .args(["compare", "--audit-log"])
        .arg(keep.join("kernel.log"))
        .arg("--sensor-log")
        .arg(keep.join("sensor.log"))
        .args(["--min-coverage", "100", "--type", "CONFIG_CHANGE"])
        .output()
        .unwrap();
    assert!(
        !strict.status.success(),
        "CONFIG_CHANGE is never the sensor's"
    );
}
