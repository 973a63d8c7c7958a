//! The content-addressed cache of stage results that makes nightly runs do only new work.
//!
//! An entry is keyed by the sha256 of a canonical serialization of everything that decides the
//! result: polybrief's cache format version, the stage, the article's text hash, and the stage's
//! settings (model repo and revision, prompt text, decoding settings, ...) that the caller
//! passes as one serializable struct. Change any of them and the key changes, so a stale result
//! is never served; keep them all and the result is loaded instead of computed.
//!
//! Layout: `DIR/v{FORMAT}/{stage}/{first two hex digits}/{key}.entry`, plus a `CACHEDIR.TAG`
//! so backup tools skip the folder. An entry is one JSON header line (format, stage, key,
//! payload length and sha256) followed by the JSON payload; a reader checks all of it, so an
//! entry that is truncated, bit-flipped or written by another version is a miss (logged and
//! removed), never a wrong result. Entries are written atomically (temporary file in the
//! same folder, rename): a run killed at any point leaves whole entries only. Durability
//! against a power cut comes from one filesystem flush per stage ([`StageCache::flush`])
//! rather than one fsync per entry; an entry a power cut truncates fails its checksum.
//!
//! Pruning is by last use: a hit sets the entry's modification time to now, so
//! `prune(older_than)` removes exactly the entries no run has read or written for that long.
//! This was chosen over "keep only what the last run touched" because with `--shard K/N`
//! several machines share one cache and no single run touches everything; last use is
//! well-defined whatever ran. Orphaned temporary files (from a kill -9 mid-write) and
//! entries of older cache formats are removed by every prune.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::output::{replace_file, SyncDir};

mod canonical;
mod pack;

/// polybrief's cache format version. Bump it whenever a cached type or a stage's behaviour
/// changes in a way its settings do not capture: every existing entry becomes a miss, and
/// the next `polybrief cache prune` deletes them.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// The stage names polybrief caches under (any `[a-z0-9_-]{1,32}` name is accepted).
pub mod stage {
    pub const LANGUAGE: &str = "language";
    pub const SEGMENTS: &str = "segments";
    pub const TRANSLATION: &str = "translation";
    pub const SUMMARY: &str = "summary";
}

/// Orphaned temporary files younger than this may belong to a run writing right now.
const TEMP_GRACE: Duration = Duration::from_secs(3600);

const ENTRY_EXT: &str = "entry";
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by polybrief.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "cannot find a cache folder: neither XDG_CACHE_HOME nor HOME is set; \
         pass --cache-dir DIR or set POLYBRIEF_CACHE_DIR"
    )]
    NoDefaultDir,

    #[error("cannot use the cache folder {path}: {source}; pass another --cache-dir or fix its permissions")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "cannot write the cache entry {path}: {source}; free space or pass another --cache-dir"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot scan the cache folder {path}: {source}")]
    Scan {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "`{0}` is not a cache stage name (lowercase letters, digits, `-` and `_`, at most 32)"
    )]
    InvalidStage(String),

    #[error("cannot serialize the {what} for the {stage} cache: {source}")]
    Serialize {
        stage: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The address of one cached stage result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    stage: String,
    hex: String,
    /// The sha256 digest `hex` spells.
    digest: [u8; 32],
}

impl CacheKey {
    /// The key of `stage`'s result for the article whose text hash is `input` (pass
    /// `ArticleId::as_str()`, or any hash of the stage's whole input) under `parts`: every
    /// setting that changes the result (model repo and revision, prompt text, decoding
    /// settings, upstream stages' settings). Object keys are sorted before hashing, so field
    /// order and map iteration order do not matter; field names and values do.
    pub fn new(stage: &str, input: &str, parts: &impl Serialize) -> Result<CacheKey, CacheError> {
        CacheKey::with_format(CACHE_FORMAT_VERSION, stage, input, parts)
    }

    fn with_format(
        format: u32,
        stage: &str,
        input: &str,
        parts: &impl Serialize,
    ) -> Result<CacheKey, CacheError> {
        validate_stage(stage)?;
        // What is hashed: named fields (no two different inputs give the same bytes), in
        // canonical form (`write_canonical`), written straight from `parts`; the value tree
        // decides what the writer does not handle.
        let mut canonical = Vec::with_capacity(256);
        canonical.extend_from_slice(b"{\"format\":");
        canonical.extend_from_slice(format.to_string().as_bytes());
        canonical.extend_from_slice(b",\"input\":");
        serde_json::to_writer(&mut canonical, input).map_err(|source| CacheError::Serialize {
            stage: stage.to_string(),
            what: "key",
            source,
        })?;
        canonical.extend_from_slice(b",\"parts\":");
        let written = canonical::write(parts, &mut canonical).is_ok();
        let canonical = if written {
            canonical.extend_from_slice(b",\"stage\":");
            serde_json::to_writer(&mut canonical, stage).map_err(|source| {
                CacheError::Serialize {
                    stage: stage.to_string(),
                    what: "key",
                    source,
                }
            })?;
            canonical.push(b'}');
            canonical
        } else {
            canonical_by_value_tree(format, stage, input, parts)?
        };
        let digest: [u8; 32] = Sha256::digest(&canonical).into();
        Ok(CacheKey {
            stage: stage.to_string(),
            hex: hex::encode(digest),
            digest,
        })
    }

    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The key as 64 lowercase hex digits.
    pub fn as_hex(&self) -> &str {
        &self.hex
    }
}

fn validate_stage(stage: &str) -> Result<(), CacheError> {
    let ok = (1..=32).contains(&stage.len())
        && stage
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CacheError::InvalidStage(stage.to_string()))
    }
}

/// The canonical bytes of a key's material by way of the value tree: what
/// [`canonical::write`] writes, for what it does not handle.
fn canonical_by_value_tree(
    format: u32,
    stage: &str,
    input: &str,
    parts: &impl Serialize,
) -> Result<Vec<u8>, CacheError> {
    let serialize_error = |source| CacheError::Serialize {
        stage: stage.to_string(),
        what: "key",
        source,
    };
    let parts = serde_json::to_value(parts).map_err(serialize_error)?;
    // Named fields (no two different inputs give the same bytes), with `parts` moved in
    // rather than serialized a second time.
    let mut material = serde_json::Map::new();
    material.insert("format".to_string(), format.into());
    material.insert("stage".to_string(), stage.into());
    material.insert("input".to_string(), input.into());
    material.insert("parts".to_string(), parts);
    let mut canonical = Vec::new();
    write_canonical(&serde_json::Value::Object(material), &mut canonical)
        .map_err(serialize_error)?;
    Ok(canonical)
}

/// Compact JSON with object keys sorted at every level: the same value always gives the same
/// bytes, whatever serde_json features other crates switch on (`preserve_order` would
/// otherwise let a `HashMap`'s iteration order into the key).
fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_canonical(value, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

/// The first line of an entry file.
#[derive(Debug, Serialize, Deserialize)]
struct EntryHeader {
    format: u32,
    stage: String,
    key: String,
    len: u64,
    sha256: String,
}

/// Hits, misses and writes of one stage since the cache was opened: tests assert "a re-run
/// does no model work" with these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageCounters {
    pub hits: u64,
    pub misses: u64,
    pub writes: u64,
    /// Entries found unreadable (counted among the misses too) and removed.
    pub corrupt: u64,
}

/// Size of a group of entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub entries: u64,
    pub bytes: u64,
}

impl Usage {
    fn add(&mut self, bytes: u64) {
        self.entries += 1;
        self.bytes += bytes;
    }
}

/// What `polybrief cache stats` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CacheStats {
    pub dir: PathBuf,
    pub format: u32,
    /// Entries of the current format.
    pub entries: u64,
    pub bytes: u64,
    pub by_stage: BTreeMap<String, Usage>,
    /// Entries of older cache formats (never read again; removed by the next prune).
    pub old_format: Usage,
    /// Temporary files left by runs killed mid-write (removed by prune once an hour old).
    pub temp_files: Usage,
    /// Last use of the least and most recently used entry, in seconds since the Unix epoch.
    pub oldest_use: Option<u64>,
    pub newest_use: Option<u64>,
}

/// What a prune removed and kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PruneReport {
    pub removed: Usage,
    pub kept: Usage,
    pub removed_old_format: Usage,
    pub removed_temp_files: Usage,
    pub dry_run: bool,
}

/// The on-disk stage cache. Cheap to share by reference across threads.
pub struct StageCache {
    root: PathBuf,
    counters: Mutex<BTreeMap<String, StageCounters>>,
    /// Writes that failed this run: a full disk fails every one of them, and one warning
    /// says all there is to say.
    failed_writes: std::sync::atomic::AtomicUsize,
    /// Entries written since the last [`StageCache::flush`].
    unflushed: AtomicBool,
    /// Per stage, its pack (`pack`) as read at the stage's first lookup, and what this run
    /// used of the stage: the pack written when the cache is dropped.
    packs: Mutex<BTreeMap<String, StagePack>>,
}

/// One stage's pack in this run.
#[derive(Default)]
struct StagePack {
    /// The pack as read from disk at the stage's first lookup.
    read: pack::Pack,
    /// What this run read or wrote, by key: the next pack.
    used: pack::KeyMap<pack::Used>,
}

impl StageCache {
    /// `$XDG_CACHE_HOME/polybrief`, or `~/.cache/polybrief`.
    pub fn default_dir() -> Result<PathBuf, CacheError> {
        default_dir_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
    }

    /// Opens (creating if needed) the cache at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<StageCache, CacheError> {
        let root = dir.into();
        let open_error = |source| CacheError::Open {
            path: root.clone(),
            source,
        };
        fs::create_dir_all(root.join(format_dir_name(CACHE_FORMAT_VERSION))).map_err(open_error)?;
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            // Best effort: a missing tag only means backups include the cache.
            let _ = replace_file(&tag, SyncDir::No, |f| f.write_all(CACHEDIR_TAG.as_bytes()));
        }
        Ok(StageCache {
            root,
            counters: Mutex::new(BTreeMap::new()),
            failed_writes: std::sync::atomic::AtomicUsize::new(0),
            unflushed: AtomicBool::new(false),
            packs: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Where the entry for `key` lives (whether or not it exists).
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.root
            .join(format_dir_name(CACHE_FORMAT_VERSION))
            .join(&key.stage)
            .join(&key.hex[..2])
            .join(format!("{}.{ENTRY_EXT}", key.hex))
    }

    /// The cached value for `key`, or `None`. An entry that cannot be read back as a `T`
    /// (truncated, corrupted, or of a type that changed without a format bump) is logged,
    /// removed and reported as a miss. A hit marks the entry as used now (see `prune`).
    pub fn get<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        if let Some((packed_key, packed)) = self.packed(key) {
            match serde_json::from_slice(packed.payload()) {
                Ok(value) => {
                    self.count(&key.stage, |c| c.hits += 1);
                    self.note_used(
                        &key.stage,
                        packed_key,
                        pack::Used::Packed(packed.origin, packed.range),
                    );
                    return Some(value);
                }
                // A type that changed without a version bump: the entry file decides, and
                // the pack is written anew.
                Err(e) => log::debug!(
                    "the packed copy of {} does not match the expected type: {e}",
                    self.entry_path(key).display()
                ),
            }
        }
        let path = self.entry_path(key);
        let bytes = match read_and_touch(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!(
                        "cannot read the cache entry {}: {e}; recomputing it",
                        path.display()
                    );
                }
                self.count(&key.stage, |c| c.misses += 1);
                return None;
            }
        };
        match decode_entry(key, &bytes) {
            Ok((value, payload)) => {
                self.count(&key.stage, |c| c.hits += 1);
                self.note_owned(key, payload.to_vec());
                Some(value)
            }
            Err(reason) => {
                log::warn!(
                    "the cache entry {} is unreadable ({reason}); removing it and recomputing",
                    path.display()
                );
                let _ = fs::remove_file(&path);
                self.count(&key.stage, |c| {
                    c.misses += 1;
                    c.corrupt += 1;
                });
                None
            }
        }
    }

    /// Stores `value` under `key`, atomically: readers (and runs after a kill -9) see the
    /// whole entry or none.
    pub fn put<T: Serialize>(&self, key: &CacheKey, value: &T) -> Result<(), CacheError> {
        let payload = serde_json::to_vec(value).map_err(|source| CacheError::Serialize {
            stage: key.stage.clone(),
            what: "value",
            source,
        })?;
        let header = EntryHeader {
            format: CACHE_FORMAT_VERSION,
            stage: key.stage.clone(),
            key: key.hex.clone(),
            len: payload.len() as u64,
            sha256: hex::encode(Sha256::digest(&payload)),
        };
        let header = serde_json::to_vec(&header).map_err(|source| CacheError::Serialize {
            stage: key.stage.clone(),
            what: "entry header",
            source,
        })?;
        let path = self.entry_path(key);
        let write_error = |source| CacheError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(write_error)?;
        }
        replace_file(&path, SyncDir::Deferred, |file| {
            file.write_all(&header)?;
            file.write_all(b"\n")?;
            file.write_all(&payload)
        })
        .map_err(write_error)?;
        self.unflushed.store(true, Ordering::Relaxed);
        self.count(&key.stage, |c| c.writes += 1);
        self.note_owned(key, payload);
        Ok(())
    }

    /// The value for `key` from the stage's pack only: for results that are cheap to
    /// recompute but needed for every article on every run (grouping terms), which have no
    /// entry file of their own, so that a first run does not write thousands of files for
    /// them. They live as long as the pack holds them: the next run's pack keeps what that
    /// run used. A value that cannot be read back as a `T` is a miss.
    pub(crate) fn get_packed<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        let value = self.packed(key).and_then(|(packed_key, packed)| {
            let value = serde_json::from_slice(packed.payload()).ok()?;
            self.note_used(
                &key.stage,
                packed_key,
                pack::Used::Packed(packed.origin, packed.range),
            );
            Some(value)
        });
        self.count(&key.stage, |c| match value {
            Some(_) => c.hits += 1,
            None => c.misses += 1,
        });
        value
    }

    /// Stores `value` under `key` in the stage's next pack only (see
    /// [`StageCache::get_packed`]).
    pub(crate) fn put_packed<T: Serialize>(
        &self,
        key: &CacheKey,
        value: &T,
    ) -> Result<(), CacheError> {
        let payload = serde_json::to_vec(value).map_err(|source| CacheError::Serialize {
            stage: key.stage.clone(),
            what: "value",
            source,
        })?;
        self.count(&key.stage, |c| c.writes += 1);
        self.note_owned(key, payload);
        Ok(())
    }

    /// The payload the stage's pack holds for `key`, if any (the pack is read at the stage's
    /// first lookup), with the key as the pack spells it.
    fn packed(&self, key: &CacheKey) -> Option<(pack::Key, pack::Packed)> {
        let packed_key = key.digest;
        let mut packs = self.lock_packs();
        if !packs.contains_key(&key.stage) {
            let read = pack::Pack::read(
                &self.stage_dir(&key.stage),
                CACHE_FORMAT_VERSION,
                &key.stage,
            );
            packs.insert(
                key.stage.clone(),
                StagePack {
                    read,
                    used: pack::KeyMap::default(),
                },
            );
        }
        let packed = packs.get(&key.stage)?.read.get(&packed_key)?;
        Some((packed_key, packed))
    }

    /// Records that this run used `key`'s payload as `used`.
    fn note_used(&self, stage: &str, key: pack::Key, used: pack::Used) {
        let mut packs = self.lock_packs();
        if !packs.contains_key(stage) {
            packs.insert(stage.to_string(), StagePack::default());
        }
        if let Some(pack) = packs.get_mut(stage) {
            pack.used.insert(key, used);
        }
    }

    /// Records that this run used `payload` for `key`, read from its entry file or written.
    fn note_owned(&self, key: &CacheKey, payload: Vec<u8>) {
        self.note_used(&key.stage, key.digest, pack::Used::Owned(payload));
    }

    fn stage_dir(&self, stage: &str) -> PathBuf {
        self.root
            .join(format_dir_name(CACHE_FORMAT_VERSION))
            .join(stage)
    }

    fn lock_packs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StagePack>> {
        // Copies of entries: a panic elsewhere can at worst leave a pack that misses some.
        self.packs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes each stage's pack: a delta to the pack read where the run used little else,
    /// the pack anew where it used much else, nothing where it used what the pack lists
    /// (see `pack`); a pack that is kept is marked used now (see `prune`). Best effort:
    /// without a pack the next run reads the entries one by one.
    fn write_packs(&self) {
        let packs = std::mem::take(&mut *self.lock_packs());
        for (stage, pack) in packs {
            let dir = self.stage_dir(&stage);
            match pack::write(&dir, CACHE_FORMAT_VERSION, &stage, &pack.read, &pack.used) {
                Ok(written) => log::debug!("the {stage} cache pack: {written:?}"),
                Err(e) => log::debug!("cannot write the cache pack of {}: {e}", dir.display()),
            }
        }
    }

    /// Makes every entry written so far durable, with one filesystem flush (`syncfs`) instead
    /// of one fsync per entry. Stages call it when they finish and dropping the cache calls it
    /// too, so an interrupted run keeps its work across a power cut as well as across a kill.
    /// Best effort: a failed flush only risks misses after a power cut, which entries detect.
    pub fn flush(&self) {
        if !self.unflushed.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Err(e) = flush_filesystem(&self.root) {
            log::debug!("flushing the cache at {}: {e}", self.root.display());
        }
    }

    /// The cached value for `key`, or else `compute()`'s, which is then stored. A value that
    /// cannot be stored (disk full) is still returned: the brief does not depend on the
    /// cache, only the next run's speed does, so that is a warning, not a failure.
    pub fn get_or_compute<T, E>(
        &self,
        key: &CacheKey,
        compute: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
    {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let value = compute()?;
        self.put_or_warn(key, &value);
        Ok(value)
    }

    /// Stores `value`; a failure is a warning, not an error (the result is still used), and
    /// only the first failure of a run is logged: a full disk would otherwise print one line
    /// per entry. [`StageCache::failed_writes`] counts them all.
    pub(crate) fn put_or_warn<T: Serialize>(&self, key: &CacheKey, value: &T) {
        if let Err(e) = self.put(key, value) {
            if self.note_write_failure() {
                log::warn!(
                    "{e}; the result is used but the next run will recompute it (further cache \
                     write failures in this run are not reported one by one)"
                );
            }
        }
    }

    /// Counts a failed write; true for the first of the run.
    fn note_write_failure(&self) -> bool {
        self.failed_writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            == 0
    }

    /// How many cache writes failed since this cache was opened.
    pub fn failed_writes(&self) -> usize {
        self.failed_writes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hits/misses/writes of `stage` since this cache was opened.
    pub fn counters(&self, stage: &str) -> StageCounters {
        self.lock_counters().get(stage).copied().unwrap_or_default()
    }

    /// Hits/misses/writes of every stage since this cache was opened.
    pub fn all_counters(&self) -> BTreeMap<String, StageCounters> {
        self.lock_counters().clone()
    }

    fn count(&self, stage: &str, update: impl FnOnce(&mut StageCounters)) {
        let mut counters = self.lock_counters();
        match counters.get_mut(stage) {
            Some(counters) => update(counters),
            None => update(counters.entry(stage.to_string()).or_default()),
        }
    }

    fn lock_counters(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StageCounters>> {
        // The counters are plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts entries and bytes, by stage.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        let mut stats = CacheStats {
            dir: self.root.clone(),
            format: CACHE_FORMAT_VERSION,
            ..CacheStats::default()
        };
        self.walk(|file| {
            match file.kind {
                FileKind::Entry {
                    stage,
                    current: true,
                } => {
                    stats.entries += 1;
                    stats.bytes += file.bytes;
                    stats.by_stage.entry(stage).or_default().add(file.bytes);
                    let used = file
                        .modified
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    stats.oldest_use = Some(stats.oldest_use.map_or(used, |t| t.min(used)));
                    stats.newest_use = Some(stats.newest_use.map_or(used, |t| t.max(used)));
                }
                FileKind::Entry { current: false, .. } => stats.old_format.add(file.bytes),
                FileKind::Temp => stats.temp_files.add(file.bytes),
            }
            Ok(())
        })?;
        Ok(stats)
    }

    /// Removes entries not used (read or written) for `older_than`, every entry of an older
    /// cache format, and temporary files orphaned by killed runs. With `dry_run` nothing is
    /// removed and the report says what would be.
    pub fn prune(&self, older_than: Duration, dry_run: bool) -> Result<PruneReport, CacheError> {
        let now = SystemTime::now();
        let mut report = PruneReport {
            dry_run,
            ..PruneReport::default()
        };
        let age = |modified: SystemTime| now.duration_since(modified).unwrap_or(Duration::ZERO);
        self.walk(|file| {
            let (remove, tally) = match file.kind {
                FileKind::Entry { current: true, .. } if age(file.modified) >= older_than => {
                    (true, &mut report.removed)
                }
                FileKind::Entry { current: true, .. } => (false, &mut report.kept),
                FileKind::Entry { current: false, .. } => (true, &mut report.removed_old_format),
                FileKind::Temp if age(file.modified) >= TEMP_GRACE => {
                    (true, &mut report.removed_temp_files)
                }
                FileKind::Temp => (false, &mut report.kept),
            };
            if remove && !dry_run {
                match fs::remove_file(&file.path) {
                    Ok(()) => {}
                    // Another prune got there first.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(source) => {
                        return Err(CacheError::Write {
                            path: file.path.clone(),
                            source,
                        })
                    }
                }
            }
            tally.add(file.bytes);
            Ok(())
        })?;
        if !dry_run {
            self.remove_stale_packs(older_than, now);
            self.remove_empty_dirs();
        }
        Ok(report)
    }

    /// Removes the packs of older cache formats, and those no run has used for `older_than`
    /// (the entries they list were pruned on the same terms).
    fn remove_stale_packs(&self, older_than: Duration, now: SystemTime) {
        let current = format_dir_name(CACHE_FORMAT_VERSION);
        for format_dir in list_dirs(&self.root).unwrap_or_default() {
            let is_current = format_dir.file_name().is_some_and(|n| *n == *current);
            for stage_dir in list_dirs(&format_dir).unwrap_or_default() {
                let used = fs::metadata(pack::path(&stage_dir))
                    .map(|meta| meta.modified().unwrap_or(SystemTime::UNIX_EPOCH))
                    // A delta without its base is of no use.
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let age = now.duration_since(used).unwrap_or(Duration::ZERO);
                if !is_current || age >= older_than {
                    pack::remove(&stage_dir);
                }
            }
        }
    }

    /// Calls `visit` for every entry and temporary file under the cache folder.
    fn walk(
        &self,
        mut visit: impl FnMut(CacheFile) -> Result<(), CacheError>,
    ) -> Result<(), CacheError> {
        let current = format_dir_name(CACHE_FORMAT_VERSION);
        for format_dir in list_dirs(&self.root)? {
            let Some(name) = format_dir
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            if !is_format_dir_name(&name) {
                continue;
            }
            let is_current = name == current;
            for stage_dir in list_dirs(&format_dir)? {
                let stage = stage_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                let Some(stage) = stage else { continue };
                // An entry the stage's pack lists was used when the pack last was.
                let packed = if is_current {
                    packed_uses(&stage_dir, &stage)
                } else {
                    None
                };
                for shard_dir in list_dirs(&stage_dir)? {
                    for entry in read_dir(&shard_dir)? {
                        let path = entry.path();
                        let Ok(meta) = entry.metadata() else { continue };
                        if !meta.is_file() {
                            continue;
                        }
                        let file_name = entry.file_name().to_string_lossy().into_owned();
                        let kind = if file_name.starts_with('.') && file_name.ends_with(".tmp") {
                            FileKind::Temp
                        } else if file_name.ends_with(&format!(".{ENTRY_EXT}")) {
                            FileKind::Entry {
                                stage: stage.clone(),
                                current: is_current,
                            }
                        } else {
                            continue;
                        };
                        let mut modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        if let Some((keys, pack_used)) = &packed {
                            let listed = file_name
                                .strip_suffix(&format!(".{ENTRY_EXT}"))
                                .is_some_and(|hex| keys.contains(hex));
                            if listed {
                                modified = modified.max(*pack_used);
                            }
                        }
                        visit(CacheFile {
                            path,
                            bytes: meta.len(),
                            modified,
                            kind,
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes shard, stage and old-format folders left empty (never the current format's root).
    fn remove_empty_dirs(&self) {
        let current = format_dir_name(CACHE_FORMAT_VERSION);
        let Ok(format_dirs) = list_dirs(&self.root) else {
            return;
        };
        for format_dir in format_dirs {
            let name = format_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let Some(name) = name.filter(|n| is_format_dir_name(n)) else {
                continue;
            };
            for stage_dir in list_dirs(&format_dir).unwrap_or_default() {
                for shard_dir in list_dirs(&stage_dir).unwrap_or_default() {
                    // Fails (harmlessly) unless empty.
                    let _ = fs::remove_dir(&shard_dir);
                }
                let _ = fs::remove_dir(&stage_dir);
            }
            if name != current {
                let _ = fs::remove_dir(&format_dir);
            }
        }
    }
}

struct CacheFile {
    path: PathBuf,
    bytes: u64,
    modified: SystemTime,
    kind: FileKind,
}

enum FileKind {
    Entry { stage: String, current: bool },
    Temp,
}

fn format_dir_name(format: u32) -> String {
    format!("v{format}")
}

fn is_format_dir_name(name: &str) -> bool {
    name.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Drop for StageCache {
    fn drop(&mut self) {
        self.flush();
        // After the flush: packs are copies, never flushed (see `pack`).
        self.write_packs();
    }
}

/// Flushes the filesystem holding `dir`: Linux's `syncfs`, else a full `sync`.
fn flush_filesystem(dir: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let folder = File::open(dir)?;
        // SAFETY: `folder` is an open descriptor for the duration of the call.
        if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let _ = dir;
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn default_dir_from(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf, CacheError> {
    // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if let Some(xdg) = xdg_cache_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(xdg.join("polybrief"));
    }
    match home.filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("polybrief")),
        None => Err(CacheError::NoDefaultDir),
    }
}

/// The keys the pack of the stage at `stage_dir` lists, and when it was last used; `None`
/// without a readable pack.
fn packed_uses(stage_dir: &Path, stage: &str) -> Option<(HashSet<String>, SystemTime)> {
    pack::listed(stage_dir, CACHE_FORMAT_VERSION, stage)
}

/// Reads an entry and marks it used now. The touch needs write access; a read-only shared
/// cache still serves hits, its entries just age by write time.
fn read_and_touch(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = match File::options().read(true).write(true).open(path) {
        Ok(file) => {
            let _ = file.set_modified(SystemTime::now());
            file
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
        Err(_) => File::open(path)?,
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Checks an entry's header against `key` and its payload, then deserializes the payload;
/// returns the value and the payload.
fn decode_entry<'b, T: DeserializeOwned>(
    key: &CacheKey,
    bytes: &'b [u8],
) -> Result<(T, &'b [u8]), String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| "no header line".to_string())?;
    let (header, payload) = (&bytes[..newline], &bytes[newline + 1..]);
    let header: EntryHeader =
        serde_json::from_slice(header).map_err(|e| format!("bad header: {e}"))?;
    if header.format != CACHE_FORMAT_VERSION || header.stage != key.stage || header.key != key.hex {
        return Err(format!(
            "header says format {} stage {} key {}, expected format {CACHE_FORMAT_VERSION} stage {} key {}",
            header.format, header.stage, header.key, key.stage, key.hex
        ));
    }
    if header.len != payload.len() as u64 {
        return Err(format!(
            "{} payload bytes, header says {}",
            payload.len(),
            header.len
        ));
    }
    if hex::encode(Sha256::digest(payload)) != header.sha256 {
        return Err("payload checksum mismatch".to_string());
    }
    serde_json::from_slice(payload)
        .map(|value| (value, payload))
        .map_err(|e| format!("payload does not match the expected type: {e}"))
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, CacheError> {
    let scan_error = |source| CacheError::Scan {
        path: dir.to_path_buf(),
        source,
    };
    match fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>().map_err(scan_error),
        // Removed by a concurrent prune.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(scan_error(e)),
    }
}

fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let mut dirs: Vec<PathBuf> = read_dir(dir)?
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Serialize)]
    struct TranslateSettings<'a> {
        model: &'a str,
        revision: &'a str,
        beams: u32,
        prompt: &'a str,
    }

    const BASE: TranslateSettings<'static> = TranslateSettings {
        model: "Helsinki-NLP/opus-mt-de-en",
        revision: "abc123",
        beams: 4,
        prompt: "",
    };

    fn key(stage: &str, input: &str, settings: &TranslateSettings) -> CacheKey {
        CacheKey::new(stage, input, settings).unwrap()
    }

    #[test]
    fn round_trip_returns_what_was_put_and_counts_hits_and_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let k = key(stage::TRANSLATION, "0123456789abcdef", &BASE);

        assert_eq!(cache.get::<Vec<String>>(&k), None);
        let value = vec![
            "The river burst its banks.".to_string(),
            "Two died.".to_string(),
        ];
        cache.put(&k, &value).unwrap();
        assert_eq!(cache.get::<Vec<String>>(&k), Some(value.clone()));

        // A fresh handle (the next night's run) sees the same entry.
        let reopened = StageCache::open(dir.path()).unwrap();
        assert_eq!(reopened.get::<Vec<String>>(&k), Some(value));

        assert_eq!(
            cache.counters(stage::TRANSLATION),
            StageCounters {
                hits: 1,
                misses: 1,
                writes: 1,
                corrupt: 0
            }
        );
        assert_eq!(reopened.counters(stage::TRANSLATION).hits, 1);
    }

    #[test]
    fn key_changes_when_any_keyed_part_changes() {
        let base = key(stage::TRANSLATION, "aaaa", &BASE);
        let variants = [
            key(stage::SUMMARY, "aaaa", &BASE),
            key(stage::TRANSLATION, "aaab", &BASE),
            key(
                stage::TRANSLATION,
                "aaaa",
                &TranslateSettings {
                    model: "Helsinki-NLP/opus-mt-fr-en",
                    ..BASE
                },
            ),
            key(
                stage::TRANSLATION,
                "aaaa",
                &TranslateSettings {
                    revision: "abc124",
                    ..BASE
                },
            ),
            key(
                stage::TRANSLATION,
                "aaaa",
                &TranslateSettings { beams: 5, ..BASE },
            ),
            key(
                stage::TRANSLATION,
                "aaaa",
                &TranslateSettings {
                    prompt: "Summarize:",
                    ..BASE
                },
            ),
            CacheKey::with_format(CACHE_FORMAT_VERSION + 1, stage::TRANSLATION, "aaaa", &BASE)
                .unwrap(),
        ];
        for variant in &variants {
            assert_ne!(variant.as_hex(), base.as_hex(), "{variant:?}");
        }
        assert_eq!(key(stage::TRANSLATION, "aaaa", &BASE), base);
        assert_eq!(base.as_hex().len(), 64);
    }

    #[test]
    fn key_does_not_depend_on_field_or_map_order() {
        #[derive(Serialize)]
        struct Ab {
            a: u32,
            b: &'static str,
        }
        #[derive(Serialize)]
        struct Ba {
            b: &'static str,
            a: u32,
        }
        let ab = CacheKey::new("summary", "x", &Ab { a: 1, b: "two" }).unwrap();
        let ba = CacheKey::new("summary", "x", &Ba { b: "two", a: 1 }).unwrap();
        assert_eq!(ab, ba);

        let forward: HashMap<String, u32> = (0..50).map(|i| (format!("k{i}"), i)).collect();
        let backward: HashMap<String, u32> = (0..50).rev().map(|i| (format!("k{i}"), i)).collect();
        assert_eq!(
            CacheKey::new("summary", "x", &forward).unwrap(),
            CacheKey::new("summary", "x", &backward).unwrap()
        );
    }

    #[test]
    fn keys_are_not_ambiguous_like_string_concatenation() {
        // "ab" + "c" and "a" + "bc" concatenate alike; as structured material they differ.
        let one = CacheKey::new("summary", "ab", &"c").unwrap();
        let two = CacheKey::new("summary", "a", &"bc").unwrap();
        assert_ne!(one, two);
    }

    #[test]
    fn stage_names_that_are_not_plain_folder_names_are_rejected() {
        for bad in ["", "../x", "Translate", "a/b", &"x".repeat(33)] {
            assert!(
                matches!(
                    CacheKey::new(bad, "x", &()),
                    Err(CacheError::InvalidStage(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn entries_are_sharded_by_stage_and_key_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let k = key(stage::SUMMARY, "abcd", &BASE);
        let path = cache.entry_path(&k);
        let expected = dir
            .path()
            .join("v1")
            .join("summary")
            .join(&k.as_hex()[..2])
            .join(format!("{}.entry", k.as_hex()));
        assert_eq!(path, expected);
        cache.put(&k, &1u32).unwrap();
        assert!(path.is_file());
        assert!(dir.path().join("CACHEDIR.TAG").is_file());
    }

    fn corrupt_and_check(corrupt: impl FnOnce(&Path)) {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let k = key(stage::SUMMARY, "abcd", &BASE);
        cache
            .put(&k, &vec!["a summary sentence".to_string(); 20])
            .unwrap();
        let path = cache.entry_path(&k);
        corrupt(&path);
        assert_eq!(cache.get::<Vec<String>>(&k), None);
        assert!(!path.exists(), "a corrupt entry is removed");
        let counters = cache.counters(stage::SUMMARY);
        assert_eq!(
            (counters.hits, counters.misses, counters.corrupt),
            (0, 1, 1)
        );
        // And the stage can be recomputed and stored again.
        cache.put(&k, &vec!["again".to_string()]).unwrap();
        assert_eq!(
            cache.get::<Vec<String>>(&k),
            Some(vec!["again".to_string()])
        );
    }

    #[test]
    fn truncated_entry_is_a_miss_and_is_removed() {
        corrupt_and_check(|path| {
            let bytes = fs::read(path).unwrap();
            fs::write(path, &bytes[..bytes.len() - 7]).unwrap();
        });
    }

    #[test]
    fn flipped_byte_in_payload_is_a_miss_and_is_removed() {
        corrupt_and_check(|path| {
            let mut bytes = fs::read(path).unwrap();
            let last = bytes.len() - 5;
            bytes[last] ^= 0x01;
            fs::write(path, &bytes).unwrap();
        });
    }

    #[test]
    fn garbage_entry_is_a_miss_and_is_removed() {
        corrupt_and_check(|path| fs::write(path, b"\0\0\0 not an entry").unwrap());
    }

    #[test]
    fn entry_of_another_type_is_a_miss_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let k = key(stage::SUMMARY, "abcd", &BASE);
        cache.put(&k, &"a string").unwrap();
        assert_eq!(cache.get::<Vec<u32>>(&k), None);
        assert_eq!(cache.counters(stage::SUMMARY).corrupt, 1);
    }

    #[test]
    fn entry_moved_under_another_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let a = key(stage::SUMMARY, "aaaa", &BASE);
        let b = key(stage::SUMMARY, "bbbb", &BASE);
        cache.put(&a, &"for a").unwrap();
        fs::create_dir_all(cache.entry_path(&b).parent().unwrap()).unwrap();
        fs::copy(cache.entry_path(&a), cache.entry_path(&b)).unwrap();
        assert_eq!(cache.get::<String>(&b), None);
        assert_eq!(cache.get::<String>(&a), Some("for a".to_string()));
    }

    #[test]
    fn get_or_compute_computes_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let k = key(stage::LANGUAGE, "abcd", &BASE);
        let mut runs = 0;
        for _ in 0..3 {
            let lang: Result<String, ()> = cache.get_or_compute(&k, || {
                runs += 1;
                Ok("de".to_string())
            });
            assert_eq!(lang.unwrap(), "de");
        }
        assert_eq!(runs, 1);
        let failed: Result<String, &str> =
            cache.get_or_compute(&key(stage::LANGUAGE, "ffff", &BASE), || Err("model failed"));
        assert_eq!(failed, Err("model failed"));
    }

    #[test]
    fn get_or_compute_still_returns_the_value_when_it_cannot_be_stored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        // A file where the stage's folder should be: every put for that stage fails.
        fs::write(dir.path().join("v1").join(stage::SUMMARY), "in the way").unwrap();
        let k = key(stage::SUMMARY, "abcd", &BASE);
        assert!(matches!(cache.put(&k, &"x"), Err(CacheError::Write { .. })));
        let value: Result<String, ()> = cache.get_or_compute(&k, || Ok("computed".to_string()));
        assert_eq!(value.unwrap(), "computed");
        assert_eq!(cache.counters(stage::SUMMARY).writes, 0);
    }

    #[test]
    fn a_full_disk_is_warned_about_once_per_run_not_once_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        fs::write(dir.path().join("v1").join(stage::SUMMARY), "in the way").unwrap();
        for i in 0..800 {
            let k = key(stage::SUMMARY, &format!("a{i}"), &BASE);
            let value: Result<u32, ()> = cache.get_or_compute(&k, || Ok(i));
            assert_eq!(value, Ok(i));
        }
        assert_eq!(cache.failed_writes(), 800);
        // The 800 failures were noted; only the first one said so.
        assert!(!cache.note_write_failure(), "a later failure logs nothing");
    }

    #[test]
    fn stats_count_entries_and_bytes_by_stage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        for i in 0..3 {
            cache
                .put(
                    &key(stage::TRANSLATION, &format!("t{i}"), &BASE),
                    &"x".repeat(100),
                )
                .unwrap();
        }
        cache.put(&key(stage::SUMMARY, "s", &BASE), &"y").unwrap();
        let stats = cache.stats().unwrap();
        assert_eq!(stats.entries, 4);
        assert_eq!(stats.by_stage["translation"].entries, 3);
        assert_eq!(stats.by_stage["summary"].entries, 1);
        assert!(stats.by_stage["translation"].bytes > 300);
        assert_eq!(
            stats.bytes,
            stats.by_stage.values().map(|u| u.bytes).sum::<u64>()
        );
        assert!(stats.oldest_use.is_some());
    }

    fn set_age(path: &Path, age: Duration) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn the_next_run_is_served_from_the_pack_and_prune_counts_its_uses() {
        let dir = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86_400);
        let used = key(stage::SUMMARY, "used", &BASE);
        let dropped = key(stage::SUMMARY, "dropped", &BASE);
        {
            let first = StageCache::open(dir.path()).unwrap();
            first.put(&used, &"kept").unwrap();
            first.put(&dropped, &"left").unwrap();
        }
        let pack = pack::path(&dir.path().join("v1").join(stage::SUMMARY));
        assert!(
            pack.is_file(),
            "a pack is written when the cache is dropped"
        );
        for k in [&used, &dropped] {
            let cache = StageCache::open(dir.path()).unwrap();
            set_age(&cache.entry_path(k), 40 * day);
        }
        {
            let second = StageCache::open(dir.path()).unwrap();
            // The entry file is not read: garbage in it does not matter.
            fs::write(second.entry_path(&used), b"garbage").unwrap();
            set_age(&second.entry_path(&used), 40 * day);
            assert_eq!(second.get::<String>(&used).as_deref(), Some("kept"));
            assert_eq!(second.counters(stage::SUMMARY).hits, 1);
            let report = second.prune(30 * day, true).unwrap();
            assert_eq!(
                (report.removed.entries, report.kept.entries),
                (0, 2),
                "both are listed by a pack used now"
            );
        }
        let cache = StageCache::open(dir.path()).unwrap();
        let report = cache.prune(30 * day, false).unwrap();
        assert_eq!(
            (report.removed.entries, report.kept.entries),
            (1, 1),
            "the second run's pack lists only what it used"
        );
        assert!(!cache.entry_path(&dropped).exists());
        set_age(&pack, 40 * day);
        let report = cache.prune(30 * day, false).unwrap();
        assert_eq!((report.removed.entries, report.kept.entries), (1, 0));
        assert!(!pack.exists(), "a pack unused for as long is removed too");
    }

    #[test]
    fn prune_removes_entries_unused_for_longer_than_the_limit_and_a_hit_refreshes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let day = Duration::from_secs(86_400);
        let old = key(stage::SUMMARY, "old", &BASE);
        let old_but_read = key(stage::SUMMARY, "read", &BASE);
        let fresh = key(stage::SUMMARY, "fresh", &BASE);
        for k in [&old, &old_but_read, &fresh] {
            cache.put(k, &"v").unwrap();
        }
        set_age(&cache.entry_path(&old), 40 * day);
        set_age(&cache.entry_path(&old_but_read), 40 * day);
        assert_eq!(cache.get::<String>(&old_but_read).as_deref(), Some("v"));

        let dry = cache.prune(30 * day, true).unwrap();
        assert_eq!((dry.removed.entries, dry.kept.entries), (1, 2));
        assert!(cache.entry_path(&old).exists(), "a dry run removes nothing");

        let report = cache.prune(30 * day, false).unwrap();
        assert_eq!((report.removed.entries, report.kept.entries), (1, 2));
        assert!(!cache.entry_path(&old).exists());
        assert!(
            !cache.entry_path(&old).parent().unwrap().exists(),
            "empty shard folder removed"
        );
        assert!(cache.entry_path(&old_but_read).exists());
        assert!(cache.entry_path(&fresh).exists());
    }

    #[test]
    fn prune_removes_old_formats_and_orphaned_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let k = key(stage::SUMMARY, "k", &BASE);
        cache.put(&k, &"v").unwrap();
        let shard = cache.entry_path(&k).parent().unwrap().to_path_buf();
        let old_temp = shard.join(".abc.entry.Xy12Zq.tmp");
        let new_temp = shard.join(".def.entry.Ab34Cd.tmp");
        fs::write(&old_temp, "half").unwrap();
        fs::write(&new_temp, "being written").unwrap();
        set_age(&old_temp, TEMP_GRACE + Duration::from_secs(60));
        let old_format = dir.path().join("v0").join("summary").join("ab");
        fs::create_dir_all(&old_format).unwrap();
        fs::write(old_format.join("ab12.entry"), "old").unwrap();

        let stats = cache.stats().unwrap();
        assert_eq!(
            (
                stats.entries,
                stats.temp_files.entries,
                stats.old_format.entries
            ),
            (1, 2, 1)
        );

        let report = cache.prune(Duration::from_secs(86_400), false).unwrap();
        assert_eq!(report.removed_temp_files.entries, 1);
        assert_eq!(report.removed_old_format.entries, 1);
        assert!(!old_temp.exists());
        assert!(
            new_temp.exists(),
            "a young temporary file may be a write in progress"
        );
        assert!(!dir.path().join("v0").exists());
        assert_eq!(cache.get::<String>(&k).as_deref(), Some("v"));
    }

    #[test]
    fn default_dir_follows_xdg_then_home() {
        let dir = |xdg: Option<&str>, home: Option<&str>| {
            default_dir_from(xdg.map(Into::into), home.map(Into::into))
        };
        assert_eq!(
            dir(Some("/x/cache"), Some("/home/u")).unwrap(),
            PathBuf::from("/x/cache/polybrief")
        );
        assert_eq!(
            dir(None, Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.cache/polybrief")
        );
        assert_eq!(
            dir(Some("relative"), Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.cache/polybrief")
        );
        assert!(matches!(dir(None, None), Err(CacheError::NoDefaultDir)));
    }

    #[test]
    fn unwritable_cache_location_names_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, "").unwrap();
        let message = StageCache::open(file.join("cache"))
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("a-file"), "{message}");
        assert!(message.contains("--cache-dir"), "{message}");
    }
}
