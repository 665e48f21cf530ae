use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf};

use super::*;

/// The auditd.conf audit-userspace installs.
const SHIPPED: &str = include_str!("../../tests/data/auditd.conf");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sensor-conf-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// `text` written as a root-owned 0640 file, loaded.
fn load(name: &str, text: &str) -> Result<AuditdConf, ConfError> {
    let d = dir(name);
    let path = d.join("auditd.conf");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    AuditdConf::load(&path)
}

/// The shipped file with its log in a scratch directory (its /var/log/audit may not exist).
fn shipped(name: &str) -> (String, PathBuf) {
    let log = dir(&format!("{name}-log")).join("audit.log");
    let text = SHIPPED.replace(
        "log_file = /var/log/audit/audit.log",
        &format!("log_file = {}", log.display()),
    );
    (text, log)
}

fn err(name: &str, text: &str) -> String {
    load(name, text).unwrap_err().to_string()
}

#[test]
fn the_shipped_file_gives_auditds_settings() {
    let (text, log) = shipped("shipped");
    let c = load("shipped", &text).unwrap();
    assert!(c.write_logs);
    assert_eq!(c.log_file, log);
    assert_eq!(c.log_format, LogFormat::Enriched);
    assert_eq!(c.log_group, 0);
    assert_eq!((c.flush, c.freq), (Flush::IncrementalAsync, 50));
    assert_eq!((c.max_log_file, c.num_logs), (8, 5));
    assert_eq!(c.max_log_file_action, SizeAction::Rotate);
    assert_eq!(c.space_left, Space::Megabytes(75));
    assert_eq!(c.space_left_action, Action::Syslog);
    assert_eq!(c.admin_space_left, Space::Megabytes(50));
    assert_eq!(c.admin_space_left_action, Action::Suspend);
    assert_eq!(c.disk_full_action, Action::Suspend);
    assert_eq!(c.disk_error_action, Action::Suspend);
    assert_eq!(
        (c.q_depth, c.overflow_action, c.max_restarts),
        (2000, Overflow::Syslog, 10)
    );
    assert_eq!(c.plugin_dir, PathBuf::from("/etc/audit/plugins.d"));
    let ignored: Vec<&str> = c.not_applied.iter().map(|(k, _)| k.as_str()).collect();
    assert!(ignored.contains(&"tcp_listen_queue") && ignored.contains(&"priority_boost"));
    assert!(!ignored.contains(&"log_file"));
}

#[test]
fn a_missing_file_gives_the_defaults_with_a_warning() {
    let c = AuditdConf::load(&dir("missing").join("nope.conf")).unwrap();
    assert_eq!(c.log_format, LogFormat::Enriched);
    assert_eq!(c.disk_error_action, Action::Syslog);
    assert!(
        c.warnings[0].contains("doesn't exist, skipping"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn keywords_and_enumerations_ignore_case_values_need_spaces() {
    let (text, _) = shipped("case");
    let text = text.replace("log_format = ENRICHED", "LOG_FORMAT = raw");
    assert_eq!(load("case", &text).unwrap().log_format, LogFormat::Raw);
    // auditd splits on spaces only: `key=value` is one word.
    let bad = text.replace("num_logs = 5", "num_logs=5");
    assert!(err("case2", &bad).contains("Wrong number of arguments for line"));
}

#[test]
fn auditds_checks_refuse_what_auditd_refuses() {
    let (base, _) = shipped("checks");
    let cases: &[(&str, &str, &str)] = &[
        (
            "num_logs = 5",
            "colour = blue",
            "Unknown keyword \"colour\" in line",
        ),
        ("num_logs = 5", "num_logs 5", "Missing equal sign for line"),
        (
            "num_logs = 5",
            "num_logs = 1000",
            "num_logs must be 999 or less",
        ),
        (
            "num_logs = 5",
            "num_logs = 5x",
            "Value 5x should only be numbers",
        ),
        (
            "num_logs = 5",
            "num_logs = 5 extra",
            "has invalid option \"extra\"",
        ),
        (
            "space_left = 75",
            "space_left = 50",
            "space_left(50) must be larger than admin_space_left(50)",
        ),
        (
            "space_left = 75",
            "space_left = 100%",
            "Percentages should be less than 100",
        ),
        (
            "freq = 50",
            "freq = 0",
            "incremental flushing chosen, but 0 selected for freq",
        ),
        (
            "space_left_action = SYSLOG",
            "space_left_action = HALT",
            "HALT option in space_left_action has been deprecated",
        ),
        (
            "disk_full_action = SUSPEND",
            "disk_full_action = EMAIL",
            "Illegal option EMAIL for disk_full_action",
        ),
        (
            "disk_error_action = SUSPEND",
            "disk_error_action = ROTATE",
            "Illegal option ROTATE for disk_error_action",
        ),
        (
            "disk_error_action = SUSPEND",
            "disk_error_action = EXEC",
            "Executable path needed",
        ),
        (
            "disk_error_action = SUSPEND",
            "disk_error_action = EXEC bin/x",
            "Absolute path needed for bin/x",
        ),
        (
            "disk_error_action = SUSPEND",
            "disk_error_action = EXEC /nonexistent/x",
            "Unable to stat /nonexistent/x",
        ),
        (
            "max_log_file_action = ROTATE",
            "max_log_file_action = EXEC",
            "Executable path needed",
        ),
        (
            "max_log_file_action = ROTATE",
            "max_log_file_action = LATER",
            "Option LATER not found",
        ),
        (
            "q_depth = 2000",
            "q_depth = 0",
            "q_depth must be greater than zero",
        ),
        (
            "action_mail_acct = root",
            "action_mail_acct = a$b",
            "email: a$b has illegal character",
        ),
        (
            "log_group = root",
            "log_group = no-such-group-here",
            "Group ID is non-numeric and unknown",
        ),
        (
            "log_file = ",
            "log_file = /nonexistent-dir/x/audit.log\n#",
            "Could not open dir /nonexistent-dir/x",
        ),
    ];
    for (from, to, expected) in cases {
        let text = if from.ends_with("= ") {
            base.lines()
                .map(|l| {
                    if l.starts_with("log_file") {
                        to.to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        } else {
            assert!(base.contains(from), "{from}");
            base.replace(from, to)
        };
        let e = err("checks-case", &text);
        assert!(e.contains(expected), "{to}: {e}");
    }
}

#[test]
fn exec_actions_name_a_root_owned_program() {
    let (base, _) = shipped("exec");
    let d = dir("exec-prog");
    let prog = d.join("on-full");
    fs::write(&prog, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o750)).unwrap();
    let text = base.replace(
        "disk_full_action = SUSPEND",
        &format!("disk_full_action = exec {}", prog.display()),
    );
    assert_eq!(
        load("exec", &text).unwrap().disk_full_action,
        Action::Exec(prog.clone())
    );
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(err("exec", &text).contains("permissions should be 0750, 0755, 0555 or 0550"));
}

#[test]
fn the_file_itself_must_be_safe() {
    let (text, _) = shipped("safe");
    let d = dir("safe-file");
    let path = d.join("auditd.conf");
    fs::write(&path, &text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o646)).unwrap();
    assert!(AuditdConf::load(&path)
        .unwrap_err()
        .to_string()
        .contains("is world writable"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    assert!(AuditdConf::load(&path)
        .unwrap_err()
        .to_string()
        .contains("isn't owned by root"));
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    let link = d.join("link.conf");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(AuditdConf::load(&link)
        .unwrap_err()
        .to_string()
        .contains("Error opening config file"));
    assert!(AuditdConf::load(&path).is_ok());
}

#[test]
fn a_last_line_without_its_newline_is_skipped_as_auditd_skips_it() {
    let (text, _) = shipped("lastline");
    let c = load("lastline", &format!("{text}num_logs = 9")).unwrap();
    assert_eq!(c.num_logs, 5);
    assert!(
        c.warnings.iter().any(|w| w.contains("too long")),
        "{:?}",
        c.warnings
    );
    let long = format!("{text}# {}\nnum_logs = 7\n", "x".repeat(600));
    assert_eq!(load("longline", &long).unwrap().num_logs, 7);
}
