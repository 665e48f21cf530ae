//! Audit text back into records: the sensor's own log and auditd's (ENRICHED or RAW), so that
//! tests and `compare` can set one against the other field by field.
//!
//! The grammar is auditd's: `[node=N ]type=T msg=audit(SEC.MSEC:SERIAL): body[0x1d enriched]`.
//! In the body, fields are `name=value` separated by spaces; a value is `"…"` (kernel-quoted,
//! never holds `"`), `'…'` (a userspace `msg='…'` that holds fields of its own), `{ … }` (auditd's
//! SADDR interpretation), or runs to the next space. Words without `=` (AVC's `denied { read }`)
//! are kept as fields with an empty value so that nothing is silently dropped.

use std::collections::HashMap;

use super::audit::hexq::decode_hex;

mod exec;
mod lines;
pub use exec::{exec_event, execve_argv};
pub use lines::{LogError, LogReader, MAX_LINE};

/// `name=value` pairs in order, both as written.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One line of audit text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// `node=` prefix, written by auditd only when `name_format` is not NONE.
    pub node: Option<Vec<u8>>,
    pub rtype: Vec<u8>,
    pub sec: u64,
    pub msec: u32,
    pub serial: u64,
    /// Fields in order, values as written (quotes and hex kept); see [`decode_value`].
    pub fields: Fields,
    /// Fields after the 0x1d separator (auditd's ENRICHED interpretations).
    pub enriched: Fields,
}

impl Record {
    /// The raw text of the first field called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        find(&self.fields, name)
    }
    /// The raw text of the first enriched field called `name`.
    pub fn get_enriched(&self, name: &[u8]) -> Option<&[u8]> {
        find(&self.enriched, name)
    }
    /// The stamp shared by all records of one event.
    pub fn event_key(&self) -> (u64, u32, u64) {
        (self.sec, self.msec, self.serial)
    }
}

fn find<'a>(fields: &'a [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an audit record: {0}")]
    Header(&'static str),
    #[error("field {field}: no closing {quote}")]
    Unterminated { field: String, quote: char },
    #[error("EXECVE: {0}")]
    Execve(String),
    #[error("{rtype}: missing or bad {field}")]
    Field { rtype: String, field: &'static str },
    /// Not a `source` (which would print the error twice in a chain): the line's error is part
    /// of this one's text.
    #[error("line {line}: {error}")]
    Line { line: usize, error: Box<ParseError> },
}

/// Parses one line (a trailing `\n` or `\r\n` is ignored).
pub fn parse_line(line: &[u8]) -> Result<Record, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rec = Record::default();
    let mut rest = line;
    if let Some(r) = rest.strip_prefix(b"node=") {
        let sp = r
            .iter()
            .position(|&b| b == b' ')
            .ok_or(ParseError::Header("node"))?;
        rec.node = Some(r[..sp].to_vec());
        rest = &r[sp + 1..];
    }
    let r = rest
        .strip_prefix(b"type=")
        .ok_or(ParseError::Header("no type="))?;
    let sp = r
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::Header("type"))?;
    rec.rtype = r[..sp].to_vec();
    let r = r[sp + 1..]
        .strip_prefix(b"msg=audit(")
        .ok_or(ParseError::Header("no msg=audit("))?;
    let (sec, r) = number(r, b'.')?;
    let (msec, r) = number(r, b':')?;
    let (serial, r) = number(r, b')')?;
    let r = r
        .strip_prefix(b":")
        .ok_or(ParseError::Header("no ':' after stamp"))?;
    (rec.sec, rec.serial) = (sec, serial);
    rec.msec = u32::try_from(msec).map_err(|_| ParseError::Header("msec"))?;
    let (body, enriched) = match r.iter().position(|&b| b == super::audit::INTERP_SEPARATOR) {
        Some(i) => (&r[..i], Some(&r[i + 1..])),
        None => (r, None),
    };
    rec.fields = fields(body)?;
    if let Some(e) = enriched {
        rec.enriched = fields(e)?;
    }
    Ok(rec)
}

fn number(s: &[u8], end: u8) -> Result<(u64, &[u8]), ParseError> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 19 || s.get(n) != Some(&end) {
        return Err(ParseError::Header("bad stamp"));
    }
    let v = std::str::from_utf8(&s[..n])
        .ok()
        .and_then(|t| t.parse().ok());
    Ok((v.ok_or(ParseError::Header("bad stamp"))?, &s[n + 1..]))
}

fn fields(mut s: &[u8]) -> Result<Fields, ParseError> {
    let mut out = Vec::new();
    loop {
        while let [b' ', r @ ..] = s {
            s = r;
        }
        if s.is_empty() {
            return Ok(out);
        }
        let key_end = s
            .iter()
            .position(|&b| b == b'=' || b == b' ')
            .unwrap_or(s.len());
        let key = s[..key_end].to_vec();
        if s.get(key_end) != Some(&b'=') {
            out.push((key, Vec::new()));
            s = &s[key_end..];
            continue;
        }
        let v = &s[key_end + 1..];
        let unterminated = |quote| ParseError::Unterminated {
            field: String::from_utf8_lossy(&key).into_owned(),
            quote,
        };
        let len = match v.first() {
            Some(b'"') => {
                2 + v[1..]
                    .iter()
                    .position(|&b| b == b'"')
                    .ok_or_else(|| unterminated('"'))?
            }
            // A msg='…' may hold a quote of its own; it is the last field, so take the last one.
            Some(b'\'') => {
                1 + v[1..]
                    .iter()
                    .rposition(|&b| b == b'\'')
                    .ok_or_else(|| unterminated('\''))?
                    + 1
            }
            Some(b'{') => {
                1 + v
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or_else(|| unterminated('}'))?
            }
            _ => v.iter().position(|&b| b == b' ').unwrap_or(v.len()),
        };
        out.push((key, v[..len].to_vec()));
        s = &v[len..];
    }
}

/// The bytes a value stands for, for fields written with the untrusted-string rule: `"…"` and
/// `'…'` give the inner bytes, an even run of hex digits gives the decoded bytes, anything else
/// (`(null)`, `(none)`, `?`, numbers with an odd digit count) is returned as written. Do not use it
/// on numeric fields: `ouid=10` would decode to the byte 0x10.
pub fn decode_value(v: &[u8]) -> Vec<u8> {
    match v {
        [b'"', inner @ .., b'"'] | [b'\'', inner @ .., b'\''] => inner.to_vec(),
        _ if !v.is_empty() => decode_hex(v).unwrap_or_else(|| v.to_vec()),
        _ => Vec::new(),
    }
}

/// Parses a whole log; empty lines are skipped, errors name their 1-based line.
pub fn parse_log(text: &[u8]) -> Result<Vec<Record>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() || line == b"\r" {
            continue;
        }
        out.push(parse_line(line).map_err(|e| ParseError::Line {
            line: i + 1,
            error: Box::new(e),
        })?);
    }
    Ok(out)
}

/// Groups records into events by their stamp, events in order of first appearance and records in
/// their original order (the kernel may interleave the records of concurrent events).
pub fn group_events(records: Vec<Record>) -> Vec<Vec<Record>> {
    let mut index: HashMap<(u64, u32, u64), usize> = HashMap::new();
    let mut events: Vec<Vec<Record>> = Vec::new();
    for rec in records {
        let i = *index.entry(rec.event_key()).or_insert_with(|| {
            events.push(Vec::new());
            events.len() - 1
        });
        events[i].push(rec);
    }
    events
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
