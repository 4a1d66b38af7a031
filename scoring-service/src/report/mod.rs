//! The recruiter's report: built from a stored score, served as JSON or rendered to PDF.
//!
//! Reports hold aggregates and transcripts only: raw frames and video are never stored, so they
//! can never be part of a report.

use iv_contracts::policy::AnalysisPolicy;
use serde::{Deserialize, Serialize};

use crate::answer::PointEvidence;
use crate::overall::{Component, EngagementSummary, Insight, Score};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportAnswer {
    pub question_id: String,
    pub question: String,
    pub category: String,
    pub transcript: String,
    pub relevance: f32,
    pub clarity: f32,
    pub depth: f32,
    pub covered_points: Vec<String>,
    pub missed_points: Vec<String>,
    pub feedback: String,
    pub sufficient_data: bool,
    /// For every expected point: how it was judged and the candidate's statement behind it.
    #[serde(default)]
    pub evidence: Vec<PointEvidence>,
}

/// How answers are scored, in words a recruiter reads in every report.
pub const SCORING_EXPLAINED: &str = "How answers are scored: each expected point is compared by meaning with every statement of the answer, using the sentence model all-MiniLM-L6-v2 (a pretrained English model; cosine similarity of sentence embeddings). A point counts as covered when a statement is close enough in meaning, and in part when it comes near; a statement that rejects or negates the point, or a point only named in a list of keywords, does not count. Relevance is 80% point coverage and 20% closeness to the question (100% closeness when no points are set), scaled down when much of the answer is off the question. Depth counts on-topic substance, reasoning and examples; clarity takes off for fillers, very long or short sentences, pace and keyword lists. Known limits: English only; very short answers (under 5 words) are not assessed; the model judges topic better than correctness, so a fluent wrong statement about the right topic can still count. Scores are advisory: a person makes the decision.";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub session_id: String,
    pub user_id: String,
    pub generated_at: i64,
    pub score_calculated_at: i64,
    #[serde(deserialize_with = "iv_contracts::policy::deserialize_stored")]
    pub analysis_policy: AnalysisPolicy,
    pub sufficient_data: bool,
    pub overall_score: Option<f32>,
    pub feedback: String,
    pub components: Vec<Component>,
    pub insights: Vec<Insight>,
    pub answers: Vec<ReportAnswer>,
    /// Present when asked for and when the policy allowed frame analysis.
    pub engagement: Option<EngagementSummary>,
    /// How the answer scores were computed, their limits, and that they are advisory.
    #[serde(default)]
    pub scoring_method: String,
    /// The decisions people recorded, when the report was asked for through the interview
    /// (which holds them); `None` when asked for here directly.
    #[serde(default)]
    pub decisions: Option<Vec<ReportDecision>>,
}

/// A hiring decision, made by a person: the system never decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportDecision {
    pub decision: String,
    pub reason: String,
    pub decided_by: String,
    pub decided_role: String,
    pub decided_at: i64,
}

pub fn build(score: &Score, include_emotions: bool, now_ms: i64) -> Report {
    let mut engagement = (include_emotions && score.analysis_policy != AnalysisPolicy::Off)
        .then(|| score.engagement.clone());
    if let Some(e) = engagement
        .as_mut()
        .filter(|_| score.analysis_policy == AnalysisPolicy::Engagement)
    {
        e.emotion_distribution.clear();
        e.composure = None;
    }
    Report {
        session_id: score.session_id.clone(),
        user_id: score.user_id.clone(),
        generated_at: now_ms,
        score_calculated_at: score.calculated_at,
        analysis_policy: score.analysis_policy,
        sufficient_data: score.sufficient_data,
        overall_score: score.overall_score,
        feedback: score.feedback.clone(),
        components: score.components.clone(),
        insights: score.insights.clone(),
        answers: score
            .answers
            .iter()
            .map(|a| ReportAnswer {
                question_id: a.question_id.clone(),
                question: a.question.clone(),
                category: a.category.clone(),
                transcript: a.transcript.clone(),
                relevance: a.analysis.relevance,
                clarity: a.analysis.clarity,
                depth: a.analysis.depth,
                covered_points: a.analysis.covered_points.clone(),
                missed_points: a.analysis.missed_points.clone(),
                feedback: a.analysis.feedback.clone(),
                sufficient_data: a.analysis.sufficient_data,
                evidence: a.analysis.evidence.clone(),
            })
            .collect(),
        engagement,
        scoring_method: SCORING_EXPLAINED.into(),
        decisions: None,
    }
}

/// One line of the report as the PDF lays it out: a heading, text, or a block where a picture
/// is drawn (the score bars, the attention timeline).
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Heading(String),
    Text(String),
    ScoreBars,
    AttentionTimeline,
}

#[cfg(test)]
impl Line {
    fn text(&self) -> &str {
        match self {
            Self::Heading(t) | Self::Text(t) => t,
            Self::ScoreBars | Self::AttentionTimeline => "",
        }
    }
}

fn lines(report: &Report) -> Vec<Line> {
    let mut out = vec![Line::Heading("Interview report".to_string())];
    out.push(Line::Text(format!("Session {}", report.session_id)));
    if !report.user_id.is_empty() {
        out.push(Line::Text(format!("Candidate {}", report.user_id)));
    }
    out.push(Line::Text(format!(
        "Analysis policy: {}",
        report.analysis_policy
    )));
    out.push(Line::Text(String::new()));
    out.push(Line::Heading("Scores".into()));
    out.push(Line::ScoreBars);
    for c in &report.components {
        let score = c
            .score
            .map_or("insufficient data".to_string(), |s| format!("{s:.0}/100"));
        out.push(Line::Text(format!(
            "{}: {score} (weight {:.0}%)",
            c.name,
            c.weight * 100.0
        )));
        out.push(Line::Text(format!("    {}", c.reason)));
    }
    out.push(Line::Text(report.feedback.clone()));
    out.push(Line::Text(String::new()));
    if !report.insights.is_empty() {
        out.push(Line::Heading("Insights".into()));
        for i in &report.insights {
            out.push(Line::Text(format!("[{}] {}", i.category, i.description)));
        }
        out.push(Line::Text(String::new()));
    }
    out.push(Line::Heading("Answers".into()));
    for (n, a) in report.answers.iter().enumerate() {
        out.push(Line::Text(format!(
            "{}. {} ({})",
            n + 1,
            a.question,
            a.category
        )));
        if a.sufficient_data {
            out.push(Line::Text(format!(
                "    relevance {:.0}, clarity {:.0}, depth {:.0}",
                a.relevance, a.clarity, a.depth
            )));
        }
        out.push(Line::Text(format!("    {}", a.feedback)));
        for e in &a.evidence {
            let said = e.sentence.as_deref().map_or(String::new(), |s| {
                format!(": \"{s}\" (similarity {:.2})", e.similarity)
            });
            out.push(Line::Text(format!(
                "    - {} [{}]{said}",
                e.point,
                e.status.as_str()
            )));
        }
        out.push(Line::Text(format!("    Transcript: {}", a.transcript)));
    }
    out.push(Line::Text(String::new()));
    out.push(Line::Heading("Decision (made by people)".into()));
    match &report.decisions {
        None => out.push(Line::Text(
            "Decisions are recorded on the interview; its report \
             (GET /api/v1/interviews/{id}/report) shows them."
                .into(),
        )),
        Some(d) if d.is_empty() => out.push(Line::Text("No decision recorded yet.".into())),
        Some(d) => {
            for d in d {
                out.push(Line::Text(format!(
                    "{}: {} by {} ({}), {}",
                    d.decision,
                    d.reason,
                    d.decided_by,
                    d.decided_role,
                    utc_minute(d.decided_at)
                )));
            }
        }
    }
    out.push(Line::Text(String::new()));
    out.push(Line::Heading("How this report was made".into()));
    out.push(Line::Text(SCORING_EXPLAINED.into()));
    if let Some(e) = &report.engagement {
        out.push(Line::Text(String::new()));
        out.push(Line::Heading("Engagement".into()));
        out.push(Line::Text(format!(
            "Frames analysed: {}; face visible {:.0}%",
            e.frames_analyzed,
            e.face_presence * 100.0
        )));
        if let Some(a) = e.mean_attention {
            out.push(Line::Text(format!("Mean attention {:.0}%", a * 100.0)));
        }
        if !e.timeline.is_empty() {
            out.push(Line::Text(
                "Attention over the interview (shaded: no face in view):".into(),
            ));
            out.push(Line::AttentionTimeline);
        }
        if !e.emotion_distribution.is_empty() {
            let dist: Vec<String> = e
                .emotion_distribution
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            out.push(Line::Text(format!("Expressions: {}", dist.join(", "))));
        }
    }
    out
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM UTC` (days to a civil date after H. Hinnant's
/// `civil_from_days`), so a report needs no date crate for one line.
fn utc_minute(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

mod pdf;

pub use pdf::to_pdf;

#[cfg(test)]
mod tests {
    use super::pdf::{BARS_WIDTH, bar_width, wrap};
    use super::*;
    use crate::answer::AnswerInput;
    use crate::overall::{ScoreInput, analyze_answers, calculate};

    fn score() -> Score {
        let input = ScoreInput {
            session_id: "sess-1".into(),
            user_id: "cand-7".into(),
            answers: vec![AnswerInput {
                question_id: "q1".into(),
                question: "What is an index?".into(),
                category: "technical".into(),
                expected_points: vec!["speeds up lookups".into()],
                transcript: "An index speeds up lookups because it avoids scanning every row of the table. Café ünïcode 漢字."
                    .into(),
                duration_secs: Some(10.0),
            }],
            total_questions: 1,
            ..Default::default()
        };
        calculate(
            &input,
            analyze_answers(&input.answers, &crate::meaning::test_encoder()).unwrap(),
            5,
        )
    }

    #[test]
    fn the_pdf_is_a_complete_document_with_the_scores_in_it() {
        let report = build(&score(), true, 6);
        let pdf = to_pdf(&report);
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("Interview report"));
        assert!(text.contains("sess-1"));
        let overall = report.components.last().unwrap();
        let technical = &report.components[0];
        for c in [technical, overall] {
            let score = c.score.expect("scored");
            let line = format!("{}: {score:.0}/100", c.name);
            assert!(text.contains(&line), "{line:?} is in the PDF");
        }
        assert!(overall.score.unwrap() > 0.0);
    }

    #[test]
    fn the_pdf_draws_each_score_as_a_bar() {
        let mut report = build(&score(), true, 6);
        assert_eq!(bar_width(Some(50.0)), Some(BARS_WIDTH / 2.0));
        assert_eq!(bar_width(Some(140.0)), Some(BARS_WIDTH));
        assert_eq!(bar_width(None), None);
        let rects = |r: &Report| String::from_utf8_lossy(&to_pdf(r)).matches(" re\n").count();
        let scored = report
            .components
            .iter()
            .filter(|c| c.score.is_some())
            .count();
        let unscored = report.components.len() - scored;
        assert!(scored >= 2 && unscored >= 1, "{:?}", report.components);
        assert_eq!(
            rects(&report),
            2 * scored + unscored,
            "a track each, a bar per score"
        );
        report.components.truncate(1);
        assert_eq!(rects(&report), 2);
        assert!(lines(&report).contains(&Line::ScoreBars));
    }

    #[test]
    fn the_pdf_draws_attention_over_time_with_the_stretches_out_of_view_shaded() {
        let mut report = build(&score(), true, 6);
        let pdf = |r: &Report| String::from_utf8_lossy(&to_pdf(r)).into_owned();
        let without = pdf(&report);
        assert!(!without.contains("Attention over the interview"));
        let point = |offset_ms, attention| crate::overall::AttentionPoint {
            offset_ms,
            attention,
        };
        let engagement = report.engagement.as_mut().unwrap();
        engagement.timeline = vec![
            point(0, Some(0.9)),
            point(1000, Some(0.8)),
            point(2000, None),
            point(3000, None),
            point(4000, Some(0.5)),
            point(5000, None),
        ];
        let with = pdf(&report);
        assert!(with.contains("Attention over the interview"));
        let rects = |text: &str| text.matches(" re\n").count();
        // The plot's frame, and one shaded rectangle per stretch out of view (two here).
        assert_eq!(rects(&with), rects(&without) + 1 + 2);
        // Two runs of attention: each starts with a move, and every stretch is a line across.
        assert_eq!(
            with.matches(" m\n").count() - without.matches(" m\n").count(),
            1 + 2
        );
        assert!(
            with.contains("6 s"),
            "the time axis ends at the last stretch's end"
        );
        assert_eq!(super::pdf::timeline_x(0, 6000), 90.0);
        assert_eq!(super::pdf::timeline_x(6000, 6000), 510.0);
    }

    #[test]
    fn each_point_shows_its_evidence_and_the_report_says_how_it_scores() {
        let report = build(&score(), false, 6);
        let evidence = &report.answers[0].evidence;
        assert_eq!(evidence.len(), 1);
        assert_eq!(evidence[0].status, crate::answer::PointStatus::Covered);
        let text: Vec<String> = lines(&report)
            .iter()
            .map(|l| l.text().to_string())
            .collect();
        let text = text.join("\n");
        assert!(
            text.contains("- speeds up lookups [covered]: \"An index speeds up lookups"),
            "{text}"
        );
        assert!(text.contains("all-MiniLM-L6-v2") && text.contains("advisory"));
        assert!(report.scoring_method.contains("English only"));
    }

    #[test]
    fn the_report_shows_the_decisions_people_recorded_or_where_to_find_them() {
        let mut report = build(&score(), false, 6);
        let text = |r: &Report| {
            lines(r)
                .iter()
                .map(|l| l.text().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(text(&report).contains("GET /api/v1/interviews/{id}/report"));
        report.decisions = Some(Vec::new());
        assert!(text(&report).contains("No decision recorded yet."));
        report.decisions = Some(vec![ReportDecision {
            decision: "advance".into(),
            reason: "clear design".into(),
            decided_by: "rita".into(),
            decided_role: "recruiter".into(),
            decided_at: 1_796_342_400_000,
        }]);
        assert!(
            text(&report)
                .contains("advance: clear design by rita (recruiter), 2026-12-04 00:00 UTC"),
            "{}",
            text(&report)
        );
        assert!(String::from_utf8_lossy(&to_pdf(&report)).contains("advance: clear design"));
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(951_827_696_000), "2000-02-29 12:34 UTC");
    }

    #[test]
    fn a_long_report_flows_onto_more_pages() {
        let mut s = score();
        let a = s.answers[0].clone();
        s.answers = vec![a; 40];
        let pdf = to_pdf(&build(&s, false, 6));
        let text = String::from_utf8_lossy(&pdf);
        let count: u32 = text
            .split("/Count ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .expect("a page tree with a count");
        assert!(count > 1, "{count} page(s)");
    }

    #[test]
    fn lines_wrap_on_word_boundaries_and_keep_their_indent() {
        let w = wrap("    aaa bbb ccc ddd", 12);
        assert_eq!(w, vec!["    aaa bbb", "    ccc ddd"]);
    }

    #[test]
    fn emotions_stay_out_of_the_report_unless_asked_for() {
        assert!(build(&score(), false, 6).engagement.is_none());
        assert!(build(&score(), true, 6).engagement.is_some());
    }
}
