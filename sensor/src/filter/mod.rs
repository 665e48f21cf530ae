//! Stage 6: which events are written. `--drop-untrusted` leaves out user messages the kernel
//! would have refused; the user's audit.rules (`--rules`) decide which execs are written and
//! with which key, as the kernel's exit list does ([`rules::select`]). Without rules every exec
//! is written, as if `-a always,exit -S execve,execveat` were loaded. The sensor's own loss
//! records pass whatever the rules say.

pub mod rules;

use crate::event::Event;
use rules::{
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
            list,
            locked,
            watched: Watched::default(),
        }
    }
}

#[derive(Default)]
pub struct Filter {
    /// Leave out user-space messages the kernel would have refused.
    pub drop_untrusted: bool,
    /// `--rules`: the exit list decides which execs are written.
    pub rules: Option<Rules>,
}

impl Filter {
    /// Whether `ev` is written; an exec a rule selects gets that rule's key.
    pub fn keep(&mut self, ev: &mut Event) -> bool {
        match ev {
            Event::UserMessage(m) => m.trusted || !self.drop_untrusted,
            Event::Exec(e) => match &mut self.rules {
                None => true,
                Some(r) => match select::exec(&r.list, e, &mut r.watched) {
                    Verdict::Record(key) => {
                        e.key = key;
                        true
                    }
                    Verdict::Skip => false,
                },
            },
            _ => true,
        }
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
        let mut drop = Filter {
            drop_untrusted: true,
            rules: None,
        };
        assert!(keep_all.keep(&mut untrusted) && keep_all.keep(&mut trusted));
        assert!(!drop.keep(&mut untrusted));
        assert!(drop.keep(&mut trusted) && drop.keep(&mut lost));
    }
}
