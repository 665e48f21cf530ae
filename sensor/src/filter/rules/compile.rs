//! The rules as the exec programs judge them in the kernel (`sensor_common::filter`): the task
//! and exit lists in the order [`super::select::call`] walks them, each rule reduced to what the
//! kernel side can tell of an exec. A rule that can never select an exec is left out; a
//! condition the kernel side cannot judge becomes "may hold", so that the kernel's verdict only
//! ever leaves out what the agent would have left out too.

use sensor_common::{
    filter::{
        FilterCond, FilterRule, ACTION_ALWAYS, ACTION_NEVER, FF_A0, FF_A1, FF_A2, FF_A3, FF_ARCH,
        FF_COMPARE, FF_EGID, FF_EUID, FF_EXIT, FF_FSGID, FF_FSUID, FF_GID, FF_LOGINUID,
        FF_LOGINUID_SET, FF_MAYBE, FF_PERS, FF_PID, FF_PPID, FF_SESSIONID, FF_SGID, FF_SUCCESS,
        FF_SUID, FF_UID, FF_WATCH, FILTER_CONDS_MAX, FILTER_RULES_MAX, OP_BITMASK, OP_BITTEST,
        OP_EQ, OP_GE, OP_GT, OP_LE, OP_LT, OP_NE, SLOT_WORDS, SYS_EXECVEAT_32, SYS_EXECVEAT_64,
        SYS_EXECVE_32, SYS_EXECVE_64, WATCH_EXE, WATCH_PATH, WATCH_TREE,
    },
    syscalls::{i386, x86_64},
};

use super::{fields, Action, Cond, Field, List, Op, Rule, Value};

/// Watch slots: bits of the maps' bitmaps.
const SLOTS: usize = 64 * SLOT_WORDS;

/// What a watch slot stands for: paths whose objects are watched, or a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub tree: bool,
    pub paths: Vec<Vec<u8>>,
}

/// The compiled rules of one bank.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    pub rules: Vec<FilterRule>,
    pub slots: Vec<Slot>,
    /// Rules the set needed past `FILTER_RULES_MAX`: it is replaced by one that sends every exec.
    pub too_large: Option<usize>,
}

/// A `path=` watch condition and nothing more that matters to an exec (`-w FILE -p x`): runs of
/// such `always` rules share one compiled rule and one slot.
fn plain_watch(rule: &Rule) -> Option<&[u8]> {
    if rule.list != List::Exit || rule.action != Action::Always {
        return None;
    }
    let mut path = None;
    for c in &rule.conds {
        match (c.field, c.op) {
            (Field::Path, Op::Eq) if path.is_none() => path = fields::text(&c.value),
            (Field::Perm, _) if perm_holds(c) == Some(true) => {}
            (Field::Key, _) => {}
            _ => return None,
        }
    }
    let all = [
        x86_64::EXECVE,
        x86_64::EXECVEAT,
        i386::EXECVE,
        i386::EXECVEAT,
    ];
    (rule.compares.is_empty() && all.iter().all(|&n| rule.syscalls.contains(n)))
        .then_some(path)
        .flatten()
}

/// `perm=` on an exec: the exec class matches `x` only (`audit_match_perm()`).
fn perm_holds(c: &Cond) -> Option<bool> {
    match c.value {
        Value::Num(mask) => Some(mask & fields::PERM_EXEC != 0),
        Value::Str(_) => None,
    }
}

/// Compiles `rules` (in force order) for the kernel.
pub fn compile(rules: &[Rule]) -> Compiled {
    let mut out = Compiled::default();
    let ordered = rules
        .iter()
        .filter(|r| r.list == List::Task)
        .chain(rules.iter().filter(|r| r.list == List::Exit));
    // The slot of the run of plain watches the last rule was in, `None` past the slots.
    let mut run: Option<Option<usize>> = None;
    for rule in ordered {
        if let Some(path) = plain_watch(rule) {
            match run {
                Some(Some(slot)) => out.slots[slot].paths.push(path.to_vec()),
                // Past the slots, the run is one rule that may hold.
                Some(None) => {}
                None => {
                    let slot = (out.slots.len() < SLOTS).then_some(out.slots.len());
                    let cond = match slot {
                        Some(s) => {
                            out.slots.push(Slot {
                                tree: false,
                                paths: vec![path.to_vec()],
                            });
                            watch(s, WATCH_PATH, false)
                        }
                        None => MAYBE,
                    };
                    run = Some(slot);
                    let mut r = FilterRule {
                        action: ACTION_ALWAYS,
                        syscalls: ALL,
                        ..Default::default()
                    };
                    push(&mut r, cond);
                    out.rules.push(r);
                }
            }
            continue;
        }
        run = None;
        if let Some(r) = one(rule, &mut out.slots) {
            out.rules.push(r);
        }
    }
    if out.rules.len() > FILTER_RULES_MAX as usize {
        let mut all = FilterRule {
            action: ACTION_ALWAYS,
            syscalls: ALL,
            ..Default::default()
        };
        push(&mut all, MAYBE);
        return Compiled {
            rules: vec![all],
            slots: Vec::new(),
            too_large: Some(out.rules.len()),
        };
    }
    out
}

/// Every exec syscall of both architectures.
const ALL: u8 = SYS_EXECVE_64 | SYS_EXECVEAT_64 | SYS_EXECVE_32 | SYS_EXECVEAT_32;

fn push(r: &mut FilterRule, c: FilterCond) {
    if (r.nconds as usize) < FILTER_CONDS_MAX {
        r.conds[r.nconds as usize] = c;
    }
    r.nconds += 1;
}

fn watch(slot: usize, kind: u8, negate: bool) -> FilterCond {
    debug_assert!(slot < SLOTS);
    FilterCond {
        field: FF_WATCH,
        op: kind,
        negate: negate as u8,
        value: slot as u64,
        ..Default::default()
    }
}

const MAYBE: FilterCond = FilterCond {
    field: FF_MAYBE,
    op: 0,
    negate: 0,
    _pad: [0; 5],
    value: 0,
};

fn op(o: Op) -> u8 {
    match o {
        Op::Eq => OP_EQ,
        Op::Ne => OP_NE,
        Op::Lt => OP_LT,
        Op::Gt => OP_GT,
        Op::Le => OP_LE,
        Op::Ge => OP_GE,
        Op::BitMask => OP_BITMASK,
        Op::BitTest => OP_BITTEST,
    }
}

/// The per-exec value a task field is, for `-F` and `-C`.
fn task_field(f: Field) -> Option<u8> {
    Some(match f {
        Field::Pid => FF_PID,
        Field::Ppid => FF_PPID,
        Field::Uid => FF_UID,
        Field::Euid => FF_EUID,
        Field::Suid => FF_SUID,
        Field::Fsuid => FF_FSUID,
        Field::Gid => FF_GID,
        Field::Egid => FF_EGID,
        Field::Sgid => FF_SGID,
        Field::Fsgid => FF_FSGID,
        Field::Loginuid => FF_LOGINUID,
        _ => return None,
    })
}

/// A slot of its own for a watched path (`path=` with other conditions, `exe=`) or a tree.
fn slot_of(path: &[u8], tree: bool, slots: &mut Vec<Slot>) -> Option<usize> {
    let this = Slot {
        tree,
        paths: vec![path.to_vec()],
    };
    if let Some(i) = slots.iter().position(|s| *s == this) {
        return Some(i);
    }
    (slots.len() < SLOTS).then(|| {
        slots.push(this);
        slots.len() - 1
    })
}

/// One rule; `None` when it can never select an exec.
fn one(rule: &Rule, slots: &mut Vec<Slot>) -> Option<FilterRule> {
    let syscalls = match rule.list {
        // The task list is judged at the exec, whatever the syscall.
        List::Task => ALL,
        _ => [
            (x86_64::EXECVE, SYS_EXECVE_64),
            (x86_64::EXECVEAT, SYS_EXECVEAT_64),
            (i386::EXECVE, SYS_EXECVE_32),
            (i386::EXECVEAT, SYS_EXECVEAT_32),
        ]
        .iter()
        .filter(|(nr, _)| rule.syscalls.contains(*nr))
        .fold(0, |bits, (_, bit)| bits | bit),
    };
    if syscalls == 0 {
        return None;
    }
    let mut r = FilterRule {
        action: match rule.action {
            Action::Always => ACTION_ALWAYS,
            Action::Never => ACTION_NEVER,
        },
        syscalls,
        ..Default::default()
    };
    for c in &rule.conds {
        let num = |field: u8| match c.value {
            Value::Num(v) => Some(FilterCond {
                field,
                op: op(c.op),
                value: v,
                ..Default::default()
            }),
            Value::Str(_) => None,
        };
        let compiled = match c.field {
            f if task_field(f).is_some() => num(task_field(f)?)?,
            Field::LoginuidSet => num(FF_LOGINUID_SET)?,
            Field::Sessionid => num(FF_SESSIONID)?,
            Field::Pers => num(FF_PERS)?,
            Field::Arch => num(FF_ARCH)?,
            Field::Exit => num(FF_EXIT)?,
            Field::A0 => num(FF_A0)?,
            Field::A1 => num(FF_A1)?,
            Field::A2 => num(FF_A2)?,
            Field::A3 => num(FF_A3)?,
            // `success=` tests the verdict; any operator but `!=` is `=`.
            Field::Success => match c.value {
                Value::Num(want) => FilterCond {
                    field: FF_SUCCESS,
                    op: if c.op == Op::Ne { OP_NE } else { OP_EQ },
                    value: (want == 1) as u64,
                    ..Default::default()
                },
                Value::Str(_) => return None,
            },
            Field::Perm => match perm_holds(c) {
                Some(true) => continue,
                _ => return None,
            },
            Field::Key => continue,
            Field::Msgtype | Field::Fstype | Field::SaddrFam | Field::Label(_) => return None,
            // Of the exec's PATH items, which the kernel side does not see.
            Field::Filetype
            | Field::ObjUid
            | Field::ObjGid
            | Field::Inode
            | Field::Devmajor
            | Field::Devminor => MAYBE,
            Field::Path | Field::Exe | Field::Dir => {
                let kind = match c.field {
                    Field::Exe => WATCH_EXE,
                    Field::Dir => WATCH_TREE,
                    _ => WATCH_PATH,
                };
                let text = fields::text(&c.value);
                match text.and_then(|p| slot_of(p, kind == WATCH_TREE, slots)) {
                    Some(slot) => watch(slot, kind, c.op == Op::Ne),
                    None => MAYBE,
                }
            }
            // Whatever else: a field the kernel side does not know may hold.
            _ => MAYBE,
        };
        push(&mut r, compiled);
    }
    // The task list ignores `-C` (as `select::call` does); the exit list compares task ids.
    if rule.list == List::Exit {
        for c in &rule.compares {
            let compiled = match (task_field(c.left), task_field(c.right)) {
                (Some(l), Some(rt)) => FilterCond {
                    field: FF_COMPARE,
                    op: op(c.op),
                    value: (l as u64) << 8 | rt as u64,
                    ..Default::default()
                },
                _ if [c.left, c.right]
                    .iter()
                    .any(|f| matches!(f, Field::ObjUid | Field::ObjGid)) =>
                {
                    MAYBE
                }
                // A field with no value for an exec: the comparison never holds.
                _ => return None,
            };
            push(&mut r, compiled);
        }
    }
    // More conditions than the kernel side holds: judged by the agent.
    if r.nconds as usize > FILTER_CONDS_MAX {
        r.conds = [MAYBE; FILTER_CONDS_MAX];
        r.nconds = 1;
    }
    Some(r)
}

#[cfg(test)]
mod tests;
