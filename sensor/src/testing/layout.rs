//! The tree is the architecture: these tests fail when a change breaks the layout rules that
//! `docs/ARCHITECTURE.md` describes, so that adding a record or a stage stays a short walk.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use sensor_common::probes::{Attach, PROBES};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Source without comments (so that a doc link is no dependency) and without an inline test
/// module (which by convention ends the file).
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_test_file(rel: &str) -> bool {
    rel.starts_with("testing/") || rel.ends_with("tests.rs") || rel.contains("/tests/")
}

/// The crate-level modules a module's files name, `crate::x` or `use crate::{x::…}`.
fn crate_deps(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(block) = rest.strip_prefix('{') {
            let block = &block[..block.find("};").unwrap_or(block.len())];
            for word in block.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            {
                let top = word.split("::").next().unwrap_or("");
                if known.contains(top) {
                    deps.insert(top.to_string());
                }
            }
        } else {
            let top: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if known.contains(&top) {
                deps.insert(top);
            }
        }
    }
    deps
}

/// The agent's pipeline stages, in the order data flows. A stage may use earlier stages and the
/// shared modules, never a later stage.
const STAGES: [&str; 8] = [
    "load",
    "read",
    "assemble",
    "detect",
    "normalise",
    "filter",
    "encode",
    "sink",
];
/// Not stages: the event model, the record-type table, the command line, guarded file access.
const SHARED: [&str; 4] = ["event", "catalog", "cli", "fsio"];

#[test]
fn no_path_attributes_and_file_names_are_module_names() {
    for file in rust_files(&root().join("sensor/src")) {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&format!("#[{}", "path =")),
            "{}: #[path] glues a file into a module of another name",
            file.display()
        );
    }
}

#[test]
fn stages_use_only_earlier_stages() {
    let src = root().join("sensor/src");
    let known: BTreeSet<String> = STAGES
        .iter()
        .chain(&SHARED)
        .chain(&["pipeline", "compare", "testing"])
        .map(|s| s.to_string())
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if is_test_file(&rel) {
            continue;
        }
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
        let mut found = crate_deps(&code(&file), &known);
        found.remove(top);
        deps.entry(top.to_string()).or_default().extend(found);
    }
    for (i, stage) in STAGES.iter().enumerate() {
        for dep in deps.get(*stage).into_iter().flatten() {
            let allowed = SHARED.contains(&dep.as_str()) || STAGES[..i].contains(&dep.as_str());
            assert!(allowed, "stage {stage} uses {dep}, which is not before it");
        }
    }
    for shared in SHARED.iter().filter(|s| **s != "cli") {
        let uses: Vec<_> = deps.get(*shared).into_iter().flatten().collect();
        assert!(
            uses.iter()
                .all(|d| SHARED.contains(&d.as_str()) && d.as_str() != "cli"),
            "{shared} is shared by every stage and may not use one: {uses:?}"
        );
    }
}

#[test]
fn ebpf_modules_call_each_other_without_a_circle() {
    let src = root().join("sensor-ebpf/src");
    let files = rust_files(&src);
    let known: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let deps: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|f| {
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            let mut d = crate_deps(&code(f), &known);
            d.remove(&name);
            (name, d)
        })
        .collect();
    // Depth-first search; a module met again on the current path closes a circle.
    fn visit<'a>(
        m: &'a str,
        deps: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(i) = path.iter().position(|p| *p == m) {
            panic!("eBPF modules call each other in a circle: {:?}", &path[i..]);
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in deps.keys() {
        visit(m, &deps, &mut Vec::new(), &mut done);
    }
}

/// `pub const KIND_X: u32 = N;` of sensor-common: every record kind on the wire.
fn kinds() -> Vec<String> {
    let lib = fs::read_to_string(root().join("sensor-common/src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub const KIND_"))
        .map(|l| format!("KIND_{}", l.split(':').next().unwrap()))
        .collect()
}

#[test]
fn every_record_kind_is_sent_by_a_listed_probe_and_decoded() {
    let ebpf = root().join("sensor-ebpf/src");
    let programs: BTreeMap<String, String> = rust_files(&ebpf)
        .iter()
        .map(|f| {
            (
                f.file_stem().unwrap().to_string_lossy().into_owned(),
                code(f),
            )
        })
        .collect();
    let decode = code(&root().join("sensor/src/read/decode.rs"));
    let kinds = kinds();
    assert!(kinds.len() >= 11, "{kinds:?}");
    for kind in &kinds {
        let senders: Vec<&String> = programs
            .iter()
            .filter(|(_, text)| {
                text.lines()
                    .any(|l| l.contains(kind.as_str()) && !l.trim_start().starts_with("use "))
            })
            .map(|(name, _)| name)
            .collect();
        assert!(!senders.is_empty(), "no eBPF module sends {kind}");
        assert!(
            decode.contains(&format!("wire::{kind} =>")),
            "read/decode.rs does not decode {kind}"
        );
    }
    // Every program the table attaches exists in the eBPF crate.
    for probe in PROBES {
        let defined = programs
            .values()
            .any(|text| text.contains(&format!("pub fn {}(", probe.program)));
        assert!(
            defined,
            "PROBES names {} but no eBPF program has that name",
            probe.program
        );
        // A uprobe has its uprobe_multi twin, which the loader prefers where the kernel has it.
        if matches!(probe.attach, Attach::UProbe { .. } | Attach::PamModules) {
            let twin = format!("pub fn {}_multi(", probe.program);
            assert!(
                programs.values().any(|text| text.contains(&twin)),
                "{} has no uprobe_multi twin",
                probe.program
            );
        }
    }
}

#[test]
fn production_files_stay_under_about_400_lines() {
    for dir in ["sensor/src", "sensor-ebpf/src", "sensor-common/src"] {
        let base = root().join(dir);
        for file in rust_files(&base) {
            let rel = file
                .strip_prefix(&base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // Tests, and the generated syscall tables (data, not code).
            if is_test_file(&rel) || rel == "syscalls/tables.rs" {
                continue;
            }
            let lines = fs::read_to_string(&file).unwrap().lines().count();
            assert!(
                lines <= 420,
                "{dir}/{rel} has {lines} lines: split it by responsibility"
            );
        }
    }
}
