use super::*;

fn rule(text: &str) -> Rule {
    match line(text) {
        Ok(Line::Rule(r)) => r,
        other => panic!("{text}: {other:?}"),
    }
}

fn err(text: &str) -> String {
    line(text).expect_err(text)
}

#[test]
fn comments_and_blank_lines_are_nothing() {
    for t in ["", "   ", "# -a always,exit", "   # x"] {
        assert_eq!(line(t), Ok(Line::Blank), "{t:?}");
    }
    // auditctl splits at spaces only: a tab is part of a word.
    assert!(line("\t# x").is_err());
    assert!(line("-w /x -k a # c").is_err(), "no comment after a rule");
}

#[test]
fn exec_rules_with_arch_syscalls_fields_and_keys() {
    let r = rule("-a always,exit -F arch=b64 -S execve,execveat -F euid=0 -k a -k b");
    assert_eq!(
        (r.list, r.action, r.prepend),
        (List::Exit, Action::Always, false)
    );
    assert_eq!(r.syscalls, Syscalls::Some([59, 322].into()));
    assert_eq!(r.conds[0].value, Value::Num(AUDIT_ARCH_X86_64 as u64));
    assert_eq!(
        (r.conds[1].field, r.conds[1].op, &r.conds[1].value),
        (Field::Euid, Op::Eq, &Value::Num(0))
    );
    assert_eq!(r.key(), Some(b"a\x01b".to_vec()));
    // Either order of list and action; -A puts the rule first.
    let r = rule("-A exit,never -F arch=b32 -S execve");
    assert_eq!((r.action, r.prepend), (Action::Never, true));
    assert_eq!(r.syscalls, Syscalls::Some([11].into()), "i386's execve");
    assert_eq!(
        rule("-a always,exit -S 59").syscalls,
        Syscalls::Some([59].into())
    );
    assert_eq!(rule("-a always,exit -S all").syscalls, Syscalls::All);
    // An exit rule naming no syscall applies to all of them.
    assert_eq!(rule("-a always,exit -F auid=1000").syscalls, Syscalls::All);
    assert_eq!(rule("-a always,user -F uid=0").syscalls, Syscalls::Unset);
}

#[test]
fn values_as_auditctl_reads_them() {
    let value = |t: &str| rule(&format!("-a always,exit -S execve -F {t}")).conds[0].clone();
    assert_eq!(value("auid=-1").value, Value::Num(4294967295));
    assert_eq!(value("auid!=unset").value, Value::Num(4294967295));
    assert_eq!(value("auid!=unset").op, Op::Ne);
    assert_eq!(value("uid=root").value, Value::Num(0));
    assert_eq!(value("gid=root").value, Value::Num(0));
    assert_eq!(value("auid>=1000").op, Op::Ge);
    assert_eq!(value("pers&=0x400000").op, Op::BitTest);
    assert_eq!(value("pers&=0x400000").value, Value::Num(0x40_0000));
    assert_eq!(
        value("exit=-EACCES").value,
        Value::Num((-13i32) as u32 as u64)
    );
    assert_eq!(value("exit=-13").value, Value::Num((-13i32) as u32 as u64));
    assert_eq!(value("success=no").value, Value::Num(0));
    assert_eq!(value("perm=x").value, Value::Num(1));
    assert_eq!(value("filetype=dir").value, Value::Num(0o040000));
    assert_eq!(
        value("exe=/usr/bin/su").value,
        Value::Str(b"/usr/bin/su".to_vec())
    );
    let excl = rule("-a always,exclude -F msgtype=CWD");
    assert_eq!(excl.conds[0].value, Value::Num(1307));
}

#[test]
fn comparisons_between_ids() {
    let r = rule("-a always,exit -S execve -C uid!=euid -C auid=obj_uid");
    assert_eq!(r.compares.len(), 2);
    assert_eq!(
        (r.compares[0].left, r.compares[0].op, r.compares[0].right),
        (Field::Uid, Op::Ne, Field::Euid)
    );
    assert!(err("-a always,exit -S execve -C uid<euid").contains("-C operator"));
    assert!(err("-a always,exit -S execve -C pid=uid").contains("-C unknown field: pid"));
}

#[test]
fn watches_become_exit_rules_on_the_object() {
    let r = rule("-w /usr/bin/sudo -p x -k sudo");
    assert_eq!(
        (r.list, r.action, &r.syscalls),
        (List::Exit, Action::Always, &Syscalls::All)
    );
    assert_eq!(r.conds[0].field, Field::Path);
    assert_eq!(r.conds[1].value, Value::Num(fields::PERM_EXEC));
    let d = rule("-w /etc/ -p wa");
    assert_eq!(d.conds[0].field, Field::Dir);
    assert_eq!(d.conds[0].value, Value::Str(b"/etc".to_vec()));
    // No -p: every permission.
    assert_eq!(rule("-w /etc/shadow").conds[1].value, Value::Num(15));
    assert!(matches!(line("-W /usr/bin/sudo -p x"), Ok(Line::Delete(_))));
}

#[test]
fn control_lines() {
    assert_eq!(
        line("-D"),
        Ok(Line::Control(Control::DeleteAll { key: None }))
    );
    assert_eq!(
        line("-D -k old"),
        Ok(Line::Control(Control::DeleteAll {
            key: Some(b"old".to_vec())
        }))
    );
    assert_eq!(line("-b 8192"), Ok(Line::Control(Control::Backlog(8192))));
    assert_eq!(line("-e 2"), Ok(Line::Control(Control::Enable(2))));
    assert_eq!(line("-i"), Ok(Line::Control(Control::IgnoreErrors)));
    assert_eq!(
        line("--backlog_wait_time 60000"),
        Ok(Line::Control(Control::BacklogWaitTime(60000)))
    );
    assert!(matches!(line("-l"), Ok(Line::Query(_))));
}

#[test]
fn errors_are_auditctls() {
    assert_eq!(
        err("-a always,exit -S bogus"),
        "Syscall name unknown: bogus"
    );
    assert_eq!(err("-a always,exit -F bogus=1"), "-F unknown field: bogus");
    assert_eq!(err("-a always,exit -F uid"), "-F missing operation for uid");
    assert_eq!(
        err("-a always,exit -F uid=no-such-user-here"),
        "Unknown user: no-such-user-here"
    );
    assert!(err("-a sometimes,exit").contains("bad keyword"));

    assert_eq!(
        err("-a always,exit -S execve -F arch=b64"),
        "arch must be before -S"
    );
    assert!(err("-a always,exit -F path=/x -F path!=/y -F msgtype=1").contains("msgtype"));
    assert_eq!(
        err("-a always,user -S execve"),
        "Error: syscall auditing being added to user list"
    );
    assert_eq!(
        err("-a always,exclude -S execve"),
        "Error: syscall auditing cannot be put on exclude list"
    );
    assert_eq!(
        err("-a always,exit -F auid=1000 -k x"),
        "key option needs a watch or syscall given prior to it"
    );
    assert_eq!(
        err("-a always,exit -S execve -F loginuid_set=1"),
        "-F unknown field: loginuid_set"
    );
    assert_eq!(
        err("-a always,io_uring"),
        "Append rule - bad keyword always,io_uring"
    );
    assert_eq!(
        err("-A always,entry"),
        "Add rule - bad keyword always,entry"
    );
    assert!(matches!(line("-a always,possible"), Ok(Line::Dropped(_))));
    assert_eq!(
        line("-e 1 -b 100"),
        Ok(Line::Many(vec![
            Line::Control(Control::Enable(1)),
            Line::Control(Control::Backlog(100))
        ]))
    );
    let long = format!("-a always,exit -S execve -k {}", "k".repeat(300));
    assert_eq!(err(&long), "key option exceeds size limit");
    assert!(err("-f 3").contains("0, 1, or 2"));
    assert_eq!(err("-w relative/path"), "The path must start with '/'");
    assert_eq!(err("-x"), "Option -x is invalid");
    assert_eq!(
        err("-a always,exit -S execve -F exe<=/x"),
        "exe only takes = or != operators"
    );
    assert_eq!(err("-w /x -p rwq"), "Permission q isn't supported");
    assert_eq!(
        err("-p r"),
        "permission option needs a watch given prior to it"
    );
    assert_eq!(
        err("-a always,user -F path=/x"),
        "path can only be used with exit filter list"
    );
}

#[test]
fn numbers_keys_and_syscalls_as_libaudit_reads_them() {
    let value = |t: &str| {
        rule(&format!("-a always,exit -S execve -F {t}")).conds[0]
            .value
            .clone()
    };
    assert_eq!(value("a2&0100"), Value::Num(64), "octal");
    assert_eq!(value("uid=0x10"), Value::Num(16));
    assert_eq!(
        value("uid=1000abc"),
        Value::Num(1000),
        "trailing junk ignored"
    );
    assert_eq!(
        rule("-a always,exit -S 0x3b -S EXECVE").syscalls,
        Syscalls::Some([59].into())
    );
    // -F key= is a key, after -k's in line order.
    let r = rule("-a always,exit -S execve -k a -F key=b");
    assert_eq!(r.key(), Some(b"a\x01b".to_vec()));
    assert!(r.conds.is_empty());
    // A path qualifies a key.
    assert_eq!(
        rule("-a always,exit -F path=/usr/bin/passwd -k p").key(),
        Some(b"p".to_vec())
    );
    // A carriage return stays part of the word.
    assert_eq!(
        err("-a always,exit -S execve\r"),
        "Syscall name unknown: execve\r"
    );
}

#[test]
fn p_after_a_sets_the_perm_field_as_auditctl_does() {
    // Neo23x0's best-practice set writes `-F path=… -p x` after `-a`: auditctl takes it.
    let r = rule("-a always,exit -F arch=b64 -F path=/usr/bin/x -p x -F key=k");
    let perms: Vec<_> = r.conds.iter().filter(|c| c.field == Field::Perm).collect();
    assert_eq!(perms.len(), 1);
    assert_eq!(perms[0].value, Value::Num(fields::PERM_EXEC));
    // An earlier perm field is updated, not doubled.
    let r = rule("-a always,exit -F path=/x -F perm=w -p x");
    let perms: Vec<_> = r.conds.iter().filter(|c| c.field == Field::Perm).collect();
    assert_eq!(perms.len(), 1);
    assert_eq!(perms[0].value, Value::Num(fields::PERM_EXEC));
    assert_eq!(
        err("-a always,exit -S execve -p x"),
        "Permissions should be preceeded by other fields"
    );
}
