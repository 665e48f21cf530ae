//! Facts about files that the probes do not send, looked up from userspace: a name resolved
//! against a cwd, an inode, an ELF interpreter.

use std::{
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use sensor_common as wire;

use super::caps;
use crate::{
    event::{FileCaps, Inode},
    fsio,
};

pub fn resolve(name: &[u8], cwd: Option<&[u8]>) -> PathBuf {
    let name = Path::new(OsStr::from_bytes(name));
    match cwd {
        Some(cwd) if name.is_relative() => Path::new(OsStr::from_bytes(cwd)).join(name),
        _ => name.to_path_buf(),
    }
}

pub fn same_inode(path: &Path, ino: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.ino() == ino)
        .unwrap_or(false)
}

pub fn stat_inode(path: &Path) -> Option<Inode> {
    inode_of(std::fs::metadata(path).ok()?)
}

/// As [`stat_inode`], without following a final symlink.
pub fn lstat_inode(path: &Path) -> Option<Inode> {
    inode_of(std::fs::symlink_metadata(path).ok()?)
}

fn inode_of(m: std::fs::Metadata) -> Option<Inode> {
    use std::os::unix::fs::MetadataExt;
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

/// The inode and file capabilities of a name, within [`fsio::deadline`]: `None` when the lookup
/// was late (and counted), `(None, no caps)` when the name does not resolve.
pub fn named_facts(path: PathBuf) -> Option<(Option<Inode>, FileCaps)> {
    fsio::with_deadline(fsio::deadline(), move || inode_and_caps(&path))
}

/// The inode of `path` and, when it resolves, its file capabilities (blocking: call it on the
/// lookup pool).
pub fn inode_and_caps(path: &Path) -> (Option<Inode>, FileCaps) {
    let inode = stat_inode(path);
    let fcaps = match inode {
        Some(_) => caps::file_caps(path),
        None => FileCaps::default(),
    };
    (inode, fcaps)
}

/// The `PT_INTERP` of an ELF64 little-endian file, if it has one.
pub fn elf_interp(path: &Path) -> Option<Vec<u8>> {
    read_elf_interp(path, true).ok().flatten()
}

/// As [`elf_interp`], but a file that cannot be opened is an error, not "no interpreter". The
/// open never waits (a FIFO is refused) and follows a final symlink only with `follow_last`.
pub fn read_elf_interp(path: &Path, follow_last: bool) -> std::io::Result<Option<Vec<u8>>> {
    Ok(parse_elf_interp(fsio::open_regular(
        path,
        follow_last,
        u64::MAX,
    )?))
}

/// Reads only the ELF header, at most 512 program headers and an interpreter name of at most
/// 4096 bytes, whatever the file claims.
pub fn parse_elf_interp<F: std::io::Read + std::io::Seek>(mut f: F) -> Option<Vec<u8>> {
    use std::io::SeekFrom;
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
