//! Identity: who a caller is, proven by a signed token, and what that lets them touch.
//!
//! - [`principal`]: organisations, roles and the verified caller.
//! - [`config`]: whom the backend trusts, from the environment.
//! - [`claims`]: what the backend's tokens say.
//! - [`signing`]: the backend's own ES256 key (embedded default and invitations), published as JWKS.
//! - [`jwks`]: a provider's keys, cached by id and refetched on an unknown one.
//! - [`verify`]: bearer tokens checked against the trusted issuers (RS256, ES256).
//! - [`layer`]: the services' check of the asserted identity, and the handlers' `Caller`.
//! - [`internal`]: service-to-service: the shared credential and the identity each request carries.

pub mod claims;
pub mod config;
pub mod internal;
pub mod jwks;
pub mod layer;
pub mod principal;
pub mod signing;
pub mod verify;

use std::path::PathBuf;

pub use claims::{AUDIENCE, Claims};
pub use config::{AuthConfig, ProviderConfig};
pub use internal::{Asserted, IDENTITY_HEADER, ServiceCredential};
pub use jwks::{Jwks, KeySource};
pub use layer::{
    AssertingChannel, Caller, Privileged, asserting_channel, grpc_caller, grpc_privileged,
    require_identity,
};
pub use principal::{OrgId, Principal, Role};
pub use signing::SigningKey;
pub use verify::{Issuer, Trust, Verifier};

use crate::errors::{ApiError, ErrorClass, code};

/// Why a caller is not let in, or why the keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: send Authorization: Bearer <token>")]
    Missing,
    #[error("the token is not a JWT")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("the token's algorithm {0} is not accepted (RS256 or ES256 only)")]
    Algorithm(String),
    #[error("the token names no key (kid)")]
    NoKeyId,
    #[error("the token's issuer {0:?} is not trusted")]
    UnknownIssuer(String),
    #[error("the issuer has no key {0:?}")]
    UnknownKey(String),
    #[error("the token was refused")]
    Rejected(#[source] jsonwebtoken::errors::Error),
    #[error("the token grants no role here")]
    NoRole,
    #[error("the issuer's keys at {url} cannot be fetched: {reason}")]
    KeysUnavailable { url: String, reason: String },
    #[error("{0}")]
    Key(String),
    #[error("cannot use the key file {path}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signing a token failed")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Machine-readable codes of refused credentials.
pub mod codes {
    /// The token is valid but its holder may not do this.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// The identity provider's keys cannot be fetched.
    pub const AUTH_UNAVAILABLE: &str = "AUTH_UNAVAILABLE";
}

impl AuthError {
    /// What a client is told. Refusals say what kind of check failed (expired, audience...), never
    /// anything of the key material.
    pub fn to_api(&self) -> ApiError {
        match self {
            Self::Missing
            | Self::Malformed(_)
            | Self::Algorithm(_)
            | Self::NoKeyId
            | Self::UnknownIssuer(_)
            | Self::UnknownKey(_) => ApiError::new(
                ErrorClass::Unauthenticated,
                code::UNAUTHENTICATED,
                self.to_string(),
            ),
            Self::Rejected(e) => ApiError::new(
                ErrorClass::Unauthenticated,
                code::UNAUTHENTICATED,
                format!("the token was refused: {}", refusal(e)),
            ),
            Self::NoRole => {
                ApiError::new(ErrorClass::Forbidden, codes::FORBIDDEN, self.to_string())
            }
            Self::KeysUnavailable { .. } => {
                tracing::warn!(error = %self, "identity provider unreachable");
                ApiError::new(
                    ErrorClass::Unavailable,
                    codes::AUTH_UNAVAILABLE,
                    "the identity provider cannot be reached; try again shortly",
                )
            }
            Self::Key(_) | Self::KeyFile { .. } | Self::Sign(_) => {
                ApiError::internal("authentication keys", &crate::errors::Chain(self))
            }
        }
    }
}

/// The check a token failed, in words a client developer can act on.
fn refusal(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet (nbf)",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        _ => "malformed",
    }
}

#[cfg(test)]
mod tests;
