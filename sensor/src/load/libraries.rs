//! Uprobes on user-space libraries (libaudit, libpam, the PAM modules), wherever they are: the
//! host's copies at start-up, and the copies inside a container's own root filesystem when a
//! task of another mount namespace first shows up. A uprobe belongs to a file (an inode), so
//! each copy is attached once.
//!
//! The PAM API probes read libpam's private handle at the offsets found in the host's libpam;
//! they are attached to another copy only when it is the same file, byte for byte. A copy of
//! another build still has its libaudit messages (libpam's own USER_* records) captured.
//!
//! A container's files are its user's: a library may be a FIFO, a 2 GB sparse file, a symlink
//! out of its root, or on a FUSE mount that never answers. So a library is opened inside its root
//! (`openat2` with `RESOLVE_IN_ROOT`), without blocking, only as a regular file of bounded size,
//! read within a deadline, its symbols resolved here, and the probe attached through the open
//! file (`/proc/self/fd/N`), never by a path that could change in between.

use std::{
    collections::HashSet,
    fs::File,
    io::Read,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::MetadataExt},
    },
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    programs::{
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
        UProbe,
    },
    Ebpf,
};
use sensor_common::{
    probes::{Attach, PROBES},
    PAM_MODULES, PAM_SM_FUNCTIONS,
};

use super::elf_symbols::symbol_offsets;
use crate::fsio;

/// The dynamic loader's default directories, Debian's multiarch ones first.
const LIBRARY_DIRS: [&str; 6] = [
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib64",
    "usr/lib64",
    "lib",
    "usr/lib",
];
/// Larger library files are not read (libaudit, libpam and the modules are well under 1 MiB).
const MAX_LIBRARY: u64 = 16 << 20;
/// How long opening and reading one library may take.
const READ_DEADLINE: Duration = Duration::from_secs(1);

/// A library opened inside a root: the open file (what the probe is attached through) and its
/// bytes.
pub struct Library {
    file: File,
    bytes: Vec<u8>,
    /// Its path under the root, for messages.
    shown: PathBuf,
}

/// Opens `rel` (relative to `root`) inside `root`: symlinks, `..` and absolute names resolve
/// within it, a final FIFO or device is refused, nothing waits.
fn open_in_root(root: &File, rel: &Path) -> std::io::Result<File> {
    let name = std::ffi::CString::new(rel.as_os_str().as_bytes())?;
    /// The kernel's `struct open_how` (openat2(2)).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid dirfd, NUL-terminated name and an `open_how` of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            name.as_ptr(),
            &how as *const OpenHow,
            size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// The first of `candidates` under `root` that is a regular library file of bounded size, read
/// whole; within [`READ_DEADLINE`].
fn open_library(root: &Path, candidates: Vec<PathBuf>) -> Option<Library> {
    let root = root.to_path_buf();
    fsio::with_deadline(READ_DEADLINE, move || {
        let root_dir = File::open(root).ok()?;
        candidates.into_iter().find_map(|rel| {
            let mut file = open_in_root(&root_dir, &rel).ok()?;
            let meta = file.metadata().ok()?;
            if !meta.file_type().is_file() || meta.len() > MAX_LIBRARY {
                return None;
            }
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            (&mut file).take(MAX_LIBRARY).read_to_end(&mut bytes).ok()?;
            Some(Library {
                file,
                bytes,
                shown: rel,
            })
        })
    })
    .flatten()
}

fn library_candidates(soname: &str) -> Vec<PathBuf> {
    LIBRARY_DIRS
        .iter()
        .map(|d| Path::new(d).join(soname))
        .collect()
}

/// The host's copy of a shared library.
pub fn find_library(soname: &str) -> Option<PathBuf> {
    library_candidates(soname)
        .into_iter()
        .map(|rel| Path::new("/").join(rel))
        .find(|p| p.exists())
}

/// The program that serves `program` of PROBES: itself, or its `uprobe_multi` variant.
pub fn program_name(program: &'static str, multi: bool) -> &'static str {
    static MULTI: std::sync::LazyLock<std::collections::HashMap<&'static str, &'static str>> =
        std::sync::LazyLock::new(|| {
            PROBES
                .iter()
                .map(|p| {
                    let name: &'static str = Box::leak(format!("{}_multi", p.program).into());
                    (p.program, name)
                })
                .collect()
        });
    if multi {
        MULTI.get(program).copied().unwrap_or(program)
    } else {
        program
    }
}

pub struct Libraries {
    /// Whether the uprobe programs are their `uprobe_multi` variants.
    multi: bool,
    /// (device, inode, program) of every file a program is attached to.
    files: HashSet<(u64, u64, &'static str)>,
    /// Every link made, so that stopping can detach them all at once.
    pub links: Vec<(&'static str, UProbeLinkId)>,
    /// The host's libpam, whose handle layout the probes know (`None` when unknown).
    host_libpam: Option<Vec<u8>>,
}

impl Libraries {
    pub fn new(layout_known: bool, multi: bool) -> Self {
        let host_libpam = layout_known
            .then(|| open_library(Path::new("/"), library_candidates("libpam.so.0")))
            .flatten()
            .map(|lib| lib.bytes);
        Libraries {
            multi,
            files: HashSet::new(),
            links: Vec::new(),
            host_libpam,
        }
    }

    /// Attaches every uprobe of PROBES to the libraries under `root` not attached yet. Returns
    /// what could not be attached.
    pub fn attach_under(&mut self, ebpf: &mut Ebpf, root: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        let host = root == Path::new("/");
        for probe in PROBES {
            let program = program_name(probe.program, self.multi);
            let Some(up) = ebpf
                .program_mut(program)
                .and_then(|p| <&mut UProbe>::try_from(p).ok())
            else {
                continue;
            };
            match probe.attach {
                Attach::UProbe { library, symbols } => {
                    let Some(lib) = open_library(root, library_candidates(library)) else {
                        if host {
                            problems.push(format!(
                                "not watching {library} ({}): not found",
                                probe.area
                            ));
                        }
                        continue;
                    };
                    if library == "libpam.so.0" && self.host_libpam.as_ref() != Some(&lib.bytes) {
                        problems.push(format!(
                            "not watching PAM calls in {}: another build than the host's libpam, whose handle layout is known",
                            root.join(&lib.shown).display()
                        ));
                        continue;
                    }
                    if let Err(e) = self.attach_file(up, &lib, symbols, 0, program) {
                        problems.push(format!("not watching {library} ({}): {e}", probe.area));
                    }
                }
                Attach::PamModules => {
                    for (m, module) in PAM_MODULES.iter().enumerate() {
                        let candidates = LIBRARY_DIRS
                            .iter()
                            .map(|d| Path::new(d).join("security").join(format!("{module}.so")))
                            .collect();
                        if let Some(lib) = open_library(root, candidates) {
                            let base = (m as u64) << 8;
                            let _ = self.attach_file(up, &lib, &PAM_SM_FUNCTIONS, base, program);
                        }
                    }
                }
                _ => {}
            }
        }
        problems
    }

    /// Attaches `program` to those of `symbols` the library defines, with cookie `base | index`,
    /// once per (file, program), in one call (one `uprobe_multi` link where the kernel has
    /// them); fails only when none could be attached.
    fn attach_file(
        &mut self,
        up: &mut UProbe,
        lib: &Library,
        symbols: &[&str],
        base: u64,
        program: &'static str,
    ) -> Result<(), String> {
        let shown = lib.shown.display();
        let meta = lib.file.metadata().map_err(|e| format!("{shown}: {e}"))?;
        // The same file has an entry and a return probe: one key per file and program.
        if !self.files.insert((meta.dev(), meta.ino(), program)) {
            return Ok(());
        }
        let points: Vec<UProbeAttachPoint> = symbol_offsets(&lib.bytes, symbols)
            .into_iter()
            .enumerate()
            .filter_map(|(i, offset)| {
                Some(UProbeAttachPoint {
                    location: UProbeAttachLocation::AbsoluteOffset(offset?),
                    cookie: Some(base | i as u64),
                })
            })
            .collect();
        if points.is_empty() {
            return Err(format!("{shown}: none of {} found", symbols.join(", ")));
        }
        // Through the open file: the kernel follows the descriptor's magic link to this inode.
        let through = format!("/proc/self/fd/{}", lib.file.as_raw_fd());
        let id = up
            .attach(points, &through, UProbeScope::AllProcesses)
            .map_err(|e| format!("{shown}: {e}"))?;
        self.links.push((program, id));
        Ok(())
    }
}
