//! Edge policies: every API request and WebSocket proves who it is with a bearer token (the
//! backend's own, or an organisation's identity provider's), and each identity (or, before it is
//! known, each client address) has a rate. What passes carries the verified identity to the
//! services in one signed header, never the token itself.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use iv_platform::auth::{AuthError, IDENTITY_HEADER, Principal, ServiceCredential, Verifier};
use iv_platform::errors::{ApiError, ErrorClass};

/// How a browser's WebSocket carries its token: `new WebSocket(url, ["ai-interview",
/// "bearer." + token])`; the gateway answers with the `ai-interview` subprotocol.
pub const BEARER_SUBPROTOCOL: &str = "bearer.";

/// The subprotocol the gateway's WebSocket speaks.
pub const SUBPROTOCOL: &str = "ai-interview";

/// How often the rate limiter forgets idle clients: a client's allowance refills within seconds
/// (burst / rate), so a minute keeps only the recently active.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Clients tracked before pruning early: about 100 bytes each, so 100 000 is ~10 MiB at most.
const MAX_TRACKED: usize = 100_000;

#[derive(Clone)]
pub struct Edge {
    verifier: Verifier,
    credential: ServiceCredential,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl Edge {
    pub fn new(
        verifier: Verifier,
        credential: ServiceCredential,
        per_minute: u32,
        burst: u32,
    ) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_minute(rate).allow_burst(burst),
            ))
        });
        Self {
            verifier,
            credential,
            limiter,
        }
    }

    /// The bearer token of a request: the `Authorization` header, or for a browser's WebSocket
    /// (which cannot set headers, and whose URL would reach logs) a `bearer.<token>` entry
    /// among its subprotocols.
    fn presented_token(req: &Request) -> Option<String> {
        if let Some(value) = req.headers().get(header::AUTHORIZATION) {
            let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
            return (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
                .then(|| token.trim().to_string());
        }
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix(BEARER_SUBPROTOCOL))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    }

    /// Forgets the clients whose allowance has refilled (they would start afresh anyway), so
    /// the limiter holds only those seen within the last few seconds, however many came.
    pub fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many clients the limiter tracks now.
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    /// Prunes every [`PRUNE_EVERY`], and at once when [`MAX_TRACKED`] is passed between two.
    pub fn spawn_pruning(&self) {
        let edge = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                edge.prune();
            }
        });
    }

    /// A 429 when `client` is over its rate.
    fn limit(&self, client: &str) -> Option<Response> {
        let limiter = self.limiter.as_ref()?;
        if limiter.len() > MAX_TRACKED {
            self.prune();
        }
        let not_until = limiter.check_key(&client.to_string()).err()?;
        metrics::counter!("gateway_rejected_total", "reason" => "rate_limited").increment(1);
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let mut response = ApiError::new(
            ErrorClass::Overloaded,
            iv_platform::errors::code::RATE_LIMITED,
            "too many requests; slow down",
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        Some(response)
    }
}

/// The rate-limit key of a verified caller: one bucket per person (or invitation) per
/// organisation, whatever address they come from.
fn identity_key(p: &Principal) -> String {
    let org = p.org.as_ref().map_or("", |o| o.0.as_str());
    format!("id:{org}:{}", p.subject)
}

/// Lets through only requests with a valid token, within their identity's rate; refused
/// authentication counts against the client address's rate, so guessing tokens is slow too.
pub async fn guard(
    State(edge): State<Edge>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    // Only the gateway asserts identities: whatever a client sent under that name is dropped.
    req.headers_mut().remove(IDENTITY_HEADER);
    let verified = match Edge::presented_token(&req) {
        None => Err(AuthError::Missing),
        Some(token) => edge.verifier.verify(&token).await,
    };
    let principal = match verified {
        Ok(p) => p,
        Err(e) => {
            if let Some(limited) = edge.limit(&format!("ip:{}", addr.ip())) {
                return limited;
            }
            metrics::counter!("gateway_rejected_total", "reason" => "unauthenticated").increment(1);
            tracing::debug!(error = %e, "refused credentials");
            return e.to_api().into_response();
        }
    };
    if let Some(limited) = edge.limit(&identity_key(&principal)) {
        return limited;
    }
    // The token stays here; the services get the identity it proved.
    req.headers_mut().remove(header::AUTHORIZATION);
    strip_token_subprotocol(&mut req);
    let assertion = edge.credential.assert(&principal);
    match HeaderValue::from_str(&assertion) {
        Ok(v) => {
            req.headers_mut().insert(IDENTITY_HEADER, v);
        }
        Err(e) => return ApiError::internal("identity assertion", &e).into_response(),
    }
    next.run(req).await
}

/// Leaves only the real subprotocols offered (the WebSocket upgrade picks among them), so
/// the token goes no further.
fn strip_token_subprotocol(req: &mut Request) {
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with(BEARER_SUBPROTOCOL))
        .map(str::to_string)
        .collect();
    req.headers_mut().remove(header::SEC_WEBSOCKET_PROTOCOL);
    if let Ok(v) = HeaderValue::from_str(&offered.join(", "))
        && !offered.is_empty()
    {
        req.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut b = axum::http::Request::builder().uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn the_token_is_read_from_the_bearer_header_only() {
        assert_eq!(
            Edge::presented_token(&request(&[("authorization", "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            Edge::presented_token(&request(&[("authorization", "bearer  abc ")])).as_deref(),
            Some("abc")
        );
        for refused in ["Basic zzz", "Bearer ", "Bearer"] {
            assert_eq!(
                Edge::presented_token(&request(&[("authorization", refused)])),
                None,
                "{refused}"
            );
        }
        assert_eq!(Edge::presented_token(&request(&[("x-api-key", "k")])), None);
    }

    #[tokio::test]
    async fn the_limiter_forgets_clients_whose_allowance_refilled() {
        let verifier = Verifier::new(Vec::new());
        let credential = ServiceCredential::new("gateway", &[1u8; 32]).unwrap();
        // 6000 a minute with a burst of 1: refilled 10 ms after a request.
        let edge = Edge::new(verifier, credential, 6000, 1);
        for i in 0..1000 {
            assert!(
                edge.limit(&format!("ip:10.0.{}.{}", i / 256, i % 256))
                    .is_none()
            );
        }
        assert_eq!(edge.tracked(), 1000);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        edge.prune();
        assert_eq!(edge.tracked(), 0, "idle clients are forgotten");
        // A client still over its rate is kept.
        assert!(edge.limit("ip:busy").is_none());
        assert!(edge.limit("ip:busy").is_some());
        edge.prune();
        assert_eq!(edge.tracked(), 1);
    }

    #[test]
    fn a_browser_socket_carries_its_token_among_its_subprotocols() {
        let offered = [("sec-websocket-protocol", "ai-interview, bearer.eyJ.a-b_c.d")];
        assert_eq!(
            Edge::presented_token(&request(&offered)).as_deref(),
            Some("eyJ.a-b_c.d")
        );
        for refused in ["ai-interview", "ai-interview, bearer."] {
            assert_eq!(
                Edge::presented_token(&request(&[("sec-websocket-protocol", refused)])),
                None,
                "{refused}"
            );
        }
        let mut req = request(&offered);
        strip_token_subprotocol(&mut req);
        assert_eq!(req.headers()["sec-websocket-protocol"], "ai-interview");

        // The header wins when both are sent.
        let both = [
            ("authorization", "Bearer h"),
            ("sec-websocket-protocol", "bearer.p"),
        ];
        assert_eq!(Edge::presented_token(&request(&both)).as_deref(), Some("h"));
    }

    proptest::proptest! {
        /// Whatever a client puts in the headers a token is read from, reading answers.
        #[test]
        fn any_header_values_are_read_without_panic(
            authorization in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            protocols in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let mut req = request(&[]);
            if let Ok(v) = HeaderValue::from_bytes(&protocols) {
                req.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, v);
            }
            let _ = Edge::presented_token(&req);
            strip_token_subprotocol(&mut req);
            if let Ok(v) = HeaderValue::from_bytes(&authorization) {
                req.headers_mut().insert(header::AUTHORIZATION, v);
            }
            let _ = Edge::presented_token(&req);
        }
    }
}
