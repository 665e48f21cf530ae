//! The exit list's decision for an exec, as `audit_filter_syscall()` makes it: the rules in
//! order, the first whose syscall mask holds the exec's number (of its architecture) and whose
//! every field and comparison holds decides: `always` writes it with the rule's key, `never`
//! leaves it out. No rule matching leaves it out.

use std::{
    collections::HashMap,
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::Path,
    time::{Duration, Instant},
};

use super::{fields, Action, Cond, Field, List, Op, Rule, Value};
use crate::event::{ExecEvent, Inode, PathItem, Syscall, Task, AUDIT_ARCH_I386};

/// How long a watched path's inode is trusted before it is looked up again: a file replaced
/// at that path (a package upgrade) is followed within this time.
const FRESH: Duration = Duration::from_secs(1);
/// How long an inode a watched path held still matches after the path moved on: the exec that
/// ran it is judged a moment later, when the path may already name its replacement.
const FORMER: Duration = Duration::from_secs(5);

/// What the exit list decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Written, with the rule's key (`None`: `key=(null)`).
    Record(Option<Vec<u8>>),
    /// A `never` rule matched.
    Skip,
    /// No rule matched: an exec is not written; the SYSCALL record of a kernel record written
    /// during the syscall (LOGIN, ANOM_LINK…) is, without a key.
    Unmatched,
}

/// `(dev, ino)` of a file.
type FileId = (u64, u64);

/// The objects at watched paths (`path=` and `exe=`): looked up when the rules are loaded,
/// again at most every [`FRESH`], with the ones they held before kept for [`FORMER`].
#[derive(Default)]
pub struct Watched {
    paths: HashMap<Vec<u8>, Seen>,
}

#[derive(Default)]
struct Seen {
    checked: Option<Instant>,
    /// The objects the path held, and when each was last seen there.
    ids: Vec<(FileId, Instant)>,
}

impl Watched {
    /// Starts following the watched paths of `rules`.
    pub fn new(rules: &[Rule]) -> Watched {
        let mut w = Watched::default();
        for c in rules.iter().flat_map(|r| &r.conds) {
            if matches!(c.field, Field::Path | Field::Exe) {
                if let Some(path) = fields::text(&c.value) {
                    w.ids(path);
                }
            }
        }
        w
    }

    /// The objects `path` held lately, after looking it up now.
    fn look_again(&mut self, path: &[u8]) -> Vec<FileId> {
        if let Some(seen) = self.paths.get_mut(path) {
            seen.checked = None;
        }
        self.ids(path)
    }

    /// The objects `path` held lately, looked up again when due.
    fn ids(&mut self, path: &[u8]) -> Vec<FileId> {
        let now = Instant::now();
        let seen = self.paths.entry(path.to_vec()).or_default();
        if seen
            .checked
            .is_none_or(|at| now.duration_since(at) >= FRESH)
        {
            seen.checked = Some(now);
            // The last component is not followed: a watch on a symlink is on the symlink. The
            // path may lead through a file system a user serves (FUSE): within the deadline.
            let owned = path.to_vec();
            let found = crate::fsio::with_deadline(crate::fsio::deadline(), move || {
                std::fs::symlink_metadata(Path::new(OsStr::from_bytes(&owned)))
                    .ok()
                    .map(|m| (m.dev(), m.ino()))
            })
            .flatten();
            if let Some(id) = found {
                seen.ids.retain(|(i, _)| *i != id);
                seen.ids.push((id, now));
            }
        }
        seen.ids.retain(|(_, at)| now.duration_since(*at) < FORMER);
        seen.ids.iter().map(|(id, _)| *id).collect()
    }
}

fn same(inode: &Inode, id: (u64, u64)) -> bool {
    inode.ino == id.1 && libc::makedev(inode.dev_major, inode.dev_minor) == id.0
}

/// The exit list's decision for `ev`.
/// A syscall as the exit list sees it at its exit.
pub struct Call<'a> {
    pub arch: u32,
    pub syscall: Syscall,
    pub success: bool,
    pub exit: i64,
    pub regs: [u64; 4],
    pub task: &'a Task,
    /// Its PATH items (none for a syscall the sensor records without them).
    pub paths: &'a [PathItem],
    pub cwd: Option<&'a [u8]>,
}

impl<'a> From<&'a ExecEvent> for Call<'a> {
    fn from(e: &'a ExecEvent) -> Self {
        Call {
            arch: e.arch,
            syscall: e.syscall,
            success: e.success,
            exit: e.exit,
            regs: e.regs,
            task: &e.task,
            paths: &e.paths,
            cwd: e.cwd.as_deref(),
        }
    }
}

/// The exit list's decision for an exec: written only when a rule selects it.
pub fn exec(rules: &[Rule], ev: &ExecEvent, watched: &mut Watched) -> Verdict {
    match call(rules, &Call::from(ev), watched) {
        Verdict::Unmatched => Verdict::Skip,
        v => v,
    }
}

/// The exit list's decision for a syscall.
pub fn call(rules: &[Rule], ev: &Call, watched: &mut Watched) -> Verdict {
    // The task list, as the kernel judges it when the task is created: `never` leaves its
    // syscalls unaudited, `always` records every one whatever the exit list says. The sensor
    // judges it at the exec, by the task as it is then.
    for rule in rules.iter().filter(|r| r.list == List::Task) {
        if rule.conds.iter().all(|c| holds(c, ev, watched)) {
            return match rule.action {
                Action::Never => Verdict::Skip,
                Action::Always => Verdict::Record(rule.key()),
            };
        }
    }
    let nr = ev.syscall.number_in(ev.arch).unwrap_or(ev.syscall.number());
    let mut matches = rules
        .iter()
        .filter(|r| r.list == List::Exit)
        .filter(|rule| {
            rule.syscalls.contains(nr)
                && rule.conds.iter().all(|c| holds(c, ev, watched))
                && rule.compares.iter().all(|c| {
                    let (l, r) = (ids(c.left, ev), ids(c.right, ev));
                    l.iter().any(|&a| r.iter().any(|&b| c.op.holds(a, b)))
                })
        });
    // The rules are in priority order. The kernel takes the first matching syscall rule
    // (`audit_filter_syscall()`), then a watch rule (`path=`, `inode=`, kept by inode) of higher
    // priority may take over (`audit_filter_inodes()`); a rule that decides without a key leaves
    // the key a rule before it set.
    let Some(first) = matches.next() else {
        return Verdict::Unmatched;
    };
    let decider = first;
    let key = match (is_watch(first), first.key()) {
        (false, key) => key,
        // A watch won: the first matching syscall rule after it set the key, if it had one.
        (true, Some(key)) => Some(key),
        (true, None) => matches.find(|r| !is_watch(r)).and_then(|r| r.key()),
    };
    match decider.action {
        Action::Always => Verdict::Record(key),
        Action::Never => Verdict::Skip,
    }
}

/// The directory a tree rule tags, as `kern_path(path, 0)` finds it: the parent resolved, the
/// last component not followed (a tree on a symlink tags the symlink, which no exec's name is
/// under). Blocking: run within a deadline.
fn tree_root(dir: &[u8]) -> Option<std::path::PathBuf> {
    let dir = Path::new(OsStr::from_bytes(dir));
    let root = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent).ok()?.join(name),
        _ => return Some(dir.to_path_buf()),
    };
    std::fs::symlink_metadata(&root)
        .is_ok_and(|m| m.is_dir())
        .then_some(root)
}

/// A rule the kernel keeps by inode (a `path=` or `inode=` watch), not on the exit list.
fn is_watch(rule: &Rule) -> bool {
    rule.conds
        .iter()
        .any(|c| matches!(c.field, Field::Path | Field::Inode))
}

/// The values of an id field for `-C`: the task's, or each PATH item's owner.
fn ids(f: Field, ev: &Call) -> Vec<u64> {
    let t = ev.task;
    let one = |v: u32| vec![v as u64];
    match f {
        Field::Uid => one(t.uid),
        Field::Euid => one(t.euid),
        Field::Suid => one(t.suid),
        Field::Fsuid => one(t.fsuid),
        Field::Loginuid => one(t.auid),
        Field::Gid => one(t.gid),
        Field::Egid => one(t.egid),
        Field::Sgid => one(t.sgid),
        Field::Fsgid => one(t.fsgid),
        Field::ObjUid => items(ev).map(|i| i.ouid as u64).collect(),
        Field::ObjGid => items(ev).map(|i| i.ogid as u64).collect(),
        _ => Vec::new(),
    }
}

fn items<'a>(ev: &'a Call) -> impl Iterator<Item = &'a Inode> {
    ev.paths.iter().filter_map(|p| p.inode.as_ref())
}

/// The name of a PATH item as an absolute path, resolved against the cwd.
fn absolute(name: &[u8], cwd: Option<&[u8]>) -> Vec<u8> {
    match (name.first(), cwd) {
        (Some(b'/'), _) | (_, None) => name.to_vec(),
        (_, Some(cwd)) => [cwd, b"/", name].concat(),
    }
}

fn holds(c: &Cond, ev: &Call, watched: &mut Watched) -> bool {
    let t = ev.task;
    let num = |v: u64| match c.value {
        // audit_comparator() compares 32-bit values.
        Value::Num(r) => c.op.holds(v & 0xffff_ffff, r),
        Value::Str(_) => false,
    };
    let text = fields::text(&c.value).unwrap_or_default();
    let eq = |hit: bool| match c.op {
        Op::Ne => !hit,
        _ => hit,
    };
    match c.field {
        Field::Pid => num(t.pid as u64),
        Field::Ppid => num(t.ppid as u64),
        Field::Uid => num(t.uid as u64),
        Field::Euid => num(t.euid as u64),
        Field::Suid => num(t.suid as u64),
        Field::Fsuid => num(t.fsuid as u64),
        Field::Gid => num(t.gid as u64),
        Field::Egid => num(t.egid as u64),
        Field::Sgid => num(t.sgid as u64),
        Field::Fsgid => num(t.fsgid as u64),
        Field::Loginuid => num(t.auid as u64),
        Field::LoginuidSet => num((t.auid != u32::MAX) as u64),
        Field::Sessionid => num(t.ses as u64),
        Field::Pers => num(t.personality as u64),
        Field::Arch => num(ev.arch as u64),
        Field::Exit => num(ev.exit as u64),
        Field::Success => match c.value {
            Value::Num(want) => eq(ev.success == (want == 1)),
            _ => false,
        },
        Field::A0 | Field::A1 | Field::A2 | Field::A3 => {
            let i = match c.field {
                Field::A0 => 0,
                Field::A1 => 1,
                Field::A2 => 2,
                _ => 3,
            };
            num(ev.regs[i])
        }
        // The exec class of syscalls (`audit_match_perm()`): only `x` matches.
        Field::Perm => match c.value {
            Value::Num(mask) => mask & fields::PERM_EXEC != 0,
            _ => false,
        },
        Field::Filetype => items(ev).any(|i| num((i.mode & 0o170000) as u64)),
        Field::ObjUid => items(ev).any(|i| num(i.ouid as u64)),
        Field::ObjGid => items(ev).any(|i| num(i.ogid as u64)),
        Field::Inode => items(ev).any(|i| num(i.ino)),
        Field::Devmajor => items(ev).any(|i| num(i.dev_major as u64)),
        Field::Devminor => items(ev).any(|i| num(i.dev_minor as u64)),
        // A watch: the object at the path now is one of the event's items.
        Field::Path => {
            let hit = |ids: &[FileId]| items(ev).any(|i| ids.iter().any(|&id| same(i, id)));
            let mut found = hit(&watched.ids(text));
            // An item named the path but is not the object last seen there: the file may have
            // been replaced since the last look.
            if !found && ev.paths.iter().any(|p| absolute(&p.name, ev.cwd) == text) {
                found = hit(&watched.look_again(text));
            }
            eq(found)
        }
        // A tree: an item named under the directory.
        // A tree: an item at or under the directory, by where the names lead (the kernel walks
        // the item's dentries up), not by how they are spelt.
        Field::Dir => {
            let dir = text.strip_suffix(b"/").unwrap_or(text).to_vec();
            let names: Vec<Vec<u8>> = ev
                .paths
                .iter()
                .filter(|p| p.inode.is_some())
                .map(|p| absolute(&p.name, ev.cwd))
                .collect();
            let under = crate::fsio::with_deadline(crate::fsio::deadline(), move || {
                let dir = tree_root(&dir)?;
                Some(names.iter().any(|n| {
                    std::fs::canonicalize(Path::new(OsStr::from_bytes(n)))
                        .is_ok_and(|real| real.starts_with(&dir))
                }))
            })
            .flatten()
            .unwrap_or(false);
            eq(under)
        }
        // The task's executable: the program the exec started (or the caller's, when it failed).
        Field::Exe => {
            let by_path = t.exe.as_deref() == Some(text);
            let ids = watched.ids(text);
            let by_inode = ev.success && items(ev).any(|i| ids.iter().any(|&id| same(i, id)));
            eq(by_path || by_inode)
        }
        // `-F key=` only names the key.
        Field::Key => true,
        // What an exec has none of.
        Field::Msgtype | Field::Fstype | Field::SaddrFam | Field::Label(_) => false,
    }
}

/// Whether the exec is one the rules can select at all (for `rules check`).
pub fn selects_execs(rule: &Rule) -> bool {
    let execs = [
        sensor_common::syscalls::x86_64::EXECVE,
        sensor_common::syscalls::x86_64::EXECVEAT,
    ];
    let arch32 = rule.conds.iter().any(|c| {
        c.field == Field::Arch && c.op == Op::Eq && c.value == Value::Num(AUDIT_ARCH_I386 as u64)
    });
    let nrs: &[u32] = if arch32 {
        &[
            sensor_common::syscalls::i386::EXECVE,
            sensor_common::syscalls::i386::EXECVEAT,
        ]
    } else {
        &execs
    };
    rule.list == List::Exit && nrs.iter().any(|&n| rule.syscalls.contains(n))
}

#[cfg(test)]
mod tests;
