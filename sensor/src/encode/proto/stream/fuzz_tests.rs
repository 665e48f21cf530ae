//! Fuzzing the protobuf reader and its conversion, which `sensor decode` and `compare` run on
//! files anyone may hand them: arbitrary bytes, and hostile edits of real envelopes, through
//! `DelimitedReader`, `from_envelope` and the audit text writer never panic, and the heap they
//! hold is bounded by the message cap, whatever lengths and counts the bytes claim.
//!
//! The heap is measured with a counting allocator, per thread so that tests running beside
//! these do not disturb the count.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use proptest::prelude::*;

use super::super::{from_envelope, HostInfo, StreamWriter, MAX_ARGV};
use super::*;
use crate::{encode::audit::write_event, event::Event, testing::events};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: nothing to count while the thread's locals are torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call goes to the system allocator; the count only reads the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new);
        if !q.is_null() {
            track(new as isize - layout.size() as isize);
        }
        q
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Runs `f`; returns the most heap this thread held at once meanwhile, over what it held before.
fn peak_heap(f: impl FnOnce()) -> usize {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    f();
    (PEAK.with(Cell::get) - start).max(0) as usize
}

/// What `sensor decode` does with a stream: every envelope read, converted and written as audit
/// text, one at a time.
fn decode_all(bytes: &[u8], max_len: u64) {
    let mut text = Vec::new();
    // Past an error the reader goes on only where framing is intact, as `decode` would not.
    for env in DelimitedReader::with_max_len(bytes, max_len).flatten() {
        if let Ok(ev) = from_envelope(env) {
            text.clear();
            write_event(&mut text, &ev, None);
        }
    }
}

/// The heap one message may take, for a cap of `max_len` bytes: its bytes, and what prost and
/// the model make of them. An element of a list costs at most about 128 bytes decoded (a
/// `PathItem`) for two on the wire, and a list may be twice its length while it grows, so
/// 256 times the cap, plus a little for the audit text of an event and fixed costs.
fn bound(max_len: u64) -> usize {
    256 * max_len as usize + (64 << 10)
}

/// Real envelopes of every kind, framed: what the hostile edits start from.
fn real_stream() -> Vec<u8> {
    let mut evs = vec![
        Event::Exec(events::full_exec()),
        Event::Lost(events::lost()),
        events::abend(),
    ];
    evs.extend(events::anomaly_shapes().into_iter().map(Event::Anomaly));
    let (mut out, writer) = (Vec::new(), StreamWriter::new(&HostInfo::default()));
    for ev in evs {
        writer.write(&mut out, ev);
    }
    out
}

/// Edits: overwrite a byte, insert one, cut the stream, or write a varint (a length or a count
/// a hostile writer would choose) over what is there.
#[derive(Clone, Debug)]
enum Edit {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Cut(prop::sample::Index),
    Varint(prop::sample::Index, u64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Edit::Cut),
        (
            any::<prop::sample::Index>(),
            prop_oneof![any::<u64>(), 0u64..300, Just(u64::MAX)]
        )
            .prop_map(|(i, v)| Edit::Varint(i, v)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        if bytes.is_empty() {
            return;
        }
        match e {
            Edit::Set(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            Edit::Insert(i, b) => bytes.insert(i.index(bytes.len()), *b),
            Edit::Cut(i) => bytes.truncate(i.index(bytes.len())),
            Edit::Varint(i, v) => {
                let i = i.index(bytes.len());
                let mut varint = Vec::new();
                prost::encoding::encode_varint(*v, &mut varint);
                let end = (i + varint.len()).min(bytes.len());
                bytes.splice(i..end, varint);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_within_the_cap(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        max_len in prop_oneof![Just(1024u64), Just(DEFAULT_MAX_MESSAGE_LEN)],
    ) {
        let peak = peak_heap(|| decode_all(&bytes, max_len));
        // Whatever the cap, a message is at most the bytes present.
        let present = (bytes.len() as u64).min(max_len);
        prop_assert!(peak <= bound(present), "{peak} bytes for {} bytes in", bytes.len());
    }

    #[test]
    fn hostile_edits_of_real_envelopes_never_panic_and_stay_within_the_cap(
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut bytes = real_stream();
        apply(&mut bytes, &edits);
        let peak = peak_heap(|| decode_all(&bytes, DEFAULT_MAX_MESSAGE_LEN));
        prop_assert!(peak <= bound(bytes.len() as u64), "{peak} bytes for {}", bytes.len());
    }

    /// Lengths claiming anything up to the cap, over a few bytes: the reader takes what is
    /// there, not what is claimed.
    #[test]
    fn claimed_lengths_allocate_only_what_is_present(
        frames in prop::collection::vec(
            (prop_oneof![0u64..64, 0u64..=DEFAULT_MAX_MESSAGE_LEN, any::<u64>()],
             prop::collection::vec(any::<u8>(), 0..64)),
            1..8,
        ),
    ) {
        let mut bytes = Vec::new();
        for (len, payload) in &frames {
            prost::encoding::encode_varint(*len, &mut bytes);
            bytes.extend_from_slice(payload);
        }
        let peak = peak_heap(|| decode_all(&bytes, DEFAULT_MAX_MESSAGE_LEN));
        prop_assert!(peak <= bound(bytes.len() as u64), "{peak} bytes for {}", bytes.len());
    }
}

#[test]
fn the_counting_allocator_counts() {
    let peak = peak_heap(|| drop(std::hint::black_box(vec![0u8; 1 << 20])));
    assert!((1 << 20..(1 << 20) + 4096).contains(&peak), "{peak}");
}

#[test]
fn thirty_million_empty_arguments_take_no_memory() {
    // The 60 MB message that took 1 GB: refused from its length prefix.
    let bytes = tests::empty_args_message(30_000_000);
    let peak = peak_heap(|| decode_all(&bytes, DEFAULT_MAX_MESSAGE_LEN));
    assert!(peak < 64 << 10, "{peak}");
}

#[test]
fn arguments_over_the_bound_are_refused_before_they_expand() {
    // 2 MiB on the wire; decoded, 1 Mi empty arguments would take 24 MiB and more.
    let bytes = tests::empty_args_message(MAX_ARGV + 1);
    let peak = peak_heap(|| decode_all(&bytes, DEFAULT_MAX_MESSAGE_LEN));
    assert!(
        peak < bytes.len() + (64 << 10),
        "{peak} for {}",
        bytes.len()
    );
}

#[test]
fn the_largest_real_exec_decodes_in_bounded_memory() {
    // 699,050 empty arguments, the most a successful exec has: decoded and written as text.
    let bytes = tests::empty_args_message(699_050);
    let peak = peak_heap(|| decode_all(&bytes, DEFAULT_MAX_MESSAGE_LEN));
    assert!(peak < 64 << 20, "{peak}");
    let env = DelimitedReader::new(bytes.as_slice())
        .next()
        .unwrap()
        .unwrap();
    assert!(from_envelope(env).is_ok());
}
