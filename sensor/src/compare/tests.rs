use std::io::Read;

use super::*;

const KERNEL: &str = "\
type=SYSCALL msg=audit(100.000:1): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=1 pid=10 comm=\"ls\" exe=\"/usr/bin/ls\" key=\"x\"
type=EXECVE msg=audit(100.000:1): argc=1 a0=\"ls\"
type=PATH msg=audit(100.000:1): item=0 name=\"/bin/ls\" inode=5
type=PATH msg=audit(100.000:1): item=1 name=\"/lib64/ld\" inode=6
type=PROCTITLE msg=audit(100.000:1): proctitle=\"ls\"
type=SYSCALL msg=audit(101.000:2): arch=c000003e syscall=59 success=yes exit=0 items=1 ppid=1 pid=11 comm=\"id\" exe=\"/usr/bin/id\" key=\"x\"
type=EXECVE msg=audit(101.000:2): argc=1 a0=\"id\"
type=PATH msg=audit(101.000:2): item=0 name=\"/bin/id\" inode=7
type=USER_ACCT msg=audit(102.000:3): pid=12 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting acct=\"root\" res=success'
type=CONFIG_CHANGE msg=audit(103.000:4): op=set audit_enabled=1 res=1
";

const SENSOR: &str = "\
type=SYSCALL msg=audit(100.004:7): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=1 pid=10 comm=\"ls\" exe=\"/usr/bin/ls\" key=(null) cgroup_id=\"1\"
type=EXECVE msg=audit(100.004:7): argc=1 a0=\"ls\"
type=PATH msg=audit(100.004:7): item=0 name=\"/bin/ls\" inode=5
type=PATH msg=audit(100.004:7): item=1 name=\"/lib64/ld\" inode=9
type=PROCTITLE msg=audit(100.004:7): proctitle=\"ls\"
type=USER_ACCT msg=audit(102.001:8): pid=12 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting acct=\"root\" res=success' cgroup_id=\"1\"
type=ANOM_ABEND msg=audit(104.000:9): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=13 sig=11 res=1
";

#[test]
fn events_match_by_identity_and_time_and_fields_are_compared() {
    let c = compare(KERNEL.as_bytes(), SENSOR.as_bytes(), 2000).unwrap();
    assert_eq!(
        (c.kernel_events, c.sensor_events, c.matched_events),
        (4, 3, 2)
    );
    let execve = &c.types["EXECVE"];
    assert_eq!((execve.kernel, execve.both, execve.kernel_only), (2, 1, 1));
    assert!((execve.coverage().unwrap() - 0.5).abs() < 1e-9);
    let path = &c.types["PATH"];
    assert_eq!(
        (path.both, path.kernel_only, path.compared, path.identical),
        (2, 1, 2, 1)
    );
    assert_eq!(path.fields["inode"].count, 1);
    assert_eq!(
        path.fields["inode"].examples[0],
        ("6".into(), Some("9".into()))
    );
    let syscall = &c.types["SYSCALL"];
    assert_eq!(
        syscall.fields["key"].count, 1,
        "key differs; the sensor's cgroup_id is not compared"
    );
    assert!(!syscall.fields.contains_key("cgroup_id"));
    assert_eq!(c.types["USER_ACCT"].identical, 1);
    assert_eq!(c.types["CONFIG_CHANGE"].kernel_only, 1);
    assert_eq!(c.types["ANOM_ABEND"].sensor_only, 1);
}

#[test]
fn a_type_only_the_sensor_wrote_is_an_extra_never_coverage() {
    let c = compare(KERNEL.as_bytes(), SENSOR.as_bytes(), 2000).unwrap();
    let abend = &c.types["ANOM_ABEND"];
    assert_eq!((abend.kernel, abend.sensor, abend.coverage()), (0, 1, None));
    let table = report::table(&c);
    let row = table.lines().find(|l| l.starts_with("ANOM_ABEND")).unwrap();
    assert!(row.contains("extra") && !row.contains('%'), "{row}");
    assert!(table.contains(
        "extras (types the kernel did not write, not counted as coverage): ANOM_ABEND 1"
    ));
    assert!(report::markdown(&c).contains("| ANOM_ABEND | 0 | 1 | 0 | 0 | 1 | extra |"));
}

#[test]
fn events_outside_the_window_or_of_another_process_do_not_match() {
    let shifted = SENSOR.replace("audit(100.004", "audit(103.004");
    let c = compare(KERNEL.as_bytes(), shifted.as_bytes(), 2000).unwrap();
    assert_eq!(c.types["EXECVE"].both, 0);
    let other_pid = SENSOR.replace("pid=10 ", "pid=99 ");
    let c = compare(KERNEL.as_bytes(), other_pid.as_bytes(), 2000).unwrap();
    assert_eq!(c.types["EXECVE"].both, 0);
}

#[test]
fn reports_render_every_type_and_difference() {
    let c = compare(KERNEL.as_bytes(), SENSOR.as_bytes(), 2000).unwrap();
    let t = report::table(&c);
    assert!(t.contains("EXECVE") && t.contains("50.0%") && t.contains("kernel 6 | sensor 9"));
    let m = report::markdown(&c);
    assert!(m.contains("| EXECVE | 2 | 1 | 1 | 1 | 0 | 50.0% |"), "{m}");
    let j: serde_json::Value = serde_json::from_str(&report::json(&c)).unwrap();
    assert_eq!(j["types"]["PATH"]["fields"]["inode"]["count"], 1);
}

#[test]
fn netlink_messages_become_log_lines() {
    let mut data = Vec::new();
    for (t, text) in [
        (1300u16, &b"audit(1.002:3): arch=c000003e syscall=59\0"[..]),
        (1320, b"audit(1.002:3): \0"),
    ] {
        let len = 16 + text.len();
        data.extend_from_slice(&(len as u32).to_ne_bytes());
        data.extend_from_slice(&t.to_ne_bytes());
        data.extend_from_slice(&[0; 10]);
        data.extend_from_slice(text);
        data.resize(data.len().next_multiple_of(4), 0);
    }
    let mut out = Vec::new();
    live::append_messages(&data, &mut out);
    assert_eq!(
        out,
        b"type=SYSCALL msg=audit(1.002:3): arch=c000003e syscall=59\n"
    );
}

/// Accepts `room` bytes, then fails as a closed pipe (or with `kind`) does.
struct Pipe {
    room: usize,
    kind: std::io::ErrorKind,
}

impl std::io::Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(self.kind.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_reader_that_went_away_ends_the_output_quietly() {
    use std::io::{ErrorKind, Write};
    let lines = |out: &mut cmd::Output<Pipe>| {
        for i in 0..100_000 {
            writeln!(out, "line {i}")?;
        }
        Ok(())
    };
    let closed = |room| Pipe {
        room,
        kind: ErrorKind::BrokenPipe,
    };
    // Closed at once, after a partial write, or only when the buffer is flushed.
    for room in [0, 10, 1 << 30] {
        assert!(cmd::write_quietly(closed(room), lines).is_ok(), "{room}");
    }
    let buffered = std::io::BufWriter::new(closed(0));
    assert!(cmd::write_quietly(buffered, |out| Ok(writeln!(out, "one")?)).is_ok());
    // Any other failure is an error, and so is one the command met before the pipe closed.
    let full = Pipe {
        room: 10,
        kind: ErrorKind::StorageFull,
    };
    assert!(cmd::write_quietly(full, lines).is_err());
    let err = cmd::write_quietly(closed(1 << 30), |_| anyhow::bail!("no such type")).unwrap_err();
    assert_eq!(err.to_string(), "no such type");
}

/// Matching whole logs, as `compare` did before it streamed: the reference the stream must equal.
fn batch(kernel: &[u8], sensor: &[u8], window_ms: u64) -> Comparison {
    use crate::encode::parse::{group_events, parse_log};
    let events = |text: &[u8]| -> Vec<Event> {
        group_events(parse_log(text).unwrap())
            .into_iter()
            .map(|recs| {
                recs.into_iter()
                    .filter(|r| r.rtype != b"EOE")
                    .collect::<Vec<_>>()
            })
            .filter(|recs| !recs.is_empty())
            .enumerate()
            .map(|(i, records)| Event {
                id: identity(&records),
                at_ms: records[0].sec * 1000 + records[0].msec as u64,
                seq: i as u64,
                records,
            })
            .collect()
    };
    let (theirs, ours) = (events(kernel), events(sensor));
    let mut taken = vec![false; ours.len()];
    let mut out = Comparison {
        window_ms,
        kernel_events: theirs.len(),
        sensor_events: ours.len(),
        ..Comparison::default()
    };
    for k in &theirs {
        let best = (0..ours.len())
            .filter(|&i| !taken[i] && ours[i].id == k.id)
            .filter(|&i| ours[i].at_ms.abs_diff(k.at_ms) <= window_ms)
            .min_by_key(|&i| ours[i].at_ms.abs_diff(k.at_ms));
        match best {
            Some(i) => {
                taken[i] = true;
                out.matched_events += 1;
                pair_records(&k.records, &ours[i].records, &mut out);
            }
            None => pair_records(&k.records, &[], &mut out),
        }
    }
    for (i, s) in ours.iter().enumerate() {
        if !taken[i] {
            pair_records(&[], &s.records, &mut out);
        }
    }
    out
}

/// One generated event: (ms after the previous one, pid, kind, in the kernel's log, in the
/// sensor's, the sensor's delay in ms, a field that differs, interleaved with the previous).
type Gen = (u64, u32, u8, bool, bool, u64, bool, bool);

fn event_lines(t: u64, serial: u64, g: &Gen, sensor: bool) -> Vec<String> {
    let (_, pid, kind, _, _, _, differs, _) = *g;
    let h = format!("msg=audit({}.{:03}:{serial}):", t / 1000, t % 1000);
    let inode = if sensor && differs { 9 } else { 5 };
    let mut lines = match kind {
        0 => vec![
            format!("type=SYSCALL {h} arch=c000003e syscall=59 success=yes exit=0 items=2 pid={pid} comm=\"x\""),
            format!("type=EXECVE {h} argc=1 a0=\"x\""),
            format!("type=PATH {h} item=0 name=\"/bin/x{}\" inode={inode}", pid % 2),
            format!("type=PATH {h} item=1 name=\"/lib/ld\" inode=6"),
        ],
        1 => vec![format!(
            "type=USER_ACCT {h} pid={pid} uid=0 msg='op=PAM:accounting acct=\"root\" res={}'",
            if sensor && differs { "failed" } else { "success" }
        )],
        _ => vec![format!("type=ANOM_ABEND {h} pid={pid} sig=11 inode={inode}")],
    };
    if !sensor {
        lines.push(format!("type=EOE {h} "));
    }
    lines
}

/// Two logs of the same activity: the kernel's in time order with concurrent events' records
/// interleaved, the sensor's each event a few ms late (so not quite in order).
fn logs(gens: &[Gen]) -> (String, String) {
    let (mut kernel, mut sensor) = (Vec::<String>::new(), Vec::<String>::new());
    let mut t = 100_000;
    let (mut last, mut last_t): (Vec<String>, u64) = (Vec::new(), 0);
    for (i, g) in gens.iter().enumerate() {
        t += g.0;
        let serial = i as u64 + 1;
        if g.3 {
            let lines = event_lines(t, serial, g, false);
            // Interleave with the previous event's records when they are close in time.
            if g.7 && !last.is_empty() && t - last_t < 40 {
                let prev: Vec<String> = kernel.drain(kernel.len() - last.len()..).collect();
                let (mut a, mut b) = (prev.into_iter(), lines.clone().into_iter());
                loop {
                    match (a.next(), b.next()) {
                        (None, None) => break,
                        (x, y) => kernel.extend(x.into_iter().chain(y)),
                    }
                }
            } else {
                kernel.extend(lines.iter().cloned());
            }
            // An event interleaved is not interleaved again.
            last = if g.7 { Vec::new() } else { lines };
            last_t = t;
        }
        if g.4 {
            sensor.extend(event_lines(t + g.5, serial + 1000, g, true));
        }
    }
    (kernel.join("\n") + "\n", sensor.join("\n") + "\n")
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// For logs in time order to within the window, streaming matches as whole logs did.
    #[test]
    fn streaming_matches_as_whole_logs_did(
        gens in proptest::collection::vec(
            (0u64..60, 0u32..4, 0u8..3, proptest::bool::weighted(0.9),
             proptest::bool::weighted(0.8), 0u64..20, proptest::bool::weighted(0.2),
             proptest::bool::weighted(0.2)),
            0..120,
        )
    ) {
        let (kernel, sensor) = logs(&gens);
        let want = batch(kernel.as_bytes(), sensor.as_bytes(), 50);
        let got = compare(kernel.as_bytes(), sensor.as_bytes(), 50).unwrap();
        proptest::prop_assert_eq!(got.late_records, Sides::default());
        proptest::prop_assert_eq!(got, want);
    }
}

#[test]
fn streaming_matches_the_fixed_logs_too() {
    for (k, s) in [(KERNEL, SENSOR), (SENSOR, KERNEL), (KERNEL, "")] {
        for window in [0, 1, 2000, 10_000] {
            assert_eq!(
                compare(k.as_bytes(), s.as_bytes(), window).unwrap(),
                batch(k.as_bytes(), s.as_bytes(), window)
            );
        }
    }
}

/// A log generated as it is read, one exec event per ms: `n` events.
struct Endless {
    next: u64,
    n: u64,
    pid_shift: u32,
    line: Vec<u8>,
    pos: usize,
}

impl Endless {
    fn new(n: u64, pid_shift: u32) -> Self {
        Endless {
            next: 0,
            n,
            pid_shift,
            line: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.consume(n);
        Ok(n)
    }
}

impl std::io::BufRead for Endless {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.line.len() && self.next < self.n {
            // Odd events get pids the other side never has.
            let pid = (self.next as u32 % 1000) + (self.next as u32 % 2) * self.pid_shift;
            let g: Gen = (1, pid, 0, true, true, 0, false, false);
            self.line = (event_lines(1_000_000 + self.next, self.next + 1, &g, false).join("\n")
                + "\n")
                .into_bytes();
            self.pos = 0;
            self.next += 1;
        }
        Ok(&self.line[self.pos..])
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

#[test]
fn memory_is_the_events_of_a_few_windows() {
    // 40,000 events a ms apart on each side, half of them matching: 400 windows of log.
    let mut most = 0;
    let c = compare_watched(
        Endless::new(40_000, 0),
        Endless::new(40_000, 100_000),
        100,
        stream::HELD_MAX,
        |held| most = most.max(held),
    )
    .unwrap();
    assert_eq!((c.kernel_events, c.sensor_events), (40_000, 40_000));
    assert_eq!(c.matched_events, 20_000);
    // A window is 100 events; the sensor is read two windows ahead of the kernel.
    assert!(most <= 1000, "{most} events held at once");
}

#[test]
fn what_a_log_cannot_make_grow_is_capped() {
    // Many record types, overlong names and values: the report stays bounded.
    let mut kernel = String::new();
    let mut sensor = String::new();
    for i in 0..600 {
        kernel += &format!(
            "type=T{i} msg=audit(1.000:{i}): pid=1 v=\"{}\"\n",
            "k".repeat(1000)
        );
        sensor += &format!("type=T{i} msg=audit(1.000:{i}): pid=1 v=\"s\"\n");
    }
    kernel += &format!("type={} msg=audit(1.000:9999): pid=2\n", "L".repeat(100));
    let c = compare(kernel.as_bytes(), sensor.as_bytes(), 2000).unwrap();
    assert_eq!(c.types.len(), MAX_TYPES + 1);
    let other = &c.types[OTHER];
    assert_eq!(
        (other.kernel, other.sensor),
        (600 - MAX_TYPES + 1, 600 - MAX_TYPES)
    );
    let example = &c.types["T0"].fields["v"].examples[0].0;
    assert_eq!(example.len(), EXAMPLE_MAX + "…".len());

    // Field names past the cap over all types are counted as (other) in their type.
    let fields: String = (0..MAX_FIELD_ROWS + 10)
        .map(|i| format!(" f{i}=1"))
        .collect();
    let kernel = format!("type=X msg=audit(1.000:1): pid=1{fields}\n");
    let sensor = "type=X msg=audit(1.000:1): pid=1\n";
    let c = compare(kernel.as_bytes(), sensor.as_bytes(), 2000).unwrap();
    let x = &c.types["X"];
    assert_eq!(x.fields.len(), MAX_FIELD_ROWS + 1);
    assert_eq!(x.fields[OTHER].count, 10);
}

#[test]
fn long_lines_are_skipped_and_counted_and_nul_is_an_error() {
    let long = format!(
        "type=X msg=audit(1.000:1): v={}\n",
        "a".repeat(crate::encode::parse::MAX_LINE)
    );
    let kernel = format!("{long}{KERNEL}");
    let c = compare(kernel.as_bytes(), SENSOR.as_bytes(), 2000).unwrap();
    assert_eq!(
        c.long_lines,
        Sides {
            kernel: 1,
            sensor: 0
        }
    );
    let mut want = compare(KERNEL.as_bytes(), SENSOR.as_bytes(), 2000).unwrap();
    want.long_lines.kernel = 1;
    assert_eq!(c, want);
    // The count shows in the JSON only when there is one.
    assert!(report::json(&c).contains("long_lines"));
    assert!(!report::json(&want_plain()).contains("long_lines"));

    // /dev/zero: an error at the first byte, whatever follows.
    let zeros = std::io::repeat(0).take(1 << 40);
    let err = compare(std::io::BufReader::new(zeros), SENSOR.as_bytes(), 2000).unwrap_err();
    assert_eq!(err.side, "audit");
    assert_eq!(
        format!("{}", err.source),
        "line 1: not an audit record: a NUL byte, which audit text never holds"
    );
}

fn want_plain() -> Comparison {
    compare(KERNEL.as_bytes(), SENSOR.as_bytes(), 2000).unwrap()
}

#[test]
fn a_window_over_the_budget_is_finalised_early() {
    // 5,000 events on each side in the same millisecond: one window, far over a 200 KB budget.
    let log = |sensor: bool| -> String {
        (0..5000u64)
            .map(|i| {
                let g: Gen = (0, (i % 7) as u32, 0, true, true, 0, false, false);
                event_lines(5000, i + 1, &g, sensor).join("\n") + "\n"
            })
            .collect()
    };
    let (kernel, sensor) = (log(false), log(true));
    let mut most = 0;
    let c = compare_watched(
        kernel.as_bytes(),
        sensor.as_bytes(),
        2000,
        200_000,
        |held| most = most.max(held),
    )
    .unwrap();
    assert_eq!((c.kernel_events, c.sensor_events), (5000, 5000));
    assert!(
        c.early_events.kernel > 0 && c.early_events.sensor > 0,
        "{:?}",
        c.early_events
    );
    assert!(most < 400, "{most} events held at once");
    // Every record is still counted once on its side.
    assert_eq!(c.types["SYSCALL"].kernel, 5000);
    assert_eq!(c.types["SYSCALL"].sensor, 5000);
    // Within the budget, the same logs match whole.
    let whole = compare(kernel.as_bytes(), sensor.as_bytes(), 2000).unwrap();
    assert_eq!(whole, batch(kernel.as_bytes(), sensor.as_bytes(), 2000));
    assert_eq!(whole.matched_events, 5000);
}

#[test]
fn a_protobuf_sensor_log_is_read_as_its_audit_text() {
    use crate::encode::{
        audit::write_event,
        proto::{HostInfo, StreamWriter},
    };
    use crate::{event::Event as Ev, testing::events};
    let evs = [
        Ev::Exec(events::full_exec()),
        Ev::Lost(events::lost()),
        events::abend(),
    ];
    let (mut pb, mut text) = (Vec::new(), Vec::new());
    let writer = StreamWriter::new(&HostInfo::default());
    for ev in &evs {
        writer.write(&mut pb, ev.clone());
        write_event(&mut text, ev, None);
    }
    let mut got = Vec::new();
    input::AuditText::new(pb.as_slice())
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, text);

    let dir = std::env::temp_dir().join(format!("sensor-unit-{}-proto-log", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pb_log, text_log) = (dir.join("sensor.pb"), dir.join("sensor.log"));
    std::fs::write(&pb_log, &pb).unwrap();
    std::fs::write(&text_log, &text).unwrap();
    let from_pb = compare(text.as_slice(), input::sensor_log(&pb_log).unwrap(), 2000).unwrap();
    let from_text = compare(text.as_slice(), input::sensor_log(&text_log).unwrap(), 2000).unwrap();
    assert_eq!(from_pb, from_text);
    assert_eq!(from_pb.matched_events, 3);
    // A cut stream is an error of the sensor's log, in a sentence.
    std::fs::write(&pb_log, &pb[..pb.len() - 1]).unwrap();
    let err = compare(text.as_slice(), input::sensor_log(&pb_log).unwrap(), 2000).unwrap_err();
    assert_eq!(err.side, "sensor");
    assert!(format!("{:#}", anyhow::Error::from(err)).contains(
        "the sensor log: reading: not a protobuf stream the sensor wrote: stream truncated"
    ),);
    let _ = std::fs::remove_dir_all(&dir);
}
