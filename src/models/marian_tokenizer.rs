//! (work in progress: models/marian_tokenizer)
