//! PAM stacks for the tests: service files under /etc/pam.d that are removed on drop, pamtester,
//! and the user-space records of one process.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use sensor::encode::parse::{parse_log, Record};

/// PAM service files written for the test and removed on drop (never an existing one).
pub struct Services(pub Vec<PathBuf>);

impl Services {
    pub fn add(&mut self, name: &str, stack: &str) -> String {
        let path = Path::new("/etc/pam.d").join(name);
        assert!(
            !path.exists(),
            "{} exists: not the test's to change",
            path.display()
        );
        std::fs::write(&path, stack).unwrap();
        self.0.push(path);
        name.to_string()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `pamtester [-I item=value…] SERVICE USER OPS…`, as `user_id` when given, with `stdin`
/// as the conversation's answers; returns its pid.
pub fn pamtester(
    as_nobody: bool,
    items: &[&str],
    service: &str,
    user: &str,
    ops: &[&str],
    stdin: &str,
) -> u32 {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "pamtester",
        ]);
        c
    } else {
        Command::new("pamtester")
    };
    for i in items {
        cmd.args(["-I", i]);
    }
    let mut child = cmd
        .args([service, user])
        .args(ops)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pamtester (Debian package pamtester) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The user-space records (USER_*, CRED_*, ANOM_LOGIN_*) of process `pid`; its exec events
/// are left out.
pub fn records_of(text: &[u8], pid: u32) -> Vec<Record> {
    let pid = pid.to_string();
    parse_log(text)
        .unwrap()
        .into_iter()
        .filter(|r| r.get(b"pid") == Some(pid.as_bytes()) && r.get(b"msg").is_some())
        .collect()
}

pub fn types(recs: &[Record]) -> Vec<String> {
    recs.iter()
        .map(|r| String::from_utf8_lossy(&r.rtype).into_owned())
        .collect()
}
