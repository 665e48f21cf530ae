//! The agent's edge: parse the command line, run the command, map errors to one clear sentence
//! and an exit code.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use sensor::{
    cli::{Cli, Command, DecodeArgs, TextFormat},
    compare::cmd::{say, to_stdout},
    encode::{self, audit::names::SystemNames, TranscodeError},
};

static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor.bpf.o"));

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // One thread: reading and encoding alternate, with no cross-thread wake-ups per batch.
        Command::Run(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(sensor::pipeline::run(EBPF_OBJECT, args))),
        Command::Decode(args) => decode(args),
        Command::Catalog(args) => sensor::compare::cmd::catalog(args),
        Command::Compare(args) => match sensor::compare::cmd::run(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say(format_args!("sensor: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

/// `sensor decode FILE`: a `proto` stream back to audit text on stdout. A reader that stops
/// early (`| head`) ends it quietly.
fn decode(args: DecodeArgs) -> Result<()> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let names = (args.format == TextFormat::Enriched)
        .then(SystemNames::load)
        .transpose()?;
    let skipped = |err: &encode::proto::ProtoError| {
        say(format_args!("sensor decode: skipping a record: {err}"));
    };
    to_stdout(|out| {
        match encode::proto_to_audit(file, out, names.as_ref().map(|n| n as _), skipped) {
            Err(e @ TranscodeError::Read(_)) => {
                Err(e).with_context(|| format!("reading {}", args.file.display()))
            }
            other => Ok(other?),
        }
    })
}
