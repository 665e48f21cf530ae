//! User-space audit messages as the kernel logs them (`audit_log_user_recv_msg()` then
//! ` msg='%s'`): `pid= uid= auid= ses= msg='TEXT'`, the text exactly as the program sent it.
//!
//! The kernel writes the text raw. A text holding a byte that would end the quoted value or the
//! line (a control byte, DEL, `'`) is written as hex instead (`msg=6F703D…`), so that no sender
//! can forge a record; senders that behave never do that. Fields the sensor adds after it:
//! `sensor_untrusted=1` when the kernel would have refused the message (no CAP_AUDIT_WRITE, or a
//! sender outside the initial pid namespace), `sensor_trunc_msg=1` when the text went on past
//! the kernel's 8560 bytes, then the container fields.

use super::{begin, push_container, push_hex, push_interp_ids, Names};
use crate::{catalog, event::UserMessageEvent};

pub fn write_user_message(out: &mut Vec<u8>, ev: &UserMessageEvent, enriched: Option<&dyn Names>) {
    begin(out, &catalog::record_name(ev.msg_type), &ev.stamp);
    put!(
        out,
        "pid={} uid={} auid={} ses={} msg=",
        ev.pid,
        ev.uid,
        ev.auid,
        ev.ses
    );
    if ev.text.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\'') {
        push_hex(out, &ev.text);
    } else {
        out.push(b'\'');
        out.extend_from_slice(&ev.text);
        out.push(b'\'');
    }
    if !ev.trusted {
        out.extend_from_slice(b" sensor_untrusted=1");
    }
    if ev.truncated {
        out.extend_from_slice(b" sensor_trunc_msg=1");
    }
    push_container(out, &ev.container, &ev.paths_truncated);
    if let Some(names) = enriched {
        let ids = [("UID", ev.uid, true), ("AUID", ev.auid, true)];
        push_interp_ids(out, names, &ids);
    }
    out.push(b'\n');
}

/// `'TEXT'`, or hex when the text could end the quoted value or the line.
pub fn push_user_text(out: &mut Vec<u8>, text: &[u8]) {
    if text.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\'') {
        push_hex(out, text);
    } else {
        out.push(b'\'');
        out.extend_from_slice(text);
        out.push(b'\'');
    }
}

#[cfg(test)]
#[path = "audit_user_tests.rs"]
mod tests;
