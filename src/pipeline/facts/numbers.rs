//! Numbers and dates as the text writes them ("1,2 million", "50 tỷ USD", "March 5th"), read
//! as exact decimals and calendar keys.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use super::{Fact, FactKey, FactKind, FactSpan, Unit};

pub(super) static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)*").expect("valid regex"));
pub(super) static ISO_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b((?:18|19|20)\d\d)-(\d\d)-(\d\d)\b").expect("valid regex"));
pub(super) static CLOCK_OR_NUMERIC_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{1,2}:\d{2}\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b").expect("valid regex")
});
pub(super) const MONTHS_RE: &str = "January|February|March|April|May|June|July|August|September|October|November|December|Jan\\.|Feb\\.|Aug\\.|Sept?\\.|Oct\\.|Nov\\.|Dec\\.";
pub(super) static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(?P<m1>{MONTHS_RE})\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?|\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{MONTHS_RE})"
    ))
    .expect("valid regex")
});
pub(super) const SMALL_NUMBERS: &[(&str, u32)] = &[
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
pub(super) static NUMBER_WORDS: LazyLock<Regex> = LazyLock::new(|| {
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
pub(super) struct Decimal {
    pub(super) mantissa: u128,
    pub(super) exp: i32,
}

impl Decimal {
    pub(super) fn times_half(self) -> Decimal {
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
pub(super) fn parse_digits(s: &str, scaled: bool) -> Option<Decimal> {
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
pub(super) fn scale_exponent(word: &str) -> Option<i32> {
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

pub(super) const CURRENCY_BEFORE: &[&str] = &[
    "US$", "$", "€", "£", "¥", "₩", "₫", "USD ", "EUR ", "VND ", "KRW ", "GBP ", "JPY ", "CNY ",
];
pub(super) const CURRENCY_AFTER: &[&str] = &[
    "dollars", "dollar", "usd", "euros", "euro", "eur", "vnd", "đồng", "dong", "won", "krw", "yen",
    "jpy", "yuan", "cny", "pounds", "gbp", "rupees", "francs", "chf",
];
pub(super) const UNIT_SUFFIXES: &[&str] = &[
    "km", "kg", "cm", "mm", "m", "mph", "ha", "kw", "mw", "gw", "kwh", "t",
];

/// A number starting at `digits` (a run of digits and separators), with its currency, scale
/// word, percent sign and currency word around it.
pub(super) fn read_number(text: &str, digits: Range<usize>) -> Option<FactSpan> {
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
                key: FactKey::Decade(raw.parse().ok()?),
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
        (
            FactKind::Date,
            Unit::Year,
            FactKey::Year(u16::try_from(value.mantissa).ok()?),
        )
    } else if percent {
        (
            FactKind::Number,
            Unit::Percent,
            FactKey::Percent(value.to_string()),
        )
    } else if money {
        (
            FactKind::Number,
            Unit::Money,
            FactKey::Number(value.to_string()),
        )
    } else {
        (
            FactKind::Number,
            Unit::Count,
            FactKey::Number(value.to_string()),
        )
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
pub(super) fn next_word(rest: &str) -> Option<(String, usize)> {
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
pub(super) fn starts_at_number_boundary(text: &str, start: usize) -> bool {
    let mut before = text[..start].chars().rev();
    match before.next() {
        None => true,
        Some(c) if c.is_alphanumeric() => false,
        // "COVID-19" is a code; "2023-2024" and "10-12" are ranges.
        Some('-') => !before.next().is_some_and(char::is_alphabetic),
        Some(_) => true,
    }
}

pub(super) fn ends_at_word_boundary(text: &str, end: usize) -> bool {
    !text[end..]
        .chars()
        .next()
        .is_some_and(char::is_alphanumeric)
}

pub(super) fn word_number(words: &str) -> Option<Decimal> {
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

pub(super) fn month_number(word: &str) -> Option<u32> {
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

pub(super) fn weekday(word: &str) -> Option<&'static str> {
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
