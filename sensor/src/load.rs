//! Stage 1: check privileges, mount tracefs if needed, resolve kernel offsets, load the eBPF
//! object and attach every probe of `sensor_common::probes::PROBES`.

use std::{ffi::CString, path::Path};

use anyhow::{bail, Context, Result};
use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
        RawTracePoint, TracePoint, UProbe,
    },
    Ebpf, EbpfLoader,
};
use sensor_common::{
    probes::{Attach, PROBES},
    PamLayout, PAM_MODULES, PAM_SM_FUNCTIONS,
};

#[path = "load_pam.rs"]
mod pam_layout;

use crate::offsets::{Resolver, VMLINUX_BTF};

pub struct Loaded {
    /// Keeps programs and links alive.
    pub ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub counters: PerCpuArray<MapData, u64>,
}

pub struct Options {
    pub ring_buffer_bytes: u32,
}

const TRACEFS: &str = "/sys/kernel/tracing";

/// One sentence, no backtrace: this is what an operator sees first.
pub fn check_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the sensor must run as root: it loads eBPF programs and attaches them to kernel tracepoints (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)");
    }
    Ok(())
}

/// Tracepoints are attached through tracefs, which a fresh machine may not have mounted.
fn ensure_tracefs() -> Result<()> {
    if Path::new(TRACEFS).join("events").exists() {
        return Ok(());
    }
    let target = CString::new(TRACEFS)?;
    let fstype = CString::new("tracefs")?;
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bail!("tracefs is not mounted at {TRACEFS} and mounting it failed ({err}); mount it with `mount -t tracefs nodev {TRACEFS}`");
    }
    Ok(())
}

/// eBPF maps are charged to RLIMIT_MEMLOCK on kernels before 5.11.
fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to an initialised rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
}

pub fn load(object: &[u8], opts: &Options) -> Result<Loaded> {
    check_privileges()?;
    if !Path::new(VMLINUX_BTF).exists() {
        bail!("the kernel has no BTF ({VMLINUX_BTF} is missing): the sensor needs a kernel >= 5.8 built with CONFIG_DEBUG_INFO_BTF=y");
    }
    ensure_tracefs()?;
    raise_memlock();
    let offsets = Resolver::from_file(VMLINUX_BTF)?.kernel_offsets()?;
    let pam_layout = match find_library("libpam.so.0").map(|p| pam_layout::calibrate(&p)) {
        Some(Ok(layout)) => layout,
        Some(Err(e)) => {
            eprintln!("sensor: libpam's handle layout is unknown ({e}): PAM calls are reported without service, user, rhost, ruser and tty");
            PamLayout::default()
        }
        None => PamLayout::default(),
    };
    let mut ebpf = EbpfLoader::new()
        .override_global("OFFSETS", &offsets, true)
        .override_global("PAM_LAYOUT", &pam_layout, true)
        .map_max_entries("EVENTS", opts.ring_buffer_bytes)
        .load(object)
        .context("loading the eBPF object")?;
    for probe in PROBES {
        let prog = ebpf
            .program_mut(probe.program)
            .with_context(|| format!("the eBPF object has no program {}", probe.program))?;
        match probe.attach {
            Attach::TracePoint { category, name } => {
                let tp: &mut TracePoint = prog.try_into()?;
                tp.load()
                    .with_context(|| format!("verifier refused {}", probe.program))?;
                tp.attach(category, name)
                    .with_context(|| format!("attaching {} to {category}:{name}", probe.program))?;
            }
            Attach::RawTracePoint { name } => {
                let tp: &mut RawTracePoint = prog.try_into()?;
                tp.load()
                    .with_context(|| format!("verifier refused {}", probe.program))?;
                tp.attach(name).with_context(|| {
                    format!("attaching {} to raw tracepoint {name}", probe.program)
                })?;
            }
            Attach::UProbe { library, symbols } => {
                let up: &mut UProbe = prog.try_into()?;
                up.load()
                    .with_context(|| format!("verifier refused {}", probe.program))?;
                // A host without the library loses only what it would have reported: say so,
                // once, and go on.
                let attached = match find_library(library) {
                    Some(path) => attach_symbols(up, &path, symbols, 0),
                    None => Err("not found in the library directories".to_string()),
                };
                if let Err(e) = attached {
                    eprintln!("sensor: not watching {library} ({}): {e}", probe.area);
                }
            }
            Attach::PamModules => {
                let up: &mut UProbe = prog.try_into()?;
                up.load()
                    .with_context(|| format!("verifier refused {}", probe.program))?;
                attach_pam_modules(up);
            }
        }
    }
    let ring = RingBuf::try_from(ebpf.take_map("EVENTS").context("no EVENTS map")?)?;
    let counters = PerCpuArray::try_from(ebpf.take_map("COUNTERS").context("no COUNTERS map")?)?;
    Ok(Loaded {
        ebpf,
        ring,
        counters,
    })
}

/// Attaches to each of `symbols` in `path` that exists, with cookie `base | index`; fails only
/// when none could be attached.
fn attach_symbols(
    up: &mut UProbe,
    path: &Path,
    symbols: &[&str],
    base: u64,
) -> std::result::Result<(), String> {
    let mut errors = Vec::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let point = UProbeAttachPoint {
            location: UProbeAttachLocation::Symbol(symbol),
            cookie: Some(base | i as u64),
        };
        if let Err(e) = up.attach([point], path, UProbeScope::AllProcesses) {
            errors.push(format!("{symbol}: {e}"));
        }
    }
    if errors.len() == symbols.len() {
        return Err(format!("{}: {}", path.display(), errors.join("; ")));
    }
    Ok(())
}

/// The PAM modules' `pam_sm_*` entry points (a module has only some of them).
fn attach_pam_modules(up: &mut UProbe) {
    let dir = [
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/x86_64-linux-gnu/security",
        "/lib64/security",
        "/usr/lib64/security",
        "/lib/security",
        "/usr/lib/security",
    ]
    .into_iter()
    .map(Path::new)
    .find(|d| d.join("pam_unix.so").exists());
    let Some(dir) = dir else {
        eprintln!("sensor: no PAM module directory found: PAM denials are not attributed");
        return;
    };
    for (m, module) in PAM_MODULES.iter().enumerate() {
        let path = dir.join(format!("{module}.so"));
        if path.exists() {
            let _ = attach_symbols(up, &path, &PAM_SM_FUNCTIONS, (m as u64) << 8);
        }
    }
}

/// The host's copy of a shared library: the first of the dynamic loader's default directories
/// (Debian's multiarch ones first) that holds `soname`.
pub fn find_library(soname: &str) -> Option<std::path::PathBuf> {
    [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ]
    .iter()
    .map(|dir| Path::new(dir).join(soname))
    .find(|p| p.exists())
}

/// Sum of one per-CPU counter.
pub fn counter(counters: &PerCpuArray<MapData, u64>, index: u32) -> u64 {
    counters.get(&index, 0).map(|v| v.iter().sum()).unwrap_or(0)
}
