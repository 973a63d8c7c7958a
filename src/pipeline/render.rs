//! Render: the [`Brief`] (everything the reader gets, as plain data) and its two
//! renderings, Markdown for people and JSON for programs.
//!
//! Text that came from articles (titles, outlets, summaries, key points, translations,
//! file names) is untrusted: it passes through [`escape`] so it cannot add HTML, links,
//! images, headings, list or table structure, or citations to the brief. Citations are
//! written only from the numeric citation fields; a `[9]` inside article text becomes `(9)`.
//!
//! Rendering is deterministic: the same `Brief` gives byte-identical output. The date is on
//! a line of its own (`Date: …`) so tests can ignore it.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::article::{
    EnglishArticle, Lang, SkippedInput, SourceNumber, Story, Summary, SummaryMethod, UnusedSource,
};
use crate::pipeline::synthesize::since::{SinceLastBrief, StoryDigest};

mod since;

/// Everything the brief says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    pub title: String,
    /// The run's date, e.g. `2026-11-22`.
    pub date: String,
    /// The models the run used, with their pinned revisions.
    pub models: Vec<ModelUse>,
    /// Where they ran (`cpu`, `cuda:0`).
    pub device: String,
    pub stories: Vec<Story>,
    /// Numbered 1, 2, … in order; key points cite these numbers.
    pub sources: Vec<SourceEntry>,
    pub unused: Vec<UnusedSource>,
    pub skipped: Vec<SkippedInput>,
    pub notes: Vec<String>,
    /// The full English text of each translated source, when asked for.
    pub translations: Option<Vec<TranslatedText>>,
    /// What changed since the previous brief; `None` on a first run.
    #[serde(default)]
    pub since: Option<SinceLastBrief>,
    /// Per story, what the next run compares with (see `synthesize::since`).
    #[serde(default)]
    pub digest: Vec<StoryDigest>,
}

/// One model the run used, and for what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelUse {
    /// What it did: `translation de→en`, `summary`.
    pub role: String,
    /// The catalog id (`opus-mt-de-en`).
    pub id: String,
    /// The hub repository (`Helsinki-NLP/opus-mt-de-en`).
    pub repo: String,
    /// The pinned revision (a commit hash).
    pub revision: String,
}

/// One entry of the Sources list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceEntry {
    pub number: SourceNumber,
    /// The article's title, or its file name when it has none.
    pub title: String,
    /// The outlet ("Reuters"), when known.
    pub outlet: Option<String>,
    /// Where it was read from (`world/de-flood.txt`, `feed.jsonl#3`).
    pub origin: String,
    /// The article's main language.
    pub language: Option<Lang>,
    pub url: Option<String>,
    pub published: Option<String>,
    /// Languages translated from, with the model used; empty for English articles.
    pub translated: Vec<Translation>,
    /// Other files with the same text.
    pub also_at: Vec<String>,
    pub summary: Option<SourceSummary>,
}

/// "translated from <language> by <model>".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Translation {
    pub from: Lang,
    pub model: String,
}

/// A source's summary as the brief shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    pub text: String,
    pub method: SummaryMethod,
    /// Facts in the summary the article does not contain; non-empty flags the summary.
    pub ungrounded: Vec<String>,
}

/// The English text of one translated source, for the appendix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranslatedText {
    pub source: SourceNumber,
    pub paragraphs: Vec<String>,
}

impl SourceEntry {
    /// The entry for an article, with its summary when there is one.
    pub fn new(number: SourceNumber, english: &EnglishArticle, summary: Option<&Summary>) -> Self {
        let article = &english.article;
        SourceEntry {
            number,
            title: english
                .english_title
                .clone()
                .or_else(|| article.meta.title.clone())
                .unwrap_or_else(|| article.origin.clone()),
            outlet: article.meta.source.clone(),
            origin: article.origin.clone(),
            language: english.source_lang.clone(),
            url: article.meta.url.clone(),
            published: article.meta.published.clone(),
            translated: english
                .translations
                .iter()
                .map(|(from, model)| Translation {
                    from: from.clone(),
                    model: model.clone(),
                })
                .collect(),
            also_at: article.also_at.clone(),
            summary: summary.map(|s| SourceSummary {
                text: s.text(),
                method: s.method.clone(),
                ungrounded: s.ungrounded.clone(),
            }),
        }
    }
}

impl TranslatedText {
    /// The appendix text of a translated article, one paragraph per source paragraph.
    pub(crate) fn new(number: SourceNumber, english: &EnglishArticle) -> Self {
        TranslatedText {
            source: number,
            paragraphs: english.text().split("\n\n").map(str::to_string).collect(),
        }
    }
}

impl Brief {
    /// Inconsistencies a renderer cannot fix: source numbers that are not 1, 2, …, n in
    /// order (a Markdown numbered list would show other numbers), and citations of sources
    /// that are not listed.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            if source.number != index + 1 {
                problems.push(format!(
                    "source {} is listed at position {}",
                    source.number,
                    index + 1
                ));
            }
        }
        // A set: a brief of 3,000 sources has some 10,000 citations to check.
        let numbers: std::collections::BTreeSet<SourceNumber> =
            self.sources.iter().map(|s| s.number).collect();
        let listed = |n: &SourceNumber| numbers.contains(n);
        let cited = self.stories.iter().flat_map(|story| {
            let points = story.points.iter().flat_map(|p| p.citations.iter());
            let sides = story
                .disagreements
                .iter()
                .flat_map(|d| d.sides.iter().flat_map(|(_, c)| c.iter()));
            story.sources.iter().chain(points).chain(sides)
        });
        let mut dangling: Vec<SourceNumber> = cited.filter(|n| !listed(n)).copied().collect();
        dangling.extend(self.unused.iter().map(|u| u.source).filter(|n| !listed(n)));
        dangling.extend(
            self.translations
                .iter()
                .flatten()
                .map(|t| t.source)
                .filter(|n| !listed(n)),
        );
        dangling.sort_unstable();
        dangling.dedup();
        problems.extend(
            dangling
                .into_iter()
                .map(|n| format!("source [{n}] is cited but not listed")),
        );
        problems
    }
}

/// The brief as Markdown.
pub fn render_markdown(brief: &Brief) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape(&brief.title));
    let _ = writeln!(out, "Date: {}\n", escape(&brief.date));

    let _ = writeln!(out, "Device: {}\n", escape(&brief.device));
    if !brief.models.is_empty() {
        out.push_str("Models:\n\n");
        for model in &brief.models {
            let _ = writeln!(
                out,
                "- {}: {} ({}, revision {})",
                escape(&model.role),
                escape(&model.id),
                escape(&model.repo),
                escape(&model.revision)
            );
        }
        out.push('\n');
    }
    if let Some(since) = &brief.since {
        out.push_str(&since::since_markdown(since));
    }

    for story in &brief.stories {
        let _ = writeln!(out, "## {}\n", escape(&story.title));
        if !story.sources.is_empty() {
            let _ = writeln!(out, "Sources: {}\n", citations(&story.sources));
        }
        for point in &story.points {
            let _ = writeln!(
                out,
                "- {} {}",
                escape(&point.text),
                citations(&point.citations)
            );
        }
        if !story.points.is_empty() {
            out.push('\n');
        }
        if !story.disagreements.is_empty() {
            out.push_str("Sources disagree:\n\n");
            for disagreement in &story.disagreements {
                let sides: Vec<String> = disagreement
                    .sides
                    .iter()
                    .map(|(value, cited)| format!("{} {}", escape(value), citations(cited)))
                    .collect();
                let _ = writeln!(
                    out,
                    "- {}: {}",
                    escape(&disagreement.subject),
                    sides.join("; ")
                );
            }
            out.push('\n');
        }
    }

    out.push_str("## Sources\n\n");
    for source in &brief.sources {
        let _ = writeln!(out, "{}. {}", source.number, source_line(source));
    }
    out.push('\n');

    if brief.sources.iter().any(|s| s.summary.is_some()) {
        out.push_str("## Summaries\n\n");
        for source in &brief.sources {
            let Some(summary) = &source.summary else {
                continue;
            };
            let _ = writeln!(out, "### [{}] {}\n", source.number, escape(&source.title));
            let _ = writeln!(out, "{}\n", escape(&summary.text));
            let method = match &summary.method {
                SummaryMethod::Extractive => {
                    "Extractive summary (sentences from the article).".to_string()
                }
                SummaryMethod::Llm { model } => format!("Summary written by {}.", escape(model)),
            };
            let _ = writeln!(out, "*{method}*\n");
            if !summary.ungrounded.is_empty() {
                let facts: Vec<String> = summary.ungrounded.iter().map(|f| escape(f)).collect();
                let _ = writeln!(
                    out,
                    "**Check this summary:** it states facts the article does not contain: {}.\n",
                    facts.join(", ")
                );
            }
        }
    }

    if !brief.unused.is_empty() {
        out.push_str("## Sources not cited\n\n");
        for unused in &brief.unused {
            let _ = writeln!(
                out,
                "- {}: {}",
                citations(&[unused.source]),
                escape(&unused.reason)
            );
        }
        out.push('\n');
    }

    if !brief.skipped.is_empty() {
        out.push_str("## Skipped\n\n");
        for skipped in &brief.skipped {
            let _ = writeln!(
                out,
                "- {}: {}",
                escape(&skipped.path.display().to_string()),
                escape(&skipped.reason)
            );
        }
        out.push('\n');
    }

    if !brief.notes.is_empty() {
        out.push_str("## Notes\n\n");
        for note in &brief.notes {
            let _ = writeln!(out, "- {}", escape(note));
        }
        out.push('\n');
    }

    if let Some(translations) = brief.translations.as_ref().filter(|t| !t.is_empty()) {
        out.push_str("## Appendix: translations\n\n");
        for text in translations {
            let source = brief.sources.iter().find(|s| s.number == text.source);
            let title = source.map_or_else(String::new, |s| escape(&s.title));
            let _ = writeln!(out, "### [{}] {}\n", text.source, title);
            if let Some(line) = source.and_then(translated_by) {
                let _ = writeln!(out, "*{line}*\n");
            }
            for paragraph in text.paragraphs.iter().filter(|p| !p.trim().is_empty()) {
                let _ = writeln!(out, "{}\n", escape(paragraph));
            }
        }
    }

    // Exactly one newline at the end, whatever section came last.
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    // Article text may carry terminal escapes and bidi overrides; the brief goes to
    // terminals and viewers, so they are shown, never obeyed (the JSON keeps them exact).
    crate::output::visible_controls(&out).into_owned()
}

/// The brief as pretty-printed JSON (the `Brief` fields, as named here).
pub(crate) fn render_json(brief: &Brief) -> String {
    // Plain structs with string keys: serialization cannot fail.
    let mut json = serde_json::to_string_pretty(brief).expect("a Brief always serializes to JSON");
    json.push('\n');
    json
}

/// One Sources entry: title, outlet, file, language and translation, link, duplicates.
fn source_line(source: &SourceEntry) -> String {
    let mut line = format!("**{}**", escape(&source.title));
    if let Some(outlet) = &source.outlet {
        let _ = write!(line, ", {}", escape(outlet));
    }
    if let Some(published) = &source.published {
        let _ = write!(line, ", {}", escape(published));
    }
    let _ = write!(line, " — {}", escape(&source.origin));
    let mut about = Vec::new();
    if let Some(lang) = &source.language {
        about.push(escape(lang.name()));
    }
    if let Some(translated) = translated_by(source) {
        about.push(translated);
    }
    if !about.is_empty() {
        let _ = write!(line, " ({})", about.join("; "));
    }
    if let Some(url) = &source.url {
        let _ = write!(line, ". {}", link(url));
    }
    if !source.also_at.is_empty() {
        let others: Vec<String> = source.also_at.iter().map(|o| escape(o)).collect();
        let _ = write!(line, ". Also at: {}", others.join(", "));
    }
    line
}

/// "translated from German by opus-mt-de-en" (several languages joined), or `None`.
fn translated_by(source: &SourceEntry) -> Option<String> {
    if source.translated.is_empty() {
        return None;
    }
    let parts: Vec<String> = source
        .translated
        .iter()
        .map(|t| format!("{} by {}", escape(t.from.name()), escape(&t.model)))
        .collect();
    Some(format!("translated from {}", parts.join(" and ")))
}

/// `[2][5]`: sorted, each number once. The only place citations are written.
pub(crate) fn citations(numbers: &[SourceNumber]) -> String {
    let mut numbers = numbers.to_vec();
    numbers.sort_unstable();
    numbers.dedup();
    numbers.iter().map(|n| format!("[{n}]")).collect()
}

/// A URL as an autolink when it is a plain http(s) URL, else as escaped text (a
/// `javascript:` URL from an article's metadata must not become a link).
fn link(url: &str) -> String {
    let plain = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '`'));
    if plain {
        format!("<{url}>")
    } else {
        escape(url)
    }
}

/// Makes untrusted text inert inside one Markdown line: newlines collapsed, HTML
/// metacharacters as entities, Markdown punctuation backslash-escaped, block markers at the
/// start neutralised, and bracketed numbers (which would read as citations) turned into
/// `(n)`.
pub(crate) fn escape(text: &str) -> String {
    let collapsed = collapse_whitespace(text);
    let decited = uncite(&collapsed);
    let mut out = String::with_capacity(decited.len() + 8);
    // Bytes that are copied as they are go in runs; every character handled here is ASCII.
    let bytes = decited.as_bytes();
    let (mut at, mut run) = (0, 0);
    while at < bytes.len() {
        let b = bytes[at];
        if !ESCAPED[b as usize] {
            at += 1;
            continue;
        }
        out.push_str(&decited[run..at]);
        let rest = &decited[at..];
        at += match b {
            // GFM's autolink extension turns any `http://…`, `www.…` or `name@host` in text
            // into a live link, escaped brackets or not. A backslash before the `/` of `://`
            // and the `.` of `www.` (both ASCII punctuation, so CommonMark shows them as
            // written) keeps the scanner from seeing a link; an `@` gets an invisible
            // zero-width space before it (an escaped or entity `@` still joins the text the
            // email scanner reads; a zero-width space leaves it no local part). The reader
            // sees the same characters. None of these characters is escaped below, so they
            // are found here as they would be in the escaped text.
            b':' if rest.starts_with("://") => {
                out.push_str(":\\/\\/");
                3
            }
            b'w' | b'W'
                if rest
                    .get(..4)
                    .is_some_and(|w| w.eq_ignore_ascii_case("www.")) =>
            {
                out.push_str(&rest[..3]);
                out.push_str("\\.");
                4
            }
            b'@' => {
                out.push_str("&#8203;@");
                1
            }
            b'&' => {
                out.push_str("&amp;");
                1
            }
            b'<' => {
                out.push_str("&lt;");
                1
            }
            b'>' => {
                out.push_str("&gt;");
                1
            }
            b'\\' | b'`' | b'*' | b'_' | b'[' | b']' | b'#' | b'|' | b'~' => {
                out.push('\\');
                out.push(b as char);
                1
            }
            // `:`, `w` and `W` that start no link.
            _ => {
                out.push(b as char);
                1
            }
        };
        run = at;
    }
    out.push_str(&decited[run..]);
    neutralise_line_start(out)
}

/// The bytes [`escape`] does something about (all ASCII).
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let bytes = b":wW@&<>\\`*_[]#|~";
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
};

/// `text` with each run of whitespace as one space and none at either end (as
/// `split_whitespace` and `join(" ")` give it); borrowed when it already is so.
fn collapse_whitespace(text: &str) -> Cow<'_, str> {
    // Whitespace at the start counts as a run after a space.
    let mut after_space = true;
    let clean = text.chars().all(|c| {
        let space = c.is_whitespace();
        let fine = !space || (c == ' ' && !after_space);
        after_space = space;
        fine
    });
    if clean && !after_space {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// `[9]`, `[ 12 ]`, full-width `［9］` and their look-alikes → `(9)`, so article text cannot
/// fake a citation: invisible format characters (a word joiner, a zero-width space, a soft
/// hyphen) may sit anywhere inside, other brackets that read as square ones (`⟦9⟧`, `【9】`)
/// and digits of other styles (`［９］`, `[𝟗]`) count too.
fn uncite(text: &str) -> Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    static CITATION: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    // Every match opens with one of these: text without one has nothing to replace (most
    // text, and the regex search is most of what escaping costs).
    let opens = |c: char| {
        matches!(
            c,
            '[' | '［' | '⁅' | '〔' | '【' | '〖' | '〘' | '⟦' | '⦋' | '⦍' | '⦏' | '﹝'
        )
    };
    let ascii_without_bracket = !text.bytes().any(|b| b == b'[' || !b.is_ascii());
    if ascii_without_bracket || !text.contains(opens) {
        return Cow::Borrowed(text);
    }
    let pattern =
        r"[\[［⁅〔【〖〘⟦⦋⦍⦏﹝][\s\p{Cf}]*(\d[\d\p{Cf}]*)[\s\p{Cf}]*[\]］⁆〕】〗〙⟧⦌⦎⦐﹞]";
    match CITATION.get_or_init(|| regex::Regex::new(pattern).ok()) {
        Some(re) => re.replace_all(text, |caps: &regex::Captures<'_>| {
            let digits: String = caps[1]
                .nfkc()
                .filter(|c| !c.is_whitespace() && !is_format_char(*c))
                .collect();
            format!("({digits})")
        }),
        None => Cow::Borrowed(text),
    }
}

/// Unicode's format characters (category Cf) that render as nothing.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A line starting with `-`, `+`, `=`, or digits and `.`/`)` would start a list, a setext
/// heading or a rule; escaping the marker keeps it text. (`#`, `>`, `*` are always escaped.)
fn neutralise_line_start(text: String) -> String {
    if text.starts_with(['-', '+', '=']) {
        return format!("\\{text}");
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && text[digits..].starts_with(['.', ')']) {
        return format!("{}\\{}", &text[..digits], &text[digits..]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::{Disagreement, KeyPoint};
    use std::path::PathBuf;

    fn brief() -> Brief {
        Brief {
            title: "News brief".into(),
            date: "2026-11-22".into(),
            models: vec![ModelUse {
                role: "translation de→en".into(),
                id: "opus-mt-de-en".into(),
                repo: "Helsinki-NLP/opus-mt-de-en".into(),
                revision: "6a3b2c1".into(),
            }],
            device: "cpu".into(),
            stories: vec![Story {
                title: "Storm Hestia hits Brittany".into(),
                sources: vec![1, 2],
                points: vec![
                    KeyPoint {
                        text: "The storm made landfall at night.".into(),
                        citations: vec![2, 1],
                    },
                    KeyPoint {
                        text: "Ports were closed.".into(),
                        citations: vec![2],
                    },
                ],
                disagreements: vec![Disagreement {
                    subject: "peak wind speed".into(),
                    sides: vec![("140 km/h".into(), vec![1]), ("150 km/h".into(), vec![2])],
                    statements: vec![],
                }],
            }],
            sources: vec![
                SourceEntry {
                    number: 1,
                    title: "Sturm an der Küste".into(),
                    outlet: Some("Nordkurier".into()),
                    origin: "de-storm.txt".into(),
                    language: Some(Lang::parse("de").unwrap()),
                    url: Some("https://example.org/sturm".into()),
                    published: Some("2026-03-02".into()),
                    translated: vec![Translation {
                        from: Lang::parse("de").unwrap(),
                        model: "opus-mt-de-en".into(),
                    }],
                    also_at: vec!["copy/de-storm.txt".into()],
                    summary: Some(SourceSummary {
                        text: "The storm hit at night.".into(),
                        method: SummaryMethod::Extractive,
                        ungrounded: vec![],
                    }),
                },
                SourceEntry {
                    number: 2,
                    title: "Storm report".into(),
                    outlet: None,
                    origin: "en-storm.md".into(),
                    language: Some(Lang::english()),
                    url: None,
                    published: None,
                    translated: vec![],
                    also_at: vec![],
                    summary: Some(SourceSummary {
                        text: "Winds reached 150 km/h.".into(),
                        method: SummaryMethod::Llm {
                            model: "qwen2.5-0.5b-instruct".into(),
                        },
                        ungrounded: vec!["Tuesday".into()],
                    }),
                },
            ],
            unused: vec![],
            skipped: vec![SkippedInput {
                path: PathBuf::from("in/blob.pdf"),
                reason: "unsupported file type".into(),
            }],
            notes: vec![],
            translations: Some(vec![TranslatedText {
                source: 1,
                paragraphs: vec![
                    "The storm hit at night.".into(),
                    "Ports were closed.".into(),
                ],
            }]),
            since: None,
            digest: vec![],
        }
    }

    #[test]
    fn markdown_has_the_documented_layout() {
        let md = render_markdown(&brief());
        let expected = "\
# News brief

Date: 2026-11-22

Device: cpu

Models:

- translation de→en: opus-mt-de-en (Helsinki-NLP/opus-mt-de-en, revision 6a3b2c1)

## Storm Hestia hits Brittany

Sources: [1][2]

- The storm made landfall at night. [1][2]
- Ports were closed. [2]

Sources disagree:

- peak wind speed: 140 km/h [1]; 150 km/h [2]

## Sources

1. **Sturm an der Küste**, Nordkurier, 2026-03-02 — de-storm.txt (German; translated from German by opus-mt-de-en). <https://example.org/sturm>. Also at: copy/de-storm.txt
2. **Storm report** — en-storm.md (English)

## Summaries

### [1] Sturm an der Küste

The storm hit at night.

*Extractive summary (sentences from the article).*

### [2] Storm report

Winds reached 150 km/h.

*Summary written by qwen2.5-0.5b-instruct.*

**Check this summary:** it states facts the article does not contain: Tuesday.

## Skipped

- in/blob.pdf: unsupported file type

## Appendix: translations

### [1] Sturm an der Küste

*translated from German by opus-mt-de-en*

The storm hit at night.

Ports were closed.
";
        assert_eq!(md, expected);
    }

    #[test]
    fn rendering_is_deterministic() {
        let b = brief();
        assert_eq!(render_markdown(&b), render_markdown(&b.clone()));
        assert_eq!(render_json(&b), render_json(&b.clone()));
    }

    #[test]
    fn json_round_trips_the_brief() {
        let b = brief();
        let back: Brief = serde_json::from_str(&render_json(&b)).unwrap();
        assert_eq!(back, b);
    }

    /// `escape` as it was written before it became one pass: whitespace collapsed, citations
    /// uncited, metacharacters escaped, then autolinks defused over the escaped text.
    fn escape_in_passes(text: &str) -> String {
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let decited = uncite(&collapsed);
        let mut out = String::new();
        for c in decited.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        let mut defused = String::new();
        let mut rest = out.as_str();
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("://") {
                defused.push_str(":\\/\\/");
                rest = &rest[3..];
            } else if rest
                .get(..4)
                .is_some_and(|w| w.eq_ignore_ascii_case("www."))
            {
                defused.push_str(&rest[..3]);
                defused.push_str("\\.");
                rest = &rest[4..];
            } else if c == '@' {
                defused.push_str("&#8203;@");
                rest = &rest[1..];
            } else {
                defused.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        neutralise_line_start(defused)
    }

    proptest::proptest! {
        #[test]
        fn escape_in_one_pass_is_escape_in_passes(
            text in "[ \t\n\u{a0}\u{2003}a-cwW0-9:/.@&<>#*_`|~\\\\\\[\\]［］【】\u{200b}\u{ad}+=)-]{0,40}"
        ) {
            proptest::prop_assert_eq!(escape(&text), escape_in_passes(&text));
        }
    }

    #[test]
    fn escape_in_one_pass_is_escape_in_passes_on_examples() {
        for text in [
            "",
            " ",
            "plain text",
            "  leading and trailing  ",
            "two  spaces\tand\na tab",
            "see http://evil.example and WWW.example.com or me@example.com",
            "wwww.x ww.w www",
            "[12] and [ 3 ] and ［９］ and 【4】 and [a]",
            "- item",
            "12. item",
            "1) x",
            "a :// b ://",
            "&amp; <b> \\ ` * _ [ ] # | ~",
        ] {
            assert_eq!(escape(text), escape_in_passes(text), "{text:?}");
        }
    }

    #[test]
    fn escape_defuses_markdown_and_html_injection() {
        assert_eq!(escape("# Heading"), "\\# Heading");
        assert_eq!(escape("[x](http://evil)"), "\\[x\\](http:\\/\\/evil)");
        assert_eq!(
            escape("![img](http://evil/a.png)"),
            "!\\[img\\](http:\\/\\/evil/a.png)"
        );
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(escape("> quote"), "&gt; quote");
        assert_eq!(escape("- item"), "\\- item");
        assert_eq!(escape("12. item"), "12\\. item");
        assert_eq!(escape("a | b"), "a \\| b");
        assert_eq!(
            escape("**bold** _it_ `code` ~~x~~"),
            "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~\\~x\\~\\~"
        );
        assert_eq!(escape("&lt;b&gt;"), "&amp;lt;b&amp;gt;");
        assert_eq!(
            escape("line one\n# line two\n\n- three"),
            "line one \\# line two - three"
        );
    }

    /// Links and images GFM (comrak, autolink on) and CommonMark (pulldown-cmark) render.
    fn live_links(markdown: &str) -> Vec<String> {
        use comrak::nodes::NodeValue;
        let arena = comrak::Arena::new();
        let mut options = comrak::Options::default();
        options.extension.autolink = true;
        let mut urls = Vec::new();
        for node in comrak::parse_document(&arena, markdown, &options).descendants() {
            if let NodeValue::Link(link) | NodeValue::Image(link) = &node.data().value {
                urls.push(format!("gfm {}", link.url));
            }
        }
        for event in pulldown_cmark::Parser::new(markdown) {
            if let pulldown_cmark::Event::Start(
                pulldown_cmark::Tag::Link { dest_url, .. }
                | pulldown_cmark::Tag::Image { dest_url, .. },
            ) = event
            {
                urls.push(format!("commonmark {dest_url}"));
            }
        }
        urls
    }

    #[test]
    fn article_text_renders_no_live_link_in_gfm_or_commonmark() {
        let mut b = brief();
        b.stories[0].points[1].text = "See http://evil.example/a, https://evil.example/b?x=1, \
            www.evil.example/c, WWW.EVIL.EXAMPLE, ftp://evil.example, mail tips@evil.example, \
            [x](http://evil.example/d), ![img](http://evil.example/e.png) and <http://evil.example/f>."
            .into();
        b.sources[1].title = "www.title.example".into();
        let md = render_markdown(&b);
        // Only the source's own URL is a link.
        assert_eq!(
            live_links(&md),
            [
                "gfm https://example.org/sturm",
                "commonmark https://example.org/sturm"
            ],
            "{md}"
        );
        let line = md.lines().find(|l| l.contains("See http")).unwrap();
        assert!(
            line.starts_with("- See http:\\/\\/evil.example/a, "),
            "{line}"
        );
    }

    #[test]
    fn article_text_cannot_fake_citations() {
        assert_eq!(
            escape("as shown [9] and ［3］ and [ 12 ]"),
            "as shown (9) and (3) and (12)"
        );
        let mut b = brief();
        b.stories[0].points[1].text =
            "Ports were closed [9]\n## Fake section\n<img src=x onerror=alert(1)>".into();
        let md = render_markdown(&b);
        let line = md.lines().find(|l| l.starts_with("- Ports")).unwrap();
        assert_eq!(
            line,
            "- Ports were closed (9) \\#\\# Fake section &lt;img src=x onerror=alert(1)&gt; [2]"
        );
        assert!(!md.contains("[9]"));
        assert!(!md.lines().any(|l| l.starts_with("## Fake")));
    }

    #[test]
    fn invisible_and_look_alike_characters_cannot_fake_a_citation() {
        assert_eq!(
            escape("a word joiner [\u{2060}9], a zero-width space [9\u{200b}], a soft hyphen [\u{ad}4]"),
            "a word joiner (9), a zero-width space (9), a soft hyphen (4)"
        );
        assert_eq!(
            escape("look-alikes ⟦9⟧ 【3】 ［９］ [𝟗]"),
            "look-alikes (9) (3) (9) (9)"
        );
        let mut b = brief();
        b.stories[0].points[1].text = "Ports were closed [\u{2060}9]".into();
        let md = render_markdown(&b);
        assert!(md.contains("- Ports were closed (9) [2]"), "{md}");
    }

    #[test]
    fn control_characters_in_article_text_are_shown_not_obeyed_in_the_brief_but_exact_in_json() {
        let mut b = brief();
        let hostile = "Ports closed\u{1b}c\u{1b}P+q\u{9c} \u{202e}reversed";
        b.stories[0].points[1].text = hostile.into();
        b.sources[1].title = "Title \u{7}\u{9b}31m".into();
        let md = render_markdown(&b);
        assert!(!md.chars().any(crate::output::is_hazard), "{md:?}");
        assert!(
            md.contains("Ports closed\\u{1b}c\\u{1b}P+q\\u{9c} \\u{202e}reversed"),
            "{md}"
        );
        let json = render_json(&b);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["stories"][0]["points"][1]["text"], hostile);
    }

    #[test]
    fn titles_and_urls_from_articles_are_escaped() {
        let mut b = brief();
        b.sources[1].title = "Evil]( javascript:alert(1) )\n# Owned".into();
        b.sources[1].url = Some("javascript:alert(1)".into());
        b.sources[1].outlet = Some("<b>Outlet</b>".into());
        let md = render_markdown(&b);
        assert!(md.contains("2. **Evil\\]( javascript:alert(1) ) \\# Owned**, &lt;b&gt;Outlet&lt;/b&gt; — en-storm.md (English). javascript:alert(1)"));
        assert!(!md.contains("<javascript"));
        assert!(md.contains("### [2] Evil\\]( javascript:alert(1) ) \\# Owned\n"));
    }

    #[test]
    fn problems_reports_dangling_citations_and_gaps() {
        assert!(brief().problems().is_empty());
        let mut b = brief();
        b.stories[0].points[0].citations.push(7);
        b.sources[1].number = 3;
        assert_eq!(
            b.problems(),
            [
                "source 3 is listed at position 2",
                "source [2] is cited but not listed",
                "source [7] is cited but not listed"
            ]
        );
    }

    #[test]
    fn optional_sections_are_left_out_when_empty() {
        let mut b = brief();
        b.skipped.clear();
        b.translations = None;
        for source in &mut b.sources {
            source.summary = None;
        }
        let md = render_markdown(&b);
        assert!(!md.contains("## Skipped"));
        assert!(!md.contains("## Summaries"));
        assert!(!md.contains("## Appendix"));
        assert!(md.ends_with("2. **Storm report** — en-storm.md (English)\n"));
    }
}
