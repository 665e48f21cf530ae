//! User-space audit messages as the kernel logs them (`audit_log_user_recv_msg()` then
//! ` msg='%s'`): `pid= uid= auid= ses= msg='TEXT'`, the text exactly as the program sent it.
//!
//! The kernel writes the text raw. A text holding a byte that would end the quoted value or the
//! line (a control byte, DEL, `'`) is written as hex instead (`msg=6F703D…`), so that no sender
//! can forge a record; senders that behave never do that. Fields the sensor adds after it:
//! `sensor_untrusted=1` when the kernel would have refused the message (no CAP_AUDIT_WRITE in
//! the initial user namespace, or a sender outside the initial pid namespace: see
//! `normalise::user::kernel_takes`), `sensor_trunc_msg=1` when the text went on past the
//! kernel's 8560 bytes, then the container fields.

use super::{begin, push_container, push_hex, push_interp_ids, Names};
use crate::{
    catalog,
    event::{Container, PathsTruncated, Stamp, UserMessageEvent},
};

pub fn write_user_message(out: &mut Vec<u8>, ev: &UserMessageEvent, enriched: Option<&dyn Names>) {
    let sender = Sender {
        pid: ev.pid,
        uid: ev.uid,
        auid: ev.auid,
        ses: ev.ses,
    };
    begin_user_record(out, ev.msg_type, &ev.stamp, &sender, &ev.text);
    if !ev.trusted {
        out.extend_from_slice(b" sensor_untrusted=\"1\"");
    }
    if ev.truncated {
        out.extend_from_slice(b" sensor_trunc_msg=\"1\"");
    }
    let inner = MsgIds {
        msg_type: ev.msg_type,
        text: &ev.text,
    };
    end_user_record(
        out,
        &ev.container,
        &ev.paths_truncated,
        &sender,
        inner,
        enriched,
    );
}

/// Who sent a user message, as the kernel prefixes it.
pub struct Sender {
    pub pid: u32,
    pub uid: u32,
    pub auid: u32,
    pub ses: u32,
}

/// `type=T msg=audit(…): pid= uid= auid= ses= msg='TEXT'`, the text in hex when it could end
/// the quoted value or the line.
pub fn begin_user_record(out: &mut Vec<u8>, msg_type: u32, stamp: &Stamp, s: &Sender, text: &[u8]) {
    begin(out, &catalog::record_name(msg_type), stamp);
    put!(
        out,
        "pid={} uid={} auid={} ses={} msg=",
        s.pid,
        s.uid,
        s.auid,
        s.ses
    );
    if text.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\'') {
        push_hex(out, text);
    } else {
        out.push(b'\'');
        out.extend_from_slice(text);
        out.push(b'\'');
    }
}

/// The text of a message, whose own id fields auditd interprets too.
pub struct MsgIds<'a> {
    pub msg_type: u32,
    pub text: &'a [u8],
}

/// The container fields, auditd's enrichment (`UID= AUID=`, then the ids inside the text, e.g.
/// sshd's and shadow's `id=`) and the end of the line.
pub fn end_user_record(
    out: &mut Vec<u8>,
    container: &Container,
    cut: &PathsTruncated,
    s: &Sender,
    inner: MsgIds,
    enriched: Option<&dyn Names>,
) {
    push_container(out, container, cut);
    if let Some(names) = enriched {
        let mut ids = vec![
            ("UID".to_string(), s.uid, true),
            ("AUID".to_string(), s.auid, true),
        ];
        ids.extend(text_ids(inner));
        let ids: Vec<(&str, u32, bool)> =
            ids.iter().map(|(k, v, u)| (k.as_str(), *v, *u)).collect();
        push_interp_ids(out, names, &ids);
    }
    out.push(b'\n');
}

/// auparse's uid and gid field names (`auparse/typetab.h`).
const UID_FIELDS: [&str; 13] = [
    "auid",
    "uid",
    "euid",
    "suid",
    "fsuid",
    "ouid",
    "oauid",
    "old-auid",
    "iuid",
    "id",
    "inode_uid",
    "sauid",
    "obj_uid",
];
const GID_FIELDS: [&str; 9] = [
    "obj_gid",
    "gid",
    "egid",
    "sgid",
    "fsgid",
    "ogid",
    "igid",
    "inode_gid",
    "new_gid",
];
const ADD_GROUP: u32 = 1116;
const DEL_GROUP: u32 = 1117;
const GRP_MGMT: u32 = 1132;

/// The id fields of a message's text, in order, as auditd's ENRICHED format interprets them:
/// upper-cased name, the id, and whether it is a user (`id=` of a group record is a group, as
/// `auparse_interp_adjust_type()` says). Only decimal values are taken; a text sent in hex
/// (which the kernel would have written raw) is not looked into.
fn text_ids(m: MsgIds) -> Vec<(String, u32, bool)> {
    let mut out = Vec::new();
    if m.text.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\'') {
        return out;
    }
    for word in m.text.split(|&b| b == b' ') {
        let Some(eq) = word.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (Ok(key), Ok(value)) = (
            std::str::from_utf8(&word[..eq]),
            std::str::from_utf8(&word[eq + 1..]),
        ) else {
            continue;
        };
        let group_id = key == "id" && matches!(m.msg_type, ADD_GROUP | DEL_GROUP | GRP_MGMT);
        let is_user = UID_FIELDS.contains(&key) && !group_id;
        if !is_user && !GID_FIELDS.contains(&key) && !group_id {
            continue;
        }
        let id = match value.parse::<i64>() {
            Ok(-1) => u32::MAX,
            Ok(v) if (0..=u32::MAX as i64).contains(&v) => v as u32,
            _ => continue,
        };
        out.push((key.to_ascii_uppercase(), id, is_user));
    }
    out
}
