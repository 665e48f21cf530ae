//! Maps shared by every probe: the ring buffer, per-CPU scratch space for events too large for
//! the 512-byte eBPF stack, and per-CPU counters so that no loss is ever silent.
//!
//! `aya_log_ebpf` calls are diagnostics only, on failure paths beside a counter (the counters
//! stay the record of what was lost). They are off unless the agent runs with `--ebpf-log`: it
//! sets `AYA_LOG_LEVEL` (read-only data) to 0 before load, and the verifier then removes each
//! call's body as dead code (`sensor/src/ebpf_log.rs`).

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
};
use aya_log_ebpf::warn;
use sensor_common::{Counters, ExecArgs, ExecEnter, ExecPath, UserMsg, CTR_RINGBUF_FULL};

/// The agent resizes it at load time (`--ring-buffer-mib`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// One element: every counter of this CPU, so that the agent's periodic check is one lookup.
#[map]
pub static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static SCRATCH_ENTER: PerCpuArray<ExecEnter> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SCRATCH_ARGS: PerCpuArray<ExecArgs> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SCRATCH_PATH: PerCpuArray<ExecPath> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SCRATCH_USER_MSG: PerCpuArray<UserMsg> = PerCpuArray::with_max_entries(1, 0);

/// The ring buffer's wake-up flag for every record, which the agent switches as it runs
/// (`sensor/src/read/clocked.rs`): 0 (the kernel wakes the reader when it has caught up) while
/// the reader waits for records, `BPF_RB_NO_WAKEUP` while it drains on its clock: then no
/// record costs an interrupt.
#[map]
pub static WAKE_FLAGS: Array<u64> = Array::with_max_entries(1, 0);

/// The flags to submit a record with.
#[inline(always)]
pub fn wake() -> u64 {
    match WAKE_FLAGS.get_ptr(0) {
        // Volatile: the agent writes it at any time.
        Some(flags) => unsafe { core::ptr::read_volatile(flags) },
        None => 0,
    }
}

#[inline(always)]
pub fn count(index: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(0) {
        // Per-CPU slot: no other writer can race this increment.
        if let Some(n) = unsafe { (*c).get_mut(index as usize) } {
            *n += 1;
        }
    }
}

/// Sends the first `len` bytes of `*data` (at most `size_of::<T>()`), counting a full ring.
#[inline(always)]
pub fn output_prefix<T>(data: *const T, len: usize) -> bool {
    let max = core::mem::size_of::<T>();
    let len = if len > max { max } else { len };
    // SAFETY: `data` points to a live `T` (a map value or a local) and `len <= size_of::<T>()`.
    let bytes = unsafe { core::slice::from_raw_parts(data as *const u8, len) };
    if EVENTS.output(bytes, wake()).is_err() {
        count(CTR_RINGBUF_FULL);
        warn!(&(), "ring buffer full: a {}-byte record dropped", len);
        return false;
    }
    true
}
