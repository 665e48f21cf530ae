//! Numbers written straight into a record, without `core::fmt`: an exec's records hold some
//! fifty of them, and the formatting machinery was the agent's largest cost after copying.

/// `v` in decimal.
pub fn dec(out: &mut Vec<u8>, v: u64) {
    digits::<10>(out, v, 0);
}

/// `v` in octal, without a prefix (PATH's `mode=`).
pub fn oct(out: &mut Vec<u8>, v: u64) {
    digits::<8>(out, v, 0);
}

/// `v` in base `BASE` (8, 10 or 16; lower-case), zero-padded to `width` digits. A constant base
/// lets the compiler turn the division into shifts and multiplications.
#[inline(always)]
fn digits<const BASE: u64>(out: &mut Vec<u8>, v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // u64::MAX has 22 octal digits.
    let mut buf = [0u8; 22];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = DIGITS[(v % BASE) as usize];
        v /= BASE;
        if v == 0 {
            break;
        }
    }
    for _ in (buf.len() - i)..width.min(buf.len()) {
        out.push(b'0');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Each text followed by its number in decimal.
pub fn fields(out: &mut Vec<u8>, fields: &[(&[u8], u32)]) {
    for &(text, v) in fields {
        out.extend_from_slice(text);
        dec(out, v as u64);
    }
}

/// `v` in decimal with its sign.
pub fn signed(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    dec(out, v.unsigned_abs());
}

/// `v` in lower-case hex, at least `width` digits (zero-padded).
pub fn hex(out: &mut Vec<u8>, v: u64, width: usize) {
    digits::<16>(out, v, width);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_format_writes_them() {
        for v in [
            0u64,
            1,
            7,
            8,
            9,
            10,
            99,
            0o100644,
            1000,
            4294967295,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            dec(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
            let mut out = Vec::new();
            oct(&mut out, v);
            assert_eq!(out, format!("{v:o}").as_bytes());
            for w in [0, 2, 8, 16] {
                let mut out = Vec::new();
                hex(&mut out, v, w);
                assert_eq!(out, format!("{v:0w$x}").as_bytes(), "{v} {w}");
            }
        }
        for v in [0i64, -1, -2, 5, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            signed(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }
}
