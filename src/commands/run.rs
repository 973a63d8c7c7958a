//! `polybrief run`: the main job, a chain of the stages ingest → detect+segment → translate
//! → summarize → synthesize → render. Each stage owns its cache key, version and step (in
//! its `pipeline` module); this file only chains them, with the output lock around the
//! write and models loaded only when a cache miss needs them.
//!
//! Order of failure matters here: everything that can fail for a reason the user must fix
//! (inputs, templates, lock, models that cannot be had) fails before any expensive work, and
//! nothing is written until the brief is complete.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use crate::article::{EnglishArticle, SkippedInput, Summary};
use crate::cache::StageCache;
use crate::config::{Context, SummarizerChoice};
use crate::engines::{
    embedder_files, load_embedder, plan_summarizer, LazyLlm, SummaryPlan, TranslatorPool,
};
use crate::error::{Error, ExitCode, Result};
use crate::models::catalog::ModelEntry;
use crate::models::model_ref::ModelRef;
use crate::models::precision::{Precision, WeightPrecision};
use crate::models::{Embedder, TextGenerator};
use crate::pipeline::ingest::fetch::FetchSettings;
use crate::pipeline::ingest::window::Window;
use crate::pipeline::ingest::{ingest, IngestOptions, IngestReport};
use crate::pipeline::render::{
    render_json, render_markdown, Brief, ModelUse, SourceEntry, TranslatedText,
};
use crate::pipeline::summarize::llm::{LlmSummarizer, LlmSummaryOptions};
use crate::pipeline::summarize::{ExtractiveSummarizer, Summarizer};
use crate::pipeline::synthesize::embeddings::CachedEmbedder;
use crate::pipeline::synthesize::story::{StoryDocs, StorySynthesis};
use crate::pipeline::synthesize::{
    number_sources, since, GroupingMethod, LlmPoints, SynthesisOptions, SynthesisPrompt,
};
use crate::pipeline::translate::TranslateSettings;
use crate::pipeline::{segment, summarize, synthesize, translate};
use crate::prompts::Prompts;
use crate::shard::Shard;
use crate::units::human_bytes;
use crate::workload::StageMeter;
use crate::{interrupt, output};

mod forced;
mod outputs;

pub use forced::ForcedLengths;
use outputs::Outputs;

/// What `polybrief run` was asked to do (from `cli::RunArgs`, where each field is documented).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub inputs: Vec<PathBuf>,
    pub output: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub archive: Option<PathBuf>,
    pub translations: bool,
    pub summarizer: SummarizerChoice,
    pub prompts: Option<PathBuf>,
    pub title: String,
    pub beams: Option<usize>,
    pub precision: Precision,
    pub max_file_mib: u64,
    pub llm_batch: usize,
    pub shard: Option<String>,
    pub lang: Option<crate::article::Lang>,
    /// The brief to compare with, instead of the newest in the archive.
    pub previous: Option<PathBuf>,
    /// `--since`, as given (parsed against the run's clock).
    pub since: Option<String>,
    pub fetch_timeout: std::time::Duration,
    pub fetch_delay: std::time::Duration,
    /// Every model writes exactly these lengths and summaries are never asked again: the
    /// end-to-end benchmark's random weights (`examples/bench_run.rs`). The CLI never sets it;
    /// give such a run a cache of its own, since its outputs are keyed like a real run's.
    pub forced_lengths: Option<ForcedLengths>,
}

/// How long each stage took and what it cost the process, for the log, the README's timing
/// table and the end-to-end benchmark (`workload`). The peak RSS is the process's so far; it
/// is the stage's own only while a benchmark records (which resets it per stage).
struct StageClock(StageMeter);

impl StageClock {
    fn start(stage: &'static str) -> StageClock {
        StageClock(StageMeter::start(stage))
    }

    fn stop(self, detail: &str) {
        let usage = self.0.stop();
        let cpu = usage
            .cpu_seconds
            .map(|s| format!(", {s:.2}s CPU"))
            .unwrap_or_default();
        let rss = usage
            .peak_rss_bytes
            .map(|b| format!(", peak RSS {}", human_bytes(b)))
            .unwrap_or_default();
        log::info!(
            "stage {}: {:.2}s{cpu}{rss} ({detail})",
            usage.stage,
            usage.wall_seconds
        );
    }
}

pub fn run(args: RunOptions, ctx: &Context) -> Result<ExitCode> {
    // A stage cut short by a stop request fails in its own words ("model computation
    // failed: interrupted"); what the user asked for was the stop.
    let result = run_stages(args, ctx);
    if interrupt::requested() {
        return Err(Error::Interrupted(interrupt::Interrupted));
    }
    result
}

fn run_stages(args: RunOptions, ctx: &Context) -> Result<ExitCode> {
    let run_started = Instant::now();
    let shard = args
        .shard
        .as_deref()
        .map(str::parse::<Shard>)
        .transpose()
        .map_err(|e| Error::Usage(format!("--shard: {e}")))?;
    let prompts = Prompts::load(args.prompts.as_deref())?;
    let synthesis_prompt = SynthesisPrompt::new(&prompts)?;
    // Outputs are checked and locked before any work, so a bad path or a second run fails
    // fast instead of after the work.
    let outputs = match shard {
        Some(_) => None,
        None => Some(Outputs::plan(&args)?),
    };
    let _locks = match &outputs {
        Some(outputs) => outputs.lock()?,
        None => Vec::new(),
    };
    let cache = StageCache::open(&ctx.cache_dir)?;
    if let Err(e) = interrupt::install() {
        log::debug!("Ctrl-C handler not installed: {e}");
    }

    let clock = StageClock::start("ingest");
    let report = ingest(&args.inputs, &ingest_options(&args, ctx)?)?;
    interrupt::check()?;
    log_ingest_extras(&report);
    let (mut articles, mut skipped) = articles_of_this_run(report, shard);
    for article in &mut articles {
        if article.meta.lang.is_none() {
            article.meta.lang = args.lang.clone();
        }
    }
    clock.stop(&format!(
        "{} articles, {} skipped",
        articles.len(),
        skipped.len()
    ));
    if articles.is_empty() && shard.is_none() {
        return Err(Error::Usage(format!(
            "no article could be read from {}; polybrief reads {}",
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            crate::pipeline::ingest::SUPPORTED_FILES,
        )));
    }

    let clock = StageClock::start("detect+segment");
    let (segmented, unidentified) =
        segment::stage::detect_and_segment::<Error>(articles, &cache, || Ok(interrupt::check()?))?;
    skipped.extend(unidentified);
    clock.stop(&format!("{} articles", segmented.len()));

    // Every model the cache misses need is fetched now, before any model work, so that a
    // missing network or a full disk shows early. A model that cannot be had skips the
    // articles that need it (named, exit 3); only when no article is left does the run fail.
    let settings = translate_settings(&args);
    let precision = args
        .precision
        .resolve(&ctx.device, &ctx.device_name)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let mut plan = translate::stage::plan(
        segmented,
        &ctx.catalog,
        settings.num_beams,
        precision,
        &cache,
    )?;
    skipped.append(&mut plan.skipped);
    let store = ctx.model_store();
    let summary_plan = plan_summarizer(args.summarizer, ctx, &store)?;
    let mut unavailable = std::collections::BTreeMap::new();
    let mut first_fetch_error: Option<Error> = None;
    for model in &plan.needed {
        interrupt::check()?;
        if let Some(entry) = ctx.catalog.get(&model.id) {
            if let Err(e) = store.fetch(entry) {
                unavailable.insert(model.id.clone(), e.to_string());
                first_fetch_error.get_or_insert(e.into());
            }
        }
    }
    plan.without_unavailable(&unavailable);
    skipped.append(&mut plan.skipped);
    if plan.entries.is_empty() && shard.is_none() {
        if let Some(error) = first_fetch_error.or(plan.first_refusal.take().map(Error::from)) {
            return Err(error);
        }
    }

    let clock = StageClock::start("translate");
    let mut translators =
        TranslatorPool::new(&ctx.catalog, &store, &ctx.device, settings, precision);
    let task = ctx.reporter.items("translate", plan.entries.len() as u64);
    let (english, mut failed) =
        translate::stage::translate_all::<Error>(plan, &mut translators, &cache, &task, || {
            Ok(interrupt::check()?)
        })?;
    task.finish(&format!("{} models loaded", translators.loads));
    clock.stop(&format!(
        "{} articles, {} translation models loaded",
        english.len(),
        translators.loads
    ));
    drop(translators);
    skipped.append(&mut failed);

    let clock = StageClock::start("summarize");
    let mut llm = match &summary_plan {
        SummaryPlan::Llm { entry } => Some(
            LazyLlm::new(&store, entry, &ctx.device, args.llm_batch)
                .with_forced_lengths(args.forced_lengths.map(|f| f.prompt_tokens_per_word)),
        ),
        SummaryPlan::Extractive { .. } => None,
    };
    let mut notes: Vec<String> = Vec::new();
    if let SummaryPlan::Extractive { note: Some(note) } = &summary_plan {
        notes.push(note.clone());
    }
    let method = summary_plan.method_key();
    let task = ctx.reporter.items("summarize", english.len() as u64);
    let summaries = summarize::stage::summarize_all(
        &english,
        &method,
        &prompts,
        &cache,
        &task,
        || Ok(interrupt::check()?),
        summarize::stage::Misses {
            batch: args.llm_batch,
            summarize: |articles: &[&EnglishArticle]| -> Result<Vec<Result<Summary>>> {
                let summaries = match llm.as_mut() {
                    None => ExtractiveSummarizer::default().summarize_batch(articles)?,
                    Some(llm) => {
                        LlmSummarizer::new(llm.get()?, prompts.clone(), summary_options(&args))
                            .summarize_batch(articles)?
                    }
                };
                // Summaries whose model calls were cut short are not cached.
                interrupt::check()?;
                Ok(summaries
                    .into_iter()
                    .map(|s| s.map_err(Error::from))
                    .collect())
            },
        },
    )?;
    task.finish("");
    clock.stop(&format!(
        "{} summaries, {} language models loaded",
        summaries.len(),
        llm_loads(&llm)
    ));

    if let Some(shard) = shard {
        log::info!(
            "shard {shard}: {} articles processed into the cache at {}; run without --shard to write the brief",
            english.len(),
            ctx.cache_dir.display()
        );
        return Ok(exit_code_for(&skipped));
    }

    let clock = StageClock::start("synthesize");
    let numbered = number_sources(&english, &summaries);
    // Grouping runs on every run and reads every source, so the embedder (when it can be had)
    // is loaded now; the LLM only when a story misses the cache.
    let embedder_model = embedder_files(ctx, &store);
    let mut embedder = embedder_model.as_ref().map(|(entry, files)| {
        CachedEmbedder::new(&cache, ModelRef::of(entry).label(), move || {
            load_embedder(entry, files, &ctx.device).map(|e| Box::new(e) as Box<dyn Embedder>)
        })
    });
    let options = match &args.forced_lengths {
        Some(forced) => forced.synthesis_options(SynthesisOptions::default()),
        None => SynthesisOptions::default(),
    };
    let (mut synthesis, story_counts) = synthesize::stage::synthesize_cached::<Error>(
        &cache,
        &numbered,
        embedder.as_mut().map(|e| e as &mut dyn Embedder),
        &method,
        &prompts,
        &options,
        synthesize::stage::Misses {
            batch: args.llm_batch,
            synthesize: |stories: &[StoryDocs<'_, '_>]| -> Result<Vec<StorySynthesis>> {
                let mut points = match llm.as_mut() {
                    Some(llm) => Some(LlmPoints {
                        generator: llm.get()? as &mut dyn TextGenerator,
                        prompt: &synthesis_prompt,
                    }),
                    None => None,
                };
                let synthesized =
                    synthesize::story::synthesize_batch(stories, points.as_mut(), &options);
                // Key points whose model calls were cut short fell back to something lesser:
                // not cached.
                interrupt::check()?;
                Ok(synthesized)
            },
        },
    )?;
    notes.extend(synthesis.notes.iter().cloned());
    notes.extend(synthesis.instruction_notes(&numbered));
    notes.extend(grouping_note(ctx, embedder_model.is_some()));
    clock.stop(&format!(
        "{} stories ({} from the cache, {} synthesized), {} language models loaded in all",
        synthesis.stories.len(),
        story_counts.cached,
        story_counts.synthesized,
        llm_loads(&llm)
    ));

    let clock = StageClock::start("render");
    let embedder_used = embedder_model
        .as_ref()
        .map(|(entry, _)| entry)
        .filter(|_| matches!(synthesis.grouping, GroupingMethod::Embeddings { .. }));
    let today = crate::clock::today();
    let digest = synthesis.digest.clone();
    let since = since_section(&args, today, &digest, &mut notes);
    let brief = Brief {
        title: args.title.clone(),
        date: today.format("%Y-%m-%d").to_string(),
        models: models_used(&english, precision, &summary_plan, embedder_used),
        device: ctx.device_name.clone(),
        // Moved: the synthesis is not used after the brief is made.
        stories: std::mem::take(&mut synthesis.stories),
        sources: numbered
            .iter()
            .map(|(n, a, s)| SourceEntry::new(*n, a, Some(s)))
            .collect(),
        unused: std::mem::take(&mut synthesis.unused),
        skipped: skipped.clone(),
        notes,
        translations: args.translations.then(|| {
            numbered
                .iter()
                .filter(|(_, a, _)| a.is_translated())
                .map(|(n, a, _)| TranslatedText::new(*n, a))
                .collect()
        }),
        since,
        digest,
    };
    // The last moment a stop can be honoured without leaving a brief half-written.
    let _writing = interrupt::commit()?;
    let outputs = outputs.expect("planned for every run that writes a brief");
    write_outputs(&outputs, &brief, today)?;
    clock.stop(&format!("{} sources", brief.sources.len()));
    log::info!(
        "done in {:.1}s: {} sources, {} skipped; cache {}",
        run_started.elapsed().as_secs_f64(),
        brief.sources.len(),
        skipped.len(),
        cache_summary(&cache)
    );
    let code = exit_code_for(&skipped);
    // The process ends with the run: freeing the run's texts, one allocation at a time, would
    // only delay it (a few percent of a re-run that reads everything from the cache). The
    // cache is dropped as usual: that writes its packs.
    std::mem::forget((brief, synthesis));
    drop(numbered);
    std::mem::forget((summaries, english));
    Ok(code)
}

/// The articles this run (or shard) processes, and the inputs ingest skipped; ingest's
/// warnings and skips are logged here.
fn articles_of_this_run(
    report: IngestReport,
    shard: Option<Shard>,
) -> (Vec<crate::article::Article>, Vec<SkippedInput>) {
    for warning in &report.warnings {
        log::warn!("{warning}");
    }
    for skipped in &report.skipped {
        log::warn!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    let articles = report
        .articles
        .into_iter()
        .filter(|a| shard.is_none_or(|s| s.owns(&a.id)))
        .collect();
    (articles, report.skipped)
}

fn llm_loads(llm: &Option<LazyLlm<'_>>) -> usize {
    llm.as_ref().map_or(0, |l| l.loads)
}

/// Says how stories were grouped when the embedder could not be used at all (a failing one
/// is already noted by the synthesis).
fn grouping_note(ctx: &Context, embedder_found: bool) -> Option<String> {
    match (embedder_found, ctx.catalog.embedder()) {
        (false, Some(entry)) => Some(format!(
            "Stories were grouped by word overlap, not by sentence embeddings: the embedding model {} was not available (offline and not cached, or its download failed).",
            entry.id
        )),
        (false, None) => {
            Some("Stories were grouped by word overlap: the catalog has no embedding model.".to_string())
        }
        (true, _) => None,
    }
}

/// Ingest's settings: the size limit, the `--since` window, and how feeds are fetched
/// (offline with `--offline`, validators and pages in the stage cache).
fn ingest_options(args: &RunOptions, ctx: &Context) -> Result<IngestOptions> {
    let max_file_size = args.max_file_mib * 1024 * 1024;
    let window = args
        .since
        .as_deref()
        .map(|s| Window::parse(s, crate::clock::now()))
        .transpose()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let fetch = FetchSettings {
        timeout: args.fetch_timeout,
        host_delay: args.fetch_delay,
        max_bytes: max_file_size,
        offline: ctx.hub.offline,
        cache_dir: Some(ctx.cache_dir.clone()),
    };
    Ok(IngestOptions {
        max_file_size,
        window,
        fetch,
    })
}

/// What `--since` left out and what fetching did: log lines, not skipped inputs.
fn log_ingest_extras(report: &IngestReport) {
    if report.left_out > 0 {
        log::info!(
            "--since: {} articles outside the window left out",
            report.left_out
        );
    }
    let f = report.fetched;
    if f.requests > 0 || f.cached_pages > 0 {
        log::info!(
            "fetched: {} requests ({} conditional, {} not modified), {} pages from the cache",
            f.requests,
            f.conditional,
            f.not_modified,
            f.cached_pages
        );
    }
}

/// The "Since the last brief" section; a previous brief that cannot be read is a note,
/// never a failure.
fn since_section(
    args: &RunOptions,
    today: chrono::NaiveDate,
    digest: &[since::StoryDigest],
    notes: &mut Vec<String>,
) -> Option<since::SinceLastBrief> {
    since::since_previous(
        args.previous.as_deref(),
        args.archive.as_deref(),
        today,
        digest,
    )
    .unwrap_or_else(|e| {
        log::warn!("{e}; the brief has no \u{201c}Since the last brief\u{201d} section");
        notes.push(format!(
            "No \u{201c}Since the last brief\u{201d} section: {e}."
        ));
        None
    })
}

/// Writes the brief where asked: `-o` or stdout, `--json`, `--archive`.
fn write_outputs(outputs: &Outputs, brief: &Brief, today: chrono::NaiveDate) -> Result<()> {
    for problem in brief.problems() {
        log::warn!("the brief is inconsistent: {problem}");
    }
    let markdown = render_markdown(brief);
    // With only --archive (the nightly setup) the brief goes to the archive, not to stdout.
    if let Some(destination) = &outputs.brief {
        destination.write(markdown.as_bytes(), "--output")?;
    }
    if let Some(destination) = &outputs.json {
        destination.write(render_json(brief).as_bytes(), "--json")?;
    }
    if let Some(dir) = &outputs.archive {
        let paths = output::archive(dir, today, &markdown)?;
        let json = output::archive_json(dir, today, &render_json(brief))?;
        log::info!(
            "archived as {} and {}",
            paths.dated.display(),
            json.display()
        );
    }
    Ok(())
}

fn exit_code_for(skipped: &[SkippedInput]) -> ExitCode {
    if skipped.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::SkippedInputs
    }
}

/// "translate 3 hit/2 miss, summarize ...": the line tests read to assert "no model work".
fn cache_summary(cache: &StageCache) -> String {
    cache
        .all_counters()
        .iter()
        .map(|(stage, c)| format!("{stage} {} hit/{} miss", c.hits, c.misses))
        .collect::<Vec<_>>()
        .join(", ")
}

fn translate_settings(args: &RunOptions) -> TranslateSettings {
    let mut settings = TranslateSettings::default();
    if let Some(beams) = args.beams {
        settings.num_beams = beams.max(1);
    }
    settings.exact_output_ratio = args.forced_lengths.map(|f| f.translation_ratio);
    settings
}

fn summary_options(args: &RunOptions) -> LlmSummaryOptions {
    match &args.forced_lengths {
        Some(forced) => forced.summary_options(LlmSummaryOptions::default()),
        None => LlmSummaryOptions::default(),
    }
}

fn models_used(
    english: &[EnglishArticle],
    precision: WeightPrecision,
    plan: &SummaryPlan,
    embedder: Option<&ModelEntry>,
) -> Vec<ModelUse> {
    let mut uses: BTreeSet<(String, String)> = BTreeSet::new();
    for article in english {
        for (lang, model) in &article.translations {
            let role = format!("translation {}→en ({precision})", lang.code());
            uses.insert((role, model.clone()));
        }
    }
    let mut models: Vec<ModelUse> = uses
        .into_iter()
        .map(|(role, label)| {
            let (repo, revision) = label.split_once('@').unwrap_or((label.as_str(), ""));
            ModelUse {
                role,
                id: repo.rsplit('/').next().unwrap_or(repo).to_string(),
                repo: repo.to_string(),
                revision: revision.to_string(),
            }
        })
        .collect();
    if let SummaryPlan::Llm { entry } = plan {
        models.push(ModelUse {
            role: "summary and key points".to_string(),
            id: entry.id.clone(),
            repo: entry.repo.clone(),
            revision: entry.revision.clone(),
        });
    }
    if let Some(entry) = embedder {
        models.push(ModelUse {
            role: "story grouping (sentence embeddings)".to_string(),
            id: entry.id.clone(),
            repo: entry.repo.clone(),
            revision: entry.revision.clone(),
        });
    }
    models
}
