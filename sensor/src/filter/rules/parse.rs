//! One line of audit.rules to a [`Line`], as `auditctl -R` reads it (audit-userspace 3.0.9):
//! words split at spaces only (a tab is an ordinary character, quotes are not special, `\ ` is
//! a space and `\\` a backslash after the first word), a first word starting with `#` makes a
//! comment, options run left to right, `-F arch=` before `-S` chooses the syscall table. Errors
//! are auditctl's messages.

use std::collections::BTreeSet;

use sensor_common::syscalls::{self, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};

use super::{
    fields::{self, Kind},
    values::{split_op, value_of_kind, watch_rule},
    Action, Compare, Cond, Control, Field, Line, List, Op, Rule, Syscalls, Value,
};

mod lex;
use lex::{bad_keyword, count, list_action, value_of, words};

/// AUDIT_MAX_KEY_LEN.
const MAX_KEY_LEN: usize = 256;
/// Fields in a rule, besides the syscall ones: AUDIT_MAX_FIELDS - 1.
const MAX_FIELDS: usize = 63;

/// Reads one line (without its newline).
pub fn line(text: &str) -> Result<Line, String> {
    let words = words(text);
    match words.first() {
        None => Ok(Line::Blank),
        Some(w) if w.starts_with('#') => Ok(Line::Blank),
        Some(_) => {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            Parser::default().run(&words)
        }
    }
}

#[derive(Default)]
struct Parser {
    head: Option<(List, Action, bool)>,
    delete: bool,
    arch: Option<u32>,
    syscalls: Option<BTreeSet<u32>>,
    all: bool,
    conds: Vec<Cond>,
    compares: Vec<Compare>,
    keys: Vec<Vec<u8>>,
    watch: Option<String>,
    perm: Option<u64>,
    controls: Vec<Control>,
    /// `-a …,possible`: dropped by auditctl with a message.
    possible: Option<String>,
}

impl Parser {
    fn run(mut self, words: &[&str]) -> Result<Line, String> {
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            match w {
                "-a" | "-A" | "-d" => {
                    let v = value_of(words, &mut i, w)?;
                    if self.head.is_some() || self.watch.is_some() {
                        return Err("Multiple rule insert/delete operations are not allowed".into());
                    }
                    if v.split(',').any(|x| x == "possible") {
                        let verb = if w == "-d" { "Delete" } else { "Append" };
                        self.possible = Some(format!("{verb} rule - possible is deprecated"));
                    } else {
                        let (list, action) = list_action(v).ok_or_else(|| bad_keyword(w, v))?;
                        self.head = Some((list, action, w == "-A"));
                    }
                    self.delete = w == "-d";
                }
                "-S" => {
                    let v = value_of(words, &mut i, w)?;
                    self.syscall(v)?;
                }
                "-F" => {
                    let v = value_of(words, &mut i, w)?;
                    self.field(v)?;
                }
                "-C" => {
                    let v = value_of(words, &mut i, w)?;
                    self.compare(v)?;
                }
                "-k" => {
                    let v = value_of(words, &mut i, w)?;
                    // A watch, a syscall, a permission or an executable qualifies a key; `-D -k`
                    // names the rules to delete.
                    let qualified = self.syscalls.is_some()
                        || self.all
                        || self.watch.is_some()
                        || self.conds.iter().any(|c| {
                            matches!(
                                c.field,
                                Field::Exe | Field::Perm | Field::Path | Field::Dir | Field::Fstype
                            )
                        })
                        || self.controls.contains(&Control::DeleteAll { key: None });
                    if !qualified {
                        return Err("key option needs a watch or syscall given prior to it".into());
                    }
                    let total = self.keys.iter().map(|k| k.len() + 1).sum::<usize>() + v.len();
                    if total > MAX_KEY_LEN {
                        return Err("key option exceeds size limit".into());
                    }
                    self.keys.push(v.as_bytes().to_vec());
                }
                "-w" | "-W" => {
                    let v = value_of(words, &mut i, w)?;
                    if self.watch.is_some() || self.head.is_some() {
                        return Err("watch option can't be given with a syscall".into());
                    }
                    if !v.starts_with('/') {
                        return Err("The path must start with '/'".into());
                    }
                    self.watch = Some(v.to_string());
                    self.delete = w == "-W";
                }
                "-p" => {
                    let v = value_of(words, &mut i, w)?;
                    if self.watch.is_none() && self.head.is_none() {
                        return Err("permission option needs a watch given prior to it".into());
                    }
                    if v.len() > 4 {
                        return Err(format!("permission {v} is too long"));
                    }
                    if let Some(c) = v.chars().find(|c| !"rwxa".contains(*c)) {
                        return Err(format!("Permission {c} isn't supported"));
                    }
                    self.perm = fields::perm(v);
                    // After `-a`, `-p` is `audit_update_watch_perms()`: it sets the rule's perm
                    // field, or adds one, once some field is there.
                    if self.watch.is_none() {
                        if self.conds.is_empty() {
                            return Err("Permissions should be preceeded by other fields".into());
                        }
                        let mask = Value::Num(self.perm.unwrap_or(0));
                        match self.conds.iter_mut().find(|c| c.field == Field::Perm) {
                            Some(c) => c.value = mask,
                            None => self.conds.push(Cond {
                                field: Field::Perm,
                                op: Op::Eq,
                                value: mask,
                            }),
                        }
                    }
                }
                "-D" => self.controls.push(Control::DeleteAll { key: None }),
                "-b" => {
                    let v = value_of(words, &mut i, w)?;
                    self.controls.push(Control::Backlog(count(v, "Backlog")?));
                }
                "-f" => {
                    let v = value_of(words, &mut i, w)?;
                    match v.parse::<u32>() {
                        Ok(n) if n <= 2 => self.controls.push(Control::Failure(n)),
                        _ => return Err(format!("Failure must be 0, 1, or 2 was {v}")),
                    }
                }
                "-e" => {
                    let v = value_of(words, &mut i, w)?;
                    match v.parse::<u32>() {
                        Ok(n) if n <= 2 => self.controls.push(Control::Enable(n)),
                        _ => return Err(format!("Enable must be 0, 1, or 2 was {v}")),
                    }
                }
                "-r" => {
                    let v = value_of(words, &mut i, w)?;
                    self.controls.push(Control::RateLimit(count(v, "Rate")?));
                }
                "--backlog_wait_time" => {
                    let v = value_of(words, &mut i, w)?;
                    let n = count(v, "Backlog_wait_time")?;
                    self.controls.push(Control::BacklogWaitTime(n));
                }
                // `-i` ends the line's options: a word after it is a stray parameter.
                "-i" | "-c" => {
                    self.controls.push(match w {
                        "-i" => Control::IgnoreErrors,
                        _ => Control::Continue,
                    });
                    if i + 1 < words.len() {
                        return Err("parameter passed without an option given".into());
                    }
                }
                "--loginuid-immutable" => self.controls.push(Control::LoginuidImmutable),
                "--reset-lost" => self.controls.push(Control::ResetLost),
                "-l" => return Ok(Line::Query("-l lists the kernel's rules")),
                "-s" => return Ok(Line::Query("-s reports the kernel's status")),
                "-v" => return Ok(Line::Query("-v prints auditctl's version")),
                "-t" => return Ok(Line::Query("-t trims subtrees after a mount")),
                "-m" => return Ok(Line::Query("-m sends a user message")),
                "-R" => return Err("Error - nested rule files not supported".into()),
                w if w.starts_with('-') => return Err(format!("Option {w} is invalid")),
                _ => return Err("parameter passed without an option given".into()),
            }
            i += 1;
        }
        self.finish()
    }

    fn syscall(&mut self, v: &str) -> Result<(), String> {
        match self.head {
            None => return Err("Error - no list specified".into()),
            Some((List::Exclude, ..)) => {
                return Err("Error: syscall auditing cannot be put on exclude list".into())
            }
            Some((l @ (List::User | List::Task | List::Filesystem), ..)) => {
                return Err(format!(
                    "Error: syscall auditing being added to {} list",
                    l.name()
                ))
            }
            _ => {}
        }
        let arch = self.arch.unwrap_or(AUDIT_ARCH_X86_64);
        let set = self.syscalls.get_or_insert_with(BTreeSet::new);
        for name in v.split(',') {
            if name == "all" {
                self.all = true;
                continue;
            }
            let nr = match fields::strtoul(name)
                .filter(|_| name.starts_with(|c: char| c.is_ascii_digit()))
            {
                Some(n) => n as u32,
                None => syscalls::number(arch, &name.to_ascii_lowercase())
                    .ok_or_else(|| format!("Syscall name unknown: {name}"))?,
            };
            set.insert(nr);
        }
        Ok(())
    }

    fn field(&mut self, pair: &str) -> Result<(), String> {
        if self.head.is_none() && self.watch.is_none() {
            return Err("List must be given before field".into());
        }
        let (name, op, value) = split_op(pair)?;
        let field = Field::by_name(name).ok_or_else(|| format!("-F unknown field: {name}"))?;
        if !fields::op_allowed(field, op) {
            return Err(match field {
                Field::Perm => format!("{name} only takes = operator"),
                _ => format!("{name} only takes = or != operators"),
            });
        }
        let watch = if self.watch.is_some() { 2 } else { 0 };
        if self.conds.len() + self.compares.len() + watch + !self.keys.is_empty() as usize
            >= MAX_FIELDS
        {
            return Err(format!("Too many fields in rule: {pair}"));
        }
        let value = match field.kind() {
            Kind::Str => Value::Str(value.as_bytes().to_vec()),
            Kind::Arch => {
                if self.syscalls.is_some() || self.watch.is_some() {
                    return Err("arch must be before -S".into());
                }
                let arch = match value {
                    "b64" | "x86_64" => AUDIT_ARCH_X86_64,
                    "b32" | "i386" | "i486" | "i586" | "i686" => AUDIT_ARCH_I386,
                    v => fields::number(v)
                        .map(|n| n as u32)
                        .filter(|n| *n == AUDIT_ARCH_X86_64 || *n == AUDIT_ARCH_I386)
                        .ok_or_else(|| "arch elf mapping not found".to_string())?,
                };
                self.arch = Some(arch);
                Value::Num(arch as u64)
            }
            _ => value_of_kind(field, name, value)?,
        };
        if let Some((list, ..)) = self.head {
            if let Some(why) = field.refused_on(list) {
                return Err(why);
            }
        }
        // `-F key=` is a key like `-k`.
        if let (Field::Key, Value::Str(k)) = (field, &value) {
            self.keys.push(k.clone());
            return Ok(());
        }
        self.conds.push(Cond { field, op, value });
        Ok(())
    }

    fn compare(&mut self, pair: &str) -> Result<(), String> {
        let (l, op, r) = split_op(pair)?;
        let field = |n: &str| {
            Field::by_name(n)
                .filter(|f| f.comparable())
                .ok_or_else(|| format!("-C unknown field: {n}"))
        };
        if !matches!(op, Op::Eq | Op::Ne) {
            return Err("-C operator must be = or !=".into());
        }
        let (left, right) = (field(l)?, field(r)?);
        self.compares.push(Compare { left, op, right });
        Ok(())
    }

    fn finish(self) -> Result<Line, String> {
        let mut lines: Vec<Line> = self
            .controls
            .iter()
            .map(|c| match c {
                // `-D -k KEY` deletes the rules with that key.
                Control::DeleteAll { .. } if self.head.is_none() && self.watch.is_none() => {
                    Line::Control(Control::DeleteAll {
                        key: self.keys.first().cloned(),
                    })
                }
                c => Line::Control(c.clone()),
            })
            .collect();
        if let Some(why) = self.possible {
            lines.push(Line::Dropped(why));
        } else if let Some(path) = self.watch {
            let rule = watch_rule(&path, self.perm, self.keys)?;
            lines.push(if self.delete {
                Line::Delete(rule)
            } else {
                Line::Rule(rule)
            });
        } else if let Some((list, action, prepend)) = self.head {
            let syscalls = match (self.syscalls, self.all) {
                _ if self.all => Syscalls::All,
                (Some(s), _) => Syscalls::Some(s),
                // auditctl puts every syscall in an exit rule that names none.
                (None, _) if list == List::Exit => Syscalls::All,
                (None, _) => Syscalls::Unset,
            };
            let rule = Rule {
                list,
                action,
                syscalls,
                conds: self.conds,
                compares: self.compares,
                keys: self.keys,
                prepend,
            };
            lines.push(if self.delete {
                Line::Delete(rule)
            } else {
                Line::Rule(rule)
            });
        } else if !self.conds.is_empty() || self.syscalls.is_some() {
            return Err("Error - no list specified".into());
        }
        Ok(match lines.len() {
            0 => Line::Blank,
            1 => lines.remove(0),
            _ => Line::Many(lines),
        })
    }
}

#[cfg(test)]
mod tests;
