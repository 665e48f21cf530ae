//! A PAM call in another mount namespace whose root holds its own copies of libpam, libaudit and
//! the modules (a container's root filesystem, here a chroot in a new mount namespace): the
//! sensor attaches to those copies when the namespace's first task execs, and reports the call
//! with its container context.

mod common;

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
};

use common::{exclusive, scratch, Sensor};
use sensor::encode::parse::{decode_value, parse_log, Record};

/// Copies `file` to the same path under `root`, with every library `ldd` says it needs.
fn install(root: &Path, file: &str) {
    let out = Command::new("ldd").arg(file).output().unwrap();
    let mut files = vec![PathBuf::from(file)];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `libx.so.1 => /lib/…/libx.so.1 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
        let path = line
            .split("=>")
            .last()
            .and_then(|s| s.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(p) = path {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let dest = root.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        // The real file, not a symlink: a copy of its own, with its own inode.
        std::fs::copy(std::fs::canonicalize(&f).unwrap(), &dest).unwrap();
    }
}

fn lib(name: &str) -> String {
    sensor::load::find_library(name)
        .unwrap_or_else(|| panic!("{name} is installed"))
        .display()
        .to_string()
}

#[test]
fn pam_in_another_mount_namespace_with_its_own_libpam() {
    pam_in_a_container(&["--infer-login-anomalies"]);
}

/// The same with the classic uprobes (one perf event per function), as on kernels without
/// `uprobe_multi` links.
#[test]
fn pam_in_another_mount_namespace_with_single_uprobe_links() {
    pam_in_a_container(&["--uprobe-links", "single", "--infer-login-anomalies"]);
}

/// With rules that select none of the container's execs: they are left out in the kernel, and
/// the namespace's first exec still reaches the agent as the small event that has its libraries
/// watched.
#[test]
fn pam_in_another_mount_namespace_whose_execs_no_rule_selects() {
    let dir = scratch("pam-container-rules");
    let rules = dir.join("none.rules");
    std::fs::write(&rules, "-a always,exit -F arch=b64 -S execve -F uid=4242\n").unwrap();
    pam_in_a_container(&[
        "--rules",
        rules.to_str().unwrap(),
        "--infer-login-anomalies",
    ]);
}

fn pam_in_a_container(extra: &[&str]) {
    let _g = exclusive();
    let dir = scratch("pam-container");
    let root = dir.join("rootfs");
    let security = Path::new(&lib("libpam.so.0"))
        .parent()
        .unwrap()
        .join("security");
    for f in ["/usr/bin/pamtester", "/bin/sh", "/bin/sleep"] {
        install(&root, f);
    }
    for f in [lib("libpam.so.0"), lib("libaudit.so.1")] {
        install(&root, &f);
    }
    for m in ["pam_access.so", "pam_permit.so"] {
        install(&root, &security.join(m).display().to_string());
    }
    std::fs::create_dir_all(root.join("etc/pam.d")).unwrap();
    // pam_access looks the account up (glibc's built-in files database).
    for f in ["passwd", "group"] {
        std::fs::copy(Path::new("/etc").join(f), root.join("etc").join(f)).unwrap();
    }
    std::fs::write(root.join("etc/access.conf"), "-:root:ALL\n").unwrap();
    std::fs::write(
        root.join("etc/pam.d/sensor-it"),
        "auth required pam_permit.so\naccount required pam_access.so accessfile=/etc/access.conf\n",
    )
    .unwrap();
    let copy = root.join(lib("libpam.so.0").trim_start_matches('/'));
    assert_ne!(
        std::fs::metadata(&copy).unwrap().ino(),
        std::fs::metadata(lib("libpam.so.0")).unwrap().ino()
    );

    let (sensor, logs) = Sensor::start_logging_with(&dir, extra);
    // The shell's exec is the namespace's first: the sensor attaches then; pamtester runs after.
    let out = Command::new("unshare")
        .args(["--mount", "--fork", "chroot"])
        .arg(&root)
        .args(["/bin/sh", "-c"])
        .arg("/bin/sleep 2; /usr/bin/pamtester -I rhost=10.9.8.7 sensor-it root authenticate acct_mgmt")
        .output()
        .unwrap();
    let text = sensor.stop_and_read(&logs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Permission denied"), "pamtester: {stderr}");

    let own_ns = std::fs::metadata("/proc/self/ns/mnt")
        .unwrap()
        .ino()
        .to_string();
    let records: Vec<Record> = parse_log(&text)
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.get(b"msg").is_some()
                && r.get(b"mntns").map(decode_value) != Some(own_ns.clone().into_bytes())
        })
        .collect();
    let types: Vec<&[u8]> = records.iter().map(|r| r.rtype.as_slice()).collect();
    assert_eq!(
        types,
        [&b"USER_AUTH"[..], b"USER_ACCT", b"ANOM_LOGIN_LOCATION"],
        "libaudit's copy gave libpam's records; libpam's and the module's copies gave the rule's"
    );
    let anomaly = &records[2];
    assert_eq!(anomaly.get(b"sensor_rule"), Some(&b"\"access_origin\""[..]));
    assert!(records.iter().all(|r| r.get(b"mntns").is_some()));
}
