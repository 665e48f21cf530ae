//! One PAM call, beside kernel audit: pamtester through a stack that allows and one that denies,
//! and libpam's own USER_AUTH and USER_ACCT as the sensor writes them, field by field against
//! what the kernel logged. Small enough for the kernel tier's guest, where `pam.rs` needs more
//! of a system than an initramfs has.

mod common;

use common::{
    auditd::Auditd,
    compare::FieldTable,
    exclusive,
    pam::{pamtester, records_of, types, Services},
    scratch, Sensor,
};

#[test]
fn a_pam_call_agrees_with_the_kernel() {
    let _g = exclusive();
    let dir = scratch("pam-call");
    let mut services = Services(Vec::new());
    let pid = std::process::id();
    let allow = services.add(
        &format!("sensor-it-allow-{pid}"),
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    );
    let deny = services.add(
        &format!("sensor-it-deny-{pid}"),
        "auth required pam_deny.so\naccount required pam_deny.so\n",
    );
    let auditd = Auditd::start(&[]);
    let (sensor, logs) = Sensor::start_logging(&dir);
    let ops = ["authenticate", "acct_mgmt"];
    let rhost = ["rhost=192.0.2.7"];
    let runs = [
        (
            "allowed",
            pamtester(false, &rhost, &allow, "root", &ops, ""),
        ),
        // pamtester stops at the refused authentication.
        ("denied", pamtester(false, &rhost, &deny, "root", &ops, "")),
    ];
    let ours = sensor.stop_and_read(&logs);
    let last = runs[1].1;
    let kernel = auditd.collect(&dir.join("auditd.log"), |t| !records_of(t, last).is_empty());
    drop(auditd);
    drop(services);

    let mut table = FieldTable::default();
    for (name, pid) in runs {
        let (k, s) = (records_of(&kernel, pid), records_of(&ours, pid));
        assert!(!k.is_empty(), "{name}: the kernel logged nothing");
        assert_eq!(types(&s), types(&k), "{name}");
        for (k, s) in k.iter().zip(&s) {
            table.compare(name, k, s);
        }
    }
    table.print_and_assert();
    let results = |pid| {
        records_of(&ours, pid)
            .iter()
            .filter_map(|r| r.get(b"msg").map(|m| m.ends_with(b"res=success'")))
            .collect::<Vec<_>>()
    };
    assert_eq!(results(runs[0].1), [true, true]);
    assert_eq!(results(runs[1].1), [false]);
}
