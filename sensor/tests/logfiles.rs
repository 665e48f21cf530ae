//! `sensor run --config auditd.conf`: the log files auditd.conf describes, under the real sensor.
//! Rotation by size and by SIGUSR1 with num_logs (read back with auditd's own `ausearch`), a
//! small tmpfs filling up through space_left, admin_space_left and disk_full with auditd's
//! actions, resumed with SIGUSR2, while another output goes on; SIGHUP reloading the file; a
//! file auditd would refuse refused.

mod common;

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{exclusive, last_lost, marker, scratch, sensor_bin, text, wait_until, Sensor, Tmpfs};

/// An exec whose EXECVE record is about `kib` KiB.
fn big_exec(tag: &str, kib: usize) {
    Command::new("/bin/true")
        .arg(tag)
        .arg("a".repeat(kib << 10))
        .status()
        .unwrap();
}

fn numbered(log: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", log.display()))
}

/// An auditd.conf in `dir` (root-owned, 0640): the log in `log`, RAW, with `lines` after.
fn config(dir: &Path, log: &Path, lines: &str) -> PathBuf {
    let path = dir.join("auditd.conf");
    std::fs::write(
        &path,
        format!(
            "log_file = {}\nlog_format = RAW\nspace_left = 75\nadmin_space_left = 50\n{lines}",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    path
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o777
}

#[test]
fn rotation_by_size_and_by_sigusr1_keeps_num_logs_that_ausearch_reads() {
    let _g = exclusive();
    let dir = scratch("logrotate");
    let log = dir.join("audit.log");
    let conf = config(
        &dir,
        &log,
        "max_log_file = 1\nmax_log_file_action = ROTATE\nnum_logs = 3\nflush = INCREMENTAL_ASYNC\nfreq = 20\n",
    );
    let sensor = Sensor::start(&["--config", conf.to_str().unwrap()]);
    // About 2.6 MiB of records (a 32 KiB argument makes some 66 KiB of EXECVE records, as the
    // kernel splits it): two rotations at 1 MiB, all of it kept in three files.
    for i in 0..40 {
        big_exec(&format!("sensorit-big{i}"), 32);
    }
    let last = marker("last-of-storm");
    assert!(wait_until(Duration::from_secs(5), || text(&log).contains(&last)));
    assert!(numbered(&log, 1).exists() && numbered(&log, 2).exists());
    assert!(
        !numbered(&log, 3).exists(),
        "num_logs 3: audit.log, .1, .2 only"
    );
    assert_eq!(mode(&log), 0o600);
    assert_eq!(
        mode(&numbered(&log, 1)),
        0o400,
        "a rotated log is read-only"
    );
    // Every exec of the storm is in exactly one file, oldest first.
    let all: String = [numbered(&log, 2), numbered(&log, 1), log.clone()]
        .iter()
        .map(|p| text(p))
        .collect();
    let order: Vec<usize> = (0..40)
        .map(|i| {
            let tag = format!("\"sensorit-big{i}\"");
            assert_eq!(all.matches(&tag).count(), 1, "one EXECVE each: {tag}");
            all.find(&tag).unwrap()
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "in order across the files"
    );

    // SIGUSR1: rotated now, between two markers.
    let before = marker("before-usr1");
    assert!(wait_until(Duration::from_secs(3), || text(&log).contains(&before)));
    sensor.signal(libc::SIGUSR1);
    assert!(wait_until(Duration::from_secs(3), || text(&numbered(
        &log, 1
    ))
    .contains(&before)));
    let after = marker("after-usr1");
    assert!(wait_until(Duration::from_secs(3), || text(&log).contains(&after)));
    assert!(!text(&log).contains(&before));

    // auditd's own tool reads a rotated file.
    let out = Command::new("ausearch")
        .args([
            "-if",
            numbered(&log, 1).to_str().unwrap(),
            "-m",
            "EXECVE",
            "-i",
        ])
        .output()
        .expect("ausearch (auditd's package)");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&before));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("Audit daemon rotating log files"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 3 MiB tmpfs fills up: space_left (2 MB) and admin_space_left (1 MB) are said, the full
/// disk suspends logging as disk_full_action says; the other output goes on and counts what the
/// log could not take; SIGUSR2 resumes once there is room. No half record anywhere.
#[test]
fn a_full_small_file_system_runs_auditds_actions_and_resumes_on_sigusr2() {
    let _g = exclusive();
    let dir = scratch("logfull");
    let tmpfs = Tmpfs::mount(&dir.join("mnt"), "3m");
    let mnt = tmpfs.0.clone();
    let log = mnt.join("audit.log");
    let good = dir.join("good.log");
    let conf = config(
            &dir,
            &log,
            "space_left_action = SYSLOG\nadmin_space_left_action = SYSLOG\ndisk_full_action = SUSPEND\n",
        )
        .to_str()
        .unwrap()
        .to_string();
    std::fs::write(
        &conf,
        text(Path::new(&conf))
            .replace("space_left = 75", "space_left = 2")
            .replace("admin_space_left = 50", "admin_space_left = 1"),
    )
    .unwrap();
    let sensor = Sensor::start(&[
        "--config",
        &conf,
        "--output",
        &format!("audit:{}", good.display()),
        "--lost-interval-ms",
        "100",
    ]);
    for i in 0..60 {
        big_exec(&format!("sensorit-fill{i}"), 64);
    }
    let full = marker("when-full");
    assert!(wait_until(Duration::from_secs(5), || text(&good).contains(&full)));
    assert!(wait_until(Duration::from_secs(3), || {
        last_lost(&text(&good), "unwritten").is_some_and(|n| n > 0)
    }));
    assert!(!text(&log).contains(&full), "suspended: not written");
    let logged = text(&log);
    assert!(logged.ends_with('\n') && logged.lines().all(|l| l.starts_with("type=")));
    // Room again, but SUSPEND waits for SIGUSR2.
    std::fs::remove_file(&log).unwrap();
    let waiting = marker("room-again");
    assert!(wait_until(Duration::from_secs(3), || text(&good).contains(&waiting)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!text(&log).contains(&waiting));
    sensor.signal(libc::SIGUSR2);
    std::thread::sleep(Duration::from_millis(200));
    let back = marker("resumed");
    assert!(
        wait_until(Duration::from_secs(3), || text(&log).contains(&back)),
        "SIGUSR2 did not resume logging"
    );
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    for said in [
            "Audit daemon is low on disk space for logging. If the admin space left threshold is reached, audit will syslog. If the disk becomes full, audit will suspend.",
            "Audit daemon is low on disk space for logging. If the disk becomes full, audit will suspend.",
            "Audit daemon has no space left on logging partition",
            "Audit daemon is suspending logging due to no space left on logging partition.",
            "Audit daemon resumed logging.",
        ] {
            assert_eq!(stderr.matches(said).count(), 1, "{said}: {stderr}");
        }
    drop(tmpfs);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_config_auditd_refuses_is_refused_and_sighup_reloads() {
    let _g = exclusive();
    let dir = scratch("logconf");
    let log = dir.join("audit.log");
    let conf = config(&dir, &log, "");

    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o646)).unwrap();
    let out = Command::new(sensor_bin())
        .args(["run", "--config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is world writable"),
        "{err}"
    );
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();

    let sensor = Sensor::start(&["--config", conf.to_str().unwrap()]);
    let first = marker("first");
    assert!(wait_until(Duration::from_secs(3), || text(&log).contains(&first)));

    // A broken file on SIGHUP: the one in force stays.
    std::fs::write(&conf, text(&conf) + "colour = blue\n").unwrap();
    sensor.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let still = marker("still");
    assert!(wait_until(Duration::from_secs(3), || text(&log).contains(&still)));

    // A new log file and group on SIGHUP: the next records go there, 0640, group adm (4).
    let moved = dir.join("sub");
    std::fs::create_dir_all(&moved).unwrap();
    let log2 = moved.join("audit.log");
    config(&dir, &log2, "log_group = 4\n");
    sensor.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    let second = marker("second");
    assert!(wait_until(Duration::from_secs(3), || text(&log2).contains(&second)));
    assert!(!text(&log).contains(&second));
    let m = std::fs::metadata(&log2).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o640, 0, 4));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("Unknown keyword \"colour\"")
            && stderr.contains("the configuration in force stays"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The log's directory removed under it: said once, what cannot be written counted, the other
/// output goes on; the directory back, writing resumes by itself (disk_error_action SYSLOG).
#[test]
fn a_removed_log_directory_is_said_once_counted_and_recovered_from() {
    let _g = exclusive();
    let dir = scratch("logdirgone");
    let logdir = dir.join("audit");
    std::fs::create_dir_all(&logdir).unwrap();
    let log = logdir.join("audit.log");
    let good = dir.join("good.log");
    let conf = config(&dir, &log, "disk_error_action = SYSLOG\n");
    let sensor = Sensor::start(&[
        "--config",
        conf.to_str().unwrap(),
        "--output",
        &format!("audit:{}", good.display()),
        "--lost-interval-ms",
        "100",
    ]);
    let first = marker("dir-there");
    assert!(wait_until(Duration::from_secs(3), || text(&log).contains(&first)));
    std::fs::remove_dir_all(&logdir).unwrap();
    let gone: Vec<String> = (0..3).map(|i| marker(&format!("dir-gone{i}"))).collect();
    assert!(wait_until(Duration::from_secs(3), || {
        let g = text(&good);
        gone.iter().all(|m| g.contains(m)) && last_lost(&g, "unwritten").is_some_and(|n| n >= 3)
    }));
    std::fs::create_dir_all(&logdir).unwrap();
    let back = marker("dir-back");
    assert!(
        wait_until(Duration::from_secs(3), || text(&log).contains(&back)),
        "writing did not resume"
    );
    assert!(
        gone.iter().all(|m| !text(&log).contains(m)),
        "records of the gap are counted, not written late"
    );
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let said = stderr
        .matches(&format!("cannot write {}", log.display()))
        .count();
    assert_eq!(said, 1, "said once: {stderr}");
    assert!(
        stderr.contains(&format!("writing {} again", log.display())),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
