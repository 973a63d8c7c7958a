//! Key facts of English text — numbers, dates and names — with keys normalised so that the
//! same fact written two ways compares equal ("1 million" = "1,000,000" = "1.000.000",
//! "Hà Nội" = "Hanoi", "President Biden" ∋ "Biden").
//!
//! Two checks are built on them: summary grounding (every fact of a summary must be in the
//! article) and citation checking (a cited source must contain the key facts of the point
//! citing it). Both only ever compare keys, so the normalisation here is what decides whether
//! a translation's "50.000 people" supports a summary's "50,000 people".
//!
//! The text is English (translated or original), but machine translation leaves traces of the
//! source language: European separators ("1.000.000", "1,5 million"), untranslated scale words
//! ("50 tỷ USD", "3 Mio.", "2억"). Those are read as the numbers they mean.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// What kind of key fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FactKind {
    /// A quantity: "12", "1.2 million", "$50 billion", "40%".
    Number,
    /// A year, month, day of month, weekday, time or numeric date.
    Date,
    /// A capitalised word sequence that is not sentence-initial: people, places, organisations.
    Name,
}

/// One key fact: as written in the text, and the normalised key that is compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub kind: FactKind,
    /// The fact as written ("1,2 million", "March 5th", "President Biden").
    pub text: String,
    /// The normalised form: the exact decimal value of a number ("1200000", "12.5%"), a year
    /// ("2024"), "month:03", "date:03-05", "weekday:monday", or a name's folded words ("biden").
    pub key: String,
}

impl std::fmt::Display for Fact {
    /// The fact as the text wrote it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Every key fact of `text`, in order of first appearance, one per key (the first spelling wins).
pub fn extract_facts(text: &str) -> Vec<Fact> {
    let mut seen = BTreeSet::new();
    scan(text)
        .into_iter()
        .filter(|span| seen.insert((span.fact.kind, span.fact.key.clone())))
        .map(|span| span.fact)
        .collect()
}

/// The facts of `claim` that `source` does not contain. A number or date is contained when the
/// source states the same value (in any spelling); a name when its words appear in the source
/// in order (titles such as "President" are not part of a name; "Ha Noi" matches "Hanoi").
pub fn missing_facts(claim: &str, source: &str) -> Vec<Fact> {
    SourceFacts::new(source).missing(&extract_facts(claim))
}

/// Whether `source` supports the key facts of `claim`: the claim states at least one key fact,
/// the source contains every number and date of it, and at least half of its names (names are
/// the facts translation most often respells). A claim without key facts shares none, so this
/// is false; callers judge such claims by wording alone.
pub fn shares_key_facts(claim: &str, source: &str) -> bool {
    SourceFacts::new(source).supports(&extract_facts(claim))
}

/// The key facts of one source text, indexed for repeated `missing`/`supports` questions
/// (citation checking asks many claims against the same sources).
#[derive(Clone, Debug)]
pub(crate) struct SourceFacts {
    keys: BTreeSet<String>,
    /// Months mentioned with or without a day ("03"), so "in March" is supported by "March 5".
    months: BTreeSet<String>,
    /// The source's words, folded (lowercase, no diacritics, no possessive 's).
    words: Vec<String>,
}

impl SourceFacts {
    pub(crate) fn new(source: &str) -> SourceFacts {
        let mut keys = BTreeSet::new();
        let mut months = BTreeSet::new();
        for span in scan(source) {
            if let Some(month) = span.fact.key.strip_prefix("month:") {
                months.insert(month.to_string());
            }
            if let Some(month_day) = span.fact.key.strip_prefix("date:") {
                if let Some((month, _)) = month_day.split_once('-') {
                    months.insert(month.to_string());
                }
            }
            keys.insert(span.fact.key);
        }
        let words = words(source).into_iter().map(|w| w.folded).collect();
        SourceFacts {
            keys,
            months,
            words,
        }
    }

    pub(crate) fn contains(&self, fact: &Fact) -> bool {
        match fact.kind {
            FactKind::Name => self.contains_name(&fact.key),
            FactKind::Number | FactKind::Date => {
                if let Some(month) = fact.key.strip_prefix("month:") {
                    self.months.contains(month)
                } else {
                    self.keys.contains(&fact.key)
                }
            }
        }
    }

    pub(crate) fn missing(&self, facts: &[Fact]) -> Vec<Fact> {
        facts
            .iter()
            .filter(|f| !self.contains(f))
            .cloned()
            .collect()
    }

    pub(crate) fn supports(&self, facts: &[Fact]) -> bool {
        if facts.is_empty() {
            return false;
        }
        let mut names = 0usize;
        let mut names_found = 0usize;
        for fact in facts {
            let found = self.contains(fact);
            match fact.kind {
                FactKind::Name => {
                    names += 1;
                    names_found += usize::from(found);
                }
                FactKind::Number | FactKind::Date if !found => return false,
                _ => {}
            }
        }
        names_found * 2 >= names
    }

    /// A name is found when its words appear consecutively in the source, or when they spell
    /// the same letters as one to three consecutive source words ("ha noi" / "hanoi").
    fn contains_name(&self, key: &str) -> bool {
        let parts: Vec<&str> = key.split(' ').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return true;
        }
        let joined: String = parts.concat();
        let n = self.words.len();
        for start in 0..n {
            if start + parts.len() <= n
                && parts
                    .iter()
                    .zip(&self.words[start..])
                    .all(|(p, w)| same_name_word(p, w))
            {
                return true;
            }
            let mut concat = String::new();
            for w in self.words[start..n.min(start + 3)].iter() {
                concat.push_str(w);
                if concat == joined {
                    return true;
                }
                if concat.len() >= joined.len() {
                    break;
                }
            }
        }
        false
    }
}

/// Name words match when equal, or when they share a stem of five or more letters that is all
/// of the shorter word but at most one letter and the longer word adds at most three
/// ("German"/"Germany", "Vietnam"/"Vietnamese"): translations alternate between a country and
/// its adjective. "Austria"/"Australia" or "John"/"Johnson" do not match.
fn same_name_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let shorter = a.chars().count().min(b.chars().count());
    let longer = a.chars().count().max(b.chars().count());
    common >= 5 && common + 1 >= shorter && longer - common <= 3
}

/// What a number counts, as far as its spelling tells: used to compare like with like when
/// looking for sources that disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unit {
    Count,
    Percent,
    Money,
    Year,
    /// A day of a month ("March 5").
    MonthDay,
    Month,
    Weekday,
    /// Clock times and numeric dates.
    Other,
}

/// A fact with its byte range in the scanned text.
#[derive(Clone, Debug)]
pub(crate) struct FactSpan {
    pub fact: Fact,
    pub span: Range<usize>,
    pub unit: Unit,
}

/// Every fact occurrence in `text`, in order of position (repeats included).
pub(crate) fn scan(text: &str) -> Vec<FactSpan> {
    let mut spans: Vec<FactSpan> = Vec::new();
    let mut taken = Taken::default();
    let overlaps = |taken: &Taken, r: &Range<usize>| taken.overlaps(r);

    // Dates first: the day in "March 5" is not a count of anything.
    for m in ISO_DATE.captures_iter(text) {
        let whole = m.get(0).map(|g| g.range()).unwrap_or_default();
        let (year, month, day) = (&m[1], &m[2], &m[3]);
        let (Ok(mo), Ok(d)) = (month.parse::<u32>(), day.parse::<u32>()) else {
            continue;
        };
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            continue;
        }
        let text_of = &text[whole.clone()];
        spans.push(FactSpan {
            fact: Fact {
                kind: FactKind::Date,
                text: text_of.into(),
                key: format!("date:{mo:02}-{d:02}"),
            },
            span: whole.clone(),
            unit: Unit::MonthDay,
        });
        spans.push(FactSpan {
            fact: Fact {
                kind: FactKind::Date,
                text: year.into(),
                key: year.into(),
            },
            span: whole.clone(),
            unit: Unit::Year,
        });
        taken.push(whole);
    }
    for m in MONTH_DAY.captures_iter(text) {
        let whole = m.get(0).map(|g| g.range()).unwrap_or_default();
        if overlaps(&taken, &whole) {
            continue;
        }
        let (month_name, day) = match (m.name("m1"), m.name("d1"), m.name("m2"), m.name("d2")) {
            (Some(mo), Some(d), _, _) | (_, _, Some(mo), Some(d)) => (mo.as_str(), d.as_str()),
            _ => continue,
        };
        let (Some(mo), Ok(d)) = (month_number(month_name), day.parse::<u32>()) else {
            continue;
        };
        if !(1..=31).contains(&d) || !ends_at_word_boundary(text, whole.end) {
            continue;
        }
        spans.push(FactSpan {
            fact: Fact {
                kind: FactKind::Date,
                text: text[whole.clone()].into(),
                key: format!("date:{mo:02}-{d:02}"),
            },
            span: whole.clone(),
            unit: Unit::MonthDay,
        });
        taken.push(whole);
    }
    for m in CLOCK_OR_NUMERIC_DATE.find_iter(text) {
        let r = m.range();
        if overlaps(&taken, &r) || !starts_at_number_boundary(text, r.start) {
            continue;
        }
        spans.push(FactSpan {
            fact: Fact {
                kind: FactKind::Date,
                text: m.as_str().into(),
                key: format!("time:{}", m.as_str()),
            },
            span: r.clone(),
            unit: Unit::Other,
        });
        taken.push(r);
    }

    // Numbers written with digits.
    for m in DIGITS.find_iter(text) {
        let r = m.range();
        if overlaps(&taken, &r) || !starts_at_number_boundary(text, r.start) {
            continue;
        }
        if let Some(number) = read_number(text, r.clone()) {
            taken.push(number.span.clone());
            spans.push(number);
        }
    }

    // Numbers written as words ("three", "two million").
    for m in NUMBER_WORDS.captures_iter(text) {
        let whole = m.get(0).map(|g| g.range()).unwrap_or_default();
        if overlaps(&taken, &whole) {
            continue;
        }
        let Some(mut value) = word_number(&m[1]) else {
            continue;
        };
        let scale = m
            .name("scale")
            .map(|s| scale_exponent(s.as_str()).unwrap_or(0))
            .unwrap_or(0);
        if scale == 0 && matches!(m[1].to_lowercase().as_str(), "a" | "an" | "one") {
            // "one of the", "a" alone: not a stated quantity.
            continue;
        }
        value.exp += scale;
        let before = &text[..whole.start];
        if scale > 0 && before.to_lowercase().trim_end().ends_with("half") {
            value = value.times_half();
        }
        spans.push(FactSpan {
            fact: Fact {
                kind: FactKind::Number,
                text: text[whole.clone()].into(),
                key: value.to_string(),
            },
            span: whole.clone(),
            unit: Unit::Count,
        });
        taken.push(whole);
    }

    // Month names without a day, and weekdays; then names from what is left.
    let tokens = words(text);
    for (i, token) in tokens.iter().enumerate() {
        if overlaps(&taken, &token.span) {
            continue;
        }
        if let Some(day) = weekday(&token.text) {
            spans.push(FactSpan {
                fact: Fact {
                    kind: FactKind::Date,
                    text: token.text.clone(),
                    key: format!("weekday:{day}"),
                },
                span: token.span.clone(),
                unit: Unit::Weekday,
            });
            taken.push(token.span.clone());
        } else if let Some(mo) = month_number(&token.text) {
            // "May" is a month only where it cannot be the verb: mid-sentence, or before a year.
            let next_is_year = tokens
                .get(i + 1)
                .is_some_and(|t| t.text.len() == 4 && t.text.bytes().all(|b| b.is_ascii_digit()));
            if token.text == "May" && token.sentence_start && !next_is_year {
                continue;
            }
            spans.push(FactSpan {
                fact: Fact {
                    kind: FactKind::Date,
                    text: token.text.clone(),
                    key: format!("month:{mo:02}"),
                },
                span: token.span.clone(),
                unit: Unit::Month,
            });
            taken.push(token.span.clone());
        }
    }
    spans.extend(names(text, &tokens, &taken));
    spans.sort_by_key(|s| (s.span.start, s.span.end));
    spans
}

// ---------------------------------------------------------------------------------------------
// Numbers

static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)*").expect("valid regex"));
static ISO_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b((?:18|19|20)\d\d)-(\d\d)-(\d\d)\b").expect("valid regex"));
static CLOCK_OR_NUMERIC_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{1,2}:\d{2}\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b").expect("valid regex")
});
const MONTHS_RE: &str = "January|February|March|April|May|June|July|August|September|October|November|December|Jan\\.|Feb\\.|Aug\\.|Sept?\\.|Oct\\.|Nov\\.|Dec\\.";
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(?P<m1>{MONTHS_RE})\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?|\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{MONTHS_RE})"
    ))
    .expect("valid regex")
});
const SMALL_NUMBERS: &[(&str, u32)] = &[
    ("a", 1),
    ("an", 1),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];
static NUMBER_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    let words = SMALL_NUMBERS
        .iter()
        .map(|(w, _)| *w)
        .collect::<Vec<_>>()
        .join("|");
    Regex::new(&format!(
        r"(?i)\b((?:{words})(?:-(?:one|two|three|four|five|six|seven|eight|nine))?)\b(?:\s+(?P<scale>hundred|thousand|million|billion|trillion)\b)?"
    ))
    .expect("valid regex")
});

/// A decimal number held exactly: `mantissa × 10^exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decimal {
    mantissa: u128,
    exp: i32,
}

impl Decimal {
    fn times_half(self) -> Decimal {
        Decimal {
            mantissa: self.mantissa * 5,
            exp: self.exp - 1,
        }
    }
}

impl std::fmt::Display for Decimal {
    /// The canonical spelling: no trailing zeros after a decimal point, no exponent.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (mut mantissa, mut exp) = (self.mantissa, self.exp);
        while mantissa != 0 && mantissa % 10 == 0 && exp < 0 {
            mantissa /= 10;
            exp += 1;
        }
        let digits = mantissa.to_string();
        if mantissa == 0 {
            return f.write_str("0");
        }
        if exp >= 0 {
            write!(f, "{digits}{}", "0".repeat(exp as usize))
        } else {
            let point = exp.unsigned_abs() as usize;
            if digits.len() > point {
                let (int, frac) = digits.split_at(digits.len() - point);
                write!(f, "{int}.{frac}")
            } else {
                write!(f, "0.{}{digits}", "0".repeat(point - digits.len()))
            }
        }
    }
}

/// Reads digits with thousands separators or a decimal mark, either convention: a separator
/// followed by exactly three digits groups thousands ("50.000", "1,200"), otherwise it is the
/// decimal mark ("1,5", "2.75"); with both kinds, the last one is the decimal mark. After a
/// scale word a single dot is a decimal point ("1.250 billion" is English for 1.25 billion).
fn parse_digits(s: &str, scaled: bool) -> Option<Decimal> {
    let seps: Vec<(usize, char)> = s
        .char_indices()
        .filter(|(_, c)| *c == '.' || *c == ',')
        .collect();
    let groups: Vec<&str> = s.split(['.', ',']).collect();
    let (int_part, frac_part): (String, &str) = match seps.as_slice() {
        [] => (s.to_string(), ""),
        [(_, sep)] => {
            let thousands = groups[1].len() == 3
                && groups[0].len() <= 3
                && groups[0] != "0"
                && !(*sep == '.' && scaled);
            if thousands {
                (groups.concat(), "")
            } else {
                (groups[0].to_string(), groups[1])
            }
        }
        many => {
            let first = many[0].1;
            let last = many[many.len() - 1].1;
            let mixed = many.iter().any(|(_, c)| *c != first);
            if mixed {
                // All but the last separator group thousands; the last is the decimal mark.
                if many[..many.len() - 1].iter().any(|(_, c)| *c != first) || last == first {
                    return None;
                }
                let int_groups = &groups[..groups.len() - 1];
                if int_groups[1..].iter().any(|g| g.len() != 3) {
                    return None;
                }
                (int_groups.concat(), groups[groups.len() - 1])
            } else {
                if groups[1..].iter().any(|g| g.len() != 3) || groups[0].len() > 3 {
                    return None; // a version number or an IP address, not a quantity
                }
                (groups.concat(), "")
            }
        }
    };
    let digits = format!("{int_part}{frac_part}");
    let mantissa: u128 = digits.parse().ok()?;
    Some(Decimal {
        mantissa,
        exp: -(frac_part.len() as i32),
    })
}

/// The power of ten a scale word multiplies by.
fn scale_exponent(word: &str) -> Option<i32> {
    let w = word.to_lowercase();
    let w = w.trim_end_matches('.');
    Some(match w {
        "hundred" => 2,
        "thousand" | "nghìn" | "ngàn" | "tausend" => 3,
        "lakh" => 5,
        "million" | "mln" | "mn" | "triệu" | "mio" | "millionen" | "millions" => 6,
        "crore" => 7,
        "billion" | "bn" | "bln" | "tỷ" | "tỉ" | "mrd" | "milliarden" | "milliards" => 9,
        "trillion" | "tn" | "nghìn tỷ" => 12,
        "만" => 4,
        "억" => 8,
        "조" => 12,
        _ => return None,
    })
}

const CURRENCY_BEFORE: &[&str] = &[
    "US$", "$", "€", "£", "¥", "₩", "₫", "USD ", "EUR ", "VND ", "KRW ", "GBP ", "JPY ", "CNY ",
];
const CURRENCY_AFTER: &[&str] = &[
    "dollars", "dollar", "usd", "euros", "euro", "eur", "vnd", "đồng", "dong", "won", "krw", "yen",
    "jpy", "yuan", "cny", "pounds", "gbp", "rupees", "francs", "chf",
];
const UNIT_SUFFIXES: &[&str] = &[
    "km", "kg", "cm", "mm", "m", "mph", "ha", "kw", "mw", "gw", "kwh", "t",
];

/// A number starting at `digits` (a run of digits and separators), with its currency, scale
/// word, percent sign and currency word around it.
fn read_number(text: &str, digits: Range<usize>) -> Option<FactSpan> {
    let before = &text[..digits.start];
    let currency_before = CURRENCY_BEFORE
        .iter()
        .find(|c| before.ends_with(*c))
        .copied();
    let start = digits.start - currency_before.map_or(0, str::len);
    let mut end = digits.end;
    let mut raw = text[digits.clone()].to_string();
    // Thousands grouped by spaces, as French and Vietnamese write them and translation keeps
    // them ("50 000"): only after a short plain group, and only groups of exactly three digits.
    let mut space_grouped = false;
    while raw.len() <= 3 || space_grouped {
        let rest = &text[end..];
        let Some(sep) = rest
            .chars()
            .next()
            .filter(|c| matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        else {
            break;
        };
        let group = &rest[sep.len_utf8()..];
        let three = group.len() >= 3 && group.as_bytes()[..3].iter().all(u8::is_ascii_digit);
        let after = group.get(3..).and_then(|g| g.chars().next());
        let ends = !after.is_some_and(|c| c.is_ascii_digit() || c == '.' || c == ',') || {
            // "50 000." at the end of a sentence is still a group.
            let tail = group.get(4..).and_then(|g| g.chars().next());
            matches!(after, Some('.' | ',')) && !tail.is_some_and(|c| c.is_ascii_digit())
        };
        if !three || !ends || raw.contains(['.', ',']) {
            break;
        }
        raw.push_str(&group[..3]);
        end += sep.len_utf8() + 3;
        space_grouped = true;
    }
    let raw = raw.as_str();

    // What follows: a scale word (spaced or attached), %, a unit, an ordinal, a currency.
    let mut scale = 0i32;
    let mut percent = false;
    let mut money = currency_before.is_some();
    let mut ordinal_or_decade = None;
    let rest = &text[end..];
    let attached: String = rest.chars().take_while(|c| c.is_alphabetic()).collect();
    if !attached.is_empty() {
        let lower = attached.to_lowercase();
        if let Some(exp) = scale_exponent(&attached).filter(|_| lower != "m" && lower != "t") {
            scale = exp; // "2억", "5bn"
        } else if (lower == "m" || lower == "k") && money {
            scale = if lower == "m" { 6 } else { 3 }; // "$5m"
        } else if matches!(lower.as_str(), "st" | "nd" | "rd" | "th") {
            ordinal_or_decade = Some("ordinal");
        } else if lower == "s" && raw.len() == 4 && raw.ends_with('0') && !raw.contains(['.', ','])
        {
            ordinal_or_decade = Some("decade");
        } else if !UNIT_SUFFIXES.contains(&lower.as_str()) {
            return None; // "5G", "3D": part of a name, not a quantity
        }
        end += attached.len();
    } else if rest.starts_with('%') {
        percent = true;
        end += 1;
    } else if let Some((word, len)) = next_word(rest) {
        if let Some(exp) = scale_exponent(&word) {
            scale = exp;
            end += len;
        } else if (word == "m" || word == "k") && money {
            scale = if word == "m" { 6 } else { 3 };
            end += len;
        }
    }
    if !percent && ordinal_or_decade.is_none() {
        let rest = &text[end..];
        if let Some((word, len)) = next_word(rest) {
            let lower = word.to_lowercase();
            if lower == "percent" {
                percent = true;
                end += len;
            } else if lower == "per" && next_word(&rest[len..]).is_some_and(|(w, _)| w == "cent") {
                percent = true;
                end += len + next_word(&rest[len..]).map_or(0, |(_, l)| l);
            } else if CURRENCY_AFTER.contains(&lower.as_str()) {
                money = true;
                end += len;
            }
        } else {
            // "5 %", as French and German typeset it.
            let spaced = rest.trim_start_matches([' ', '\u{a0}', '\u{202f}']);
            if spaced.starts_with('%') && rest.len() - spaced.len() <= 3 {
                percent = true;
                end += rest.len() - spaced.len() + 1;
            }
        }
    }
    let value = parse_digits(raw, scale > 0)?;
    let written = text[start..end].trim_end().to_string();
    let span = start..start + written.len();
    if ordinal_or_decade == Some("decade") {
        return Some(FactSpan {
            fact: Fact {
                kind: FactKind::Date,
                text: written,
                key: format!("{raw}s"),
            },
            span,
            unit: Unit::Year,
        });
    }
    let is_year = scale == 0
        && !percent
        && !money
        && ordinal_or_decade.is_none()
        && !space_grouped
        && raw.len() == 4
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (1800..=2100).contains(&value.mantissa);
    let value = Decimal {
        mantissa: value.mantissa,
        exp: value.exp + scale,
    };
    let (kind, unit, key) = if is_year {
        (FactKind::Date, Unit::Year, value.to_string())
    } else if percent {
        (FactKind::Number, Unit::Percent, format!("{value}%"))
    } else if money {
        (FactKind::Number, Unit::Money, value.to_string())
    } else {
        (FactKind::Number, Unit::Count, value.to_string())
    };
    Some(FactSpan {
        fact: Fact {
            kind,
            text: written,
            key,
        },
        span,
        unit,
    })
}

/// The next word after optional spaces (not across a line break), and the bytes up to its end.
fn next_word(rest: &str) -> Option<(String, usize)> {
    let trimmed = rest.trim_start_matches([' ', '\u{a0}', '\u{202f}', '\t']);
    let skipped = rest.len() - trimmed.len();
    if skipped > 2 {
        return None;
    }
    let word: String = trimmed
        .chars()
        .take_while(|c| c.is_alphabetic() || *c == '.' || *c == '$')
        .collect();
    // "Mio." keeps its dot; a sentence-final dot after an ordinary word does not belong to it.
    let word = if word.ends_with('.') && scale_exponent(&word).is_none() {
        word.trim_end_matches('.').to_string()
    } else {
        word
    };
    if word.is_empty() {
        return None;
    }
    Some((word.clone(), skipped + word.len()))
}

/// A number may not continue a word or code: "G7", "A320", "COVID-19" hold no quantity.
fn starts_at_number_boundary(text: &str, start: usize) -> bool {
    let mut before = text[..start].chars().rev();
    match before.next() {
        None => true,
        Some(c) if c.is_alphanumeric() => false,
        // "COVID-19" is a code; "2023-2024" and "10-12" are ranges.
        Some('-') => !before.next().is_some_and(char::is_alphabetic),
        Some(_) => true,
    }
}

fn ends_at_word_boundary(text: &str, end: usize) -> bool {
    !text[end..]
        .chars()
        .next()
        .is_some_and(char::is_alphanumeric)
}

fn word_number(words: &str) -> Option<Decimal> {
    let lower = words.to_lowercase();
    let mut total = 0u128;
    for part in lower.split('-') {
        let (_, v) = SMALL_NUMBERS.iter().find(|(w, _)| *w == part)?;
        total += u128::from(*v);
    }
    Some(Decimal {
        mantissa: total,
        exp: 0,
    })
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let w = word.trim_end_matches('.');
    if let Some(i) = MONTHS.iter().position(|m| *m == w) {
        return Some(i as u32 + 1);
    }
    if word.ends_with('.') {
        let abbrev = [
            "Jan", "Feb", "Mar", "Apr", "", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        if w == "Sept" {
            return Some(9);
        }
        return abbrev
            .iter()
            .position(|m| !m.is_empty() && *m == w)
            .map(|i| i as u32 + 1);
    }
    None
}

fn weekday(word: &str) -> Option<&'static str> {
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let w = word
        .strip_suffix('s')
        .filter(|w| DAYS.contains(w))
        .unwrap_or(word);
    DAYS.iter().find(|d| **d == w).map(|d| match *d {
        "Monday" => "monday",
        "Tuesday" => "tuesday",
        "Wednesday" => "wednesday",
        "Thursday" => "thursday",
        "Friday" => "friday",
        "Saturday" => "saturday",
        _ => "sunday",
    })
}

// ---------------------------------------------------------------------------------------------
// Words and names

/// A word of the text and whether it opens a sentence.
#[derive(Clone, Debug)]
pub(crate) struct Word {
    pub text: String,
    /// `fold(text)`, computed once.
    pub folded: String,
    pub span: Range<usize>,
    pub sentence_start: bool,
}

static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\p{Lu}\.){2,}|[\p{L}\p{M}\p{N}]+(?:['’\-][\p{L}\p{M}\p{N}]+)*")
        .expect("valid regex")
});

/// The words of `text`, each marked sentence-initial when nothing precedes it or when the gap
/// from the previous word holds sentence punctuation, a line break, a colon or a quote mark.
pub(crate) fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut prev_end: Option<usize> = None;
    for m in WORD.find_iter(text) {
        let gap = &text[prev_end.unwrap_or(0)..m.start()];
        let sentence_start = prev_end.is_none()
            || gap.contains([
                '.', '!', '?', '\n', ':', '"', '\u{201c}', '\u{ab}', '\u{201e}',
            ]);
        out.push(Word {
            text: m.as_str().to_string(),
            folded: fold(m.as_str()),
            span: m.range(),
            sentence_start,
        });
        prev_end = Some(m.end());
    }
    out
}

/// Lowercase, without diacritics, without a possessive "'s", without the dots of "U.S.".
pub(crate) fn fold(word: &str) -> String {
    if word.is_ascii() {
        // Most words of English text: no decomposition needed.
        let lower = word.to_ascii_lowercase();
        let lower = lower.strip_suffix("'s").unwrap_or(&lower);
        return lower.replace('.', "");
    }
    let lower = word.to_lowercase();
    let lower = lower
        .strip_suffix("'s")
        .or_else(|| lower.strip_suffix("’s"))
        .unwrap_or(&lower);
    lower
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c) && *c != '.')
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}

/// Capitalised words that are not names (or not on their own).
const NAME_STOPWORDS: &[&str] = &[
    "a",
    "about",
    "according",
    "after",
    "all",
    "also",
    "although",
    "among",
    "an",
    "and",
    "another",
    "as",
    "at",
    "because",
    "before",
    "between",
    "both",
    "but",
    "by",
    "despite",
    "during",
    "each",
    "even",
    "every",
    "for",
    "from",
    "he",
    "her",
    "here",
    "his",
    "how",
    "however",
    "i",
    "if",
    "in",
    "into",
    "it",
    "its",
    "just",
    "less",
    "many",
    "meanwhile",
    "more",
    "most",
    "my",
    "no",
    "not",
    "now",
    "of",
    "on",
    "only",
    "or",
    "other",
    "our",
    "over",
    "she",
    "since",
    "so",
    "some",
    "still",
    "such",
    "than",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "though",
    "through",
    "to",
    "today",
    "tomorrow",
    "under",
    "until",
    "we",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "with",
    "yes",
    "yesterday",
    "yet",
    "you",
    "your",
];

/// Titles and roles: they precede names but are not part of them, so "President Biden" and
/// "Biden" name the same person.
const TITLES: &[&str] = &[
    "ambassador",
    "chancellor",
    "chief",
    "deputy",
    "dr",
    "governor",
    "judge",
    "king",
    "mayor",
    "minister",
    "mr",
    "mrs",
    "ms",
    "pope",
    "premier",
    "president",
    "prime",
    "prof",
    "queen",
    "secretary",
    "senator",
    "sir",
    "spokesman",
    "spokesperson",
    "spokeswoman",
    "vice",
];

/// Words that may sit inside a name ("Bank of England", "Ursula von der Leyen").
const NAME_CONNECTORS: &[&str] = &[
    "of", "de", "van", "von", "der", "den", "al", "bin", "la", "le", "du", "da", "del", "di",
];

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

/// The byte ranges already claimed by a fact, queried in O(log n): a linear scan made
/// `scan` quadratic, 30 s of a 1 MB article's summary and synthesis.
#[derive(Default)]
struct Taken {
    /// Start → the largest end of a range starting there.
    by_start: BTreeMap<usize, usize>,
    /// The longest range pushed: no range that overlaps a query starts further before it.
    max_len: usize,
}

impl Taken {
    fn push(&mut self, r: Range<usize>) {
        self.max_len = self.max_len.max(r.len());
        let end = self.by_start.entry(r.start).or_insert(r.end);
        *end = (*end).max(r.end);
    }

    fn overlaps(&self, r: &Range<usize>) -> bool {
        let from = r.start.saturating_sub(self.max_len);
        self.by_start
            .range(from..r.end)
            .any(|(&start, &end)| start < r.end && r.start < end)
    }
}

fn names(text: &str, tokens: &[Word], taken: &Taken) -> Vec<FactSpan> {
    let free = |t: &Word| !taken.overlaps(&t.span);
    // Capitalisation at a sentence start says nothing; elsewhere it marks a name. A word the
    // text also writes in lowercase is an ordinary word ("Shares of Apple" / "its shares").
    let capitalised_mid_sentence: BTreeSet<String> = tokens
        .iter()
        .filter(|t| is_capitalised(&t.text) && !t.sentence_start)
        .map(|t| t.folded.clone())
        .collect();
    let lowercase_somewhere: BTreeSet<String> = tokens
        .iter()
        .filter(|t| t.text.chars().next().is_some_and(char::is_lowercase))
        .map(|t| t.folded.clone())
        .collect();

    // Runs of capitalised words joined by single spaces (or a connector between two of them).
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let joined_to_previous = current.last().is_some_and(|&p| {
            let gap = &text[tokens[p].span.end..token.span.start];
            !token.sentence_start
                && !gap.is_empty()
                && gap.chars().all(|c| c == ' ' || c == '\u{a0}')
        });
        let capital = is_capitalised(&token.text) && free(token);
        // A capitalised stopword ("The", "In" of an all-caps headline) ends a name.
        let capital = capital && !NAME_STOPWORDS.contains(&token.folded.as_str());
        let connector = !current.is_empty()
            && NAME_CONNECTORS.contains(&token.text.as_str())
            && tokens
                .get(i + 1)
                .is_some_and(|n| is_capitalised(&n.text) && !n.sentence_start);
        if (capital || connector) && (current.is_empty() || joined_to_previous) {
            current.push(i);
        } else {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            if capital {
                current.push(i);
            }
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }

    let mut out = Vec::new();
    for run in runs {
        // Titles split a run ("German Chancellor Olaf Scholz" → "German", "Olaf Scholz").
        let mut pieces: Vec<Vec<usize>> = vec![Vec::new()];
        for &i in &run {
            if TITLES.contains(&tokens[i].folded.as_str()) {
                pieces.push(Vec::new());
            } else if let Some(last) = pieces.last_mut() {
                last.push(i);
            }
        }
        for mut piece in pieces {
            // A sentence-initial word is part of a name only if nothing says it is an
            // ordinary word: "Officials said" is not a name; "Germany said" is where the
            // text capitalises Germany elsewhere; "Olaf Scholz said" is.
            if let Some(&first) = piece.first() {
                let word = &tokens[first].folded;
                let ordinary = lowercase_somewhere.contains(word)
                    || (piece.len() == 1 && !capitalised_mid_sentence.contains(word));
                if tokens[first].sentence_start && ordinary {
                    piece.remove(0);
                }
            }
            // Connectors only join: none at either end.
            while piece.first().is_some_and(|&i| is_name_stopword(&tokens[i])) {
                piece.remove(0);
            }
            while piece.last().is_some_and(|&i| is_name_stopword(&tokens[i])) {
                piece.pop();
            }
            let Some(&first) = piece.first() else {
                continue;
            };
            let last = piece[piece.len() - 1];
            let span = tokens[first].span.start..tokens[last].span.end;
            let key = piece
                .iter()
                .map(|&i| tokens[i].folded.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            if key.is_empty() {
                continue;
            }
            out.push(FactSpan {
                fact: Fact {
                    kind: FactKind::Name,
                    text: text[span.clone()].to_string(),
                    key,
                },
                span,
                unit: Unit::Other,
            });
        }
    }
    out
}

fn is_name_stopword(word: &Word) -> bool {
    NAME_STOPWORDS.contains(&word.folded.as_str()) || NAME_CONNECTORS.contains(&word.text.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str, kind: FactKind) -> Vec<String> {
        extract_facts(text)
            .into_iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.key)
            .collect()
    }

    #[test]
    fn numbers_in_any_spelling_get_the_same_key() {
        for text in [
            "They lost 1 million jobs.",
            "They lost 1,000,000 jobs.",
            "They lost 1.000.000 jobs.",
            "They lost one million jobs.",
            "They lost 1 Mio. jobs.",
        ] {
            assert_eq!(keys(text, FactKind::Number), ["1000000"], "{text}");
        }
        assert_eq!(keys("About 50.000 people", FactKind::Number), ["50000"]);
        assert_eq!(keys("About 50,000 people", FactKind::Number), ["50000"]);
        assert_eq!(keys("1.2 million jobs", FactKind::Number), ["1200000"]);
        assert_eq!(keys("1,2 million jobs", FactKind::Number), ["1200000"]);
        assert_eq!(keys("a 2.5% rise", FactKind::Number), ["2.5%"]);
        assert_eq!(keys("a 2,5 percent rise", FactKind::Number), ["2.5%"]);
        assert_eq!(keys("up 12 per cent", FactKind::Number), ["12%"]);
        assert_eq!(keys("up 12 % on the year", FactKind::Number), ["12%"]);
        assert_eq!(keys("three people died", FactKind::Number), ["3"]);
        assert_eq!(keys("twenty-five houses", FactKind::Number), ["25"]);
        assert_eq!(keys("half a million people", FactKind::Number), ["500000"]);
        assert_eq!(keys("0.75 points", FactKind::Number), ["0.75"]);
        assert_eq!(keys("1,234.5 tonnes", FactKind::Number), ["1234.5"]);
        assert_eq!(
            keys("Macron announced 50 000 posts.", FactKind::Number),
            ["50000"]
        );
        assert_eq!(
            keys("On 12 March 200 people left.", FactKind::Number),
            ["200"]
        );
        assert_eq!(keys("between 10-12 people", FactKind::Number), ["10", "12"]);
        assert_eq!(keys("1.234,5 tonnes", FactKind::Number), ["1234.5"]);
    }

    #[test]
    fn money_keys_ignore_the_currency_spelling() {
        for text in [
            "a $50 billion plan",
            "a 50 billion dollar plan",
            "a plan of 50 tỷ USD",
            "USD 50bn",
        ] {
            assert_eq!(keys(text, FactKind::Number), ["50000000000"], "{text}");
        }
        assert_eq!(keys("a $5m grant", FactKind::Number), ["5000000"]);
        assert_eq!(keys("2억 won", FactKind::Number), ["200000000"]);
        let spans = scan("a $50 billion plan");
        assert_eq!(spans[0].unit, Unit::Money);
        assert_eq!(spans[0].fact.text, "$50 billion");
    }

    #[test]
    fn codes_and_versions_are_not_numbers() {
        assert!(keys(
            "G7 leaders met about COVID-19 and the A320.",
            FactKind::Number
        )
        .is_empty());
        assert!(keys("Version 1.2.3 of the 5G plan", FactKind::Number).is_empty());
        assert!(keys("one of the leaders", FactKind::Number).is_empty());
    }

    #[test]
    fn dates_are_dates_not_counts() {
        let facts = extract_facts("The storm hit on March 5, 2024, a Tuesday, at 10:30.");
        let dates: Vec<&str> = facts
            .iter()
            .filter(|f| f.kind == FactKind::Date)
            .map(|f| f.key.as_str())
            .collect();
        assert_eq!(
            dates,
            ["date:03-05", "2024", "weekday:tuesday", "time:10:30"]
        );
        assert!(facts.iter().all(|f| f.kind != FactKind::Number));
        assert_eq!(keys("on 5th of March", FactKind::Date), ["date:03-05"]);
        assert_eq!(
            keys("on 2024-03-05", FactKind::Date),
            ["date:03-05", "2024"]
        );
        assert_eq!(keys("They met in May.", FactKind::Date), ["month:05"]);
        assert!(keys("May the best win.", FactKind::Date).is_empty());
        assert_eq!(keys("since the 1990s", FactKind::Date), ["1990s"]);
    }

    #[test]
    fn names_skip_sentence_starts_titles_and_stopwords() {
        let text = "Officials said the flood hit Hanoi. The European Union sent aid. \
                    Reporters met German Chancellor Olaf Scholz. Hanoi is calm.";
        let names = keys(text, FactKind::Name);
        assert_eq!(names, ["hanoi", "european union", "german", "olaf scholz"]);
        assert_eq!(
            keys("Talks at the Bank of England ended.", FactKind::Name),
            ["bank of england"]
        );
        assert_eq!(
            keys("Aid reached Hà Nội quickly.", FactKind::Name),
            ["ha noi"]
        );
        assert_eq!(
            keys(
                "Shares of Apple fell as its shares lost value.",
                FactKind::Name
            ),
            ["apple"]
        );
        assert_eq!(
            keys("A HEADLINE ABOUT NASA", FactKind::Name),
            ["headline", "nasa"]
        );
    }

    #[test]
    fn country_and_adjective_match_but_lookalikes_do_not() {
        assert!(same_name_word("german", "germany"));
        assert!(same_name_word("vietnamese", "vietnam"));
        assert!(!same_name_word("austria", "australia"));
        assert!(!same_name_word("john", "johnson"));
        assert!(missing_facts("the German plan", "Germany has a plan.").is_empty());
    }

    #[test]
    fn missing_facts_compares_normalised_keys() {
        let source = "Floods in Ha Noi destroyed 50.000 homes on Monday, President Vo said.";
        assert!(missing_facts("Floods destroyed 50,000 homes in Hanoi.", source).is_empty());
        assert!(missing_facts("Vo said floods hit on Monday.", source).is_empty());
        let missing = missing_facts("Floods destroyed 60,000 homes in Hue on Tuesday.", source);
        let texts: Vec<&str> = missing.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(texts, ["60,000", "Hue", "Tuesday"]);
    }

    #[test]
    fn shares_key_facts_needs_every_number_and_most_names() {
        let source = "The plant in Leipzig will cut 1,200 jobs, BMW said.";
        assert!(shares_key_facts(
            "BMW will cut 1,200 jobs in Leipzig.",
            source
        ));
        assert!(!shares_key_facts(
            "BMW will cut 1,500 jobs in Leipzig.",
            source
        ));
        // One of two names respelled still supports; no facts at all does not.
        assert!(shares_key_facts(
            "Workers at BMW lose 1,200 jobs in Lipsia.",
            source
        ));
        assert!(!shares_key_facts("the company will cut jobs", source));
    }
}
