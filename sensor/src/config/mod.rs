//! auditd.conf, read as auditd reads it (`sensor run --config FILE`): the same keywords,
//! defaults, checks and error messages (audit-userspace `src/auditd-config.c`), so a file auditd
//! takes is taken whole, and one auditd refuses is refused. The sensor applies what concerns the
//! log files ([`crate::sink::logfile`]) and the dispatcher plugins; auditd's network, Kerberos
//! and TLS settings (it receives from remote hosts, which the sensor does not) are checked and
//! kept aside in [`AuditdConf::not_applied`].

mod parse;
mod values;

use std::{
    fs::File,
    io::Read,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Why a configuration was refused: auditd's own message, with the line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfError(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Raw,
    Enriched,
}

/// `flush`: what is done to get records onto the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    None,
    /// fsync every `freq` records.
    Incremental,
    /// The same, done off the writing path (auditd's flush thread).
    IncrementalAsync,
    /// O_DSYNC: every write waits for its data.
    Data,
    /// O_SYNC: every write waits for data and metadata.
    Sync,
}

/// `max_log_file_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeAction {
    Ignore,
    Syslog,
    Suspend,
    Rotate,
    KeepLogs,
}

/// `space_left_action`, `admin_space_left_action`, `disk_full_action`, `disk_error_action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Ignore,
    Syslog,
    Rotate,
    Email,
    Exec(PathBuf),
    Suspend,
    Single,
    Halt,
}

impl Action {
    /// The keyword, as auditd's messages name it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Ignore => "ignore",
            Action::Syslog => "syslog",
            Action::Rotate => "rotate",
            Action::Email => "email",
            Action::Exec(_) => "exec",
            Action::Suspend => "suspend",
            Action::Single => "single",
            Action::Halt => "halt",
        }
    }
}

/// `space_left`, `admin_space_left`: megabytes, or a percentage of the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    Megabytes(u64),
    Percent(u8),
}

/// `overflow_action`: what happens when a plugin's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    Ignore,
    Syslog,
    Suspend,
    Single,
    Halt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditdConf {
    pub write_logs: bool,
    pub log_file: PathBuf,
    pub log_format: LogFormat,
    pub log_group: u32,
    pub flush: Flush,
    pub freq: u32,
    pub num_logs: u32,
    /// Megabytes.
    pub max_log_file: u64,
    pub max_log_file_action: SizeAction,
    pub space_left: Space,
    pub space_left_action: Action,
    pub admin_space_left: Space,
    pub admin_space_left_action: Action,
    pub disk_full_action: Action,
    pub disk_error_action: Action,
    pub action_mail_acct: String,
    pub verify_email: bool,
    pub q_depth: u32,
    pub overflow_action: Overflow,
    pub max_restarts: u32,
    pub plugin_dir: PathBuf,
    /// Keywords auditd takes that the sensor has no use for (its network listener, Kerberos,
    /// TLS, node names, priority boost…), with their lines: checked, then left alone.
    pub not_applied: Vec<(String, usize)>,
    /// auditd's warnings (a deprecated keyword, a log file's permissions…), to print.
    pub warnings: Vec<String>,
}

impl Default for AuditdConf {
    /// auditd's `clear_config()`: what holds for a keyword the file does not give.
    fn default() -> Self {
        AuditdConf {
            write_logs: true,
            log_file: PathBuf::from("/var/log/audit/audit.log"),
            log_format: LogFormat::Enriched,
            log_group: 0,
            flush: Flush::None,
            freq: 0,
            num_logs: 0,
            max_log_file: 0,
            max_log_file_action: SizeAction::Ignore,
            space_left: Space::Megabytes(0),
            space_left_action: Action::Ignore,
            admin_space_left: Space::Megabytes(0),
            admin_space_left_action: Action::Ignore,
            disk_full_action: Action::Ignore,
            disk_error_action: Action::Syslog,
            action_mail_acct: "root".into(),
            verify_email: true,
            q_depth: 2000,
            overflow_action: Overflow::Syslog,
            max_restarts: 10,
            plugin_dir: PathBuf::from("/etc/audit/plugins.d"),
            not_applied: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl AuditdConf {
    /// Reads `path` as auditd does: a missing file gives the defaults (with a warning); a file
    /// not owned by root, world writable, a symlink or not a regular file is refused.
    pub fn load(path: &Path) -> Result<AuditdConf, ConfError> {
        let file = match File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut conf = AuditdConf::default();
                conf.warnings.push(format!(
                    "Config file {} doesn't exist, skipping",
                    path.display()
                ));
                return Ok(conf);
            }
            Err(e) => return Err(ConfError(format!("Error opening config file ({e})"))),
        };
        let meta = file
            .metadata()
            .map_err(|e| ConfError(format!("Error fstat'ing config file ({e})")))?;
        let shown = path.display();
        if meta.uid() != 0 {
            return Err(ConfError(format!("Error - {shown} isn't owned by root")));
        }
        if meta.mode() & libc::S_IWOTH != 0 {
            return Err(ConfError(format!("Error - {shown} is world writable")));
        }
        if !meta.is_file() {
            return Err(ConfError(format!("Error - {shown} is not a regular file")));
        }
        // auditd reads lines of up to 511 bytes: a config is small; a huge one is not read whole.
        let mut text = Vec::new();
        file.take(1 << 20)
            .read_to_end(&mut text)
            .map_err(|e| ConfError(format!("Error reading config file ({e})")))?;
        parse::parse(&text, &shown.to_string())
    }

    /// auditd's `sanity_check()`, run once a file had at least one line.
    fn sanity_check(&self) -> Result<(), ConfError> {
        if let (Space::Megabytes(space), Space::Megabytes(admin)) =
            (self.space_left, self.admin_space_left)
        {
            if space <= admin {
                return Err(ConfError(format!(
                    "Error - space_left({space}) must be larger than admin_space_left({admin})"
                )));
            }
        }
        if matches!(self.flush, Flush::Incremental | Flush::IncrementalAsync) && self.freq == 0 {
            return Err(ConfError(
                "Error - incremental flushing chosen, but 0 selected for freq".into(),
            ));
        }
        if self.log_group != 0 && self.log_file.parent() == Some(Path::new("/var/log")) {
            return Err(ConfError(
                "Error - log_file is directly in /var/log and chgrp will alter a system \
                 directory's permissions. Use another directory."
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
