//! What auditd does when the disk runs low, fills up or fails (`do_space_left_action()`,
//! `do_disk_full_action()`, `do_disk_error_action()` in audit-userspace
//! `src/auditd-event.c`), with its messages: they go to stderr and to syslog (LOG_DAEMON), as
//! auditd's go to syslog. SINGLE and HALT run `/sbin/init 1` and `/sbin/init 0` as auditd
//! does, then the sensor stops; EXEC runs the program with no arguments and an empty
//! environment, logging suspended until SIGUSR2 or SIGHUP; EMAIL pipes the alert to
//! `/usr/lib/sendmail -t`.

use std::{
    ffi::CString,
    io::Write,
    path::Path,
    process::{Command, Stdio},
    sync::Once,
};

use super::LogFile;
use crate::config::Action;

const EMAIL_COMMAND: &str = "/usr/lib/sendmail";

/// One line to stderr and to syslog.
pub(super) fn say(priority: libc::c_int, text: &str) {
    static OPEN: Once = Once::new();
    eprintln!("sensor: {text}");
    OPEN.call_once(|| {
        // SAFETY: the ident is a static C string, as openlog keeps the pointer.
        unsafe { libc::openlog(c"sensor".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) }
    });
    if let Ok(text) = CString::new(text.replace('\0', " ")) {
        // SAFETY: "%s" with one C string.
        unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) };
    }
}

impl LogFile {
    pub(super) fn alert(&mut self, priority: libc::c_int, text: &str) {
        say(priority, text);
    }

    pub(super) fn notice(&mut self, text: &str) {
        say(libc::LOG_NOTICE, text);
    }

    /// Closes the log and stops writing it until SIGUSR2 (or SIGHUP): what is not written is
    /// counted.
    fn suspend(&mut self) {
        self.file = None;
        self.suspended = true;
    }

    /// `space_left` (admin false) or `admin_space_left` (true) was crossed.
    pub(super) fn space_left_action(&mut self, admin: bool) {
        let c = &self.conf;
        let (action, next) = if admin {
            (
                c.admin_space_left_action.clone(),
                format!(
                    "If the disk becomes full, audit will {}.",
                    c.disk_full_action.name()
                ),
            )
        } else {
            (
                c.space_left_action.clone(),
                format!(
                    "If the admin space left threshold is reached, audit will {}. If the disk \
                     becomes full, audit will {}.",
                    c.admin_space_left_action.name(),
                    c.disk_full_action.name()
                ),
            )
        };
        match action {
            Action::Ignore => {}
            Action::Syslog => self.alert(
                libc::LOG_ALERT,
                &format!("Audit daemon is low on disk space for logging. {next}"),
            ),
            Action::Rotate => self.rotate_if_limited(),
            Action::Email => {
                let (subject, content) = if admin {
                    ("Audit Admin Space Alert", format!("The audit daemon is very low on disk space for logging! Immediate action\nis required to ensure no loss of service.\n{next}"))
                } else {
                    ("Audit Disk Space Alert", format!("The audit daemon is low on disk space for logging! Please take action\nto ensure no loss of service.\n{next}"))
                };
                sendmail(subject, &content, &self.conf.action_mail_acct);
                self.alert(libc::LOG_ALERT, &content);
            }
            Action::Exec(exe) => {
                self.suspend();
                run_helper(&exe);
            }
            Action::Suspend => {
                self.alert(
                    libc::LOG_ALERT,
                    "Audit daemon is suspending logging due to low disk space.",
                );
                self.suspend();
            }
            Action::Single => self.change_runlevel("1", "The audit daemon is now changing the system to single user mode and exiting due to low disk space"),
            Action::Halt => self.change_runlevel("0", "The audit daemon is now halting the system and exiting due to low disk space"),
        }
    }

    pub(super) fn disk_full_action(&mut self) {
        self.alert(
            libc::LOG_ALERT,
            "Audit daemon has no space left on logging partition",
        );
        match self.conf.disk_full_action.clone() {
            Action::Ignore | Action::Syslog | Action::Email => {}
            Action::Rotate => self.rotate_if_limited(),
            Action::Exec(exe) => {
                self.suspend();
                run_helper(&exe);
            }
            Action::Suspend => {
                self.alert(libc::LOG_ALERT, "Audit daemon is suspending logging due to no space left on logging partition.");
                self.suspend();
            }
            Action::Single => self.change_runlevel("1", "The audit daemon is now changing the system to single user mode and exiting due to no space left on logging partition"),
            Action::Halt => self.change_runlevel("0", "The audit daemon is now halting the system and exiting due to no space left on logging partition"),
        }
    }

    /// A write (or rotation, or reopening) failed with `err` other than a full disk.
    pub(super) fn disk_error_action(&mut self, func: &str, err: &std::io::Error) {
        match self.conf.disk_error_action.clone() {
            Action::Ignore | Action::Rotate | Action::Email => {}
            Action::Syslog => self.alert(
                libc::LOG_ALERT,
                &format!("{func}: Audit daemon detected an error writing an event to disk ({err})"),
            ),
            Action::Exec(exe) => {
                self.suspend();
                run_helper(&exe);
            }
            Action::Suspend => {
                self.alert(libc::LOG_ALERT, "Audit daemon is suspending logging due to previously mentioned write error");
                self.suspend();
            }
            Action::Single => self.change_runlevel("1", "The audit daemon is now changing the system to single user mode and exiting due to previously mentioned write error"),
            Action::Halt => self.change_runlevel("0", "The audit daemon is now halting the system and exiting due to previously mentioned write error."),
        }
    }

    fn rotate_if_limited(&mut self) {
        if self.conf.num_logs > 1 {
            self.alert(libc::LOG_INFO, "Audit daemon rotating log files");
            self.rotate_logs(0, false);
        }
    }

    /// `/sbin/init LEVEL`, waited for off the pipeline; then the sensor stops, as auditd exits.
    fn change_runlevel(&mut self, level: &'static str, why: &str) {
        self.alert(libc::LOG_ALERT, why);
        self.stop_requested = true;
        let _ = std::thread::Builder::new()
            .name("runlevel".into())
            .spawn(move || {
                match Command::new("/sbin/init")
                    .arg(level)
                    .env_clear()
                    .stdin(Stdio::null())
                    .status()
                {
                    Ok(s) if s.success() => {
                        say(libc::LOG_ALERT, &format!("changed runlevel to {level}"))
                    }
                    Ok(s) => say(libc::LOG_ALERT, &format!("/sbin/init {level} failed ({s})")),
                    Err(e) => say(
                        libc::LOG_ALERT,
                        &format!("failed to run /sbin/init {level} ({e})"),
                    ),
                }
            });
    }
}

/// auditd's `safe_exec()`: the program alone, no arguments, empty environment; reaped off the
/// pipeline.
fn run_helper(exe: &Path) {
    match Command::new(exe).env_clear().stdin(Stdio::null()).spawn() {
        Ok(mut child) => {
            let _ = std::thread::Builder::new()
                .name("action-helper".into())
                .spawn(move || child.wait());
        }
        Err(e) => say(
            libc::LOG_ALERT,
            &format!("Audit daemon failed to exec {} ({e})", exe.display()),
        ),
    }
}

/// auditd's `sendmail()`: the alert piped to `/usr/lib/sendmail -t -fACCT`.
fn sendmail(subject: &str, content: &str, acct: &str) {
    let child = Command::new(EMAIL_COMMAND)
        .arg("-t")
        .arg(format!("-f{acct}"))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            say(
                libc::LOG_ERR,
                &format!("Error - {EMAIL_COMMAND} isn't executable ({e})"),
            );
            return;
        }
    };
    let message =
        format!("To: {acct}\nFrom: root\nSubject: {subject}\n\n{content}\n.\n\n").into_bytes();
    // The mailer may be slow: write and reap off the pipeline.
    let _ = std::thread::Builder::new()
        .name("sendmail".into())
        .spawn(move || {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(&message);
            }
            let _ = child.wait();
        });
}
