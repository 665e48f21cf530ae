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
    lookup::{read_elf_interp, same_inode, stat_inode},
};
use crate::event::{FileCaps, Inode, NameType, PathItem};

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
    /// `exe` as walked in the kernel.
    pub fn binary(&mut self, inode: &Inode, pid: u32, exe: Option<&[u8]>) -> BinaryFacts {
        let key = (inode.ino, inode.dev_major, inode.dev_minor);
        let now = Instant::now();
        if let Some((at, facts)) = self.binaries.get(&key) {
            if now.duration_since(*at) < FRESH {
                return facts.clone();
            }
        }
        // The process may have exec'd again since: /proc/PID/exe is only the file while it is
        // still the inode the kernel reported.
        let live = PathBuf::from(format!("/proc/{pid}/exe"));
        let file = match exe {
            Some(path) if !same_inode(&live, inode.ino) => PathBuf::from(OsStr::from_bytes(path)),
            _ => live,
        };
        let interp = match read_elf_interp(&file) {
            Ok(interp) => interp,
            // Unreadable now (process gone, path not visible from here): answer without caching,
            // so that the next exec of this binary tries again.
            Err(_) => {
                return BinaryFacts {
                    fcaps: caps::file_caps(&file),
                    interp: None,
                }
            }
        };
        let facts = BinaryFacts {
            fcaps: caps::file_caps(&file),
            interp: interp.map(|name| {
                let path = Path::new(OsStr::from_bytes(&name));
                let inode = stat_inode(path);
                PathItem {
                    fcaps: if inode.is_some() {
                        caps::file_caps(path)
                    } else {
                        FileCaps::default()
                    },
                    name,
                    inode,
                    nametype: NameType::Normal,
                }
            }),
        };
        if self.binaries.len() >= MAX_ENTRIES {
            self.binaries
                .retain(|_, (at, _)| now.duration_since(*at) < FRESH);
        }
        self.binaries.insert(key, (now, facts.clone()));
        facts
    }
}
