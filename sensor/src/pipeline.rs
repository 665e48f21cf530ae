//! Wires the stages for `sensor run`: the loader attaches the probes, the reader drains the
//! ring buffer into a bounded channel, and each record then flows, in one place
//! ([`Stages::handle`]), through assembly, detection, normalisation, the filter and every sink.
//! Loss counters are checked on a timer and written as records of their own.

use std::{sync::Arc, time::Duration};

use anyhow::{bail, Context, Result};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch, Notify},
};

use crate::{
    assemble::{Assembler, Assembly},
    cli::{RunArgs, UprobeLinks},
    config::AuditdConf,
    detect::{login, protect},
    event::Event,
    filter::{
        kernel::{KernelFilter, Maps},
        rules::{compile::compile, load as rules_file},
        Filter, Rules,
    },
    load::{self, attacher::Attacher},
    normalise::Normaliser,
    read::{self, ReadStats},
    sink::Sink,
};

mod lost;
use lost::LostTracker;

/// Records taken from the channel per turn of the loop.
const BATCH: usize = 256;
/// How long a stop waits for the tracepoints to be detached.
const STOP_DETACH: Duration = Duration::from_millis(500);

/// Everything a record passes through after the reader.
struct Stages {
    assembler: Assembler,
    norm: Normaliser,
    /// `--infer-login-anomalies`: the sensor's own ANOM_LOGIN_* rules run.
    infer_logins: bool,
    filter: Filter,
    sink: Sink,
    /// The loaded programs, on their own thread.
    attacher: Attacher,
    /// `--rules`: the rules as the exec programs judge them.
    kernel_filter: Option<KernelFilter>,
}

impl Stages {
    /// SIGHUP: the rules file read again, in force for the events that happen from now on (the
    /// ones still on their way are judged by the rules they happened under), so no event is lost
    /// or judged twice; kept as they are when `-e 2` locked them or the file now has an error.
    fn reload_rules(&mut self, path: Option<&std::path::Path>) {
        let (Some(path), Some(_)) = (path, &self.filter.rules) else {
            return;
        };
        if self.filter.locked() {
            eprintln!("sensor: rules locked by -e 2: not reloaded until restart");
            return;
        }
        match load_rules(path) {
            Ok((list, locked)) => {
                if let Some(k) = &self.kernel_filter {
                    if !k.reload(compiled(&list)) {
                        eprintln!("sensor: the last reload is still being put in place: not reloaded, send SIGHUP again");
                        return;
                    }
                }
                self.filter.reload(Rules::new(list, locked))
            }
            Err(e) => eprintln!("sensor: rules not reloaded, the ones in force stay: {e:#}"),
        }
    }

    /// One record: assemble it, and when that completes an event, decide, normalise, select
    /// and write it.
    fn handle(&mut self, record: read::Record) {
        // An exec the rules left out in the kernel: only its namespace's libraries matter.
        if let read::Record::ExecUnselected(u) = &record {
            self.attacher.watch(u.origin.pid, u.mnt_ns);
            return;
        }
        let event = match self.assembler.push_record(record) {
            None => return,
            Some(Assembly::Exec(a)) => {
                let ev = self.norm.exec(a);
                // A container's first exec: its own libpam and libaudit get watched.
                self.attacher.watch(ev.task.pid, ev.container.mnt_ns);
                Event::Exec(ev)
            }
            Some(Assembly::Abend(a)) => Event::Abend(self.norm.abend(a)),
            Some(Assembly::Anomaly(a)) => {
                let denied = protect::path_denied(&a);
                match self.norm.anomaly(a, denied) {
                    Some(ev) => Event::Anomaly(ev),
                    None => return,
                }
            }
            Some(Assembly::Pam(a)) => {
                let Some(mut call) = self.norm.pam(a) else {
                    return;
                };
                if self.infer_logins {
                    call.event.anomalies = login::infer(&call.event, &call.messages);
                }
                Event::Pam(call.event)
            }
            Some(Assembly::UserMessage(a)) => Event::UserMessage(self.norm.user_message(a)),
        };
        let mut event = event;
        if self.filter.keep(&mut event) {
            let hidden = self.filter.hidden(&event);
            self.sink.write(event, &hidden);
        }
    }
}

/// The rules for the kernel, saying when they are too many to be judged there.
fn compiled(list: &[crate::filter::rules::Rule]) -> crate::filter::rules::compile::Compiled {
    let c = compile(list);
    if let Some(n) = c.too_large {
        eprintln!(
            "sensor: the rules make {n} rules for execs, more than the kernel side holds ({}): every exec is judged by the agent",
            sensor_common::filter::FILTER_RULES_MAX
        );
    }
    c
}

/// Loads `--rules`: refuses an error the file does not tell to ignore, says what was loaded.
fn load_rules(path: &std::path::Path) -> Result<(Vec<crate::filter::rules::Rule>, bool)> {
    let loaded =
        rules_file::load(path).with_context(|| format!("reading rules {}", path.display()))?;
    if let Some(e) = loaded
        .verdicts
        .iter()
        .find(|v| v.status == rules_file::Status::Error)
        .filter(|_| loaded.stopped)
    {
        bail!(
            "rules {}: line {} of {}: {} (`sensor rules check` lists every line)",
            path.display(),
            e.line,
            e.file.display(),
            e.reason
        );
    }
    let count = |s| loaded.verdicts.iter().filter(|v| v.status == s).count();
    eprintln!(
        "sensor: rules {}: {} lines applied, {} unsupported, {} errors skipped (-i)",
        path.display(),
        count(rules_file::Status::Applied),
        count(rules_file::Status::Unsupported),
        count(rules_file::Status::Error)
    );
    Ok((loaded.rules, loaded.locked))
}

/// The auditd.conf of `--config`, its warnings said; refused as auditd refuses it.
fn load_config(path: &std::path::Path) -> Result<AuditdConf> {
    let conf = AuditdConf::load(path)
        .with_context(|| format!("{} refused, as auditd would refuse it", path.display()))?;
    for w in &conf.warnings {
        eprintln!("sensor: {}: {w}", path.display());
    }
    Ok(conf)
}

/// SIGHUP with `--config`: the file read again and put in force; when it is refused now, the
/// one in force stays.
fn reload_config(sink: &mut Sink, path: &std::path::Path) {
    match load_config(path) {
        Ok(conf) => {
            if let Err(e) = sink.reconfigure(&conf) {
                eprintln!("sensor: {}: {e}", path.display());
            }
        }
        Err(e) => eprintln!("sensor: {e:#}; the configuration in force stays"),
    }
}

/// `sensor run`: attach, then write records as events happen until SIGINT or SIGTERM.
pub async fn run(object: &[u8], args: RunArgs) -> Result<()> {
    let mib = args.ring_buffer_mib;
    if !(1..=2048).contains(&mib) || !mib.is_power_of_two() {
        bail!("--ring-buffer-mib must be a power of two between 1 and 2048, not {mib}");
    }
    let opts = load::Options {
        ring_buffer_bytes: mib << 20,
        ebpf_log: args.ebpf_log,
        uprobe_multi: args.uprobe_links == UprobeLinks::Auto,
        probe_set: args.probe_set.wanted(),
        rules: args.rules.is_some(),
    };
    let rules = match &args.rules {
        None => None,
        Some(path) => Some(load_rules(path)?),
    };
    crate::fsio::set_deadline(Duration::from_millis(args.lookup_deadline_ms));
    let conf = args.config.as_deref().map(load_config).transpose()?;
    let outputs = if args.outputs.is_empty() && conf.is_none() {
        vec!["audit:-".parse().map_err(|e: String| anyhow::anyhow!(e))?]
    } else {
        args.outputs.clone()
    };
    // Outputs and signal handlers first: once the probes are attached, nothing may be lost.
    let sink = Sink::open(&outputs, conf.as_ref())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    let mut sigusr2 = signal(SignalKind::user_defined2())?;
    let mut loaded = load::load(object, &opts)?;
    // Loading parsed the kernel's BTF (tens of MiB, freed since): give the freed pages back,
    // or they stay in the agent's resident memory for good.
    // SAFETY: no preconditions; it only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    let kernel_filter = match &rules {
        None => None,
        Some((list, _)) => {
            // Unknown, 0: no namespace is the sensor's, every unselected exec is told.
            let own_ns = load::own_mnt_ns().unwrap_or(0);
            let maps = Maps::take(&mut loaded.ebpf)?;
            Some(KernelFilter::spawn(maps, own_ns, compiled(list)))
        }
    };
    let (tx, mut rx) = mpsc::channel(args.channel_capacity.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(ReadStats::default());
    // The reader's clock says when the housekeeping below is due.
    let housekeeping = Arc::new(Notify::new());
    let timing = read::Timing {
        coalesce: Duration::from_millis(args.coalesce_ms),
        housekeeping: Duration::from_millis(args.lost_interval_ms),
        notify: housekeeping.clone(),
    };
    let wake = read::WakeFlag::new(loaded.wake_flags);
    let reader = tokio::spawn(read::run(
        loaded.ring,
        tx,
        stats.clone(),
        stop_rx,
        timing,
        wake,
    ));
    let counters = loaded.counters;
    let chosen = loaded.chosen;
    let mut filter = Filter::new(
        args.drop_untrusted,
        rules.map(|(list, locked)| Rules::new(list, locked)),
    );
    if let Some(k) = &kernel_filter {
        filter.judged_in_kernel(k.switch_ns.clone());
    }
    let mut stages = Stages {
        assembler: Assembler::default(),
        norm: Normaliser::for_lsms(&load::active_lsms()),
        infer_logins: args.infer_login_anomalies,
        filter,
        sink,
        attacher: Attacher::spawn(loaded.ebpf, loaded.libraries),
        kernel_filter,
    };
    // Scripts wait for this line before starting what they want to observe.
    eprintln!("{}", chosen.line);
    eprintln!("sensor: {} probes attached", chosen.probes);

    let mut lost = LostTracker::default();
    let unwatched = stages.attacher.unwatched.clone();
    let mut report_lost = |s: &mut Stages, incomplete: u64| {
        let mut now = LostTracker::snapshot(&counters, &stats, &unwatched, incomplete);
        now.unwritten = s.sink.unwritten();
        if let Some(ev) = lost.check(now, &mut s.norm) {
            s.sink.write(Event::Lost(ev), &[]);
            s.sink.flush();
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut stopping = false;
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                for record in batch.drain(..) {
                    stages.handle(record);
                }
                stages.sink.flush();
                if !stopping && stages.sink.stop_requested() {
                    stopping = stop(&mut stages.attacher, &stop_tx);
                }
            }
            _ = housekeeping.notified() => {
                stages.assembler.sweep();
                stages.sink.reopen_moved();
                let incomplete = stages.assembler.incomplete;
                report_lost(&mut stages, incomplete);
            }
            // The log was rotated (logrotate's postrotate, or by hand: mv, then SIGHUP).
            _ = sighup.recv() => {
                stages.sink.reopen();
                if let Some(path) = &args.config {
                    reload_config(&mut stages.sink, path);
                }
                stages.reload_rules(args.rules.as_deref());
            }
            // auditd's signals: rotate the log now; resume logging after SUSPEND or EXEC.
            _ = sigusr1.recv() => stages.sink.rotate_log(),
            _ = sigusr2.recv() => stages.sink.resume_log(),
            _ = sigint.recv(), if !stopping => stopping = stop(&mut stages.attacher, &stop_tx),
            _ = sigterm.recv(), if !stopping => stopping = stop(&mut stages.attacher, &stop_tx),
        }
    }
    // The socket outputs send what they hold first, so the last loss record counts what they
    // could not; then that record goes out too.
    stages.sink.drain();
    // Execs still open at exit will never complete: they count as incomplete.
    let incomplete = stages.assembler.incomplete + stages.assembler.pending() as u64;
    // The plugins get what is queued for them first, so the last loss record counts what they
    // could not take.
    stages.sink.stop_plugins();
    report_lost(&mut stages, incomplete);
    stages.sink.flush();
    stages.sink.drain();
    reader.await.context("ring buffer reader")??;
    if stages.kernel_filter.is_some() {
        eprintln!(
            "sensor: {} execs left out by the rules in the kernel",
            load::counters(&counters)[sensor_common::CTR_EXEC_UNSELECTED as usize]
        );
    }
    // Scripts may wait for this line: every record is out.
    eprintln!("sensor: stopped");
    // The last record is out; probes left attached at exit would be detached one by one.
    stages.attacher.wait_detached(STOP_DETACH);
    Ok(())
}

/// Detaches the tracepoints, so the ring buffer stops filling, then lets the reader drain what is
/// there within its deadline: shutdown ends even under a steady exec load. The uprobes are
/// detached on the attach thread meanwhile.
fn stop(attacher: &mut Attacher, stop_tx: &watch::Sender<bool>) -> bool {
    if !attacher.stop(STOP_DETACH) {
        eprintln!(
            "sensor: the tracepoints were not detached within {STOP_DETACH:?}; stopping anyway"
        );
    }
    let _ = stop_tx.send(true);
    true
}
