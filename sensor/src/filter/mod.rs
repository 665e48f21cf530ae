//! Stage 6: which events are written. Today the one choice is `--drop-untrusted`; the user's
//! audit.rules (the exit, user and exclude lists, and the keys they give) decide here, between
//! detection and the encoders. The sensor's own loss records pass whatever the rules say.

use crate::event::Event;

#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Leave out user-space messages the kernel would have refused.
    pub drop_untrusted: bool,
}

impl Filter {
    pub fn keep(&self, ev: &Event) -> bool {
        match ev {
            Event::UserMessage(m) => m.trusted || !self.drop_untrusted,
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
        let lost = Event::Lost(LostEvent::default());
        let keep_all = Filter::default();
        let drop = Filter {
            drop_untrusted: true,
        };
        assert!(keep_all.keep(&untrusted) && keep_all.keep(&trusted));
        assert!(!drop.keep(&untrusted));
        assert!(drop.keep(&trusted) && drop.keep(&lost));
    }
}
