//! Stage 2: drain the ring buffer (woken by `AsyncFd`), decode each record into a [`RawEvent`]
//! and hand it to the bounded channel. When the channel is full the record is dropped and
//! counted: the kernel side must never wait for us.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use aya::maps::{MapData, RingBuf};
use sensor_common as wire;
use tokio::{io::unix::AsyncFd, sync::mpsc};

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
    #[error("record length field {field}={value} exceeds the record ({len} bytes)")]
    BadLength {
        field: &'static str,
        value: usize,
        len: usize,
    },
}

/// One decoded ring-buffer record, owning its variable-length bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEvent {
    Enter {
        hdr: wire::Header,
        syscall_nr: u32,
        regs: [u64; 6],
        old_uid: u32,
        old_caps: wire::Caps,
        filename: Result<Vec<u8>, i32>,
    },
    Args {
        hdr: wire::Header,
        offset: u64,
        data: Vec<u8>,
    },
    Sched {
        hdr: wire::Header,
        new_tid: u32,
        argc: u32,
        args_total: u64,
        args_missing: u64,
        interp: Option<Vec<u8>>,
    },
    Path {
        hdr: wire::Header,
        which: u32,
        truncated: bool,
        data: Vec<u8>,
    },
    Exit(Box<wire::ExecExit>),
    Abend(Box<wire::Abend>),
    Promisc(Box<wire::Promisc>),
    SyscallExit(Box<wire::SyscallExit>),
    PamCall(Box<wire::PamCall>),
    PamModule(wire::PamModule),
    UserMsg {
        hdr: wire::Header,
        msg_type: u32,
        truncated: bool,
        uid: u32,
        auid: u32,
        ses: u32,
        cap_effective: u64,
        ns: wire::TaskNs,
        text: Vec<u8>,
    },
}

impl RawEvent {
    pub fn header(&self) -> &wire::Header {
        match self {
            RawEvent::Enter { hdr, .. }
            | RawEvent::Args { hdr, .. }
            | RawEvent::Sched { hdr, .. }
            | RawEvent::Path { hdr, .. }
            | RawEvent::UserMsg { hdr, .. } => hdr,
            RawEvent::Exit(e) => &e.hdr,
            RawEvent::Abend(a) => &a.hdr,
            RawEvent::Promisc(p) => &p.hdr,
            RawEvent::SyscallExit(e) => &e.hdr,
            RawEvent::PamCall(c) => &c.hdr,
            RawEvent::PamModule(m) => &m.hdr,
        }
    }
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

impl TryFrom<&[u8]> for RawEvent {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let hdr: wire::Header = read(bytes, "header")?;
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
                Ok(RawEvent::Enter {
                    hdr,
                    syscall_nr: field!(e, syscall_nr),
                    regs: field!(e, regs),
                    old_uid: field!(e, old_uid),
                    old_caps: field!(e, old_caps),
                    filename,
                })
            }
            wire::KIND_EXEC_ARGS => {
                let a = read_prefix::<wire::ExecArgs>(bytes, wire::EXEC_ARGS_FIXED, "exec args")?;
                let data =
                    tail(bytes, wire::EXEC_ARGS_FIXED, field!(a, len) as usize, "len")?.to_vec();
                Ok(RawEvent::Args {
                    hdr,
                    offset: field!(a, offset),
                    data,
                })
            }
            wire::KIND_EXEC_SCHED => {
                let s: wire::ExecSched = read(bytes, "exec sched")?;
                let interp = (s.interpreted != 0 && s.interp_len >= 0).then(|| {
                    wire::cstr(&s.interp[..(s.interp_len as usize).min(s.interp.len())]).to_vec()
                });
                Ok(RawEvent::Sched {
                    hdr,
                    new_tid: s.new_tid,
                    argc: s.argc,
                    args_total: s.args_total,
                    args_missing: s.args_missing,
                    interp,
                })
            }
            wire::KIND_EXEC_PATH => {
                let p = read_prefix::<wire::ExecPath>(bytes, wire::EXEC_PATH_FIXED, "exec path")?;
                let data =
                    tail(bytes, wire::EXEC_PATH_FIXED, field!(p, len) as usize, "len")?.to_vec();
                Ok(RawEvent::Path {
                    hdr,
                    which: field!(p, which),
                    truncated: field!(p, truncated) != 0,
                    data,
                })
            }
            wire::KIND_EXEC_EXIT => Ok(RawEvent::Exit(Box::new(read(bytes, "exec exit")?))),
            wire::KIND_ABEND => Ok(RawEvent::Abend(Box::new(read(bytes, "abend")?))),
            wire::KIND_USER_MSG => {
                let m = read_prefix::<wire::UserMsg>(bytes, wire::USER_MSG_FIXED, "user message")?;
                let text =
                    tail(bytes, wire::USER_MSG_FIXED, field!(m, len) as usize, "len")?.to_vec();
                Ok(RawEvent::UserMsg {
                    hdr,
                    msg_type: field!(m, msg_type),
                    truncated: field!(m, truncated) != 0,
                    uid: field!(m, uid),
                    auid: field!(m, auid),
                    ses: field!(m, ses),
                    cap_effective: field!(m, cap_effective),
                    ns: field!(m, ns),
                    text,
                })
            }
            wire::KIND_PAM_CALL => Ok(RawEvent::PamCall(Box::new(read(bytes, "pam call")?))),
            wire::KIND_PAM_MODULE => Ok(RawEvent::PamModule(read(bytes, "pam module")?)),
            wire::KIND_PROMISC => Ok(RawEvent::Promisc(Box::new(read(bytes, "promisc")?))),
            wire::KIND_SYSCALL_EXIT => Ok(RawEvent::SyscallExit(Box::new(read(
                bytes,
                "syscall exit",
            )?))),
            other => Err(DecodeError::UnknownKind(other)),
        }
    }
}

/// Counters of what the reader itself could not pass on.
#[derive(Default, Debug)]
pub struct ReadStats {
    pub undecodable: AtomicU64,
}

/// Drains `ring` into `tx` until `tx` closes or `stop` fires; at stop, drains what the kernel
/// already wrote (the probes are detached by then), then returns, which closes the channel and
/// lets the consumer flush.
pub async fn run(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<RawEvent>,
    stats: Arc<ReadStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    coalesce: std::time::Duration,
) -> std::io::Result<()> {
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged until the
    // `AsyncFd` (and with it the ring) is dropped.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)? };
    loop {
        tokio::select! {
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                if !drain(guard.get_inner_mut(), &tx, &stats).await {
                    return Ok(());
                }
                guard.clear_ready();
                drop(guard);
                // Let records accumulate: one wake-up then serves many, instead of one per
                // record. The kernel side never waits for us; the ring buffer holds them.
                if !coalesce.is_zero() {
                    tokio::time::sleep(coalesce).await;
                }
            }
            _ = stop.changed() => {
                drain(fd.get_mut(), &tx, &stats).await;
                return Ok(());
            }
        }
    }
}

/// Moves every ready record to the channel; false once the consumer is gone. A full channel
/// makes the reader wait, leaving records in the kernel's ring buffer, whose overflow the
/// programs count: the agent drops nothing that the kernel could still hold.
async fn drain(
    ring: &mut RingBuf<MapData>,
    tx: &mpsc::Sender<RawEvent>,
    stats: &ReadStats,
) -> bool {
    for n in 1u32.. {
        let Ok(permit) = tx.reserve().await else {
            return false;
        };
        // The item borrows the ring: decode it before awaiting again.
        let decoded = match ring.next() {
            Some(item) => RawEvent::try_from(&*item),
            None => return true,
        };
        match decoded {
            Ok(ev) => permit.send(ev),
            Err(_) => {
                stats.undecodable.fetch_add(1, Ordering::Relaxed);
            }
        }
        // One thread runs reader and consumer: let the consumer encode what is queued.
        if n % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    true
}

#[cfg(test)]
mod tests;
