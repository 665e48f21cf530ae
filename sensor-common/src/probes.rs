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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub program: &'static str,
    pub attach: Attach,
    pub area: &'static str,
}

const fn tp(program: &'static str, category: &'static str, name: &'static str) -> Probe {
    Probe {
        program,
        attach: Attach::TracePoint { category, name },
        area: "exec",
    }
}

pub const PROBES: &[Probe] = &[
    tp("sys_enter_execve", "syscalls", "sys_enter_execve"),
    tp("sys_enter_execveat", "syscalls", "sys_enter_execveat"),
    Probe {
        program: "sched_process_exec",
        attach: Attach::RawTracePoint {
            name: "sched_process_exec",
        },
        area: "exec",
    },
    tp("sys_exit_execve", "syscalls", "sys_exit_execve"),
    tp("sys_exit_execveat", "syscalls", "sys_exit_execveat"),
    Probe {
        program: "signal_deliver",
        attach: Attach::TracePoint {
            category: "signal",
            name: "signal_deliver",
        },
        area: "signal",
    },
];
