//! A small HTTP/1 client for JSON and bytes, for the candidate simulator and the tests.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    /// Sent as `Authorization: Bearer` with every request when set.
    bearer: Option<std::sync::Arc<str>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// A response: status, content type and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl HttpClient {
    pub fn new() -> Self {
        Self {
            inner: Client::builder(TokioExecutor::new()).build_http(),
            bearer: None,
        }
    }

    /// The same client, authenticating every request with `token`.
    pub fn with_bearer(&self, token: &str) -> Self {
        Self {
            inner: self.inner.clone(),
            bearer: Some(token.into()),
        }
    }

    /// Sends a request with a raw body and content type.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
        extra_headers: &[(&str, &str)],
    ) -> anyhow::Result<HttpResponse> {
        let mut req = Request::builder().method(method).uri(url);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(token) = &self.bearer
            && !extra_headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (k, v) in extra_headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .inner
            .request(req.body(Full::new(body.into()))?)
            .await?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(HttpResponse {
            status,
            content_type,
            headers,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<HttpResponse> {
        self.send(Method::GET, url, None, Bytes::new(), &[]).await
    }

    pub async fn post_json(&self, url: &str, body: &Value) -> anyhow::Result<HttpResponse> {
        self.send(
            Method::POST,
            url,
            Some("application/json"),
            serde_json::to_vec(body)?,
            &[],
        )
        .await
    }
}
