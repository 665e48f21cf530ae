//! The floor of a program on every syscall: an empty BPF program (`r0 = 0; exit`) on the raw
//! tracepoint `sys_exit`, as the sensor's `sys_exit` is attached but doing nothing. Attaching
//! any program there turns on the kernel's syscall tracing work for every task (its slow path
//! at each syscall's entry and exit) and runs the tracepoint's machinery at every exit: what
//! the storm pays for that alone is the least any observer that watches syscall exits this way
//! can cost, whatever its program does. Loaded with the `bpf()` syscall directly: no compiler or
//! BPF toolchain is needed for two instructions.

use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{bail, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
/// `mov64 r0, 0` and `exit`, as `struct bpf_insn` (code, registers, offset, immediate).
const EMPTY: [[u8; 8]; 2] = [[0xb7, 0, 0, 0, 0, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]];
const LICENSE: &[u8] = b"GPL\0";
const TRACEPOINT: &[u8] = b"sys_exit\0";

/// The empty program, attached while this lives (its link and program close when dropped).
pub(crate) struct EmptyExitProgram {
    _link: OwnedFd,
    _prog: OwnedFd,
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

impl EmptyExitProgram {
    pub(crate) fn attach() -> Result<EmptyExitProgram> {
        let mut load = [0u64; 16];
        // prog_type and insn_cnt share the first word; then insns, then license.
        load[0] = u64::from(BPF_PROG_TYPE_RAW_TRACEPOINT) | (EMPTY.len() as u64) << 32;
        load[1] = EMPTY.as_ptr() as u64;
        load[2] = LICENSE.as_ptr() as u64;
        let prog = bpf(BPF_PROG_LOAD, &load)?;
        let mut open = [0u64; 16];
        // raw_tracepoint: the name, then the program's descriptor.
        open[0] = TRACEPOINT.as_ptr() as u64;
        open[1] = std::os::fd::AsRawFd::as_raw_fd(&prog) as u64;
        let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &open)?;
        Ok(EmptyExitProgram {
            _link: link,
            _prog: prog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As root, the program loads and attaches, and the kernel lists it while it is held.
    #[test]
    fn the_empty_program_is_attached_while_held() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let attached = |fds: &[String]| {
            fds.iter().any(|fd| {
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).is_ok_and(|i| {
                    i.contains("link_type:\traw_tracepoint") && i.contains("tp_name:\tsys_exit")
                })
            })
        };
        let fds = || -> Vec<String> {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        };
        let held = EmptyExitProgram::attach().unwrap();
        assert!(attached(&fds()));
        drop(held);
        assert!(!attached(&fds()));
    }
}
