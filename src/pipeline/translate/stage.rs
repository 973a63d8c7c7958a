//! The translate stage of a run: its cache key, version and steps. Planning comes first and
//! loads nothing: it looks every article up in the cache and names the models the misses
//! need, so that the run can fetch them (and fail on a missing network) before any model
//! work; translating then loads each model on first use through [`Translators`].

use std::collections::BTreeSet;

use serde::Serialize;

use crate::article::{CarriesArticle, EnglishArticle, Lang, SegmentedArticle};
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

/// Why planning failed: a language the catalog cannot translate, or the cache.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Translate(#[from] TranslateError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// What translating a run's articles takes: each article's key and cached translation, and
/// the models that the cache misses need.
pub(crate) struct TranslationPlan {
    pub entries: Vec<(CacheKey, Option<EnglishArticle>)>,
    pub needed: BTreeSet<ModelRef>,
}

/// Looks every article up in the cache (once: what hits is used as is, what misses decides
/// the models to fetch).
pub(crate) fn plan(
    articles: &[SegmentedArticle],
    catalog: &Catalog,
    beams: usize,
    precision: WeightPrecision,
    cache: &StageCache,
) -> Result<TranslationPlan, PlanError> {
    let mut entries = Vec::new();
    let mut needed = BTreeSet::new();
    for article in articles {
        let mut models = Vec::new();
        for lang in foreign_langs(article) {
            let model = catalog
                .translator_for(&lang)
                .map(|t| ModelRef::of(t.entry))
                .ok_or_else(|| TranslateError::NotInCatalog { lang: lang.clone() })?;
            models.push((lang, model));
        }
        let key = cache_key(article, &models, beams, precision)?;
        let cached = cache
            .get::<EnglishArticle>(&key)
            .map(|e| e.with_identity_of(&article.detected.article));
        if cached.is_none() {
            needed.extend(models.into_iter().map(|(_, m)| m));
        }
        entries.push((key, cached));
    }
    Ok(TranslationPlan { entries, needed })
}

/// Translates the articles the plan found missing, storing each in the cache as soon as it
/// is done; `between_articles` runs before each article (the run's interrupt check).
pub(crate) fn translate_all<E: From<TranslateError>>(
    articles: Vec<SegmentedArticle>,
    plan: TranslationPlan,
    translators: &mut dyn Translators,
    cache: &StageCache,
    task: &Task,
    mut between_articles: impl FnMut() -> Result<(), E>,
) -> Result<Vec<EnglishArticle>, E> {
    let mut english = Vec::new();
    for (article, (key, cached)) in articles.into_iter().zip(plan.entries) {
        between_articles()?;
        let done = match cached {
            Some(done) => done,
            None => {
                let origin = article.detected.article.origin.clone();
                let done = translate_article(article, translators)
                    .inspect_err(|e| task.fail(&e.to_string()))?;
                if let Err(e) = cache.put(&key, &done.clone().without_identity()) {
                    log::warn!("{e}; the translation is used but the next run will redo it");
                }
                log::debug!("translated {origin}");
                done
            }
        };
        english.push(done);
        task.inc(1);
    }
    cache.flush();
    Ok(english)
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
