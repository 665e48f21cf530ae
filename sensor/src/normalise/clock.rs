//! The kernel's time stamps from the eBPF programs' CLOCK_MONOTONIC_COARSE readings.
//!
//! Kernel audit stamps an event with the coarse real-time clock at syscall entry
//! (`ktime_get_coarse_real_ts64()`), so its milliseconds are those of the last clock tick. The
//! programs read the coarse monotonic clock of the same tick; adding the real-time offset gives
//! the kernel's stamp to the nanosecond, and the offset is read per event, so a wall-clock change
//! applies from the next event on, as it does for the kernel.

pub(super) fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_REALTIME_COARSE minus CLOCK_MONOTONIC_COARSE. Both advance together at each tick, so
/// the difference is exact when both were read within one tick: checked by reading the
/// monotonic clock on both sides.
fn coarse_real_offset() -> u64 {
    let mut offset = 0;
    for _ in 0..4 {
        let before = clock(libc::CLOCK_MONOTONIC_COARSE);
        let real = clock(libc::CLOCK_REALTIME_COARSE);
        let after = clock(libc::CLOCK_MONOTONIC_COARSE);
        offset = real.wrapping_sub(after);
        if before == after {
            break;
        }
    }
    offset
}

/// Wall-clock nanoseconds of a coarse monotonic reading: the kernel's audit stamp.
pub fn wall_ns(mono_ns: u64) -> u64 {
    mono_ns.wrapping_add(coarse_real_offset())
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
    fn a_coarse_reading_becomes_the_coarse_wall_clock_of_its_tick() {
        for _ in 0..100 {
            let mono = clock(libc::CLOCK_MONOTONIC_COARSE);
            let real = clock(libc::CLOCK_REALTIME_COARSE);
            if clock(libc::CLOCK_MONOTONIC_COARSE) != mono {
                continue;
            }
            assert_eq!(wall_ns(mono), real);
            return;
        }
        panic!("no two coarse readings within one tick in 100 tries");
    }

    #[test]
    fn boot_time_is_never_before_monotonic_time() {
        let mono = clock(libc::CLOCK_MONOTONIC);
        let boot = boot_ns(mono);
        let suspended =
            clock(libc::CLOCK_BOOTTIME).wrapping_sub(clock(libc::CLOCK_MONOTONIC)) as i64;
        assert!(boot >= mono && ((boot - mono) as i64).abs_diff(suspended) < 2_000);
    }
}
