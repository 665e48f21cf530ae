//! Wall-clock stamps from the eBPF programs' CLOCK_MONOTONIC readings.
//!
//! Kernel audit stamps an event with the coarse real-time clock at syscall entry
//! (`ktime_get_coarse_real_ts64()`): the time of the last clock tick's update, up to a tick
//! (4 ms at HZ=250) before the true time. Tracing programs may not read the coarse clock
//! (`bpf_ktime_get_coarse_ns()` is refused to them), and the coarse clock is not a function of
//! the fine one (each tick's update lands at a varying phase), so the sensor stamps the true
//! time at syscall entry: never earlier than the kernel's stamp, later by less than a tick. An
//! exec is stamped where its entry is recorded: at `sched_prepare_exec` where the kernel has it,
//! once the exec has opened and read its file, and at the exit for an exec refused before that,
//! so later than the syscall's entry by that work (tens of µs here; more where the open
//! waits), never earlier.

pub(super) fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC now, the clock of the eBPF programs' stamps.
pub fn mono_now() -> u64 {
    clock(libc::CLOCK_MONOTONIC)
}

/// Wall-clock nanoseconds of a monotonic reading, with the offset read now (between two
/// monotonic readings), so that a wall-clock change applies from the next event on, as it does
/// for the kernel's stamps.
pub fn wall_ns(mono_ns: u64) -> u64 {
    let before = clock(libc::CLOCK_MONOTONIC);
    let real = clock(libc::CLOCK_REALTIME);
    let after = clock(libc::CLOCK_MONOTONIC);
    let mid = before / 2 + after / 2;
    mono_ns.wrapping_add(real.wrapping_sub(mid))
}

/// CLOCK_BOOTTIME nanoseconds of a monotonic reading, for the protobuf stream's `boot_ns`. The
/// two clocks differ by the time spent suspended; the difference is read between two monotonic
/// readings and rounded to the microsecond, so a host never suspended gets exactly 0 and not the
/// few nanoseconds between the reads.
pub fn boot_ns(mono_ns: u64) -> u64 {
    let before = clock(libc::CLOCK_MONOTONIC);
    let boot = clock(libc::CLOCK_BOOTTIME);
    let after = clock(libc::CLOCK_MONOTONIC);
    let mid = before / 2 + after / 2;
    let suspended = boot.saturating_sub(mid).saturating_add(500) / 1000 * 1000;
    mono_ns.wrapping_add(suspended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monotonic_reading_becomes_the_wall_clock_of_that_moment() {
        let mono = clock(libc::CLOCK_MONOTONIC);
        let real = clock(libc::CLOCK_REALTIME);
        assert!(wall_ns(mono).abs_diff(real) < 1_000_000);
    }

    #[test]
    fn boot_time_is_never_before_monotonic_time() {
        let mono = clock(libc::CLOCK_MONOTONIC);
        let boot = boot_ns(mono);
        let suspended =
            clock(libc::CLOCK_BOOTTIME).wrapping_sub(clock(libc::CLOCK_MONOTONIC)) as i64;
        // The two clock reads above may be a preemption apart on a busy machine (seen: over
        // 2 µs while other builds ran): a millisecond is still far below any suspend.
        assert!(boot >= mono && ((boot - mono) as i64).abs_diff(suspended) < 1_000_000);
    }
}
