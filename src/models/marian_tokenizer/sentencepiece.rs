//! Sentencepiece `.spm` model files, read and applied without the sentencepiece C++ library:
//! the `ModelProto` protobuf, the normalizer (precompiled character map, whitespace rules) and
//! the unigram segmentation, each a port of the library's own code so that the pieces are the
//! ones `SentencePieceProcessor.encode(text, out_type=str)` returns.
//!
//! References (google/sentencepiece): `sentencepiece_model.proto` (field numbers),
//! `normalizer.cc` (`Normalizer::Normalize`, `NormalizePrefix`), `unigram_model.cc`
//! (`Model::EncodeOptimized`), `sentencepiece_processor.cc` (`PopulateSentencePieceText`:
//! unknown pieces keep their text and consecutive ones merge; `DecodeSentencePiece`), and
//! darts-clone's `DoubleArray::commonPrefixSearch` for the character map.
//!
//! Why not `tokenizers`' `SpmConverter` recipe (Precompiled + Metaspace + Unigram): its
//! Precompiled normalizer works grapheme by grapheme where sentencepiece takes the longest
//! prefix match, its whitespace handling differs at the edges (leading/trailing/repeated
//! spaces), and its Viterbi sums scores in f64 where sentencepiece uses f32. Each is rare, but
//! polybrief promises the same ids as transformers' `MarianTokenizer`, which calls the C++
//! library, so this module follows the library.

use std::collections::HashMap;

/// What is wrong with a `.spm` file; the caller adds the path and the way out.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpmError {
    #[error("malformed protobuf: {0}")]
    Proto(String),
    #[error("it holds no pieces")]
    NoPieces,
    #[error("model type {0} is not supported (only unigram models, type 1)")]
    ModelType(u64),
    #[error("it has no <unk> piece")]
    NoUnknownPiece,
    #[error("its precompiled character map is corrupt ({0})")]
    CharsMap(String),
}

/// `ModelProto.SentencePiece.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceKind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl PieceKind {
    fn from_proto(v: u64) -> Result<Self, SpmError> {
        Ok(match v {
            1 => PieceKind::Normal,
            2 => PieceKind::Unknown,
            3 => PieceKind::Control,
            4 => PieceKind::UserDefined,
            5 => PieceKind::Unused,
            6 => PieceKind::Byte,
            other => return Err(SpmError::Proto(format!("unknown piece type {other}"))),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub text: String,
    pub score: f32,
    pub kind: PieceKind,
}

/// The parts of `ModelProto` that encoding and decoding use, with the proto's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelProto {
    pub pieces: Vec<Piece>,
    pub model_type: u64,
    pub treat_whitespace_as_suffix: bool,
    pub byte_fallback: bool,
    pub unk_surface: String,
    pub normalizer_name: String,
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire format (only what ModelProto needs: varints, fixed32, length-delimited).

/// One field value as it appears on the wire.
#[derive(Debug, PartialEq)]
enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

struct ProtoReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ProtoReader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        ProtoReader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, SpmError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| SpmError::Proto("truncated varint".into()))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SpmError::Proto("varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SpmError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| SpmError::Proto(format!("field of {n} bytes runs past the end")))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, WireValue<'a>)>, SpmError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(fixed(self.take(8)?))),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| SpmError::Proto("length does not fit in memory".into()))?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(fixed(self.take(4)?))),
            other => {
                return Err(SpmError::Proto(format!(
                    "unsupported wire type {other} (field {field})"
                )))
            }
        };
        Ok(Some((field, value)))
    }
}

fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

fn as_bytes<'a>(field: u64, v: WireValue<'a>) -> Result<&'a [u8], SpmError> {
    match v {
        WireValue::Bytes(b) => Ok(b),
        other => Err(SpmError::Proto(format!(
            "field {field}: expected bytes, found {other:?}"
        ))),
    }
}

fn as_string(field: u64, v: WireValue<'_>) -> Result<String, SpmError> {
    let bytes = as_bytes(field, v)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| SpmError::Proto(format!("field {field}: string is not UTF-8")))
}

fn as_varint(field: u64, v: WireValue<'_>) -> Result<u64, SpmError> {
    match v {
        WireValue::Varint(x) => Ok(x),
        other => Err(SpmError::Proto(format!(
            "field {field}: expected a varint, found {other:?}"
        ))),
    }
}

impl ModelProto {
    /// Parses a serialized `sentencepiece.ModelProto` (the content of a `.spm` / `.model` file).
    pub fn parse(bytes: &[u8]) -> Result<Self, SpmError> {
        let mut proto = ModelProto {
            pieces: Vec::new(),
            model_type: 1,
            treat_whitespace_as_suffix: false,
            byte_fallback: false,
            unk_surface: " \u{2047} ".to_string(),
            normalizer_name: String::new(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        let mut reader = ProtoReader::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => proto.pieces.push(parse_piece(as_bytes(field, value)?)?),
                2 => proto.parse_trainer_spec(as_bytes(field, value)?)?,
                3 => proto.parse_normalizer_spec(as_bytes(field, value)?)?,
                _ => {} // self_test_data, denormalizer_spec, extensions: not used for encoding
            }
        }
        if proto.pieces.is_empty() {
            return Err(SpmError::NoPieces);
        }
        Ok(proto)
    }

    fn parse_trainer_spec(&mut self, bytes: &[u8]) -> Result<(), SpmError> {
        let mut reader = ProtoReader::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                3 => self.model_type = as_varint(field, value)?,
                24 => self.treat_whitespace_as_suffix = as_varint(field, value)? != 0,
                35 => self.byte_fallback = as_varint(field, value)? != 0,
                44 => self.unk_surface = as_string(field, value)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn parse_normalizer_spec(&mut self, bytes: &[u8]) -> Result<(), SpmError> {
        let mut reader = ProtoReader::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match field {
                1 => self.normalizer_name = as_string(field, value)?,
                2 => self.precompiled_charsmap = as_bytes(field, value)?.to_vec(),
                3 => self.add_dummy_prefix = as_varint(field, value)? != 0,
                4 => self.remove_extra_whitespaces = as_varint(field, value)? != 0,
                5 => self.escape_whitespaces = as_varint(field, value)? != 0,
                _ => {}
            }
        }
        Ok(())
    }
}

fn parse_piece(bytes: &[u8]) -> Result<Piece, SpmError> {
    let mut piece = Piece {
        text: String::new(),
        score: 0.0,
        kind: PieceKind::Normal,
    };
    let mut reader = ProtoReader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, v) => piece.text = as_string(field, v)?,
            (2, WireValue::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (2, other) => {
                return Err(SpmError::Proto(format!(
                    "piece score: expected fixed32, found {other:?}"
                )))
            }
            (3, v) => piece.kind = PieceKind::from_proto(as_varint(field, v)?)?,
            _ => {}
        }
    }
    Ok(piece)
}

// ---------------------------------------------------------------------------------------------
// Normalizer (normalizer.cc).

const SPACE_SYMBOL: &str = "\u{2581}";

/// sentencepiece's precompiled character map: a darts-clone double array over UTF-8 bytes whose
/// values are offsets of NUL-terminated replacement strings.
#[derive(Clone, Debug)]
struct CharsMap {
    units: Vec<u32>,
    normalized: Vec<u8>,
}

impl CharsMap {
    /// `DecodePrecompiledCharsMap`: `[trie size: u32 LE][trie units][replacement strings]`.
    fn parse(blob: &[u8]) -> Result<Self, SpmError> {
        if blob.len() < 4 {
            return Err(SpmError::CharsMap("shorter than its 4-byte header".into()));
        }
        let trie_size = u32::from_le_bytes(fixed(&blob[..4])) as usize;
        if !trie_size.is_multiple_of(4) || trie_size > blob.len() - 4 {
            return Err(SpmError::CharsMap(format!(
                "trie size {trie_size} does not fit a {} byte map",
                blob.len()
            )));
        }
        let units = blob[4..4 + trie_size]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(fixed(c)))
            .collect();
        Ok(CharsMap {
            units,
            normalized: blob[4 + trie_size..].to_vec(),
        })
    }

    /// darts-clone `commonPrefixSearch`, keeping the longest match: `(replacement, bytes consumed)`.
    fn longest_prefix(&self, key: &[u8]) -> Option<(&str, usize)> {
        // Unit layout (darts.h): bit 8 has_leaf; label = unit & (1<<31 | 0xff);
        // value = unit & ((1<<31) - 1); offset = (unit >> 10) << ((unit & (1<<9)) >> 6).
        let offset = |unit: u32| ((unit >> 10) << ((unit & (1 << 9)) >> 6)) as usize;
        let mut node_pos = offset(*self.units.first()?);
        let mut best: Option<(usize, usize)> = None;
        for (i, &byte) in key.iter().enumerate() {
            node_pos ^= byte as usize;
            let unit = *self.units.get(node_pos)?;
            if unit & ((1 << 31) | 0xff) != u32::from(byte) {
                break;
            }
            node_pos ^= offset(unit);
            if (unit >> 8) & 1 == 1 {
                let value = self.units.get(node_pos)? & ((1 << 31) - 1);
                best = Some((value as usize, i + 1));
            }
        }
        let (value, len) = best?;
        let tail = self.normalized.get(value..)?;
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        std::str::from_utf8(&tail[..end]).ok().map(|s| (s, len))
    }
}

#[derive(Clone, Debug)]
struct Normalizer {
    charsmap: Option<CharsMap>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    treat_whitespace_as_suffix: bool,
    /// User-defined pieces pass through unnormalized (sentencepiece's `PrefixMatcher`).
    user_defined: Vec<String>,
}

impl Normalizer {
    /// `NormalizePrefix`: the normalized form of the longest rule matching at the start of
    /// `input`, and how many bytes of `input` it consumes.
    fn normalize_prefix<'a>(&'a self, input: &'a str) -> (&'a str, usize) {
        let longest_user = self
            .user_defined
            .iter()
            .filter(|p| !p.is_empty() && input.starts_with(p.as_str()))
            .map(|p| p.len())
            .max();
        if let Some(len) = longest_user {
            return (&input[..len], len);
        }
        if let Some((replacement, len)) = self
            .charsmap
            .as_ref()
            .and_then(|m| m.longest_prefix(input.as_bytes()))
        {
            // A rule always covers whole characters; a malformed map that splits one is ignored
            // rather than allowed to cut the input mid-character.
            if input.is_char_boundary(len) {
                return (replacement, len);
            }
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&input[..len], len)
    }

    fn space(&self) -> &'static str {
        if self.escape_whitespaces {
            SPACE_SYMBOL
        } else {
            " "
        }
    }

    /// `Normalizer::Normalize`.
    fn normalize(&self, mut input: &str) -> String {
        if self.remove_extra_whitespaces {
            // Leading spaces (after normalization) are dropped.
            while !input.is_empty() {
                let (norm, consumed) = self.normalize_prefix(input);
                if norm != " " {
                    break;
                }
                input = &input[consumed..];
            }
        }
        let mut out = String::with_capacity(input.len() * 3);
        if input.is_empty() {
            return out;
        }
        if !self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            out.push_str(self.space());
        }
        let mut is_prev_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (norm, consumed) = self.normalize_prefix(input);
            let mut piece = norm;
            if is_prev_space {
                piece = piece.trim_start_matches(' ');
            }
            if !piece.is_empty() {
                if self.escape_whitespaces {
                    out.push_str(&piece.replace(' ', SPACE_SYMBOL));
                } else {
                    out.push_str(piece);
                }
                is_prev_space = piece.ends_with(' ');
            }
            input = &input[consumed..];
            if !self.remove_extra_whitespaces {
                is_prev_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            let space = self.space();
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        if self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            out.push_str(self.space());
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Unigram segmentation (unigram_model.cc, EncodeOptimized) and the model as a whole.

/// Penalty below the lowest piece score that an unknown character costs (`kUnkPenalty`).
const UNK_PENALTY: f32 = 10.0;

/// A loaded `.spm` unigram model.
#[derive(Clone, Debug)]
pub struct SentencePiece {
    pieces: Vec<Piece>,
    /// Every piece's id, for decoding (`PieceToId`).
    piece_ids: HashMap<String, usize>,
    /// Pieces the segmentation may use (normal and user-defined; `Model::InitializePieces`
    /// leaves control, unknown, byte pieces out of the trie and segmentation skips unused ones).
    matchable: HashMap<String, usize>,
    max_piece_bytes: usize,
    normalizer: Normalizer,
    unk_id: usize,
    min_score: f32,
    max_score: f32,
    byte_fallback: bool,
    unk_surface: String,
}

impl SentencePiece {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SpmError> {
        Self::from_proto(ModelProto::parse(bytes)?)
    }

    pub fn from_proto(proto: ModelProto) -> Result<Self, SpmError> {
        if proto.model_type != 1 {
            return Err(SpmError::ModelType(proto.model_type));
        }
        let unk_id = proto
            .pieces
            .iter()
            .position(|p| p.kind == PieceKind::Unknown)
            .ok_or(SpmError::NoUnknownPiece)?;
        let charsmap = if proto.precompiled_charsmap.is_empty() {
            None
        } else {
            Some(CharsMap::parse(&proto.precompiled_charsmap)?)
        };
        // min/max over normal pieces only; max starts at FLT_MIN (the smallest positive float),
        // exactly as sentencepiece does, which matters for user-defined scores.
        let mut min_score = f32::MAX;
        let mut max_score = f32::MIN_POSITIVE;
        let mut piece_ids = HashMap::new();
        let mut matchable = HashMap::new();
        let mut user_defined = Vec::new();
        for (id, p) in proto.pieces.iter().enumerate() {
            piece_ids.entry(p.text.clone()).or_insert(id);
            match p.kind {
                PieceKind::Normal => {
                    min_score = min_score.min(p.score);
                    max_score = max_score.max(p.score);
                    matchable.entry(p.text.clone()).or_insert(id);
                }
                PieceKind::UserDefined => {
                    matchable.entry(p.text.clone()).or_insert(id);
                    user_defined.push(p.text.clone());
                }
                _ => {}
            }
        }
        let max_piece_bytes = matchable.keys().map(String::len).max().unwrap_or(0);
        let normalizer = Normalizer {
            charsmap,
            add_dummy_prefix: proto.add_dummy_prefix,
            remove_extra_whitespaces: proto.remove_extra_whitespaces,
            escape_whitespaces: proto.escape_whitespaces,
            treat_whitespace_as_suffix: proto.treat_whitespace_as_suffix,
            user_defined,
        };
        Ok(SentencePiece {
            pieces: proto.pieces,
            piece_ids,
            matchable,
            max_piece_bytes,
            normalizer,
            unk_id,
            min_score,
            max_score,
            byte_fallback: proto.byte_fallback,
            unk_surface: proto.unk_surface,
        })
    }

    /// The piece with sentencepiece id `id`, if there is one (`IdToPiece`).
    pub fn id_to_piece(&self, id: usize) -> Option<&str> {
        self.pieces.get(id).map(|p| p.text.as_str())
    }

    /// Whether `piece` is one of this model's pieces (of any type).
    pub fn contains(&self, piece: &str) -> bool {
        self.piece_ids.contains_key(piece)
    }

    /// The text after sentencepiece normalization (what segmentation sees).
    pub fn normalize(&self, text: &str) -> String {
        self.normalizer.normalize(text)
    }

    /// `encode(text, out_type=str)`: normalize, segment, and report unknown stretches by their
    /// (normalized) text, consecutive unknown characters merged into one piece.
    pub fn encode(&self, text: &str) -> Vec<String> {
        let normalized = self.normalizer.normalize(text);
        let mut out: Vec<String> = Vec::new();
        let mut prev_unk = false;
        for (piece, id) in self.segment(&normalized) {
            let is_unk = id == self.unk_id;
            if is_unk && self.byte_fallback {
                out.extend(piece.bytes().map(|b| format!("<0x{b:02X}>")));
            } else if is_unk && prev_unk {
                if let Some(last) = out.last_mut() {
                    last.push_str(piece);
                }
            } else {
                out.push(piece.to_string());
            }
            prev_unk = is_unk;
        }
        out
    }

    /// Viterbi over the lattice of pieces (`EncodeOptimized`): scores summed in f32, candidates
    /// visited by start position then length, a later candidate winning only if strictly better.
    fn segment<'a>(&self, normalized: &'a str) -> Vec<(&'a str, usize)> {
        #[derive(Clone, Copy)]
        struct Best {
            id: usize,
            score: f32,
            starts_at: Option<usize>,
        }
        let size = normalized.len();
        if size == 0 {
            return Vec::new();
        }
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![
            Best {
                id: 0,
                score: 0.0,
                starts_at: None
            };
            size + 1
        ];
        let relax = |best: &mut [Best], end: usize, start: usize, id: usize, score: f32| {
            let node = &mut best[end];
            if node.starts_at.is_none() || score > node.score {
                *node = Best {
                    id,
                    score,
                    starts_at: Some(start),
                };
            }
        };
        let mut start = 0;
        while start < size {
            let till_here = best[start].score;
            let first_char_len = normalized[start..].chars().next().map_or(1, char::len_utf8);
            let mut has_single_node = false;
            let max_end = (start + self.max_piece_bytes).min(size);
            for end in (start + 1)..=max_end {
                if !normalized.is_char_boundary(end) {
                    continue;
                }
                let Some(&id) = self.matchable.get(&normalized[start..end]) else {
                    continue;
                };
                let length = end - start;
                let score = if self.pieces[id].kind == PieceKind::UserDefined {
                    // "User defined symbol receives extra bonus to always be selected."
                    length as f32 * self.max_score - 0.1
                } else {
                    self.pieces[id].score
                };
                relax(&mut best, end, start, id, score + till_here);
                if length == first_char_len {
                    has_single_node = true;
                }
            }
            if !has_single_node {
                relax(
                    &mut best,
                    start + first_char_len,
                    start,
                    self.unk_id,
                    unk_score + till_here,
                );
            }
            start += first_char_len;
        }
        let mut pieces = Vec::new();
        let mut end = size;
        while end > 0 {
            let node = best[end];
            // Every char boundary is reached (at worst by an unknown node), so this holds.
            let Some(start) = node.starts_at else { break };
            pieces.push((&normalized[start..end], node.id));
            end = start;
        }
        pieces.reverse();
        pieces
    }

    /// Joins pieces back into text the way `DecodePieces` does, except that the leading space
    /// of the first piece is kept (MarianTokenizer strips the result anyway): control pieces
    /// vanish, the unknown piece shows as its surface (" ⁇ "), byte pieces become bytes, pieces
    /// this model does not know are kept verbatim, and `▁` becomes a space.
    pub fn decode_pieces<S: AsRef<str>>(&self, pieces: &[S]) -> String {
        let mut out = String::new();
        let mut bytes: Vec<u8> = Vec::new();
        for piece in pieces {
            let piece = piece.as_ref();
            let id = self.piece_ids.get(piece).copied();
            let kind = id.map(|id| self.pieces[id].kind);
            if kind == Some(PieceKind::Byte) {
                if let Some(b) = parse_byte_piece(piece) {
                    bytes.push(b);
                    continue;
                }
            }
            if !bytes.is_empty() {
                out.push_str(&String::from_utf8_lossy(&bytes));
                bytes.clear();
            }
            match kind {
                Some(PieceKind::Control) => {}
                Some(PieceKind::Unknown) => out.push_str(&self.unk_surface),
                _ => out.push_str(&piece.replace(SPACE_SYMBOL, " ")),
            }
        }
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
        out
    }
}

fn parse_byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Minimal protobuf writer for building test inputs.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn field_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    fn field_varint(field: u64, v: u64, out: &mut Vec<u8>) {
        varint(field << 3, out);
        varint(v, out);
    }
    fn piece(text: &str, score: f32, kind: u64) -> Vec<u8> {
        let mut p = Vec::new();
        field_bytes(1, text.as_bytes(), &mut p);
        varint(2 << 3 | 5, &mut p);
        p.extend_from_slice(&score.to_bits().to_le_bytes());
        field_varint(3, kind, &mut p);
        p
    }
    /// A model with the given pieces, no character map, default whitespace rules.
    fn model(pieces: &[(&str, f32, u64)], normalizer: &[(u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(text, score, kind) in pieces {
            field_bytes(1, &piece(text, score, kind), &mut out);
        }
        let mut trainer = Vec::new();
        field_varint(3, 1, &mut trainer);
        field_bytes(2, &trainer, &mut out);
        let mut norm = Vec::new();
        field_bytes(1, b"identity", &mut norm);
        for &(f, v) in normalizer {
            field_varint(f, v, &mut norm);
        }
        field_bytes(3, &norm, &mut out);
        out
    }

    #[test]
    fn varints_decode_across_byte_boundaries() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            varint(v, &mut buf);
            assert_eq!(ProtoReader::new(&buf).varint(), Ok(v), "value {v}");
        }
    }

    #[test]
    fn reader_yields_each_wire_type_and_skips_unknown_fields() {
        let mut buf = Vec::new();
        field_varint(7, 300, &mut buf);
        field_bytes(2, b"abc", &mut buf);
        varint(9 << 3 | 5, &mut buf);
        buf.extend_from_slice(&1.5f32.to_bits().to_le_bytes());
        varint(4 << 3 | 1, &mut buf);
        buf.extend_from_slice(&42u64.to_le_bytes());
        let mut r = ProtoReader::new(&buf);
        assert_eq!(r.next_field(), Ok(Some((7, WireValue::Varint(300)))));
        assert_eq!(r.next_field(), Ok(Some((2, WireValue::Bytes(b"abc")))));
        assert_eq!(
            r.next_field(),
            Ok(Some((9, WireValue::Fixed32(1.5f32.to_bits()))))
        );
        assert_eq!(r.next_field(), Ok(Some((4, WireValue::Fixed64(42)))));
        assert_eq!(r.next_field(), Ok(None));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = model(&[("<unk>", 0.0, 2), ("▁a", -1.0, 1)], &[]);
        for cut in 1..bytes.len() {
            // Every strict prefix either fails to parse or parses to something smaller; none panics.
            let _ = ModelProto::parse(&bytes[..cut]);
        }
        assert!(matches!(
            ModelProto::parse(&[0x0a, 0x05, 0x01]),
            Err(SpmError::Proto(_))
        ));
        assert!(
            matches!(ModelProto::parse(&[0x0b]), Err(SpmError::Proto(_))),
            "group wire type"
        );
        assert_eq!(ModelProto::parse(&[]), Err(SpmError::NoPieces));
    }

    #[test]
    fn model_proto_reads_pieces_specs_and_defaults() {
        let bytes = model(
            &[("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("▁a", -1.25, 1)],
            &[(3, 0)],
        );
        let proto = ModelProto::parse(&bytes).unwrap();
        assert_eq!(proto.pieces.len(), 3);
        assert_eq!(
            proto.pieces[2],
            Piece {
                text: "▁a".into(),
                score: -1.25,
                kind: PieceKind::Normal
            }
        );
        assert_eq!(proto.pieces[1].kind, PieceKind::Control);
        assert_eq!(proto.normalizer_name, "identity");
        assert!(!proto.add_dummy_prefix, "explicit false kept");
        assert!(
            proto.remove_extra_whitespaces && proto.escape_whitespaces,
            "proto defaults are true"
        );
        assert_eq!(proto.unk_surface, " \u{2047} ");
    }

    #[test]
    fn bpe_models_are_refused() {
        let mut bytes = model(&[("<unk>", 0.0, 2)], &[]);
        let mut trainer = Vec::new();
        field_varint(3, 2, &mut trainer);
        field_bytes(2, &trainer, &mut bytes); // a later field overrides the earlier one
        assert_eq!(
            SentencePiece::from_bytes(&bytes).unwrap_err(),
            SpmError::ModelType(2)
        );
    }

    #[test]
    fn whitespace_rules_follow_sentencepiece() {
        let sp = SentencePiece::from_bytes(&model(&[("<unk>", 0.0, 2)], &[])).unwrap();
        assert_eq!(sp.normalize("  a  b "), "▁a▁b");
        assert_eq!(sp.normalize("   "), "");
        assert_eq!(sp.normalize(""), "");
        let keep =
            SentencePiece::from_bytes(&model(&[("<unk>", 0.0, 2)], &[(3, 0), (4, 0)])).unwrap();
        assert_eq!(keep.normalize(" a  b "), "▁a▁▁b▁");
    }

    #[test]
    fn segmentation_prefers_the_best_scoring_path_and_merges_unknown_runs() {
        let sp = SentencePiece::from_bytes(&model(
            &[
                ("<unk>", 0.0, 2),
                ("▁", -2.0, 1),
                ("▁ab", -1.0, 1),
                ("a", -3.0, 1),
                ("b", -3.0, 1),
                ("c", -3.0, 1),
            ],
            &[],
        ))
        .unwrap();
        assert_eq!(sp.encode("ab"), vec!["▁ab"]);
        assert_eq!(sp.encode("abxyc"), vec!["▁ab", "xy", "c"]);
        assert_eq!(sp.encode("ba"), vec!["▁", "b", "a"]);
    }

    #[test]
    fn user_defined_pieces_win_and_are_not_normalized() {
        let sp = SentencePiece::from_bytes(&model(
            &[
                ("<unk>", 0.0, 2),
                ("▁", -1.0, 1),
                ("x", -1.0, 1),
                ("<sep>", 0.0, 4),
                ("<", -0.5, 1),
                ("s", -0.5, 1),
            ],
            &[],
        ))
        .unwrap();
        assert_eq!(sp.encode("x<sep>x"), vec!["▁", "x", "<sep>", "x"]);
    }

    #[test]
    fn decoding_drops_control_pieces_and_keeps_foreign_ones() {
        let sp = SentencePiece::from_bytes(&model(
            &[("<unk>", 0.0, 2), ("</s>", 0.0, 3), ("▁a", -1.0, 1)],
            &[],
        ))
        .unwrap();
        assert_eq!(
            sp.decode_pieces(&["▁a", "</s>", ">>fra<<", "▁a"]),
            " a>>fra<< a"
        );
        assert_eq!(sp.decode_pieces(&["<unk>"]), " \u{2047} ");
    }

    #[test]
    fn byte_pieces_parse() {
        assert_eq!(parse_byte_piece("<0x41>"), Some(0x41));
        assert_eq!(parse_byte_piece("<0xe3>"), Some(0xe3));
        assert_eq!(parse_byte_piece("<0x4>"), None);
        assert_eq!(parse_byte_piece("0x41"), None);
    }
}
