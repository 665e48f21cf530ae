//! The guest's root file system, an initramfs: busybox for the shell and its tools, the host's
//! own programs the tests run (at the same paths, with the shared libraries `ldd` names, so an
//! exec's `exe=` is the same path in both worlds), the host's auditd with its configuration,
//! the sensor at its build path, the test binaries, the network modules the promiscuity test
//! needs (veth, dummy: modules in the Debian kernel), and libpam's modules and configuration for
//! the PAM test. `/init` mounts what a system has, runs
//! each test binary with its tests one at a time, and powers off.

use std::{
    fs,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

/// Host programs the smoke tests run, by the paths they run them at.
const PROGRAMS: &[&str] = &[
    "/usr/bin/true",
    "/usr/bin/echo",
    "/usr/bin/dash",
    "/usr/bin/setpriv",
    "/usr/bin/unshare",
    "/usr/bin/ip",
    "/usr/bin/ln",
    "/usr/bin/cat",
    "/usr/bin/id",
    "/usr/bin/env",
    "/usr/sbin/auditd",
    "/usr/sbin/auditctl",
    "/usr/sbin/ausearch",
    "/usr/sbin/setcap",
    "/usr/sbin/sysctl",
    // The PAM test: pamtester, and the helper pam_unix runs to check a password.
    "/usr/bin/pamtester",
    "/usr/sbin/unix_chkpwd",
];

/// Host files the guest needs as they are.
const FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/audit/auditd.conf",
    "/etc/shadow",
    "/etc/login.defs",
    "/etc/ld.so.cache",
];

/// Host directories copied whole: the PAM modules (with the libraries each links) and the PAM
/// configuration the tests' stacks include.
const DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/security",
    "/etc/pam.d",
    "/etc/security",
];

const MODULES: &[&str] = &["kernel/drivers/net/veth.ko", "kernel/drivers/net/dummy.ko"];

const INIT: &str = r#"#!/bin/sh
export PATH=/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
# /tmp stays the initramfs' own (writable, in RAM): a checkout under /tmp holds the sensor.
chmod 1777 /tmp; mount -t tmpfs run /run
mkdir -p /sys/fs/cgroup /dev/pts /dev/shm /var/log/audit /run/netns
mount -t cgroup2 cgroup2 /sys/fs/cgroup; mount -t devpts devpts /dev/pts; mount -t tmpfs shm /dev/shm
mount -t securityfs securityfs /sys/kernel/security
hostname guest; ip link set lo up
for m in /modules/*.ko; do insmod "$m"; done
# An address besides loopback: getaddrinfo(AI_ADDRCONFIG), which pam_access matches origins
# with, returns no IPv4 address on a host that has only loopback.
ip link add guest0 type dummy; ip addr add 192.0.2.1/24 dev guest0; ip link set guest0 up
echo "VM: kernel $(uname -r)"
echo "VM: lsm $(cat /sys/kernel/security/lsm)"
cd /root
# Emulated (TCG), the guest runs some 20 times slower than the host: the sensor's 50 ms for a
# lookup of a user's file becomes 1 s here, or an exec's ELF interpreter is counted late.
export SENSOR_IT_LOOKUP_DEADLINE_MS=1000
# Debian's 6.1 lets fentry/fexit attach: the sensor must choose them (probe_set.rs), and the
# tests of what they serve run with them. The others run with the tracepoints: under TCG,
# attaching trampolines now and then stalls both CPUs (the tier boots again when it sees that).
export SENSOR_IT_EXPECT_PROBE_SET=fentry/fexit
for t in /tests/*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    case "$n" in
        probe_set-*|fs_anomalies-*|login_uid-*) set=auto ;;
        *) set=tracepoints ;;
    esac
    echo "VMTEST-BEGIN $n"
    SENSOR_IT_PROBE_SET=$set "$t" --test-threads=1 2>&1
    echo "VMTEST-END $n rc=$?"
done
if [ -x /bench.sh ]; then
    echo "VMBENCH-BEGIN"
    /bench.sh 2>&1
    echo "VMBENCH-END"
fi
poweroff -f
"#;

/// Builds `dir/root` and packs it into `dir/initrd.cpio.gz`. `bench`: a program to copy in and
/// the command line `/bench.sh` runs after the tests.
pub fn build(
    dir: &Path,
    sensor: &Path,
    tests: &[PathBuf],
    bench: Option<&(PathBuf, String)>,
    modules: &Path,
) -> Result<PathBuf> {
    let root = dir.join("root");
    skeleton(&root)?;
    for p in PROGRAMS {
        copy_with_libraries(&root, Path::new(p))?;
    }
    // /bin/sh is dash, as on the host (not busybox's applet).
    let _ = fs::remove_file(root.join("usr/bin/sh"));
    symlink("dash", root.join("usr/bin/sh"))?;
    for f in FILES {
        copy(&root, Path::new(f))?;
    }
    for d in DIRS {
        for entry in fs::read_dir(d).with_context(|| format!("reading {d}"))? {
            let path = entry?.path();
            if path.is_file() {
                copy(&root, &path)?;
                if path.extension().is_some_and(|e| e == "so") {
                    copy_libraries(&root, &path)?;
                }
            }
        }
    }
    fs::write(root.join("etc/audit/audit.rules"), "")?;
    // The tests run the sensor from where cargo built it.
    copy_with_libraries(&root, sensor)?;
    let tests_dir = root.join("tests");
    fs::create_dir_all(&tests_dir)?;
    for t in tests {
        let name = t.file_name().context("a test binary without a name")?;
        fs::copy(t, tests_dir.join(name))?;
        copy_libraries(&root, t)?;
    }
    fs::create_dir_all(root.join("modules"))?;
    for m in MODULES {
        let from = modules.join(m);
        let name = from.file_name().context("a module without a name")?;
        fs::copy(&from, root.join("modules").join(name))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    if let Some((program, line)) = bench {
        copy_with_libraries(&root, program)?;
        write_script(&root.join("bench.sh"), &format!("#!/bin/sh\n{line}\n"))?;
    }
    write_init(&root, INIT)?;
    pack(&root, &dir.join("initrd.cpio.gz"))
}

/// An initramfs whose /init only says it is up: to see whether KVM boots here.
pub fn probe(dir: &Path) -> Result<PathBuf> {
    let root = dir.join("probe");
    skeleton(&root)?;
    write_init(&root, "#!/bin/sh\necho VM-UP\n/usr/bin/poweroff -f\n")?;
    pack(&root, &dir.join("probe.cpio.gz"))
}

/// Merged /usr as on the host, and busybox's applets wherever the host's program is not copied.
fn skeleton(root: &Path) -> Result<()> {
    if root.exists() {
        fs::remove_dir_all(root)?;
    }
    for d in [
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "etc/audit",
        "var/log/audit",
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "lib64",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    for (link, to) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
        symlink(to, root.join(link))?;
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        bail!("/bin/busybox is missing (Debian package busybox-static)");
    }
    fs::copy(busybox, root.join("usr/bin/busybox"))?;
    let list = Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let at = root.join("usr/bin").join(applet);
        if !at.exists() && !root.join("usr/sbin").join(applet).exists() {
            symlink("busybox", at)?;
        }
    }
    Ok(())
}

fn write_init(root: &Path, text: &str) -> Result<()> {
    write_script(&root.join("init"), text)
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Copies a host file to the same path under `root`, replacing a busybox applet there.
fn copy(root: &Path, file: &Path) -> Result<()> {
    let to = root.join(file.strip_prefix("/").unwrap_or(file));
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let _ = fs::remove_file(&to);
    fs::copy(file, &to).with_context(|| format!("copying {} into the guest", file.display()))?;
    Ok(())
}

fn copy_with_libraries(root: &Path, program: &Path) -> Result<()> {
    copy(root, program)?;
    copy_libraries(root, program)
}

/// The shared libraries `ldd` names for `program` (and the loader), where not copied yet.
fn copy_libraries(root: &Path, program: &Path) -> Result<()> {
    let out = Command::new("ldd").arg(program).output().context("ldd")?;
    for lib in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let lib = Path::new(lib);
        if !root.join(lib.strip_prefix("/")?).exists() {
            copy(root, lib)?;
        }
    }
    Ok(())
}

fn pack(root: &Path, out: &Path) -> Result<PathBuf> {
    let status = Command::new("sh")
        .arg("-c")
        .arg("find . | cpio -o -H newc --quiet | gzip -1 > \"$0\"")
        .arg(out)
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("packing {} failed", out.display());
    }
    Ok(out.to_path_buf())
}
