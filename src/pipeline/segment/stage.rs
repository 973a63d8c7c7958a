//! The detect+segment stage of a run: its cache key, version and step. Cheap, but cached
//! like the rest so that a resumed run sees the same sentences as the first.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::article::{
    Article, DetectedArticle, DetectedParagraph, Lang, Segment, SegmentedArticle, SkippedInput,
};
use crate::cache::{CacheError, CacheKey, StageCache};
use crate::pipeline::{detect, segment};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "segment";

/// Bumped when detection or segmentation changes what it produces, or the cached value
/// ([`Cached`]) changes. 2: languages and spans only, not the text.
pub(crate) const CACHE_VERSION: u32 = 2;

/// An article's languages and sentences depend on its text (its id) and on the language it
/// was said to be in (`lang:`, `--lang`), if any.
pub(crate) fn cache_key(article: &Article) -> Result<CacheKey, CacheError> {
    CacheKey::new(
        STAGE,
        article.id.as_str(),
        &(CACHE_VERSION, &article.meta.lang),
    )
}

/// What the cache keeps of an article's detection and segmentation: its languages and its
/// sentences' places, not its text, which the article has (its id is the text's hash): a
/// re-run reads and decodes a third of what the whole [`SegmentedArticle`] is.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Cached {
    lang: Option<Lang>,
    /// Each paragraph's language.
    paragraphs: Vec<Option<Lang>>,
    /// Each sentence: its paragraph and byte range in it.
    segments: Vec<(usize, usize, usize)>,
    /// The sentences whose language is not their paragraph's: index and language.
    other_langs: Vec<(usize, Option<Lang>)>,
}

impl Cached {
    fn of(item: &SegmentedArticle) -> Cached {
        let paragraphs: Vec<Option<Lang>> = item
            .detected
            .paragraphs
            .iter()
            .map(|p| p.lang.clone())
            .collect();
        Cached {
            lang: item.detected.lang.clone(),
            segments: item
                .segments
                .iter()
                .map(|s| (s.paragraph, s.span.start, s.span.end))
                .collect(),
            other_langs: item
                .segments
                .iter()
                .enumerate()
                .filter(|(_, s)| paragraphs.get(s.paragraph) != Some(&s.lang))
                .map(|(i, s)| (i, s.lang.clone()))
                .collect(),
            paragraphs,
        }
    }

    /// `article`'s detection and segmentation as this says (all but the article itself);
    /// `None` when this does not fit its text (then it is detected and segmented anew).
    fn apply_to(self, article: &Article) -> Option<Detected> {
        if self.paragraphs.len() != article.paragraphs.len() {
            return None;
        }
        let mut segments = Vec::with_capacity(self.segments.len());
        for (paragraph, start, end) in self.segments {
            let text = article.paragraphs.get(paragraph)?.get(start..end)?;
            segments.push(Segment {
                paragraph,
                span: start..end,
                text: text.to_string(),
                lang: self.paragraphs[paragraph].clone(),
            });
        }
        for (index, lang) in self.other_langs {
            segments.get_mut(index)?.lang = lang;
        }
        let paragraphs = article
            .paragraphs
            .iter()
            .zip(self.paragraphs)
            .map(|(text, lang)| DetectedParagraph {
                text: text.clone(),
                lang,
            })
            .collect();
        Some(Detected {
            lang: self.lang,
            paragraphs,
            segments,
        })
    }
}

/// A [`SegmentedArticle`] less its article.
struct Detected {
    lang: Option<Lang>,
    paragraphs: Vec<DetectedParagraph>,
    segments: Vec<Segment>,
}

impl Detected {
    fn of(self, article: Article) -> SegmentedArticle {
        SegmentedArticle {
            detected: DetectedArticle {
                article,
                lang: self.lang,
                paragraphs: self.paragraphs,
            },
            segments: self.segments,
        }
    }
}

/// Detects and segments every article; one whose language cannot be identified is skipped
/// (and named), not fatal. `between_articles` runs before each article and after each
/// computation (the run's interrupt check: detect and segment stop early on a stop request,
/// and a cut-short result is not cached). The cache is looked up for all articles first, in
/// parallel.
pub(crate) fn detect_and_segment<E: From<CacheError>>(
    articles: Vec<Article>,
    cache: &StageCache,
    mut between_articles: impl FnMut() -> Result<(), E>,
) -> Result<(Vec<SegmentedArticle>, Vec<SkippedInput>), E> {
    let looked_up: Vec<Result<(CacheKey, Option<Detected>), CacheError>> = articles
        .par_iter()
        .map(|article| {
            let key = cache_key(article)?;
            let cached = cache
                .get::<Cached>(&key)
                .and_then(|cached| cached.apply_to(article));
            Ok((key, cached))
        })
        .collect();
    let mut segmented = Vec::new();
    let mut skipped = Vec::new();
    for (article, looked_up) in articles.into_iter().zip(looked_up) {
        between_articles()?;
        let (key, cached) = looked_up?;
        let item = match cached {
            Some(detected) => detected.of(article),
            None => {
                let item = segment::segment(detect::detect(article));
                // Detect and segment stop early on a stop request: a cut-short result is
                // not cached.
                between_articles()?;
                if let Err(e) = cache.put(&key, &Cached::of(&item)) {
                    log::warn!("{e}; the next run will redo this article's segmentation");
                }
                item
            }
        };
        match item.detected.lang {
            Some(_) => segmented.push(item),
            None => {
                let reason = "its language could not be identified with confidence; give it with --lang CODE or a `lang:` line in its front matter".to_string();
                log::warn!("skipped {}: {reason}", item.detected.article.origin);
                skipped.push(SkippedInput {
                    path: item.detected.article.origin.clone().into(),
                    reason,
                });
            }
        }
    }
    cache.flush();
    Ok((segmented, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::ArticleMeta;

    fn article(origin: &str, lang: Option<&str>, paragraphs: &[&str]) -> Article {
        let mut article = Article::new(
            origin.to_string(),
            ArticleMeta {
                title: Some("A title".into()),
                lang: lang.map(|l| Lang::parse(l).unwrap()),
                ..ArticleMeta::default()
            },
            paragraphs.iter().map(|p| p.to_string()).collect(),
        );
        article.also_at = vec!["copy.txt".into()];
        article
    }

    fn articles() -> Vec<Article> {
        vec![
            article(
                "en.txt",
                None,
                &[
                    "Floods hit Vessa on Monday. Dr. Smith said 12 people died.",
                    "The river rose 4 metres.\nIt fell on Tuesday.",
                ],
            ),
            article(
                "mixed.txt",
                None,
                &[
                    "The minister said: 지하철 개통은 도시의 새로운 시작입니다. That was all she said.",
                    "The line opens on Monday.",
                ],
            ),
            article(
                "de.txt",
                Some("de"),
                &["Am 9. Januar stieg der Fluss. Die Stadt ist überflutet."],
            ),
            article("short.txt", None, &["Ok."]),
        ]
    }

    #[test]
    fn a_cached_article_is_the_article_detected_and_segmented() {
        let mut other_langs = 0;
        for article in articles() {
            let item = segment::segment(detect::detect(article.clone()));
            let cached = Cached::of(&item);
            other_langs += cached.other_langs.len();
            let json = serde_json::to_vec(&cached).unwrap();
            let back: Cached = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, cached);
            let rebuilt = back.apply_to(&article).unwrap().of(article.clone());
            assert_eq!(rebuilt, item, "{}", article.origin);
        }
        assert!(
            other_langs > 0,
            "a sentence in another language than its paragraph's"
        );
    }

    #[test]
    fn a_cached_value_that_does_not_fit_the_text_is_not_used() {
        let article = articles().remove(0);
        let item = segment::segment(detect::detect(article.clone()));
        let mut fewer = Cached::of(&item);
        fewer.paragraphs.pop();
        assert!(
            fewer.apply_to(&article).is_none(),
            "another number of paragraphs"
        );
        let mut past_the_end = Cached::of(&item);
        past_the_end.segments[0].2 = 10_000;
        assert!(
            past_the_end.apply_to(&article).is_none(),
            "a span past the end"
        );
        let mut bad_index = Cached::of(&item);
        bad_index.other_langs.push((999, None));
        assert!(
            bad_index.apply_to(&article).is_none(),
            "a sentence that is not there"
        );
    }

    #[test]
    fn a_rerun_is_served_from_the_cache_and_gives_the_same_articles() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let cache = StageCache::open(dir.path()).unwrap();
            let (segmented, _) =
                detect_and_segment::<CacheError>(articles(), &cache, || Ok(())).unwrap();
            assert_eq!(cache.counters(STAGE).writes, 4);
            segmented
        };
        let cache = StageCache::open(dir.path()).unwrap();
        let (again, _) = detect_and_segment::<CacheError>(articles(), &cache, || Ok(())).unwrap();
        assert_eq!(cache.counters(STAGE).hits, 4);
        assert_eq!(again, first);
    }
}
