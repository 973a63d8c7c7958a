//! What a stated value measures: the thing it counts and the event it belongs to. "About
//! 8,000 nurses walked off the job" and "9,500 hospital staff went on strike" both count
//! *workers* in a *strike*; "the rescue went on for five days" and "the road was closed for
//! two days" both count days, of different events. Disagreements compare only values with the
//! same [`Measure`]; the citation checker accepts a source stating the same value of the same
//! measure in other words ("5,000 dockers walked out" / "5,000 dock workers began a strike").
//!
//! Without a parser, the measure is read from the words around the value, through two small
//! tables: counted nouns with their synonyms (`THINGS`), and event words and phrases with
//! theirs (`EVENTS`). The counted thing is the first of the (up to two) content words after a
//! count that the table knows, else the first one ("1.2 million new **jobs**"); for a value
//! ending its clause, the first known noun of its sentence ("the death **toll** rose to 17"). The event is
//! the nearest event word of the sentence; without one, the nearest content word before the
//! value stands in as a weak event ("three years of drought" — *ending*; "the first flood in
//! 40 years" — *flood*), which only an identical word matches.

use std::ops::Range;

use crate::pipeline::facts::{scan, words, FactKey, FactSpan, Unit, Word};
use crate::pipeline::text::{is_stopword, stem};

/// Counted nouns that name the same kind of thing, by class (first entry). Folded words.
const THINGS: &[(&str, &[&str])] = &[
    (
        "people",
        &[
            "people",
            "persons",
            "residents",
            "inhabitants",
            "villagers",
            "locals",
            "citizens",
            "civilians",
            // The dead and the injured are people; the event (killed, injured) tells them apart.
            "dead",
            "deaths",
            "toll",
            "fatalities",
            "victims",
            "bodies",
            "injured",
            "wounded",
            "hurt",
        ],
    ),
    (
        "workers",
        &[
            "workers",
            "staff",
            "employees",
            "nurses",
            "dockers",
            "strikers",
            "doctors",
            "members",
        ],
    ),
    ("homes", &["homes", "houses", "households", "dwellings"]),
    ("earthquake", &["earthquake", "quake", "tremor"]),
];

/// Event words (folded, single words or phrases) by class.
const EVENTS: &[(&str, &[&str])] = &[
    (
        "strike",
        &[
            "strike",
            "strikes",
            "striking",
            "walkout",
            "walked off",
            "walked out",
            "walk out",
            "stoppage",
            "stopped work",
        ],
    ),
    (
        "evacuate",
        &[
            "evacuated",
            "evacuation",
            "evacuate",
            "moved out",
            "fled",
            "relocated",
            "displaced",
            "left their homes",
            "ordered to leave",
        ],
    ),
    (
        "kill",
        &[
            "killed",
            "killing",
            "kills",
            "died",
            "dead",
            "deaths",
            "toll",
            "fatalities",
            "lost their lives",
        ],
    ),
    (
        "injure",
        &["injured", "injuring", "injuries", "wounded", "hurt"],
    ),
    (
        "rescue",
        &["rescue", "rescued", "rescuers", "freed", "saved"],
    ),
    ("close", &["closed", "closure", "shut"]),
    (
        "flood",
        &[
            "flood",
            "floods",
            "flooded",
            "flooding",
            "inundated",
            "under water",
        ],
    ),
    (
        "resume",
        &[
            "resume",
            "resumes",
            "resumed",
            "restart",
            "restarts",
            "restarted",
            "reconvene",
        ],
    ),
    (
        "destroy",
        &[
            "destroyed",
            "damaged",
            "collapsed",
            "wrecked",
            "flattened",
            "burned",
            "burnt",
        ],
    ),
    (
        "cost",
        &[
            "cost", "costs", "spent", "spend", "spending", "price", "budget", "worth",
        ],
    ),
    (
        "rise",
        &[
            "rise",
            "rises",
            "raise",
            "raises",
            "increase",
            "increases",
            "go up",
            "goes up",
            "went up",
            "hike",
        ],
    ),
    (
        "fall",
        &[
            "fall", "falls", "fell", "drop", "drops", "dropped", "decline", "cut",
        ],
    ),
    (
        "launch",
        &[
            "launched",
            "launch",
            "lifted off",
            "lifts off",
            "liftoff",
            "blasted off",
        ],
    ),
    ("arrest", &["arrested", "detained", "arrests"]),
    ("vote", &["voted", "votes", "vote"]),
];

/// Words between a number and what it counts that do not say what it counts.
const SKIP_AFTER: &[&str] = &[
    "additional",
    "approximately",
    "estimated",
    "extra",
    "further",
    "more",
    "new",
    "other",
    "over",
    "roughly",
    "total",
    "some",
    "around",
    "nearly",
    "almost",
    "least",
    "than",
    "thousand",
    "million",
    "billion",
    "trillion",
    "hundred",
    "dollar",
    "dollars",
    "euro",
    "euros",
    "usd",
    "eur",
    "vnd",
    "won",
    "yen",
    "percent",
    "cent",
    "worth",
    "old",
];
/// Words before a value that ends its clause and do not say what it is ("rose to 15").
const SKIP_BEFORE: &[&str] = &[
    "about",
    "almost",
    "approximately",
    "around",
    "climbed",
    "estimated",
    "grew",
    "last",
    "least",
    "nearly",
    "next",
    "reached",
    "rose",
    "risen",
    "roughly",
    "stood",
    "totaled",
    "totalled",
    "early",
    "late",
    "mid",
    "this",
    "some",
    "now",
    "jumped",
    "said",
    "says",
];
/// Counted things that are spans of time (stems): what they are *of* is their event.
const DURATIONS: &[&str] = &[
    "second", "minut", "hour", "day", "week", "month", "year", "decad",
];
/// How far (in words) an event word may be from the value it explains.
const EVENT_WINDOW: usize = 8;

/// What a value measures. Two values of one story compare only when their measures are equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Measure {
    pub unit: Unit,
    /// The counted thing's class or stem; `None` for dates, percentages and sums of money
    /// (whose unit says what they are).
    pub thing: Option<String>,
    pub event: Event,
}

/// The event a value belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Event {
    /// A class of `EVENTS`.
    Known(&'static str),
    /// No event word near: the stem of the nearest content word before the value.
    Nearby(String),
}

/// One stated value with its measure.
#[derive(Clone, Debug)]
pub(crate) struct Quantity {
    pub measure: Measure,
    /// The value's normalised key and its spelling.
    pub value_key: FactKey,
    pub value_text: String,
    /// The measure as the text words it ("nurses walked", "date of landfall").
    pub subject_text: String,
    pub span: Range<usize>,
    /// The sentence holding it, as written.
    pub sentence: String,
}

/// The comparable values of `text` (counts, percentages, money, weekdays, days of a month).
pub(crate) fn quantities(text: &str) -> Vec<Quantity> {
    let spans = scan(text);
    let tokens = words(text);
    // Both lists are in text order, so every lookup below bisects: the cost stays n log n in
    // the text's length (a 5 MB article has ~100,000 values and ~900,000 words).
    let index = SpanIndex::new(&spans);
    let in_fact = |t: &Word| index.overlaps(&t.span);
    let mut out = Vec::new();
    for (n, span) in spans.iter().enumerate() {
        // A stop request ends the scan; the caller discards the cut-short result.
        if n % STOP_CHECK_EVERY == 0 && crate::interrupt::requested() {
            break;
        }
        if !matches!(
            span.unit,
            Unit::Count | Unit::Percent | Unit::Money | Unit::Weekday | Unit::MonthDay
        ) {
            continue;
        }
        if span.unit == Unit::Count && is_ordinal(span) {
            continue;
        }
        let first = tokens.partition_point(|t| t.span.end <= span.span.start);
        if first == tokens.len() {
            continue;
        }
        let last = tokens
            .partition_point(|t| t.span.start < span.span.end)
            .checked_sub(1)
            .unwrap_or(first);
        let sentence = sentence_of(&tokens, first, &in_fact);
        let is_date = matches!(span.unit, Unit::Weekday | Unit::MonthDay);

        let mut thing: Option<(String, String)> = None;
        if span.unit == Unit::Count {
            let after = content_after(text, &tokens, last + 1, sentence.end, &in_fact);
            thing = after
                .iter()
                .take(2)
                .find_map(|t| thing_class(&t.folded).map(|c| (c.to_string(), t.text.clone())))
                .or_else(|| after.first().map(|t| (stem(&t.folded), t.text.clone())));
            if after.is_empty() {
                // The clause's subject: "the death toll from the quake … rose to 17".
                thing = (sentence.start..first)
                    .map(|i| &tokens[i])
                    .find_map(|t| thing_class(&t.folded).map(|c| (c.to_string(), t.text.clone())));
            }
            if thing.is_none() {
                continue;
            }
        }
        // "three years of drought": what the counted thing is *of* is its event.
        // ("2,300 hectares of forest" names no event: the forest is what burned.)
        let of_what = (span.unit == Unit::Count)
            .then(|| of_word(&tokens, last, sentence.end, &in_fact))
            .flatten()
            .filter(|t| {
                event_class(&t.folded).is_some()
                    || thing
                        .as_ref()
                        .is_some_and(|(class, _)| DURATIONS.contains(&class.as_str()))
            });
        let event = match of_what {
            Some(t) => event_class(&t.folded).map(|class| (class, t.text.clone())),
            None => nearest_event(&tokens, first, last, sentence.clone(), &in_fact),
        };
        let (event, event_text) = match (event, of_what) {
            (Some((class, text)), _) => (Event::Known(class), text),
            (None, Some(t)) => (Event::Nearby(stem(&t.folded)), t.text.clone()),
            (None, None) => match nearby_word(&tokens, first, sentence.start, &in_fact) {
                Some(t) => (Event::Nearby(stem(&t.folded)), t.text.clone()),
                None => continue,
            },
        };
        let subject_text = match (&thing, is_date) {
            (Some((_, written)), _) => format!("{written} {event_text}"),
            (None, true) => format!("date of {event_text}"),
            (None, false) => event_text,
        };
        let sentence_text = match (
            tokens.get(sentence.start),
            tokens.get(sentence.end.saturating_sub(1)),
        ) {
            (Some(a), Some(b)) => sentence_span(text, a.span.start, b.span.end),
            _ => String::new(),
        };
        out.push(Quantity {
            measure: Measure {
                unit: span.unit,
                thing: thing.map(|(class, _)| class),
                event,
            },
            value_key: span.fact.key.clone(),
            value_text: span.fact.text.clone(),
            subject_text,
            span: span.span.clone(),
            sentence: sentence_text,
        });
    }
    out
}

/// Values scanned between two looks at the stop flag (a few milliseconds of work).
const STOP_CHECK_EVERY: usize = 256;

/// The fact spans of a text (sorted by start, as `scan` returns them; they may overlap), for
/// bisecting "is this word part of a fact?".
struct SpanIndex<'s> {
    spans: &'s [FactSpan],
    /// `reach[i]`: the largest end among `spans[..=i]`.
    reach: Vec<usize>,
}

impl<'s> SpanIndex<'s> {
    fn new(spans: &'s [FactSpan]) -> Self {
        let reach = spans
            .iter()
            .scan(0, |reach, s| {
                *reach = (*reach).max(s.span.end);
                Some(*reach)
            })
            .collect();
        SpanIndex { spans, reach }
    }

    /// Whether `range` overlaps one of the spans.
    fn overlaps(&self, range: &Range<usize>) -> bool {
        let starting_before = self.spans.partition_point(|s| s.span.start < range.end);
        starting_before > 0 && self.reach[starting_before - 1] > range.start
    }
}

/// Whether two quantities state the same value of the same measure.
pub(crate) fn same_statement(a: &Quantity, b: &Quantity) -> bool {
    if a.value_key != b.value_key
        || a.measure.unit != b.measure.unit
        || a.measure.thing != b.measure.thing
    {
        return false;
    }
    match (&a.measure.event, &b.measure.event) {
        (Event::Known(x), Event::Known(y)) => x == y,
        // A weak event matches only the same word: "four hospitals" that went on strike are
        // not the four whose surgery was postponed.
        _ => a.measure.event == b.measure.event,
    }
}

fn event_class(folded: &str) -> Option<&'static str> {
    EVENTS
        .iter()
        .find(|(_, phrases)| phrases.contains(&folded))
        .map(|(class, _)| *class)
}

/// The content word after an "of" right after the counted thing ("three years **of** drought").
fn of_word<'t>(
    tokens: &'t [Word],
    last: usize,
    end: usize,
    in_fact: &dyn Fn(&Word) -> bool,
) -> Option<&'t Word> {
    let of = last + 2;
    if of >= end || tokens[of].folded != "of" {
        return None;
    }
    tokens[of + 1..end]
        .iter()
        .take(2)
        .find(|t| !is_stopword(&t.folded) && !in_fact(t))
}

fn thing_class(folded: &str) -> Option<&'static str> {
    THINGS
        .iter()
        .find(|(_, words)| words.contains(&folded))
        .map(|(class, _)| *class)
}

/// Token indices `[start, end)` of the sentence holding token `at`. The dot of "5.8" or
/// "1.2 million" opens no sentence.
fn sentence_of(tokens: &[Word], at: usize, in_fact: &dyn Fn(&Word) -> bool) -> Range<usize> {
    let opens = |i: usize| tokens[i].sentence_start && !in_fact(&tokens[i]);
    let start = (0..=at).rev().find(|&i| opens(i)).unwrap_or(0);
    let end = (at + 1..tokens.len())
        .find(|&i| opens(i))
        .unwrap_or(tokens.len());
    start..end
}

/// The text from `start` to `end` and its closing punctuation.
fn sentence_span(text: &str, start: usize, end: usize) -> String {
    let tail: usize = text[end..]
        .chars()
        .take_while(|c| matches!(c, '.' | '!' | '?' | '"' | '\u{201d}'))
        .map(char::len_utf8)
        .sum();
    text[start..end + tail].trim().to_string()
}

/// Content words after token `from`, up to clause punctuation or another value.
fn content_after<'t>(
    text: &str,
    tokens: &'t [Word],
    from: usize,
    end: usize,
    in_fact: &dyn Fn(&Word) -> bool,
) -> Vec<&'t Word> {
    let mut out = Vec::new();
    let mut edge = tokens.get(from.saturating_sub(1)).map_or(0, |t| t.span.end);
    for token in tokens.iter().take(end).skip(from) {
        if text[edge..token.span.start]
            .contains(['.', ',', ';', ':', '!', '?', '(', ')', '\n', '"'])
            || in_fact(token)
        {
            break;
        }
        edge = token.span.end;
        if is_stopword(&token.folded) || SKIP_AFTER.contains(&token.folded.as_str()) {
            continue;
        }
        out.push(token);
        if out.len() == 2 {
            break;
        }
    }
    out
}

/// The class and words of the nearest event word or phrase within the sentence, preferring
/// the one before the value on a tie.
fn nearest_event(
    tokens: &[Word],
    first: usize,
    last: usize,
    sentence: Range<usize>,
    in_fact: &dyn Fn(&Word) -> bool,
) -> Option<(&'static str, String)> {
    let mut best: Option<(usize, bool, &'static str, String)> = None;
    // Only words within the window can win (a long sentence is not searched end to end).
    let from = sentence.start.max(first.saturating_sub(EVENT_WINDOW));
    let to = sentence.end.min(last + EVENT_WINDOW + 1);
    for i in from..to {
        if (first..=last).contains(&i) || in_fact(&tokens[i]) {
            continue;
        }
        for (class, phrases) in EVENTS {
            for phrase in *phrases {
                let end = i + phrase.split(' ').count();
                if end > sentence.end
                    || !phrase
                        .split(' ')
                        .zip(&tokens[i..end])
                        .all(|(p, t)| p == t.folded)
                {
                    continue;
                }
                let (distance, after) = if i < first {
                    (first - i, true)
                } else {
                    (i - last, false)
                };
                if distance > EVENT_WINDOW {
                    continue;
                }
                let written = tokens[i..end]
                    .iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                // Before the value wins a tie (`after` false sorts first… so invert).
                let candidate = (distance, !after, *class, written);
                if best
                    .as_ref()
                    .is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1))
                {
                    best = Some(candidate);
                }
            }
        }
    }
    best.map(|(_, _, class, written)| (class, written))
}

/// The nearest content word before token `first` in its sentence (within a few words).
fn nearby_word<'t>(
    tokens: &'t [Word],
    first: usize,
    start: usize,
    in_fact: &dyn Fn(&Word) -> bool,
) -> Option<&'t Word> {
    (start..first)
        .rev()
        .take(4)
        .map(|i| &tokens[i])
        .filter(|t| !in_fact(t))
        .find(|t| !is_stopword(&t.folded) && !SKIP_BEFORE.contains(&t.folded.as_str()))
}

fn is_ordinal(span: &FactSpan) -> bool {
    let lower = span.fact.text.to_lowercase();
    ["st", "nd", "rd", "th"].iter().any(|s| lower.ends_with(s))
        && lower.chars().next().is_some_and(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(text: &str) -> Vec<(Option<String>, Event, FactKey)> {
        quantities(text)
            .into_iter()
            .map(|q| (q.measure.thing, q.measure.event, q.value_key))
            .collect()
    }

    #[test]
    fn different_nouns_for_the_same_people_in_the_same_event_are_one_measure() {
        let a = quantities("About 8,000 nurses walked off the job on Tuesday.");
        let b = quantities("Some 9,500 hospital staff went on strike in Westmere on Tuesday.");
        assert_eq!(a[0].measure, b[0].measure, "{a:?} {b:?}");
        assert_eq!(a[0].measure.thing.as_deref(), Some("workers"));
        let c = quantities("after 1,100 residents were moved out of their homes.");
        let d = quantities("About 1,400 people were evacuated from villages.");
        assert_eq!(c[0].measure, d[0].measure);
        let e = quantities("The death toll from Monday's earthquake in Aldmoor rose to 17.");
        let f = quantities("A magnitude 5.8 earthquake struck, killing 14 people.");
        let toll = e.iter().find(|q| q.value_key.to_string() == "17").unwrap();
        let killed = f.iter().find(|q| q.value_key.to_string() == "14").unwrap();
        assert_eq!(toll.measure.event, Event::Known("kill"));
        assert_eq!(killed.measure.event, Event::Known("kill"));
    }

    #[test]
    fn the_same_unit_of_different_events_is_not_one_measure() {
        let rescue = quantities("The rescue went on for five days after a tunnel collapsed.");
        let road = quantities("The road to the mine was closed for two days.");
        assert_ne!(rescue[0].measure, road[0].measure);
        let drought = quantities("A flood swept through Tarrow, ending three years of drought.");
        let flood = quantities("It was the first flood in 40 years, the mayor said.");
        assert_ne!(
            drought[0].measure,
            flood[0].measure,
            "{:?}",
            measure("ending three years of drought")
        );
    }

    #[test]
    fn the_span_index_agrees_with_a_linear_scan_of_overlapping_spans() {
        // An ISO date yields two spans over one range; names and numbers follow.
        let text = "On 2026-03-05 about 5,000 dockers in Port Calder walked out; 40% stayed.";
        let spans = scan(text);
        let index = SpanIndex::new(&spans);
        for start in 0..text.len() {
            for end in start + 1..=text.len().min(start + 12) {
                let linear = spans
                    .iter()
                    .any(|s| s.span.start < end && start < s.span.end);
                assert_eq!(index.overlaps(&(start..end)), linear, "{start}..{end}");
            }
        }
    }

    #[test]
    fn durations_are_stemmed_as_listed() {
        for (word, listed) in [
            ("seconds", "second"),
            ("minutes", "minut"),
            ("hours", "hour"),
            ("days", "day"),
            ("weeks", "week"),
            ("months", "month"),
            ("years", "year"),
            ("decades", "decad"),
        ] {
            assert_eq!(stem(word), listed);
            assert!(DURATIONS.contains(&listed));
        }
    }

    #[test]
    fn the_same_statement_in_other_words_is_recognised() {
        let a = quantities("About 5,000 dockers walked out on Friday at Port Calder.");
        let b =
            quantities("Traffic stopped on Friday as 5,000 dock workers began a three-day strike.");
        let five = |qs: &[Quantity]| {
            qs.iter()
                .find(|q| q.value_key.to_string() == "5000")
                .cloned()
                .unwrap()
        };
        assert!(same_statement(&five(&a), &five(&b)));
        let b =
            quantities("The magnitude 5.8 quake destroyed dozens of stone houses in the old town.");
        let c = quantities("Rescuers in Aldmoor dug through collapsed stone houses on Monday after a magnitude 5.8 earthquake.");
        assert!(same_statement(&b[0], &c[1]), "{b:?} {c:?}");
        let c = quantities("About 5,000 people were evacuated on Friday.");
        assert!(!same_statement(&five(&a), &five(&c)));
    }
}
