//! Bytes to normalised text: UTF-8 (repairing a few bad bytes), UTF-16 with a BOM, NFC,
//! `\n` line ends; or the reason a file is not text.

use unicode_normalization::{IsNormalized, UnicodeNormalization};

#[derive(Debug)]
pub(super) struct Decoded {
    pub(super) text: String,
    /// Invalid UTF-8 sequences replaced by U+FFFD.
    pub(super) replaced: usize,
}

/// Largest share of invalid UTF-8 (or control characters) a file may have and still be
/// read as text: a stray Latin-1 byte in a UTF-8 article is repairable, a Latin-1 or
/// GBK file is not (its every accented letter would be lost).
pub(super) const MAX_BAD_SHARE: f64 = 0.02;

/// Bytes to normalised text, or the reason the file is not text.
pub(super) fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    if bytes.is_empty() {
        return Err("empty file".to_string());
    }
    let (text, replaced) = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        decode_utf8(rest)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        (decode_utf16(rest, u16::from_le_bytes), 0)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        (decode_utf16(rest, u16::from_be_bytes), 0)
    } else {
        if bytes.contains(&0) {
            return Err("binary file (contains NUL bytes)".to_string());
        }
        decode_utf8(bytes)?
    };
    let is_bad_control = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0C');
    let (chars, control) = if text.is_ascii() {
        let control = text.bytes().filter(|&b| is_bad_control(b as char)).count();
        (text.len().max(1), control)
    } else {
        let chars = text.chars().count().max(1);
        (chars, text.chars().filter(|&c| is_bad_control(c)).count())
    };
    if control as f64 / chars as f64 > MAX_BAD_SHARE {
        return Err("binary file (mostly control characters)".to_string());
    }
    let text = normalize(&text);
    if text.trim().is_empty() {
        return Err("empty file (only whitespace)".to_string());
    }
    Ok(Decoded { text, replaced })
}

pub(super) fn decode_utf8(bytes: &[u8]) -> Result<(String, usize), String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((text.to_string(), 0)),
        Err(_) => {
            let mut replaced = 0;
            let mut text = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    replaced += 1;
                    text.push('\u{FFFD}');
                }
            }
            let share = replaced as f64 / text.chars().count().max(1) as f64;
            if share > MAX_BAD_SHARE {
                Err(format!(
                    "not UTF-8 text ({:.0}% invalid); convert it to UTF-8 first, e.g. `iconv -f latin1 -t utf-8`",
                    share * 100.0
                ))
            } else {
                Ok((text, replaced))
            }
        }
    }
}

pub(super) fn decode_utf16(bytes: &[u8], to_u16: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|pair| to_u16([pair[0], pair[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or('\u{FFFD}'))
        .collect()
}

/// NFC (Vietnamese in particular arrives decomposed), `\n` line ends, and no BOM or
/// zero-width spaces, which would split words for the tokenizer.
pub(super) fn normalize(text: &str) -> String {
    let unwanted = |c: char| c == '\u{FEFF}' || c == '\u{200B}';
    let has_cr = text.as_bytes().contains(&b'\r');
    // ASCII is NFC and holds neither unwanted character.
    if !has_cr && text.is_ascii() {
        return text.to_string();
    }
    let lines = if has_cr {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_string()
    };
    // Most text is already NFC, and the quick check says so without composing anything: a
    // re-run reads every file again, and composing them all was most of its ingest.
    if unicode_normalization::is_nfc_quick(lines.chars()) == IsNormalized::Yes {
        if !lines.contains(unwanted) {
            return lines;
        }
        return lines.chars().filter(|&c| !unwanted(c)).collect();
    }
    lines.nfc().filter(|&c| !unwanted(c)).collect()
}
