//! A model as the brief and the cache keys name it: catalog id, hub repo and revision.

use crate::models::catalog::ModelEntry;

/// A model as the brief names it: catalog id, hub repo and the revision actually used.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct ModelRef {
    pub id: String,
    pub repo: String,
    pub revision: String,
}

impl ModelRef {
    pub(crate) fn of(entry: &ModelEntry) -> ModelRef {
        ModelRef {
            id: entry.id.clone(),
            repo: entry.repo.clone(),
            revision: entry.revision.clone(),
        }
    }

    /// `Helsinki-NLP/opus-mt-de-en@<revision>`: what `translated_by` records.
    pub(crate) fn label(&self) -> String {
        format!("{}@{}", self.repo, short_revision(&self.revision))
    }
}

/// A commit sha shortened to 12 hex digits, as git and the hub show it; a branch as is.
fn short_revision(revision: &str) -> &str {
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        &revision[..12]
    } else {
        revision
    }
}
