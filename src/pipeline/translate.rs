//! The translate stage: non-English sentences into English with an opus-mt (Marian) model.
//!
//! [`Translator`] turns a list of sentences into English, fast and without losing text:
//! sentences are tokenized, sorted by length and packed into batches under a token budget (so
//! that padding stays small and memory bounded), decoded in batches, and put back in input
//! order. A sentence longer than the model can take is split at clause boundaries and its
//! pieces translated separately and rejoined; nothing is ever truncated.
//!
//! [`translate_article`] applies translators to a [`SegmentedArticle`], passing English
//! segments through untouched, and yields the [`EnglishArticle`] whose every sentence points
//! at the segment it came from.

pub(crate) mod stage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::article::{EnglishArticle, EnglishSentence, Lang, SegmentedArticle};
use crate::models::generate::{generate, GenerationParams, MarianDecoding, RepetitionGuard};
use crate::models::marian::{open_checkpoint, Config, MarianMTModel};
use crate::models::marian_tokenizer::MarianTokenizer;
use crate::models::precision::WeightPrecision;
use crate::models::GenerateError;
use crate::workload::{self, Work};

/// Why a translation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot load the translation model in {}: {reason}", path.display())]
    Load { path: PathBuf, reason: String },

    #[error("translation model {model} failed: {source}")]
    Model {
        model: String,
        #[source]
        source: GenerateError,
    },

    #[error("the tokenizer of {model} failed: {reason}")]
    Tokenizer { model: String, reason: String },

    #[error(
        "no translation model for {lang} ({name}) is loaded; run `polybrief models fetch --lang {lang}`",
        name = lang.name()
    )]
    NoModel { lang: Lang },

    #[error(
        "no translation model for {lang} ({name}) in the catalog and no fallback; add one with --models",
        name = lang.name()
    )]
    NotInCatalog { lang: Lang },

    #[error("the language of a sentence in {origin} is unknown, so it cannot be translated")]
    UnknownLanguage { origin: String },
}

/// What the translator needs from a tokenizer: ids with the trailing EOS, and text back.
/// Implemented by `MarianTokenizer`; a trait so that batching can be tested without one.
pub trait SentenceTokenizer {
    /// Token ids of `text`, ending with the end-of-sequence id.
    fn encode(&self, text: &str) -> Result<Vec<u32>, String>;
    /// Text of target ids; special tokens are already removed by the caller.
    fn decode(&self, ids: &[u32]) -> Result<String, String>;
}

impl SentenceTokenizer for crate::models::marian_tokenizer::MarianTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        MarianTokenizer::encode(self, text).map_err(|e| e.to_string())
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        MarianTokenizer::decode(self, ids).map_err(|e| e.to_string())
    }
}

/// How translation is done. The defaults are those of the opus-mt generation configs
/// (beam 4, length penalty 1), plus early stopping and the repetition guard.
#[derive(Clone, Debug, PartialEq)]
pub struct TranslateSettings {
    /// Beam size; 1 is greedy search.
    pub num_beams: usize,
    pub length_penalty: f64,
    pub early_stopping: bool,
    pub no_repeat_ngram_size: usize,
    /// Stops the looping-on-one-phrase failure of opus-mt (see `models::generate`).
    pub repetition_guard: Option<RepetitionGuard>,
    /// Most `sentences × beams × padded source length` per batch: bounds memory and keeps
    /// sentences of similar length together.
    pub batch_tokens: usize,
    /// Most sentences per batch.
    pub max_batch_sentences: usize,
    /// Sentences with more source tokens (EOS included) are split at clause boundaries.
    /// Capped by the model's position limit.
    pub max_source_tokens: usize,
    /// Maximum output length of a sentence: `ratio × source tokens + extra`, capped by the
    /// model's position limit. Generous, because a forced stop would cut a translation short.
    pub max_output_ratio: f64,
    pub max_output_extra: usize,
    /// Every sentence is decoded to exactly `ceil(ratio × source tokens) + 1` tokens (EOS
    /// not counted in the ratio, then added on both sides), never stopping early. Only benchmarks set it (`examples/bench_run.rs`):
    /// random weights almost never emit EOS, so this is how they decode a real model's lengths.
    pub exact_output_ratio: Option<f64>,
}

impl Default for TranslateSettings {
    fn default() -> Self {
        Self {
            num_beams: 4,
            length_penalty: 1.0,
            early_stopping: true,
            no_repeat_ngram_size: 0,
            repetition_guard: Some(RepetitionGuard::default()),
            batch_tokens: 8192,
            max_batch_sentences: 32,
            // opus-mt models were trained on sentences well under this; longer inputs
            // translate badly even where positions would allow them.
            max_source_tokens: 256,
            max_output_ratio: 3.0,
            max_output_extra: 16,
            exact_output_ratio: None,
        }
    }
}

/// Reads `config.json` and the weights (`model.safetensors`, else `pytorch_model.bin`) of a
/// Marian checkpoint directory, in f32.
pub fn load_marian(
    dir: &Path,
    dtype: DType,
    device: &Device,
) -> Result<MarianMTModel, TranslateError> {
    load_marian_with_precision(dir, dtype, device, WeightPrecision::F32)
}

/// [`load_marian`] with the linear layers in `precision` (int8 quantizes each weight as it is
/// read). The weights file is unmapped when this returns: the model holds its own copies.
pub fn load_marian_with_precision(
    dir: &Path,
    dtype: DType,
    device: &Device,
    precision: WeightPrecision,
) -> Result<MarianMTModel, TranslateError> {
    let load_err = |reason: String| TranslateError::Load {
        path: dir.to_path_buf(),
        reason,
    };
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| load_err(format!("cannot read {}: {e}", config_path.display())))?;
    let cfg: Config = serde_json::from_str(&text).map_err(|e| {
        load_err(format!(
            "{} is not a Marian config: {e}",
            config_path.display()
        ))
    })?;
    let weights = ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            load_err("neither model.safetensors nor pytorch_model.bin is there".into())
        })?;
    if weights.extension().is_some_and(|e| e == "bin") && !is_zip(&weights) {
        return Err(load_err(format!(
            "{} is in PyTorch's legacy (before 1.6) format, which polybrief cannot read; \
             use a revision of the model that has model.safetensors, or re-save it with \
             `MarianMTModel.from_pretrained(dir).save_pretrained(dir)`",
            weights.display()
        )));
    }
    let (vb, file) = open_checkpoint(&weights, dtype, device)
        .map_err(|e| load_err(format!("cannot read {}: {e}", weights.display())))?;
    match file {
        Some(file) => MarianMTModel::new_reading_rows(&cfg, vb, precision, &file),
        None => MarianMTModel::new_with_precision(&cfg, vb, precision),
    }
    .map_err(|e| load_err(format!("{}: {e}", weights.display())))
}

/// Whether `path` starts like a zip archive, as `torch.save` writes since PyTorch 1.6.
fn is_zip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

/// A loaded opus-mt model with its tokenizer and settings, for one source language.
pub struct Translator<T: SentenceTokenizer> {
    name: String,
    model: MarianMTModel,
    tokenizer: T,
    settings: TranslateSettings,
}

/// One piece of work: a sentence, or a piece of an over-long one.
#[derive(Clone, Debug)]
struct Unit {
    sentence: usize,
    ids: Vec<u32>,
}

impl<T: SentenceTokenizer> Translator<T> {
    /// `name` identifies the model in the brief ("Helsinki-NLP/opus-mt-de-en@<rev>").
    pub fn new(
        name: String,
        model: MarianMTModel,
        tokenizer: T,
        settings: TranslateSettings,
    ) -> Self {
        Self {
            name,
            model,
            tokenizer,
            settings,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &TranslateSettings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut TranslateSettings {
        &mut self.settings
    }

    fn max_source_tokens(&self) -> usize {
        self.settings
            .max_source_tokens
            .clamp(2, self.model.config().max_position_embeddings)
    }

    fn max_new_tokens(&self, source_len: usize) -> usize {
        let wanted = match self.settings.exact_output_ratio {
            // `source_len` counts the source's EOS; the ratio is of the words' tokens.
            Some(ratio) => (ratio * source_len.saturating_sub(1) as f64).ceil() as usize + 1,
            None => {
                (self.settings.max_output_ratio * source_len as f64).ceil() as usize
                    + self.settings.max_output_extra
            }
        };
        wanted.clamp(1, self.model.config().max_position_embeddings)
    }

    fn tokenizer_error(&self, reason: String) -> TranslateError {
        TranslateError::Tokenizer {
            model: self.name.clone(),
            reason,
        }
    }

    fn model_error(&self, source: impl Into<GenerateError>) -> TranslateError {
        TranslateError::Model {
            model: self.name.clone(),
            source: source.into(),
        }
    }

    /// Translates `sentences`, returning one English string per input, in input order.
    /// Empty or blank inputs give empty outputs.
    pub fn translate(&mut self, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
        let limit = self.max_source_tokens();
        let mut units = Vec::new();
        for (sentence, text) in sentences.iter().enumerate() {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let fits = |piece: &str| self.tokenizer.encode(piece).map(|ids| ids.len() <= limit);
            let pieces = split_to_fit(text, &fits).map_err(|e| self.tokenizer_error(e))?;
            if pieces.len() > 1 {
                log::debug!(
                    "split a sentence of {} characters into {} pieces for {}",
                    text.chars().count(),
                    pieces.len(),
                    self.name
                );
            }
            for piece in pieces {
                let ids = self
                    .tokenizer
                    .encode(&piece)
                    .map_err(|e| self.tokenizer_error(e))?;
                units.push(Unit { sentence, ids });
            }
        }

        let lengths: Vec<usize> = units.iter().map(|u| u.ids.len()).collect();
        let cost_per_token = self.settings.num_beams.max(1);
        let batches = plan_batches(
            &lengths,
            self.settings.batch_tokens / cost_per_token,
            self.settings.max_batch_sentences,
        );
        let mut outputs: Vec<Option<String>> = vec![None; units.len()];
        for batch in batches {
            let ids: Vec<&[u32]> = batch.iter().map(|&u| units[u].ids.as_slice()).collect();
            let translated = self.translate_batch(&ids)?;
            for (&u, text) in batch.iter().zip(translated) {
                outputs[u] = Some(text);
            }
        }

        let mut english = vec![String::new(); sentences.len()];
        for (unit, text) in units.iter().zip(outputs) {
            let text = text.unwrap_or_default();
            let out = &mut english[unit.sentence];
            if !out.is_empty() && !text.is_empty() {
                out.push(' ');
            }
            out.push_str(text.trim());
        }
        Ok(english)
    }

    /// Decodes one batch of token id sequences (each ending with EOS) into English.
    pub fn translate_batch(&self, sources: &[&[u32]]) -> Result<Vec<String>, TranslateError> {
        let ids = self.generate_ids(sources)?;
        let cfg = self.model.config();
        let special = [cfg.eos_id(), cfg.pad_token_id, cfg.decoder_start_token_id];
        ids.into_iter()
            .map(|out| {
                let content: Vec<u32> =
                    out.into_iter().filter(|id| !special.contains(id)).collect();
                self.tokenizer
                    .decode(&content)
                    .map_err(|e| self.tokenizer_error(e))
            })
            .collect()
    }

    /// Generated target ids (without the decoder start token) for a batch of sources.
    pub fn generate_ids(&self, sources: &[&[u32]]) -> Result<Vec<Vec<u32>>, TranslateError> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let cfg = self.model.config();
        let width = sources.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sources.len() * width);
        let mut mask = Vec::with_capacity(sources.len() * width);
        for source in sources {
            ids.extend_from_slice(source);
            ids.extend(std::iter::repeat_n(cfg.pad_token_id, width - source.len()));
            mask.extend(std::iter::repeat_n(1u8, source.len()));
            mask.extend(std::iter::repeat_n(0u8, width - source.len()));
        }
        let device = self.model.device();
        let run = || -> Result<Vec<Vec<u32>>, GenerateError> {
            let ids = Tensor::from_vec(ids, (sources.len(), width), device)?;
            let mask = Tensor::from_vec(mask, (sources.len(), width), device)?;
            let encoded = self.model.encode(&ids, &mask)?;
            let cache = self.model.new_cache(&encoded)?;
            let mut decoding = MarianDecoding::new(&self.model, cache);
            let params = self.generation_params();
            let max_new: Vec<usize> = sources
                .iter()
                .map(|s| self.max_new_tokens(s.len()))
                .collect();
            generate(&mut decoding, &params, &max_new)
        };
        let generated = run().map_err(|e| self.model_error(e))?;
        workload::record(|| Work::Translation {
            model: self.name.clone(),
            beams: self.settings.num_beams.max(1),
            source_tokens: sources.iter().map(|s| s.len()).collect(),
            target_tokens: generated.iter().map(Vec::len).collect(),
        });
        Ok(generated)
    }

    fn generation_params(&self) -> GenerationParams {
        let s = &self.settings;
        GenerationParams {
            num_beams: s.num_beams.max(1),
            length_penalty: s.length_penalty,
            early_stopping: s.early_stopping,
            no_repeat_ngram_size: s.no_repeat_ngram_size,
            repetition_guard: s.repetition_guard,
            exact_length: s.exact_output_ratio.is_some(),
            ..GenerationParams::for_marian(self.model.config())
        }
    }
}

/// Groups sentence indices into batches: longest first, so each batch holds sentences of
/// similar length, and each batch within `budget` (`sentences × longest length`) and
/// `max_sentences`. A sentence over the budget on its own still gets a batch of one.
pub fn plan_batches(lengths: &[usize], budget: usize, max_sentences: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in order {
        let len = lengths[i];
        let width = longest.max(len);
        if !current.is_empty()
            && ((current.len() + 1) * width > budget || current.len() >= max_sentences.max(1))
        {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Sentence-final punctuation: the best place to split an over-long "sentence" (usually
/// several sentences the segmenter could not separate).
const SENTENCE_ENDS: &[char] = &['.', '!', '?', '。', '！', '？', '؟', '।', '।'];
/// Clause punctuation, the next best place.
const CLAUSE_MARKS: &[char] = &[
    ',', ';', ':', '、', '，', '；', '：', '،', '؛', '—', '–', ')', '）', '»', '"', '”',
];

/// Byte offsets after which `text` may be split, at the best tier that has any: sentence ends,
/// then clause marks, then whitespace. ASCII punctuation counts only when followed by
/// whitespace ("3.5" and "1,000" stay whole); full-width punctuation needs no space.
fn split_points(text: &str) -> Vec<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let after = |i: usize| chars.get(i + 1).map_or(text.len(), |&(b, _)| b);
    let followed_by_space = |i: usize| chars.get(i + 1).is_some_and(|&(_, c)| c.is_whitespace());
    let tier = |set: &[char]| -> Vec<usize> {
        chars
            .iter()
            .enumerate()
            .filter(|&(i, &(_, c))| set.contains(&c) && (!c.is_ascii() || followed_by_space(i)))
            .map(|(i, _)| after(i))
            .filter(|&b| b < text.len())
            .collect()
    };
    for points in [tier(SENTENCE_ENDS), tier(CLAUSE_MARKS)] {
        if !points.is_empty() {
            return points;
        }
    }
    chars
        .iter()
        .enumerate()
        .filter(|&(i, &(_, c))| c.is_whitespace() && i > 0)
        .map(|(_, &(b, _))| b)
        .collect()
}

/// Splits `text` into pieces that each satisfy `fits`, cutting at the split point nearest the
/// middle of the best available kind and recursing. Text without any split point is cut at the
/// character nearest the middle. Every character of `text` ends up in some piece (surrounding
/// whitespace of pieces is trimmed).
pub fn split_to_fit(
    text: &str,
    fits: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<Vec<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if fits(text)? || text.chars().count() < 2 {
        return Ok(vec![text.to_string()]);
    }
    let middle = text.len() / 2;
    let points: Vec<usize> = split_points(text).into_iter().filter(|&b| b > 0).collect();
    let cut = match points.iter().min_by_key(|&&b| b.abs_diff(middle)) {
        Some(&b) => b,
        None => {
            // No punctuation or space (long CJK or Thai runs): the char boundary nearest the middle.
            text.char_indices()
                .map(|(b, _)| b)
                .filter(|&b| b > 0)
                .min_by_key(|&b| b.abs_diff(middle))
                .unwrap_or(middle)
        }
    };
    let mut pieces = split_to_fit(&text[..cut], fits)?;
    pieces.extend(split_to_fit(&text[cut..], fits)?);
    Ok(pieces)
}

/// A translation engine for one source language, as the article stage sees it.
pub trait Translate {
    /// The model's name, recorded in `EnglishSentence::translated_by`.
    fn model_name(&self) -> String;
    fn translate(&mut self, sentences: &[String]) -> Result<Vec<String>, TranslateError>;
}

impl<T: SentenceTokenizer> Translate for Translator<T> {
    fn model_name(&self) -> String {
        self.name.clone()
    }

    fn translate(&mut self, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
        Translator::translate(self, sentences)
    }
}

/// Hands out the translator for a source language (loading it on first use, typically).
pub trait Translators {
    fn for_lang(&mut self, lang: &Lang) -> Result<&mut dyn Translate, TranslateError>;
}

impl Translators for HashMap<Lang, Box<dyn Translate>> {
    fn for_lang(&mut self, lang: &Lang) -> Result<&mut dyn Translate, TranslateError> {
        match self.get_mut(lang) {
            Some(t) => Ok(t.as_mut()),
            None => Err(TranslateError::NoModel { lang: lang.clone() }),
        }
    }
}

/// Translates the non-English segments of `article`, one batch call per language. English
/// segments pass through untouched; a segment without a language of its own takes the
/// article's. Every output sentence links to its segment and paragraph.
pub fn translate_article(
    article: SegmentedArticle,
    translators: &mut dyn Translators,
) -> Result<EnglishArticle, TranslateError> {
    let SegmentedArticle { detected, segments } = article;
    let origin = detected.article.origin.clone();
    let mut by_lang: Vec<(Lang, Vec<usize>)> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let lang = segment
            .lang
            .clone()
            .or_else(|| detected.lang.clone())
            .ok_or_else(|| TranslateError::UnknownLanguage {
                origin: origin.clone(),
            })?;
        if lang.is_english() {
            continue;
        }
        match by_lang.iter_mut().find(|(l, _)| *l == lang) {
            Some((_, members)) => members.push(i),
            None => by_lang.push((lang, vec![i])),
        }
    }

    let mut sentences: Vec<EnglishSentence> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| EnglishSentence {
            text: s.text.clone(),
            segment: i,
            paragraph: s.paragraph,
            translated_by: None,
        })
        .collect();
    // A title from metadata (front matter, JSON, HTML meta) is not among the segments; it is
    // translated with the article's main language, in the same batch.
    let title_lang = detected.lang.clone().filter(|l| !l.is_english());
    let title = detected
        .article
        .meta
        .title
        .clone()
        .filter(|_| title_lang.is_some());
    let mut english_title = None;
    let mut translations = Vec::new();
    for (lang, members) in by_lang {
        let translator = translators.for_lang(&lang)?;
        let model = translator.model_name();
        let mut texts: Vec<String> = members.iter().map(|&i| segments[i].text.clone()).collect();
        let with_title = title.is_some() && title_lang.as_ref() == Some(&lang);
        if let (true, Some(title)) = (with_title, &title) {
            texts.push(title.clone());
        }
        let mut english = translator.translate(&texts)?;
        if with_title {
            english_title = english.pop();
        }
        for (&i, text) in members.iter().zip(english) {
            sentences[i].text = text;
            sentences[i].translated_by = Some(model.clone());
        }
        translations.push((lang, model));
    }

    Ok(EnglishArticle {
        source_lang: detected.lang.clone(),
        article: detected.article,
        translations,
        sentences,
        english_title,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::{Article, ArticleMeta, DetectedArticle, DetectedParagraph, Segment};

    /// Marks what it translated, so tests can see which text went to which model.
    struct Marker {
        lang: &'static str,
        calls: Vec<Vec<String>>,
    }

    impl Translate for Marker {
        fn model_name(&self) -> String {
            format!("marker-{}", self.lang)
        }

        fn translate(&mut self, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
            self.calls.push(sentences.to_vec());
            Ok(sentences
                .iter()
                .map(|s| format!("<{}:{s}>", self.lang))
                .collect())
        }
    }

    struct Markers(Vec<Marker>);

    impl Translators for Markers {
        fn for_lang(&mut self, lang: &Lang) -> Result<&mut dyn Translate, TranslateError> {
            match self.0.iter_mut().find(|m| m.lang == lang.code()) {
                Some(m) => Ok(m),
                None => Err(TranslateError::NoModel { lang: lang.clone() }),
            }
        }
    }

    fn mixed_article(title: Option<&str>, main: &str) -> SegmentedArticle {
        let lang = |code: &str| Lang::parse(code).ok();
        let paragraphs = vec![
            "Hello there. Second.".to_string(),
            "안녕하세요.".to_string(),
        ];
        let meta = ArticleMeta {
            title: title.map(str::to_string),
            ..Default::default()
        };
        let article = Article::new("mixed.txt".into(), meta, paragraphs.clone());
        let detected = DetectedArticle {
            article,
            lang: lang(main),
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
        };
        let segment = |paragraph, span: std::ops::Range<usize>, text: &str, code| Segment {
            paragraph,
            span,
            text: text.to_string(),
            lang: lang(code),
        };
        SegmentedArticle {
            detected,
            segments: vec![
                segment(0, 0..12, "Hello there.", "en"),
                segment(0, 13..20, "Second.", "en"),
                segment(1, 0..16, "안녕하세요.", "ko"),
            ],
        }
    }

    #[test]
    fn mixed_article_keeps_its_english_and_translates_only_the_foreign_sentences() {
        let mut markers = Markers(vec![Marker {
            lang: "ko",
            calls: vec![],
        }]);
        let english =
            translate_article(mixed_article(Some("A title"), "en"), &mut markers).unwrap();
        let texts: Vec<&str> = english.sentences.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["Hello there.", "Second.", "<ko:안녕하세요.>"]);
        assert_eq!(
            english.sentences[2].translated_by.as_deref(),
            Some("marker-ko")
        );
        assert_eq!(english.sentences[0].translated_by, None);
        assert_eq!(
            english
                .sentences
                .iter()
                .map(|s| (s.segment, s.paragraph))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 0), (2, 1)]
        );
        // An English article's title stays as it is.
        assert_eq!(english.english_title, None);
        assert_eq!(
            english.translations,
            vec![(Lang::parse("ko").unwrap(), "marker-ko".to_string())]
        );
    }

    #[test]
    fn metadata_title_is_translated_with_the_main_language_in_the_same_batch() {
        let mut markers = Markers(vec![
            Marker {
                lang: "ko",
                calls: vec![],
            },
            Marker {
                lang: "en",
                calls: vec![],
            },
        ]);
        let english = translate_article(mixed_article(Some("제목"), "ko"), &mut markers).unwrap();
        assert_eq!(english.english_title.as_deref(), Some("<ko:제목>"));
        assert_eq!(
            markers.0[0].calls,
            vec![vec!["안녕하세요.".to_string(), "제목".to_string()]]
        );
        assert!(
            markers.0[1].calls.is_empty(),
            "English is never sent to a model"
        );
    }

    #[test]
    fn a_language_without_a_model_is_an_error_naming_it() {
        let mut markers = Markers(vec![]);
        let err = translate_article(mixed_article(None, "en"), &mut markers).unwrap_err();
        assert!(err.to_string().contains("ko"), "{err}");
    }

    #[test]
    fn batches_group_by_length_within_budget() {
        let lengths = [5, 40, 6, 38, 7, 39];
        let batches = plan_batches(&lengths, 100, 8);
        // Longest first: 40, 39 (2×40 = 80 ≤ 100; 38 would make 3×40 = 120), then 38, 7
        // (a third would make 3×38 = 114), then 6, 5.
        assert_eq!(batches, vec![vec![1, 5], vec![3, 4], vec![2, 0]]);
        let mut all: Vec<usize> = batches.concat();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn batches_respect_the_sentence_cap_and_keep_oversized_sentences() {
        assert_eq!(plan_batches(&[3, 3, 3], 1000, 2), vec![vec![0, 1], vec![2]]);
        assert_eq!(plan_batches(&[500, 2], 100, 8), vec![vec![0], vec![1]]);
        assert!(plan_batches(&[], 100, 8).is_empty());
    }

    fn word_limit(n: usize) -> impl Fn(&str) -> Result<bool, String> {
        move |s: &str| Ok(s.split_whitespace().count() <= n)
    }

    #[test]
    fn long_sentences_split_at_clause_marks_not_inside_numbers() {
        let text = "Der Fluss stieg um 3.5 Meter, die Stadt rief den Notstand aus, und 1,000 Menschen flohen";
        let pieces = split_to_fit(text, &word_limit(7)).unwrap();
        assert_eq!(
            pieces,
            vec![
                "Der Fluss stieg um 3.5 Meter,",
                "die Stadt rief den Notstand aus,",
                "und 1,000 Menschen flohen"
            ]
        );
    }

    #[test]
    fn sentence_ends_win_over_commas() {
        let text = "Eins, zwei, drei vier. Fünf, sechs sieben acht";
        let pieces = split_to_fit(text, &word_limit(5)).unwrap();
        assert_eq!(
            pieces,
            vec!["Eins, zwei, drei vier.", "Fünf, sechs sieben acht"]
        );
    }

    #[test]
    fn cjk_splits_at_fullwidth_commas_and_unpunctuated_text_by_characters() {
        let chars_max = |n: usize| move |s: &str| Ok::<_, String>(s.chars().count() <= n);
        let pieces = split_to_fit("洪水淹没了城市，数千人撤离。", &chars_max(8)).unwrap();
        assert_eq!(pieces, vec!["洪水淹没了城市，", "数千人撤离。"]);
        let pieces = split_to_fit("一二三四五六七八九十", &chars_max(3)).unwrap();
        assert_eq!(pieces.concat(), "一二三四五六七八九十");
        assert!(pieces.iter().all(|p| p.chars().count() <= 3));
    }

    #[test]
    fn splitting_never_loses_text() {
        let text = "a b c d e f g h i j k l m n o p";
        let pieces = split_to_fit(text, &word_limit(3)).unwrap();
        assert!(pieces.iter().all(|p| p.split_whitespace().count() <= 3));
        assert_eq!(pieces.join(" "), text);
    }
}
