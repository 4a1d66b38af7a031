//! Between services: a caller proves it is one of the backend's services with a credential all of
//! them share (`SERVICE_SECRET`, or on embedded defaults a secret created in the data directory),
//! and carries the identity the gateway verified in one header, signed with it. Each service then
//! checks ownership itself instead of trusting the network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::claims::now_secs;
use super::principal::Principal;

/// The header (HTTP) and metadata key (gRPC) that carries the asserted identity.
pub const IDENTITY_HEADER: &str = "x-iv-identity";
/// Audience of identity assertions: nothing outside the backend accepts them.
const AUDIENCE: &str = "ai-interview-internal";
/// An assertion covers one request and its retries, not a session.
const TTL: Duration = Duration::from_secs(300);
/// Shortest secret accepted: HS256 wants at least its own output size.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct Assertion {
    /// The service that asserts.
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
    principal: Principal,
}

/// The shared service credential.
#[derive(Clone)]
pub struct ServiceCredential {
    service: &'static str,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredential")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// A caller proven to be a service, and whom it acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asserted {
    pub by: String,
    pub principal: Principal,
}

impl ServiceCredential {
    /// `service` signs with `secret`.
    pub fn new(service: &'static str, secret: &[u8]) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(AuthError::Key(format!(
                "the service secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        Ok(Self {
            service,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// `SERVICE_SECRET` when given, else the secret in `path`, created there on first start (the
    /// embedded default, where every service shares one data directory).
    pub fn from_env_or_file(
        service: &'static str,
        secret: Option<&str>,
        path: &Path,
    ) -> Result<Self, AuthError> {
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            return Self::new(service, secret.as_bytes());
        }
        let io = |source| AuthError::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        let secret = match std::fs::read_to_string(path) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                aws_lc_rs::rand::fill(&mut bytes)
                    .map_err(|_| AuthError::Key("no randomness for the service secret".into()))?;
                let secret = URL_SAFE_NO_PAD.encode(bytes);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                match super::signing::write_private(path, secret.as_bytes()) {
                    Ok(()) => secret,
                    // Another service of the same stack created it first.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read_to_string(path)
                            .map_err(io)?
                            .trim()
                            .to_string()
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        Self::new(service, secret.as_bytes())
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// An assertion that this service acts for `principal`.
    pub fn assert(&self, principal: &Principal) -> String {
        let now = now_secs();
        let assertion = Assertion {
            iss: self.service.to_string(),
            aud: AUDIENCE.to_string(),
            exp: now + TTL.as_secs(),
            iat: now,
            principal: principal.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &assertion, &self.encoding)
            .expect("HS256 signing does not fail")
    }

    /// An assertion of this service acting on its own account.
    pub fn assert_self(&self) -> String {
        self.assert(&Principal::service(self.service))
    }

    /// Who asserted what, if `token` was signed with the shared secret and is current.
    pub fn verify(&self, token: &str) -> Result<Asserted, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = super::verify::LEEWAY_SECS;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let assertion = jsonwebtoken::decode::<Assertion>(token, &self.decoding, &validation)
            .map_err(AuthError::Rejected)?
            .claims;
        Ok(Asserted {
            by: assertion.iss,
            principal: assertion.principal,
        })
    }
}

/// The default place of the shared secret: `<DATA_DIR>/auth/service-secret`.
pub fn default_secret_path(data_dir: &str) -> PathBuf {
    Path::new(data_dir).join("auth").join("service-secret")
}
