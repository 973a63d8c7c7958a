//! (work in progress: shard)
