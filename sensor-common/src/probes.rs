//! The one table of probes: program name (the function in `sensor-ebpf`), attach point, area.
//! The agent loads and attaches what is listed here, in the probe set the kernel allows.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// `/sys/kernel/tracing/events/<category>/<name>`.
    TracePoint {
        category: &'static str,
        name: &'static str,
    },
    /// A BTF-typed raw tracepoint (`tp_btf`): the tracepoint's TP_PROTO arguments, not its
    /// trace record, its pointer arguments typed, so the program reads through them directly,
    /// without a helper call.
    BtfTracePoint { name: &'static str },
    /// A uprobe (or uretprobe, as the program is) on functions of a shared library (its soname),
    /// in every process that maps it; the attach cookie is the function's index in `symbols`.
    UProbe {
        library: &'static str,
        symbols: &'static [&'static str],
    },
    /// A uretprobe on the `PAM_SM_FUNCTIONS` of each of the `PAM_MODULES` found in the PAM
    /// module directory; the cookie is `module << 8 | function`.
    PamModules,
    /// An fentry program (a BPF trampoline at the kernel function's start; typed arguments).
    FEntry { function: &'static str },
    /// An fexit program (at the function's return: its arguments, then its return value).
    FExit { function: &'static str },
}

/// Which probes serve the needs that have two ways to be met: the kernel's own functions
/// through BPF trampolines (fentry/fexit: exact) and a tracepoint per promiscuity syscall, with
/// no program on every syscall, where the kernel lets trampolines attach; else tracepoints only,
/// with one program at every syscall's exit, which every supported kernel has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeSet {
    Trampolines,
    Tracepoints,
}

impl ProbeSet {
    pub fn name(self) -> &'static str {
        match self {
            ProbeSet::Trampolines => "fentry/fexit",
            ProbeSet::Tracepoints => "tracepoints",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub program: &'static str,
    pub attach: Attach,
    pub area: &'static str,
    /// The one set this probe belongs to, or `None` for a probe of both.
    pub only: Option<ProbeSet>,
    /// Programs of the set this probe stands in for where the kernel has its attach point:
    /// they are attached only where it fails to load (it is loaded first, attached last).
    pub replaces: &'static [&'static str],
}

impl Probe {
    /// Attached when `set` is the chosen one.
    pub fn in_set(&self, set: ProbeSet) -> bool {
        self.only.is_none_or(|only| only == set)
    }
}

/// A tracepoint whose program has the tracepoint's name.
const fn tp(area: &'static str, category: &'static str, name: &'static str) -> Probe {
    Probe {
        program: name,
        attach: Attach::TracePoint { category, name },
        area,
        only: None,
        replaces: &[],
    }
}

/// A trampoline of [`ProbeSet::Trampolines`].
const fn tramp(area: &'static str, program: &'static str, attach: Attach) -> Probe {
    Probe {
        program,
        attach,
        area,
        only: Some(ProbeSet::Trampolines),
        replaces: &[],
    }
}

/// A `syscalls:sys_exit_NAME` tracepoint of [`ProbeSet::Trampolines`].
const fn sys_exit_of(area: &'static str, program: &'static str, name: &'static str) -> Probe {
    tramp(
        area,
        program,
        Attach::TracePoint {
            category: "syscalls",
            name,
        },
    )
}

pub const PROBES: &[Probe] = &[
    // The exec's entry, with tracepoints, where the kernel has `sched_prepare_exec` (6.10 on):
    // the `syscalls:sys_enter_*` tracepoints put the kernel's perf hook on the entry of every
    // syscall of the host. An exec refused before that point is entered at `sys_exit`.
    Probe {
        program: "sched_prepare_exec",
        attach: Attach::BtfTracePoint {
            name: "sched_prepare_exec",
        },
        area: "exec",
        only: Some(ProbeSet::Tracepoints),
        replaces: &["sys_enter_execve", "sys_enter_execveat"],
    },
    tp("exec", "syscalls", "sys_enter_execve"),
    tp("exec", "syscalls", "sys_enter_execveat"),
    Probe {
        program: "sched_process_exec",
        attach: Attach::BtfTracePoint {
            name: "sched_process_exec",
        },
        area: "exec",
        only: None,
        replaces: &[],
    },
    // The exits of execve and of libaudit's sendto: with tracepoints, `sys_exit` below sees
    // them (a `syscalls:sys_exit_*` tracepoint costs every syscall of the host its perf hook).
    sys_exit_of("exec", "sys_exit_execve", "sys_exit_execve"),
    sys_exit_of("exec", "sys_exit_execveat", "sys_exit_execveat"),
    tp("signal", "signal", "signal_deliver"),
    // Tracepoints: ANOM_LINK / ANOM_CREAT (open and link syscalls refused with EACCES/EPERM,
    // judged by the agent), LOGIN (writes to a loginuid file), the SYSCALL part of
    // ANOM_PROMISCUOUS, and the exits of execve and libaudit's sendto. One typed raw
    // tracepoint for every syscall's exit.
    Probe {
        program: "sys_exit",
        attach: Attach::BtfTracePoint { name: "sys_exit" },
        area: "fs",
        only: Some(ProbeSet::Tracepoints),
        replaces: &[],
    },
    // Trampolines, the same three: the kernel's own decision for every syscall it refuses
    // (`audit_log_path_denied()` is called whatever the audit state), the loginuid write itself,
    // and the exits of the syscalls that change promiscuity (tracepoints: see `net.rs`).
    tramp(
        "fs",
        "path_denied",
        Attach::FEntry {
            function: "audit_log_path_denied",
        },
    ),
    tramp(
        "login",
        "loginuid_written",
        Attach::FExit {
            function: "proc_loginuid_write",
        },
    ),
    sys_exit_of("net", "promisc_exit_ioctl", "sys_exit_ioctl"),
    sys_exit_of("net", "promisc_exit_sendto", "sys_exit_sendto"),
    sys_exit_of("net", "promisc_exit_sendmsg", "sys_exit_sendmsg"),
    sys_exit_of("net", "promisc_exit_setsockopt", "sys_exit_setsockopt"),
    sys_exit_of("net", "promisc_exit_close", "sys_exit_close"),
    // ANOM_PROMISCUOUS: the kernel logs every promiscuity change where it audits it.
    tp("net", "printk", "console"),
    // Every user-space audit message (libpam's USER_*, sudo's USER_CMD, shadow's ADD_USER…).
    Probe {
        program: "audit_send",
        attach: Attach::UProbe {
            library: "libaudit.so.1",
            symbols: &["__audit_send"],
        },
        area: "libaudit",
        only: None,
        replaces: &[],
    },
    // The `sendto()` that hands a message caught above to the kernel: whether it got there.
    sys_exit_of("libaudit", "sys_exit_sendto", "sys_exit_sendto"),
    // PAM calls, with the handle's items, and the modules that decided them.
    Probe {
        program: "pam_api_enter",
        attach: Attach::UProbe {
            library: "libpam.so.0",
            symbols: &crate::PAM_FUNCTIONS,
        },
        area: "pam",
        only: None,
        replaces: &[],
    },
    Probe {
        program: "pam_api_exit",
        attach: Attach::UProbe {
            library: "libpam.so.0",
            symbols: &crate::PAM_FUNCTIONS,
        },
        area: "pam",
        only: None,
        replaces: &[],
    },
    Probe {
        program: "pam_sm_exit",
        attach: Attach::PamModules,
        area: "pam",
        only: None,
        replaces: &[],
    },
];
