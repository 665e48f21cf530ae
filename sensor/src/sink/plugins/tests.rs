use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    conf::{self, ConfError, Format, Kind},
    frame,
    queue::{Item, Next, Queue},
    Overflow, Plugins, Settings,
};

const EXEC: &[u8] =
    b"type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0\n\
type=EXECVE msg=audit(1700000000.123:42): argc=1 a0=\"true\"\n\
type=PROCTITLE msg=audit(1700000000.123:42): proctitle=\"true\"\n";

fn parse(text: &str) -> Result<(conf::PluginConf, Vec<String>), ConfError> {
    conf::parse(text.as_bytes(), "p.conf".into()).map(|(c, w, _)| (c, w))
}

#[test]
fn reads_debians_files_as_auditd() {
    // syslog.conf as Debian's auditd 3.0.9 ships it: "type = always " ends in a space.
    let text = "# comment\n\nactive = yes\ndirection = out\npath = /sbin/audisp-syslog\ntype = always \nargs = LOG_INFO\nformat = string\n";
    let (c, w) = parse(text).unwrap();
    assert!(w.is_empty());
    assert!(c.active);
    assert_eq!(c.path.as_deref(), Some(Path::new("/sbin/audisp-syslog")));
    assert_eq!(c.kind, Kind::Always);
    assert_eq!(c.args, ["LOG_INFO"]);
    assert_eq!(c.format, Format::String);
    let (c, _) = parse("active = no\npath = builtin_af_unix\ntype = builtin \nargs = 0640 /var/run/audispd_events\n").unwrap();
    assert_eq!(c.kind, Kind::Builtin);
    assert_eq!(c.args, ["0640", "/var/run/audispd_events"]);
}

#[test]
fn refuses_and_skips_what_auditd_does() {
    assert_eq!(
        parse("active yes\n").unwrap_err(),
        ConfError::NoEqualSign(1)
    );
    assert_eq!(parse("active =\n").unwrap_err(), ConfError::Arguments(1));
    // Words are split at spaces only, as strtok(" ") splits them.
    assert_eq!(
        parse("active\t=\tyes\n").unwrap_err(),
        ConfError::Arguments(1)
    );
    assert!(matches!(
        parse("colour = red\n"),
        Err(ConfError::UnknownKey(1, _))
    ));
    assert!(matches!(
        parse("active = yes please\n"),
        Err(ConfError::Option(1, _, _))
    ));
    assert!(matches!(
        parse("direction = in\n"),
        Err(ConfError::BadValue(1, _))
    ));
    assert!(matches!(
        parse("format = json\n"),
        Err(ConfError::BadValue(1, _))
    ));
    assert!(matches!(
        parse("path = /x\n"),
        Err(ConfError::ShortDir(1, _))
    ));
    assert!(matches!(
        parse("path = audisp\n"),
        Err(ConfError::ShortDir(1, _))
    ));
    // Case does not matter for keys and words; a third argument is left out with a warning.
    let (c, w) = parse("ACTIVE = Yes\nFormat = BINARY\nargs = a b c\n").unwrap();
    assert!(c.active);
    assert_eq!(c.format, Format::Binary);
    assert_eq!(c.args, ["a", "b"]);
    assert_eq!(w.len(), 1);
    // fgets(160): a line over 158 bytes, and a last line without its newline, are skipped.
    let long = format!("args = {}\nactive = yes", "x".repeat(152));
    let (c, w) = parse(&long).unwrap();
    assert!(!c.active && c.args.is_empty());
    assert_eq!(w.len(), 2);
    let fits = format!("args = {}\n", "x".repeat(151));
    assert_eq!(parse(&fits).unwrap().0.args[0].len(), 151);
}

#[test]
fn candidates() {
    assert!(conf::is_candidate(b"syslog.conf"));
    assert!(conf::is_candidate(b"README"));
    assert!(!conf::is_candidate(b".hidden"));
    assert!(!conf::is_candidate(b"syslog.conf.dpkg-old"));
}

#[test]
fn frames_string_and_binary_as_auditd() {
    let f = frame::frame(EXEC, true, false);
    let mut want = EXEC.to_vec();
    want.extend_from_slice(b"type=EOE msg=audit(1700000000.123:42): \n");
    assert_eq!(f.string, want);
    assert_eq!(f.records, 4);
    assert_eq!(f.binary.len(), 4 * (16 + frame::DATA_LEN));
    let header = |i: usize| {
        let h = &f.binary[i * (16 + frame::DATA_LEN)..];
        let n = |k: usize| u32::from_ne_bytes(h[k * 4..k * 4 + 4].try_into().unwrap());
        (n(0), n(1), n(2), n(3), &h[16..16 + n(3) as usize])
    };
    let (ver, hlen, rtype, _, text) = header(0);
    assert_eq!((ver, hlen, rtype), (0, 16, 1300));
    assert!(text.starts_with(b"audit(1700000000.123:42): arch=c000003e"));
    assert!(text.ends_with(b"exit=0"));
    assert_eq!(header(1).2, 1309);
    let (_, _, rtype, size, text) = header(3);
    assert_eq!((rtype, size), (1320, 26));
    assert_eq!(text, b"audit(1700000000.123:42): ");
    // log_format = ENRICHED: protocol version 1, the data is the whole formatted line.
    let enriched = b"type=SYSCALL msg=audit(1.000:7): arch=c000003e syscall=59\x1dARCH=x86_64 SYSCALL=execve\n";
    let f = frame::frame(enriched, true, true);
    assert!(f.string.starts_with(enriched));
    assert!(f.string.ends_with(b"\ntype=EOE msg=audit(1.000:7): \n"));
    let h = &f.binary[..16];
    let line = &enriched[..enriched.len() - 1];
    assert_eq!(h[..4], 1u32.to_ne_bytes());
    assert_eq!(h[12..16], (line.len() as u32).to_ne_bytes());
    assert_eq!(&f.binary[16..16 + line.len()], line);
    // A record of a type without SYSCALL is an event of its own: no EOE.
    let user = b"type=USER_AUTH msg=audit(1.000:7): pid=1 uid=0 msg='op=x'\n";
    assert_eq!(frame::frame(user, false, false).string, user);
}

/// A scratch plugin_dir with root-owned plugin files and programs.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("sensor-plugins-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("plugins.d")).unwrap();
        Dir(d)
    }

    fn program(&self, name: &str, script: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o750)).unwrap();
        p
    }

    fn plugin(&self, name: &str, program: &Path, args: &str, format: &str) {
        let text = format!("active = yes\ndirection = out\npath = {}\ntype = always\nargs = {args}\nformat = {format}\n", program.display());
        fs::write(self.0.join("plugins.d").join(name), text).unwrap();
    }

    fn settings(&self, q_depth: u32, max_restarts: u32) -> Settings {
        Settings {
            plugin_dir: self.0.join("plugins.d"),
            q_depth,
            overflow_action: Overflow::Ignore,
            max_restarts,
            enriched: false,
        }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn event(serial: u32) -> Vec<u8> {
    format!("type=SYSCALL msg=audit(1700000000.123:{serial}): arch=c000003e syscall=59\n")
        .into_bytes()
}

#[test]
fn writes_every_event_to_a_real_program_in_its_format() {
    let d = Dir::new("cat");
    let cat = d.program("cat.sh", "exec /bin/cat > \"$1\"");
    d.plugin(
        "text.conf",
        &cat,
        &d.out("text").display().to_string(),
        "string",
    );
    d.plugin(
        "bin.conf",
        &cat,
        &d.out("bin").display().to_string(),
        "binary",
    );
    let mut plugins = Plugins::start(d.settings(2000, 10));
    assert_eq!(plugins.len(), 2);
    for serial in 0..100 {
        plugins.push(&event(serial));
    }
    assert_eq!(plugins.stop(), 0);
    let text = fs::read(d.out("text")).unwrap();
    let mut want = Vec::new();
    for serial in 0..100 {
        want.extend_from_slice(&frame::frame(&event(serial), false, false).string);
    }
    assert_eq!(text, want);
    assert_eq!(
        fs::read(d.out("bin")).unwrap().len(),
        200 * (16 + frame::DATA_LEN)
    );
}

#[test]
fn restarts_a_plugin_that_dies_up_to_max_restarts() {
    let d = Dir::new("restart");
    // Takes one line, then exits: every later event finds it dead.
    let one = d.program("one.sh", "read -r line; echo \"$line\" >> \"$1\"");
    d.plugin(
        "one.conf",
        &one,
        &d.out("lines").display().to_string(),
        "string",
    );
    let mut plugins = Plugins::start(d.settings(2000, 3));
    for serial in 0..20 {
        plugins.push(&event(serial));
        std::thread::sleep(Duration::from_millis(50));
    }
    let unwritten = plugins.stop();
    let lines = fs::read_to_string(d.out("lines")).unwrap();
    // The first start and 3 restarts: 4 programs, each took the line it was written.
    assert_eq!(lines.lines().count(), 4, "{lines}");
    assert!(unwritten >= 14, "{unwritten}");
}

#[test]
fn a_plugin_that_never_reads_holds_up_nothing() {
    let d = Dir::new("stuck");
    let stuck = d.program("stuck.sh", "exec /bin/sleep 1000");
    let cat = d.program("cat.sh", "exec /bin/cat > \"$1\"");
    d.plugin("stuck.conf", &stuck, "x", "string");
    d.plugin(
        "cat.conf",
        &cat,
        &d.out("cat").display().to_string(),
        "string",
    );
    let mut plugins = Plugins::start(d.settings(4000, 10));
    let big = {
        let mut e = event(1);
        e.extend_from_slice(
            format!(
                "type=EXECVE msg=audit(1700000000.123:1): a0=\"{}\"\n",
                "x".repeat(8000)
            )
            .as_bytes(),
        );
        e
    };
    let framed = frame::frame(&big, false, false).string.len();
    // 3000 events of 3 records: the stuck plugin's queue takes 4000 records, its socket a few.
    let mut pushing = Duration::ZERO;
    for _ in 0..30 {
        let started = Instant::now();
        for _ in 0..100 {
            plugins.push(&big);
        }
        pushing += started.elapsed();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pushing < Duration::from_millis(500), "{pushing:?}");
    wait_for("the other plugin to have every event", || {
        fs::metadata(d.out("cat")).is_ok_and(|m| m.len() as usize == 3000 * framed)
    });
    assert!(plugins.unwritten() > 1500, "{}", plugins.unwritten());
    let started = Instant::now();
    plugins.stop();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn reload_starts_new_stops_removed_and_hups_the_rest() {
    // As under `nohup`: SIGHUP ignored here, which a plugin would inherit across exec (and a
    // shell could not trap) unless the dispatcher sets it back.
    // SAFETY: plain disposition changes; the previous one is put back below.
    let was = unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    let d = Dir::new("reload");
    let hups = d.program(
        "hups.sh",
        // A trapped signal interrupts `read` (status above 128): read on.
        "trap 'echo hup >> \"$1.hup\"' HUP\nwhile :; do\n  if read -r line; then echo \"$line\" >> \"$1\"\n  elif [ $? -le 128 ]; then exit; fi\ndone",
    );
    d.plugin("a.conf", &hups, &d.out("a").display().to_string(), "string");
    let mut plugins = Plugins::start(d.settings(2000, 10));
    plugins.push(&event(1));
    wait_for("a's first event", || fs::metadata(d.out("a")).is_ok());
    fs::remove_file(d.0.join("plugins.d/a.conf")).unwrap();
    d.plugin("b.conf", &hups, &d.out("b").display().to_string(), "string");
    plugins.reload(d.settings(2000, 10));
    assert_eq!(plugins.len(), 1);
    plugins.push(&event(2));
    wait_for("b's event", || fs::metadata(d.out("b")).is_ok());
    plugins.reload(d.settings(2000, 10));
    wait_for("b's SIGHUP", || fs::metadata(d.out("b.hup")).is_ok());
    plugins.push(&event(3));
    wait_for("b's event after its SIGHUP", || {
        fs::read_to_string(d.out("b")).is_ok_and(|s| s.lines().count() == 4)
    });
    // SYSCALL and EOE: a got its one event, and nothing after it was removed.
    assert_eq!(fs::read_to_string(d.out("a")).unwrap().lines().count(), 2);
    assert_eq!(plugins.stop(), 0);
    unsafe { libc::signal(libc::SIGHUP, was) };
}

#[test]
fn a_full_queue_drops_and_counts_and_suspend_holds_until_a_reload() {
    let item = || Item {
        bytes: b"type=EOE msg=audit(1.000:1): \n"[..].into(),
        records: 2,
    };
    let unwritten = |q: &Queue| q.unwritten.load(std::sync::atomic::Ordering::Relaxed);
    // q_depth counts records, as auditd's queue does.
    let q = Queue::new(5, Overflow::Syslog);
    assert!(q.push("p", item()) && q.push("p", item()));
    assert!(!q.push("p", item()));
    assert_eq!(unwritten(&q), 1);
    assert!(matches!(q.next(Duration::ZERO), Next::Item(_)));
    assert!(q.push("p", item()), "room again: queued again");

    let q = Queue::new(2, Overflow::Suspend);
    assert!(q.push("p", item()));
    assert!(!q.push("p", item()));
    assert!(matches!(q.next(Duration::ZERO), Next::Item(_)));
    assert!(!q.push("p", item()), "suspended: nothing until a reload");
    assert_eq!(unwritten(&q), 2);
    // A reload ends the suspension; a smaller q_depth does not shrink the queue.
    q.configure(1, Overflow::Suspend);
    assert!(q.push("p", item()));
    assert!(matches!(q.next(Duration::ZERO), Next::Item(_)));
    assert!(matches!(q.next(Duration::ZERO), Next::Idle));
    q.close();
    assert!(matches!(q.next(Duration::ZERO), Next::Closed));
    assert!(!q.push("p", item()));
    assert_eq!(unwritten(&q), 3);
}
