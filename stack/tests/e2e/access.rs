//! Who may see what, through the gateway as each kind of caller: anonymous, the candidate of this
//! interview, the candidate of another, a recruiter of this organisation, a recruiter of
//! another, an admin. Another organisation's interview answers 404, as if it did not exist.

use std::time::Duration;

use iv_platform::auth::{OrgId, Principal, Role};
use iv_platform::client::HttpClient;
use serde_json::{Value, json};

use iv_test_support::*;

const ROLES: [&str; 6] = [
    "anonymous",
    "candidate of this interview",
    "candidate of another",
    "recruiter of this org",
    "recruiter of another org",
    "admin",
];

fn org(name: &str) -> OrgId {
    OrgId(name.into())
}

#[tokio::test]
async fn each_role_gets_what_the_route_matrix_says() {
    let t = spawn_stack(&[]).await;
    let token = |p: Principal| {
        iv_stack::tokens::mint(&t.env, &p, Duration::from_secs(600)).expect("a token")
    };
    let here = t.start_interview(true).await;
    let elsewhere = t.start_interview(true).await;
    let tokens: [Option<String>; 6] = [
        None,
        Some(token(Principal::candidate(
            "invite-a",
            org("default"),
            &here,
        ))),
        Some(token(Principal::candidate(
            "invite-b",
            org("default"),
            &elsewhere,
        ))),
        Some(token(Principal::member(
            "rita",
            Role::Recruiter,
            org("default"),
        ))),
        Some(token(Principal::member(
            "otto",
            Role::Recruiter,
            org("other"),
        ))),
        Some(t.token.clone()),
    ];
    let get = |path: String| (http::Method::GET, path, Value::Null);
    let post = |path: &str, body: Value| (http::Method::POST, path.to_string(), body);
    let cases: Vec<Case> = vec![
        (
            get(format!("/api/v1/interviews/{here}")),
            [401, 200, 404, 200, 404, 200],
        ),
        (
            get(format!("/api/v1/interviews/{here}/status")),
            [401, 200, 404, 200, 404, 200],
        ),
        (
            // A well-formed answer to a question the interview does not have: those who may
            // see the interview hear that, the others that there is no such interview.
            post(
                &format!("/api/v1/interviews/{here}/answers"),
                json!({"question_id": "nope", "transcript": "x", "duration": 1.0}),
            ),
            [401, 400, 404, 400, 404, 400],
        ),
        (
            post(
                "/api/v1/interviews/start",
                json!({"user_id": "c", "consent": true}),
            ),
            [401, 403, 403, 201, 201, 201],
        ),
        (
            get("/api/v1/interviews?sort=score".to_string()),
            [401, 403, 403, 200, 200, 200],
        ),
        (
            get("/api/v1/organisation/members".to_string()),
            [401, 403, 403, 403, 403, 200],
        ),
        (
            post(
                "/api/v1/organisation/members",
                json!({"subject": "new-recruiter", "role": "recruiter"}),
            ),
            [401, 403, 403, 403, 403, 201],
        ),
        (
            post("/api/v1/scores/calculate", json!({})),
            [401, 403, 403, 403, 403, 400],
        ),
        (
            post("/api/v1/emotions/analyze", json!({})),
            [401, 403, 403, 403, 403, 400],
        ),
        (
            post("/api/v1/emotions/batch", json!({})),
            [401, 403, 403, 403, 403, 400],
        ),
    ];
    let failures = walk(&t, &tokens, &cases).await;
    assert!(failures.is_empty(), "{failures:#?}");

    // The socket: the candidate of this interview joins; a recruiter of another organisation
    // hears exactly what an unknown interview says.
    let mut own = ws_connect(&t.ws_url(&here), tokens[1].as_deref()).await;
    assert_eq!(
        ws_until(&mut own, "status").await["data"]["state"],
        "in_progress"
    );
    let mut stranger = ws_connect(&t.ws_url(&here), tokens[4].as_deref()).await;
    let refused = ws_until(&mut stranger, "error").await;
    let mut unknown = ws_connect(&t.ws_url("no-such-interview"), Some(&t.token)).await;
    let absent = ws_until(&mut unknown, "error").await;
    assert_eq!(
        refused["data"]["code"], absent["data"]["code"],
        "{refused} / {absent}"
    );
    assert_eq!(refused["data"]["code"], "SESSION_NOT_FOUND");
    drop((own, stranger, unknown));

    // Results: the emotion timeline, the score and the report are the organisation's to read
    // (and services'); a candidate reads none, not even their own; another organisation finds
    // nothing there.
    let frame = json!({"image": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, face_jpeg())});
    assert_eq!(
        t.post(&format!("/api/v1/interviews/{here}/frames"), &frame)
            .await
            .status,
        200
    );
    assert_eq!(
        t.post(&format!("/api/v1/interviews/{here}/complete"), &json!({}))
            .await
            .status,
        200
    );
    let scored = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if t.get(&format!("/api/v1/scores/session/{here}"))
                .await
                .status
                == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(scored.is_ok(), "the interview was scored");
    let results = [401, 403, 403, 200, 404, 200];
    let cases = vec![
        (get(format!("/api/v1/emotions/session/{here}")), results),
        (get(format!("/api/v1/scores/session/{here}")), results),
        (
            get(format!("/api/v1/scores/report?session_id={here}")),
            results,
        ),
        (
            post("/api/v1/scores/report", json!({"session_id": here})),
            results,
        ),
    ];
    let failures = walk(&t, &tokens, &cases).await;
    assert!(failures.is_empty(), "{failures:#?}");
    t.stop().await;
}

type Case = ((http::Method, String, Value), [u16; 6]);

/// Every case as every role; what differed from the matrix.
async fn walk(t: &TestStack, tokens: &[Option<String>; 6], cases: &[Case]) -> Vec<String> {
    let http = HttpClient::new();
    let mut failures = Vec::new();
    for ((method, path, body), expected) in cases {
        for (role, (token, want)) in ROLES.iter().zip(tokens.iter().zip(expected)) {
            let auth = token.as_ref().map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let (content_type, bytes) = match body {
                Value::Null => (None, Vec::new()),
                b => (Some("application/json"), serde_json::to_vec(b).unwrap()),
            };
            let got = http
                .send(method.clone(), &t.url(path), content_type, bytes, &headers)
                .await
                .unwrap();
            if got.status.as_u16() != *want {
                failures.push(format!(
                    "{method} {path} as {role}: {} (expected {want}) {}",
                    got.status,
                    got.json()
                ));
            }
        }
    }
    failures
}

/// The gRPC methods, called directly on the services as each caller (the identity asserted
/// with the service credential, as the gateway or a peer would; anonymous sends none), and the
/// worker's ops endpoint. Frames and scores are written by services and admins only; results
/// are read by the organisation's members and services.
#[tokio::test]
async fn each_grpc_method_and_ops_endpoint_answers_each_role_as_the_matrix_says() {
    use iv_contracts::emotion::emotion_service_client::EmotionServiceClient;
    use iv_contracts::emotion::{FrameRequest, SessionRequest};
    use iv_contracts::scoring::scoring_service_client::ScoringServiceClient;
    use iv_contracts::scoring::{AnswerRequest, InterviewMetadata, ReportRequest, ScoreRequest};
    use tonic::Code;

    let t = spawn_stack(&[]).await;
    let here = t.start_interview(true).await;
    let elsewhere = t.start_interview(true).await;
    let frame = json!({"image": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, face_jpeg())});
    assert_eq!(
        t.post(&format!("/api/v1/interviews/{here}/frames"), &frame)
            .await
            .status,
        200
    );
    t.post(&format!("/api/v1/interviews/{here}/complete"), &json!({}))
        .await;
    for _ in 0..300 {
        if t.get(&format!("/api/v1/scores/session/{here}"))
            .await
            .status
            == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let credential =
        iv_platform::auth::AuthConfig::from_env(&iv_platform::config::Env::new(&t.env))
            .unwrap()
            .credential("gateway")
            .unwrap();
    let callers: [Option<Principal>; 7] = [
        None,
        Some(Principal::candidate("invite-a", org("default"), &here)),
        Some(Principal::candidate("invite-b", org("default"), &elsewhere)),
        Some(Principal::member("rita", Role::Recruiter, org("default"))),
        Some(Principal::member("otto", Role::Recruiter, org("other"))),
        Some(Principal::member("admin", Role::Admin, org("default"))),
        Some(Principal::service("worker-service")),
    ];
    let stack = t.stack.as_ref().unwrap();
    let mut emotion = EmotionServiceClient::connect(format!("http://{}", stack.addresses.emotion))
        .await
        .unwrap();
    let mut scoring = ScoringServiceClient::connect(format!("http://{}", stack.addresses.scoring))
        .await
        .unwrap();
    let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
    let (u, d, n, ok) = (
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::NotFound,
        Code::Ok,
    );
    let mut failures = Vec::new();
    let mut check = |method: &str, got: Vec<Code>, want: [Code; 7]| {
        if got != want {
            failures.push(format!("{method}: got {got:?}, want {want:?}"));
        }
    };
    let frame = |session: &str| FrameRequest {
        session_id: session.into(),
        image_data: face_jpeg(),
        format: "jpeg".into(),
        timestamp: iv_contracts::now_millis(),
        org_id: "default".into(),
        consent: Some(iv_test_support::consent_proof()),
        ..Default::default()
    };
    let mut got = Vec::new();
    for (i, who) in callers.iter().enumerate() {
        let r = emotion
            .analyze_frame(as_caller(
                &credential,
                who,
                frame(&format!("grpc-frame-{i}")),
            ))
            .await;
        got.push(code(r.map(|_| ())));
    }
    check("AnalyzeFrame", got, [u, d, d, d, d, ok, ok]);
    let mut got = Vec::new();
    for who in &callers {
        let r = emotion
            .get_session_summary(as_caller(
                &credential,
                who,
                SessionRequest {
                    session_id: here.clone(),
                },
            ))
            .await;
        got.push(code(r.map(|_| ())));
    }
    check("GetSessionSummary", got, [u, d, d, ok, n, ok, ok]);
    let mut got = Vec::new();
    for (i, who) in callers.iter().enumerate() {
        let request = ScoreRequest {
            session_id: format!("grpc-score-{i}"),
            metadata: Some(InterviewMetadata {
                org_id: "default".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        got.push(code(
            scoring
                .calculate_score(as_caller(&credential, who, request))
                .await
                .map(|_| ()),
        ));
    }
    check("CalculateScore", got, [u, d, d, d, d, ok, ok]);
    let mut got = Vec::new();
    for who in &callers {
        let request = AnswerRequest {
            question: "How would you design a URL shortening service?".into(),
            answer: "A counter in base 62 keys a table from code to address.".into(),
            ..Default::default()
        };
        got.push(code(
            scoring
                .analyze_answer(as_caller(&credential, who, request))
                .await
                .map(|_| ()),
        ));
    }
    check("AnalyzeAnswer", got, [u, ok, ok, ok, ok, ok, ok]);
    let mut got = Vec::new();
    for who in &callers {
        let request = ReportRequest {
            session_id: here.clone(),
            format: "json".into(),
            ..Default::default()
        };
        got.push(code(
            scoring
                .generate_report(as_caller(&credential, who, request))
                .await
                .map(|_| ()),
        ));
    }
    check("GenerateReport", got, [u, d, d, ok, n, ok, ok]);

    // The worker's ops endpoint, by HTTP status.
    let list = format!(
        "http://{}/ops/dead-letters?queue=worker.frames",
        stack.addresses.worker
    );
    let mut got = Vec::new();
    for who in &callers {
        let assertion = who.as_ref().map(|p| credential.assert(p));
        let headers: Vec<(&str, &str)> = assertion
            .iter()
            .map(|a| ("x-iv-identity", a.as_str()))
            .collect();
        let r = t
            .http
            .send(http::Method::GET, &list, None, Vec::new(), &headers)
            .await
            .unwrap();
        got.push(r.status.as_u16());
    }
    if got != [401, 403, 403, 403, 403, 200, 200] {
        failures.push(format!("GET /ops/dead-letters: {got:?}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    t.stop().await;
}

/// `message` from `who`, as the gateway or a peer asserts it (anonymous: no assertion).
fn as_caller<T>(
    credential: &iv_platform::auth::ServiceCredential,
    who: &Option<Principal>,
    message: T,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(p) = who {
        request
            .metadata_mut()
            .insert("x-iv-identity", credential.assert(p).parse().unwrap());
    }
    request
}
