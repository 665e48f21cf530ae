//! Stage 6: encode each event in every requested format and write it out, line by line as
//! events happen (each batch is flushed before the pipeline waits for more).

use std::{
    fs::OpenOptions,
    io::{self, Write},
    path::PathBuf,
    str::FromStr,
};

use crate::{
    encode::{audit, audit::names::SystemNames, proto},
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

/// `FORMAT:PATH` as given to `--output`; PATH `-` is stdout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    pub format: Format,
    pub path: Option<PathBuf>,
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
        let path = match path {
            "-" => None,
            "" => return Err("empty path: use - for stdout".into()),
            p => Some(PathBuf::from(p)),
        };
        Ok(OutputSpec { format, path })
    }
}

struct Output {
    format: Format,
    writer: Box<dyn Write + Send>,
}

pub struct Sink {
    outputs: Vec<Output>,
    names: Option<SystemNames>,
    host: proto::HostInfo,
    buf: Vec<u8>,
}

impl Sink {
    /// Opens every output (files are appended to, like auditd's log).
    pub fn open(specs: &[OutputSpec]) -> io::Result<Self> {
        let mut outputs = Vec::with_capacity(specs.len());
        for spec in specs {
            let writer: Box<dyn Write + Send> = match &spec.path {
                None => Box::new(io::BufWriter::with_capacity(1 << 16, io::stdout())),
                Some(p) => Box::new(io::BufWriter::with_capacity(
                    1 << 16,
                    OpenOptions::new().create(true).append(true).open(p)?,
                )),
            };
            outputs.push(Output {
                format: spec.format,
                writer,
            });
        }
        let names = specs
            .iter()
            .any(|s| s.format == Format::Enriched)
            .then(SystemNames::load)
            .transpose()?;
        Ok(Sink {
            outputs,
            names,
            host: proto::HostInfo::current()?,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    pub fn write(&mut self, ev: &Event) -> io::Result<()> {
        for out in &mut self.outputs {
            self.buf.clear();
            match out.format {
                Format::Audit => audit::write_event(&mut self.buf, ev, None),
                Format::Enriched => {
                    audit::write_event(&mut self.buf, ev, self.names.as_ref().map(|n| n as _))
                }
                Format::Proto => {
                    proto::write_delimited(&mut self.buf, &proto::to_envelope(ev, &self.host))
                }
            }
            out.writer.write_all(&self.buf)?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        for out in &mut self.outputs {
            out.writer.flush()?;
        }
        Ok(())
    }
}
