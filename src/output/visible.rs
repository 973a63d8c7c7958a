//! Text from articles and file names made harmless for a terminal or a log: control
//! characters that a terminal acts on (C0 other than tab and newline, DEL, C1: escape
//! sequences that reset the terminal, retitle the window or query it) and the bidirectional
//! overrides and isolates that make text read differently from what it is ("Trojan source")
//! are replaced by a visible `\u{…}` escape. What reaches JSON is left exact: serde escapes
//! control characters itself, and machines want the bytes.

use std::borrow::Cow;

/// Whether `c` is a character a terminal or a bidi-aware viewer acts on rather than shows.
pub(crate) fn is_hazard(c: char) -> bool {
    match c {
        '\t' | '\n' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; the Arabic letter mark.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' => true,
        _ => false,
    }
}

/// `text` with every hazard shown as `\u{XX}`; borrowed when there is none.
pub(crate) fn visible_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hazard) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hazard(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One log record as lines for stderr: hazards made visible, and every line after the first
/// indented, so that text inside a message (a file name with a newline in it) can never
/// start a line of its own that reads like polybrief's.
pub fn log_safe(message: &str) -> Cow<'_, str> {
    let visible = visible_controls(message);
    if !visible.contains('\n') {
        return visible;
    }
    Cow::Owned(visible.replace('\n', "\n    "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_c1_and_bidi_overrides_become_visible_tab_and_newline_stay() {
        let hostile = "reset\u{1b}c query\u{90}+q\u{9c} \u{202e}gnp.exe\tend\nnext\u{7f}";
        assert_eq!(
            visible_controls(hostile),
            "reset\\u{1b}c query\\u{90}+q\\u{9c} \\u{202e}gnp.exe\tend\nnext\\u{7f}"
        );
        assert!(matches!(
            visible_controls("plain text, ünïcode 한국어"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_newline_in_a_log_message_cannot_start_a_line_of_its_own() {
        let forged = "skipped a\n2026-12-01T03:00:00 done in 1.0s: 5 sources, 0 skipped.txt: empty";
        let safe = log_safe(forged);
        assert!(
            safe.lines().skip(1).all(|line| line.starts_with("    ")),
            "{safe}"
        );
        assert_eq!(log_safe("one line \u{1b}[2J"), "one line \\u{1b}[2J");
    }
}
