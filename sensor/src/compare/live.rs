//! Kernel audit's multicast log: every record the kernel emits, read from the netlink group
//! AUDIT_NLGRP_READLOG (needs CAP_AUDIT_READ). It works beside a running auditd and changes
//! nothing in the kernel's audit state.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Instant,
};

use crate::catalog;

const NETLINK_AUDIT: i32 = 9;
const AUDIT_NLGRP_READLOG: u32 = 1;
/// The kernel's end-of-event marker, which auditd does not write either.
const AUDIT_EOE: u16 = 1320;

pub struct ReadLog {
    fd: OwnedFd,
}

impl ReadLog {
    pub fn open() -> io::Result<ReadLog> {
        // SAFETY: plain socket calls; the fd is owned right away.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_AUDIT,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            addr.nl_groups = 1 << (AUDIT_NLGRP_READLOG - 1);
            let len = std::mem::size_of::<libc::sockaddr_nl>() as u32;
            if libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                len,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // A burst of records must not overflow the socket while the reader sleeps.
            let size: i32 = 32 << 20;
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const i32).cast(),
                4,
            );
            Ok(ReadLog { fd })
        }
    }

    /// Writes every record received until `deadline` (or `stop()` says so) to `out` as audit
    /// log lines (`type=NAME msg=audit(…): …`), as they come. Returns how many messages the
    /// kernel dropped on this socket (ENOBUFS).
    pub fn read_until(
        &self,
        out: &mut dyn io::Write,
        deadline: Instant,
        stop: &dyn Fn() -> bool,
    ) -> io::Result<u64> {
        let mut buf = vec![0u8; 1 << 16];
        let mut lines = Vec::new();
        let mut overruns = 0;
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: setting a receive timeout on our own socket.
        unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        while Instant::now() < deadline && !stop() {
            // SAFETY: receiving into our buffer.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        overruns += 1;
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            lines.clear();
            append_messages(&buf[..n as usize], &mut lines);
            out.write_all(&lines)?;
        }
        out.flush()?;
        Ok(overruns)
    }
}

/// Netlink messages (16-byte header: length, type, flags, sequence, port) to log lines.
pub fn append_messages(mut data: &[u8], out: &mut Vec<u8>) {
    while data.len() >= 16 {
        let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
        let rtype = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        let len = len.clamp(16, data.len());
        let payload = &data[16..len];
        let end = payload
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(payload.len());
        let text = payload[..end]
            .strip_suffix(b"\n")
            .unwrap_or(&payload[..end]);
        if rtype != AUDIT_EOE && text.starts_with(b"audit(") {
            out.extend_from_slice(
                format!("type={} msg=", catalog::record_name(rtype as u32)).as_bytes(),
            );
            out.extend_from_slice(text);
            out.push(b'\n');
        }
        data = data.get((len + 3) & !3..).unwrap_or(&[]);
    }
}
