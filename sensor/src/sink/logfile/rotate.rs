//! Opening, rotating and shifting the log files, as auditd does (`open_audit_log()`,
//! `rotate_logs()`, `shift_logs()`, `check_excess_logs()` in audit-userspace
//! `src/auditd-event.c`): `audit.log` is renamed `audit.log.1`, `.1` to `.2` and so on up to
//! `num_logs - 1`, whose former file is replaced; KEEP_LOGS shifts every existing log up one and
//! drops none.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::LogFile;
use crate::config::{Flush, SizeAction};

/// `audit.log.N`.
pub(super) fn numbered(log: &Path, n: u32) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Opens (creating) the log: O_APPEND, no symlink followed, O_DSYNC or O_SYNC as `flush` says;
/// mode 0600, or 0640 with group `group`, owner root. Returns the file and its size.
pub(super) fn open_log(path: &Path, flush: Flush, group: u32) -> io::Result<(File, u64)> {
    let mut flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
    match flush {
        Flush::Data => flags |= libc::O_DSYNC,
        Flush::Sync => flags |= libc::O_SYNC,
        _ => {}
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(if group != 0 { 0o640 } else { 0o600 })
        .custom_flags(flags)
        .open(path)?;
    let size = file.metadata()?.len();
    file.set_permissions(std::fs::Permissions::from_mode(if group != 0 {
        0o640
    } else {
        0o600
    }))?;
    std::os::unix::fs::fchown(&file, Some(0), Some(group))?;
    Ok((file, size))
}

impl LogFile {
    /// SIGUSR1, or an action that rotates: KEEP_LOGS shifts, anything else rotates.
    pub fn rotate_now(&mut self) {
        if self.conf.max_log_file_action == SizeAction::KeepLogs {
            self.shift_logs();
        } else {
            self.rotate_logs(0, false);
        }
    }

    /// auditd's `rotate_logs()`: `num_logs` 0 means the configured one; below 2, no rotation
    /// unless keeping every log.
    pub(super) fn rotate_logs(&mut self, num_logs: u32, keep_logs: bool) {
        if self.conf.num_logs < 2 && !keep_logs {
            self.notice("Log rotation disabled (num_logs < 2), skipping");
            return;
        }
        let group = self.conf.log_group;
        if let Some(f) = self.file.take() {
            // The closed log is kept read-only, as auditd leaves it.
            let mode = if group != 0 { 0o440 } else { 0o400 };
            let _ = f.set_permissions(std::fs::Permissions::from_mode(mode));
            let _ = std::os::unix::fs::fchown(&f, Some(0), Some(group));
        }
        let num_logs = if num_logs == 0 {
            self.conf.num_logs
        } else {
            num_logs
        };
        let log = self.conf.log_file.clone();
        for i in (2..num_logs).rev() {
            let (old, new) = (numbered(&log, i - 1), numbered(&log, i));
            if let Err(e) = std::fs::rename(&old, &new) {
                if e.kind() != io::ErrorKind::NotFound {
                    self.rename_failed(&old, &new, e, "rotate");
                }
            }
        }
        let first = numbered(&log, 1);
        if let Err(e) = std::fs::rename(&log, &first) {
            if e.kind() != io::ErrorKind::NotFound {
                self.rename_failed(&log, &first, e, "rotate2");
                // Not rotated: make the old log writable again, and try again next time.
                let mode = if group != 0 { 0o640 } else { 0o600 };
                let _ = std::fs::set_permissions(&log, std::fs::Permissions::from_mode(mode));
            }
        }
        if let Err(e) = self.open_file() {
            self.alert(libc::LOG_CRIT, "Could not reopen a log after rotating.");
            self.suspended = true;
            self.disk_error_action("reopen", &e);
        }
    }

    fn rename_failed(&mut self, old: &Path, new: &Path, e: io::Error, func: &str) {
        self.alert(
            libc::LOG_ERR,
            &format!(
                "Error rotating logs from {} to {} ({e})",
                old.display(),
                new.display()
            ),
        );
        if e.raw_os_error() == Some(libc::ENOSPC) && self.space_ok {
            self.space_ok = false;
            self.disk_full_action();
        } else {
            self.disk_error_action(func, &e);
        }
    }

    /// auditd's `shift_logs()`: from the last log known, find the first number not taken, and
    /// rotate that many.
    pub(super) fn shift_logs(&mut self) {
        let log = self.conf.log_file.clone();
        let free_from = |start: u32| {
            let mut n = start;
            while n < u32::MAX && std::fs::metadata(numbered(&log, n)).is_ok() {
                n += 1;
            }
            n
        };
        let mut n = free_from(self.last_log);
        if n <= self.last_log && self.last_log > 1 {
            self.notice(&format!(
                "Last known log disappeared ({})",
                numbered(&log, n).display()
            ));
            n = free_from(1);
        }
        self.last_log = n;
        self.rotate_logs(n + 1, true);
    }

    /// auditd's `check_excess_logs()`: with ROTATE and a limit, remove the logs numbered
    /// `num_logs` and on (left by a larger num_logs before).
    pub(super) fn check_excess_logs(&mut self) {
        if self.conf.max_log_file_action != SizeAction::Rotate || self.conf.num_logs < 2 {
            return;
        }
        let mut n = self.conf.num_logs;
        loop {
            let name = numbered(&self.conf.log_file, n);
            // Only a regular file owned by root is one of ours.
            match std::fs::symlink_metadata(&name) {
                Ok(m) if m.is_file() && m.uid() == 0 => {}
                _ => break,
            }
            if std::fs::remove_file(&name).is_err() {
                break;
            }
            self.notice(&format!(
                "Log {} removed as it exceeds num_logs parameter",
                name.display()
            ));
            n += 1;
        }
    }
}
