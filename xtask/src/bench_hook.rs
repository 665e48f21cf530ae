//! The floors of a program on syscall exits: empty BPF programs (`r0 = 0; exit`) where the
//! sensor's tracepoint probe set could watch syscall exits, attached but doing nothing.
//!
//! - On the raw tracepoint `sys_exit`, as the sensor's `sys_exit` is: attaching any program
//!   there turns on the kernel's syscall tracing work for every task (its slow path at each
//!   syscall's entry and exit) and runs the tracepoint's machinery at every exit.
//! - On one `syscalls:sys_exit_NAME` tracepoint for each syscall that program watches
//!   ([`WATCHED`]): the design it was chosen over. The same slow path for every task; the
//!   kernel's perf hook then runs at every exit to find whether the syscall is watched, and a
//!   watched one builds a trace record before its program runs.
//!
//! What the storm or the loop pays for one of these alone is the least any observer that
//! watches syscall exits that way can cost, whatever its program does. Loaded with the `bpf()`
//! and `perf_event_open()` syscalls directly: no compiler or BPF toolchain is needed for two
//! instructions.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
/// `mov64 r0, 0` and `exit`, as `struct bpf_insn` (code, registers, offset, immediate).
const EMPTY: [[u8; 8]; 2] = [[0xb7, 0, 0, 0, 0, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]];
const LICENSE: &[u8] = b"GPL\0";
const TRACEPOINT: &[u8] = b"sys_exit\0";

/// The syscalls whose exits the sensor's `sys_exit` acts on (`sensor-ebpf/src/syscall.rs` and
/// the areas it calls): the exec family and libaudit's sendto; the opens and links a
/// protection may refuse (`fs.rs`); the writes that may set a login uid (`login.rs`); the
/// syscalls a promiscuity change happens in (`net.rs`).
pub(crate) const WATCHED: [&str; 18] = [
    "execve",
    "execveat",
    "sendto",
    "open",
    "openat",
    "openat2",
    "creat",
    "link",
    "linkat",
    "write",
    "pwrite64",
    "writev",
    "pwritev",
    "pwritev2",
    "ioctl",
    "sendmsg",
    "setsockopt",
    "close",
];

const TRACEFS: &str = "/sys/kernel/tracing";
const PERF_TYPE_TRACEPOINT: u64 = 2;
/// `PERF_SAMPLE_RAW`: what a tracepoint event samples.
const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// `PERF_ATTR_SIZE_VER0`: the attribute's first 64 bytes are enough for a tracepoint.
const PERF_ATTR_SIZE: u64 = 64;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `_IOW('$', 8, __u32)` and `_IO('$', 0)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;

/// Empty programs, attached while this lives (their links or perf events and the programs
/// close when dropped).
pub(crate) struct EmptyExitPrograms {
    _fds: Vec<OwnedFd>,
}

/// `bpf(cmd, attr)`, `attr` being `union bpf_attr` as 16 zeroed-then-filled words.
fn bpf(cmd: libc::c_long, attr: &[u64; 16]) -> Result<OwnedFd> {
    // SAFETY: `attr` is a readable 128-byte `union bpf_attr` whose pointers (instructions,
    // license, tracepoint name) point to statics that outlive the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), size_of_val(attr)) };
    if fd < 0 {
        bail!("bpf({cmd}): {}", std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The empty program, loaded as `prog_type`.
fn load_empty(prog_type: u32) -> Result<OwnedFd> {
    let mut load = [0u64; 16];
    // prog_type and insn_cnt share the first word; then insns, then license.
    load[0] = u64::from(prog_type) | (EMPTY.len() as u64) << 32;
    load[1] = EMPTY.as_ptr() as u64;
    load[2] = LICENSE.as_ptr() as u64;
    bpf(BPF_PROG_LOAD, &load)
}

impl EmptyExitPrograms {
    /// One empty program on the raw tracepoint `sys_exit`.
    pub(crate) fn on_sys_exit() -> Result<EmptyExitPrograms> {
        let prog = load_empty(BPF_PROG_TYPE_RAW_TRACEPOINT)?;
        let mut open = [0u64; 16];
        // raw_tracepoint: the name, then the program's descriptor.
        open[0] = TRACEPOINT.as_ptr() as u64;
        open[1] = prog.as_raw_fd() as u64;
        let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &open)?;
        Ok(EmptyExitPrograms {
            _fds: vec![link, prog],
        })
    }

    /// One empty program on each [`WATCHED`] syscall's `syscalls:sys_exit_NAME` tracepoint.
    pub(crate) fn on_each_watched_exit() -> Result<EmptyExitPrograms> {
        let ids = with_tracefs(|| {
            WATCHED
                .iter()
                .map(|name| {
                    let path = format!("{TRACEFS}/events/syscalls/sys_exit_{name}/id");
                    let id = std::fs::read_to_string(&path).with_context(|| path.clone())?;
                    id.trim().parse::<u64>().with_context(|| path.clone())
                })
                .collect::<Result<Vec<u64>>>()
        })?;
        let prog = load_empty(BPF_PROG_TYPE_TRACEPOINT)?;
        let mut fds = Vec::with_capacity(ids.len() + 1);
        for id in ids {
            fds.push(perf_tracepoint(id, &prog)?);
        }
        fds.push(prog);
        Ok(EmptyExitPrograms { _fds: fds })
    }
}

/// `read` with tracefs mounted at [`TRACEFS`]: mounted for the call and detached after it where
/// it was not (as on a fresh machine), so the bench leaves the mounts as it found them.
fn with_tracefs<T>(read: impl FnOnce() -> Result<T>) -> Result<T> {
    let events = std::path::Path::new(TRACEFS).join("events");
    if events.exists() {
        return read();
    }
    let target = std::ffi::CString::new(TRACEFS)?;
    // SAFETY: NUL-terminated strings that outlive the calls.
    let mounted = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if mounted != 0 {
        bail!(
            "mount tracefs at {TRACEFS}: {}",
            std::io::Error::last_os_error()
        );
    }
    let out = read();
    // SAFETY: as above. Detached, as a reader elsewhere may hold a file open in it.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    out
}

/// A perf event on tracepoint `id`, on every CPU (a tracepoint's programs run wherever it
/// fires), running `prog` at each hit.
fn perf_tracepoint(id: u64, prog: &OwnedFd) -> Result<OwnedFd> {
    // struct perf_event_attr, first 64 bytes: type and size, config, sample_period,
    // sample_type, read_format, the flag bits (all clear: enabled), wakeup_events and bp_type,
    // config1.
    let mut attr = [0u64; 8];
    attr[0] = PERF_TYPE_TRACEPOINT | PERF_ATTR_SIZE << 32;
    attr[1] = id;
    attr[2] = 1;
    attr[3] = PERF_SAMPLE_RAW;
    attr[6] = 1;
    // SAFETY: a readable 64-byte attribute whose size field says so; pid -1 and cpu 0 with no
    // group: every process, the tracepoint's programs being per event, not per CPU.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        bail!(
            "perf_event_open(tracepoint {id}): {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: ioctls on our own perf event, with a program descriptor and no pointer.
    let ok = unsafe {
        libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) == 0
            && libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) == 0
    };
    if !ok {
        bail!(
            "attach to tracepoint {id}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fds() -> Vec<String> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
    }

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            eprintln!("skipped: needs root");
        }
        root
    }

    /// As root, the program loads and attaches, and the kernel lists it while it is held.
    #[test]
    fn the_empty_program_is_attached_while_held() {
        if !root() {
            return;
        }
        let attached = |fds: &[String]| {
            fds.iter().any(|fd| {
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).is_ok_and(|i| {
                    i.contains("link_type:\traw_tracepoint") && i.contains("tp_name:\tsys_exit")
                })
            })
        };
        let held = EmptyExitPrograms::on_sys_exit().unwrap();
        assert!(attached(&fds()));
        drop(held);
        assert!(!attached(&fds()));
    }

    /// As root, one perf event per watched syscall holds a tracepoint program while held, and
    /// tracefs is left mounted or not as it was.
    #[test]
    fn the_empty_programs_are_on_each_watched_exit_while_held() {
        if !root() {
            return;
        }
        let mounted = || {
            std::fs::read_to_string("/proc/self/mounts")
                .unwrap()
                .lines()
                .filter(|l| l.split(' ').nth(1) == Some(TRACEFS))
                .count()
        };
        let before = mounted();
        let perf_events = || {
            fds()
                .iter()
                .filter(|fd| {
                    std::fs::read_link(format!("/proc/self/fd/{fd}"))
                        .is_ok_and(|l| l.to_string_lossy() == "anon_inode:[perf_event]")
                })
                .count()
        };
        let held = EmptyExitPrograms::on_each_watched_exit().unwrap();
        assert_eq!(perf_events(), WATCHED.len());
        assert_eq!(mounted(), before);
        drop(held);
        assert_eq!(perf_events(), 0);
    }
}
