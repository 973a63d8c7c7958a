//! `polybrief run`: the main job. Wires the stages ingest → detect → segment → translate →
//! summarize → synthesize → render, with the stage cache in front of every expensive stage,
//! the output lock around the write, and models loaded only when a cache miss needs them.
