//! Stage 4: turn an [`Assembled`] exec into the format-neutral [`ExecEvent`]: wall-clock stamp
//! and serial, argv split out of the argument area, paths rebuilt, PATH items as the kernel
//! would have recorded them, and the container context.
//!
//! Two PATH facts are not visible to the probes and are looked up here, after the fact, from
//! userspace: the ELF interpreter (`PT_INTERP`, opened by the kernel's ELF loader) and the inode
//! of a `#!` script (replaced by its interpreter inside the kernel). A file changed between the
//! exec and this lookup can make those two items differ from what the kernel saw.

use std::{
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use sensor_common as wire;

use crate::{
    assemble::{Assembled, AssembledAbend, WalkedPath},
    event::{
        AbendEvent, ArgvTruncation, Container, ExecEvent, FileCaps, Inode, NameType, PathItem,
        PathsTruncated, Stamp, Syscall, Task, AUDIT_ARCH_X86_64,
    },
};

/// The kernel's own limit: MAX_PROCTITLE_AUDIT_LEN.
const PROCTITLE_MAX: usize = wire::PROCTITLE_MAX;

mod anomaly;
pub mod caps;
mod files;
pub mod pam;
pub mod user;

use files::{BinaryFacts, FileCache};

pub struct Normaliser {
    serial: u64,
    files: FileCache,
    full_caps: u64,
    /// State of the ANOM_LOGIN_* rules.
    pub logins: pam::LoginState,
}

impl Default for Normaliser {
    fn default() -> Self {
        Normaliser {
            serial: 0,
            files: FileCache::default(),
            full_caps: caps::full_set(),
            logins: pam::LoginState::default(),
        }
    }
}

impl Normaliser {
    pub fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// A stamp for something happening now (lost-event reports).
    pub fn stamp_now(&mut self) -> Stamp {
        let now = clock(libc::CLOCK_REALTIME);
        Stamp {
            sec: now / 1_000_000_000,
            nsec: (now % 1_000_000_000) as u32,
            serial: self.next_serial(),
        }
    }

    pub fn abend(&mut self, a: AssembledAbend) -> AbendEvent {
        let x = &*a.abend;
        let (exe, container, paths_truncated) =
            standalone_context(a.exe.as_ref(), a.cgroup.as_ref(), &x.ns);
        AbendEvent {
            stamp: self.stamp_at(x.hdr.boot_ns),
            boot_ns: x.hdr.boot_ns,
            pid: x.hdr.pid,
            auid: x.auid,
            uid: x.uid,
            gid: x.gid,
            ses: x.ses,
            comm: wire::cstr(&x.comm).to_vec(),
            exe,
            sig: x.sig,
            container,
            paths_truncated,
        }
    }

    /// The event's stamp: its kernel time on the wall clock, and the next serial.
    fn stamp_at(&mut self, boot_ns: u64) -> Stamp {
        let wall = boot_to_wall(boot_ns);
        Stamp {
            sec: wall / 1_000_000_000,
            nsec: (wall % 1_000_000_000) as u32,
            serial: self.next_serial(),
        }
    }

    pub fn exec(&mut self, a: Assembled) -> ExecEvent {
        let x = &*a.exit;
        let stamp = self.stamp_at(a.enter.boot_ns);
        let success = x.ret == 0;
        let syscall = Syscall::from_number(a.syscall_nr).unwrap_or(Syscall::Execve);
        let cwd = a.cwd.as_ref().map(|p| p.to_path());
        let exe = a.exe.as_ref().map(|p| p.to_path());
        let filename = a.filename.clone().unwrap_or_default();

        let (argv, argv_truncated) = match (&a.sched, success) {
            (Some(s), true) => split_argv(&a.args, s.argc, s.args_total),
            _ => (Vec::new(), None),
        };
        let proctitle =
            rtrim_proctitle(&x.proctitle[..(x.proctitle_len as usize).min(PROCTITLE_MAX)]);
        let exe_inode = (x.has_exe != 0).then(|| kernel_inode(&x.exe));
        let binary = match &exe_inode {
            Some(inode) if success => self.files.binary(inode, x.hdr.pid, exe.as_deref()),
            _ => BinaryFacts::default(),
        };
        let facts = ExecFacts {
            filename: &filename,
            success,
            ret: x.ret,
            interp: a.sched.as_ref().and_then(|s| s.interp.clone()),
            exe_inode,
            cwd: cwd.as_deref(),
        };
        let paths = path_items(&facts, &binary);
        let bprm_fcaps = if success {
            let ids = caps::Ids {
                old_uid: a.old_uid,
                new_uid: x.task.uid,
                new_euid: x.task.euid,
            };
            caps::bprm_fcaps(ids, a.old_caps, x.caps, binary.fcaps, self.full_caps)
        } else {
            None
        };

        ExecEvent {
            stamp,
            boot_ns: a.enter.boot_ns,
            arch: AUDIT_ARCH_X86_64,
            syscall,
            success,
            exit: x.ret,
            regs: [a.regs[0], a.regs[1], a.regs[2], a.regs[3]],
            task: task(&x.hdr, &x.task, exe),
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

/// What a standalone event (ABEND, anomaly, PAM call, user message) takes from the exe and
/// cgroup paths sent just before it: the exe, the container, and which of them were cut. A
/// missing exe is a task without one; a missing cgroup record was lost, and counts as cut.
fn standalone_context(
    exe: Option<&WalkedPath>,
    cgroup: Option<&WalkedPath>,
    ns: &wire::TaskNs,
) -> (Option<Vec<u8>>, Container, PathsTruncated) {
    let cut = PathsTruncated {
        cwd: false,
        exe: exe.is_some_and(|p| p.truncated),
        cgroup: cgroup.is_none_or(|p| p.truncated),
    };
    (exe.map(WalkedPath::to_path), container(cgroup, ns), cut)
}

/// The task as the SYSCALL record shows it.
fn task(hdr: &wire::Header, t: &wire::TaskInfo, exe: Option<Vec<u8>>) -> Task {
    Task {
        ppid: t.ppid,
        pid: hdr.pid,
        tid: hdr.tid,
        auid: t.auid,
        uid: t.uid,
        gid: t.gid,
        euid: t.euid,
        suid: t.suid,
        fsuid: t.fsuid,
        egid: t.egid,
        sgid: t.sgid,
        fsgid: t.fsgid,
        ses: t.ses,
        tty: Some(wire::cstr(&t.tty).to_vec()).filter(|t| !t.is_empty()),
        comm: wire::cstr(&t.comm).to_vec(),
        exe,
    }
}

/// PATH items in the kernel's order: the program as named, then (for `#!` scripts) the
/// interpreter named on the `#!` line, then the ELF interpreter of the final binary.
fn path_items(x: &ExecFacts, binary: &BinaryFacts) -> Vec<PathItem> {
    let by_name = resolve(x.filename, x.cwd);
    let looked_up = |inode: Option<Inode>| PathItem {
        name: x.filename.to_vec(),
        fcaps: if inode.is_some() {
            caps::file_caps(&by_name)
        } else {
            FileCaps::default()
        },
        inode,
        nametype: NameType::Normal,
    };
    if !x.success {
        // ENOENT / ENOTDIR: the name did not resolve, as the kernel records it.
        if x.ret == -(libc::ENOENT as i64) || x.ret == -(libc::ENOTDIR as i64) {
            return vec![PathItem {
                nametype: NameType::Unknown,
                ..looked_up(None)
            }];
        }
        return vec![looked_up(stat_inode(&by_name))];
    }
    let the_binary = |name: &[u8]| PathItem {
        name: name.to_vec(),
        inode: x.exe_inode,
        nametype: NameType::Normal,
        fcaps: binary.fcaps,
    };
    let mut items = Vec::with_capacity(3);
    match &x.interp {
        Some(interp) => {
            items.push(looked_up(stat_inode(&by_name)));
            items.push(the_binary(interp));
        }
        None => items.push(the_binary(x.filename)),
    }
    items.extend(binary.interp.clone());
    items
}

/// What PATH items and BPRM_FCAPS are built from.
struct ExecFacts<'a> {
    filename: &'a [u8],
    success: bool,
    ret: i64,
    interp: Option<Vec<u8>>,
    exe_inode: Option<Inode>,
    cwd: Option<&'a [u8]>,
}

fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_BOOTTIME nanoseconds to wall-clock nanoseconds, with the offset read now so that a
/// wall-clock change applies from the next event on, as it does for the kernel's stamps.
fn boot_to_wall(boot_ns: u64) -> u64 {
    let real = clock(libc::CLOCK_REALTIME);
    let boot = clock(libc::CLOCK_BOOTTIME);
    (real.wrapping_sub(boot)).wrapping_add(boot_ns)
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

/// The container context from the kernel's facts. A cgroup path record that never arrived
/// reads `/` (and the event says it was lost).
fn container(cgroup: Option<&WalkedPath>, ns: &wire::TaskNs) -> Container {
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

fn kernel_inode(f: &wire::InodeFacts) -> Inode {
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

fn resolve(name: &[u8], cwd: Option<&[u8]>) -> PathBuf {
    let name = Path::new(OsStr::from_bytes(name));
    match cwd {
        Some(cwd) if name.is_relative() => Path::new(OsStr::from_bytes(cwd)).join(name),
        _ => name.to_path_buf(),
    }
}

fn same_inode(path: &Path, ino: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.ino() == ino)
        .unwrap_or(false)
}

fn stat_inode(path: &Path) -> Option<Inode> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let dev = m.dev();
    let rdev = m.rdev();
    Some(Inode {
        ino: m.ino(),
        dev_major: libc::major(dev),
        dev_minor: libc::minor(dev),
        mode: m.mode(),
        ouid: m.uid(),
        ogid: m.gid(),
        rdev_major: libc::major(rdev),
        rdev_minor: libc::minor(rdev),
    })
}

/// The `PT_INTERP` of an ELF64 little-endian file, if it has one.
pub fn elf_interp(path: &Path) -> Option<Vec<u8>> {
    read_elf_interp(path).ok().flatten()
}

/// As [`elf_interp`], but a file that cannot be opened is an error, not "no interpreter".
fn read_elf_interp(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    Ok(parse_elf_interp(std::fs::File::open(path)?))
}

fn parse_elf_interp(mut f: std::fs::File) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh).ok()?;
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let phoff = u64_at(&eh, 0x20);
    let phentsize = u16_at(&eh, 0x36) as usize;
    let phnum = u16_at(&eh, 0x38) as usize;
    // An ELF64 program header is 56 bytes; anything else is not a file the kernel would run.
    if phentsize != 56 || phnum > 512 {
        return None;
    }
    let mut ph = vec![0u8; phentsize * phnum];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut ph).ok()?;
    let entry = ph
        .chunks_exact(phentsize)
        .find(|p| u32::from_le_bytes(p[..4].try_into().unwrap()) == 3)?;
    let (off, size) = (u64_at(entry, 0x08), u64_at(entry, 0x20));
    if size == 0 || size > 4096 {
        return None;
    }
    let mut name = vec![0u8; size as usize];
    f.seek(SeekFrom::Start(off)).ok()?;
    f.read_exact(&mut name).ok()?;
    Some(wire::cstr(&name).to_vec())
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
