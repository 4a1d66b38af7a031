//! Question sets: what the candidate is asked, and what a good answer to each covers.

use serde::{Deserialize, Serialize};

/// Interview question categories.
pub const CATEGORIES: [&str; 3] = ["introduction", "technical", "behavioural"];
pub const MAX_QUESTIONS: usize = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Question {
    pub id: String,
    pub text: String,
    pub category: String,
    /// What a good answer covers; scoring measures coverage of these.
    #[serde(default)]
    pub expected_points: Vec<String>,
}

/// A question as given by an operator when starting an interview with a custom set.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct QuestionSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub text: String,
    pub category: String,
    #[serde(default)]
    pub expected_points: Vec<String>,
}

/// Validates a custom set and gives every question a stable id.
pub fn from_specs(specs: Vec<QuestionSpec>) -> Result<Vec<Question>, String> {
    if specs.is_empty() || specs.len() > MAX_QUESTIONS {
        return Err(format!(
            "a question set needs 1 to {MAX_QUESTIONS} questions"
        ));
    }
    let mut out: Vec<Question> = Vec::with_capacity(specs.len());
    for (i, q) in specs.into_iter().enumerate() {
        let category = normalise_category(&q.category).ok_or_else(|| {
            format!(
                "question {}: category must be one of {}",
                i + 1,
                CATEGORIES.join(", ")
            )
        })?;
        if q.text.trim().is_empty() || q.text.len() > 1000 {
            return Err(format!(
                "question {}: text must be 1 to 1000 characters",
                i + 1
            ));
        }
        if q.expected_points.len() > 20
            || q.expected_points
                .iter()
                .any(|p| p.trim().is_empty() || p.len() > 300)
        {
            return Err(format!(
                "question {}: up to 20 expected points of 1 to 300 characters",
                i + 1
            ));
        }
        let id =
            q.id.filter(|id| !id.trim().is_empty())
                .unwrap_or_else(|| format!("q{}", i + 1));
        if id.len() > 64 || out.iter().any(|o| o.id == id) {
            return Err(format!(
                "question {}: ids must be unique and at most 64 characters",
                i + 1
            ));
        }
        out.push(Question {
            id,
            text: q.text.trim().to_string(),
            category: category.into(),
            expected_points: q.expected_points,
        });
    }
    Ok(out)
}

fn normalise_category(c: &str) -> Option<&'static str> {
    match c.trim().to_ascii_lowercase().as_str() {
        "introduction" | "intro" => Some("introduction"),
        "technical" => Some("technical"),
        "behavioural" | "behavioral" => Some("behavioural"),
        _ => None,
    }
}

fn q(id: &str, category: &str, text: &str, points: &[&str]) -> Question {
    Question {
        id: id.into(),
        text: text.into(),
        category: category.into(),
        expected_points: points.iter().map(|p| p.to_string()).collect(),
    }
}

/// The shipped default set: a general software-engineering interview.
pub fn default_set() -> Vec<Question> {
    vec![
        q(
            "intro-1",
            "introduction",
            "Tell me about yourself and your recent work.",
            &[
                "current role and responsibilities",
                "a recent project and its outcome",
                "technologies used day to day",
                "why this position interests you",
            ],
        ),
        q(
            "tech-1",
            "technical",
            "How would you design a URL shortening service?",
            &[
                "generate unique short keys or hashes",
                "database storage mapping keys to URLs",
                "cache popular redirects",
                "scale reads with replicas or load balancing",
                "handle expiry, collisions and abuse",
            ],
        ),
        q(
            "tech-2",
            "technical",
            "What is a database index, and when would you not add one?",
            &[
                "speeds up lookups and range queries",
                "extra storage and slower writes",
                "low selectivity columns gain little",
                "write-heavy tables pay the cost",
            ],
        ),
        q(
            "tech-3",
            "technical",
            "How do you make a service resilient when a dependency fails?",
            &[
                "timeouts on every call",
                "retries with exponential backoff and jitter",
                "circuit breaker to fail fast",
                "graceful degradation or fallback",
                "monitoring and alerting",
            ],
        ),
        q(
            "behav-1",
            "behavioural",
            "Tell me about a time you disagreed with a teammate. What happened?",
            &[
                "describe the situation and the disagreement",
                "listened to understand their view",
                "used data or evidence to decide",
                "outcome and what you learned",
            ],
        ),
        q(
            "behav-2",
            "behavioural",
            "Describe a project that failed or slipped. What did you do?",
            &[
                "own the mistake without blame",
                "communicate early with stakeholders",
                "concrete actions to recover",
                "lesson applied to later work",
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_set_covers_every_category_with_expected_points() {
        let set = default_set();
        assert!(set.len() >= 5);
        for c in CATEGORIES {
            assert!(set.iter().any(|q| q.category == c), "{c}");
        }
        assert!(set.iter().all(|q| !q.expected_points.is_empty()));
    }

    #[test]
    fn a_custom_set_is_validated_and_numbered() {
        let specs = vec![
            QuestionSpec {
                id: None,
                text: "Why Rust?".into(),
                category: "Technical".into(),
                expected_points: vec!["memory safety".into()],
            },
            QuestionSpec {
                id: Some("b".into()),
                text: "Teamwork?".into(),
                category: "behavioral".into(),
                expected_points: vec![],
            },
        ];
        let set = from_specs(specs).unwrap();
        assert_eq!(set[0].id, "q1");
        assert_eq!(set[1].category, "behavioural");
        let bad = vec![QuestionSpec {
            id: None,
            text: "x".into(),
            category: "trivia".into(),
            expected_points: vec![],
        }];
        assert!(from_specs(bad).unwrap_err().contains("category"));
        assert!(from_specs(vec![]).is_err());
    }
}
