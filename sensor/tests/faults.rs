//! A bad day in production: an output that cannot be written, a full file system, a log moved
//! away, a stop in the middle of an exec storm. Each output fails alone and says so once; the
//! sensor goes on and stops quickly.

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{
    exclusive, last_lost, marker, scratch, text, wait_until, whole_records, Sensor, Tmpfs,
};

#[test]
fn a_full_device_fails_alone() {
    let _g = exclusive();
    let dir = scratch("devfull");
    let good = dir.join("good.log");
    let sensor = Sensor::start(&[
        "--output",
        "audit:/dev/full",
        "--output",
        &format!("audit:{}", good.display()),
        "--lost-interval-ms",
        "100",
    ]);
    let m = marker("devfull");
    assert!(wait_until(Duration::from_secs(3), || text(&good).contains(&m)));
    let m2 = marker("devfull2");
    assert!(wait_until(Duration::from_secs(3), || {
        text(&good).contains(&m2) && last_lost(&text(&good), "unwritten").is_some_and(|n| n > 0)
    }));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let said = stderr.matches("cannot write /dev/full").count();
    assert_eq!(said, 1, "reported once, with its path: {stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tiny tmpfs fills up: the file never ends in half a record, the other output goes on, and
/// writing resumes by itself once there is room again.
#[test]
fn a_full_file_system_recovers_without_half_records() {
    let _g = exclusive();
    let dir = scratch("tmpfs");
    let tmpfs = Tmpfs::mount(&dir.join("mnt"), "64k");
    let mnt = tmpfs.0.clone();
    let small = mnt.join("sensor.log");
    let good = dir.join("good.log");
    let filler = mnt.join("filler");
    let sensor = Sensor::start(&[
        "--output",
        &format!("audit:{}", small.display()),
        "--output",
        &format!("audit:{}", good.display()),
        "--lost-interval-ms",
        "100",
    ]);
    // Fill it: execs with long arguments, until the file system is full.
    let arg = "f".repeat(3000);
    for _ in 0..60 {
        Command::new("/bin/true").arg(&arg).status().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    // And whatever room is left, so that not even a short record fits.
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    let full = marker("full");
    assert!(wait_until(Duration::from_secs(3), || text(&good).contains(&full)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        whole_records(&text(&small)),
        "half a record in the full file"
    );
    // Room again: writing resumes by itself.
    let _ = std::fs::remove_file(&filler);
    let before = std::fs::metadata(&small).unwrap().len();
    std::fs::write(&small, b"").unwrap();
    let back = marker("back");
    assert!(
        wait_until(Duration::from_secs(3), || text(&small).contains(&back)),
        "writing did not resume (the file had {before} bytes)"
    );
    assert!(whole_records(&text(&small)));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write {}", small.display())),
        "{stderr}"
    );
    assert!(stderr.contains("again"), "{stderr}");
    drop(tmpfs);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `mv` then SIGHUP, as logrotate does; and a log deleted outright is recreated.
#[test]
fn rotation_by_mv_and_sighup_and_deletion() {
    let _g = exclusive();
    let dir = scratch("rotate");
    let log = dir.join("sensor.log");
    let sensor = Sensor::start(&[
        "--output",
        &format!("audit:{}", log.display()),
        "--lost-interval-ms",
        "100",
    ]);
    let first = marker("first");
    assert!(wait_until(Duration::from_secs(3), || text(&log).contains(&first)));
    std::fs::rename(&log, dir.join("sensor.log.1")).unwrap();
    sensor.signal(libc::SIGHUP);
    // The marker after the reopen: one run before it may still be written to the moved file.
    assert!(
        wait_until(Duration::from_secs(3), || log.exists()),
        "no new log after SIGHUP"
    );
    let second = marker("second");
    assert!(
        wait_until(Duration::from_secs(3), || text(&log).contains(&second)),
        "not reopened after SIGHUP"
    );
    assert!(!text(&dir.join("sensor.log.1")).contains(&second));
    std::fs::remove_file(&log).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let third = marker("third");
    assert!(
        wait_until(Duration::from_secs(3), || text(&log).contains(&third)),
        "a deleted log was not recreated"
    );
    let (status, stderr) = sensor.stop();
    assert!(
        status.success(),
        "SIGHUP must not stop the sensor: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGTERM in the middle of an exec storm: the last record is out (`sensor: stopped`) within 2 s,
/// every exec written whole. Detaching the uprobes may take the kernel longer: the process
/// exit is only bounded.
#[test]
fn a_stop_under_a_storm_is_quick() {
    let _g = exclusive();
    let dir = scratch("stop-storm");
    let log = dir.join("sensor.log");
    let mut sensor = Sensor::start(&["--output", &format!("audit:{}", log.display())]);
    let storm: Vec<_> = (0..4)
        .map(|_| {
            Command::new("sh")
                .args(["-c", "while :; do /bin/true storm; done"])
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    sensor.signal(libc::SIGTERM);
    let stopped = sensor.stopped_at(Duration::from_secs(20));
    let status = sensor.wait(Duration::from_secs(20));
    let exited = t.elapsed();
    let last_record = stopped.map(|at| at - t).unwrap_or(exited);
    for mut s in storm {
        let _ = s.kill();
        let _ = s.wait();
    }
    eprintln!("stop under a storm: last record after {last_record:?}, exit after {exited:?}");
    assert!(stopped.is_some() && status.success());
    assert!(last_record < Duration::from_secs(2), "{last_record:?}");
    let written = text(&log);
    assert!(whole_records(&written));
    assert!(
        written.matches("storm").count() > 100,
        "the storm was recorded"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An output that cannot be opened is named, and nothing is attached; option values past their
/// bounds are refused before anything starts.
#[test]
fn bad_outputs_and_options_are_refused_at_start() {
    let _g = exclusive();
    let run = |args: &[&str]| {
        Command::new(common::sensor_bin())
            .arg("run")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--output", "audit:/nonexistent-dir/sensor.log"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/nonexistent-dir/sensor.log"), "{stderr}");
    assert!(!stderr.contains("probes attached"), "{stderr}");
    for args in [
        ["--coalesce-ms", "18446744073709551615"],
        ["--lost-interval-ms", "0"],
        ["--channel-capacity", "0"],
        ["--ring-buffer-mib", "3"],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("probes attached"),
            "{args:?}"
        );
    }
}
