//! Real kernel audit beside the sensor, restored to exactly what it was on drop: the daemon's
//! running state, `enabled`, and the rules (only the test's own rule is added and removed).

use std::{os::unix::fs::MetadataExt, path::PathBuf, process::Command, time::Duration};

use super::wait_until;

pub const LOG: &str = "/var/log/audit/audit.log";

fn auditctl(args: &[&str]) -> String {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .expect("auditctl (Debian package auditd) is installed");
    assert!(
        out.status.success(),
        "auditctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `enabled` and `pid` from `auditctl -s`.
fn status() -> (u32, u32) {
    let s = auditctl(&["-s"]);
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0)
    };
    (field("enabled "), field("pid "))
}

pub struct Auditd {
    rule: Vec<String>,
    was_enabled: u32,
    started: Option<u32>,
    /// The log file (inode) and its length when the test began.
    log_ino: u64,
    log_offset: u64,
}

impl Auditd {
    /// Makes sure auditd runs with `rule` loaded (an `auditctl -a` rule without `-a`).
    pub fn start(rule: &[&str]) -> Auditd {
        let (was_enabled, pid) = status();
        let started = if pid == 0 {
            let ok = Command::new("auditd")
                .status()
                .expect("auditd (Debian package auditd) is installed");
            assert!(ok.success(), "auditd failed to start");
            assert!(
                wait_until(Duration::from_secs(10), || status().1 != 0),
                "auditd did not register with the kernel"
            );
            Some(status().1)
        } else {
            None
        };
        let (log_ino, log_offset) = std::fs::metadata(LOG)
            .map(|m| (m.ino(), m.len()))
            .unwrap_or((0, 0));
        auditctl(&["-e", "1"]);
        // No rule: kernel audit enabled is enough for the anomaly records.
        if !rule.is_empty() {
            let mut add = vec!["-a"];
            add.extend_from_slice(rule);
            auditctl(&add);
        }
        Auditd {
            rule: rule.iter().map(|s| s.to_string()).collect(),
            was_enabled,
            started,
            log_ino,
            log_offset,
        }
    }

    /// What auditd wrote since `start`, copied to `dest` once `ready` says it is all there.
    pub fn collect(&self, dest: &PathBuf, mut ready: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
        let mut new = Vec::new();
        wait_until(Duration::from_secs(15), || {
            new = self.written_since_start();
            ready(&new)
        });
        std::fs::write(dest, &new).unwrap();
        new
    }
}

impl Auditd {
    /// The log from where it stood at `start`. auditd rotates its log (max_log_file): when the
    /// file is another one now, the test's start is in the rotated one, `audit.log.1`.
    fn written_since_start(&self) -> Vec<u8> {
        let read_from = |path: &str, offset: u64| {
            let all = std::fs::read(path).unwrap_or_default();
            all.get(offset as usize..).unwrap_or_default().to_vec()
        };
        let now = std::fs::metadata(LOG).map(|m| m.ino()).unwrap_or(0);
        if now == self.log_ino {
            return read_from(LOG, self.log_offset);
        }
        let mut out = read_from(&format!("{LOG}.1"), self.log_offset);
        out.extend(read_from(LOG, 0));
        out
    }
}

impl Drop for Auditd {
    fn drop(&mut self) {
        if !self.rule.is_empty() {
            let mut del = vec!["-d"];
            del.extend(self.rule.iter().map(String::as_str));
            let _ = Command::new("auditctl").args(&del).output();
        }
        if let Some(pid) = self.started {
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            wait_until(Duration::from_secs(10), || {
                status().1 == 0 && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            });
        }
        let _ = Command::new("auditctl")
            .args(["-e", &self.was_enabled.to_string()])
            .output();
    }
}
