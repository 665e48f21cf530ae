//! Attaching the kernel probes of `PROBES` (everything but uprobes), in the probe set the kernel
//! allows: the trampolines (fentry/fexit) where every one of them loads and attaches, else the
//! tracepoints. Trying is the feature probe: a kernel can have the program type, the attach type
//! and the function in its BTF and still refuse the attachment (this project's CI VM answers
//! EPERM at load).

use anyhow::{Context, Result};
use aya::{
    programs::{BtfTracePoint, FEntry, FExit, Program, TracePoint},
    Btf, Ebpf,
};
use sensor_common::probes::{Attach, Probe, ProbeSet, PROBES};

/// What the set in use amounts to, and the line that says which it is.
pub struct Chosen {
    /// Kernel probes and uprobe programs of the set: the ready line's count.
    pub probes: usize,
    pub line: String,
}

/// Attaches the kernel probes of `wanted` (`None`: the best the kernel allows).
pub fn attach(ebpf: &mut Ebpf, btf: &Btf, wanted: Option<ProbeSet>) -> Result<Chosen> {
    let refused = match wanted {
        Some(ProbeSet::Tracepoints) => Some("--probe-set tracepoints".to_string()),
        _ => match attach_own(ebpf, btf, ProbeSet::Trampolines) {
            Ok(()) => None,
            Err(e) if wanted.is_none() => {
                unload_set(ebpf, ProbeSet::Trampolines);
                // What was tried and the kernel's answer, without aya's (empty) verifier log.
                Some(format!("fentry/fexit refused: {e}: {}", e.root_cause()))
            }
            Err(e) => return Err(e.context("--probe-set trampolines")),
        },
    };
    let set = match refused {
        None => ProbeSet::Trampolines,
        Some(_) => ProbeSet::Tracepoints,
    };
    // The trampolines' own probes are attached already.
    let stand_ins = attach_set(ebpf, btf, set, set == ProbeSet::Trampolines)?;
    let mut line = line(set, refused.as_deref());
    let mut probes = PROBES.iter().filter(|p| p.in_set(set)).count();
    for s in &stand_ins {
        line.push_str(&s.said());
        probes -= match &s.refused {
            None => s.probe.replaces.len(),
            Some(_) => 1,
        };
    }
    Ok(Chosen { probes, line })
}

/// A probe that stands in for others ([`Probe::replaces`]), and why it could not, if it could
/// not.
struct StandIn {
    probe: &'static Probe,
    refused: Option<String>,
}

impl StandIn {
    /// What the start line adds about it.
    fn said(&self) -> String {
        let (p, r) = (self.probe, self.probe.replaces.join(", "));
        match &self.refused {
            None => format!("; {} in place of {r}", p.program),
            Some(why) => format!("; {r}, since {} could not be attached: {why}", p.program),
        }
    }
}

/// The start line naming the set and, for the tracepoints, why.
pub fn line(set: ProbeSet, refused: Option<&str>) -> String {
    let of = |set| PROBES.iter().filter(|p| p.only == Some(set)).count();
    match refused {
        None => format!(
            "sensor: probe set {}: the kernel's own audit_log_path_denied and proc_loginuid_write, and {} tracepoints for the exits of the promiscuity syscalls, execve and sendto; no program on every syscall",
            set.name(),
            of(ProbeSet::Trampolines) - 2,
        ),
        Some(why) => format!(
            "sensor: probe set {}: every syscall's exit (sys_exit) for refused opens and links, loginuid writes, promiscuity changes and the exits of execve and sendto ({why})",
            set.name(),
        ),
    }
}

/// The probes of `set` alone.
fn attach_own(ebpf: &mut Ebpf, btf: &Btf, set: ProbeSet) -> Result<()> {
    for probe in PROBES.iter().filter(|p| p.only == Some(set)) {
        attach_one(ebpf, btf, probe)?;
    }
    Ok(())
}

/// Every kernel probe of `set`; with `skip_own`, but its own ones. A probe that stands in for
/// others is loaded first, so that the kernel's verdict decides which programs run, and attached
/// last, once the programs that follow up on what it records are (an exec entered before
/// `sys_exit` was there would leave its thread's state behind). Where it does not load, the
/// programs it stands in for are attached in its place in the table's order: the syscall
/// tracepoints before `sys_exit` (enabling a syscall tracepoint once every syscall takes the
/// traced path hung Debian's 6.1 under QEMU, as patching hot code does there).
fn attach_set(ebpf: &mut Ebpf, btf: &Btf, set: ProbeSet, skip_own: bool) -> Result<Vec<StandIn>> {
    let wanted = |p: &&Probe| p.in_set(set) && !(skip_own && p.only == Some(set));
    let mut said = Vec::new();
    let mut loaded: Vec<&'static Probe> = Vec::new();
    for probe in PROBES
        .iter()
        .filter(wanted)
        .filter(|p| !p.replaces.is_empty())
    {
        match load_stand_in(ebpf, btf, probe) {
            Ok(()) => loaded.push(probe),
            Err(e) => {
                if let Some(prog) = ebpf.program_mut(probe.program) {
                    unload(prog);
                }
                let refused = Some(format!("{e:#}"));
                said.push(StandIn { probe, refused });
            }
        }
    }
    let replaced = |name: &str| loaded.iter().any(|s| s.replaces.contains(&name));
    for probe in PROBES.iter().filter(wanted) {
        if probe.replaces.is_empty() && !replaced(probe.program) {
            attach_one(ebpf, btf, probe)?;
        }
    }
    for probe in loaded {
        let p: &mut BtfTracePoint = program(ebpf, probe)?.try_into()?;
        p.attach()
            .with_context(|| format!("attaching {}", probe.program))?;
        said.push(StandIn {
            probe,
            refused: None,
        });
    }
    Ok(said)
}

/// Loads a stand-in (a BTF tracepoint) without attaching it.
fn load_stand_in(ebpf: &mut Ebpf, btf: &Btf, probe: &Probe) -> Result<()> {
    let Attach::BtfTracePoint { name: tp } = probe.attach else {
        anyhow::bail!(
            "{} stands in for others but is no BTF tracepoint",
            probe.program
        );
    };
    let p: &mut BtfTracePoint = program(ebpf, probe)?.try_into()?;
    p.load(tp, btf)
        .with_context(|| format!("loading {} at BTF tracepoint {tp}", probe.program))
}

fn program<'a>(ebpf: &'a mut Ebpf, probe: &Probe) -> Result<&'a mut Program> {
    let name = probe.program;
    ebpf.program_mut(name)
        .with_context(|| format!("the eBPF object has no program {name}"))
}

fn attach_one(ebpf: &mut Ebpf, btf: &Btf, probe: &Probe) -> Result<()> {
    let name = probe.program;
    let prog = program(ebpf, probe)?;
    let refused = || format!("verifier refused {name}");
    match probe.attach {
        Attach::TracePoint { category, name: tp } => {
            let p: &mut TracePoint = prog.try_into()?;
            p.load().with_context(refused)?;
            p.attach(category, tp)
                .with_context(|| format!("attaching {name} to {category}:{tp}"))?;
        }
        Attach::BtfTracePoint { name: tp } => {
            let p: &mut BtfTracePoint = prog.try_into()?;
            p.load(tp, btf).with_context(refused)?;
            p.attach()
                .with_context(|| format!("attaching {name} to BTF tracepoint {tp}"))?;
        }
        Attach::FEntry { function } => {
            let p: &mut FEntry = prog.try_into()?;
            p.load(function, btf)
                .with_context(|| format!("loading {name} at the entry of {function}"))?;
            p.attach()
                .with_context(|| format!("attaching {name} to the entry of {function}"))?;
        }
        Attach::FExit { function } => {
            let p: &mut FExit = prog.try_into()?;
            p.load(function, btf)
                .with_context(|| format!("loading {name} at the exit of {function}"))?;
            p.attach()
                .with_context(|| format!("attaching {name} to the exit of {function}"))?;
        }
        // Loaded by `load_uprobes`, once the kind of link is chosen.
        Attach::UProbe { .. } | Attach::PamModules => {}
    }
    Ok(())
}

/// Unloads (and so detaches) what of `set`'s own probes did load.
fn unload_set(ebpf: &mut Ebpf, set: ProbeSet) {
    for probe in PROBES.iter().filter(|p| p.only == Some(set)) {
        if let Some(prog) = ebpf.program_mut(probe.program) {
            unload(prog);
        }
    }
}

/// Unloads a kernel probe's program, whatever its kind (uprobes are left alone).
pub fn unload(prog: &mut Program) {
    let _ = match prog {
        Program::TracePoint(p) => p.unload(),
        Program::BtfTracePoint(p) => p.unload(),
        Program::FEntry(p) => p.unload(),
        Program::FExit(p) => p.unload(),
        _ => Ok(()),
    };
}

/// Whether `probe` is a kernel probe (every kind but uprobes).
pub fn is_kernel(probe: &Probe) -> bool {
    !matches!(probe.attach, Attach::UProbe { .. } | Attach::PamModules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_need_is_met_once_in_either_set() {
        // The every-syscall program serves what the trampolines serve: never both, never neither.
        for set in [ProbeSet::Trampolines, ProbeSet::Tracepoints] {
            let sys_exit = PROBES
                .iter()
                .any(|p| p.program == "sys_exit" && p.in_set(set));
            let trampolines = PROBES.iter().any(|p| {
                matches!(p.attach, Attach::FEntry { .. } | Attach::FExit { .. }) && p.in_set(set)
            });
            assert_ne!(sys_exit, trampolines, "{set:?}");
        }
        let all = PROBES.iter().filter(|p| p.only.is_none()).count();
        let own = |set| PROBES.iter().filter(|p| p.only == Some(set)).count();
        assert_eq!(own(ProbeSet::Tracepoints), 2);
        assert_eq!(own(ProbeSet::Trampolines), 10);
        assert_eq!(all + 10 + 2, PROBES.len());
    }

    #[test]
    fn a_stand_in_replaces_programs_of_its_own_set_only() {
        for stand_in in PROBES.iter().filter(|p| !p.replaces.is_empty()) {
            let set = stand_in.only.expect("a stand-in belongs to one set");
            for name in stand_in.replaces {
                let replaced: Vec<_> = PROBES.iter().filter(|p| p.program == *name).collect();
                assert_eq!(replaced.len(), 1, "{name}");
                assert!(
                    replaced[0].in_set(set) && replaced[0].replaces.is_empty(),
                    "{name}"
                );
            }
        }
        let exec_entry = PROBES.iter().find(|p| p.program == "sched_prepare_exec");
        assert_eq!(
            exec_entry.map(|p| p.replaces),
            Some(&["sys_enter_execve", "sys_enter_execveat"][..])
        );
    }

    #[test]
    fn the_line_names_the_set_and_why() {
        let l = line(ProbeSet::Tracepoints, Some("fentry/fexit refused: EPERM"));
        assert!(l.starts_with("sensor: probe set tracepoints: "), "{l}");
        assert!(l.ends_with("(fentry/fexit refused: EPERM)"), "{l}");
        let l = line(ProbeSet::Trampolines, None);
        assert!(
            l.starts_with("sensor: probe set fentry/fexit: the kernel's own"),
            "{l}"
        );
        assert!(l.contains(" 8 tracepoints "), "{l}");
        assert!(!l.contains("probes attached"));
    }
}
