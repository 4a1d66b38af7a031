//! Forwarding HTTP requests and WebSockets to an upstream service.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message as AxumMessage, WebSocket};
use axum::http::{HeaderName, HeaderValue, Request, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use iv_platform::errors::{ApiError, ErrorClass};
use tokio_tungstenite::tungstenite::Message as TungMessage;

/// Headers that describe one hop, not the request: never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

#[derive(Clone)]
pub struct Upstream {
    pub name: &'static str,
    /// `http://host:port`, no trailing slash.
    pub base: String,
    client: Client<HttpConnector, Body>,
    timeout: Duration,
}

impl Upstream {
    pub fn new(name: &'static str, base: &str, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        Self {
            name,
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// Forwards a request; connection failures and timeouts become JSON 502/504.
    pub async fn forward(&self, mut req: Request<Body>, client: SocketAddr) -> Response {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri: Uri = match format!("{}{}", self.base, path).parse() {
            Ok(u) => u,
            Err(_) => {
                return ApiError::new(ErrorClass::InvalidInput, "BAD_PATH", "invalid request path")
                    .into_response();
            }
        };
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        for h in &HOP_BY_HOP {
            headers.remove(h);
        }
        headers.remove(header::HOST);
        let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {}", client.ip()),
            None => client.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded) {
            headers.insert("x-forwarded-for", v);
        }
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                for h in &HOP_BY_HOP {
                    parts.headers.remove(h);
                }
                Response::from_parts(parts, Body::new(body))
            }
            Ok(Err(e)) => {
                tracing::warn!(upstream = self.name, error = %e, "upstream unreachable");
                metrics::counter!("gateway_upstream_errors_total", "upstream" => self.name, "kind" => "unreachable").increment(1);
                ApiError::new(
                    ErrorClass::BadGateway,
                    "UPSTREAM_UNAVAILABLE",
                    format!("{} is unavailable", self.name),
                )
                .into_response()
            }
            Err(_) => {
                metrics::counter!("gateway_upstream_errors_total", "upstream" => self.name, "kind" => "timeout").increment(1);
                ApiError::new(
                    ErrorClass::Timeout,
                    "UPSTREAM_TIMEOUT",
                    format!("{} did not answer in time", self.name),
                )
                .into_response()
            }
        }
    }

    /// Bridges a client's WebSocket to the same path on the upstream, message for message, until
    /// either side closes.
    pub async fn bridge(&self, client: WebSocket, path_and_query: String) {
        let url = format!("{}{}", self.base.replacen("http", "ws", 1), path_and_query);
        let (mut client_tx, mut client_rx) = client.split();
        let upstream = match tokio_tungstenite::connect_async(&url).await {
            Ok((socket, _)) => socket,
            Err(e) => {
                tracing::warn!(upstream = self.name, error = %e, "WebSocket upstream unreachable");
                let msg = r#"{"type":"error","data":{"code":"UPSTREAM_UNAVAILABLE","message":"the interview service is unavailable; reconnect shortly"}}"#;
                let _ = client_tx.send(AxumMessage::Text(msg.into())).await;
                let _ = client_tx.send(AxumMessage::Close(None)).await;
                return;
            }
        };
        metrics::gauge!("gateway_websockets").increment(1.0);
        let (mut up_tx, mut up_rx) = upstream.split();
        let to_upstream = async {
            while let Some(Ok(m)) = client_rx.next().await {
                let out = match m {
                    AxumMessage::Text(t) => TungMessage::Text(t.as_str().into()),
                    AxumMessage::Binary(b) => TungMessage::Binary(b),
                    AxumMessage::Ping(p) => TungMessage::Ping(p),
                    AxumMessage::Pong(p) => TungMessage::Pong(p),
                    AxumMessage::Close(_) => break,
                };
                if up_tx.send(out).await.is_err() {
                    break;
                }
            }
            let _ = up_tx.send(TungMessage::Close(None)).await;
        };
        let to_client = async {
            while let Some(Ok(m)) = up_rx.next().await {
                let out = match m {
                    TungMessage::Text(t) => AxumMessage::Text(t.as_str().into()),
                    TungMessage::Binary(b) => AxumMessage::Binary(b),
                    TungMessage::Ping(p) => AxumMessage::Ping(p),
                    TungMessage::Pong(p) => AxumMessage::Pong(p),
                    TungMessage::Close(_) => break,
                    TungMessage::Frame(_) => continue,
                };
                if client_tx.send(out).await.is_err() {
                    break;
                }
            }
            let _ = client_tx.send(AxumMessage::Close(None)).await;
        };
        // Whichever side finishes first ends the bridge.
        tokio::select! {
            _ = to_upstream => {}
            _ = to_client => {}
        }
        metrics::gauge!("gateway_websockets").decrement(1.0);
    }
}
