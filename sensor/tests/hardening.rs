//! No user can blind, fool or exhaust the sensor, and no fault stops it: attacks run as nobody
//! (or in a user namespace), each followed by a marker exec that must be recorded within a
//! second, with the sensor's memory measured.

mod common;

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{exclusive, scratch, wait_until, Sensor};

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// Runs `args` as nobody.
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(NOBODY)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv")
}

fn log_has(log: &Path, needle: &str) -> bool {
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).contains(needle)
}

/// Runs `/bin/true MARKER` and returns how long until the sensor's log has it (panics past 5 s).
fn marker_delay(log: &Path, tag: &str) -> Duration {
    let marker = format!("sensorit-marker-{tag}-{}", std::process::id());
    let t = Instant::now();
    Command::new("/bin/true").arg(&marker).status().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || log_has(log, &marker)),
        "the marker exec {marker} was never recorded: the sensor is blind"
    );
    t.elapsed()
}

/// The sensor's peak resident memory (VmHWM), in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

/// A directory nobody may write into.
fn open_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Exec a binary, then rename a FIFO over its path before the sensor looks at the file: the
/// sensor used to block forever opening it.
#[test]
fn a_fifo_renamed_over_an_execd_binary_blinds_nothing() {
    let _g = exclusive();
    let dir = open_dir("fifo-swap");
    let log = dir.join("sensor.log");
    // A long coalescing delay: the sensor handles the exec after the swap.
    let sensor = Sensor::start(&[
        "--output",
        &format!("audit:{}", log.display()),
        "--coalesce-ms",
        "300",
    ]);
    for round in 0..3 {
        let script = format!(
            "cp /bin/true {d}/prog{round} && {d}/prog{round} && mkfifo {d}/f{round} && mv -f {d}/f{round} {d}/prog{round}",
            d = dir.display()
        );
        let out = as_nobody(&["sh", "-c", &script]);
        assert!(out.status.success(), "{out:?}");
        let delay = marker_delay(&log, &format!("fifo{round}"));
        assert!(
            delay < Duration::from_millis(1000) + Duration::from_millis(300),
            "{delay:?}"
        );
        assert!(
            log_has(&log, &format!("prog{round}")),
            "the attacker's exec is recorded too"
        );
    }
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The dynamic loader and libc of /bin/true, copied under `root` where the loader finds them.
fn minimal_root(root: &Path) {
    for dir in ["bin", "lib/x86_64-linux-gnu", "lib64"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (from, to) in [
        ("/bin/true", "bin/true"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
    ] {
        std::fs::copy(from, root.join(to)).unwrap();
    }
}

/// A user's own root (a user and mount namespace, as nobody) whose libaudit is a FIFO and whose
/// libpam is a 2 GB sparse file: the sensor looks at it to attach its probes, and must neither
/// block nor read it whole.
#[test]
fn a_fifo_and_a_sparse_library_in_a_users_root_cost_nothing() {
    let _g = exclusive();
    let dir = open_dir("user-root");
    let log = dir.join("sensor.log");
    let root = dir.join("root");
    minimal_root(&root);
    let libs = root.join("lib/x86_64-linux-gnu");
    let fifo = libs.join("libaudit.so.1");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let sparse = std::fs::File::create(libs.join("libpam.so.0")).unwrap();
    sparse.set_len(2 << 30).unwrap();
    drop(sparse);
    Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&root)
        .status()
        .unwrap();
    let sensor = Sensor::start(&["--output", &format!("audit:{}", log.display())]);
    let before = peak_mib(sensor.pid());
    let out = as_nobody(&[
        "unshare",
        "-Urm",
        "chroot",
        root.to_str().unwrap(),
        "/bin/true",
    ]);
    assert!(out.status.success(), "{out:?}");
    let delay = marker_delay(&log, "userroot");
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    // Give the attach thread time to look at the root, then check again.
    std::thread::sleep(Duration::from_millis(500));
    let delay = marker_delay(&log, "userroot-after");
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    let after = peak_mib(sensor.pid());
    assert!(
        after < before + 64,
        "peak memory grew from {before} to {after} MiB"
    );
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    eprintln!("user root: marker {delay:?}, peak {before} -> {after} MiB");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Children of nobody stopped by their tracer inside execve (PTRACE_O_TRACEEXEC), each with
/// 1.9 MB of arguments: their execs stay pending, and the sensor's memory must stay bounded.
const PTRACE_STORM: &str = r#"
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_TRACEME, PTRACE_CONT, PTRACE_SETOPTIONS, PTRACE_O_TRACEEXEC = 0, 7, 0x4200, 0x10
n, size = int(sys.argv[1]), int(sys.argv[2])
arg = "x" * (size // 16)
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        libc.ptrace(PTRACE_TRACEME, 0, 0, 0)
        os.kill(os.getpid(), signal.SIGSTOP)
        os.execv("/bin/true", ["/bin/true"] + [arg] * 15)
    os.waitpid(pid, 0)
    libc.ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC)
    libc.ptrace(PTRACE_CONT, pid, 0, 0)
    os.waitpid(pid, 0)  # stopped inside execve
    kids.append(pid)
print("stopped", len(kids), flush=True)
sys.stdin.read()
for pid in kids:
    os.kill(pid, signal.SIGKILL)
"#;

#[test]
fn execs_paused_inside_execve_keep_memory_bounded() {
    let _g = exclusive();
    let dir = scratch("ptrace");
    let log = dir.join("sensor.log");
    let sensor = Sensor::start(&["--output", &format!("audit:{}", log.display())]);
    let before = peak_mib(sensor.pid());
    let mut storm = Command::new("setpriv")
        .args(NOBODY)
        .args(["/usr/bin/python3", "-c", PTRACE_STORM, "120", "1900000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(storm.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "stopped 120", "{line}");
    let delay = marker_delay(&log, "ptrace");
    let after = peak_mib(sensor.pid());
    drop(storm.stdin.take());
    storm.wait().unwrap();
    let (status, stderr) = sensor.stop();
    assert!(status.success(), "{stderr}");
    eprintln!("120 paused execs of 1.9 MB: marker {delay:?}, peak {before} -> {after} MiB");
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    // 228 MB of arguments are pending; the sensor keeps at most 64 MiB of them.
    assert!(
        after < before + 110,
        "peak memory grew from {before} to {after} MiB"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A FUSE file system that serves one executable, `prog`, and stops answering (every call
/// waits) while the file named by its second argument exists: a user's mount that hangs.
const HANGING_FS: &str = r#"
import errno, os, stat, sys, time
from fusepy import FUSE, FuseOSError, Operations
data = open("/bin/true", "rb").read()
trigger = sys.argv[2]
def wait():
    while os.path.exists(trigger):
        time.sleep(0.05)
class Hang(Operations):
    def getattr(self, path, fh=None):
        wait()
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if path == "/prog":
            return dict(st_mode=stat.S_IFREG | 0o755, st_nlink=1, st_size=len(data))
        raise FuseOSError(errno.ENOENT)
    def readdir(self, path, fh):
        wait()
        return [".", "..", "prog"]
    def open(self, path, flags):
        wait()
        return 0
    def read(self, path, size, offset, fh):
        wait()
        return data[offset:offset + size]
    def getxattr(self, path, name, position=0):
        wait()
        raise FuseOSError(errno.ENODATA)
FUSE(Hang(), sys.argv[1], foreground=True, allow_other=True)
"#;

/// A file system that stops answering: the sensor's lookups of the exec'd file miss their
/// deadline (counted as `lookups_late`), and nothing else waits.
#[test]
fn a_hanging_fuse_mount_costs_a_deadline_not_the_sensor() {
    if Command::new("/usr/bin/python3")
        .args(["-c", "import fusepy"])
        .status()
        .map_or(true, |s| !s.success())
    {
        panic!("python3-fusepy is not installed (Debian packages python3-fusepy and fuse3)");
    }
    let _g = exclusive();
    let dir = open_dir("fuse");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let trigger = dir.join("hang-now");
    let log = dir.join("sensor.log");
    let mut fs = Command::new("/usr/bin/python3")
        .args(["-c", HANGING_FS])
        .arg(&mnt)
        .arg(&trigger)
        .spawn()
        .unwrap();
    let prog = mnt.join("prog");
    assert!(
        wait_until(Duration::from_secs(5), || prog.exists()),
        "FUSE did not mount"
    );
    let sensor = Sensor::start(&[
        "--output",
        &format!("audit:{}", log.display()),
        "--coalesce-ms",
        "300",
        "--lost-interval-ms",
        "100",
    ]);
    let result = std::panic::catch_unwind(|| {
        // nobody runs the FUSE binary, then the file system stops answering before the sensor
        // looks at the file.
        let out = as_nobody(&[prog.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        std::fs::write(&trigger, b"").unwrap();
        let delay = marker_delay(&log, "fuse");
        assert!(delay < Duration::from_millis(1300), "{delay:?}");
        let late = || {
            let text =
                String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
            text.lines()
                .rev()
                .find(|l| l.contains("op=sensor_lost"))
                .and_then(|l| l.split(' ').find_map(|kv| kv.strip_prefix("lookups_late=")))
                .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
                .unwrap_or(0)
        };
        assert!(
            wait_until(Duration::from_secs(3), || late() > 0),
            "a late lookup is counted"
        );
        assert!(log_has(&log, "/mnt/prog"), "the exec itself is recorded");
        eprintln!("hanging FUSE: marker {delay:?}, lookups_late {}", late());
    });
    let _ = std::fs::remove_file(&trigger);
    let (status, stderr) = sensor.stop();
    let _ = Command::new("umount").arg("-l").arg(&mnt).status();
    let _ = fs.kill();
    let _ = fs.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(status.success(), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
