//! One plugins.d file, read as auditd 3.0.9 reads it (`audisp/audispd-pconfig.c`), with the same
//! checks, so a file auditd would run is run and a file auditd would skip is skipped:
//! - the file is owned by root, not world writable, a regular file (symlinks followed);
//! - lines are read 160 bytes at a time (`fgets`): a line over 158 bytes, or a last line without
//!   a newline, is skipped; words are split at spaces only (a tab is part of a word); `#` starts
//!   a comment only as a line's first word;
//! - `key = value [option]`: a missing `=` or value rejects the file; an unknown key rejects it;
//!   only `args` takes a second word, and words beyond that are left out (auditd says "Wrong
//!   number of arguments" and keeps the first two);
//! - keys and the words of `active`, `direction`, `type`, `format` are case-insensitive;
//!   `direction` accepts only `out`; `path` needs a directory name of at least 4 bytes unless it
//!   names a `builtin_` plugin;
//! - an active plugin needs a `path` that is a regular file owned by root with at least the mode
//!   bits 0750; its inode is kept, as auditd keeps it to restart a plugin whose binary changed.

use std::{
    ffi::OsString,
    fs::File,
    io::Read,
    os::unix::{
        ffi::OsStringExt,
        fs::{MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

/// auditd's `get_line` reads with `fgets(buf, 160, f)`.
const LINE_BUF: usize = 160;
/// A plugin file larger than this is refused: auditd has no limit, but the sensor never reads
/// an unbounded file.
const MAX_FILE: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Each record as a text line, as in the log.
    String,
    /// `struct audit_dispatcher_header` and the record's data.
    Binary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A program auditd starts and restarts (`type = always`).
    Always,
    /// Code inside auditd (`type = builtin`, `builtin_af_unix` in 3.0.9).
    Builtin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginConf {
    /// The file's name: how a reload recognises the plugin.
    pub name: String,
    pub active: bool,
    pub path: Option<PathBuf>,
    pub kind: Kind,
    /// argv[1] and argv[2].
    pub args: Vec<OsString>,
    pub format: Format,
    /// The inode of `path` when the file was read (active plugins only).
    pub inode: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfError {
    #[error("cannot open it: {0}")]
    Open(String),
    #[error("it is not owned by root")]
    NotRootOwned,
    #[error("it is world writable")]
    WorldWritable,
    #[error("it is not a regular file")]
    NotRegular,
    #[error("it is larger than {MAX_FILE} bytes")]
    TooLarge,
    #[error("line {0}: missing equal sign")]
    NoEqualSign(usize),
    #[error("line {0}: wrong number of arguments")]
    Arguments(usize),
    #[error("line {0}: unknown keyword {1:?}")]
    UnknownKey(usize, String),
    #[error("line {0}: keyword {1:?} takes no option {2:?}")]
    Option(usize, String, String),
    #[error("line {0}: option {1:?} not found")]
    BadValue(usize, String),
    #[error("line {0}: the directory name of {1:?} is too short")]
    ShortDir(usize, String),
    #[error("the plugin is active but no path is given")]
    NoPath,
    #[error("cannot stat {0}: {1}")]
    Stat(String, String),
    #[error("{0} is not a regular file")]
    PathNotRegular(String),
    #[error("{0} is not owned by root")]
    PathNotRootOwned(String),
    #[error("{0}: permissions should be 0750")]
    PathMode(String),
}

/// Reads and checks the plugin file at `file`. `Ok` comes with what auditd would only have
/// warned about (lines skipped).
pub fn load(file: &Path) -> Result<(PluginConf, Vec<String>), ConfError> {
    let mut f = File::open(file).map_err(|e| ConfError::Open(e.to_string()))?;
    let meta = f.metadata().map_err(|e| ConfError::Open(e.to_string()))?;
    if meta.uid() != 0 {
        return Err(ConfError::NotRootOwned);
    }
    if meta.permissions().mode() & 0o002 != 0 {
        return Err(ConfError::WorldWritable);
    }
    if !meta.is_file() {
        return Err(ConfError::NotRegular);
    }
    let mut text = Vec::new();
    (&mut f)
        .take(MAX_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| ConfError::Open(e.to_string()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(ConfError::TooLarge);
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut conf, warnings, any_line) = parse(&text, name)?;
    if any_line {
        sanity_check(&mut conf)?;
    }
    Ok((conf, warnings))
}

/// The lines `fgets` hands over whole (without their newline), with their line numbers; the
/// others are warned about.
fn lines(text: &[u8], warnings: &mut Vec<String>) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (line, ended) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                (line, true)
            }
            None => (std::mem::take(&mut rest), false),
        };
        if !ended || line.len() > LINE_BUF - 2 {
            warnings.push(format!("line {number} skipped: too long"));
            continue;
        }
        // strtok and strcmp stop at a NUL byte.
        let line = line.split(|&b| b == 0).next().unwrap_or_default();
        out.push((number, line.to_vec()));
    }
    out
}

/// auditd's `nv_split`: `Ok(None)` for a blank or comment line.
fn split(
    line: &[u8],
    number: usize,
    warnings: &mut Vec<String>,
) -> Result<Option<Words>, ConfError> {
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let Some(name) = words.next() else {
        return Ok(None);
    };
    if name.starts_with(b"#") {
        return Ok(None);
    }
    match words.next() {
        None => return Err(ConfError::Arguments(number)),
        Some(b"=") => {}
        Some(_) => return Err(ConfError::NoEqualSign(number)),
    }
    let value = words.next().ok_or(ConfError::Arguments(number))?;
    let option = words.next();
    if words.next().is_some() {
        // auditd reports it and goes on with the value and the option.
        warnings.push(format!("line {number}: wrong number of arguments"));
    }
    Ok(Some(Words {
        name: String::from_utf8_lossy(name).into_owned(),
        value: value.to_vec(),
        option: option.map(<[u8]>::to_vec),
    }))
}

struct Words {
    name: String,
    value: Vec<u8>,
    option: Option<Vec<u8>>,
}

impl Words {
    fn one_of<T: Copy>(&self, number: usize, choices: &[(&str, T)]) -> Result<T, ConfError> {
        choices
            .iter()
            .find(|(w, _)| w.as_bytes().eq_ignore_ascii_case(&self.value))
            .map(|&(_, t)| t)
            .ok_or_else(|| ConfError::BadValue(number, String::from_utf8_lossy(&self.value).into()))
    }
}

/// Parses a plugin file's text as auditd does; also says whether any line was read whole
/// (auditd checks the result only then).
pub fn parse(text: &[u8], name: String) -> Result<(PluginConf, Vec<String>, bool), ConfError> {
    let mut warnings = Vec::new();
    let mut conf = PluginConf {
        name,
        active: false,
        path: None,
        kind: Kind::Always,
        args: Vec::new(),
        format: Format::String,
        inode: 0,
    };
    let lines = lines(text, &mut warnings);
    let any_line = !lines.is_empty();
    for (number, line) in lines {
        let Some(w) = split(&line, number, &mut warnings)? else {
            continue;
        };
        let key = w.name.to_ascii_lowercase();
        if !["active", "direction", "path", "type", "args", "format"].contains(&key.as_str()) {
            return Err(ConfError::UnknownKey(number, w.name));
        }
        if let (Some(option), false) = (&w.option, key == "args") {
            return Err(ConfError::Option(
                number,
                w.name.clone(),
                String::from_utf8_lossy(option).into(),
            ));
        }
        match key.as_str() {
            "active" => conf.active = w.one_of(number, &[("yes", true), ("no", false)])?,
            "direction" => w.one_of(number, &[("out", ())])?,
            "type" => {
                conf.kind = w.one_of(
                    number,
                    &[("builtin", Kind::Builtin), ("always", Kind::Always)],
                )?
            }
            "format" => {
                conf.format = w.one_of(
                    number,
                    &[("binary", Format::Binary), ("string", Format::String)],
                )?
            }
            "args" => {
                conf.args = std::iter::once(w.value)
                    .chain(w.option)
                    .map(OsString::from_vec)
                    .collect()
            }
            _ => {
                let path = PathBuf::from(OsString::from_vec(w.value));
                let builtin = path
                    .as_os_str()
                    .as_encoded_bytes()
                    .get(..8)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"builtin_"));
                if !builtin && dirname(path.as_os_str().as_encoded_bytes()).len() < 4 {
                    return Err(ConfError::ShortDir(number, path.display().to_string()));
                }
                conf.path = Some(path);
            }
        }
    }
    Ok((conf, warnings, any_line))
}

/// POSIX dirname(3).
fn dirname(path: &[u8]) -> &[u8] {
    let trimmed = match path.iter().rposition(|&b| b != b'/') {
        Some(i) => &path[..=i],
        None => return if path.is_empty() { b"." } else { b"/" },
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        None => b".",
        Some(i) => match trimmed[..i].iter().rposition(|&b| b != b'/') {
            Some(j) => &trimmed[..=j],
            None => b"/",
        },
    }
}

/// auditd's `sanity_check`, for an active plugin.
fn sanity_check(conf: &mut PluginConf) -> Result<(), ConfError> {
    if !conf.active {
        return Ok(());
    }
    let path = conf.path.as_ref().ok_or(ConfError::NoPath)?;
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.len() >= 8 && bytes[..8].eq_ignore_ascii_case(b"builtin_") {
        return Ok(());
    }
    let shown = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| ConfError::Stat(shown.clone(), e.to_string()))?;
    if !meta.is_file() {
        return Err(ConfError::PathNotRegular(shown));
    }
    if meta.uid() != 0 {
        return Err(ConfError::PathNotRootOwned(shown));
    }
    if meta.mode() & 0o750 != 0o750 {
        return Err(ConfError::PathMode(shown));
    }
    conf.inode = meta.ino();
    Ok(())
}

/// auditd's `load_plugin_conf` skips hidden files and backups: a name starting with a dot, or
/// with more than one dot.
pub fn is_candidate(file_name: &[u8]) -> bool {
    !file_name.starts_with(b".") && file_name.iter().filter(|&&b| b == b'.').count() <= 1
}
