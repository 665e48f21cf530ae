//! Every syscall auditctl knows by name, per architecture: number and name as libaudit's own
//! tables have them (what `ausyscall ARCH --dump` prints, libaudit 3.0.9). One table for the eBPF
//! programs, the agent, protobuf conversion, `compare` and the rules parser. An unknown number
//! is a value like any other (auditd prints it as a number), never an error.
//!
//! Regenerate: `ausyscall x86_64 --dump` and `ausyscall i386 --dump`; a unit test in the agent
//! checks the tables against `ausyscall` where it is installed.

/// AUDIT_ARCH_X86_64, as auditd writes `arch=`.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_I386: 32-bit (`int 0x80`, compat) syscalls on x86_64.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// x86_64 numbers of the syscalls the probes and the agent name in code.
pub mod x86_64 {
    pub const READ: u32 = 0;
    pub const WRITE: u32 = 1;
    pub const OPEN: u32 = 2;
    pub const CLOSE: u32 = 3;
    pub const IOCTL: u32 = 16;
    pub const PWRITE64: u32 = 18;
    pub const WRITEV: u32 = 20;
    pub const SENDTO: u32 = 44;
    pub const SENDMSG: u32 = 46;
    pub const SETSOCKOPT: u32 = 54;
    pub const EXECVE: u32 = 59;
    pub const CREAT: u32 = 85;
    pub const LINK: u32 = 86;
    pub const OPENAT: u32 = 257;
    pub const LINKAT: u32 = 265;
    pub const PWRITEV: u32 = 296;
    pub const EXECVEAT: u32 = 322;
    pub const PWRITEV2: u32 = 328;
    pub const OPENAT2: u32 = 437;
}

/// i386 numbers of the syscalls the agent names in code.
pub mod i386 {
    pub const EXECVE: u32 = 11;
    pub const EXECVEAT: u32 = 358;
}

/// The table of one architecture, or `None` for one the sensor does not know.
pub fn table(arch: u32) -> Option<&'static [(u32, &'static str)]> {
    match arch {
        AUDIT_ARCH_X86_64 => Some(&X86_64),
        AUDIT_ARCH_I386 => Some(&I386),
        _ => None,
    }
}

/// The name of syscall `nr` of `arch`, as auditctl and auparse spell it.
pub fn name(arch: u32, nr: u32) -> Option<&'static str> {
    let t = table(arch)?;
    // Both tables are sorted by number with few gaps: look near the index first.
    match t.get(nr as usize) {
        Some(&(n, name)) if n == nr => Some(name),
        _ => t.iter().find(|(n, _)| *n == nr).map(|&(_, name)| name),
    }
}

/// The number of syscall `name` on `arch`.
pub fn number(arch: u32, name: &str) -> Option<u32> {
    table(arch)?
        .iter()
        .find(|(_, n)| *n == name)
        .map(|&(nr, _)| nr)
}

mod tables;
pub use tables::{I386, X86_64};
