//! Edge policies: API-key authentication and per-client rate limits.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use iv_platform::errors::{ApiError, ErrorClass};

#[derive(Clone)]
pub struct Edge {
    keys: Arc<Vec<String>>,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl Edge {
    pub fn new(keys: Vec<String>, per_minute: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_minute(rate).allow_burst(burst),
            ))
        });
        Self {
            keys: Arc::new(keys),
            limiter,
        }
    }

    /// The key a request presents: `Authorization: Bearer`, `X-API-Key`, or `?api_key=` (browsers
    /// cannot set headers on WebSocket upgrades).
    fn presented_key(req: &Request) -> Option<String> {
        let headers = req.headers();
        if let Some(v) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            && let Some(token) = v.strip_prefix("Bearer ")
        {
            return Some(token.trim().to_string());
        }
        if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            return Some(v.trim().to_string());
        }
        req.uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("api_key=")))
            .map(String::from)
    }
}

/// Rejects unauthenticated requests (when keys are configured) and clients over their rate.
pub async fn guard(
    State(edge): State<Edge>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let key = Edge::presented_key(&req);
    if !edge.keys.is_empty()
        && !key
            .as_ref()
            .is_some_and(|k| edge.keys.iter().any(|valid| valid == k))
    {
        metrics::counter!("gateway_rejected_total", "reason" => "unauthenticated").increment(1);
        return ApiError::new(
            ErrorClass::Unauthenticated,
            "UNAUTHENTICATED",
            "missing or invalid API key",
        )
        .into_response();
    }
    if let Some(limiter) = &edge.limiter {
        let client = key
            .map(|k| format!("key:{k}"))
            .unwrap_or_else(|| format!("ip:{}", addr.ip()));
        if let Err(not_until) = limiter.check_key(&client) {
            metrics::counter!("gateway_rejected_total", "reason" => "rate_limited").increment(1);
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let mut response = ApiError::new(
                ErrorClass::Overloaded,
                "RATE_LIMITED",
                "too many requests; slow down",
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = axum::http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn a_key_is_read_from_bearer_header_api_key_header_or_query() {
        assert_eq!(
            Edge::presented_key(&request("/x", &[("authorization", "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            Edge::presented_key(&request("/x", &[("x-api-key", " k2 ")])).as_deref(),
            Some("k2")
        );
        assert_eq!(
            Edge::presented_key(&request("/ws/interviews/1?a=b&api_key=q3", &[])).as_deref(),
            Some("q3")
        );
        assert_eq!(
            Edge::presented_key(&request("/x", &[("authorization", "Basic zzz")])),
            None
        );
    }
}
