//! The no-model run many areas drive: `polybrief --offline run INPUT --summarizer extractive`
//! with a stage cache in the test's folder and nothing in the hub cache, on a copy of the
//! README's English example.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Copies `examples/english-only` into `dir/news` and returns that folder.
pub fn english_example(dir: &Path) -> PathBuf {
    let input = dir.join("news");
    std::fs::create_dir_all(&input).unwrap();
    for entry in std::fs::read_dir("examples/english-only").unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), input.join(entry.file_name())).unwrap();
    }
    input
}

/// `polybrief --offline run INPUT --summarizer extractive ARGS...`, its cache in `dir`.
pub fn run(dir: &Path, input: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .arg("--offline")
        .arg("--cache-dir")
        .arg(dir.join("stage-cache"))
        .arg("run")
        .arg(input)
        .args(["--summarizer", "extractive"])
        .args(args)
        .env("HF_HUB_CACHE", dir.join("empty-hub-cache"))
        .env_remove("HF_HOME")
        .env_remove("POLYBRIEF_MODELS")
        .output()
        .unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// How many stage-cache entries (`*.entry` files) lie under `dir`.
pub fn cache_entries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                cache_entries(&e.path())
            } else {
                usize::from(e.path().extension().is_some_and(|x| x == "entry"))
            }
        })
        .sum()
}
