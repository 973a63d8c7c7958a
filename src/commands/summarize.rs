//! (work in progress: commands/summarize)
