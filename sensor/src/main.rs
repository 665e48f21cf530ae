//! The agent's edge: parse the command line, wire the pipeline stages together, map errors to
//! one clear sentence and an exit code.

use std::{
    io::{BufReader, Write},
    process::ExitCode,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::Parser;
use sensor::{
    assemble::{Assembler, Assembly},
    cli::{Cli, Command, DecodeArgs, RunArgs, TextFormat},
    encode::{audit, audit::names::SystemNames, proto},
    event::{Event, LostEvent},
    load,
    normalise::Normaliser,
    read::{self, ReadStats},
    sink::Sink,
};
use sensor_common::{CTR_EXIT_LOST, CTR_PAM_UNMATCHED, CTR_READ_ERROR, CTR_RINGBUF_FULL};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
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
            .and_then(|rt| rt.block_on(run(args))),
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
            eprintln!("sensor: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// What has been lost so far, from the kernel counters and the reader's.
#[derive(Default)]
struct LostTracker {
    reported: LostEvent,
}

impl LostTracker {
    /// A record to write when anything grew since the last report.
    fn check(&mut self, now: LostEvent, norm: &mut Normaliser) -> Option<LostEvent> {
        let r = &self.reported;
        if (now.ringbuf, now.read_errors, now.channel, now.incomplete)
            == (r.ringbuf, r.read_errors, r.channel, r.incomplete)
        {
            return None;
        }
        let total = now.ringbuf + now.channel;
        let ev = LostEvent {
            stamp: norm.stamp_now(),
            total,
            delta: total.saturating_sub(r.total),
            ..now
        };
        self.reported = ev.clone();
        Some(ev)
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let mib = args.ring_buffer_mib;
    if !(1..=2048).contains(&mib) || !mib.is_power_of_two() {
        bail!("--ring-buffer-mib must be a power of two between 1 and 2048, not {mib}");
    }
    let opts = load::Options {
        ring_buffer_bytes: mib << 20,
    };
    // Outputs and signal handlers first: once the probes are attached, nothing may be lost.
    let mut sink = Sink::open(&args.outputs).context("opening outputs")?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let loaded = load::load(EBPF_OBJECT, &opts)?;
    let (tx, mut rx) = mpsc::channel(args.channel_capacity.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(ReadStats::default());
    let coalesce = Duration::from_millis(args.coalesce_ms);
    let drop_untrusted = args.drop_untrusted;
    let reader = tokio::spawn(read::run(loaded.ring, tx, stats.clone(), stop_rx, coalesce));
    let counters = loaded.counters;
    let mut programs = Some(loaded.ebpf);
    let mut libraries = loaded.libraries;
    // Scripts wait for this line before starting what they want to observe.
    eprintln!(
        "sensor: {} probes attached",
        sensor_common::probes::PROBES.len()
    );

    let mut tick = tokio::time::interval(Duration::from_millis(args.lost_interval_ms.max(10)));
    let mut assembler = Assembler::default();
    let mut norm = Normaliser::default();
    let mut lost = LostTracker::default();
    let mut batch = Vec::with_capacity(256);
    let mut report_lost = |norm: &mut Normaliser, sink: &mut Sink, incomplete: u64| -> Result<()> {
        let now = LostEvent {
            ringbuf: load::counter(&counters, CTR_RINGBUF_FULL),
            read_errors: load::counter(&counters, CTR_READ_ERROR),
            channel: stats.undecodable.load(Ordering::Relaxed),
            incomplete: incomplete
                + load::counter(&counters, CTR_EXIT_LOST)
                + load::counter(&counters, CTR_PAM_UNMATCHED),
            ..LostEvent::default()
        };
        if let Some(ev) = lost.check(now, norm) {
            sink.write(&Event::Lost(ev))?;
            sink.flush()?;
        }
        Ok(())
    };
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, 256) => {
                if n == 0 {
                    break;
                }
                for raw in batch.drain(..) {
                    match assembler.push_record(raw) {
                        Some(Assembly::Exec(a)) => {
                            let ev = norm.exec(a);
                            // A container's first exec: attach to its own libpam and libaudit.
                            if let Some(ebpf) = programs.as_mut() {
                                let (pid, ns) = (ev.task.pid, ev.container.mnt_ns);
                                for message in libraries.watch_task(ebpf, pid, ns) {
                                    eprintln!("sensor: {message}");
                                }
                            }
                            sink.write(&Event::Exec(ev))?
                        }
                        Some(Assembly::Abend(a)) => sink.write(&Event::Abend(norm.abend(a)))?,
                        Some(Assembly::Anomaly(a)) => {
                            if let Some(ev) = norm.anomaly(a) {
                                sink.write(&Event::Anomaly(ev))?
                            }
                        }
                        Some(Assembly::Pam(a)) => {
                            if let Some(p) = norm.pam(a) {
                                sink.write(&Event::Pam(p))?
                            }
                        }
                        Some(Assembly::UserMessage(a)) => match norm.user_message(a) {
                            Some(m) if m.trusted || !drop_untrusted => {
                                sink.write(&Event::UserMessage(m))?
                            }
                            _ => {}
                        },
                        None => {}
                    }
                }
                sink.flush()?;
            }
            _ = tick.tick() => {
                assembler.sweep();
                report_lost(&mut norm, &mut sink, assembler.incomplete)?;
            }
            _ = sigint.recv() => stop(&mut programs, &stop_tx),
            _ = sigterm.recv() => stop(&mut programs, &stop_tx),
        }
    }
    // Execs still open at exit will never complete: they count as incomplete.
    report_lost(
        &mut norm,
        &mut sink,
        assembler.incomplete + assembler.pending() as u64,
    )?;
    sink.flush()?;
    reader.await.context("ring buffer reader")??;
    Ok(())
}

/// Detaches every probe, so the ring buffer stops filling, then lets the reader drain what is
/// there: shutdown ends even under a steady exec load.
fn stop(programs: &mut Option<aya::Ebpf>, stop_tx: &watch::Sender<bool>) {
    drop(programs.take());
    let _ = stop_tx.send(true);
}

fn decode(args: DecodeArgs) -> Result<()> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let names = (args.format == TextFormat::Enriched)
        .then(SystemNames::load)
        .transpose()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut buf = Vec::new();
    for item in proto::DelimitedReader::new(BufReader::new(file)) {
        let envelope = item.with_context(|| format!("reading {}", args.file.display()))?;
        let event = match proto::from_envelope(envelope) {
            Ok(ev) => ev,
            Err(err @ proto::ProtoError::UnknownBody { .. }) => {
                eprintln!("sensor decode: skipping a record: {err}");
                continue;
            }
            Err(err) => return Err(err).context("decoding a record"),
        };
        buf.clear();
        audit::write_event(&mut buf, &event, names.as_ref().map(|n| n as _));
        out.write_all(&buf)?;
    }
    out.flush()?;
    Ok(())
}
