//! The agent at idle: only its loss checks wake it, and a record still comes out within its
//! coalescing delay. Host only (the kernel tier's guest runs under emulation, where timers are
//! not what this counts).

mod common;

use std::time::{Duration, Instant};

use common::{exclusive, marker, scratch, text, wait_until, Sensor};

/// Voluntary context switches of every thread of `pid` so far: each is one sleep, so one
/// wake-up (preemptions, which a loaded machine adds, are not counted).
fn wakeups(pid: u32) -> u64 {
    let mut n = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:") {
                n += line
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
    }
    n
}

/// An idle agent wakes only for its loss checks (every 2 s here; 10 a second with the defaults):
/// the programs' first record wakes it. Before, two tokio intervals woke it about 35 times a
/// second (they fire apart, and tokio's timer wheel wakes once more where a deadline crosses its
/// 64 ms slots); one clock for drains and checks, 20. Marker execs after the idle spell, each
/// after the agent went idle again, are in the log within their coalescing delay (50 ms) and a
/// margin, far less than a loss check's interval: the record woke the agent.
#[test]
fn an_idle_agent_wakes_only_for_its_checks_and_still_records_at_once() {
    let _g = exclusive();
    let dir = scratch("idle");
    let log = dir.join("audit.log");
    let output = format!("audit:{}", log.display());
    let sensor = Sensor::start(&["--output", &output, "--lost-interval-ms", "2000"]);
    // Whatever starting up left behind (lookups, the first drains) settles.
    std::thread::sleep(Duration::from_secs(1));
    let before = wakeups(sensor.pid());
    let window = Duration::from_secs(4);
    std::thread::sleep(window);
    let per_second = (wakeups(sensor.pid()) - before) as f64 / window.as_secs_f64();

    let mut lateness = Vec::new();
    for i in 0..4 {
        let ran = Instant::now();
        let tag = marker(&format!("idle{i}"));
        let seen = wait_until(Duration::from_secs(3), || text(&log).contains(&tag));
        lateness.push(seen.then(|| ran.elapsed()));
        // Long enough for a drain to find nothing: the agent is idle again.
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("{per_second:.1} wake-ups a second; markers recorded after {lateness:?}");
    let (status, err) = sensor.stop();
    assert!(status.success(), "{err}");
    for late in lateness {
        let late = late.expect("a marker exec was not recorded");
        assert!(
            late < Duration::from_millis(300),
            "recorded {late:?} after it ran"
        );
    }
    assert!(
        per_second <= 3.0,
        "{per_second:.1} wake-ups a second at idle"
    );
}
