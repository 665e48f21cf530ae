//! Words of a rules line and the small forms auditctl reads them in.

use super::super::{Action, List};

/// `audit_strsplit()` on single spaces, then `\ ` and `\\` decoded from the second word on.
pub(super) fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if !out.is_empty() && matches!(chars.peek(), Some(' ' | '\\')) => {
                word.push(chars.next().unwrap_or(' '));
            }
            ' ' => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

pub(super) fn value_of<'a>(words: &[&'a str], i: &mut usize, opt: &str) -> Result<&'a str, String> {
    *i += 1;
    words
        .get(*i)
        .copied()
        .ok_or_else(|| format!("Option {opt} is invalid"))
}

pub(super) fn count(v: &str, what: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .map_err(|_| format!("{what} must be a numeric value was {v}"))
}

pub(super) fn bad_keyword(opt: &str, v: &str) -> String {
    let verb = match opt {
        "-A" => "Add",
        "-d" => "Delete",
        _ => "Append",
    };
    format!("{verb} rule - bad keyword {v}")
}

/// `LIST,ACTION` in either order; auditctl 3.0.9 knows no `io_uring` and no `entry` list.
pub(super) fn list_action(v: &str) -> Option<(List, Action)> {
    let (a, b) = v.split_once(',')?;
    let list = |w: &str| {
        Some(match w {
            "exit" => List::Exit,
            "user" => List::User,
            "exclude" => List::Exclude,
            "task" => List::Task,
            "filesystem" => List::Filesystem,
            _ => return None,
        })
    };
    let action = |w: &str| match w {
        "always" => Some(Action::Always),
        "never" => Some(Action::Never),
        _ => None,
    };
    match (list(a), action(b), list(b), action(a)) {
        (Some(l), Some(act), _, _) | (_, _, Some(l), Some(act)) => Some((l, act)),
        _ => None,
    }
}
