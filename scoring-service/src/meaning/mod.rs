//! Meaning: sentences as vectors from a pretrained sentence model, so that "a counter in base 62"
//! and "generate unique short keys" can be recognised as the same idea in different words.
//!
//! - [`encoder`]: the model (all-MiniLM-L6-v2, fetched by `scripts/fetch-assets.sh`) and its
//!   embeddings.

pub mod encoder;

pub use encoder::{Embedding, ModelError, SentenceEncoder};

/// Where the fetch script puts the sentence model (see `iv_platform::assets`).
pub fn default_model_dir() -> std::path::PathBuf {
    iv_platform::assets::models_dir().join("all-minilm-l6-v2")
}

/// The model, loaded once for all of a test binary's tests.
#[cfg(test)]
pub(crate) fn test_encoder() -> std::sync::Arc<SentenceEncoder> {
    static ENCODER: std::sync::OnceLock<std::sync::Arc<SentenceEncoder>> =
        std::sync::OnceLock::new();
    ENCODER
        .get_or_init(|| {
            std::sync::Arc::new(
                SentenceEncoder::load(&default_model_dir())
                    .expect("the sentence model (run scripts/fetch-assets.sh)"),
            )
        })
        .clone()
}
