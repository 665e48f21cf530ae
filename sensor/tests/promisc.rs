//! ANOM_PROMISCUOUS by every route, on a veth pair in a network namespace, beside real kernel
//! audit: `ip link … promisc` (rtnetlink sendmsg), SIOCSIFFLAGS (ioctl), and a packet socket
//! joining PACKET_MR_PROMISC (setsockopt) and leaving it (close). Near misses: a change that is
//! already in effect, and allmulticast, which is another flag.

mod common;

use std::{os::unix::fs::MetadataExt, process::Command, time::Duration};

use common::{
    auditd::Auditd,
    compare::{events_with, record, FieldTable},
    exclusive, scratch, Sensor,
};
use sensor::encode::parse::{decode_value, Record};

const NS: &str = "sensor-it-promisc";

/// The namespace and its veth pair, removed on drop.
struct Netns;

impl Netns {
    fn create() -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", NS])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", NS]);
        ip(&[
            "-n", NS, "link", "add", "spa0", "type", "veth", "peer", "name", "spa1",
        ]);
        Netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", NS])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs `ip ARGS`; returns its pid.
fn ip(args: &[&str]) -> u32 {
    let mut child = Command::new("ip").args(args).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "ip {args:?}");
    pid
}

/// In a thread that joined the namespace: SIOCSIFFLAGS on `dev`, then a packet socket on it
/// joining PACKET_MR_PROMISC and closed.
fn ioctl_and_packet_socket(dev: &'static str) {
    std::thread::spawn(move || unsafe {
        let ns = std::fs::File::open(format!("/run/netns/{NS}")).unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET), 0);
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(sock >= 0);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in dev.bytes().enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        for on in [true, false] {
            assert_eq!(libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req), 0);
            let flags = &mut req.ifr_ifru.ifru_flags;
            if on {
                *flags |= libc::IFF_PROMISC as libc::c_short;
            } else {
                *flags &= !(libc::IFF_PROMISC as libc::c_short);
            }
            assert_eq!(libc::ioctl(sock, libc::SIOCSIFFLAGS, &req), 0);
        }
        libc::close(sock);

        let packet = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(packet >= 0);
        let mut mreq: libc::packet_mreq = std::mem::zeroed();
        mreq.mr_ifindex = libc::if_nametoindex(format!("{dev}\0").as_ptr().cast()) as i32;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        let ret = libc::setsockopt(
            packet,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            std::mem::size_of::<libc::packet_mreq>() as u32,
        );
        assert_eq!(ret, 0);
        libc::close(packet);
    })
    .join()
    .unwrap();
}

/// The lines of every event with an ANOM_PROMISCUOUS record for `dev`, to show in a failure.
fn events_of(text: &[u8], dev: &str) -> String {
    let text = String::from_utf8_lossy(text);
    let stamp = |l: &str| {
        l.split(": ")
            .next()
            .and_then(|p| p.split("msg=").nth(1))
            .map(str::to_string)
    };
    let stamps: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("type=ANOM_PROMISCUOUS") && l.contains(&format!("dev={dev} ")))
        .filter_map(stamp)
        .collect();
    text.lines()
        .filter(|l| stamp(l).is_some_and(|s| stamps.contains(&s)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ANOM_PROMISCUOUS event for `dev` turning `prom` during syscall `nr` of process `pid`.
fn find(events: &[Vec<Record>], dev: &str, prom: u32, nr: u32, pid: u32) -> Option<Vec<Record>> {
    let (prom, nr, pid) = (prom.to_string(), nr.to_string(), pid.to_string());
    events
        .iter()
        .find(|ev| {
            let a = record(ev, b"ANOM_PROMISCUOUS");
            let s = record(ev, b"SYSCALL");
            a.and_then(|a| a.get(b"dev")) == Some(dev.as_bytes())
                && a.and_then(|a| a.get(b"prom")) == Some(prom.as_bytes())
                && s.and_then(|s| s.get(b"syscall")) == Some(nr.as_bytes())
                && s.and_then(|s| s.get(b"pid")) == Some(pid.as_bytes())
        })
        .cloned()
}

#[test]
fn promiscuity_changes_by_every_route_agree_with_the_kernel() {
    let _g = exclusive();
    let dir = scratch("promisc");
    let netns = Netns::create();
    let netns_inode = std::fs::metadata(format!("/run/netns/{NS}")).unwrap().ino();
    let auditd = Auditd::start(&[]);
    let (sensor, logs) = Sensor::start_logging(&dir);
    let me = std::process::id();
    let on = ip(&["-n", NS, "link", "set", "spa0", "promisc", "on"]);
    let again = ip(&["-n", NS, "link", "set", "spa0", "promisc", "on"]);
    let allmulti = ip(&["-n", NS, "link", "set", "spa0", "allmulticast", "on"]);
    let off = ip(&["-n", NS, "link", "set", "spa0", "promisc", "off"]);
    ioctl_and_packet_socket("spa1");
    let expected: Vec<(&str, &str, u32, u32, u32)> = vec![
        ("ip link promisc on", "spa0", 256, 46, on),
        ("ip link promisc off", "spa0", 0, 46, off),
        ("SIOCSIFFLAGS on", "spa1", 256, 16, me),
        ("SIOCSIFFLAGS off", "spa1", 0, 16, me),
        ("PACKET_MR_PROMISC join", "spa1", 256, 54, me),
        ("packet socket closed", "spa1", 0, 3, me),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let sensor_text = sensor.stop_and_read(&logs);
    let kernel_text = auditd.collect(&dir.join("auditd.log"), |t| {
        events_with(t, b"ANOM_PROMISCUOUS").len() >= expected.len()
    });
    drop(auditd);
    drop(netns);
    let theirs = events_with(&kernel_text, b"ANOM_PROMISCUOUS");
    let ours = events_with(&sensor_text, b"ANOM_PROMISCUOUS");

    let mut table = FieldTable::default();
    // The close: where close(2) leaves the last fput to task work (6.1), the socket leaves
    // PACKET_MR_PROMISC after the syscall's exit and the kernel writes the record alone; so must
    // the sensor, rather than give it the thread's next syscall. Where the release is in the
    // syscall (6.18), the record is close's.
    let alone = |events: &[Vec<Record>]| {
        events
            .iter()
            .rev()
            .find(|ev| {
                let a = record(ev, b"ANOM_PROMISCUOUS");
                a.and_then(|a| a.get(b"dev")) == Some(&b"spa1"[..])
                    && a.and_then(|a| a.get(b"prom")) == Some(&b"0"[..])
                    && record(ev, b"SYSCALL").is_none()
            })
            .cloned()
    };
    let in_syscalls = match alone(&theirs) {
        Some(k) => {
            let s = alone(&ours).unwrap_or_else(|| {
                panic!(
                    "packet socket closed: the kernel wrote it alone, after close's exit; the sensor:\n{}",
                    events_of(&sensor_text, "spa1")
                )
            });
            let rt = &b"ANOM_PROMISCUOUS"[..];
            table.compare(
                "packet socket closed (after close's exit)",
                record(&k, rt).unwrap(),
                record(&s, rt).unwrap(),
            );
            &expected[..expected.len() - 1]
        }
        None => &expected[..],
    };
    for (name, dev, prom, nr, pid) in in_syscalls {
        let k = find(&theirs, dev, *prom, *nr, *pid).unwrap_or_else(|| {
            panic!(
                "{name}: the kernel wrote no ANOM_PROMISCUOUS in syscall {nr}:\n{}\nthe sensor's:\n{}",
                events_of(&kernel_text, dev),
                events_of(&sensor_text, dev)
            )
        });
        let s = find(&ours, dev, *prom, *nr, *pid).unwrap_or_else(|| {
            panic!(
                "{name}: the sensor wrote no ANOM_PROMISCUOUS in syscall {nr}:\n{}\nthe kernel's:\n{}",
                events_of(&sensor_text, dev),
                events_of(&kernel_text, dev)
            )
        });
        let types = |ev: &[Record]| ev.iter().map(|r| r.rtype.clone()).collect::<Vec<_>>();
        assert_eq!(types(&s), types(&k), "{name}: records of the event");
        for rt in [&b"ANOM_PROMISCUOUS"[..], b"SYSCALL", b"PROCTITLE"] {
            table.compare(name, record(&k, rt).unwrap(), record(&s, rt).unwrap());
        }
        if *pid != me {
            // `ip -n` joined the namespace: the record says which, as the kernel cannot.
            let netns = record(&s, b"SYSCALL")
                .unwrap()
                .get(b"netns")
                .map(decode_value);
            assert_eq!(netns, Some(netns_inode.to_string().into_bytes()), "{name}");
        }
    }
    table.print_and_assert();
    let by_pid = |events: &[Vec<Record>], pid: u32| {
        let pid = pid.to_string();
        events
            .iter()
            .any(|ev| record(ev, b"SYSCALL").and_then(|s| s.get(b"pid")) == Some(pid.as_bytes()))
    };
    for (name, pid) in [("promisc on again", again), ("allmulticast on", allmulti)] {
        assert!(!by_pid(&ours, pid), "{name}: the sensor reported it");
        assert!(!by_pid(&theirs, pid), "{name}: the kernel reported it");
    }
    assert_eq!(ours.len(), expected.len(), "one event per change, no more");
}
