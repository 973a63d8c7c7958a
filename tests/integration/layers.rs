//! The module graph, read from the source: every `crate::` path in `src/` is an edge from the
//! file's unit to the unit it names, and edges may only point down the layers of
//! ARCHITECTURE.md, never up, and never round in a cycle. A unit is a top-level module, or
//! one stage of `pipeline/`, one model of `models/` or one command of `commands/` (a folder
//! module and its files are one unit: a parent and its children naturally refer to each
//! other).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the top: a unit may use units of its own layer or below.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["commands"],
    &["config", "device", "engines", "error"],
    &["pipeline"],
    &["models"],
    &[
        "allocator",
        "article",
        "cache",
        "clock",
        "exit_code",
        "interrupt",
        "lock",
        "output",
        "progress",
        "prompts",
        "shard",
        "units",
        "workload",
    ],
];

/// Top-level modules whose children are units of their own.
const FOLDERS_OF_UNITS: &[&str] = &["commands", "models", "pipeline"];

fn layer_of(unit: &str) -> usize {
    let top = unit.split("::").next().unwrap_or(unit);
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| {
            panic!("module `{top}` is in no layer: add it to LAYERS and ARCHITECTURE.md")
        })
}

/// `src/pipeline/synthesize/group.rs` → `pipeline::synthesize`; `src/cache.rs` → `cache`.
fn unit_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [only] if only == "lib" || only == "main" => None,
        [top, second, ..] if FOLDERS_OF_UNITS.contains(&top.as_str()) && second != "mod" => {
            Some(format!("{top}::{second}"))
        }
        [top, ..] => Some(top.clone()),
        [] => None,
    }
}

/// The unit a path after `crate::` names: `pipeline::facts::scan` → `pipeline::facts`.
fn unit_named(path: &str) -> String {
    let mut segments = path.split("::").map(str::trim).filter(|s| !s.is_empty());
    let top = segments.next().unwrap_or_default().to_string();
    if FOLDERS_OF_UNITS.contains(&top.as_str()) {
        if let Some(second) = segments.next() {
            // `models::TextGenerator` names an item of the folder module itself.
            if second.starts_with(|c: char| c.is_ascii_lowercase()) {
                return format!("{top}::{second}");
            }
        }
    }
    top
}

/// Every unit `text` refers to through `crate::`, grouped imports (`crate::{a, b::c}`) too.
fn units_used(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    used.insert(unit_named(item.trim_start_matches('{')));
                }
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                used.insert(unit_named(&rest[..end]));
            }
        }
    }
    used.retain(|u| !u.is_empty() && u != "self");
    used
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(unit) = unit_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = units_used(&text)
            .into_iter()
            .filter(|used| *used != unit && !unit.starts_with(&format!("{used}::")))
            .collect::<BTreeSet<_>>();
        graph.entry(unit).or_default().extend(uses);
    }
    graph
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let mut upward = Vec::new();
    for (unit, uses) in module_graph() {
        for used in uses {
            if layer_of(&used) < layer_of(&unit) {
                upward.push(format!("{unit} -> {used}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up a layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let graph = module_graph();
    // Depth-first search; a back edge to a unit on the current path is a cycle.
    fn visit<'a>(
        unit: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|u| *u == unit) {
            cycles.push(format!("{} -> {unit}", path[start..].join(" -> ")));
            return;
        }
        if !done.insert(unit) {
            return;
        }
        path.push(unit);
        for used in graph.get(unit).into_iter().flatten() {
            visit(used, graph, path, done, cycles);
        }
        path.pop();
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for unit in graph.keys() {
        visit(unit, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_inline_paths() {
    let used = units_used(
        "use crate::{interrupt, output};\nlet x = crate::pipeline::facts::scan(t); // crate::cli\n",
    );
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        ["interrupt", "output", "pipeline::facts"]
    );
}
