//! What makes a brief trustworthy, end to end on the real binary (model-free path): the
//! Sources list names this run's files even when every stage comes from the cache, and on the
//! labelled evaluation set (`examples/eval/`) the brief reports exactly the labelled
//! disagreements, leaks none of the strings that must never appear, and names every source
//! that carried instructions to machines. `cargo run --example eval_brief` gives the full table.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use polybrief::pipeline::render::Brief;

fn run_extractive(input: &Path, cache: &Path, work: &Path) -> (Output, Brief, String) {
    let (json, md) = (work.join("brief.json"), work.join("brief.md"));
    let output = Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .args(["--offline", "-v", "--cache-dir"])
        .arg(cache)
        .arg("run")
        .arg(input)
        .args(["--summarizer", "extractive", "--json"])
        .arg(&json)
        .arg("-o")
        .arg(&md)
        .env("HF_HUB_CACHE", work.join("empty-hub-cache"))
        .env_remove("HF_HOME")
        .env_remove("POLYBRIEF_MODELS")
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let brief: Brief = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let markdown = std::fs::read_to_string(&md).unwrap();
    (output, brief, markdown)
}

#[test]
fn the_same_texts_under_new_names_over_one_cache_list_this_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("stage-cache");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for d in [
        &first,
        &second,
        &dir.path().join("out1"),
        &dir.path().join("out2"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    let herald = std::fs::read_to_string("examples/english-only/coast-herald.md").unwrap();
    let post = std::fs::read_to_string("examples/english-only/channel-post.txt").unwrap();
    std::fs::write(first.join("coast-herald.md"), &herald).unwrap();
    std::fs::write(first.join("channel-post.txt"), &post).unwrap();
    // The same texts under other names, one with other front matter.
    let renamed = herald
        .replace("title: ", "title: Hestia: thirty thousand homes dark #")
        .replace("coast-herald.example", "mirror.example");
    std::fs::write(second.join("mirror-hestia.md"), &renamed).unwrap();
    std::fs::write(second.join("ferries.txt"), &post).unwrap();
    std::fs::write(second.join("zz-ferries-copy.txt"), &post).unwrap();

    let (_, brief_one, _) = run_extractive(&first, &cache, &dir.path().join("out1"));
    let (output, brief, markdown) = run_extractive(&second, &cache, &dir.path().join("out2"));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("segment 2 hit/0 miss") && log.contains("summarize 2 hit/0 miss"),
        "the second run is served from the cache: {log}"
    );
    assert_eq!(brief_one.sources.len(), 2);

    let origins: BTreeSet<&str> = brief.sources.iter().map(|s| s.origin.as_str()).collect();
    assert_eq!(origins, BTreeSet::from(["ferries.txt", "mirror-hestia.md"]));
    let mirror = brief
        .sources
        .iter()
        .find(|s| s.origin == "mirror-hestia.md")
        .unwrap();
    assert!(
        mirror
            .title
            .starts_with("Hestia: thirty thousand homes dark #"),
        "{:?}",
        mirror.title
    );
    assert!(
        mirror
            .url
            .as_deref()
            .is_some_and(|u| u.contains("mirror.example")),
        "{mirror:?}"
    );
    let ferries = brief
        .sources
        .iter()
        .find(|s| s.origin == "ferries.txt")
        .unwrap();
    assert_eq!(ferries.also_at, ["zz-ferries-copy.txt"]);
    for stale in [
        "coast-herald.md",
        "channel-post.txt",
        "coast-herald.example",
    ] {
        assert!(
            !markdown.contains(stale),
            "{stale} is not in this run's input: {markdown}"
        );
    }
}

#[derive(serde::Deserialize)]
struct Gold {
    disagreements: Vec<GoldDisagreement>,
    instructions: Vec<String>,
    never: Vec<String>,
}

#[derive(serde::Deserialize)]
struct GoldDisagreement {
    sides: Vec<Vec<String>>,
}

#[test]
fn on_the_eval_set_the_brief_reports_the_labelled_disagreements_and_leaks_nothing() {
    let gold: Gold =
        serde_json::from_str(&std::fs::read_to_string("examples/eval/gold.json").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_, brief, markdown) = run_extractive(
        Path::new("examples/eval/articles"),
        &dir.path().join("cache"),
        dir.path(),
    );
    let origin = |n: &usize| {
        brief
            .sources
            .iter()
            .find(|s| s.number == *n)
            .unwrap()
            .origin
            .clone()
    };

    let mut reported: Vec<BTreeSet<BTreeSet<String>>> = Vec::new();
    for story in &brief.stories {
        for d in &story.disagreements {
            reported.push(
                d.sides
                    .iter()
                    .map(|(_, cited)| cited.iter().map(origin).collect())
                    .collect(),
            );
            // Both sides' sentences are in the JSON, each stating its value.
            assert_eq!(
                d.statements.len(),
                d.sides.iter().map(|s| s.1.len()).sum::<usize>(),
                "{d:?}"
            );
            for statement in &d.statements {
                assert!(
                    statement.sentence.contains(&statement.value),
                    "{statement:?}"
                );
            }
        }
    }
    let labelled: Vec<BTreeSet<BTreeSet<String>>> = gold
        .disagreements
        .iter()
        .map(|g| {
            g.sides
                .iter()
                .map(|s| s.iter().cloned().collect())
                .collect()
        })
        .collect();
    for d in &reported {
        assert!(labelled.contains(d), "reported but not labelled: {d:?}");
    }
    for g in &labelled {
        assert!(reported.contains(g), "labelled but not reported: {g:?}");
    }

    let text = format!("{markdown}\n{}", serde_json::to_string(&brief).unwrap()).to_lowercase();
    for never in &gold.never {
        assert!(
            !text.contains(&never.to_lowercase()),
            "{never:?} leaked: {markdown}"
        );
    }
    for source in &gold.instructions {
        assert!(
            brief.notes.iter().any(|n| n.contains(source.as_str())),
            "{source} not named: {:?}",
            brief.notes
        );
    }
}
