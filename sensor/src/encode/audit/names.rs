//! uid/gid → name lookups for the ENRICHED part of audit records.
//!
//! auditd resolves names through NSS (`getpwuid`/`getgrgid`) when it writes each record; the sensor
//! reads the local files once instead, so that encoding never blocks on a directory service and
//! stays deterministic. Users known only to LDAP/SSSD therefore appear as `unknown(N)`.

use std::collections::HashMap;
use std::io;
use std::path::Path;

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
        Ok(Self::parse(&std::fs::read(passwd)?, &std::fs::read(group)?))
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
    fn loads_this_machine() {
        // Every Linux system has uid 0 in /etc/passwd; the name itself may differ.
        let n = SystemNames::load().expect("read /etc/passwd and /etc/group");
        assert!(n.user(0).is_some());
    }
}
