//! Property tests: whatever a client sends, the scoring service's REST routes answer with a
//! client error and a code, never a crash.

use iv_platform::testing::arbitrary;
use iv_platform::testing::{never_a_server_error, post_json};
use proptest::prelude::*;
use serde_json::json;

use super::tests::app;

const ANSWER: &[&str] = &[
    "question_id",
    "question",
    "category",
    "expected_points",
    "transcript",
    "answer",
    "duration_secs",
];
const SCORE: &[&str] = &[
    "session_id",
    "user_id",
    "answers",
    "frames",
    "total_questions",
    "analysis_policy",
    "started_at",
    "completed_at",
    "org_id",
];
const REPORT: &[&str] = &["session_id", "format", "include_emotions", "include_video"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_body_gets_a_client_error_or_success(
        answer in arbitrary::body_with(ANSWER),
        answers in prop::collection::vec(arbitrary::body_with(ANSWER), 0..3),
        score in arbitrary::body_with(SCORE),
        report in arbitrary::body_with(REPORT),
        any_json in arbitrary::json(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let router = app().await;
            let requests = [
                post_json("/api/v1/scores/analyze", &answer),
                post_json("/api/v1/scores/analyze", &any_json),
                post_json("/api/v1/scores/calculate", &score),
                post_json("/api/v1/scores/calculate", &json!({"session_id": "s-1", "answers": answers})),
                post_json("/api/v1/scores/calculate", &any_json),
                post_json("/api/v1/scores/report", &report),
                post_json("/api/v1/scores/report", &any_json),
            ];
            for request in requests {
                never_a_server_error(&router, request, &[]).await.map_err(TestCaseError::fail)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
