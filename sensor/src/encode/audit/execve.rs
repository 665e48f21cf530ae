//! EXECVE records: the kernel's `audit_log_execve_info()` (kernel/auditsc.c) transcribed, so
//! that long arguments are cut into the same chunks and records as auditd's.

use super::{begin, needs_hex, num, push_hex, push_quoted};
use crate::event::ExecEvent;

/// MAX_EXECVE_AUDIT_LEN in kernel/auditsc.c.
const MAX_EXECVE_AUDIT_LEN: i64 = 7500;
/// `sizeof(abuf)` in `audit_log_execve_info()`.
const ABUF_LEN: i64 = 96;

/// A literal transliteration of `audit_log_execve_info()` (kernel/auditsc.c, Linux 6.x), run
/// over the captured arguments, so that record splits, `aN_len=`, `aN[i]=` chunks and the switch
/// to hex fall exactly where the kernel puts them.
///
/// The kernel reads each argument from user memory into a 7500-byte scratch buffer with
/// `strncpy_from_user(…, len_max - len_buf)`; here the "buffer" is the window
/// `arg[start..start + len_buf]` of the current argument and `pos` plays `p`, which is
/// equivalent because the buffer always holds a contiguous run of one argument. The end of the
/// slice plays the terminating NUL (an embedded NUL, impossible in a real argv, is just data and
/// forces hex).
///
/// Checked byte for byte against auditd 3.0.9 on Linux 6.18 (`audit_golden.rs`): one 9000-byte
/// argument (`a1_len=18000`, chunks of 3732/3746/1522 bytes over three records), four 3000-byte
/// arguments (quoted chunks `a3_len=3000 a3[0]="…"` straddling the record boundary), 1000 short
/// arguments (new record at `a544`), 7499/7500/7501/131071-byte arguments, three 3000-space
/// arguments (hex chunks), and pairs that meet near the boundary (7480+30, 7400+200, 7380+3+7000).
pub(super) fn write_execve(out: &mut Vec<u8>, ev: &ExecEvent) {
    let missing = ev.argv_truncated.map_or(0, |t| u64::from(t.missing_args));
    begin(out, "EXECVE", &ev.stamp);
    out.extend_from_slice(b"argc=");
    num::dec(out, ev.argv.len() as u64 + missing);

    let len_max = MAX_EXECVE_AUDIT_LEN;
    let mut len_rem = len_max;
    let mut len_buf: i64 = 0;
    let mut len_full: i64 = 0;
    let mut len_abuf: i64 = 0;
    let mut require_data = true;
    let mut encode = false;
    let mut iter: u32 = 0;
    let mut arg = 0usize;
    let (mut pos, mut start) = (0usize, 0usize);
    while arg < ev.argv.len() {
        let a = &ev.argv[arg][..];
        if len_full == 0 {
            // strnlen_user(p) - 1; only ever evaluated at the start of an argument.
            len_full = a.len().saturating_sub(pos) as i64;
        }
        if require_data {
            let want = len_max - len_buf;
            let avail = a.len().saturating_sub(pos) as i64;
            let len_tmp;
            if avail >= want {
                // No NUL within `want` bytes: the buffer is full and the argument spans buffers.
                len_tmp = want;
                require_data = true;
                encode = true;
                // Doubled at every refill but printed only after the first; the kernel's long
                // would wrap (-fno-strict-overflow) for arguments far beyond MAX_ARG_STRLEN.
                len_full = len_full.wrapping_mul(2);
                pos += len_tmp as usize;
            } else {
                len_tmp = avail;
                require_data = false;
                if !encode {
                    // The kernel checks the first len_tmp bytes of the buffer, not the new ones.
                    encode = needs_hex(&a[start..start + len_tmp as usize]);
                }
                if len_full < len_max {
                    len_full = if encode { len_tmp * 2 } else { len_tmp };
                }
                pos += len_tmp as usize + 1;
            }
            len_buf += len_tmp;
            len_abuf = if encode { len_buf * 2 } else { len_buf + 2 };
        }
        if ABUF_LEN + 8 > len_rem {
            len_rem = len_max;
            out.push(b'\n');
            begin(out, "EXECVE", &ev.stamp);
        }
        let head = out.len();
        if require_data || iter > 0 || len_abuf + ABUF_LEN > len_rem {
            if iter == 0 {
                put!(out, " a{arg}_len={len_full}");
            }
            put!(out, " a{arg}[{iter}]=");
            iter += 1;
        } else {
            out.extend_from_slice(b" a");
            num::dec(out, arg as u64);
            out.push(b'=');
        }
        len_rem -= (out.len() - head) as i64;
        let mut len_tmp = len_buf;
        if encode {
            if len_abuf > len_rem {
                len_tmp = len_rem / 2;
            }
            push_hex(out, &a[start..start + len_tmp as usize]);
            len_rem -= len_tmp * 2;
            len_abuf -= len_tmp * 2;
        } else {
            if len_abuf > len_rem {
                len_tmp = len_rem - 2;
            }
            push_quoted(out, &a[start..start + len_tmp as usize]);
            len_rem -= len_tmp + 2;
            len_abuf -= len_tmp;
        }
        len_buf -= len_tmp;
        start += len_tmp as usize;
        if len_buf == 0 && !require_data {
            arg += 1;
            iter = 0;
            len_full = 0;
            require_data = true;
            encode = false;
            (pos, start) = (0, 0);
        }
    }
    if let Some(t) = ev.argv_truncated {
        put!(
            out,
            " sensor_trunc_args=\"{}\" sensor_trunc_bytes=\"{}\"",
            t.missing_args,
            t.missing_bytes
        );
    }
    out.push(b'\n');
}
