//! A 32-bit exec and a task with a personality, as kernel audit + auditd 3.0.9 write them
//! (`shared/groundtruth`: an i386 program's `int 0x80` execve of /bin/true; the 64-bit exec of
//! that i386 program, which has no PT_GNU_STACK and so runs with READ_IMPLIES_EXEC).

use super::true_event;
use crate::encode::audit::{write_event, Names};
use crate::encode::parse::{exec_event, group_events, parse_log};
use crate::event::*;
use crate::testing::audit::{names, show};

fn encode(ev: &ExecEvent, enriched: bool) -> String {
    let n = names();
    let mut out = Vec::new();
    write_event(
        &mut out,
        &Event::Exec(ev.clone()),
        enriched.then_some(&n as &dyn Names),
    );
    show(&out)
}

#[test]
fn an_i386_execve_is_arch_40000003_syscall_11() {
    let mut ev = true_event(460, 7, vec![b"/bin/true".to_vec(), b"i386-arg".to_vec()]);
    ev.arch = AUDIT_ARCH_I386;
    ev.syscall = Syscall::EXECVE;
    let raw = encode(&ev, false);
    assert!(
        raw.contains(" arch=40000003 syscall=11 success=yes "),
        "{raw}"
    );
    let enriched = encode(&ev, true);
    assert!(
        enriched.contains("^]ARCH=i386 SYSCALL=execve "),
        "{enriched}"
    );
    // The text reads back as the same event.
    let back = exec_event(&group_events(parse_log(raw.as_bytes()).unwrap())[0]).unwrap();
    assert_eq!(
        (back.arch, back.syscall),
        (AUDIT_ARCH_I386, Syscall::EXECVE)
    );
}

#[test]
fn a_personality_is_written_per_after_syscall_and_reads_back() {
    let mut ev = true_event(460, 8, vec![b"/tmp/gt/bin/x32ok".to_vec()]);
    ev.task.personality = 0x0040_0000;
    let raw = encode(&ev, false);
    assert!(raw.contains(" syscall=59 per=400000 success=yes "), "{raw}");
    let back = exec_event(&group_events(parse_log(raw.as_bytes()).unwrap())[0]).unwrap();
    assert_eq!(back.task.personality, 0x0040_0000);
    ev.task.personality = 0;
    assert!(!encode(&ev, false).contains(" per="));
}
