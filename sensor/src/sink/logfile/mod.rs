//! The log file auditd.conf describes (`sensor run --config`), written as auditd writes it:
//! created 0600 (0640 with `log_group`) and owned by root, flushed as `flush`/`freq` say,
//! rotated on `max_log_file` as `max_log_file_action` says and on SIGUSR1, watched for
//! `space_left`/`admin_space_left`, and handled on a full disk or a write error as the
//! configured actions say ([`actions`]). Records that could not be written are counted, never
//! silently gone; a failure is said once, and again when writing resumes.
//!
//! Writing resumes by itself when a write works again (a disk with room again, a directory put
//! back), except after SUSPEND or EXEC, which wait for SIGUSR2 or SIGHUP as auditd's do.

mod actions;
mod rotate;

use std::{
    fs::File,
    io::{self, Write},
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    sync::mpsc,
};

use crate::config::{AuditdConf, Flush, SizeAction, Space};

const MEGABYTE: u64 = 1 << 20;
/// Encoded events queued between flushes at most (a flush follows every batch).
const MAX_PENDING: usize = 16 << 20;
/// Bytes written per write(2), in whole events, between checks of size and space.
const CHUNK: usize = 256 << 10;

pub struct LogFile {
    conf: AuditdConf,
    file: Option<File>,
    /// The open log's size, as auditd counts it: what was there plus what was written.
    size: u64,
    pending: Vec<u8>,
    /// Where each queued event ends in `pending`.
    pending_ends: Vec<usize>,
    /// Events the log could not take, since start.
    pub unwritten: u64,
    /// SUSPEND or EXEC: nothing is written until SIGUSR2 or SIGHUP.
    suspended: bool,
    /// auditd's `fs_space_left`: the disk-full action runs once until writing works again.
    space_ok: bool,
    space_warned: bool,
    admin_warned: bool,
    /// space_left and admin_space_left in megabytes (percentages taken of the log's file system).
    space_left_mb: u64,
    admin_space_left_mb: u64,
    /// Records written since the last incremental flush.
    since_flush: u64,
    /// Where KEEP_LOGS starts looking for a free number.
    last_log: u32,
    /// The failure being reported, said once.
    failing: Option<String>,
    /// SINGLE or HALT ran: the sensor is to stop.
    pub stop_requested: bool,
    /// INCREMENTAL_ASYNC: fsync requests to the flusher thread.
    flusher: Option<mpsc::SyncSender<File>>,
}

impl LogFile {
    /// Opens the log `conf` names. An error (a directory that is not there, say) is returned for
    /// the caller to refuse the configuration with, as auditd refuses to start.
    pub fn open(conf: AuditdConf) -> io::Result<LogFile> {
        let mut log = LogFile {
            conf,
            file: None,
            size: 0,
            pending: Vec::new(),
            pending_ends: Vec::new(),
            unwritten: 0,
            suspended: false,
            space_ok: true,
            space_warned: false,
            admin_warned: false,
            space_left_mb: 0,
            admin_space_left_mb: 0,
            since_flush: 0,
            last_log: 1,
            failing: None,
            stop_requested: false,
            flusher: None,
        };
        if log.conf.write_logs {
            log.open_file()?;
            log.check_excess_logs();
        }
        log.start_flusher();
        Ok(log)
    }

    pub fn format(&self) -> crate::config::LogFormat {
        self.conf.log_format
    }

    pub fn writes(&self) -> bool {
        self.conf.write_logs
    }

    /// (Re)opens the log at its path and sets the space thresholds from its file system.
    fn open_file(&mut self) -> io::Result<()> {
        self.file = None;
        let (file, size) =
            rotate::open_log(&self.conf.log_file, self.conf.flush, self.conf.log_group)?;
        self.size = size;
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a statfs to fill.
        let known = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == 0;
        let of_fs = |s: Space| match s {
            Space::Megabytes(m) => m,
            Space::Percent(p) if known => {
                (st.f_blocks as f64 * (p as f64 / 100.0)) as u64 * st.f_bsize as u64 / MEGABYTE
            }
            Space::Percent(_) => 0,
        };
        self.space_left_mb = of_fs(self.conf.space_left);
        self.admin_space_left_mb = of_fs(self.conf.admin_space_left);
        self.file = Some(file);
        Ok(())
    }

    /// Queues one whole encoded event; what the log cannot take is counted.
    pub fn push(&mut self, event: &[u8]) {
        if !self.conf.write_logs {
            return;
        }
        if self.pending.len() + event.len() > MAX_PENDING {
            self.unwritten += 1;
            return;
        }
        self.pending.extend_from_slice(event);
        self.pending_ends.push(self.pending.len());
    }

    /// Writes what is queued, a chunk of whole events at a time, applying the size and space
    /// checks after each chunk (so rotation and the thresholds are no later than a chunk, where
    /// auditd checks after each record). A chunk the disk refuses is tried again event by event,
    /// so that what fits is written.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // A log deleted or moved away (its directory removed, say) would take the batch into a
        // file nobody reads: reopened at its path first (two stats per batch).
        self.reopen_moved();
        let batch = std::mem::take(&mut self.pending);
        let ends = std::mem::take(&mut self.pending_ends);
        let (mut i, mut start, mut single) = (0, 0, false);
        while i < ends.len() {
            if !self.suspended && self.file.is_none() {
                // Gone (a directory removed, a failed reopen): try again at each chunk.
                if let Err(e) = self.open_file() {
                    self.failed("reopen", &e, 0);
                }
            }
            let Some(f) = self.file.as_mut().filter(|_| !self.suspended) else {
                self.unwritten += (ends.len() - i) as u64;
                break;
            };
            let mut j = i + 1;
            while !single && j < ends.len() && ends[j] - start <= CHUNK {
                j += 1;
            }
            let before = self.size;
            match f.write_all(&batch[start..ends[j - 1]]) {
                Ok(()) => {
                    self.size += (ends[j - 1] - start) as u64;
                    self.written((j - i) as u64);
                }
                Err(e) => {
                    // Never a half record left behind.
                    let _ = f.set_len(before);
                    if j - i > 1 {
                        single = true;
                        continue;
                    }
                    self.failed("write", &e, 1);
                }
            }
            (i, start) = (j, ends[j - 1]);
        }
        let mut batch = batch;
        batch.clear();
        self.pending = batch;
        let mut ends = ends;
        ends.clear();
        self.pending_ends = ends;
    }

    fn written(&mut self, events: u64) {
        if self.failing.take().is_some() {
            say_resumed(&self.conf.log_file);
        }
        self.space_ok = true;
        if matches!(
            self.conf.flush,
            Flush::Incremental | Flush::IncrementalAsync
        ) {
            self.since_flush += events;
            if self.since_flush >= self.conf.freq as u64 {
                self.since_flush = 0;
                self.incremental_flush();
            }
        }
        self.check_log_file_size();
        self.check_space_left();
    }

    /// A batch the log could not take: counted, said once, and the configured action taken.
    fn failed(&mut self, func: &str, e: &io::Error, events: u64) {
        self.unwritten += events;
        let said = format!("{func}: {e}");
        let first = self.failing.as_deref() != Some(&said);
        if first {
            actions::say(
                libc::LOG_ERR,
                &format!(
                    "cannot write {}: {e}; records it cannot take are counted as unwritten",
                    self.conf.log_file.display()
                ),
            );
            self.failing = Some(said);
        }
        if e.raw_os_error() == Some(libc::ENOSPC) {
            if self.space_ok {
                self.space_ok = false;
                self.disk_full_action();
            }
        } else if first {
            self.disk_error_action(func, e);
        }
    }

    fn incremental_flush(&mut self) {
        let Some(f) = &self.file else { return };
        if self.conf.flush == Flush::IncrementalAsync {
            if let (Some(tx), Ok(dup)) = (&self.flusher, f.try_clone()) {
                // A flush already waiting covers this one.
                let _ = tx.try_send(dup);
                return;
            }
        }
        if let Err(e) = f.sync_all() {
            self.disk_error_action("fsync", &e);
        }
    }

    /// INCREMENTAL_ASYNC's flush thread: fsyncs off the pipeline.
    fn start_flusher(&mut self) {
        if self.conf.flush != Flush::IncrementalAsync || self.flusher.is_some() {
            return;
        }
        let (tx, rx) = mpsc::sync_channel::<File>(1);
        if std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                for f in rx {
                    let _ = f.sync_all();
                }
            })
            .is_ok()
        {
            self.flusher = Some(tx);
        }
    }

    /// auditd's `check_log_file_size()`.
    fn check_log_file_size(&mut self) {
        if self.size / MEGABYTE < self.conf.max_log_file {
            return;
        }
        match self.conf.max_log_file_action {
            SizeAction::Ignore => {}
            SizeAction::Syslog => self.alert(
                libc::LOG_ERR,
                "Audit daemon log file is larger than max size",
            ),
            SizeAction::Suspend => {
                self.alert(
                    libc::LOG_ERR,
                    "Audit daemon is suspending logging due to logfile size.",
                );
                self.file = None;
                self.suspended = true;
            }
            SizeAction::Rotate => {
                if self.conf.num_logs > 1 {
                    self.alert(libc::LOG_INFO, "Audit daemon rotating log files");
                    self.rotate_logs(0, false);
                }
            }
            SizeAction::KeepLogs => {
                self.alert(
                    libc::LOG_INFO,
                    "Audit daemon rotating log files with keep option",
                );
                self.shift_logs();
            }
        }
    }

    /// auditd's `check_space_left()`: the thresholds' actions run once each until space
    /// returns (for SYSLOG) or logging resumes; ROTATE may run again.
    fn check_space_left(&mut self) {
        let Some(f) = &self.file else { return };
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a statfs to fill.
        if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 {
            return;
        }
        let avail = st.f_bavail as u64;
        // Never the last 5 blocks.
        if avail < 5 {
            if self.space_ok {
                self.space_ok = false;
                self.disk_full_action();
            }
            return;
        }
        let blocks = |mb: u64| mb * (MEGABYTE / (st.f_bsize as u64).max(1));
        let rotate = crate::config::Action::Rotate;
        if avail < blocks(self.space_left_mb) {
            if !self.space_warned {
                self.space_left_action(false);
                self.space_warned = self.conf.space_left_action != rotate;
            }
        } else if self.space_warned && self.conf.space_left_action == crate::config::Action::Syslog
        {
            self.space_warned = false;
        }
        if avail < blocks(self.admin_space_left_mb) {
            if !self.admin_warned {
                self.space_left_action(true);
                self.admin_warned = self.conf.admin_space_left_action != rotate;
            }
        } else if self.admin_warned
            && self.conf.admin_space_left_action == crate::config::Action::Syslog
        {
            self.admin_warned = false;
        }
    }

    /// SIGUSR2 (auditd's `resume_logging()`): write again after SUSPEND or EXEC, reopening the
    /// log, which a helper may have moved.
    pub fn resume(&mut self) {
        if !self.conf.write_logs {
            return;
        }
        self.notice("Audit daemon is attempting to resume logging.");
        self.suspended = false;
        self.space_ok = true;
        self.space_warned = false;
        self.admin_warned = false;
        if self.file.is_none() {
            if let Err(e) = self.open_file() {
                self.alert(
                    libc::LOG_WARNING,
                    "Could not reopen a log after resume logging",
                );
                self.suspended = true;
                self.disk_error_action("resume", &e);
                return;
            }
            self.check_log_file_size();
        }
        self.notice("Audit daemon resumed logging.");
    }

    /// SIGHUP: the configuration read again. The log is reopened (at its new path, with its new
    /// mode and group) and logging resumes.
    pub fn reconfigure(&mut self, conf: AuditdConf) {
        self.flush();
        self.conf = conf;
        self.file = None;
        self.suspended = false;
        self.failing = None;
        self.start_flusher();
        if self.conf.write_logs {
            if let Err(e) = self.open_file() {
                self.failed("reopen", &e, 0);
            }
            self.check_excess_logs();
        }
    }

    /// Whether the log's path no longer leads to the open file (moved or deleted by hand).
    fn moved(&self) -> bool {
        let Some(f) = &self.file else {
            return false;
        };
        match (f.metadata(), std::fs::metadata(&self.conf.log_file)) {
            (Ok(open), Ok(at_path)) => (open.dev(), open.ino()) != (at_path.dev(), at_path.ino()),
            _ => true,
        }
    }

    /// Reopens a log moved away (the next batch goes to a new file at the path).
    fn reopen_moved(&mut self) {
        if !self.suspended && self.moved() {
            self.file = None;
        }
    }
}

fn say_resumed(path: &std::path::Path) {
    actions::say(
        libc::LOG_NOTICE,
        &format!("writing {} again", path.display()),
    );
}

#[cfg(test)]
mod tests;
