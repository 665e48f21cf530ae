use std::{
    io::Read,
    os::unix::net::{UnixListener, UnixStream},
    path::PathBuf,
    time::{Duration, Instant},
};

use super::{Address, SocketOutput, PER_EVENT, QUEUE_BYTES};
use crate::sink::{Format, OutputSpec};

fn spec(s: &str) -> Result<OutputSpec, String> {
    s.parse()
}

#[test]
fn socket_specs_parse() {
    let tcp = spec("proto:tcp:127.0.0.1:9000").unwrap();
    assert_eq!(tcp.format, Format::Proto);
    assert_eq!(tcp.path, None);
    assert_eq!(tcp.socket, Some(Address::Tcp("127.0.0.1:9000".into())));
    assert_eq!(
        spec("proto:tcp:collector.example:601").unwrap().socket,
        Some(Address::Tcp("collector.example:601".into()))
    );
    assert_eq!(
        spec("proto:tcp:[::1]:9000").unwrap().socket,
        Some(Address::Tcp("[::1]:9000".into()))
    );
    let unix = spec("audit:unix:/run/collector.sock").unwrap();
    assert_eq!(unix.format, Format::Audit);
    assert_eq!(
        unix.socket,
        Some(Address::Unix("/run/collector.sock".into()))
    );
    assert_eq!(unix.socket.unwrap().to_string(), "unix:/run/collector.sock");
    assert_eq!(tcp.socket.unwrap().to_string(), "tcp:127.0.0.1:9000");
}

#[test]
fn a_file_named_like_a_socket_is_reached_by_a_relative_path() {
    let file = spec("proto:./tcp:127.0.0.1:9000").unwrap();
    assert_eq!(file.path, Some(PathBuf::from("./tcp:127.0.0.1:9000")));
    assert_eq!(file.socket, None);
    // Still a file: a path that merely contains the word.
    assert_eq!(spec("proto:/var/log/tcp:x").unwrap().socket, None);
    assert_eq!(
        spec("proto:-").unwrap(),
        OutputSpec {
            format: Format::Proto,
            path: None,
            socket: None
        }
    );
}

#[test]
fn bad_socket_specs_are_refused() {
    for bad in [
        "proto:tcp:",
        "proto:tcp:host",
        "proto:tcp::9000",
        "proto:tcp:host:",
        "proto:tcp:host:0",
        "proto:tcp:host:65536",
        "proto:tcp:host:+80",
        "proto:tcp:host:http",
        "proto:tcp:::1:9000",
        "proto:tcp:[]:9000",
        "proto:unix:",
    ] {
        let err = spec(bad).expect_err(bad);
        assert!(
            err.contains("tcp:HOST:PORT") || err.contains("unix:"),
            "{bad}: {err}"
        );
    }
}

fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sensor-socket-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("collector.sock")
}

/// An event of `len` bytes that says its number and is checked whole on arrival.
fn event(n: u32, len: usize) -> Vec<u8> {
    let mut e = format!("{n:08}").into_bytes();
    e.resize(len - 1, b'.');
    e.push(b'\n');
    e
}

/// Reads whole events from `conn` until `count` arrived or `limit` passed; their numbers.
fn receive(conn: &mut UnixStream, len: usize, count: usize, limit: Duration) -> Vec<u32> {
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    while bytes.len() < count * len && start.elapsed() < limit {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert_eq!(bytes.len() % len, 0, "half an event arrived");
    bytes
        .chunks(len)
        .map(|e| {
            assert_eq!(e[len - 1], b'\n', "an event arrived cut");
            std::str::from_utf8(&e[..8]).unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn events_queued_while_the_collector_is_down_arrive_after_it_is_back() {
    let path = socket_path("reconnect");
    let listener = UnixListener::bind(&path).unwrap();
    let out = SocketOutput::start(Address::Unix(path.clone())).unwrap();
    let len = 1000;
    for n in 0..100 {
        assert!(out.push(&event(n, len)));
    }
    out.wake();
    let (mut conn, _) = listener.accept().unwrap();
    assert_eq!(
        receive(&mut conn, len, 100, Duration::from_secs(5)),
        (0..100).collect::<Vec<_>>()
    );
    // The collector goes away; events go on being queued, at once.
    drop((conn, listener));
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    for n in 100..200 {
        assert!(out.push(&event(n, len)));
        out.wake();
    }
    assert!(start.elapsed() < Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(300));
    let listener = UnixListener::bind(&path).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let got = receive(&mut conn, len, 100, Duration::from_secs(10));
    // Nothing was on the wire when it went: nothing is lost, and all arrive in order, whole.
    assert_eq!(out.lost(), 0);
    assert_eq!(got, (100..200).collect::<Vec<_>>());
    out.drain(Instant::now() + Duration::from_secs(1));
    assert_eq!(out.lost(), 0);
}

#[test]
fn a_collector_that_never_reads_holds_up_nothing_and_memory_stays_bounded() {
    let path = socket_path("never-reads");
    let listener = UnixListener::bind(&path).unwrap();
    let out = SocketOutput::start(Address::Unix(path)).unwrap();
    let (_conn, _) = listener.accept().unwrap();
    let len = 64 << 10;
    let (mut taken, mut refused) = (0u64, 0u64);
    let start = Instant::now();
    for n in 0..2000 {
        if out.push(&event(n, len)) {
            taken += 1;
        } else {
            refused += 1;
        }
        out.wake();
    }
    // 128 MB offered without waiting for the collector.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(refused > 0);
    let held = out.shared.lock().held;
    assert!(held <= QUEUE_BYTES, "{held}");
    // What the kernel took (the socket buffers) and the bound, no more.
    assert!(
        (taken as usize) * (len + PER_EVENT) < QUEUE_BYTES + (8 << 20),
        "{taken}"
    );
    // A stop is not held up either: what is left is counted.
    let start = Instant::now();
    out.drain(Instant::now() + Duration::from_millis(200));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(out.lost() > 0);
    assert_eq!(out.shared.lock().held, 0);
    assert!(!out.push(&event(0, len)));
}

#[test]
fn a_collector_that_closes_at_once_holds_up_nothing() {
    let path = socket_path("closes");
    let listener = UnixListener::bind(&path).unwrap();
    let closer = std::thread::spawn(move || {
        let start = Instant::now();
        let mut accepted = 0;
        listener.set_nonblocking(true).unwrap();
        while start.elapsed() < Duration::from_secs(2) {
            match listener.accept() {
                Ok((conn, _)) => {
                    drop(conn);
                    accepted += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        accepted
    });
    let out = SocketOutput::start(Address::Unix(path)).unwrap();
    let start = Instant::now();
    for n in 0..100 {
        assert!(out.push(&event(n, 100)));
        out.wake();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    let accepted = closer.join().unwrap();
    // Backoff: a handful of connections in two seconds, not a busy loop.
    assert!((1..=8).contains(&accepted), "{accepted}");
    // Found out before anything was sent: all still queued, then counted at stop.
    out.drain(Instant::now() + Duration::from_millis(100));
    assert_eq!(out.lost(), 100);
}

#[test]
fn an_event_cut_by_a_failing_connection_is_counted_and_the_next_one_starts_whole() {
    let path = socket_path("cut");
    let listener = UnixListener::bind(&path).unwrap();
    let out = SocketOutput::start(Address::Unix(path)).unwrap();
    // Far more than the socket's buffer: the writer is inside it when the collector goes.
    let big = 4 << 20;
    assert!(out.push(&event(0, big)));
    assert!(out.push(&event(1, 1000)));
    assert!(out.push(&event(2, 1000)));
    out.wake();
    let (mut conn, _) = listener.accept().unwrap();
    let mut head = [0u8; 1000];
    conn.read_exact(&mut head).unwrap();
    assert_eq!(&head[..8], b"00000000");
    std::thread::sleep(Duration::from_millis(300));
    drop(conn);
    let (mut conn, _) = listener.accept().unwrap();
    assert_eq!(receive(&mut conn, 1000, 2, Duration::from_secs(5)), [1, 2]);
    assert_eq!(out.lost(), 1);
}

#[test]
fn a_slow_collector_gets_every_event_whole_and_in_order() {
    let path = socket_path("slow");
    let listener = UnixListener::bind(&path).unwrap();
    let out = SocketOutput::start(Address::Unix(path)).unwrap();
    let (len, count) = (10_000, 300);
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 20_000];
        while bytes.len() < len * count {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bytes
    });
    let start = Instant::now();
    for n in 0..count as u32 {
        assert!(out.push(&event(n, len)));
        out.wake();
    }
    assert!(start.elapsed() < Duration::from_millis(500));
    let bytes = reader.join().unwrap();
    let numbers: Vec<u32> = bytes
        .chunks(len)
        .map(|e| std::str::from_utf8(&e[..8]).unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..count as u32).collect::<Vec<_>>());
    assert_eq!(out.lost(), 0);
}
