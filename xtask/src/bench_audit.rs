//! Kernel audit's state for the benches: auditd running, audit disabled between rounds, the
//! execve rule or a whole rules file loaded for auditd's rounds, and everything put back as it
//! was found: the rules (compared with `auditctl -l` as saved at the start), auditd stopped if
//! the bench started it, `enabled`, and the backlog limit where `bench exec` set its own. Kernel
//! settings (`-e`, `-f`, `-b`, `-r`, `--backlog_wait_time`, `--loginuid-immutable`…) are never
//! changed by a rules file: only its rule lines are loaded.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};

const RULE: &[&str] = &[
    "always,exit",
    "-F",
    "arch=b64",
    "-S",
    "execve",
    "-k",
    "sensor-bench",
];

/// The task rule of [`Audit::without_contexts`], as `auditctl -l` lists it.
const TASK_NEVER: &str = "-a never,task";

/// The first words of the lines of a rules file that are loaded: rules and watches. Everything
/// else is a kernel setting (`-e 2` would lock the rules until reboot, `-f 2` panics the host on
/// a lost record), `-D`, or a flag.
const RULE_LINES: &[&str] = &["-a", "-A", "-d", "-w", "-W"];
/// The options a loaded line may hold: auditctl takes every option on a line, so `-a … -e 2`
/// would lock the rules too.
const RULE_OPTIONS: &[&str] = &["-a", "-A", "-d", "-w", "-W", "-F", "-S", "-C", "-k", "-p"];

/// The rule lines of a rules file, and the first words of the other lines (comments and blank
/// lines aside). auditctl splits at spaces only, and a comment is a line whose first word starts
/// with `#`.
fn rule_lines(text: &str) -> (Vec<&str>, Vec<String>) {
    let (mut kept, mut skipped) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
        match words.first() {
            None => {}
            Some(first) if first.starts_with('#') => {}
            Some(first)
                if RULE_LINES.contains(first)
                    && words
                        .iter()
                        .all(|w| !w.starts_with('-') || RULE_OPTIONS.contains(w)) =>
            {
                kept.push(line)
            }
            Some(first) => skipped.push(first.to_string()),
        }
    }
    (kept, skipped)
}

pub(crate) fn auditctl(args: &[&str]) -> Result<String> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("auditctl (Debian package auditd)")?;
    ensure!(
        out.status.success(),
        "auditctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn audit_status(field: &str) -> Result<u64> {
    let s = auditctl(&["-s"])?;
    Ok(s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0))
}

/// Kernel audit's settings as `auditctl -s` shows them, without the counters and auditd's pid
/// (whether auditd runs is compared instead).
fn settings() -> Result<Vec<String>> {
    let keys = [
        "enabled",
        "failure",
        "rate_limit",
        "backlog_limit",
        "backlog_wait_time",
        "loginuid_immutable",
    ];
    let mut v: Vec<String> = auditctl(&["-s"])?
        .lines()
        .filter(|l| keys.contains(&l.split(' ').next().unwrap_or_default()))
        .map(str::to_owned)
        .collect();
    v.push(format!("auditd running: {}", audit_status("pid ")? != 0));
    Ok(v)
}

/// The kernel's rules as `auditctl -l` lists them (without its "No rules").
fn listing() -> Result<Vec<String>> {
    Ok(auditctl(&["-l"])?
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(str::to_owned)
        .collect())
}

/// A rules file's rule lines, in a copy that starts with `-i`, so that a line auditctl (or the
/// sensor, which reads files as auditctl does) refuses on this host is reported and skipped
/// rather than ending the load.
pub(crate) struct RulesCopy {
    pub(crate) path: PathBuf,
    /// The file name of the original, for the table.
    pub(crate) name: String,
    pub(crate) kept: usize,
    /// The first words of the lines left out (settings, `-D`, flags).
    pub(crate) skipped: Vec<String>,
}

impl RulesCopy {
    pub(crate) fn new(src: &Path, dir: &Path) -> Result<RulesCopy> {
        ensure!(
            src.is_file(),
            "--rules {}: not a file (join a rules directory into one file)",
            src.display()
        );
        let text = std::fs::read_to_string(src).with_context(|| src.display().to_string())?;
        let (lines, skipped) = rule_lines(&text);
        ensure!(
            !lines.is_empty(),
            "--rules {}: no rule lines",
            src.display()
        );
        let path = dir.join("bench.rules");
        std::fs::write(&path, format!("-i\n{}\n", lines.join("\n")))?;
        Ok(RulesCopy {
            path,
            name: src
                .file_name()
                .map_or_else(|| src.display().to_string(), |n| n.to_string_lossy().into()),
            kept: lines.len(),
            skipped,
        })
    }
}

/// What the kernel made of a rules file: how many rules it holds, the lines auditctl refused.
pub(crate) struct Loaded {
    pub(crate) rules: usize,
    pub(crate) refused: Vec<String>,
}

pub(crate) struct Audit {
    was_enabled: u64,
    started: Option<u32>,
    /// auditd's pid, running when the bench started or started by it.
    pub(crate) pid: u32,
    /// The kernel's rules and settings when the bench started.
    saved: Vec<String>,
    saved_settings: Vec<String>,
    /// The backlog limit before `set_backlog`.
    backlog_was: Option<u64>,
}

impl Audit {
    pub(crate) fn prepare() -> Result<Audit> {
        let was_enabled = audit_status("enabled ")?;
        let saved = listing()?;
        let saved_settings = settings()?;
        let started = if audit_status("pid ")? == 0 {
            ensure!(
                Command::new("auditd").status()?.success(),
                "auditd failed to start"
            );
            let t = Instant::now();
            while audit_status("pid ")? == 0 {
                ensure!(
                    t.elapsed() < Duration::from_secs(10),
                    "auditd did not register"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(audit_status("pid ")? as u32)
        } else {
            None
        };
        auditctl(&["-e", "0"])?;
        Ok(Audit {
            was_enabled,
            started,
            pid: audit_status("pid ")? as u32,
            saved,
            saved_settings,
            backlog_was: None,
        })
    }

    /// `auditctl -b`: the records kernel audit queues for auditd before it loses or waits
    /// (Debian's audit.rules sets 8192); put back on drop.
    pub(crate) fn set_backlog(&mut self, limit: u64) -> Result<()> {
        let was = audit_status("backlog_limit ")?;
        auditctl(&["-b", &limit.to_string()])?;
        self.backlog_was.get_or_insert(was);
        Ok(())
    }

    /// The execve rule added (beside the rules found) and audit enabled, or both undone.
    pub(crate) fn set(&self, on: bool) -> Result<()> {
        let mut args = vec![if on { "-a" } else { "-d" }];
        args.extend_from_slice(RULE);
        auditctl(&args)?;
        self.enable(on)
    }

    /// With `true`, tasks forked from now on get no audit context (`-A task,never`, first in the
    /// task list, which stops at its first match), as on a host where audit was never enabled;
    /// `false` deletes that rule. Once audit has been enabled at all (auditd ran, or an auditd
    /// round did), the kernel gives every new task a context, and with audit disabled each of
    /// its syscalls still takes the slow path through audit's entry and exit, which measured
    /// here slower than audit enabled without rules (getppid, medians of 10 rounds: 267 ns
    /// without a context, 475 with one and audit disabled, 372 enabled). Rounds without kernel
    /// audit load this rule, or their "none" would carry that cost, and so would the sensor's.
    /// Where the host's own rules hold that rule already (auditctl refuses it twice), they are
    /// left as they are.
    pub(crate) fn without_contexts(&self, on: bool) -> Result<()> {
        if !self.saved.iter().any(|l| l == TASK_NEVER) {
            auditctl(&[if on { "-A" } else { "-d" }, "task,never"])?;
        }
        Ok(())
    }

    /// Kernel audit on or off, without rules.
    pub(crate) fn enable(&self, on: bool) -> Result<()> {
        auditctl(&["-e", if on { "1" } else { "0" }])?;
        Ok(())
    }

    /// The kernel's rules replaced by the file's alone, and audit enabled.
    pub(crate) fn load(&self, rules: &RulesCopy) -> Result<Loaded> {
        auditctl(&["-D"])?;
        let out = Command::new("auditctl")
            .arg("-R")
            .arg(&rules.path)
            .output()
            .context("auditctl -R")?;
        // With `-i` auditctl exits 0 whatever it refused, and names each refused line.
        let copy = std::fs::read_to_string(&rules.path)?;
        let refused = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| {
                l.strip_prefix("There was an error in line ")?
                    .split(' ')
                    .next()
            })
            .filter_map(|n| copy.lines().nth(n.parse::<usize>().ok()?.checked_sub(1)?))
            .map(str::to_owned)
            .collect();
        ensure!(
            out.status.success(),
            "auditctl -R {}: {}",
            rules.path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let rules = listing()?.len();
        self.enable(true)?;
        Ok(Loaded { rules, refused })
    }

    /// Audit disabled and the rules found at the start put back.
    pub(crate) fn unload(&self) -> Result<()> {
        self.enable(false)?;
        self.restore_rules()
    }

    /// `auditctl -D`, then the saved listing line by line (`auditctl -l` prints rules as they are
    /// given), unless the kernel already holds exactly the saved rules.
    fn restore_rules(&self) -> Result<()> {
        if listing()? == self.saved {
            return Ok(());
        }
        auditctl(&["-D"])?;
        for line in &self.saved {
            let args: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
            auditctl(&args).with_context(|| format!("restoring the kernel's rule {line}"))?;
        }
        let now = listing()?;
        if now != self.saved {
            bail!(
                "the kernel's rules differ from those found at the start:\nfound:\n{}\nnow:\n{}",
                self.saved.join("\n"),
                now.join("\n")
            );
        }
        Ok(())
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        // A round that failed may have left the execve rule or a rules file loaded.
        if let Err(e) = self.restore_rules() {
            eprintln!("bench: {e:#}");
        }
        if let Some(pid) = self.started {
            // SAFETY: plain signal to a pid we started.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let t = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && t.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = Command::new("auditctl")
            .args(["-e", &self.was_enabled.to_string()])
            .output();
        if let Some(limit) = self.backlog_was {
            let _ = auditctl(&["-b", &limit.to_string()]);
        }
        match settings() {
            Ok(now) if now == self.saved_settings => {}
            Ok(now) => eprintln!(
                "bench: kernel audit's settings differ from those found at the start:\nfound:\n{}\nnow:\n{}",
                self.saved_settings.join("\n"),
                now.join("\n")
            ),
            Err(e) => eprintln!("bench: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rule_lines;

    #[test]
    fn only_rule_lines_are_loaded_and_never_a_setting() {
        let text = "## comment\n\n-D\n-b 8192\n-f 2\n-e 2\n-e\t2\n--loginuid-immutable\n\
            --backlog_wait_time 60000\n-r 100\n-i\n\
            -a always,exit -F arch=b64 -S execve -k exec\n\
            -w /etc/passwd -p wa -k identity\n\
            -a always,exit -S execve -e 2\n\
            -a always,exit -F arch=b64 -S open -F exit=-EACCES -k access\n";
        let (kept, skipped) = rule_lines(text);
        assert_eq!(
            kept,
            [
                "-a always,exit -F arch=b64 -S execve -k exec",
                "-w /etc/passwd -p wa -k identity",
                "-a always,exit -F arch=b64 -S open -F exit=-EACCES -k access",
            ]
        );
        assert_eq!(
            skipped,
            [
                "-D",
                "-b",
                "-f",
                "-e",
                "-e\t2",
                "--loginuid-immutable",
                "--backlog_wait_time",
                "-r",
                "-i",
                "-a"
            ]
        );
    }
}
