//! What the kernel does not say about an executable, looked up from userspace: its file
//! capabilities and its ELF interpreter (name, inode, capabilities). An exec storm runs the same
//! few binaries over and over, so the answers are kept per inode for `FRESH`: a `setcap` or a
//! replaced loader shows within that time, and a hot binary costs no syscall at all.

use std::{
    collections::HashMap,
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    caps,
    lookup::{inode_and_caps, read_elf_interp, same_inode},
};
use crate::{
    event::{FileCaps, Inode, NameType, PathItem},
    fsio,
};

const FRESH: Duration = Duration::from_secs(1);
/// Beyond this many binaries, stale answers are dropped.
const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Debug, Default)]
pub struct BinaryFacts {
    pub fcaps: FileCaps,
    /// The PATH item of the ELF interpreter, when the binary names one.
    pub interp: Option<PathItem>,
}

#[derive(Default)]
pub struct FileCache {
    binaries: HashMap<(u64, u32, u32), (Instant, BinaryFacts)>,
}

impl FileCache {
    /// Facts of the executable the kernel reported (`inode`) for process `pid`, whose path is
    /// `exe` as walked in the kernel. Looked up within [`fsio::deadline`]; a late answer (a hung
    /// file system) reads as no capabilities and no interpreter, and is remembered like an
    /// answer, so that one hung binary costs one deadline per `FRESH`, not one per exec.
    pub fn binary(&mut self, inode: &Inode, pid: u32, exe: Option<&[u8]>) -> BinaryFacts {
        let key = (inode.ino, inode.dev_major, inode.dev_minor);
        let now = Instant::now();
        if let Some((at, facts)) = self.binaries.get(&key) {
            if now.duration_since(*at) < FRESH {
                return facts.clone();
            }
        }
        let (ino, exe) = (inode.ino, exe.map(<[u8]>::to_vec));
        let facts = match fsio::with_deadline(fsio::deadline(), move || {
            binary_facts(ino, pid, exe.as_deref())
        }) {
            Some((facts, true)) => facts,
            // Unreadable now (process gone, path not visible from here): answer without caching,
            // so that the next exec of this binary tries again.
            Some((facts, false)) => return facts,
            None => BinaryFacts::default(),
        };
        if self.binaries.len() >= MAX_ENTRIES {
            self.binaries
                .retain(|_, (at, _)| now.duration_since(*at) < FRESH);
        }
        self.binaries.insert(key, (now, facts.clone()));
        facts
    }
}

/// The facts of one binary, and whether they may be kept (false when its ELF cannot be read now:
/// then only what could be learnt).
fn binary_facts(ino: u64, pid: u32, exe: Option<&[u8]>) -> (BinaryFacts, bool) {
    // The process may have exec'd again since: /proc/PID/exe is only the file while it is still
    // the inode the kernel reported. Its magic link is followed; the walked path is not.
    let live = PathBuf::from(format!("/proc/{pid}/exe"));
    let (file, follow) = match exe {
        Some(path) if !same_inode(&live, ino) => (PathBuf::from(OsStr::from_bytes(path)), false),
        _ => (live, true),
    };
    let Ok(interp) = read_elf_interp(&file, follow) else {
        let facts = BinaryFacts {
            fcaps: caps::file_caps(&file),
            interp: None,
        };
        return (facts, false);
    };
    let facts = BinaryFacts {
        fcaps: caps::file_caps(&file),
        interp: interp.map(|name| {
            let (inode, fcaps) = inode_and_caps(Path::new(OsStr::from_bytes(&name)));
            PathItem {
                fcaps,
                name,
                inode,
                nametype: NameType::Normal,
            }
        }),
    };
    (facts, true)
}
