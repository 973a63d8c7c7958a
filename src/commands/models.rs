//! (work in progress: commands/models)
