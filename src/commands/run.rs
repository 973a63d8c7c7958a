//! `polybrief run`: the main job. Wires the stages ingest → detect → segment → translate →
//! summarize → synthesize → render, with the stage cache in front of every expensive stage,
//! the output lock around the write, and models loaded only when a cache miss needs them.
//!
//! Order of failure matters here: everything that can fail for a reason the user must fix
//! (inputs, templates, lock, models that cannot be had) fails before any expensive work, and
//! nothing is written until the brief is complete.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::Serialize;

use crate::article::{EnglishArticle, Lang, SegmentedArticle, SkippedInput, SourceNumber, Summary};
use crate::cache::{CacheKey, StageCache};
use crate::cli::RunArgs;
use crate::config::Context;
use crate::engines::{
    embedder_files, load_embedder, load_llm, plan_summarizer, ModelRef, SummaryPlan, TranslatorPool,
};
use crate::error::{Error, ExitCode, Result};
use crate::lock::OutputLock;
use crate::models::catalog::ModelEntry;
use crate::models::llm::LlmGenerator;
use crate::models::{Embedder, TextGenerator};
use crate::pipeline::ingest::{ingest, IngestOptions};
use crate::pipeline::render::{
    render_json, render_markdown, Brief, ModelUse, SourceEntry, TranslatedText,
};
use crate::pipeline::summarize::llm::{LlmSummarizer, LlmSummaryOptions};
use crate::pipeline::summarize::{check_grounding, ExtractiveSummarizer, Summarizer};
use crate::pipeline::synthesize::{
    synthesize, GroupingMethod, LlmPoints, Synthesis, SynthesisOptions, SynthesisPrompt,
};
use crate::pipeline::translate::{translate_article, TranslateSettings};
use crate::pipeline::{detect, segment};
use crate::prompts::Prompts;
use crate::shard::Shard;
use crate::{interrupt, output};

/// Bumped when a stage's code changes what it produces, so old cache entries are not reused.
const SEGMENT_VERSION: u32 = 1;
const TRANSLATE_VERSION: u32 = 2;
const SUMMARY_VERSION: u32 = 1;
const SYNTHESIS_VERSION: u32 = 4;

/// How long each stage took, for the log and the README's timing table.
struct StageClock {
    started: Instant,
    stage: &'static str,
}

impl StageClock {
    fn start(stage: &'static str) -> StageClock {
        StageClock {
            started: Instant::now(),
            stage,
        }
    }

    fn stop(self, detail: &str) {
        log::info!(
            "stage {}: {:.2}s ({detail})",
            self.stage,
            self.started.elapsed().as_secs_f64()
        );
    }
}

pub fn run(args: RunArgs, ctx: &Context) -> Result<ExitCode> {
    let run_started = Instant::now();
    let shard = args
        .shard
        .as_deref()
        .map(str::parse::<Shard>)
        .transpose()
        .map_err(|e| Error::Usage(format!("--shard: {e}")))?;
    let prompts = Prompts::load(args.prompts.as_deref())?;
    let synthesis_prompt = SynthesisPrompt::new(&prompts)?;
    // The lock is taken before any work, so a second run fails fast instead of redoing it.
    let _locks = match shard {
        Some(_) => Vec::new(),
        None => locked_outputs(&args)
            .iter()
            .map(|path| OutputLock::acquire(path))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let cache = StageCache::open(&ctx.cache_dir)?;
    if let Err(e) = interrupt::install() {
        log::debug!("Ctrl-C handler not installed: {e}");
    }

    // Ingest.
    let clock = StageClock::start("ingest");
    let report = ingest(
        &args.inputs,
        &IngestOptions {
            max_file_size: args.max_file_mib * 1024 * 1024,
        },
    )?;
    for warning in &report.warnings {
        log::warn!("{warning}");
    }
    for skipped in &report.skipped {
        log::warn!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    let mut skipped = report.skipped;
    let articles: Vec<_> = report
        .articles
        .into_iter()
        .filter(|a| shard.is_none_or(|s| s.owns(&a.id)))
        .collect();
    clock.stop(&format!(
        "{} articles, {} skipped",
        articles.len(),
        skipped.len()
    ));
    if articles.is_empty() && shard.is_none() {
        return Err(Error::Usage(format!(
            "no article could be read from {}; polybrief reads .txt, .md, .html, .htm, .json and .jsonl files",
            args.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }

    // Detect and segment: cheap, but cached like the rest so a resumed run agrees with the first.
    let clock = StageClock::start("detect+segment");
    let mut segmented: Vec<SegmentedArticle> = Vec::new();
    for article in articles {
        let key = CacheKey::new("segment", article.id.as_str(), &SEGMENT_VERSION)?;
        let item = cache.get_or_compute(&key, || {
            Ok::<_, Error>(segment::segment(detect::detect(article)))
        })?;
        match item.detected.lang {
            Some(_) => segmented.push(item),
            None => {
                log::warn!(
                    "skipped {}: its language could not be identified",
                    item.detected.article.origin
                );
                skipped.push(SkippedInput {
                    path: item.detected.article.origin.clone().into(),
                    reason: "its language could not be identified with confidence".to_string(),
                });
            }
        }
    }
    clock.stop(&format!("{} articles", segmented.len()));

    // Plan translation: which articles miss the cache, and which models those need.
    let settings = translate_settings(&args);
    let store = ctx.model_store();
    let mut translators = TranslatorPool::new(&ctx.catalog, &store, &ctx.device, settings.clone());
    let mut translate_keys = Vec::new();
    let mut needed: BTreeSet<ModelRef> = BTreeSet::new();
    for article in &segmented {
        let langs = foreign_langs(article);
        let mut models = Vec::new();
        for lang in &langs {
            let model = translators.model_for(lang).ok_or_else(|| {
                Error::Usage(format!(
                    "no translation model for {lang} ({}) in the catalog and no fallback; add one with --models",
                    lang.name()
                ))
            })?;
            models.push((lang.clone(), model));
        }
        let key = CacheKey::new(
            "translate",
            article.detected.article.id.as_str(),
            &TranslateKey {
                version: TRANSLATE_VERSION,
                models: &models,
                beams: settings.num_beams,
            },
        )?;
        // Looked up once here: what hits is used as is below, what misses decides the models.
        let cached = cache.get::<EnglishArticle>(&key);
        if cached.is_none() {
            needed.extend(models.into_iter().map(|(_, m)| m));
        }
        translate_keys.push((key, cached));
    }

    // Every model the cache misses need is fetched now, before any model work, so that a
    // missing network or a full disk fails the run early and writes nothing.
    let summary_plan = plan_summarizer(args.summarizer, ctx, &store)?;
    for model in &needed {
        if let Some(entry) = ctx.catalog.get(&model.id) {
            store.fetch(entry)?;
        }
    }

    // Translate.
    let clock = StageClock::start("translate");
    let task = ctx.reporter.items("translate", segmented.len() as u64);
    let mut english: Vec<EnglishArticle> = Vec::new();
    for (article, (key, cached)) in segmented.into_iter().zip(translate_keys) {
        interrupt::check()?;
        let done = match cached {
            Some(done) => done,
            None => {
                let origin = article.detected.article.origin.clone();
                let done = translate_article(article, &mut translators)
                    .inspect_err(|e| task.fail(&e.to_string()))?;
                if let Err(e) = cache.put(&key, &done) {
                    log::warn!("{e}; the translation is used but the next run will redo it");
                }
                log::debug!("translated {origin}");
                done
            }
        };
        english.push(done);
        task.inc(1);
    }
    task.finish(&format!("{} models loaded", translators.loads));
    clock.stop(&format!(
        "{} articles, {} translation models loaded",
        english.len(),
        translators.loads
    ));
    drop(translators);

    // Summarize.
    let clock = StageClock::start("summarize");
    let mut llm: Option<LlmGenerator> = None;
    let mut llm_loads = 0;
    let task = ctx.reporter.items("summarize", english.len() as u64);
    let mut summaries: Vec<Summary> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if let SummaryPlan::Extractive { note: Some(note) } = &summary_plan {
        notes.push(note.clone());
    }
    for article in &english {
        interrupt::check()?;
        let key = CacheKey::new(
            "summarize",
            article.article.id.as_str(),
            &SummaryKey {
                version: SUMMARY_VERSION,
                english: &article.text(),
                method: summary_method_key(&summary_plan),
                prompts: prompts.fingerprint(crate::prompts::SUMMARIZE_TEMPLATES),
            },
        )?;
        let summary = cache.get_or_compute(&key, || -> Result<Summary> {
            let mut summary = match &summary_plan {
                SummaryPlan::Extractive { .. } => {
                    ExtractiveSummarizer::default().summarize(article)?
                }
                SummaryPlan::Llm { entry } => {
                    if llm.is_none() {
                        llm = Some(load_llm(&store, entry, &ctx.device)?);
                        llm_loads += 1;
                    }
                    let generator = llm.as_mut().expect("loaded above");
                    LlmSummarizer::new(generator, prompts.clone(), LlmSummaryOptions::default())
                        .summarize(article)?
                }
            };
            check_grounding(&mut summary, article);
            Ok(summary)
        })?;
        if !summary.ungrounded.is_empty() {
            log::warn!(
                "the summary of {} states facts the article does not contain ({}); it is flagged in the brief",
                article.article.origin,
                summary.ungrounded.join(", ")
            );
        }
        summaries.push(summary);
        task.inc(1);
    }
    task.finish("");
    clock.stop(&format!(
        "{} summaries, {} language models loaded",
        summaries.len(),
        llm_loads
    ));

    if let Some(shard) = shard {
        log::info!(
            "shard {shard}: {} articles processed into the cache at {}; run without --shard to write the brief",
            english.len(),
            ctx.cache_dir.display()
        );
        return Ok(exit_code_for(&skipped));
    }

    // Synthesize.
    let clock = StageClock::start("synthesize");
    let numbered: Vec<(SourceNumber, &EnglishArticle, &Summary)> = english
        .iter()
        .zip(&summaries)
        .enumerate()
        .map(|(i, (a, s))| (i + 1, a, s))
        .collect();
    let options = SynthesisOptions::default();
    // Found (fetched if need be) before the cache lookup, since the key says how stories are
    // grouped; loaded only on a miss. An embedder that cannot be had means lexical grouping.
    let embedder_model = embedder_files(ctx, &store);
    let grouping = embedder_model.as_ref().map_or_else(
        || "lexical".to_string(),
        |(entry, _)| ModelRef::of(entry).label(),
    );
    let synthesis_key = CacheKey::new(
        "synthesize",
        "run",
        &SynthesisKey {
            version: SYNTHESIS_VERSION,
            sources: numbered
                .iter()
                .map(|(n, a, s)| (*n, a.article.id.as_str().to_string(), s.text()))
                .collect(),
            method: summary_method_key(&summary_plan),
            grouping,
            prompt: prompts.fingerprint(crate::prompts::SYNTHESIZE_TEMPLATES),
        },
    )?;
    let synthesis: Synthesis = cache.get_or_compute(&synthesis_key, || -> Result<Synthesis> {
        let points = match &summary_plan {
            SummaryPlan::Llm { entry } => {
                if llm.is_none() {
                    llm = Some(load_llm(&store, entry, &ctx.device)?);
                    llm_loads += 1;
                }
                llm.as_mut().map(|g| LlmPoints {
                    generator: g as &mut dyn TextGenerator,
                    prompt: &synthesis_prompt,
                })
            }
            SummaryPlan::Extractive { .. } => None,
        };
        let mut embedder = embedder_model
            .as_ref()
            .and_then(|(entry, files)| load_embedder(entry, files, &ctx.device));
        let embedder = embedder.as_mut().map(|e| e as &mut dyn Embedder);
        Ok(synthesize(&numbered, embedder, points, &options))
    })?;
    notes.extend(synthesis.notes.iter().cloned());
    // Say how stories were grouped when the embedder could not be used at all (a failing one
    // is already noted by the synthesis).
    match (&embedder_model, ctx.catalog.embedder()) {
        (None, Some(entry)) => notes.push(format!(
            "Stories were grouped by word overlap, not by sentence embeddings: the embedding model {} was not available (offline and not cached, or its download failed).",
            entry.id
        )),
        (None, None) => notes.push("Stories were grouped by word overlap: the catalog has no embedding model.".to_string()),
        (Some(_), _) => {}
    }
    clock.stop(&format!(
        "{} stories, {} language models loaded in all",
        synthesis.stories.len(),
        llm_loads
    ));

    // Render and write.
    let clock = StageClock::start("render");
    let brief = Brief {
        title: args.title.clone(),
        date: chrono::Local::now().format("%Y-%m-%d").to_string(),
        models: models_used(
            &english,
            &summary_plan,
            embedder_model
                .as_ref()
                .map(|(entry, _)| entry)
                .filter(|_| matches!(synthesis.grouping, GroupingMethod::Embeddings { .. })),
        ),
        device: ctx.device_name.clone(),
        stories: synthesis.stories.clone(),
        sources: numbered
            .iter()
            .map(|(n, a, s)| SourceEntry::new(*n, a, Some(s)))
            .collect(),
        unused: synthesis.unused.clone(),
        skipped: skipped.clone(),
        notes,
        translations: args.translations.then(|| {
            numbered
                .iter()
                .filter(|(_, a, _)| a.is_translated())
                .map(|(n, a, _)| TranslatedText::new(*n, a))
                .collect()
        }),
    };
    let markdown = render_markdown(&brief);
    match (&args.output, &args.archive) {
        (Some(path), _) => output::write_atomic(path, markdown.as_bytes())?,
        // With only --archive (the nightly setup) the brief goes to the archive, not to stdout.
        (None, Some(_)) => {}
        (None, None) => output::write_stdout(markdown.as_bytes())?,
    }
    if let Some(path) = &args.json {
        output::write_atomic(path, render_json(&brief).as_bytes())?;
    }
    if let Some(dir) = &args.archive {
        let paths = output::archive(dir, chrono::Local::now().date_naive(), &markdown)?;
        log::info!("archived as {}", paths.dated.display());
    }
    clock.stop(&format!("{} sources", brief.sources.len()));
    log::info!(
        "done in {:.1}s: {} sources, {} skipped; cache {}",
        run_started.elapsed().as_secs_f64(),
        brief.sources.len(),
        skipped.len(),
        cache_summary(&cache)
    );
    Ok(exit_code_for(&skipped))
}

/// The files a run writes that another run must not write at the same time: the brief
/// (`-o`) and, with `--archive DIR`, `DIR/latest.md`.
fn locked_outputs(args: &RunArgs) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<std::path::PathBuf> = args.output.iter().cloned().collect();
    if let Some(dir) = &args.archive {
        paths.push(dir.join("latest.md"));
    }
    paths
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

fn translate_settings(args: &RunArgs) -> TranslateSettings {
    let mut settings = TranslateSettings::default();
    if let Some(beams) = args.beams {
        settings.num_beams = beams.max(1);
    }
    settings
}

/// The non-English languages of an article's sentences, in first-appearance order.
fn foreign_langs(article: &SegmentedArticle) -> Vec<Lang> {
    let mut langs: Vec<Lang> = Vec::new();
    for segment in &article.segments {
        let lang = segment
            .lang
            .clone()
            .or_else(|| article.detected.lang.clone());
        if let Some(lang) = lang.filter(|l| !l.is_english()) {
            if !langs.contains(&lang) {
                langs.push(lang);
            }
        }
    }
    langs
}

#[derive(Serialize)]
struct TranslateKey<'a> {
    version: u32,
    models: &'a [(Lang, ModelRef)],
    beams: usize,
}

#[derive(Serialize)]
struct SummaryKey<'a> {
    version: u32,
    english: &'a str,
    method: String,
    prompts: String,
}

#[derive(Serialize)]
struct SynthesisKey {
    version: u32,
    sources: Vec<(SourceNumber, String, String)>,
    method: String,
    /// `lexical` or the embedder's label.
    grouping: String,
    prompt: String,
}

fn summary_method_key(plan: &SummaryPlan) -> String {
    match plan {
        SummaryPlan::Extractive { .. } => "extractive".to_string(),
        SummaryPlan::Llm { entry } => ModelRef::of(entry).label(),
    }
}

fn models_used(
    english: &[EnglishArticle],
    plan: &SummaryPlan,
    embedder: Option<&ModelEntry>,
) -> Vec<ModelUse> {
    let mut uses: BTreeSet<(String, String)> = BTreeSet::new();
    for article in english {
        for (lang, model) in &article.translations {
            uses.insert((format!("translation {}→en", lang.code()), model.clone()));
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
