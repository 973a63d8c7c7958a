//! The "Since the last brief" section (data from `synthesize::since`). Citations `[n]` are
//! to this brief's sources; the previous brief's sources are named in words ("source 2 of
//! the brief of 2026-11-30") so they cannot be read as this brief's. Titles and values are
//! article text and pass through [`escape`].

use std::fmt::Write as _;

use crate::article::SourceNumber;
use crate::pipeline::synthesize::since::SinceLastBrief;

use super::{citations, escape};

/// The "Since the last brief" section in Markdown. Citations `[n]` are to this brief's sources; the previous
/// brief's sources are named in words so they cannot be read as this brief's.
pub(super) fn since_markdown(since: &SinceLastBrief) -> String {
    let mut out = String::from("## Since the last brief\n\n");
    let _ = writeln!(
        out,
        "Compared with the brief of {}.\n",
        escape(&since.previous_date)
    );
    if !since.new_stories.is_empty() {
        out.push_str("New stories:\n\n");
        for story in &since.new_stories {
            let _ = writeln!(
                out,
                "- {} {}",
                escape(&story.title),
                citations(&story.sources)
            );
        }
        out.push('\n');
    }
    if !since.changed.is_empty() {
        out.push_str("Changed figures:\n\n");
        for story in &since.changed {
            let _ = writeln!(out, "- {}", escape(&story.title));
            for change in &story.changes {
                let after: Vec<String> = change
                    .after
                    .iter()
                    .map(|v| format!("{} {}", escape(&v.text), citations(&v.sources)))
                    .collect();
                let before: Vec<String> = change.before.iter().map(|v| escape(&v.text)).collect();
                let was: Vec<String> = change
                    .before
                    .iter()
                    .map(|v| format!("{} in {}", escape(&v.text), previous_sources(&v.sources)))
                    .collect();
                let _ = writeln!(
                    out,
                    "  - {}: {} → {} (was {} of the brief of {})",
                    escape(&change.subject),
                    before.join(" / "),
                    after.join("; "),
                    was.join(", "),
                    escape(&since.previous_date)
                );
            }
        }
        out.push('\n');
    }
    if !since.dropped.is_empty() {
        out.push_str("No longer reported:\n\n");
        for story in &since.dropped {
            let _ = writeln!(out, "- {}", escape(&story.title));
        }
        out.push('\n');
    }
    match since.unchanged {
        0 => {}
        1 => out.push_str("1 story continues with no changed figure.\n\n"),
        n => {
            let _ = writeln!(out, "{n} stories continue with no changed figure.\n");
        }
    }
    out
}

/// "source 2", "sources 1 and 3".
fn previous_sources(numbers: &[SourceNumber]) -> String {
    let numbers: Vec<String> = numbers.iter().map(ToString::to_string).collect();
    match numbers.as_slice() {
        [one] => format!("source {one}"),
        [init @ .., last] => format!("sources {} and {last}", init.join(", ")),
        [] => "no source".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::synthesize::since::{ChangedStory, FactChange, StatedValue, StoryRef};

    fn value(text: &str, sources: &[SourceNumber]) -> StatedValue {
        StatedValue {
            key: text.into(),
            text: text.into(),
            sources: sources.to_vec(),
        }
    }

    #[test]
    fn the_section_cites_this_brief_and_names_the_previous_briefs_sources_in_words() {
        let since = SinceLastBrief {
            previous_date: "2026-11-30".into(),
            new_stories: vec![StoryRef {
                title: "Exports rise [1]".into(),
                sources: vec![3],
            }],
            changed: vec![ChangedStory {
                title: "Floods in Hue".into(),
                sources: vec![1, 2],
                changes: vec![FactChange {
                    subject: "people".into(),
                    before: vec![value("12", &[1, 4])],
                    after: vec![value("14", &[1]), value("15", &[2])],
                }],
            }],
            unchanged: 2,
            dropped: vec![StoryRef {
                title: "## Tram line".into(),
                sources: vec![2],
            }],
        };
        assert_eq!(
            since_markdown(&since),
            "## Since the last brief\n\nCompared with the brief of 2026-11-30.\n\nNew stories:\n\n\
             - Exports rise (1) [3]\n\nChanged figures:\n\n- Floods in Hue\n  \
             - people: 12 → 14 [1]; 15 [2] (was 12 in sources 1 and 4 of the brief of 2026-11-30)\n\n\
             No longer reported:\n\n- \\#\\# Tram line\n\n2 stories continue with no changed figure.\n\n"
        );
    }
}
