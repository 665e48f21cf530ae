//! The exec programs per successful exec, apart from the storm's other syscalls: a loop of
//! execs of a static program that exits at once, each from a child made with
//! `clone(CLONE_VM | CLONE_VFORK)` and nothing else. Against the storm's 160-330 runs of
//! `sys_exit` per exec (a dynamically linked /bin/true, posix_spawn resetting every signal), an
//! exec here makes some 4-5 (the clone's two returns, the execve's, the wait's), so the exec's
//! exit is `sys_exit`'s time less a few runs at the open+close loop's cost, known to within
//! about 0.1 µs rather than a microsecond.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use anyhow::{ensure, Context, Result};

use crate::bench::interrupted;

/// The program's instructions: `mov eax, 60` (exit); `xor edi, edi`; `syscall`.
const EXIT0: [u8; 9] = [0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
const BASE: u64 = 0x40_0000;
/// ELF header and one program header.
const HEADERS: usize = 64 + 56;

/// A static x86-64 ELF executable that exits with status 0 at once: one loaded segment, no
/// interpreter, no sections. Written by the bench, so that no compiler is needed.
pub(crate) fn exit0_elf() -> Vec<u8> {
    let size = (HEADERS + EXIT0.len()) as u64;
    let mut e = Vec::with_capacity(size as usize);
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    e.extend_from_slice(&(BASE + HEADERS as u64).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // program headers' offset
    e.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for half in [64u16, 56, 1, 0, 0, 0] {
        // header size, program header size and count, section header size, count, names
        e.extend_from_slice(&half.to_le_bytes());
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    for word in [0, BASE, BASE, size, size, 0x1000] {
        // offset, virtual and physical address, sizes in the file and in memory, alignment
        e.extend_from_slice(&word.to_le_bytes());
    }
    e.extend_from_slice(&EXIT0);
    e
}

/// Writes [`exit0_elf`] to `path`, executable.
pub(crate) fn write_exit0(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, exit0_elf()).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

struct Exec {
    path: CString,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
}

/// The child: the exec, or exit 127. It runs on its own stack in the parent's memory, which
/// waits (CLONE_VFORK) until the exec has replaced it.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's live `Exec`; execve and _exit touch no Rust state.
    unsafe {
        let x = &*(arg as *const Exec);
        libc::execve(x.path.as_ptr(), x.argv.as_ptr(), x.envp.as_ptr());
        libc::_exit(127)
    }
}

/// `n` execs of `program` (which must exit 0), each from its own vfork-like child.
pub(crate) fn static_execs(program: &Path, n: usize) -> Result<()> {
    let path = CString::new(program.as_os_str().as_bytes())?;
    let x = Exec {
        argv: [path.as_ptr(), std::ptr::null()],
        envp: [std::ptr::null()],
        path,
    };
    let mut stack = vec![0u8; 64 * 1024];
    // The stack grows down from its 16-byte aligned top.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    for _ in 0..n {
        ensure!(!interrupted(), "interrupted");
        // SAFETY: `child` runs on `stack` and only execs or exits; the parent sleeps until then.
        let pid = unsafe {
            libc::clone(
                child,
                top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &x as *const Exec as *mut libc::c_void,
            )
        };
        ensure!(pid > 0, "clone: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        ensure!(
            waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{} did not exit 0 (status {status:#x})",
            program.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program runs and exits 0, from the loop and from a plain spawn; a program that
    /// exits otherwise fails the loop.
    #[test]
    fn the_static_program_execs_and_exits_zero() {
        let dir = std::env::temp_dir().join(format!("xtask-exit0-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("exit0");
        write_exit0(&exe).unwrap();
        assert!(std::process::Command::new(&exe).status().unwrap().success());
        static_execs(&exe, 20).unwrap();
        assert!(static_execs(Path::new("/bin/false"), 1).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
