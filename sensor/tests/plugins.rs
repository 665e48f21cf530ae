//! auditd's own dispatcher plugins, run by the sensor from the `plugin_dir` of its `--config`,
//! each tested with the real program and what it forwards to:
//! - `au-remote.conf` (Debian's file, switched on) → the real `audisp-remote` → a real auditd
//!   run as an aggregator (`local_events = no`, `tcp_listen_port`, in a mount namespace of its
//!   own since its pid file path is fixed), restarted mid-stream: every exec arrives once;
//! - `syslog.conf` → the real `audisp-syslog` → a real rsyslogd on /dev/log → TCP → the test,
//!   the plugin started and stopped by SIGHUP as its file comes and goes;
//! - a LAUREL plugin file → the real LAUREL (/opt/laurel/bin/laurel, installed by .ci/run), fed
//!   enriched lines (`log_format = ENRICHED`): its JSON exec event carries the sensor's argv, exe
//!   and cwd;
//! - a plugin that never reads its stdin holds up neither the file output nor anything else,
//!   and what it could not take is counted in the loss record.
//!
//! Global state touched and restored on drop, also on failure: /etc/audit/audisp-remote.conf,
//! /dev/log. Needs the Debian packages auditd, audispd-plugins and rsyslog (.ci/run).

mod common;

use std::{
    fs,
    io::Read,
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use common::{exclusive, exec_events, scratch, wait_until, Sensor};

const PLUGINS_D: &str = "/etc/audit/plugins.d";
const REMOTE_CONF: &str = "/etc/audit/audisp-remote.conf";

fn write_private(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The sensor's auditd.conf: plugins from `dir/plugins.d`, fed in `log_format` (RAW or
/// ENRICHED), no log file of its own (the test names its outputs), and `extra` keywords.
fn sensor_conf(dir: &Path, log_format: &str, extra: &str) -> PathBuf {
    let plugins = dir.join("plugins.d");
    fs::create_dir_all(&plugins).unwrap();
    let conf = dir.join("auditd.conf");
    let text = format!(
        "write_logs = no\nlog_format = {log_format}\nspace_left = 2\nadmin_space_left = 1\nplugin_dir = {}\n{extra}",
        plugins.display()
    );
    write_private(&conf, &text, 0o600);
    conf
}

/// Debian's plugin file `name`, unchanged but for `active = yes`, into `dir/plugins.d`.
fn enable(dir: &Path, name: &str) {
    let shipped = fs::read_to_string(Path::new(PLUGINS_D).join(name)).unwrap_or_else(|e| {
        panic!("{PLUGINS_D}/{name} (Debian package auditd or audispd-plugins): {e}")
    });
    assert!(shipped.contains("active = no\n"), "{shipped}");
    let text = shipped.replace("active = no\n", "active = yes\n");
    write_private(&dir.join("plugins.d").join(name), &text, 0o640);
}

/// A file put back as it was (or removed if it was not there) on drop.
struct Restore {
    path: PathBuf,
    saved: Option<(Vec<u8>, fs::Permissions)>,
}

impl Restore {
    fn new(path: &str) -> Restore {
        let saved = fs::read(path)
            .ok()
            .map(|b| (b, fs::metadata(path).unwrap().permissions()));
        Restore {
            path: path.into(),
            saved,
        }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        match &self.saved {
            Some((bytes, perm)) => {
                let _ = fs::write(&self.path, bytes);
                let _ = fs::set_permissions(&self.path, perm.clone());
            }
            None => {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sigterm_and_wait(child: &mut Child, what: &str) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    if !wait_until(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    }) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not stop on SIGTERM");
    }
}

/// A real auditd receiving over TCP only, in a mount namespace whose /run is its own.
struct Aggregator {
    dir: PathBuf,
    child: Option<Child>,
}

impl Aggregator {
    fn start(dir: &Path, port: u16) -> Aggregator {
        fs::create_dir_all(dir.join("plugins.d")).unwrap();
        let conf = format!(
            "local_events = no\nwrite_logs = yes\nlog_file = {log}\nlog_format = RAW\n\
             flush = NONE\nmax_log_file = 0\nmax_log_file_action = IGNORE\nspace_left = 2\n\
             space_left_action = IGNORE\nadmin_space_left = 1\nadmin_space_left_action = IGNORE\n\
             disk_full_action = IGNORE\ndisk_error_action = IGNORE\nname_format = NONE\n\
             tcp_listen_port = {port}\ntcp_listen_queue = 5\ntcp_max_per_addr = 1\n\
             use_libwrap = no\ntransport = TCP\ndistribute_network = no\nplugin_dir = {plugins}\n",
            log = dir.join("audit.log").display(),
            plugins = dir.join("plugins.d").display()
        );
        write_private(&dir.join("auditd.conf"), &conf, 0o600);
        let mut a = Aggregator {
            dir: dir.into(),
            child: None,
        };
        a.spawn();
        a
    }

    fn log(&self) -> Vec<u8> {
        fs::read(self.dir.join("audit.log")).unwrap_or_default()
    }

    fn starts(&self) -> usize {
        count(&self.log(), b"type=DAEMON_START ")
    }

    fn spawn(&mut self) {
        let before = self.starts();
        let script = format!(
            "mount -t tmpfs tmpfs /run && exec auditd -n -c {}",
            self.dir.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.join("stderr")).unwrap())
            .spawn()
            .expect("unshare (util-linux)");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(10), || self.starts() > before),
            "the aggregator auditd did not start: {}",
            fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
        );
    }

    fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm_and_wait(&mut c, "the aggregator auditd");
        }
        // Down for a second: audisp-remote finds it gone and has to hold on to what comes.
        std::thread::sleep(Duration::from_secs(1));
        self.spawn();
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm_and_wait(&mut c, "the aggregator auditd");
        }
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The markers (argv[1] of `/bin/true MARKER`) of the exec events in `log`, as they occur.
fn markers(log: &Path, prefix: &str) -> Vec<String> {
    exec_events(log)
        .into_iter()
        .filter_map(|e| e.argv.get(1).cloned())
        .map(|a| String::from_utf8_lossy(&a).into_owned())
        .filter(|a| a.starts_with(prefix))
        .collect()
}

fn run_marker(marker: &str) {
    let ok = Command::new("/bin/true").arg(marker).status().unwrap();
    assert!(ok.success());
}

#[test]
fn audisp_remote_to_an_aggregator_restarted_mid_stream_loses_nothing() {
    let _g = exclusive();
    let dir = scratch("plugins-remote");
    let port = free_port();
    let mut aggregator = Aggregator::start(&dir.join("aggregator"), port);
    let _remote_conf = Restore::new(REMOTE_CONF);
    // audisp-remote.conf(5): keep each record in memory (queue_depth) and retry it, through a
    // network failure and an aggregator that says it is ending, until the aggregator takes it.
    let remote = format!(
        "remote_server = 127.0.0.1\nport = {port}\ntransport = tcp\nmode = immediate\n\
         queue_depth = 20000\nformat = managed\nnetwork_retry_time = 1\n\
         max_tries_per_record = 100\nmax_time_per_record = 60\nheartbeat_timeout = 0\n\
         network_failure_action = syslog\ndisk_low_action = ignore\ndisk_full_action = warn_once\n\
         disk_error_action = warn_once\nremote_ending_action = reconnect\n\
         generic_error_action = syslog\ngeneric_warning_action = syslog\n\
         queue_error_action = stop\noverflow_action = syslog\n\
         startup_failure_action = warn_once_continue\n"
    );
    write_private(Path::new(REMOTE_CONF), &remote, 0o640);
    let conf = sensor_conf(&dir, "RAW", "");
    enable(&dir, "au-remote.conf");
    let out = dir.join("sensor.log");
    let sensor = Sensor::start(&[
        "--config",
        conf.to_str().unwrap(),
        "--output",
        &format!("audit:{}", out.display()),
    ]);
    const SENT: usize = 300;
    let prefix = format!("sensor-plugin-remote-{}-", std::process::id());
    // audisp-remote connects when its first event comes.
    run_marker(&format!("{prefix}first"));
    assert!(
        wait_until(Duration::from_secs(10), || count(
            &aggregator.log(),
            b"type=DAEMON_ACCEPT "
        ) > 0),
        "audisp-remote did not connect to the aggregator"
    );
    let done = Arc::new(AtomicUsize::new(0));
    let execs = {
        let (done, prefix) = (done.clone(), prefix.clone());
        std::thread::spawn(move || {
            for i in 0..SENT {
                run_marker(&format!("{prefix}{i}"));
                done.store(i + 1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    assert!(wait_until(Duration::from_secs(30), || done
        .load(Ordering::Relaxed)
        >= SENT / 3));
    let down_at = done.load(Ordering::Relaxed);
    aggregator.restart();
    let up_at = done.load(Ordering::Relaxed);
    execs.join().unwrap();
    let agg_log = aggregator.dir.join("audit.log");
    wait_until(Duration::from_secs(60), || {
        markers(&agg_log, &prefix).len() > SENT
    });
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("plugin au-remote.conf started"), "{stderr}");

    let first = format!("{prefix}first");
    let stream = |log: &Path| {
        let mut m = markers(log, &prefix);
        m.retain(|m| *m != first);
        m
    };
    let in_file = stream(&out);
    let received = stream(&agg_log);
    let mut unique = received.clone();
    unique.sort();
    unique.dedup();
    eprintln!(
        "audisp-remote: {SENT} execs run, {} in the sensor's file, {} received by the aggregator \
         ({} distinct); the aggregator was down from exec {down_at} to exec {up_at}",
        in_file.len(),
        received.len(),
        unique.len()
    );
    assert_eq!(in_file.len(), SENT, "the sensor's own file output");
    assert_eq!(unique.len(), SENT, "lost on the way to the aggregator");
    assert_eq!(received.len(), SENT, "received twice");
}

/// rsyslogd on /dev/log forwarding everything over TCP; whatever was at /dev/log is put back.
struct Rsyslog {
    child: Child,
    moved: Option<PathBuf>,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16) -> Rsyslog {
        fs::create_dir_all(dir).unwrap();
        let moved = fs::symlink_metadata("/dev/log").is_ok().then(|| {
            let to = PathBuf::from(format!("/dev/log.sensor-test-{}", std::process::id()));
            fs::rename("/dev/log", &to).unwrap();
            to
        });
        let conf = dir.join("rsyslog.conf");
        let text = format!(
            "global(workDirectory=\"{}\")\nmodule(load=\"imuxsock\" SysSock.Name=\"/dev/log\")\n\
             *.* action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\")\n",
            dir.display()
        );
        write_private(&conf, &text, 0o600);
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("rsyslogd (Debian package rsyslog)");
        let r = Rsyslog { child, moved };
        assert!(
            wait_until(Duration::from_secs(10), || Path::new("/dev/log").exists()),
            "rsyslogd did not open /dev/log"
        );
        r
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        sigterm_and_wait(&mut self.child, "rsyslogd");
        let _ = fs::remove_file("/dev/log");
        if let Some(from) = &self.moved {
            let _ = fs::rename(from, "/dev/log");
        }
    }
}

/// Everything sent to a TCP listener, as it arrives.
fn listen() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    (port, got)
}

#[test]
fn audisp_syslog_through_rsyslog_over_tcp_started_and_stopped_by_sighup() {
    let _g = exclusive();
    let dir = scratch("plugins-syslog");
    let (port, got) = listen();
    let _rsyslog = Rsyslog::start(&dir.join("rsyslog"), port);
    let conf = sensor_conf(&dir, "RAW", "");
    let out = dir.join("sensor.log");
    let sensor = Sensor::start(&[
        "--config",
        conf.to_str().unwrap(),
        "--output",
        &format!("audit:{}", out.display()),
    ]);
    let arrived = |marker: &str, limit: Duration| {
        let execve = format!("a1=\"{marker}\"");
        wait_until(limit, || {
            String::from_utf8_lossy(&got.lock().unwrap()).contains(&execve)
        })
    };
    // No plugin yet; SIGHUP reads plugin_dir again, as auditd's reconfigure does.
    enable(&dir, "syslog.conf");
    sensor.signal(libc::SIGHUP);
    let prefix = format!("sensor-plugin-syslog-{}-", std::process::id());
    let mut tries = 0;
    let first = loop {
        tries += 1;
        let marker = format!("{prefix}{tries}");
        run_marker(&marker);
        if arrived(&marker, Duration::from_secs(2)) || tries == 10 {
            break marker;
        }
    };
    // Removed, and SIGHUP: audisp-syslog is stopped, nothing more comes.
    fs::remove_file(dir.join("plugins.d/syslog.conf")).unwrap();
    sensor.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    let after = format!("{prefix}after");
    run_marker(&after);
    let leaked = arrived(&after, Duration::from_secs(2));
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
    let execve = format!("a1=\"{first}\"");
    let line = text.lines().find(|l| l.contains(&execve));
    let line = line.unwrap_or_else(|| panic!("no EXECVE of {first} over TCP: {text}\n{stderr}"));
    assert!(line.contains("audisp-syslog"), "{line}");
    assert!(line.contains("type=EXECVE msg=audit("), "{line}");
    assert_eq!(markers(&out, &first).len(), 1);
    assert!(
        !leaked,
        "an exec after the plugin was removed still came: {text}"
    );
    assert!(
        stderr.contains("plugin syslog.conf stopped: no longer in plugin_dir"),
        "{stderr}"
    );
    eprintln!("syslog: {line}");
}

#[test]
fn a_plugin_that_never_reads_holds_up_no_output() {
    let _g = exclusive();
    let dir = scratch("plugins-stuck");
    let conf = sensor_conf(&dir, "RAW", "q_depth = 10\noverflow_action = syslog\n");
    let program = dir.join("stuck.sh");
    write_private(&program, "#!/bin/sh\nexec /bin/sleep 60\n", 0o750);
    let plugin = format!(
        "active = yes\ndirection = out\npath = {}\ntype = always\nformat = string\n",
        program.display()
    );
    write_private(&dir.join("plugins.d/stuck.conf"), &plugin, 0o640);
    let out = dir.join("sensor.log");
    let sensor = Sensor::start(&[
        "--config",
        conf.to_str().unwrap(),
        "--output",
        &format!("audit:{}", out.display()),
    ]);
    let prefix = format!("sensor-plugin-stuck-{}-", std::process::id());
    // Enough to fill the socket the plugin never reads and its 10-record queue.
    for i in 0..400 {
        run_marker(&format!("{prefix}fill-{i}"));
    }
    let marker = format!("{prefix}late");
    run_marker(&marker);
    let ran = Instant::now();
    let seen = wait_until(Duration::from_secs(5), || {
        fs::read(&out).is_ok_and(|t| count(&t, marker.as_bytes()) > 0)
    });
    let took = ran.elapsed();
    let unwritten_said = wait_until(Duration::from_secs(5), || {
        fs::read_to_string(&out).is_ok_and(|t| {
            t.lines()
                .any(|l| l.contains("op=sensor_lost") && !l.contains("unwritten=\"0\""))
        })
    });
    let stopping = Instant::now();
    let (status, stderr) = sensor.stop();
    let stop_took = stopping.elapsed();
    assert!(status.success(), "{stderr}");
    eprintln!("stuck plugin: the marker reached the file {took:?} after its exec; stop took {stop_took:?}");
    assert!(seen && took < Duration::from_secs(1), "{took:?}");
    assert_eq!(markers(&out, &prefix).len(), 401);
    assert!(
        unwritten_said,
        "no loss record counts what the plugin could not take"
    );
    assert!(
        stderr.contains("stuck.conf: its queue of 10 records is full"),
        "{stderr}"
    );
    assert!(stop_took < Duration::from_secs(10), "{stop_took:?}");
}

/// A LAUREL string back to its bytes (it percent-encodes control bytes, `%`, `+` and invalid
/// UTF-8, laurel-about(7)).
fn laurel_bytes(v: &serde_json::Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let (mut out, mut rest) = (Vec::new(), s.as_bytes());
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            out.push(u8::from_str_radix(std::str::from_utf8(&tail[..2]).unwrap(), 16).unwrap());
            rest = &tail[2..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    out
}

#[test]
fn laurel_as_a_plugin_gets_argv_exe_and_cwd() {
    use std::os::unix::ffi::OsStrExt;
    const LAUREL: &str = "/opt/laurel/bin/laurel";
    assert!(
        Path::new(LAUREL).exists(),
        "LAUREL is not installed at {LAUREL} (.ci/run installs it)"
    );
    let _g = exclusive();
    let dir = scratch("plugins-laurel");
    let conf = sensor_conf(&dir, "ENRICHED", "");
    let laurel_dir = dir.join("laurel");
    fs::create_dir_all(&laurel_dir).unwrap();
    let laurel_conf = laurel_dir.join("config.toml");
    let toml = format!(
        "directory = \"{}\"\n[auditlog]\nfile = \"audit.json\"\n[state]\nfile = \"\"\n",
        laurel_dir.display()
    );
    write_private(&laurel_conf, &toml, 0o600);
    // As LAUREL's own documentation has it in plugins.d, with its config path; fed the enriched
    // lines, as auditd feeds plugins under Debian's log_format = ENRICHED.
    let plugin = format!(
        "active = yes\ndirection = out\ntype = always\nformat = string\npath = {LAUREL}\n\
         args = --config {}\n",
        laurel_conf.display()
    );
    write_private(&dir.join("plugins.d/laurel.conf"), &plugin, 0o640);
    let out = dir.join("sensor.log");
    let sensor = Sensor::start(&[
        "--config",
        conf.to_str().unwrap(),
        "--output",
        &format!("audit:{}", out.display()),
    ]);
    let cwd = dir.join("cwd with space");
    fs::create_dir(&cwd).unwrap();
    let marker = format!("sensor-plugin-laurel-{}", std::process::id());
    let ok = Command::new("/bin/true")
        .args([marker.as_str(), "two words", "50%+1"])
        .current_dir(&cwd)
        .status()
        .unwrap();
    assert!(ok.success());
    let json = laurel_dir.join("audit.json");
    let arrived = wait_until(Duration::from_secs(10), || {
        fs::read_to_string(&json).is_ok_and(|t| t.contains(&marker))
    });
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    assert!(arrived, "LAUREL wrote no event for the marker: {stderr}");
    let text = fs::read_to_string(&json).unwrap();
    let ours = exec_events(&out)
        .into_iter()
        .find(|e| e.argv.get(1).map(Vec::as_slice) == Some(marker.as_bytes()))
        .expect("the marker in the sensor's own file");
    let event: serde_json::Value = text
        .lines()
        .filter(|l| l.contains(&marker))
        .map(|l| serde_json::from_str(l).unwrap())
        .find(|j: &serde_json::Value| j["EXECVE"]["ARGV"].is_array())
        .unwrap_or_else(|| panic!("no LAUREL exec event: {text}"));
    let argv: Vec<Vec<u8>> = event["EXECVE"]["ARGV"]
        .as_array()
        .unwrap()
        .iter()
        .map(laurel_bytes)
        .collect();
    assert_eq!(argv, ours.argv, "{event}");
    assert_eq!(argv[0], b"/bin/true");
    assert_eq!(argv[2], b"two words");
    assert_eq!(
        Some(laurel_bytes(&event["SYSCALL"]["exe"])),
        ours.task.exe,
        "{event}"
    );
    assert_eq!(
        laurel_bytes(&event["CWD"]["cwd"]),
        cwd.as_os_str().as_bytes(),
        "{event}"
    );
    eprintln!(
        "laurel: ARGV {} exe {} cwd {}",
        event["EXECVE"]["ARGV"], event["SYSCALL"]["exe"], event["CWD"]["cwd"]
    );
}
