//! ANOM_LINK, ANOM_CREAT and ANOM_PROMISCUOUS events from an [`AssembledAnomaly`]: the
//! protection check for refused opens and links ([`crate::detect::protect`]), the promiscuity changes
//! read from the kernel's console line, and the SYSCALL part of their event.

use sensor_common as wire;

use super::{rtrim_proctitle, standalone_context, task, Normaliser, PROCTITLE_MAX};
use crate::{
    assemble::{AssembledAnomaly, TaskPaths},
    detect::protect::{self, Caller, Request, Sysctls, TaskFs},
    event::{Anomaly, AnomalyEvent, Promiscuity, Syscall, SyscallPart},
};

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
/// IFF_PROMISC, as the kernel writes `prom=` and `old_prom=`.
const IFF_PROMISC: u32 = 0x100;

impl Normaliser {
    /// `None` when the refusal was not a protection's, or cannot be judged (see `protect`).
    pub fn anomaly(&mut self, a: AssembledAnomaly) -> Option<AnomalyEvent> {
        let AssembledAnomaly {
            exit,
            promisc,
            paths,
        } = a;
        let (anomaly, boot_ns, ns) = match (&exit, promisc.first()) {
            (_, Some(first)) => {
                let changes: Vec<Promiscuity> = promisc.iter().filter_map(change).collect();
                if changes.is_empty() {
                    return None;
                }
                (Anomaly::Promiscuous(changes), first.hdr.boot_ns, first.ns)
            }
            (Some(x), None) => (path_denied(x, &paths)?, x.hdr.boot_ns, x.ns),
            (None, None) => return None,
        };
        let (exe, container, paths_truncated) =
            standalone_context(paths.exe.as_ref(), paths.cgroup.as_ref(), &ns);
        let syscall = exit.as_deref().and_then(|x| {
            Some(SyscallPart {
                syscall: Syscall::from_number(x.nr)?,
                success: !(-4095..0).contains(&x.ret),
                exit: x.ret,
                regs: [x.args[0], x.args[1], x.args[2], x.args[3]],
                task: task(&x.hdr, &x.task, exe),
                proctitle: rtrim_proctitle(
                    &x.proctitle[..(x.proctitle_len as usize).min(PROCTITLE_MAX)],
                ),
            })
        });
        Some(AnomalyEvent {
            stamp: self.stamp_at(boot_ns),
            boot_ns,
            anomaly,
            syscall,
            container,
            paths_truncated,
        })
    }
}

/// ANOM_LINK / ANOM_CREAT when a protection refused the syscall.
fn path_denied(x: &wire::SyscallExit, paths: &TaskPaths) -> Option<Anomaly> {
    let name = paths.name.as_deref()?;
    let dfd = |i: usize| x.args[i] as i32;
    let (req, dfds) = match Syscall::from_number(x.nr)? {
        Syscall::Open | Syscall::Creat => (
            Request::Open {
                name,
                flags: x.flags,
            },
            vec![AT_FDCWD],
        ),
        Syscall::Openat | Syscall::Openat2 => (
            Request::Open {
                name,
                flags: x.flags,
            },
            vec![dfd(0)],
        ),
        Syscall::Link => (
            Request::Link {
                old: name,
                new: paths.newname.as_deref()?,
                follow: false,
            },
            vec![AT_FDCWD],
        ),
        Syscall::Linkat => (
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
    let fs = TaskFs {
        root: protect::task_root(x.hdr.pid, x.ns.mnt_ns)?,
        base: paths.cwd.as_ref()?.to_path(),
    };
    let who = Caller {
        fsuid: x.task.fsuid,
        fsgid: x.task.fsgid,
        cap_effective: x.cap_effective,
    };
    let sysctls = Sysctls::read().ok()?;
    let (denial, object) = protect::judge(&fs, &req, x.ret, &sysctls, &who)?;
    Some(Anomaly::PathDenied {
        denial,
        names: names.into_iter().map(<[u8]>::to_vec).collect(),
        object,
    })
}

fn change(p: &wire::Promisc) -> Option<Promiscuity> {
    let text = &p.text[..(p.text_len as usize).min(p.text.len())];
    let (dev, entered) = parse_console(text)?;
    let (prom, old_prom) = if entered {
        (IFF_PROMISC, 0)
    } else {
        (0, IFF_PROMISC)
    };
    Some(Promiscuity {
        dev,
        prom,
        old_prom,
        auid: p.auid,
        uid: p.uid,
        gid: p.gid,
        ses: p.ses,
    })
}

/// The device and direction of `__dev_set_promiscuity()`'s console line: `netdev_info()`'s
/// `[driver bus-id ]dev[ (state)]: entered|left promiscuous mode`, or before Linux 6.6
/// `device dev entered|left promiscuous mode`.
pub fn parse_console(text: &[u8]) -> Option<(Vec<u8>, bool)> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let head = text.strip_suffix(b" promiscuous mode")?;
    let (head, entered) = match (head.strip_suffix(b" entered"), head.strip_suffix(b" left")) {
        (Some(h), _) => (h, true),
        (_, Some(h)) => (h, false),
        _ => return None,
    };
    let dev = match head.strip_suffix(b":") {
        Some(h) => {
            // netdev_reg_state() appends " (unregistering)" and the like.
            let h = match h.strip_suffix(b")") {
                Some(inner) => &inner[..inner.iter().rposition(|&b| b == b'(')?],
                None => h,
            };
            let h = h.strip_suffix(b" ").unwrap_or(h);
            h.rsplit(|&b| b == b' ').next()?
        }
        None => head.strip_prefix(b"device ")?,
    };
    // dev_valid_name(): 1..IFNAMSIZ-1 bytes, no '/', ':' or whitespace.
    let valid = !dev.is_empty()
        && dev.len() < 16
        && !dev
            .iter()
            .any(|&b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    valid.then(|| (dev.to_vec(), entered))
}

#[cfg(test)]
mod tests {
    use super::parse_console;

    #[test]
    fn console_lines_of_both_kernel_generations() {
        type Case<'a> = (&'a [u8], Option<(&'a [u8], bool)>);
        let cases: [Case; 8] = [
            (b"vtest0: entered promiscuous mode", Some((b"vtest0", true))),
            (b"vtest0: left promiscuous mode\n", Some((b"vtest0", false))),
            (
                b"e1000 0000:00:03.0 eth0: entered promiscuous mode",
                Some((b"eth0", true)),
            ),
            (
                b"veth9 (unregistering): left promiscuous mode",
                Some((b"veth9", false)),
            ),
            (
                b"device eth1 entered promiscuous mode",
                Some((b"eth1", true)),
            ),
            (b"eth0: entered allmulticast mode", None),
            (b"eth0: sang promiscuous mode", None),
            (b": entered promiscuous mode", None),
        ];
        for (text, want) in cases {
            let got = parse_console(text);
            assert_eq!(
                got,
                want.map(|(d, e)| (d.to_vec(), e)),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
