//! A stage's pack: the payloads of every entry of the stage that the last run used, in one
//! file, so that the next run reads one file per stage instead of one per article. A
//! nightly re-run over 3,000 articles made some 15,000 entry reads (open, stat, read, touch,
//! close, and a checksum each), about a third of its time; with the packs it makes one read
//! per stage.
//!
//! The entry files stay what the cache is: a pack only holds copies, is written when the run
//! ends (after the last flush, and never flushed itself: a pack a power cut truncates fails
//! its checksum and is ignored, the entries are still there), and is read whole or not at
//! all. Entries keep their meaning for `prune` and `stats`: an entry a pack lists was used
//! when the pack was last written or touched (`StageCache::walk`), so pruning never removes
//! what the packs serve, and a pack unused for as long as an entry would be is removed too.
//!
//! A pack is two files. The base, `DIR/v{FORMAT}/{stage}/pack/entries.pack`, is written
//! whole; the delta, `.../pack/delta.pack`, amends one base (it names the base's length and
//! checksum, and is ignored beside any other): the entries the last run used that the base
//! lacks, and the keys of the base's entries that it did not use. A nightly re-run in which
//! one article changed so writes a delta of a few entries instead of rewriting the base (11
//! MB over 3,000 articles), and the next run's flush does not have to write it out either.
//! When the delta would grow past an eighth of the base, the base is written anew and the
//! delta removed. What the pack lists, for the next run's lookups and for `prune`, is the
//! base's entries and the delta's, less the keys the delta drops; a delta entry stands over
//! the base's entry of the same key.
//!
//! Each file: one JSON header line (cache format, pack format, stage, numbers of entries and
//! of dropped keys, body length and CRC-32; a delta also its base's length and CRC-32), then
//! per entry its key (the 32 bytes its 64 hex digits spell), its payload's length (8 bytes,
//! little-endian) and the payload (the entry file's JSON payload), then a delta's dropped keys
//! (32 bytes each). The checksum only has to catch a torn or damaged file: a pack is a cache of copies.
//! Payloads are served as ranges of the file's one buffer, not copied out.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::output::{replace_file, SyncDir};

/// The folder of a stage's pack, beside the stage's two-digit shard folders.
pub(super) const PACK_DIR: &str = "pack";

const BASE_FILE: &str = "entries.pack";
const DELTA_FILE: &str = "delta.pack";

/// The packs' own layout version (the cache format, in the header too, says what the
/// payloads are). 1: one file, sha256. 2: base and delta, CRC-32. A pack of another layout
/// is ignored (its header does not parse as this one's, or names another version).
const PACK_FORMAT: u32 = 2;

/// Bytes of a key (a sha256 digest).
const KEY_LEN: usize = 32;

/// Per entry: key, payload length.
const ENTRY_OVERHEAD: usize = KEY_LEN + 8;

/// A key, as the 32 bytes its hex digits spell.
pub(super) type Key = [u8; 32];

/// A map by [`Key`]: keys are sha256 digests, so their first 8 bytes are as good a hash as
/// any (and cheaper to take than SipHash's of all 32).
pub(super) type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// A set of [`Key`]s (see [`KeyMap`]).
pub(super) type KeySet = HashSet<Key, BuildHasherDefault<KeyHasher>>;

/// Hashes a [`Key`] as its first 8 bytes.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A key's bytes come in one write (after its length, in `write_usize`).
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    pack: u32,
    stage: String,
    entries: usize,
    dropped: usize,
    len: u64,
    crc32: u32,
    /// A delta's base; `None` in a base.
    base: Option<FileId>,
}

/// Which base a delta amends: its body's length and checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileId {
    len: u64,
    crc32: u32,
}

/// One file of a pack, read and checked.
struct Loaded {
    bytes: Arc<Vec<u8>>,
    id: FileId,
    entries: KeyMap<Range<usize>>,
    dropped: KeySet,
}

/// Which file of the pack a payload was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    Base,
    Delta,
}

/// A payload served from a pack: a range of the file's buffer.
pub(super) struct Packed {
    pub(super) bytes: Arc<Vec<u8>>,
    pub(super) range: Range<usize>,
    pub(super) origin: Origin,
}

impl Packed {
    pub(super) fn payload(&self) -> &[u8] {
        &self.bytes[self.range.clone()]
    }
}

/// What the run used of an entry: the payload it found in the pack, or one it read from the
/// entry file or wrote.
pub(super) enum Used {
    Packed(Origin, Range<usize>),
    Owned(Vec<u8>),
}

/// A stage's pack as read from disk: its base and, when it amends that base, its delta
/// (either may be missing or ignored).
#[derive(Default)]
pub(super) struct Pack {
    base: Option<Loaded>,
    delta: Option<Loaded>,
}

impl Pack {
    /// The pack of the stage whose folder is `stage_dir`; an empty one when there is none or
    /// it is not whole (a truncated or altered file is ignored: the entry files are still
    /// there).
    pub(super) fn read(stage_dir: &Path, format: u32, stage: &str) -> Pack {
        let dir = stage_dir.join(PACK_DIR);
        let Some(base) = read_file(&dir.join(BASE_FILE), format, stage, None) else {
            return Pack::default();
        };
        let delta = read_file(&dir.join(DELTA_FILE), format, stage, Some(base.id));
        Pack {
            base: Some(base),
            delta,
        }
    }

    /// The payload the pack holds for `key` (the delta's over the base's).
    pub(super) fn get(&self, key: &Key) -> Option<Packed> {
        [(&self.delta, Origin::Delta), (&self.base, Origin::Base)]
            .into_iter()
            .find_map(|(file, origin)| {
                let file = file.as_ref()?;
                let range = file.entries.get(key)?.clone();
                Some(Packed {
                    bytes: Arc::clone(&file.bytes),
                    range,
                    origin,
                })
            })
    }

    fn file(&self, origin: Origin) -> Option<&Loaded> {
        match origin {
            Origin::Base => self.base.as_ref(),
            Origin::Delta => self.delta.as_ref(),
        }
    }

    fn payload<'a>(&'a self, used: &'a Used) -> &'a [u8] {
        match used {
            Used::Owned(payload) => payload,
            Used::Packed(origin, range) => {
                let file = self
                    .file(*origin)
                    .expect("served from a file that was read");
                &file.bytes[range.clone()]
            }
        }
    }

    /// The keys the pack lists: what the run that wrote it used.
    fn listed(&self) -> KeySet {
        let mut keys = KeySet::default();
        if let Some(base) = &self.base {
            keys.extend(base.entries.keys().copied());
        }
        if let Some(delta) = &self.delta {
            keys.extend(delta.entries.keys().copied());
            keys.retain(|k| !delta.dropped.contains(k));
        }
        keys
    }
}

/// Reads and checks one file of a pack: a base (`base` is `None`) or the delta of the base
/// `base`. `None` when it is missing, damaged, of another layout, stage or format, or (a
/// delta) amends another base.
fn read_file(path: &Path, format: u32, stage: &str, base: Option<FileId>) -> Option<Loaded> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::debug!("cannot read the cache pack {}: {e}", path.display());
            return None;
        }
    };
    match parse(bytes, format, stage, base) {
        Ok(loaded) => Some(loaded),
        Err(why) => {
            log::debug!(
                "the cache pack {} is not used ({why}); its entries are read one by one",
                path.display()
            );
            None
        }
    }
}

fn parse(bytes: Vec<u8>, format: u32, stage: &str, base: Option<FileId>) -> Result<Loaded, String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header: Header =
        serde_json::from_slice(&bytes[..newline]).map_err(|e| format!("bad header: {e}"))?;
    if header.format != format || header.pack != PACK_FORMAT || header.stage != stage {
        return Err(format!(
            "header says format {} pack {} stage {}",
            header.format, header.pack, header.stage
        ));
    }
    if header.base != base {
        return Err(match base {
            None => "a delta where a base belongs".to_string(),
            Some(_) => "the delta of another base".to_string(),
        });
    }
    let start = newline + 1;
    let body = &bytes[start..];
    if header.len != body.len() as u64 {
        return Err(format!(
            "{} body bytes, header says {}",
            body.len(),
            header.len
        ));
    }
    if crc32fast::hash(body) != header.crc32 {
        return Err("checksum mismatch".into());
    }
    let mut entries = KeyMap::with_capacity_and_hasher(header.entries, Default::default());
    let mut at = start;
    for _ in 0..header.entries {
        let key: Key = bytes
            .get(at..at + KEY_LEN)
            .and_then(|key| key.try_into().ok())
            .ok_or("cut short")?;
        let len = bytes
            .get(at + KEY_LEN..at + ENTRY_OVERHEAD)
            .ok_or("cut short")?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| "an entry is too long")?;
        let payload = at + ENTRY_OVERHEAD..(at + ENTRY_OVERHEAD).saturating_add(len);
        if payload.end > bytes.len() {
            return Err("cut short".into());
        }
        at = payload.end;
        entries.insert(key, payload);
    }
    let mut dropped = KeySet::with_capacity_and_hasher(header.dropped, Default::default());
    for _ in 0..header.dropped {
        let key: Key = bytes
            .get(at..at + KEY_LEN)
            .and_then(|key| key.try_into().ok())
            .ok_or("cut short")?;
        dropped.insert(key);
        at += KEY_LEN;
    }
    if at != bytes.len() {
        return Err("bytes after the last entry".into());
    }
    if entries.len() != header.entries || dropped.len() != header.dropped {
        return Err("a key is listed twice".into());
    }
    Ok(Loaded {
        bytes: Arc::new(bytes),
        id: FileId {
            len: header.len,
            crc32: header.crc32,
        },
        entries,
        dropped,
    })
}

/// What writing a stage's pack at the end of a run did (for tests and the debug log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Written {
    /// The base written anew (and any delta removed).
    Base,
    /// A delta written beside the base, which was kept and marked used.
    Delta,
    /// Nothing written: the pack on disk lists what the run used; it was marked used.
    Unchanged,
    /// The run used nothing of the stage: its pack is removed.
    Removed,
}

/// Writes the pack of what a run `used` of the stage whose folder is `stage_dir` and whose
/// pack was `read`, atomically and without flushing: a delta to `read`'s base when the
/// difference is small, the base anew otherwise, nothing when nothing changed.
pub(super) fn write(
    stage_dir: &Path,
    format: u32,
    stage: &str,
    read: &Pack,
    used: &KeyMap<Used>,
) -> io::Result<Written> {
    let dir = stage_dir.join(PACK_DIR);
    let (base_path, delta_path) = (dir.join(BASE_FILE), dir.join(DELTA_FILE));
    if used.is_empty() {
        remove_if_there(&delta_path)?;
        remove_if_there(&base_path)?;
        return Ok(Written::Removed);
    }
    if let Some(base) = &read.base {
        // The delta: what the run used that the base does not hold as used, and the base's
        // entries it did not use.
        let mut added: Vec<(&Key, &Used)> = used
            .iter()
            .filter(|(_, u)| !matches!(u, Used::Packed(Origin::Base, _)))
            .collect();
        let mut dropped: Vec<&Key> = base
            .entries
            .keys()
            .filter(|k| !used.contains_key(*k))
            .collect();
        let size = added
            .iter()
            .map(|(_, u)| read.payload(u).len() + ENTRY_OVERHEAD)
            .sum::<usize>()
            + dropped
                .iter()
                .map(|k| base.entries[*k].len() + ENTRY_OVERHEAD)
                .sum::<usize>();
        if size as u64 <= base.id.len / 8 {
            let unchanged = match &read.delta {
                Some(delta) => {
                    added.len() == delta.entries.len()
                        && added
                            .iter()
                            .all(|(_, u)| matches!(u, Used::Packed(Origin::Delta, _)))
                        && dropped.len() == delta.dropped.len()
                        && dropped.iter().all(|k| delta.dropped.contains(*k))
                }
                None => added.is_empty() && dropped.is_empty(),
            };
            let written = if unchanged {
                Written::Unchanged
            } else {
                added.sort_unstable_by_key(|(k, _)| **k);
                dropped.sort_unstable();
                let header = Header {
                    format,
                    pack: PACK_FORMAT,
                    stage: stage.to_string(),
                    entries: added.len(),
                    dropped: dropped.len(),
                    len: 0,
                    crc32: 0,
                    base: Some(base.id),
                };
                let entries = added.iter().map(|(k, u)| (*k, read.payload(u)));
                write_file(&delta_path, header, entries, &dropped)?;
                Written::Delta
            };
            // The base stays what the pack lists: it was used now (see `prune`).
            File::options()
                .write(true)
                .open(&base_path)
                .and_then(|f| f.set_modified(SystemTime::now()))?;
            return Ok(written);
        }
    }
    let mut entries: Vec<(&Key, &Used)> = used.iter().collect();
    entries.sort_unstable_by_key(|(k, _)| **k);
    let header = Header {
        format,
        pack: PACK_FORMAT,
        stage: stage.to_string(),
        entries: entries.len(),
        dropped: 0,
        len: 0,
        crc32: 0,
        base: None,
    };
    fs::create_dir_all(&dir)?;
    let entries = entries.iter().map(|(k, u)| (*k, read.payload(u)));
    write_file(&base_path, header, entries, &[])?;
    // A delta left beside names the old base and would be ignored; it is only in the way.
    remove_if_there(&delta_path)?;
    Ok(Written::Base)
}

/// Writes one file of a pack: `header` (its length and checksum filled in here), the
/// entries, the dropped keys.
fn write_file<'a>(
    path: &Path,
    mut header: Header,
    entries: impl Iterator<Item = (&'a Key, &'a [u8])> + Clone,
    dropped: &[&Key],
) -> io::Result<()> {
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    for (key, payload) in entries.clone() {
        crc.update(key);
        crc.update(&(payload.len() as u64).to_le_bytes());
        crc.update(payload);
        len += (ENTRY_OVERHEAD + payload.len()) as u64;
    }
    for key in dropped {
        crc.update(*key);
        len += KEY_LEN as u64;
    }
    header.len = len;
    header.crc32 = crc.finalize();
    let header = serde_json::to_vec(&header).map_err(io::Error::other)?;
    replace_file(path, SyncDir::Deferred, |file| {
        let mut out = BufWriter::with_capacity(1 << 16, file);
        out.write_all(&header)?;
        out.write_all(b"\n")?;
        for (key, payload) in entries {
            out.write_all(key)?;
            out.write_all(&(payload.len() as u64).to_le_bytes())?;
            out.write_all(payload)?;
        }
        for key in dropped {
            out.write_all(*key)?;
        }
        out.flush()
    })
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The path of the base of the pack of the stage at `stage_dir` (whose modification time is
/// when the pack was last used).
pub(super) fn path(stage_dir: &Path) -> PathBuf {
    stage_dir.join(PACK_DIR).join(BASE_FILE)
}

/// The keys (as hex) that the pack of the stage at `stage_dir` lists, and when it was last
/// used; `None` without a readable pack.
pub(super) fn listed(
    stage_dir: &Path,
    format: u32,
    stage: &str,
) -> Option<(HashSet<String>, SystemTime)> {
    let used = fs::metadata(path(stage_dir)).ok()?.modified().ok()?;
    let pack = Pack::read(stage_dir, format, stage);
    pack.base.as_ref()?;
    let keys = pack.listed().iter().map(hex::encode).collect();
    Some((keys, used))
}

/// Removes the pack of the stage at `stage_dir`, both files.
pub(super) fn remove(stage_dir: &Path) {
    let dir = stage_dir.join(PACK_DIR);
    let _ = fs::remove_file(dir.join(DELTA_FILE));
    let _ = fs::remove_file(dir.join(BASE_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Key {
        let mut key = [0; 32];
        key[24..].copy_from_slice(&(i as u64).to_be_bytes());
        key
    }

    fn payload(i: usize) -> Vec<u8> {
        format!("[\"payload {i}\"]").into_bytes()
    }

    /// What a run used: entries `range`, as read from the pack where it holds them.
    fn used_of(pack: &Pack, range: Range<usize>) -> KeyMap<Used> {
        range
            .map(|i| {
                let used = match pack.get(&key(i)) {
                    Some(p) => Used::Packed(p.origin, p.range),
                    None => Used::Owned(payload(i)),
                };
                (key(i), used)
            })
            .collect()
    }

    /// The pack's contents, as a run would look them up.
    fn contents(pack: &Pack, range: Range<usize>) -> Vec<Option<Vec<u8>>> {
        range
            .map(|i| pack.get(&key(i)).map(|p| p.payload().to_vec()))
            .collect()
    }

    fn listed_indices(dir: &Path) -> Vec<usize> {
        let (keys, _) = listed(dir, 1, "summarize").unwrap();
        let mut listed: Vec<usize> = keys
            .iter()
            .map(|k| usize::from_str_radix(k, 16).unwrap())
            .collect();
        listed.sort();
        listed
    }

    #[test]
    fn a_pack_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let empty = Pack::read(dir.path(), 1, "summarize");
        assert_eq!(
            write(dir.path(), 1, "summarize", &empty, &used_of(&empty, 0..3)).unwrap(),
            Written::Base
        );
        let read_back = Pack::read(dir.path(), 1, "summarize");
        assert_eq!(
            contents(&read_back, 0..4),
            vec![Some(payload(0)), Some(payload(1)), Some(payload(2)), None]
        );
        assert_eq!(listed_indices(dir.path()), vec![0, 1, 2]);
    }

    #[test]
    fn a_small_change_writes_a_delta_and_no_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let empty = Pack::read(dir.path(), 1, "summarize");
        write(dir.path(), 1, "summarize", &empty, &used_of(&empty, 0..100)).unwrap();
        let base = fs::read(path(dir.path())).unwrap();

        // Entry 0 no longer used, 100 new.
        let first = Pack::read(dir.path(), 1, "summarize");
        let used = used_of(&first, 1..101);
        assert_eq!(
            write(dir.path(), 1, "summarize", &first, &used).unwrap(),
            Written::Delta
        );
        assert_eq!(
            fs::read(path(dir.path())).unwrap(),
            base,
            "the base is kept"
        );
        let second = Pack::read(dir.path(), 1, "summarize");
        assert_eq!(contents(&second, 100..101), vec![Some(payload(100))]);
        assert_eq!(
            contents(&second, 0..1),
            vec![Some(payload(0))],
            "a dropped entry is still served while the base holds it"
        );
        assert_eq!(listed_indices(dir.path()), (1..101).collect::<Vec<_>>());

        // The same use again: nothing to write.
        let used = used_of(&second, 1..101);
        assert_eq!(
            write(dir.path(), 1, "summarize", &second, &used).unwrap(),
            Written::Unchanged
        );
        // Entry 0 used again: the delta no longer drops it.
        let used = used_of(&second, 0..101);
        assert_eq!(
            write(dir.path(), 1, "summarize", &second, &used).unwrap(),
            Written::Delta
        );
        assert_eq!(listed_indices(dir.path()), (0..101).collect::<Vec<_>>());

        // A large change: the base anew, the delta gone.
        let third = Pack::read(dir.path(), 1, "summarize");
        let used = used_of(&third, 50..200);
        assert_eq!(
            write(dir.path(), 1, "summarize", &third, &used).unwrap(),
            Written::Base
        );
        assert!(!dir.path().join(PACK_DIR).join(DELTA_FILE).exists());
        let fourth = Pack::read(dir.path(), 1, "summarize");
        assert_eq!(contents(&fourth, 0..1), vec![None]);
        assert_eq!(contents(&fourth, 199..200), vec![Some(payload(199))]);
        assert_eq!(listed_indices(dir.path()), (50..200).collect::<Vec<_>>());

        // Nothing used: no pack.
        assert_eq!(
            write(dir.path(), 1, "summarize", &fourth, &KeyMap::default()).unwrap(),
            Written::Removed
        );
        assert!(listed(dir.path(), 1, "summarize").is_none());
    }

    #[test]
    fn a_delta_beside_another_base_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let empty = Pack::read(dir.path(), 1, "summarize");
        write(dir.path(), 1, "summarize", &empty, &used_of(&empty, 0..100)).unwrap();
        let first = Pack::read(dir.path(), 1, "summarize");
        write(dir.path(), 1, "summarize", &first, &used_of(&first, 0..101)).unwrap();
        let delta = fs::read(dir.path().join(PACK_DIR).join(DELTA_FILE)).unwrap();
        // Another base (as when a run was killed between writing a base and removing the
        // delta).
        write(dir.path(), 1, "summarize", &empty, &used_of(&empty, 0..99)).unwrap();
        fs::write(dir.path().join(PACK_DIR).join(DELTA_FILE), delta).unwrap();
        let pack = Pack::read(dir.path(), 1, "summarize");
        assert_eq!(contents(&pack, 99..101), vec![None, None]);
        assert_eq!(listed_indices(dir.path()), (0..99).collect::<Vec<_>>());
    }

    #[test]
    fn a_pack_that_is_cut_short_altered_or_of_another_stage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let empty = Pack::read(dir.path(), 1, "summarize");
        write(dir.path(), 1, "summarize", &empty, &used_of(&empty, 0..100)).unwrap();
        let first = Pack::read(dir.path(), 1, "summarize");
        write(dir.path(), 1, "summarize", &first, &used_of(&first, 0..101)).unwrap();
        let read = |format, stage| Pack::read(dir.path(), format, stage);
        assert!(read(2, "summarize").base.is_none(), "another format");
        assert!(read(1, "translate").base.is_none(), "another stage");
        for file in [BASE_FILE, DELTA_FILE] {
            let at = dir.path().join(PACK_DIR).join(file);
            let whole = fs::read(&at).unwrap();
            fs::write(&at, &whole[..whole.len() - 3]).unwrap();
            let pack = read(1, "summarize");
            assert!(pack.get(&key(100)).is_none(), "{file} cut short");
            let mut flipped = whole.clone();
            let last = flipped.len() - 2;
            flipped[last] ^= 1;
            fs::write(&at, &flipped).unwrap();
            let pack = read(1, "summarize");
            assert!(pack.get(&key(100)).is_none(), "{file}: a flipped bit");
            fs::write(&at, &whole).unwrap();
            assert!(read(1, "summarize").get(&key(100)).is_some());
        }
        // A pack of the first layout (sha256, no delta) is ignored, not misread.
        let at = path(dir.path());
        let old = b"{\"format\":1,\"stage\":\"summarize\",\"entries\":0,\"len\":0,\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}\n";
        fs::write(&at, old).unwrap();
        assert!(read(1, "summarize").base.is_none(), "the first layout");
        assert!(Pack::read(&dir.path().join("none"), 1, "summarize")
            .base
            .is_none());
    }
}
