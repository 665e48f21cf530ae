//! The user list (user-space messages, `audit_filter(…, AUDIT_FILTER_USER)`) and the exclude
//! list (record types, `audit_filter(type, AUDIT_FILTER_EXCLUDE)` at `audit_log_start()`).

use super::{fields, Action, Field, List, Op, Rule, Value};

/// Who sent a user-space message, as the kernel's user filter sees the sender.
pub struct Sender<'a> {
    pub msg_type: u32,
    pub pid: u32,
    pub uid: u32,
    pub auid: u32,
    pub exe: Option<&'a [u8]>,
}

/// The user list's decision for a user-space message, as `audit_filter(…, AUDIT_FILTER_USER)`:
/// the first rule whose every field holds decides (`never` drops it); no match keeps it. Fields
/// the sensor does not know of the sender (gid, SELinux labels) never hold.
pub fn user_message(rules: &[Rule], s: &Sender) -> bool {
    for rule in rules.iter().filter(|r| r.list == List::User) {
        // A field `audit_filter()` does not handle ends its walk, and the message is kept.
        let handled = |f: Field| {
            matches!(
                f,
                Field::Msgtype
                    | Field::Pid
                    | Field::Uid
                    | Field::Gid
                    | Field::Loginuid
                    | Field::Exe
                    | Field::Label(_)
            )
        };
        if rule.conds.iter().any(|c| !handled(c.field)) {
            return true;
        }
        let holds = !rule.conds.is_empty()
            && rule.conds.iter().all(|c| {
                let num = |v: u32| match c.value {
                    Value::Num(r) => c.op.holds(v as u64, r),
                    Value::Str(_) => false,
                };
                match c.field {
                    Field::Msgtype => num(s.msg_type),
                    Field::Pid => num(s.pid),
                    Field::Uid => num(s.uid),
                    Field::Loginuid => num(s.auid),
                    Field::Exe => {
                        let hit = s.exe == fields::text(&c.value);
                        if c.op == Op::Ne {
                            !hit
                        } else {
                            hit
                        }
                    }
                    _ => false,
                }
            });
        if holds {
            return rule.action == Action::Always;
        }
    }
    true
}

/// The task a record is logged for, as the exclude filter sees it; `None`: not known.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject {
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    pub euid: Option<u32>,
    pub suid: Option<u32>,
    pub fsuid: Option<u32>,
    pub auid: Option<u32>,
    pub gid: Option<u32>,
    pub egid: Option<u32>,
    pub sgid: Option<u32>,
    pub fsgid: Option<u32>,
}

/// The record types of `types` the exclude list leaves out for `s`, as
/// `audit_filter(type, AUDIT_FILTER_EXCLUDE)` at `audit_log_start()`: any rule whose every field
/// holds excludes, whatever its action. An id the sensor does not know never holds.
pub fn excluded(rules: &[Rule], s: &Subject, types: &[u32]) -> Vec<u32> {
    let rules: Vec<&Rule> = rules.iter().filter(|r| r.list == List::Exclude).collect();
    if rules.is_empty() {
        return Vec::new();
    }
    types
        .iter()
        .copied()
        .filter(|&t| {
            rules.iter().any(|rule| {
                !rule.conds.is_empty()
                    && rule.conds.iter().all(|c| {
                        let num = |v: Option<u32>| match (v, &c.value) {
                            (Some(v), Value::Num(r)) => c.op.holds(v as u64, *r),
                            _ => false,
                        };
                        match c.field {
                            Field::Msgtype => num(Some(t)),
                            Field::Pid => num(s.pid),
                            Field::Uid => num(s.uid),
                            Field::Euid => num(s.euid),
                            Field::Suid => num(s.suid),
                            Field::Fsuid => num(s.fsuid),
                            Field::Loginuid => num(s.auid),
                            Field::Gid => num(s.gid),
                            Field::Egid => num(s.egid),
                            Field::Sgid => num(s.sgid),
                            Field::Fsgid => num(s.fsgid),
                            _ => false,
                        }
                    })
            })
        })
        .collect()
}
