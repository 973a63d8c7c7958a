//! The model catalog: which model serves each task (translate `<lang>`→en, summarize,
//! synthesize, embed), where it lives on the Hugging Face hub (repo, pinned revision), which files it
//! needs and what each file must hash to.
//!
//! The default catalog is `models/catalog.toml`, compiled into the binary; `--models FILE`
//! overrides entries by `id` or adds new ones. Parsing is strict (unknown fields are errors)
//! because a typo in a pin would otherwise silently turn verification off. Errors name the
//! file, line and column (TOML syntax) or the file and model id (meaning).

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::article::Lang;

/// The built-in catalog text.
const BUILTIN: &str = include_str!("../../models/catalog.toml");
const BUILTIN_ORIGIN: &str = "built-in catalog (models/catalog.toml)";

/// Why a catalog could not be read. All of these are usage errors (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read model catalog {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{origin}: model `{id}`: {message}")]
    Invalid {
        origin: String,
        id: String,
        message: String,
    },
}

/// What a model is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Translate,
    Summarize,
    Synthesize,
    /// Sentence embeddings for grouping articles into stories.
    Embed,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Translate => "translate",
            Task::Summarize => "summarize",
            Task::Synthesize => "synthesize",
            Task::Embed => "embed",
        })
    }
}

/// How the model's files are laid out, so the caller knows which loader to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// A Marian (opus-mt) checkpoint: config.json, weights, source/target.spm, vocab.json.
    Marian,
    /// A single GGUF file (quantized LLM) plus its tokenizer.json.
    Gguf,
    /// A transformers-style directory (config.json, safetensors, tokenizer.json).
    Transformers,
}

/// One file a model needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the repo (or the local directory), e.g. `model.safetensors`.
    pub name: String,
    /// Exact size in bytes, where published.
    pub size: Option<u64>,
    /// Rounded size as the hub's web page shows it, for display only.
    pub approx_size: Option<u64>,
    /// Lowercase hex sha256 of the content, where published.
    pub sha256: Option<String>,
    /// Another repo to take this file from (e.g. a GGUF repo's tokenizer from the base repo).
    pub repo: Option<String>,
    /// Revision in `repo` (defaults to the entry's revision when `repo` is not set).
    pub revision: Option<String>,
}

/// One model of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    /// Short name used everywhere (`opus-mt-de-en`).
    pub id: String,
    pub tasks: Vec<Task>,
    /// Source languages a translation model takes (several for a group model).
    pub langs: Vec<Lang>,
    /// The translator of last resort, for languages no other entry lists.
    pub fallback: bool,
    pub format: ModelFormat,
    /// Hub repo id, `Helsinki-NLP/opus-mt-de-en`.
    pub repo: String,
    /// A 40-hex commit (pinned) or a branch/ref such as `main` or `refs/pr/4` (unpinned).
    pub revision: String,
    pub license: String,
    pub files: Vec<FileEntry>,
    /// A local directory holding the files instead of the hub (air-gapped use).
    pub path: Option<PathBuf>,
    /// Which catalog defined this entry (for messages).
    pub origin: String,
}

impl ModelEntry {
    /// Where a file comes from: (repo, revision).
    pub fn source_of<'a>(&'a self, file: &'a FileEntry) -> (&'a str, &'a str) {
        match (&file.repo, &file.revision) {
            (Some(repo), Some(rev)) => (repo, rev),
            (Some(repo), None) => (repo, "main"),
            (None, Some(rev)) => (&self.repo, rev),
            (None, None) => (&self.repo, &self.revision),
        }
    }

    /// True when every file is fetched from a full commit sha, so the bytes cannot change.
    pub fn is_pinned(&self) -> bool {
        self.path.is_none()
            && self
                .files
                .iter()
                .all(|f| is_commit_sha(self.source_of(f).1))
    }

    /// True for a translator that serves several source languages.
    pub fn is_group(&self) -> bool {
        self.langs.len() > 1
    }

    pub fn serves(&self, task: Task) -> bool {
        self.tasks.contains(&task)
    }

    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// How a translator was chosen for a language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranslatorKind {
    /// A model for exactly this source language.
    Direct,
    /// A model covering a group of languages including this one.
    Group,
    /// No entry lists the language: the multilingual fallback.
    Fallback,
}

/// The translator for one language, with how it was chosen. Derefs to the entry.
#[derive(Clone, Copy, Debug)]
pub struct Translator<'a> {
    pub entry: &'a ModelEntry,
    pub kind: TranslatorKind,
}

impl Translator<'_> {
    pub fn is_fallback(&self) -> bool {
        self.kind == TranslatorKind::Fallback
    }
}

impl Deref for Translator<'_> {
    type Target = ModelEntry;
    fn deref(&self) -> &ModelEntry {
        self.entry
    }
}

/// The models known to this run.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::parse(BUILTIN, BUILTIN_ORIGIN, None)
    }

    /// Parses catalog text. `origin` names it in errors; relative `path = ...` entries are
    /// resolved against `base_dir` (the catalog file's directory).
    pub fn parse(
        text: &str,
        origin: &str,
        base_dir: Option<&Path>,
    ) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            CatalogError::Syntax {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        if raw.schema != 1 {
            return Err(CatalogError::Invalid {
                origin: origin.to_string(),
                id: "-".to_string(),
                message: format!(
                    "unsupported catalog schema {} (this polybrief reads schema 1)",
                    raw.schema
                ),
            });
        }
        let mut entries = Vec::with_capacity(raw.model.len());
        let mut ids = HashSet::new();
        let mut lang_owner: Vec<(Lang, String)> = Vec::new();
        for model in raw.model {
            let entry = model.validate(origin, base_dir)?;
            if !ids.insert(entry.id.clone()) {
                return Err(invalid(
                    origin,
                    &entry.id,
                    "is defined twice in this file".to_string(),
                ));
            }
            for lang in &entry.langs {
                if let Some((_, other)) = lang_owner.iter().find(|(l, _)| l == lang) {
                    return Err(invalid(
                        origin,
                        &entry.id,
                        format!("language `{lang}` is already served by `{other}` in this file"),
                    ));
                }
                lang_owner.push((lang.clone(), entry.id.clone()));
            }
            entries.push(entry);
        }
        Ok(Catalog { entries })
    }

    /// Reads `path` and lays it over this catalog: an entry with a known id replaces it in
    /// place, a new id is added (and wins over built-in entries for the languages it lists).
    pub fn with_overrides(self, path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf);
        let overrides = Catalog::parse(&text, &path.display().to_string(), base.as_deref())?;
        Ok(self.merge(overrides))
    }

    /// `other` laid over `self` (see [`Catalog::with_overrides`]).
    pub fn merge(mut self, other: Catalog) -> Catalog {
        for entry in other.entries {
            match self.entries.iter_mut().find(|e| e.id == entry.id) {
                Some(slot) => *slot = entry,
                None => self.entries.push(entry),
            }
        }
        self
    }

    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    pub fn get(&self, id: &str) -> Option<&ModelEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The model that translates `lang` into English: a direct or group model listing the
    /// language, else the fallback. `None` for English (nothing to translate) or when the
    /// catalog has no fallback. Later entries (overrides) win over earlier ones.
    pub fn translator_for(&self, lang: &Lang) -> Option<Translator<'_>> {
        if lang.is_english() {
            return None;
        }
        let translators = self
            .entries
            .iter()
            .rev()
            .filter(|e| e.serves(Task::Translate));
        if let Some(entry) = translators.clone().find(|e| e.langs.contains(lang)) {
            let kind = if entry.is_group() {
                TranslatorKind::Group
            } else {
                TranslatorKind::Direct
            };
            return Some(Translator { entry, kind });
        }
        translators
            .clone()
            .find(|e| e.fallback)
            .map(|entry| Translator {
                entry,
                kind: TranslatorKind::Fallback,
            })
    }

    /// The instruct model that writes per-article summaries.
    pub fn summarizer(&self) -> Option<&ModelEntry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.serves(Task::Summarize))
    }

    /// The instruct model that writes the consolidated brief (often the summarizer itself).
    pub fn synthesizer(&self) -> Option<&ModelEntry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.serves(Task::Synthesize))
    }

    /// The sentence-embedding model that groups articles into stories (lexical grouping
    /// without one).
    pub fn embedder(&self) -> Option<&ModelEntry> {
        self.entries.iter().rev().find(|e| e.serves(Task::Embed))
    }

    /// What a run over articles in `langs` needs, each model once, in a stable order:
    /// translators (in the order of `langs`), then the summarizer, synthesizer and embedder.
    pub fn needed_for<'a>(&'a self, langs: &[Lang]) -> Vec<Need<'a>> {
        let mut needs: Vec<Need<'a>> = Vec::new();
        let mut push = |entry: &'a ModelEntry, role: Role| match needs
            .iter_mut()
            .find(|n| std::ptr::eq(n.entry, entry))
        {
            Some(need) => {
                if !need.roles.contains(&role) {
                    need.roles.push(role)
                }
            }
            None => needs.push(Need {
                entry,
                roles: vec![role],
            }),
        };
        let mut seen: BTreeSet<&Lang> = BTreeSet::new();
        for lang in langs {
            if !seen.insert(lang) {
                continue;
            }
            if let Some(t) = self.translator_for(lang) {
                push(
                    t.entry,
                    Role::Translate {
                        lang: lang.clone(),
                        kind: t.kind,
                    },
                );
            }
        }
        if let Some(entry) = self.summarizer() {
            push(entry, Role::Summarize);
        }
        if let Some(entry) = self.synthesizer() {
            push(entry, Role::Synthesize);
        }
        if let Some(entry) = self.embedder() {
            push(entry, Role::Embed);
        }
        needs
    }
}

/// One model a run needs, and what for.
#[derive(Clone, Debug)]
pub struct Need<'a> {
    pub entry: &'a ModelEntry,
    pub roles: Vec<Role>,
}

/// One reason a model is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Translate { lang: Lang, kind: TranslatorKind },
    Summarize,
    Synthesize,
    Embed,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Translate {
                lang,
                kind: TranslatorKind::Direct,
            } => write!(f, "{lang}→en"),
            Role::Translate {
                lang,
                kind: TranslatorKind::Group,
            } => write!(f, "{lang}→en (group)"),
            Role::Translate {
                lang,
                kind: TranslatorKind::Fallback,
            } => write!(f, "{lang}→en (fallback)"),
            Role::Summarize => f.write_str("summarize"),
            Role::Synthesize => f.write_str("synthesize"),
            Role::Embed => f.write_str("embed (story grouping)"),
        }
    }
}

/// True for a full 40-hex git commit id.
pub fn is_commit_sha(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for a 64-hex sha256.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

// --- the file format ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    schema: u32,
    #[serde(default)]
    model: Vec<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: String,
    tasks: Vec<Task>,
    #[serde(default)]
    langs: Vec<String>,
    #[serde(default)]
    fallback: bool,
    format: ModelFormat,
    repo: String,
    #[serde(default)]
    revision: Option<String>,
    license: String,
    files: Vec<RawFile>,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    approx_size: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    revision: Option<String>,
}

fn invalid(origin: &str, id: &str, message: String) -> CatalogError {
    CatalogError::Invalid {
        origin: origin.to_string(),
        id: id.to_string(),
        message,
    }
}

impl RawModel {
    fn validate(self, origin: &str, base_dir: Option<&Path>) -> Result<ModelEntry, CatalogError> {
        let id = self.id.trim().to_string();
        let err = |message: String| invalid(origin, if id.is_empty() { "?" } else { &id }, message);
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(err(
                "`id` must be a non-empty name without spaces or `/`".into()
            ));
        }
        if self.tasks.is_empty() {
            return Err(err(
                "`tasks` is empty; list at least one of translate, summarize, synthesize, embed"
                    .into(),
            ));
        }
        let translates = self.tasks.contains(&Task::Translate);
        let mut langs = Vec::new();
        for code in &self.langs {
            langs.push(Lang::parse(code).map_err(|e| err(format!("in `langs`: {e}")))?);
        }
        if translates && langs.is_empty() && !self.fallback {
            return Err(err(
                "a translate model needs `langs` (or `fallback = true`)".into(),
            ));
        }
        if !translates && (!langs.is_empty() || self.fallback) {
            return Err(err(
                "`langs` and `fallback` only apply to translate models".into()
            ));
        }
        if langs.iter().any(Lang::is_english) {
            return Err(err(
                "`langs` lists `en`; models translate into English, not from it".into(),
            ));
        }
        check_repo(&self.repo).map_err(&err)?;
        let revision = self.revision.unwrap_or_else(|| "main".to_string());
        check_revision(&revision).map_err(&err)?;
        if self.license.trim().is_empty() {
            return Err(err("`license` is empty".into()));
        }
        if self.files.is_empty() {
            return Err(err("`files` is empty".into()));
        }
        let mut files: Vec<FileEntry> = Vec::with_capacity(self.files.len());
        for raw in self.files {
            let name = raw.name.trim().to_string();
            let ferr = |m: String| err(format!("file `{name}`: {m}"));
            if name.is_empty()
                || name.starts_with('/')
                || name.contains('\\')
                || name
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
            {
                return Err(ferr("must be a relative path inside the repo".into()));
            }
            if files.iter().any(|f| f.name == name) {
                return Err(ferr("is listed twice".into()));
            }
            let sha256 = match raw.sha256 {
                Some(s) if is_sha256(s.trim()) => Some(s.trim().to_ascii_lowercase()),
                Some(s) => return Err(ferr(format!("`sha256 = \"{s}\"` is not 64 hex digits"))),
                None => None,
            };
            let approx_size = match raw.approx_size {
                Some(text) => Some(parse_size(&text).map_err(&ferr)?),
                None => None,
            };
            if let Some(repo) = &raw.repo {
                check_repo(repo).map_err(&ferr)?;
            }
            if let Some(rev) = &raw.revision {
                check_revision(rev).map_err(&ferr)?;
            }
            files.push(FileEntry {
                name,
                size: raw.size,
                approx_size,
                sha256,
                repo: raw.repo,
                revision: raw.revision,
            });
        }
        let path = self.path.map(|p| {
            let p = PathBuf::from(p);
            match base_dir {
                Some(base) if p.is_relative() => base.join(p),
                _ => p,
            }
        });
        Ok(ModelEntry {
            id,
            tasks: self.tasks,
            langs,
            fallback: self.fallback,
            format: self.format,
            repo: self.repo,
            revision,
            license: self.license,
            files,
            path,
            origin: origin.to_string(),
        })
    }
}

fn check_repo(repo: &str) -> Result<(), String> {
    let ok = !repo.is_empty()
        && repo.split('/').count() <= 2
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{repo}` is not a hub repo id such as `Helsinki-NLP/opus-mt-de-en`"
        ))
    }
}

fn check_revision(revision: &str) -> Result<(), String> {
    let ok = !revision.is_empty()
        && !revision.chars().any(|c| c.is_whitespace() || c == '\\')
        && revision
            .split('/')
            .all(|part| !part.is_empty() && part != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`revision = \"{revision}\"` is not a commit sha, branch or ref"
        ))
    }
}

/// Parses a displayed size such as `298 MB`, `1.38 kB`, `293 Bytes` or `1.1 GiB` into bytes.
/// Units follow the hub's web pages: kB/MB/GB are powers of 1000.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as `298 MB`"))?;
    let factor: f64 = match unit.trim() {
        "" | "B" | "Bytes" | "bytes" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit `{other}` in `{text}`")),
    };
    Ok((value * factor).round() as u64)
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(code: &str) -> Lang {
        Lang::parse(code).unwrap()
    }

    const MINIMAL: &str = r#"
schema = 1

[[model]]
id = "m-de"
tasks = ["translate"]
langs = ["de"]
format = "marian"
repo = "org/m-de"
revision = "0123456789abcdef0123456789abcdef01234567"
license = "apache-2.0"
files = [{ name = "config.json" }]

[[model]]
id = "m-mul"
tasks = ["translate"]
fallback = true
format = "marian"
repo = "org/m-mul"
license = "apache-2.0"
files = [{ name = "config.json" }]
"#;

    #[test]
    fn builtin_catalog_parses_and_covers_the_required_languages() {
        let catalog = Catalog::builtin().unwrap();
        for code in [
            "de", "fr", "es", "it", "pt", "nl", "ru", "zh", "ja", "ko", "vi", "ar", "tr", "pl",
            "uk", "hi", "id", "sv",
        ] {
            let t = catalog.translator_for(&lang(code)).unwrap();
            assert!(
                !t.is_fallback(),
                "{code} should have a dedicated or group model, got {}",
                t.id
            );
            assert!(t.repo.starts_with("Helsinki-NLP/opus-mt-"), "{}", t.repo);
        }
        assert!(catalog.summarizer().is_some());
        assert!(catalog.synthesizer().is_some());
        assert_eq!(
            catalog.embedder().map(|e| e.repo.as_str()),
            Some("sentence-transformers/all-MiniLM-L6-v2")
        );
    }

    #[test]
    fn builtin_pins_are_well_formed() {
        let catalog = Catalog::builtin().unwrap();
        let de = catalog.get("opus-mt-de-en").unwrap();
        assert!(de.is_pinned());
        assert_eq!(
            de.file("model.safetensors").unwrap().sha256.as_deref(),
            Some("5b1a66c79f6e871eb01b8818819e29bbdb6a25139af210b97b6efbf862493b4d")
        );
        // An entry with a branch revision must not claim to be pinned.
        assert!(!catalog.get("opus-mt-tc-big-ko-en").unwrap().is_pinned());
    }

    #[test]
    fn portuguese_uses_the_romance_group_model() {
        let catalog = Catalog::builtin().unwrap();
        let t = catalog.translator_for(&lang("pt")).unwrap();
        assert_eq!(t.id, "opus-mt-ROMANCE-en");
        assert_eq!(t.kind, TranslatorKind::Group);
        assert_eq!(
            catalog.translator_for(&lang("de")).unwrap().kind,
            TranslatorKind::Direct
        );
    }

    #[test]
    fn unknown_language_falls_back_to_mul_en() {
        let catalog = Catalog::builtin().unwrap();
        let t = catalog.translator_for(&lang("sw")).unwrap();
        assert_eq!(t.id, "opus-mt-mul-en");
        assert!(t.is_fallback());
        let minimal = Catalog::parse(MINIMAL, "t", None).unwrap();
        assert_eq!(minimal.translator_for(&lang("xx")).unwrap().id, "m-mul");
    }

    #[test]
    fn english_needs_no_translator() {
        let catalog = Catalog::builtin().unwrap();
        assert!(catalog.translator_for(&Lang::english()).is_none());
    }

    #[test]
    fn bad_toml_names_the_file_and_line() {
        let text = "schema = 1\n\n[[model]]\nid = \"x\"\ntasks = [\"translate\"\n";
        let err = Catalog::parse(text, "my-models.toml", None).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, CatalogError::Syntax { line, .. } if line >= 5),
            "{msg}"
        );
        assert!(msg.starts_with("my-models.toml:"), "{msg}");
    }

    #[test]
    fn unknown_field_is_rejected_with_its_line() {
        let text = "schema = 1\n[[model]]\nid = \"x\"\ntasks = [\"translate\"]\nlangs = [\"de\"]\n\
                    format = \"marian\"\nrepo = \"o/x\"\nlicense = \"mit\"\n\
                    files = [{ name = \"a\", sha265 = \"x\" }]\n";
        let err = Catalog::parse(text, "over.toml", None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sha265"), "{msg}");
        assert!(msg.starts_with("over.toml:9:"), "{msg}");
    }

    #[test]
    fn malformed_sha256_is_rejected() {
        let text = MINIMAL.replacen(
            "{ name = \"config.json\" }",
            "{ name = \"config.json\", sha256 = \"abc\" }",
            1,
        );
        let msg = Catalog::parse(&text, "c.toml", None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("m-de") && msg.contains("not 64 hex"), "{msg}");
    }

    #[test]
    fn a_language_served_twice_in_one_file_is_rejected() {
        let text = MINIMAL.replace("fallback = true", "langs = [\"de\"]");
        let msg = Catalog::parse(&text, "c.toml", None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`de`") && msg.contains("m-de"), "{msg}");
    }

    #[test]
    fn file_names_cannot_escape_the_repo() {
        let text = MINIMAL.replacen("config.json", "../etc/passwd", 1);
        assert!(Catalog::parse(&text, "c.toml", None).is_err());
    }

    #[test]
    fn overrides_replace_by_id_and_new_entries_win_their_languages() {
        let base = Catalog::builtin().unwrap();
        let over = r#"
schema = 1
[[model]]
id = "opus-mt-de-en"
tasks = ["translate"]
langs = ["de"]
format = "marian"
repo = "Helsinki-NLP/opus-mt-de-en"
license = "apache-2.0"
path = "local/de-en"
files = [{ name = "config.json" }]

[[model]]
id = "my-vi-en"
tasks = ["translate"]
langs = ["vi"]
format = "marian"
repo = "me/my-vi-en"
license = "mit"
files = [{ name = "config.json" }]
"#;
        let merged = base
            .clone()
            .merge(Catalog::parse(over, "o.toml", Some(Path::new("/etc/pb"))).unwrap());
        assert_eq!(merged.entries().len(), base.entries().len() + 1);
        let de = merged.translator_for(&lang("de")).unwrap();
        assert_eq!(de.path.as_deref(), Some(Path::new("/etc/pb/local/de-en")));
        assert_eq!(de.origin, "o.toml");
        assert_eq!(merged.translator_for(&lang("vi")).unwrap().id, "my-vi-en");
    }

    #[test]
    fn with_overrides_reports_a_missing_file() {
        let err = Catalog::builtin()
            .unwrap()
            .with_overrides(Path::new("/nonexistent/m.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/m.toml"));
    }

    #[test]
    fn needs_list_each_model_once() {
        let catalog = Catalog::builtin().unwrap();
        let needs =
            catalog.needed_for(&[lang("de"), lang("vi"), lang("ko"), lang("de"), lang("en")]);
        let ids: Vec<&str> = needs.iter().map(|n| n.entry.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "opus-mt-de-en",
                "opus-mt-vi-en",
                "opus-mt-tc-big-ko-en",
                "qwen2.5-1.5b-instruct-q4_k_m",
                "all-minilm-l6-v2"
            ]
        );
        assert_eq!(needs[3].roles, vec![Role::Summarize, Role::Synthesize]);
        assert_eq!(needs[4].roles, vec![Role::Embed]);
    }

    #[test]
    fn sizes_parse_like_the_hub_prints_them() {
        assert_eq!(parse_size("298 MB").unwrap(), 298_000_000);
        assert_eq!(parse_size("1.38 kB").unwrap(), 1_380);
        assert_eq!(parse_size("293 Bytes").unwrap(), 293);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert!(parse_size("big").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn file_source_defaults_to_the_entry() {
        let catalog = Catalog::builtin().unwrap();
        let qwen = catalog.summarizer().unwrap();
        let gguf = &qwen.files[0];
        let tok = qwen.file("tokenizer.json").unwrap();
        assert_eq!(
            qwen.source_of(gguf),
            ("Qwen/Qwen2.5-1.5B-Instruct-GGUF", qwen.revision.as_str())
        );
        assert_eq!(qwen.source_of(tok), ("Qwen/Qwen2.5-1.5B-Instruct", "main"));
        assert!(!qwen.is_pinned(), "tokenizer.json comes from a branch");
    }
}
