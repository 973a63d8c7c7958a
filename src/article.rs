//! The plain data that flows through the pipeline, stage to stage:
//! `Article` (ingest) → `DetectedArticle` (detect) → `SegmentedArticle` (segment)
//! → `EnglishArticle` (translate) → `Summary` (summarize) → `Story` (synthesize) → brief (render).
//!
//! Nothing here does I/O or holds a model: every stage is a function over these types.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A language, as its ISO 639-1 code (`de`, `vi`) or ISO 639-3 code where no
/// two-letter code exists. Always lowercase ASCII.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lang(String);

/// As its code (a string): written as it is, read through [`Lang::parse`]. By hand rather
/// than through `String` so that reading one allocates once (cached stage results hold a
/// language per sentence).
impl Serialize for Lang {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Lang, D::Error> {
        struct Code;
        impl serde::de::Visitor<'_> for Code {
            type Value = Lang;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a language code")
            }
            fn visit_str<E: serde::de::Error>(self, code: &str) -> Result<Lang, E> {
                Lang::parse(code).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Code)
    }
}

impl Lang {
    pub fn english() -> Lang {
        Lang("en".to_string())
    }

    /// Parses a language code such as `de` or `DE`; rejects anything that is not 2–3 ASCII letters.
    pub fn parse(code: &str) -> Result<Lang, String> {
        let code = code.trim().to_ascii_lowercase();
        if (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Lang(code))
        } else {
            Err(format!(
                "`{code}` is not a language code; use an ISO 639-1 code such as `de` or `vi`"
            ))
        }
    }

    pub fn code(&self) -> &str {
        &self.0
    }

    pub fn is_english(&self) -> bool {
        self.0 == "en"
    }

    /// The language's English name, for the brief ("translated from German").
    pub fn name(&self) -> &str {
        LANGUAGE_NAMES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map(|(_, name)| *name)
            .unwrap_or(&self.0)
    }
}

impl TryFrom<String> for Lang {
    type Error = String;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Lang::parse(&code)
    }
}

impl From<Lang> for String {
    fn from(lang: Lang) -> String {
        lang.0
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lang({})", self.0)
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::parse(s)
    }
}

/// English names of the languages polybrief is likely to meet.
const LANGUAGE_NAMES: &[(&str, &str)] = &[
    ("af", "Afrikaans"),
    ("ar", "Arabic"),
    ("az", "Azerbaijani"),
    ("be", "Belarusian"),
    ("bg", "Bulgarian"),
    ("bn", "Bengali"),
    ("ca", "Catalan"),
    ("cs", "Czech"),
    ("cy", "Welsh"),
    ("da", "Danish"),
    ("de", "German"),
    ("el", "Greek"),
    ("en", "English"),
    ("eo", "Esperanto"),
    ("es", "Spanish"),
    ("et", "Estonian"),
    ("eu", "Basque"),
    ("fa", "Persian"),
    ("fi", "Finnish"),
    ("fr", "French"),
    ("ga", "Irish"),
    ("gl", "Galician"),
    ("gu", "Gujarati"),
    ("he", "Hebrew"),
    ("hi", "Hindi"),
    ("hr", "Croatian"),
    ("hu", "Hungarian"),
    ("hy", "Armenian"),
    ("id", "Indonesian"),
    ("is", "Icelandic"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("ka", "Georgian"),
    ("kk", "Kazakh"),
    ("km", "Khmer"),
    ("ko", "Korean"),
    ("la", "Latin"),
    ("lt", "Lithuanian"),
    ("lv", "Latvian"),
    ("mk", "Macedonian"),
    ("ml", "Malayalam"),
    ("mn", "Mongolian"),
    ("mr", "Marathi"),
    ("ms", "Malay"),
    ("my", "Burmese"),
    ("ne", "Nepali"),
    ("nl", "Dutch"),
    ("no", "Norwegian"),
    ("pa", "Punjabi"),
    ("pl", "Polish"),
    ("pt", "Portuguese"),
    ("ro", "Romanian"),
    ("ru", "Russian"),
    ("si", "Sinhala"),
    ("sk", "Slovak"),
    ("sl", "Slovenian"),
    ("sq", "Albanian"),
    ("sr", "Serbian"),
    ("sv", "Swedish"),
    ("sw", "Swahili"),
    ("ta", "Tamil"),
    ("te", "Telugu"),
    ("th", "Thai"),
    ("tl", "Tagalog"),
    ("tr", "Turkish"),
    ("uk", "Ukrainian"),
    ("ur", "Urdu"),
    ("uz", "Uzbek"),
    ("vi", "Vietnamese"),
    ("yi", "Yiddish"),
    ("zh", "Chinese"),
];

/// A stable identifier of an article: the first 16 hex digits of the sha256 of its text.
/// Two files with the same text get the same id (and are processed once).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ArticleId(String);

impl ArticleId {
    pub fn from_text(text: &str) -> ArticleId {
        let digest = Sha256::digest(text.as_bytes());
        ArticleId(hex::encode(&digest[..8]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArticleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ArticleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArticleId({})", self.0)
    }
}

/// What is known about an article besides its text, from front matter, JSON fields or the file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArticleMeta {
    pub title: Option<String>,
    pub url: Option<String>,
    /// The outlet ("Reuters", "VnExpress").
    pub source: Option<String>,
    pub published: Option<String>,
    /// The language the article says it is in (front matter `lang:`, a JSON `lang` field or
    /// `--lang`): it overrides statistics, not the writing system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<Lang>,
}

/// An article as read from disk: metadata and the original text split into paragraphs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: ArticleId,
    /// Where it came from, relative to the input root where possible (`world/de-flood.txt`,
    /// or `feed.jsonl#3` for the fourth record of a JSON Lines file).
    pub origin: String,
    /// Other names under which the same text was found (duplicates are processed once).
    pub also_at: Vec<String>,
    pub meta: ArticleMeta,
    pub paragraphs: Vec<String>,
}

impl Article {
    /// Builds an article, deriving its id from the paragraphs' text.
    pub fn new(origin: String, meta: ArticleMeta, paragraphs: Vec<String>) -> Article {
        let id = ArticleId::from_text(&paragraphs.join("\n\n"));
        Article {
            id,
            origin,
            also_at: Vec::new(),
            meta,
            paragraphs,
        }
    }

    pub fn text(&self) -> String {
        self.paragraphs.join("\n\n")
    }
}

/// A paragraph with the language it was identified as, or `None` when identification
/// was not confident (such paragraphs are reported, never guessed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectedParagraph {
    pub text: String,
    pub lang: Option<Lang>,
}

/// An article after language identification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectedArticle {
    pub article: Article,
    /// The article's main language: the language of most of its text.
    pub lang: Option<Lang>,
    pub paragraphs: Vec<DetectedParagraph>,
}

/// One source sentence, with where it sits in the original text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Index of the paragraph in `Article::paragraphs`.
    pub paragraph: usize,
    /// Byte range of the sentence inside that paragraph.
    pub span: Range<usize>,
    pub text: String,
    pub lang: Option<Lang>,
}

/// An article cut into sentences, paragraph boundaries kept in `Segment::paragraph`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentedArticle {
    pub detected: DetectedArticle,
    pub segments: Vec<Segment>,
}

/// One English sentence and the source sentence it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnglishSentence {
    pub text: String,
    /// Index into `SegmentedArticle::segments`.
    pub segment: usize,
    pub paragraph: usize,
    /// The model that translated it, or `None` when the source was already English.
    pub translated_by: Option<String>,
}

/// An article in English: every sentence linked to its source sentence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnglishArticle {
    pub article: Article,
    /// The article's main language before translation.
    pub source_lang: Option<Lang>,
    /// Languages translated from, with the model used for each.
    pub translations: Vec<(Lang, String)>,
    pub sentences: Vec<EnglishSentence>,
    /// The title in English, when the article's title had to be translated.
    #[serde(default)]
    pub english_title: Option<String>,
}

impl EnglishArticle {
    /// The English text, one paragraph per source paragraph.
    pub fn text(&self) -> String {
        self.text_of(0..self.sentences.len())
    }

    /// The English text of the sentences in `range`, paragraph breaks kept.
    pub fn text_of(&self, range: Range<usize>) -> String {
        let mut out = String::new();
        let mut last_paragraph = None;
        for sentence in &self.sentences[range] {
            match last_paragraph {
                Some(p) if p == sentence.paragraph => out.push(' '),
                Some(_) => out.push_str("\n\n"),
                None => {}
            }
            out.push_str(&sentence.text);
            last_paragraph = Some(sentence.paragraph);
        }
        out
    }

    pub fn is_translated(&self) -> bool {
        !self.translations.is_empty()
    }
}

/// How a summary was produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SummaryMethod {
    /// Sentences chosen from the English text (no model).
    Extractive,
    /// Written by a local instruct model.
    Llm { model: String },
}

/// A summary sentence, with the English sentences (indices into `EnglishArticle::sentences`)
/// it was taken from or is supported by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummarySentence {
    pub text: String,
    pub support: Vec<usize>,
}

/// The summary of one article.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub article: ArticleId,
    pub sentences: Vec<SummarySentence>,
    pub method: SummaryMethod,
    /// Facts (numbers, dates, names) in the summary that the article does not contain;
    /// non-empty means the brief flags the summary.
    pub ungrounded: Vec<String>,
}

impl Summary {
    pub fn text(&self) -> String {
        self.sentences
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A 1-based number in the brief's Sources list.
pub type SourceNumber = usize;

/// One consolidated statement with the sources that support it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPoint {
    pub text: String,
    pub citations: Vec<SourceNumber>,
}

/// Sources that give different values for the same fact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// What the disagreement is about ("deaths", "date of landfall").
    pub subject: String,
    /// Each side: the value stated and the sources stating it.
    pub sides: Vec<(String, Vec<SourceNumber>)>,
    /// Each source's sentence that states its side's value (the brief's JSON carries them,
    /// so a reader can check that both sides speak of the same thing).
    #[serde(default)]
    pub statements: Vec<Statement>,
}

/// One source's statement of a value in a disagreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub source: SourceNumber,
    /// The value as the source writes it.
    pub value: String,
    /// The source's English sentence that states it.
    pub sentence: String,
}

/// A group of articles about the same event, and what they say together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Story {
    pub title: String,
    pub sources: Vec<SourceNumber>,
    pub points: Vec<KeyPoint>,
    pub disagreements: Vec<Disagreement>,
}

/// A source given in the Sources list but cited by no key point, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnusedSource {
    pub source: SourceNumber,
    pub reason: String,
}

/// An input that was not processed, and why (the brief's "Skipped" section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedInput {
    pub path: PathBuf,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_parse_accepts_codes_and_rejects_names() {
        assert_eq!(Lang::parse("DE").unwrap().code(), "de");
        assert_eq!(Lang::parse("de").unwrap().name(), "German");
        assert!(Lang::parse("German").is_err());
        assert!(Lang::parse("d1").is_err());
    }

    #[test]
    fn article_id_depends_only_on_text() {
        let a = Article::new("a.txt".into(), ArticleMeta::default(), vec!["Hallo".into()]);
        let b = Article::new("b.txt".into(), ArticleMeta::default(), vec!["Hallo".into()]);
        let c = Article::new(
            "a.txt".into(),
            ArticleMeta::default(),
            vec!["Hallo!".into()],
        );
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn english_text_keeps_paragraph_breaks() {
        let article = Article::new("a".into(), ArticleMeta::default(), vec!["x".into()]);
        let sentence = |text: &str, paragraph| EnglishSentence {
            text: text.into(),
            segment: 0,
            paragraph,
            translated_by: None,
        };
        let english = EnglishArticle {
            article,
            source_lang: Some(Lang::english()),
            translations: vec![],
            sentences: vec![sentence("A.", 0), sentence("B.", 0), sentence("C.", 1)],
            english_title: None,
        };
        assert_eq!(english.text(), "A. B.\n\nC.");
    }
}
