use std::os::unix::fs::MetadataExt;

use super::*;
use crate::filter::rules::lists::{excluded, user_message, Sender, Subject};
use crate::{
    event::{NameType, PathItem, Syscall, AUDIT_ARCH_X86_64},
    filter::rules::{parse, Line},
    testing::events::full_exec,
};

fn rules(text: &str) -> Vec<Rule> {
    text.lines()
        .filter_map(|l| match parse::line(l).unwrap() {
            Line::Rule(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn decide(text: &str, ev: &ExecEvent) -> Verdict {
    exec(&rules(text), ev, &mut Watched::default())
}

/// `/usr/bin/true` run by uid 1000 as euid 0 (setuid), auid unset, x86_64 execve.
fn true_exec() -> ExecEvent {
    let mut ev = full_exec();
    ev.syscall = Syscall::EXECVE;
    let m = std::fs::metadata("/usr/bin/true").unwrap();
    ev.paths = vec![PathItem {
        name: b"/usr/bin/true".to_vec(),
        inode: Some(Inode {
            ino: m.ino(),
            dev_major: libc::major(m.dev()),
            dev_minor: libc::minor(m.dev()),
            mode: m.mode(),
            ouid: m.uid(),
            ogid: m.gid(),
            rdev_major: 0,
            rdev_minor: 0,
        }),
        nametype: NameType::Normal,
        fcaps: Default::default(),
    }];
    ev.task.exe = Some(b"/usr/bin/true".to_vec());
    ev
}

fn key(k: &str) -> Verdict {
    Verdict::Record(Some(k.as_bytes().to_vec()))
}

#[test]
fn no_rule_or_no_match_writes_nothing() {
    let ev = true_exec();
    assert_eq!(decide("", &ev), Verdict::Skip);
    assert_eq!(
        decide("-a always,exit -F arch=b64 -S open", &ev),
        Verdict::Skip
    );
    assert_eq!(
        decide("-a always,exit -F arch=b64 -S execve -F uid=0", &ev),
        Verdict::Skip
    );
}

#[test]
fn the_first_matching_rule_decides() {
    let ev = true_exec();
    let never_first = "-a never,exit -F arch=b64 -S all -F exe=/usr/bin/true\n\
                       -a always,exit -F arch=b64 -S execve -k all-execs";
    assert_eq!(decide(never_first, &ev), Verdict::Skip);
    let always_first = "-a always,exit -F arch=b64 -S execve -F euid=0 -k root\n\
                        -a always,exit -F arch=b64 -S execve -k all-execs";
    assert_eq!(decide(always_first, &ev), key("root"));
    // Without a key, key=(null).
    assert_eq!(
        decide("-a always,exit -F arch=b64 -S execve", &ev),
        Verdict::Record(None)
    );
    // -A goes first only when the loader puts it there; two keys are joined with 0x01.
    assert_eq!(
        decide("-a always,exit -S execve -k a -k b", &ev),
        Verdict::Record(Some(b"a\x01b".to_vec()))
    );
}

#[test]
fn syscall_numbers_are_the_events_architectures() {
    let mut ev = true_exec();
    assert_eq!(
        decide("-a always,exit -F arch=b32 -S execve -k x", &ev),
        Verdict::Skip
    );
    ev.arch = AUDIT_ARCH_I386;
    assert_eq!(
        decide("-a always,exit -F arch=b32 -S execve -k x", &ev),
        key("x")
    );
    // x86_64's execve is 59, i386's 59 is olduname: the kernel compares raw numbers.
    assert_eq!(decide("-a always,exit -S execve -k y", &ev), Verdict::Skip);
    assert_eq!(
        decide("-a always,exit -F arch=b64 -S all -k z", &ev),
        Verdict::Skip
    );
    ev.arch = AUDIT_ARCH_X86_64;
    assert_eq!(
        decide("-a always,exit -F arch=b64 -S all -k z", &ev),
        key("z")
    );
}

#[test]
fn ids_sessions_results_and_comparisons() {
    let mut ev = true_exec();
    let d = |t: &str, ev: &ExecEvent| decide(&format!("{t} -k hit"), ev) == key("hit");
    assert!(d("-a always,exit -S execve -F auid=unset", &ev));
    assert!(!d(
        "-a always,exit -S execve -F auid>=1000 -F auid!=-1",
        &ev
    ));
    assert!(d("-a always,exit -S execve -F uid>=1000 -F euid=0", &ev));
    assert!(d("-a always,exit -S execve -C uid!=euid", &ev));
    assert!(!d("-a always,exit -S execve -C uid=euid", &ev));
    assert!(d("-a always,exit -S execve -F success=yes", &ev));
    assert!(!d("-a always,exit -S execve -F success=no", &ev));
    ev.success = false;
    ev.exit = -2;
    assert!(d("-a always,exit -S execve -F exit=-ENOENT", &ev));
    assert!(!d("-a always,exit -S execve -F exit=-EACCES", &ev));
    ev.task.auid = 1000;
    assert!(d(
        "-a always,exit -S execve -F auid>=1000 -F auid!=unset",
        &ev
    ));
    assert!(!d("-a always,exit -S execve -F auid=unset", &ev));
}

#[test]
fn a_watch_matches_the_object_and_only_for_x() {
    let ev = true_exec();
    assert_eq!(decide("-w /usr/bin/true -p x -k w", &ev), key("w"));
    assert_eq!(decide("-w /usr/bin/true -p wa -k w", &ev), Verdict::Skip);
    // Another name of the same file (a hard link, a symlink) is the same object.
    let mut by_link = ev.clone();
    by_link.paths[0].name = b"/bin/true".to_vec();
    assert_eq!(decide("-w /usr/bin/true -p x -k w", &by_link), key("w"));
    assert_eq!(decide("-w /usr/bin/false -p x -k w", &ev), Verdict::Skip);
    assert_eq!(decide("-w /usr/bin/ -p x -k d", &ev), key("d"));
    assert_eq!(decide("-w /usr/sbin/ -p x -k d", &ev), Verdict::Skip);
    assert_eq!(
        decide("-a always,exit -F path=/usr/bin/true -F perm=x -k p", &ev),
        key("p")
    );
    assert_eq!(
        decide("-a always,exit -F exe=/usr/bin/true -k e", &ev),
        key("e")
    );
    assert_eq!(
        decide("-a always,exit -F exe!=/usr/bin/true -k e", &ev),
        Verdict::Skip
    );
}

#[test]
fn the_user_list_drops_a_message_a_never_rule_matches() {
    let list = rules(
        "-a never,user -F msgtype=USER_ACCT -F uid=0\n-a always,user -F auid>=1000 -F auid!=unset\n\
         -a never,user -F exe=/usr/bin/sudo",
    );
    let sender = |msg_type, uid, auid, exe: &'static [u8]| Sender {
        msg_type,
        pid: 7,
        uid,
        auid,
        exe: Some(exe),
    };
    assert!(!user_message(
        &list,
        &sender(1101, 0, u32::MAX, b"/usr/bin/login")
    ));
    assert!(user_message(
        &list,
        &sender(1101, 1000, u32::MAX, b"/usr/bin/login")
    ));
    assert!(user_message(
        &list,
        &sender(1100, 0, u32::MAX, b"/usr/bin/login")
    ));
    // The first match decides: always before the never by exe.
    assert!(user_message(
        &list,
        &sender(1123, 0, 1000, b"/usr/bin/sudo")
    ));
    assert!(!user_message(
        &list,
        &sender(1123, 0, u32::MAX, b"/usr/bin/sudo")
    ));
    assert!(user_message(&[], &sender(1123, 0, 0, b"/x")));
}

#[test]
fn the_exclude_list_leaves_out_types_whatever_the_action() {
    let list = rules(
        "-a always,exclude -F msgtype=CWD\n-a never,exclude -F msgtype=PROCTITLE -F uid=0\n\
         -a always,exclude -F msgtype>=1100 -F msgtype<=1199 -F auid=unset",
    );
    let root = Subject {
        uid: Some(0),
        auid: Some(u32::MAX),
        ..Subject::default()
    };
    let user = Subject {
        uid: Some(1000),
        auid: Some(1000),
        ..Subject::default()
    };
    let types = [1300, 1307, 1327, 1101, 1112];
    assert_eq!(excluded(&list, &root, &types), [1307, 1327, 1101, 1112]);
    assert_eq!(excluded(&list, &user, &types), [1307]);
    assert!(excluded(&rules("-a always,exit -S execve"), &root, &types).is_empty());
}

#[test]
fn task_never_silences_and_an_unhandled_user_field_keeps_the_message() {
    let ev = true_exec();
    assert_eq!(
        decide("-a task,never\n-a always,exit -S execve -k x", &ev),
        Verdict::Skip
    );
    assert_eq!(
        decide(
            "-a task,never -F uid=4242\n-a always,exit -S execve -k x",
            &ev
        ),
        key("x")
    );
    let list = rules("-a never,user -F euid=0\n-a never,user -F msgtype=USER_CMD");
    let sudo = Sender {
        msg_type: 1123,
        pid: 1,
        uid: 0,
        auid: 0,
        exe: None,
    };
    assert!(
        user_message(&list, &sudo),
        "the kernel stops at euid and keeps it"
    );
}

#[test]
fn a_keyless_watch_that_wins_keeps_the_syscall_rules_key() {
    let ev = true_exec();
    assert_eq!(
        decide(
            "-w /usr/bin/true -p x\n-a always,exit -S execve -k exec",
            &ev
        ),
        key("exec")
    );
    assert_eq!(
        decide("-a always,exit -S execve\n-w /usr/bin/true -p x -k w", &ev),
        Verdict::Record(None)
    );
    // The task list's always records whatever the exit list says.
    assert_eq!(
        decide("-a task,always\n-a never,exit -S execve", &ev),
        Verdict::Record(None)
    );
}
