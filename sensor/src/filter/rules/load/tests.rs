use super::*;

fn lines(text: &str) -> Vec<(PathBuf, usize, String)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (PathBuf::from("t.rules"), i + 1, l.to_string()))
        .collect()
}

fn statuses(l: &Loaded) -> Vec<(usize, Status)> {
    l.verdicts.iter().map(|v| (v.line, v.status)).collect()
}

#[test]
fn an_error_stops_loading_unless_i_came_before() {
    let text = "-a always,exit -S execve -k one\n-a always,exit -S bogus\n-a always,exit -S execve -k two\n";
    let l = load_lines(lines(text));
    assert_eq!(
        statuses(&l),
        [
            (1, Status::Applied),
            (2, Status::Error),
            (3, Status::NotLoaded)
        ]
    );
    assert!(l.stopped);
    assert_eq!(l.rules.len(), 1);
    assert_eq!(l.errors(), 1);
    let l = load_lines(lines(&format!("-i\n{text}")));
    assert_eq!(
        statuses(&l),
        [
            (1, Status::Applied),
            (2, Status::Applied),
            (3, Status::Error),
            (4, Status::Applied)
        ]
    );
    assert!(!l.stopped);
    assert_eq!(l.rules.len(), 2);
    // -i after the error does not undo the stop.
    let l = load_lines(lines(&format!("{text}-i\n")));
    assert_eq!(l.verdicts.last().unwrap().status, Status::NotLoaded);
}

#[test]
fn delete_all_prepend_delete_one_and_lock() {
    let l = load_lines(lines(
        "-a always,exit -S execve -k gone\n-D\n-a always,exit -S execve -k b\n\
         -A always,exit -S execve -k a\n-a always,exit -S execve -k c\n\
         -d always,exit -S execve -k c\n-e 2\n",
    ));
    let keys: Vec<_> = l.rules.iter().map(|r| r.key().unwrap()).collect();
    assert_eq!(keys, [b"a".to_vec(), b"b".to_vec()]);
    assert!(l.locked);
    assert!(
        l.verdicts.iter().all(|v| v.status == Status::Applied),
        "{:?}",
        l.verdicts
    );
    // Deleting a rule that is not there is the kernel's ENOENT.
    let l = load_lines(lines("-d always,exit -S execve -k nope\n"));
    assert_eq!(l.verdicts[0].status, Status::Error);
    assert!(l.verdicts[0].reason.contains("No such file or directory"));
}

#[test]
fn what_the_sensor_does_not_apply_says_why() {
    let l = load_lines(lines(
        "-b 8192\n-w /etc/shadow -p wa -k s\n-a always,exit -F arch=b64 -S openat -k o\n\
         -a never,user -F gid=0\n-w /no/such/dir/file -p x\n",
    ));
    let v = &l.verdicts;
    assert!(
        v[..4].iter().all(|v| v.status == Status::Unsupported),
        "{v:?}"
    );
    assert!(v[0].reason.contains("ring buffer"));
    assert!(v[1].reason.contains("part 2"));
    assert!(v[2].reason.contains("no execve"));
    assert!(v[3].reason.contains("gid"), "{:?}", v[3]);
    // A watch under a missing directory: the kernel refuses it.
    assert_eq!(v[4].status, Status::Error);
}

#[test]
fn a_directory_is_read_as_augenrules_orders_it() {
    let dir = std::env::temp_dir().join(format!("sensor-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, key) in [("10-b.rules", "b"), ("9-a.rules", "a"), ("99-c.rules", "c")] {
        std::fs::write(
            dir.join(name),
            format!("-a always,exit -S execve -k {key}\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.join("skipped.conf"), "-a always,exit -S bogus\n").unwrap();
    let l = load(&dir).unwrap();
    let keys: Vec<_> = l.rules.iter().map(|r| r.key().unwrap()).collect();
    assert_eq!(keys, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(l.errors(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn augenrules_puts_the_control_lines_in_their_places() {
    let dir = std::env::temp_dir().join(format!("sensor-augen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("10-base.rules"),
        "# comment\n-e 1\n-a always,exit -S execve -k a\n-D\n-b 100\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("20-end.rules"),
        "-a always,exit -S execve -k b\n-b 8192\n-e 2\n",
    )
    .unwrap();
    let l = load(&dir).unwrap();
    let order: Vec<(String, Status)> = l
        .verdicts
        .iter()
        .map(|v| (v.text.clone(), v.status))
        .collect();
    let applied = |t: &str| (t.to_string(), Status::Applied);
    let unsupported = |t: &str| (t.to_string(), Status::Unsupported);
    let not_loaded = |t: &str| (t.to_string(), Status::NotLoaded);
    assert_eq!(
        order,
        [
            applied("-D"),
            unsupported("-b 8192"),
            applied("-a always,exit -S execve -k a"),
            applied("-a always,exit -S execve -k b"),
            applied("-e 2"),
            not_loaded("-e 1"),
            not_loaded("-b 100"),
        ]
    );
    // -D went first: both rules stay.
    assert_eq!(l.rules.len(), 2);
    assert!(l.locked);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_lock_refuses_later_changes_and_delete_by_key_matches_a_part() {
    let l = load_lines(lines(
        "-a always,exit -S execve -k ssh-logins\n-a always,exit -S execve -k other\n\
         -D -k ssh\n-e 2\n-a always,exit -S execve -k late\n",
    ));
    let keys: Vec<_> = l.rules.iter().map(|r| r.key().unwrap()).collect();
    assert_eq!(keys, [b"other".to_vec()]);
    assert_eq!(l.verdicts[4].status, Status::Error);
    assert!(l.verdicts[4].reason.contains("Operation not permitted"));
    assert!(l.stopped);
}
