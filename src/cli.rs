//! The command line: flags, environment variables and help text. The clap types end here:
//! each is turned, once, into the plain options its command takes (`From` impls at the end
//! of this file), so nothing past this file sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::article::Lang;
use crate::commands::cache::CacheAction;
use crate::commands::models::ModelsAction;
use crate::commands::run::RunOptions;
use crate::commands::summarize::SummarizeOptions;
use crate::commands::translate::TranslateOptions;
use crate::config::{self, GlobalOptions};
use crate::models::precision::Precision;
use crate::units::parse_age;

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
  HF_HUB_OFFLINE=1       never touch the network; use cached models only (same as --offline);
                         1, ON, YES or TRUE in any case, as the Python hub client reads it
  POLYBRIEF_CACHE_DIR    where stage results are cached (same as --cache-dir)
  SOURCE_DATE_EPOCH      the run's clock (seconds since 1970): the brief's date, its archive name
                         and --since windows, e.g. to rebuild a past night's brief";

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
    #[arg(long, global = true, env = "HF_HUB_OFFLINE", value_parser = hf_env_is_true)]
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
pub enum PrecisionChoice {
    Auto,
    Int8,
    F32,
}

impl From<PrecisionChoice> for Precision {
    fn from(choice: PrecisionChoice) -> Self {
        match choice {
            PrecisionChoice::Auto => Precision::Auto,
            PrecisionChoice::Int8 => Precision::Int8,
            PrecisionChoice::F32 => Precision::F32,
        }
    }
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
    Run(Box<RunArgs>),

    /// Translate one text (a file, or - for stdin) into English and print it.
    Translate(TranslateArgs),

    /// Summarize one English text (a file, or - for stdin) and print the summary.
    Summarize(SummarizeArgs),

    /// List, fetch or verify the models a run needs.
    #[command(subcommand)]
    Models(ModelsCommand),

    /// Show or prune the stage-result cache.
    Cache(CacheArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Article files or folders (searched recursively).
    #[arg(required = true, value_name = "INPUT", long_help = input_help())]
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

    /// Compare with this earlier JSON brief (from --json or an archive) in a "Since the last
    /// brief" section. With --archive the default is the newest archived brief before today.
    #[arg(long, value_name = "FILE.json")]
    pub previous: Option<PathBuf>,

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

    /// Beam size for translation (1 = greedy, at most 16). Default: the model's own
    /// generation setting.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=16))]
    pub beams: Option<usize>,

    /// The language of every article that does not name its own (a `lang:` line in its front
    /// matter or a JSON `lang` field), instead of identifying it: for text the identifier
    /// gets wrong. Paragraphs in another writing system (a Korean quote) keep theirs.
    #[arg(long, value_name = "CODE", value_parser = Lang::parse)]
    pub lang: Option<Lang>,

    /// Precision of the translation models: `int8` quantizes every linear layer at load (about
    /// 2× faster on a CPU, a quarter of the weights' memory), `f32` is the checkpoint's own.
    /// `auto`: int8 on the CPU, f32 on a GPU.
    #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto, env = "POLYBRIEF_PRECISION")]
    pub precision: PrecisionChoice,

    /// Skip input files larger than this many MiB (they are listed as skipped).
    #[arg(long, value_name = "MIB", default_value_t = 5)]
    pub max_file_mib: u64,

    /// Most prompts the LLM decodes together (the summarizer's articles, their parts and
    /// re-asks; synthesis's stories); each holds a KV cache of its prompt and reply (Qwen2.5-1.5B: 28 KiB per token). The
    /// replies are the same whatever the number; 1 decodes one prompt at a time.
    #[arg(long, value_name = "N", default_value_t = crate::models::llm::DEFAULT_BATCH,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub llm_batch: usize,

    /// Process only shard K of N (0-based, e.g. 3/8) into the cache and write no brief.
    /// A later run without --shard over the same inputs and cache assembles the brief.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Only articles published in this window (24h, 7d, or since a date: 2026-11-30); an
    /// article that states no date counts by its file's modification time. What is left out
    /// is counted in the log.
    #[arg(long, value_name = "DURATION|DATE")]
    pub since: Option<String>,

    /// The longest a feed or page request may take.
    #[arg(long, value_name = "AGE", default_value = "30s", value_parser = parse_age)]
    pub fetch_timeout: Duration,

    /// The least time between two requests to one host (be polite to newsrooms).
    #[arg(long, value_name = "AGE", default_value = "1s", value_parser = parse_age)]
    pub fetch_delay: Duration,
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// The text to translate: a file, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: String,

    /// The text's language (ISO 639-1, e.g. `de`). Default: identified paragraph by paragraph.
    #[arg(long = "from", value_name = "LANG")]
    pub from: Option<Lang>,

    /// Beam size; 1 is greedy search (fastest). Default: 4, as the opus-mt models were tuned.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub beams: Option<u16>,

    /// Precision of the translation models: `int8` quantizes every linear layer at load (about
    /// 2× faster on a CPU, a quarter of the weights' memory), `f32` is the checkpoint's own.
    /// `auto`: int8 on the CPU, f32 on a GPU.
    #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto, env = "POLYBRIEF_PRECISION")]
    pub precision: PrecisionChoice,

    /// A local opus-mt folder (config.json, model.safetensors or pytorch_model.bin, source.spm,
    /// target.spm, vocab.json) that translates every non-English sentence, instead of the catalog.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// The English text to summarize: a file, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: String,

    /// Which summarizer writes the summary.
    #[arg(long, value_enum, default_value_t = SummarizerChoice::Auto)]
    pub summarizer: SummarizerChoice,

    /// A folder of prompt templates (summarize.txt, summarize_strict.txt, ...) that replace the
    /// built-in ones, file by file.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,

    /// A local GGUF model to use instead of the catalog's (needs --tokenizer).
    #[arg(long, value_name = "FILE", requires = "tokenizer")]
    pub gguf: Option<PathBuf>,

    /// The model's tokenizer.json (with --gguf). A tokenizer_config.json beside it supplies
    /// the chat template; otherwise the GGUF's own template is used.
    #[arg(long, value_name = "FILE", requires = "gguf")]
    pub tokenizer: Option<PathBuf>,

    /// How many sentences the summary has.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub sentences: u16,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ModelsCommand {
    /// Show the models a run needs, whether each is cached, and how big it is.
    List {
        /// Source languages to plan for, as a comma list (`de,vi,ko`). Without it, every
        /// catalog model is listed.
        #[arg(long, value_delimiter = ',', value_name = "LANGS")]
        lang: Vec<Lang>,
    },
    /// Download and verify the models a run needs (translators for `--lang`, plus the
    /// summarizer); already cached files are only verified.
    Fetch {
        /// Source languages whose translators to fetch, as a comma list (`de,vi,ko`).
        #[arg(long, value_delimiter = ',', value_name = "LANGS")]
        lang: Vec<Lang>,
        /// Fetch every model of the catalog (several GB).
        #[arg(long, conflicts_with = "lang")]
        all: bool,
    },
    /// Re-hash every cached catalog model; remove and report files that fail.
    Verify,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show the cache folder, its entries and size by stage.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove entries no run has used for a while, entries of older polybrief cache formats,
    /// and temporary files left by killed runs. Every cache hit refreshes an entry, so what a
    /// nightly run still needs is never pruned by a limit longer than a day.
    Prune {
        /// Remove entries unused for this long: a number and a unit, s, m, h, d or w
        /// (`0s` empties the cache).
        #[arg(long, default_value = "30d", value_parser = parse_age, value_name = "AGE")]
        older_than: Duration,
        /// Say what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The long help of a run's INPUT: the list of formats comes from ingest, the one place
/// that knows it.
fn input_help() -> String {
    format!(
        "Article files or folders (searched recursively): {}; or http(s):// URLs of RSS, Atom or JSON feeds.",
        crate::pipeline::ingest::SUPPORTED_FILES
    )
}

impl From<&GlobalArgs> for GlobalOptions {
    fn from(args: &GlobalArgs) -> Self {
        GlobalOptions {
            models: args.models.clone(),
            offline: args.offline,
            device: args.device.into(),
            cache_dir: args.cache_dir.clone(),
        }
    }
}

impl From<DeviceChoice> for config::DeviceChoice {
    fn from(choice: DeviceChoice) -> Self {
        match choice {
            DeviceChoice::Auto => config::DeviceChoice::Auto,
            DeviceChoice::Cpu => config::DeviceChoice::Cpu,
            DeviceChoice::Cuda => config::DeviceChoice::Cuda,
            DeviceChoice::Metal => config::DeviceChoice::Metal,
        }
    }
}

impl From<SummarizerChoice> for config::SummarizerChoice {
    fn from(choice: SummarizerChoice) -> Self {
        match choice {
            SummarizerChoice::Auto => config::SummarizerChoice::Auto,
            SummarizerChoice::Llm => config::SummarizerChoice::Llm,
            SummarizerChoice::Extractive => config::SummarizerChoice::Extractive,
        }
    }
}

/// A boolean environment variable as the Python hub client reads it
/// (`huggingface_hub/constants.py`, `_is_true`): true exactly when its upper-cased value is
/// `1`, `ON`, `YES` or `TRUE`; anything else (`0`, `false`, `no`, empty, `2`) is false.
fn hf_env_is_true(value: &str) -> Result<bool, std::convert::Infallible> {
    Ok(matches!(
        value.to_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    ))
}

impl From<RunArgs> for RunOptions {
    fn from(args: RunArgs) -> Self {
        RunOptions {
            inputs: args.inputs,
            output: args.output,
            json: args.json,
            archive: args.archive,
            translations: args.translations,
            summarizer: args.summarizer.into(),
            prompts: args.prompts,
            title: args.title,
            beams: args.beams,
            precision: args.precision.into(),
            max_file_mib: args.max_file_mib,
            llm_batch: args.llm_batch,
            shard: args.shard,
            lang: args.lang,
            previous: args.previous,
            since: args.since,
            fetch_timeout: args.fetch_timeout,
            fetch_delay: args.fetch_delay,
            forced_lengths: None,
        }
    }
}

impl From<TranslateArgs> for TranslateOptions {
    fn from(args: TranslateArgs) -> Self {
        TranslateOptions {
            input: args.input,
            from: args.from,
            beams: args.beams,
            precision: args.precision.into(),
            model_dir: args.model_dir,
        }
    }
}

impl From<SummarizeArgs> for SummarizeOptions {
    fn from(args: SummarizeArgs) -> Self {
        SummarizeOptions {
            input: args.input,
            summarizer: args.summarizer.into(),
            prompts: args.prompts,
            gguf: args.gguf,
            tokenizer: args.tokenizer,
            sentences: args.sentences,
        }
    }
}

impl From<ModelsCommand> for ModelsAction {
    fn from(command: ModelsCommand) -> Self {
        match command {
            ModelsCommand::List { lang } => ModelsAction::List { lang },
            ModelsCommand::Fetch { lang, all } => ModelsAction::Fetch { lang, all },
            ModelsCommand::Verify => ModelsAction::Verify,
        }
    }
}

impl From<&CacheArgs> for CacheAction {
    fn from(args: &CacheArgs) -> Self {
        match args.command {
            CacheCommand::Stats { json } => CacheAction::Stats { json },
            CacheCommand::Prune {
                older_than,
                dry_run,
                json,
            } => CacheAction::Prune {
                older_than,
                dry_run,
                json,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct CacheCli {
        #[command(subcommand)]
        command: CacheCommand,
    }

    #[test]
    fn hf_hub_offline_is_true_only_for_what_the_python_client_takes_as_true() {
        for truthy in ["1", "ON", "on", "YES", "yes", "TRUE", "True"] {
            assert_eq!(hf_env_is_true(truthy), Ok(true), "{truthy}");
        }
        for falsy in ["0", "false", "FALSE", "no", "off", "", "2", " 1"] {
            assert_eq!(hf_env_is_true(falsy), Ok(false), "{falsy:?}");
        }
    }

    #[test]
    fn prune_defaults_to_thirty_days() {
        let cli = CacheCli::try_parse_from(["cache", "prune"]).unwrap();
        match cli.command {
            CacheCommand::Prune {
                older_than,
                dry_run,
                json,
            } => {
                assert_eq!(older_than, Duration::from_secs(30 * 86_400));
                assert!(!dry_run && !json);
            }
            other => panic!("{other:?}"),
        }
        assert!(CacheCli::try_parse_from(["cache", "prune", "--older-than", "soon"]).is_err());
    }

    #[test]
    fn every_input_format_ingest_reads_is_in_the_help() {
        let help = input_help();
        for ext in crate::pipeline::ingest::SUPPORTED_EXTENSIONS {
            assert!(help.contains(&format!(".{ext}")), "{ext}: {help}");
        }
    }
}
