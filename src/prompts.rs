//! Prompt templates: plain text files with `{name}` placeholders, compiled in from `prompts/`
//! and overridable one file at a time with `--prompts DIR`.
//!
//! A template is checked when it is loaded, not when it is first used: a placeholder that the
//! stage does not provide (a typo such as `{titel}`), a missing required placeholder, or a stray
//! brace is an error naming the file, the placeholder and the names allowed there. `{{` and `}}`
//! stand for literal braces.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One template the program knows: its name (the file is `<name>.txt`), the compiled-in text,
/// the placeholders a stage fills in, and those without which the template makes no sense.
#[derive(Clone, Copy, Debug)]
pub struct TemplateSpec {
    pub name: &'static str,
    pub default: &'static str,
    pub allowed: &'static [&'static str],
    pub required: &'static [&'static str],
}

const ARTICLE_FIELDS: &[&str] = &["title", "outlet", "language", "text", "target_length"];

/// Every template the program uses. A stage that adds a template adds one line here.
pub const BUILTIN: &[TemplateSpec] = &[
    TemplateSpec {
        name: "system",
        default: include_str!("../prompts/system.txt"),
        allowed: &[],
        required: &[],
    },
    TemplateSpec {
        name: "summarize",
        default: include_str!("../prompts/summarize.txt"),
        allowed: ARTICLE_FIELDS,
        required: &["text"],
    },
    TemplateSpec {
        name: "summarize_strict",
        default: include_str!("../prompts/summarize_strict.txt"),
        allowed: &[
            "title",
            "outlet",
            "language",
            "text",
            "target_length",
            "missing_facts",
        ],
        required: &["text"],
    },
    TemplateSpec {
        name: "summarize_reduce",
        default: include_str!("../prompts/summarize_reduce.txt"),
        allowed: ARTICLE_FIELDS,
        required: &["text"],
    },
    TemplateSpec {
        name: "synthesize_system",
        default: include_str!("../prompts/synthesize_system.txt"),
        allowed: &[],
        required: &[],
    },
    TemplateSpec {
        name: "synthesize",
        default: include_str!("../prompts/synthesize.txt"),
        allowed: &["sources", "max_points"],
        required: &["sources"],
    },
];

/// The templates the per-article summarizer uses (its cache key covers exactly these).
pub const SUMMARIZE_TEMPLATES: &[&str] = &[
    "system",
    "summarize",
    "summarize_strict",
    "summarize_reduce",
];
/// The templates the cross-source synthesis uses.
pub const SYNTHESIZE_TEMPLATES: &[&str] = &["synthesize_system", "synthesize"];

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot read prompt template {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "prompt template {origin}: unknown placeholder `{{{placeholder}}}` on line {line}; \
         allowed here: {allowed} (write `{{{{` and `}}}}` for literal braces)"
    )]
    UnknownPlaceholder {
        origin: String,
        placeholder: String,
        line: usize,
        allowed: String,
    },
    #[error("prompt template {origin} lacks the placeholder `{{{placeholder}}}`, without which it cannot work; allowed: {allowed}")]
    MissingRequired {
        origin: String,
        placeholder: String,
        allowed: String,
    },
    #[error(
        "prompt template {origin}: unmatched `{brace}` on line {line}; placeholders look like \
         `{{title}}`, and a literal brace is written twice (`{{{{` or `}}}}`)"
    )]
    StrayBrace {
        origin: String,
        brace: char,
        line: usize,
    },
    #[error("{path} is not a prompt template polybrief uses; the templates are: {known}")]
    UnknownTemplate { path: PathBuf, known: String },
    #[error("no prompt template named `{0}` (a bug: every stage's template is listed in prompts::BUILTIN)")]
    NoSuchTemplate(String),
    #[error("prompt template {origin}: no value given for `{{{placeholder}}}` (a bug in the stage that renders it)")]
    MissingValue { origin: String, placeholder: String },
}

/// A piece of a parsed template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Literal(String),
    Placeholder(String),
}

/// A parsed, checked template.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    /// "the built-in summarize.txt" or the file's path, for error messages.
    origin: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text` and checks its placeholders against `spec`.
    pub fn parse(spec: &TemplateSpec, text: &str, origin: String) -> Result<Template, PromptError> {
        let allowed_list = || {
            if spec.allowed.is_empty() {
                "none".to_string()
            } else {
                spec.allowed
                    .iter()
                    .map(|n| format!("{{{n}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut line = 1;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for n in chars.by_ref() {
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        name.push(n);
                    }
                    let is_name = !name.is_empty()
                        && name
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                        && !name.starts_with(|ch: char| ch.is_ascii_digit());
                    if !closed || !is_name {
                        return Err(PromptError::StrayBrace {
                            origin,
                            brace: '{',
                            line,
                        });
                    }
                    if !spec.allowed.contains(&name.as_str()) {
                        return Err(PromptError::UnknownPlaceholder {
                            origin,
                            placeholder: name,
                            line,
                            allowed: allowed_list(),
                        });
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Placeholder(name));
                }
                '}' => {
                    return Err(PromptError::StrayBrace {
                        origin,
                        brace: '}',
                        line,
                    })
                }
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    literal.push(c);
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        for required in spec.required {
            if !pieces
                .iter()
                .any(|p| matches!(p, Piece::Placeholder(n) if n == required))
            {
                return Err(PromptError::MissingRequired {
                    origin,
                    placeholder: required.to_string(),
                    allowed: allowed_list(),
                });
            }
        }
        Ok(Template {
            name: spec.name.to_string(),
            origin,
            pieces,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the template came from (built in, or a file).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The placeholders this template uses, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for piece in &self.pieces {
            if let Piece::Placeholder(n) = piece {
                if !names.contains(&n.as_str()) {
                    names.push(n);
                }
            }
        }
        names
    }

    /// Fills in the placeholders. Values the template does not use are ignored (an override
    /// may leave out `{outlet}`, say); a placeholder without a value is an error.
    pub fn render(&self, values: &[(&str, &str)]) -> Result<String, PromptError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Placeholder(name) => {
                    let value = values
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| PromptError::MissingValue {
                            origin: self.origin.clone(),
                            placeholder: name.clone(),
                        })?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

/// All prompt templates of a run, by name.
#[derive(Clone, Debug)]
pub struct Prompts {
    templates: BTreeMap<String, Template>,
}

impl Prompts {
    /// A digest of the named templates' text (not where it was read from), for cache keys:
    /// editing a prompt recomputes exactly the results it affects, and no others.
    pub fn fingerprint(&self, names: &[&str]) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for name in names {
            let pieces = self.templates.get(*name).map(|t| &t.pieces);
            hasher.update(format!("{name}\u{0}{pieces:?}\u{0}").as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The compiled-in templates.
    pub fn builtin() -> Prompts {
        Prompts::load(None).expect("the built-in prompt templates are checked by the unit tests")
    }

    /// The compiled-in templates, each replaced by `<dir>/<name>.txt` where that file exists.
    /// A `.txt` file in `dir` that is no known template is an error (a misspelt file name
    /// would otherwise be ignored in silence).
    pub fn load(dir: Option<&Path>) -> Result<Prompts, PromptError> {
        Prompts::load_specs(BUILTIN, dir)
    }

    /// As [`Prompts::load`], for an explicit list of templates.
    pub fn load_specs(specs: &[TemplateSpec], dir: Option<&Path>) -> Result<Prompts, PromptError> {
        let mut templates = BTreeMap::new();
        for spec in specs {
            let template = match dir.map(|d| d.join(format!("{}.txt", spec.name))) {
                Some(path) if path.is_file() => {
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| PromptError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    Template::parse(spec, &text, path.display().to_string())?
                }
                _ => Template::parse(spec, spec.default, format!("built-in {}.txt", spec.name))?,
            };
            templates.insert(spec.name.to_string(), template);
        }
        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir).map_err(|source| PromptError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            for entry in entries {
                let path = entry
                    .map_err(|source| PromptError::Read {
                        path: dir.to_path_buf(),
                        source,
                    })?
                    .path();
                let is_txt = path.extension().is_some_and(|e| e == "txt");
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if is_txt && !templates.contains_key(stem) {
                    let known = specs
                        .iter()
                        .map(|s| format!("{}.txt", s.name))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(PromptError::UnknownTemplate { path, known });
                }
            }
        }
        Ok(Prompts { templates })
    }

    pub fn get(&self, name: &str) -> Result<&Template, PromptError> {
        self.templates
            .get(name)
            .ok_or_else(|| PromptError::NoSuchTemplate(name.to_string()))
    }

    /// Renders template `name` with `values`.
    pub fn render(&self, name: &str, values: &[(&str, &str)]) -> Result<String, PromptError> {
        self.get(name)?.render(values)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: TemplateSpec = TemplateSpec {
        name: "t",
        default: "Summarize {text} in {target_length}.",
        allowed: &["text", "target_length", "title"],
        required: &["text"],
    };

    #[test]
    fn builtin_templates_parse_and_use_only_allowed_placeholders() {
        let prompts = Prompts::builtin();
        assert_eq!(prompts.names().count(), BUILTIN.len());
        for spec in BUILTIN {
            let t = prompts.get(spec.name).unwrap();
            for p in t.placeholders() {
                assert!(spec.allowed.contains(&p));
            }
        }
    }

    #[test]
    fn render_fills_placeholders_and_unescapes_braces() {
        let t = Template::parse(&SPEC, "{{json}} {title}: {text}}}", "test".into()).unwrap();
        let out = t
            .render(&[("text", "body"), ("title", "T"), ("unused", "x")])
            .unwrap();
        assert_eq!(out, "{json} T: body}");
    }

    #[test]
    fn unknown_placeholder_is_an_error_naming_it_and_the_allowed_names() {
        let err = Template::parse(&SPEC, "line one\n{titel} {text}", "my.txt".into()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("my.txt") && msg.contains("{titel}") && msg.contains("line 2"),
            "{msg}"
        );
        assert!(
            msg.contains("{title}") && msg.contains("{target_length}"),
            "{msg}"
        );
    }

    #[test]
    fn missing_required_placeholder_is_an_error() {
        let err = Template::parse(&SPEC, "Summarize {title}.", "my.txt".into()).unwrap_err();
        assert!(
            matches!(err, PromptError::MissingRequired { ref placeholder, .. } if placeholder == "text")
        );
    }

    #[test]
    fn stray_braces_are_errors() {
        for text in ["{text} {", "{text} }", "{text} { title }", "{text} {}"] {
            let err = Template::parse(&SPEC, text, "x".into()).unwrap_err();
            assert!(
                matches!(err, PromptError::StrayBrace { .. }),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn missing_value_at_render_is_an_error() {
        let t = Template::parse(&SPEC, "{text} {title}", "x".into()).unwrap();
        assert!(matches!(
            t.render(&[("text", "a")]),
            Err(PromptError::MissingValue { .. })
        ));
    }

    #[test]
    fn directory_overrides_one_file_and_keeps_the_other_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("summarize.txt"), "Short: {text}").unwrap();
        let prompts = Prompts::load(Some(dir.path())).unwrap();
        assert_eq!(
            prompts.render("summarize", &[("text", "x")]).unwrap(),
            "Short: x"
        );
        assert!(prompts
            .get("summarize")
            .unwrap()
            .origin()
            .contains("summarize.txt"));
        assert_eq!(
            prompts.get("system").unwrap().origin(),
            "built-in system.txt"
        );
    }

    #[test]
    fn override_with_unknown_placeholder_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summarize_strict.txt");
        std::fs::write(&path, "{text} {facts}").unwrap();
        let err = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("{facts}")
                && err.contains("{missing_facts}"),
            "{err}"
        );
    }

    #[test]
    fn fingerprint_changes_only_with_the_templates_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("synthesize.txt"), "Points of: {sources}").unwrap();
        let edited = Prompts::load(Some(dir.path())).unwrap();
        let builtin = Prompts::builtin();
        assert_eq!(
            edited.fingerprint(SUMMARIZE_TEMPLATES),
            builtin.fingerprint(SUMMARIZE_TEMPLATES)
        );
        assert_ne!(
            edited.fingerprint(SYNTHESIZE_TEMPLATES),
            builtin.fingerprint(SYNTHESIZE_TEMPLATES)
        );
    }

    #[test]
    fn every_stage_template_list_names_builtin_templates() {
        for name in SUMMARIZE_TEMPLATES.iter().chain(SYNTHESIZE_TEMPLATES) {
            assert!(BUILTIN.iter().any(|s| s.name == *name), "{name}");
        }
    }

    #[test]
    fn unknown_template_file_is_an_error_listing_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("summarise.txt"), "{text}").unwrap();
        std::fs::write(dir.path().join("README.md"), "notes").unwrap();
        let err = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("summarise.txt") && err.contains("summarize.txt"),
            "{err}"
        );
    }
}
