//! [`AnomalyEvent`] ⇄ `sensor.v1.AnomalyEvent`.

use sensor_proto::v1;

use super::{
    container_from_proto, container_to_proto, regs_from_proto, syscall_from_proto,
    syscall_to_proto, task_from_proto, task_to_proto, truncated_from_proto, truncated_to_proto,
    ProtoError,
};
use crate::event::{
    Anomaly, AnomalyEvent, LoginChange, PathDenial, Promiscuity, Stamp, Syscall, SyscallPart,
};

const DENIALS: [(PathDenial, v1::PathDenial); 5] = [
    (PathDenial::Linkat, v1::PathDenial::Linkat),
    (PathDenial::FollowLink, v1::PathDenial::FollowLink),
    (PathDenial::StickyCreate, v1::PathDenial::StickyCreate),
    (
        PathDenial::StickyCreateFifo,
        v1::PathDenial::StickyCreateFifo,
    ),
    (
        PathDenial::StickyCreateRegular,
        v1::PathDenial::StickyCreateRegular,
    ),
];

pub fn to_proto(a: AnomalyEvent) -> v1::AnomalyEvent {
    let anomaly = match a.anomaly {
        Anomaly::PathDenied {
            denial,
            names,
            object,
        } => v1::anomaly_event::Anomaly::PathDenied(v1::PathDenied {
            denial: DENIALS
                .iter()
                .find(|(d, _)| *d == denial)
                .map(|e| e.1 as i32)
                .unwrap_or(0),
            names,
            object,
        }),
        Anomaly::Login(c) => v1::anomaly_event::Anomaly::Login(v1::LoginChange {
            old_auid: c.old_auid,
            auid: c.auid,
            old_ses: c.old_ses,
            ses: c.ses,
            res: c.res,
            old_exact: c.old_exact,
        }),
        Anomaly::Promiscuous(changes) => v1::anomaly_event::Anomaly::Promiscuous(v1::Promiscuous {
            changes: changes
                .into_iter()
                .map(|c| v1::Promiscuity {
                    dev: c.dev,
                    prom: c.prom,
                    old_prom: c.old_prom,
                    auid: c.auid,
                    uid: c.uid,
                    gid: c.gid,
                    ses: c.ses,
                })
                .collect(),
        }),
    };
    v1::AnomalyEvent {
        anomaly: Some(anomaly),
        syscall: a.syscall.map(|s| v1::SyscallPart {
            syscall: syscall_to_proto(s.syscall),
            number: s.syscall.0,
            success: s.success,
            exit: s.exit,
            regs: s.regs.to_vec(),
            task: Some(task_to_proto(s.task)),
            proctitle: s.proctitle,
        }),
        container: Some(container_to_proto(a.container)),
        paths_truncated: truncated_to_proto(a.paths_truncated),
        key: a.key,
    }
}

pub fn from_proto(
    a: v1::AnomalyEvent,
    stamp: Stamp,
    boot_ns: u64,
) -> Result<AnomalyEvent, ProtoError> {
    let anomaly = match a.anomaly {
        Some(v1::anomaly_event::Anomaly::PathDenied(p)) => Anomaly::PathDenied {
            denial: DENIALS
                .iter()
                .find(|(_, v)| *v as i32 == p.denial)
                .map(|e| e.0)
                .ok_or(ProtoError::UnknownEnum {
                    field: "PathDenied.denial",
                    value: p.denial,
                })?,
            names: p.names,
            object: p.object,
        },
        Some(v1::anomaly_event::Anomaly::Login(c)) => Anomaly::Login(
            move_fields!(c => LoginChange { old_auid, auid, old_ses, ses, res, old_exact }),
        ),
        Some(v1::anomaly_event::Anomaly::Promiscuous(p)) if !p.changes.is_empty() => {
            Anomaly::Promiscuous(
                p.changes
                    .into_iter()
                    .map(|c| {
                        move_fields!(c => Promiscuity { dev, prom, old_prom, auid, uid, gid, ses })
                    })
                    .collect(),
            )
        }
        Some(v1::anomaly_event::Anomaly::Promiscuous(_)) => {
            return Err(ProtoError::MissingField("Promiscuous.changes"))
        }
        None => return Err(ProtoError::MissingField("AnomalyEvent.anomaly")),
    };
    let syscall = match a.syscall {
        Some(s) => Some(SyscallPart {
            // A syscall the enum does not name has the number alone (revision 8; before it,
            // only named ones were written).
            syscall: match s.syscall {
                0 => Syscall(s.number),
                e => syscall_from_proto(e, "SyscallPart.syscall")?,
            },
            success: s.success,
            exit: s.exit,
            regs: regs_from_proto(&s.regs, "SyscallPart.regs")?,
            task: task_from_proto(s.task.ok_or(ProtoError::MissingField("SyscallPart.task"))?),
            proctitle: s.proctitle,
        }),
        None if matches!(anomaly, Anomaly::PathDenied { .. } | Anomaly::Login(_)) => {
            return Err(ProtoError::MissingField("AnomalyEvent.syscall"))
        }
        None => None,
    };
    let c = a
        .container
        .ok_or(ProtoError::MissingField("AnomalyEvent.container"))?;
    Ok(AnomalyEvent {
        stamp,
        boot_ns,
        anomaly,
        syscall,
        container: container_from_proto(c),
        paths_truncated: truncated_from_proto(a.paths_truncated),
        key: a.key,
    })
}
