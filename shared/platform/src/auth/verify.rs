//! Verifying a bearer token: which issuer it claims, that issuer's key by `kid`, then signature,
//! issuer, audience, expiry and not-before, with a clock-skew allowance. Only RS256 and ES256 are
//! accepted; `none` and the HMAC algorithms never are (a public key must not be usable as an HMAC
//! secret).

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};

use super::AuthError;
use super::claims::Claims;
use super::jwks::Jwks;
use super::principal::{OrgId, Principal};

/// Clock difference tolerated between an issuer and this server, seconds.
pub const LEEWAY_SECS: u64 = 60;

/// What an issuer may assert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The backend's own issuer: organisation, role and interview come from its claims.
    Own,
    /// An organisation's identity provider: its tokens sign in members of that organisation, in
    /// the role its `role`/`roles` claim names (admin or recruiter).
    MembersOf(OrgId),
}

/// One trusted issuer.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must carry for this backend.
    pub audience: String,
    pub keys: Arc<Jwks>,
    pub trust: Trust,
}

/// Verifies tokens from any of its issuers.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    issuers: Vec<Issuer>,
}

impl Verifier {
    pub fn new(issuers: Vec<Issuer>) -> Self {
        Self { issuers }
    }

    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The principal a token proves, or why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(AuthError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(AuthError::NoKeyId)?;
        // The issuer is read before the signature is checked only to pick the key; nothing else
        // of the unverified claims is used.
        let claimed = jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
            .map_err(AuthError::Malformed)?
            .claims;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == claimed.iss)
            .ok_or_else(|| AuthError::UnknownIssuer(claimed.iss.clone()))?;
        let key = issuer.keys.key(&kid).await?;
        if key.alg != header.alg {
            return Err(AuthError::Algorithm(format!(
                "{:?} for a {:?} key",
                header.alg, key.alg
            )));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer.issuer.as_str()]);
        validation.set_audience(&[issuer.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(AuthError::Rejected)?
            .claims;
        match &issuer.trust {
            Trust::Own => claims.own_principal(),
            Trust::MembersOf(org) => claims.member_of(org),
        }
        .ok_or(AuthError::NoRole)
    }
}
