//! `cargo xtask build`: toolchains, then the release agent with the eBPF object embedded
//! (sensor/build.rs compiles sensor-ebpf with the pinned nightly and bpf-linker).

use std::path::PathBuf;

use anyhow::{ensure, Result};

use crate::{exec, toolchain, Ctx, Steps};

/// Returns the path of the built agent. `for_tests` also installs what the test steps need.
pub fn run(ctx: &mut Ctx, steps: &mut Steps, for_tests: bool) -> Result<PathBuf> {
    steps.run("toolchains", || toolchain::ensure_all(ctx, for_tests))?;
    let stable = ctx.pins.stable.clone();
    steps.run(&format!("build sensor (+{stable}, release)"), || {
        exec(
            ctx.cargo(&stable)
                .args(["build", "--release", "-p", "sensor"]),
        )
    })?;
    let bin = target_dir(ctx).join("release/sensor");
    ensure!(
        bin.is_file(),
        "cargo build succeeded but {} is missing",
        bin.display()
    );
    Ok(bin)
}

/// cargo's target directory as seen from the workspace root (where every cargo here runs).
fn target_dir(ctx: &Ctx) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => ctx.root.join(dir),
        None => ctx.root.join("target"),
    }
}
