//! The gateway's router without a listening socket (`oneshot`), with every upstream down: the
//! edge's codes (auth, rate limit), the upstream failure codes, and the JSON 404.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use iv_platform::testing::call;
use tower::ServiceExt;

use crate::{Config, app};

/// Every upstream on port 1, where nothing listens.
fn config(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("INTERVIEW_URL", "http://127.0.0.1:1"),
        ("EMOTION_URL", "http://127.0.0.1:1"),
        ("SCORING_URL", "http://127.0.0.1:1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_env(&env).unwrap()
}

/// A GET from one client address (the rate limits key on it), with an API key when given.
fn get(uri: &str, key: Option<&str>) -> Request<Body> {
    let mut request = iv_platform::testing::get(uri);
    let client: SocketAddr = ([127, 0, 0, 1], 40000).into();
    request.extensions_mut().insert(ConnectInfo(client));
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("x-api-key", key.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn a_down_upstream_is_a_502_with_a_code_and_an_unknown_path_a_json_404() {
    let router = app(&config(&[]));
    let (status, body) = call(&router, get("/api/v1/interviews/abc", None)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("UPSTREAM_UNAVAILABLE")),
        "{body}"
    );
    let (status, body) = call(&router, get("/api/v2/nothing", None)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn with_keys_set_the_api_needs_one_and_health_does_not() {
    let router = app(&config(&[("GATEWAY_API_KEYS", "k1,k2")]));
    let (status, body) = call(&router, get("/api/v1/scores/session/x", None)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED"))
    );
    let (status, _) = call(&router, get("/api/v1/scores/session/x", Some("wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&router, get("/api/v1/scores/session/x", Some("k2"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "past the edge: {body}");
    let (status, _) = call(&router, get("/health/live", None)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let router = app(&config(&[
        ("GATEWAY_RATE_PER_MINUTE", "60"),
        ("GATEWAY_RATE_BURST", "2"),
    ]));
    for _ in 0..2 {
        let (status, _) = call(&router, get("/api/v1/emotions/session/x", None)).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "within the burst");
    }
    let response = router
        .clone()
        .oneshot(get("/api/v1/emotions/session/x", None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!(
        (1..=2).contains(&retry_after),
        "one token a second: {retry_after}"
    );
}
