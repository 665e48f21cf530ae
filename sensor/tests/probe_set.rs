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
        false => tracepoints_ready(),
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
    assert!(line.contains("(--probe-set tracepoints)"), "{line}");
    assert!(line.contains(exec_entry_said()), "{line}");
    assert_eq!(ready, tracepoints_ready());
}

/// Whether the running kernel has the `sched_prepare_exec` tracepoint (6.10 on), as its BTF
/// says.
fn kernel_has_prepare_exec() -> bool {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("the kernel's BTF");
    let name = b"\0btf_trace_sched_prepare_exec\0";
    btf.windows(name.len()).any(|w| w == name)
}

/// The tracepoints' ready line: `sched_prepare_exec` stands in for the two syscall entry
/// tracepoints where the kernel has it.
fn tracepoints_ready() -> &'static str {
    match kernel_has_prepare_exec() {
        true => "sensor: 9 probes attached",
        false => "sensor: 10 probes attached",
    }
}

/// What the tracepoints' line says of where the exec's entry is taken.
fn exec_entry_said() -> &'static str {
    match kernel_has_prepare_exec() {
        true => "); sched_prepare_exec in place of sys_enter_execve, sys_enter_execveat",
        false => "); sys_enter_execve, sys_enter_execveat, since sched_prepare_exec could not be attached: ",
    }
}

/// With the tracepoints, where the kernel has `sched_prepare_exec` the exec's entry is taken
/// there: the kernel then holds no `syscalls:sys_enter_execve` program, whose perf hook costs
/// every syscall of the host (36 ns a `getppid()` here). Where the kernel lacks it (Debian's 6.1
/// in the kernel tier), the syscall tracepoints take the entry. The kernel's own list of loaded
/// programs says which, while the sensor runs.
#[test]
fn the_exec_entry_puts_no_hook_on_every_syscall_where_the_kernel_allows() {
    let _g = exclusive();
    let prepare = kernel_has_prepare_exec();
    let sensor = Sensor::start(&["--probe-set", "tracepoints"]);
    // The kernel truncates a program's name to 15 bytes.
    let names: Vec<String> = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .collect();
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let loaded = |name: &str| names.iter().any(|n| n == &name[..name.len().min(15)]);
    assert_eq!(loaded("sched_prepare_exec"), prepare, "{names:?}");
    // Both syscall entry programs' names come to `sys_enter_execv`.
    assert_eq!(loaded("sys_enter_execve"), !prepare, "{names:?}");
    assert!(loaded("sched_process_exec"), "{names:?}");
}
