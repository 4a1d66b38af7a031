//! The gateway's own behaviour: JSON 404s, request ids, bearer tokens, rate limits.

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
    let mine = t
        .http
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
async fn without_a_valid_token_requests_are_refused() {
    let t = spawn_stack(&[]).await;
    let body = serde_json::to_vec(&json!({"user_id": "c"})).unwrap();
    let http = HttpClient::new();
    let url = t.url("/api/v1/interviews/start");
    let post = |headers: Vec<(&'static str, String)>| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http.send(
                http::Method::POST,
                &url,
                Some("application/json"),
                body,
                &headers,
            )
            .await
            .unwrap()
        }
    };
    let none = post(vec![]).await;
    assert_eq!(
        (none.status.as_u16(), none.json()["code"].clone()),
        (401, json!("UNAUTHENTICATED"))
    );
    assert_eq!(
        post(vec![("authorization", "Bearer k-two".into())])
            .await
            .status,
        401
    );
    // An identity header made up by the client is dropped at the edge, never believed.
    let forged = post(vec![("x-iv-identity", "anything".into())]).await;
    assert_eq!(forged.status, 401);
    // A token of the stack's own key that has run out.
    let key = iv_platform::auth::AuthConfig::from_env(&iv_platform::config::Env::new(&t.env))
        .unwrap()
        .signing_key()
        .unwrap();
    let mut claims = iv_platform::auth::Claims::for_principal(
        key.issuer(),
        key.audience(),
        &iv_stack::tokens::first_admin(),
        std::time::Duration::from_secs(60),
    );
    claims.exp -= 3600;
    claims.nbf -= 3600;
    let expired = post(vec![(
        "authorization",
        format!("Bearer {}", key.sign(&claims).unwrap()),
    )])
    .await;
    assert_eq!(expired.status, 401);
    assert!(
        expired.json()["error"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        expired.json()
    );
    let good = post(vec![("authorization", format!("Bearer {}", t.token))]).await;
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
    let limited = t.http.get(&t.url("/api/v1/interviews/x")).await.unwrap();
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
