//! The agent's edge: parse the command line, run the command, map errors to one clear sentence
//! and an exit code.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use sensor::{
    cli::{Cli, Command, DecodeArgs, RulesCheckArgs, RulesCommand, TextFormat},
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
        Command::Rules(RulesCommand::Check(args)) => match rules_check(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
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

/// `sensor rules check`: every line's verdict; false when a line is an error.
fn rules_check(args: RulesCheckArgs) -> Result<bool> {
    use sensor::filter::rules::load;
    use std::io::Write;
    let loaded =
        load::load(&args.path).with_context(|| format!("reading {}", args.path.display()))?;
    to_stdout(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &loaded.verdicts)?;
            writeln!(out)?;
        } else {
            for v in &loaded.verdicts {
                let status = serde_json::to_value(v.status)?;
                writeln!(
                    out,
                    "{}:{}: {}: {}\n    {}",
                    v.file.display(),
                    v.line,
                    status.as_str().unwrap_or("?"),
                    v.reason,
                    v.text.trim()
                )?;
            }
        }
        Ok(())
    })?;
    Ok(loaded.errors() == 0)
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
