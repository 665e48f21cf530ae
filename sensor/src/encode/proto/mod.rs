//! Protobuf encoding of [`Event`]s (schema `sensor.v1`, see `proto/sensor/v1/events.proto`) and the
//! length-delimited stream format that `sensor decode` reads back.
//!
//! Decoding is strict: a field the model requires, an enum value it cannot represent or a value
//! out of range is an error rather than a default, so that a decoded stream never shows audit
//! text the sensor did not see.

use std::io::{self, ErrorKind};

use sensor_proto::v1;

use crate::event::{
    AbendEvent, ArgvTruncation, BprmFcaps, Caps, Container, Event, ExecEvent, FileCaps, Inode,
    LostEvent, NameType, PathItem, PathsTruncated, Stamp, Syscall, Task,
};

/// The revision of `sensor.v1` this code writes (`Envelope.schema_version`).
pub const SCHEMA_VERSION: u32 = 8;

/// Bytes of argument area the sensor copies at most (4 MiB).
const ARGS_AREA_MAX: u64 = sensor_common::ARGS_MAX_CHUNKS as u64 * sensor_common::ARGS_CHUNK as u64;

/// Default cap on one message in a stream (9 MiB): the largest the sensor can write, with room to
/// spare. The largest event is an exec whose whole argument area was copied: as `repeated bytes`
/// an argument costs its bytes plus a tag and a length, at worst two bytes for the one byte (its
/// NUL) an empty argument takes in the area, so argv is at most twice [`ARGS_AREA_MAX`]; all else
/// in an event (a few paths of at most PATH_MAX, a 128-byte proctitle, the cgroup path) stays
/// well under the 1 MiB added. A corrupt length prefix cannot make the reader take more.
pub const DEFAULT_MAX_MESSAGE_LEN: u64 = 2 * ARGS_AREA_MAX + (1 << 20);

/// Most arguments an `ExecEvent` may hold (1 Mi). The kernel refuses an exec whose argument and
/// environment strings plus a pointer to each exceed 3/4 of _STK_LIM, 6 MiB
/// (`bprm_stack_limits()`), so a successful exec has at most 6 MiB / 9 = 699,050 arguments (empty
/// ones: an 8-byte pointer and a NUL each), and the sensor writes no more. A reader refuses more:
/// decoded, every argument costs 24 bytes however empty, so the 30 million empty arguments a
/// 60 MB message can hold would take 720 MB.
pub const MAX_ARGV: usize = 1 << 20;

/// Why a stream or an envelope could not become an [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("missing required field {0}")]
    MissingField(&'static str),
    #[error("field {field} has unknown or unspecified enum value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("field {field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// The envelope's body is a kind this reader does not know (from a newer writer) or is
    /// absent. Framing is intact, so a reader may skip it and continue.
    #[error("envelope has no body this reader knows (written by schema revision {schema_version}, reader knows up to {SCHEMA_VERSION})")]
    UnknownBody { schema_version: u32 },
    #[error("stream truncated: message at byte {offset} needs {needed} bytes, only {got} present")]
    Truncated { offset: u64, needed: u64, got: u64 },
    #[error("stream truncated: length prefix at byte {offset} is incomplete")]
    TruncatedLength { offset: u64 },
    #[error("invalid length prefix at byte {offset}")]
    BadLength { offset: u64 },
    #[error("message at byte {offset} is {len} bytes, over the {max}-byte limit")]
    TooLarge { offset: u64, len: u64, max: u64 },
    #[error("cannot decode message at byte {offset}")]
    Decode {
        offset: u64,
        #[source]
        source: prost::DecodeError,
    },
    #[error("reading the stream")]
    Io(#[from] io::Error),
}

/// Builds `$ty` from the same-named fields of `$src` (plus any `; field: value`). Naming every
/// field, rather than spreading a default, keeps the compiler checking that model and schema stay
/// in step.
macro_rules! move_fields {
    ($src:expr => $ty:path { $($f:ident),* $(; $($k:ident: $v:expr),*)? }) => {{
        let s = $src;
        $ty { $($f: s.$f,)* $($($k: $v,)*)? }
    }};
}

impl From<&HostInfo> for v1::Host {
    fn from(h: &HostInfo) -> Self {
        move_fields!(h.clone() => v1::Host { hostname, boot_id, machine_id })
    }
}

impl From<v1::Host> for HostInfo {
    fn from(h: v1::Host) -> Self {
        move_fields!(h => HostInfo { hostname, boot_id, machine_id })
    }
}

/// Identity of the machine the sensor runs on, stamped into every envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostInfo {
    pub hostname: Vec<u8>,
    pub boot_id: Vec<u8>,
    /// Empty when the machine has no machine-id (minimal containers, initramfs).
    pub machine_id: Vec<u8>,
}

impl HostInfo {
    /// Reads the identity as seen from the sensor's own UTS and mount namespaces. Hostname and
    /// boot id must be readable; a missing machine-id is normal on some systems and gives an
    /// empty one.
    pub fn current() -> io::Result<Self> {
        let hostname = read_trimmed("/proc/sys/kernel/hostname")?;
        let boot_id = read_trimmed("/proc/sys/kernel/random/boot_id")?;
        let mut machine_id = Vec::new();
        // systemd's location first, then the older D-Bus one that some distributions still use.
        for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            match read_trimmed(path) {
                Ok(id) if !id.is_empty() => {
                    machine_id = id;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(HostInfo {
            hostname,
            boot_id,
            machine_id,
        })
    }
}

/// Drops only the one newline the file adds: a hostname may legitimately end in other
/// whitespace, and the bytes must stay exactly what the kernel holds.
fn read_trimmed(path: &str) -> io::Result<Vec<u8>> {
    let mut data = std::fs::read(path)?;
    if data.last() == Some(&b'\n') {
        data.pop();
    }
    Ok(data)
}

/// The envelope with its host header, as one message: what a reader decodes from
/// [`StreamWriter`]'s bytes (the tests compare the two, and edit envelopes made here).
#[cfg(test)]
pub fn to_envelope(ev: Event, host: &HostInfo) -> v1::Envelope {
    v1::Envelope {
        host: Some(host.into()),
        ..envelope(ev)
    }
}

/// The envelope without its host header ([`StreamWriter`] adds that once encoded). `boot_ns` is 0
/// for a [`LostEvent`], which has no kernel timestamp.
fn envelope(ev: Event) -> v1::Envelope {
    let (stamp, boot_ns, body) = match ev {
        Event::Exec(e) => (
            e.stamp,
            e.boot_ns,
            v1::envelope::Body::Exec(Box::new(exec_to_proto(e))),
        ),
        Event::Lost(l) => (l.stamp, 0, v1::envelope::Body::Lost(lost_to_proto(&l))),
        Event::Abend(a) => (
            a.stamp,
            a.boot_ns,
            v1::envelope::Body::Abend(abend_to_proto(a)),
        ),
        Event::Anomaly(a) => (
            a.stamp,
            a.boot_ns,
            v1::envelope::Body::Anomaly(anomaly::to_proto(a)),
        ),
        Event::UserMessage(m) => (
            m.stamp,
            m.boot_ns,
            v1::envelope::Body::UserMessage(pam::user_message_to_proto(m)),
        ),
        Event::Pam(p) => (
            p.stamp,
            p.boot_ns,
            v1::envelope::Body::Pam(pam::to_proto(p)),
        ),
    };
    v1::Envelope {
        schema_version: SCHEMA_VERSION,
        serial: stamp.serial,
        wall_sec: stamp.sec,
        wall_nsec: stamp.nsec,
        boot_ns,
        host: None,
        body: Some(body),
    }
}

/// Rebuilds the event; the host header is not part of the model (read `env.host` first if it
/// matters).
pub fn from_envelope(env: v1::Envelope) -> Result<Event, ProtoError> {
    if env.schema_version == 0 {
        return Err(ProtoError::MissingField("Envelope.schema_version"));
    }
    if env.wall_nsec >= 1_000_000_000 {
        return Err(ProtoError::InvalidField {
            field: "Envelope.wall_nsec",
            reason: format!("{} is not below one second", env.wall_nsec),
        });
    }
    let stamp = Stamp {
        sec: env.wall_sec,
        nsec: env.wall_nsec,
        serial: env.serial,
    };
    match env.body {
        Some(v1::envelope::Body::Exec(e)) => {
            exec_from_proto(*e, stamp, env.boot_ns).map(Event::Exec)
        }
        Some(v1::envelope::Body::Lost(l)) => Ok(Event::Lost(lost_from_proto(l, stamp))),
        Some(v1::envelope::Body::Abend(a)) => {
            abend_from_proto(a, stamp, env.boot_ns).map(Event::Abend)
        }
        Some(v1::envelope::Body::Anomaly(a)) => {
            anomaly::from_proto(a, stamp, env.boot_ns).map(Event::Anomaly)
        }
        Some(v1::envelope::Body::UserMessage(m)) => {
            pam::user_message_from_proto(m, stamp, env.boot_ns).map(Event::UserMessage)
        }
        Some(v1::envelope::Body::Pam(p)) => pam::from_proto(p, stamp, env.boot_ns).map(Event::Pam),
        None => Err(ProtoError::UnknownBody {
            schema_version: env.schema_version,
        }),
    }
}

fn task_to_proto(t: Task) -> v1::Task {
    move_fields!(t => v1::Task {
        ppid, pid, tid, auid, uid, gid, euid, suid, fsuid, egid, sgid, fsgid, ses, tty, comm, exe,
        personality
    })
}

fn task_from_proto(t: v1::Task) -> Task {
    move_fields!(t => Task {
        ppid, pid, tid, auid, uid, gid, euid, suid, fsuid, egid, sgid, fsgid, ses, tty, comm, exe,
        personality
    })
}

/// The syscalls the schema names, by their x86_64 numbers. The values are the kernel's names
/// (`SYSCALL_PWRITE64` is syscall 18, which libaudit's table, and so the audit text, call
/// `pwrite`), so the mapping is by number, not by spelling. A syscall the schema has no value
/// for is written SYSCALL_UNSPECIFIED, which a reader refuses where the message has no number
/// beside it (schema revision 4 names only the syscalls the probes report).
const SYSCALLS: [(v1::Syscall, u32); 18] = {
    use sensor_common::syscalls::x86_64 as nr;
    use v1::Syscall as S;
    [
        (S::Execve, nr::EXECVE),
        (S::Execveat, nr::EXECVEAT),
        (S::Open, nr::OPEN),
        (S::Openat, nr::OPENAT),
        (S::Openat2, nr::OPENAT2),
        (S::Creat, nr::CREAT),
        (S::Link, nr::LINK),
        (S::Linkat, nr::LINKAT),
        (S::Ioctl, nr::IOCTL),
        (S::Sendto, nr::SENDTO),
        (S::Sendmsg, nr::SENDMSG),
        (S::Setsockopt, nr::SETSOCKOPT),
        (S::Close, nr::CLOSE),
        (S::Write, nr::WRITE),
        (S::Pwrite64, nr::PWRITE64),
        (S::Writev, nr::WRITEV),
        (S::Pwritev, nr::PWRITEV),
        (S::Pwritev2, nr::PWRITEV2),
    ]
};

fn syscall_to_proto(s: Syscall) -> i32 {
    SYSCALLS
        .iter()
        .find(|&&(_, n)| n == s.0)
        .map_or(v1::Syscall::Unspecified, |&(v, _)| v) as i32
}

fn syscall_from_proto(value: i32, field: &'static str) -> Result<Syscall, ProtoError> {
    SYSCALLS
        .iter()
        .find(|&&(v, _)| v as i32 == value)
        .map(|&(_, n)| Syscall(n))
        .ok_or(ProtoError::UnknownEnum { field, value })
}

fn regs_from_proto(regs: &[u64], field: &'static str) -> Result<[u64; 4], ProtoError> {
    regs.try_into().map_err(|_| ProtoError::InvalidField {
        field,
        reason: format!("{} registers, expected 4", regs.len()),
    })
}

fn container_to_proto(c: Container) -> v1::Container {
    move_fields!(c => v1::Container {
        cgroup_id, cgroup_path, pid_ns, mnt_ns, net_ns, uts_ns, ns_pid, container_id
    })
}

fn container_from_proto(c: v1::Container) -> Container {
    move_fields!(c => Container {
        cgroup_id, cgroup_path, pid_ns, mnt_ns, net_ns, uts_ns, ns_pid, container_id
    })
}

fn truncated_to_proto(t: PathsTruncated) -> Option<v1::PathsTruncated> {
    t.any()
        .then(|| move_fields!(t => v1::PathsTruncated { cwd, exe, cgroup }))
}

fn truncated_from_proto(t: Option<v1::PathsTruncated>) -> PathsTruncated {
    t.map(|t| move_fields!(t => PathsTruncated { cwd, exe, cgroup }))
        .unwrap_or_default()
}

fn abend_to_proto(a: AbendEvent) -> v1::AbendEvent {
    v1::AbendEvent {
        pid: a.pid,
        auid: a.auid,
        uid: a.uid,
        gid: a.gid,
        ses: a.ses,
        comm: a.comm,
        exe: a.exe,
        sig: a.sig,
        container: Some(container_to_proto(a.container)),
        paths_truncated: truncated_to_proto(a.paths_truncated),
    }
}

fn abend_from_proto(
    a: v1::AbendEvent,
    stamp: Stamp,
    boot_ns: u64,
) -> Result<AbendEvent, ProtoError> {
    let c = a
        .container
        .ok_or(ProtoError::MissingField("AbendEvent.container"))?;
    Ok(AbendEvent {
        stamp,
        boot_ns,
        pid: a.pid,
        auid: a.auid,
        uid: a.uid,
        gid: a.gid,
        ses: a.ses,
        comm: a.comm,
        exe: a.exe,
        sig: a.sig,
        container: container_from_proto(c),
        paths_truncated: truncated_from_proto(a.paths_truncated),
    })
}

fn lost_to_proto(l: &LostEvent) -> v1::LostEvent {
    move_fields!(l => v1::LostEvent {
        total, delta, ringbuf, read_errors, channel, incomplete, lookups_late, roots_unwatched, unwritten
    })
}

fn lost_from_proto(l: v1::LostEvent, stamp: Stamp) -> LostEvent {
    move_fields!(l => LostEvent {
        total, delta, ringbuf, read_errors, channel, incomplete, lookups_late, roots_unwatched, unwritten;
        stamp: stamp
    })
}

mod anomaly;
mod exec;
use exec::{exec_from_proto, exec_to_proto};

pub(crate) mod pam;

mod stream;
#[cfg(test)]
pub use stream::write_delimited;
pub use stream::{DelimitedReader, StreamWriter};

#[cfg(test)]
pub(crate) mod tests;
