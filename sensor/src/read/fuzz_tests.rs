//! Fuzzing the ring-buffer decoder: a record the kernel side got wrong (or a corrupted ring)
//! must be an error, never a panic or a read past the record. Arbitrary bytes, and records of
//! every kind with arbitrary contents, lengths and length fields.

use std::mem::offset_of;

use proptest::prelude::*;
use sensor_common as wire;

use super::{DecodeError, Record};

/// Every kind on the wire, with its full size and its length field (offset, width), if any.
fn kinds() -> Vec<(u32, usize, Option<usize>)> {
    use wire::*;
    vec![
        (
            KIND_EXEC_ENTER,
            size_of::<ExecEnter>(),
            Some(offset_of!(ExecEnter, filename_len)),
        ),
        (
            KIND_EXEC_SCHED,
            size_of::<ExecSched>(),
            Some(offset_of!(ExecSched, interp_len)),
        ),
        (
            KIND_EXEC_ARGS,
            size_of::<ExecArgs>(),
            Some(offset_of!(ExecArgs, len)),
        ),
        (
            KIND_EXEC_PATH,
            size_of::<ExecPath>(),
            Some(offset_of!(ExecPath, len)),
        ),
        (
            KIND_EXEC_EXIT,
            size_of::<ExecExit>(),
            Some(offset_of!(ExecExit, proctitle_len)),
        ),
        (KIND_ABEND, size_of::<Abend>(), None),
        (
            KIND_PROMISC,
            size_of::<Promisc>(),
            Some(offset_of!(Promisc, text_len)),
        ),
        (
            KIND_SYSCALL_EXIT,
            size_of::<SyscallExit>(),
            Some(offset_of!(SyscallExit, proctitle_len)),
        ),
        (
            KIND_USER_MSG,
            size_of::<UserMsg>(),
            Some(offset_of!(UserMsg, len)),
        ),
        (KIND_PAM_CALL, size_of::<PamCall>(), None),
        (KIND_PAM_MODULE, size_of::<PamModule>(), None),
    ]
}

/// The bytes a decoded record holds that came from a variable-length tail.
fn tail_len(r: &Record) -> usize {
    match r {
        Record::ExecEnter(e) => e.filename.as_ref().map_or(0, Vec::len),
        Record::ExecArgs(a) => a.data.len(),
        Record::Path(p) => p.data.len(),
        Record::UserMsg(m) => m.text.len(),
        _ => 0,
    }
}

/// A length field's value: small, near the fixed arrays' sizes, negative, or anything.
fn length() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..64,
        (0u32..64).prop_map(|d| 4096 + d - 32),
        (0u32..64).prop_map(|d| wire::ARGS_CHUNK as u32 + d - 32),
        (0u32..64).prop_map(|d| wire::USER_MSG_TEXT_MAX as u32 + d - 32),
        (1u32..4096).prop_map(|e| (-(e as i32)) as u32),
        Just(u32::MAX),
        Just(i32::MAX as u32),
        any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Record::try_from(bytes.as_slice());
    }

    /// A record of a known kind, cut anywhere or padded, with arbitrary bytes and length field:
    /// decoded, or refused, and what it holds lies within it.
    #[test]
    fn records_of_every_kind_with_hostile_lengths(
        which in any::<prop::sample::Index>(),
        size in any::<prop::sample::Index>(),
        extra in 0usize..64,
        fill in any::<u64>(),
        len in length(),
        patch in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
    ) {
        let kinds = kinds();
        let (kind, full, len_at) = kinds[which.index(kinds.len())];
        // Anywhere from empty to a little past the whole struct.
        let n = size.index(full + extra + 1);
        let mut state = fill | 1;
        let mut bytes: Vec<u8> = (0..n)
            .map(|_| {
                // xorshift: arbitrary contents without a strategy per byte.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for (i, b) in patch {
            if !bytes.is_empty() {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
        }
        if bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&kind.to_ne_bytes());
        }
        if let Some(at) = len_at {
            if bytes.len() >= at + 4 {
                bytes[at..at + 4].copy_from_slice(&len.to_ne_bytes());
            }
        }
        match Record::try_from(bytes.as_slice()) {
            Ok(r) => prop_assert!(tail_len(&r) <= bytes.len()),
            Err(e) => {
                let _ = e.to_string();
                prop_assert!(!matches!(e, DecodeError::UnknownKind(k) if k == kind && n >= 4));
            }
        }
    }
}

#[test]
fn a_length_field_past_the_record_is_refused() {
    use wire::*;
    let mut bytes = vec![0u8; EXEC_ARGS_FIXED + 10];
    bytes[..4].copy_from_slice(&KIND_EXEC_ARGS.to_ne_bytes());
    for (len, ok) in [(10u32, true), (11, false), (u32::MAX, false)] {
        let at = offset_of!(ExecArgs, len);
        bytes[at..at + 4].copy_from_slice(&len.to_ne_bytes());
        match Record::try_from(bytes.as_slice()) {
            Ok(Record::ExecArgs(a)) if ok => assert_eq!(a.data.len(), 10),
            Err(DecodeError::BadLength { field: "len", .. }) if !ok => {}
            other => panic!("len {len}: {other:?}"),
        }
    }
}
