//! A nightly re-run from the stage cache writes the brief a fresh run writes: after one
//! article changed and one arrived (which renumbers the sources after it), the cached run's
//! Markdown and JSON, the "Since the last brief" section and the next night's digests
//! included, are byte for byte those of a run with an empty cache, and so are those of the
//! run after it, which reads every stage from the packs the cached run left.

use std::path::{Path, PathBuf};

use crate::support::offline_run::{run, stderr};

/// Copies the evaluation set's articles (every input format) into `dir/news`.
fn eval_articles(dir: &Path) -> PathBuf {
    let input = dir.join("news");
    std::fs::create_dir_all(&input).unwrap();
    for entry in std::fs::read_dir("examples/eval/articles").unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), input.join(entry.file_name())).unwrap();
    }
    input
}

/// Runs over `input` with the cache in `cache`, comparing with `previous`; the brief's
/// Markdown and JSON.
fn brief(cache: &Path, input: &Path, previous: &Path, name: &str) -> (String, String) {
    let md = cache.join(format!("{name}.md"));
    let json = cache.join(format!("{name}.json"));
    let output = run(
        cache,
        input,
        &[
            "-o".as_ref(),
            md.as_os_str(),
            "--json".as_ref(),
            json.as_os_str(),
            "--previous".as_ref(),
            previous.as_os_str(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    (
        std::fs::read_to_string(md).unwrap(),
        std::fs::read_to_string(json).unwrap(),
    )
}

#[test]
fn a_cached_rerun_after_one_change_writes_the_brief_a_fresh_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    let input = eval_articles(dir.path());
    let nightly = dir.path().join("nightly");
    let first_json = nightly.join("first.json");
    std::fs::create_dir_all(&nightly).unwrap();
    let output = run(
        &nightly,
        &input,
        &["--json".as_ref(), first_json.as_os_str()],
    );
    assert!(output.status.success(), "{}", stderr(&output));

    // Overnight an outlet corrects a figure, and a new report arrives early in name order.
    let changed = input.join("dunmore-gazette.txt");
    let mut text = std::fs::read_to_string(&changed).unwrap();
    text.push_str("\nOfficials later corrected the figure to 12345 people.\n");
    std::fs::write(&changed, text).unwrap();
    std::fs::write(
        input.join("aaa-harbour-fire.txt"),
        "A fire broke out at the Ostvik harbour warehouse on Sunday. \
         Firefighters said 40 crews worked through the night.\n",
    )
    .unwrap();

    let cached = brief(&nightly, &input, &first_json, "cached");
    let fresh_dir = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh_dir).unwrap();
    let fresh = brief(&fresh_dir, &input, &first_json, "fresh");
    assert!(
        fresh.0.contains("## Since the last brief"),
        "the comparison is exercised: {}",
        fresh.0
    );
    assert_eq!(cached.0, fresh.0, "the Markdown");
    assert_eq!(cached.1, fresh.1, "the JSON");

    let from_packs = brief(&nightly, &input, &first_json, "again");
    assert_eq!(from_packs.0, fresh.0, "the Markdown, from the packs");
    assert_eq!(from_packs.1, fresh.1, "the JSON, from the packs");
}
