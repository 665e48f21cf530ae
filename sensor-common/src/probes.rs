//! The one table of probes: program name (the function in `sensor-ebpf`), attach point, area.
//! The agent loads and attaches exactly what is listed here.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// `/sys/kernel/tracing/events/<category>/<name>`.
    TracePoint {
        category: &'static str,
        name: &'static str,
    },
    /// A raw tracepoint: the tracepoint's TP_PROTO arguments, not its trace record.
    RawTracePoint { name: &'static str },
    /// A BTF-typed raw tracepoint (`tp_btf`): as a raw one, but its pointer arguments are typed,
    /// so the program reads through them directly, without a helper call.
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub program: &'static str,
    pub attach: Attach,
    pub area: &'static str,
}

/// A tracepoint whose program has the tracepoint's name.
const fn tp(area: &'static str, category: &'static str, name: &'static str) -> Probe {
    Probe {
        program: name,
        attach: Attach::TracePoint { category, name },
        area,
    }
}

pub const PROBES: &[Probe] = &[
    tp("exec", "syscalls", "sys_enter_execve"),
    tp("exec", "syscalls", "sys_enter_execveat"),
    Probe {
        program: "sched_process_exec",
        attach: Attach::RawTracePoint {
            name: "sched_process_exec",
        },
        area: "exec",
    },
    tp("exec", "syscalls", "sys_exit_execve"),
    tp("exec", "syscalls", "sys_exit_execveat"),
    tp("signal", "signal", "signal_deliver"),
    // ANOM_LINK / ANOM_CREAT: open and link syscalls refused with EACCES/EPERM; and the SYSCALL
    // part of ANOM_PROMISCUOUS. One typed raw tracepoint for every syscall's exit.
    Probe {
        program: "sys_exit",
        attach: Attach::BtfTracePoint { name: "sys_exit" },
        area: "fs",
    },
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
    },
    // The `sendto()` that hands a message caught above to the kernel: whether it got there.
    tp("libaudit", "syscalls", "sys_exit_sendto"),
    // PAM calls, with the handle's items, and the modules that decided them.
    Probe {
        program: "pam_api_enter",
        attach: Attach::UProbe {
            library: "libpam.so.0",
            symbols: &crate::PAM_FUNCTIONS,
        },
        area: "pam",
    },
    Probe {
        program: "pam_api_exit",
        attach: Attach::UProbe {
            library: "libpam.so.0",
            symbols: &crate::PAM_FUNCTIONS,
        },
        area: "pam",
    },
    Probe {
        program: "pam_sm_exit",
        attach: Attach::PamModules,
        area: "pam",
    },
];
