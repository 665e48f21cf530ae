//! Names that left `/etc/passwd` and `/etc/group` lately, noticed by a thread that looks at the
//! files every [`History::PERIOD`], whatever the events: an account created and removed between
//! two events the sensor writes (`useradd`, then `userdel`, within the reader's coalescing
//! delay) still has its name in ENRICHED records, as auditd, which enriches as records arrive,
//! gives it.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{version, SystemNames};

type Retired = [HashMap<u32, (Vec<u8>, Instant)>; 2];

#[derive(Clone, Debug, Default)]
pub struct History(Arc<Mutex<Retired>>);

impl History {
    const PERIOD: Duration = Duration::from_millis(20);

    /// Starts watching the files; the thread ends once every handle is dropped.
    pub fn watch(passwd: PathBuf, group: PathBuf, grace: Duration) -> History {
        let history = History::default();
        let shared = Arc::downgrade(&history.0);
        let _ = std::thread::Builder::new()
            .name("sensor-names".into())
            .spawn(move || {
                let mut seen = [version(&passwd), version(&group)];
                let mut last = SystemNames::from_files(&passwd, &group).ok();
                loop {
                    std::thread::sleep(Self::PERIOD);
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    let now = [version(&passwd), version(&group)];
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    let Ok(names) = SystemNames::from_files(&passwd, &group) else {
                        continue;
                    };
                    if let Some(old) = last.replace(names) {
                        let new = last.as_ref().expect("just put");
                        retire(&shared, &old, new, grace);
                    }
                }
            });
        history
    }

    /// The name `id` had (`kind` 0: users, 1: groups) if it left the files within `grace`.
    pub fn get(&self, kind: usize, id: u32, grace: Duration) -> Option<Vec<u8>> {
        let retired = self.0.lock().unwrap_or_else(|e| e.into_inner());
        retired[kind & 1]
            .get(&id)
            .filter(|(_, at)| at.elapsed() < grace)
            .map(|(name, _)| name.clone())
    }
}

fn retire(shared: &Mutex<Retired>, old: &SystemNames, new: &SystemNames, grace: Duration) {
    let at = Instant::now();
    let mut retired = shared.lock().unwrap_or_else(|e| e.into_inner());
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
}
