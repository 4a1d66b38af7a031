//! An identity provider's public keys (JWKS), cached by key id and fetched again when a token
//! names a key not seen yet (providers rotate keys), but never more often than
//! [`MIN_REFETCH`], so tokens with made-up key ids cannot turn the gateway into a fetch loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::AuthError;
use crate::client::HttpClient;

/// Least time between two fetches: a provider's rotation takes effect within seconds, and a
/// flood of unknown key ids costs one fetch per this interval.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// Keys are fetched again after this even when known, so a withdrawn key stops working.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// A provider that does not answer within this is treated as down for this token.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A provider's `jwks_uri`.
    Url(String),
    /// Keys known up front: the backend's own, or a test's.
    Fixed(JwkSet),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => write!(f, "Url({url})"),
            Self::Fixed(set) => write!(f, "Fixed({} keys)", set.keys.len()),
        }
    }
}

/// One verification key with the algorithm it is for.
#[derive(Clone)]
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub alg: Algorithm,
}

struct Cached {
    keys: HashMap<String, VerifyingKey>,
    fetched: Option<Instant>,
}

/// The keys of one provider.
pub struct Jwks {
    source: KeySource,
    min_refetch: Duration,
    http: HttpClient,
    cached: Mutex<Cached>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("source", &self.source)
            .finish()
    }
}

impl Jwks {
    pub fn new(source: KeySource) -> Arc<Self> {
        Self::with_min_refetch(source, MIN_REFETCH)
    }

    /// With another least time between fetches (tests wait for it).
    pub fn with_min_refetch(source: KeySource, min_refetch: Duration) -> Arc<Self> {
        Arc::new(Self {
            source,
            min_refetch,
            http: HttpClient::new(),
            cached: Mutex::new(Cached {
                keys: HashMap::new(),
                fetched: None,
            }),
        })
    }

    /// The key with id `kid`, fetching the set when it is unknown or old.
    pub async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        let mut cached = self.cached.lock().await;
        let age = cached.fetched.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a >= MAX_AGE);
        let may_refetch = age.is_none_or(|a| a >= self.min_refetch);
        if stale || (!cached.keys.contains_key(kid) && may_refetch) {
            let set = self.fetch().await?;
            cached.keys = usable_keys(&set);
            cached.fetched = Some(Instant::now());
            metrics::counter!("auth_jwks_fetches_total").increment(1);
        }
        cached
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey(kid.to_string()))
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        match &self.source {
            KeySource::Fixed(set) => Ok(set.clone()),
            KeySource::Url(url) => {
                let unavailable = |reason: String| AuthError::KeysUnavailable {
                    url: url.clone(),
                    reason,
                };
                let response = tokio::time::timeout(FETCH_TIMEOUT, self.http.get(url))
                    .await
                    .map_err(|_| unavailable("timed out".into()))?
                    .map_err(|e| unavailable(format!("{e:#}")))?;
                if !response.status.is_success() {
                    return Err(unavailable(format!("status {}", response.status)));
                }
                serde_json::from_slice(&response.body)
                    .map_err(|e| unavailable(format!("not a JWKS document: {e}")))
            }
        }
    }
}

/// The signing keys of a set, by id: RS256 and ES256 only; keys without an id, for encryption, or
/// of other kinds are left out.
fn usable_keys(set: &JwkSet) -> HashMap<String, VerifyingKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let alg = key_algorithm(jwk)?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, VerifyingKey { key, alg }))
        })
        .collect()
}

fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, PublicKeyUse};
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        _ => None,
    }
}
