//! What a refused open or link asked for, read from its syscall: the names, flags and directory
//! fds that [`super::judge`] replays the kernel's checks on.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{judge, task_root, Caller, Request, Sysctls, TaskFs};
use crate::{
    assemble::{AssembledAnomaly, TaskPaths},
    event::{Anomaly, PathDenial, Syscall},
    fsio,
    read::record::SyscallExit,
};

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_FOLLOW: u64 = 0x400;

/// ANOM_LINK / ANOM_CREAT when a protection refused the syscall of a refused open or link
/// (`None` for promiscuity changes, a refusal that was not a protection's, or one that cannot be
/// judged: a name relative to a directory fd, a task whose root is gone).
///
/// The replay walks the task's names under its root, which it may control (a FIFO, a hung FUSE
/// mount): it runs within [`fsio::deadline`], and a late one is not judged (and is counted).
pub fn path_denied(a: &AssembledAnomaly) -> Option<Anomaly> {
    match (&a.exit, a.promisc.is_empty()) {
        (Some(x), true) if x.kernel_denial.is_some() => decided(x, &a.paths),
        (Some(x), true) => {
            let (x, paths) = (x.clone(), a.paths.clone());
            fsio::with_deadline(fsio::deadline(), move || refused(&x, &paths)).flatten()
        }
        _ => None,
    }
}

/// Kernel refusals whose `op` this sensor does not know: counted as incomplete events.
static UNKNOWN_OPS: AtomicU64 = AtomicU64::new(0);

/// How many kernel refusals were not reported for their unknown `op`.
pub fn unknown_ops() -> u64 {
    UNKNOWN_OPS.load(Ordering::Relaxed)
}

/// The kernel's own refusal (seen by a trampoline): only its names are added, when the syscall
/// is an open or link one (another syscall's names were not read). An `op` this sensor does not
/// know (a newer kernel's wording) is counted ([`unknown_ops`]) and not reported, rather than
/// reported under another name.
fn decided(x: &SyscallExit, paths: &TaskPaths) -> Option<Anomaly> {
    let k = x.kernel_denial.as_ref()?;
    let Some(denial) = PathDenial::from_kernel(k.record_type, &k.op) else {
        UNKNOWN_OPS.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    Some(Anomaly::PathDenied {
        denial,
        names: [&paths.name, &paths.newname]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        object: Vec::new(),
    })
}

fn refused(x: &SyscallExit, paths: &TaskPaths) -> Option<Anomaly> {
    let name = paths.name.as_deref()?;
    let dfd = |i: usize| x.args[i] as i32;
    let (req, dfds) = match Syscall(x.syscall) {
        Syscall::OPEN | Syscall::CREAT => (
            Request::Open {
                name,
                flags: x.flags,
            },
            vec![AT_FDCWD],
        ),
        Syscall::OPENAT | Syscall::OPENAT2 => (
            Request::Open {
                name,
                flags: x.flags,
            },
            vec![dfd(0)],
        ),
        Syscall::LINK => (
            Request::Link {
                old: name,
                new: paths.newname.as_deref()?,
                follow: false,
            },
            vec![AT_FDCWD],
        ),
        Syscall::LINKAT => (
            Request::Link {
                old: name,
                new: paths.newname.as_deref()?,
                follow: x.flags & AT_SYMLINK_FOLLOW != 0,
            },
            vec![dfd(0), dfd(2)],
        ),
        _ => return None,
    };
    // A relative name under a directory fd is looked up from that fd, which the sensor does not
    // follow: such a refusal is not judged.
    let relative = |n: &[u8]| n.first() != Some(&b'/');
    let names: Vec<&[u8]> = match &req {
        Request::Open { name, .. } => vec![name],
        Request::Link { old, new, .. } => vec![old, new],
    };
    if names
        .iter()
        .zip(&dfds)
        .any(|(n, &d)| relative(n) && d != AT_FDCWD)
    {
        return None;
    }
    let (root, pin) = task_root(x.origin.pid, x.ns.mnt_ns)?;
    let fs = TaskFs {
        root,
        pin,
        base: paths.cwd.as_ref()?.to_path(),
    };
    let who = Caller {
        fsuid: x.task.fsuid,
        fsgid: x.task.fsgid,
        cap_effective: x.cap_effective,
    };
    let sysctls = Sysctls::read().ok()?;
    let (denial, object) = judge(&fs, &req, x.ret, &sysctls, &who)?;
    Some(Anomaly::PathDenied {
        denial,
        names: names.into_iter().map(<[u8]>::to_vec).collect(),
        object,
    })
}
