//! Stage 4: turn assembled records into the format-neutral events of [`crate::event`]: the
//! wall-clock stamp and serial, the task, the container context, and per kind what the kernel's
//! record holds ([`exec`], [`anomaly`], [`pam`], [`user`]). Nothing here decides whether an
//! anomaly happened: that is [`crate::detect`].

use crate::{
    assemble::{AssembledAbend, WalkedPath},
    event::{AbendEvent, Container, PathsTruncated, Stamp, Task},
    read::record::{TaskInfo, TaskNs},
};

pub mod anomaly;
pub mod caps;
pub mod clock;
mod exec;
mod files;
pub mod lookup;
pub mod pam;
pub mod user;

pub use exec::{rtrim_proctitle, split_argv};
use files::FileCache;
pub use lookup::elf_interp;

pub struct Normaliser {
    serial: u64,
    files: FileCache,
    full_caps: u64,
    /// TOMOYO is among the kernel's LSMs: at each exec its `bprm_check` hook looks the
    /// program up again by `bprm->filename` (`tomoyo_realpath_nofollow()` → `kern_path()`),
    /// which the kernel's audit records as a second PATH item after the first (seen on
    /// Debian's 6.1, whose default LSM list has it).
    exec_looked_up_twice: bool,
}

impl Default for Normaliser {
    fn default() -> Self {
        Normaliser {
            serial: 0,
            files: FileCache::default(),
            full_caps: caps::full_set(),
            exec_looked_up_twice: false,
        }
    }
}

impl Normaliser {
    /// For a kernel whose active LSMs (`/sys/kernel/security/lsm`) are `lsms`.
    pub fn for_lsms(lsms: &[String]) -> Self {
        Normaliser {
            exec_looked_up_twice: lsms.iter().any(|l| l == "tomoyo"),
            ..Normaliser::default()
        }
    }

    pub fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// A stamp for something happening now (lost-event reports).
    pub fn stamp_now(&mut self) -> Stamp {
        let now = clock::clock(libc::CLOCK_REALTIME);
        Stamp {
            sec: now / 1_000_000_000,
            nsec: (now % 1_000_000_000) as u32,
            serial: self.next_serial(),
        }
    }

    pub fn abend(&mut self, a: AssembledAbend) -> AbendEvent {
        let x = a.abend;
        let (exe, container, paths_truncated) =
            standalone_context(a.exe.as_ref(), a.cgroup.as_ref(), &x.ns);
        AbendEvent {
            stamp: self.stamp_at(x.origin.mono_ns),
            boot_ns: clock::boot_ns(x.origin.mono_ns),
            pid: x.origin.pid,
            auid: x.ids.auid,
            uid: x.ids.uid,
            gid: x.ids.gid,
            ses: x.ids.ses,
            comm: x.comm,
            exe,
            sig: x.sig,
            container,
            paths_truncated,
        }
    }

    /// The event's stamp: its kernel time on the wall clock, and the next serial.
    fn stamp_at(&mut self, mono_ns: u64) -> Stamp {
        let wall = clock::wall_ns(mono_ns);
        Stamp {
            sec: wall / 1_000_000_000,
            nsec: (wall % 1_000_000_000) as u32,
            serial: self.next_serial(),
        }
    }
}

/// What a standalone event (ABEND, anomaly, PAM call, user message) takes from the exe and
/// cgroup paths sent just before it: the exe, the container, and which of them were cut. A
/// missing exe is a task without one; a missing cgroup record was lost, and counts as cut.
fn standalone_context(
    exe: Option<&WalkedPath>,
    cgroup: Option<&WalkedPath>,
    ns: &TaskNs,
) -> (Option<Vec<u8>>, Container, PathsTruncated) {
    let cut = PathsTruncated {
        cwd: false,
        exe: exe.is_some_and(|p| p.truncated),
        cgroup: cgroup.is_none_or(|p| p.truncated),
    };
    (exe.map(WalkedPath::to_path), container(cgroup, ns), cut)
}

/// The task as the SYSCALL record shows it.
fn task(t: &TaskInfo, exe: Option<Vec<u8>>) -> Task {
    Task { exe, ..t.clone() }
}

/// The container context from the kernel's facts. A cgroup path record that never arrived
/// reads `/` (and the event says it was lost).
fn container(cgroup: Option<&WalkedPath>, ns: &TaskNs) -> Container {
    let cgroup_path = cgroup.map(|p| p.to_path()).unwrap_or_else(|| b"/".to_vec());
    Container {
        cgroup_id: ns.cgroup_id,
        container_id: container_id(&cgroup_path),
        cgroup_path,
        pid_ns: ns.pid_ns,
        mnt_ns: ns.mnt_ns,
        net_ns: ns.net_ns,
        uts_ns: ns.uts_ns,
        ns_pid: ns.ns_pid,
    }
}

/// A container id in a cgroup path: a 64-hex-digit component, bare (`/docker/<id>`) or
/// wrapped by a runtime's systemd scope (`docker-<id>.scope`, `cri-containerd-<id>.scope`,
/// `crio-<id>.scope`, `libpod-<id>.scope`).
pub fn container_id(cgroup_path: &[u8]) -> Option<String> {
    cgroup_path.split(|&b| b == b'/').rev().find_map(|comp| {
        let comp = comp.strip_suffix(b".scope").unwrap_or(comp);
        let id = match comp.iter().rposition(|&b| b == b'-') {
            Some(i) => &comp[i + 1..],
            None => comp,
        };
        (id.len() == 64 && id.iter().all(|b| b.is_ascii_hexdigit()))
            .then(|| String::from_utf8_lossy(id).into_owned())
    })
}

#[cfg(test)]
mod tests;
