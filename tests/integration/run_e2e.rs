//! `polybrief run` end to end, offline: the example articles, tiny random-weight models of the
//! real architectures served by a fake hub on 127.0.0.1 under the catalog's repo names, the
//! real binary. Checks the brief's structure (every source listed and cited or explained,
//! every citation resolving, translations marked), that a re-run does no model work, that a
//! second run is refused while the first holds the lock, and that a run without network fails
//! fast and writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::fake_hub::FakeHub;

const MARIAN_FIXTURE: &str = "tests/fixtures/marian/tiny";
const QWEN_FIXTURE: &str = "tests/fixtures/qwen2/tiny";
/// A made-up pinned commit for every repo the test serves.
const REV: &str = "0123456789abcdef0123456789abcdef01234567";
/// The languages of examples/articles that need a translator, with the catalog ids whose
/// entries the test replaces (same id = same role in the catalog).
const TRANSLATORS: &[(&str, &str, &str)] = &[
    ("opus-mt-de-en", "Helsinki-NLP/opus-mt-de-en", "de"),
    (
        "opus-mt-tc-big-fr-en",
        "Helsinki-NLP/opus-mt-tc-big-fr-en",
        "fr",
    ),
    ("opus-mt-vi-en", "Helsinki-NLP/opus-mt-vi-en", "vi"),
    (
        "opus-mt-tc-big-ko-en",
        "Helsinki-NLP/opus-mt-tc-big-ko-en",
        "ko",
    ),
    ("opus-mt-zh-en", "Helsinki-NLP/opus-mt-zh-en", "zh"),
    ("opus-mt-mul-en", "Helsinki-NLP/opus-mt-mul-en", ""),
];
const MARIAN_FILES: &[&str] = &[
    "config.json",
    "model.safetensors",
    "source.spm",
    "target.spm",
    "vocab.json",
];
const SUMMARIZER_ID: &str = "qwen2.5-1.5b-instruct-q4_k_m";
const SUMMARIZER_REPO: &str = "Qwen/Qwen2.5-1.5B-Instruct-GGUF";
/// The tiny random BERT stands in for the catalog's sentence embedder, so runs group stories
/// by embeddings (the real code path) rather than lexically.
const BERT_FIXTURE: &str = "tests/fixtures/bert/tiny";
const EMBEDDER_ID: &str = "all-minilm-l6-v2";
const EMBEDDER_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
const BERT_FILES: &[&str] = &[
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "sentence_bert_config.json",
];

struct Env {
    dir: tempfile::TempDir,
    hub: Option<FakeHub>,
}

impl Env {
    /// A fake hub serving the tiny models under the catalog's names, and a catalog override
    /// that pins them (the real catalog's sha256 values belong to the real weights).
    fn new(with_llm: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let hub = FakeHub::start();
        let mut toml = String::from("schema = 1\n");
        for (id, repo, lang) in TRANSLATORS {
            for name in MARIAN_FILES {
                let bytes = std::fs::read(Path::new(MARIAN_FIXTURE).join(name)).unwrap();
                hub.add_file(repo, REV, name, bytes);
            }
            let (langs, fallback) = if lang.is_empty() {
                ("[]".to_string(), "fallback = true\n")
            } else {
                (format!("[\"{lang}\"]"), "")
            };
            toml.push_str(&format!(
                "\n[[model]]\nid = \"{id}\"\ntasks = [\"translate\"]\nlangs = {langs}\n{fallback}format = \"marian\"\nrepo = \"{repo}\"\nrevision = \"{REV}\"\nlicense = \"test\"\nfiles = [{}]\n",
                MARIAN_FILES.iter().map(|f| format!("{{ name = \"{f}\" }}")).collect::<Vec<_>>().join(", ")
            ));
        }
        for name in BERT_FILES {
            hub.add_file(
                EMBEDDER_REPO,
                REV,
                name,
                std::fs::read(Path::new(BERT_FIXTURE).join(name)).unwrap(),
            );
        }
        toml.push_str(&format!(
            "\n[[model]]\nid = \"{EMBEDDER_ID}\"\ntasks = [\"embed\"]\nformat = \"transformers\"\nrepo = \"{EMBEDDER_REPO}\"\nrevision = \"{REV}\"\nlicense = \"test\"\nfiles = [{}]\n",
            BERT_FILES.iter().map(|f| format!("{{ name = \"{f}\" }}")).collect::<Vec<_>>().join(", ")
        ));
        if with_llm {
            for (name, served) in [
                ("model-q8_0.gguf", "tiny-q8_0.gguf"),
                ("tokenizer.json", "tokenizer.json"),
                ("tokenizer_config.json", "tokenizer_config.json"),
            ] {
                let bytes = std::fs::read(Path::new(QWEN_FIXTURE).join(name)).unwrap();
                hub.add_file(SUMMARIZER_REPO, REV, served, bytes);
            }
            toml.push_str(&format!(
                "\n[[model]]\nid = \"{SUMMARIZER_ID}\"\ntasks = [\"summarize\", \"synthesize\"]\nformat = \"gguf\"\nrepo = \"{SUMMARIZER_REPO}\"\nrevision = \"{REV}\"\nlicense = \"test\"\nfiles = [{{ name = \"tiny-q8_0.gguf\" }}, {{ name = \"tokenizer.json\" }}, {{ name = \"tokenizer_config.json\" }}]\n"
            ));
        }
        std::fs::write(dir.path().join("catalog.toml"), toml).unwrap();
        Env {
            dir,
            hub: Some(hub),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn endpoint(&self) -> String {
        match &self.hub {
            Some(hub) => hub.url(),
            // A port nothing listens on: connections are refused at once.
            None => "http://127.0.0.1:9".to_string(),
        }
    }

    /// Runs the binary with the test's catalog, hub and caches (the stage cache unless the
    /// arguments name another).
    fn polybrief(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_polybrief"));
        command
            .args(args)
            .arg("--models")
            .arg(self.path("catalog.toml"));
        if !args.contains(&"--cache-dir") {
            command.arg("--cache-dir").arg(self.path("stage-cache"));
        }
        command
            .env("HF_HUB_CACHE", self.path("hub-cache"))
            .env("HF_ENDPOINT", self.endpoint())
            .env_remove("HF_HOME")
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .env("POLYBRIEF_HUB_TIMEOUT_SECS", "5")
            .output()
            .unwrap()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The brief without its date line, which is the only line allowed to differ between runs.
fn without_date(markdown: &str) -> String {
    markdown
        .lines()
        .filter(|l| !l.starts_with("Date:") && !l.starts_with("*Date"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every structural promise of the brief, checked on its JSON form.
fn check_brief_structure(json: &serde_json::Value, markdown: &str) {
    let sources = json["sources"].as_array().expect("sources");
    assert!(
        sources.len() >= 5,
        "every example article is a source: {sources:#?}"
    );
    let numbers: Vec<u64> = sources
        .iter()
        .map(|s| s["number"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=sources.len() as u64).collect::<Vec<_>>(),
        "sources numbered 1..n"
    );

    let mut cited = std::collections::BTreeSet::new();
    for story in json["stories"].as_array().expect("stories") {
        for point in story["points"].as_array().unwrap() {
            let citations = point["citations"].as_array().unwrap();
            assert!(
                !citations.is_empty(),
                "a key point without a citation: {point}"
            );
            for n in citations {
                let n = n.as_u64().unwrap();
                assert!(numbers.contains(&n), "citation [{n}] resolves to no source");
                cited.insert(n);
            }
        }
    }
    let unused: Vec<u64> = json["unused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["source"].as_u64().unwrap())
        .collect();
    for n in &numbers {
        assert!(
            cited.contains(n) || unused.contains(n),
            "source {n} is neither cited nor listed as not used"
        );
    }

    for source in sources {
        let lang = source["language"].as_str().unwrap_or("");
        let translated = source["translated"].as_array().unwrap();
        if lang == "en" {
            // The mixed article is English with a quoted Korean paragraph: only that is translated.
            assert!(
                translated.iter().all(|t| t["from"] != "en"),
                "English is never translated: {source}"
            );
        } else {
            assert!(
                !translated.is_empty(),
                "a {lang} source must be marked translated: {source}"
            );
        }
    }
    assert!(
        markdown.contains("translated from German"),
        "the brief names the language translated from"
    );
    for n in &numbers {
        assert!(
            markdown.contains(&format!("[{n}]")),
            "source [{n}] appears in the brief"
        );
    }
}

/// The README's no-model sample: English articles, extractive summaries, offline, nothing cached.
#[test]
fn english_articles_offline_need_no_model_and_cite_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let brief = dir.path().join("brief.md");
    let output = Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .args(["--offline", "--cache-dir"])
        .arg(dir.path().join("stage-cache"))
        .args([
            "run",
            "examples/english-only",
            "--summarizer",
            "extractive",
            "-o",
        ])
        .arg(&brief)
        .env("HF_HUB_CACHE", dir.path().join("empty-hub-cache"))
        .env_remove("HF_HOME")
        .env_remove("POLYBRIEF_MODELS")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let markdown = std::fs::read_to_string(&brief).unwrap();
    let points: Vec<&str> = markdown.lines().filter(|l| l.starts_with("- ")).collect();
    assert!(!points.is_empty(), "{markdown}");
    for n in ["[1]", "[2]"] {
        assert!(
            points.iter().any(|p| p.contains(n)),
            "source {n} is cited by a key point: {markdown}"
        );
    }
    // Headlines are titles, not facts: no key point or summary repeats one.
    for headline in [
        "Ferries halted as Storm Hestia hits north-west France",
        "Storm Hestia cuts power to 30,000 homes in Brittany",
    ] {
        assert!(points.iter().all(|p| !p.contains(headline)), "{markdown}");
        for line in markdown.lines().filter(|l| l.contains(headline)) {
            let heading_or_source =
                line.starts_with('#') || line.starts_with(|c: char| c.is_ascii_digit());
            assert!(
                heading_or_source,
                "the headline appears only in headings and the Sources list: {line:?}"
            );
        }
    }
    assert!(
        markdown.contains("grouped by word overlap"),
        "the brief says the embedder was not used: {markdown}"
    );
}

#[test]
fn run_on_example_articles_builds_a_cited_brief_and_a_rerun_does_no_model_work() {
    let env = Env::new(false);
    let brief = env.path("out/brief.md");
    let json = env.path("out/brief.json");
    let first = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "extractive",
        "--translations",
        "-o",
        brief.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        first.status.success(),
        "first run failed: {}",
        stderr(&first)
    );
    assert!(first.stdout.is_empty(), "with -o, stdout stays empty");
    let markdown = std::fs::read_to_string(&brief).unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    check_brief_structure(&value, &markdown);
    assert!(
        stderr(&first).contains("translation models loaded"),
        "{}",
        stderr(&first)
    );
    // Stories were grouped with the (tiny) sentence embedder, and the brief names it.
    assert!(
        stderr(&first).contains("loaded sentence embedder"),
        "{}",
        stderr(&first)
    );
    let models = value["models"].as_array().expect("models listed");
    assert!(
        models.iter().any(|m| m["id"] == EMBEDDER_ID),
        "embedder missing from models: {models:?}"
    );

    // Second run: the hub is gone; everything must come from the stage cache.
    let mut env = env;
    let served = env.hub.as_ref().unwrap().requests();
    assert!(served > 0);
    env.hub = None;
    let second = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "extractive",
        "--translations",
        "-o",
        brief.to_str().unwrap(),
    ]);
    assert!(
        second.status.success(),
        "re-run failed: {}",
        stderr(&second)
    );
    assert!(
        !stderr(&second).contains("loaded sentence embedder"),
        "a cached synthesis needs no embedder"
    );
    let log = stderr(&second);
    assert!(
        log.contains("0 translation models loaded"),
        "a re-run loads no model: {log}"
    );
    let translate_counts = regex::Regex::new(r"translate (\d+) hit/(\d+) miss").unwrap();
    let counts = translate_counts
        .captures(&log)
        .unwrap_or_else(|| panic!("no cache summary: {log}"));
    assert!(
        counts[1].parse::<u32>().unwrap() >= 5 && &counts[2] == "0",
        "every translation from the cache: {log}"
    );
    let again = std::fs::read_to_string(&brief).unwrap();
    assert_eq!(
        without_date(&markdown),
        without_date(&again),
        "same inputs, same brief"
    );
}

#[test]
fn an_embedder_that_cannot_be_fetched_means_lexical_grouping_said_in_the_brief() {
    let env = Env::new(false);
    // Point the embedder at a repo the hub does not serve: its download fails with a 404.
    let catalog = std::fs::read_to_string(env.path("catalog.toml")).unwrap();
    let broken = catalog.replace(
        &format!("repo = \"{EMBEDDER_REPO}\""),
        "repo = \"sentence-transformers/not-served\"",
    );
    assert_ne!(catalog, broken);
    std::fs::write(env.path("catalog.toml"), broken).unwrap();
    let brief = env.path("brief.md");
    let json = env.path("brief.json");
    let out = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "extractive",
        "-o",
        brief.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "the run must not fail for the embedder: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("grouped lexically"),
        "{}",
        stderr(&out)
    );
    let markdown = std::fs::read_to_string(&brief).unwrap();
    assert!(markdown.contains("grouped by word overlap"), "{markdown}");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let models = value["models"].as_array().expect("models listed");
    assert!(
        models.iter().all(|m| m["id"] != EMBEDDER_ID),
        "an unused embedder is not listed: {models:?}"
    );
}

#[test]
fn run_with_the_tiny_llm_summarizes_and_keeps_citations_valid() {
    let env = Env::new(true);
    let json = env.path("brief.json");
    let run = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "llm",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "run failed: {}", stderr(&run));
    let markdown = String::from_utf8(run.stdout).unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    check_brief_structure(&value, &markdown);
    for source in value["sources"].as_array().unwrap() {
        assert_eq!(source["summary"]["method"]["kind"], "llm", "{source}");
    }
}

#[test]
fn run_without_network_fails_fast_naming_the_model_and_writes_nothing() {
    let mut env = Env::new(false);
    env.hub = None;
    let brief = env.path("brief.md");
    let started = Instant::now();
    let run = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "extractive",
        "-o",
        brief.to_str().unwrap(),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let log = stderr(&run);
    assert!(
        log.contains("Helsinki-NLP/opus-mt-"),
        "names the repo: {log}"
    );
    assert!(
        log.contains("HF_ENDPOINT") || log.contains("--offline"),
        "says the way out: {log}"
    );
    assert!(!brief.exists(), "nothing partial is written");
}

#[test]
fn second_run_on_the_same_output_is_refused_with_exit_code_4() {
    let env = Env::new(false);
    let brief = env.path("brief.md");
    let _held = polybrief::lock::OutputLock::acquire(&brief).unwrap();
    let run = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "extractive",
        "-o",
        brief.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(4), "{}", stderr(&run));
    assert!(
        stderr(&run).contains(&std::process::id().to_string()),
        "says who holds it: {}",
        stderr(&run)
    );
}

/// A copy of the example articles in a folder of the test's own, so tests can add to it.
fn copy_examples(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir("examples/articles").unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn run_args<'a>(input: &'a str, brief: &'a str) -> Vec<&'a str> {
    vec!["run", input, "--summarizer", "extractive", "-o", brief]
}

#[test]
fn bad_inputs_are_skipped_listed_and_exit_3_while_the_rest_is_briefed() {
    let env = Env::new(false);
    let input = env.path("in");
    copy_examples(&input);
    std::fs::write(input.join("empty.txt"), "").unwrap();
    std::fs::write(
        input.join("binary.txt"),
        [0u8, 159, 146, 150, 0, 1, 2, 3].repeat(64),
    )
    .unwrap();
    std::fs::write(
        input.join("duplicate.txt"),
        std::fs::read("examples/articles/de-sturm.txt").unwrap(),
    )
    .unwrap();
    let brief = env.path("brief.md");
    let run = env.polybrief(&run_args(input.to_str().unwrap(), brief.to_str().unwrap()));
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    let markdown = std::fs::read_to_string(&brief).unwrap();
    let skipped = &markdown[markdown.find("## Skipped").expect("a Skipped section")..];
    assert!(
        skipped.contains("empty.txt") && skipped.contains("binary.txt"),
        "{skipped}"
    );
    assert!(
        markdown.contains("duplicate.txt"),
        "a duplicate is listed under its article"
    );
    assert!(stderr(&run).contains("skipped"), "{}", stderr(&run));
}

#[test]
fn two_shards_then_an_assembling_run_give_the_same_brief_as_one_run() {
    let env = Env::new(false);
    let one = env.path("one.md");
    let cache_a = env.path("single-cache");
    let single = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "extractive",
        "-o",
        one.to_str().unwrap(),
        "--cache-dir",
        cache_a.to_str().unwrap(),
    ]);
    assert!(single.status.success(), "{}", stderr(&single));

    // The shards and the assembly share the default stage cache of `Env`.
    for shard in ["0/2", "1/2"] {
        let run = env.polybrief(&[
            "run",
            "examples/articles",
            "--summarizer",
            "extractive",
            "--shard",
            shard,
        ]);
        assert!(run.status.success(), "shard {shard}: {}", stderr(&run));
        assert!(run.stdout.is_empty(), "a shard writes no brief");
    }
    let assembled = env.path("assembled.md");
    let run = env.polybrief(&run_args("examples/articles", assembled.to_str().unwrap()));
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("0 translation models loaded"),
        "assembly reuses the shards' work: {}",
        stderr(&run)
    );
    assert_eq!(
        without_date(&std::fs::read_to_string(&one).unwrap()),
        without_date(&std::fs::read_to_string(&assembled).unwrap())
    );
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_same_brief() {
    let env = Env::new(false);
    let reference = env.path("reference.md");
    let clean_cache = env.path("clean-cache");
    let clean = env.polybrief(&[
        "run",
        "examples/articles",
        "--summarizer",
        "extractive",
        "-o",
        reference.to_str().unwrap(),
        "--cache-dir",
        clean_cache.to_str().unwrap(),
    ]);
    assert!(clean.status.success(), "{}", stderr(&clean));

    // Start a run, kill -9 it as soon as it has cached its first translation.
    let brief = env.path("brief.md");
    let mut child = Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .args(run_args("examples/articles", brief.to_str().unwrap()))
        .arg("--models")
        .arg(env.path("catalog.toml"))
        .arg("--cache-dir")
        .arg(env.path("stage-cache"))
        .env("HF_HUB_CACHE", env.path("hub-cache"))
        .env("HF_ENDPOINT", env.endpoint())
        .env_remove("HF_HUB_OFFLINE")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let translate_dir = env.path("stage-cache").join("v1").join("translate");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed_midway = false;
    while Instant::now() < deadline {
        let entries = walk_count(&translate_dir);
        if entries >= 1 {
            killed_midway = child.try_wait().unwrap().is_none();
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        killed_midway,
        "the run finished before it could be killed; the test proves nothing"
    );
    assert!(!brief.exists(), "a killed run leaves no brief");

    let resumed = env.polybrief(&run_args("examples/articles", brief.to_str().unwrap()));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let log = stderr(&resumed);
    let hits = regex::Regex::new(r"translate (\d+) hit").unwrap();
    let hit_count: u32 = hits
        .captures(&log)
        .map(|c| c[1].parse().unwrap())
        .unwrap_or(0);
    assert!(
        hit_count >= 1,
        "the resumed run reuses the killed run's finished work: {log}"
    );
    assert_eq!(
        without_date(&std::fs::read_to_string(&reference).unwrap()),
        without_date(&std::fs::read_to_string(&brief).unwrap())
    );
}

#[test]
#[cfg(unix)]
fn ctrl_c_stops_at_an_article_boundary_with_exit_130_and_writes_no_brief() {
    let env = Env::new(false);
    let brief = env.path("brief.md");
    let mut child = Command::new(env!("CARGO_BIN_EXE_polybrief"))
        .args(run_args("examples/articles", brief.to_str().unwrap()))
        .arg("--models")
        .arg(env.path("catalog.toml"))
        .arg("--cache-dir")
        .arg(env.path("stage-cache"))
        .env("HF_HUB_CACHE", env.path("hub-cache"))
        .env("HF_ENDPOINT", env.endpoint())
        .env_remove("HF_HUB_OFFLINE")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let translate_dir = env.path("stage-cache").join("v1").join("translate");
    let deadline = Instant::now() + Duration::from_secs(120);
    while walk_count(&translate_dir) == 0
        && Instant::now() < deadline
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before it could be interrupted"
    );
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(!brief.exists(), "an interrupted run writes no brief");

    let resumed = env.polybrief(&run_args("examples/articles", brief.to_str().unwrap()));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(brief.exists());
}

fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk_count(&e.path())
            } else {
                usize::from(e.path().extension().is_some_and(|x| x == "entry"))
            }
        })
        .sum()
}

#[test]
fn one_changed_article_is_the_only_one_reprocessed() {
    let env = Env::new(false);
    let input = env.path("in");
    copy_examples(&input);
    let brief = env.path("brief.md");
    let first = env.polybrief(&run_args(input.to_str().unwrap(), brief.to_str().unwrap()));
    assert!(first.status.success(), "{}", stderr(&first));

    let article = input.join("de-sturm.txt");
    let text = std::fs::read_to_string(&article).unwrap();
    std::fs::write(
        &article,
        text.replace("30.000 Haushalte", "35.000 Haushalte"),
    )
    .unwrap();
    let second = env.polybrief(&run_args(input.to_str().unwrap(), brief.to_str().unwrap()));
    assert!(second.status.success(), "{}", stderr(&second));
    let log = stderr(&second);
    let counts = regex::Regex::new(r"translate (\d+) hit/(\d+) miss").unwrap();
    let c = counts
        .captures(&log)
        .unwrap_or_else(|| panic!("no cache summary: {log}"));
    assert_eq!(
        (&c[1], &c[2]),
        ("5", "1"),
        "only the changed article is translated again: {log}"
    );
    assert!(
        log.contains("1 translation models loaded"),
        "only its model is loaded: {log}"
    );
}
