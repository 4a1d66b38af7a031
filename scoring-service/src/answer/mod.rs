//! Scoring one answer: relevance (does it say, in meaning, what the question asks for), clarity
//! (fillers, sentence length, pace, sentences rather than keyword lists) and depth (on-topic
//! substance, reasoning, evidence), each 0..100, with the evidence behind each expected point.
//!
//! - [`statements`]: the answer cut into claims, each negated or not, prose or a keyword list.
//! - [`relevance`]: expected points matched by meaning, with [`relevance::THRESHOLDS`].
//! - `clarity`, `depth`, `keywords`: the other parts.
//! - [`lexical`]: the word-matching scorer this replaced, kept as the evaluation's baseline.

mod clarity;
mod depth;
mod keywords;
pub mod lexical;
pub mod relevance;
pub mod statements;

use serde::{Deserialize, Serialize};

use crate::meaning::{ModelError, SentenceEncoder};
use crate::text;

/// Fewer words than this cannot be assessed: the analysis says so instead of scoring.
pub const MIN_WORDS: usize = 5;
/// Speaking pace listeners follow comfortably, words per minute.
pub const PACE_RANGE: (f32, f32) = (110.0, 170.0);
/// Sentence length (words) that reads and sounds clear.
pub const SENTENCE_RANGE: (f32, f32) = (8.0, 25.0);
/// What scored the answer, as reports name it.
pub const METHOD: &str =
    "meaning: all-MiniLM-L6-v2 sentence similarity with negation and keyword-list checks";

/// What is needed to score an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// For every expected point, in order: how it was judged and the statement that decided it.
    #[serde(default)]
    pub evidence: Vec<PointEvidence>,
    /// How close in meaning the answer is to the question itself, 0..100.
    #[serde(default)]
    pub question_relevance: f32,
}

/// How one expected point was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointStatus {
    /// A statement of the candidate's says it.
    Covered,
    /// A statement comes near it; it earns part of the point.
    Partial,
    /// The closest statement says it is not done or not needed.
    Rejected,
    /// Named only in a list of keywords, never in a sentence.
    Listed,
    /// Nothing comes near it.
    Missing,
}

impl PointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Covered => "covered",
            Self::Partial => "partial",
            Self::Rejected => "rejected",
            Self::Listed => "listed",
            Self::Missing => "missing",
        }
    }
}

/// Why a point counted or not: the answer's statement closest to it in meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointEvidence {
    pub point: String,
    pub status: PointStatus,
    /// The statement, when one comes near the point.
    pub sentence: Option<String>,
    /// Cosine similarity between the point and that statement, -1..1.
    pub similarity: f32,
}

impl AnswerAnalysis {
    /// Coverage of the expected points, 0..1 (`None` without expected points).
    pub fn coverage(&self) -> Option<f32> {
        let total = self.covered_points.len() + self.missed_points.len();
        (total > 0).then(|| self.covered_points.len() as f32 / total as f32)
    }

    /// The answer's weight in the technical component: relevance 70%, depth 30%. The evaluation
    /// ranks answers by it.
    pub fn quality(&self) -> f32 {
        0.7 * self.relevance + 0.3 * self.depth
    }
}

/// Scores one answer. Pure CPU work (the sentence model runs here): call it off the async runtime.
pub fn analyze(
    input: &AnswerInput,
    encoder: &SentenceEncoder,
) -> Result<AnswerAnalysis, ModelError> {
    analyze_with(input, encoder, &relevance::THRESHOLDS)
}

/// [`analyze`] with other thresholds: the evaluation's sweep tries them.
pub fn analyze_with(
    input: &AnswerInput,
    encoder: &SentenceEncoder,
    thresholds: &relevance::Thresholds,
) -> Result<AnswerAnalysis, ModelError> {
    let words = text::words(&input.transcript);
    let word_count = words.len();
    let fillers = text::filler_count(&input.transcript);
    if word_count < MIN_WORDS {
        return Ok(AnswerAnalysis {
            feedback: format!(
                "Insufficient data: the answer has {word_count} word(s); at least {MIN_WORDS} are needed to assess it."
            ),
            missed_points: input.expected_points.clone(),
            evidence: input
                .expected_points
                .iter()
                .map(|p| PointEvidence {
                    point: p.clone(),
                    status: PointStatus::Missing,
                    sentence: None,
                    similarity: 0.0,
                })
                .collect(),
            word_count: word_count as u32,
            filler_count: fillers as u32,
            ..Default::default()
        });
    }

    let statements = statements::statements(&input.transcript);
    let relevance = relevance::relevance(input, &statements, encoder, thresholds)?;
    let clarity = clarity::clarity(input, &statements, word_count, fillers);
    let depth = depth::depth(&statements, &relevance.on_topic, word_count);
    let keywords = keywords::keywords(&input.transcript, &input.question, &input.expected_points);
    let (covered, missed) = relevance
        .evidence
        .iter()
        .partition::<Vec<&PointEvidence>, _>(|e| e.status == PointStatus::Covered);
    let mut notes: Vec<String> = [relevance.notes, clarity.notes, depth.notes].concat();
    if relevance.focus < 0.6 {
        notes.push(format!(
            "Only {:.0}% of the answer is on the question's topic.",
            relevance.focus * 100.0
        ));
    }
    Ok(AnswerAnalysis {
        relevance: round1(relevance.score * 100.0),
        clarity: round1(clarity.score),
        depth: round1(depth.score * 100.0),
        keywords,
        feedback: notes.join(" "),
        covered_points: covered.iter().map(|e| e.point.clone()).collect(),
        missed_points: missed.iter().map(|e| e.point.clone()).collect(),
        word_count: word_count as u32,
        filler_count: fillers as u32,
        words_per_minute: clarity.wpm.map(round1),
        sufficient_data: true,
        question_relevance: round1(relevance.question * 100.0),
        evidence: relevance.evidence,
    })
}

pub fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meaning::test_encoder;

    fn analyze_text(input: AnswerInput) -> AnswerAnalysis {
        analyze(&input, &test_encoder()).unwrap()
    }

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
        let g = analyze(&good, &test_encoder()).unwrap();
        let v = analyze(&vague, &test_encoder()).unwrap();
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
        let a = analyze_text(AnswerInput {
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
        let calm = analyze_text(AnswerInput {
            transcript: text.clone(),
            duration_secs: Some(6.0),
            ..question()
        });
        let rushed = analyze_text(AnswerInput {
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
            let a = analyze_text(AnswerInput {
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
