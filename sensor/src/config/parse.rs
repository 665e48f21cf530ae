//! The lines of auditd.conf: `keyword = value [option]`, split on spaces only, as auditd's
//! `nv_split()` does; each keyword's value checked as its auditd parser checks it.

use std::path::PathBuf;

use super::{
    values::{action, check_email, group, log_file, number, space, yes_no},
    Action, AuditdConf, ConfError, Flush, LogFormat, Overflow, SizeAction,
};

/// auditd reads with `fgets(buf, 512)`: a line needs its newline within 511 bytes.
const LINE_MAX: usize = 511;

/// Keywords whose value takes an option (`exec /path`).
const WITH_OPTION: [&str; 4] = [
    "space_left_action",
    "admin_space_left_action",
    "disk_full_action",
    "disk_error_action",
];

pub(super) fn parse(text: &[u8], file: &str) -> Result<AuditdConf, ConfError> {
    let mut conf = AuditdConf::default();
    let mut lineno = 1usize;
    let mut any = false;
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next, has_newline) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        rest = next;
        // A line without its newline in the buffer is skipped, as auditd skips it: also the
        // file's last line when the file does not end in one.
        if !has_newline || line.len() > LINE_MAX {
            conf.warnings
                .push(format!("Skipping line {lineno} in {file}: too long"));
            lineno += 1;
            continue;
        }
        any = true;
        let line = String::from_utf8_lossy(line);
        let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
        let Some(&first) = words.first() else {
            lineno += 1;
            continue;
        };
        if first.starts_with('#') {
            lineno += 1;
            continue;
        }
        let stop = |what: &str| {
            ConfError(format!(
                "{what} for line {lineno} in {file}; Not processing any more lines in {file}"
            ))
        };
        if words.get(1).is_some_and(|w| *w != "=") {
            return Err(stop("Missing equal sign"));
        }
        if !(3..=4).contains(&words.len()) {
            return Err(stop("Wrong number of arguments"));
        }
        let (name, value, option) = (first.to_ascii_lowercase(), words[2], words.get(3).copied());
        if !KNOWN.contains(&name.as_str()) {
            return Err(ConfError(format!(
                "Unknown keyword \"{name}\" in line {lineno} of {file}"
            )));
        }
        if let Some(o) = option {
            if !WITH_OPTION.contains(&name.as_str()) {
                return Err(ConfError(format!(
                    "Keyword \"{name}\" has invalid option \"{o}\" in line {lineno} of {file}"
                )));
            }
        }
        keyword(&mut conf, &name, value, option, lineno)?;
        lineno += 1;
    }
    if any {
        conf.sanity_check()?;
    }
    Ok(conf)
}

/// Every keyword auditd 4.x takes.
const KNOWN: &[&str] = &[
    "local_events",
    "write_logs",
    "log_file",
    "log_format",
    "log_group",
    "flush",
    "freq",
    "num_logs",
    "dispatcher",
    "name_format",
    "name",
    "disp_qos",
    "max_log_file",
    "max_log_file_action",
    "space_left",
    "space_left_action",
    "action_mail_acct",
    "verify_email",
    "admin_space_left",
    "admin_space_left_action",
    "disk_full_action",
    "disk_error_action",
    "priority_boost",
    "tcp_listen_port",
    "tcp_listen_queue",
    "tcp_max_per_addr",
    "use_libwrap",
    "tcp_client_ports",
    "tcp_client_max_idle",
    "transport",
    "enable_krb5",
    "krb5_principal",
    "krb5_key_file",
    "tls_psk_file",
    "tls_psk_identity",
    "tls_cipher_suites",
    "tls_key_exchange",
    "tls_require_pqc",
    "tls_auth",
    "tls_crypto_profile",
    "tls_allowed_clients",
    "distribute_network",
    "q_depth",
    "overflow_action",
    "max_restarts",
    "plugin_dir",
    "end_of_event_timeout",
    "report_interval",
];

fn keyword(
    conf: &mut AuditdConf,
    name: &str,
    value: &str,
    option: Option<&str>,
    line: usize,
) -> Result<(), ConfError> {
    let not_found = || ConfError(format!("Option {value} not found - line {line}"));
    match name {
        "write_logs" => conf.write_logs = yes_no(value).ok_or_else(not_found)?,
        "log_file" => conf.log_file = log_file(value, line, &mut conf.warnings)?,
        "log_format" => match value.to_ascii_lowercase().as_str() {
            "raw" => conf.log_format = LogFormat::Raw,
            "enriched" => conf.log_format = LogFormat::Enriched,
            "nolog" => {
                conf.warnings.push("The NOLOG option to log_format is deprecated. Please use the write_logs option.".into());
                conf.write_logs = false;
            }
            _ => return Err(not_found()),
        },
        "log_group" => conf.log_group = group(value, line)?,
        "flush" => {
            conf.flush = match value.to_ascii_lowercase().as_str() {
                "none" => Flush::None,
                "incremental" => Flush::Incremental,
                "incremental_async" => Flush::IncrementalAsync,
                "data" => Flush::Data,
                "sync" => Flush::Sync,
                _ => return Err(not_found()),
            }
        }
        "freq" => conf.freq = number(value, line, i32::MAX as u64)? as u32,
        "num_logs" => {
            let n = number(value, line, u64::MAX)?;
            if n > 999 {
                return Err(ConfError("num_logs must be 999 or less".into()));
            }
            conf.num_logs = n as u32;
        }
        "max_log_file" => conf.max_log_file = number(value, line, u64::MAX)?,
        "max_log_file_action" => {
            conf.max_log_file_action = match value.to_ascii_lowercase().as_str() {
                "ignore" => SizeAction::Ignore,
                "syslog" => SizeAction::Syslog,
                "suspend" => SizeAction::Suspend,
                "rotate" => SizeAction::Rotate,
                "keep_logs" => SizeAction::KeepLogs,
                // auditd lists exec but takes no option for this keyword: no path, refused.
                "exec" => return Err(ConfError(format!("Executable path needed for line {line}"))),
                _ => return Err(not_found()),
            }
        }
        "space_left" => conf.space_left = space(value, line)?,
        "admin_space_left" => conf.admin_space_left = space(value, line)?,
        "space_left_action" => {
            let a = action(value, option, line)?;
            if a == Action::Halt {
                return Err(ConfError("The HALT option in space_left_action has been deprecated to prevent system instability from premature shutdowns.".into()));
            }
            conf.space_left_action = a;
        }
        "admin_space_left_action" => conf.admin_space_left_action = action(value, option, line)?,
        "disk_full_action" => {
            let a = action(value, option, line)?;
            if a == Action::Email {
                return Err(ConfError(format!(
                    "Illegal option {value} for disk_full_action - line {line}"
                )));
            }
            conf.disk_full_action = a;
        }
        "disk_error_action" => {
            let a = action(value, option, line)?;
            if matches!(a, Action::Email | Action::Rotate) {
                return Err(ConfError(format!(
                    "Illegal option {value} for disk_error_action - line {line}"
                )));
            }
            conf.disk_error_action = a;
        }
        "action_mail_acct" => {
            if conf.verify_email {
                check_email(value)?;
            }
            conf.action_mail_acct = value.to_string();
        }
        "verify_email" => conf.verify_email = yes_no(value).ok_or_else(not_found)?,
        "q_depth" => {
            let n = number(value, line, u64::MAX)?;
            match n {
                0 => return Err(ConfError("q_depth must be greater than zero".into())),
                100_000.. => return Err(ConfError("q_depth must be 99999 or less".into())),
                _ => conf.q_depth = n as u32,
            }
        }
        "overflow_action" => {
            conf.overflow_action = match value.to_ascii_lowercase().as_str() {
                "ignore" => Overflow::Ignore,
                "syslog" => Overflow::Syslog,
                "suspend" => Overflow::Suspend,
                "single" => Overflow::Single,
                "halt" => Overflow::Halt,
                _ => return Err(not_found()),
            }
        }
        "max_restarts" => conf.max_restarts = number(value, line, i32::MAX as u64)? as u32,
        "plugin_dir" => conf.plugin_dir = PathBuf::from(value),
        "local_events" | "use_libwrap" | "distribute_network" | "enable_krb5"
        | "tls_require_pqc" => {
            yes_no(value).ok_or_else(not_found)?;
            conf.not_applied.push((name.to_string(), line));
        }
        "dispatcher" | "disp_qos" => conf
            .warnings
            .push(format!("The {name} option is deprecated - line {line}")),
        _ => conf.not_applied.push((name.to_string(), line)),
    }
    Ok(())
}
