//! Addresses of kernel functions from /proc/kallsyms, for the programs that look at kernel
//! stacks.

/// The code of `name`, [start, end): from its address to the next symbol's. None when the
/// symbol is missing or addresses are hidden (`kernel.kptr_restrict`).
pub fn function_range(name: &str) -> Option<[u64; 2]> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    range_in(&text, name)
}

fn range_in(kallsyms: &str, name: &str) -> Option<[u64; 2]> {
    let mut start = None;
    let mut addresses = Vec::new();
    for line in kallsyms.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(_kind), Some(sym)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        if sym == name && f.next().is_none() {
            start = Some(addr);
        }
        addresses.push(addr);
    }
    let start = start.filter(|&a| a != 0)?;
    let end = addresses.into_iter().filter(|&a| a > start).min()?;
    Some([start, end])
}

#[cfg(test)]
mod tests {
    use super::range_in;

    #[test]
    fn from_the_symbol_to_the_next_one_in_address_order() {
        let k = "ffffffff81100000 T a\nffffffff81100300 t task_work_run\nffffffff81100200 T b\nffffffff81100380 T c\nffffffffc0000000 t m\t[mod]\n";
        assert_eq!(
            range_in(k, "task_work_run"),
            Some([0xffffffff81100300, 0xffffffff81100380])
        );
        assert_eq!(range_in(k, "missing"), None);
        let hidden = "0000000000000000 T task_work_run\n0000000000000000 T c\n";
        assert_eq!(range_in(hidden, "task_work_run"), None);
    }
}
