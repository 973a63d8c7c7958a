//! Turns catalog entries into loaded engines, lazily: a translator is loaded the first time an
//! article in its language misses the cache, and the LLM the first time a summary or the
//! synthesis does. A re-run over unchanged inputs therefore loads no model at all; the
//! counters here let the run report (and tests assert) how many models were loaded.

use std::collections::HashMap;

use candle_core::{DType, Device};

use crate::article::Lang;
use crate::config::{Context, SummarizerChoice};
use crate::error::{Error, Result};
use crate::models::catalog::{Catalog, ModelEntry};
use crate::models::embedder::{EmbedderFiles, SentenceEmbedder};
use crate::models::hub::{LocalModel, ModelStore};
use crate::models::llm::{GenerationOptions, LlmFiles, LlmGenerator, LlmOptions, Weights};
use crate::models::marian_tokenizer::MarianTokenizer;
pub(crate) use crate::models::model_ref::ModelRef;
use crate::models::precision::WeightPrecision;
use crate::pipeline::translate::{
    load_marian_with_precision, Translate, TranslateError, TranslateSettings, Translator,
    Translators,
};

/// The translators of a run, by source language, loaded on first use.
pub(crate) struct TranslatorPool<'a> {
    catalog: &'a Catalog,
    store: &'a ModelStore,
    device: &'a Device,
    settings: TranslateSettings,
    precision: WeightPrecision,
    /// Loaded engines by catalog id: several languages can share one group model.
    loaded: HashMap<String, Box<dyn Translate>>,
    pub loads: usize,
}

impl<'a> TranslatorPool<'a> {
    pub(crate) fn new(
        catalog: &'a Catalog,
        store: &'a ModelStore,
        device: &'a Device,
        settings: TranslateSettings,
        precision: WeightPrecision,
    ) -> Self {
        TranslatorPool {
            catalog,
            store,
            device,
            settings,
            precision,
            loaded: HashMap::new(),
            loads: 0,
        }
    }

    fn load(&self, entry: &ModelEntry) -> Result<Box<dyn Translate>, TranslateError> {
        let local = self.store.fetch(entry).map_err(|e| TranslateError::Load {
            path: entry.repo.clone().into(),
            reason: e.to_string(),
        })?;
        log::info!("loading translation model {} ({})", entry.id, entry.repo);
        let file = |name: &str| {
            local
                .file(name)
                .map(|p| p.to_path_buf())
                .map_err(|e| TranslateError::Load {
                    path: entry.repo.clone().into(),
                    reason: e.to_string(),
                })
        };
        let tokenizer = MarianTokenizer::from_files(
            &file("source.spm")?,
            &file("target.spm")?,
            &file("vocab.json")?,
        )
        .map_err(|e| TranslateError::Load {
            path: entry.repo.clone().into(),
            reason: e.to_string(),
        })?;
        let dir = model_dir(&local, entry)?;
        let model = load_marian_with_precision(&dir, DType::F32, self.device, self.precision)?;
        let name = ModelRef::of(entry).label();
        Ok(Box::new(Translator::new(
            name,
            model,
            tokenizer,
            self.settings.clone(),
        )))
    }
}

/// The folder holding a model's config.json and weights (a hub snapshot or a local `path`).
fn model_dir(local: &LocalModel, entry: &ModelEntry) -> Result<std::path::PathBuf, TranslateError> {
    let config = local
        .file("config.json")
        .map_err(|e| TranslateError::Load {
            path: entry.repo.clone().into(),
            reason: e.to_string(),
        })?;
    Ok(config.parent().map(|p| p.to_path_buf()).unwrap_or_default())
}

impl Translators for TranslatorPool<'_> {
    fn for_lang(&mut self, lang: &Lang) -> Result<&mut dyn Translate, TranslateError> {
        let entry = self
            .catalog
            .translator_for(lang)
            .ok_or_else(|| TranslateError::NoModel { lang: lang.clone() })?
            .entry;
        if !self.loaded.contains_key(&entry.id) {
            let engine = self.load(entry)?;
            self.loads += 1;
            self.loaded.insert(entry.id.clone(), engine);
        }
        match self.loaded.get_mut(&entry.id) {
            Some(engine) => Ok(engine.as_mut()),
            None => Err(TranslateError::NoModel { lang: lang.clone() }),
        }
    }
}

/// The run's instruct LLM, loaded the first time a summary or the synthesis misses the
/// cache, and then shared by both: the one place the run loads it.
pub(crate) struct LazyLlm<'a> {
    store: &'a ModelStore,
    entry: &'a ModelEntry,
    device: &'a Device,
    /// `LlmOptions::batch`.
    batch: usize,
    /// `GenerationOptions::exact_length` and `prompt_tokens_per_word` (benchmarks only).
    forced_tokens_per_word: Option<f64>,
    loaded: Option<LlmGenerator>,
    /// How many times it was loaded (0 or 1), for the log and for tests.
    pub loads: usize,
}

impl<'a> LazyLlm<'a> {
    pub(crate) fn new(
        store: &'a ModelStore,
        entry: &'a ModelEntry,
        device: &'a Device,
        batch: usize,
    ) -> Self {
        LazyLlm {
            store,
            entry,
            device,
            batch,
            forced_tokens_per_word: None,
            loaded: None,
            loads: 0,
        }
    }

    /// With `Some(tokens per word)`, every reply runs to its budget and prompts take the
    /// tokens real text of their words would (`GenerationOptions::exact_length`,
    /// `prompt_tokens_per_word`): for benchmarks that give random weights a real model's
    /// lengths.
    pub(crate) fn with_forced_lengths(mut self, tokens_per_word: Option<f64>) -> Self {
        self.forced_tokens_per_word = tokens_per_word;
        self
    }

    /// The loaded model, loading it now if this is the first use.
    pub(crate) fn get(&mut self) -> Result<&mut LlmGenerator> {
        if self.loaded.is_none() {
            let mut llm = load_llm(self.store, self.entry, self.device, self.batch)?;
            if let Some(per_word) = self.forced_tokens_per_word {
                llm.set_generation_options(GenerationOptions {
                    exact_length: true,
                    prompt_tokens_per_word: Some(per_word),
                    ..llm.options().generation.clone()
                });
            }
            self.loaded = Some(llm);
            self.loads += 1;
        }
        Ok(self.loaded.as_mut().expect("loaded above"))
    }
}

/// Loads the instruct LLM of `entry` from the store (downloading it unless offline).
pub(crate) fn load_llm(
    store: &ModelStore,
    entry: &ModelEntry,
    device: &Device,
    batch: usize,
) -> Result<LlmGenerator> {
    let local = store.fetch(entry)?;
    log::info!("loading language model {} ({})", entry.id, entry.repo);
    let gguf = entry
        .files
        .iter()
        .find(|f| f.name.ends_with(".gguf"))
        .ok_or_else(|| {
            Error::Usage(format!(
                "catalog entry `{}` lists no .gguf file; polybrief's summarizer loads GGUF weights",
                entry.id
            ))
        })?;
    let files = LlmFiles {
        weights: Weights::Gguf(local.file(&gguf.name)?.to_path_buf()),
        tokenizer: local.file("tokenizer.json")?.to_path_buf(),
        tokenizer_config: local
            .file("tokenizer_config.json")
            .ok()
            .map(|p| p.to_path_buf()),
    };
    let options = LlmOptions {
        batch,
        ..LlmOptions::default()
    };
    let generator = LlmGenerator::load(&files, device, options)?;
    Ok(generator.with_name(ModelRef::of(entry).label()))
}

/// The files of the catalog's sentence embedder for story grouping, if they can be had:
/// cached, or fetched when online. Grouping falls back to lexical similarity (and the brief
/// says so) when they cannot, so a missing embedder is a warning, never a failed run.
pub(crate) fn embedder_files(
    ctx: &Context,
    store: &ModelStore,
) -> Option<(ModelEntry, EmbedderFiles)> {
    let entry = ctx.catalog.embedder()?;
    let local = match store.cached(entry) {
        Some(local) => local,
        None if ctx.hub.offline => {
            log::info!(
                "offline and the embedder {} is not cached: stories are grouped lexically; run `polybrief models fetch` once online",
                entry.id
            );
            return None;
        }
        None => match store.fetch(entry) {
            Ok(local) => local,
            Err(e) => {
                log::warn!("{e}; stories are grouped lexically instead of by embeddings");
                return None;
            }
        },
    };
    let file = |name: &str| {
        local
            .file(name)
            .map(|p| p.to_path_buf())
            .map_err(|e| e.to_string())
    };
    let files = (|| -> std::result::Result<EmbedderFiles, String> {
        Ok(EmbedderFiles {
            config: file("config.json")?,
            weights: file("model.safetensors")?,
            tokenizer: file("tokenizer.json")?,
            sentence_config: file("sentence_bert_config.json").ok(),
        })
    })();
    match files {
        Ok(files) => Some((entry.clone(), files)),
        Err(e) => {
            log::warn!("{e}; stories are grouped lexically instead of by embeddings");
            None
        }
    }
}

/// Loads the embedder found by [`embedder_files`]; a broken checkpoint is a warning and
/// lexical grouping, like a missing one.
pub(crate) fn load_embedder(
    entry: &ModelEntry,
    files: &EmbedderFiles,
    device: &Device,
) -> Option<SentenceEmbedder> {
    match SentenceEmbedder::load(files, device) {
        Ok(embedder) => {
            log::info!("loaded sentence embedder {} ({})", entry.id, entry.repo);
            Some(embedder.with_name(ModelRef::of(entry).label()))
        }
        Err(e) => {
            log::warn!(
                "cannot load the embedder {}: {e}; stories are grouped lexically",
                entry.id
            );
            None
        }
    }
}

/// Which summarizer the run ended up with.
pub(crate) enum SummaryPlan {
    Extractive { note: Option<String> },
    Llm { entry: ModelEntry },
}

impl SummaryPlan {
    /// How the summaries are made, as cache keys record it: `extractive` or the LLM's label.
    pub(crate) fn method_key(&self) -> String {
        match self {
            SummaryPlan::Extractive { .. } => "extractive".to_string(),
            SummaryPlan::Llm { entry } => ModelRef::of(entry).label(),
        }
    }
}

/// Decides between the LLM and the extractive summarizer. `auto` falls back to extractive
/// only when offline with no LLM cached, and says so in the brief.
pub(crate) fn plan_summarizer(
    choice: SummarizerChoice,
    ctx: &Context,
    store: &ModelStore,
) -> Result<SummaryPlan> {
    let entry = ctx.catalog.summarizer().cloned();
    match (choice, entry) {
        (SummarizerChoice::Extractive, _) => Ok(SummaryPlan::Extractive { note: None }),
        (SummarizerChoice::Llm, None) => Err(Error::Usage(
            "--summarizer llm: the catalog has no summarize model; add one with --models"
                .to_string(),
        )),
        (SummarizerChoice::Llm, Some(entry)) => Ok(SummaryPlan::Llm { entry }),
        (SummarizerChoice::Auto, None) => Ok(SummaryPlan::Extractive {
            note: Some("Summaries are extractive: the catalog has no summarize model.".to_string()),
        }),
        (SummarizerChoice::Auto, Some(entry)) => {
            if store.cached(&entry).is_some() {
                return Ok(SummaryPlan::Llm { entry });
            }
            if ctx.hub.offline {
                log::warn!(
                    "offline and the summarizer {} is not cached: using extractive summaries; run `polybrief models fetch` once online for LLM summaries",
                    entry.id
                );
                return Ok(SummaryPlan::Extractive {
                    note: Some(format!(
                        "Summaries are extractive (sentences chosen from each article): the run was offline and the summarizer {} was not cached.",
                        entry.id
                    )),
                });
            }
            // Fetched now, not on first use: `auto` promises extractive summaries whenever the
            // LLM cannot be had, and an unreachable hub is found out only by trying.
            match store.fetch(&entry) {
                Ok(_) => Ok(SummaryPlan::Llm { entry }),
                Err(e) => {
                    log::warn!(
                        "the summarizer {} cannot be had, so summaries are extractive: {e}",
                        entry.id
                    );
                    Ok(SummaryPlan::Extractive {
                        note: Some(format!(
                            "Summaries are extractive (sentences chosen from each article): the summarizer {} could not be fetched (the log says why).",
                            entry.id
                        )),
                    })
                }
            }
        }
    }
}
