//! The values of auditd.conf's keywords, checked as auditd's parsers check them, with their
//! messages.

use std::{os::unix::fs::MetadataExt, path::PathBuf};

use super::{Action, ConfError, Space};

pub(super) fn yes_no(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Digits only, as `strtoul` takes them, at most `max`.
pub(super) fn number(value: &str, line: usize, max: u64) -> Result<u64, ConfError> {
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

pub(super) fn space(value: &str, line: usize) -> Result<Space, ConfError> {
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

pub(super) fn action(value: &str, option: Option<&str>, line: usize) -> Result<Action, ConfError> {
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
pub(super) fn log_file(
    value: &str,
    line: usize,
    warnings: &mut Vec<String>,
) -> Result<PathBuf, ConfError> {
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

pub(super) fn group(value: &str, line: usize) -> Result<u32, ConfError> {
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
pub(super) fn check_email(acct: &str) -> Result<(), ConfError> {
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
