//! The value forms of `-F` and `-C` as libaudit reads them: the operator in `name op value`,
//! `exit=` errno names, user and group names.

use super::{
    fields::{self, Kind},
    Action, Cond, Field, List, Op, Rule, Syscalls, Value,
};

/// `name op value`, the operator being the first of `!=`, `<=`, `>=`, `&=`, `=`, `<`, `>`, `&`.
pub fn split_op(pair: &str) -> Result<(&str, Op, &str), String> {
    const OPS: [(&str, Op); 8] = [
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("&=", Op::BitTest),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("&", Op::BitMask),
    ];
    let at = pair
        .find(['=', '!', '<', '>', '&'])
        .ok_or_else(|| format!("-F missing operation for {pair}"))?;
    let (name, rest) = pair.split_at(at);
    let (sym, op) = OPS
        .iter()
        .find(|(s, _)| rest.starts_with(s))
        .ok_or_else(|| format!("-F missing operation for {pair}"))?;
    let value = &rest[sym.len()..];
    if name.is_empty() || value.is_empty() {
        return Err(format!("-F missing value for {pair}"));
    }
    Ok((name, *op, value))
}

/// `-F exit=`: a number, or an errno name with or without its minus (`-EPERM`).
pub fn exit_value(v: &str) -> Result<u64, String> {
    if let Some(n) = fields::number(v) {
        return Ok(n);
    }
    let (neg, name) = match v.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, v),
    };
    let errno = errno_number(name).ok_or_else(|| format!("-F unknown errno - {v}"))?;
    Ok(if neg {
        (-errno) as u32 as u64
    } else {
        errno as u64
    })
}

fn errno_number(name: &str) -> Option<i64> {
    const NAMES: &[(&str, i64)] = &[
        ("EPERM", 1),
        ("ENOENT", 2),
        ("ESRCH", 3),
        ("EINTR", 4),
        ("EIO", 5),
        ("ENXIO", 6),
        ("E2BIG", 7),
        ("ENOEXEC", 8),
        ("EBADF", 9),
        ("ECHILD", 10),
        ("EAGAIN", 11),
        ("ENOMEM", 12),
        ("EACCES", 13),
        ("EFAULT", 14),
        ("EBUSY", 16),
        ("EEXIST", 17),
        ("EXDEV", 18),
        ("ENODEV", 19),
        ("ENOTDIR", 20),
        ("EISDIR", 21),
        ("EINVAL", 22),
        ("ENFILE", 23),
        ("EMFILE", 24),
        ("ETXTBSY", 26),
        ("EFBIG", 27),
        ("ENOSPC", 28),
        ("EROFS", 30),
        ("EMLINK", 31),
        ("ENAMETOOLONG", 36),
        ("ENOSYS", 38),
        ("ELOOP", 40),
    ];
    NAMES.iter().find(|(n, _)| *n == name).map(|&(_, e)| e)
}

pub fn user_id(name: &str) -> Option<u64> {
    id_in("/etc/passwd", name)
}

pub fn group_id(name: &str) -> Option<u64> {
    id_in("/etc/group", name)
}

/// The id of `name` in a passwd-format file (first match, as getpwnam).
fn id_in(file: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut cols = l.split(':');
        (cols.next()? == name).then_some(())?;
        cols.nth(1)?.parse().ok()
    })
}

/// A watch as auditctl turns it into an exit rule: `-F dir=` for a directory, else `-F path=`,
/// `-F perm=` (all four when `-p` is not given), every syscall.
pub fn watch_rule(path: &str, perm: Option<u64>, keys: Vec<Vec<u8>>) -> Result<Rule, String> {
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    let is_dir = std::fs::metadata(trimmed).is_ok_and(|m| m.is_dir());
    let field = if is_dir { Field::Dir } else { Field::Path };
    let perm = perm
        .unwrap_or(fields::PERM_READ | fields::PERM_WRITE | fields::PERM_EXEC | fields::PERM_ATTR);
    Ok(Rule {
        list: List::Exit,
        action: Action::Always,
        syscalls: Syscalls::All,
        conds: vec![
            Cond {
                field,
                op: Op::Eq,
                value: Value::Str(trimmed.as_bytes().to_vec()),
            },
            Cond {
                field: Field::Perm,
                op: Op::Eq,
                value: Value::Num(perm),
            },
        ],
        compares: Vec::new(),
        keys,
        prepend: false,
    })
}

/// The value of a field of any kind but `arch` (which also sets the syscall table).
pub fn value_of_kind(field: Field, name: &str, value: &str) -> Result<Value, String> {
    Ok(match field.kind() {
        Kind::Str | Kind::Arch => Value::Str(value.as_bytes().to_vec()),
        Kind::Uid => Value::Num(match fields::number(value) {
            Some(n) => n,
            None if field == Field::Loginuid && value == "unset" => u32::MAX as u64,
            None => user_id(value).ok_or_else(|| format!("Unknown user: {value}"))?,
        }),
        Kind::Gid => Value::Num(match fields::number(value) {
            Some(n) => n,
            None => group_id(value).ok_or_else(|| format!("Unknown group: {value}"))?,
        }),
        Kind::Exit => Value::Num(exit_value(value)?),
        Kind::Success => Value::Num(match value {
            "yes" | "1" => 1,
            "no" | "0" => 0,
            _ => return Err(format!("-F value should be number for {name}")),
        }),
        Kind::Perm => Value::Num(
            fields::perm(value).ok_or_else(|| "Permission can only contain  'rwxa'".to_string())?,
        ),
        Kind::Filetype => Value::Num(
            fields::filetype(value).ok_or_else(|| format!("-F unknown file type -  {value}"))?,
        ),
        Kind::Fstype => Value::Num(
            fields::fstype(value)
                .or_else(|| fields::number(value))
                .ok_or_else(|| format!("file system type is unknown for field: {name}"))?,
        ),
        Kind::Msgtype => Value::Num(match fields::number(value) {
            Some(n) => n,
            None => crate::catalog::find(value)
                .map(|t| t.number as u64)
                .ok_or_else(|| format!("-F unknown message type - {value}"))?,
        }),
        Kind::Num => Value::Num(
            fields::number(value).ok_or_else(|| format!("-F value should be number for {name}"))?,
        ),
    })
}
