//! The command line: flags, environment variables and help text. Nothing past
//! `config::Config::from_cli` sees these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0    everything asked for was done
  1    fatal error (a model could not be fetched or loaded, an output could not be written)
  2    usage error (bad flag, missing input, malformed catalog or prompt template)
  3    finished, but some inputs were skipped (listed in the log and the brief's Skipped section)
  4    another polybrief run holds the lock on the same output
  130  interrupted; completed work is kept in the cache and the next run resumes from it";

const ENVIRONMENT: &str = "\
Environment:
  HF_HOME, HF_HUB_CACHE  where models are cached (shared with the Python hub client)
  HF_ENDPOINT            a hub mirror, e.g. https://hf-mirror.example
  HF_TOKEN               a token for gated or private repos
  HF_HUB_OFFLINE=1       never touch the network; use cached models only (same as --offline)
  POLYBRIEF_CACHE_DIR    where stage results are cached (same as --cache-dir)";

/// Translate a folder of news articles in any language into one cited English brief.
///
/// polybrief reads articles (.txt, .md, .html, .json, .jsonl), identifies each paragraph's
/// language, translates everything that is not English with opus-mt models, summarizes each
/// article, and writes one Markdown brief whose key points cite the numbered sources.
/// Models are downloaded from the Hugging Face hub on first use and cached.
#[derive(Debug, Parser)]
#[command(name = "polybrief", version, about, long_about, after_long_help = format!("{EXIT_CODES}\n\n{ENVIRONMENT}"))]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only warnings and errors on stderr (no progress bars or log lines).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail on stderr: -v for debug, -vv for trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// A model catalog (TOML) whose entries override or extend the built-in one.
    /// See models/catalog.toml in the source for the format.
    #[arg(long, global = true, value_name = "FILE", env = "POLYBRIEF_MODELS")]
    pub models: Option<PathBuf>,

    /// Never use the network: only models already in the cache (or local `path =` entries).
    /// Also set by HF_HUB_OFFLINE=1, as in the Python hub client.
    #[arg(long, global = true, env = "HF_HUB_OFFLINE", value_parser = clap::builder::FalseyValueParser::new())]
    pub offline: bool,

    /// Where to run the models. `auto` picks a GPU when polybrief was built with the `cuda`
    /// or `metal` feature and one is present, else the CPU.
    #[arg(long, global = true, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,

    /// Where stage results (languages, translations, summaries) are cached, so re-runs only
    /// do new work. Default: $XDG_CACHE_HOME/polybrief or ~/.cache/polybrief.
    #[arg(long, global = true, value_name = "DIR", env = "POLYBRIEF_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
    Metal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummarizerChoice {
    /// The instruct LLM when it is cached or can be fetched, else extractive (with a note).
    Auto,
    /// The instruct LLM from the catalog; fails if it cannot be had.
    Llm,
    /// Sentence ranking over the English text; needs no model.
    Extractive,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the brief: ingest, translate, summarize and synthesize INPUT files and folders.
    ///
    /// Example: polybrief run examples/articles -o brief.md
    #[command(after_long_help = EXIT_CODES)]
    Run(RunArgs),

    /// Translate one text (a file, or - for stdin) into English and print it.
    Translate(crate::commands::translate::TranslateArgs),

    /// Summarize one English text (a file, or - for stdin) and print the summary.
    Summarize(crate::commands::summarize::SummarizeArgs),

    /// List, fetch or verify the models a run needs.
    #[command(subcommand)]
    Models(crate::commands::models::ModelsCommand),

    /// Show or prune the stage-result cache.
    Cache(crate::commands::cache::CacheArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Article files or folders (searched recursively): .txt, .md, .html, .htm, .json, .jsonl.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Write the brief here instead of stdout. Written atomically: a reader never sees half a brief.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write the brief as JSON, for machines.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Keep dated copies (brief-YYYY-MM-DD.md) in DIR and update DIR/latest.md.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,

    /// Add an appendix with the full English text of every translated article.
    #[arg(long)]
    pub translations: bool,

    /// How articles are summarized.
    #[arg(long, value_enum, default_value_t = SummarizerChoice::Auto)]
    pub summarizer: SummarizerChoice,

    /// A folder of prompt templates overriding the built-in ones (same file names as prompts/).
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,

    /// The brief's title.
    #[arg(long, default_value = "News brief")]
    pub title: String,

    /// Beam size for translation (1 = greedy). Default: the model's own generation setting.
    #[arg(long, value_name = "N")]
    pub beams: Option<usize>,

    /// The language of every article that does not name its own (a `lang:` line in its front
    /// matter or a JSON `lang` field), instead of identifying it: for text the identifier
    /// gets wrong. Paragraphs in another writing system (a Korean quote) keep theirs.
    #[arg(long, value_name = "CODE", value_parser = crate::article::Lang::parse)]
    pub lang: Option<crate::article::Lang>,

    /// Skip input files larger than this many MiB (they are listed as skipped).
    #[arg(long, value_name = "MIB", default_value_t = 5)]
    pub max_file_mib: u64,

    /// Process only shard K of N (0-based, e.g. 3/8) into the cache and write no brief.
    /// A later run without --shard over the same inputs and cache assembles the brief.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}
