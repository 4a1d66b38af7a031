//! The recruiter's report: built from a stored score, served as JSON or rendered to PDF.
//!
//! Reports hold aggregates and transcripts only: raw frames and video are never stored, so they
//! can never be part of a report.

use iv_contracts::policy::AnalysisPolicy;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use serde::{Deserialize, Serialize};

use crate::answer::PointEvidence;
use crate::overall::{Component, EngagementSummary, Insight, Score};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The report as text lines (heading flag, text), shared by the PDF and tests.
/// One line of the PDF: a heading, text, or the block where the score bars are drawn.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Heading(String),
    Text(String),
    ScoreBars,
}

#[cfg(test)]
impl Line {
    fn text(&self) -> &str {
        match self {
            Self::Heading(t) | Self::Text(t) => t,
            Self::ScoreBars => "",
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

/// Wraps a line at `width` characters on word boundaries.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let indent: String = text.chars().take_while(|c| *c == ' ').collect();
    let mut lines = Vec::new();
    let mut current = indent.clone();
    for word in text.split_whitespace() {
        if current.trim().is_empty() {
            current = format!("{indent}{word}");
        } else if current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut current, format!("{indent}{word}")));
        } else {
            current.push(' ');
            current.push_str(word);
        }
    }
    lines.push(current);
    lines
}

/// WinAnsi text for the standard Helvetica font; characters it cannot show become '?'.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| {
            if (c as u32) < 256 && c != '\u{7f}' {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// Score bars: the labels' column, then 0..100 across this many points.
const BARS_LEFT: f32 = 200.0;
const BARS_WIDTH: f32 = 250.0;
const BAR_HEIGHT: f32 = 9.0;
/// One bar per component, this far apart (a little over a text line, so labels stay clear).
const BAR_STEP: f32 = 16.0;

/// How long one component's bar is drawn, in points; `None` when it has no score.
fn bar_width(score: Option<f32>) -> Option<f32> {
    score.map(|s| s.clamp(0.0, 100.0) / 100.0 * BARS_WIDTH)
}

/// Renders the report as an A4 PDF using the standard Helvetica fonts (nothing embedded), with
/// the scores drawn as bars (vector graphics) beside their text.
pub fn to_pdf(report: &Report) -> Vec<u8> {
    const TOP: f32 = 800.0;
    const BOTTOM: f32 = 50.0;
    const LEADING: f32 = 14.0;
    let height = |line: &Line| match line {
        Line::Heading(_) => LEADING * 1.5,
        Line::Text(_) => LEADING,
        Line::ScoreBars => report.components.len() as f32 * BAR_STEP + LEADING / 2.0,
    };
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let mut y = TOP;
    for line in lines(report) {
        let parts = match line {
            Line::Heading(t) => wrap(&t, 95).into_iter().map(Line::Heading).collect(),
            Line::Text(t) => wrap(&t, 95).into_iter().map(Line::Text).collect(),
            Line::ScoreBars => vec![Line::ScoreBars],
        };
        for part in parts {
            if y < BOTTOM || (part == Line::ScoreBars && y - height(&part) < BOTTOM) {
                pages.push(Vec::new());
                y = TOP;
            }
            y -= height(&part);
            pages.last_mut().expect("at least one page").push(part);
        }
    }

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    let mut kids = Vec::new();
    for (i, page_lines) in pages.iter().enumerate() {
        let page_id = Ref::new(5 + 2 * i as i32);
        let content_id = Ref::new(6 + 2 * i as i32);
        kids.push(page_id);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
            .parent(tree)
            .contents(content_id);
        page.resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        page.finish();

        let mut content = Content::new();
        let mut y = TOP;
        for line in page_lines {
            match line {
                Line::Heading(text) => show(&mut content, Name(b"F2"), 14.0, 50.0, y, text),
                Line::Text(text) => show(&mut content, Name(b"F1"), 10.0, 50.0, y, text),
                Line::ScoreBars => draw_bars(&mut content, &report.components, y),
            }
            y -= height(line);
        }
        pdf.stream(content_id, &content.finish());
    }
    let count = kids.len() as i32;
    pdf.pages(tree).kids(kids).count(count);
    pdf.finish()
}

fn show(content: &mut Content, font: Name, size: f32, x: f32, y: f32, text: &str) {
    content.begin_text();
    content.set_font(font, size);
    content.next_line(x, y);
    content.show(Str(&win_ansi(text)));
    content.end_text();
}

/// One row per component below `top`: its name, a grey track for 0..100, the score as a filled
/// bar over it, and the number; a component without a score says so instead of a bar.
fn draw_bars(content: &mut Content, components: &[Component], top: f32) {
    for (i, c) in components.iter().enumerate() {
        let y = top - i as f32 * BAR_STEP;
        show(content, Name(b"F1"), 10.0, 50.0, y, &c.name.to_string());
        content.set_fill_rgb(0.9, 0.9, 0.9);
        content.rect(BARS_LEFT, y - 1.0, BARS_WIDTH, BAR_HEIGHT);
        content.fill_nonzero();
        let label = match bar_width(c.score) {
            Some(width) => {
                content.set_fill_rgb(0.15, 0.35, 0.65);
                content.rect(BARS_LEFT, y - 1.0, width, BAR_HEIGHT);
                content.fill_nonzero();
                format!("{:.0}", c.score.unwrap_or_default())
            }
            None => "insufficient data".to_string(),
        };
        content.set_fill_gray(0.0);
        show(
            content,
            Name(b"F1"),
            10.0,
            BARS_LEFT + BARS_WIDTH + 8.0,
            y,
            &label,
        );
    }
}

#[cfg(test)]
mod tests {
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
