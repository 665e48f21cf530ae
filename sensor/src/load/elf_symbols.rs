//! Where a library's functions are, as the kernel wants uprobe offsets: the file offset of each
//! symbol (its address translated through the section that holds it). Parsed with `object`, a
//! maintained and fuzzed ELF reader, from bytes already read and bounded in size.

use object::{Object, ObjectSection, ObjectSymbol};

/// The file offset of each of `symbols` (same order), `None` for one the file does not define.
/// Bytes that are no ELF give all `None`.
pub fn symbol_offsets(data: &[u8], symbols: &[&str]) -> Vec<Option<u64>> {
    let Ok(obj) = object::File::parse(data) else {
        return vec![None; symbols.len()];
    };
    let translate = matches!(
        obj.kind(),
        object::ObjectKind::Dynamic | object::ObjectKind::Executable
    );
    symbols
        .iter()
        .map(|name| {
            let sym = obj
                .dynamic_symbols()
                .chain(obj.symbols())
                .find(|s| s.is_definition() && s.name() == Ok(name))?;
            if !translate {
                return Some(sym.address());
            }
            let section = obj.section_by_index(sym.section_index()?).ok()?;
            let (offset, _) = section.file_range()?;
            sym.address()
                .checked_sub(section.address())?
                .checked_add(offset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_libaudit() -> Option<Vec<u8>> {
        super::super::find_library("libaudit.so.1").and_then(|p| std::fs::read(p).ok())
    }

    #[test]
    fn finds_libaudits_send_and_not_a_missing_symbol() {
        let Some(data) = host_libaudit() else {
            eprintln!("libaudit.so.1 is not installed: not checked");
            return;
        };
        let got = symbol_offsets(&data, &["__audit_send", "no_such_function_here"]);
        let offset = got[0].expect("libaudit defines __audit_send");
        assert!(offset > 0 && offset < data.len() as u64);
        assert_eq!(got[1], None);
    }

    #[test]
    fn garbage_and_truncated_files_give_nothing_and_never_panic() {
        assert_eq!(symbol_offsets(b"", &["a"]), vec![None]);
        assert_eq!(symbol_offsets(&[0u8; 4096], &["a", "b"]), vec![None, None]);
        if let Some(data) = host_libaudit() {
            for cut in [4, 64, 100, 1000, data.len() / 2] {
                let _ = symbol_offsets(&data[..cut], &["__audit_send"]);
            }
            let mut flipped = data.clone();
            for i in (0..flipped.len()).step_by(97) {
                flipped[i] ^= 0xa5;
            }
            let _ = symbol_offsets(&flipped, &["__audit_send"]);
        }
    }
}
