//! Stacks on free ports with fresh storage, and small client helpers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iv_platform::client::{HttpClient, HttpResponse};
use iv_stack::{Stack, test_env};

use crate::machine::{amqp_url, fresh_pg_database};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub struct TestStack {
    pub stack: Option<Stack>,
    /// Authenticated as the first admin of the default organisation.
    pub http: HttpClient,
    /// That admin's token.
    pub token: String,
    pub gateway: String,
    pub data_dir: PathBuf,
    /// The environment the stack was started with.
    pub env: std::collections::HashMap<String, String>,
    /// A PostgreSQL database created for this test, dropped at the end.
    pub pg_database: Option<String>,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A port nothing listens on now, for a process of the test's own to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn fresh_dir() -> PathBuf {
    std::env::temp_dir().join(unique("iv-e2e-"))
}

pub async fn spawn_stack(extra: &[(&str, &str)]) -> TestStack {
    spawn_in(&fresh_dir(), extra).await
}

pub async fn spawn_in(dir: &Path, extra: &[(&str, &str)]) -> TestStack {
    spawn_with(dir, extra, None).await
}

/// A stack whose emotion service cannot analyse frames (degraded mode).
pub async fn spawn_stack_without_face_models() -> TestStack {
    let analyzer =
        emotion_service::models_missing("face analysis models are not loaded on this instance");
    spawn_with(&fresh_dir(), &[], Some(analyzer)).await
}

pub async fn spawn_with(
    dir: &Path,
    extra: &[(&str, &str)],
    analyzer: Option<std::sync::Arc<dyn emotion_service::analysis::FrameAnalyzer>>,
) -> TestStack {
    iv_platform::telemetry::init_for_tests();
    let env = test_env(dir, extra);
    let stack = Stack::start(env.clone(), analyzer)
        .await
        .expect("the stack starts");
    let gateway = stack.gateway_url();
    let token = iv_stack::tokens::mint(
        &env,
        &iv_stack::tokens::first_admin(),
        Duration::from_secs(3600),
    )
    .expect("a token of the stack's own key");
    TestStack {
        stack: Some(stack),
        http: HttpClient::new().with_bearer(&token),
        token,
        gateway,
        data_dir: dir.to_path_buf(),
        env,
        pg_database: None,
    }
}

/// A stack on the machine's real RabbitMQ (own namespace) and PostgreSQL (own database).
pub async fn spawn_stack_on_rabbitmq_and_postgres() -> TestStack {
    let (db, url) = fresh_pg_database().await;
    let namespace = format!("{}.", unique("test-"));
    let amqp = amqp_url();
    let mut t = spawn_stack(&[
        ("DATABASE_URL", &url),
        ("AMQP_URL", &amqp),
        ("AMQP_NAMESPACE", &namespace),
    ])
    .await;
    t.pg_database = Some(db);
    t
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    pub fn ws_url(&self, session_id: &str) -> String {
        format!(
            "{}/ws/interviews/{session_id}",
            self.gateway.replacen("http", "ws", 1)
        )
    }

    pub async fn post(&self, path: &str, body: &Value) -> HttpResponse {
        self.http
            .post_json(&self.url(path), body)
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> HttpResponse {
        self.http.get(&self.url(path)).await.expect("request sent")
    }

    /// Starts an interview and returns its id.
    pub async fn start_interview(&self, consent: bool) -> String {
        let resp = self
            .post(
                "/api/v1/interviews/start",
                &serde_json::json!({"user_id": "cand-1", "consent": consent}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
        resp.json()["id"].as_str().unwrap().to_string()
    }

    /// The database the stack's services share (SQLite under the data folder by default).
    pub fn database_url(&self) -> String {
        self.env.get("DATABASE_URL").cloned().unwrap_or_else(|| {
            iv_platform::db::sqlite_url(&self.data_dir.display().to_string(), "interview")
        })
    }

    pub async fn stop(mut self) {
        if let Some(stack) = self.stack.take() {
            stack.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(db) = self.pg_database.take() {
            crate::machine::drop_pg_database(&db).await;
        }
    }
}

/// One request from `http` (a JSON body when given): the status and the body as JSON (`Null`
/// when it is not JSON).
pub async fn send(
    http: &iv_platform::client::HttpClient,
    method: http::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (ct, bytes) = match body {
        Some(b) => (Some("application/json"), serde_json::to_vec(&b).unwrap()),
        None => (None, Vec::new()),
    };
    let resp = http.send(method, url, ct, bytes, &[]).await.expect("sent");
    let json = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status.as_u16(), json)
}

pub fn face_frames() -> Vec<PathBuf> {
    iv_stack::media::face_frames().expect("test media (run scripts/fetch-assets.sh)")
}

pub fn face_jpeg() -> Vec<u8> {
    std::fs::read(&face_frames()[0]).unwrap()
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket, with a bearer token when given.
pub async fn ws_connect(url: &str, token: Option<&str>) -> Ws {
    let request = iv_stack::ws_request(url, token).expect("a WebSocket request");
    tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connects")
        .0
}

pub async fn ws_send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .expect("sent");
}

/// The next JSON message, or panics after five seconds.
pub async fn ws_next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .expect("no socket error");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).expect("JSON");
        }
    }
}

/// Reads until a message of `kind` arrives (skipping others), or panics after five seconds.
pub async fn ws_until(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = ws_next(ws).await;
        if m["type"] == kind {
            return m;
        }
    }
}
