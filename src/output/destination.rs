//! Where one output goes, decided before any work: a regular file (replaced atomically and
//! locked, by its canonical path so that a symlink or another spelling cannot dodge the lock
//! or be replaced by a file), a character device, FIFO or socket (opened and written through:
//! renaming a file over `/dev/null` or a named pipe would destroy it, as root), or this
//! process's own stdout or stderr (`-o /dev/stdout`, `-o -`).
//!
//! Everything a user can get wrong about an output path (a folder, a folder that does not
//! exist, a block device, a folder that is not writable) is refused here with the fix, so
//! that a run never fails after its work, and never creates a tree the user did not ask for.

use std::fs;
use std::io::{self, ErrorKind, Write};
use std::path::{Component, Path, PathBuf};

use super::{hint_for, parent_dir, write_atomic_for, write_stdout, OutputError};

/// Symlink hops followed before a chain is treated as a loop (Linux's own limit is 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// One output's destination, resolved once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// A regular file, existing or not yet, by its canonical path (its folder exists).
    File(PathBuf),
    /// A character device, FIFO or socket: opened for writing, never replaced, never locked.
    WriteThrough(PathBuf),
    /// This process's standard output.
    Stdout,
    /// This process's standard error.
    Stderr,
}

impl Destination {
    /// Resolves `path` given with `flag` (`--output`, `--json`), refusing what cannot work.
    pub(crate) fn resolve(path: &Path, flag: &'static str) -> Result<Destination, OutputError> {
        if let Some(stream) = standard_stream(path) {
            return Ok(stream);
        }
        // The kernel follows links first: /proc's magic links (`/proc/self/fd/1` pointing at
        // `pipe:[1234]`) resolve only that way.
        match fs::metadata(path) {
            Ok(meta) => {
                let kind = meta.file_type();
                if kind.is_dir() {
                    return Err(OutputError::IsFolder {
                        flag,
                        path: path.to_path_buf(),
                    });
                }
                if kind.is_file() {
                    let canonical =
                        fs::canonicalize(path).map_err(|source| write_error(path, flag, source))?;
                    check_writable_folder(parent_dir(&canonical), path, flag)?;
                    return Ok(Destination::File(canonical));
                }
                if is_block_device(&meta) {
                    return Err(OutputError::BlockDevice {
                        flag,
                        path: path.to_path_buf(),
                    });
                }
                Ok(Destination::WriteThrough(path.to_path_buf()))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // A new file, possibly named through a dangling link: the file the link names.
                let target = follow_symlinks(path, flag)?;
                let name = target.file_name().ok_or_else(|| OutputError::IsFolder {
                    flag,
                    path: path.to_path_buf(),
                })?;
                let folder = parent_dir(&target);
                match fs::metadata(folder) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        return Err(OutputError::FolderIsAFile {
                            flag,
                            path: path.to_path_buf(),
                            folder: folder.to_path_buf(),
                        })
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Err(OutputError::MissingFolder {
                            flag,
                            path: path.to_path_buf(),
                            folder: folder.to_path_buf(),
                        })
                    }
                    Err(source) => return Err(write_error(path, flag, source)),
                }
                let folder =
                    fs::canonicalize(folder).map_err(|source| write_error(path, flag, source))?;
                check_writable_folder(&folder, path, flag)?;
                Ok(Destination::File(folder.join(name)))
            }
            Err(source) => Err(write_error(path, flag, source)),
        }
    }

    /// The canonical file this destination replaces, if it is one (what is locked and what
    /// must not be an input).
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            Destination::File(path) => Some(path),
            _ => None,
        }
    }

    /// Writes `bytes` here: atomically for a file, straight through otherwise.
    pub(crate) fn write(&self, bytes: &[u8], flag: &'static str) -> Result<(), OutputError> {
        match self {
            Destination::File(path) => write_atomic_for(path, bytes, flag),
            Destination::WriteThrough(path) => {
                write_through(path, bytes).map_err(|source| write_error(path, flag, source))
            }
            Destination::Stdout => write_stdout(bytes),
            Destination::Stderr => {
                let mut stderr = io::stderr().lock();
                stderr
                    .write_all(bytes)
                    .and_then(|()| stderr.flush())
                    .map_err(|source| OutputError::Stdout { source })
            }
        }
    }
}

/// The resolved `--archive DIR`: a folder that exists, or whose parent exists (the first
/// nightly run creates it, but not a tree above it).
pub(crate) fn resolve_archive_dir(dir: &Path) -> Result<PathBuf, OutputError> {
    const FLAG: &str = "--archive";
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let canonical =
                fs::canonicalize(dir).map_err(|source| write_error(dir, FLAG, source))?;
            check_writable_folder(&canonical, dir, FLAG)?;
            Ok(canonical)
        }
        Ok(_) => Err(OutputError::ArchiveNotAFolder {
            path: dir.to_path_buf(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let name = dir
                .file_name()
                .ok_or_else(|| OutputError::ArchiveNotAFolder {
                    path: dir.to_path_buf(),
                })?;
            let parent = parent_dir(dir);
            match fs::metadata(parent) {
                Ok(meta) if meta.is_dir() => {}
                _ => {
                    return Err(OutputError::MissingFolder {
                        flag: FLAG,
                        path: dir.to_path_buf(),
                        folder: parent.to_path_buf(),
                    })
                }
            }
            let parent =
                fs::canonicalize(parent).map_err(|source| write_error(dir, FLAG, source))?;
            check_writable_folder(&parent, dir, FLAG)?;
            Ok(parent.join(name))
        }
        Err(source) => Err(write_error(dir, FLAG, source)),
    }
}

/// `-`, `/dev/stdout`, `/dev/fd/1` and `/proc/self/fd/1` mean this process's stdout (and the
/// same for stderr): written to the stream itself, whatever it is connected to.
fn standard_stream(path: &Path) -> Option<Destination> {
    match path.to_str()? {
        "-" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1" => Some(Destination::Stdout),
        "/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2" => Some(Destination::Stderr),
        _ => None,
    }
}

/// The path a chain of symlinks ends at (which may not exist yet: a dangling link names the
/// file the output creates).
fn follow_symlinks(path: &Path, flag: &'static str) -> Result<PathBuf, OutputError> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target =
                    fs::read_link(&current).map_err(|source| write_error(path, flag, source))?;
                current = if target.is_absolute() {
                    target
                } else {
                    parent_dir(&current).join(target)
                };
            }
            _ => return Ok(lexically_clean(&current)),
        }
    }
    Err(write_error(
        path,
        flag,
        io::Error::other("too many levels of symbolic links"),
    ))
}

/// Drops `.` components so that `parent_dir` and `file_name` see the real last name.
fn lexically_clean(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn write_through(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // No create, no truncate: the device or pipe is used as it is.
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    match file.write_all(bytes).and_then(|()| file.flush()) {
        // A pipe whose reader left has what it wanted, as with stdout.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn is_block_device(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_block_device()
}

#[cfg(not(unix))]
fn is_block_device(_meta: &fs::Metadata) -> bool {
    false
}

/// A folder the run could not create its temporary file in is refused now, not after the work.
fn check_writable_folder(
    folder: &Path,
    path: &Path,
    flag: &'static str,
) -> Result<(), OutputError> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c_path) = std::ffi::CString::new(folder.as_os_str().as_bytes()) else {
            return Ok(());
        };
        // SAFETY: a valid NUL-terminated path; access(2) only reads it.
        if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } != 0 {
            return Err(write_error(path, flag, io::Error::last_os_error()));
        }
    }
    let _ = (folder, path, flag);
    Ok(())
}

fn write_error(path: &Path, flag: &'static str, source: io::Error) -> OutputError {
    OutputError::Write {
        path: path.to_path_buf(),
        hint: hint_for(&source, path, flag),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_stdout_and_dash_mean_this_process_s_stdout_whatever_it_is() {
        for spelling in ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            assert_eq!(
                Destination::resolve(Path::new(spelling), "--output").unwrap(),
                Destination::Stdout,
                "{spelling}"
            );
        }
        assert_eq!(
            Destination::resolve(Path::new("/dev/stderr"), "--json").unwrap(),
            Destination::Stderr
        );
    }

    #[test]
    fn a_new_file_in_an_existing_folder_resolves_to_its_canonical_path() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = fs::canonicalize(dir.path()).unwrap();
        let resolved = Destination::resolve(&dir.path().join("./brief.md"), "--output").unwrap();
        assert_eq!(resolved, Destination::File(canonical.join("brief.md")));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_resolves_to_the_file_it_names_even_before_that_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::symlink("real.md", dir.path().join("link.md")).unwrap();
        let resolved = Destination::resolve(&dir.path().join("link.md"), "--output").unwrap();
        assert_eq!(resolved, Destination::File(canonical.join("real.md")));
    }

    #[test]
    fn a_folder_is_refused_naming_a_file_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = Destination::resolve(dir.path(), "--output").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "--output {} is a folder; name a file inside it, such as {}",
                dir.path().display(),
                dir.path().join("brief.md").display()
            )
        );
    }

    #[test]
    fn a_missing_folder_is_refused_with_the_mkdir_that_fixes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/brief.md");
        let error = Destination::resolve(&path, "--output").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "--output {}: the folder {} does not exist; create it first (`mkdir -p {}`) or choose another --output",
                path.display(),
                dir.path().join("no/such").display(),
                dir.path().join("no/such").display()
            )
        );
        assert!(!dir.path().join("no").exists(), "nothing is created");
    }

    #[test]
    fn an_archive_folder_may_be_new_but_not_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            resolve_archive_dir(&dir.path().join("briefs")).unwrap(),
            canonical.join("briefs")
        );
        let error = resolve_archive_dir(&dir.path().join("a/briefs")).unwrap_err();
        assert!(
            matches!(error, OutputError::MissingFolder { .. }),
            "{error}"
        );
        fs::write(dir.path().join("file"), "").unwrap();
        let error = resolve_archive_dir(&dir.path().join("file")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "--archive {} is a file, not a folder; name a folder for the dated briefs",
                dir.path().join("file").display()
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_through_and_stays_a_fifo() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; mkfifo creates a node in the test's own folder.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let destination = Destination::resolve(&fifo, "--output").unwrap();
        assert_eq!(destination, Destination::WriteThrough(fifo.clone()));
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        destination.write(b"# News brief\n", "--output").unwrap();
        assert_eq!(reader.join().unwrap(), "# News brief\n");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }
}
