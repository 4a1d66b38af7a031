//! The gateway's router without a listening socket (`oneshot`), with every upstream down: the
//! edge's codes (auth, rate limit), the upstream failure codes, and the JSON 404.

use std::time::Duration;

use iv_platform::auth::{OrgId, Principal, Role};

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use iv_platform::testing::call;
use tower::ServiceExt;

use crate::{Config, app};

/// Every upstream on port 1, where nothing listens; keys in a fresh data directory.
pub(crate) fn config(extra: &[(&str, &str)]) -> Config {
    let dir = std::env::temp_dir().join(format!("iv-gateway-{}", uuid::Uuid::new_v4()));
    let mut env: HashMap<String, String> = [
        ("INTERVIEW_URL", "http://127.0.0.1:1"),
        ("EMOTION_URL", "http://127.0.0.1:1"),
        ("SCORING_URL", "http://127.0.0.1:1"),
        ("DATA_DIR", dir.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_env(&env).unwrap()
}

/// A token of the backend's own issuer for `subject`, a recruiter of `acme`.
fn token(config: &Config, subject: &str) -> String {
    let principal = Principal::member(subject, Role::Recruiter, OrgId("acme".into()));
    config
        .server
        .auth
        .signing_key()
        .unwrap()
        .mint(&principal, Duration::from_secs(600))
        .unwrap()
}

/// A GET from one client address (the rate limits key on it), with a bearer token when given.
pub(crate) fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut request = iv_platform::testing::get(uri);
    let client: SocketAddr = ([127, 0, 0, 1], 40000).into();
    request.extensions_mut().insert(ConnectInfo(client));
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

#[tokio::test]
async fn a_down_upstream_is_a_502_with_a_code_and_an_unknown_path_a_json_404() {
    let config = config(&[]);
    let router = app(&config).unwrap();
    let token = token(&config, "alice");
    let (status, body) = call(&router, get("/api/v1/interviews/abc", Some(&token))).await;
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
async fn the_api_needs_a_valid_token_and_health_does_not() {
    let config = config(&[]);
    let router = app(&config).unwrap();
    let (status, body) = call(&router, get("/api/v1/scores/session/x", None)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED"))
    );
    let (status, _) = call(&router, get("/api/v1/scores/session/x", Some("wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A token of another installation's key: well-formed, but not this backend's.
    let stranger = token(&super::tests::config(&[]), "mallory");
    let (status, _) = call(&router, get("/api/v1/scores/session/x", Some(&stranger))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let good = token(&config, "alice");
    let (status, body) = call(&router, get("/api/v1/scores/session/x", Some(&good))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "past the edge: {body}");
    let (status, _) = call(&router, get("/health/live", None)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let config = config(&[
        ("GATEWAY_RATE_PER_MINUTE", "60"),
        ("GATEWAY_RATE_BURST", "2"),
    ]);
    let router = app(&config).unwrap();
    let alice = token(&config, "alice");
    for _ in 0..2 {
        let (status, _) = call(&router, get("/api/v1/emotions/session/x", Some(&alice))).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "within the burst");
    }
    let response = router
        .clone()
        .oneshot(get("/api/v1/emotions/session/x", Some(&alice)))
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

#[tokio::test]
async fn one_identity_over_its_rate_leaves_another_on_the_same_address_alone() {
    let config = config(&[
        ("GATEWAY_RATE_PER_MINUTE", "60"),
        ("GATEWAY_RATE_BURST", "3"),
    ]);
    let router = app(&config).unwrap();
    let (alice, bob) = (token(&config, "alice"), token(&config, "bob"));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            call(&router, get("/api/v1/scores/session/x", Some(&alice)))
                .await
                .0,
        );
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        3,
        "{statuses:?}"
    );
    let (status, _) = call(&router, get("/api/v1/scores/session/x", Some(&bob))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "bob has his own bucket");
}

#[tokio::test]
async fn refused_credentials_count_against_the_address() {
    let config = config(&[
        ("GATEWAY_RATE_PER_MINUTE", "60"),
        ("GATEWAY_RATE_BURST", "3"),
    ]);
    let router = app(&config).unwrap();
    let mut statuses = Vec::new();
    for guess in 0..5 {
        let guess = format!("guess-{guess}");
        statuses.push(
            call(&router, get("/api/v1/scores/session/x", Some(&guess)))
                .await
                .0,
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// The pages are files of the web directory, served without a token (they ask for one), with a
/// policy that keeps them to this origin; nothing outside `app/` and the chart library is
/// reachable, and a missing file is the JSON 404.
#[tokio::test]
async fn the_pages_are_served_from_the_web_directory_and_nothing_else_is() {
    let web = std::env::temp_dir().join(format!("iv-web-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(web.join("app")).unwrap();
    std::fs::create_dir_all(web.join("node_modules/uplot/dist")).unwrap();
    std::fs::create_dir_all(web.join("node_modules/other")).unwrap();
    std::fs::write(
        web.join("app/index.html"),
        "<!doctype html><title>t</title>",
    )
    .unwrap();
    std::fs::write(web.join("app/main.js"), "export {};").unwrap();
    std::fs::write(web.join("node_modules/uplot/dist/uPlot.esm.js"), "x").unwrap();
    std::fs::write(web.join("node_modules/other/secret.js"), "x").unwrap();
    std::fs::write(web.join("package.json"), "{}").unwrap();
    let config = config(&[("GATEWAY_WEB_DIR", web.to_str().unwrap())]);
    let router = app(&config).unwrap();
    let fetch = |uri: &str| router.clone().oneshot(get(uri, None));

    let index = fetch("/?invitation=abc").await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = index.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(index.headers()["referrer-policy"], "no-referrer");
    let script = fetch("/app/main.js").await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(
        fetch("/vendor/uplot/uPlot.esm.js").await.unwrap().status(),
        StatusCode::OK
    );
    for outside in [
        "/app/../package.json",
        "/app/%2e%2e/package.json",
        "/vendor/uplot/../../other/secret.js",
        "/package.json",
        "/node_modules/other/secret.js",
        "/app/missing.js",
    ] {
        let (status, body) = call(&router, get(outside, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{outside}");
        assert_eq!(body["code"], "NOT_FOUND", "{outside}");
    }
}
