//! Ring-buffer bytes to a [`Record`]: the one place that knows the wire layout. Every length
//! field is checked against the record's size; every fixed array is cut at its NUL or length.

use sensor_common as wire;

use super::record::*;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {kind} header ({need} bytes)")]
    Short {
        kind: &'static str,
        len: usize,
        need: usize,
    },
    #[error("record kind {0} is unknown")]
    UnknownKind(u32),
    #[error("path record of unknown kind {0}")]
    UnknownPath(u32),
    #[error("record length field {field}={value} exceeds the record ({len} bytes)")]
    BadLength {
        field: &'static str,
        value: usize,
        len: usize,
    },
}

/// Reads a `T` from the start of `bytes`, which the ring buffer only aligns to 8.
fn read<T: Copy>(bytes: &[u8], kind: &'static str) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: length checked; every wire type is plain `repr(C)` integers and byte arrays,
    // valid for any bit pattern; `read_unaligned` copes with any alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The variable-length tail that follows a fixed part of `fixed` bytes.
fn tail<'a>(
    bytes: &'a [u8],
    fixed: usize,
    len: usize,
    field: &'static str,
) -> Result<&'a [u8], DecodeError> {
    bytes.get(fixed..fixed + len).ok_or(DecodeError::BadLength {
        field,
        value: len,
        len: bytes.len(),
    })
}

/// The fixed part of a record whose last field, a byte array, is sent only as far as it is used:
/// only those `fixed` bytes are copied (no allocation, no zeroing of a 16 KiB array per record),
/// and only fields inside them are read, with [`field!`].
struct Prefix<T>(std::mem::MaybeUninit<T>);

fn read_prefix<T: Copy>(
    bytes: &[u8],
    fixed: usize,
    kind: &'static str,
) -> Result<Prefix<T>, DecodeError> {
    assert!(fixed <= size_of::<T>());
    if bytes.len() < fixed {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            need: fixed,
        });
    }
    let mut v = std::mem::MaybeUninit::<T>::uninit();
    // SAFETY: `fixed` bytes are available on both sides; the destination is plain data.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr().cast::<u8>(), fixed) };
    Ok(Prefix(v))
}

/// Reads one field of a [`Prefix`]; every field but the trailing array lies in the prefix.
macro_rules! field {
    ($p:expr, $f:ident) => {
        // SAFETY: the field precedes the trailing array, so its bytes were copied.
        unsafe { std::ptr::addr_of!((*$p.0.as_ptr()).$f).read() }
    };
}

fn origin(h: &wire::Header) -> Origin {
    Origin {
        tid: h.tid,
        pid: h.pid,
        mono_ns: h.mono_ns,
    }
}

/// The task; its exe is not in the record (normalise adds the walked path).
fn task_info(origin: &Origin, t: &wire::TaskInfo) -> TaskInfo {
    TaskInfo {
        ppid: t.ppid,
        pid: origin.pid,
        tid: origin.tid,
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
        personality: t.personality,
        tty: Some(wire::cstr(&t.tty).to_vec()).filter(|t| !t.is_empty()),
        comm: wire::cstr(&t.comm).to_vec(),
        exe: None,
    }
}

/// The first `len` bytes of a fixed array, `len` capped at the array's size.
fn upto(bytes: &[u8], len: u32) -> Vec<u8> {
    bytes[..(len as usize).min(bytes.len())].to_vec()
}

fn path_kind(which: u32) -> Option<PathKind> {
    Some(match which {
        wire::PATH_CWD => PathKind::ExecCwd,
        wire::PATH_EXE => PathKind::ExecExe,
        wire::PATH_CGROUP => PathKind::ExecCgroup,
        wire::PATH_TASK_EXE => PathKind::TaskExe,
        wire::PATH_TASK_CGROUP => PathKind::TaskCgroup,
        wire::PATH_TASK_CWD => PathKind::TaskCwd,
        wire::PATH_ARG_NAME => PathKind::ArgName,
        wire::PATH_ARG_NEWNAME => PathKind::ArgNewname,
        wire::PATH_EXEC_NAME => PathKind::ExecName,
        _ => return None,
    })
}

fn pam_item(bytes: &[u8; wire::PAM_ITEM_MAX]) -> Option<Vec<u8>> {
    Some(wire::cstr(bytes).to_vec()).filter(|v| !v.is_empty())
}

impl TryFrom<&[u8]> for Record {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let hdr: wire::Header = read(bytes, "header")?;
        let origin = origin(&hdr);
        match hdr.kind {
            wire::KIND_EXEC_ENTER => {
                let e =
                    read_prefix::<wire::ExecEnter>(bytes, wire::EXEC_ENTER_FIXED, "exec enter")?;
                let filename_len = field!(e, filename_len);
                let filename = if filename_len < 0 {
                    Err(filename_len)
                } else {
                    Ok(tail(
                        bytes,
                        wire::EXEC_ENTER_FIXED,
                        filename_len as usize,
                        "filename_len",
                    )?
                    .to_vec())
                };
                Ok(Record::ExecEnter(ExecEnter {
                    origin,
                    syscall: field!(e, syscall_nr),
                    compat: field!(e, compat) != 0,
                    regs: field!(e, regs),
                    old_uid: field!(e, old_uid),
                    old_caps: field!(e, old_caps),
                    filename,
                }))
            }
            wire::KIND_EXEC_ARGS => {
                let a = read_prefix::<wire::ExecArgs>(bytes, wire::EXEC_ARGS_FIXED, "exec args")?;
                let data =
                    tail(bytes, wire::EXEC_ARGS_FIXED, field!(a, len) as usize, "len")?.to_vec();
                Ok(Record::ExecArgs(ExecArgs {
                    origin,
                    offset: field!(a, offset),
                    data,
                }))
            }
            wire::KIND_EXEC_SCHED => {
                let s: wire::ExecSched = read(bytes, "exec sched")?;
                let name = (s.interp_len >= 0)
                    .then(|| wire::cstr(&upto(&s.interp, s.interp_len as u32)).to_vec());
                // bprm->interp is bprm->filename unless an interpreter ran.
                let (interp, filename) = match s.interpreted {
                    0 => (None, name),
                    _ => (name, None),
                };
                Ok(Record::ExecSched(ExecSched {
                    origin,
                    new_tid: s.new_tid,
                    argc: s.argc,
                    args_total: s.args_total,
                    args_missing: s.args_missing,
                    interp,
                    filename,
                }))
            }
            wire::KIND_EXEC_PATH => {
                let p = read_prefix::<wire::ExecPath>(bytes, wire::EXEC_PATH_FIXED, "exec path")?;
                let which = field!(p, which);
                let kind = path_kind(which).ok_or(DecodeError::UnknownPath(which))?;
                let data =
                    tail(bytes, wire::EXEC_PATH_FIXED, field!(p, len) as usize, "len")?.to_vec();
                Ok(Record::Path(PathRecord {
                    origin,
                    kind,
                    truncated: field!(p, truncated) != 0,
                    deleted: field!(p, deleted) != 0,
                    data,
                }))
            }
            wire::KIND_EXEC_EXIT => {
                let x: wire::ExecExit = read(bytes, "exec exit")?;
                Ok(Record::ExecExit(Box::new(ExecExit {
                    origin,
                    ret: x.ret,
                    task: task_info(&origin, &x.task),
                    ns: x.ns,
                    exe: (x.has_exe != 0).then_some(x.exe),
                    caps: x.caps,
                    proctitle: upto(&x.proctitle, x.proctitle_len),
                })))
            }
            wire::KIND_ABEND => {
                let a: wire::Abend = read(bytes, "abend")?;
                Ok(Record::Abend(Abend {
                    origin,
                    sig: a.sig,
                    ids: AuditIds {
                        auid: a.auid,
                        uid: a.uid,
                        gid: a.gid,
                        ses: a.ses,
                    },
                    ns: a.ns,
                    comm: wire::cstr(&a.comm).to_vec(),
                }))
            }
            wire::KIND_USER_MSG => {
                let m = read_prefix::<wire::UserMsg>(bytes, wire::USER_MSG_FIXED, "user message")?;
                let text =
                    tail(bytes, wire::USER_MSG_FIXED, field!(m, len) as usize, "len")?.to_vec();
                Ok(Record::UserMsg(UserMsg {
                    origin,
                    msg_type: field!(m, msg_type),
                    truncated: field!(m, truncated) != 0,
                    uid: field!(m, uid),
                    auid: field!(m, auid),
                    ses: field!(m, ses),
                    cap_effective: field!(m, cap_effective),
                    user_ns_level: field!(m, user_ns_level),
                    sock_cap_effective: field!(m, sock_cap_effective),
                    sock_user_ns_level: field!(m, sock_user_ns_level),
                    ns: field!(m, ns),
                    text,
                }))
            }
            wire::KIND_PAM_CALL => {
                let c: wire::PamCall = read(bytes, "pam call")?;
                let items = (c.has_items != 0).then(|| PamItems {
                    service: pam_item(&c.items[wire::PAM_ITEM_SERVICE]),
                    user: pam_item(&c.items[wire::PAM_ITEM_USER]),
                    rhost: pam_item(&c.items[wire::PAM_ITEM_RHOST]),
                    ruser: pam_item(&c.items[wire::PAM_ITEM_RUSER]),
                    tty: pam_item(&c.items[wire::PAM_ITEM_TTY]),
                });
                Ok(Record::PamCall(Box::new(PamCall {
                    origin,
                    func: c.func,
                    retval: c.retval,
                    flags: c.flags,
                    uid: c.uid,
                    auid: c.auid,
                    ses: c.ses,
                    ns: c.ns,
                    items,
                })))
            }
            wire::KIND_PAM_MODULE => {
                let m: wire::PamModule = read(bytes, "pam module")?;
                Ok(Record::PamModule(PamModule {
                    origin,
                    module: m.module,
                    func: m.func,
                    retval: m.retval,
                }))
            }
            wire::KIND_EXEC_UNSELECTED => {
                let u: wire::filter::ExecUnselected = read(bytes, "unselected exec")?;
                Ok(Record::ExecUnselected(ExecUnselected {
                    origin,
                    mnt_ns: u.mnt_ns,
                }))
            }
            wire::KIND_LOGIN_UID => {
                let l: wire::LoginUid = read(bytes, "login uid")?;
                Ok(Record::LoginUid(LoginUid {
                    origin,
                    ret: l.ret,
                    old_auid: l.old_auid,
                    old_ses: l.old_ses,
                    old_exact: l.old_exact != 0,
                    value: upto(&l.value, l.value_len),
                }))
            }
            wire::KIND_PROMISC => {
                let p: wire::Promisc = read(bytes, "promisc")?;
                Ok(Record::Promisc(Promisc {
                    origin,
                    exit_follows: p.exit_follows != 0,
                    ids: AuditIds {
                        auid: p.auid,
                        uid: p.uid,
                        gid: p.gid,
                        ses: p.ses,
                    },
                    ns: p.ns,
                    text: upto(&p.text, p.text_len),
                }))
            }
            wire::KIND_SYSCALL_EXIT => {
                let x: wire::SyscallExit = read(bytes, "syscall exit")?;
                Ok(Record::SyscallExit(Box::new(SyscallExit {
                    origin,
                    syscall: x.nr,
                    ret: x.ret,
                    args: x.args,
                    flags: x.flags,
                    cap_effective: x.cap_effective,
                    task: task_info(&origin, &x.task),
                    ns: x.ns,
                    proctitle: upto(&x.proctitle, x.proctitle_len),
                    kernel_denial: (x.denial_type != 0).then(|| KernelDenial {
                        record_type: x.denial_type,
                        op: wire::cstr(&x.denial_op).to_vec(),
                    }),
                })))
            }
            other => Err(DecodeError::UnknownKind(other)),
        }
    }
}
