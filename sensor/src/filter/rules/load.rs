//! Rules files as `auditctl -R` loads them, and directories as augenrules joins them: a verdict
//! for every line, and the rules in force after the last loaded line.

use std::{
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::{parse, select, Action, Control, Field, Line, List, Rule};

/// What became of one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Applied,
    Unsupported,
    Error,
    NotLoaded,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    pub text: String,
    pub status: Status,
    pub reason: String,
}

/// The outcome of loading: every line's verdict, the exit and other rules in force, and
/// whether `-e 2` locked them.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub verdicts: Vec<Verdict>,
    pub rules: Vec<Rule>,
    pub locked: bool,
    /// An error stopped loading (no `-i` before it).
    pub stopped: bool,
}

impl Loaded {
    pub fn errors(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|v| v.status == Status::Error)
            .count()
    }
}

/// The files of `path`: itself, or a directory's `*.rules` in augenrules' order (natural sort
/// of the names).
pub fn files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rules") && p.is_file())
        .collect();
    files.sort_by(|a, b| {
        natural(
            a.as_os_str().as_encoded_bytes(),
            b.as_os_str().as_encoded_bytes(),
        )
    });
    Ok(files)
}

/// `ls -v`'s order: runs of digits compare as numbers.
fn natural(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (x, y) = (
                std::str::from_utf8(&a[si..i])
                    .unwrap_or("0")
                    .parse::<u128>()
                    .unwrap_or(0),
                std::str::from_utf8(&b[sj..j])
                    .unwrap_or("0")
                    .parse::<u128>()
                    .unwrap_or(0),
            );
            if x != y {
                return x.cmp(&y);
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// Loads `path` (a file or a rules directory).
pub fn load(path: &Path) -> std::io::Result<Loaded> {
    let mut lines = Vec::new();
    for file in files(path)? {
        let text = std::fs::read(&file)?;
        // auditctl removes the newline only: a `\r` stays part of the line (and is an error).
        let text = String::from_utf8_lossy(&text);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        for (i, line) in text.split('\n').enumerate() {
            lines.push((file.clone(), i + 1, line.to_string()));
        }
    }
    if !path.is_dir() {
        return Ok(load_lines(lines));
    }
    let (lines, dropped) = augenrules(lines);
    let mut loaded = load_lines(lines);
    loaded.verdicts.extend(dropped);
    Ok(loaded)
}

/// augenrules' pass over the joined files (as Debian's mawk runs it): comments in column 0 and
/// empty lines go; the last `-D` alone on its line goes first, the last `-b` and `-f` second and
/// third, the last `-e` last; the other lines of those kinds are not loaded.
fn augenrules(
    lines: Vec<(PathBuf, usize, String)>,
) -> (Vec<(PathBuf, usize, String)>, Vec<Verdict>) {
    let kind = |t: &str| -> Option<u8> {
        match () {
            _ if t == "-D" => Some(0),
            _ if t.starts_with("-b") => Some(1),
            _ if t.starts_with("-f") => Some(2),
            _ if t.starts_with("-e") => Some(3),
            _ => None,
        }
    };
    let lines: Vec<_> = lines
        .into_iter()
        .filter(|(_, _, t)| !t.is_empty() && !t.starts_with('#'))
        .collect();
    let last = |k: u8| lines.iter().rposition(|(_, _, t)| kind(t) == Some(k));
    let keep: Vec<Option<usize>> = (0..4).map(last).collect();
    let mut dropped = Vec::new();
    let mut middle = Vec::new();
    for (i, (file, line, text)) in lines.iter().enumerate() {
        match kind(text) {
            Some(k) if keep[k as usize] != Some(i) => dropped.push(Verdict {
                file: file.clone(),
                line: *line,
                text: text.clone(),
                status: Status::NotLoaded,
                reason: "augenrules keeps only the last line of this kind".into(),
            }),
            Some(_) => {}
            None => middle.push((file.clone(), *line, text.clone())),
        }
    }
    let at = |k: usize| keep[k].map(|i| lines[i].clone());
    let ordered = [at(0), at(1), at(2)]
        .into_iter()
        .flatten()
        .chain(middle)
        .chain(at(3))
        .collect();
    (ordered, dropped)
}

/// Loads lines in order, as `auditctl -R` does: an error stops loading unless `-i` (or `-c`)
/// came before; the lines loaded before it stay loaded.
pub fn load_lines(lines: Vec<(PathBuf, usize, String)>) -> Loaded {
    let mut out = Loaded::default();
    let mut state = State::default();
    for (file, line, text) in lines {
        let parsed = parse::line(&text);
        if matches!(parsed, Ok(Line::Blank)) {
            continue;
        }
        let (status, reason) = if out.stopped {
            let why = "loading stopped at an earlier error (no -i)";
            (Status::NotLoaded, why.to_string())
        } else {
            let (status, reason) = match parsed {
                Err(e) => (Status::Error, e),
                Ok(l) => state.apply(&mut out, l),
            };
            out.stopped = status == Status::Error && !state.ignore;
            (status, reason)
        };
        out.verdicts.push(Verdict {
            file,
            line,
            text,
            status,
            reason,
        });
    }
    out
}

#[derive(Default)]
struct State {
    /// `-i` or `-c` came: errors no longer stop loading.
    ignore: bool,
}

impl State {
    /// Puts one parsed line in force; its verdict.
    fn apply(&mut self, out: &mut Loaded, line: Line) -> (Status, String) {
        match line {
            Line::Blank => (Status::Applied, String::new()),
            Line::Query(what) => (Status::Unsupported, format!("{what}: nothing to load")),
            Line::Dropped(why) => (
                Status::Unsupported,
                format!("{why}: auditctl drops the line"),
            ),
            Line::Many(lines) => {
                let verdicts: Vec<(Status, String)> =
                    lines.into_iter().map(|l| self.apply(out, l)).collect();
                let worst = [Status::Error, Status::Unsupported, Status::Applied]
                    .into_iter()
                    .find(|s| verdicts.iter().any(|(v, _)| v == s))
                    .unwrap_or(Status::Applied);
                let reasons: Vec<String> = verdicts.into_iter().map(|(_, r)| r).collect();
                (worst, reasons.join("; "))
            }
            Line::Control(c) => {
                if matches!(c, Control::IgnoreErrors | Control::Continue) {
                    self.ignore = true;
                }
                if let Control::Enable(2) = c {
                    out.locked = true;
                }
                if let Control::DeleteAll { key } = &c {
                    // auditctl deletes the rules whose key contains the string (`strstr()`).
                    match key {
                        Some(k) => out.rules.retain(|r| {
                            !r.key()
                                .is_some_and(|rk| rk.windows(k.len()).any(|w| w == &k[..]))
                        }),
                        None => out.rules.clear(),
                    }
                }
                control(&c)
            }
            // Once `-e 2` is in force, the kernel refuses every change.
            Line::Rule(_) | Line::Delete(_) if out.locked => (
                Status::Error,
                "Error sending add rule data request (Operation not permitted)".into(),
            ),
            Line::Delete(rule) => match out.rules.iter().position(|r| *r == rule) {
                Some(i) => {
                    out.rules.remove(i);
                    (Status::Applied, "deletes the rule loaded before".into())
                }
                None => (
                    Status::Error,
                    "Error sending delete rule data request (No such file or directory)".into(),
                ),
            },
            Line::Rule(rule) => {
                if let Some(e) = watch_error(&rule) {
                    return (Status::Error, e);
                }
                if out.rules.contains(&rule) {
                    return (
                        Status::Error,
                        "Error sending add rule data request (Rule exists)".into(),
                    );
                }
                let verdict = rule_verdict(&rule);
                if rule.prepend {
                    out.rules.insert(0, rule);
                } else {
                    out.rules.push(rule);
                }
                verdict
            }
        }
    }
}

/// What a control line means for the sensor.
fn control(c: &Control) -> (Status, String) {
    let applied = |s: &str| (Status::Applied, s.to_string());
    let unsupported = |s: &str| (Status::Unsupported, s.to_string());
    match c {
        Control::DeleteAll { key: None } => applied("deletes the rules loaded before it"),
        Control::DeleteAll { key: Some(_) } => applied("deletes the rules with that key loaded before it"),
        Control::Backlog(_) => unsupported("the kernel's backlog: the sensor's queue is its ring buffer (--ring-buffer-mib)"),
        Control::BacklogWaitTime(_) => unsupported("the kernel's backlog wait: the sensor never waits, it counts what it drops"),
        Control::Failure(_) => unsupported("the kernel's failure action: the sensor reports loss in DAEMON_ERR records and never panics the host"),
        Control::Enable(2) => applied("locks the rules: the sensor keeps these rules until it restarts (SIGHUP does not reload them)"),
        Control::Enable(1) => applied("auditing enabled: the rules apply"),
        Control::Enable(_) => unsupported("disabling auditing is not followed: stop the sensor instead"),
        Control::RateLimit(_) => unsupported("the kernel's rate limit: the sensor does not drop records by rate"),
        Control::IgnoreErrors => applied("errors on later lines are reported and skipped"),
        Control::Continue => applied("errors on later lines are reported and skipped"),
        Control::LoginuidImmutable => unsupported("a kernel setting the sensor does not change"),
        Control::ResetLost => unsupported("the kernel's lost counter: the sensor keeps its own"),
    }
}

/// The kernel's check of a watch: a file watch (`path=`) needs its parent directory, a tree
/// (`dir=`) the directory itself.
fn watch_error(rule: &Rule) -> Option<String> {
    let missing = rule.conds.iter().any(|c| {
        let Some(text) = super::fields::text(&c.value) else {
            return false;
        };
        let path = Path::new(std::ffi::OsStr::from_bytes(text));
        match c.field {
            Field::Path => !path.parent().unwrap_or(Path::new("/")).is_dir(),
            Field::Dir => !path.is_dir(),
            _ => false,
        }
    });
    missing.then(|| "Error sending add rule data request (No such file or directory)".into())
}

/// Whether the sensor applies a rule, and why not when it does not.
fn rule_verdict(rule: &Rule) -> (Status, String) {
    let unsupported = |s: String| (Status::Unsupported, s);
    if let Some(label) = rule.conds.iter().find_map(|c| match c.field {
        Field::Label(l) => Some(l),
        _ => None,
    }) {
        let why = if Path::new("/sys/fs/selinux").exists() {
            format!("{label}: SELinux labels are not captured by the sensor")
        } else {
            format!("{label}: an SELinux field, and this host has no SELinux")
        };
        return unsupported(why);
    }
    match rule.list {
        List::Exit => {}
        List::User => {
            let unknown = rule.conds.iter().find(|c| {
                !matches!(
                    c.field,
                    Field::Msgtype | Field::Pid | Field::Uid | Field::Loginuid | Field::Exe
                )
            });
            return match unknown {
                Some(c) => unsupported(format!(
                    "the user list by {}: the sensor does not know it of a message's sender",
                    c.field.name()
                )),
                None => (Status::Applied, "filters user-space messages".into()),
            };
        }
        List::Exclude => return (
            Status::Applied,
            "leaves record types out of the text outputs (the protobuf stream keeps whole events)"
                .into(),
        ),
        List::Task => {
            return match rule.action {
                Action::Never => (
                    Status::Applied,
                    "no exec records for the tasks it matches (judged at the exec; the kernel \
                     judges at the fork)"
                        .into(),
                ),
                Action::Always => (Status::Applied, "tasks it matches are audited".into()),
            }
        }
        l => {
            return unsupported(format!(
                "the {} list: nothing the sensor records goes through it",
                l.name()
            ))
        }
    }
    let watch = rule
        .conds
        .iter()
        .any(|c| matches!(c.field, Field::Path | Field::Dir));
    let perm = rule.conds.iter().find_map(|c| match (c.field, &c.value) {
        (Field::Perm, super::Value::Num(p)) => Some(*p),
        _ => None,
    });
    if watch && perm.is_some_and(|p| p & super::fields::PERM_EXEC == 0) {
        return unsupported(
            "a file watch without x: file reads, writes and attribute changes come in part 2"
                .into(),
        );
    }
    if !select::selects_execs(rule) {
        return unsupported(
            "selects no execve/execveat: the sensor records execs (other syscalls come in part 2)"
                .into(),
        );
    }
    let what = match rule.action {
        Action::Always => "selects execs",
        Action::Never => "suppresses execs",
    };
    let partial = if watch && perm.is_some_and(|p| p != super::fields::PERM_EXEC) {
        " (its exec part; reads, writes and attribute changes come in part 2)"
    } else if watch {
        ""
    } else if !matches!(rule.syscalls, super::Syscalls::Some(_)) {
        " (of all the syscalls it names, execs only)"
    } else {
        ""
    };
    (Status::Applied, format!("{what}{partial}"))
}

#[cfg(test)]
mod tests;
