//! (work in progress: commands/translate)
