//! `cargo xtask install [--root DIR]`: the built sensor, its systemd unit and the drop-in that
//! makes it replace auditd, under DIR (default `/`), in /usr/local as locally built software goes.
//! The unit names the installed paths as they will be seen once DIR is the root, so an image or
//! a package staged under DIR is right when it is unpacked.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

/// Where things go, relative to the root.
pub const SBINDIR: &str = "usr/local/sbin";
pub const UNITDIR: &str = "usr/local/lib/systemd/system";
pub const DATADIR: &str = "usr/local/share/sensor";
pub const DOCDIR: &str = "usr/local/share/doc/sensor";

/// Installs `bin` (the sensor) and the files of `packaging/systemd` from `repo` under `root`;
/// returns the installed unit's path.
pub fn install(repo: &Path, bin: &Path, root: &Path) -> Result<PathBuf> {
    let sources = repo.join("packaging/systemd");
    let sensor = put(bin, &root.join(SBINDIR).join("sensor"), 0o755)?;
    eprintln!("installed {}", sensor.display());
    let unit = write_filled(
        &sources.join("sensor.service"),
        &root.join(UNITDIR).join("sensor.service"),
    )?;
    let dropin = write_filled(
        &sources.join("replace-auditd.conf"),
        &root.join(DATADIR).join("replace-auditd.conf"),
    )?;
    let readme = put(
        &repo.join("README.md"),
        &root.join(DOCDIR).join("README.md"),
        0o644,
    )?;
    for path in [&unit, &dropin, &readme] {
        eprintln!("installed {}", path.display());
    }
    eprintln!(
        "to replace auditd: mkdir -p /etc/systemd/system/sensor.service.d && ln -s /{DATADIR}/replace-auditd.conf /etc/systemd/system/sensor.service.d/"
    );
    eprintln!("then: systemctl daemon-reload && systemctl enable --now sensor");
    Ok(unit)
}

/// Copies `from` to `to` with `mode`, through a temporary name so a running sensor's binary is
/// replaced, never rewritten in place (ETXTBSY).
fn put(from: &Path, to: &Path, mode: u32) -> Result<PathBuf> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write(to, &bytes, mode)
}

fn write(to: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf> {
    let dir = to.parent().context("install target has no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = to.with_extension("xtask-new");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, to).with_context(|| format!("renaming into {}", to.display()))?;
    Ok(to.to_owned())
}

/// A packaging file with its `@SBINDIR@`-style placeholders replaced by absolute paths.
fn write_filled(from: &Path, to: &Path) -> Result<PathBuf> {
    let text = fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
    write(to, fill(&text).as_bytes(), 0o644)
}

fn fill(text: &str) -> String {
    [
        ("@SBINDIR@", SBINDIR),
        ("@DATADIR@", DATADIR),
        ("@DOCDIR@", DOCDIR),
    ]
    .iter()
    .fold(text.to_owned(), |t, (key, dir)| {
        t.replace(key, &format!("/{dir}"))
    })
}

#[cfg(test)]
mod tests;
