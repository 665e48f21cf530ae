//! What the guest's serial console says: the tests' results and the bench's output, between
//! the markers the guest's `/init` prints around them.

/// The lines between a `begin` line and an `end` line, without the kernel's own (`[  1.23]`).
pub fn between(console: &str, begin: &str, end: &str) -> Option<String> {
    let mut lines = console.lines().map(|l| l.trim_end_matches('\r'));
    lines.find(|l| *l == begin)?;
    let mut out = String::new();
    for line in lines {
        if line == end {
            return Some(out);
        }
        if !line.starts_with('[') {
            out.push_str(line);
            out.push('\n');
        }
    }
    Some(out + "(no end: the guest stopped)\n")
}

/// `test NAME ... ok|FAILED|ignored` lines, per VMTEST block (binary name without its hash);
/// a binary that ended without its summary (a crash, the timeout) is one failed entry.
pub fn parse(console: &str) -> Vec<(String, String, bool)> {
    let mut results = Vec::new();
    let mut current: Option<(String, bool)> = None;
    for line in console.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(b) = line.strip_prefix("VMTEST-BEGIN ") {
            let name = b.rsplit_once('-').map_or(b, |(n, _)| n);
            current = Some((name.to_string(), false));
        } else if let Some(rest) = line.strip_prefix("VMTEST-END ") {
            // Without its summary line the binary died (a crash, a signal): one failure.
            if let Some((bin, false)) = current.take() {
                results.push((bin, format!("(binary exited: {rest})"), false));
            }
        } else if let Some((bin, summary)) = &mut current {
            if line.starts_with("test result: ") {
                *summary = true;
            } else if let Some((name, verdict)) = line
                .strip_prefix("test ")
                .and_then(|t| t.rsplit_once(" ... "))
            {
                results.push((bin.clone(), name.to_string(), verdict == "ok"));
            }
        }
    }
    if let Some((bin, _)) = current {
        results.push((bin, "(no end: the guest stopped)".into(), false));
    }
    results
}

#[cfg(test)]
mod tests {
    use super::{between, parse};

    #[test]
    fn the_bench_text_without_the_kernels_lines() {
        let console = "VM: kernel 6.1\r\nVMBENCH-BEGIN\r\nround 0 none 12 ns\r\n[  3.1] audit: x\r\ntable\r\nVMBENCH-END\r\n";
        assert_eq!(
            between(console, "VMBENCH-BEGIN", "VMBENCH-END").as_deref(),
            Some("round 0 none 12 ns\ntable\n")
        );
        let cut = "VMBENCH-BEGIN\nround 0\n";
        assert_eq!(
            between(cut, "VMBENCH-BEGIN", "VMBENCH-END").as_deref(),
            Some("round 0\n(no end: the guest stopped)\n")
        );
        assert_eq!(
            between("VM: kernel\n", "VMBENCH-BEGIN", "VMBENCH-END"),
            None
        );
    }

    #[test]
    fn results_per_test_and_crashes_as_failures() {
        let console = "VM: kernel 6.1.0\r\nVMTEST-BEGIN abend-0123abcd\r\nrunning 1 test\r\ntest a_test ... ok\r\ntest b_test ... FAILED\r\ntest result: FAILED. 1 passed\r\nVMTEST-END abend-0123abcd rc=101\r\nVMTEST-BEGIN exec-99\r\ntest c ... ok\r\nVMTEST-END exec-99 rc=139\r\nVMTEST-BEGIN promisc-1\r\n";
        let r = parse(console);
        let got: Vec<(&str, &str, bool)> = r
            .iter()
            .map(|(b, t, ok)| (b.as_str(), t.as_str(), *ok))
            .collect();
        assert_eq!(
            got,
            vec![
                ("abend", "a_test", true),
                ("abend", "b_test", false),
                ("exec", "c", true),
                ("exec", "(binary exited: exec-99 rc=139)", false),
                ("promisc", "(no end: the guest stopped)", false),
            ]
        );
    }
}
