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
    end_user_record(out, &ev.container, &ev.paths_truncated, &sender, enriched);
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

/// The container fields, auditd's enrichment (`UID= AUID=`) and the end of the line.
pub fn end_user_record(
    out: &mut Vec<u8>,
    container: &Container,
    cut: &PathsTruncated,
    s: &Sender,
    enriched: Option<&dyn Names>,
) {
    push_container(out, container, cut);
    if let Some(names) = enriched {
        push_interp_ids(out, names, &[("UID", s.uid, true), ("AUID", s.auid, true)]);
    }
    out.push(b'\n');
}
