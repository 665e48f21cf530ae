use super::*;
use crate::filter::rules::{parse::line, Line};

fn rules(text: &str) -> Vec<Rule> {
    text.lines()
        .map(|l| match line(l) {
            Ok(Line::Rule(r)) => r,
            other => panic!("{l}: {other:?}"),
        })
        .collect()
}

fn conds(r: &FilterRule) -> Vec<(u8, u8, u64)> {
    r.conds[..r.nconds as usize]
        .iter()
        .map(|c| (c.field, c.op, c.value))
        .collect()
}

#[test]
fn a_run_of_exec_watches_is_one_rule_and_one_slot() {
    let c = compile(&rules(
        "-w /usr/bin/id -p x -k a\n-w /usr/bin/who -p x\n-a always,exit -S execve -F uid=0\n-w /usr/bin/su -p x",
    ));
    assert_eq!(c.rules.len(), 3);
    let paths: Vec<_> = c.slots.iter().map(|s| (s.tree, s.paths.clone())).collect();
    assert_eq!(
        paths,
        vec![
            (
                false,
                vec![b"/usr/bin/id".to_vec(), b"/usr/bin/who".to_vec()]
            ),
            (false, vec![b"/usr/bin/su".to_vec()])
        ]
    );
    assert_eq!(conds(&c.rules[0]), vec![(FF_WATCH, 0, 0)]);
    assert_eq!(conds(&c.rules[1]), vec![(FF_UID, OP_EQ, 0)]);
    assert_eq!(conds(&c.rules[2]), vec![(FF_WATCH, 0, 1)]);
    assert_eq!(c.too_large, None);
}

#[test]
fn rules_that_never_select_an_exec_are_left_out() {
    let c = compile(&rules(
        "-w /etc/passwd -p wa\n-a always,exit -F arch=b64 -S openat\n-a always,exit -S all -F saddr_fam=2\n-a always,exit -S execve -F perm=w\n-a always,user -F uid=0",
    ));
    assert!(c.rules.is_empty(), "{:?}", c.rules);
}

#[test]
fn what_the_kernel_side_cannot_see_may_hold() {
    let c = compile(&rules(
        "-a never,exit -S all -F dir=/tmp\n-a always,exit -S execve -F obj_uid=0 -F success=0\n-a always,exit -S execve -C uid!=obj_uid -C auid=euid",
    ));
    assert_eq!(c.rules[0].action, ACTION_NEVER);
    assert_eq!(conds(&c.rules[0]), vec![(FF_WATCH, WATCH_TREE, 0)]);
    assert!(c.slots[0].tree);
    assert_eq!(
        conds(&c.rules[1]),
        vec![(FF_MAYBE, 0, 0), (FF_SUCCESS, OP_EQ, 0)]
    );
    assert_eq!(
        conds(&c.rules[2]),
        vec![
            (FF_MAYBE, 0, 0),
            (
                FF_COMPARE,
                OP_EQ,
                (FF_LOGINUID as u64) << 8 | FF_EUID as u64
            )
        ]
    );
}

#[test]
fn syscall_bits_follow_the_rules_syscalls_per_architecture() {
    let c = compile(&rules(
        "-a always,exit -F arch=b64 -S execveat\n-a always,exit -F arch=b32 -S execve\n-a always,task -F uid=1",
    ));
    // The task list comes first, whatever its place in the file.
    assert_eq!(c.rules.len(), 3);
    assert_eq!(c.rules[1].syscalls, SYS_EXECVEAT_64);
    assert_eq!(c.rules[2].syscalls & SYS_EXECVE_32, SYS_EXECVE_32);
    assert_eq!(c.rules[2].syscalls & SYS_EXECVE_64, 0);
    assert_eq!(conds(&c.rules[0]), vec![(FF_UID, OP_EQ, 1)]);
    assert_eq!(c.rules[0].syscalls, ALL);
}

#[test]
fn exe_and_path_conditions_get_slots_and_negations() {
    let c = compile(&rules(
        "-a never,exit -S all -F exe!=/usr/bin/x -F auid>=1000\n-a always,exit -S execve -F path=/usr/bin/x -F uid=0",
    ));
    let exe = c.rules[0].conds[0];
    assert_eq!(
        (exe.field, exe.op, exe.negate, exe.value),
        (FF_WATCH, 1, 1, 0)
    );
    let path = c.rules[1].conds[0];
    assert_eq!(
        (path.field, path.op, path.negate, path.value),
        (FF_WATCH, 0, 0, 0)
    );
    assert_eq!(
        c.slots,
        vec![Slot {
            tree: false,
            paths: vec![b"/usr/bin/x".to_vec()]
        }]
    );
}

#[test]
fn too_many_rules_send_every_exec() {
    let text: String = (0..=FILTER_RULES_MAX)
        .map(|i| format!("-a always,exit -S execve -F uid={i}\n"))
        .collect();
    let c = compile(&rules(&text));
    assert_eq!(c.too_large, Some(FILTER_RULES_MAX as usize + 1));
    assert_eq!(c.rules.len(), 1);
    assert_eq!(conds(&c.rules[0]), vec![(FF_MAYBE, 0, 0)]);
}

#[test]
fn a_rule_with_more_conditions_than_the_kernel_holds_may_hold() {
    let fields: String = (0..9).map(|i| format!(" -F a0!={i}")).collect();
    let c = compile(&rules(&format!("-a always,exit -S execve{fields}")));
    assert_eq!(conds(&c.rules[0]), vec![(FF_MAYBE, 0, 0)]);
}
