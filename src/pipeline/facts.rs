//! TEMPORARY, h-llm branch only: the smallest honest `missing_facts`, so that the LLM
//! summarizer's grounding check compiles and its tests run here. The synthesis helper owns this
//! module; their version replaces this file at merge (`llm.rs` needs only `missing_facts` and
//! `Fact: Display`).

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// A checkable detail of a claim: a number or a capitalised name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub text: String,
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Numbers and mid-sentence capitalised words of `claim` that do not occur in `source`.
pub fn missing_facts(claim: &str, source: &str) -> Vec<Fact> {
    static NUMBER: OnceLock<Regex> = OnceLock::new();
    static NAME: OnceLock<Regex> = OnceLock::new();
    let number = NUMBER.get_or_init(|| Regex::new(r"\d+(?:[.,]\d+)*").expect("valid regex"));
    let name = NAME.get_or_init(|| Regex::new(r"(?:[^.!?\s]\s+)(\p{Lu}\p{L}+)").expect("valid regex"));
    let plain = |s: &str| s.replace(',', "");
    let source_numbers: Vec<String> = number.find_iter(source).map(|m| plain(m.as_str())).collect();
    let mut missing: Vec<Fact> = Vec::new();
    let mut push = |text: &str| {
        if !missing.iter().any(|f| f.text == text) {
            missing.push(Fact { text: text.to_string() });
        }
    };
    for m in number.find_iter(claim) {
        let value = m.as_str().trim_end_matches(['.', ',']);
        if !source_numbers.iter().any(|n| n.trim_end_matches('.') == plain(value)) {
            push(value);
        }
    }
    for c in name.captures_iter(claim) {
        let word = &c[1];
        if !source.contains(word) {
            push(word);
        }
    }
    missing
}
