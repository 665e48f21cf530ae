//! Installs what `toolchains.env` pins, and only what is missing: a second run costs a few
//! `rustup`/`bpf-linker` queries. Nothing relies on rustup auto-installing a toolchain.

use std::{
    collections::HashMap,
    env::consts::{ARCH, OS},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{elf, exec, output, Ctx};

/// The pins, read from `toolchains.env` (KEY=VALUE lines, `#` comments): the same file
/// sensor/build.rs and .ci/run read.
pub struct Pins {
    pub stable: String,
    pub nightly: String,
    pub bpf_linker: String,
    pub llvm_major: String,
}

impl Pins {
    pub fn load(root: &Path) -> Result<Pins> {
        let file = root.join("toolchains.env");
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        Pins::parse(&text).with_context(|| format!("in {}", file.display()))
    }

    fn parse(text: &str) -> Result<Pins> {
        let vars: HashMap<&str, &str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |key: &str| match vars.get(key) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => bail!("no {key}=..."),
        };
        Ok(Pins {
            stable: get("STABLE")?,
            nightly: get("NIGHTLY")?,
            bpf_linker: get("BPF_LINKER")?,
            llvm_major: get("LLVM_MAJOR")?,
        })
    }
}

/// Makes sure the pinned toolchains (with their components) and bpf-linker are installed.
/// `nightly_clippy`: the tests also lint the eBPF crate, which needs the nightly's clippy; a plain
/// build does not, and some nightlies ship without clippy.
pub fn ensure_all(ctx: &mut Ctx, nightly_clippy: bool) -> Result<()> {
    let listed = output(Command::new("rustup").args(["toolchain", "list"]))?;
    let stable = ctx.pins.stable.clone();
    let nightly = ctx.pins.nightly.clone();
    ensure_toolchain(ctx, &listed, &stable, &["clippy", "rustfmt"])?;
    let nightly_components: &[&str] = if nightly_clippy {
        &["rust-src", "clippy"]
    } else {
        &["rust-src"]
    };
    ensure_toolchain(ctx, &listed, &nightly, nightly_components)?;
    ensure_bpf_linker(ctx)
}

fn ensure_toolchain(ctx: &Ctx, listed: &str, name: &str, components: &[&str]) -> Result<()> {
    let installed = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|t| is_host_name(t, name));
    if !installed {
        eprintln!("{name}: not installed, installing");
        let mut cmd = Command::new("rustup");
        cmd.args(["toolchain", "install", name, "--profile", "minimal"])
            .arg("--component")
            .arg(components.join(","));
        ctx.clean_env(&mut cmd);
        return exec(&mut cmd).with_context(|| format!("installing toolchain {name}"));
    }
    let mut list = Command::new("rustup");
    list.args(["component", "list", "--installed", "--toolchain", name]);
    ctx.clean_env(&mut list);
    let have = output(&mut list)?;
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| !have.lines().any(|l| is_host_name(l.trim(), c)))
        .collect();
    if missing.is_empty() {
        eprintln!("{name}: installed with {}", components.join(", "));
        return Ok(());
    }
    eprintln!("{name}: adding {}", missing.join(", "));
    let mut add = Command::new("rustup");
    add.args(["component", "add", "--toolchain", name])
        .args(&missing);
    ctx.clean_env(&mut add);
    exec(&mut add).with_context(|| format!("adding {} to {name}", missing.join(", ")))
}

/// rustup lists toolchains and components with the host triple appended
/// (`1.99.0-x86_64-unknown-linux-gnu`, `clippy-x86_64-unknown-linux-gnu`; `rust-src` has none).
/// A bare prefix match would take `nightly-2026-10-01-…` for the pin `nightly`, so the rest must
/// be a host triple.
fn is_host_name(listed: &str, name: &str) -> bool {
    match listed.strip_prefix(name) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .is_some_and(|triple| triple.starts_with(&format!("{ARCH}-")) && triple.contains(OS)),
        None => false,
    }
}

/// The nightly's LLVM, which bpf-linker must load: the BPF bitcode rustc emits is only readable
/// by the same LLVM.
struct NightlyLlvm {
    /// `<sysroot>/lib`, where the nightly keeps `libLLVM-*.so`.
    lib_dir: PathBuf,
    /// For `-l dylib=`: `LLVM-23-rust-1.101.0-nightly` from `libLLVM-23-rust-1.101.0-nightly.so`.
    dylib: String,
}

fn nightly_llvm(ctx: &Ctx) -> Result<NightlyLlvm> {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", &ctx.pins.nightly, "rustc", "--print", "sysroot"]);
    ctx.clean_env(&mut cmd);
    let lib_dir = PathBuf::from(output(&mut cmd)?.trim()).join("lib");
    let names: Vec<String> = fs::read_dir(&lib_dir)
        .with_context(|| format!("listing {}", lib_dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let dylib = llvm_dylib(&names, &ctx.pins.llvm_major).with_context(|| {
        format!(
            "the LLVM library of {} in {}",
            ctx.pins.nightly,
            lib_dir.display()
        )
    })?;
    Ok(NightlyLlvm { lib_dir, dylib })
}

/// Picks `LLVM-<major>-…` out of a sysroot's lib/ listing; a different major means the pins in
/// toolchains.env disagree with each other, which must be fixed there rather than papered over.
fn llvm_dylib(names: &[String], major: &str) -> Result<String> {
    let found: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("lib")?.strip_suffix(".so"))
        .filter(|n| n.starts_with("LLVM-"))
        .collect();
    match found.as_slice() {
        [one] if one.starts_with(&format!("LLVM-{major}-")) => Ok(one.to_string()),
        [one] => bail!("found lib{one}.so but toolchains.env pins LLVM_MAJOR={major}"),
        [] => bail!("no libLLVM-*.so"),
        many => bail!("several libLLVM-*.so: {many:?}"),
    }
}

fn ensure_bpf_linker(ctx: &mut Ctx) -> Result<()> {
    let llvm = nightly_llvm(ctx)?;
    let problem = match bpf_linker_problem(ctx, &llvm) {
        None => {
            eprintln!(
                "bpf-linker {}: installed, uses {}",
                ctx.pins.bpf_linker, llvm.dylib
            );
            return Ok(());
        }
        Some(p) => p,
    };
    eprintln!(
        "bpf-linker: {problem}; installing {} against {}",
        ctx.pins.bpf_linker, llvm.dylib
    );
    let lib = llvm.lib_dir.display();
    // Link the nightly's own libLLVM dynamically and record its directory as the rpath, so the
    // linker runs without LD_LIBRARY_PATH and reads exactly the bitcode that nightly writes.
    let mut cmd = ctx.cargo(&ctx.pins.stable);
    cmd.args([
        "install",
        "bpf-linker",
        "--locked",
        "--force",
        "--version",
        &ctx.pins.bpf_linker,
    ])
    .args(["--no-default-features", "--features"])
    .arg(format!("llvm-{},no-llvm-linking", ctx.pins.llvm_major))
    .env(
        "RUSTFLAGS",
        format!(
            "-L {lib} -l dylib={} -C link-arg=-Wl,-rpath,{lib}",
            llvm.dylib
        ),
    )
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    exec(&mut cmd).context("installing bpf-linker")?;
    // Put the install directory first, so this build finds the linker just installed even if
    // that directory is not on PATH or an older bpf-linker comes earlier on it.
    let bin = install_bin_dir()?;
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&ctx.path).filter(|d| *d != bin));
    ctx.path = std::env::join_paths(dirs).context("PATH")?;
    if let Some(p) = bpf_linker_problem(ctx, &llvm) {
        bail!("bpf-linker is still not right after installing it: {p}");
    }
    Ok(())
}

/// Where `cargo install` puts binaries (its own rule: CARGO_INSTALL_ROOT, else CARGO_HOME).
fn install_bin_dir() -> Result<PathBuf> {
    let root = match (
        std::env::var_os("CARGO_INSTALL_ROOT"),
        std::env::var_os("CARGO_HOME"),
    ) {
        (Some(r), _) => PathBuf::from(r),
        (None, Some(h)) => PathBuf::from(h),
        (None, None) => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cargo")
        }
    };
    Ok(root.join("bin"))
}

/// Why the bpf-linker on PATH will not do, or None if it is the pinned version and loads the
/// nightly's LLVM. The version alone is not enough: after a change of NIGHTLY the old linker still
/// runs (against the old nightly's LLVM) and fails later on bitcode it cannot read.
fn bpf_linker_problem(ctx: &Ctx, llvm: &NightlyLlvm) -> Option<String> {
    let Some(exe) = std::env::split_paths(&ctx.path)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
    else {
        return Some("not found on PATH".into());
    };
    let version = match Command::new(&exe).arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Ok(o) => {
            return Some(format!(
                "{} does not run: {}",
                exe.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("{} does not run: {e}", exe.display())),
    };
    if version.split_whitespace().last() != Some(ctx.pins.bpf_linker.as_str()) {
        return Some(format!("{} is `{version}`", exe.display()));
    }
    match elf::read(&exe) {
        Ok(dynamic) if dynamic.loads_llvm_from(&llvm.lib_dir) => None,
        Ok(_) => Some(format!(
            "{} does not load its LLVM from {}",
            exe.display(),
            llvm.lib_dir.display()
        )),
        Err(e) => Some(format!("{}: {e:#}", exe.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_like_build_rs() {
        let text = "# c=omment\nSTABLE=1.99.0\nNIGHTLY = nightly-2026-10-01\n\
                    BPF_LINKER=0.13.0\nLLVM_MAJOR=23\n";
        let p = Pins::parse(text).unwrap();
        assert_eq!(
            (p.stable.as_str(), p.nightly.as_str()),
            ("1.99.0", "nightly-2026-10-01")
        );
        assert_eq!(
            (p.bpf_linker.as_str(), p.llvm_major.as_str()),
            ("0.13.0", "23")
        );
        assert!(Pins::parse("STABLE=1\nNIGHTLY=n\nBPF_LINKER=\nLLVM_MAJOR=23").is_err());
    }

    #[test]
    fn toolchain_names_need_the_host_suffix() {
        let host = format!("{ARCH}-unknown-{OS}-gnu");
        assert!(is_host_name(&format!("1.99.0-{host}"), "1.99.0"));
        assert!(is_host_name("1.99.0", "1.99.0"));
        assert!(is_host_name(
            &format!("nightly-2026-10-01-{host}"),
            "nightly-2026-10-01"
        ));
        assert!(!is_host_name(
            &format!("nightly-2026-10-01-{host}"),
            "nightly"
        ));
        assert!(!is_host_name(&format!("1.99.1-{host}"), "1.99.0"));
        assert!(is_host_name("rust-src", "rust-src"));
        assert!(is_host_name(&format!("clippy-{host}"), "clippy"));
        assert!(!is_host_name(&format!("rust-std-{host}"), "rust-src"));
    }

    #[test]
    fn llvm_dylib_must_match_the_pinned_major() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let lib = names(&[
            "libLLVM-23-rust-1.101.0-nightly.so",
            "libLLVM.so.23.1-rust-1.101.0-nightly",
            "librustc_driver-1.so",
        ]);
        assert_eq!(
            llvm_dylib(&lib, "23").unwrap(),
            "LLVM-23-rust-1.101.0-nightly"
        );
        assert!(llvm_dylib(&lib, "22").is_err());
        assert!(llvm_dylib(&names(&["librustc_driver-1.so"]), "23").is_err());
    }
}
