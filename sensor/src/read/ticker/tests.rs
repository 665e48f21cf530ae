use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::{period, Every, Housekeeping, Ticker};

const MS: Duration = Duration::from_millis(1);

/// Whether `notify` holds a permit (a notification nobody waited for yet).
async fn notified(notify: &Notify) -> bool {
    tokio::time::timeout(Duration::ZERO, notify.notified())
        .await
        .is_ok()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_clock_runs_at_the_shorter_of_coalescing_and_housekeeping() {
    assert_eq!(period(50 * MS, 100 * MS), 50 * MS);
    // Drains every fifth tick of a 100 ms clock.
    assert_eq!(period(500 * MS, 100 * MS), 100 * MS);
    // No coalescing: the ring wakes the reader, the clock serves the housekeeping alone.
    assert_eq!(period(Duration::ZERO, 100 * MS), 100 * MS);
    assert_eq!(period(Duration::ZERO, Duration::ZERO), MS);
}

#[test]
fn housekeeping_is_due_every_whole_number_of_ticks_never_later_than_asked() {
    runtime().block_on(async {
        let notify = Arc::new(Notify::new());
        // 100 ms on a 50 ms clock: every second tick.
        let mut h = Housekeeping::new(notify.clone(), 100 * MS, 50 * MS);
        h.ticked(1);
        assert!(!notified(&notify).await);
        h.ticked(1);
        assert!(notified(&notify).await);
        h.ticked(1);
        assert!(!notified(&notify).await);
        // A late wake-up that covers several periods makes it due at once.
        h.ticked(3);
        assert!(notified(&notify).await);
        // 120 ms on a 50 ms clock: every second tick (100 ms), not every third (150).
        let mut h = Housekeeping::new(notify.clone(), 120 * MS, 50 * MS);
        h.ticked(2);
        assert!(notified(&notify).await);
    });
}

#[test]
fn drains_come_every_whole_number_of_ticks_within_the_coalescing_delay() {
    // 500 ms on a 100 ms clock (housekeeping every 100 ms): every fifth tick.
    let mut drains = Every::new(500 * MS, 100 * MS);
    let due: Vec<bool> = (0..10).map(|_| drains.ticked(1)).collect();
    let fifth = [false, false, false, false, true];
    assert_eq!(due, [fifth, fifth].concat());
    // The coalescing delay is the clock's period: every tick.
    let mut drains = Every::new(50 * MS, 50 * MS);
    assert!(drains.ticked(1) && drains.ticked(1));
    // 70 ms on a 50 ms clock: every tick, never later than asked.
    let mut drains = Every::new(70 * MS, 50 * MS);
    assert!(drains.ticked(1));
}

#[test]
fn a_long_drain_makes_housekeeping_due_by_time() {
    runtime().block_on(async {
        let notify = Arc::new(Notify::new());
        let mut h = Housekeeping::new(notify.clone(), 20 * MS, 10 * MS);
        h.check_time();
        assert!(!notified(&notify).await);
        std::thread::sleep(25 * MS);
        h.check_time();
        assert!(notified(&notify).await);
        // Due again only a whole period after that.
        h.check_time();
        assert!(!notified(&notify).await);
    });
}

#[test]
fn the_ticker_counts_the_periods_that_passed_while_nobody_read_it() {
    runtime().block_on(async {
        let mut t = Ticker::new(10 * MS).unwrap();
        let first = tokio::time::timeout(Duration::from_secs(2), t.tick()).await;
        assert!(first.unwrap().unwrap() >= 1);
        // The thread is busy for about four periods: one read tells all of them.
        std::thread::sleep(45 * MS);
        let n = t.tick().await.unwrap();
        assert!(n >= 3, "{n} periods");
        // And then it waits for the next one instead of reporting the same ones again.
        let started = std::time::Instant::now();
        assert!(t.tick().await.unwrap() >= 1);
        assert!(started.elapsed() >= 2 * MS, "{:?}", started.elapsed());
    });
}

#[test]
fn a_new_setting_starts_over_and_forgets_the_expiries_not_read() {
    runtime().block_on(async {
        let mut t = Ticker::new(10 * MS).unwrap();
        std::thread::sleep(35 * MS);
        t.set_period(40 * MS, 100 * MS).unwrap();
        let started = std::time::Instant::now();
        // Not the three expiries pending before: the first one of the new setting.
        assert!(t.tick().await.unwrap() <= 2);
        assert!(started.elapsed() >= 30 * MS, "{:?}", started.elapsed());
        // Then every period.
        let started = std::time::Instant::now();
        t.tick().await.unwrap();
        assert!(started.elapsed() >= 80 * MS, "{:?}", started.elapsed());
    });
}
