use std::process::Command;

use super::*;

#[test]
fn syscalls_by_number_name_and_arch() {
    assert_eq!(Syscall::EXECVE.name(), Some("execve"));
    assert_eq!(Syscall::from_name("openat2"), Some(Syscall::OPENAT2));
    assert_eq!(Syscall::EXECVE.number_in(AUDIT_ARCH_I386), Some(11));
    assert_eq!(Syscall::EXECVEAT.number_in(AUDIT_ARCH_I386), Some(358));
    assert_eq!(
        Syscall::from_arch(AUDIT_ARCH_I386, 11),
        Some(Syscall::EXECVE)
    );
    // A number with no name is still a syscall: auditd writes it as a number.
    let unknown = Syscall(4000);
    assert_eq!((unknown.name(), unknown.number()), (None, 4000));
    assert_eq!(unknown.number_in(AUDIT_ARCH_X86_64), Some(4000));
    assert_eq!(Syscall::from_arch(0x1234, 1), None);
}

/// The tables are libaudit's: what `ausyscall ARCH --dump` prints, line for line.
#[test]
fn syscall_tables_agree_with_ausyscall() {
    for (arch, name) in [(AUDIT_ARCH_X86_64, "x86_64"), (AUDIT_ARCH_I386, "i386")] {
        let out = match Command::new("ausyscall").args([name, "--dump"]).output() {
            Ok(out) if out.status.success() => out,
            _ => {
                eprintln!("ausyscall is not installed (Debian package auditd): not compared");
                return;
            }
        };
        let text = String::from_utf8(out.stdout).unwrap();
        let theirs: Vec<(u32, &str)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let (n, name) = l.split_once('\t').unwrap();
                (n.parse().unwrap(), name)
            })
            .collect();
        let ours = sensor_common::syscalls::table(arch).unwrap();
        assert_eq!(ours, &theirs[..], "{name}");
        for &(nr, n) in ours {
            assert_eq!(sensor_common::syscalls::name(arch, nr), Some(n));
            assert_eq!(sensor_common::syscalls::number(arch, n), Some(nr));
        }
    }
}
