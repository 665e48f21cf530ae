//! An event's records as auditd 3.0.9's dispatcher hands them to a plugin
//! (`audisp/audispd.c` event_loop and write_to_plugin). With `log_format = RAW` (and no node
//! names) auditd dispatches protocol version 0 (`AUDISP_PROTOCOL_VER`), with `ENRICHED` version
//! 1 (`AUDISP_PROTOCOL_VER2`, the records already formatted):
//! - `string`: each record as the line the log holds, `\n` after it (`type=NAME msg=audit(…): …`,
//!   plus the interpreted fields after 0x1d when enriched);
//! - `binary`: per record a `struct audit_dispatcher_header` {ver, hlen 16, type, size} in host
//!   byte order, then `size` bytes of data: the kernel's text (`audit(…): …`) for version 0, the
//!   whole formatted line for version 1; 3.0.9 writes the whole data area of
//!   MAX_AUDIT_MESSAGE_LENGTH (8970) bytes (`writev` of the `event_t`; auditd 4.1.1 and later
//!   write only `size` bytes), which the sensor zeroes past `size`.
//!
//! auditd does not write the EOE record to its log but does dispatch it: the kernel ends every
//! event of a system call with one (`audit_log_exit`), so an event with a SYSCALL record gets
//! `type=EOE msg=audit(…): ` after its records, as plugins (auparse) use it to end an event.

/// MAX_AUDIT_MESSAGE_LENGTH in libaudit.h.
pub const DATA_LEN: usize = 8970;
const HEADER_LEN: usize = 16;
/// AUDISP_PROTOCOL_VER, AUDISP_PROTOCOL_VER2.
const PROTOCOL_VER: u32 = 0;
const PROTOCOL_VER2: u32 = 1;
const AUDIT_EOE: u32 = 1320;

/// One event, framed for each format.
pub struct Framed {
    pub string: Vec<u8>,
    pub binary: Vec<u8>,
    /// Records, EOE included: what auditd's `q_depth` counts.
    pub records: usize,
}

/// The record type a log line names (`type=NAME` or `type=UNKNOWN[n]`).
fn type_number(name: &[u8]) -> Option<u32> {
    let name = std::str::from_utf8(name).ok()?;
    match name
        .strip_prefix("UNKNOWN[")
        .and_then(|n| n.strip_suffix(']'))
    {
        Some(n) => n.parse().ok(),
        None => crate::catalog::find(name).map(|t| t.number),
    }
}

/// `type=NAME msg=TEXT` split into the type number and TEXT (up to an enriched part's 0x1d);
/// `None` for a line of another shape.
fn split_line(line: &[u8]) -> Option<(u32, &[u8])> {
    let rest = line.strip_prefix(b"type=")?;
    let space = rest.iter().position(|&b| b == b' ')?;
    let text = rest[space + 1..].strip_prefix(b"msg=")?;
    let text = text.split(|&b| b == 0x1d).next().unwrap_or(text);
    Some((type_number(&rest[..space])?, text))
}

/// One record's frame: version 0 carries the kernel's `text`, version 1 the whole `line`.
fn push_binary(out: &mut Vec<u8>, rtype: u32, text: &[u8], line: &[u8], enriched: bool) {
    let (ver, data) = if enriched {
        (PROTOCOL_VER2, line)
    } else {
        (PROTOCOL_VER, text)
    };
    let text = &data[..data.len().min(DATA_LEN)];
    for n in [ver, HEADER_LEN as u32, rtype, text.len() as u32] {
        out.extend_from_slice(&n.to_ne_bytes());
    }
    out.extend_from_slice(text);
    out.resize(out.len() + DATA_LEN - text.len(), 0);
}

/// Frames one event (its records as log lines, RAW or `enriched`, each ending in `\n`);
/// `binary` is built only when asked for.
pub fn frame(event: &[u8], binary: bool, enriched: bool) -> Framed {
    let mut f = Framed {
        string: Vec::with_capacity(event.len() + 48),
        binary: Vec::new(),
        records: 0,
    };
    let mut stamp: Option<&[u8]> = None;
    for line in event.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        f.string.extend_from_slice(line);
        f.string.push(b'\n');
        f.records += 1;
        let Some((rtype, text)) = split_line(line) else {
            continue;
        };
        if binary {
            push_binary(&mut f.binary, rtype, text, line, enriched);
        }
        if rtype == 1300 {
            // `audit(SECONDS.MS:SERIAL): ` as the kernel starts every record.
            stamp = text.iter().position(|&b| b == b')').map(|i| &text[..i + 1]);
        }
    }
    if let Some(stamp) = stamp {
        let mut line = b"type=EOE msg=".to_vec();
        line.extend_from_slice(stamp);
        line.extend_from_slice(b": ");
        f.string.extend_from_slice(&line);
        f.string.push(b'\n');
        f.records += 1;
        if binary {
            let text = &line[b"type=EOE msg=".len()..];
            push_binary(&mut f.binary, AUDIT_EOE, text, &line, enriched);
        }
    }
    f
}
