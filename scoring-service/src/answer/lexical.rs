//! The word-matching scorer this crate used before meaning: an expected point counted as covered
//! when half its content words appeared anywhere in the answer. Kept only as the baseline the
//! evaluation command compares against; the service never scores with it.

use std::collections::HashSet;

use super::{AnswerAnalysis, AnswerInput, MIN_WORDS, round1};
use crate::text;

/// Share of a point's content words that had to appear.
const POINT_COVERAGE: f32 = 0.5;

/// Relevance and depth as the word-matching scorer computed them (clarity is not compared).
pub fn analyze_by_words(input: &AnswerInput) -> AnswerAnalysis {
    let words = text::words(&input.transcript);
    if words.len() < MIN_WORDS {
        return AnswerAnalysis::default();
    }
    let stems = text::content_stems(&input.transcript);
    let set: HashSet<&str> = stems.iter().map(String::as_str).collect();
    let share = |text: &str| {
        let wanted: HashSet<String> = text::content_stems(text).into_iter().collect();
        let hits = wanted.iter().filter(|s| set.contains(s.as_str())).count();
        (!wanted.is_empty()).then(|| hits as f32 / wanted.len() as f32)
    };
    let covered = input
        .expected_points
        .iter()
        .filter(|p| share(p).is_some_and(|s| s >= POINT_COVERAGE))
        .count();
    let question = share(&input.question).unwrap_or(0.0);
    let relevance = if input.expected_points.is_empty() {
        (question * 1.5).min(1.0)
    } else {
        0.8 * covered as f32 / input.expected_points.len() as f32 + 0.2 * question
    };
    let content = stems.len() as f32;
    let markers = text::reasoning_markers(&input.transcript);
    let depth = 0.5 * (content / 40.0).min(1.0)
        + 0.3 * (markers as f32 / 3.0).min(1.0)
        + 0.2 * (set.len() as f32 / content.max(1.0) / 0.6).min(1.0);
    AnswerAnalysis {
        relevance: round1(relevance * 100.0),
        depth: round1(depth * 100.0),
        word_count: words.len() as u32,
        sufficient_data: true,
        ..Default::default()
    }
}
