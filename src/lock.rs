//! One run per output: an OS advisory lock on `<output>.lock` so that two polybrief runs (a
//! nightly timer and a manual run, or two overlapping nights) never write the same brief.
//!
//! The OS lock (`flock` on Unix, `LockFileEx` on Windows, via std's `File::try_lock`) is the
//! authority, not the pid written in the file: the kernel drops it the moment its holder
//! dies, kill -9 included, so a lock file that is present but not locked was left by a run
//! that was killed or crashed, and is taken over with a log line. (A pid check alone would be
//! fooled by pid reuse and cannot see other hosts sharing the folder; the pid is recorded so
//! the message can say who holds the lock and whether that process is still running.)
//!
//! The holder writes its pid, host, start time and command line into the lock file; a run
//! that finds the lock held reports them in [`LockError::Held`] (exit code 4).
//!
//! On Unix the lock file is removed on release. Removing a lock file is racy unless the
//! acquirer checks, after locking, that the path still names the file it locked (a run that
//! opened the file just before the holder removed it would otherwise lock a file nobody else
//! can see); `acquire` does that check and retries.

use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Who holds a lock, as written into the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderInfo {
    pub pid: u32,
    pub host: String,
    /// When the holding run started (RFC 3339, local time).
    pub started: String,
    /// The holding run's command line.
    pub command: String,
}

impl HolderInfo {
    /// This process.
    pub fn current() -> HolderInfo {
        let mut command = std::env::args().collect::<Vec<_>>().join(" ");
        if command.len() > 500 {
            let mut end = 500;
            while !command.is_char_boundary(end) {
                end -= 1;
            }
            command.truncate(end);
            command.push_str(" ...");
        }
        HolderInfo {
            pid: std::process::id(),
            host: hostname(),
            started: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            command,
        }
    }

    /// Whether the holding process is still running: `Some` only when it ran on this host.
    pub fn is_alive(&self) -> Option<bool> {
        (self.host == hostname()).then(|| pid_alive(self.pid))
    }
}

impl std::fmt::Display for HolderInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {}, started {} (`{}`)",
            self.pid, self.host, self.started, self.command
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the lock. Exit code 4.
    #[error("{}", held_message(.lock_path, .holder.as_ref()))]
    Held {
        lock_path: PathBuf,
        holder: Option<HolderInfo>,
    },

    #[error(
        "cannot lock {path}: {source}; the output's folder must be writable and on a \
         filesystem with file locks (choose another --output or --archive)"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn held_message(lock_path: &Path, holder: Option<&HolderInfo>) -> String {
    let output = lock_path.with_extension("");
    match holder {
        Some(holder) => {
            let mut message = format!(
                "another polybrief run is writing {}: {holder}. Wait for it to finish, or stop \
                 it (`kill {}` on {}) if it is stuck; a stopped or killed run frees the lock \
                 and the next run takes over (lock file: {})",
                output.display(),
                holder.pid,
                holder.host,
                lock_path.display(),
            );
            if holder.is_alive() == Some(false) {
                message.push_str(&format!(
                    ". Note: pid {} is no longer running, yet the lock is held: another \
                     process has the lock file open (`fuser {}` shows which)",
                    holder.pid,
                    lock_path.display()
                ));
            }
            message
        }
        None => format!(
            "another polybrief run is writing {} (it is still recording its details in {}); \
             wait for it to finish",
            output.display(),
            lock_path.display()
        ),
    }
}

/// The lock files this process holds, so that an exit that skips destructors (a second
/// Ctrl-C) can still remove them.
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the files of every lock this process holds; for an immediate exit, which runs no
/// `Drop`. The locks themselves go with the process.
pub fn remove_held_lock_files() {
    let held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for path in held.iter() {
        let _ = fs::remove_file(path);
    }
}

fn register_held(path: &Path) {
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(path.to_path_buf());
}

fn unregister_held(path: &Path) {
    let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(at) = held.iter().position(|p| p == path) {
        held.swap_remove(at);
    }
}

/// A held lock on one output; released (and its file removed) on drop.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
    took_over: Option<HolderInfo>,
}

/// Attempts before giving up when lock files keep being replaced under us.
const ACQUIRE_ATTEMPTS: usize = 16;

impl OutputLock {
    /// The lock file for `output`: `brief.md` → `brief.md.lock`.
    pub fn lock_path_for(output: &Path) -> PathBuf {
        let mut name = output
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "output".into());
        name.push(".lock");
        output.with_file_name(name)
    }

    /// Locks `output` (via `<output>.lock`) without waiting. For `--archive DIR`, lock
    /// `DIR/latest.md`.
    pub fn acquire(output: &Path) -> Result<OutputLock, LockError> {
        OutputLock::acquire_at(&OutputLock::lock_path_for(output))
    }

    /// Locks the lock file `lock_path` itself without waiting.
    pub fn acquire_at(lock_path: &Path) -> Result<OutputLock, LockError> {
        let io_error = |source| LockError::Io {
            path: lock_path.to_path_buf(),
            source,
        };
        // `-o briefs/today.md` into a folder that does not exist yet is a normal first run.
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_error)?;
        }
        for _ in 0..ACQUIRE_ATTEMPTS {
            // No truncation: the file may hold the current holder's details.
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(lock_path)
                .map_err(io_error)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file).ok().flatten();
                    return Err(LockError::Held {
                        lock_path: lock_path.to_path_buf(),
                        holder,
                    });
                }
                Err(TryLockError::Error(source)) => return Err(io_error(source)),
            }
            if !still_names(lock_path, &file) {
                // The previous holder removed this file while we were opening it.
                continue;
            }
            let stale = read_holder(&mut file);
            let me = HolderInfo::current();
            write_holder(&mut file, &me).map_err(io_error)?;
            let took_over = match stale {
                Ok(Some(previous)) => {
                    log::warn!(
                        "taking over the lock {} left by {previous}, which was killed or crashed \
                         (its finished work is in the cache)",
                        lock_path.display()
                    );
                    Some(previous)
                }
                Ok(None) => None,
                Err(e) => {
                    log::warn!(
                        "taking over the lock {} whose previous holder left unreadable details ({e})",
                        lock_path.display()
                    );
                    None
                }
            };
            register_held(lock_path);
            return Ok(OutputLock {
                file,
                path: lock_path.to_path_buf(),
                took_over,
            });
        }
        Err(io_error(io::Error::other(
            "the lock file kept being replaced by other runs; try again",
        )))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The holder of a stale lock this run took over (a run that was killed), if any.
    pub fn took_over(&self) -> Option<&HolderInfo> {
        self.took_over.as_ref()
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        unregister_held(&self.path);
        // Remove while still holding the lock; see the module comment for why this is safe.
        #[cfg(unix)]
        if still_names(&self.path, &self.file) {
            let _ = fs::remove_file(&self.path);
        }
        // Windows cannot remove an open file; clear it instead so it does not read as stale.
        #[cfg(not(unix))]
        {
            let _ = self.file.set_len(0);
        }
        let _ = self.file.unlock();
    }
}

/// The holder recorded in a lock file: `None` when it is empty (being written, or released).
fn read_holder(file: &mut File) -> Result<Option<HolderInfo>, String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    file.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn write_holder(file: &mut File, holder: &HolderInfo) -> io::Result<()> {
    let mut line = serde_json::to_string(holder).map_err(io::Error::other)?;
    line.push('\n');
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(line.as_bytes())?;
    file.flush()
}

/// Whether `path` still names the open `file` (same device and inode).
#[cfg(unix)]
fn still_names(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(on_disk), Ok(open)) => on_disk.dev() == open.dev() && on_disk.ino() == open.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_names(_path: &Path, _file: &File) -> bool {
    true
}

fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".to_string())
}

/// Whether a process with this pid exists on this host.
fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 performs only the existence and permission checks.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        // EPERM: it exists but belongs to another user.
        io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_appends_dot_lock() {
        assert_eq!(
            OutputLock::lock_path_for(Path::new("/srv/briefs/brief.md")),
            PathBuf::from("/srv/briefs/brief.md.lock")
        );
        assert_eq!(
            OutputLock::lock_path_for(Path::new("brief")),
            PathBuf::from("brief.lock")
        );
    }

    #[test]
    fn second_acquire_reports_held_with_holder_info_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("brief.md");
        let first = OutputLock::acquire(&output).unwrap();
        assert!(first.took_over().is_none());

        // A second open file handle conflicts even within one process.
        match OutputLock::acquire(&output) {
            Err(LockError::Held {
                lock_path,
                holder: Some(holder),
            }) => {
                assert_eq!(lock_path, dir.path().join("brief.md.lock"));
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.host, hostname());
                assert_eq!(holder.is_alive(), Some(true));
                let message = LockError::Held {
                    lock_path,
                    holder: Some(holder),
                }
                .to_string();
                assert!(
                    message.contains(&format!("pid {}", std::process::id())),
                    "{message}"
                );
                assert!(message.contains("brief.md"), "{message}");
                assert!(message.contains("Wait for it to finish"), "{message}");
            }
            other => panic!("expected Held with holder info, got {other:?}"),
        }

        drop(first);
        assert!(
            !dir.path().join("brief.md.lock").exists(),
            "released lock file is removed"
        );
        let again = OutputLock::acquire(&output).unwrap();
        assert!(
            again.took_over().is_none(),
            "a clean release is not a stale lock"
        );
    }

    #[test]
    fn stale_lock_file_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("brief.md");
        // A process that has exited: its pid is (almost certainly) dead now.
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let stale = HolderInfo {
            pid: dead_pid,
            host: hostname(),
            started: "2026-01-01T03:00:00+00:00".to_string(),
            command: "polybrief run /srv/news".to_string(),
        };
        fs::write(
            OutputLock::lock_path_for(&output),
            serde_json::to_string(&stale).unwrap(),
        )
        .unwrap();
        assert_eq!(stale.is_alive(), Some(false));

        let lock = OutputLock::acquire(&output).unwrap();
        assert_eq!(lock.took_over(), Some(&stale));
        let now_recorded: HolderInfo =
            serde_json::from_str(&fs::read_to_string(lock.path()).unwrap()).unwrap();
        assert_eq!(now_recorded.pid, std::process::id());
    }

    #[test]
    fn lock_in_a_missing_folder_creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("missing").join("brief.md");
        let lock = OutputLock::acquire(&output).unwrap();
        assert!(lock.path().exists());
    }

    #[test]
    fn lock_where_no_folder_can_be_made_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a-file"), "").unwrap();
        let output = dir.path().join("a-file").join("brief.md");
        let error = OutputLock::acquire(&output).unwrap_err();
        assert!(matches!(error, LockError::Io { .. }));
        assert!(error.to_string().contains("brief.md.lock"), "{error}");
    }

    #[test]
    fn holder_on_another_host_is_not_judged_alive_or_dead() {
        let holder = HolderInfo {
            pid: 1,
            host: format!("{}-elsewhere", hostname()),
            started: String::new(),
            command: String::new(),
        };
        assert_eq!(holder.is_alive(), None);
    }
}
