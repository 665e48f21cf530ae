//! The probe set: said in one line just before the ready line, and what it says holds. A kernel
//! that refuses trampolines (this project's CI VM) gets the tracepoints with the reason, and
//! `--probe-set trampolines` fails there; one that allows them (Debian's 6.1 in the kernel tier,
//! which sets `SENSOR_IT_EXPECT_PROBE_SET`) gets them, and insisting on them starts.

mod common;

use std::process::Command;

use common::{exclusive, sensor_bin, Sensor};

/// The two lines the sensor ends its start with: the probe set, then the ready line.
fn last_start_lines(args: &[&str]) -> (String, String) {
    let sensor = Sensor::start(args);
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let ready = lines
        .iter()
        .position(|l| l.contains("probes attached"))
        .unwrap_or_else(|| panic!("no ready line: {stderr}"));
    assert!(ready > 0, "{stderr}");
    (lines[ready - 1].to_string(), lines[ready].to_string())
}

#[test]
fn the_probe_set_is_said_and_holds() {
    let _g = exclusive();
    let (set_line, ready) = last_start_lines(&[]);
    let trampolines = set_line.starts_with("sensor: probe set fentry/fexit: ");
    assert!(
        trampolines || set_line.starts_with("sensor: probe set tracepoints: "),
        "{set_line}"
    );
    // The ready line stays as scripts know it, with the count of the set attached.
    let expected = match trampolines {
        true => "sensor: 19 probes attached",
        false => "sensor: 10 probes attached",
    };
    assert_eq!(ready, expected);
    if let Ok(want) = std::env::var("SENSOR_IT_EXPECT_PROBE_SET") {
        assert!(
            set_line.starts_with(&format!("sensor: probe set {want}: ")),
            "expected {want}: {set_line}"
        );
    }
    // Insisting on trampolines: where they were refused, the sensor does not start and says
    // why; where they were taken, it starts with them.
    if trampolines {
        let (line, _) = last_start_lines(&["--probe-set", "trampolines"]);
        assert!(
            line.starts_with("sensor: probe set fentry/fexit: "),
            "{line}"
        );
    } else {
        // `timeout`: a sensor that started anyway would run until stopped.
        let out = Command::new("timeout")
            .args(["60", sensor_bin(), "run", "--probe-set", "trampolines"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("--probe-set trampolines: "), "{err}");
        assert!(!err.contains("probes attached"), "{err}");
    }
    // The tracepoints, on any kernel, when asked for.
    let (line, ready) = last_start_lines(&["--probe-set", "tracepoints"]);
    assert!(
        line.starts_with("sensor: probe set tracepoints: "),
        "{line}"
    );
    assert!(line.ends_with("(--probe-set tracepoints)"), "{line}");
    assert_eq!(ready, "sensor: 10 probes attached");
}
