//! An [`Assembled`] exec to the format-neutral [`ExecEvent`]: argv split out of the argument
//! area, paths rebuilt, PATH items as the kernel would have recorded them, and BPRM_FCAPS.
//!
//! Two PATH facts are not visible to the probes and are looked up here, after the fact, from
//! userspace ([`super::lookup`]): the ELF interpreter (`PT_INTERP`, opened by the kernel's ELF
//! loader) and the inode of a `#!` script (replaced by its interpreter inside the kernel). A file
//! changed between the exec and this lookup can make those two items differ from what the
//! kernel saw.

use super::{
    caps, container,
    files::BinaryFacts,
    lookup::{named_facts, resolve},
    task, Normaliser,
};
use crate::{
    assemble::Assembled,
    event::{
        ArgvTruncation, ExecEvent, FileCaps, Inode, NameType, PathItem, PathsTruncated, Syscall,
        AUDIT_ARCH_I386, AUDIT_ARCH_X86_64,
    },
    read::record::InodeFacts,
};

impl Normaliser {
    pub fn exec(&mut self, a: Assembled) -> ExecEvent {
        let Assembled { start: a, exit: x } = a;
        let stamp = self.stamp_at(a.enter.origin.mono_ns);
        let success = x.ret == 0;
        let cwd = a.cwd.as_ref().map(|p| p.to_path());
        let exe = a.exe.as_ref().map(|p| p.to_path());
        let filename = a.filename();
        let (arch, syscall) = match a.enter.compat {
            false => (AUDIT_ARCH_X86_64, Syscall(a.enter.syscall)),
            true => (
                AUDIT_ARCH_I386,
                Syscall::from_arch(AUDIT_ARCH_I386, a.enter.syscall).unwrap_or(Syscall::EXECVE),
            ),
        };

        let (argv, argv_truncated) = match (&a.sched, success) {
            (Some(s), true) => split_argv(&a.args, s.argc, s.args_total),
            _ => (Vec::new(), None),
        };
        // The first bytes of the argument area: read at the exit, or, for a successful exec
        // whose exit did not read them (its whole area came in one record), as copied at
        // `sched_process_exec`, which the new program had not run to change yet.
        let proctitle = match (success, x.proctitle.is_empty()) {
            (true, true) => {
                rtrim_proctitle(&a.args[..a.args.len().min(sensor_common::PROCTITLE_MAX)])
            }
            _ => rtrim_proctitle(&x.proctitle),
        };
        let exe_inode = x.exe.as_ref().map(kernel_inode);
        let binary = match &exe_inode {
            Some(inode) if success => self.files.binary(inode, x.origin.pid, exe.as_deref()),
            _ => BinaryFacts::default(),
        };
        let bprm_filename = bprm_filename(&filename, syscall, a.enter.regs[0]);
        let facts = ExecFacts {
            filename: &filename,
            looked_up_again: self.exec_looked_up_twice.then_some(&bprm_filename[..]),
            success,
            ret: x.ret,
            interp: a.sched.as_ref().and_then(|s| s.interp.clone()),
            exe_inode,
            cwd: cwd.as_deref(),
            caller: Caller {
                fsuid: x.task.fsuid,
                fsgid: x.task.fsgid,
                cap_effective: x.caps.effective,
            },
        };
        let paths = path_items(&facts, &binary);
        let bprm_fcaps = if success {
            let ids = caps::Ids {
                old_uid: a.enter.old_uid,
                new_uid: x.task.uid,
                new_euid: x.task.euid,
            };
            caps::bprm_fcaps(ids, a.enter.old_caps, x.caps, binary.fcaps, self.full_caps)
        } else {
            None
        };

        ExecEvent {
            stamp,
            boot_ns: super::clock::boot_ns(a.enter.origin.mono_ns),
            arch,
            syscall,
            success,
            exit: x.ret,
            regs: [
                a.enter.regs[0],
                a.enter.regs[1],
                a.enter.regs[2],
                a.enter.regs[3],
            ],
            task: task(&x.task, exe),
            argv,
            argv_truncated,
            bprm_fcaps,
            proctitle,
            cwd,
            paths,
            container: container(a.cgroup.as_ref(), &x.ns),
            paths_truncated: PathsTruncated {
                // A path record that never arrived is as incomplete as a cut one.
                cwd: a.cwd.as_ref().is_none_or(|p| p.truncated),
                exe: a.exe.as_ref().is_none_or(|p| p.truncated),
                cgroup: a.cgroup.as_ref().is_none_or(|p| p.truncated),
            },
            key: None,
        }
    }
}

/// PATH items in the kernel's order: the program as named, then (for `#!` scripts) the
/// interpreter named on the `#!` line, then the ELF interpreter of the final binary.
fn path_items(x: &ExecFacts, binary: &BinaryFacts) -> Vec<PathItem> {
    let by_name = resolve(x.filename, x.cwd);
    let item = |(inode, fcaps): (Option<Inode>, FileCaps)| PathItem {
        name: x.filename.to_vec(),
        fcaps,
        inode,
        nametype: NameType::Normal,
    };
    // The name as the caller passed it, looked up now: it may lead anywhere (a FIFO, a hung
    // FUSE mount), so the lookup has a deadline and a late one reads as unresolved.
    let looked_up = || item(named_facts(by_name.clone()).unwrap_or_default());
    if !x.success {
        let unresolved = || PathItem {
            nametype: NameType::Unknown,
            ..item(Default::default())
        };
        // ENOENT / ENOTDIR: the name did not resolve, as the kernel records it.
        if x.ret == -(libc::ENOENT as i64) || x.ret == -(libc::ENOTDIR as i64) {
            return vec![unresolved()];
        }
        let found = looked_up();
        // EACCES from the walk (a directory the caller may not search) leaves the name
        // unresolved; from the file itself (no execute permission, not a regular file, a noexec
        // mount, an LSM), the kernel has the inode. Which one it was is judged from the
        // directories on the way as they are found now.
        if x.ret == -(libc::EACCES as i64) && found.inode.is_some() {
            let caller = x.caller;
            let walk_refused = crate::fsio::with_deadline(crate::fsio::deadline(), move || {
                caller.refused_on_the_way(&by_name)
            })
            .unwrap_or(false);
            if walk_refused {
                return vec![unresolved()];
            }
        }
        return vec![found];
    }
    let the_binary = |name: &[u8]| PathItem {
        name: name.to_vec(),
        inode: x.exe_inode,
        nametype: NameType::Normal,
        fcaps: binary.fcaps,
    };
    let mut items = Vec::with_capacity(4);
    match &x.interp {
        Some(interp) => {
            items.push(looked_up());
            items.push(the_binary(interp));
        }
        None => items.push(the_binary(x.filename)),
    }
    if let Some(name) = x.looked_up_again {
        let again = looked_up_again(name, x.cwd, &items[0]);
        items.insert(1, again);
    }
    items.extend(binary.interp.clone());
    items
}

/// TOMOYO's lookup of the program (see `Normaliser::exec_looked_up_twice`): `bprm->filename`
/// without following a final symlink, so a program run through a symlink (`/bin/sh`) gives the
/// symlink's inode, and otherwise the first item's. A `/dev/fd/N` name is the caller's
/// descriptor, closed by now: where `/dev/fd` exists its magic link cannot be looked up again
/// and the first item's facts stand in; where it does not, the name is unresolved, as there.
fn looked_up_again(name: &[u8], cwd: Option<&[u8]>, first: &PathItem) -> PathItem {
    let like_first = PathItem {
        name: name.to_vec(),
        ..first.clone()
    };
    let unresolved = PathItem {
        name: name.to_vec(),
        inode: None,
        fcaps: FileCaps::default(),
        nametype: NameType::Unknown,
    };
    if name.starts_with(b"/dev/fd/") {
        return match std::path::Path::new("/dev/fd").exists() {
            true => like_first,
            false => unresolved,
        };
    }
    let path = resolve(name, cwd);
    match crate::fsio::with_deadline(crate::fsio::deadline(), move || {
        super::lookup::lstat_inode(&path)
    }) {
        Some(Some(inode)) if inode.mode & libc::S_IFMT == libc::S_IFLNK => PathItem {
            inode: Some(inode),
            fcaps: FileCaps::default(),
            ..like_first
        },
        Some(None) => unresolved,
        _ => like_first,
    }
}

/// `bprm->filename` as `alloc_bprm()` makes it: the name as passed, or for an execveat of a
/// name relative to a directory descriptor, `/dev/fd/N` (empty name) or `/dev/fd/N/NAME`.
fn bprm_filename(filename: &[u8], syscall: Syscall, dirfd: u64) -> Vec<u8> {
    let dirfd = dirfd as i32;
    if syscall != Syscall::EXECVEAT || dirfd == libc::AT_FDCWD || filename.first() == Some(&b'/') {
        return filename.to_vec();
    }
    let mut name = format!("/dev/fd/{dirfd}").into_bytes();
    if !filename.is_empty() {
        name.push(b'/');
        name.extend_from_slice(filename);
    }
    name
}

/// Who ran a failed exec, as its permission checks saw it.
#[derive(Clone, Copy)]
struct Caller {
    fsuid: u32,
    fsgid: u32,
    cap_effective: u64,
}

impl Caller {
    /// Whether a directory on the way to `path` refuses this caller the search (`x`) the walk
    /// needs: by its mode, owner and group, unless CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE.
    /// Blocking: run within a deadline.
    fn refused_on_the_way(&self, path: &std::path::Path) -> bool {
        const CAP_DAC_OVERRIDE: u64 = 1 << 1;
        const CAP_DAC_READ_SEARCH: u64 = 1 << 2;
        if self.cap_effective & (CAP_DAC_OVERRIDE | CAP_DAC_READ_SEARCH) != 0 {
            return false;
        }
        path.ancestors().skip(1).any(|dir| {
            let Some(inode) = super::lookup::stat_inode(dir) else {
                return false;
            };
            let bits = if self.fsuid == inode.ouid {
                0o100
            } else if self.fsgid == inode.ogid {
                0o010
            } else {
                0o001
            };
            inode.mode & bits == 0
        })
    }
}

/// What PATH items and BPRM_FCAPS are built from.
struct ExecFacts<'a> {
    filename: &'a [u8],
    /// `bprm->filename` where an LSM looks the program up again.
    looked_up_again: Option<&'a [u8]>,
    success: bool,
    ret: i64,
    interp: Option<Vec<u8>>,
    exe_inode: Option<Inode>,
    cwd: Option<&'a [u8]>,
    caller: Caller,
}

fn kernel_inode(f: &InodeFacts) -> Inode {
    Inode {
        ino: f.ino,
        dev_major: f.dev >> 20,
        dev_minor: f.dev & 0xfffff,
        mode: f.mode,
        ouid: f.uid,
        ogid: f.gid,
        rdev_major: f.rdev >> 20,
        rdev_minor: f.rdev & 0xfffff,
    }
}

/// argv from the NUL-separated argument area. Anything the kernel passed but the sensor did not
/// copy is accounted for in the truncation, never dropped silently.
pub fn split_argv(area: &[u8], argc: u32, total: u64) -> (Vec<Vec<u8>>, Option<ArgvTruncation>) {
    let complete = area.len() as u64 >= total;
    let mut argv: Vec<Vec<u8>> = Vec::with_capacity(argc as usize);
    let mut rest = area;
    while argv.len() < argc as usize && !rest.is_empty() {
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                argv.push(rest[..i].to_vec());
                rest = &rest[i + 1..];
            }
            None => {
                // The last argument was cut mid-way.
                argv.push(rest.to_vec());
                rest = &[];
            }
        }
    }
    let missing_args = argc.saturating_sub(argv.len() as u32);
    let missing_bytes = total.saturating_sub(area.len() as u64);
    if complete && missing_args == 0 {
        return (argv, None);
    }
    (
        argv,
        Some(ArgvTruncation {
            missing_args,
            missing_bytes,
        }),
    )
}

/// The kernel's `audit_proctitle_rtrim()`: drop trailing non-printable bytes. The kernel's
/// `isprint()` is Latin-1: 0xa0..=0xff count as printable.
pub fn rtrim_proctitle(raw: &[u8]) -> Vec<u8> {
    let printable = |b: u8| (0x20..=0x7e).contains(&b) || b >= 0xa0;
    let mut len = raw.len();
    while len > 1 && !printable(raw[len - 1]) {
        len -= 1;
    }
    if len == 1 && !printable(raw[0]) {
        len = 0;
    }
    raw[..len].to_vec()
}

#[cfg(test)]
mod eacces_tests {
    use super::Caller;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_directory_the_caller_may_not_search_refuses_the_walk() {
        let dir = std::env::temp_dir().join(format!("sensor-eacces-{}", std::process::id()));
        let inner = dir.join("closed");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
        let prog = inner.join("prog");
        let nobody = Caller {
            fsuid: 65534,
            fsgid: 65534,
            cap_effective: 0,
        };
        assert!(nobody.refused_on_the_way(&prog));
        assert!(!nobody.refused_on_the_way(&dir.join("prog")));
        // The owner may search; CAP_DAC_READ_SEARCH passes every directory.
        let owner = Caller {
            fsuid: 0,
            fsgid: 0,
            cap_effective: 0,
        };
        assert!(!owner.refused_on_the_way(&prog));
        let searcher = Caller {
            cap_effective: 1 << 2,
            ..nobody
        };
        assert!(!searcher.refused_on_the_way(&prog));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
