//! A pass over one envelope's bytes before prost decodes it, counting the elements of every
//! repeated field. Decoding allocates per element far more than the element's two bytes on the
//! wire (24 bytes for an empty `bytes`, about a hundred for an empty `PathItem`), so a message
//! under the size cap could still expand a hundredfold. A count over its bound is refused,
//! naming the field; anything malformed is left for prost to refuse.

use super::super::{ProtoError, MAX_ARGV};

/// Bound on the lists no real event comes near: an exec's PATH items (a handful), a PAM stack's
/// modules (a few dozen), a denied path's names (two), one syscall's promiscuity changes.
/// Decoded, 4096 of the largest (`PathItem`) take under half a MiB.
const MAX_ITEMS: usize = 4096;
/// A syscall has six argument registers.
const MAX_REGS: usize = 6;

/// A repeated field of a message: its number, name, bound, and whether it holds varints that
/// may be packed into one length-delimited run.
struct List(u32, &'static str, usize, bool);

/// What of a message the pass looks at: its repeated fields, and the message fields that lead
/// to more of them.
struct Msg {
    lists: &'static [List],
    subs: &'static [(u32, &'static Msg)],
}

static EXEC: Msg = Msg {
    lists: &[
        List(5, "ExecEvent.regs", MAX_REGS, true),
        List(7, "ExecEvent.argv", MAX_ARGV, false),
        List(11, "ExecEvent.paths", MAX_ITEMS, false),
    ],
    subs: &[],
};
static PATH_DENIED: Msg = Msg {
    lists: &[List(2, "PathDenied.names", MAX_ITEMS, false)],
    subs: &[],
};
static PROMISCUOUS: Msg = Msg {
    lists: &[List(1, "Promiscuous.changes", MAX_ITEMS, false)],
    subs: &[],
};
static SYSCALL_PART: Msg = Msg {
    lists: &[List(4, "SyscallPart.regs", MAX_REGS, true)],
    subs: &[],
};
static ANOMALY: Msg = Msg {
    lists: &[],
    subs: &[(1, &PATH_DENIED), (2, &PROMISCUOUS), (3, &SYSCALL_PART)],
};
static PAM: Msg = Msg {
    lists: &[
        List(9, "PamEvent.modules", MAX_ITEMS, false),
        List(11, "PamEvent.anomalies", MAX_ITEMS, false),
    ],
    subs: &[],
};
/// `Envelope`: the bodies that hold lists.
static ENVELOPE: Msg = Msg {
    lists: &[],
    subs: &[(16, &EXEC), (19, &ANOMALY), (21, &PAM)],
};

/// Refuses an envelope (the message at byte `offset` of the stream) whose decoding would hold
/// more elements in a list than its bound. Occurrences add up, as prost merges a message field
/// met twice and concatenates its lists.
pub(super) fn check(message: &[u8], offset: u64) -> Result<(), ProtoError> {
    let mut counts = Vec::new();
    match walk(message, &ENVELOPE, &mut counts) {
        Ok(()) => Ok(()),
        Err((name, max)) => Err(ProtoError::InvalidField {
            field: name,
            reason: format!(
                "the message at byte {offset} holds more than {max} elements, \
                 more than the sensor ever writes"
            ),
        }),
    }
}

type Counts = Vec<(&'static str, usize)>;

fn walk(mut b: &[u8], msg: &Msg, counts: &mut Counts) -> Result<(), (&'static str, usize)> {
    while let Some((key, rest)) = varint(b) {
        let field = key >> 3;
        let list = msg.lists.iter().find(|l| u64::from(l.0) == field);
        b = match key & 7 {
            0 => match varint(rest) {
                Some((_, rest)) => {
                    if let Some(l) = list {
                        add(counts, l, 1)?;
                    }
                    rest
                }
                None => return Ok(()),
            },
            1 => match rest.get(8..) {
                Some(rest) => rest,
                None => return Ok(()),
            },
            5 => match rest.get(4..) {
                Some(rest) => rest,
                None => return Ok(()),
            },
            2 => {
                let Some((len, rest)) = varint(rest) else {
                    return Ok(());
                };
                let Some(payload) = usize::try_from(len).ok().and_then(|n| rest.get(..n)) else {
                    return Ok(());
                };
                match list {
                    // A packed run: one element per byte that ends a varint.
                    Some(l) if l.3 => {
                        add(counts, l, payload.iter().filter(|&&x| x < 0x80).count())?
                    }
                    Some(l) => add(counts, l, 1)?,
                    None => {
                        if let Some((_, sub)) =
                            msg.subs.iter().find(|(n, _)| u64::from(*n) == field)
                        {
                            walk(payload, sub, counts)?;
                        }
                    }
                }
                &rest[payload.len()..]
            }
            // Groups and unknown wire types: prost refuses them.
            _ => return Ok(()),
        };
    }
    Ok(())
}

fn add(counts: &mut Counts, list: &List, n: usize) -> Result<(), (&'static str, usize)> {
    let i = match counts.iter().position(|(name, _)| *name == list.1) {
        Some(i) => i,
        None => {
            counts.push((list.1, 0));
            counts.len() - 1
        }
    };
    counts[i].1 += n;
    if counts[i].1 > list.2 {
        return Err((list.1, list.2));
    }
    Ok(())
}

/// A varint at the start of `b` and what follows it; `None` when it is cut or too long.
fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}
