//! Stage 8: encode each event in every requested format and write it out, line by line as
//! events happen (each batch is flushed before the pipeline waits for more). Each output fails
//! alone ([`output`]).

use std::{io, path::PathBuf, str::FromStr};

use crate::{
    config::{AuditdConf, LogFormat},
    encode::{audit, audit::names::LiveNames, proto},
    event::Event,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// auditd's RAW log format.
    Audit,
    /// auditd's ENRICHED format: RAW plus 0x1d and the interpreted fields.
    Enriched,
    /// Length-delimited `sensor.v1.Envelope` messages.
    Proto,
}

/// `FORMAT:PATH` as given to `--output`; PATH `-` is stdout, `tcp:HOST:PORT` or `unix:PATH` a
/// collector's socket (a file of that name is `./tcp:…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    pub format: Format,
    /// The file, `None` for stdout (and for a socket).
    pub path: Option<PathBuf>,
    /// The collector's socket, instead of a file.
    pub socket: Option<socket::Address>,
}

impl FromStr for OutputSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (format, path) = s.split_once(':').unwrap_or((s, "-"));
        let format = match format {
            "audit" => Format::Audit,
            "enriched" => Format::Enriched,
            "proto" => Format::Proto,
            other => {
                return Err(format!(
                    "unknown format {other:?}: expected audit, enriched or proto"
                ))
            }
        };
        if let Some(address) = socket::Address::parse(path) {
            return Ok(OutputSpec {
                format,
                path: None,
                socket: Some(address?),
            });
        }
        let path = match path {
            "-" => None,
            "" => return Err("empty path: use - for stdout".into()),
            p => Some(PathBuf::from(p)),
        };
        Ok(OutputSpec {
            format,
            path,
            socket: None,
        })
    }
}

/// Drops the lines of `buf` (`type=NAME msg=…`) whose record type is in `hidden`.
fn without_types(buf: &mut Vec<u8>, hidden: &[u32]) {
    let kept: Vec<u8> = buf
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| {
            let name = line
                .strip_prefix(b"type=")
                .and_then(|l| l.split(|&b| b == b' ').next())
                .and_then(|n| std::str::from_utf8(n).ok());
            let number = name.and_then(|n| {
                n.strip_prefix("UNKNOWN[")
                    .and_then(|n| n.strip_suffix(']'))
                    .and_then(|n| n.parse().ok())
                    .or_else(|| crate::catalog::find(n).map(|t| t.number))
            });
            !number.is_some_and(|n| hidden.contains(&n))
        })
        .flatten()
        .copied()
        .collect();
    *buf = kept;
}

pub mod logfile;
mod output;
pub mod plugins;
mod socket;
use logfile::LogFile;
use output::Output;

pub struct Sink {
    outputs: Vec<Output>,
    /// auditd's dispatcher plugins (`plugin_dir` of `--config`), fed the RAW text.
    plugins: Option<plugins::Plugins>,
    stopped_plugins_unwritten: u64,
    /// The log auditd.conf names (`--config`).
    log: Option<LogFile>,
    names: Option<LiveNames>,
    stream: proto::StreamWriter,
    buf: Vec<u8>,
}

impl Sink {
    /// Opens every output (files are appended to, like auditd's log, and created 0600); an
    /// error names the output that could not be opened.
    pub fn open(specs: &[OutputSpec], conf: Option<&AuditdConf>) -> io::Result<Self> {
        let outputs = specs
            .iter()
            .map(Output::open)
            .collect::<io::Result<Vec<_>>>()?;
        let log = match conf {
            Some(c) if c.write_logs => Some(LogFile::open(c.clone()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open log_file {}: {e}", c.log_file.display()),
                )
            })?),
            _ => None,
        };
        // The log, or the plugins, get enriched text.
        let enriched_log = conf.is_some_and(|c| c.log_format == LogFormat::Enriched);
        let names = (enriched_log || specs.iter().any(|s| s.format == Format::Enriched))
            .then(LiveNames::load)
            .transpose()?;
        Ok(Sink {
            outputs,
            plugins: conf.map(|c| plugins::Plugins::start(c.into())),
            stopped_plugins_unwritten: 0,
            log,
            names,
            stream: proto::StreamWriter::new(&proto::HostInfo::current()?),
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Encodes `ev` for every output and queues it there whole, without the record types in
    /// `hidden` (the exclude list's; the protobuf stream keeps whole events); [`Sink::flush`]
    /// writes. The text is written first, since the protobuf stream takes the event.
    pub fn write(&mut self, ev: Event, hidden: &[u32]) {
        if let Some(names) = &mut self.names {
            names.refresh();
        }
        let mut streams = false;
        for out in &mut self.outputs {
            self.buf.clear();
            match out.format {
                Format::Audit => audit::write_event(&mut self.buf, &ev, None),
                Format::Enriched => {
                    let Some(names) = &mut self.names else {
                        audit::write_event(&mut self.buf, &ev, None);
                        out.push(&self.buf);
                        continue;
                    };
                    audit::write_event(&mut self.buf, &ev, Some(&*names));
                    // An id not in the files may be an account just created: look again.
                    if names.missed() && names.refresh() {
                        self.buf.clear();
                        audit::write_event(&mut self.buf, &ev, Some(&*names));
                    }
                }
                Format::Proto => {
                    streams = true;
                    continue;
                }
            }
            if !hidden.is_empty() {
                without_types(&mut self.buf, hidden);
            }
            out.push(&self.buf);
        }
        if let Some(log) = &mut self.log {
            self.buf.clear();
            let names = match log.format() {
                LogFormat::Enriched => self.names.as_ref().map(|n| n as &dyn audit::names::Names),
                LogFormat::Raw => None,
            };
            audit::write_event(&mut self.buf, &ev, names);
            if !hidden.is_empty() {
                without_types(&mut self.buf, hidden);
            }
            log.push(&self.buf);
        }
        if let Some(plugins) = self.plugins.as_mut().filter(|p| !p.is_empty()) {
            self.buf.clear();
            let names = self.names.as_ref().filter(|_| plugins.enriched());
            audit::write_event(
                &mut self.buf,
                &ev,
                names.map(|n| n as &dyn audit::names::Names),
            );
            if !hidden.is_empty() {
                without_types(&mut self.buf, hidden);
            }
            plugins.push(&self.buf);
        }
        if streams {
            // Encoded once for every protobuf output.
            self.buf.clear();
            self.stream.write(&mut self.buf, ev);
            for out in self
                .outputs
                .iter_mut()
                .filter(|o| o.format == Format::Proto)
            {
                out.push(&self.buf);
            }
        }
    }

    /// Starts (or, when running, reloads as auditd does on SIGHUP) the plugins of
    /// `settings.plugin_dir`.
    pub fn plugins(&mut self, settings: plugins::Settings) {
        match &mut self.plugins {
            Some(p) => p.reload(settings),
            None => self.plugins = Some(plugins::Plugins::start(settings)),
        }
    }

    /// Stops the plugins once they took what is queued (for a few seconds at most); what they
    /// could not take stays counted in [`Sink::unwritten`].
    pub fn stop_plugins(&mut self) {
        if let Some(p) = self.plugins.take() {
            self.stopped_plugins_unwritten = p.stop();
        }
    }

    /// Writes what every output has queued; an output that fails does not hold up the others.
    pub fn flush(&mut self) {
        for out in &mut self.outputs {
            out.flush();
        }
        if let Some(log) = &mut self.log {
            log.flush();
        }
    }

    /// Reopens every file output (SIGHUP: after the log was rotated).
    pub fn reopen(&mut self) {
        for out in &mut self.outputs {
            out.reopen();
        }
    }

    /// Reopens the file outputs whose file was moved or deleted.
    pub fn reopen_moved(&mut self) {
        // The configured log checks this itself before each batch (`LogFile::flush`).
        for out in &mut self.outputs {
            if out.needs_reopen() {
                out.reopen();
            }
        }
    }

    /// SIGUSR1: rotate the configured log now.
    pub fn rotate_log(&mut self) {
        if let Some(log) = &mut self.log {
            log.flush();
            log.rotate_now();
        }
    }

    /// SIGUSR2: resume writing the configured log after SUSPEND or EXEC.
    pub fn resume_log(&mut self) {
        if let Some(log) = &mut self.log {
            log.resume();
        }
    }

    /// SIGHUP: the configuration read again.
    pub fn reconfigure(&mut self, conf: &AuditdConf) -> io::Result<()> {
        // The plugins as auditd's reconfigure treats them, whatever happens to the log.
        self.plugins(conf.into());
        match (&mut self.log, conf.write_logs) {
            (Some(log), _) => log.reconfigure(conf.clone()),
            (None, true) => self.log = Some(LogFile::open(conf.clone())?),
            (None, false) => {}
        }
        if conf.log_format == LogFormat::Enriched && self.names.is_none() {
            self.names = Some(LiveNames::load()?);
        }
        Ok(())
    }

    /// An action (SINGLE, HALT) asked the sensor to stop.
    pub fn stop_requested(&self) -> bool {
        self.log.as_ref().is_some_and(|l| l.stop_requested)
    }

    /// Events the outputs could not take, since start (summed over outputs).
    pub fn unwritten(&self) -> u64 {
        self.outputs.iter().map(Output::unwritten).sum::<u64>()
            + self.stopped_plugins_unwritten
            + self.plugins.as_ref().map_or(0, |p| p.unwritten())
            + self.log.as_ref().map_or(0, |l| l.unwritten)
    }

    /// At stop: waits (at most [`socket::DRAIN`]) for the socket outputs to send what they hold;
    /// what they could not is counted as unwritten.
    pub fn drain(&mut self) {
        let deadline = std::time::Instant::now() + socket::DRAIN;
        for out in &mut self.outputs {
            out.drain(deadline);
        }
    }
}
