//! Who the backend trusts, from the environment: its own issuer (a key in the data directory on
//! embedded defaults) and each organisation's identity provider.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::internal::{ServiceCredential, default_secret_path};
use super::jwks::{Jwks, KeySource};
use super::principal::OrgId;
use super::signing::{SigningKey, default_key_path};
use super::verify::{Issuer, Trust, Verifier};
use super::{AUDIENCE, AuthError};
use crate::config::{ConfigError, Env};

/// An organisation's identity provider, as `AUTH_PROVIDERS` lists them (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProviderConfig {
    /// The organisation whose members it signs in.
    pub org: String,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Where its public keys are (`jwks_uri` of its OpenID configuration).
    pub jwks_uri: String,
    /// The `aud` its tokens carry for this backend.
    #[serde(default = "default_audience")]
    pub audience: String,
}

fn default_audience() -> String {
    AUDIENCE.to_string()
}

/// Identity settings every service reads the same way.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `AUTH_ISSUER`: the `iss` of the backend's own tokens (default `ai-interview`).
    pub issuer: String,
    /// `AUTH_SIGNING_KEY_FILE`: the backend's ES256 key (default `<DATA_DIR>/auth/signing-key.pem`,
    /// created on first start).
    pub key_file: PathBuf,
    /// `AUTH_PROVIDERS`: organisations' identity providers.
    pub providers: Vec<ProviderConfig>,
    /// `SERVICE_SECRET`: the credential services prove themselves with; without it, a secret in
    /// `<DATA_DIR>/auth/service-secret` (created on first start) is shared by the services of one
    /// machine.
    pub service_secret: Option<String>,
    pub secret_file: PathBuf,
    /// `AUTH_TOKEN_HOURS`: how long a minted member token lasts (default 8).
    pub token_ttl: Duration,
}

impl AuthConfig {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let data_dir = env.string("DATA_DIR", "data");
        let providers = match env
            .optional("AUTH_PROVIDERS")
            .filter(|v| !v.trim().is_empty())
        {
            None => Vec::new(),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                let mut err = ConfigError::invalid(
                    "AUTH_PROVIDERS",
                    &json,
                    r#"a JSON array of {"org","issuer","jwks_uri"[,"audience"]}"#,
                );
                err.source = Some(Box::new(e));
                err
            })?,
        };
        let hours: u64 = env.parse("AUTH_TOKEN_HOURS", 8)?;
        Ok(Self {
            issuer: env.string("AUTH_ISSUER", "ai-interview"),
            key_file: env
                .optional("AUTH_SIGNING_KEY_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| default_key_path(&data_dir)),
            providers,
            service_secret: env.optional("SERVICE_SECRET"),
            secret_file: default_secret_path(&data_dir),
            token_ttl: Duration::from_secs(hours.max(1) * 3600),
        })
    }

    /// The backend's own key, created when missing.
    pub fn signing_key(&self) -> Result<SigningKey, AuthError> {
        SigningKey::load_or_create(&self.key_file, &self.issuer, AUDIENCE)
    }

    /// The credential `service` proves itself with.
    pub fn credential(&self, service: &'static str) -> Result<ServiceCredential, AuthError> {
        ServiceCredential::from_env_or_file(
            service,
            self.service_secret.as_deref(),
            &self.secret_file,
        )
    }

    /// `router` behind the identity check, with `service`'s credential: how every service
    /// behind the gateway serves.
    pub fn guard(
        &self,
        router: axum::Router,
        service: &'static str,
    ) -> Result<axum::Router, AuthError> {
        Ok(super::layer::require_identity(
            router,
            self.credential(service)?,
        ))
    }

    /// A verifier trusting the backend's own key and every configured provider.
    pub fn verifier(&self) -> Result<Verifier, AuthError> {
        let own = self.signing_key()?;
        let mut issuers = vec![Issuer {
            issuer: own.issuer().to_string(),
            audience: AUDIENCE.to_string(),
            keys: Jwks::new(KeySource::Fixed(own.jwks())),
            trust: Trust::Own,
        }];
        issuers.extend(self.providers.iter().map(|p| Issuer {
            issuer: p.issuer.clone(),
            audience: p.audience.clone(),
            keys: Jwks::new(KeySource::Url(p.jwks_uri.clone())),
            trust: Trust::MembersOf(OrgId(p.org.clone())),
        }));
        Ok(Verifier::new(issuers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env_map;

    #[test]
    fn providers_are_read_from_json_and_bad_json_says_what_is_expected() {
        let env = env_map(&[(
            "AUTH_PROVIDERS",
            r#"[{"org":"acme","issuer":"https://idp.acme","jwks_uri":"https://idp.acme/keys"}]"#,
        )]);
        let config = AuthConfig::from_env(&Env::new(&env)).unwrap();
        assert_eq!(config.providers[0].org, "acme");
        assert_eq!(config.providers[0].audience, AUDIENCE);
        let env = env_map(&[("AUTH_PROVIDERS", "acme=https://idp")]);
        let err = AuthConfig::from_env(&Env::new(&env)).unwrap_err();
        assert!(err.to_string().contains("JSON array"), "{err}");
    }
}
