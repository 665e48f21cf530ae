//! `sensor compare`, live, beside auditd running an execve rule: the exec corpus, an ABEND, a
//! protected hard link and a PAM call happen while it watches, until SIGINT; it must match at
//! least 99% of the kernel's EXECVE records and list the fields that differ. Then offline, on
//! the two logs it kept, with the same result.

mod common;

use std::{
    io::Read,
    process::{Command, Stdio},
    time::Duration,
};

use common::{
    auditd::Auditd, corpus::run_corpus, exclusive, scratch, sensor_bin, sysctl::Sysctls, wait_until,
};

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
        .arg("--keep")
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
    // A hard link to root's file by nobody, refused by fs.protected_hardlinks.
    let _sysctl = Sysctls::set(&[("fs.protected_hardlinks", "1")]);
    let secret = dir.join("secret");
    std::fs::write(&secret, b"root only").unwrap();
    let _ = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ln"])
        .arg(&secret)
        .arg(dir.join("link"))
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("pamtester")
        .args([service.as_str(), "root", "authenticate", "acct_mgmt"])
        .stdout(Stdio::null())
        .status();
    // Until interrupted: the scenarios are all in, and the sensor's last records follow.
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(compare.id() as i32, libc::SIGINT) };
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
    // Every exec's SYSCALL has the rule's key; the hard link's has none on either side.
    assert_eq!(
        key["count"].as_u64().unwrap() + 1,
        syscall["compared"].as_u64().unwrap(),
        "{key}"
    );
    // With a rule loaded the kernel adds CWD and PATH to the hard link's event: listed too.
    assert_eq!(syscall["fields"]["items"]["examples"][0][0], "2");
    assert_eq!(key["examples"][0][0], "\"sensor-it-compare\"");
    for t in ["ANOM_ABEND", "ANOM_LINK", "USER_AUTH", "USER_ACCT"] {
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

#[test]
fn catalog_explains_one_type_and_lists_all() {
    let one = Command::new(sensor_bin())
        .args(["catalog", "ANOM_LOGIN_LOCATION"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&one.stdout);
    assert!(one.status.success(), "{text}");
    for want in [
        "2104 ANOM_LOGIN_LOCATION",
        "pam_access",
        "synthesized with --infer-login-anomalies: rule access_origin",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let all = Command::new(sensor_bin())
        .args(["catalog", "--json"])
        .output()
        .unwrap();
    let list = json(&all.stdout);
    let list = list.as_array().unwrap();
    assert!(list.len() > 200);
    assert!(list
        .iter()
        .any(|t| t["number"] == 1300 && t["sensor"].as_str().unwrap().starts_with("captured")));
    let unknown = Command::new(sensor_bin())
        .args(["catalog", "NO_SUCH_TYPE"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}
