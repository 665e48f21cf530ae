//! uid/gid → name lookups for the ENRICHED part of audit records.
//!
//! auditd resolves names through NSS (`getpwuid`/`getgrgid`) when it writes each record; the sensor
//! reads the local files instead, so that encoding never blocks on a directory service. Users
//! known only to LDAP/SSSD therefore appear as `unknown(N)`. The files are read again when they
//! change ([`LiveNames`]), so an account created while the sensor runs is named as auditd names it,
//! and an account just deleted keeps its name for [`LiveNames::GRACE`]: auditd named it when it
//! wrote userdel's own records, a moment before the sensor gets to them.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod history;

/// Name lookups used by the enriched encoder. Returned names are written with the untrusted-string
/// rule, so an implementation need not sanitise them.
pub trait Names {
    fn user(&self, uid: u32) -> Option<Vec<u8>>;
    fn group(&self, gid: u32) -> Option<Vec<u8>>;
}

/// The users and groups of `/etc/passwd` and `/etc/group`, read once.
#[derive(Clone, Debug, Default)]
pub struct SystemNames {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
}

impl SystemNames {
    pub fn load() -> io::Result<Self> {
        Self::from_files(Path::new("/etc/passwd"), Path::new("/etc/group"))
    }

    pub fn from_files(passwd: &Path, group: &Path) -> io::Result<Self> {
        // The error names the file: "Permission denied" alone does not say what to fix.
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("reading {} for ENRICHED names: {e}", p.display()),
                )
            })
        };
        Ok(Self::parse(&read(passwd)?, &read(group)?))
    }

    /// Parses the text of a passwd and a group file.
    pub fn parse(passwd: &[u8], group: &[u8]) -> Self {
        SystemNames {
            users: parse_db(passwd),
            groups: parse_db(group),
        }
    }
}

impl Names for SystemNames {
    fn user(&self, uid: u32) -> Option<Vec<u8>> {
        self.users.get(&uid).cloned()
    }
    fn group(&self, gid: u32) -> Option<Vec<u8>> {
        self.groups.get(&gid).cloned()
    }
}

/// Both files are `name:password:id:…`; the first line for an id wins, as with `getpwuid`.
fn parse_db(text: &[u8]) -> HashMap<u32, Vec<u8>> {
    let mut map = HashMap::new();
    for line in text.split(|&b| b == b'\n') {
        // NIS compat entries (`+`, `-`) name no local account.
        if line.is_empty() || line[0] == b'#' || line[0] == b'+' || line[0] == b'-' {
            continue;
        }
        let mut cols = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(id)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        let Some(id) = std::str::from_utf8(id)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if !name.is_empty() {
            map.entry(id).or_insert_with(|| name.to_vec());
        }
    }
    map
}

/// What tells that a file was replaced or rewritten: useradd and vipw rename a new file over the
/// old one, an editor may rewrite it in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

fn version(path: &Path) -> Option<Version> {
    let m = std::fs::metadata(path).ok()?;
    Some(Version {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
    })
}

/// [`SystemNames`] kept current: the files are checked for a change at most every
/// `LiveNames::PERIOD`, and at once (at most every `LiveNames::MISS_PERIOD`) after a lookup
/// missed, since a miss is what a new account looks like. A check is two `stat()`s of root-owned
/// files; a reload reads them again (a failed read keeps the names held).
#[derive(Debug)]
pub struct LiveNames {
    names: SystemNames,
    /// Names that disappeared from the files, and when: users, then groups.
    retired: [HashMap<u32, (Vec<u8>, Instant)>; 2],
    files: [PathBuf; 2],
    /// What a thread of its own saw leave the files, between the events.
    history: history::History,
    seen: [Option<Version>; 2],
    checked: Instant,
    missed: Cell<bool>,
}

impl LiveNames {
    const PERIOD: Duration = Duration::from_secs(1);
    const MISS_PERIOD: Duration = Duration::from_millis(1);
    pub const GRACE: Duration = Duration::from_secs(10);

    pub fn load() -> io::Result<Self> {
        Self::from_files(Path::new("/etc/passwd"), Path::new("/etc/group"))
    }

    pub fn from_files(passwd: &Path, group: &Path) -> io::Result<Self> {
        let files = [passwd.to_path_buf(), group.to_path_buf()];
        let seen = [version(passwd), version(group)];
        Ok(LiveNames {
            names: SystemNames::from_files(passwd, group)?,
            retired: Default::default(),
            history: history::History::watch(files[0].clone(), files[1].clone(), Self::GRACE),
            files,
            seen,
            checked: Instant::now(),
            missed: Cell::new(false),
        })
    }

    /// Reads the files again if they changed and a check is due; true when the names changed.
    pub fn refresh(&mut self) -> bool {
        let since = self.checked.elapsed();
        let due = since >= Self::PERIOD || (self.missed.get() && since >= Self::MISS_PERIOD);
        if !due {
            return false;
        }
        self.checked = Instant::now();
        self.missed.set(false);
        let now = [version(&self.files[0]), version(&self.files[1])];
        if now == self.seen {
            return false;
        }
        match SystemNames::from_files(&self.files[0], &self.files[1]) {
            Ok(names) => {
                let old = std::mem::replace(&mut self.names, names);
                let at = Instant::now();
                for (retired, (was, is)) in self.retired.iter_mut().zip([
                    (old.users, &self.names.users),
                    (old.groups, &self.names.groups),
                ]) {
                    retired.retain(|id, (_, when)| {
                        !is.contains_key(id) && when.elapsed() < Self::GRACE
                    });
                    for (id, name) in was {
                        if !is.contains_key(&id) {
                            retired.insert(id, (name, at));
                        }
                    }
                }
                self.seen = now;
                true
            }
            Err(_) => false,
        }
    }

    /// Whether a lookup missed since the last check.
    pub fn missed(&self) -> bool {
        self.missed.get()
    }
}

impl LiveNames {
    /// The name of an id that left the files (`kind` 0: users, 1: groups) within the grace
    /// period.
    fn retired(&self, kind: usize, id: u32) -> Option<Vec<u8>> {
        self.retired[kind]
            .get(&id)
            .filter(|(_, at)| at.elapsed() < Self::GRACE)
            .map(|(name, _)| name.clone())
            .or_else(|| self.history.get(kind, id, Self::GRACE))
    }
}

impl Names for LiveNames {
    fn user(&self, uid: u32) -> Option<Vec<u8>> {
        let name = self.names.user(uid);
        if name.is_none() {
            self.missed.set(true);
            return self.retired(0, uid);
        }
        name
    }
    fn group(&self, gid: u32) -> Option<Vec<u8>> {
        let name = self.names.group(gid);
        if name.is_none() {
            self.missed.set(true);
            return self.retired(1, gid);
        }
        name
    }
}

/// A fixed map, for tests and for replaying logs from another machine.
#[derive(Clone, Debug, Default)]
pub struct FixedNames {
    pub users: HashMap<u32, Vec<u8>>,
    pub groups: HashMap<u32, Vec<u8>>,
}

impl FixedNames {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_user(mut self, uid: u32, name: &[u8]) -> Self {
        self.users.insert(uid, name.to_vec());
        self
    }
    pub fn with_group(mut self, gid: u32, name: &[u8]) -> Self {
        self.groups.insert(gid, name.to_vec());
        self
    }
}

impl Names for FixedNames {
    fn user(&self, uid: u32) -> Option<Vec<u8>> {
        self.users.get(&uid).cloned()
    }
    fn group(&self, gid: u32) -> Option<Vec<u8>> {
        self.groups.get(&gid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let n = SystemNames::parse(
            b"# c\nroot:x:0:0:root:/root:/bin/bash\n+nis\nbad\nx:x:notanumber:\ntoor:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin",
            b"root:x:0:\nadm:x:4:syslog\n",
        );
        assert_eq!(n.user(0).as_deref(), Some(&b"root"[..]));
        assert_eq!(n.user(65534).as_deref(), Some(&b"nobody"[..]));
        assert_eq!(n.user(1), None);
        assert_eq!(n.group(4).as_deref(), Some(&b"adm"[..]));
        assert_eq!(n.group(65534), None);
    }

    #[test]
    fn an_account_added_later_is_named_after_the_next_check() {
        let dir = std::env::temp_dir().join(format!("sensor-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (passwd, group) = (dir.join("passwd"), dir.join("group"));
        std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(&group, "root:x:0:\n").unwrap();
        let mut n = LiveNames::from_files(&passwd, &group).unwrap();
        assert_eq!(n.user(1005), None);
        assert!(n.missed());
        // As useradd does: a new file renamed over the old one.
        let new = dir.join("passwd+");
        std::fs::write(
            &new,
            "root:x:0:0::/root:/bin/sh\nlate:x:1005:1005::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::rename(&new, &passwd).unwrap();
        std::thread::sleep(LiveNames::MISS_PERIOD);
        assert!(n.refresh());
        assert_eq!(n.user(1005).as_deref(), Some(&b"late"[..]));
        assert!(!n.missed());
        // Nothing changed: no reload, even when due.
        std::thread::sleep(LiveNames::PERIOD);
        assert!(!n.refresh());
        // Deleted, as userdel does: still named for the grace period, then unknown.
        std::fs::write(&new, "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::rename(&new, &passwd).unwrap();
        std::thread::sleep(LiveNames::PERIOD);
        assert!(n.refresh());
        assert_eq!(n.user(1005).as_deref(), Some(&b"late"[..]));
        // Another change (userdel rewrites /etc/group too) keeps what left before.
        std::fs::write(&group, "root:x:0:\nother:x:7:\n").unwrap();
        std::thread::sleep(LiveNames::PERIOD);
        assert!(n.refresh());
        assert_eq!(n.user(1005).as_deref(), Some(&b"late"[..]));
        n.retired[0].get_mut(&1005).unwrap().1 -= LiveNames::GRACE;
        // The names thread saw it leave too (`history`'s own test); without it, it is unknown.
        n.history = history::History::default();
        assert_eq!(n.user(1005), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loads_this_machine() {
        // Every Linux system has uid 0 in /etc/passwd; the name itself may differ.
        let n = SystemNames::load().expect("read /etc/passwd and /etc/group");
        assert!(n.user(0).is_some());
    }
}
