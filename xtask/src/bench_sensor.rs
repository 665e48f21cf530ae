//! The sensor as the benches run it: started with its defaults (or a rules file), writing audit
//! text to a file (and, for the syscalls and PAM benches, protobuf to another; for `bench exec`'s
//! protobuf row, protobuf alone), until SIGTERM.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use anyhow::{bail, ensure, Context, Result};

use crate::bench_audit::RulesCopy;

/// A running sensor: [`SensorProcess::stop`] stops it and checks how it exited; dropped on
/// any other way out (an error, a failed round), it is stopped all the same, so no bench leaves
/// it attached.
pub(crate) struct SensorProcess(Option<Child>);

impl SensorProcess {
    pub(crate) fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM, then its exit status, which must be success.
    pub(crate) fn stop(mut self) -> Result<()> {
        let Some(child) = self.0.take() else {
            return Ok(());
        };
        let status = terminate(child)?;
        ensure!(status.success(), "sensor exited with {status}");
        Ok(())
    }
}

impl Drop for SensorProcess {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = terminate(child);
        }
    }
}

fn terminate(mut child: Child) -> Result<std::process::ExitStatus> {
    // SAFETY: plain signal to our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    Ok(child.wait()?)
}

/// `sensor run ARGS` writing audit text to DIR/sensor.log, returned once it has printed
/// "probes attached".
pub(crate) fn start_sensor(
    bin: &Path,
    dir: &Path,
    rules: Option<&Path>,
    args: &[&str],
) -> Result<SensorProcess> {
    start_sensor_saying(bin, dir, rules, args).map(|(child, _)| child)
}

/// As [`start_sensor`], with what the sensor said up to its ready line (its probe set).
pub(crate) fn start_sensor_saying(
    bin: &Path,
    dir: &Path,
    rules: Option<&Path>,
    args: &[&str],
) -> Result<(SensorProcess, String)> {
    let audit = format!("audit:{}", dir.join("sensor.log").display());
    start_sensor_to(bin, &audit, rules, args)
}

/// `sensor run --output OUTPUT ARGS` (and nothing else written), returned once it has printed
/// "probes attached", with what it said up to there.
pub(crate) fn start_sensor_to(
    bin: &Path,
    output: &str,
    rules: Option<&Path>,
    args: &[&str],
) -> Result<(SensorProcess, String)> {
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg("--output").arg(output).args(args);
    if let Some(rules) = rules {
        cmd.arg("--rules").arg(rules);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    // Wait for "probes attached" on stderr.
    let mut stderr = child.stderr.take().context("sensor stderr")?;
    let child = SensorProcess(Some(child));
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("probes attached") {
        let n = std::io::Read::read(&mut stderr, &mut buf)?;
        if n == 0 {
            bail!("sensor exited: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    // Keep draining stderr so the sensor never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Ok((child, String::from_utf8_lossy(&seen).into_owned()))
}

/// For the syscalls and PAM benches: protobuf to DIR/sensor.pb beside the audit text; for
/// `bench exec`'s protobuf row, alone.
pub(crate) fn proto_output(dir: &Path) -> String {
    format!("proto:{}", proto_path(dir).display())
}

/// Where [`proto_output`] writes.
pub(crate) fn proto_path(dir: &Path) -> std::path::PathBuf {
    dir.join("sensor.pb")
}

/// The sensor's loss as it wrote it in a protobuf stream: `sensor decode` turns the stream back
/// into audit text, where [`lost_in`](crate::bench_log::lost_in) reads it.
pub(crate) fn proto_lost(bin: &Path, stream: &Path) -> Result<u64> {
    let out = Command::new(bin).arg("decode").arg(stream).output()?;
    ensure!(
        out.status.success(),
        "sensor decode {}: {}",
        stream.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(crate::bench_log::lost_in(&String::from_utf8_lossy(
        &out.stdout,
    )))
}

/// What `sensor rules check` makes of the rules: how many lines it applies (exec rules), leaves
/// unsupported (other syscalls, file watches without x…) and refuses, the `-i` line aside.
pub(crate) fn sensor_rules_check(bin: &Path, rules: &RulesCopy) -> Result<String> {
    let out = Command::new(bin)
        .args(["rules", "check"])
        .arg(&rules.path)
        .output()?;
    let prefix = format!("{}:", rules.path.display());
    let mut counts = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let mut words = rest.splitn(3, ": ");
        if words.next() == Some("1") {
            continue; // the -i the copy starts with
        }
        if let Some(status) = words.next() {
            *counts.entry(status.to_owned()).or_insert(0) += 1;
        }
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    Ok(parts.join(", "))
}
