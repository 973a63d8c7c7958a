//! The model-free summarizer: TextRank over the English sentences of one article, with a
//! prior toward the lead (news puts the main facts first), picking sentences up to a target
//! length and returning them verbatim, in article order, each linked to its source sentence.
//!
//! Reference: Mihalcea & Tarau, "TextRank: Bringing Order into Texts" (2004), with TF-IDF
//! cosine as the sentence similarity and a personalised (position-weighted) teleport vector.

use crate::article::{EnglishArticle, Summary, SummaryMethod, SummarySentence};
use crate::pipeline::injection;

use super::{check_grounding, SummarizeError, Summarizer};
use crate::pipeline::text::{terms, Idf, TermVector};

/// Sentences with fewer words than this (datelines, bylines, "Photo: AP") are picked only
/// when the article has nothing longer.
const MIN_WORDS: usize = 6;
/// A candidate this similar to a sentence already picked would repeat it.
const REDUNDANT: f32 = 0.6;
const DAMPING: f32 = 0.85;
/// TextRank compares every pair of the sentences it ranks, so its cost grows with the square
/// of their number: only the first this many sentences of an article are ranked (news puts
/// its facts first, and the lead prior favours them anyway). An ordinary article has 10–60
/// sentences; at this cap a 5 MB text is summarized in well under a second, where ranking
/// all of its ~50,000 sentences needed tens of gigabytes.
pub(crate) const MAX_RANKED_SENTENCES: usize = 256;

/// Summarizes by choosing sentences of the article; needs no model.
#[derive(Clone, Debug)]
pub struct ExtractiveSummarizer {
    /// Stop adding sentences once the summary would exceed this many words (the first
    /// sentence is always taken).
    pub target_words: usize,
    /// At most this many sentences, and never more than half the article (rounded up).
    pub max_sentences: usize,
}

impl Default for ExtractiveSummarizer {
    fn default() -> Self {
        ExtractiveSummarizer {
            target_words: 90,
            max_sentences: 4,
        }
    }
}

impl Summarizer for ExtractiveSummarizer {
    fn summarize(&mut self, article: &EnglishArticle) -> Result<Summary, SummarizeError> {
        let sentences: Vec<String> = article
            .sentences
            .iter()
            .map(|s| s.text.trim().to_string())
            .collect();
        if sentences.iter().all(|s| s.is_empty()) {
            return Err(SummarizeError::EmptyArticle {
                origin: article.article.origin.clone(),
            });
        }
        if sentences.len() > MAX_RANKED_SENTENCES {
            log::info!(
                "the extractive summary of {} ranks its first {MAX_RANKED_SENTENCES} of {} sentences (the cap that keeps TextRank's cost bounded)",
                article.article.origin,
                sentences.len()
            );
        }
        // Sentences addressed to machines are not news: never picked. Only the ranked
        // window can be picked, so only it is read.
        let news: Vec<String> = sentences
            .iter()
            .take(MAX_RANKED_SENTENCES)
            .map(|s| {
                if injection::is_addressed_to_machines(s) {
                    String::new()
                } else {
                    s.clone()
                }
            })
            .collect();
        let picked = if news.iter().all(|s| s.is_empty()) {
            Vec::new()
        } else {
            self.pick(&news)
        };
        let mut summary = Summary {
            article: article.article.id.clone(),
            sentences: picked
                .into_iter()
                .map(|i| SummarySentence {
                    text: sentences[i].clone(),
                    support: vec![i],
                })
                .collect(),
            method: SummaryMethod::Extractive,
            ungrounded: Vec::new(),
        };
        // Verbatim sentences are grounded by construction; checking keeps that a fact, not a hope.
        check_grounding(&mut summary, article);
        Ok(summary)
    }

    fn method(&self) -> SummaryMethod {
        SummaryMethod::Extractive
    }
}

impl ExtractiveSummarizer {
    /// Indices of the chosen sentences, ascending; only the first [`MAX_RANKED_SENTENCES`]
    /// are candidates.
    pub fn pick(&self, sentences: &[String]) -> Vec<usize> {
        let sentences = &sentences[..sentences.len().min(MAX_RANKED_SENTENCES)];
        let n = sentences.len();
        let sentence_terms: Vec<Vec<String>> = sentences.iter().map(|s| terms(s)).collect();
        let idf = Idf::new(&sentence_terms);
        let vectors: Vec<TermVector> = sentence_terms.iter().map(|t| idf.vector(t)).collect();
        let scores = textrank(&vectors);
        let word_counts: Vec<usize> = sentences
            .iter()
            .map(|s| s.split_whitespace().count())
            .collect();

        let long_enough = |i: usize| word_counts[i] >= MIN_WORDS;
        let any_long = (0..n).any(long_enough);
        let mut order: Vec<usize> = (0..n)
            .filter(|&i| !sentences[i].is_empty() && (!any_long || long_enough(i)))
            .collect();
        // Highest score first; ties go to the earlier sentence.
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));

        let cap = self.max_sentences.max(1).min(n.div_ceil(2).max(1));
        let mut picked: Vec<usize> = Vec::new();
        let mut words = 0usize;
        for i in order {
            if picked.len() >= cap {
                break;
            }
            if !picked.is_empty() && words + word_counts[i] > self.target_words {
                continue;
            }
            if picked
                .iter()
                .any(|&p| vectors[p].cosine(&vectors[i]) > REDUNDANT)
            {
                continue;
            }
            words += word_counts[i];
            picked.push(i);
        }
        picked.sort_unstable();
        picked
    }
}

/// Personalised PageRank over the sentence-similarity graph. The teleport vector favours early
/// sentences (weight 1/(i+1)): the lead of a news article states the event.
pub(crate) fn textrank(vectors: &[TermVector]) -> Vec<f32> {
    let n = vectors.len();
    if n == 0 {
        return Vec::new();
    }
    let prior: Vec<f32> = {
        let raw: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 1.0)).collect();
        let total: f32 = raw.iter().sum();
        raw.into_iter().map(|p| p / total).collect()
    };
    let mut weights = vec![vec![0.0f32; n]; n];
    for i in 0..n {
        for j in (i + 1)..n {
            let w = vectors[i].cosine(&vectors[j]);
            weights[i][j] = w;
            weights[j][i] = w;
        }
    }
    let out_weight: Vec<f32> = weights.iter().map(|row| row.iter().sum()).collect();
    let mut scores = prior.clone();
    for _ in 0..100 {
        // Sentences with no similar sentence hand their score back through the prior.
        let dangling: f32 = (0..n)
            .filter(|&j| out_weight[j] == 0.0)
            .map(|j| scores[j])
            .sum();
        let next: Vec<f32> = (0..n)
            .map(|i| {
                let flow: f32 = (0..n)
                    .filter(|&j| out_weight[j] > 0.0)
                    .map(|j| weights[j][i] / out_weight[j] * scores[j])
                    .sum();
                (1.0 - DAMPING) * prior[i] + DAMPING * (flow + dangling * prior[i])
            })
            .collect();
        let change: f32 = next.iter().zip(&scores).map(|(a, b)| (a - b).abs()).sum();
        scores = next;
        if change < 1e-7 {
            break;
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_capped_sentences_are_ranked_so_a_huge_article_stays_cheap() {
        // 20,000 distinct sentences: the dense n x n graph would need 1.6 GB and minutes.
        let s: Vec<String> = (0..20_000)
            .map(|i| {
                format!(
                    "Sentence number {i} reports that the council met about topic {} again.",
                    i % 97
                )
            })
            .collect();
        let started = std::time::Instant::now();
        let picked = ExtractiveSummarizer::default().pick(&s);
        assert!(!picked.is_empty());
        assert!(
            picked.iter().all(|&i| i < MAX_RANKED_SENTENCES),
            "{picked:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    fn sentences(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn textrank_scores_sum_to_one_and_favour_central_sentences() {
        let s = sentences(&[
            "Heavy rain flooded the old town of Hoi An on Monday.",
            "The flooding in Hoi An forced hundreds of residents to leave the town.",
            "A local football club announced a new coach.",
            "Residents of Hoi An said the flooding was the worst in years.",
        ]);
        let idf = Idf::new(&s.iter().map(|x| terms(x)).collect::<Vec<_>>());
        let v: Vec<TermVector> = s.iter().map(|x| idf.vector(&terms(x))).collect();
        let scores = textrank(&v);
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(scores[1] > scores[2] && scores[3] > scores[2]);
    }

    #[test]
    fn picks_within_budget_in_article_order_without_repeats() {
        let s = sentences(&[
            "Heavy rain flooded the old town of Hoi An on Monday, officials said.",
            "Heavy rain flooded the old town of Hoi An on Monday, police said.",
            "Hundreds of residents of Hoi An left their homes as the water rose.",
            "By AP.",
            "The town is a UNESCO World Heritage site visited by millions of tourists.",
            "Officials in Hoi An expect the water to recede by Thursday.",
        ]);
        let picked = ExtractiveSummarizer {
            target_words: 30,
            max_sentences: 3,
        }
        .pick(&s);
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "{picked:?}");
        assert!(picked.contains(&0), "the lead is kept: {picked:?}");
        assert!(
            !picked.contains(&1),
            "a near-copy of the lead is redundant: {picked:?}"
        );
        assert!(
            !picked.contains(&3),
            "a byline is not a summary sentence: {picked:?}"
        );
        let words: usize = picked
            .iter()
            .map(|&i| s[i].split_whitespace().count())
            .sum();
        assert!(words <= 30, "{words} words");
    }
}
