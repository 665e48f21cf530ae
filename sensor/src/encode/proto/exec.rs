//! `ExecEvent` to and from the schema.

use super::*;

/// Moves the event's fields into the message: the stream is the last to take an event, so its
/// arguments and paths are not copied again.
pub(super) fn exec_to_proto(e: ExecEvent) -> v1::ExecEvent {
    v1::ExecEvent {
        arch: e.arch,
        syscall: syscall_to_proto(e.syscall),
        success: e.success,
        exit: e.exit,
        regs: e.regs.to_vec(),
        task: Some(task_to_proto(e.task)),
        argv: e.argv,
        argv_truncated: e.argv_truncated.map(|a| v1::ArgvTruncation {
            missing_args: a.missing_args,
            missing_bytes: a.missing_bytes,
        }),
        proctitle: e.proctitle,
        cwd: e.cwd,
        paths: e.paths.into_iter().map(path_to_proto).collect(),
        container: Some(container_to_proto(e.container)),
        key: e.key,
        paths_truncated: truncated_to_proto(e.paths_truncated),
        bprm_fcaps: e.bprm_fcaps.map(|b| v1::BprmFcaps {
            file: Some(fcaps_to_proto(b.file)),
            old: Some(
                move_fields!(b.old => v1::Caps { inheritable, permitted, effective, ambient }),
            ),
            new: Some(
                move_fields!(b.new => v1::Caps { inheritable, permitted, effective, ambient }),
            ),
        }),
    }
}

fn fcaps_to_proto(f: FileCaps) -> v1::FileCaps {
    move_fields!(f => v1::FileCaps { permitted, inheritable, effective, version, rootid })
}

fn fcaps_from_proto(f: Option<v1::FileCaps>) -> FileCaps {
    f.map(|f| move_fields!(f => FileCaps { permitted, inheritable, effective, version, rootid }))
        .unwrap_or_default()
}

fn caps_from_proto(c: Option<v1::Caps>) -> Caps {
    c.map(|c| move_fields!(c => Caps { inheritable, permitted, effective, ambient }))
        .unwrap_or_default()
}

fn path_to_proto(p: PathItem) -> v1::PathItem {
    v1::PathItem {
        name: p.name,
        inode: p.inode.map(|i| {
            move_fields!(i => v1::Inode {
                ino, dev_major, dev_minor, mode, ouid, ogid, rdev_major, rdev_minor
            })
        }),
        nametype: match p.nametype {
            NameType::Normal => v1::NameType::Normal,
            NameType::Unknown => v1::NameType::Unknown,
        } as i32,
        fcaps: Some(fcaps_to_proto(p.fcaps)),
    }
}

pub(super) fn exec_from_proto(
    e: v1::ExecEvent,
    stamp: Stamp,
    boot_ns: u64,
) -> Result<ExecEvent, ProtoError> {
    let syscall = syscall_from_proto(e.syscall, "ExecEvent.syscall")
        .ok()
        .filter(|s| [Syscall::EXECVE, Syscall::EXECVEAT].contains(s))
        .ok_or(ProtoError::UnknownEnum {
            field: "ExecEvent.syscall",
            value: e.syscall,
        })?;
    if e.argv.len() > MAX_ARGV {
        return Err(ProtoError::InvalidField {
            field: "ExecEvent.argv",
            reason: format!(
                "{} arguments, more than the {MAX_ARGV} the sensor can write",
                e.argv.len()
            ),
        });
    }
    let regs = regs_from_proto(&e.regs, "ExecEvent.regs")?;
    let t = e.task.ok_or(ProtoError::MissingField("ExecEvent.task"))?;
    let c = e
        .container
        .ok_or(ProtoError::MissingField("ExecEvent.container"))?;
    Ok(ExecEvent {
        stamp,
        boot_ns,
        arch: e.arch,
        syscall,
        success: e.success,
        exit: e.exit,
        regs,
        task: task_from_proto(t),
        argv: e.argv,
        argv_truncated: e.argv_truncated.map(|a| ArgvTruncation {
            missing_args: a.missing_args,
            missing_bytes: a.missing_bytes,
        }),
        proctitle: e.proctitle,
        cwd: e.cwd,
        paths: e
            .paths
            .into_iter()
            .map(path_from_proto)
            .collect::<Result<_, _>>()?,
        container: container_from_proto(c),
        key: e.key,
        paths_truncated: truncated_from_proto(e.paths_truncated),
        bprm_fcaps: e.bprm_fcaps.map(|b| BprmFcaps {
            file: fcaps_from_proto(b.file),
            old: caps_from_proto(b.old),
            new: caps_from_proto(b.new),
        }),
    })
}

fn path_from_proto(p: v1::PathItem) -> Result<PathItem, ProtoError> {
    let nametype = match v1::NameType::try_from(p.nametype) {
        Ok(v1::NameType::Normal) => NameType::Normal,
        Ok(v1::NameType::Unknown) => NameType::Unknown,
        Ok(v1::NameType::Unspecified) | Err(_) => {
            return Err(ProtoError::UnknownEnum {
                field: "PathItem.nametype",
                value: p.nametype,
            })
        }
    };
    Ok(PathItem {
        name: p.name,
        inode: p.inode.map(|i| {
            move_fields!(i => Inode {
                ino, dev_major, dev_minor, mode, ouid, ogid, rdev_major, rdev_minor
            })
        }),
        nametype,
        fcaps: fcaps_from_proto(p.fcaps),
    })
}
