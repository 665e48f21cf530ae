//! Just enough ELF to tell which libLLVM a binary loads (DT_NEEDED, DT_RUNPATH/DT_RPATH), so
//! xtask does not depend on readelf being installed or on its output format.

use std::{fs, path::Path};

use anyhow::{ensure, Context, Result};

/// The two dynamic-section entries that say which libLLVM a binary loads.
#[derive(Debug, Default)]
pub struct Dynamic {
    needed: Vec<String>,
    runpath: Vec<String>,
}

impl Dynamic {
    /// True if a NEEDED libLLVM is found in `lib_dir` and `lib_dir` is on the rpath.
    pub fn loads_llvm_from(&self, lib_dir: &Path) -> bool {
        let Ok(lib_dir) = fs::canonicalize(lib_dir) else {
            return false;
        };
        let same = |d: &str| fs::canonicalize(d).is_ok_and(|d| d == lib_dir);
        self.runpath.iter().flat_map(|r| r.split(':')).any(same)
            && self
                .needed
                .iter()
                .any(|n| n.starts_with("libLLVM") && lib_dir.join(n).exists())
    }
}

/// Reads DT_NEEDED and DT_RUNPATH/DT_RPATH from a 64-bit little-endian ELF file.
pub fn read(path: &Path) -> Result<Dynamic> {
    let data = fs::read(path)?;
    parse(&data)
}

fn parse(d: &[u8]) -> Result<Dynamic> {
    let bytes = |off: u64, len: usize| -> Result<&[u8]> {
        usize::try_from(off)
            .ok()
            .and_then(|o| d.get(o..o.checked_add(len)?))
            .context("truncated ELF")
    };
    let u16_at =
        |off: u64| -> Result<u64> { Ok(u16::from_le_bytes(bytes(off, 2)?.try_into()?).into()) };
    let u32_at =
        |off: u64| -> Result<u64> { Ok(u32::from_le_bytes(bytes(off, 4)?.try_into()?).into()) };
    let u64_at = |off: u64| -> Result<u64> { Ok(u64::from_le_bytes(bytes(off, 8)?.try_into()?)) };
    ensure!(
        d.starts_with(b"\x7fELF\x02\x01"),
        "not a 64-bit little-endian ELF file"
    );

    // Program headers: PT_LOAD maps addresses to file offsets, PT_DYNAMIC holds the entries.
    let (phoff, phentsize, phnum) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (kind, offset, vaddr, filesz) = (
            u32_at(ph)?,
            u64_at(ph + 8)?,
            u64_at(ph + 16)?,
            u64_at(ph + 32)?,
        );
        match kind {
            1 => loads.push((vaddr, offset, filesz)),
            2 => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let (dyn_off, dyn_size) = dynamic.context("no dynamic section (a static bpf-linker)")?;

    const DT_NEEDED: u64 = 1;
    const DT_STRTAB: u64 = 5;
    const DT_RPATH: u64 = 15;
    const DT_RUNPATH: u64 = 29;
    let mut strtab = None;
    let mut refs = Vec::new();
    for i in 0..dyn_size / 16 {
        let (tag, val) = (u64_at(dyn_off + i * 16)?, u64_at(dyn_off + i * 16 + 8)?);
        match tag {
            0 => break,
            DT_STRTAB => strtab = Some(val),
            DT_NEEDED | DT_RPATH | DT_RUNPATH => refs.push((tag, val)),
            _ => {}
        }
    }
    let strtab = strtab.context("no DT_STRTAB")?;
    let strtab = loads
        .iter()
        .find(|(vaddr, _, size)| (*vaddr..vaddr + size).contains(&strtab))
        .map(|(vaddr, offset, _)| strtab - vaddr + offset)
        .context("DT_STRTAB outside every PT_LOAD")?;

    let mut out = Dynamic::default();
    for (tag, val) in refs {
        let start = usize::try_from(strtab + val)?;
        let tail = d.get(start..).context("string outside the file")?;
        let s = tail.split(|b| *b == 0).next().unwrap_or_default();
        let s = String::from_utf8_lossy(s).into_owned();
        if tag == DT_NEEDED {
            out.needed.push(s);
        } else {
            out.runpath.push(s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dynamic_section_of_a_real_binary() {
        // The test binary itself links libc dynamically on every Linux host we build on.
        let me = std::env::current_exe().unwrap();
        let dynamic = read(&me).unwrap();
        assert!(
            dynamic.needed.iter().any(|n| n.starts_with("libc.so")),
            "{dynamic:?}"
        );
        assert!(parse(b"\x7fELF\x02\x01").is_err());
    }
}
