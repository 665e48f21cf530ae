//! The kernel's rule for untrusted strings (`audit_log_n_untrustedstring()` in kernel/audit.c):
//! a value is written between double quotes only if every byte is in 0x21..=0x7e and none is `"`;
//! otherwise the whole value is written as upper-case hex, unquoted. Because a quoted value can then
//! never hold a space, a quote, a newline or 0x1d, no untrusted byte can forge a field or a record.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `audit_string_contains_control()`: true when the value must be hex-encoded.
pub fn needs_hex(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'"' || !(0x21..=0x7e).contains(&b))
}

/// `audit_log_n_hex()`: upper-case, two digits per byte.
pub fn push_hex(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() * 2);
    for &b in s {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
}

/// `audit_log_n_string()`: the bytes between double quotes, unchecked (callers decide).
pub fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

/// `audit_log_n_untrustedstring()`.
pub fn push_untrusted(out: &mut Vec<u8>, s: &[u8]) {
    if needs_hex(s) {
        push_hex(out, s);
    } else {
        push_quoted(out, s);
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        // auparse accepts lower case too; the kernel never writes it.
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Hex text back to bytes; `None` unless the text is an even number of hex digits.
pub fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_chunks::<2>()
        .0
        .iter()
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// Whether a value the kernel writes unescaped (`tty=`) can be written as is: only characters of
/// kernel tty names, and not something a reader would take for hex. Anything else is hex, so a
/// hostile value can neither split the record nor be read back as something else.
pub fn raw_safe(s: &[u8]) -> bool {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"/._-:".contains(b);
    s.iter().all(plain) && !is_upper_hex(s)
}

/// An even, non-empty run of `0-9A-F`: what `push_hex` writes.
pub fn is_upper_hex(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len().is_multiple_of(2)
        && s.iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
}
