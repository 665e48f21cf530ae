//! ANOM_LINK, ANOM_CREAT, ANOM_PROMISCUOUS and LOGIN with the SYSCALL and PROCTITLE records of
//! their event, in the kernel's order: the kernel's own record is written while the syscall runs,
//! SYSCALL and PROCTITLE at its exit.
//!
//! Fields the sensor adds to ANOM_LINK / ANOM_CREAT, after `res=0`: `sensor_name=` and (link,
//! linkat) `sensor_newname=`, the path arguments as passed, and `sensor_object=`, the object the
//! protection applied to as the sensor resolved it (the hard link's source, the refused symlink,
//! the existing file; not written when the kernel's own refusal was seen, which does not name
//! it). The container fields go on the SYSCALL record, or on ANOM_PROMISCUOUS
//! when the change came outside a watched syscall and the record stands alone.

use super::{
    begin, push_container, push_interp_ids, push_raw_name, push_task_info, push_untrusted,
    task_ids, write_proctitle, write_syscall, Names, SyscallRecord,
};
use crate::event::{
    Anomaly, AnomalyEvent, Container, LoginChange, PathDenial, PathsTruncated, Promiscuity, Stamp,
    SyscallPart, Task, AUDIT_ARCH_X86_64,
};

pub fn write_anomaly(out: &mut Vec<u8>, ev: &AnomalyEvent, enriched: Option<&dyn Names>) {
    match &ev.anomaly {
        Anomaly::PathDenied {
            denial,
            names,
            object,
        } => {
            // The kernel takes the task fields from the same task at the same syscall.
            let Some(sc) = &ev.syscall else { return };
            write_path_denied(out, &ev.stamp, *denial, names, object, sc, enriched);
        }
        Anomaly::Login(change) => {
            let Some(sc) = &ev.syscall else { return };
            write_login(out, &ev.stamp, change, &sc.task, enriched);
        }
        Anomaly::Promiscuous(changes) => {
            // Standalone, the record carries the container itself.
            let context = ev
                .syscall
                .is_none()
                .then_some((&ev.container, &ev.paths_truncated));
            for change in changes {
                write_promiscuous(out, &ev.stamp, change, context, enriched);
            }
        }
    }
    if let Some(sc) = &ev.syscall {
        let record = SyscallRecord {
            stamp: &ev.stamp,
            arch: AUDIT_ARCH_X86_64,
            syscall: sc.syscall,
            success: sc.success,
            exit: sc.exit,
            regs: sc.regs,
            items: 0,
            task: &sc.task,
            key: ev.key.as_deref(),
            container: &ev.container,
            cut: &ev.paths_truncated,
        };
        write_syscall(out, &record, enriched);
        write_proctitle(out, &ev.stamp, &sc.proctitle);
    }
}

/// `audit_log_path_denied()`: `op=`, `audit_log_task_info()`, `res=0`.
fn write_path_denied(
    out: &mut Vec<u8>,
    stamp: &Stamp,
    denial: PathDenial,
    names: &[Vec<u8>],
    object: &[u8],
    sc: &SyscallPart,
    enriched: Option<&dyn Names>,
) {
    let t = &sc.task;
    begin(out, denial.record_type(), stamp);
    put!(out, "op={} ", denial.op());
    push_task_info(out, t);
    out.extend_from_slice(b" res=0");
    for (key, name) in ["sensor_name", "sensor_newname"].iter().zip(names) {
        put!(out, " {key}=");
        push_untrusted(out, name);
    }
    // The kernel's own refusal (fentry) names no object.
    if !object.is_empty() {
        out.extend_from_slice(b" sensor_object=");
        push_untrusted(out, object);
    }
    if let Some(names) = enriched {
        push_interp_ids(out, names, &task_ids(t));
    }
    out.push(b'\n');
}

/// `audit_log_set_loginuid()`: `pid= uid=`, (an LSM's `subj=`), `old-auid= auid= tty= old-ses=
/// ses= res=`.
fn write_login(
    out: &mut Vec<u8>,
    stamp: &Stamp,
    c: &LoginChange,
    t: &Task,
    enriched: Option<&dyn Names>,
) {
    begin(out, "LOGIN", stamp);
    put!(
        out,
        "pid={} uid={} old-auid={} auid={} tty=",
        t.pid,
        t.uid,
        c.old_auid,
        c.auid
    );
    push_raw_name(out, t.tty.as_deref(), b"(none)");
    put!(
        out,
        " old-ses={} ses={} res={}",
        c.old_ses,
        c.ses,
        c.res as u8
    );
    if let Some(names) = enriched {
        let ids = [
            ("UID", t.uid, true),
            ("OLD-AUID", c.old_auid, true),
            ("AUID", c.auid, true),
        ];
        push_interp_ids(out, names, &ids);
    }
    out.push(b'\n');
}

/// `__dev_set_promiscuity()`'s record.
fn write_promiscuous(
    out: &mut Vec<u8>,
    stamp: &Stamp,
    c: &Promiscuity,
    context: Option<(&Container, &PathsTruncated)>,
    enriched: Option<&dyn Names>,
) {
    begin(out, "ANOM_PROMISCUOUS", stamp);
    out.extend_from_slice(b"dev=");
    push_raw_name(out, Some(&c.dev), b"");
    put!(
        out,
        " prom={} old_prom={} auid={} uid={} gid={} ses={}",
        c.prom,
        c.old_prom,
        c.auid,
        c.uid,
        c.gid,
        c.ses
    );
    if let Some((container, cut)) = context {
        push_container(out, container, cut);
    }
    if let Some(names) = enriched {
        let ids = [
            ("AUID", c.auid, true),
            ("UID", c.uid, true),
            ("GID", c.gid, false),
        ];
        push_interp_ids(out, names, &ids);
    }
    out.push(b'\n');
}
