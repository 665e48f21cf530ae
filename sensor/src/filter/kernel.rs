//! The kernel half of the filter (`--rules`): the compiled rules and the objects at the watched
//! paths, kept in the exec programs' maps by a thread of their own, so that looking a watched
//! path up never holds the pipeline. The paths are looked up again every [`REFRESH`]; an object
//! a path held stays matched for [`FORMER`] after the path moved on, as in [`super::select`].

use std::{
    collections::HashMap,
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use aya::maps::{Array, HashMap as BpfHashMap, MapData};
use sensor_common::filter::{
    FilterConf, FilterRule, WatchInode, WatchName, WatchSlots, FILTER_RULES_MAX, WATCH_NAME_PREFIX,
};

use super::rules::compile::{Compiled, Slot};
use crate::fsio;

const REFRESH: Duration = Duration::from_secs(1);
const FORMER: Duration = Duration::from_secs(5);
/// How far ahead of its writing a reload's switch time lies: the maps must say it before it
/// comes.
const SWITCH_AHEAD: Duration = Duration::from_millis(50);

/// The exec programs' filter maps, taken from the loaded object.
pub struct Maps {
    pub conf: Array<MapData, FilterConf>,
    pub rules: Array<MapData, FilterRule>,
    pub inodes: BpfHashMap<MapData, WatchInode, WatchSlots>,
    pub names: BpfHashMap<MapData, WatchName, WatchSlots>,
}

impl Maps {
    /// Takes the filter maps out of the loaded object.
    pub fn take(ebpf: &mut aya::Ebpf) -> anyhow::Result<Maps> {
        use anyhow::Context;
        let mut take = |name: &str| {
            ebpf.take_map(name)
                .with_context(|| format!("no {name} map"))
        };
        Ok(Maps {
            conf: Array::try_from(take("FILTER_CONF")?)?,
            rules: Array::try_from(take("FILTER_RULES")?)?,
            inodes: BpfHashMap::try_from(take("WATCH_INODES")?)?,
            names: BpfHashMap::try_from(take("WATCH_NAMES")?)?,
        })
    }
}

/// The handle the pipeline keeps.
pub struct KernelFilter {
    tx: mpsc::SyncSender<Compiled>,
    /// CLOCK_MONOTONIC of the last reload's switch, once the maps have it (0 before).
    pub switch_ns: Arc<AtomicU64>,
}

/// What one watched path (or tree) holds, as last looked up: the objects (for a tree, its
/// directory and the roots of the mounts under it), and the directory and name.
#[derive(Default)]
struct Seen {
    ids: Vec<(WatchInode, Instant)>,
    name: Option<WatchName>,
}

struct Worker {
    maps: Maps,
    conf: FilterConf,
    banks: [Compiled; 2],
    seen: HashMap<(bool, Vec<u8>), Seen>,
    written_inodes: HashMap<WatchInode, WatchSlots>,
    written_names: HashMap<WatchName, WatchSlots>,
    switch_ns: Arc<AtomicU64>,
}

/// The kernel's `dev_t` (`MKDEV`: major << 20 | minor) of a userspace one.
fn kernel_dev(dev: u64) -> u32 {
    (libc::major(dev) << 20) | libc::minor(dev)
}

fn mono_ns() -> u64 {
    crate::normalise::clock::mono_now()
}

impl KernelFilter {
    /// Starts keeping the maps, with `first` in force from now on.
    pub fn spawn(maps: Maps, own_mnt_ns: u32, first: Compiled) -> KernelFilter {
        let (tx, rx) = mpsc::sync_channel(1);
        let switch_ns = Arc::new(AtomicU64::new(0));
        let mut w = Worker {
            maps,
            conf: FilterConf {
                own_mnt_ns,
                ..Default::default()
            },
            banks: Default::default(),
            seen: HashMap::new(),
            written_inodes: HashMap::new(),
            written_names: HashMap::new(),
            switch_ns: switch_ns.clone(),
        };
        // The first rules go in before the programs judge anything: bank 0 from time 0.
        w.install(first, false);
        std::thread::Builder::new()
            .name("sensor-filter".into())
            .spawn(move || w.serve(rx))
            .expect("starting the filter thread");
        KernelFilter { tx, switch_ns }
    }

    /// Puts `rules` in force in the kernel for execs that enter from a moment shortly ahead,
    /// which `switch_ns` then says. False when a reload is still being put in.
    pub fn reload(&self, rules: Compiled) -> bool {
        self.tx.try_send(rules).is_ok()
    }
}

impl Worker {
    fn serve(mut self, rx: mpsc::Receiver<Compiled>) {
        loop {
            match rx.recv_timeout(REFRESH) {
                Ok(rules) => {
                    if let Some(at) = self.install(rules, true) {
                        self.switch_ns.store(at, Ordering::Release);
                        if mono_ns() >= at {
                            eprintln!("sensor: the rules' switch in the kernel came late: execs that entered just before it were judged in the kernel by the rules before");
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.refresh(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Writes `rules` to the idle bank (bank 0 at the start) and switches to it: from the start
    /// of time, or, for a `reload`, for the execs that enter from a moment just ahead, which it
    /// returns. Execs still in flight from before the last reload are judged by the bank being
    /// written: a reload is not for the middle of a reload.
    fn install(&mut self, rules: Compiled, reload: bool) -> Option<u64> {
        let bank = if self.conf.mode == 0 {
            0
        } else {
            (self.conf.switch & 1) as usize ^ 1
        };
        let base = bank as u32 * FILTER_RULES_MAX;
        for (i, r) in rules.rules.iter().enumerate() {
            if let Err(e) = self.maps.rules.set(base + i as u32, r, 0) {
                eprintln!("sensor: the rules could not be put in the kernel ({e}): the rules before stay in force");
                return None;
            }
        }
        self.conf.nrules[bank] = rules.rules.len() as u32;
        self.conf.trees[bank] = rules.slots.iter().any(|s| s.tree) as u32;
        self.banks[bank] = rules;
        self.refresh();
        let at = match reload {
            false => 0,
            true => mono_ns() + SWITCH_AHEAD.as_nanos() as u64,
        };
        self.conf.switch = (at << 1) | bank as u64;
        self.conf.mode = 1;
        self.write_conf();
        Some(at)
    }

    fn write_conf(&mut self) {
        if let Err(e) = self.maps.conf.set(0, &self.conf, 0) {
            eprintln!("sensor: the kernel filter's state could not be written: {e}");
        }
    }

    /// Looks the watched paths of both banks up and writes what changed.
    fn refresh(&mut self) {
        let now = Instant::now();
        let mut inodes: HashMap<WatchInode, WatchSlots> = HashMap::new();
        let mut names: HashMap<WatchName, WatchSlots> = HashMap::new();
        let wanted: Vec<(bool, Vec<u8>)> = self
            .banks
            .iter()
            .flat_map(|b| &b.slots)
            .flat_map(|s| s.paths.iter().map(|p| (s.tree, p.clone())))
            .collect();
        let mounts = if wanted.iter().any(|(tree, _)| *tree) {
            mount_points()
        } else {
            Vec::new()
        };
        for key in &wanted {
            let seen = self.seen.entry(key.clone()).or_default();
            look_up(&key.1, key.0, &mounts, seen, now);
        }
        self.seen.retain(|k, _| wanted.contains(k));
        for (bank, compiled) in self.banks.iter().enumerate() {
            for (slot, Slot { tree, paths }) in compiled.slots.iter().enumerate() {
                let (word, bit) = (slot / 64, 1u64 << (slot % 64));
                for path in paths {
                    let Some(seen) = self.seen.get(&(*tree, path.clone())) else {
                        continue;
                    };
                    for (id, _) in &seen.ids {
                        inodes.entry(*id).or_default()[bank][word] |= bit;
                    }
                    if let Some(name) = seen.name {
                        names.entry(name).or_default()[bank][word] |= bit;
                    }
                }
            }
        }
        let full = write_diff(&mut self.maps.inodes, &mut self.written_inodes, inodes)
            | write_diff(&mut self.maps.names, &mut self.written_names, names);
        // A map that could not take every object: every watch of both banks may hold.
        let doubt = [full as u32; 2];
        if doubt != self.conf.doubt {
            self.conf.doubt = doubt;
            if self.conf.mode != 0 {
                self.write_conf();
            }
        }
    }
}

/// Writes the entries of `want` that changed and removes those gone; true when the map refused
/// one.
fn write_diff<K: aya::Pod + Eq + std::hash::Hash + Copy>(
    map: &mut BpfHashMap<MapData, K, WatchSlots>,
    written: &mut HashMap<K, WatchSlots>,
    want: HashMap<K, WatchSlots>,
) -> bool {
    let mut refused = false;
    written.retain(|k, _| {
        let keep = want.contains_key(k);
        if !keep {
            let _ = map.remove(k);
        }
        keep
    });
    for (k, v) in want {
        if written.get(&k) != Some(&v) {
            if map.insert(&k, &v, 0).is_ok() {
                written.insert(k, v);
            } else {
                refused = true;
            }
        }
    }
    refused
}

/// Looks `path` up (within the lookup deadline): its object, kept with those it held lately,
/// and its directory and name; for a `tree`, the directory and the roots of the mounts under
/// it, which `audit_tree` tags too.
fn look_up(path: &[u8], tree: bool, mounts: &[Vec<u8>], seen: &mut Seen, now: Instant) {
    let owned = path.to_vec();
    let under: Vec<Vec<u8>> = match tree {
        false => Vec::new(),
        true => {
            let dir = path.strip_suffix(b"/").unwrap_or(path);
            mounts
                .iter()
                .filter(|m| m.starts_with(dir) && m.get(dir.len()) == Some(&b'/'))
                .cloned()
                .collect()
        }
    };
    let found = fsio::with_deadline(fsio::deadline(), move || {
        let p = Path::new(OsStr::from_bytes(&owned));
        let id = |m: std::fs::Metadata| WatchInode {
            ino: m.ino(),
            dev: kernel_dev(m.dev()),
            _pad: 0,
        };
        // The last component is not followed: a watch (or tree) on a symlink is on the symlink.
        let mut ids: Vec<WatchInode> = std::fs::symlink_metadata(p)
            .ok()
            .filter(|m| !tree || m.is_dir())
            .map(id)
            .into_iter()
            .collect();
        for m in &under {
            ids.extend(
                std::fs::metadata(Path::new(OsStr::from_bytes(m)))
                    .ok()
                    .map(id),
            );
        }
        let name = match (tree, p.parent(), p.file_name()) {
            (false, Some(dir), Some(file)) => std::fs::metadata(dir).ok().map(|m| {
                let bytes = file.as_bytes();
                let mut name = WatchName {
                    dir_ino: m.ino(),
                    dir_dev: kernel_dev(m.dev()),
                    len: bytes.len() as u32,
                    name: [0; WATCH_NAME_PREFIX],
                };
                let n = bytes.len().min(WATCH_NAME_PREFIX);
                name.name[..n].copy_from_slice(&bytes[..n]);
                name
            }),
            _ => None,
        };
        (ids, name)
    });
    let Some((ids, name)) = found else {
        // Not looked up in time: what was known stays, former objects age out.
        seen.ids.retain(|(_, at)| now.duration_since(*at) < FORMER);
        return;
    };
    for id in ids {
        seen.ids.retain(|(i, _)| *i != id);
        seen.ids.push((id, now));
    }
    seen.ids.retain(|(_, at)| now.duration_since(*at) < FORMER);
    seen.name = name;
}

/// The mount points of the sensor's namespace (`/proc/self/mountinfo`'s fifth field, its
/// octal escapes decoded).
fn mount_points() -> Vec<Vec<u8>> {
    let info = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    info.split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(unescape)
        .collect()
}

/// `\040` and its kind, as the kernel's `seq_file` escapes a path.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
