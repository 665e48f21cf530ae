//! The lines of auditd.conf: `keyword = value [option]`, split on spaces only, as auditd's
//! `nv_split()` does; each keyword's value checked as its auditd parser checks it.

use std::{os::unix::fs::MetadataExt, path::PathBuf};

use super::{Action, AuditdConf, ConfError, Flush, LogFormat, Overflow, SizeAction, Space};

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

fn yes_no(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Digits only, as `strtoul` takes them, at most `max`.
fn number(value: &str, line: usize, max: u64) -> Result<u64, ConfError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfError(format!(
            "Value {value} should only be numbers - line {line}"
        )));
    }
    match value.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(ConfError(format!(
            "Error - converted number ({value}) is too large - line {line}"
        ))),
        Err(_) => Err(ConfError(format!(
            "Error converting string to a number (Numerical result out of range) - line {line}"
        ))),
    }
}

fn space(value: &str, line: usize) -> Result<Space, ConfError> {
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_digit() && *c != '%') {
        return Err(ConfError(format!(
            "Value {bad} {value} should only be numbers or percent - line {line}"
        )));
    }
    // strtoul stops at the first '%' (auditd blanks it): the digits before it count.
    let digits: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| {
            ConfError(format!(
                "Error converting string to a number (Numerical result out of range) - line {line}"
            ))
        })?
    };
    if value.contains('%') {
        if n > 99 {
            return Err(ConfError(format!(
                "Percentages should be less than 100 - line {line}"
            )));
        }
        return Ok(Space::Percent(n as u8));
    }
    Ok(Space::Megabytes(n))
}

fn action(value: &str, option: Option<&str>, line: usize) -> Result<Action, ConfError> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "ignore" => Action::Ignore,
        "syslog" => Action::Syslog,
        "rotate" => Action::Rotate,
        "email" => Action::Email,
        "exec" => Action::Exec(check_exe(option, line)?),
        "suspend" => Action::Suspend,
        "single" => Action::Single,
        "halt" => Action::Halt,
        _ => return Err(ConfError(format!("Option {value} not found - line {line}"))),
    })
}

/// auditd's `check_exe_name()`: an absolute path to a regular file owned by root, mode 0750,
/// 0755, 0555 or 0550.
fn check_exe(path: Option<&str>, line: usize) -> Result<PathBuf, ConfError> {
    let Some(path) = path else {
        return Err(ConfError(format!("Executable path needed for line {line}")));
    };
    if !path.starts_with('/') {
        return Err(ConfError(format!(
            "Absolute path needed for {path} - line {line}"
        )));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfError(format!("Unable to stat {path} ({e}) - line {line}")))?;
    if !meta.is_file() {
        return Err(ConfError(format!(
            "{path} is not a regular file - line {line}"
        )));
    }
    if meta.uid() != 0 {
        return Err(ConfError(format!(
            "{path} is not owned by root - line {line}"
        )));
    }
    if ![0o750, 0o755, 0o555, 0o550].contains(&(meta.mode() & 0o777)) {
        return Err(ConfError(format!(
            "{path} permissions should be 0750, 0755, 0555 or 0550 - line {line}"
        )));
    }
    Ok(PathBuf::from(path))
}

/// auditd's `log_file_parser()`: its directory exists (and is at least `/var` long); an
/// existing file is a regular file owned by root.
fn log_file(value: &str, line: usize, warnings: &mut Vec<String>) -> Result<PathBuf, ConfError> {
    let path = PathBuf::from(value);
    let dir = match value.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => value[..i].to_string(),
        None => ".".to_string(),
    };
    if dir.len() < 4 {
        return Err(ConfError(format!(
            "The directory name: {dir} is too short - line {line}"
        )));
    }
    if let Err(e) = std::fs::read_dir(&dir) {
        return Err(ConfError(format!("Could not open dir {dir} ({e})")));
    }
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ConfError(format!("Unable to open {value} ({e})"))),
        Ok(meta) => {
            if !meta.is_file() {
                return Err(ConfError(format!("{value} is not a regular file")));
            }
            if meta.uid() != 0 {
                return Err(ConfError(format!("{value} is not owned by root")));
            }
            if meta.mode() & (libc::S_IXUSR | libc::S_IWGRP | libc::S_IXGRP | libc::S_IRWXO) != 0 {
                warnings.push(format!("{value} permissions should be 0600 or 0640"));
            }
        }
    }
    Ok(path)
}

fn group(value: &str, line: usize) -> Result<u32, ConfError> {
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        // strtoul: the leading digits.
        let digits: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
        return digits.parse().map_err(|_| {
            ConfError(format!(
                "Numeric group ID conversion error (Numerical result out of range) for {value} - line {line}"
            ))
        });
    }
    let name = std::ffi::CString::new(value).map_err(|_| unknown_group(value, line))?;
    // SAFETY: getgrnam returns a pointer into static storage or null; read at once.
    let gr = unsafe { libc::getgrnam(name.as_ptr()) };
    if gr.is_null() {
        return Err(unknown_group(value, line));
    }
    Ok(unsafe { (*gr).gr_gid })
}

fn unknown_group(value: &str, line: usize) -> ConfError {
    ConfError(format!(
        "Group ID is non-numeric and unknown ({value}) - line {line}"
    ))
}

/// auditd's `validate_email()`, without its DNS lookup (a failed lookup is not fatal there
/// either): only the characters and the shape are checked.
fn check_email(acct: &str) -> Result<(), ConfError> {
    if acct.len() < 2 {
        return Err(ConfError(format!(
            "email: {acct} is too short, expecting at least 2 characters"
        )));
    }
    if !acct
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@.-_+".contains(c))
    {
        return Err(ConfError(format!("email: {acct} has illegal character")));
    }
    if let Some(at) = acct.find('@') {
        if acct.rfind('.').is_none_or(|dot| dot < at) {
            return Err(ConfError(format!("email: {acct} should have . after @")));
        }
    }
    Ok(())
}
