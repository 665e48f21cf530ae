//! Uprobes on user-space libraries (libaudit, libpam, the PAM modules), wherever they are: the
//! host's copies at start-up, and the copies inside a container's own root filesystem when a
//! task of another mount namespace first shows up. A uprobe belongs to a file (an inode), so
//! each copy is attached once.
//!
//! The PAM API probes read libpam's private handle at the offsets found in the host's libpam;
//! they are attached to another copy only when it is the same file, byte for byte. A copy of
//! another build still has its libaudit messages (libpam's own USER_* records) captured.

use std::{
    collections::HashSet,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use aya::{
    programs::{
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
        UProbe,
    },
    Ebpf,
};
use sensor_common::{
    probes::{Attach, PROBES},
    PAM_MODULES, PAM_SM_FUNCTIONS,
};

/// The dynamic loader's default directories, Debian's multiarch ones first.
const LIBRARY_DIRS: [&str; 6] = [
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib64",
    "usr/lib64",
    "lib",
    "usr/lib",
];

/// The copy of `soname` a program under `root` would load.
fn find_under(root: &Path, soname: &str) -> Option<PathBuf> {
    LIBRARY_DIRS
        .iter()
        .map(|dir| root.join(dir).join(soname))
        .find(|p| p.exists())
}

/// The host's copy of a shared library.
pub fn find_library(soname: &str) -> Option<PathBuf> {
    find_under(Path::new("/"), soname)
}

pub struct Libraries {
    /// (device, inode, program) of every file a program is attached to.
    files: HashSet<(u64, u64, &'static str)>,
    /// The sensor's own mount namespace, whose libraries are attached at start-up.
    own_ns: Option<u32>,
    /// Root directories (device, inode) already looked into: a namespace's first task may
    /// exec before it changes root (chroot, pivot_root), so roots are told apart, not namespaces.
    roots: HashSet<(u64, u64)>,
    /// The host's libpam, whose handle layout the probes know (`None` when unknown).
    host_libpam: Option<Vec<u8>>,
}

impl Libraries {
    pub fn new(layout_known: bool) -> Self {
        let own_ns = std::fs::metadata("/proc/self/ns/mnt").map(|m| m.ino() as u32);
        let own_root = std::fs::metadata("/").map(|m| (m.dev(), m.ino()));
        Libraries {
            files: HashSet::new(),
            own_ns: own_ns.ok(),
            roots: own_root.into_iter().collect(),
            host_libpam: layout_known
                .then(|| find_library("libpam.so.0").and_then(|p| std::fs::read(p).ok()))
                .flatten(),
        }
    }

    /// A task of another mount namespace execed: the first time its root is seen, attach to
    /// the libraries under it. Returns what could not be attached.
    pub fn watch_task(&mut self, ebpf: &mut Ebpf, pid: u32, mnt_ns: u32) -> Vec<String> {
        if Some(mnt_ns) == self.own_ns {
            return Vec::new();
        }
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        // A task that is gone already leaves its root to the next task that execs there.
        let Ok(meta) = std::fs::metadata(&root) else {
            return Vec::new();
        };
        if !self.roots.insert((meta.dev(), meta.ino())) {
            return Vec::new();
        }
        self.attach_under(ebpf, &root)
    }

    /// Attaches every uprobe of PROBES to the libraries under `root` not attached yet.
    pub fn attach_under(&mut self, ebpf: &mut Ebpf, root: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        for probe in PROBES {
            let Some(up) = ebpf
                .program_mut(probe.program)
                .and_then(|p| <&mut UProbe>::try_from(p).ok())
            else {
                continue;
            };
            match probe.attach {
                Attach::UProbe { library, symbols } => {
                    let Some(path) = find_under(root, library) else {
                        if root == Path::new("/") {
                            problems.push(format!(
                                "not watching {library} ({}): not found",
                                probe.area
                            ));
                        }
                        continue;
                    };
                    if library == "libpam.so.0" && !self.same_as_host_libpam(&path) {
                        problems.push(format!(
                            "not watching PAM calls in {}: another build than the host's libpam, whose handle layout is known",
                            path.display()
                        ));
                        continue;
                    }
                    if let Err(e) = self.attach_file(up, &path, symbols, 0, probe.program) {
                        problems.push(format!("not watching {library} ({}): {e}", probe.area));
                    }
                }
                Attach::PamModules => {
                    // The PAM module directory, beside the libraries.
                    let Some(dir) = find_under(root, "security") else {
                        continue;
                    };
                    for (m, module) in PAM_MODULES.iter().enumerate() {
                        let path = dir.join(format!("{module}.so"));
                        if path.exists() {
                            let base = (m as u64) << 8;
                            let _ =
                                self.attach_file(up, &path, &PAM_SM_FUNCTIONS, base, probe.program);
                        }
                    }
                }
                _ => {}
            }
        }
        problems
    }

    fn same_as_host_libpam(&self, path: &Path) -> bool {
        match (&self.host_libpam, std::fs::read(path)) {
            (Some(host), Ok(copy)) => *host == copy,
            _ => false,
        }
    }

    /// Attaches `program` to each of `symbols` in the file at `path` that exists, with cookie
    /// `base | index`, once per (file, program); fails only when none could be attached.
    fn attach_file(
        &mut self,
        up: &mut UProbe,
        path: &Path,
        symbols: &[&str],
        base: u64,
        program: &'static str,
    ) -> Result<(), String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // The same file has an entry and a return probe: one key per file and program.
        if !self.files.insert((meta.dev(), meta.ino(), program)) {
            return Ok(());
        }
        let mut errors = Vec::new();
        for (i, symbol) in symbols.iter().enumerate() {
            let point = UProbeAttachPoint {
                location: UProbeAttachLocation::Symbol(symbol),
                cookie: Some(base | i as u64),
            };
            if let Err(e) = up.attach([point], path, UProbeScope::AllProcesses) {
                errors.push(format!("{symbol}: {e}"));
            }
        }
        if errors.len() == symbols.len() {
            return Err(format!("{}: {}", path.display(), errors.join("; ")));
        }
        Ok(())
    }
}
