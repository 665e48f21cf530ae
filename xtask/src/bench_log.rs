//! Following an observer's log during one `bench exec` round: the records it writes from a point
//! on, and among them the storm's EXECVE records (the round's marker as `a1`). Read incrementally,
//! so a poll costs what was written since the last one rather than the whole round's log again
//! (the host CPU the bench itself spends polling is inside the measurement), and across auditd's
//! rotations (`max_log_file`): the open file is read to its end before the new one is taken up.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

pub(crate) struct LogFollower {
    path: PathBuf,
    file: Option<File>,
    /// The last line read, until its newline is written.
    partial: Vec<u8>,
    needle: Vec<u8>,
    /// Complete records (lines) read.
    pub(crate) records: usize,
    /// The storm's EXECVE records read.
    pub(crate) storm_execs: usize,
}

impl LogFollower {
    /// From the log's end as it is now, or from its start (a log that does not exist yet is
    /// followed from its start when it appears).
    pub(crate) fn new(path: &Path, marker: &str, from_end: bool) -> LogFollower {
        let file = File::open(path).ok().map(|mut f| {
            if from_end {
                let _ = f.seek(SeekFrom::End(0));
            }
            f
        });
        LogFollower {
            path: path.to_owned(),
            file,
            partial: Vec::new(),
            needle: format!(" a1=\"{marker}\"").into_bytes(),
            records: 0,
            storm_execs: 0,
        }
    }

    /// Reads what was written since the last call.
    pub(crate) fn poll(&mut self) {
        // Two passes at most: the file we hold, then the one that replaced it at the path.
        for _ in 0..2 {
            if self.file.is_none() {
                self.file = File::open(&self.path).ok();
            }
            let Some(file) = self.file.as_mut() else {
                return;
            };
            let mut text = Vec::new();
            let _ = file.read_to_end(&mut text);
            let held = file.metadata().map(|m| m.ino()).ok();
            let at_path = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
            if at_path.is_none() || at_path == held {
                self.take(&text);
                return;
            }
            // Rotated: auditd writes whole records and moves to the new file for good, so what
            // the old one still gets is read now and the new one is read from its start.
            let _ = file.read_to_end(&mut text);
            self.take(&text);
            self.partial.clear();
            self.file = File::open(&self.path).ok();
        }
    }

    fn take(&mut self, text: &[u8]) {
        self.partial.extend_from_slice(text);
        let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let needle = &self.needle;
        for line in self.partial[..last].split(|&b| b == b'\n') {
            self.records += 1;
            if line.starts_with(b"type=EXECVE") && line.windows(needle.len()).any(|w| w == needle) {
                self.storm_execs += 1;
            }
        }
        self.partial.drain(..=last);
    }
}

/// The events the sensor lost: the last (largest) `lost=` of its DAEMON_ERR records, a running
/// total (`delta=` is each record's share). The value is quoted (`lost="10"`), as every value the
/// sensor composes.
pub(crate) fn sensor_lost(log: &Path) -> u64 {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    text.lines()
        .filter(|l| l.starts_with("type=DAEMON_ERR") && l.contains("op=sensor_lost"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("lost="))
                .and_then(|v| v.trim_matches('"').parse().ok())
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_log_is_followed_across_a_rotation_and_the_sensors_loss_is_read() {
        let dir = std::env::temp_dir().join(format!("xtask-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("audit.log");
        let exec =
            |m: &str| format!("type=EXECVE msg=audit(1.0:1): argc=2 a0=\"/bin/true\" a1=\"{m}\"\n");
        std::fs::write(&log, exec("old")).unwrap();
        let mut f = LogFollower::new(&log, "m", true);
        let mut text = format!("type=SYSCALL x\n{}", exec("m"));
        text.push_str("type=EXECVE msg=audit(1.0:2): argc=2 a0=\"/bin/true\" a1=\"m");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        f.poll();
        assert_eq!((f.records, f.storm_execs), (2, 1));
        // The line ends, then auditd moves the log to .1 and starts a new one.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"\"\n")
            .unwrap();
        std::fs::rename(&log, dir.join("audit.log.1")).unwrap();
        std::fs::write(&log, exec("m") + &exec("other")).unwrap();
        f.poll();
        assert_eq!((f.records, f.storm_execs), (5, 3));

        let lost = "type=DAEMON_ERR msg=audit(17.005:9): op=sensor_lost lost=\"4\" delta=\"4\" res=failed\n\
                    type=DAEMON_ERR msg=audit(18.005:10): op=sensor_lost lost=\"10\" delta=\"6\" res=failed\n";
        std::fs::write(dir.join("sensor.log"), lost).unwrap();
        assert_eq!(sensor_lost(&dir.join("sensor.log")), 10);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
