//! libpam calls: the function, its result, the handle's items and the watched modules' verdicts.
//! Whether the call is an anomaly the modules did not report is decided by
//! [`crate::detect::login`].

use sensor_common as wire;

use super::{standalone_context, Normaliser};
use crate::{
    assemble::AssembledPam,
    event::{ModuleResult, PamEvent, PamFunction},
};

/// A normalised call, with the types of the audit messages its thread sent during it.
pub struct PamCall {
    pub event: PamEvent,
    pub messages: Vec<u32>,
}

impl Normaliser {
    pub fn pam(&mut self, a: AssembledPam) -> Option<PamCall> {
        let c = &*a.call;
        let function = *PamFunction::ALL.get(c.func as usize)?;
        let items = c.items.clone();
        let modules: Vec<ModuleResult> = a
            .modules
            .iter()
            .filter_map(|m| {
                Some(ModuleResult {
                    module: wire::PAM_MODULES.get(m.module as usize)?.to_string(),
                    function: wire::PAM_SM_FUNCTIONS.get(m.func as usize)?.to_string(),
                    retval: m.retval,
                })
            })
            .collect();
        // libpam writes one of USER_AUTH … CRED_REFR (1100-1110) for every call it audits.
        let libpam_reported = a.messages.iter().any(|t| (1100..=1110).contains(t));
        let (exe, container, paths_truncated) =
            standalone_context(a.paths.exe.as_ref(), a.paths.cgroup.as_ref(), &c.ns);
        let event = PamEvent {
            stamp: self.stamp_at(c.origin.mono_ns),
            boot_ns: super::clock::boot_ns(c.origin.mono_ns),
            function,
            flags: c.flags,
            retval: c.retval,
            pid: c.origin.pid,
            uid: c.uid,
            auid: c.auid,
            ses: c.ses,
            items,
            modules,
            libpam_reported,
            anomalies: Vec::new(),
            exe,
            container,
            paths_truncated,
        };
        Some(PamCall {
            event,
            messages: a.messages,
        })
    }
}

#[cfg(test)]
mod tests;
