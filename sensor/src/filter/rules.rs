//! audit.rules, read as `auditctl -R` reads it, and the kernel's exit-list decision for the
//! events the sensor records: which execs are written, and with which key.
//!
//! - [`parse`]: one line to a [`Line`] (a control line, a rule, a watch) or auditctl's error.
//! - [`fields`]: the `-F` field table (what auditctl knows, with what operators and values).
//! - [`load`]: a file or an augenrules directory to verdicts per line and the rules in force.
//! - [`select`]: the exit list's decision for one exec event.
//! - [`compile`]: the exit list as the exec programs judge it in the kernel.
//! - [`lists`]: the user and exclude lists.
//! - [`values`]: the value forms of `-F` (operators, errno names, user and group names).

pub mod compile;
pub mod fields;
pub mod lists;
pub mod load;
pub mod parse;
pub mod select;
pub mod values;

use std::collections::BTreeSet;

pub use fields::Field;

/// The filter list a rule is added to (`-a LIST,ACTION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    Exit,
    User,
    Exclude,
    Task,
    Filesystem,
    IoUring,
}

impl List {
    pub fn name(self) -> &'static str {
        match self {
            List::Exit => "exit",
            List::User => "user",
            List::Exclude => "exclude",
            List::Task => "task",
            List::Filesystem => "filesystem",
            List::IoUring => "io_uring",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Always,
    Never,
}

/// A comparison operator of `-F` and `-C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `&`: any of the bits.
    BitMask,
    /// `&=`: all of the bits.
    BitTest,
}

impl Op {
    /// Compares a task's or object's value `v` with the rule's `r`, as `audit_comparator()`.
    pub fn holds(self, v: u64, r: u64) -> bool {
        match self {
            Op::Eq => v == r,
            Op::Ne => v != r,
            Op::Lt => v < r,
            Op::Gt => v > r,
            Op::Le => v <= r,
            Op::Ge => v >= r,
            Op::BitMask => v & r != 0,
            Op::BitTest => v & r == r,
        }
    }
}

/// A rule's value for a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Num(u64),
    Str(Vec<u8>),
}

/// `-F field op value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub field: Field,
    pub op: Op,
    pub value: Value,
}

/// `-C field op field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub left: Field,
    pub op: Op,
    pub right: Field,
}

/// The syscalls a rule names, as raw numbers of the architecture auditctl resolved them for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Syscalls {
    /// No `-S`.
    #[default]
    Unset,
    /// `-S all`, or an exit rule without `-S` (auditctl adds every syscall then).
    All,
    Some(BTreeSet<u32>),
}

impl Syscalls {
    pub fn contains(&self, nr: u32) -> bool {
        match self {
            Syscalls::Unset => false,
            Syscalls::All => true,
            Syscalls::Some(s) => s.contains(&nr),
        }
    }
}

/// One `-a`/`-A` rule, or a watch (`-w`) as auditctl turns it into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub list: List,
    pub action: Action,
    pub syscalls: Syscalls,
    pub conds: Vec<Cond>,
    pub compares: Vec<Compare>,
    /// `-k`, in order; the kernel joins them with 0x01.
    pub keys: Vec<Vec<u8>>,
    /// `-A`: put first.
    pub prepend: bool,
}

impl Rule {
    /// The key as the kernel writes it: the keys joined with AUDIT_KEY_SEPARATOR (0x01).
    pub fn key(&self) -> Option<Vec<u8>> {
        (!self.keys.is_empty()).then(|| self.keys.join(&[0x01][..]))
    }
}

/// A control line: what it sets, and what it means for the sensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// `-D`: delete every rule loaded so far (and `-k KEY`: those with that key).
    DeleteAll { key: Option<Vec<u8>> },
    /// `-b N`: the kernel's backlog.
    Backlog(u32),
    /// `-f N`: the kernel's failure action.
    Failure(u32),
    /// `-e N`: 0 disable, 1 enable, 2 lock.
    Enable(u32),
    /// `-r N`: messages per second.
    RateLimit(u32),
    /// `--backlog_wait_time N`.
    BacklogWaitTime(u32),
    /// `-i`: ignore errors when reading rules.
    IgnoreErrors,
    /// `-c`: continue past errors.
    Continue,
    /// `--loginuid-immutable`.
    LoginuidImmutable,
    /// `--reset-lost`.
    ResetLost,
}

/// One line of a rules file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Blank,
    Control(Control),
    Rule(Rule),
    /// `-d`: delete a rule equal to this one.
    Delete(Rule),
    /// A line that asks for something other than loading (`-l`, `-s`, `-m`, `-t`, `-v`).
    Query(&'static str),
    /// A line auditctl drops with a message, without an error (`-a …,possible`).
    Dropped(String),
    /// Several of the above, in order (`-e 1 -b 100`, `-e 1 -a …`).
    Many(Vec<Line>),
}
