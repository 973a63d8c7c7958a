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

mod key;
mod names;
mod numbers;
mod scan;

use std::collections::BTreeSet;

pub use self::key::FactKey;
pub(crate) use self::names::{words, Word};
pub(crate) use self::scan::{scan, FactSpan};

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
    /// The normalised form that is compared: the exact value of a number, the day of a date,
    /// a name's folded words.
    pub key: FactKey,
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
    keys: BTreeSet<FactKey>,
    /// Months mentioned with or without a day, so "in March" is supported by "March 5".
    months: BTreeSet<u8>,
    /// The source's words, folded (lowercase, no diacritics, no possessive 's).
    words: Vec<String>,
}

impl SourceFacts {
    pub(crate) fn new(source: &str) -> SourceFacts {
        let mut keys = BTreeSet::new();
        let mut months = BTreeSet::new();
        for span in scan(source) {
            months.extend(span.fact.key.month());
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
        match &fact.key {
            FactKey::Name(name) => self.contains_name(name),
            FactKey::Month(month) => self.months.contains(month),
            key => self.keys.contains(key),
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

#[cfg(test)]
mod tests;
