//! Sentence segmentation: cuts each paragraph of a [`DetectedArticle`] into sentences
//! ([`Segment`]s) with byte spans into the paragraph, so the translator gets one sentence at
//! a time and every English sentence can point back at its source.
//!
//! The base is UAX #29 (`unicode-segmentation`), which already gets CJK full-width
//! terminators (`。！？` with no space after), closing quotes after a terminator (`."`) and
//! decimals (`3.5`) right. Its known weaknesses in news text are fixed with rules:
//! - abbreviations and initials before a capital (`Dr. Smith`, `z. B. Die`, `U.S. President`,
//!   `EE. UU. Los`) are not sentence ends;
//! - a German day ordinal before a month (`9. Januar`) is not a sentence end;
//! - a period glued to the next sentence (`Alibaba.Hôm`, `Tower.Their`) is one, and so is a
//!   Korean sentence end glued to a number (`약속했다.10일`);
//! - a line break inside a paragraph is a sentence boundary only where it ends a line that
//!   could end a sentence (a hard-wrapped sentence is joined back).
//!
//! Very long "sentences" are kept whole: splitting them is the translator's business, and
//! nothing here may drop text (every non-space character of a paragraph is in exactly one
//! segment).

pub(crate) mod stage;

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use crate::article::{DetectedArticle, Segment, SegmentedArticle};
use crate::pipeline::detect;

/// Cuts every paragraph into sentences. A sentence's language is its paragraph's, except in
/// paragraphs that mix scripts (an English paragraph quoting Korean), where each sentence is
/// identified on its own and falls back to the paragraph's language when unsure.
pub fn segment(detected: DetectedArticle) -> SegmentedArticle {
    let mut segments = Vec::new();
    for (index, paragraph) in detected.paragraphs.iter().enumerate() {
        let mixed = detect::is_mixed_script(&paragraph.text);
        for span in split_sentences(&paragraph.text) {
            let text = paragraph.text[span.clone()].to_string();
            let lang = if mixed {
                detect::identify(&text).or_else(|| paragraph.lang.clone())
            } else {
                paragraph.lang.clone()
            };
            segments.push(Segment {
                paragraph: index,
                span,
                text,
                lang,
            });
        }
    }
    SegmentedArticle { detected, segments }
}

/// Byte ranges of the sentences of `paragraph`, in order, without surrounding whitespace.
pub fn split_sentences(paragraph: &str) -> Vec<Range<usize>> {
    // Rules look at a copy where soft line wraps are spaces; the copy has the same byte
    // length, so its offsets are the paragraph's offsets.
    let work = unwrap_soft_line_breaks(paragraph);

    let mut boundaries: Vec<usize> = work
        .split_sentence_bound_indices()
        .map(|(start, _)| start)
        .filter(|&start| start > 0 && !continues_sentence(&work, start))
        .collect();
    boundaries.extend(glued_sentence_starts(&work));
    boundaries.sort_unstable();
    boundaries.dedup();

    let mut spans = Vec::new();
    let mut start = 0;
    for end in boundaries.into_iter().chain(std::iter::once(work.len())) {
        if let Some(span) = trimmed(&work, start..end) {
            spans.push(span);
        }
        start = end;
    }
    spans
}

/// The part of `range` left after trimming whitespace, or `None` when nothing is left.
fn trimmed(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let slice = &text[range.clone()];
    let leading = slice.len() - slice.trim_start().len();
    let trailing = slice.len() - slice.trim_end().len();
    (leading < slice.len()).then(|| range.start + leading..range.end - trailing)
}

/// Replaces line breaks that only wrap a sentence with spaces (same byte length). A break
/// stays when the line before could end a sentence or a heading: it ends in punctuation, or
/// the next line does not start in lowercase (a headline followed by its body).
fn unwrap_soft_line_breaks(paragraph: &str) -> String {
    let mut out = String::with_capacity(paragraph.len());
    let mut lines = paragraph.split('\n').peekable();
    while let Some(line) = lines.next() {
        let Some(next) = lines.peek() else {
            out.push_str(line);
            break;
        };
        let ends_open = line
            .trim_end()
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, ',' | '-' | '–' | '、' | '，'));
        let next_starts_lower = next
            .trim_start()
            .chars()
            .next()
            .is_some_and(char::is_lowercase);
        if ends_open && next_starts_lower {
            // A `\r` before the break becomes a space too, keeping the length.
            out.push_str(&line.replace('\r', " "));
            out.push(' ');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Whether UAX #29's boundary at `at` is a false one: the text before ends in an
/// abbreviation, an initial or a day ordinal that the text after continues.
fn continues_sentence(text: &str, at: usize) -> bool {
    let (before, after) = text.split_at(at);
    let gap_start = before.trim_end().len();
    if before[gap_start..].contains('\n') {
        return false;
    }
    let before = before.trim_end();
    if !before.ends_with('.') {
        return false;
    }
    // A list number at the start of a line ("1. 中 외국계 은행") starts its item.
    let line = before.rsplit('\n').next().unwrap_or(before).trim_start();
    if (2..=4).contains(&line.len()) && line[..line.len() - 1].bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let token = last_token(before);
    let next_word: String = after
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect();
    if next_word.is_empty() && !after.trim_start().starts_with(|c: char| c.is_numeric()) {
        // Only a word or a number continues a sentence after an abbreviation.
        return false;
    }
    is_abbreviation(token) || is_day_before_month(token, &next_word)
}

/// The last whitespace-separated token of `text`, without opening brackets or quotes.
fn last_token(text: &str) -> &str {
    let token = text.split_whitespace().last().unwrap_or("");
    token.trim_start_matches(|c: char| {
        matches!(
            c,
            '(' | '[' | '"' | '\'' | '„' | '“' | '‘' | '«' | '‹' | '/'
        )
    })
}

/// Abbreviations that are (almost) never the last word of a sentence, because a name or
/// noun follows them: titles, "for example", "number", and Vietnamese "city"/"doctor".
/// Abbreviations that often end a sentence ("etc.", "Inc.", "usw.") are deliberately absent.
#[rustfmt::skip]
const ABBREVIATIONS: &[&str] = &[
    // English
    "Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Sr.", "St.", "Gen.", "Sen.", "Rep.", "Gov.", "Lt.",
    "Col.", "Capt.", "Sgt.", "Maj.", "Adm.", "Rev.", "Hon.", "Pres.", "Mt.", "Ft.", "No.",
    "vs.", "v.", "approx.",
    // German
    "Nr.", "nr.", "Hr.", "Fr.", "bzw.", "ca.", "vgl.", "ggf.", "Str.", "Bd.", "Abs.", "Art.",
    // French
    "MM.", "Mme.", "Mlle.", "Pr.", "av.", "apr.", "env.", "Ste.",
    // Spanish / Portuguese / Italian
    "Sr.", "Sra.", "Srta.", "Dra.", "Lic.", "Ing.", "EE.", "UU.", "Ud.", "Uds.", "Dña.",
    "aprox.", "núm.", "pág.", "Sig.", "Dott.", "dott.", "Avv.", "on.",
    // Dutch / Swedish / Polish
    "dhr.", "mevr.", "bijv.", "drs.", "ir.", "np.", "tzw.", "ok.", "ul.", "al.", "św.", "płk.",
    "prof.", "dr.", "gen.",
    // Russian / Ukrainian
    "г.", "гг.", "ул.", "им.", "пр.", "тыс.", "млн.", "млрд.", "руб.", "ст.", "проф.", "акад.",
    "ген.", "вул.", "грн.",
    // Turkish / Indonesian
    "Doç.", "Av.", "Sn.", "Bpk.", "Yth.",
    // Vietnamese: Thành phố, Tiến sĩ, Thạc sĩ, Giáo sư, Phó giáo sư, Bác sĩ
    "TP.", "Tp.", "TS.", "ThS.", "GS.", "PGS.", "BS.",
];

/// Whether `token` (ending in `.`) is an abbreviation that a sentence goes on after: one of
/// [`ABBREVIATIONS`], a single-letter initial (`J.`, `z.`), or dotted initials (`U.S.`,
/// `z.B.`, `bl.a.`, `m.in.`, `J.-C.`).
fn is_abbreviation(token: &str) -> bool {
    if ABBREVIATIONS.contains(&token) {
        return true;
    }
    let body = &token[..token.len() - 1];
    if body.chars().count() == 1 && body.chars().all(char::is_alphabetic) {
        return true;
    }
    let groups: Vec<&str> = body.split('.').collect();
    groups.len() >= 2
        && groups.iter().all(|g| {
            let g = g.trim_start_matches('-');
            (1..=3).contains(&g.chars().count()) && g.chars().all(char::is_alphabetic)
        })
}

/// German (and Danish/Norwegian, with capitalised months) writes day ordinals with a period:
/// `am 9. Januar`. Lowercase months never got a boundary from UAX #29 in the first place.
fn is_day_before_month(token: &str, next_word: &str) -> bool {
    #[rustfmt::skip]
    const MONTHS: &[&str] = &[
        "Januar", "Jänner", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
        "September", "Oktober", "November", "Dezember",
    ];
    let day = &token[..token.len() - 1];
    (1..=2).contains(&day.len())
        && day.bytes().all(|b| b.is_ascii_digit())
        && MONTHS.contains(&next_word)
}

/// Offsets where a sentence starts right after a period with no space: `Alibaba.Hôm`
/// (a lowercase word of two or more letters, then a capitalised word) and a Korean sentence
/// end glued to a number (`했다.10일`). URLs, e-mail addresses and dotted names
/// (`U.S`, `Node.js`) are left alone.
fn glued_sentence_starts(text: &str) -> Vec<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut starts = Vec::new();
    for i in 2..chars.len().saturating_sub(1) {
        if chars[i].1 != '.' {
            continue;
        }
        let (p2, p1) = (chars[i - 2].1, chars[i - 1].1);
        let n1 = chars[i + 1].1;
        let n2 = chars.get(i + 2).map(|&(_, c)| c);
        let latin_glue = p1.is_lowercase()
            && p2.is_alphabetic()
            && n1.is_uppercase()
            && n2.is_some_and(char::is_lowercase);
        let hangul_glue = is_hangul(p1) && n1.is_ascii_digit();
        if !(latin_glue || hangul_glue) {
            continue;
        }
        let token_start = text[..chars[i].0]
            .char_indices()
            .rfind(|(_, c)| c.is_whitespace())
            .map_or(0, |(at, c)| at + c.len_utf8());
        let token = &text[token_start..chars[i].0];
        if token.contains("://") || token.contains('@') || token.starts_with("www") {
            continue;
        }
        starts.push(chars[i + 1].0);
    }
    starts
}

fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        split_sentences(text)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn splits_plain_latin_sentences() {
        assert_eq!(
            sentences("The storm hit at night. Nobody was hurt! Was the warning late?"),
            [
                "The storm hit at night.",
                "Nobody was hurt!",
                "Was the warning late?"
            ]
        );
    }

    #[test]
    fn keeps_abbreviations_and_initials_inside_the_sentence() {
        assert_eq!(
            sentences("Dr. Smith met Donald J. Trump in the U.S. Capitol. Then he left."),
            [
                "Dr. Smith met Donald J. Trump in the U.S. Capitol.",
                "Then he left."
            ]
        );
        assert_eq!(
            sentences("Es gibt z. B. Die Linke und Nr. 5 der Liste. Danach kam Prof. Weber."),
            [
                "Es gibt z. B. Die Linke und Nr. 5 der Liste.",
                "Danach kam Prof. Weber."
            ]
        );
        assert_eq!(
            sentences("El presidente de EE. UU. Joe Biden habló. Luego se fue."),
            ["El presidente de EE. UU. Joe Biden habló.", "Luego se fue."]
        );
    }

    #[test]
    fn keeps_decimals_and_german_day_ordinals() {
        assert_eq!(
            sentences("Der Wert stieg um 3.5 Prozent am 9. Januar in Berlin. Das ist viel."),
            [
                "Der Wert stieg um 3.5 Prozent am 9. Januar in Berlin.",
                "Das ist viel."
            ]
        );
    }

    #[test]
    fn keeps_closing_quotes_with_their_sentence() {
        assert_eq!(
            sentences(r#"He said: "We had a great meeting." Then he left. „Gut.“ Sie ging."#),
            [
                r#"He said: "We had a great meeting.""#,
                "Then he left.",
                "„Gut.“",
                "Sie ging."
            ]
        );
    }

    #[test]
    fn ellipsis_before_lowercase_continues_the_sentence() {
        assert_eq!(
            sentences("We waited... and waited. Nothing came."),
            ["We waited... and waited.", "Nothing came."]
        );
    }

    #[test]
    fn splits_period_glued_to_the_next_sentence() {
        assert_eq!(
            sentences("thương mại điện tử giữa Mỹ và Alibaba.Hôm thứ 2 vừa qua, tỷ phú nói."),
            [
                "thương mại điện tử giữa Mỹ và Alibaba.",
                "Hôm thứ 2 vừa qua, tỷ phú nói."
            ]
        );
        assert_eq!(
            sentences("Trump met Jack Ma in Trump Building.Their meeting sparked attention."),
            [
                "Trump met Jack Ma in Trump Building.",
                "Their meeting sparked attention."
            ]
        );
    }

    #[test]
    fn leaves_urls_and_dotted_names_glued() {
        assert_eq!(
            sentences("See https://example.com/News.Today and Node.js for more."),
            ["See https://example.com/News.Today and Node.js for more."]
        );
    }

    #[test]
    fn splits_cjk_full_width_terminators_without_spaces() {
        assert_eq!(
            sentences("台风今天登陆。风速达到每小时150公里！居民安全吗？是的。"),
            [
                "台风今天登陆。",
                "风速达到每小时150公里！",
                "居民安全吗？",
                "是的。"
            ]
        );
        assert_eq!(
            sentences("東京で地震がありました。けが人はいません。"),
            ["東京で地震がありました。", "けが人はいません。"]
        );
    }

    #[test]
    fn splits_hangul_sentences_including_one_glued_to_a_number() {
        assert_eq!(
            sentences("마윈(马云) 회장이 트럼프 당선인과 만났다. 일자리를 약속했다.10일 중국 언론이 보도했다."),
            [
                "마윈(马云) 회장이 트럼프 당선인과 만났다.",
                "일자리를 약속했다.",
                "10일 중국 언론이 보도했다."
            ]
        );
    }

    #[test]
    fn splits_cyrillic_and_keeps_its_abbreviations() {
        assert_eq!(
            sentences("Встреча прошла в г. Москва. Участники довольны."),
            ["Встреча прошла в г. Москва.", "Участники довольны."]
        );
    }

    #[test]
    fn splits_vietnamese_and_keeps_city_abbreviation() {
        assert_eq!(
            sentences("Tuyến metro số 1 ở TP. Hồ Chí Minh đã mở cửa. Hàng nghìn người đi thử."),
            [
                "Tuyến metro số 1 ở TP. Hồ Chí Minh đã mở cửa.",
                "Hàng nghìn người đi thử."
            ]
        );
    }

    #[test]
    fn a_headline_line_is_its_own_sentence_but_a_wrapped_line_is_joined() {
        assert_eq!(
            sentences(
                "Storm hits the coast\nThe storm arrived at night and\nflooded the port. It left."
            ),
            [
                "Storm hits the coast",
                "The storm arrived at night and\nflooded the port.",
                "It left."
            ]
        );
    }

    #[test]
    fn a_list_number_stays_with_its_item() {
        assert_eq!(
            sentences("1. 中 외국계 은행 ‘감원바람’\n2. 상하이, 주택 기준 폐지\n10. Gold falls."),
            [
                "1. 中 외국계 은행 ‘감원바람’",
                "2. 상하이, 주택 기준 폐지",
                "10. Gold falls."
            ]
        );
        // A year at the end of a sentence is not a list number.
        assert_eq!(
            sentences("It opened in 2017. Then it closed."),
            ["It opened in 2017.", "Then it closed."]
        );
    }

    #[test]
    fn very_long_sentence_is_kept_whole() {
        let long = format!("{} end.", "word ".repeat(2000));
        assert_eq!(sentences(&long), [long.as_str()]);
    }

    #[test]
    fn no_text_is_lost_and_spans_point_into_the_paragraph() {
        let text = "  Erster Satz.  Zweiter Satz!\n\n Dritter?  ";
        let spans = split_sentences(text);
        let kept: String = spans.iter().map(|r| &text[r.clone()]).collect();
        let original: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(kept.replace(char::is_whitespace, ""), original);
        assert!(spans.windows(2).all(|w| w[0].end <= w[1].start));
    }

    #[test]
    fn odd_text_never_panics_and_loses_nothing() {
        let odd = [
            "x\u{a0}Alibaba.Hôm nay\u{3000}Tôi.Anh",
            "...",
            ". . .",
            "1.",
            "a.B",
            "Dr.",
            "„Gut.“\r\nSie ging.\r\n",
            "\u{a0}z. B.\u{a0}Die",
            "했다.1",
            "(U.S.) [Nr.] «Prof.» Ende.",
            "www.example.com/A.Bcd and mail@host.De.Fg",
        ];
        for text in odd {
            let spans = split_sentences(text);
            let kept: String = spans.iter().map(|r| &text[r.clone()]).collect();
            let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            assert_eq!(strip(&kept), strip(text), "{text:?}");
        }
    }

    #[test]
    fn empty_and_blank_paragraphs_have_no_sentences() {
        assert!(split_sentences("").is_empty());
        assert!(split_sentences(" \n\t ").is_empty());
    }
}
