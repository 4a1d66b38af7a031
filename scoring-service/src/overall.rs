//! Scoring a whole interview from its answers and its analysed frames.
//!
//! The overall score is a documented weighting of three components (see [`WEIGHTS`]); a component
//! without enough input is reported as insufficient data, never as an invented number.

use iv_contracts::UNCERTAIN_EXPRESSION as UNCERTAIN;
use iv_contracts::policy::AnalysisPolicy;
use serde::{Deserialize, Serialize};

use crate::answer::{self, AnswerAnalysis, AnswerInput, round1};
use crate::meaning::{ModelError, SentenceEncoder};

/// The parts of the score; `Overall` is their weighted sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentName {
    Technical,
    Communication,
    Engagement,
    Overall,
}

impl ComponentName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Technical => "technical",
            Self::Communication => "communication",
            Self::Engagement => "engagement",
            Self::Overall => "overall",
        }
    }
}

impl std::fmt::Display for ComponentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much each component counts in the overall score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub technical: f32,
    pub communication: f32,
    pub engagement: f32,
}

/// Technical substance matters most for hiring; communication is how it came across; engagement
/// (from the camera) is a supporting signal only, and is left out entirely when unavailable.
pub const WEIGHTS: Weights = Weights {
    technical: 0.5,
    communication: 0.3,
    engagement: 0.2,
};

impl Weights {
    /// "Technical 50%, communication 30%, engagement 20%.": what reports say about the weighting.
    pub fn describe(&self) -> String {
        let parts = [
            (ComponentName::Technical, self.technical),
            (ComponentName::Communication, self.communication),
            (ComponentName::Engagement, self.engagement),
        ];
        let text: Vec<String> = parts
            .iter()
            .map(|(name, w)| format!("{name} {:.0}%", w * 100.0))
            .collect();
        format!("{}.", capitalise(&text.join(", ")))
    }
}

/// The three weighted components of one interview, by name.
struct Parts {
    technical: Component,
    communication: Component,
    engagement: Component,
}

impl Parts {
    /// Each component with its nominal weight.
    fn weighted(&mut self, w: &Weights) -> [(&mut Component, f32); 3] {
        [
            (&mut self.technical, w.technical),
            (&mut self.communication, w.communication),
            (&mut self.engagement, w.engagement),
        ]
    }

    /// Sets each applied weight: the nominal ones renormalised over the components with data.
    fn renormalise(&mut self, w: &Weights) {
        let available: f32 = self
            .weighted(w)
            .iter()
            .filter(|(c, _)| c.sufficient_data)
            .map(|(_, w)| w)
            .sum();
        for (c, w) in self.weighted(w) {
            c.weight = if c.sufficient_data && available > 0.0 {
                round3(w / available)
            } else {
                0.0
            };
        }
    }

    fn into_vec(self) -> Vec<Component> {
        vec![self.technical, self.communication, self.engagement]
    }
}

/// Fewer analysed frames than this (≈ 3 s at 5 fps) say nothing about engagement.
pub const MIN_FRAMES: usize = 15;

/// One analysed frame, as far as scoring cares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FrameSample {
    pub timestamp: i64,
    /// Empty when the policy withheld emotion inference.
    #[serde(default)]
    pub emotion: String,
    #[serde(default)]
    pub confidence: f32,
    #[serde(default)]
    pub face_present: bool,
    /// 0..1; 0 when unknown.
    #[serde(default)]
    pub attention: f32,
    #[serde(default)]
    pub blink_count: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreInput {
    pub session_id: String,
    #[serde(default)]
    pub user_id: String,
    pub answers: Vec<AnswerInput>,
    #[serde(default)]
    pub frames: Vec<FrameSample>,
    /// Questions asked; unanswered ones count as zero technical coverage.
    #[serde(default)]
    pub total_questions: u32,
    /// Absent or blank means full.
    #[serde(
        default,
        deserialize_with = "iv_contracts::policy::deserialize_request"
    )]
    pub analysis_policy: AnalysisPolicy,
    #[serde(default)]
    pub started_at: i64,
    #[serde(default)]
    pub completed_at: i64,
}

/// One component of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Component {
    pub name: ComponentName,
    /// `None` when there was not enough input to score it.
    pub score: Option<f32>,
    /// Weight in the overall score as applied (after leaving out insufficient components).
    pub weight: f32,
    pub sufficient_data: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Insight {
    pub category: String,
    pub description: String,
    /// -1..1: how much this pulled the overall score down or up.
    pub impact: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoredAnswer {
    pub question_id: String,
    pub question: String,
    pub category: String,
    pub transcript: String,
    pub analysis: AnswerAnalysis,
}

/// Engagement figures behind the engagement component, kept for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EngagementSummary {
    pub frames_analyzed: u32,
    pub face_presence: f32,
    pub mean_attention: Option<f32>,
    /// Share of frames with a neutral or positive expression; `None` when emotion was not inferred.
    pub composure: Option<f32>,
    pub emotion_distribution: std::collections::BTreeMap<String, u32>,
    pub blink_count: i32,
    /// Attention over the interview, for the report's timeline: at most [`TIMELINE_POINTS`]
    /// points, each summing up a stretch of consecutive frames.
    #[serde(default)]
    pub timeline: Vec<AttentionPoint>,
}

/// Enough points for a timeline a page wide (one every ~2 points of a printed line) while a
/// stored score stays small whatever the interview's length.
pub const TIMELINE_POINTS: usize = 200;

/// A stretch of frames on the attention timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttentionPoint {
    /// When the stretch starts, from the first analysed frame.
    pub offset_ms: i64,
    /// Mean attention (0..1) of the stretch's frames with a face; `None` when no face was in
    /// view during the whole stretch.
    pub attention: Option<f32>,
}

/// The frames as at most [`TIMELINE_POINTS`] stretches of equal frame counts, in time order.
pub fn attention_timeline(frames: &[FrameSample]) -> Vec<AttentionPoint> {
    let mut ordered: Vec<&FrameSample> = frames.iter().collect();
    ordered.sort_by_key(|f| f.timestamp);
    let Some(first) = ordered.first().map(|f| f.timestamp) else {
        return Vec::new();
    };
    let per_point = ordered.len().div_ceil(TIMELINE_POINTS);
    ordered
        .chunks(per_point)
        .map(|stretch| {
            let seen: Vec<f32> = stretch
                .iter()
                .filter(|f| f.face_present)
                .map(|f| f.attention.clamp(0.0, 1.0))
                .collect();
            AttentionPoint {
                offset_ms: stretch[0].timestamp - first,
                attention: (!seen.is_empty()).then(|| seen.iter().sum::<f32>() / seen.len() as f32),
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Score {
    pub session_id: String,
    pub user_id: String,
    pub calculated_at: i64,
    pub sufficient_data: bool,
    pub overall_score: Option<f32>,
    pub technical_score: Option<f32>,
    pub communication_score: Option<f32>,
    pub engagement_score: Option<f32>,
    pub components: Vec<Component>,
    pub feedback: String,
    pub insights: Vec<Insight>,
    pub answers: Vec<ScoredAnswer>,
    pub engagement: EngagementSummary,
    #[serde(deserialize_with = "iv_contracts::policy::deserialize_stored")]
    pub analysis_policy: AnalysisPolicy,
    pub total_questions: u32,
}

impl Score {
    /// One component of the score (every score has all four).
    pub fn component(&self, name: ComponentName) -> &Component {
        self.components
            .iter()
            .find(|c| c.name == name)
            .expect("a score has every component")
    }
}

impl Score {
    /// The same interview scored without anything derived from its frames: after the candidate
    /// withdrew consent, engagement is left out (the weights renormalised over the answers, whose
    /// analyses are kept) and says why.
    pub fn without_face_analysis(&self, now_ms: i64) -> Score {
        let input = ScoreInput {
            session_id: self.session_id.clone(),
            user_id: self.user_id.clone(),
            answers: self
                .answers
                .iter()
                .map(|a| AnswerInput {
                    question_id: a.question_id.clone(),
                    question: a.question.clone(),
                    category: a.category.clone(),
                    transcript: a.transcript.clone(),
                    ..Default::default()
                })
                .collect(),
            total_questions: self.total_questions,
            analysis_policy: self.analysis_policy,
            ..Default::default()
        };
        let analyses = self.answers.iter().map(|a| a.analysis.clone()).collect();
        let mut score = calculate(&input, analyses, now_ms);
        score.insights.retain(|i| i.category != "engagement");
        if let Some(c) = score
            .components
            .iter_mut()
            .find(|c| c.name == ComponentName::Engagement)
        {
            c.reason = WITHDRAWN.into();
        }
        score
    }
}

/// Why engagement is missing from a score after a withdrawal.
pub const WITHDRAWN: &str = "Not assessed: the candidate withdrew consent to face analysis, and \
    what was derived from their frames was erased.";

/// Every answer of an interview analysed, in order. CPU work: run it off the async runtime.
pub fn analyze_answers(
    answers: &[AnswerInput],
    encoder: &SentenceEncoder,
) -> Result<Vec<AnswerAnalysis>, ModelError> {
    answers
        .iter()
        .map(|a| answer::analyze(a, encoder))
        .collect()
}

/// The interview's score from its answers' analyses (one per answer, in order) and its frames.
pub fn calculate(input: &ScoreInput, analyses: Vec<AnswerAnalysis>, now_ms: i64) -> Score {
    let answers: Vec<ScoredAnswer> = input
        .answers
        .iter()
        .zip(analyses)
        .map(|(a, analysis)| ScoredAnswer {
            question_id: a.question_id.clone(),
            question: a.question.clone(),
            category: a.category.clone(),
            transcript: a.transcript.clone(),
            analysis,
        })
        .collect();
    let total_questions = input.total_questions.max(answers.len() as u32);
    let mut insights = Vec::new();

    let technical = technical(&answers, total_questions, &mut insights);
    let communication = communication(&answers, &mut insights);
    let (engagement, summary) = engagement(&input.frames, input.analysis_policy, &mut insights);

    // Overall: weights renormalised over the components that have data; without answers there is
    // nothing to hire on, so no overall score.
    let mut parts = Parts {
        technical,
        communication,
        engagement,
    };
    parts.renormalise(&WEIGHTS);
    let overall_ok = parts.technical.sufficient_data;
    let (technical_score, communication_score, engagement_score) = (
        parts.technical.score,
        parts.communication.score,
        parts.engagement.score,
    );
    let mut components = parts.into_vec();
    let overall = overall_ok.then(|| {
        round1(
            components
                .iter()
                .filter_map(|c| c.score.map(|s| s * c.weight))
                .sum::<f32>(),
        )
    });
    let overall_reason = overall_reason(overall_ok, &components);
    insights.extend(components.iter().filter_map(component_insight));
    let feedback = summary_feedback(overall, &components);
    components.push(Component {
        name: ComponentName::Overall,
        score: overall,
        weight: 1.0,
        sufficient_data: overall_ok,
        reason: overall_reason,
    });

    Score {
        session_id: input.session_id.clone(),
        user_id: input.user_id.clone(),
        calculated_at: now_ms,
        sufficient_data: overall_ok,
        overall_score: overall,
        technical_score,
        communication_score,
        engagement_score,
        feedback,
        insights,
        answers,
        engagement: summary,
        analysis_policy: input.analysis_policy,
        total_questions,
        components,
    }
}

/// What a scored component says to the recruiter, and how much it pulled the score.
fn component_insight(c: &Component) -> Option<Insight> {
    let s = c.score?;
    Some(Insight {
        category: c.name.as_str().into(),
        description: format!(
            "{} score {s:.0}/100: {}",
            capitalise(c.name.as_str()),
            c.reason
        ),
        impact: round3((s - 50.0) / 50.0 * c.weight),
    })
}

/// Why the overall score is what it is: the weighting, or what was left out and why.
fn overall_reason(overall_ok: bool, components: &[Component]) -> String {
    let left_out: Vec<&str> = components
        .iter()
        .filter(|c| !c.sufficient_data)
        .map(|c| c.name.as_str())
        .collect();
    match (overall_ok, left_out.is_empty()) {
        (false, _) => "Insufficient data: no answer had enough words to assess.".to_string(),
        (true, true) => WEIGHTS.describe(),
        (true, false) => format!(
            "Weighted over the components with data ({}); left out: {}.",
            components
                .iter()
                .filter(|c| c.sufficient_data)
                .map(|c| format!("{} {:.0}%", c.name, c.weight * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
            left_out.join(", ")
        ),
    }
}

fn technical(
    answers: &[ScoredAnswer],
    total_questions: u32,
    insights: &mut Vec<Insight>,
) -> Component {
    let assessed: Vec<&ScoredAnswer> = answers
        .iter()
        .filter(|a| a.analysis.sufficient_data)
        .collect();
    if assessed.is_empty() {
        return insufficient(
            ComponentName::Technical,
            "Insufficient data: no answer had enough words to assess.",
        );
    }
    // Each question: relevance (coverage of its expected points) 70%, depth 30%. Questions not
    // answered, or answered too briefly to assess, count as 0.
    let sum: f32 = assessed
        .iter()
        .map(|a| 0.7 * a.analysis.relevance + 0.3 * a.analysis.depth)
        .sum();
    let score = round1(sum / total_questions.max(1) as f32);
    let unanswered = total_questions as usize - assessed.len();
    for a in &assessed {
        if !a.analysis.missed_points.is_empty() && a.analysis.coverage().is_some_and(|c| c < 0.5) {
            insights.push(Insight {
                category: "technical".into(),
                description: format!(
                    "\"{}\": missed {}.",
                    a.question,
                    a.analysis.missed_points.join("; ")
                ),
                impact: -0.1,
            });
        }
    }
    let covered: usize = assessed
        .iter()
        .map(|a| a.analysis.covered_points.len())
        .sum();
    let expected: usize = assessed
        .iter()
        .map(|a| a.analysis.covered_points.len() + a.analysis.missed_points.len())
        .sum();
    let mut reason = format!(
        "relevance 70% and depth 30% averaged over {total_questions} question(s); {covered} of {expected} expected points covered"
    );
    if unanswered > 0 {
        reason.push_str(&format!(
            "; {unanswered} unanswered or too short, counted as 0"
        ));
    }
    Component {
        name: ComponentName::Technical,
        score: Some(score),
        weight: 0.0,
        sufficient_data: true,
        reason,
    }
}

fn communication(answers: &[ScoredAnswer], insights: &mut Vec<Insight>) -> Component {
    let assessed: Vec<&AnswerAnalysis> = answers
        .iter()
        .map(|a| &a.analysis)
        .filter(|a| a.sufficient_data)
        .collect();
    if assessed.is_empty() {
        return insufficient(
            ComponentName::Communication,
            "Insufficient data: no transcript to assess.",
        );
    }
    let score = round1(assessed.iter().map(|a| a.clarity).sum::<f32>() / assessed.len() as f32);
    let words: u32 = assessed.iter().map(|a| a.word_count).sum();
    let fillers: u32 = assessed.iter().map(|a| a.filler_count).sum();
    let filler_pct = fillers as f32 / words.max(1) as f32 * 100.0;
    let paces: Vec<f32> = assessed.iter().filter_map(|a| a.words_per_minute).collect();
    let mut reason = format!(
        "clarity averaged over {} answer(s); fillers {filler_pct:.1}% of words",
        assessed.len()
    );
    if !paces.is_empty() {
        let pace = paces.iter().sum::<f32>() / paces.len() as f32;
        reason.push_str(&format!("; pace {pace:.0} words/min"));
        if !(answer::PACE_RANGE.0..=answer::PACE_RANGE.1).contains(&pace) {
            insights.push(Insight {
                category: "communication".into(),
                description: format!(
                    "Average pace {pace:.0} words/min is outside the comfortable {}-{}.",
                    answer::PACE_RANGE.0,
                    answer::PACE_RANGE.1
                ),
                impact: -0.05,
            });
        }
    }
    if filler_pct > 3.0 {
        insights.push(Insight {
            category: "communication".into(),
            description: format!("Filler words made up {filler_pct:.1}% of what was said ({fillers} in {words} words)."),
            impact: -0.05,
        });
    }
    Component {
        name: ComponentName::Communication,
        score: Some(score),
        weight: 0.0,
        sufficient_data: true,
        reason,
    }
}

/// Expressions read as composed (neutral or positive) rather than distressed.
const COMPOSED: &[&str] = &["neutral", "happy", "surprised"];

fn engagement(
    frames: &[FrameSample],
    policy: AnalysisPolicy,
    insights: &mut Vec<Insight>,
) -> (Component, EngagementSummary) {
    let mut summary = EngagementSummary {
        frames_analyzed: frames.len() as u32,
        ..Default::default()
    };
    if policy == AnalysisPolicy::Off {
        return (
            insufficient(
                ComponentName::Engagement,
                "Not assessed: frame analysis was switched off for this interview.",
            ),
            summary,
        );
    }
    summary.timeline = attention_timeline(frames);
    if frames.len() < MIN_FRAMES {
        let reason = format!(
            "Insufficient data: {} analysed frame(s); at least {MIN_FRAMES} are needed.",
            frames.len()
        );
        return (insufficient(ComponentName::Engagement, &reason), summary);
    }
    let with_face: Vec<&FrameSample> = frames.iter().filter(|f| f.face_present).collect();
    let presence = with_face.len() as f32 / frames.len() as f32;
    let attention = with_face.iter().any(|f| f.attention > 0.0).then(|| {
        with_face
            .iter()
            .map(|f| f.attention.clamp(0.0, 1.0))
            .sum::<f32>()
            / with_face.len() as f32
    });
    let labelled: Vec<&&FrameSample> = with_face.iter().filter(|f| !f.emotion.is_empty()).collect();
    for f in &labelled {
        *summary
            .emotion_distribution
            .entry(f.emotion.clone())
            .or_default() += 1;
    }
    // An expression the model was unsure of is neither composed nor distressed: left out.
    let read: Vec<&&&FrameSample> = labelled.iter().filter(|f| f.emotion != UNCERTAIN).collect();
    let composure = (policy.allows_emotion() && !read.is_empty()).then(|| {
        read.iter()
            .filter(|f| COMPOSED.contains(&f.emotion.as_str()))
            .count() as f32
            / read.len() as f32
    });
    summary.face_presence = round3(presence);
    summary.mean_attention = attention.map(round3);
    summary.composure = composure.map(round3);
    summary.blink_count = frames.iter().map(|f| f.blink_count).max().unwrap_or(0);

    // Presence 40%, attention 40%, composure 20%, renormalised over the parts that are known.
    let score =
        round1(known_mean(&[(Some(presence), 0.4), (attention, 0.4), (composure, 0.2)]) * 100.0);
    let reason = engagement_reason(frames.len(), presence, attention, composure, policy);
    if presence < 0.8 {
        insights.push(Insight {
            category: "engagement".into(),
            description: format!(
                "The face was out of view in {:.0}% of frames.",
                (1.0 - presence) * 100.0
            ),
            impact: -0.05,
        });
    }
    (
        Component {
            name: ComponentName::Engagement,
            score: Some(score),
            weight: 0.0,
            sufficient_data: true,
            reason,
        },
        summary,
    )
}

/// The weighted mean of the parts that are known, their weights renormalised.
fn known_mean(parts: &[(Option<f32>, f32)]) -> f32 {
    let known = parts.iter().filter_map(|(v, w)| v.map(|v| (v, *w)));
    let (sum, weight) = known.fold((0.0, 0.0), |(s, t), (v, w)| (s + v * w, t + w));
    if weight > 0.0 { sum / weight } else { 0.0 }
}

/// "face visible in 95% of 40 frames; mean attention 80%; ...": what the engagement score rests on.
fn engagement_reason(
    frames: usize,
    presence: f32,
    attention: Option<f32>,
    composure: Option<f32>,
    policy: AnalysisPolicy,
) -> String {
    let mut reason = format!(
        "face visible in {:.0}% of {frames} frames",
        presence * 100.0
    );
    if let Some(a) = attention {
        reason.push_str(&format!("; mean attention {:.0}%", a * 100.0));
    }
    if let Some(c) = composure {
        reason.push_str(&format!(
            "; composed expression in {:.0}% of frames",
            c * 100.0
        ));
    } else if policy == AnalysisPolicy::Engagement {
        reason.push_str("; expression not inferred (engagement-only policy)");
    }
    reason
}

fn insufficient(name: ComponentName, reason: &str) -> Component {
    Component {
        name,
        score: None,
        weight: 0.0,
        sufficient_data: false,
        reason: reason.into(),
    }
}

fn summary_feedback(overall: Option<f32>, components: &[Component]) -> String {
    let Some(overall) = overall else {
        return "Insufficient data to score this interview: no answer had enough words to assess."
            .into();
    };
    let band = match overall {
        s if s >= 80.0 => "strong",
        s if s >= 60.0 => "solid",
        s if s >= 40.0 => "mixed",
        _ => "weak",
    };
    let parts: Vec<String> = components
        .iter()
        .map(|c| match c.score {
            Some(s) => format!("{} {s:.0}", c.name),
            None => format!("{} not scored", c.name),
        })
        .collect();
    format!(
        "Overall {overall:.0}/100, a {band} interview ({}).",
        parts.join(", ")
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(input: &ScoreInput, now_ms: i64) -> Score {
        let analyses = analyze_answers(&input.answers, &crate::meaning::test_encoder()).unwrap();
        calculate(input, analyses, now_ms)
    }

    fn answer(q: &str, points: &[&str], transcript: &str) -> AnswerInput {
        AnswerInput {
            question_id: q.into(),
            question: q.into(),
            category: "technical".into(),
            expected_points: points.iter().map(|p| p.to_string()).collect(),
            transcript: transcript.into(),
            duration_secs: Some(30.0),
        }
    }

    fn frames(n: usize, face: bool, emotion: &str, attention: f32) -> Vec<FrameSample> {
        (0..n)
            .map(|i| FrameSample {
                timestamp: i as i64 * 100,
                emotion: emotion.into(),
                confidence: 0.9,
                face_present: face,
                attention,
                blink_count: 0,
            })
            .collect()
    }

    #[test]
    fn the_attention_timeline_sums_up_stretches_of_frames_in_time_order() {
        // 300 frames of attention 0.8, then 300 with no face, then 300 at 0.4: 10 ms apart.
        let mut all = frames(300, true, "neutral", 0.8);
        all.extend(frames(300, false, "", 0.0));
        all.extend(frames(300, true, "neutral", 0.4));
        for (i, f) in all.iter_mut().enumerate() {
            f.timestamp = 1_000_000 + i as i64 * 10;
        }
        all.reverse(); // arrival order does not matter
        let timeline = attention_timeline(&all);
        assert!(timeline.len() <= TIMELINE_POINTS && timeline.len() >= TIMELINE_POINTS / 2);
        assert_eq!(timeline[0].offset_ms, 0);
        assert!(timeline.windows(2).all(|w| w[0].offset_ms < w[1].offset_ms));
        assert_eq!(timeline[0].attention, Some(0.8));
        assert_eq!(timeline[timeline.len() / 2].attention, None);
        assert_eq!(timeline.last().unwrap().attention, Some(0.4));
        assert!(attention_timeline(&[]).is_empty());
        // A short interview keeps every frame.
        assert_eq!(attention_timeline(&frames(20, true, "", 0.5)).len(), 20);
    }

    fn good_answers() -> Vec<AnswerInput> {
        vec![
            answer(
                "What is a database index?",
                &["speeds up lookups", "costs extra writes and storage"],
                "An index speeds up lookups because the database can search a sorted structure instead of \
                 scanning every row. It costs extra writes and storage, so for example a write-heavy table \
                 with many indexes gets slower inserts.",
            ),
            answer(
                "How do you handle a production incident?",
                &[
                    "mitigate first",
                    "communicate status",
                    "blameless postmortem",
                ],
                "First I mitigate the impact, for example by rolling back. I communicate status to the team \
                 every thirty minutes, and afterwards we write a blameless postmortem with concrete actions.",
            ),
        ]
    }

    #[test]
    fn a_full_interview_gets_every_component_and_the_documented_weighting() {
        let input = ScoreInput {
            session_id: "s".into(),
            answers: good_answers(),
            frames: frames(30, true, "neutral", 0.9),
            total_questions: 2,
            ..Default::default()
        };
        let s = score(&input, 1);
        assert!(s.sufficient_data);
        let (t, c, e) = (
            s.technical_score.unwrap(),
            s.communication_score.unwrap(),
            s.engagement_score.unwrap(),
        );
        let expected = round1(0.5 * t + 0.3 * c + 0.2 * e);
        assert!((s.overall_score.unwrap() - expected).abs() < 0.15, "{s:?}");
        assert!(s.insights.iter().any(|i| i.category == "technical"));
        assert_eq!(s.components.len(), 4);
    }

    #[test]
    fn after_a_withdrawal_the_score_keeps_the_answers_and_nothing_from_the_frames() {
        let input = ScoreInput {
            session_id: "s".into(),
            answers: good_answers(),
            frames: frames(30, true, "happy", 0.4),
            total_questions: 2,
            ..Default::default()
        };
        let before = score(&input, 1);
        assert!(before.engagement_score.is_some());
        assert!(!before.engagement.emotion_distribution.is_empty());

        let after = before.without_face_analysis(2);
        assert_eq!(after.engagement_score, None);
        assert_eq!(after.engagement, EngagementSummary::default());
        assert!(!after.insights.iter().any(|i| i.category == "engagement"));
        assert_eq!(after.component(ComponentName::Engagement).reason, WITHDRAWN);
        assert_eq!(
            (after.technical_score, after.communication_score),
            (before.technical_score, before.communication_score),
            "the answers are judged as before"
        );
        let (t, c) = (
            after.technical_score.unwrap(),
            after.communication_score.unwrap(),
        );
        let expected = round1((0.5 * t + 0.3 * c) / 0.8);
        assert!(
            (after.overall_score.unwrap() - expected).abs() < 0.15,
            "{after:?}"
        );
        assert_eq!(after.answers, before.answers);
        assert_eq!(
            after.without_face_analysis(3).overall_score,
            after.overall_score
        );
    }

    #[test]
    fn the_weighting_is_described_from_the_weights_themselves() {
        assert_eq!(
            WEIGHTS.describe(),
            "Technical 50%, communication 30%, engagement 20%."
        );
        let other = Weights {
            technical: 0.6,
            communication: 0.4,
            engagement: 0.0,
        };
        assert_eq!(
            other.describe(),
            "Technical 60%, communication 40%, engagement 0%."
        );
    }

    #[test]
    fn too_few_frames_leave_engagement_out_and_reweight_the_rest() {
        let input = ScoreInput {
            session_id: "s".into(),
            answers: good_answers(),
            frames: frames(3, true, "happy", 0.8),
            total_questions: 2,
            ..Default::default()
        };
        let s = score(&input, 1);
        assert_eq!(s.engagement_score, None);
        let e = s.component(ComponentName::Engagement);
        assert!(
            !e.sufficient_data && e.reason.starts_with("Insufficient data"),
            "{e:?}"
        );
        // 0.5 and 0.3 renormalised over 0.8.
        assert!((s.component(ComponentName::Technical).weight - 0.625).abs() < 1e-3);
        assert!((s.component(ComponentName::Communication).weight - 0.375).abs() < 1e-3);
        assert!(s.overall_score.is_some());
        assert_eq!(
            s.component(ComponentName::Overall).reason,
            "Weighted over the components with data (technical 62%, communication 38%); left out: engagement."
        );
    }

    #[test]
    fn empty_transcripts_give_insufficient_data_instead_of_a_number() {
        let input = ScoreInput {
            session_id: "s".into(),
            answers: vec![answer("Q", &["x"], ""), answer("R", &["y"], "ok")],
            frames: frames(40, true, "neutral", 0.9),
            total_questions: 2,
            ..Default::default()
        };
        let s = score(&input, 1);
        assert!(!s.sufficient_data);
        assert_eq!(s.overall_score, None);
        assert_eq!(s.technical_score, None);
        assert!(s.feedback.starts_with("Insufficient data"));
    }

    #[test]
    fn unanswered_questions_pull_the_technical_score_down() {
        let base = ScoreInput {
            session_id: "s".into(),
            answers: good_answers(),
            total_questions: 2,
            ..Default::default()
        };
        let more_asked = ScoreInput {
            total_questions: 4,
            ..base.clone()
        };
        let a = score(&base, 1).technical_score.unwrap();
        let b = score(&more_asked, 1).technical_score.unwrap();
        assert!((b - a / 2.0).abs() < 0.2, "{a} {b}");
    }

    #[test]
    fn the_engagement_policy_never_uses_expressions() {
        let input = ScoreInput {
            session_id: "s".into(),
            answers: good_answers(),
            frames: frames(30, true, "angry", 0.9),
            analysis_policy: AnalysisPolicy::Engagement,
            ..Default::default()
        };
        let s = score(&input, 1);
        assert_eq!(s.engagement.composure, None);
        assert!(
            (s.engagement_score.unwrap() - 95.0).abs() < 0.01,
            "{:?}",
            s.engagement_score
        );
    }

    #[test]
    fn expressions_the_model_was_unsure_of_count_neither_way() {
        let mut all = frames(20, true, "neutral", 0.9);
        all.extend(frames(10, true, "angry", 0.9));
        all.extend(frames(30, true, UNCERTAIN, 0.9));
        let input = ScoreInput {
            session_id: "s".into(),
            answers: good_answers(),
            frames: all,
            analysis_policy: AnalysisPolicy::Full,
            ..Default::default()
        };
        let s = score(&input, 1);
        // 20 composed of the 30 read: the 30 uncertain ones change nothing.
        assert_eq!(s.engagement.composure, Some(0.667));
        assert_eq!(s.engagement.emotion_distribution.get(UNCERTAIN), Some(&30));
    }

    #[test]
    fn an_absent_face_lowers_engagement_and_says_so() {
        let mut f = frames(10, true, "neutral", 0.9);
        f.extend(frames(20, false, "", 0.0));
        let input = ScoreInput {
            session_id: "s".into(),
            answers: good_answers(),
            frames: f,
            ..Default::default()
        };
        let s = score(&input, 1);
        assert!(s.engagement_score.unwrap() < 70.0);
        assert!(
            s.insights
                .iter()
                .any(|i| i.description.contains("out of view"))
        );
    }
}
