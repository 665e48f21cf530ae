//! The records of an exec event: SYSCALL, BPRM_FCAPS, EXECVE, CWD, PATH per item, PROCTITLE.

use super::*;

/// SYSCALL, EXECVE…, CWD, PATH…, PROCTITLE: auditd's order. BPRM_FCAPS is not written: the sensor
/// does not see capability transitions.
pub fn write_exec(out: &mut Vec<u8>, ev: &ExecEvent, enriched: Option<&dyn Names>) {
    let record = SyscallRecord {
        stamp: &ev.stamp,
        arch: ev.arch,
        syscall: ev.syscall,
        success: ev.success,
        exit: ev.exit,
        regs: ev.regs,
        items: ev.paths.len(),
        task: &ev.task,
        key: ev.key.as_deref(),
        container: &ev.container,
        cut: &ev.paths_truncated,
    };
    write_syscall(out, &record, enriched);
    if let Some(b) = &ev.bprm_fcaps {
        write_bprm_fcaps(out, &ev.stamp, b);
    }
    // The kernel logs EXECVE only once the new image is committed. An empty captured argv is
    // still written when something is missing, so that the loss is visible.
    if ev.success && (!ev.argv.is_empty() || ev.argv_truncated.is_some()) {
        write_execve(out, ev);
    }
    if let Some(cwd) = &ev.cwd {
        begin(out, "CWD", &ev.stamp);
        out.extend_from_slice(b"cwd=");
        push_untrusted(out, cwd);
        out.push(b'\n');
    }
    for (item, path) in ev.paths.iter().enumerate() {
        write_path(out, &ev.stamp, item, path, enriched);
    }
    write_proctitle(out, &ev.stamp, &ev.proctitle);
}

/// `audit_log_cap()`: ` NAME=0` for an empty set, else 16 lower-case hex digits.
fn push_cap(out: &mut Vec<u8>, name: &str, set: u64) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    if set == 0 {
        out.push(b'0');
    } else {
        num::hex(out, set, 16);
    }
}

/// BPRM_FCAPS, as `audit_log_exit()` writes the aux record, between SYSCALL and EXECVE.
fn write_bprm_fcaps(out: &mut Vec<u8>, stamp: &Stamp, b: &BprmFcaps) {
    begin(out, "BPRM_FCAPS", stamp);
    out.extend_from_slice(b"fver=");
    num::hex(out, b.file.version as u64, 0);
    push_cap(out, "fp", b.file.permitted);
    push_cap(out, "fi", b.file.inheritable);
    out.extend_from_slice(b" fe=");
    num::dec(out, b.file.effective as u64);
    for (name, set) in [
        ("old_pp", b.old.permitted),
        ("old_pi", b.old.inheritable),
        ("old_pe", b.old.effective),
        ("old_pa", b.old.ambient),
        ("pp", b.new.permitted),
        ("pi", b.new.inheritable),
        ("pe", b.new.effective),
        ("pa", b.new.ambient),
    ] {
        push_cap(out, name, set);
    }
    out.extend_from_slice(b" frootid=");
    num::signed(out, b.file.rootid as i32 as i64);
    out.push(b'\n');
}

fn write_path(
    out: &mut Vec<u8>,
    st: &Stamp,
    item: usize,
    p: &PathItem,
    enriched: Option<&dyn Names>,
) {
    begin(out, "PATH", st);
    out.extend_from_slice(b"item=");
    num::dec(out, item as u64);
    out.extend_from_slice(b" name=");
    push_untrusted(out, &p.name);
    if let Some(i) = &p.inode {
        out.extend_from_slice(b" inode=");
        num::dec(out, i.ino);
        out.extend_from_slice(b" dev=");
        num::hex(out, i.dev_major as u64, 2);
        out.push(b':');
        num::hex(out, i.dev_minor as u64, 2);
        // mode is `%#ho`: a u16 in octal with a leading 0 unless it is 0.
        let mode = i.mode & 0xffff;
        out.extend_from_slice(b" mode=0");
        if mode != 0 {
            num::oct(out, mode as u64);
        }
        out.extend_from_slice(b" ouid=");
        num::dec(out, i.ouid as u64);
        out.extend_from_slice(b" ogid=");
        num::dec(out, i.ogid as u64);
        out.extend_from_slice(b" rdev=");
        num::hex(out, i.rdev_major as u64, 2);
        out.push(b':');
        num::hex(out, i.rdev_minor as u64, 2);
    }
    // audit_log_fcaps(): the capability sets as `audit_log_cap()` writes them.
    out.extend_from_slice(b" nametype=");
    out.extend_from_slice(p.nametype.as_str().as_bytes());
    push_cap(out, "cap_fp", p.fcaps.permitted);
    push_cap(out, "cap_fi", p.fcaps.inheritable);
    out.extend_from_slice(if p.fcaps.effective {
        b" cap_fe=1 cap_fver="
    } else {
        b" cap_fe=0 cap_fver="
    });
    num::hex(out, p.fcaps.version as u64, 0);
    out.extend_from_slice(b" cap_frootid=");
    num::signed(out, p.fcaps.rootid as i32 as i64);
    // auditd enriches only fields it finds: an unresolved name has no ouid/ogid.
    if let (Some(names), Some(i)) = (enriched, &p.inode) {
        out.push(INTERP_SEPARATOR);
        out.extend_from_slice(b"OUID=");
        push_untrusted(out, &id_text(i.ouid, names.user(i.ouid)));
        out.extend_from_slice(b" OGID=");
        push_untrusted(out, &id_text(i.ogid, names.group(i.ogid)));
    }
    out.push(b'\n');
}
