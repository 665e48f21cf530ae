//! Audit text: the records kernel audit + auditd 3.0.9 write for an execve, byte for byte
//! (see /work/shared/reference/audit-records.md), so that existing audit tooling and rules keep
//! working on the sensor's log.
//!
//! Every record is one line ending in `\n`; every value that comes from a process goes through the
//! untrusted-string rule ([`super::hexq`]), so no argument, path or name can forge a field, a
//! record or the 0x1d separator.
//!
//! # Fields the sensor adds
//! These names never occur in the kernel's SYSCALL/EXECVE records nor in auditd's DAEMON records,
//! so tools that know auditd's fields ignore them, and `parse` reads them back. They are stable:
//! other code parses them. Every value the sensor composes itself (numbers, lists, rule names)
//! is written quoted: by auditd's convention a bare value of a field a reader does not know is
//! hex, so `pidns=4026531836` would read as five bytes to LAUREL or auparse's `interpret`;
//! `pidns="4026531836"` reads as itself everywhere. Values from a process or a file system
//! follow the untrusted-string rule (quoted when clean, else hex), as the kernel's do.
//! - SYSCALL, after `key=` and before the 0x1d enrichment:
//!   `cgroup_id=` (decimal cgroup v2 id), `cgroup=` (cgroup v2 path, untrusted rule; auparse already
//!   knows `cgroup` as an escaped field), `pidns=` `mntns=` `netns=` `utsns=` (namespace inode
//!   numbers, decimal), `nspid=` (pid inside the task's pid namespace), and `container=` (container
//!   id, untrusted rule) only when one was recognised; `sensor_trunc_paths=` (`cwd`, `exe`, `cgroup`,
//!   comma-separated) only when a path walked in the kernel had to be cut (its leading
//!   components are missing from `cwd=`, `exe=` or `cgroup=`) or its record was lost.
//! - EXECVE, at the end of the last EXECVE record of an event, only when the sensor could not
//!   capture all of argv: `sensor_trunc_args=` (arguments missing) `sensor_trunc_bytes=` (bytes
//!   missing). `argc=` stays the kernel's true argc.
//! - Lost events are one `DAEMON_ERR` record (a type auditd itself uses for its own failures, so
//!   `ausearch -m DAEMON_ERR` and alerting on it work): `op=sensor_lost lost= delta= ringbuf=
//!   read_errors= channel= incomplete= lookups_late= roots_unwatched= unwritten= res=failed`.

pub mod hexq;
pub mod names;
mod num;

use crate::event::{
    AbendEvent, BprmFcaps, Container, Event, ExecEvent, LostEvent, PathItem, PathsTruncated, Stamp,
    Syscall, Task, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, UNSET_ID,
};
use hexq::{needs_hex, push_hex, push_quoted, push_untrusted, raw_safe};
pub use names::{FixedNames, LiveNames, Names, SystemNames};

/// Separates the kernel's fields from auditd's interpretations (AUDIT_INTERP_SEPARATOR).
pub const INTERP_SEPARATOR: u8 = 0x1d;

/// `write!` into a `Vec<u8>`, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = std::io::Write::write_fmt($out, format_args!($($arg)*));
    }};
}

/// Writes all records of one event.
pub fn write_event(out: &mut Vec<u8>, ev: &Event, enriched: Option<&dyn Names>) {
    match ev {
        Event::Exec(e) => write_exec(out, e, enriched),
        Event::Abend(a) => write_abend(out, a, enriched),
        Event::Anomaly(a) => write_anomaly(out, a, enriched),
        Event::UserMessage(m) => write_user_message(out, m, enriched),
        Event::Pam(p) => write_pam(out, p, enriched),
        Event::Lost(l) => write_lost(out, l),
    }
}

fn write_proctitle(out: &mut Vec<u8>, stamp: &Stamp, proctitle: &[u8]) {
    begin(out, "PROCTITLE", stamp);
    out.extend_from_slice(b"proctitle=");
    // audit_log_proctitle() logs the literal "(null)" when the command line is empty.
    push_untrusted(
        out,
        if proctitle.is_empty() {
            b"(null)"
        } else {
            proctitle
        },
    );
    out.push(b'\n');
}

/// ` per=%lx` after `syscall=`, as `audit_log_exit()` writes it when the task's personality is
/// not PER_LINUX (0); nothing otherwise.
fn push_personality(out: &mut Vec<u8>, personality: u32) {
    if personality != 0 {
        out.extend_from_slice(b" per=");
        num::hex(out, personality as u64, 0);
    }
}

/// One DAEMON_ERR record; see the module documentation.
pub fn write_lost(out: &mut Vec<u8>, ev: &LostEvent) {
    begin(out, "DAEMON_ERR", &ev.stamp);
    put!(
        out,
        "op=sensor_lost lost=\"{}\" delta=\"{}\" ringbuf=\"{}\" read_errors=\"{}\" \
         channel=\"{}\" incomplete=\"{}\" lookups_late=\"{}\" roots_unwatched=\"{}\" \
         unwritten=\"{}\" res=failed\n",
        ev.total,
        ev.delta,
        ev.ringbuf,
        ev.read_errors,
        ev.channel,
        ev.incomplete,
        ev.lookups_late,
        ev.roots_unwatched,
        ev.unwritten
    );
}

/// `type=X msg=audit(SEC.MSEC:SERIAL): ` as auditd prefixes the kernel's `audit(…): ` header.
fn begin(out: &mut Vec<u8>, rtype: &str, st: &Stamp) {
    // `type=T msg=audit(SEC.MSS:SERIAL): `
    out.extend_from_slice(b"type=");
    out.extend_from_slice(rtype.as_bytes());
    out.extend_from_slice(b" msg=audit(");
    num::dec(out, st.sec);
    out.push(b'.');
    let ms = (st.nsec / 1_000_000) as u64 % 1000;
    out.extend_from_slice(&[
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
    out.push(b':');
    num::dec(out, st.serial);
    out.extend_from_slice(b"): ");
}

fn syscall_nr(arch: u32, sc: Syscall) -> u32 {
    sc.number_in(arch).unwrap_or(sc.number())
}

/// What a SYSCALL record shows, borrowed from the event it belongs to.
struct SyscallRecord<'a> {
    stamp: &'a Stamp,
    arch: u32,
    syscall: Syscall,
    success: bool,
    exit: i64,
    regs: [u64; 4],
    items: usize,
    task: &'a Task,
    key: Option<&'a [u8]>,
    container: &'a Container,
    cut: &'a PathsTruncated,
}

fn write_syscall(out: &mut Vec<u8>, ev: &SyscallRecord, enriched: Option<&dyn Names>) {
    let t = ev.task;
    begin(out, "SYSCALL", ev.stamp);
    out.extend_from_slice(b"arch=");
    num::hex(out, ev.arch as u64, 0);
    out.extend_from_slice(b" syscall=");
    num::dec(out, syscall_nr(ev.arch, ev.syscall) as u64);
    push_personality(out, t.personality);
    out.extend_from_slice(if ev.success {
        b" success=yes exit="
    } else {
        b" success=no exit="
    });
    num::signed(out, ev.exit);
    for (i, reg) in ev.regs.iter().enumerate() {
        out.extend_from_slice(&[b' ', b'a', b'0' + i as u8, b'=']);
        num::hex(out, *reg, 0);
    }
    out.extend_from_slice(b" items=");
    num::dec(out, ev.items as u64);
    out.push(b' ');
    push_task_info(out, t);
    out.extend_from_slice(b" key=");
    match ev.key {
        Some(key) => push_untrusted(out, key),
        None => out.extend_from_slice(b"(null)"),
    }
    push_container(out, ev.container, ev.cut);
    if let Some(names) = enriched {
        out.push(INTERP_SEPARATOR);
        let syscall = match (ev.arch, ev.syscall.name()) {
            (AUDIT_ARCH_I386 | AUDIT_ARCH_X86_64, Some(name)) => name.to_string(),
            _ => format!("unknown-syscall({})", syscall_nr(ev.arch, ev.syscall)),
        };
        put!(out, "ARCH={} SYSCALL={}", arch_name(ev.arch), syscall);
        push_ids(out, names, &task_ids(t));
    }
    out.push(b'\n');
}

/// The ids auditd enriches in SYSCALL and `audit_log_task_info()` records, in their order.
fn task_ids(t: &Task) -> [(&'static str, u32, bool); 9] {
    [
        ("AUID", t.auid, true),
        ("UID", t.uid, true),
        ("GID", t.gid, false),
        ("EUID", t.euid, true),
        ("SUID", t.suid, true),
        ("FSUID", t.fsuid, true),
        ("EGID", t.egid, false),
        ("SGID", t.sgid, false),
        ("FSGID", t.fsgid, false),
    ]
}

/// `ppid=… pid=… auid=… … fsgid=… tty=… ses=… comm=… exe=…`, as SYSCALL and
/// `audit_log_task_info()` both write them.
fn push_task_info(out: &mut Vec<u8>, t: &Task) {
    num::fields(
        out,
        &[
            (&b"ppid="[..], t.ppid),
            (b" pid=", t.pid),
            (b" auid=", t.auid),
            (b" uid=", t.uid),
            (b" gid=", t.gid),
            (b" euid=", t.euid),
            (b" suid=", t.suid),
            (b" fsuid=", t.fsuid),
            (b" egid=", t.egid),
            (b" sgid=", t.sgid),
            (b" fsgid=", t.fsgid),
        ],
    );
    out.extend_from_slice(b" tty=");
    push_raw_name(out, t.tty.as_deref(), b"(none)");
    out.extend_from_slice(b" ses=");
    num::dec(out, t.ses as u64);
    out.extend_from_slice(b" comm=");
    push_untrusted(out, &t.comm);
    out.extend_from_slice(b" exe=");
    match &t.exe {
        Some(exe) => push_untrusted(out, exe),
        None => out.extend_from_slice(b"(null)"),
    }
}

/// A kernel name the kernel writes with `%s` (tty_name(), a net device's name): never hostile in
/// practice, but hex when it could break the record.
fn push_raw_name(out: &mut Vec<u8>, name: Option<&[u8]>, none: &[u8]) {
    match name {
        Some(n) if raw_safe(n) => out.extend_from_slice(n),
        Some(n) => push_hex(out, n),
        None => out.extend_from_slice(none),
    }
}

/// Enriched ` KEY="name"` fields; `true` marks a user id, `false` a group id.
fn push_ids(out: &mut Vec<u8>, names: &dyn Names, ids: &[(&str, u32, bool)]) {
    for &(key, id, is_user) in ids {
        let name = match (id, is_user) {
            (UNSET_ID, _) => None,
            (_, true) => names.user(id),
            (_, false) => names.group(id),
        };
        put!(out, " {key}=");
        push_untrusted(out, &id_text(id, name));
    }
}

/// The whole enrichment of a record that has only ids to interpret: the separator, then the
/// ids, space-separated.
fn push_interp_ids(out: &mut Vec<u8>, names: &dyn Names, ids: &[(&str, u32, bool)]) {
    out.push(INTERP_SEPARATOR);
    let at = out.len();
    push_ids(out, names, ids);
    // push_ids() puts a space before every field; the first one follows the separator.
    out.remove(at);
}

/// The names of the container fields [`push_container`] writes, in order (`container=` and
/// `sensor_trunc_paths=` follow only when there is one).
pub const CONTAINER_FIELDS: [&str; 7] = [
    "cgroup_id",
    "cgroup",
    "pidns",
    "mntns",
    "netns",
    "utsns",
    "nspid",
];

/// The sensor's container fields (see the module documentation), after auditd's own.
fn push_container(out: &mut Vec<u8>, c: &Container, cut: &PathsTruncated) {
    out.extend_from_slice(b" cgroup_id=\"");
    num::dec(out, c.cgroup_id);
    out.extend_from_slice(b"\" cgroup=");
    // The kernel's rule, and a `'` in hex too: these fields follow the `msg='…'` of user
    // records, and a cgroup name is anyone's to choose in a delegated subtree.
    if c.cgroup_path.contains(&b'\'') {
        push_hex(out, &c.cgroup_path);
    } else {
        push_untrusted(out, &c.cgroup_path);
    }
    num::fields(
        out,
        &[
            (&b" pidns=\""[..], c.pid_ns),
            (b"\" mntns=\"", c.mnt_ns),
            (b"\" netns=\"", c.net_ns),
            (b"\" utsns=\"", c.uts_ns),
            (b"\" nspid=\"", c.ns_pid),
        ],
    );
    out.push(b'"');
    if let Some(id) = &c.container_id {
        out.extend_from_slice(b" container=");
        push_untrusted(out, id.as_bytes());
    }
    if cut.any() {
        let names = [(cut.cwd, "cwd"), (cut.exe, "exe"), (cut.cgroup, "cgroup")];
        let list: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        put!(out, " sensor_trunc_paths=\"{}\"", list.join(","));
    }
}

/// ANOM_ABEND as `audit_core_dumps()` writes it (`audit_log_task()` then `sig= res=1`), the
/// container fields after, and auditd's enrichment of the three ids.
pub fn write_abend(out: &mut Vec<u8>, ev: &AbendEvent, enriched: Option<&dyn Names>) {
    begin(out, "ANOM_ABEND", &ev.stamp);
    put!(
        out,
        "auid={} uid={} gid={} ses={} pid={} comm=",
        ev.auid,
        ev.uid,
        ev.gid,
        ev.ses,
        ev.pid
    );
    push_untrusted(out, &ev.comm);
    out.extend_from_slice(b" exe=");
    match &ev.exe {
        Some(exe) => push_untrusted(out, exe),
        None => out.extend_from_slice(b"(null)"),
    }
    put!(out, " sig={} res=1", ev.sig);
    push_container(out, &ev.container, &ev.paths_truncated);
    if let Some(names) = enriched {
        let ids = [
            ("AUID", ev.auid, true),
            ("UID", ev.uid, true),
            ("GID", ev.gid, false),
        ];
        push_interp_ids(out, names, &ids);
    }
    out.push(b'\n');
}

/// auparse's `audit_machine_to_name()` spelling.
fn arch_name(arch: u32) -> String {
    match arch {
        AUDIT_ARCH_X86_64 => "x86_64".into(),
        AUDIT_ARCH_I386 => "i386".into(),
        _ => format!("unknown-elf-type({arch:x})"),
    }
}

/// The value of an enriched uid/gid field, as auditd's `add_simple_field(…, encode=1)` makes it:
/// auparse's `aulookup_uid()` gives "unset" for -1 and `unknown(%d)` (signed) for an unknown id,
/// then `audit_encode_nv_string()` applies the untrusted rule, which the caller does.
fn id_text(id: u32, name: Option<Vec<u8>>) -> Vec<u8> {
    match name {
        _ if id == UNSET_ID => b"unset".to_vec(),
        Some(n) => n,
        None => format!("unknown({})", id as i32).into_bytes(),
    }
}

mod exec;
pub use exec::write_exec;

mod execve;
use execve::write_execve;

mod anomaly;
use anomaly::write_anomaly;

mod user;
use user::write_user_message;

mod pam;
use pam::write_pam;

#[cfg(test)]
mod tests;
