//! Forwarding HTTP requests and WebSockets to an upstream service's instances.
//!
//! Each request goes to the next instance ([`Instances`]). A request whose connection is refused
//! never reached the instance, so it is safe to send to another one, POST included: bodies are
//! buffered (up to [`Upstream::max_body`]) to make that possible. Any later failure is answered,
//! not retried, since the instance may have acted on the request.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::ws::{Message as AxumMessage, WebSocket};
use axum::http::{HeaderName, HeaderValue, Request, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use iv_platform::discovery::Instances;
use iv_platform::errors::{ApiError, ErrorClass};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as TungMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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

/// Attempts of one request at most, each on another instance.
const MAX_ATTEMPTS: usize = 3;

/// Why no instance served a request.
#[derive(Clone, Copy)]
enum Failure {
    /// None passes its checks.
    NoInstance,
    /// They could not be reached, or failed mid-request.
    Unreachable,
    Timeout,
}

#[derive(Clone)]
pub struct Upstream {
    pub name: &'static str,
    instances: Instances,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
    /// Largest request body forwarded; larger ones get 413 without reaching a service.
    pub max_body: usize,
}

impl Upstream {
    /// `tls` is how `https://` instances are reached (plain `http://` ones still are).
    pub fn new(
        instances: Instances,
        timeout: Duration,
        max_body: usize,
        tls: tokio_rustls::rustls::ClientConfig,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self {
            name: instances.name(),
            instances,
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            max_body,
        }
    }

    /// Forwards a request to the next instance, and to the one after when the connection is
    /// refused; unreachable upstreams and timeouts become JSON 502/504.
    pub async fn forward(&self, req: Request<Body>, client: SocketAddr) -> Response {
        let (mut parts, body) = req.into_parts();
        let Ok(body) = to_bytes(body, self.max_body).await else {
            return ApiError::new(
                ErrorClass::TooLarge,
                iv_platform::errors::code::PAYLOAD_TOO_LARGE,
                format!("request bodies are limited to {} bytes", self.max_body),
            )
            .into_response();
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let headers = &mut parts.headers;
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
        // The upstream's span is a child of this request's, not of the client's.
        iv_platform::telemetry::context::inject_into_headers(headers);
        if self.instances.is_empty() {
            return self.error(Failure::NoInstance);
        }
        let attempts = self.instances.len().clamp(1, MAX_ATTEMPTS);
        for _ in 0..attempts {
            let Some(base) = self.instances.pick() else {
                break;
            };
            let Ok(uri) = format!("{base}{path}").parse::<Uri>() else {
                return ApiError::new(ErrorClass::InvalidInput, "BAD_PATH", "invalid request path")
                    .into_response();
            };
            let mut req = Request::from_parts(parts.clone(), Body::from(body.clone()));
            *req.uri_mut() = uri;
            match tokio::time::timeout(self.timeout, self.client.request(req)).await {
                Ok(Ok(resp)) => {
                    let (mut parts, body) = resp.into_parts();
                    for h in &HOP_BY_HOP {
                        parts.headers.remove(h);
                    }
                    return Response::from_parts(parts, Body::new(body));
                }
                Ok(Err(e)) if e.is_connect() => {
                    // It never reached the instance: another may take it.
                    self.instances.eject(&base);
                    tracing::warn!(upstream = self.name, instance = base, error = %e, "connection failed; trying another instance");
                }
                Ok(Err(e)) => {
                    tracing::warn!(upstream = self.name, instance = base, error = %e, "upstream failed");
                    return self.error(Failure::Unreachable);
                }
                Err(_) => return self.error(Failure::Timeout),
            }
        }
        self.error(Failure::Unreachable)
    }

    /// The JSON answer when no instance served the request: 503 when none is known (none passes
    /// its checks), 502 when they could not be reached, 504 for a timeout.
    fn error(&self, failure: Failure) -> Response {
        let (kind, class, code, message) = match failure {
            Failure::Timeout => (
                "timeout",
                ErrorClass::Timeout,
                "UPSTREAM_TIMEOUT",
                format!("{} did not answer in time", self.name),
            ),
            Failure::NoInstance => (
                "no_instance",
                ErrorClass::Unavailable,
                "UPSTREAM_UNAVAILABLE",
                format!("no healthy instance of {}", self.name),
            ),
            Failure::Unreachable => (
                "unreachable",
                ErrorClass::BadGateway,
                "UPSTREAM_UNAVAILABLE",
                format!("{} is unavailable", self.name),
            ),
        };
        metrics::counter!("gateway_upstream_errors_total", "upstream" => self.name, "kind" => kind)
            .increment(1);
        ApiError::new(class, code, message).into_response()
    }

    /// Opens the upstream side of a WebSocket on the next instance that accepts a connection.
    async fn connect_ws(
        &self,
        path_and_query: &str,
        identity: Option<&HeaderValue>,
    ) -> Option<WebSocketStream<MaybeTlsStream<TcpStream>>> {
        let attempts = self.instances.len().clamp(1, MAX_ATTEMPTS);
        for _ in 0..attempts {
            let base = self.instances.pick()?;
            let url = format!("{}{}", base.replacen("http", "ws", 1), path_and_query);
            let Ok(mut request) = url.as_str().into_client_request() else {
                tracing::warn!(upstream = self.name, url, "not a WebSocket address");
                return None;
            };
            iv_platform::telemetry::context::inject_into_headers(request.headers_mut());
            if let Some(identity) = identity {
                request
                    .headers_mut()
                    .insert(iv_platform::auth::IDENTITY_HEADER, identity.clone());
            }
            match tokio_tungstenite::connect_async(request).await {
                Ok((socket, _)) => return Some(socket),
                Err(tokio_tungstenite::tungstenite::Error::Io(e)) => {
                    self.instances.eject(&base);
                    tracing::warn!(upstream = self.name, instance = base, error = %e, "WebSocket upstream unreachable; trying another instance");
                }
                Err(e) => {
                    tracing::warn!(upstream = self.name, instance = base, error = %e, "WebSocket upstream refused the upgrade");
                    return None;
                }
            }
        }
        None
    }

    /// Bridges a client's WebSocket to the same path on an upstream instance, message for
    /// message, until either side closes or the client is silent for `idle` (the interview
    /// service pings every 20 s and a live client answers, so silence means it is gone).
    pub async fn bridge(
        &self,
        client: WebSocket,
        path_and_query: String,
        identity: Option<HeaderValue>,
        idle: Duration,
    ) {
        let (mut client_tx, mut client_rx) = client.split();
        let Some(upstream) = self.connect_ws(&path_and_query, identity.as_ref()).await else {
            let msg = r#"{"type":"error","data":{"code":"UPSTREAM_UNAVAILABLE","message":"the interview service is unavailable; reconnect shortly"}}"#;
            let _ = client_tx.send(AxumMessage::Text(msg.into())).await;
            let _ = client_tx.send(AxumMessage::Close(None)).await;
            return;
        };
        metrics::gauge!("gateway_websockets").increment(1.0);
        let (mut up_tx, mut up_rx) = upstream.split();
        let to_upstream = async {
            loop {
                let m = match tokio::time::timeout(idle, client_rx.next()).await {
                    Ok(Some(Ok(m))) => m,
                    Ok(_) => break,
                    Err(_) => {
                        metrics::counter!("gateway_websockets_idle_closed_total").increment(1);
                        tracing::info!(
                            upstream = self.name,
                            "client socket silent past the idle timeout; closing"
                        );
                        break;
                    }
                };
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
