//! Stage 1: check privileges, mount tracefs if needed, resolve kernel offsets, load the eBPF
//! object and attach the probes of `sensor_common::probes::PROBES` in the set the kernel allows
//! ([`kernel_probes`]).

use std::{ffi::CString, path::Path};

use anyhow::{bail, Context, Result};
use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::UProbe,
    Ebpf, EbpfLoader,
};
use sensor_common::{
    probes::{Attach, ProbeSet, PROBES},
    Counters, PamLayout,
};

mod pam_layout;

pub mod attacher;
pub mod ebpf_log;
mod elf_symbols;
mod kallsyms;
pub mod kernel_probes;
pub mod libraries;
pub mod offsets;
pub use libraries::find_library;

use offsets::{Resolver, VMLINUX_BTF};

pub struct Loaded {
    /// Keeps programs and links alive.
    pub ebpf: Ebpf,
    /// The libraries the uprobes are attached to, for attaching to containers' own copies.
    pub libraries: libraries::Libraries,
    pub ring: RingBuf<MapData>,
    pub counters: PerCpuArray<MapData, Counters>,
    /// The programs' ring-buffer wake-up flag (`read::clocked`).
    pub wake_flags: Array<MapData, u64>,
    /// The probe set attached.
    pub chosen: kernel_probes::Chosen,
}

pub struct Options {
    pub ring_buffer_bytes: u32,
    /// Forward the eBPF programs' diagnostics to stderr (`--ebpf-log`).
    pub ebpf_log: bool,
    /// Try `uprobe_multi` links (`--uprobe-links auto`).
    pub uprobe_multi: bool,
    /// Rules are loaded: exec entries wait in the kernel for their decision.
    pub rules: bool,
    /// `--probe-set`: `None` for the best the kernel allows.
    pub probe_set: Option<ProbeSet>,
}

/// Exec entries held in the kernel at once for the rules' decision: more execs in flight than
/// this lose the oldest entry, counted.
const PENDING_EXECS: u32 = 1024;

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
    if let Err(err) = mount_pseudo(c"tracefs", &CString::new(TRACEFS)?) {
        bail!("tracefs is not mounted at {TRACEFS} and mounting it failed ({err}); mount it with `mount -t tracefs nodev {TRACEFS}`");
    }
    Ok(())
}

/// Mounts a kernel pseudo file system (tracefs, securityfs) of type `fstype` at `target`.
fn mount_pseudo(fstype: &std::ffi::CStr, target: &std::ffi::CStr) -> std::io::Result<()> {
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
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

const SECURITYFS: &str = "/sys/kernel/security";

/// The kernel's active LSMs, in order (`/sys/kernel/security/lsm`, securityfs mounted when it
/// is not): some add to what kernel audit records (TOMOYO's second lookup of each exec'd
/// program). Empty, said once, when they cannot be read.
pub fn active_lsms() -> Vec<String> {
    let list = Path::new(SECURITYFS).join("lsm");
    if !list.exists() {
        // A failure shows as the unreadable list below.
        let _ = mount_pseudo(c"securityfs", c"/sys/kernel/security");
    }
    match std::fs::read_to_string(&list) {
        Ok(text) => text.trim().split(',').map(str::to_string).collect(),
        Err(e) => {
            eprintln!("sensor: the kernel's LSMs are unknown ({}: {e}): exec records follow a kernel without TOMOYO", list.display());
            Vec::new()
        }
    }
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
    let resolver = Resolver::from_file(VMLINUX_BTF)?;
    let offsets = resolver.kernel_offsets()?;
    // Where the kernel has `sched_prepare_exec`, `sys_exit` enters execs refused before it.
    let exec_entry_at_exit = resolver.has_type("btf_trace_sched_prepare_exec") as u32;
    drop(resolver);
    let pam_layout = match find_library("libpam.so.0").map(|p| pam_layout::calibrate(&p)) {
        Some(Ok(layout)) => layout,
        Some(Err(e)) => {
            eprintln!("sensor: libpam's handle layout is unknown ({e}): PAM calls are reported without service, user, rhost, ruser and tty");
            PamLayout::default()
        }
        None => PamLayout::default(),
    };
    let task_work_run = kallsyms::function_range("task_work_run").unwrap_or_else(|| {
        eprintln!("sensor: task_work_run is not in /proc/kallsyms (or addresses are hidden): a promiscuity change made after its syscall's exit may be given the thread's next syscall");
        [0; 2]
    });
    let mut loader = EbpfLoader::new();
    loader
        .override_global("OFFSETS", &offsets, true)
        .override_global("PAM_LAYOUT", &pam_layout, true)
        .override_global("TASK_WORK_RUN", &task_work_run, true)
        .override_global("EXEC_ENTRY_AT_EXIT", &exec_entry_at_exit, true)
        .map_max_entries("EVENTS", opts.ring_buffer_bytes)
        // Without rules, an entry is sent as it happens: one (unused) slot.
        .map_max_entries("PENDING_ENTER", if opts.rules { PENDING_EXECS } else { 1 });
    ebpf_log::configure(&mut loader, opts.ebpf_log);
    let mut ebpf = loader.load(object).context("loading the eBPF object")?;
    let btf = aya::Btf::from_sys_fs().context("reading the kernel's BTF")?;
    let chosen = kernel_probes::attach(&mut ebpf, &btf, opts.probe_set)?;
    let multi = load_uprobes(&mut ebpf, opts.uprobe_multi)?;
    eprintln!(
        "sensor: uprobes attach as {}",
        match (multi, opts.uprobe_multi) {
            (true, _) => "uprobe_multi links, one per library",
            (false, true) => "one perf event per function (this kernel has no uprobe_multi links)",
            (false, false) => "one perf event per function (--uprobe-links single)",
        }
    );
    ebpf_log::start(&mut ebpf, opts.ebpf_log)?;
    let mut libraries = libraries::Libraries::new(pam_layout.known != 0, multi);
    for message in libraries.attach_under(&mut ebpf, Path::new("/")) {
        // A host without a library loses only what it would have reported: say so, go on.
        eprintln!("sensor: {message}");
    }
    let ring = RingBuf::try_from(ebpf.take_map("EVENTS").context("no EVENTS map")?)?;
    let counters = PerCpuArray::try_from(ebpf.take_map("COUNTERS").context("no COUNTERS map")?)?;
    let wake_flags = Array::try_from(ebpf.take_map("WAKE_FLAGS").context("no WAKE_FLAGS map")?)?;
    Ok(Loaded {
        ebpf,
        libraries,
        ring,
        counters,
        wake_flags,
        chosen,
    })
}

/// Loads the uprobe programs of PROBES: their `uprobe_multi` variants (`NAME_multi`) where the
/// kernel takes them (Linux >= 6.6) and `try_multi`, else the classic ones. True for multi.
fn load_uprobes(ebpf: &mut Ebpf, try_multi: bool) -> Result<bool> {
    let uprobes: Vec<&'static str> = PROBES
        .iter()
        .filter(|p| matches!(p.attach, Attach::UProbe { .. } | Attach::PamModules))
        .map(|p| p.program)
        .collect();
    let load = |ebpf: &mut Ebpf, name: &str| -> Result<()> {
        let prog = ebpf
            .program_mut(name)
            .with_context(|| format!("the eBPF object has no program {name}"))?;
        let up: &mut UProbe = prog.try_into()?;
        up.load()
            .with_context(|| format!("verifier refused {name}"))?;
        Ok(())
    };
    // A kernel before 6.6 may load a `uprobe_multi` program and then refuse its link (Debian's
    // 6.1 does): the link itself is probed, as libbpf does.
    let links = aya::sys::is_uprobe_multi_supported(aya::sys::UProbeMultiFeature::LinkCreation);
    let multi = try_multi
        && links.unwrap_or(false)
        && uprobes
            .first()
            .is_some_and(|first| load(ebpf, libraries::program_name(first, true)).is_ok());
    for (i, program) in uprobes.iter().enumerate() {
        if multi && i == 0 {
            continue;
        }
        load(ebpf, libraries::program_name(program, multi))?;
    }
    Ok(multi)
}

/// The sensor's own mount namespace (the inode of `/proc/self/ns/mnt`).
pub fn own_mnt_ns() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/mnt")
        .ok()
        .map(|m| m.ino() as u32)
}

/// Every counter, summed over the CPUs: one lookup (zeros if it fails).
pub fn counters(map: &PerCpuArray<MapData, Counters>) -> Counters {
    let mut all = Counters::default();
    for cpu in map.get(&0, 0).iter().flat_map(|v| v.iter()) {
        for (sum, n) in all.iter_mut().zip(cpu) {
            *sum += n;
        }
    }
    all
}
