//! The installed unit, checked by systemd's own verifier. `systemd-analyze verify` returns 0 on a
//! line it ignores (an unknown key, a bad signal name), so anything it says is a failure too.

use std::{fs, path::PathBuf, process::Command};

use super::*;

/// A fresh directory to install into.
fn temp_root(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-install-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Installs under `root` as if `root` were `/`, except that the unit names the files where they
/// are (the verifier checks that ExecStart's program exists and is executable), with the
/// drop-in enabled beside it; returns what `systemd-analyze verify` said, and whether it passed.
fn install_and_verify(name: &str, edit: impl Fn(&Path)) -> (bool, String) {
    let root = temp_root(name);
    // Any real executable will do as the program: the verifier does not run it.
    let bin = std::env::current_exe().unwrap();
    let unit = install(&repo(), &bin, &root).unwrap();
    let text = fs::read_to_string(&unit).unwrap();
    let here = format!("{}/usr/local/", root.display());
    fs::write(&unit, text.replace("/usr/local/", &here)).unwrap();
    // As `ln -s` in the README enables it; the verifier reads drop-ins beside the unit.
    let dropins = unit.with_extension("service.d");
    fs::create_dir_all(&dropins).unwrap();
    let dropin = root.join(DATADIR).join("replace-auditd.conf");
    std::os::unix::fs::symlink(&dropin, dropins.join("replace-auditd.conf")).unwrap();
    edit(&unit);
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd) is installed");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = fs::remove_dir_all(&root);
    (out.status.success() && said.trim().is_empty(), said)
}

#[test]
fn the_installed_unit_and_drop_in_pass_systemd_analyze_verify() {
    let (ok, said) = install_and_verify("good", |_| {});
    assert!(ok, "systemd-analyze verify: {said}");
}

#[test]
fn the_verifier_catches_a_wrong_unit() {
    let cases: [(&str, &str, &str); 4] = [
        ("typo", "KillSignal=SIGTERM", "KillSignal=SIGTREM"),
        (
            "key",
            "Restart=on-failure",
            "Restart=on-failure\nRestartt=always",
        ),
        ("program", "/sbin/sensor run", "/sbin/no-such-sensor run"),
        ("section", "[Service]", "[Servic]"),
    ];
    for (name, from, to) in cases {
        let (ok, said) = install_and_verify(name, |unit| {
            let text = fs::read_to_string(unit).unwrap();
            assert!(text.contains(from), "{from} is in the unit");
            fs::write(unit, text.replacen(from, to, 1)).unwrap();
        });
        assert!(!ok, "{name}: a wrong unit passed: {said}");
    }
    let (ok, said) = install_and_verify("dropin", |unit| {
        let link = unit.with_extension("service.d").join("replace-auditd.conf");
        let target = fs::read_link(&link).unwrap();
        let text = fs::read_to_string(&target).unwrap();
        fs::write(&target, text.replace("Conflicts=", "Conflict=")).unwrap();
    });
    assert!(!ok, "a wrong drop-in passed: {said}");
}

#[test]
fn installs_under_root_with_the_paths_seen_from_it() {
    let root = temp_root("layout");
    let bin = std::env::current_exe().unwrap();
    let unit = install(&repo(), &bin, &root).unwrap();
    let text = fs::read_to_string(&unit).unwrap();
    assert!(text.contains(
        "ExecStart=/usr/local/sbin/sensor run --config /etc/audit/auditd.conf --rules /etc/audit/rules.d"
    ));
    assert!(!text.contains('@'), "a placeholder is left: {text}");
    let sensor = root.join(SBINDIR).join("sensor");
    assert_eq!(fs::read(&sensor).unwrap(), fs::read(&bin).unwrap());
    assert_eq!(
        fs::metadata(&sensor).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    let dropin = fs::read_to_string(root.join(DATADIR).join("replace-auditd.conf")).unwrap();
    assert!(dropin.contains("\nConflicts=auditd.service\n"));
    assert!(dropin.contains("ln -s /usr/local/share/sensor/replace-auditd.conf "));
    // Installing again over the first install (a running binary is replaced, not rewritten).
    install(&repo(), &bin, &root).unwrap();
    let _ = fs::remove_dir_all(&root);
}
