//! The sentence encoder: all-MiniLM-L6-v2 (a 6-layer BERT) run in candle, mean-pooled over the
//! real tokens and L2-normalised, exactly as sentence-transformers builds the model's embeddings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

/// Tokens per sentence the model was trained with (`max_seq_length` in its sentence-transformers
/// folder); longer sentences are cut there, as the original runtime cuts them.
pub const MAX_TOKENS: usize = 256;
/// Most sentences embedded in one forward pass.
const BATCH: usize = 16;
/// Most padding tokens a batch may add to its shortest sentence: a pass per few tokens of length
/// costs less than the padding it saves.
const PAD_SLACK: usize = 3;

/// Texts remembered with their embeddings (questions and expected points recur for every
/// candidate); past this many the memory starts over.
const CACHED_TEXTS: usize = 4096;

/// A sentence's meaning as a unit vector: the dot product of two is their cosine similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Cosine similarity, -1..1 (both vectors are unit length).
    pub fn similarity(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }

    /// The meaning of several texts read together: their embeddings averaged with the given
    /// weights, as unit length again. Mean pooling makes a sentence's embedding close to this
    /// mean over its clauses, weighted by their length.
    pub fn weighted_mean<'a>(parts: impl IntoIterator<Item = (&'a Embedding, f32)>) -> Self {
        let mut sum: Vec<f32> = Vec::new();
        for (e, w) in parts {
            sum.resize(e.0.len(), 0.0);
            sum.iter_mut().zip(&e.0).for_each(|(s, v)| *s += w * v);
        }
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        Self(sum.into_iter().map(|v| v / norm).collect())
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

/// What can go wrong loading or running the model; each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a BERT configuration")]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the tokenizer failed")]
    Tokenizer(#[source] tokenizers::Error),
    #[error("the sentence model failed")]
    Tensor(#[from] candle_core::Error),
}

/// The loaded model and its tokenizer. Loaded once at start and shared; `embed` is pure CPU work,
/// so callers run it off the async runtime.
pub struct SentenceEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    cache: Mutex<HashMap<String, Embedding>>,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder").finish_non_exhaustive()
    }
}

impl SentenceEncoder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` (as
    /// `scripts/fetch-assets.sh` leaves them).
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ModelError::Read { path, source })
        };
        let config_path = dir.join("config.json");
        let config: Config =
            serde_json::from_slice(&read("config.json")?).map_err(|source| ModelError::Config {
                path: config_path,
                source,
            })?;
        let mut tokenizer =
            Tokenizer::from_bytes(read("tokenizer.json")?).map_err(ModelError::Tokenizer)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(ModelError::Tokenizer)?;
        // tokenizer.json pads every sentence to 128 tokens; batches are padded here instead, to
        // their own longest sentence.
        tokenizer.with_padding(None);
        let device = Device::Cpu;
        let weights = read("model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            device,
            cache: Mutex::default(),
        })
    }

    /// The token ids the model sees for one sentence (with `[CLS]` and `[SEP]`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(ModelError::Tokenizer)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// One embedding per text, in the order given.
    #[tracing::instrument(name = "model.sentences", skip_all, fields(texts = texts.len()))]
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, ModelError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(ModelError::Tokenizer)?;
        // Work grows with the padded length of a batch, so texts are grouped by token count:
        // sorted, then cut into batches whose longest text is at most a few tokens over the
        // shortest. Every token of padding costs as much as a real one.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut out: Vec<Option<Embedding>> = vec![None; texts.len()];
        let mut start = 0;
        while start < order.len() {
            let shortest = encodings[order[start]].get_ids().len();
            let mut end = start + 1;
            while end < order.len()
                && end - start < BATCH
                && encodings[order[end]].get_ids().len() <= shortest + PAD_SLACK
            {
                end += 1;
            }
            let batch: Vec<&[u32]> = order[start..end]
                .iter()
                .map(|&i| encodings[i].get_ids())
                .collect();
            for (&i, e) in order[start..end].iter().zip(self.embed_batch(&batch)?) {
                out[i] = Some(e);
            }
            start = end;
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every text embedded"))
            .collect())
    }

    /// [`embed`](Self::embed) for texts that recur (a question, its expected points): each is
    /// computed once and remembered.
    pub fn embed_cached(&self, texts: &[&str]) -> Result<Vec<Embedding>, ModelError> {
        let missing: Vec<&str> = {
            let cache = self.cache.lock().expect("cache lock");
            texts
                .iter()
                .copied()
                .filter(|t| !cache.contains_key(*t))
                .collect()
        };
        let computed = self.embed(&missing)?;
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() + computed.len() > CACHED_TEXTS {
            cache.clear();
        }
        let fresh: HashMap<&str, Embedding> = missing.into_iter().zip(computed).collect();
        for (text, e) in &fresh {
            cache.insert(text.to_string(), e.clone());
        }
        Ok(texts
            .iter()
            .map(|t| {
                fresh
                    .get(t)
                    .or_else(|| cache.get(*t))
                    .cloned()
                    .expect("every text embedded")
            })
            .collect())
    }

    /// Token id sequences of close lengths, padded here to the longest.
    fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<Embedding>, ModelError> {
        let len = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for tokens in batch {
            ids.extend_from_slice(tokens);
            ids.extend(std::iter::repeat_n(0u32, len - tokens.len()));
            mask.extend(std::iter::repeat_n(1u32, tokens.len()));
            mask.extend(std::iter::repeat_n(0u32, len - tokens.len()));
        }
        let shape = (batch.len(), len);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (batch, len, 384)
        // Mean over the real tokens only: padding must not dilute a short sentence.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.to_vec2::<f32>()?.into_iter().map(Embedding).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meaning::test_encoder;

    #[test]
    fn recurring_texts_are_embedded_once_and_the_same() {
        let encoder = test_encoder();
        let texts = ["cache popular redirects", "a point only this test uses"];
        let fresh = encoder.embed(&texts).unwrap();
        assert_eq!(encoder.embed_cached(&texts).unwrap(), fresh);
        assert!(encoder.cache.lock().unwrap().contains_key(texts[1]));
        assert_eq!(encoder.embed_cached(&texts[1..]).unwrap(), fresh[1..]);
    }

    #[test]
    fn a_sentence_means_about_the_weighted_mean_of_its_clauses() {
        let encoder = test_encoder();
        let clauses = [
            "We keep the popular links in memory",
            "but the database stores every code",
        ];
        let whole = format!("{}, {}.", clauses[0], clauses[1]);
        let e = encoder.embed(&[&whole, clauses[0], clauses[1]]).unwrap();
        let mean = Embedding::weighted_mean([(&e[1], 7.0), (&e[2], 6.0)]);
        let unrelated = encoder.embed(&["I enjoy hiking on weekends."]).unwrap();
        assert!((mean.similarity(&mean) - 1.0).abs() < 1e-5, "unit length");
        let close = mean.similarity(&e[0]);
        assert!(close > 0.85, "{close}");
        assert!(close > unrelated[0].similarity(&e[0]) + 0.5);
    }
}
