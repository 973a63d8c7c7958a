//! The translate stage of a run: its cache key, version and steps. Planning comes first and
//! loads nothing: it looks every article up in the cache and names the models the misses
//! need, so that the run can fetch them (and fail on a missing network) before any model
//! work; translating then loads each model on first use through [`Translators`].

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::article::{
    Article, EnglishArticle, EnglishSentence, Lang, SegmentedArticle, SkippedInput,
};
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

/// Fields in name order: a key's canonical form sorts them, and in that order they are written
/// without sorting (the order changes no key).
#[derive(Serialize)]
struct KeyParts<'a> {
    beams: usize,
    models: &'a [(Lang, ModelRef)],
    precision: WeightPrecision,
    /// Translated with the text, so part of what the value holds.
    title: Option<&'a str>,
    version: u32,
}

/// An article's translation depends on its text (its id), a foreign title (translated with it),
/// the model of each of its languages, the beam size and the precision the models ran in. Not
/// on its file name: the value is stored without it and takes this run's ([`Cached`]).
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

/// What the cache keeps of an article's translation: the [`EnglishArticle`] less its article
/// (this run's is put on it, as it names the file) and less the text of each sentence that
/// is its source sentence as it is (English kept as it was: most sentences of most runs),
/// which the sentence's CRC-32 stands for. A re-run decodes a third of what the whole
/// `EnglishArticle` is. Entries written whole by earlier versions read as this too (their
/// article is skipped, their sentences have their text), so that no translation has to be
/// made again.
#[derive(Serialize, Deserialize)]
struct Cached {
    source_lang: Option<Lang>,
    translations: Vec<(Lang, String)>,
    sentences: Vec<CachedSentence>,
    #[serde(default)]
    english_title: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CachedSentence {
    /// `None`: the text of its source sentence, whose CRC-32 is `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<u32>,
    segment: usize,
    paragraph: usize,
    translated_by: Option<String>,
}

impl Cached {
    /// What the cache keeps of `english`, translated from sentences whose CRC-32s are
    /// `sources`.
    fn of(english: &EnglishArticle, sources: &[u32]) -> Cached {
        Cached {
            source_lang: english.source_lang.clone(),
            translations: english.translations.clone(),
            sentences: english
                .sentences
                .iter()
                .map(|s| {
                    let crc = crc32fast::hash(s.text.as_bytes());
                    let as_is = s.translated_by.is_none() && sources.get(s.segment) == Some(&crc);
                    CachedSentence {
                        text: (!as_is).then(|| s.text.clone()),
                        source: as_is.then_some(crc),
                        segment: s.segment,
                        paragraph: s.paragraph,
                        translated_by: s.translated_by.clone(),
                    }
                })
                .collect(),
            english_title: english.english_title.clone(),
        }
    }

    /// The sentences of `article`'s translation; `None` when a sentence left out is not
    /// `article`'s (then it is translated anew).
    fn sentences(self, article: &SegmentedArticle) -> Option<Translated> {
        let sentences = self
            .sentences
            .into_iter()
            .map(|s| {
                let text = match s.text {
                    Some(text) => text,
                    None => {
                        let source = &article.segments.get(s.segment)?.text;
                        if Some(crc32fast::hash(source.as_bytes())) != s.source {
                            return None;
                        }
                        source.clone()
                    }
                };
                Some(EnglishSentence {
                    text,
                    segment: s.segment,
                    paragraph: s.paragraph,
                    translated_by: s.translated_by,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Translated {
            source_lang: self.source_lang,
            translations: self.translations,
            sentences,
            english_title: self.english_title,
        })
    }
}

/// An [`EnglishArticle`] less its article.
struct Translated {
    source_lang: Option<Lang>,
    translations: Vec<(Lang, String)>,
    sentences: Vec<EnglishSentence>,
    english_title: Option<String>,
}

impl Translated {
    fn of(self, article: Article) -> EnglishArticle {
        EnglishArticle {
            article,
            source_lang: self.source_lang,
            translations: self.translations,
            sentences: self.sentences,
            english_title: self.english_title,
        }
    }
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
    key: CacheKey,
    step: Step,
}

/// An article's translation: from the cache, or to be made with `misses`, the models it needs.
enum Step {
    Cached(EnglishArticle),
    Translate {
        article: SegmentedArticle,
        misses: Vec<ModelRef>,
    },
}

impl TranslationPlan {
    /// Leaves out the articles whose cache miss needs a model that cannot be had, naming
    /// the model and why (`unavailable`: model id → the fetch error's text).
    pub(crate) fn without_unavailable(&mut self, unavailable: &BTreeMap<String, String>) {
        let entries = std::mem::take(&mut self.entries);
        for entry in entries {
            let unavailable_model = match &entry.step {
                Step::Translate { article, misses } => misses
                    .iter()
                    .find(|m| unavailable.contains_key(&m.id))
                    .map(|model| (article, model)),
                Step::Cached(_) => None,
            };
            match unavailable_model {
                Some((article, model)) => self.skipped.push(skip(
                    article,
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
    let looked_up: Vec<Result<(CacheKey, Option<Translated>), CacheError>> = wanted
        .par_iter()
        .map(|(article, models)| {
            let key = cache_key(article, models, beams, precision)?;
            let cached = cache
                .get::<Cached>(&key)
                .and_then(|cached| cached.sentences(article));
            Ok((key, cached))
        })
        .collect();
    for ((article, models), looked_up) in wanted.into_iter().zip(looked_up) {
        let (key, cached) = looked_up?;
        // The value names no file: this run's article (name and metadata) is put on it.
        let step = match cached {
            Some(translated) => Step::Cached(translated.of(article.detected.article)),
            None => {
                let misses: Vec<ModelRef> = models.into_iter().map(|(_, m)| m).collect();
                plan.needed.extend(misses.iter().cloned());
                Step::Translate { article, misses }
            }
        };
        plan.entries.push(PlannedArticle { key, step });
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
    for PlannedArticle { key, step } in plan.entries {
        between_articles()?;
        let done = match step {
            Step::Cached(done) => done,
            Step::Translate { article, .. } => {
                let origin = article.detected.article.origin.clone();
                let sources: Vec<u32> = article
                    .segments
                    .iter()
                    .map(|s| crc32fast::hash(s.text.as_bytes()))
                    .collect();
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
                cache.put_or_warn(&key, &Cached::of(&done, &sources));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::{ArticleMeta, DetectedArticle, DetectedParagraph, Segment};
    use crate::pipeline::segment::segment;

    /// An article with an English paragraph and a Korean one, and its translation as
    /// `translate_article` makes it (the Korean sentence by a model).
    fn article_and_translation() -> (SegmentedArticle, EnglishArticle) {
        let lang = |code: &str| Lang::parse(code).ok();
        let paragraphs = vec![
            "Hello there. Second \"quoted\".".to_string(),
            "안녕하세요.".to_string(),
        ];
        let mut article = Article::new(
            "mixed.txt".into(),
            ArticleMeta {
                title: Some("제목".into()),
                ..ArticleMeta::default()
            },
            paragraphs.clone(),
        );
        article.also_at = vec!["copy.txt".into()];
        let segmented = segment(DetectedArticle {
            article,
            lang: lang("en"),
            paragraphs: vec![
                DetectedParagraph {
                    text: paragraphs[0].clone(),
                    lang: lang("en"),
                },
                DetectedParagraph {
                    text: paragraphs[1].clone(),
                    lang: lang("ko"),
                },
            ],
        });
        let sentences = segmented
            .segments
            .iter()
            .enumerate()
            .map(|(i, s): (usize, &Segment)| {
                let korean = s.lang == lang("ko");
                EnglishSentence {
                    text: if korean {
                        "Hello.".into()
                    } else {
                        s.text.clone()
                    },
                    segment: i,
                    paragraph: s.paragraph,
                    translated_by: korean.then(|| "opus-mt-ko-en".to_string()),
                }
            })
            .collect();
        let english = EnglishArticle {
            article: segmented.detected.article.clone(),
            source_lang: lang("en"),
            translations: vec![(lang("ko").unwrap(), "opus-mt-ko-en".into())],
            sentences,
            english_title: Some("Title".into()),
        };
        (segmented, english)
    }

    fn crcs(article: &SegmentedArticle) -> Vec<u32> {
        article
            .segments
            .iter()
            .map(|s| crc32fast::hash(s.text.as_bytes()))
            .collect()
    }

    fn read_back(json: &[u8], article: &SegmentedArticle) -> Option<EnglishArticle> {
        let cached: Cached = serde_json::from_slice(json).unwrap();
        Some(
            cached
                .sentences(article)?
                .of(article.detected.article.clone()),
        )
    }

    #[test]
    fn a_cached_translation_is_the_translation_and_leaves_out_what_is_as_it_was() {
        let (article, english) = article_and_translation();
        let cached = Cached::of(&english, &crcs(&article));
        let kept: Vec<bool> = cached.sentences.iter().map(|s| s.text.is_some()).collect();
        assert_eq!(
            kept,
            vec![false, false, true],
            "only the translated text is kept"
        );
        let json = serde_json::to_vec(&cached).unwrap();
        assert!(!String::from_utf8_lossy(&json).contains("Hello there"));
        assert_eq!(read_back(&json, &article), Some(english));
    }

    #[test]
    fn a_translation_cached_whole_by_an_earlier_version_reads_the_same() {
        let (article, english) = article_and_translation();
        let mut stored = english.clone();
        stored.article.origin.clear();
        stored.article.also_at.clear();
        stored.article.meta = ArticleMeta::default();
        let json = serde_json::to_vec(&stored).unwrap();
        assert_eq!(read_back(&json, &article), Some(english));
    }

    #[test]
    fn a_left_out_sentence_that_is_not_the_source_sentence_is_a_miss() {
        let (article, english) = article_and_translation();
        let json = serde_json::to_vec(&Cached::of(&english, &crcs(&article))).unwrap();
        let mut resegmented = article.clone();
        resegmented.segments[1].text = "Second.".into();
        assert_eq!(read_back(&json, &resegmented), None, "another text");
        resegmented.segments.truncate(1);
        assert_eq!(read_back(&json, &resegmented), None, "no such sentence");
    }
}
