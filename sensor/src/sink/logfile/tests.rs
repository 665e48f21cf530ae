use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf};

use super::{rotate::numbered, LogFile};
use crate::config::{AuditdConf, LogFormat, SizeAction};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sensor-log-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn conf(dir: &std::path::Path) -> AuditdConf {
    AuditdConf {
        log_file: dir.join("audit.log"),
        log_format: LogFormat::Raw,
        ..AuditdConf::default()
    }
}

/// An event of about 64 KiB: line `n` of a record, padded.
fn event(n: u32) -> Vec<u8> {
    format!(
        "type=TEST msg=audit(1.000:{n}): pad={}\n",
        "x".repeat(65_000)
    )
    .into_bytes()
}

fn serials(text: &[u8]) -> Vec<u32> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let s = String::from_utf8_lossy(l);
            s.split(':')
                .nth(1)
                .unwrap()
                .split(')')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn rotates_on_size_keeping_num_logs_files_in_order() {
    let d = dir("size");
    let c = AuditdConf {
        max_log_file: 1,
        num_logs: 3,
        max_log_file_action: SizeAction::Rotate,
        ..conf(&d)
    };
    let mut log = LogFile::open(c).unwrap();
    for n in 0..60 {
        log.push(&event(n));
        log.flush();
    }
    let log_path = d.join("audit.log");
    assert!(numbered(&log_path, 1).exists() && numbered(&log_path, 2).exists());
    assert!(
        !numbered(&log_path, 3).exists(),
        "num_logs 3: audit.log, .1, .2"
    );
    // Each rotated file holds what crossed 1 MiB: 17 events of 64 KiB; read back in order.
    let mut all = Vec::new();
    for p in [
        numbered(&log_path, 2),
        numbered(&log_path, 1),
        log_path.clone(),
    ] {
        all.extend(serials(&fs::read(&p).unwrap()));
    }
    assert_eq!(all, (60 - all.len() as u32..60).collect::<Vec<_>>());
    assert_eq!(
        serials(&fs::read(numbered(&log_path, 1)).unwrap()).len(),
        17
    );
    assert_eq!(mode(&log_path), 0o600);
    assert_eq!(
        mode(&numbered(&log_path, 1)),
        0o400,
        "a rotated log is read-only"
    );
    assert_eq!(log.unwritten, 0);
}

#[test]
fn keep_logs_shifts_every_log_and_drops_none() {
    let d = dir("keep");
    let c = AuditdConf {
        num_logs: 2,
        max_log_file: 100,
        max_log_file_action: SizeAction::KeepLogs,
        ..conf(&d)
    };
    let mut log = LogFile::open(c).unwrap();
    for n in 0..5 {
        log.push(&event(n));
        log.flush();
        log.rotate_now();
    }
    let p = d.join("audit.log");
    for n in 1..=5 {
        assert_eq!(serials(&fs::read(numbered(&p, n)).unwrap()), vec![5 - n]);
    }
}

#[test]
fn no_rotation_below_two_logs_and_excess_logs_removed() {
    let d = dir("few");
    let p = d.join("audit.log");
    let mut log = LogFile::open(AuditdConf {
        num_logs: 1,
        ..conf(&d)
    })
    .unwrap();
    log.push(&event(1));
    log.flush();
    log.rotate_now();
    assert!(!numbered(&p, 1).exists());
    drop(log);
    for n in 3..6 {
        fs::write(numbered(&p, n), b"old").unwrap();
    }
    let c = AuditdConf {
        num_logs: 3,
        max_log_file_action: SizeAction::Rotate,
        ..conf(&d)
    };
    let _log = LogFile::open(c).unwrap();
    assert!(
        (3..6).all(|n| !numbered(&p, n).exists()),
        "beyond num_logs: removed"
    );
}

#[test]
fn log_group_makes_it_0640_with_that_group() {
    use std::os::unix::fs::MetadataExt;
    let d = dir("group");
    let log = LogFile::open(AuditdConf {
        log_group: 4,
        ..conf(&d)
    })
    .unwrap();
    let m = fs::metadata(d.join("audit.log")).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o640, 0, 4));
    drop(log);
}

#[test]
fn suspend_on_size_counts_what_it_cannot_write_until_resumed() {
    let d = dir("suspend");
    let c = AuditdConf {
        max_log_file: 1,
        max_log_file_action: SizeAction::Suspend,
        ..conf(&d)
    };
    let mut log = LogFile::open(c).unwrap();
    for n in 0..20 {
        log.push(&event(n));
        log.flush();
    }
    // 17 events cross 1 MiB; the other 3 are counted.
    assert_eq!(serials(&fs::read(d.join("audit.log")).unwrap()).len(), 17);
    assert_eq!(log.unwritten, 3);
    // Resumed with the log still too large: suspended again at once, as auditd does.
    log.resume();
    log.push(&event(98));
    log.flush();
    assert_eq!(log.unwritten, 4);
    // The admin moves the log away, then SIGUSR2: a new log.
    fs::rename(d.join("audit.log"), d.join("kept")).unwrap();
    log.resume();
    log.push(&event(99));
    log.flush();
    assert_eq!(serials(&fs::read(d.join("audit.log")).unwrap()), vec![99]);
    assert_eq!(log.unwritten, 4);
}

#[test]
fn a_moved_log_is_reopened_at_its_path() {
    let d = dir("moved");
    let mut log = LogFile::open(conf(&d)).unwrap();
    log.push(&event(1));
    log.flush();
    fs::rename(d.join("audit.log"), d.join("elsewhere")).unwrap();
    assert!(log.moved());
    log.reopen_moved();
    log.push(&event(2));
    log.flush();
    assert_eq!(serials(&fs::read(d.join("audit.log")).unwrap()), vec![2]);
}
