//! ANOM_LINK, ANOM_CREAT and ANOM_PROMISCUOUS events from an [`AssembledAnomaly`]: the
//! promiscuity changes read from the kernel's console line, the refusal that
//! [`crate::detect::protect`] judged a protection's, and the SYSCALL part of their event.

use super::{rtrim_proctitle, standalone_context, task, Normaliser};
use crate::{
    assemble::AssembledAnomaly,
    event::{Anomaly, AnomalyEvent, LoginChange, Promiscuity, Syscall, SyscallPart},
    read::record::{LoginUid, Promisc, SyscallExit},
};

/// IFF_PROMISC, as the kernel writes `prom=` and `old_prom=`.
const IFF_PROMISC: u32 = 0x100;

impl Normaliser {
    /// The event of promiscuity changes, or of a refused syscall with `denied`, the verdict of
    /// [`crate::detect::protect::path_denied`]; `None` when there is neither.
    pub fn anomaly(
        &mut self,
        a: AssembledAnomaly,
        denied: Option<Anomaly>,
    ) -> Option<AnomalyEvent> {
        let AssembledAnomaly {
            exit,
            promisc,
            login,
            paths,
        } = a;
        let (anomaly, mono_ns, ns) = match (&exit, promisc.first()) {
            (Some(x), None) if login.is_some() => {
                let l = login.as_ref()?;
                (Anomaly::Login(login_change(l, x)), l.origin.mono_ns, x.ns)
            }
            (_, Some(first)) => {
                let changes: Vec<Promiscuity> = promisc.iter().filter_map(change).collect();
                if changes.is_empty() {
                    return None;
                }
                (
                    Anomaly::Promiscuous(changes),
                    first.origin.mono_ns,
                    first.ns,
                )
            }
            (Some(x), None) => (denied?, x.origin.mono_ns, x.ns),
            (None, None) => return None,
        };
        let (exe, container, paths_truncated) =
            standalone_context(paths.exe.as_ref(), paths.cgroup.as_ref(), &ns);
        let syscall = exit.as_deref().map(|x| SyscallPart {
            syscall: Syscall(x.syscall),
            success: !(-4095..0).contains(&x.ret),
            exit: x.ret,
            regs: [x.args[0], x.args[1], x.args[2], x.args[3]],
            task: task(&x.task, exe),
            proctitle: rtrim_proctitle(&x.proctitle),
        });
        Some(AnomalyEvent {
            key: None,
            stamp: self.stamp_at(mono_ns),
            boot_ns: super::clock::boot_ns(mono_ns),
            anomaly,
            syscall,
            container,
            paths_truncated,
        })
    }
}

/// `audit_set_loginuid()`'s outcome from the write's return and the task after it. Refused, the
/// record names the login uid asked for (as the kernel parsed it: decimal, an optional
/// newline) and no session.
fn login_change(l: &LoginUid, x: &SyscallExit) -> LoginChange {
    const UNSET: u32 = u32::MAX;
    let res = l.ret >= 0;
    let (auid, ses) = if res {
        (x.task.auid, x.task.ses)
    } else {
        let text = l.value.split(|&b| b == 0).next().unwrap_or_default();
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let asked = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.trim_start().parse::<u32>().ok())
            .unwrap_or(UNSET);
        (asked, UNSET)
    };
    LoginChange {
        old_auid: l.old_auid,
        auid,
        old_ses: l.old_ses,
        ses,
        res,
        old_exact: l.old_exact,
    }
}

fn change(p: &Promisc) -> Option<Promiscuity> {
    let (dev, entered) = parse_console(&p.text)?;
    let (prom, old_prom) = if entered {
        (IFF_PROMISC, 0)
    } else {
        (0, IFF_PROMISC)
    };
    Some(Promiscuity {
        dev,
        prom,
        old_prom,
        auid: p.ids.auid,
        uid: p.ids.uid,
        gid: p.ids.gid,
        ses: p.ids.ses,
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
