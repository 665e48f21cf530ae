//! Names that left `/etc/passwd` and `/etc/group` lately, noticed by a thread that looks at the
//! files every [`History::PERIOD`], whatever the events, and by a lookup that finds nothing: an
//! account created and removed between two events the sensor writes (`useradd`, then
//! `userdel`, within the reader's coalescing delay) still has its name in ENRICHED records, as
//! auditd, which enriches as records arrive, gives it.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{version, SystemNames, Version};

type Retired = [HashMap<u32, (Vec<u8>, Instant)>; 2];

/// What the thread saw, shared with the lookups: a lookup that finds nothing runs one check
/// itself first, so a name that left the files just before its record is found even when the
/// thread has not run since (on a busy host it can run late).
#[derive(Debug, Default)]
struct State {
    files: [PathBuf; 2],
    grace: Duration,
    seen: [Option<Version>; 2],
    last: Option<SystemNames>,
    retired: Retired,
    checked: Option<Instant>,
}

#[derive(Clone, Debug, Default)]
pub struct History(Arc<Mutex<State>>);

impl History {
    const PERIOD: Duration = Duration::from_millis(20);
    /// A lookup's own check, at most this often: ids that are in no file (a container's, say)
    /// miss on every record.
    const LOOKUP_PERIOD: Duration = Duration::from_millis(1);

    /// The files as they are now, not watched: `check` looks again.
    fn new(passwd: PathBuf, group: PathBuf, grace: Duration) -> History {
        let seen = [version(&passwd), version(&group)];
        let last = SystemNames::from_files(&passwd, &group).ok();
        History(Arc::new(Mutex::new(State {
            files: [passwd, group],
            grace,
            seen,
            last,
            retired: Default::default(),
            checked: Some(Instant::now()),
        })))
    }

    /// Starts watching the files; the thread ends once every handle is dropped.
    pub fn watch(passwd: PathBuf, group: PathBuf, grace: Duration) -> History {
        let history = History::new(passwd, group, grace);
        let shared = Arc::downgrade(&history.0);
        let _ = std::thread::Builder::new()
            .name("sensor-names".into())
            .spawn(move || loop {
                std::thread::sleep(Self::PERIOD);
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.lock().unwrap_or_else(|e| e.into_inner()).check();
            });
        history
    }

    /// The name `id` had (`kind` 0: users, 1: groups) if it left the files within `grace`.
    pub fn get(&self, kind: usize, id: u32, grace: Duration) -> Option<Vec<u8>> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if state
            .checked
            .is_some_and(|at| at.elapsed() >= Self::LOOKUP_PERIOD)
        {
            state.check();
        }
        state.retired[kind & 1]
            .get(&id)
            .filter(|(_, at)| at.elapsed() < grace)
            .map(|(name, _)| name.clone())
    }
}

impl State {
    /// Reads the files again if they changed, and retires the ids that left them.
    fn check(&mut self) {
        self.checked = Some(Instant::now());
        let now = [version(&self.files[0]), version(&self.files[1])];
        if now == self.seen {
            return;
        }
        self.seen = now;
        let Ok(names) = SystemNames::from_files(&self.files[0], &self.files[1]) else {
            return;
        };
        if let Some(old) = self.last.replace(names) {
            let new = self.last.as_ref().expect("just put");
            retire(&mut self.retired, &old, new, self.grace);
        }
    }
}

fn retire(retired: &mut Retired, old: &SystemNames, new: &SystemNames, grace: Duration) {
    let at = Instant::now();
    for (retired, (was, is)) in retired
        .iter_mut()
        .zip([(&old.users, &new.users), (&old.groups, &new.groups)])
    {
        retired.retain(|id, (_, when)| !is.contains_key(id) && when.elapsed() < grace);
        for (id, name) in was {
            if !is.contains_key(id) {
                retired.insert(*id, (name.clone(), at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_added_and_removed_between_events_keeps_its_name() {
        let dir = std::env::temp_dir().join(format!("sensor-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (passwd, group) = (dir.join("passwd"), dir.join("group"));
        std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(&group, "root:x:0:\n").unwrap();
        let grace = Duration::from_secs(10);
        let history = History::watch(passwd.clone(), group.clone(), grace);
        std::thread::sleep(History::PERIOD * 3);
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\ntmp:x:1002:1002::/:/bin/sh\n",
        )
        .unwrap();
        std::thread::sleep(History::PERIOD * 5);
        std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::thread::sleep(History::PERIOD * 5);
        assert_eq!(history.get(0, 1002, grace), Some(b"tmp".to_vec()));
        assert_eq!(history.get(0, 0, grace), None);
        assert_eq!(history.get(0, 1002, Duration::ZERO), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lookup_sees_a_removal_the_thread_has_not_seen_yet() {
        let dir = std::env::temp_dir().join(format!("sensor-history-now-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (passwd, group) = (dir.join("passwd"), dir.join("group"));
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\ntmp:x:1002:1002::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(&group, "root:x:0:\n").unwrap();
        let grace = Duration::from_secs(10);
        // No thread: as one that has not run since the account left.
        let history = History::new(passwd.clone(), group.clone(), grace);
        std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::thread::sleep(History::LOOKUP_PERIOD);
        assert_eq!(history.get(0, 1002, grace), Some(b"tmp".to_vec()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
