//! Stage 6: which events are written. `--drop-untrusted` leaves out user messages the kernel
//! would have refused; the user's audit.rules (`--rules`) decide which execs are written and
//! with which key, as the kernel's exit list does ([`rules::select`]). Without rules every exec
//! is written, as if `-a always,exit -S execve,execveat` were loaded. The sensor's own loss
//! records pass whatever the rules say.

pub mod kernel;
pub mod rules;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use crate::event::{Anomaly, Event};
use rules::{
    lists::{self, Subject},
    select::{self, Verdict, Watched},
    Rule,
};

/// The rules in force and the watched paths' inodes.
#[derive(Default)]
pub struct Rules {
    pub list: Vec<Rule>,
    /// `-e 2`: not reloaded until restart.
    pub locked: bool,
    watched: Watched,
}

impl Rules {
    pub fn new(list: Vec<Rule>, locked: bool) -> Self {
        Rules {
            watched: Watched::new(&list),
            list,
            locked,
        }
    }
}

#[derive(Default)]
pub struct Filter {
    /// Leave out user-space messages the kernel would have refused.
    pub drop_untrusted: bool,
    /// `--rules`: the exit list decides which execs are written.
    pub rules: Option<Rules>,
    /// Rules read again, and the CLOCK_BOOTTIME from which they are in force.
    next: Option<(Rules, u64)>,
    /// Rules read again, waiting for the kernel half to say from when they are in force.
    pending: Option<Rules>,
    /// The kernel half's switch time (CLOCK_MONOTONIC, `kernel::KernelFilter::switch_ns`),
    /// and the last one taken.
    kernel_switch: Option<(Arc<AtomicU64>, u64)>,
}

fn boot_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// When the event happened (CLOCK_BOOTTIME); 0 for the sensor's own records.
fn boot_ns(ev: &Event) -> u64 {
    match ev {
        Event::Exec(e) => e.boot_ns,
        Event::Abend(a) => a.boot_ns,
        Event::Anomaly(a) => a.boot_ns,
        Event::UserMessage(m) => m.boot_ns,
        Event::Pam(p) => p.boot_ns,
        Event::Lost(_) => 0,
    }
}

impl Filter {
    pub fn new(drop_untrusted: bool, rules: Option<Rules>) -> Filter {
        Filter {
            drop_untrusted,
            rules,
            ..Filter::default()
        }
    }

    /// The rules are judged in the kernel too: a reload takes effect from the moment the kernel
    /// half switches.
    pub fn judged_in_kernel(&mut self, switch_ns: Arc<AtomicU64>) {
        self.kernel_switch = Some((switch_ns, 0));
    }

    /// Whether the rules in force, or those about to be, were locked by `-e 2`.
    pub fn locked(&self) -> bool {
        match (&self.pending, &self.next, &self.rules) {
            (Some(r), _, _) | (None, Some((r, _)), _) | (None, None, Some(r)) => r.locked,
            (None, None, None) => false,
        }
    }

    /// Puts `rules` in force for the events that happen from now on, or, with a kernel half,
    /// from when it switches.
    pub fn reload(&mut self, rules: Rules) {
        match self.kernel_switch {
            Some(_) => self.pending = Some(rules),
            None => self.next = Some((rules, boot_now())),
        }
    }

    /// Whether `ev` is written; an exec a rule selects gets that rule's key.
    pub fn keep(&mut self, ev: &mut Event) -> bool {
        if let (Some((switch, taken)), Some(_)) = (&mut self.kernel_switch, &self.pending) {
            let at = switch.load(Ordering::Acquire);
            if at != *taken {
                *taken = at;
                let boot = crate::normalise::clock::boot_ns(at);
                self.next = self.pending.take().map(|r| (r, boot));
            }
        }
        if self.next.as_ref().is_some_and(|(_, at)| boot_ns(ev) >= *at) {
            self.rules = self.next.take().map(|(r, _)| r);
        }
        match ev {
            Event::UserMessage(m) => {
                (m.trusted || !self.drop_untrusted)
                    && self.rules.as_ref().is_none_or(|r| {
                        let sender = lists::Sender {
                            msg_type: m.msg_type,
                            pid: m.pid,
                            uid: m.uid,
                            auid: m.auid,
                            exe: m.exe.as_deref(),
                        };
                        lists::user_message(&r.list, &sender)
                    })
            }
            Event::Exec(e) => match &mut self.rules {
                None => true,
                Some(r) => match select::exec(&r.list, e, &mut r.watched) {
                    Verdict::Record(key) => {
                        e.key = key;
                        true
                    }
                    Verdict::Skip | Verdict::Unmatched => false,
                },
            },
            // A kernel record written during a syscall (LOGIN, ANOM_LINK…) is written whatever
            // the rules; its SYSCALL and PROCTITLE follow the exit list: none without exit
            // rules (the kernel's dummy context), none when a `never` rule matches, the key of
            // an `always` rule that matches.
            Event::Anomaly(a) => {
                if let (Some(r), Some(sc)) = (&mut self.rules, &a.syscall) {
                    let exit_rules = r.list.iter().any(|x| x.list == rules::List::Exit);
                    let call = select::Call {
                        arch: crate::event::AUDIT_ARCH_X86_64,
                        syscall: sc.syscall,
                        success: sc.success,
                        exit: sc.exit,
                        regs: sc.regs,
                        task: &sc.task,
                        paths: &[],
                        cwd: None,
                    };
                    match select::call(&r.list, &call, &mut r.watched) {
                        _ if !exit_rules => a.syscall = None,
                        Verdict::Skip => a.syscall = None,
                        Verdict::Record(key) => a.key = key,
                        Verdict::Unmatched => {}
                    }
                }
                true
            }
            _ => true,
        }
    }

    /// The record types of `ev` the exclude list leaves out.
    pub fn hidden(&self, ev: &Event) -> Vec<u32> {
        let Some(rules) = &self.rules else {
            return Vec::new();
        };
        // Most rule sets have no exclude rule: nothing to work out per event then.
        if !rules.list.iter().any(|r| r.list == rules::List::Exclude) {
            return Vec::new();
        }
        let (subject, types) = subject_and_types(ev);
        lists::excluded(&rules.list, &subject, &types)
    }
}

/// The task an event's records are logged for and the record types it can have.
fn subject_and_types(ev: &Event) -> (Subject, Vec<u32>) {
    let of_task = |t: &crate::event::Task| Subject {
        pid: Some(t.pid),
        uid: Some(t.uid),
        euid: Some(t.euid),
        suid: Some(t.suid),
        fsuid: Some(t.fsuid),
        auid: Some(t.auid),
        gid: Some(t.gid),
        egid: Some(t.egid),
        sgid: Some(t.sgid),
        fsgid: Some(t.fsgid),
    };
    let sender = |pid: u32, uid: u32, auid: u32| Subject {
        pid: Some(pid),
        uid: Some(uid),
        auid: Some(auid),
        ..Subject::default()
    };
    let by_name = |n: &str| crate::catalog::find(n).map_or(0, |t| t.number);
    match ev {
        Event::Exec(e) => (of_task(&e.task), vec![1300, 1321, 1309, 1307, 1302, 1327]),
        Event::UserMessage(m) => (sender(m.pid, m.uid, m.auid), vec![m.msg_type]),
        Event::Pam(p) => (
            sender(p.pid, p.uid, p.auid),
            (1100..=1110).chain(2100..=2104).collect(),
        ),
        Event::Abend(a) => (
            Subject {
                pid: Some(a.pid),
                uid: Some(a.uid),
                auid: Some(a.auid),
                gid: Some(a.gid),
                ..Subject::default()
            },
            vec![1701],
        ),
        Event::Anomaly(a) => {
            let kind = match &a.anomaly {
                Anomaly::PathDenied { denial, .. } => by_name(denial.record_type()),
                Anomaly::Promiscuous(_) => 1700,
                Anomaly::Login(_) => 1006,
            };
            let subject = a
                .syscall
                .as_ref()
                .map(|s| of_task(&s.task))
                .unwrap_or_default();
            (subject, vec![kind, 1300, 1327])
        }
        Event::Lost(_) => (Subject::default(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event::LostEvent, testing::pam::user_message};

    #[test]
    fn untrusted_messages_are_dropped_only_when_asked() {
        let mut untrusted = user_message(1, 1100, b"op=PAM:authentication res=success");
        untrusted.trusted = false;
        let (untrusted, trusted) = (
            Event::UserMessage(untrusted.clone()),
            Event::UserMessage(user_message(2, 1100, b"op=x res=success")),
        );
        let (mut untrusted, mut trusted) = (untrusted, trusted);
        let mut lost = Event::Lost(LostEvent::default());
        let mut keep_all = Filter::default();
        let mut drop = Filter::new(true, None);
        assert!(keep_all.keep(&mut untrusted) && keep_all.keep(&mut trusted));
        assert!(!drop.keep(&mut untrusted));
        assert!(drop.keep(&mut trusted) && drop.keep(&mut lost));
    }

    #[test]
    fn a_login_events_syscall_part_follows_the_exit_list() {
        use crate::filter::rules::{parse, Line};
        let login = || {
            let ev = crate::testing::events::anomaly_shapes()
                .into_iter()
                .find(|a| matches!(a.anomaly, crate::event::Anomaly::Login(_)))
                .unwrap();
            Event::Anomaly(ev)
        };
        let with = |text: &str| {
            let list = text
                .lines()
                .filter_map(|l| match parse::line(l).unwrap() {
                    Line::Rule(r) => Some(r),
                    _ => None,
                })
                .collect();
            let mut f = Filter::new(false, Some(Rules::new(list, false)));
            let mut ev = login();
            assert!(f.keep(&mut ev), "LOGIN is written whatever the rules");
            match ev {
                Event::Anomaly(a) => (a.syscall.is_some(), a.key),
                _ => unreachable!(),
            }
        };
        assert_eq!(
            with("-a never,user -F uid=0"),
            (false, None),
            "no exit rules"
        );
        assert_eq!(with("-a never,exit -S write"), (false, None));
        assert_eq!(
            with("-a always,exit -S write -k lw"),
            (true, Some(b"lw".to_vec()))
        );
        assert_eq!(with("-a always,exit -S execve -k x"), (true, None));
    }
}
