//! The end-to-end forced-length benchmark (scripts/bench/e2e.sh): `polybrief run` over an
//! input folder, through the very code the command runs (`commands::run::run`, with the
//! command line's own defaults: int8 translators with beam 4 on the CPU, batched LLM
//! prompts), on random weights at the real models' sizes, with every model's output length
//! forced to what real models write (`ForcedLengths::published`) and no grounding re-asks.
//!
//! Prints a table per stage (wall, CPU, peak RSS, tokens) on stdout and writes JSON with the
//! same figures and every batch of model work (`workload::Record`), which
//! scripts/bench/e2e_peers.py replays through CTranslate2 and llama.cpp.
//!
//! Usage: bench_run --models CATALOG --cache-dir EMPTY_DIR --json OUT.json INPUT...
//!        [--translation-ratio R] [--summary-tokens N] [--synthesis-tokens N]
//!        [--prompt-tokens-per-word R] [-- polybrief run flags...]
//! Threads follow RAYON_NUM_THREADS. The cache folder must be fresh: a cached stage does no work.

use std::path::PathBuf;

use clap::Parser;
use polybrief::cli::{Cli, Command};
use polybrief::commands::run::{ForcedLengths, RunOptions};
use polybrief::config::{Context, GlobalOptions};
use polybrief::pipeline::summarize::llm::LlmSummaryOptions;
use polybrief::pipeline::synthesize::SynthesisOptions;
use polybrief::progress::{OutputStyle, Reporter};
use polybrief::workload::{self, Record, StageMeter, StageUsage, Work};

struct Args {
    models: PathBuf,
    cache_dir: PathBuf,
    json: PathBuf,
    inputs: Vec<String>,
    run_flags: Vec<String>,
    forced: ForcedLengths,
}

fn parse_args() -> Args {
    let mut forced =
        ForcedLengths::published(&LlmSummaryOptions::default(), &SynthesisOptions::default());
    let (mut models, mut cache_dir, mut json) = (None, None, None);
    let (mut inputs, mut run_flags) = (Vec::new(), Vec::new());
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_run --models CATALOG --cache-dir DIR --json OUT.json INPUT... \
                 [--translation-ratio R] [--summary-tokens N] [--synthesis-tokens N] \
                 [--prompt-tokens-per-word R] [-- RUN FLAGS]";
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{arg} needs a value; {usage}"))
        };
        match arg.as_str() {
            "--models" => models = Some(PathBuf::from(value())),
            "--cache-dir" => cache_dir = Some(PathBuf::from(value())),
            "--json" => json = Some(PathBuf::from(value())),
            "--translation-ratio" => forced.translation_ratio = value().parse().expect("a number"),
            "--summary-tokens" => forced.summary_tokens = value().parse().expect("a count"),
            "--synthesis-tokens" => forced.synthesis_tokens = value().parse().expect("a count"),
            "--prompt-tokens-per-word" => {
                forced.prompt_tokens_per_word = value().parse().expect("a number")
            }
            "--" => run_flags.extend(args.by_ref()),
            _ => inputs.push(arg),
        }
    }
    Args {
        models: models.unwrap_or_else(|| panic!("{usage}")),
        cache_dir: cache_dir.unwrap_or_else(|| panic!("{usage}")),
        json: json.unwrap_or_else(|| panic!("{usage}")),
        inputs,
        run_flags,
        forced,
    }
}

/// The command line's own parse of `polybrief --offline --models M --cache-dir D run INPUT...
/// -o DIR/brief.md`, so that every option not forced here has the CLI's default.
fn run_options(args: &Args) -> (GlobalOptions, RunOptions) {
    let brief = args.json.with_extension("brief.md");
    let mut argv: Vec<String> = vec!["polybrief".into(), "--offline".into(), "--models".into()];
    argv.push(args.models.display().to_string());
    argv.push("--cache-dir".into());
    argv.push(args.cache_dir.display().to_string());
    argv.push("run".into());
    argv.extend(args.inputs.iter().cloned());
    argv.push("-o".into());
    argv.push(brief.display().to_string());
    argv.extend(args.run_flags.iter().cloned());
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| e.exit());
    let Command::Run(run) = cli.command else {
        unreachable!("the subcommand is run")
    };
    let mut options = RunOptions::from(*run);
    options.forced_lengths = Some(args.forced);
    (GlobalOptions::from(&cli.global), options)
}

#[derive(serde::Serialize)]
struct Output<'a> {
    forced: Forced,
    threads: Option<String>,
    exit_code: i32,
    total: StageUsage,
    #[serde(flatten)]
    record: &'a Record,
}

#[derive(serde::Serialize)]
struct Forced {
    translation_ratio: f64,
    summary_tokens: usize,
    synthesis_tokens: usize,
    prompt_tokens_per_word: f64,
}

/// Token totals of one stage's model work, for the table.
#[derive(Default)]
struct Tokens {
    sentences: usize,
    source: usize,
    target: usize,
    llm_calls: usize,
    prompts: usize,
    prompt: usize,
    reused: usize,
    generated: usize,
}

fn tokens_of(record: &Record, stage: &str) -> Tokens {
    let mut t = Tokens::default();
    for w in record.work.iter().filter(|w| w.stage == stage) {
        match &w.work {
            Work::Translation {
                source_tokens,
                target_tokens,
                ..
            } => {
                t.sentences += source_tokens.len();
                t.source += source_tokens.iter().sum::<usize>();
                t.target += target_tokens.iter().sum::<usize>();
            }
            Work::Generation {
                prompt_tokens,
                reused_prompt_tokens,
                generated_tokens,
                ..
            } => {
                t.reused += reused_prompt_tokens.iter().sum::<usize>();
                t.llm_calls += 1;
                t.prompts += prompt_tokens.len();
                t.prompt += prompt_tokens.iter().sum::<usize>();
                t.generated += generated_tokens.iter().sum::<usize>();
            }
        }
    }
    t
}

fn gib(bytes: Option<u64>) -> String {
    bytes.map_or("–".into(), |b| {
        format!("{:.2}", b as f64 / (1u64 << 30) as f64)
    })
}

fn secs(s: Option<f64>) -> String {
    s.map_or("–".into(), |s| format!("{s:.1}"))
}

fn main() {
    polybrief::allocator::keep_freed_memory_for_reuse();
    let args = parse_args();
    let (global, options) = run_options(&args);
    let reporter = Reporter::new(OutputStyle::LogLines);
    reporter.install_logger(log::LevelFilter::Info);
    let ctx = Context::new(&global, reporter).unwrap_or_else(|e| panic!("context: {e}"));

    // Started before recording, so that it neither names a stage nor resets the peak RSS.
    let whole_run = StageMeter::start("total");
    workload::start_recording();
    let result = polybrief::commands::run::run(options, &ctx);
    let record = workload::take_record();
    let total = whole_run.stop();
    // Each stage reset the high-water mark: the run's peak is the highest stage's.
    let total = StageUsage {
        peak_rss_bytes: record
            .stages
            .iter()
            .filter_map(|s| s.peak_rss_bytes)
            .chain(total.peak_rss_bytes)
            .max(),
        ..total
    };
    let exit_code = match &result {
        Ok(code) => *code as i32,
        Err(e) => {
            eprintln!("bench_run: the run failed: {e}");
            e.exit_code() as i32
        }
    };

    let f = &args.forced;
    println!(
        "forced lengths: translation {:.3} target tokens per source token, summary {} tokens, \
         key points {} tokens, LLM prompts {:.3} tokens per word; no grounding re-asks",
        f.translation_ratio, f.summary_tokens, f.synthesis_tokens, f.prompt_tokens_per_word
    );
    println!("| stage | wall s | CPU s | peak RSS GiB | model work |");
    println!("|---|---:|---:|---:|---|");
    for s in record.stages.iter().chain(std::iter::once(&total)) {
        let t = tokens_of(&record, s.stage);
        let mut work = Vec::new();
        if t.sentences > 0 {
            work.push(format!(
                "{} sentences, {} → {} tokens",
                t.sentences, t.source, t.target
            ));
        }
        if t.llm_calls > 0 {
            let reused = if t.reused > 0 {
                format!(" ({} reused from a shared prefix)", t.reused)
            } else {
                String::new()
            };
            work.push(format!(
                "{} prompts in {} batches, {} prompt{reused} + {} generated tokens",
                t.prompts, t.llm_calls, t.prompt, t.generated
            ));
        }
        println!(
            "| {} | {:.1} | {} | {} | {} |",
            s.stage,
            s.wall_seconds,
            secs(s.cpu_seconds),
            gib(s.peak_rss_bytes),
            work.join("; ")
        );
    }

    let output = Output {
        forced: Forced {
            translation_ratio: args.forced.translation_ratio,
            summary_tokens: args.forced.summary_tokens,
            synthesis_tokens: args.forced.synthesis_tokens,
            prompt_tokens_per_word: args.forced.prompt_tokens_per_word,
        },
        threads: std::env::var("RAYON_NUM_THREADS").ok(),
        exit_code,
        total,
        record: &record,
    };
    let text = serde_json::to_string_pretty(&output).expect("serializable");
    std::fs::write(&args.json, text)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", args.json.display()));
    if result.is_err() {
        std::process::exit(exit_code);
    }
}
