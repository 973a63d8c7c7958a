//! Grouping sources into stories: agglomerative clustering (average linkage) over pairwise
//! similarity of their English text, merging while the closest two groups are at least as
//! similar as a threshold.
//!
//! Similarity is lexical by default — TF-IDF cosine over content words, with names and
//! numbers added as extra terms, since two reports of one event share the places, people and
//! figures even when translation varies their wording. With an `Embedder` it is the cosine of
//! sentence embeddings instead: `polybrief run` passes the catalog's embedder
//! (`models::embedder::SentenceEmbedder`, all-MiniLM-L6-v2) when it is cached or can be
//! fetched, and groups lexically otherwise.

use serde::Serialize;

use crate::pipeline::facts::{scan, FactKey, FactKind, Unit};
use crate::pipeline::text::terms;

use super::{SourceText, SynthesisOptions};
use crate::models::Embedder;

/// How sources were compared when grouping them into stories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroupingMethod {
    /// TF-IDF cosine over words, names and numbers.
    Lexical,
    /// Cosine of embeddings from this model.
    Embeddings { model: String },
}

impl GroupingMethod {
    /// For the brief: "grouped by word overlap (no embedding model)".
    pub fn describe(&self) -> String {
        match self {
            GroupingMethod::Lexical => {
                "word, name and number overlap (TF-IDF; no embedding model)".into()
            }
            GroupingMethod::Embeddings { model } => format!("embedding similarity ({model})"),
        }
    }
}

/// Groups (indices into the docs), the similarity matrix they were made from, and how.
pub(crate) struct Grouping {
    pub groups: Vec<Vec<usize>>,
    pub similarity: Similarity,
    pub method: GroupingMethod,
    pub note: Option<String>,
}

/// A symmetric matrix of pairwise similarities, 1 on the diagonal. Lexical grouping compares
/// only the pairs that share a distinctive term ([`story_similarity`]), a few per source, so
/// it is kept sparse: at 3,000 sources a dense matrix was 36 MB to allocate, zero and scan
/// on every run for some 10,000 nonzero pairs. Embeddings compare every pair: dense.
pub(crate) enum Similarity {
    Dense(Vec<Vec<f32>>),
    /// Per row, the nonzero entries off the diagonal, by ascending column; the rest are 0.
    Sparse(Vec<Vec<(usize, f32)>>),
}

impl Similarity {
    /// How many items are compared.
    pub(crate) fn len(&self) -> usize {
        match self {
            Similarity::Dense(rows) => rows.len(),
            Similarity::Sparse(rows) => rows.len(),
        }
    }

    /// The similarity of items `i` and `j`.
    pub(crate) fn get(&self, i: usize, j: usize) -> f32 {
        match self {
            Similarity::Dense(rows) => rows[i][j],
            Similarity::Sparse(_) if i == j => 1.0,
            Similarity::Sparse(rows) => rows[i]
                .binary_search_by_key(&j, |&(k, _)| k)
                .map_or(0.0, |at| rows[i][at].1),
        }
    }

    /// The pairs `(j, s)` with `j > i` and `s >= threshold`.
    fn above(&self, i: usize, threshold: f32) -> Vec<usize> {
        match self {
            Similarity::Dense(rows) => rows[i]
                .iter()
                .enumerate()
                .skip(i + 1)
                .filter(|(_, &s)| s >= threshold)
                .map(|(j, _)| j)
                .collect(),
            Similarity::Sparse(rows) => rows[i]
                .iter()
                .filter(|&&(j, s)| j > i && s >= threshold)
                .map(|&(j, _)| j)
                .collect(),
        }
    }
}

/// Each text's grouping terms ([`grouping_terms`]): computed here, or read from the stage
/// cache (`terms::CachedTerms`), since grouping reads every source on every run.
pub(crate) trait TermSource {
    fn terms(&mut self, texts: &[&str]) -> Vec<Terms>;
}

/// Computes every text's terms.
pub(crate) struct ComputedTerms;

impl TermSource for ComputedTerms {
    fn terms(&mut self, texts: &[&str]) -> Vec<Terms> {
        texts.iter().map(|t| grouping_terms(t).into()).collect()
    }
}

/// A text's grouping terms, in order, kept in one string: grouping reads every source's
/// terms on every run, and a string per term (some 150,000 over 3,000 articles) was most of
/// reading them back from the cache. Serialized as the list of terms it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Terms {
    text: String,
    /// Where each term ends in `text`.
    ends: Vec<usize>,
}

impl Terms {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text[start..end])
    }

    fn push(&mut self, term: &str) {
        self.text.push_str(term);
        self.ends.push(self.text.len());
    }
}

impl From<Vec<String>> for Terms {
    fn from(terms: Vec<String>) -> Terms {
        let mut all = Terms {
            text: String::with_capacity(terms.iter().map(String::len).sum()),
            ends: Vec::with_capacity(terms.len()),
        };
        for term in &terms {
            all.push(term);
        }
        all
    }
}

impl serde::Serialize for Terms {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Terms {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Terms, D::Error> {
        use serde::de::{DeserializeSeed, SeqAccess, Visitor};
        use std::fmt;

        /// Reads one term into the string of all.
        struct Term<'t>(&'t mut Terms);
        impl<'de> DeserializeSeed<'de> for Term<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_str(self)
            }
        }
        impl Visitor<'_> for Term<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a term")
            }
            fn visit_str<E: serde::de::Error>(self, term: &str) -> Result<(), E> {
                self.0.push(term);
                Ok(())
            }
        }

        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Terms;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of terms")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Terms, A::Error> {
                let mut terms = Terms::default();
                while seq.next_element_seed(Term(&mut terms))?.is_some() {}
                Ok(terms)
            }
        }
        deserializer.deserialize_seq(List)
    }
}

/// Sentences of each source given to the embedder: the lead carries the event.
const EMBED_SENTENCES: usize = 8;

pub(crate) fn group_sources(
    docs: &[SourceText<'_>],
    embedder: Option<&mut dyn Embedder>,
    terms: &mut dyn TermSource,
    options: &SynthesisOptions,
) -> Grouping {
    let mut note = None;
    if let Some(embedder) = embedder {
        let texts: Vec<String> = docs
            .iter()
            .map(|d| {
                d.article
                    .sentences
                    .iter()
                    .take(EMBED_SENTENCES)
                    .map(|s| s.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        match embedder.embed(&texts) {
            Ok(vectors) if vectors.len() == docs.len() && same_length(&vectors) => {
                let similarity = Similarity::Dense(embedding_similarity(&vectors));
                return Grouping {
                    groups: agglomerate(&similarity, options.embedding_threshold),
                    similarity,
                    method: GroupingMethod::Embeddings {
                        model: embedder.model_name(),
                    },
                    note: None,
                };
            }
            Ok(vectors) => {
                let problem = format!(
                    "it returned {} vectors of unequal or wrong shape for {} texts",
                    vectors.len(),
                    docs.len()
                );
                log::warn!(
                    "embedding model {} failed: {problem}",
                    embedder.model_name()
                );
                note = Some(format!(
                    "The embedding model {} failed ({problem}); stories were grouped by word overlap instead.",
                    embedder.model_name()
                ));
            }
            Err(err) => {
                log::warn!("embedding model {} failed: {err}", embedder.model_name());
                note = Some(format!(
                    "The embedding model {} failed ({err}); stories were grouped by word overlap instead.",
                    embedder.model_name()
                ));
            }
        }
    }
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    let similarity = similarity_of_terms(&terms.terms(&texts));
    Grouping {
        groups: agglomerate(&similarity, options.lexical_threshold),
        similarity,
        method: GroupingMethod::Lexical,
        note,
    }
}

fn same_length(vectors: &[Vec<f32>]) -> bool {
    vectors
        .first()
        .is_none_or(|first| !first.is_empty() && vectors.iter().all(|v| v.len() == first.len()))
}

/// The terms a text is compared by: content words, plus each name (twice: a shared name is
/// strong evidence of a shared event) and each number of ten or more as a term of its own.
pub(crate) fn grouping_terms(text: &str) -> Vec<String> {
    let mut out = terms(text);
    for span in scan(text) {
        match (span.fact.kind, span.unit) {
            (FactKind::Name, _) => {
                out.push(format!("name:{}", span.fact.key));
                out.push(format!("name:{}", span.fact.key));
            }
            (FactKind::Number, Unit::Count | Unit::Money | Unit::Percent) => {
                let small = match &span.fact.key {
                    FactKey::Number(v) | FactKey::Percent(v) => {
                        v.parse::<f64>().is_ok_and(|v| v < 10.0)
                    }
                    _ => false,
                };
                if !small {
                    out.push(format!("num:{}", span.fact.key));
                }
            }
            _ => {}
        }
    }
    out
}

/// Documents' TF-IDF vectors (`text::Idf`, `text::TermVector`: smoothed idf over these
/// documents, sublinear term frequency), with their terms interned as ids numbered in term
/// order. Each vector then sums and compares its terms in the order a `TermVector` does, so
/// it gives the very same floats, without a string comparison or copy per term: grouping
/// builds these for every source on every run.
struct TermIndex {
    /// Per document, its distinct terms' ids, ascending, with their weights.
    weights: Vec<Vec<(u32, f32)>>,
    /// Per document, the norm of its weights.
    norms: Vec<f32>,
    /// Per term id, how many documents use it.
    df: Vec<u32>,
}

impl TermIndex {
    fn new(docs: &[Terms]) -> TermIndex {
        // Seeded (article words are untrusted input) but cheaper than SipHash on short words.
        let mut first_seen: std::collections::HashMap<&str, u32, foldhash::fast::RandomState> =
            Default::default();
        let mut vocabulary: Vec<&str> = Vec::new();
        let seen: Vec<Vec<u32>> = docs
            .iter()
            .map(|terms| {
                terms
                    .iter()
                    .map(|t| {
                        *first_seen.entry(t).or_insert_with(|| {
                            vocabulary.push(t);
                            (vocabulary.len() - 1) as u32
                        })
                    })
                    .collect()
            })
            .collect();
        // Ids in term order.
        let mut order: Vec<u32> = (0..vocabulary.len() as u32).collect();
        order.sort_unstable_by_key(|&k| vocabulary[k as usize]);
        let mut rank = vec![0u32; vocabulary.len()];
        for (r, &k) in order.iter().enumerate() {
            rank[k as usize] = r as u32;
        }
        let mut df = vec![0u32; vocabulary.len()];
        let counts: Vec<Vec<(u32, f32)>> = seen
            .into_iter()
            .map(|ids| {
                let mut ids: Vec<u32> = ids.into_iter().map(|k| rank[k as usize]).collect();
                ids.sort_unstable();
                let mut counted: Vec<(u32, f32)> = Vec::new();
                for id in ids {
                    match counted.last_mut() {
                        Some((last, f)) if *last == id => *f += 1.0,
                        _ => {
                            counted.push((id, 1.0));
                            df[id as usize] += 1;
                        }
                    }
                }
                counted
            })
            .collect();
        let n = docs.len() as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| ((n + 1.0) / (d as f32 + 1.0)).ln() + 1.0)
            .collect();
        let weights: Vec<Vec<(u32, f32)>> = counts
            .into_iter()
            .map(|counted| {
                counted
                    .into_iter()
                    .map(|(id, f)| (id, (1.0 + f.ln()) * idf[id as usize]))
                    .filter(|&(_, w)| w > 0.0)
                    .collect()
            })
            .collect();
        let norms = weights
            .iter()
            .map(|w| w.iter().map(|(_, w)| w * w).sum::<f32>().sqrt())
            .collect();
        TermIndex { weights, norms, df }
    }

    /// Cosine similarity of documents `i` and `j` in [0, 1], as `TermVector::cosine`.
    fn cosine(&self, i: usize, j: usize) -> f32 {
        let (a, b) = (&self.weights[i], &self.weights[j]);
        if self.norms[i] == 0.0 || self.norms[j] == 0.0 {
            return 0.0;
        }
        let (mut x, mut y, mut dot) = (0, 0, 0.0f32);
        while x < a.len() && y < b.len() {
            match a[x].0.cmp(&b[y].0) {
                std::cmp::Ordering::Less => x += 1,
                std::cmp::Ordering::Greater => y += 1,
                std::cmp::Ordering::Equal => {
                    dot += a[x].1 * b[y].1;
                    x += 1;
                    y += 1;
                }
            }
        }
        (dot / (self.norms[i] * self.norms[j])).clamp(0.0, 1.0)
    }
}

/// Pairwise TF-IDF cosine similarity of texts (idf over these texts).
#[allow(clippy::needless_range_loop)] // a symmetric matrix is clearest by index
pub(crate) fn lexical_similarity(texts: &[&str]) -> Vec<Vec<f32>> {
    let docs: Vec<Terms> = texts.iter().map(|t| grouping_terms(t).into()).collect();
    let index = TermIndex::new(&docs);
    let n = docs.len();
    let mut sim = vec![vec![0.0; n]; n];
    for i in 0..n {
        sim[i][i] = 1.0;
        for j in (i + 1)..n {
            let s = index.cosine(i, j);
            sim[i][j] = s;
            sim[j][i] = s;
        }
    }
    sim
}

/// At most this many sources (or 1 in 100 of them, in a larger run) share a term that is
/// evidence of one event.
const DISTINCTIVE_DOCS: usize = 5;

/// The share of a run's sources that may share a term still counted as evidence of one event.
const DISTINCTIVE_SHARE: usize = 100;

/// [`lexical_similarity`] for grouping: two sources that share no distinctive term — one
/// that at most `max(5, n / 100)` of the n sources use: a place, a person, a figure, a rare
/// word — are not compared and stay at 0, whatever their common words. Wire copy tells
/// different storms in the same sentences ("cutting power to … homes", "crews worked through
/// the night"), which alone lifted two towns' storms over the threshold and merged a
/// thousand events into a few stories; two reports of one event always share its place or
/// its figures. Only pairs that share a distinctive term are compared, found through an
/// index of those terms: at most n · max(5, n / 100) comparisons instead of n².
#[cfg(test)]
pub(crate) fn story_similarity(texts: &[&str]) -> Similarity {
    let docs: Vec<Terms> = texts.iter().map(|t| grouping_terms(t).into()).collect();
    similarity_of_terms(&docs)
}

/// [`story_similarity`] of documents given as their grouping terms.
fn similarity_of_terms(docs: &[Terms]) -> Similarity {
    let index = TermIndex::new(docs);
    let n = docs.len();
    let cap = DISTINCTIVE_DOCS.max(n / DISTINCTIVE_SHARE);
    // Per distinctive term, the documents using it, in order.
    let mut postings: Vec<Vec<usize>> = vec![Vec::new(); index.df.len()];
    for (i, weights) in index.weights.iter().enumerate() {
        for &(id, _) in weights {
            if index.df[id as usize] as usize <= cap {
                postings[id as usize].push(i);
            }
        }
    }
    let mut rows: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    // compared[j] == i: the pair (i, j) is done.
    let mut compared = vec![usize::MAX; n];
    for i in 0..n {
        for &(id, _) in &index.weights[i] {
            for &j in postings[id as usize].iter().filter(|&&j| j > i) {
                if compared[j] == i {
                    continue;
                }
                compared[j] = i;
                let s = index.cosine(i, j);
                if s != 0.0 {
                    rows[i].push((j, s));
                    rows[j].push((i, s));
                }
            }
        }
    }
    for row in &mut rows {
        row.sort_unstable_by_key(|&(j, _)| j);
    }
    Similarity::Sparse(rows)
}

/// Pairwise cosine similarity of embedding vectors (0 for a zero vector).
pub(crate) fn embedding_similarity(vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let norms: Vec<f32> = vectors
        .iter()
        .map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    let n = vectors.len();
    let mut sim = vec![vec![0.0; n]; n];
    for i in 0..n {
        sim[i][i] = 1.0;
        for j in (i + 1)..n {
            let dot: f32 = vectors[i].iter().zip(&vectors[j]).map(|(a, b)| a * b).sum();
            let s = if norms[i] == 0.0 || norms[j] == 0.0 {
                0.0
            } else {
                dot / (norms[i] * norms[j])
            };
            sim[i][j] = s;
            sim[j][i] = s;
        }
    }
    sim
}

/// Average-linkage agglomerative clustering: repeatedly merges the two groups with the highest
/// mean pairwise similarity while it is at least `threshold`; ties merge the earliest pair.
/// Returns groups with ascending members, largest group first (ties: earliest member first).
///
/// Run per connected component of the graph whose edges are the pairs at or above the
/// threshold, which gives exactly the same groups: two groups can only merge when their mean
/// similarity reaches the threshold, so some pair between them does; and merges in one
/// component never change the sums of another. The cubic search then runs over each
/// component (a story's few sources) instead of over all n sources: 3,000 articles went from
/// most of a run's time to a fraction of a second (see scripts/bench/run_delta.sh).
pub(crate) fn agglomerate(similarity: &Similarity, threshold: f32) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    for component in components_at(similarity, threshold) {
        let sub: Vec<Vec<f32>> = component
            .iter()
            .map(|&i| component.iter().map(|&j| similarity.get(i, j)).collect())
            .collect();
        for group in agglomerate_dense(&sub, threshold) {
            groups.push(group.into_iter().map(|k| component[k]).collect::<Vec<_>>());
        }
    }
    groups.sort_by(|x, y| y.len().cmp(&x.len()).then(x[0].cmp(&y[0])));
    groups
}

/// Connected components of the graph of pairs with similarity ≥ `threshold`, each with
/// ascending members, in order of their first member.
fn components_at(similarity: &Similarity, threshold: f32) -> Vec<Vec<usize>> {
    let n = similarity.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for j in similarity.above(i, threshold) {
            let (a, b) = (root(&mut parent, i), root(&mut parent, j));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        let r = root(&mut parent, i);
        by_root.entry(r).or_default().push(i);
    }
    by_root.into_values().collect()
}

/// [`agglomerate`] over one dense matrix: the textbook O(n³) search.
fn agglomerate_dense(similarity: &[Vec<f32>], threshold: f32) -> Vec<Vec<usize>> {
    let n = similarity.len();
    let mut groups: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    // sums[a][b]: total similarity between members of groups a and b.
    let mut sums: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(similarity[i][j])).collect())
        .collect();
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for a in 0..groups.len() {
            for b in (a + 1)..groups.len() {
                let mean = sums[a][b] / (groups[a].len() * groups[b].len()) as f64;
                if best.is_none_or(|(m, _, _)| mean > m) {
                    best = Some((mean, a, b));
                }
            }
        }
        let Some((mean, a, b)) = best else { break };
        if mean < f64::from(threshold) {
            break;
        }
        let moved = groups.remove(b);
        groups[a].extend(moved);
        groups[a].sort_unstable();
        let row_b = sums.remove(b);
        for row in sums.iter_mut() {
            let vb = row.remove(b);
            row[a] += vb;
        }
        for (k, v) in row_b.into_iter().enumerate().filter(|(k, _)| *k != b) {
            let k = if k > b { k - 1 } else { k };
            if k != a {
                sums[a][k] += v;
            }
        }
    }
    groups.sort_by(|x, y| y.len().cmp(&x.len()).then(x[0].cmp(&y[0])));
    groups
}

/// The story's title: the headline of its most central source written in English, or else the
/// opening of the most central source's summary (headlines of translated sources are in
/// their original language). `group` indexes `similarity`; `members` are in the same order.
pub(crate) fn story_title(
    members: &[&SourceText<'_>],
    similarity: &Similarity,
    group: &[usize],
) -> String {
    let centrality = |k: usize| -> f32 { group.iter().map(|&j| similarity.get(group[k], j)).sum() };
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|&a, &b| centrality(b).total_cmp(&centrality(a)).then(a.cmp(&b)));

    let english_title = order.iter().find_map(|&k| {
        let doc = members[k];
        let english = doc
            .article
            .source_lang
            .as_ref()
            .is_none_or(|l| l.is_english())
            && !doc.article.is_translated();
        doc.article
            .article
            .meta
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| english && !t.is_empty())
    });
    if let Some(title) = english_title {
        return shorten(title);
    }
    for &k in &order {
        let doc = members[k];
        let first = doc
            .summary
            .sentences
            .first()
            .map(|s| s.text.as_str())
            .or_else(|| doc.article.sentences.first().map(|s| s.text.as_str()));
        if let Some(text) = first.map(str::trim).filter(|t| !t.is_empty()) {
            return shorten(text);
        }
    }
    "Untitled story".into()
}

/// At most 14 words, on one line, without a final full stop; "…" marks a cut.
fn shorten(text: &str) -> String {
    const MAX_WORDS: usize = 14;
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= MAX_WORDS {
        return words.join(" ").trim_end_matches('.').to_string();
    }
    let cut = words[..MAX_WORDS].join(" ");
    format!(
        "{}\u{2026}",
        cut.trim_end_matches([',', ';', ':', '.', ' '])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_written_and_read_as_the_list_of_strings_they_are() {
        let list: Vec<String> = vec![
            "flood".into(),
            "name:Quang \"Nam\"".into(),
            "num:12".into(),
            "é漢\n\\".into(),
            String::new(),
        ];
        let terms = Terms::from(list.clone());
        assert_eq!(terms.iter().collect::<Vec<_>>(), list);
        let json = serde_json::to_string(&terms).unwrap();
        assert_eq!(json, serde_json::to_string(&list).unwrap());
        let back: Terms = serde_json::from_str(&json).unwrap();
        assert_eq!(back, terms);
        let none: Terms = serde_json::from_str("[]").unwrap();
        assert_eq!(none.iter().count(), 0);
        assert!(serde_json::from_str::<Terms>("[1]").is_err());
    }

    /// The matrix as [`Similarity::Sparse`], its zeros left out.
    fn sparse(dense: &[Vec<f32>]) -> Similarity {
        Similarity::Sparse(
            dense
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    row.iter()
                        .enumerate()
                        .filter(|&(j, &s)| j != i && s != 0.0)
                        .map(|(j, &s)| (j, s))
                        .collect()
                })
                .collect(),
        )
    }

    #[test]
    fn interned_vectors_give_the_very_floats_of_text_term_vectors() {
        use crate::pipeline::text::Idf;
        let texts = [
            "Floods in central Vietnam killed 12 people in Quang Nam province on Monday.",
            "At least 12 people died as floods hit Quang Nam in central Vietnam; floods again.",
            "The German government plans 1 million new jobs in renewable energy.",
            "",
            "Berlin plans 1 million jobs in renewable energy, the government said.",
        ];
        let docs: Vec<Vec<String>> = texts.iter().map(|t| grouping_terms(t)).collect();
        let idf = Idf::new(&docs);
        let vectors: Vec<_> = docs.iter().map(|d| idf.vector(d)).collect();
        let terms: Vec<Terms> = docs.iter().map(|d| d.clone().into()).collect();
        let index = TermIndex::new(&terms);
        for i in 0..docs.len() {
            for j in 0..docs.len() {
                assert_eq!(
                    index.cosine(i, j).to_bits(),
                    vectors[i].cosine(&vectors[j]).to_bits(),
                    "({i}, {j})"
                );
            }
        }
    }

    #[test]
    fn the_sparse_grouping_matrix_holds_what_the_dense_one_would() {
        let texts = [
            "Floods in central Vietnam killed 12 people in Quang Nam province on Monday.",
            "At least 12 people died as floods hit Quang Nam in central Vietnam.",
            "The German government plans 1 million new jobs in renewable energy.",
            "Berlin plans 1 million jobs in renewable energy, the government said.",
        ];
        let sim = story_similarity(&texts);
        assert!(matches!(sim, Similarity::Sparse(_)));
        let dense = lexical_similarity(&texts);
        for i in 0..texts.len() {
            for j in 0..texts.len() {
                let s = sim.get(i, j);
                assert!(s == dense[i][j] || s == 0.0, "({i}, {j}): {s} {dense:?}");
            }
            assert_eq!(sim.get(i, i), 1.0);
        }
        assert!(sim.get(0, 1) > 0.3 && sim.get(2, 3) > 0.3, "{dense:?}");
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // a symmetric matrix is clearest by index
    fn per_component_clustering_gives_the_same_groups_as_the_whole_matrix() {
        // A small deterministic generator: clusters of similar items, noise between them.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f32 / (1u64 << 31) as f32
        };
        for n in [1, 2, 7, 30, 61] {
            let mut sim = vec![vec![0.0f32; n]; n];
            for i in 0..n {
                sim[i][i] = 1.0;
                for j in (i + 1)..n {
                    let same_cluster = i / 4 == j / 4;
                    let s = if same_cluster {
                        0.3 + 0.6 * next()
                    } else {
                        0.35 * next()
                    };
                    sim[i][j] = s;
                    sim[j][i] = s;
                }
            }
            for threshold in [0.2, 0.3, 0.5] {
                let mut whole = agglomerate_dense(&sim, threshold);
                whole.sort_by(|x, y| y.len().cmp(&x.len()).then(x[0].cmp(&y[0])));
                assert_eq!(
                    agglomerate(&Similarity::Dense(sim.clone()), threshold),
                    whole,
                    "n {n}, threshold {threshold}"
                );
                assert_eq!(
                    agglomerate(&sparse(&sim), threshold),
                    whole,
                    "sparse, n {n}, threshold {threshold}"
                );
            }
        }
    }

    #[test]
    fn agglomerate_merges_above_threshold_largest_first() {
        let sim = vec![
            vec![1.0, 0.1, 0.8, 0.0],
            vec![0.1, 1.0, 0.1, 0.7],
            vec![0.8, 0.1, 1.0, 0.0],
            vec![0.0, 0.7, 0.0, 1.0],
        ];
        let sim = Similarity::Dense(sim);
        assert_eq!(agglomerate(&sim, 0.5), vec![vec![0, 2], vec![1, 3]]);
        assert_eq!(agglomerate(&sim, 0.75), vec![vec![0, 2], vec![1], vec![3]]);
        assert_eq!(agglomerate(&sim, 0.0), vec![vec![0, 1, 2, 3]]);
        assert!(agglomerate(&Similarity::Dense(vec![]), 0.5).is_empty());
    }

    #[test]
    fn average_linkage_does_not_chain() {
        // 0~1 and 1~2 are close, 0 and 2 are not: the mean keeps 2 out of {0, 1}.
        let sim = vec![
            vec![1.0, 0.6, 0.0],
            vec![0.6, 1.0, 0.5],
            vec![0.0, 0.5, 1.0],
        ];
        assert_eq!(
            agglomerate(&Similarity::Dense(sim), 0.4),
            vec![vec![0, 1], vec![2]]
        );
    }

    #[test]
    fn lexical_similarity_is_higher_within_an_event() {
        let texts = [
            "Floods in central Vietnam killed 12 people in Quang Nam province on Monday.",
            "At least 12 people died as floods hit Quang Nam in central Vietnam.",
            "The German government plans 1 million new jobs in renewable energy.",
        ];
        let sim = lexical_similarity(&texts);
        assert!(sim[0][1] > 0.3, "{sim:?}");
        assert!(sim[0][2] < 0.1 && sim[1][2] < 0.1, "{sim:?}");
    }

    #[test]
    fn a_shared_country_alone_does_not_make_one_story() {
        let texts = [
            "Floods in central Vietnam killed 12 people in Quang Nam province on Monday. \
             More than 3,000 homes were flooded after three days of heavy rain.",
            "At least 12 people died as floods swept through Quang Nam province in central Vietnam. \
             Authorities said more than 3,000 homes were under water.",
            "Vietnam's exports rose 15 percent in October, led by electronics and textiles, \
             the General Statistics Office in Hanoi said.",
            "Exports from Vietnam grew 15 percent in October as electronics shipments rose, \
             according to the General Statistics Office.",
        ];
        let sim = lexical_similarity(&texts);
        let threshold = SynthesisOptions::default().lexical_threshold;
        assert_eq!(
            agglomerate(&Similarity::Dense(sim.clone()), threshold),
            vec![vec![0, 1], vec![2, 3]],
            "{sim:?}"
        );
    }

    #[test]
    fn storms_in_different_towns_told_in_the_same_words_are_different_stories() {
        let towns = [
            "Saltwell", "Goldford", "Ashby", "Oakdale", "Elmhurst", "Pinegate", "Redmoor",
            "Baycross", "Sunfield", "Kingwell",
        ];
        let texts: Vec<String> = towns
            .iter()
            .enumerate()
            .flat_map(|(k, town)| {
                let homes = 1000 + 137 * k;
                [
                    format!(
                        "A storm hit {town} on Saturday, cutting power to {homes} homes. Crews \
                         worked through the night to restore electricity in {town}."
                    ),
                    format!(
                        "A storm hit {town} on Saturday, cutting power to {homes} homes. \
                         Officials said roads were closed by fallen trees."
                    ),
                ]
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let threshold = SynthesisOptions::default().lexical_threshold;
        let everything = lexical_similarity(&refs);
        assert!(
            everything[0][2] > threshold,
            "the shared wording alone is above the threshold: {}",
            everything[0][2]
        );
        let groups = agglomerate(&story_similarity(&refs), threshold);
        let expected: Vec<Vec<usize>> = (0..towns.len()).map(|k| vec![2 * k, 2 * k + 1]).collect();
        assert_eq!(groups, expected);
    }

    #[test]
    fn titles_are_shortened_to_one_line() {
        assert_eq!(shorten("Floods hit Hanoi."), "Floods hit Hanoi");
        let long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
        assert_eq!(shorten(long), "one two three four five six seven eight nine ten eleven twelve thirteen fourteen\u{2026}");
    }
}
