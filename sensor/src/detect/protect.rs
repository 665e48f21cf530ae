//! Did an fs.protected_* sysctl refuse this open or link, or something else?
//!
//! The kernel decides in `may_linkat()`, `may_follow_link()` and `may_create_in_sticky()`
//! (fs/namei.c) and writes ANOM_LINK / ANOM_CREAT there. No tracepoint reaches them, so the
//! sensor sees only the syscall's EACCES/EPERM and replays the same checks here, on the sysctl
//! values and the ownership and mode of the objects as they are when the event is handled.
//! What that cannot see (a file changed in between, supplementary groups, ACLs, a task whose
//! mount namespace is gone) is listed in the README.

use std::{
    collections::VecDeque,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
};

use crate::event::PathDenial;

mod syscall;
pub use syscall::{path_denied, unknown_ops};

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFIFO: u32 = 0o010000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const CAP_DAC_OVERRIDE: u64 = 1 << 1;
const CAP_FOWNER: u64 = 1 << 3;
/// The kernel's MAXSYMLINKS.
const MAX_SYMLINKS: u32 = 40;

/// `fs.protected_*`, read when an event is judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sysctls {
    pub hardlinks: u32,
    pub symlinks: u32,
    pub regular: u32,
    pub fifos: u32,
}

impl Sysctls {
    pub fn read() -> std::io::Result<Self> {
        let get = |name: &str| -> std::io::Result<u32> {
            let text = std::fs::read_to_string(format!("/proc/sys/fs/protected_{name}"))?;
            text.trim()
                .parse()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        };
        Ok(Sysctls {
            hardlinks: get("hardlinks")?,
            symlinks: get("symlinks")?,
            regular: get("regular")?,
            fifos: get("fifos")?,
        })
    }
}

/// Owner and mode of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl From<&std::fs::Metadata> for Meta {
    fn from(m: &std::fs::Metadata) -> Self {
        Meta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
        }
    }
}

/// The credentials the checks compare against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub fsuid: u32,
    pub fsgid: u32,
    pub cap_effective: u64,
}

/// `may_linkat()`: a hard link to a file the caller neither owns nor may read and write.
pub fn linkat_refused(s: &Sysctls, src: Meta, who: &Caller) -> bool {
    if s.hardlinks == 0 {
        return false;
    }
    // inode_owner_or_capable()
    if src.uid == who.fsuid || who.cap_effective & CAP_FOWNER != 0 {
        return false;
    }
    !safe_hardlink_source(src, who)
}

/// `safe_hardlink_source()`: a regular file, not set-id, that the caller may read and write.
fn safe_hardlink_source(m: Meta, who: &Caller) -> bool {
    if m.mode & S_IFMT != S_IFREG || m.mode & S_ISUID != 0 {
        return false;
    }
    if m.mode & S_ISGID != 0 && m.mode & 0o010 != 0 {
        return false;
    }
    // generic_permission(MAY_READ | MAY_WRITE), without supplementary groups or ACLs.
    let bits = if m.uid == who.fsuid {
        m.mode >> 6
    } else if m.gid == who.fsgid {
        m.mode >> 3
    } else {
        m.mode
    };
    bits & 0o6 == 0o6 || who.cap_effective & CAP_DAC_OVERRIDE != 0
}

/// `may_follow_link()`: a symlink in a sticky world-writable directory, owned by neither the
/// follower nor the directory's owner.
pub fn follow_refused(s: &Sysctls, dir: Meta, link: Meta, fsuid: u32) -> bool {
    s.symlinks != 0
        && link.uid != fsuid
        && dir.mode & (S_ISVTX | 0o002) == (S_ISVTX | 0o002)
        && dir.uid != link.uid
}

/// How the running kernel names an ANOM_CREAT: since 6.12 (checked on 6.12.113 and 6.18) a
/// refusal in a world-writable directory is `sticky_create` and one in a group-writable
/// directory `sticky_create_fifo`/`_regular`; before (checked on 6.1.192) every refusal is named
/// by the file's type. A stable kernel that took the change earlier would differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StickyWording {
    ByDirectory,
    ByFileType,
}

impl StickyWording {
    pub fn of_running_kernel() -> StickyWording {
        static WORDING: std::sync::OnceLock<StickyWording> = std::sync::OnceLock::new();
        *WORDING.get_or_init(|| {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let mut v = release
                .trim()
                .split(['.', '-'])
                .map(|p| p.parse::<u32>().unwrap_or(0));
            match (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 12) {
                true => StickyWording::ByDirectory,
                false => StickyWording::ByFileType,
            }
        })
    }
}

/// `may_create_in_sticky()`: an O_CREAT open of an existing file or FIFO in a sticky directory,
/// owned by neither the opener nor the directory's owner; the op the kernel names it with.
pub fn sticky_create_refused(
    s: &Sysctls,
    dir: Meta,
    file: Meta,
    fsuid: u32,
    wording: StickyWording,
) -> Option<PathDenial> {
    let (regular, fifo) = (file.mode & S_IFMT == S_IFREG, file.mode & S_IFMT == S_IFIFO);
    if dir.mode & S_ISVTX == 0
        || (regular && s.regular == 0)
        || (fifo && s.fifos == 0)
        || file.uid == dir.uid
        || file.uid == fsuid
    {
        return None;
    }
    let by_type = match fifo {
        true => PathDenial::StickyCreateFifo,
        false => PathDenial::StickyCreateRegular,
    };
    if dir.mode & 0o002 != 0 {
        return Some(match wording {
            StickyWording::ByDirectory => PathDenial::StickyCreate,
            StickyWording::ByFileType => by_type,
        });
    }
    (dir.mode & 0o020 != 0 && ((fifo && s.fifos >= 2) || (regular && s.regular >= 2)))
        .then_some(by_type)
}

/// Where a task's paths are looked up: its root as this process can reach it.
pub struct TaskFs {
    /// The task's root held open (`/proc/self/fd/N`, see [`task_root`]), or `/` for a task of
    /// the sensor's own mount namespace that is gone.
    pub root: PathBuf,
    /// The open root `root` names, kept for as long as the lookups run.
    pub pin: Option<std::fs::File>,
    /// The directory relative names start from, as an absolute path under `root`.
    pub base: Vec<u8>,
}

/// How a name resolved.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A symlink on the way was refused by fs.protected_symlinks: its path.
    RefusedLink(Vec<u8>),
    /// The final object (absolute, under the task's root) and whether it exists.
    Object { path: Vec<u8>, exists: bool },
    /// Something on the way could not be looked up.
    Unknown,
}

impl TaskFs {
    fn host_path(&self, components: &[Vec<u8>]) -> PathBuf {
        let mut p = self.root.clone();
        for c in components {
            p.push(std::ffi::OsStr::from_bytes(c));
        }
        p
    }

    /// Walks `name` as the kernel's path walk does, following symlinks (the last one only with
    /// `follow_last`) and applying `may_follow_link()` to each.
    pub fn resolve(&self, name: &[u8], follow_last: bool, s: &Sysctls, fsuid: u32) -> Resolved {
        let mut stack: Vec<Vec<u8>> = if name.first() == Some(&b'/') {
            Vec::new()
        } else {
            components(&self.base).collect()
        };
        let mut queue: VecDeque<Vec<u8>> = components(name).collect();
        let mut follows = 0;
        while let Some(comp) = queue.pop_front() {
            match comp.as_slice() {
                b"." => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let last = queue.is_empty();
            stack.push(comp);
            let here = self.host_path(&stack);
            let Ok(meta) = std::fs::symlink_metadata(&here) else {
                return if last {
                    Resolved::Object {
                        path: join(&stack),
                        exists: false,
                    }
                } else {
                    Resolved::Unknown
                };
            };
            if !meta.file_type().is_symlink() || (last && !follow_last) {
                continue;
            }
            let Ok(dir) = std::fs::metadata(self.host_path(&stack[..stack.len() - 1])) else {
                return Resolved::Unknown;
            };
            if follow_refused(s, Meta::from(&dir), Meta::from(&meta), fsuid) {
                return Resolved::RefusedLink(join(&stack));
            }
            follows += 1;
            let Ok(target) = std::fs::read_link(&here) else {
                return Resolved::Unknown;
            };
            if follows > MAX_SYMLINKS {
                return Resolved::Unknown;
            }
            stack.pop();
            let target = target.as_os_str().as_bytes();
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            for c in components(target).collect::<Vec<_>>().into_iter().rev() {
                queue.push_front(c);
            }
        }
        Resolved::Object {
            path: join(&stack),
            exists: true,
        }
    }

    /// Owner and mode of an absolute path under the task's root, and of its directory.
    fn meta_and_dir(&self, path: &[u8]) -> Option<(Meta, Meta)> {
        let parts: Vec<Vec<u8>> = components(path).collect();
        let file = std::fs::symlink_metadata(self.host_path(&parts)).ok()?;
        let dir =
            std::fs::metadata(self.host_path(&parts[..parts.len().saturating_sub(1)])).ok()?;
        Some((Meta::from(&file), Meta::from(&dir)))
    }
}

fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
}

fn join(stack: &[Vec<u8>]) -> Vec<u8> {
    if stack.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for c in stack {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

/// What the refused syscall asked for.
pub enum Request<'a> {
    /// open, openat, openat2, creat with their open flags.
    Open { name: &'a [u8], flags: u64 },
    /// link, linkat (`follow`: AT_SYMLINK_FOLLOW on the source).
    Link {
        old: &'a [u8],
        new: &'a [u8],
        follow: bool,
    },
}

const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_NOFOLLOW: u64 = 0o400000;

/// Which protection refused the request, if one did, and the object it refused.
pub fn judge(
    fs: &TaskFs,
    req: &Request,
    ret: i64,
    s: &Sysctls,
    who: &Caller,
) -> Option<(PathDenial, Vec<u8>)> {
    let (eacces, eperm) = (ret == -(libc::EACCES as i64), ret == -(libc::EPERM as i64));
    match *req {
        Request::Open { name, flags } if eacces => {
            let create = flags & O_CREAT != 0;
            let follow = flags & O_NOFOLLOW == 0 && !(create && flags & O_EXCL != 0);
            match fs.resolve(name, follow, s, who.fsuid) {
                Resolved::RefusedLink(link) => Some((PathDenial::FollowLink, link)),
                Resolved::Object { path, exists: true } if create => {
                    let (file, dir) = fs.meta_and_dir(&path)?;
                    sticky_create_refused(
                        s,
                        dir,
                        file,
                        who.fsuid,
                        StickyWording::of_running_kernel(),
                    )
                    .map(|denial| (denial, path))
                }
                _ => None,
            }
        }
        Request::Link { old, new, follow } if eacces => {
            // The source is walked first, then the new name's directory.
            for (name, follow_last) in [(old, follow), (new, false)] {
                if let Resolved::RefusedLink(link) = fs.resolve(name, follow_last, s, who.fsuid) {
                    return Some((PathDenial::FollowLink, link));
                }
            }
            None
        }
        Request::Link { old, follow, .. } if eperm => match fs.resolve(old, follow, s, who.fsuid) {
            Resolved::Object { path, exists: true } => {
                let (src, _) = fs.meta_and_dir(&path)?;
                linkat_refused(s, src, who).then_some((PathDenial::Linkat, path))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The task's root as this process can reach it: through `/proc/<pid>/root` while the task
/// lives, else `/` when the task shares the sensor's mount namespace.
/// The task's root directory, opened while the task lives and held (`O_PATH`): a task that
/// exits while its names are looked up (a refused `cat` exits within a millisecond) leaves its
/// root reachable through the descriptor, where `/proc/PID/root` would stop resolving half-way
/// and the refusal go unjudged. A task already gone: `/` when it shared the sensor's mount
/// namespace.
pub fn task_root(pid: u32, mnt_ns: u32) -> Option<(PathBuf, Option<std::fs::File>)> {
    use std::os::{fd::AsRawFd, unix::fs::OpenOptionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/root"));
    if let Ok(dir) = opened {
        let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        return Some((path, Some(dir)));
    }
    let own = std::fs::metadata("/proc/self/ns/mnt").ok()?.ino();
    (own == mnt_ns as u64).then(|| (Path::new("/").to_path_buf(), None))
}

#[cfg(test)]
mod tests;
