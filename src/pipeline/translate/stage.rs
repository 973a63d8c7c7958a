//! The translate stage of a run: its cache key, version and steps. Planning comes first and
//! loads nothing: it looks every article up in the cache and names the models the misses
//! need, so that the run can fetch them (and fail on a missing network) before any model
//! work; translating then loads each model on first use through [`Translators`].

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::article::{CarriesArticle, EnglishArticle, Lang, SegmentedArticle, SkippedInput};
use crate::cache::{CacheError, CacheKey, StageCache};
use crate::models::catalog::Catalog;
use crate::models::model_ref::ModelRef;
use crate::models::precision::WeightPrecision;
use crate::progress::Task;

use super::{translate_article, TranslateError, Translators};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "translate";

/// Bumped when translation changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 3;

#[derive(Serialize)]
struct KeyParts<'a> {
    version: u32,
    models: &'a [(Lang, ModelRef)],
    beams: usize,
    precision: WeightPrecision,
    /// Translated with the text, so part of what the value holds.
    title: Option<&'a str>,
}

/// An article's translation depends on its text (its id), a foreign title (translated with it),
/// the model of each of its languages, the beam size and the precision the models ran in. Not
/// on its file name: the value is stored without it and takes this run's (`CarriesArticle`).
pub(crate) fn cache_key(
    article: &SegmentedArticle,
    models: &[(Lang, ModelRef)],
    beams: usize,
    precision: WeightPrecision,
) -> Result<CacheKey, CacheError> {
    CacheKey::new(
        STAGE,
        article.detected.article.id.as_str(),
        &KeyParts {
            version: CACHE_VERSION,
            models,
            beams,
            precision,
            // Only a foreign article's title is translated (with its main language).
            title: article.detected.article.meta.title.as_deref().filter(|_| {
                article
                    .detected
                    .lang
                    .as_ref()
                    .is_some_and(|l| !l.is_english())
            }),
        },
    )
}

/// What translating a run's articles takes: each article with its key, its cached
/// translation and the models its cache miss needs; all the models the misses need; and the
/// articles left out because no model in the catalog speaks one of their languages.
pub(crate) struct TranslationPlan {
    pub entries: Vec<PlannedArticle>,
    pub needed: BTreeSet<ModelRef>,
    pub skipped: Vec<SkippedInput>,
    /// Why the first article was left out, for a run that has nothing left to brief.
    pub first_refusal: Option<TranslateError>,
}

pub(crate) struct PlannedArticle {
    article: SegmentedArticle,
    key: CacheKey,
    cached: Option<EnglishArticle>,
    /// The models translating it needs (none when it is cached).
    misses: Vec<ModelRef>,
}

impl TranslationPlan {
    /// Leaves out the articles whose cache miss needs a model that cannot be had, naming
    /// the model and why (`unavailable`: model id → the fetch error's text).
    pub(crate) fn without_unavailable(&mut self, unavailable: &BTreeMap<String, String>) {
        let entries = std::mem::take(&mut self.entries);
        for entry in entries {
            match entry
                .misses
                .iter()
                .find(|m| unavailable.contains_key(&m.id))
            {
                Some(model) => self.skipped.push(skip(
                    &entry.article,
                    format!(
                        "its translation model {} cannot be had: {}",
                        model.repo, unavailable[&model.id]
                    ),
                )),
                None => self.entries.push(entry),
            }
        }
    }
}

fn skip(article: &SegmentedArticle, reason: String) -> SkippedInput {
    log::warn!("skipped {}: {reason}", article.detected.article.origin);
    SkippedInput {
        path: article.detected.article.origin.clone().into(),
        reason,
    }
}

/// Looks every article up in the cache (once: what hits is used as is, what misses decides
/// the models to fetch). An article in a language the catalog cannot translate is left out
/// and named, not fatal.
pub(crate) fn plan(
    articles: Vec<SegmentedArticle>,
    catalog: &Catalog,
    beams: usize,
    precision: WeightPrecision,
    cache: &StageCache,
) -> Result<TranslationPlan, CacheError> {
    let mut plan = TranslationPlan {
        entries: Vec::new(),
        needed: BTreeSet::new(),
        skipped: Vec::new(),
        first_refusal: None,
    };
    // Each article's models, in order (an article no model speaks is left out and named);
    // then every lookup, in parallel.
    let mut wanted = Vec::with_capacity(articles.len());
    'articles: for article in articles {
        let mut models = Vec::new();
        for lang in foreign_langs(&article) {
            let Some(model) = catalog.translator_for(&lang).map(|t| ModelRef::of(t.entry)) else {
                let refusal = TranslateError::NotInCatalog { lang };
                plan.skipped.push(skip(&article, refusal.to_string()));
                plan.first_refusal.get_or_insert(refusal);
                continue 'articles;
            };
            models.push((lang, model));
        }
        wanted.push((article, models));
    }
    let looked_up: Vec<Result<(CacheKey, Option<EnglishArticle>), CacheError>> = wanted
        .par_iter()
        .map(|(article, models)| {
            let key = cache_key(article, models, beams, precision)?;
            let cached = cache
                .get::<EnglishArticle>(&key)
                .map(|e| e.with_identity_of(&article.detected.article));
            Ok((key, cached))
        })
        .collect();
    for ((article, models), looked_up) in wanted.into_iter().zip(looked_up) {
        let (key, cached) = looked_up?;
        let misses: Vec<ModelRef> = match cached {
            Some(_) => Vec::new(),
            None => models.into_iter().map(|(_, m)| m).collect(),
        };
        plan.needed.extend(misses.iter().cloned());
        plan.entries.push(PlannedArticle {
            article,
            key,
            cached,
            misses,
        });
    }
    Ok(plan)
}

/// Translates the articles the plan found missing, storing each in the cache as soon as it
/// is done; `between_articles` runs before each article and after each translation (the
/// run's interrupt check: a translation cut short is not cached). An article whose
/// translation fails (a model that will not load, a tokenizer error) is left out and named;
/// the rest go on.
pub(crate) fn translate_all<E: From<TranslateError>>(
    plan: TranslationPlan,
    translators: &mut dyn Translators,
    cache: &StageCache,
    task: &Task,
    mut between_articles: impl FnMut() -> Result<(), E>,
) -> Result<(Vec<EnglishArticle>, Vec<SkippedInput>), E> {
    let mut english = Vec::new();
    let mut skipped = Vec::new();
    for PlannedArticle {
        article,
        key,
        cached,
        ..
    } in plan.entries
    {
        between_articles()?;
        let done = match cached {
            Some(done) => done,
            None => {
                let origin = article.detected.article.origin.clone();
                let result = translate_article(article, translators);
                between_articles()?;
                let done = match result {
                    Ok(done) => done,
                    Err(e) => {
                        task.fail(&e.to_string());
                        let reason = format!("its translation failed: {e}");
                        log::warn!("skipped {origin}: {reason}");
                        skipped.push(SkippedInput {
                            path: origin.into(),
                            reason,
                        });
                        task.inc(1);
                        continue;
                    }
                };
                cache.put_or_warn(&key, &done.clone().without_identity());
                log::debug!("translated {origin}");
                done
            }
        };
        english.push(done);
        task.inc(1);
    }
    cache.flush();
    Ok((english, skipped))
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
