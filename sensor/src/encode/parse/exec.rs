//! From records back to what they describe: argv across EXECVE records, and whole execve events,
//! so that the sensor's log and auditd's can be compared by meaning as well as by bytes.

use std::str::FromStr;

use super::{decode_value, ParseError, Record};
use crate::encode::audit::hexq::{decode_hex, is_upper_hex};
use crate::event::{
    ArgvTruncation, BprmFcaps, Caps, Container, ExecEvent, FileCaps, Inode, NameType, PathItem,
    PathsTruncated, Stamp, Syscall, Task,
};

/// What an `aN…` field name says about argument N.
enum ArgField {
    Whole(usize),
    Len,
    Chunk(usize, u32),
}

fn arg_field(name: &[u8]) -> Option<ArgField> {
    let rest = name.strip_prefix(b"a")?;
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let idx: usize = std::str::from_utf8(&rest[..n]).ok()?.parse().ok()?;
    match &rest[n..] {
        b"" => Some(ArgField::Whole(idx)),
        b"_len" => Some(ArgField::Len),
        [b'[', i @ .., b']'] => Some(ArgField::Chunk(
            idx,
            std::str::from_utf8(i).ok()?.parse().ok()?,
        )),
        _ => None,
    }
}

/// An EXECVE value: quoted text, or hex that the kernel switched to.
fn decode_arg(v: &[u8]) -> Result<Vec<u8>, ParseError> {
    match v {
        [b'"', inner @ .., b'"'] => Ok(inner.to_vec()),
        _ => decode_hex(v).ok_or_else(|| {
            ParseError::Execve(format!(
                "not quoted nor hex: {}",
                String::from_utf8_lossy(v)
            ))
        }),
    }
}

/// Reassembles argv from the EXECVE records of one event (other record types are skipped):
/// `aN=` values and `aN[i]=` chunks, possibly spread over continuation records, quoted or hex.
/// When the sensor wrote `sensor_trunc_args=K`, the result holds `argc - K` arguments.
pub fn execve_argv(records: &[Record]) -> Result<Vec<Vec<u8>>, ParseError> {
    let err = |m: String| ParseError::Execve(m);
    let mut argc: Option<usize> = None;
    let mut missing = 0usize;
    let mut argv: Vec<Vec<u8>> = Vec::new();
    // The next chunk index expected for the argument being assembled (always the last one).
    let mut next_chunk: Option<u32> = None;
    for rec in records.iter().filter(|r| r.rtype == b"EXECVE") {
        for (k, v) in &rec.fields {
            let num = || {
                // argc is the kernel's (bare), sensor_trunc_args the sensor's (quoted).
                let v = std::str::from_utf8(v).ok()?;
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                v.parse::<usize>().ok()
            };
            match k.as_slice() {
                b"argc" => argc = Some(num().ok_or_else(|| err("bad argc".into()))?),
                b"sensor_trunc_args" => missing = num().ok_or_else(|| err("bad trunc".into()))?,
                _ => match arg_field(k) {
                    Some(ArgField::Whole(n)) if n == argv.len() => {
                        argv.push(decode_arg(v)?);
                        next_chunk = None;
                    }
                    Some(ArgField::Chunk(n, 0)) if n == argv.len() => {
                        argv.push(decode_arg(v)?);
                        next_chunk = Some(1);
                    }
                    Some(ArgField::Chunk(n, i)) if n + 1 == argv.len() && next_chunk == Some(i) => {
                        argv[n].extend(decode_arg(v)?);
                        next_chunk = Some(i + 1);
                    }
                    Some(ArgField::Len) | None => {}
                    Some(_) => {
                        return Err(err(format!("{} out of order", String::from_utf8_lossy(k))));
                    }
                },
            }
        }
    }
    let argc = argc.ok_or_else(|| err("no argc".into()))?;
    if argv.len() + missing != argc {
        return Err(err(format!(
            "argc={argc} but {} arguments, {missing} missing",
            argv.len()
        )));
    }
    Ok(argv)
}

/// The inverse of [`super::audit::write_exec`]: an execve/execveat event from the records of one
/// event, auditd's or the sensor's. Other record types (BPRM_FCAPS…) are ignored, the sensor's own
/// fields are optional, and what the text does not carry stays zero: `boot_ns`, `task.tid` and the
/// nanoseconds below the millisecond.
pub fn exec_event(records: &[Record]) -> Result<ExecEvent, ParseError> {
    let of = |t: &'static [u8]| records.iter().filter(move |r| r.rtype == t);
    let sc = of(b"SYSCALL")
        .next()
        .ok_or(ParseError::Header("no SYSCALL record"))?;
    let arch = u32::from_str_radix(utf8(sc, "arch")?, 16).map_err(|_| bad(sc, "arch"))?;
    let syscall =
        Syscall::from_arch(arch, num::<u32>(sc, "syscall")?).ok_or_else(|| bad(sc, "syscall"))?;
    let reg = |k| u64::from_str_radix(utf8(sc, k)?, 16).map_err(|_| bad(sc, k));
    let truncated = match of(b"EXECVE").next_back() {
        Some(r) if r.get(b"sensor_trunc_args").is_some() => Some(ArgvTruncation {
            missing_args: num(r, "sensor_trunc_args")?,
            missing_bytes: num(r, "sensor_trunc_bytes")?,
        }),
        _ => None,
    };
    let mut paths = Vec::new();
    for r in of(b"PATH") {
        let inode = match r.get(b"inode") {
            None => None,
            Some(_) => Some(Inode {
                ino: num(r, "inode")?,
                mode: u32::from_str_radix(utf8(r, "mode")?, 8).map_err(|_| bad(r, "mode"))?,
                ouid: num(r, "ouid")?,
                ogid: num(r, "ogid")?,
                ..dev_pair(r, "dev", dev_pair(r, "rdev", Inode::default())?)?
            }),
        };
        let nametype = match r.get(b"nametype") {
            Some(b"NORMAL") => NameType::Normal,
            _ => NameType::Unknown,
        };
        let name = decode_value(field(r, "name")?);
        let fcaps = FileCaps {
            permitted: cap(r, "cap_fp")?,
            inheritable: cap(r, "cap_fi")?,
            effective: num::<u8>(r, "cap_fe")? != 0,
            version: hex_u32(r, "cap_fver")?,
            rootid: num::<i32>(r, "cap_frootid")? as u32,
        };
        paths.push(PathItem {
            name,
            inode,
            nametype,
            fcaps,
        });
    }
    let bprm_fcaps = match of(b"BPRM_FCAPS").next() {
        None => None,
        Some(r) => Some(BprmFcaps {
            file: FileCaps {
                permitted: cap(r, "fp")?,
                inheritable: cap(r, "fi")?,
                effective: num::<u8>(r, "fe")? != 0,
                version: hex_u32(r, "fver")?,
                rootid: num::<i32>(r, "frootid")? as u32,
            },
            old: caps_of(r, ["old_pp", "old_pi", "old_pe", "old_pa"])?,
            new: caps_of(r, ["pp", "pi", "pe", "pa"])?,
        }),
    };
    let container = match sc.get(b"cgroup_id") {
        None => Container::default(),
        Some(_) => Container {
            cgroup_id: num(sc, "cgroup_id")?,
            cgroup_path: decode_value(field(sc, "cgroup")?),
            pid_ns: num(sc, "pidns")?,
            mnt_ns: num(sc, "mntns")?,
            net_ns: num(sc, "netns")?,
            uts_ns: num(sc, "utsns")?,
            ns_pid: num(sc, "nspid")?,
            container_id: match sc.get(b"container") {
                None => None,
                Some(v) => {
                    Some(String::from_utf8(decode_value(v)).map_err(|_| bad(sc, "container"))?)
                }
            },
        },
    };
    let paths_truncated = match sc.get(b"sensor_trunc_paths") {
        None => PathsTruncated::default(),
        Some(list) => {
            let list = decode_value(list);
            let has = |n: &[u8]| list.split(|&b| b == b',').any(|x| x == n);
            PathsTruncated {
                cwd: has(b"cwd"),
                exe: has(b"exe"),
                cgroup: has(b"cgroup"),
            }
        }
    };
    let proctitle = match of(b"PROCTITLE").next() {
        None => Vec::new(),
        // The kernel's stand-in for an empty command line.
        Some(r) => Some(decode_value(field(r, "proctitle")?))
            .filter(|p| p != b"(null)")
            .unwrap_or_default(),
    };
    Ok(ExecEvent {
        stamp: Stamp {
            sec: sc.sec,
            nsec: sc.msec * 1_000_000,
            serial: sc.serial,
        },
        boot_ns: 0,
        arch,
        syscall,
        success: field(sc, "success")? == b"yes",
        exit: num(sc, "exit")?,
        regs: [reg("a0")?, reg("a1")?, reg("a2")?, reg("a3")?],
        task: Task {
            ppid: num(sc, "ppid")?,
            pid: num(sc, "pid")?,
            tid: 0,
            auid: num(sc, "auid")?,
            uid: num(sc, "uid")?,
            gid: num(sc, "gid")?,
            euid: num(sc, "euid")?,
            suid: num(sc, "suid")?,
            fsuid: num(sc, "fsuid")?,
            egid: num(sc, "egid")?,
            sgid: num(sc, "sgid")?,
            fsgid: num(sc, "fsgid")?,
            ses: num(sc, "ses")?,
            personality: match sc.get(b"per") {
                None => 0,
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| u32::from_str_radix(v, 16).ok())
                    .ok_or_else(|| bad(sc, "per"))?,
            },
            tty: match field(sc, "tty")? {
                b"(none)" => None,
                // The encoder never writes an upper-case hex run raw (`hexq::raw_safe`).
                v if is_upper_hex(v) => decode_hex(v),
                v => Some(v.to_vec()),
            },
            comm: decode_value(field(sc, "comm")?),
            exe: Some(field(sc, "exe")?)
                .filter(|v| *v != b"(null)")
                .map(decode_value),
        },
        argv: if of(b"EXECVE").next().is_some() {
            execve_argv(records)?
        } else {
            Vec::new()
        },
        argv_truncated: truncated,
        bprm_fcaps,
        paths_truncated,
        proctitle,
        cwd: of(b"CWD")
            .next()
            .map(|r| field(r, "cwd").map(decode_value))
            .transpose()?,
        paths,
        container,
        key: Some(field(sc, "key")?)
            .filter(|v| *v != b"(null)")
            .map(decode_value),
    })
}

fn bad(r: &Record, field: &'static str) -> ParseError {
    ParseError::Field {
        rtype: String::from_utf8_lossy(&r.rtype).into_owned(),
        field,
    }
}

fn field<'a>(r: &'a Record, k: &'static str) -> Result<&'a [u8], ParseError> {
    r.get(k.as_bytes()).ok_or_else(|| bad(r, k))
}

fn utf8<'a>(r: &'a Record, k: &'static str) -> Result<&'a str, ParseError> {
    std::str::from_utf8(field(r, k)?).map_err(|_| bad(r, k))
}

/// A number: the kernel's are bare, the sensor's own fields quoted (see `encode::audit`).
fn num<T: FromStr>(r: &Record, k: &'static str) -> Result<T, ParseError> {
    let v = utf8(r, k)?;
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    v.parse().map_err(|_| bad(r, k))
}

/// `dev=fe:00` / `rdev=00:00` (`%02x:%02x`) into `base`.
fn dev_pair(r: &Record, k: &'static str, base: Inode) -> Result<Inode, ParseError> {
    let (a, b) = utf8(r, k)?.split_once(':').ok_or_else(|| bad(r, k))?;
    let (a, b) = match (u32::from_str_radix(a, 16), u32::from_str_radix(b, 16)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(bad(r, k)),
    };
    Ok(match k {
        "dev" => Inode {
            dev_major: a,
            dev_minor: b,
            ..base
        },
        _ => Inode {
            rdev_major: a,
            rdev_minor: b,
            ..base
        },
    })
}

/// A capability set as `audit_log_cap()` writes it (hex, or `0`).
fn cap(r: &Record, k: &'static str) -> Result<u64, ParseError> {
    u64::from_str_radix(utf8(r, k)?, 16).map_err(|_| bad(r, k))
}

fn hex_u32(r: &Record, k: &'static str) -> Result<u32, ParseError> {
    u32::from_str_radix(utf8(r, k)?, 16).map_err(|_| bad(r, k))
}

/// The four sets of BPRM_FCAPS: permitted, inheritable, effective, ambient field names.
fn caps_of(r: &Record, [p, i, e, a]: [&'static str; 4]) -> Result<Caps, ParseError> {
    Ok(Caps {
        permitted: cap(r, p)?,
        inheritable: cap(r, i)?,
        effective: cap(r, e)?,
        ambient: cap(r, a)?,
    })
}
