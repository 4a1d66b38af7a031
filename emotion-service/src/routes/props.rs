//! Property tests: whatever a client sends, the emotion service's REST routes answer with a
//! client error and a code, or (this instance has no models) an honest 503, never a crash.

use iv_platform::testing::arbitrary::{self, image_like_bytes};
use iv_platform::testing::{get, never_a_server_error, post_json};
use proptest::prelude::*;
use serde_json::json;

use super::tests::{app, base64};

const FRAME: &[&str] = &[
    "session_id",
    "image",
    "timestamp",
    "format",
    "policy",
    "frame_number",
    "org_id",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_body_gets_a_client_error_or_an_honest_unavailable(
        frame in arbitrary::body_with(FRAME),
        frames in prop::collection::vec(arbitrary::body_with(FRAME), 0..4),
        any_json in arbitrary::json(),
        image in image_like_bytes(),
        id in "[^/?#]{0,40}",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let router = app().await;
            let real_looking = json!({"session_id": "s-1", "image": base64(&image)});
            let requests = [
                post_json("/api/v1/emotions/analyze", &frame),
                post_json("/api/v1/emotions/analyze", &any_json),
                post_json("/api/v1/emotions/analyze", &real_looking),
                post_json("/api/v1/emotions/batch", &json!({"session_id": "s-1", "frames": frames})),
                post_json("/api/v1/emotions/batch", &any_json),
                get(&format!("/api/v1/emotions/session/{}", urlencode(&id))),
            ];
            for request in requests {
                never_a_server_error(&router, request, &["MODELS_UNAVAILABLE"])
                    .await
                    .map_err(TestCaseError::fail)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
