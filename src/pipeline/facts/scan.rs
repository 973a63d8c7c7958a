//! The scan over a text: dates first (the day in "March 5" is not a count), then numbers, then
//! names, each byte range claimed once.

use std::ops::Range;

use super::names::{names, words};
use super::numbers::*;
use super::{Fact, FactKey, FactKind, Unit};

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
    let mut taken: Vec<Range<usize>> = Vec::new();
    let overlaps = |taken: &[Range<usize>], r: &Range<usize>| {
        taken.iter().any(|t| t.start < r.end && r.start < t.end)
    };

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
                key: FactKey::MonthDay {
                    month: mo as u8,
                    day: d as u8,
                },
            },
            span: whole.clone(),
            unit: Unit::MonthDay,
        });
        spans.push(FactSpan {
            fact: Fact {
                kind: FactKind::Date,
                text: year.into(),
                key: FactKey::Year(year.parse().unwrap_or_default()),
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
                key: FactKey::MonthDay {
                    month: mo as u8,
                    day: d as u8,
                },
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
                key: FactKey::Time(m.as_str().to_string()),
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
                key: FactKey::Number(value.to_string()),
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
                    key: FactKey::Weekday(day),
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
                    key: FactKey::Month(mo as u8),
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
