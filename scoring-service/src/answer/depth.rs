//! Depth: substance, reasoning and evidence, and variety, counted only in what the candidate
//! affirms on the question's topic: a long story about something else, a recited list or a
//! string of rejections shows no depth on the question.

use std::collections::HashSet;

use super::statements::Statement;
use crate::text;

pub(super) struct Depth {
    /// 0..1.
    pub score: f32,
    pub notes: Vec<String>,
}

/// Content words on topic that make a full answer's substance (about a minute of speech).
const FULL_SUBSTANCE: f32 = 40.0;

pub(super) fn depth(statements: &[Statement], on_topic: &[bool], word_count: usize) -> Depth {
    let counted: Vec<&str> = statements
        .iter()
        .zip(on_topic)
        .filter(|(s, on)| s.piece && **on)
        .map(|(s, _)| s.text.as_str())
        .collect();
    let joined = counted.join(". ");
    let stems = text::content_stems(&joined);
    let content = stems.len() as f32;
    let substance = (content / FULL_SUBSTANCE).min(1.0);
    let markers = text::reasoning_markers(&joined);
    let evidence = (markers as f32 / 3.0).min(1.0);
    let distinct: HashSet<&String> = stems.iter().collect();
    let variety = if content > 0.0 {
        (distinct.len() as f32 / content / 0.6).min(1.0)
    } else {
        0.0
    };
    let mut notes = Vec::new();
    if counted.is_empty() {
        notes.push(
            "No statement on the question's topic in sentences of the candidate's own: depth is 0."
                .into(),
        );
    } else {
        if markers == 0 {
            notes.push(
                "No reasoning or concrete example (because, for example, numbers) to show depth."
                    .into(),
            );
        }
        if substance < 0.5 {
            let off = statements.iter().filter(|s| s.piece).count() - counted.len();
            let mut note = format!(
                "Little on-topic substance ({} content words of {word_count} words)",
                content as usize
            );
            if off > 0 {
                note.push_str(&format!(
                    "; {off} statement(s) off topic, listed or negated were not counted"
                ));
            }
            notes.push(note + ".");
        }
    }
    Depth {
        score: 0.5 * substance + 0.3 * evidence + 0.2 * variety,
        notes,
    }
}
