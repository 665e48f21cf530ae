use std::collections::BTreeSet;

use super::*;
use crate::{
    encode::audit::write_event,
    event::{Event, LoginAnomaly, PamFunction},
    testing::{
        events::{abend, anomaly_shapes, full_exec, lost},
        pam::{pam, user_message},
    },
};

#[test]
fn numbers_are_unique_and_names_well_formed() {
    let mut seen = std::collections::HashSet::new();
    for t in all() {
        assert!(seen.insert(t.number), "{} twice", t.number);
        assert!(
            t.name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{}",
            t.name
        );
        assert!(
            ["captured: ", "synthesized: ", "not covered: "]
                .iter()
                .any(|p| t.sensor.starts_with(p)),
            "{}: coverage {:?}",
            t.name,
            t.sensor
        );
    }
    assert!(all().len() > 200);
}

#[test]
fn record_names_as_auditd_prints_them() {
    assert_eq!(record_name(1103), "CRED_ACQ");
    assert_eq!(record_name(1100), "USER_AUTH");
    assert_eq!(record_name(2100), "ANOM_LOGIN_FAILURES");
    assert_eq!(record_name(1702), "ANOM_LINK");
    assert_eq!(record_name(1339), "UNKNOWN[1339]");
    assert_eq!(record_name(4242), "UNKNOWN[4242]");
    assert_eq!(find("anom_login_location").map(|t| t.number), Some(2104));
    assert_eq!(find("1702").map(|t| t.name), Some("ANOM_LINK"));
}

/// Every record type the encoders write, from one event of every kind and shape, and a user
/// message of every number the kernel relays.
fn emitted() -> BTreeSet<String> {
    let mut events = vec![Event::Exec(full_exec()), abend(), Event::Lost(lost())];
    events.extend(anomaly_shapes().into_iter().map(Event::Anomaly));
    for (i, f) in PamFunction::ALL.into_iter().enumerate() {
        let mut p = pam(i as u64, f);
        p.libpam_reported = false;
        p.anomalies = (2100..=2104)
            .map(|t| LoginAnomaly {
                msg_type: t,
                module: "pam_access".into(),
                rule: "test".into(),
            })
            .collect();
        events.push(Event::Pam(p));
    }
    for t in all()
        .iter()
        .filter(|t| sensor_common::is_user_msg_type(t.number))
    {
        events.push(Event::UserMessage(user_message(
            1,
            t.number,
            b"op=x res=success",
        )));
    }
    let mut out = Vec::new();
    for ev in &events {
        write_event(&mut out, ev, None);
    }
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| {
            l.split(' ')
                .next()
                .unwrap()
                .trim_start_matches("type=")
                .to_string()
        })
        .collect()
}

#[test]
fn every_type_the_sensor_writes_is_captured_or_synthesized() {
    let types = emitted();
    assert!(types.contains("EXECVE") && types.contains("ANOM_LOGIN_LOCATION"));
    for name in &types {
        let t = find(name).unwrap_or_else(|| panic!("{name} is not in the catalog"));
        assert!(
            t.sensor.starts_with("captured: ") || t.sensor.starts_with("synthesized: "),
            "{name}: {}",
            t.sensor
        );
    }
    for t in all() {
        let says = t.sensor.starts_with("captured: ") || t.sensor.starts_with("synthesized: ");
        assert_eq!(says, types.contains(t.name), "{}: {}", t.name, t.sensor);
    }
}

/// `#define AUDIT_NAME NUMBER` of the kernel's uapi header, for the record numbers.
fn header_types() -> Vec<(String, u32)> {
    let header = std::fs::read_to_string("/usr/include/linux/audit.h")
        .expect("the kernel's uapi header (Debian package linux-libc-dev)");
    header
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "#define").then_some(())?;
            let name = w.next()?.strip_prefix("AUDIT_")?;
            let n: u32 = w.next()?.parse().ok()?;
            ((1000..3000).contains(&n) && !name.starts_with("FIRST_") && !name.starts_with("LAST_"))
                .then(|| (name.to_string(), n))
        })
        .collect()
}

#[test]
fn numbers_and_names_agree_with_the_kernel_header() {
    let defs = header_types();
    assert!(defs.len() > 80, "{} definitions", defs.len());
    for (name, n) in defs {
        let t = by_number(n).unwrap_or_else(|| panic!("{name} ({n}) is not in the catalog"));
        assert!(t.in_kernel_header, "{name} ({n}): K should be yes");
        assert_eq!(t.name, name, "{n}");
    }
}

#[test]
fn names_agree_with_libaudits_table() {
    type ToName = unsafe extern "C" fn(std::ffi::c_int) -> *const std::ffi::c_char;
    let path =
        crate::load::find_library("libaudit.so.1").expect("libaudit.so.1 (Debian libaudit1)");
    // SAFETY: libaudit's documented function; it returns a static string or NULL.
    unsafe {
        let lib = libloading::Library::new(path).unwrap();
        let to_name = *lib.get::<ToName>(b"audit_msg_type_to_name").unwrap();
        for t in all() {
            let p = to_name(t.number as std::ffi::c_int);
            let name = (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy());
            if t.in_libaudit {
                assert_eq!(name.as_deref(), Some(t.name), "{}", t.number);
            } else {
                assert_eq!(name, None, "{} {}: L says no", t.number, t.name);
            }
        }
    }
}
