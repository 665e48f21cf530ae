//! [`PamEvent`] ⇄ `sensor.v1.PamEvent`, [`UserMessageEvent`] ⇄ `sensor.v1.UserMessageEvent`.

use sensor_proto::v1;

use super::{
    container_from_proto, container_to_proto, truncated_from_proto, truncated_to_proto, ProtoError,
};
use crate::event::{
    LoginAnomaly, ModuleResult, PamEvent, PamFunction, PamItems, Stamp, UserMessageEvent,
};

fn function_to_proto(f: PamFunction) -> i32 {
    PamFunction::ALL
        .iter()
        .position(|&g| g == f)
        .map_or(0, |i| i as i32 + 1)
}

pub fn to_proto(p: PamEvent) -> v1::PamEvent {
    let function = function_to_proto(p.function);
    let items = p.items.map(|i| {
        move_fields!(i => v1::PamItems {
            service, user, rhost, ruser, tty
        })
    });
    let modules = p
        .modules
        .into_iter()
        .map(|m| {
            move_fields!(m => v1::ModuleResult {
                module, function, retval
            })
        })
        .collect();
    let anomalies = p
        .anomalies
        .into_iter()
        .map(|a| {
            move_fields!(a => v1::LoginAnomaly {
                msg_type, module, rule
            })
        })
        .collect();
    let container = Some(container_to_proto(p.container));
    let paths_truncated = truncated_to_proto(p.paths_truncated);
    v1::PamEvent {
        function,
        flags: p.flags,
        retval: p.retval,
        pid: p.pid,
        uid: p.uid,
        auid: p.auid,
        ses: p.ses,
        items,
        modules,
        libpam_reported: p.libpam_reported,
        anomalies,
        exe: p.exe,
        container,
        paths_truncated,
    }
}

pub fn from_proto(p: v1::PamEvent, stamp: Stamp, boot_ns: u64) -> Result<PamEvent, ProtoError> {
    let function = usize::try_from(p.function)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| PamFunction::ALL.get(i).copied())
        .ok_or(ProtoError::UnknownEnum {
            field: "PamEvent.function",
            value: p.function,
        })?;
    let container = container_from_proto(
        p.container
            .clone()
            .ok_or(ProtoError::MissingField("PamEvent.container"))?,
    );
    let paths_truncated = truncated_from_proto(p.paths_truncated);
    let items = p
        .items
        .clone()
        .map(|i| move_fields!(i => PamItems { service, user, rhost, ruser, tty }));
    let modules = p
        .modules
        .iter()
        .cloned()
        .map(|m| move_fields!(m => ModuleResult { module, function, retval }))
        .collect();
    let anomalies = p
        .anomalies
        .iter()
        .cloned()
        .map(|a| move_fields!(a => LoginAnomaly { msg_type, module, rule }))
        .collect();
    Ok(move_fields!(p => PamEvent {
        flags, retval, pid, uid, auid, ses, libpam_reported, exe;
        stamp: stamp,
        boot_ns: boot_ns,
        function: function,
        items: items,
        modules: modules,
        anomalies: anomalies,
        container: container,
        paths_truncated: paths_truncated
    }))
}

pub fn user_message_to_proto(m: UserMessageEvent) -> v1::UserMessageEvent {
    v1::UserMessageEvent {
        msg_type: m.msg_type,
        pid: m.pid,
        uid: m.uid,
        auid: m.auid,
        ses: m.ses,
        text: m.text,
        truncated: m.truncated,
        trusted: m.trusted,
        exe: m.exe,
        container: Some(container_to_proto(m.container)),
        paths_truncated: truncated_to_proto(m.paths_truncated),
    }
}

pub fn user_message_from_proto(
    m: v1::UserMessageEvent,
    stamp: Stamp,
    boot_ns: u64,
) -> Result<UserMessageEvent, ProtoError> {
    let container = container_from_proto(
        m.container
            .clone()
            .ok_or(ProtoError::MissingField("UserMessageEvent.container"))?,
    );
    let paths_truncated = truncated_from_proto(m.paths_truncated);
    Ok(move_fields!(m => UserMessageEvent {
        msg_type, pid, uid, auid, ses, text, truncated, trusted, exe;
        stamp: stamp,
        boot_ns: boot_ns,
        container: container,
        paths_truncated: paths_truncated
    }))
}
