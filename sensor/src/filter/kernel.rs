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

use super::rules::compile::Compiled;
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

/// What one watched path holds, as last looked up.
#[derive(Default)]
struct Seen {
    ids: Vec<(WatchInode, Instant)>,
    name: Option<WatchName>,
    interp: bool,
}

struct Worker {
    maps: Maps,
    conf: FilterConf,
    banks: [Compiled; 2],
    seen: HashMap<Vec<u8>, Seen>,
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
        w.install(first, 0);
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
                    let at = mono_ns() + SWITCH_AHEAD.as_nanos() as u64;
                    self.install(rules, at);
                    self.switch_ns.store(at, Ordering::Release);
                    if mono_ns() >= at {
                        eprintln!("sensor: the rules' switch in the kernel came late: execs entered just before it were judged in the kernel by the rules before");
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.refresh(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Writes `rules` to the idle bank (bank 0 at the start) and switches to it for execs that
    /// enter from `at` on.
    fn install(&mut self, rules: Compiled, at: u64) {
        let bank = if self.conf.mode == 0 {
            0
        } else {
            (self.conf.switch & 1) as usize ^ 1
        };
        let base = bank as u32 * FILTER_RULES_MAX;
        for (i, r) in rules.rules.iter().enumerate() {
            if let Err(e) = self.maps.rules.set(base + i as u32, r, 0) {
                eprintln!("sensor: the rules could not be put in the kernel ({e}): every exec is judged by the agent");
                return;
            }
        }
        self.conf.nrules[bank] = rules.rules.len() as u32;
        self.banks[bank] = rules;
        self.refresh();
        self.conf.switch = (at << 1) | bank as u64;
        self.conf.mode = 1;
        self.write_conf();
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
        let mut interp = [0u64; 2];
        let paths: Vec<Vec<u8>> = self
            .banks
            .iter()
            .flat_map(|b| b.slots.iter().flatten().cloned())
            .collect();
        for path in &paths {
            let seen = self.seen.entry(path.clone()).or_default();
            look_up(path, seen, now);
        }
        self.seen.retain(|p, _| paths.contains(p));
        for (bank, compiled) in self.banks.iter().enumerate() {
            for (slot, paths) in compiled.slots.iter().enumerate() {
                let bit = 1u64 << slot;
                for path in paths {
                    let Some(seen) = self.seen.get(path) else {
                        continue;
                    };
                    for (id, _) in &seen.ids {
                        inodes.entry(*id).or_default()[bank] |= bit;
                    }
                    if let Some(name) = seen.name {
                        names.entry(name).or_default()[bank] |= bit;
                    }
                    if seen.interp {
                        interp[bank] |= bit;
                    }
                }
            }
        }
        let full = write_diff(&mut self.maps.inodes, &mut self.written_inodes, inodes)
            | write_diff(&mut self.maps.names, &mut self.written_names, names);
        // A map that could not take every object: every watch of a successful exec may hold.
        if full {
            interp = [u64::MAX; 2];
        }
        if interp != self.conf.interp_slots {
            self.conf.interp_slots = interp;
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
/// its directory and name, and whether the object may be an ELF interpreter.
fn look_up(path: &[u8], seen: &mut Seen, now: Instant) {
    let owned = path.to_vec();
    let found = fsio::with_deadline(fsio::DEADLINE, move || {
        let p = Path::new(OsStr::from_bytes(&owned));
        // The last component is not followed: a watch on a symlink is on the symlink.
        let id = std::fs::symlink_metadata(p).ok().map(|m| WatchInode {
            ino: m.ino(),
            dev: kernel_dev(m.dev()),
            _pad: 0,
        });
        let name = match (p.parent(), p.file_name()) {
            (Some(dir), Some(file)) => std::fs::metadata(dir).ok().map(|m| {
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
        let interp = id.is_some() && may_be_interpreter(p);
        (id, name, interp)
    });
    let Some((id, name, interp)) = found else {
        // Not looked up in time: what was known stays, former objects age out.
        seen.ids.retain(|(_, at)| now.duration_since(*at) < FORMER);
        return;
    };
    if let Some(id) = id {
        seen.ids.retain(|(i, _)| *i != id);
        seen.ids.push((id, now));
    }
    seen.ids.retain(|(_, at)| now.duration_since(*at) < FORMER);
    seen.name = name;
    seen.interp = interp;
}

/// Whether the file at `path` (not following a final symlink) could be loaded as an ELF
/// interpreter: a shared object without an interpreter of its own, as ld.so is. Blocking: run
/// within a deadline.
fn may_be_interpreter(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fsio::open_regular(path, false, u64::MAX) else {
        return false;
    };
    let mut eh = [0u8; 18];
    if f.read_exact(&mut eh).is_err() || &eh[..4] != b"\x7fELF" {
        return false;
    }
    const ET_DYN: u16 = 3;
    if u16::from_le_bytes([eh[16], eh[17]]) != ET_DYN {
        return false;
    }
    // ELF32 (an i386 loader): not parsed further, so it may be one.
    if eh[4] != 2 {
        return true;
    }
    f.seek(SeekFrom::Start(0)).is_ok()
        && crate::normalise::lookup::parse_elf_interp(&mut f).is_none()
}

#[cfg(test)]
mod tests;
