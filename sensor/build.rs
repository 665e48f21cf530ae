//! Builds the eBPF programs (`sensor-ebpf`) with the pinned nightly and embeds the object in the
//! agent.

use std::{env, fs, path::PathBuf, process::Command};

use anyhow::{bail, Context, Result};

fn pin(pins: &str, key: &str) -> Result<String> {
    pins.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .with_context(|| format!("toolchains.env has no {key}"))
}

fn main() -> Result<()> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.parent().context("workspace root")?.to_owned();
    let out = PathBuf::from(env::var("OUT_DIR")?).join("sensor.bpf.o");
    for p in [
        "sensor-ebpf/src",
        "sensor-ebpf/Cargo.toml",
        "sensor-common/src",
        "toolchains.env",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(p).display());
    }
    let pins = fs::read_to_string(root.join("toolchains.env"))?;
    let nightly = pin(&pins, "NIGHTLY")?;
    let target_dir = root.join("target").join("ebpf");
    let mut cmd = Command::new("rustup");
    cmd.args(["run", &nightly, "cargo", "build", "--release", "--quiet"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--manifest-path")
        .arg(root.join("sensor-ebpf/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "-Cdebuginfo=2\x1f-Clink-arg=--btf",
        );
    // The outer cargo's compiler settings belong to the host toolchain, not the pinned nightly.
    for key in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(key);
    }
    let status = cmd.status().with_context(|| {
        format!("running rustup run {nightly} cargo build (install it with `cargo xtask build`)")
    })?;
    if !status.success() {
        bail!("building sensor-ebpf with {nightly} failed: {status}; `cargo xtask build` installs the pinned nightly and bpf-linker");
    }
    let obj = target_dir.join("bpfel-unknown-none/release/sensor");
    fs::copy(&obj, &out).with_context(|| format!("copying {}", obj.display()))?;
    Ok(())
}
