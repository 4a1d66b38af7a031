//! Scoring one answer: relevance (does it cover what the question asks), clarity (fillers,
//! sentence length, pace) and depth (substance, reasoning, evidence), each 0..100 with the
//! counts behind it.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::text;

/// Fewer words than this cannot be assessed: the analysis says so instead of scoring.
pub const MIN_WORDS: usize = 5;
/// Speaking pace listeners follow comfortably, words per minute.
pub const PACE_RANGE: (f32, f32) = (110.0, 170.0);
/// Sentence length (words) that reads and sounds clear.
pub const SENTENCE_RANGE: (f32, f32) = (8.0, 25.0);
/// An expected point counts as covered when this share of its content words appears.
pub const POINT_COVERAGE: f32 = 0.5;

/// What is needed to score an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnswerInput {
    #[serde(default)]
    pub question_id: String,
    pub question: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub expected_points: Vec<String>,
    #[serde(alias = "answer")]
    pub transcript: String,
    /// Seconds spoken; `None` when unknown.
    #[serde(default)]
    pub duration_secs: Option<f32>,
}

/// The analysis of one answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnswerAnalysis {
    pub relevance: f32,
    pub clarity: f32,
    pub depth: f32,
    pub keywords: Vec<String>,
    pub feedback: String,
    pub covered_points: Vec<String>,
    pub missed_points: Vec<String>,
    pub word_count: u32,
    pub filler_count: u32,
    pub words_per_minute: Option<f32>,
    /// False when the transcript is too short to assess; the scores are then 0 and meaningless.
    pub sufficient_data: bool,
}

impl AnswerAnalysis {
    /// Coverage of the expected points, 0..1 (`None` without expected points).
    pub fn coverage(&self) -> Option<f32> {
        let total = self.covered_points.len() + self.missed_points.len();
        (total > 0).then(|| self.covered_points.len() as f32 / total as f32)
    }
}

pub fn analyze(input: &AnswerInput) -> AnswerAnalysis {
    let words = text::words(&input.transcript);
    let word_count = words.len();
    let fillers = text::filler_count(&input.transcript);
    if word_count < MIN_WORDS {
        return AnswerAnalysis {
            feedback: format!(
                "Insufficient data: the answer has {word_count} word(s); at least {MIN_WORDS} are needed to assess it."
            ),
            missed_points: input.expected_points.clone(),
            word_count: word_count as u32,
            filler_count: fillers as u32,
            ..Default::default()
        };
    }

    let answer_stems: Vec<String> = text::content_stems(&input.transcript);
    let answer_set: HashSet<&str> = answer_stems.iter().map(String::as_str).collect();
    let relevance = relevance(input, &answer_set);
    let clarity = clarity(input, word_count, fillers);
    let depth = depth(input, &answer_stems, &answer_set, word_count);
    let keywords = keywords(
        &input.transcript,
        &relevance.question_stems,
        &input.expected_points,
    );
    let notes: Vec<String> = [relevance.notes, clarity.notes, depth.notes].concat();
    AnswerAnalysis {
        relevance: round1(relevance.score * 100.0),
        clarity: round1(clarity.score),
        depth: round1(depth.score * 100.0),
        keywords,
        feedback: notes.join(" "),
        covered_points: relevance.covered,
        missed_points: relevance.missed,
        word_count: word_count as u32,
        filler_count: fillers as u32,
        words_per_minute: clarity.wpm.map(round1),
        sufficient_data: true,
    }
}

/// One part of an answer's analysis, with what the candidate is told about it.
struct Part {
    /// 0..1.
    score: f32,
    notes: Vec<String>,
}

struct Relevance {
    score: f32,
    covered: Vec<String>,
    missed: Vec<String>,
    question_stems: HashSet<String>,
    notes: Vec<String>,
}

/// Coverage of the expected points, plus overlap with the question's own terms.
fn relevance(input: &AnswerInput, answer_set: &HashSet<&str>) -> Relevance {
    let (mut covered, mut missed) = (Vec::new(), Vec::new());
    for point in &input.expected_points {
        let stems: HashSet<String> = text::content_stems(point).into_iter().collect();
        let hits = stems
            .iter()
            .filter(|s| answer_set.contains(s.as_str()))
            .count();
        if !stems.is_empty() && hits as f32 / stems.len() as f32 >= POINT_COVERAGE {
            covered.push(point.clone());
        } else {
            missed.push(point.clone());
        }
    }
    let question_stems: HashSet<String> =
        text::content_stems(&input.question).into_iter().collect();
    let question_overlap = if question_stems.is_empty() {
        0.0
    } else {
        question_stems
            .iter()
            .filter(|s| answer_set.contains(s.as_str()))
            .count() as f32
            / question_stems.len() as f32
    };
    let score = if input.expected_points.is_empty() {
        (question_overlap * 1.5).min(1.0)
    } else {
        0.8 * covered.len() as f32 / input.expected_points.len() as f32 + 0.2 * question_overlap
    };
    let mut notes = Vec::new();
    if !input.expected_points.is_empty() {
        notes.push(format!(
            "Covered {} of {} expected points.",
            covered.len(),
            input.expected_points.len()
        ));
        if !missed.is_empty() {
            notes.push(format!("Not covered: {}.", missed.join("; ")));
        }
    }
    Relevance {
        score,
        covered,
        missed,
        question_stems,
        notes,
    }
}

struct Clarity {
    score: f32,
    wpm: Option<f32>,
    notes: Vec<String>,
}

/// Starts from full marks and takes off for fillers, sentence length and pace.
fn clarity(input: &AnswerInput, word_count: usize, fillers: usize) -> Clarity {
    let mut notes = Vec::new();
    let filler_rate = fillers as f32 / word_count as f32;
    let filler_penalty = (filler_rate * 400.0).min(40.0);
    if fillers > 0 {
        notes.push(format!(
            "{fillers} filler word(s) ({:.0}% of words).",
            filler_rate * 100.0
        ));
    }
    let sentences = text::sentences(&input.transcript);
    let mean_sentence = word_count as f32 / sentences.len().max(1) as f32;
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
    Clarity {
        score: (100.0 - filler_penalty - sentence_penalty - pace_penalty).clamp(0.0, 100.0),
        wpm,
        notes,
    }
}

/// Substance (content words), reasoning and evidence, and variety of vocabulary.
fn depth(
    input: &AnswerInput,
    answer_stems: &[String],
    answer_set: &HashSet<&str>,
    word_count: usize,
) -> Part {
    let content = answer_stems.len() as f32;
    let substance = (content / 40.0).min(1.0);
    let markers = text::reasoning_markers(&input.transcript);
    let evidence = (markers as f32 / 3.0).min(1.0);
    let variety = if content > 0.0 {
        (answer_set.len() as f32 / content / 0.6).min(1.0)
    } else {
        0.0
    };
    let mut notes = Vec::new();
    if markers == 0 {
        notes.push(
            "No reasoning or concrete example (because, for example, numbers) to show depth."
                .into(),
        );
    }
    if substance < 0.5 {
        notes.push(format!(
            "Short answer ({word_count} words); more detail would show depth."
        ));
    }
    Part {
        score: 0.5 * substance + 0.3 * evidence + 0.2 * variety,
        notes,
    }
}

/// Up to eight content words, those that echo the question or its expected points first, then
/// by frequency; each shown in the form the candidate used first.
fn keywords(
    transcript: &str,
    question_stems: &HashSet<String>,
    expected: &[String],
) -> Vec<String> {
    let expected_stems: HashSet<String> = expected
        .iter()
        .flat_map(|p| text::content_stems(p))
        .collect();
    let mut seen: BTreeMap<String, (usize, usize, String)> = BTreeMap::new(); // stem -> (count, first, surface)
    for (i, w) in text::words(transcript).into_iter().enumerate() {
        if w.chars().count() < 3 || text::is_stopword(&w) {
            continue;
        }
        let entry = seen.entry(text::stem(&w)).or_insert((0, i, w));
        entry.0 += 1;
    }
    let mut ranked: Vec<(bool, usize, usize, String)> = seen
        .into_iter()
        .map(|(stem, (count, first, surface))| {
            let echoes = expected_stems.contains(&stem) || question_stems.contains(&stem);
            (echoes, count, first, surface)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    ranked.into_iter().take(8).map(|r| r.3).collect()
}

pub fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question() -> AnswerInput {
        AnswerInput {
            question: "How does Rust prevent data races?".into(),
            category: "technical".into(),
            expected_points: vec![
                "ownership and borrowing rules".into(),
                "Send and Sync traits".into(),
                "compile-time checks instead of runtime locks".into(),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn an_answer_that_covers_the_points_scores_higher_than_one_that_does_not() {
        let good = AnswerInput {
            transcript: "Rust prevents data races through ownership and borrowing: only one mutable \
                borrow exists at a time. The Send and Sync traits mark which types may cross threads, \
                and because these are compile-time checks, there is no runtime lock cost. For example, \
                an Rc cannot be sent to another thread."
                .into(),
            duration_secs: Some(25.0),
            ..question()
        };
        let vague = AnswerInput {
            transcript:
                "Um, I think it is, you know, a safe language and, like, it is basically very good \
                and people like it a lot and it is popular."
                    .into(),
            duration_secs: Some(10.0),
            ..question()
        };
        let g = analyze(&good);
        let v = analyze(&vague);
        assert!(g.sufficient_data && v.sufficient_data);
        assert_eq!(g.covered_points.len(), 3, "{g:?}");
        assert!(v.covered_points.is_empty(), "{v:?}");
        assert!(
            g.relevance > v.relevance + 50.0,
            "{} vs {}",
            g.relevance,
            v.relevance
        );
        assert!(g.clarity > v.clarity, "{} vs {}", g.clarity, v.clarity);
        assert!(g.depth > v.depth, "{} vs {}", g.depth, v.depth);
        assert!(v.feedback.contains("filler"), "{}", v.feedback);
        assert!(
            g.keywords.iter().any(|k| k == "ownership"),
            "{:?}",
            g.keywords
        );
    }

    #[test]
    fn an_empty_transcript_is_insufficient_data_not_a_zero_score() {
        let a = analyze(&AnswerInput {
            transcript: "   ".into(),
            ..question()
        });
        assert!(!a.sufficient_data);
        assert!(a.feedback.starts_with("Insufficient data"));
        assert_eq!(a.missed_points.len(), 3);
    }

    #[test]
    fn pace_outside_the_comfortable_range_costs_clarity() {
        let text =
            "Ownership rules and borrowing stop data races. Send and Sync traits guard threads."
                .to_string();
        let calm = analyze(&AnswerInput {
            transcript: text.clone(),
            duration_secs: Some(6.0),
            ..question()
        });
        let rushed = analyze(&AnswerInput {
            transcript: text,
            duration_secs: Some(2.0),
            ..question()
        });
        assert!(
            calm.clarity > rushed.clarity,
            "{} vs {}",
            calm.clarity,
            rushed.clarity
        );
        assert!(rushed.feedback.contains("Pace"));
    }

    #[test]
    fn scores_stay_within_bounds_for_any_text() {
        let samples = [
            "a",
            "word ".repeat(500).as_str(),
            "um uh er erm",
            "1 2 3 4 5 6",
            "Ü ñ 漢字 ok fine then",
        ]
        .map(str::to_string);
        for s in samples {
            let a = analyze(&AnswerInput {
                transcript: s,
                duration_secs: Some(0.7),
                ..question()
            });
            for v in [a.relevance, a.clarity, a.depth] {
                assert!((0.0..=100.0).contains(&v), "{v}");
            }
        }
    }
}
