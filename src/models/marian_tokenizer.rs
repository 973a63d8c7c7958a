//! The opus-mt (Marian) tokenizer, built from a model repository's own files: `source.spm`,
//! `target.spm`, `vocab.json` (and `target_vocab.json` + `tokenizer_config.json` where the
//! repository has separate vocabularies). Most opus-mt repositories ship no `tokenizer.json`,
//! so polybrief assembles the tokenizer itself.
//!
//! Matches transformers' `MarianTokenizer` (models/marian/tokenization_marian.py, with the
//! slow-tokenizer base class in tokenization_python.py) id for id:
//! - encoding: the special tokens `</s>`, `<unk>`, `<pad>` written in the text stay single
//!   tokens; every other stretch loses a leading `>>xxx<<` language code (kept as one token),
//!   is split by the *source* sentencepiece model, and each piece is looked up in `vocab.json`
//!   (a piece it lacks becomes `<unk>`); `</s>` is appended.
//! - decoding: special ids are skipped, ids become pieces through `vocab.json` (or
//!   `target_vocab.json`), the pieces are joined by sentencepiece rules — with the *source*
//!   model when the vocabulary is shared (transformers' default) and the target model when it
//!   is separate — `▁` becomes a space and the result is trimmed.
//!
//! The sentencepiece part lives in [`sentencepiece`].

pub mod sentencepiece;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use self::sentencepiece::{SentencePiece, SpmError};

/// How to fix a damaged or partial model download, appended to file errors.
const REFETCH_HINT: &str =
    "the model download may be incomplete or damaged: delete it from the model cache \
     and run `polybrief models fetch` again";

/// Why a Marian tokenizer could not be built or used. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read {}: {source}; {REFETCH_HINT}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a usable sentencepiece model: {source}; {REFETCH_HINT}", path.display())]
    Sentencepiece {
        path: PathBuf,
        #[source]
        source: SpmError,
    },
    #[error("{} is not a Marian vocabulary: {reason}; {REFETCH_HINT}", path.display())]
    Vocab { path: PathBuf, reason: String },
    #[error("{} is not valid tokenizer configuration: {reason}; {REFETCH_HINT}", path.display())]
    Config { path: PathBuf, reason: String },
}

/// Tokens that transformers registers as special (never split, skipped when decoding).
const EOS: &str = "</s>";
const UNK: &str = "<unk>";
const PAD: &str = "<pad>";

/// The opus-mt tokenizer. Cheap to share by reference; all methods take `&self`.
#[derive(Clone, Debug)]
pub struct MarianTokenizer {
    source: SentencePiece,
    target: SentencePiece,
    /// `vocab.json`: piece -> id, used for encoding (and decoding when shared).
    encoder: HashMap<String, u32>,
    /// id -> piece for decoding: `vocab.json` inverted, or `target_vocab.json` inverted.
    decoder: HashMap<u32, String>,
    separate_vocabs: bool,
    /// The special tokens with their ids, longest first (for splitting them out of text).
    specials: Vec<(String, u32)>,
    eos_id: u32,
    unk_id: u32,
    pad_id: u32,
    clean_up_tokenization_spaces: bool,
}

impl MarianTokenizer {
    /// A tokenizer for a repository with one shared vocabulary (most opus-mt models).
    pub fn from_files(
        source_spm: &Path,
        target_spm: &Path,
        vocab_json: &Path,
    ) -> Result<Self, TokenizerError> {
        Self::build(source_spm, target_spm, vocab_json, None, false)
    }

    /// A tokenizer for a repository with separate source and target vocabularies
    /// (`separate_vocabs: true` in its tokenizer_config.json, as some opus-mt-tc-big models).
    pub fn from_files_separate(
        source_spm: &Path,
        target_spm: &Path,
        vocab_json: &Path,
        target_vocab_json: &Path,
    ) -> Result<Self, TokenizerError> {
        Self::build(
            source_spm,
            target_spm,
            vocab_json,
            Some(target_vocab_json),
            false,
        )
    }

    /// A tokenizer from a downloaded repository folder, honouring its `tokenizer_config.json`
    /// (`separate_vocabs`, `clean_up_tokenization_spaces`) the way `from_pretrained` does.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let config_path = dir.join("tokenizer_config.json");
        let mut separate = false;
        let mut clean_up = false;
        if config_path.exists() {
            let text = read_to_string(&config_path)?;
            let config: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| TokenizerError::Config {
                    path: config_path.clone(),
                    reason: e.to_string(),
                })?;
            separate = config
                .get("separate_vocabs")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            clean_up = config
                .get("clean_up_tokenization_spaces")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
        }
        let target_vocab = dir.join("target_vocab.json");
        Self::build(
            &dir.join("source.spm"),
            &dir.join("target.spm"),
            &dir.join("vocab.json"),
            separate.then_some(target_vocab.as_path()),
            clean_up,
        )
    }

    fn build(
        source_spm: &Path,
        target_spm: &Path,
        vocab_json: &Path,
        target_vocab_json: Option<&Path>,
        clean_up_tokenization_spaces: bool,
    ) -> Result<Self, TokenizerError> {
        let source = load_spm(source_spm)?;
        let target = load_spm(target_spm)?;
        let encoder = load_vocab(vocab_json)?;
        let special_id = |token: &str| {
            encoder
                .get(token)
                .copied()
                .ok_or_else(|| TokenizerError::Vocab {
                    path: vocab_json.to_path_buf(),
                    reason: format!("it has no {token} entry"),
                })
        };
        let (eos_id, unk_id, pad_id) = (special_id(EOS)?, special_id(UNK)?, special_id(PAD)?);
        let decoder = match target_vocab_json {
            Some(path) => invert(load_vocab(path)?),
            None => invert(encoder.clone()),
        };
        let mut specials = vec![
            (EOS.to_string(), eos_id),
            (UNK.to_string(), unk_id),
            (PAD.to_string(), pad_id),
        ];
        specials.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
        Ok(MarianTokenizer {
            source,
            target,
            encoder,
            decoder,
            separate_vocabs: target_vocab_json.is_some(),
            specials,
            eos_id,
            unk_id,
            pad_id,
            clean_up_tokenization_spaces,
        })
    }

    /// `</s>`: ends every source sentence and every translation.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// `<pad>`: pads batches and, in opus-mt models, starts decoding (`decoder_start_token_id`).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Entries in `vocab.json` (transformers' `MarianTokenizer.vocab_size`).
    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    /// The tokens of `text` before id lookup, without the final `</s>` (`tokenize`).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        for chunk in self.split_specials(text) {
            match chunk {
                Chunk::Special(token, _) => tokens.push(token.to_string()),
                Chunk::Text(text) => {
                    let (code, rest) = split_language_code(text);
                    tokens.extend(code.map(str::to_string));
                    tokens.extend(self.source.encode(rest));
                }
            }
        }
        tokens
    }

    /// The model input ids for `text`, ending with `</s>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        for chunk in self.split_specials(text) {
            match chunk {
                Chunk::Special(_, id) => ids.push(id),
                Chunk::Text(text) => {
                    let (code, rest) = split_language_code(text);
                    ids.extend(code.map(|c| self.piece_id(c)));
                    ids.extend(self.source.encode(rest).iter().map(|p| self.piece_id(p)));
                }
            }
        }
        ids.push(self.eos_id);
        Ok(ids)
    }

    /// [`encode`](Self::encode) for each text.
    pub fn encode_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<u32>>, TokenizerError> {
        texts.iter().map(|t| self.encode(t.as_ref())).collect()
    }

    /// How many ids `encode(text)` gives (including `</s>`), for fitting batches and limits.
    pub fn token_count(&self, text: &str) -> usize {
        self.encode(text).map_or(0, |ids| ids.len())
    }

    /// The text of generated target ids; special ids (`</s>`, `<unk>`, `<pad>`) are skipped
    /// (`decode(ids, skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let spm = if self.separate_vocabs {
            &self.target
        } else {
            &self.source
        };
        let pieces: Vec<&str> = ids
            .iter()
            .filter(|&&id| id != self.eos_id && id != self.unk_id && id != self.pad_id)
            .filter_map(|&id| match self.decoder.get(&id) {
                Some(piece) => Some(piece.as_str()),
                // Ids missing from the vocabulary fall back to the sentencepiece model's own
                // piece; beyond that transformers yields `<unk>`, which is skipped.
                None => spm.id_to_piece(id as usize),
            })
            .collect();
        let text = spm.decode_pieces(&pieces).replace('\u{2581}', " ");
        let text = text.trim_matches(is_python_whitespace).to_string();
        Ok(if self.clean_up_tokenization_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    fn piece_id(&self, piece: &str) -> u32 {
        self.encoder.get(piece).copied().unwrap_or(self.unk_id)
    }

    /// Splits `text` around the special tokens written in it (transformers' added-tokens trie:
    /// leftmost match, longest at a position).
    fn split_specials<'a>(&'a self, text: &'a str) -> Vec<Chunk<'a>> {
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut pos = 0;
        while pos < text.len() {
            let found = self
                .specials
                .iter()
                .find(|(token, _)| text[pos..].starts_with(token.as_str()));
            if let Some((token, id)) = found {
                if start < pos {
                    chunks.push(Chunk::Text(&text[start..pos]));
                }
                chunks.push(Chunk::Special(token.as_str(), *id));
                pos += token.len();
                start = pos;
            } else {
                pos += text[pos..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if start < text.len() {
            chunks.push(Chunk::Text(&text[start..]));
        }
        chunks
    }
}

enum Chunk<'a> {
    Text(&'a str),
    Special(&'a str, u32),
}

/// `MarianTokenizer.remove_language_code`: a leading `>>xxx<<` is one token.
fn split_language_code(text: &str) -> (Option<&str>, &str) {
    if text.starts_with(">>") {
        if let Some(end) = text.find("<<") {
            return (Some(&text[..end + 2]), &text[end + 2..]);
        }
    }
    (None, text)
}

/// Python's `str.isspace`, which `str.strip()` uses: Unicode White_Space plus the ASCII
/// information separators U+001C..U+001F.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// transformers' `clean_up_tokenization`, applied only when tokenizer_config.json asks for it.
fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

fn read_to_string(path: &Path) -> Result<String, TokenizerError> {
    std::fs::read_to_string(path).map_err(|source| TokenizerError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_spm(path: &Path) -> Result<SentencePiece, TokenizerError> {
    let bytes = std::fs::read(path).map_err(|source| TokenizerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    SentencePiece::from_bytes(&bytes).map_err(|source| TokenizerError::Sentencepiece {
        path: path.to_path_buf(),
        source,
    })
}

fn load_vocab(path: &Path) -> Result<HashMap<String, u32>, TokenizerError> {
    let text = read_to_string(path)?;
    let vocab: HashMap<String, u32> =
        serde_json::from_str(&text).map_err(|e| TokenizerError::Vocab {
            path: path.to_path_buf(),
            reason: format!("expected a JSON object of piece -> id ({e})"),
        })?;
    if vocab.is_empty() {
        return Err(TokenizerError::Vocab {
            path: path.to_path_buf(),
            reason: "it is empty".into(),
        });
    }
    Ok(vocab)
}

fn invert(vocab: HashMap<String, u32>) -> HashMap<u32, String> {
    // Python's `{v: k for k, v in vocab.items()}` keeps the last piece for a duplicated id; JSON
    // object order is not kept by the HashMap, so prefer the lexicographically last for stability.
    let mut out: HashMap<u32, String> = HashMap::with_capacity(vocab.len());
    for (piece, id) in vocab {
        match out.get(&id) {
            Some(existing) if existing >= &piece => {}
            _ => {
                out.insert(id, piece);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MarianTokenizer>();
    }

    #[test]
    fn language_code_is_split_only_at_the_start() {
        assert_eq!(
            split_language_code(">>fra<< Bonjour"),
            (Some(">>fra<<"), " Bonjour")
        );
        assert_eq!(split_language_code(">>fra<<"), (Some(">>fra<<"), ""));
        assert_eq!(split_language_code("x >>fra<<"), (None, "x >>fra<<"));
        assert_eq!(
            split_language_code(">>unterminated"),
            (None, ">>unterminated")
        );
    }

    #[test]
    fn python_strip_whitespace_includes_information_separators() {
        assert!(is_python_whitespace('\u{1f}'));
        assert!(is_python_whitespace('\u{3000}'));
        assert!(
            !is_python_whitespace('\u{200b}'),
            "zero-width space is not whitespace in Python"
        );
    }

    #[test]
    fn clean_up_joins_punctuation_and_contractions() {
        assert_eq!(
            clean_up_tokenization("It is n't done , is it ?"),
            "It isn't done, is it?"
        );
    }
}
