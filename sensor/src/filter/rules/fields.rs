//! The `-F` fields auditctl knows (libaudit 3.0.9's `fieldtab.h`), what their values are, and
//! what the sensor can decide on.

use super::{List, Op, Value};

/// A field of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Pid,
    Uid,
    Euid,
    Suid,
    Fsuid,
    Gid,
    Egid,
    Sgid,
    Fsgid,
    Loginuid,
    Pers,
    Arch,
    Msgtype,
    Ppid,
    LoginuidSet,
    Sessionid,
    Fstype,
    Devmajor,
    Devminor,
    Inode,
    Exit,
    Success,
    Path,
    Perm,
    Dir,
    Filetype,
    ObjUid,
    ObjGid,
    Exe,
    SaddrFam,
    A0,
    A1,
    A2,
    A3,
    Key,
    /// SELinux labels: subj_user … obj_lev_high.
    Label(&'static str),
}

/// How a field's value is written and read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Num,
    Uid,
    Gid,
    Arch,
    Exit,
    Success,
    Perm,
    Filetype,
    Msgtype,
    /// A file system type: libaudit knows `debugfs` and `tracefs` by name.
    Fstype,
    Str,
}

const TABLE: &[(&str, Field)] = &[
    ("pid", Field::Pid),
    ("uid", Field::Uid),
    ("euid", Field::Euid),
    ("suid", Field::Suid),
    ("fsuid", Field::Fsuid),
    ("gid", Field::Gid),
    ("egid", Field::Egid),
    ("sgid", Field::Sgid),
    ("fsgid", Field::Fsgid),
    ("auid", Field::Loginuid),
    ("loginuid", Field::Loginuid),
    ("pers", Field::Pers),
    ("arch", Field::Arch),
    ("msgtype", Field::Msgtype),
    ("subj_user", Field::Label("subj_user")),
    ("subj_role", Field::Label("subj_role")),
    ("subj_type", Field::Label("subj_type")),
    ("subj_sen", Field::Label("subj_sen")),
    ("subj_clr", Field::Label("subj_clr")),
    ("ppid", Field::Ppid),
    ("obj_user", Field::Label("obj_user")),
    ("obj_role", Field::Label("obj_role")),
    ("obj_type", Field::Label("obj_type")),
    ("obj_lev_low", Field::Label("obj_lev_low")),
    ("obj_lev_high", Field::Label("obj_lev_high")),
    ("sessionid", Field::Sessionid),
    ("fstype", Field::Fstype),
    ("devmajor", Field::Devmajor),
    ("devminor", Field::Devminor),
    ("inode", Field::Inode),
    ("exit", Field::Exit),
    ("success", Field::Success),
    ("path", Field::Path),
    ("perm", Field::Perm),
    ("dir", Field::Dir),
    ("filetype", Field::Filetype),
    ("obj_uid", Field::ObjUid),
    ("obj_gid", Field::ObjGid),
    ("exe", Field::Exe),
    ("saddr_fam", Field::SaddrFam),
    ("a0", Field::A0),
    ("a1", Field::A1),
    ("a2", Field::A2),
    ("a3", Field::A3),
    ("key", Field::Key),
];

impl Field {
    pub fn by_name(name: &str) -> Option<Field> {
        TABLE.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::Label(n) => n,
            Field::Loginuid => "auid",
            f => TABLE.iter().find(|(_, t)| *t == f).map_or("?", |&(n, _)| n),
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Field::Uid | Field::Euid | Field::Suid | Field::Fsuid | Field::Loginuid => Kind::Uid,
            Field::ObjUid => Kind::Uid,
            Field::Gid | Field::Egid | Field::Sgid | Field::Fsgid | Field::ObjGid => Kind::Gid,
            Field::Arch => Kind::Arch,
            Field::Exit => Kind::Exit,
            Field::Success => Kind::Success,
            Field::Perm => Kind::Perm,
            Field::Filetype => Kind::Filetype,
            Field::Msgtype => Kind::Msgtype,
            Field::Fstype => Kind::Fstype,
            Field::Path | Field::Dir | Field::Exe | Field::Key | Field::Label(_) => Kind::Str,
            _ => Kind::Num,
        }
    }

    /// The ids `-C` compares (`audit_rule_interfield_comp_data()`).
    pub fn comparable(self) -> bool {
        matches!(
            self,
            Field::Uid
                | Field::Euid
                | Field::Suid
                | Field::Fsuid
                | Field::Loginuid
                | Field::ObjUid
                | Field::Gid
                | Field::Egid
                | Field::Sgid
                | Field::Fsgid
                | Field::ObjGid
        )
    }

    /// Why libaudit refuses the field on `list`, if it does (its messages).
    pub fn refused_on(self, list: List) -> Option<String> {
        match (self, list) {
            (Field::Msgtype, List::Exit | List::Task | List::Filesystem | List::IoUring) => Some(
                "msgtype field can only be used with exclude or user filter list".into(),
            ),
            (
                Field::Path
                | Field::Dir
                | Field::Perm
                | Field::Filetype
                | Field::Exit
                | Field::Success
                | Field::Inode
                | Field::Devmajor
                | Field::Devminor
                | Field::A0
                | Field::A1
                | Field::A2
                | Field::A3,
                l,
            ) if l != List::Exit => Some(format!(
                "{} can only be used with exit filter list",
                self.name()
            )),
            (f, List::Exclude)
                if !matches!(
                    f,
                    Field::Msgtype
                        | Field::Uid
                        | Field::Loginuid
                        | Field::Gid
                        | Field::Pid
                        | Field::Exe
                        | Field::Label(_)
                ) =>
            {
                Some(
                    "Only msgtype, *uid, *gid, pid, and subj* fields can be used with exclude filter"
                        .into(),
                )
            }
            _ => None,
        }
    }
}

/// AUDIT_PERM_* bits of `-p` and `-F perm=`.
pub const PERM_EXEC: u64 = 1;
pub const PERM_WRITE: u64 = 2;
pub const PERM_READ: u64 = 4;
pub const PERM_ATTR: u64 = 8;

/// `rwxa` to AUDIT_PERM_* bits.
pub fn perm(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 4 {
        return None;
    }
    v.chars().try_fold(0, |acc, c| {
        Some(
            acc | match c {
                'r' => PERM_READ,
                'w' => PERM_WRITE,
                'x' => PERM_EXEC,
                'a' => PERM_ATTR,
                _ => return None,
            },
        )
    })
}

/// `fstype=` names (libaudit's `fstypetab.h`) to the file system's magic.
pub fn fstype(v: &str) -> Option<u64> {
    Some(match v {
        "debugfs" => 0x6462_6720,
        "tracefs" => 0x7472_6163,
        _ => return None,
    })
}

/// `filetype=` names to `S_IF*`.
pub fn filetype(v: &str) -> Option<u64> {
    Some(match v {
        "file" => 0o100000,
        "dir" => 0o040000,
        "socket" => 0o140000,
        "link" => 0o120000,
        "character" => 0o020000,
        "block" => 0o060000,
        "fifo" => 0o010000,
        _ => return None,
    })
}

/// The operators a field's values take: strings and a few enumerations compare only for
/// (in)equality.
pub fn op_allowed(field: Field, op: Op) -> bool {
    match field.kind() {
        Kind::Perm => op == Op::Eq,
        Kind::Str | Kind::Arch | Kind::Filetype | Kind::Success => matches!(op, Op::Eq | Op::Ne),
        _ if matches!(field, Field::Inode | Field::Fstype) => matches!(op, Op::Eq | Op::Ne),
        _ => true,
    }
}

/// A numeric value as libaudit reads it: decimal (or `0x` hex), or a negative number taken as
/// its 32-bit two's complement (`-1` is 4294967295).
pub fn number(v: &str) -> Option<u64> {
    // libaudit takes a value as a number when it starts with a digit (or `-` and a digit), and
    // reads it as strtoul(…, 0) does: `0x` hex, a leading 0 octal, trailing junk ignored.
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let n = strtoul(digits)?;
    match neg {
        false => (n <= u32::MAX as u64).then_some(n),
        true => (n <= 1 << 31).then(|| (n as i64).wrapping_neg() as u32 as u64),
    }
}

/// `strtoul(v, NULL, 0)` for a value starting with a digit: base from the prefix, digits up to
/// the first that is not one.
pub fn strtoul(v: &str) -> Option<u64> {
    let (radix, body) = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        (16, h)
    } else if v.len() > 1 && v.starts_with('0') {
        (8, &v[1..])
    } else {
        (10, v)
    };
    let end = body
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(body.len());
    if end == 0 {
        return (radix == 8).then_some(0);
    }
    u64::from_str_radix(&body[..end], radix).ok()
}

/// The string value of a rule's field, if it is one.
pub fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Str(s) => Some(s),
        Value::Num(_) => None,
    }
}
