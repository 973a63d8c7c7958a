//! A stage's pack: one file holding the payloads of every entry of the stage that the last
//! run used, so that the next run reads one file per stage instead of one per article. A
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
//! Layout: `DIR/v{FORMAT}/{stage}/pack/entries.pack`: one JSON header line (format, stage,
//! number of entries, body length and sha256), then per entry its 64 hex digits of key, its
//! payload's length (8 bytes, little-endian) and the payload (the entry file's JSON payload).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::output::{replace_file, SyncDir};

/// The folder of a stage's pack, beside the stage's two-digit shard folders.
pub(super) const PACK_DIR: &str = "pack";

const PACK_FILE: &str = "entries.pack";

/// Hex digits of a key.
const KEY_LEN: usize = 64;

#[derive(Serialize, Deserialize)]
struct PackHeader {
    format: u32,
    stage: String,
    entries: usize,
    len: u64,
    sha256: String,
}

/// Where the pack of the stage whose folder is `stage_dir` lives.
pub(super) fn path(stage_dir: &Path) -> PathBuf {
    stage_dir.join(PACK_DIR).join(PACK_FILE)
}

/// The payloads a pack holds, by key; `None` when there is no pack or it is not whole (a
/// truncated or altered pack is ignored: the entry files are still there).
pub(super) fn read(path: &Path, format: u32, stage: &str) -> Option<HashMap<String, Vec<u8>>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::debug!("cannot read the cache pack {}: {e}", path.display());
            return None;
        }
    };
    let parsed = parse(&bytes, format, stage);
    if let Err(why) = &parsed {
        log::debug!(
            "the cache pack {} is not used ({why}); its entries are read one by one",
            path.display()
        );
    }
    parsed.ok()
}

fn parse(bytes: &[u8], format: u32, stage: &str) -> Result<HashMap<String, Vec<u8>>, String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let (header, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let header: PackHeader =
        serde_json::from_slice(header).map_err(|e| format!("bad header: {e}"))?;
    if header.format != format || header.stage != stage {
        return Err(format!(
            "header says format {} stage {}",
            header.format, header.stage
        ));
    }
    if header.len != body.len() as u64 {
        return Err(format!(
            "{} body bytes, header says {}",
            body.len(),
            header.len
        ));
    }
    if hex::encode(Sha256::digest(body)) != header.sha256 {
        return Err("checksum mismatch".into());
    }
    let mut entries = HashMap::with_capacity(header.entries);
    let mut rest = body;
    while !rest.is_empty() {
        if rest.len() < KEY_LEN + 8 {
            return Err("cut short".into());
        }
        let key = std::str::from_utf8(&rest[..KEY_LEN]).map_err(|_| "a key is not hex")?;
        let mut len = [0u8; 8];
        len.copy_from_slice(&rest[KEY_LEN..KEY_LEN + 8]);
        let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| "an entry is too long")?;
        let payload = rest
            .get(KEY_LEN + 8..KEY_LEN + 8 + len)
            .ok_or("cut short")?;
        entries.insert(key.to_string(), payload.to_vec());
        rest = &rest[KEY_LEN + 8 + len..];
    }
    if entries.len() != header.entries {
        return Err(format!(
            "{} entries, header says {}",
            entries.len(),
            header.entries
        ));
    }
    Ok(entries)
}

/// The keys a pack lists (for `prune` and `stats`), or none.
pub(super) fn keys(path: &Path, format: u32, stage: &str) -> Vec<String> {
    read(path, format, stage)
        .map(|entries| entries.into_keys().collect())
        .unwrap_or_default()
}

/// Writes the pack of `entries` (key → payload) atomically, without flushing it.
pub(super) fn write(
    path: &Path,
    format: u32,
    stage: &str,
    entries: &BTreeMap<String, Vec<u8>>,
) -> io::Result<()> {
    let mut body = Vec::with_capacity(entries.values().map(|p| p.len() + KEY_LEN + 8).sum());
    for (key, payload) in entries {
        if key.len() != KEY_LEN {
            continue;
        }
        body.extend_from_slice(key.as_bytes());
        body.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        body.extend_from_slice(payload);
    }
    let header = PackHeader {
        format,
        stage: stage.to_string(),
        entries: entries.keys().filter(|k| k.len() == KEY_LEN).count(),
        len: body.len() as u64,
        sha256: hex::encode(Sha256::digest(&body)),
    };
    let header = serde_json::to_vec(&header).map_err(io::Error::other)?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    replace_file(path, SyncDir::Deferred, |file| {
        file.write_all(&header)?;
        file.write_all(b"\n")?;
        file.write_all(&body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> BTreeMap<String, Vec<u8>> {
        (0..3)
            .map(|i| {
                (
                    format!("{i:064x}"),
                    format!("[\"payload {i}\"]").into_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn a_pack_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let at = path(dir.path());
        write(&at, 1, "summarize", &entries()).unwrap();
        let read_back = read(&at, 1, "summarize").unwrap();
        assert_eq!(read_back.into_iter().collect::<BTreeMap<_, _>>(), entries());
        assert_eq!(keys(&at, 1, "summarize").len(), 3);
    }

    #[test]
    fn a_pack_that_is_cut_short_altered_or_of_another_stage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let at = path(dir.path());
        write(&at, 1, "summarize", &entries()).unwrap();
        assert!(read(&at, 2, "summarize").is_none(), "another format");
        assert!(read(&at, 1, "translate").is_none(), "another stage");
        let whole = fs::read(&at).unwrap();
        fs::write(&at, &whole[..whole.len() - 3]).unwrap();
        assert!(read(&at, 1, "summarize").is_none(), "cut short");
        let mut flipped = whole.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        fs::write(&at, &flipped).unwrap();
        assert!(read(&at, 1, "summarize").is_none(), "a flipped bit");
        assert!(read(&dir.path().join("none"), 1, "summarize").is_none());
    }
}
