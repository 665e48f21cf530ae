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
}

impl RawEvent {
    pub fn header(&self) -> &wire::Header {
        match self {
            RawEvent::Enter { hdr, .. }
            | RawEvent::Args { hdr, .. }
            | RawEvent::Sched { hdr, .. }
            | RawEvent::Path { hdr, .. } => hdr,
            RawEvent::Exit(e) => &e.hdr,
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

/// The records whose variable-length part is not sent are shorter than their struct: read the
/// fixed part through a zero-padded copy.
fn read_padded<T: Copy>(bytes: &[u8], fixed: usize, kind: &'static str) -> Result<T, DecodeError> {
    if bytes.len() < fixed {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            need: fixed,
        });
    }
    let mut buf = vec![0u8; size_of::<T>()];
    let n = bytes.len().min(buf.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    read(&buf, kind)
}

fn cstr(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(&[])
}

impl TryFrom<&[u8]> for RawEvent {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let hdr: wire::Header = read(bytes, "header")?;
        match hdr.kind {
            wire::KIND_EXEC_ENTER => {
                let e: wire::ExecEnter = read_padded(bytes, wire::EXEC_ENTER_FIXED, "exec enter")?;
                let filename = if e.filename_len < 0 {
                    Err(e.filename_len)
                } else {
                    Ok(tail(
                        bytes,
                        wire::EXEC_ENTER_FIXED,
                        e.filename_len as usize,
                        "filename_len",
                    )?
                    .to_vec())
                };
                Ok(RawEvent::Enter {
                    hdr,
                    syscall_nr: e.syscall_nr,
                    regs: e.regs,
                    old_uid: e.old_uid,
                    old_caps: e.old_caps,
                    filename,
                })
            }
            wire::KIND_EXEC_ARGS => {
                let a: wire::ExecArgs = read_padded(bytes, wire::EXEC_ARGS_FIXED, "exec args")?;
                let data = tail(bytes, wire::EXEC_ARGS_FIXED, a.len as usize, "len")?.to_vec();
                Ok(RawEvent::Args {
                    hdr,
                    offset: a.offset,
                    data,
                })
            }
            wire::KIND_EXEC_SCHED => {
                let s: wire::ExecSched = read(bytes, "exec sched")?;
                let interp = (s.interpreted != 0 && s.interp_len >= 0).then(|| {
                    cstr(&s.interp[..(s.interp_len as usize).min(s.interp.len())]).to_vec()
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
                let p: wire::ExecPath = read_padded(bytes, wire::EXEC_PATH_FIXED, "exec path")?;
                let data = tail(bytes, wire::EXEC_PATH_FIXED, p.len as usize, "len")?.to_vec();
                Ok(RawEvent::Path {
                    hdr,
                    which: p.which,
                    truncated: p.truncated != 0,
                    data,
                })
            }
            wire::KIND_EXEC_EXIT => Ok(RawEvent::Exit(Box::new(read(bytes, "exec exit")?))),
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
#[path = "read_tests.rs"]
mod tests;
