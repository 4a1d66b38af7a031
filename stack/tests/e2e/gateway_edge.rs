//! The gateway's own behaviour: JSON 404s, request ids, API keys, rate limits.

use iv_platform::client::HttpClient;
use serde_json::json;

use iv_test_support::*;

#[tokio::test]
async fn unknown_paths_get_a_json_not_found_and_every_response_a_request_id() {
    let t = spawn_stack(&[]).await;
    let request_id = |resp: &iv_platform::client::HttpResponse| {
        resp.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let mut ids = std::collections::HashSet::new();
    for path in ["/nope", "/api/v2/interviews", "/api/v1/unknown/thing"] {
        let resp = t.get(path).await;
        assert_eq!(resp.status, 404, "{path}");
        assert_eq!(resp.json()["error"], "not found", "{path}");
        let id = request_id(&resp).unwrap_or_else(|| panic!("{path}: no x-request-id"));
        assert!(ids.insert(id), "{path}: a fresh id per request");
    }
    let resp = HttpClient::new()
        .send(http::Method::GET, &t.url("/health"), None, Vec::new(), &[])
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(request_id(&resp).is_some(), "health answers carry one too");
    // A caller's own id is kept end to end (through the gateway to the service and back).
    let mine = HttpClient::new()
        .send(
            http::Method::GET,
            &t.url("/api/v1/interviews/none"),
            None,
            Vec::new(),
            &[("x-request-id", "caller-chosen-42")],
        )
        .await
        .unwrap();
    assert_eq!(mine.status, 404);
    assert_eq!(request_id(&mine).as_deref(), Some("caller-chosen-42"));
    let ready = t.get("/api/v1/scores/health").await;
    assert_eq!(
        ready.json()["service"],
        "scoring-service",
        "route groups reach their service"
    );
    t.stop().await;
}

#[tokio::test]
async fn with_api_keys_configured_requests_without_a_valid_key_are_refused() {
    let t = spawn_stack(&[("GATEWAY_API_KEYS", "k-one,k-two")]).await;
    let body = serde_json::to_vec(&json!({"user_id": "c"})).unwrap();
    let http = HttpClient::new();
    let url = t.url("/api/v1/interviews/start");
    let none = http
        .send(
            http::Method::POST,
            &url,
            Some("application/json"),
            body.clone(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (none.status.as_u16(), none.json()["code"].clone()),
        (401, json!("UNAUTHENTICATED"))
    );
    let wrong = http
        .send(
            http::Method::POST,
            &url,
            Some("application/json"),
            body.clone(),
            &[("x-api-key", "k-three")],
        )
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    let good = http
        .send(
            http::Method::POST,
            &url,
            Some("application/json"),
            body,
            &[("authorization", "Bearer k-two")],
        )
        .await
        .unwrap();
    assert_eq!(good.status, 201);
    assert_eq!(
        t.get("/health").await.status,
        200,
        "health stays open for load balancers"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let t = spawn_stack(&[
        ("GATEWAY_RATE_PER_MINUTE", "60"),
        ("GATEWAY_RATE_BURST", "3"),
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(t.get("/api/v1/interviews/x").await.status.as_u16());
    }
    assert_eq!(&statuses[..3], &[404, 404, 404]);
    assert_eq!(statuses[3], 429);
    let limited = HttpClient::new()
        .get(&t.url("/api/v1/interviews/x"))
        .await
        .unwrap();
    assert_eq!(limited.json()["code"], "RATE_LIMITED");
    let retry_after: u64 = limited
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!(
        (1..=2).contains(&retry_after),
        "one request a second comes back within a second or two: {retry_after}"
    );
    t.stop().await;
}
