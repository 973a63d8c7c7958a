//! Writing briefs so that no reader ever sees half of one: every file is written to a
//! temporary file in the same folder, flushed to disk, then renamed over the target, and the
//! folder itself is flushed so the rename survives a power cut. A run killed at any instant
//! leaves either the previous file or the new one, never a mix.
//!
//! `--archive DIR` keeps one dated copy per day (`brief-YYYY-MM-DD.md`) and a `latest.md`.
//! `latest.md` is a real copy, not a symlink: a copy works on every filesystem and OS
//! (symlinks need privileges on Windows), survives the dated file being pruned, and is what
//! sync tools, web servers and object-store uploads (`rsync` without `-l`, `aws s3 sync`)
//! expect to find. The cost is one more small file per archive folder.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// A failure to write an output, naming the file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}; {hint}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
        hint: String,
    },

    #[error("cannot create the folder {path}: {source}; {hint}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
        hint: String,
    },

    #[error("cannot write the brief to standard output: {source}")]
    Stdout {
        #[source]
        source: io::Error,
    },
}

/// Writes `bytes` to `path` atomically: the file at `path` is either left as it was or
/// replaced whole. An existing file keeps its permissions; a new one gets the usual
/// `0666 & !umask`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic_for(path, bytes, "--output")
}

/// The paths an [`archive`] call wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArchivePaths {
    /// `DIR/brief-YYYY-MM-DD.md`
    pub dated: PathBuf,
    /// `DIR/latest.md`, a copy of the dated brief.
    pub latest: PathBuf,
}

/// The name of the archived brief for `date`: `brief-YYYY-MM-DD.md`.
pub(crate) fn archive_file_name(date: NaiveDate) -> String {
    format!("brief-{}.md", date.format("%Y-%m-%d"))
}

/// Writes `markdown` to `dir/brief-YYYY-MM-DD.md` and then to `dir/latest.md`, each atomically,
/// creating `dir` if needed. A second run on the same day replaces that day's brief.
///
/// The dated file is written first: a run killed between the two writes leaves `latest.md`
/// at the previous brief (still a whole, valid brief) and the next run rewrites both.
pub(crate) fn archive(
    dir: &Path,
    date: NaiveDate,
    markdown: &str,
) -> Result<ArchivePaths, OutputError> {
    fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
        path: dir.to_path_buf(),
        hint: hint_for(&source, dir, "--archive"),
        source,
    })?;
    let paths = ArchivePaths {
        dated: dir.join(archive_file_name(date)),
        latest: dir.join("latest.md"),
    };
    write_atomic_for(&paths.dated, markdown.as_bytes(), "--archive")?;
    write_atomic_for(&paths.latest, markdown.as_bytes(), "--archive")?;
    Ok(paths)
}

/// Writes the brief's JSON to `dir/brief-YYYY-MM-DD.json` (after [`archive`] made `dir`):
/// what the next run reads to say what changed since this brief.
pub(crate) fn archive_json(
    dir: &Path,
    date: NaiveDate,
    json: &str,
) -> Result<PathBuf, OutputError> {
    let path = dir.join(format!("brief-{}.json", date.format("%Y-%m-%d")));
    write_atomic_for(&path, json.as_bytes(), "--archive")?;
    Ok(path)
}

fn write_atomic_for(path: &Path, bytes: &[u8], flag: &str) -> Result<(), OutputError> {
    replace_file(path, SyncDir::Yes, |file| file.write_all(bytes)).map_err(|source| {
        OutputError::Write {
            path: path.to_path_buf(),
            hint: hint_for(&source, path, flag),
            source,
        }
    })
}

/// Whether [`replace_file`] also flushes the folder after the rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncDir {
    /// For outputs: the new name must survive a power cut.
    Yes,
    /// A rename lost in a power cut is harmless (the tag file of the cache).
    No,
    /// For cache entries: neither the file nor the folder is flushed here; the cache flushes
    /// its whole filesystem once per stage (`StageCache::flush`). An entry a power cut
    /// truncates fails its own length and checksum and is a miss, never a wrong result, so
    /// one flush per stage replaces one per entry (3,000 fsyncs for 3,000 articles).
    Deferred,
}

/// The atomic-replace primitive shared with the cache: `write` fills a temporary file next to
/// `path` (same folder, so the rename cannot cross filesystems); the file is flushed to disk
/// and renamed over `path`. If `write` or any step fails, the temporary file is removed and
/// `path` is untouched. A kill -9 mid-way can leave only a hidden `.NAME.XXXXXX.tmp` file,
/// never a partial `path`.
pub(crate) fn replace_file(
    path: &Path,
    sync_dir: SyncDir,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "the path names no file"))?;
    if path.is_dir() {
        return Err(io::Error::new(ErrorKind::IsADirectory, "it is a folder"));
    }
    let dir = parent_dir(path);

    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{}.", truncate_name(&name.to_string_lossy(), 200));
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile creates 0600 files; a brief readers cannot open would be a surprise, so keep
    // the permissions of the file being replaced, or the default a plain create would give.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions = match fs::metadata(path) {
            Ok(meta) => meta.permissions(),
            Err(_) => fs::Permissions::from_mode(0o666),
        };
        builder.permissions(permissions);
    }
    let mut tmp = builder.tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    if sync_dir != SyncDir::Deferred {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if sync_dir == SyncDir::Yes {
        sync_folder(dir)?;
    }
    Ok(())
}

/// The folder a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Keeps temporary names under the usual 255-byte limit for long output names.
fn truncate_name(name: &str, max_bytes: usize) -> &str {
    if name.len() <= max_bytes {
        return name;
    }
    let mut end = max_bytes;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Flushes a folder's entries (the rename) to disk. Filesystems that cannot fsync a folder
/// (some network and FUSE filesystems answer EINVAL) get the rename's usual guarantees only.
fn sync_folder(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|d| d.sync_all()) {
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => {
                Ok(())
            }
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The way out of a failed write, by cause.
fn hint_for(error: &io::Error, path: &Path, flag: &str) -> String {
    let dir = parent_dir(path).display();
    match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            format!("the disk is full: free space or choose another {flag}")
        }
        ErrorKind::PermissionDenied => {
            format!("check that {dir} is writable by this user, or choose another {flag}")
        }
        ErrorKind::ReadOnlyFilesystem => {
            format!("{dir} is on a read-only filesystem; choose another {flag}")
        }
        ErrorKind::NotFound => format!("create the folder {dir} or choose another {flag}"),
        ErrorKind::IsADirectory => format!("{flag} must name a file, not a folder"),
        _ => format!("choose another {flag}"),
    }
}

/// Writes the brief to stdout. A closed pipe (`polybrief run … | head`) is not an error:
/// the reader has what it wanted.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), OutputError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(OutputError::Stdout { source: e })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_atomic_creates_and_replaces_leaving_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("brief.md");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(names_in(dir.path()), vec!["brief.md"]);
    }

    #[test]
    fn failed_write_midway_leaves_the_old_file_intact_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("brief.md");
        fs::write(&path, "old brief").unwrap();
        let result = replace_file(&path, SyncDir::Yes, |file| {
            file.write_all(b"half of the new br")?;
            Err(io::Error::new(
                ErrorKind::StorageFull,
                "no space left on device",
            ))
        });
        assert_eq!(result.unwrap_err().kind(), ErrorKind::StorageFull);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old brief");
        assert_eq!(names_in(dir.path()), vec!["brief.md"]);
    }

    #[test]
    fn write_into_missing_folder_names_the_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-folder").join("brief.md");
        let message = write_atomic(&path, b"x").unwrap_err().to_string();
        assert!(message.contains("brief.md"), "{message}");
        assert!(message.contains("create the folder"), "{message}");
        assert!(message.contains("--output"), "{message}");
    }

    #[test]
    fn writing_over_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let message = write_atomic(dir.path(), b"x").unwrap_err().to_string();
        assert!(message.contains("must name a file"), "{message}");
    }

    #[test]
    fn disk_full_hint_says_free_space_or_choose_another_output() {
        let error = io::Error::new(ErrorKind::StorageFull, "no space");
        let hint = hint_for(&error, Path::new("/srv/brief.md"), "--output");
        assert_eq!(
            hint,
            "the disk is full: free space or choose another --output"
        );
    }

    #[cfg(unix)]
    #[test]
    fn replaced_file_keeps_its_permissions_and_new_files_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.md");
        write_atomic(&fresh, b"x").unwrap();
        // What a plain create gives (0666 & !umask), not the 0600 of a temporary file.
        let mode = fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !current_umask(dir.path()), "mode {mode:o}");

        let kept = dir.path().join("kept.md");
        fs::write(&kept, "old").unwrap();
        fs::set_permissions(&kept, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&kept, b"new").unwrap();
        assert_eq!(
            fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    /// The process umask, read without changing it (`umask(2)` can only set it): what a
    /// plain create with mode 0666 yields.
    #[cfg(unix)]
    fn current_umask(dir: &Path) -> u32 {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = dir.join("umask-probe");
        File::options()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&path)
            .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        fs::remove_file(&path).unwrap();
        0o666 & !mode
    }

    #[test]
    fn archive_writes_the_dated_brief_and_a_latest_copy() {
        let dir = tempfile::tempdir().unwrap();
        let archive_dir = dir.path().join("briefs");
        let day1 = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        let day2 = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();

        let paths = archive(&archive_dir, day1, "# Monday").unwrap();
        assert_eq!(paths.dated, archive_dir.join("brief-2026-03-09.md"));
        assert_eq!(paths.latest, archive_dir.join("latest.md"));
        archive(&archive_dir, day2, "# Tuesday").unwrap();

        assert_eq!(
            fs::read_to_string(archive_dir.join("brief-2026-03-09.md")).unwrap(),
            "# Monday"
        );
        assert_eq!(
            fs::read_to_string(archive_dir.join("brief-2026-03-10.md")).unwrap(),
            "# Tuesday"
        );
        assert_eq!(
            fs::read_to_string(archive_dir.join("latest.md")).unwrap(),
            "# Tuesday"
        );
        assert!(!fs::symlink_metadata(archive_dir.join("latest.md"))
            .unwrap()
            .is_symlink());
        assert_eq!(
            names_in(&archive_dir),
            vec!["brief-2026-03-09.md", "brief-2026-03-10.md", "latest.md"]
        );
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(150); // 300 bytes
        let cut = truncate_name(&name, 201);
        assert_eq!(cut.len(), 200);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
