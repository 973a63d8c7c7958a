//! (work in progress: models/llm)
