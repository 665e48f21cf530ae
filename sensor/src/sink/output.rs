//! One output: stdout or a file. Each fails alone: a full disk, an I/O error or a closed pipe is
//! reported once (with the path), the events of the batch it could not take are counted as
//! unwritten, and the next batch is tried again, so writing resumes by itself when the disk has
//! room again; a file is never left ending in half a record, and is reopened when it was moved or
//! deleted, and on request (SIGHUP).

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use super::{socket::SocketOutput, Format, OutputSpec};

/// Encoded events queued for one output between flushes at most (a flush follows every batch of
/// at most 256 events).
const MAX_PENDING: usize = 16 << 20;

enum Target {
    Stdout(io::Stdout),
    File(File),
    /// A collector's socket, written by a thread of its own.
    Socket(SocketOutput),
    /// A file that could not be reopened, or a closed stdout.
    Gone,
}

pub struct Output {
    pub format: Format,
    path: Option<PathBuf>,
    target: Target,
    /// Whole encoded events not written yet.
    pending: Vec<u8>,
    pending_events: u64,
    /// Events this output could not take, since start.
    unwritten: u64,
    /// The failure being reported, so that it is said once.
    failing: Option<String>,
}

fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
}

impl Output {
    /// Opens the output; an error names its path.
    pub fn open(spec: &OutputSpec) -> io::Result<Output> {
        let target = match (&spec.path, &spec.socket) {
            (None, Some(address)) => Target::Socket(SocketOutput::start(address.clone())?),
            (None, None) => Target::Stdout(io::stdout()),
            (Some(p), _) => Target::File(open_file(p).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open output {}: {e}", p.display()))
            })?),
        };
        Ok(Output {
            format: spec.format,
            path: spec.path.clone(),
            target,
            pending: Vec::new(),
            pending_events: 0,
            unwritten: 0,
            failing: None,
        })
    }

    fn name(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "standard output".into(),
        }
    }

    /// Queues one whole encoded event; when the output already holds too much it cannot take,
    /// the event is counted as unwritten instead.
    pub fn push(&mut self, event: &[u8]) {
        if let Target::Socket(s) = &self.target {
            if !s.push(event) {
                self.unwritten += 1;
            }
            return;
        }
        if self.pending.len() + event.len() > MAX_PENDING || matches!(self.target, Target::Gone) {
            self.unwritten += 1;
            return;
        }
        self.pending.extend_from_slice(event);
        self.pending_events += 1;
    }

    /// Writes what is queued. On a failure the batch is counted as unwritten (a file is cut back
    /// to where it was, so no half record stays) and the failure is reported once.
    pub fn flush(&mut self) {
        if let Target::Socket(s) = &self.target {
            s.wake();
        }
        if self.pending.is_empty() {
            return;
        }
        let result = match &mut self.target {
            Target::Stdout(out) => out.write_all(&self.pending).and_then(|()| out.flush()),
            Target::File(f) => {
                let before = f.metadata().map(|m| m.len());
                let r = f.write_all(&self.pending);
                if r.is_err() {
                    if let Ok(len) = before {
                        // A partial write of the batch: take it back.
                        let _ = f.set_len(len);
                    }
                }
                r
            }
            Target::Socket(_) | Target::Gone => Ok(()),
        };
        match result {
            Ok(()) => {
                if self.failing.take().is_some() {
                    eprintln!("sensor: writing {} again", self.name());
                }
                self.pending.clear();
                self.pending_events = 0;
            }
            Err(e) => {
                let closed = e.kind() == io::ErrorKind::BrokenPipe && self.path.is_none();
                let said = format!("{e}");
                if self.failing.as_deref() != Some(&said) {
                    eprintln!(
                        "sensor: cannot write {}: {e}; {}",
                        self.name(),
                        if closed {
                            "its records are counted as unwritten from now on"
                        } else {
                            "records it cannot take are counted as unwritten, and writing resumes when it can"
                        }
                    );
                    self.failing = Some(said);
                }
                self.unwritten += self.pending_events;
                self.pending.clear();
                self.pending_events = 0;
                if closed {
                    self.target = Target::Gone;
                }
            }
        }
    }

    /// Reopens a file output at its path (after rotation, or when asked to).
    pub fn reopen(&mut self) {
        let Some(path) = &self.path else {
            return;
        };
        match open_file(path) {
            Ok(f) => self.target = Target::File(f),
            Err(e) => {
                let said = format!("reopening: {e}");
                if self.failing.as_deref() != Some(&said) {
                    eprintln!("sensor: cannot reopen {}: {e}", path.display());
                    self.failing = Some(said);
                }
                self.target = Target::Gone;
            }
        }
    }

    /// Whether a file output's path no longer leads to the open file (moved or deleted), or a
    /// file output is gone and could be reopened.
    pub fn needs_reopen(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        match &self.target {
            Target::File(f) => {
                let (Ok(open), at_path) = (f.metadata(), std::fs::metadata(path)) else {
                    return true;
                };
                match at_path {
                    Ok(m) => (m.dev(), m.ino()) != (open.dev(), open.ino()),
                    Err(_) => true,
                }
            }
            Target::Gone => true,
            Target::Stdout(_) | Target::Socket(_) => false,
        }
    }

    /// Events this output could not take, since start (a socket's writer counts the ones lost
    /// with a connection).
    pub fn unwritten(&self) -> u64 {
        match &self.target {
            Target::Socket(s) => self.unwritten + s.lost(),
            _ => self.unwritten,
        }
    }

    /// At stop: a socket output sends what it holds until `deadline`.
    pub fn drain(&mut self, deadline: std::time::Instant) {
        if let Target::Socket(s) = &self.target {
            s.drain(deadline);
        }
    }
}
