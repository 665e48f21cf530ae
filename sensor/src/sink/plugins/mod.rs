//! auditd's own dispatcher plugins (audisp-remote, audisp-syslog, LAUREL, …), run the way
//! auditd 3.0.9 runs them: every file of `plugin_dir` is read as auditd reads it ([`conf`]),
//! every active one with `type = always` is started ([`dispatch`]), and every event is written to
//! its stdin in its `format` ([`frame`]). Unlike auditd, whose one dispatcher thread writes to
//! the plugins in turn, each plugin has its own queue ([`queue`]) and writer thread: a plugin
//! that stops reading fills only its own queue, and neither the other plugins nor the outputs
//! wait for it.
//!
//! auditd.conf's `overflow_action`, for one plugin's full queue: `ignore` drops the event;
//! `syslog` drops it and says so on stderr (5 times, as auditd); `suspend` sends that plugin
//! nothing more until a reload. `single` and `halt` would have auditd take the host down
//! (`init 1`, `init 0`): the sensor does not, and acts as `syslog`. Every dropped event is counted
//! as unwritten. `builtin` plugins (`builtin_af_unix`) are code inside auditd and are not run.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

pub mod conf;
mod dispatch;
pub mod frame;
mod queue;
#[cfg(test)]
mod tests;

use crate::config::AuditdConf;
pub use crate::config::Overflow;
use conf::{Format, Kind, PluginConf};
use dispatch::Plugin;
use queue::{Item, Queue};

/// How long stopping waits for the plugins to take what is queued for them.
const DRAIN: Duration = Duration::from_secs(3);

/// The dispatcher's part of auditd.conf; the defaults are auditd's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub plugin_dir: PathBuf,
    pub q_depth: u32,
    pub overflow_action: Overflow,
    pub max_restarts: u32,
    /// `log_format = ENRICHED`: auditd hands plugins the enriched lines (protocol version 1).
    pub enriched: bool,
}

impl From<&AuditdConf> for Settings {
    fn from(c: &AuditdConf) -> Self {
        Settings {
            plugin_dir: c.plugin_dir.clone(),
            q_depth: c.q_depth,
            overflow_action: c.overflow_action,
            max_restarts: c.max_restarts,
            enriched: c.log_format == crate::config::LogFormat::Enriched,
        }
    }
}

impl Default for Settings {
    /// auditd's defaults.
    fn default() -> Self {
        Settings::from(&AuditdConf::default())
    }
}

pub struct Plugins {
    settings: Settings,
    running: Vec<Plugin>,
    /// Unwritten counts of plugins a reload stopped (they stop on a thread of their own).
    retired: Arc<AtomicU64>,
}

/// The active, runnable plugins of `dir`, each problem said on stderr as auditd logs it.
fn read_dir(dir: &Path) -> Vec<PluginConf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            // auditd quietly runs no plugins when the directory cannot be opened.
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("sensor: plugin_dir {}: {e}; no plugins run", dir.display());
            }
            return Vec::new();
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| conf::is_candidate(n.as_encoded_bytes()))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let file = dir.join(&name);
        match conf::load(&file) {
            Ok((c, warnings)) => {
                for w in warnings {
                    eprintln!("sensor: plugin {}: {w}", file.display());
                }
                if !c.active {
                    continue;
                }
                if c.kind == Kind::Builtin {
                    eprintln!(
                        "sensor: plugin {}: {} is built into auditd, not a program: not run",
                        file.display(),
                        c.path
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    );
                    continue;
                }
                out.push(c);
            }
            Err(e) => eprintln!(
                "sensor: plugin {}: {e}; skipping it, as auditd does",
                file.display()
            ),
        }
    }
    out
}

impl Plugins {
    /// Reads `plugin_dir` and starts every active plugin; says on stderr what runs.
    pub fn start(settings: Settings) -> Plugins {
        if matches!(settings.overflow_action, Overflow::Single | Overflow::Halt) {
            eprintln!("sensor: overflow_action {:?}: the sensor does not take the host down for a plugin that falls behind; it reports as with syslog", settings.overflow_action);
        }
        let mut plugins = Plugins {
            settings,
            running: Vec::new(),
            retired: Arc::default(),
        };
        for c in read_dir(&plugins.settings.plugin_dir) {
            plugins.launch(c);
        }
        plugins
    }

    fn launch(&mut self, c: PluginConf) {
        let s = &self.settings;
        eprintln!(
            "sensor: plugin {} started: {}",
            c.name,
            c.path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        let queue = Queue::new(s.q_depth as usize, s.overflow_action);
        self.running.push(Plugin::start(c, queue, s.max_restarts));
    }

    /// Plugins running (or queued for).
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Whether plugins get the enriched lines ([`Settings::enriched`]).
    pub fn enriched(&self) -> bool {
        self.settings.enriched
    }

    /// Queues one event (its records as log lines, RAW or enriched as [`Plugins::enriched`]
    /// says) for every plugin, never waiting.
    pub fn push(&mut self, event: &[u8]) {
        if self.running.is_empty() {
            return;
        }
        let binary = self.running.iter().any(|p| p.conf.format == Format::Binary);
        let framed = frame::frame(event, binary, self.settings.enriched);
        let string: Arc<[u8]> = framed.string.into();
        let binary: Arc<[u8]> = framed.binary.into();
        for p in &self.running {
            let bytes = match p.conf.format {
                Format::String => string.clone(),
                Format::Binary => binary.clone(),
            };
            let item = Item {
                bytes,
                records: framed.records,
            };
            p.queue.push(&p.conf.name, item);
        }
    }

    /// Events the plugins could not take, since start (summed over plugins).
    pub fn unwritten(&self) -> u64 {
        self.retired.load(Ordering::Relaxed) + self.running.iter().map(unwritten).sum::<u64>()
    }

    /// SIGHUP, as auditd's `reconfigure`: `plugin_dir` read again; a new plugin is started, one
    /// no longer there or no longer active is stopped, one whose program changed (another inode)
    /// is restarted, and the others are sent SIGHUP. New q_depth (only ever larger, as auditd),
    /// overflow_action and max_restarts apply to every plugin.
    pub fn reload(&mut self, settings: Settings) {
        self.settings = settings;
        let mut wanted = read_dir(&self.settings.plugin_dir);
        let mut stopping = Vec::new();
        let mut kept = Vec::new();
        for p in std::mem::take(&mut self.running) {
            match wanted.iter().position(|c| c.name == p.conf.name) {
                Some(i) if wanted[i].inode == p.conf.inode && !p.finished() => {
                    wanted.remove(i);
                    p.queue.hup();
                    kept.push(p);
                }
                found => {
                    eprintln!(
                        "sensor: plugin {} stopped: {}",
                        p.conf.name,
                        match found {
                            None => "no longer in plugin_dir or no longer active",
                            Some(_) if p.finished() => "it is started again",
                            Some(_) => "its program changed, it is started again",
                        }
                    );
                    p.queue.close();
                    stopping.push(p);
                }
            }
        }
        let s = &self.settings;
        for p in &kept {
            p.queue.configure(s.q_depth as usize, s.overflow_action);
            p.control
                .max_restarts
                .store(s.max_restarts, Ordering::Relaxed);
        }
        self.running = kept;
        if !stopping.is_empty() {
            // Counted now, so the total never goes down while they stop; their goodbyes take
            // seconds, which the pipeline must not wait for.
            let before: u64 = stopping.iter().map(unwritten).sum();
            self.retired.fetch_add(before, Ordering::Relaxed);
            let retired = self.retired.clone();
            let spawned = std::thread::Builder::new()
                .name("plugins stop".into())
                .spawn(move || {
                    let after = stop_all(stopping);
                    retired.fetch_add(after.saturating_sub(before), Ordering::Relaxed);
                });
            if let Err(e) = spawned {
                eprintln!("sensor: cannot stop the plugins a reload removed: {e}");
            }
        }
        for c in wanted {
            self.launch(c);
        }
    }

    /// Stops every plugin: what is queued is written (for up to 3 s), then stdin is closed so
    /// the plugin sees the end of its input, then SIGTERM and SIGKILL if it does not exit.
    /// Returns the events the plugins could not take, since start.
    pub fn stop(mut self) -> u64 {
        let running = std::mem::take(&mut self.running);
        for p in &running {
            p.queue.close();
        }
        stop_all(running) + self.retired.load(Ordering::Relaxed)
    }
}

impl Drop for Plugins {
    fn drop(&mut self) {
        let running = std::mem::take(&mut self.running);
        for p in &running {
            p.queue.close();
        }
        stop_all(running);
    }
}

fn unwritten(p: &Plugin) -> u64 {
    p.queue.unwritten.load(Ordering::Relaxed)
}

/// Waits for plugins told to close: their queues are written until [`DRAIN`] runs out, the rest
/// is counted. Returns their unwritten counts.
fn stop_all(plugins: Vec<Plugin>) -> u64 {
    let until = Instant::now() + DRAIN;
    while Instant::now() < until && plugins.iter().any(|p| !p.finished()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in &plugins {
        p.control.abort.store(true, Ordering::Relaxed);
    }
    plugins
        .into_iter()
        .map(|p| {
            let q = p.queue.clone();
            p.join();
            q.unwritten.load(Ordering::Relaxed)
        })
        .sum()
}
