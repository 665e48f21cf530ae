//! The `compare` and `catalog` commands: the edges, where files, child processes and the exit
//! code are handled.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{compare, input, live::ReadLog, report, Comparison};
use crate::{
    catalog,
    cli::{CatalogArgs, CompareArgs},
    encode::parse::MAX_LINE,
};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// A command's output: it notes a reader that went away.
pub struct Output<W: Write> {
    out: W,
    gone: bool,
}

/// Standard output, buffered.
pub type Stdout = Output<io::BufWriter<io::StdoutLock<'static>>>;

impl<W: Write> Output<W> {
    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::BrokenPipe) {
            self.gone = true;
        }
        r
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.out.write(buf);
        self.note(r)
    }
    fn flush(&mut self) -> io::Result<()> {
        let r = self.out.flush();
        self.note(r)
    }
}

/// Runs `write` on `out`, then flushes it. A reader that went away (EPIPE, as in
/// `sensor catalog | head -1`) ends the output quietly and successfully, as for every Unix tool:
/// Rust ignores SIGPIPE, so the write returns the error (which `println!` would turn into a
/// panic). Any other error, or one that `write` met before the pipe closed, is returned.
pub fn write_quietly<W: Write>(
    out: W,
    write: impl FnOnce(&mut Output<W>) -> Result<()>,
) -> Result<()> {
    let mut out = Output { out, gone: false };
    let result = write(&mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Err(_) if out.gone => Ok(()),
        other => other,
    }
}

/// [`write_quietly`] on standard output.
pub fn to_stdout(write: impl FnOnce(&mut Stdout) -> Result<()>) -> Result<()> {
    write_quietly(io::BufWriter::new(io::stdout().lock()), write)
}

/// A line on stderr that cannot panic (`eprintln!` does when stderr is a closed pipe).
pub fn say(line: std::fmt::Arguments) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// What `live` leaves to compare: the kernel's log, the sensor's log, and the directory to
/// remove afterwards (unless kept).
struct Live {
    kernel_log: PathBuf,
    sensor_log: PathBuf,
    remove: Option<PathBuf>,
}

/// Runs the sensor as a child and reads the kernel's multicast log at the same time.
fn live(args: &CompareArgs) -> Result<Live> {
    let dir = match &args.keep {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("sensor-compare-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let sensor_log = dir.join("sensor.log");
    let mut child = Command::new(std::env::current_exe()?)
        .args(["run", "--output"])
        .arg(format!("audit:{}", sensor_log.display()))
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the sensor")?;
    let mut stderr = child.stderr.take().context("sensor stderr")?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("probes attached") {
        let n = std::io::Read::read(&mut stderr, &mut buf)?;
        if n == 0 {
            bail!("the sensor stopped: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    // Only from now on: what happened before the probes were attached the sensor cannot have.
    let readlog = ReadLog::open()
        .context("joining kernel audit's multicast log (needs root: CAP_AUDIT_READ)")?;
    say(format_args!(
        "sensor compare: watching{}",
        match args.duration {
            Some(s) => format!(" for {s} s"),
            None => " until interrupted".into(),
        }
    ));
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let deadline = Instant::now() + Duration::from_secs(args.duration.unwrap_or(u64::MAX / 4));
    // Written as it comes: a long watch is compared from the file, never held in memory.
    let kernel_log = dir.join("kernel.log");
    let mut kernel = io::BufWriter::new(
        std::fs::File::create(&kernel_log)
            .with_context(|| format!("creating {}", kernel_log.display()))?,
    );
    let overruns = readlog.read_until(&mut kernel, deadline, &|| {
        INTERRUPTED.load(Ordering::SeqCst)
    })?;
    // The sensor's last records trail the kernel's by its coalescing delay.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: a signal to our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait()?;
    if overruns > 0 {
        say(format_args!("sensor compare: the kernel dropped {overruns} bursts of records on the way to this reader"));
    }
    drop(kernel);
    Ok(Live {
        kernel_log,
        sensor_log,
        remove: args.keep.is_none().then_some(dir),
    })
}

/// Prints the comparison; the result says whether the coverage threshold was met.
pub fn run(args: CompareArgs) -> Result<bool> {
    fn opened<T>(path: &Path, r: io::Result<T>) -> Result<T> {
        r.with_context(|| format!("opening {}", path.display()))
    }
    let c = match (&args.audit_log, &args.sensor_log) {
        (Some(a), Some(s)) => compare(
            opened(a, input::audit_log(a))?,
            opened(s, input::sensor_log(s))?,
            args.window_ms,
        )
        .with_context(|| format!("comparing {} with {}", a.display(), s.display()))?,
        _ => {
            let live = live(&args)?;
            let kernel = opened(&live.kernel_log, input::audit_log(&live.kernel_log))?;
            let sensor = opened(&live.sensor_log, input::sensor_log(&live.sensor_log))?;
            let c = compare(kernel, sensor, args.window_ms);
            if let Some(dir) = live.remove {
                let _ = std::fs::remove_dir_all(dir);
            }
            c.context("comparing the logs")?
        }
    };
    for (what, n) in [
        (
            format!("lines over {} KiB were skipped", MAX_LINE >> 10),
            c.long_lines,
        ),
        (
            "records came more than the window behind the newest (the log is out of order)".into(),
            c.late_records,
        ),
        (
            "events were finalised early: one window held too many records".into(),
            c.early_events,
        ),
    ] {
        if !n.is_zero() {
            say(format_args!(
                "sensor compare: {what}: {} in the audit log, {} in the sensor's",
                n.kernel, n.sensor
            ));
        }
    }
    let text = if args.json {
        report::json(&c)
    } else if args.markdown {
        report::markdown(&c)
    } else {
        report::table(&c)
    };
    // A closed reader ends the report, not the verdict: the threshold still sets the exit code.
    to_stdout(|out| Ok(writeln!(out, "{text}")?))?;
    Ok(match args.min_coverage {
        Some(min) => meets(&c, &args.types, min / 100.0),
        None => true,
    })
}

/// Every checked type has at least `min` of the kernel's records (the types given, or every
/// type both sides have).
fn meets(c: &Comparison, types: &[String], min: f64) -> bool {
    let mut ok = true;
    for (t, row) in &c.types {
        let checked = if types.is_empty() {
            row.kernel > 0 && row.sensor > 0
        } else {
            types.iter().any(|x| x.eq_ignore_ascii_case(t))
        };
        if !checked {
            continue;
        }
        match row.coverage() {
            Some(got) if got < min => {
                say(format_args!(
                    "sensor compare: {t}: coverage {:.1}% is below {:.1}%",
                    got * 100.0,
                    min * 100.0
                ));
                ok = false;
            }
            Some(_) => {}
            None => {
                say(format_args!(
                    "sensor compare: {t}: the kernel wrote none; the sensor's {} are extras, not coverage",
                    row.sensor
                ));
                ok = false;
            }
        }
    }
    for t in types {
        if !c.types.keys().any(|k| k.eq_ignore_ascii_case(t)) {
            say(format_args!("sensor compare: no {t} record on either side"));
            ok = false;
        }
    }
    ok
}

pub fn catalog(args: CatalogArgs) -> Result<()> {
    let one = match &args.r#type {
        Some(key) => Some(catalog::find(key).with_context(|| format!("no audit type {key}"))?),
        None => None,
    };
    to_stdout(|out| {
        match one {
            Some(t) if args.json => {
                serde_json::to_writer_pretty(&mut *out, t)?;
                writeln!(out)?;
            }
            Some(t) => {
                writeln!(out, "{} {}", t.number, t.name)?;
                writeln!(out, "  range:     {}", t.range)?;
                writeln!(
                    out,
                    "  kernel header: {}, libaudit 3.0.9 table: {}",
                    if t.in_kernel_header { "yes" } else { "no" },
                    if t.in_libaudit {
                        "yes (auditd prints the name)"
                    } else {
                        "no (auditd prints UNKNOWN[n])"
                    }
                )?;
                writeln!(out, "  emitter:   {}", t.emitter)?;
                writeln!(out, "  when:      {}", t.when)?;
                writeln!(out, "  note:      {}", t.note)?;
                writeln!(out, "  sensor:    {}", t.sensor)?;
            }
            None if args.json => {
                serde_json::to_writer_pretty(&mut *out, catalog::all())?;
                writeln!(out)?;
            }
            None => {
                for t in catalog::all() {
                    writeln!(out, "{:>5} {:<28} {}", t.number, t.name, t.sensor)?;
                }
            }
        }
        Ok(())
    })
}
