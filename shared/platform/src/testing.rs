//! What the services' own tests share (the `testing` feature, on only for tests): a fresh SQLite
//! database, and requests sent straight into a router (`oneshot`, no socket) with the answer read
//! back as status and JSON.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::{Asserted, OrgId, Principal, Role};
use crate::db::{self, Pool};

/// A new SQLite database in a fresh temporary directory, with `schemas` applied.
pub async fn fresh_sqlite(schemas: &[&[&'static str]]) -> Pool {
    let dir = std::env::temp_dir().join(format!("iv-test-{}", uuid::Uuid::new_v4().simple()));
    db::open(
        &db::sqlite_url(dir.to_str().expect("a UTF-8 path"), "t"),
        schemas,
    )
    .await
    .expect("a SQLite file in the temporary directory, with its tables")
}

/// A JSON POST request.
pub fn post_json(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request")
}

/// A POST with a raw body of any content type.
pub fn post_raw(uri: &str, content_type: &str, body: &'static str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a valid request")
}

/// A GET request.
pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .body(Body::empty())
        .expect("a valid request")
}

/// The caller a test request is from unless it says otherwise: the first admin of the
/// `default` organisation, as the gateway would assert it.
pub fn default_caller() -> Principal {
    Principal::member("admin", Role::Admin, OrgId("default".into()))
}

/// `request`, from `principal` (as verified by the gateway; routers under test do not wear the
/// identity layer, whose own tests are in `auth::layer`).
pub fn as_caller(mut request: Request<Body>, principal: Principal) -> Request<Body> {
    request.extensions_mut().insert(Asserted {
        by: "gateway".into(),
        principal,
    });
    request
}

/// Sends `request` into `router` (from [`default_caller`] unless it names another); the status
/// and the body as JSON (`Null` when it is not JSON).
pub async fn call(router: &Router, mut request: Request<Body>) -> (StatusCode, Value) {
    if request.extensions().get::<Asserted>().is_none() {
        request = as_caller(request, default_caller());
    }
    send(router, request).await
}

/// Sends `request` into `router` as it is (no identity added).
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a readable body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Sends each request and checks its status and JSON `code`, naming the request on failure.
pub async fn expect_codes(router: &Router, cases: Vec<(Request<Body>, StatusCode, &str)>) {
    for (request, status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = call(router, request).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
}

/// The `grpc-status` a router answers for a gRPC call of `path`.
pub async fn grpc_status(router: &Router, path: &str) -> Option<String> {
    let request = Request::post(path)
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .expect("a valid request");
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// Inputs from the internet, for property tests: whatever a client could send.
pub mod arbitrary {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// Any JSON value, a few levels deep, with strings that include the awkward (empty, long,
    /// control characters, non-ASCII) and numbers that include the extremes.
    pub fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![Just(u64::MAX), Just(0), any::<u64>()].prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
            Just(Value::String("x".repeat(70_000))),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A JSON object with some of `fields` (the ones a route reads) set to anything, so the
    /// input gets past the parser into the route's own checks.
    pub fn body_with(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop::collection::vec((prop::sample::select(fields), json()), 0..=fields.len()).prop_map(
            |pairs| {
                let mut m = Map::new();
                for (k, v) in pairs {
                    m.insert(k.to_string(), v);
                }
                Value::Object(m)
            },
        )
    }

    /// Bytes that are mostly garbage, sometimes behind a JPEG or PNG signature.
    pub fn image_like_bytes() -> impl Strategy<Value = Vec<u8>> {
        let tail = prop::collection::vec(any::<u8>(), 0..512);
        prop_oneof![
            tail.clone(),
            tail.clone()
                .prop_map(|t| [&b"\xFF\xD8\xFF"[..], &t].concat()),
            tail.prop_map(|t| [&b"\x89PNG\r\n\x1a\n"[..], &t].concat()),
        ]
    }
}

/// Sends `request` and checks the answer is not a server error: what a property test asks of
/// every route fed arbitrary input. `tolerated` names 5xx codes that are honest answers here
/// (a test instance without models says so with 503 `MODELS_UNAVAILABLE`).
pub async fn never_a_server_error(
    router: &Router,
    request: Request<Body>,
    tolerated: &[&str],
) -> Result<(), String> {
    let what = format!("{} {}", request.method(), request.uri());
    let (status, body) = call(router, request).await;
    if status.is_server_error() && !tolerated.contains(&body["code"].as_str().unwrap_or_default()) {
        return Err(format!("{what}: {status} {body}"));
    }
    if status.is_client_error() && !body["code"].is_string() {
        return Err(format!("{what}: {status} without a JSON code: {body}"));
    }
    Ok(())
}

/// Certificates made at test time: a CA, and a server certificate it signed for `localhost` and
/// `127.0.0.1`, written as PEM files into `dir`.
pub struct TestCertificates {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TestCertificates {
    pub fn create(dir: &std::path::Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        std::fs::create_dir_all(dir).expect("a directory for certificates");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let made = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&made.ca, ca.pem()).unwrap();
        std::fs::write(&made.cert, leaf.pem()).unwrap();
        std::fs::write(&made.key, key.serialize_pem()).unwrap();
        made
    }

    /// The variables that make a service serve with these and trust the CA.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TLS_CERT_FILE", self.cert.display().to_string()),
            ("TLS_KEY_FILE", self.key.display().to_string()),
            ("TLS_CA_FILE", self.ca.display().to_string()),
        ]
    }
}

/// Checks a router against its OpenAPI description both ways: every described operation is
/// routed (sent without an identity, it gets anything but the fallback's 404 or a 405), and
/// every method the document does not describe on a described path is refused with 405, so a
/// route cannot answer without a description. Paths in `any_method` (a WebSocket upgrade) take
/// every method by design. Path parameters are filled in with `probe`.
pub async fn assert_described_routes(
    router: &Router,
    doc: &utoipa::openapi::OpenApi,
    any_method: &[&str],
) {
    use axum::http::Method;
    let described = crate::openapi::operations_of(doc);
    assert!(!described.is_empty(), "the document describes no operation");
    let mut paths: Vec<&String> = described.iter().map(|(_, p)| p).collect();
    paths.dedup();
    for path in paths {
        let uri = fill_parameters(path);
        let mut methods = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ]
        .map(|m| {
            let is_described = described.iter().any(|(d, p)| d == m && p == path);
            (m, is_described)
        });
        // The described ones first: a path not routed at all says so before anything else.
        methods.sort_by_key(|(_, is_described)| !is_described);
        for (method, is_described) in methods {
            let request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .body(Body::empty())
                .expect("a valid request");
            let (status, body) = send(router, request).await;
            let fell_through = status == StatusCode::NOT_FOUND && body["code"] == "NOT_FOUND";
            if is_described {
                assert!(
                    !fell_through && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is described but not routed ({status} {body})"
                );
            } else if !any_method.contains(&path.as_str()) {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} answers without a description ({body})"
                );
            }
        }
    }
}

/// A described path with its parameters filled in: `/a/{id}/b` as `/a/probe/b`.
pub fn fill_parameters(path: &str) -> String {
    path.split('/')
        .map(|part| if part.starts_with('{') { "probe" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

/// Fails when `source` (a routes module) routes a public API path by hand, outside the
/// described router: every `/api/` route goes through `utoipa_axum::routes!`.
pub fn assert_no_hand_written_api_routes(source: &str) {
    let squeezed: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    for by_hand in [".route(\"/api/", ".nest(\"/api/", ".route_service(\"/api/"] {
        assert!(
            !squeezed.contains(by_hand),
            "a public route is added by hand ({by_hand}...): describe it with #[utoipa::path] and \
             route it with routes!"
        );
    }
}
