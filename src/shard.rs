//! `--shard K/N`: which share of the inputs one machine of a batch job processes.
//!
//! K is 0-based (`0/4` … `3/4`), so it can be passed straight from Kubernetes' indexed Jobs
//! (`JOB_COMPLETION_INDEX` runs 0..N-1) and from Slurm job arrays declared `--array=0-(N-1)`
//! (`SLURM_ARRAY_TASK_ID`).
//!
//! An article belongs to shard `hash(article id) mod N`, with a fixed hash (sha256), so the
//! assignment is the same on every machine and every polybrief version, and adding files to
//! the folder never moves an existing article to another shard. (Assigning by position in the
//! sorted file list would reshuffle almost everything whenever a file is added.) Changing N
//! does reassign articles, which costs nothing: shards share one content-addressed cache, so
//! work done under the old N is found by whichever shard owns the article now.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::article::ArticleId;

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    #[cfg(test)]
    /// Shard `index` of `count`; `None` unless 0 ≤ index < count.
    pub(crate) fn new(index: u32, count: u32) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    #[cfg(test)]
    /// The whole input (`0/1`).
    pub(crate) fn all() -> Shard {
        Shard { index: 0, count: 1 }
    }

    /// Whether this shard processes the article `id`.
    pub(crate) fn owns(&self, id: &ArticleId) -> bool {
        self.count == 1 || shard_of(id.as_str(), self.count) == self.index
    }
}

/// Which of `count` shards `id` belongs to.
fn shard_of(id: &str, count: u32) -> u32 {
    // Domain-separated so the shard is independent of the bits the id itself was cut from.
    let digest = Sha256::new()
        .chain_update(b"polybrief shard\0")
        .chain_update(id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // The modulo bias of 2^64 mod N is below 1e-9 for any realistic N.
    (u64::from_be_bytes(first) % u64::from(count)) as u32
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `K/N`, 0-based: `0/4` is the first of four shards.
    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = || {
            format!(
                "`{s}` is not a shard: use K/N with 0 <= K < N, e.g. `--shard 0/4` … `--shard 3/4` \
                 (K is 0-based, like JOB_COMPLETION_INDEX and SLURM_ARRAY_TASK_ID with --array=0-3)"
            )
        };
        let (k, n) = s.trim().split_once('/').ok_or_else(usage)?;
        let k: u32 = k.trim().parse().map_err(|_| usage())?;
        let n: u32 = n.trim().parse().map_err(|_| usage())?;
        if n == 0 {
            return Err(format!("`{s}`: the number of shards N must be at least 1"));
        }
        if k >= n {
            return Err(format!(
                "`{s}`: shard index {k} is out of range for {n} shards; K is 0-based, so the \
                 last of {n} shards is {}/{n}",
                n - 1
            ));
        }
        Ok(Shard { index: k, count: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<ArticleId> {
        (0..n)
            .map(|i| ArticleId::from_text(&format!("article number {i}")))
            .collect()
    }

    #[test]
    fn parse_accepts_zero_based_k_of_n_and_rejects_the_rest() {
        assert_eq!("0/4".parse::<Shard>().unwrap(), Shard::new(0, 4).unwrap());
        assert_eq!(
            " 3 / 4 ".parse::<Shard>().unwrap(),
            Shard::new(3, 4).unwrap()
        );
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::all());
        for bad in ["4/4", "1/0", "0/0", "-1/4", "1", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let message = "4/4".parse::<Shard>().unwrap_err();
        assert!(message.contains("3/4"), "{message}");
        assert_eq!(Shard::new(2, 5).unwrap().to_string(), "2/5");
    }

    #[test]
    fn shards_partition_the_inputs_each_id_exactly_once() {
        let ids = ids(2000);
        for n in [1u32, 2, 3, 7, 16] {
            let shards: Vec<Shard> = (0..n).map(|k| Shard::new(k, n).unwrap()).collect();
            for id in &ids {
                let owners = shards.iter().filter(|s| s.owns(id)).count();
                assert_eq!(owners, 1, "{id} with N={n}");
            }
            // Roughly even: every shard gets a share within 30% of the mean.
            let mean = ids.len() as f64 / f64::from(n);
            for shard in &shards {
                let share = ids.iter().filter(|id| shard.owns(id)).count() as f64;
                assert!(
                    (share - mean).abs() < 0.3 * mean,
                    "{shard}: {share} vs {mean}"
                );
            }
        }
    }

    #[test]
    fn assignment_depends_on_the_id_not_on_what_else_is_in_the_folder() {
        let shard = Shard::new(1, 4).unwrap();
        let before: Vec<bool> = ids(100).iter().map(|id| shard.owns(id)).collect();
        let after: Vec<bool> = ids(300).iter().take(100).map(|id| shard.owns(id)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn assignment_is_pinned_across_versions() {
        // Machines running different builds in one job must agree; this pins the hash.
        let id = ArticleId::from_text("Hochwasser in Bayern");
        let owner: Vec<u32> = (0..8)
            .filter(|&k| Shard::new(k, 8).unwrap().owns(&id))
            .collect();
        assert_eq!(owner, vec![shard_of(id.as_str(), 8)]);
        assert_eq!(shard_of("0000000000000000", 1000), PINNED_SHARD_OF_ZEROS);
    }

    /// `shard_of("0000000000000000", 1000)`, computed independently with Python's hashlib:
    /// `int.from_bytes(sha256(b"polybrief shard\0" + b"0"*16).digest()[:8], "big") % 1000`.
    const PINNED_SHARD_OF_ZEROS: u32 = 955;
}
