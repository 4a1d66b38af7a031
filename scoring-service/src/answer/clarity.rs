//! Clarity: starts from full marks and takes off for fillers, sentence length, pace, and for
//! keywords recited instead of sentences.

use super::statements::{Form, Statement};
use super::{AnswerInput, PACE_RANGE, SENTENCE_RANGE};

pub(super) struct Clarity {
    /// 0..100.
    pub score: f32,
    pub wpm: Option<f32>,
    pub notes: Vec<String>,
}

/// Points off when every word is a recited keyword: a list communicates no reasoning.
const LIST_PENALTY: f32 = 60.0;

pub(super) fn clarity(
    input: &AnswerInput,
    statements: &[Statement],
    word_count: usize,
    fillers: usize,
) -> Clarity {
    let mut notes = Vec::new();
    let filler_rate = fillers as f32 / word_count as f32;
    let filler_penalty = (filler_rate * 400.0).min(40.0);
    if fillers > 0 {
        notes.push(format!(
            "{fillers} filler word(s) ({:.0}% of words).",
            filler_rate * 100.0
        ));
    }
    // Statements keep their sentence's index, in order: the last one's tells how many there are.
    let sentences = statements.last().map_or(0, |s| s.sentence + 1);
    let mean_sentence = word_count as f32 / sentences.max(1) as f32;
    let sentence_penalty = if mean_sentence > SENTENCE_RANGE.1 {
        ((mean_sentence - SENTENCE_RANGE.1) * 1.5).min(30.0)
    } else if mean_sentence < SENTENCE_RANGE.0 {
        ((SENTENCE_RANGE.0 - mean_sentence) * 3.0).min(20.0)
    } else {
        0.0
    };
    if sentence_penalty > 0.0 {
        notes.push(format!(
            "Sentences average {mean_sentence:.0} words; {}-{} reads most clearly.",
            SENTENCE_RANGE.0, SENTENCE_RANGE.1
        ));
    }
    let listed: usize = statements
        .iter()
        .filter(|s| s.piece && s.form == Form::KeywordList)
        .map(|s| s.word_count)
        .sum();
    let list_share = listed as f32 / word_count.max(1) as f32;
    if listed > 0 {
        notes.push(format!(
            "{:.0}% of the answer is a list of keywords, not sentences: listed terms do not show how they fit together, so they do not count as covering a point.",
            list_share * 100.0
        ));
    }
    let wpm = input
        .duration_secs
        .filter(|d| *d > 0.5)
        .map(|d| word_count as f32 / d * 60.0);
    let pace_penalty = match wpm {
        Some(w) if w > PACE_RANGE.1 => ((w - PACE_RANGE.1) * 0.5).min(30.0),
        Some(w) if w < PACE_RANGE.0 => ((PACE_RANGE.0 - w) * 0.5).min(30.0),
        _ => 0.0,
    };
    if let Some(w) = wpm.filter(|_| pace_penalty > 0.0) {
        notes.push(format!(
            "Pace {w:.0} words/min; {}-{} is easiest to follow.",
            PACE_RANGE.0, PACE_RANGE.1
        ));
    }
    let penalty = filler_penalty + sentence_penalty + pace_penalty + list_share * LIST_PENALTY;
    Clarity {
        score: (100.0 - penalty).clamp(0.0, 100.0),
        wpm,
        notes,
    }
}
