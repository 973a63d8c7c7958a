//! The run's outputs (`-o`, `--json`, `--archive`), resolved and checked before any work:
//! each names a writable place, no two name the same file, and none is an input or lies where
//! a later run over the same inputs would read it as one (its own briefs, JSON, archive and
//! lock files). The lock is then taken on each file's canonical path.

use std::path::{Path, PathBuf};

use super::RunOptions;
use crate::lock::OutputLock;
use crate::output::{resolve_archive_dir, Destination, OutputError};

/// Where this run writes, resolved once.
#[derive(Debug)]
pub(super) struct Outputs {
    /// The Markdown brief: `-o`, else stdout unless only `--archive` is given.
    pub brief: Option<Destination>,
    pub json: Option<Destination>,
    /// The canonical archive folder (it may not exist yet; its parent does).
    pub archive: Option<PathBuf>,
}

impl Outputs {
    pub(super) fn plan(args: &RunOptions) -> Result<Outputs, OutputError> {
        let brief = match (&args.output, &args.archive) {
            (Some(path), _) => Some(Destination::resolve(path, "--output")?),
            (None, Some(_)) => None,
            (None, None) => Some(Destination::Stdout),
        };
        let json = args
            .json
            .as_deref()
            .map(|path| Destination::resolve(path, "--json"))
            .transpose()?;
        let archive = args
            .archive
            .as_deref()
            .map(resolve_archive_dir)
            .transpose()?;
        let outputs = Outputs {
            brief,
            json,
            archive,
        };
        outputs.check_distinct()?;
        outputs.check_apart_from(&args.inputs)?;
        Ok(outputs)
    }

    /// The files this run replaces, with the flag that named each.
    fn files(&self) -> Vec<(&'static str, PathBuf)> {
        let mut files = Vec::new();
        if let Some(path) = self.brief.as_ref().and_then(Destination::file) {
            files.push(("--output", path.to_path_buf()));
        }
        if let Some(path) = self.json.as_ref().and_then(Destination::file) {
            files.push(("--json", path.to_path_buf()));
        }
        if let Some(dir) = &self.archive {
            files.push(("--archive", dir.join("latest.md")));
        }
        files
    }

    /// Locks every file this run replaces (not devices, pipes or streams, which are written
    /// through and have no folder of their own to put a lock file in).
    pub(super) fn lock(&self) -> Result<Vec<OutputLock>, crate::lock::LockError> {
        self.files()
            .iter()
            .map(|(_, path)| OutputLock::acquire(path))
            .collect()
    }

    fn check_distinct(&self) -> Result<(), OutputError> {
        let files = self.files();
        for (i, (first, path)) in files.iter().enumerate() {
            if let Some((second, _)) = files[i + 1..].iter().find(|(_, other)| other == path) {
                return Err(OutputError::SameFile {
                    first,
                    second,
                    path: path.clone(),
                });
            }
        }
        // The archive writes a dated brief beside latest.md: -o or --json may not name either.
        if let Some(dir) = &self.archive {
            if let Some((first, path)) = files.iter().find(|(flag, path)| {
                *flag != "--archive"
                    && path.parent() == Some(dir.as_path())
                    && is_archive_name(path)
            }) {
                return Err(OutputError::SameFile {
                    first,
                    second: "--archive",
                    path: path.clone(),
                });
            }
        }
        Ok(())
    }

    fn check_apart_from(&self, inputs: &[PathBuf]) -> Result<(), OutputError> {
        let inputs: Vec<PathBuf> = inputs
            .iter()
            // `-` is standard input, not a file named `-`.
            .filter(|input| input.as_os_str() != "-")
            .filter_map(|input| std::fs::canonicalize(input).ok())
            .collect();
        for (flag, path) in self.files() {
            for input in &inputs {
                if input.is_dir() {
                    if would_be_read_from(input, &path) {
                        return Err(OutputError::InsideInput {
                            flag,
                            path,
                            input: input.clone(),
                        });
                    }
                } else if *input == path {
                    return Err(OutputError::IsAnInput { flag, path });
                }
            }
        }
        Ok(())
    }
}

/// `brief-YYYY-MM-DD.md` or `latest.md`: the names `--archive` writes.
fn is_archive_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|name| {
            name == "latest.md" || (name.starts_with("brief-") && name.ends_with(".md"))
        })
}

/// Whether ingest, walking the folder `root`, would reach `path`: it is below `root` and no
/// folder or name on the way is hidden (ingest skips dot-files and dot-folders).
fn would_be_read_from(root: &Path, path: &Path) -> bool {
    match path.strip_prefix(root) {
        Ok(relative) => !relative
            .components()
            .any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with('.'))),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_folders_inside_an_input_are_not_read_so_outputs_may_go_there() {
        let root = Path::new("/srv/news");
        assert!(would_be_read_from(root, Path::new("/srv/news/brief.md")));
        assert!(would_be_read_from(
            root,
            Path::new("/srv/news/briefs/latest.md")
        ));
        assert!(!would_be_read_from(
            root,
            Path::new("/srv/news/.briefs/latest.md")
        ));
        assert!(!would_be_read_from(root, Path::new("/srv/news/.brief.md")));
        assert!(!would_be_read_from(
            root,
            Path::new("/srv/newsroom/brief.md")
        ));
    }
}
