//! The gateway's own behaviour: JSON 404s, request ids, bearer tokens, rate limits.

use futures_util::StreamExt;
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
    // Tokens that are not what they claim: each refused with 401 and a message saying why.
    let fresh = || {
        iv_platform::auth::Claims::for_principal(
            key.issuer(),
            key.audience(),
            &iv_stack::tokens::first_admin(),
            std::time::Duration::from_secs(600),
        )
    };
    let mut other_audience = fresh();
    other_audience.aud = "someone-else".into();
    let mut other_issuer = fresh();
    other_issuer.iss = "https://idp.elsewhere.example".into();
    // One character in the middle of the signature changed: still well-formed base64.
    let mut tampered = t.token.clone().into_bytes();
    let dot = t.token.rfind('.').unwrap();
    let at = dot + (t.token.len() - dot) / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let b64 = |v: serde_json::Value| {
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.to_string(),
        )
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(serde_json::to_value(fresh()).unwrap())
    );
    for (what, token) in [
        ("another audience", key.sign(&other_audience).unwrap()),
        ("another issuer", key.sign(&other_issuer).unwrap()),
        ("a tampered signature", tampered),
        ("alg none", unsigned),
    ] {
        let refused = post(vec![("authorization", format!("Bearer {token}"))]).await;
        assert_eq!(
            (refused.status.as_u16(), refused.json()["code"].clone()),
            (401, json!("UNAUTHENTICATED")),
            "{what}: {}",
            refused.json()
        );
    }
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

/// A browser cannot set headers on a WebSocket: it offers the token as a subprotocol, and the
/// gateway answers with the protocol it speaks (or the browser would drop the socket).
#[tokio::test]
async fn a_browser_socket_signs_in_with_its_invitation_as_a_subprotocol() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let t = spawn_stack(&[]).await;
    let started = t
        .post(
            "/api/v1/interviews/start",
            &json!({"user_id": "c-1", "candidate_name": "Ada", "consent": true}),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.json());
    let invitation = started.json()["invitation"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let id = started.json()["id"].as_str().unwrap().to_string();
    let mut request = t.ws_url(&id).into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("ai-interview, bearer.{invitation}")
            .parse()
            .unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "ai-interview");
    assert_eq!(ws_next(&mut ws).await["type"], "status");

    // Without it the upgrade is refused before any socket opens.
    let mut bare = t.ws_url(&id).into_client_request().unwrap();
    bare.headers_mut()
        .insert("sec-websocket-protocol", "ai-interview".parse().unwrap());
    match tokio_tungstenite::connect_async(bare).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected a 401 upgrade refusal, got {other:?}"),
    }
    t.stop().await;
}

/// A client that stops answering (no messages, no pongs) is closed by the gateway, so a
/// vanished browser does not hold a socket and an analysis slot forever.
#[tokio::test]
async fn a_silent_socket_is_closed_at_the_edge() {
    let t = spawn_stack(&[("GATEWAY_WS_IDLE_TIMEOUT_MS", "700")]).await;
    let id = t.start_interview(true).await;
    let mut ws = ws_connect(&t.ws_url(&id), Some(&t.token)).await;
    assert_eq!(ws_next(&mut ws).await["type"], "status");
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None
                | Some(Err(_))
                | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => {
                    return;
                }
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open well past the idle timeout");
    t.stop().await;
}
