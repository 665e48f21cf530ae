//! Following an observer's log during one `bench exec` round: the records it writes from a point
//! on, and among them the storm's EXECVE records (the round's marker as `a1`). Read incrementally,
//! so a poll costs what was written since the last one rather than the whole round's log again
//! (the host CPU the bench itself spends polling is inside the measurement), and across auditd's
//! rotations (`max_log_file`): the open file is read to its end before the new one is taken up.
//! bpftrace's output is followed the same way: one line per exec, argv joined by spaces.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// How a log's lines are read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Audit records: the storm's execs are EXECVE records with the marker as `a1`, and loss is
    /// the sensor's `op=sensor_lost lost=` running total.
    Audit,
    /// bpftrace's `join(argv)`: the storm's execs are lines whose second word is the marker, and
    /// loss is the sum of its `Lost N events` lines.
    Words,
    /// The sensor's protobuf stream: each message is its length as a varint, then an envelope;
    /// the storm's execs are those with the marker as an element of `ExecEvent.argv` (field 7,
    /// length-delimited: tag byte 0x3a, then the length, then the bytes). Loss is not read while
    /// following: `bench_sensor::proto_lost` decodes the stream once the sensor has stopped.
    Proto,
}

/// `ExecEvent.argv`'s tag: field 7, wire type 2.
const ARGV_TAG: u8 = 7 << 3 | 2;

/// auditd's `num_logs` goes up to 999; the rotated logs are searched up to this one.
const ROTATED_MAX: usize = 99;
const CHUNK: usize = 8 << 20;
/// The storm's marker is `a1`, after `type=EXECVE msg=audit(…): argc=2 a0="/bin/true"`: only
/// the start of an EXECVE record is searched (one with a 100 KiB argument is 200 KiB long).
const MARKER_WITHIN: usize = 256;
/// In a protobuf envelope the storm's argv comes after the header's numbers and the exec's first
/// fields (registers: up to 40 bytes); an older sensor wrote the host header (names and ids,
/// about 100 bytes) before the body.
const PROTO_MARKER_WITHIN: usize = 1024;

pub(crate) struct LogFollower {
    path: PathBuf,
    kind: Kind,
    file: Option<File>,
    /// The last line read, until its newline is written.
    partial: Vec<u8>,
    needle: Vec<u8>,
    /// Complete records (lines) read.
    pub(crate) records: usize,
    /// The storm's EXECVE records read.
    pub(crate) storm_execs: usize,
    /// The events the observer reported lost so far.
    pub(crate) lost: u64,
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
            kind: Kind::Audit,
            needle: format!(" a1=\"{marker}\"").into_bytes(),
            records: 0,
            storm_execs: 0,
            lost: 0,
        }
    }

    /// bpftrace's output, from its start.
    pub(crate) fn words(path: &Path, marker: &str) -> LogFollower {
        LogFollower {
            kind: Kind::Words,
            needle: marker.as_bytes().to_vec(),
            ..LogFollower::new(path, marker, false)
        }
    }

    /// The sensor's protobuf stream, from its start. The marker must be shorter than 128 bytes
    /// (a one-byte length).
    pub(crate) fn proto(path: &Path, marker: &str) -> LogFollower {
        assert!(marker.len() < 128, "a bench marker is short");
        let mut needle = vec![ARGV_TAG, marker.len() as u8];
        needle.extend_from_slice(marker.as_bytes());
        LogFollower {
            kind: Kind::Proto,
            needle,
            ..LogFollower::new(path, marker, false)
        }
    }

    /// Reads what was written since the last call.
    pub(crate) fn poll(&mut self) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        self.read_all(&mut file);
        let held = file.metadata().map(|m| m.ino()).ok();
        let at_path = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if at_path.is_none() || at_path == held {
            self.file = Some(file);
            return;
        }
        // Rotated: auditd writes whole records and moves to the new file for good, so what the
        // old one still got is read now, then the files rotated after it, oldest first (a storm
        // can fill more than one `max_log_file` between two polls, and `.1` is the newest), then
        // the new one from its start.
        self.read_all(&mut file);
        self.partial.clear();
        let base = self.path.display().to_string();
        let rotated = |k: usize| PathBuf::from(format!("{base}.{k}"));
        let ino = |k: usize| std::fs::metadata(rotated(k)).map(|m| m.ino()).ok();
        let at = (1..=ROTATED_MAX)
            .take_while(|&k| ino(k).is_some())
            .find(|&k| ino(k) == held);
        for k in (1..at.unwrap_or(1)).rev() {
            if let Ok(mut f) = File::open(rotated(k)) {
                self.read_all(&mut f);
                self.partial.clear();
            }
        }
        self.file = File::open(&self.path).ok();
        if let Some(mut f) = self.file.take() {
            self.read_all(&mut f);
            self.file = Some(f);
        }
    }

    /// Reads a file from where it stands to its end, a chunk at a time (a storm of 100 KiB
    /// arguments writes gigabytes).
    fn read_all(&mut self, file: &mut File) {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.take(&buf[..n]);
        }
    }

    fn take(&mut self, text: &[u8]) {
        self.partial.extend_from_slice(text);
        match self.kind {
            Kind::Proto => self.take_messages(),
            Kind::Audit | Kind::Words => self.take_lines(),
        }
    }

    /// The whole lines in `partial`; the last stays there until its newline is written.
    fn take_lines(&mut self) {
        let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let needle = &self.needle;
        for line in self.partial[..last].split(|&b| b == b'\n') {
            self.records += 1;
            let storm = match self.kind {
                Kind::Audit => {
                    if line.starts_with(b"type=DAEMON_ERR") {
                        self.lost = self.lost.max(lost_field(&String::from_utf8_lossy(line)));
                    }
                    let head = &line[..line.len().min(MARKER_WITHIN)];
                    head.starts_with(b"type=EXECVE")
                        && head.windows(needle.len()).any(|w| w == needle)
                }
                // Read by `take_messages`.
                Kind::Proto => false,
                Kind::Words => {
                    let text = String::from_utf8_lossy(line);
                    if let Some(n) = text
                        .strip_prefix("Lost ")
                        .and_then(|r| r.strip_suffix(" events"))
                        .and_then(|n| n.parse::<u64>().ok())
                    {
                        self.lost += n;
                    }
                    line.split(|&b| b == b' ').nth(1) == Some(needle.as_slice())
                }
            };
            if storm {
                self.storm_execs += 1;
            }
        }
        self.partial.drain(..=last);
    }

    /// The whole messages in `partial`; a message not written whole yet stays there.
    fn take_messages(&mut self) {
        let mut at = 0;
        while let Some((len, prefix)) = varint(&self.partial[at..]) {
            let Some(end) = (at + prefix).checked_add(len as usize) else {
                break;
            };
            if end > self.partial.len() {
                break;
            }
            let message = &self.partial[at + prefix..end];
            self.records += 1;
            let head = &message[..message.len().min(PROTO_MARKER_WITHIN)];
            if head.windows(self.needle.len()).any(|w| w == self.needle) {
                self.storm_execs += 1;
            }
            at = end;
        }
        self.partial.drain(..at);
    }
}

/// A varint at the start of `bytes`: its value and its length, or `None` if it is not all there.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The events the sensor lost: the last (largest) `lost=` of its DAEMON_ERR records, a running
/// total (`delta=` is each record's share). The value is quoted (`lost="10"`), as every value the
/// sensor composes.
pub(crate) fn sensor_lost(log: &Path) -> u64 {
    lost_in(&String::from_utf8_lossy(
        &std::fs::read(log).unwrap_or_default(),
    ))
}

/// As [`sensor_lost`], of audit text in hand.
pub(crate) fn lost_in(text: &str) -> u64 {
    text.lines().map(lost_field).max().unwrap_or(0)
}

/// `lost=` of one of the sensor's loss records, 0 for any other line.
fn lost_field(line: &str) -> u64 {
    if !line.starts_with("type=DAEMON_ERR") || !line.contains("op=sensor_lost") {
        return 0;
    }
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("lost="))
        .and_then(|v| v.trim_matches('"').parse().ok())
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
        // Two rotations before the next poll: the file held is .2 by then, and .1 is read too.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(exec("m").as_bytes())
            .unwrap();
        std::fs::rename(dir.join("audit.log.1"), dir.join("audit.log.2")).unwrap();
        std::fs::rename(&log, dir.join("audit.log.1")).unwrap();
        std::fs::write(&log, exec("m") + &exec("m")).unwrap();
        std::fs::rename(dir.join("audit.log.2"), dir.join("audit.log.3")).unwrap();
        std::fs::rename(dir.join("audit.log.1"), dir.join("audit.log.2")).unwrap();
        std::fs::rename(&log, dir.join("audit.log.1")).unwrap();
        std::fs::write(&log, exec("m")).unwrap();
        f.poll();
        assert_eq!((f.records, f.storm_execs), (9, 7));

        let lost = "type=DAEMON_ERR msg=audit(17.005:9): op=sensor_lost lost=\"4\" delta=\"4\" res=failed\n\
                    type=DAEMON_ERR msg=audit(18.005:10): op=sensor_lost lost=\"10\" delta=\"6\" res=failed\n";
        std::fs::write(dir.join("sensor.log"), lost).unwrap();
        assert_eq!(sensor_lost(&dir.join("sensor.log")), 10);
        let mut f = LogFollower::new(&dir.join("sensor.log"), "m", false);
        f.poll();
        assert_eq!((f.records, f.lost), (2, 10));

        let bt = dir.join("bpftrace.out");
        std::fs::write(
            &bt,
            "Attaching 1 probe...\n/bin/true m\n/bin/true mm\nLost 7 events\n/bin/true m x\n\
             Lost 3 events\nsh -c /bin/true m\n/bin/true m",
        )
        .unwrap();
        let mut f = LogFollower::words(&bt, "m");
        f.poll();
        assert_eq!((f.records, f.storm_execs, f.lost), (7, 2, 10));

        // Envelopes with an ExecEvent (body field 16) whose argv is /bin/true and the marker, a
        // near miss, and one whose end is not written yet.
        let envelope = |a1: &[u8]| {
            let mut exec = vec![ARGV_TAG, 9];
            exec.extend_from_slice(b"/bin/true");
            exec.extend_from_slice(&[ARGV_TAG, a1.len() as u8]);
            exec.extend_from_slice(a1);
            let mut env = vec![0x08, 0x08, 16 << 3 | 2, 0x01, exec.len() as u8];
            env.extend_from_slice(&exec);
            let mut framed = vec![env.len() as u8];
            framed.extend_from_slice(&env);
            framed
        };
        let pb = dir.join("sensor.pb");
        let stream = [envelope(b"m"), envelope(b"mm"), envelope(b"m")].concat();
        let cut = stream.len() - 3;
        std::fs::write(&pb, &stream[..cut]).unwrap();
        let mut f = LogFollower::proto(&pb, "m");
        f.poll();
        assert_eq!((f.records, f.storm_execs), (2, 1));
        std::fs::write(&pb, &stream).unwrap();
        f.poll();
        assert_eq!((f.records, f.storm_execs), (3, 2));
        // A length of 200 takes two bytes; its first alone is not a length yet.
        assert_eq!(varint(&[0xc8, 0x01, 0x00]), Some((200, 2)));
        assert_eq!(varint(&[0xc8]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
