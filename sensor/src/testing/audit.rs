//! Fixtures of the audit-text tests: names, a container, and auditd's golden lines turned into
//! what the sensor writes.

use crate::encode::audit::FixedNames;
use crate::event::Container;

pub fn names() -> FixedNames {
    FixedNames::new()
        .with_user(0, b"root")
        .with_group(0, b"root")
        .with_user(65534, b"nobody")
        .with_group(65534, b"nogroup")
}

pub fn expand(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let j = rest[i..].find('}').expect("closing brace") + i;
        let (unit, n) = rest[i + 1..j].split_once('*').expect("U*N");
        out.extend_from_slice(unit.repeat(n.parse().expect("count")).as_bytes());
        rest = &rest[j + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

pub fn lines(text: &[String]) -> Vec<u8> {
    text.iter()
        .flat_map(|l| expand(l).into_iter().chain(*b"\n"))
        .collect()
}

const CONTAINER: &str = " cgroup_id=\"4242\" cgroup=\"/system.slice/ssh.service\" pidns=\"4026531836\" \
                         mntns=\"4026531841\" netns=\"4026531840\" utsns=\"4026531838\" nspid=\"1\"";

pub fn container() -> Container {
    Container {
        cgroup_id: 4242,
        cgroup_path: b"/system.slice/ssh.service".to_vec(),
        pid_ns: 4026531836,
        mnt_ns: 4026531841,
        net_ns: 4026531840,
        uts_ns: 4026531838,
        ns_pid: 1,
        container_id: None,
    }
}

/// auditd's SYSCALL line with the sensor's container fields where the sensor puts them.
pub fn with_container(line: &str) -> String {
    match line.find('\x1d') {
        Some(i) => format!("{}{CONTAINER}{}", &line[..i], &line[i..]),
        None => format!("{line}{CONTAINER}"),
    }
}

pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\x1d', "^]")
}

/// `extra` where the sensor puts its own fields: after auditd's, before the separator.
pub fn insert(line: &str, extra: &str) -> String {
    match line.find('\x1d') {
        Some(i) => format!("{}{extra}{}", &line[..i], &line[i..]),
        None => format!("{line}{extra}"),
    }
}

/// The RAW form of an ENRICHED line.
pub fn raw(line: &str) -> &str {
    line.split('\x1d').next().unwrap()
}
