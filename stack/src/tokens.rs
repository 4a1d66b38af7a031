//! Tokens of the backend's own issuer, for the embedded default (no identity provider): the first
//! admin's sign-in link the run command prints, the `mint-token` command, and the tools (the
//! candidate simulator, the load generator) run beside the stack.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use iv_platform::auth::{AuthConfig, OrgId, Principal, Role};
use iv_platform::config::Env;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

/// The organisation the embedded default signs its first admin into, and that admin: created
/// by the interview service on its first start.
pub use interview_service::members::{DEFAULT_ORG, FIRST_ADMIN};

/// A token for `principal` from the signing key `env` names (created if missing), valid `ttl`.
pub fn mint(
    env: &HashMap<String, String>,
    principal: &Principal,
    ttl: Duration,
) -> anyhow::Result<String> {
    let config = AuthConfig::from_env(&Env::new(env))?;
    let key = config
        .signing_key()
        .with_context(|| format!("the signing key {}", config.key_file.display()))?;
    Ok(key.mint(principal, ttl)?)
}

/// How long `env` says member tokens last.
pub fn member_ttl(env: &HashMap<String, String>) -> anyhow::Result<Duration> {
    Ok(AuthConfig::from_env(&Env::new(env))?.token_ttl)
}

/// The first admin of the default organisation.
pub fn first_admin() -> Principal {
    Principal::member(FIRST_ADMIN, Role::Admin, OrgId(DEFAULT_ORG.into()))
}

/// An admin token for tools run beside a stack on embedded defaults: only from a signing key that
/// already exists, so a tool started in the wrong directory says so instead of making a key
/// nobody trusts.
pub fn local_admin_token(env: &HashMap<String, String>) -> anyhow::Result<String> {
    let config = AuthConfig::from_env(&Env::new(env))?;
    anyhow::ensure!(
        config.key_file.exists(),
        "no token given and no signing key at {} (pass --token, or run where the stack's DATA_DIR is)",
        config.key_file.display()
    );
    mint(env, &first_admin(), config.token_ttl)
}

/// An identity assertion of service `name` on its own account, signed with the service
/// credential `env` names: what a peer service sends in place of the gateway's.
pub fn service_assertion(env: &HashMap<String, String>, name: &str) -> anyhow::Result<String> {
    assertion_for(env, &Principal::service(name))
}

/// The identity assertion the gateway sends for `principal`, signed with the service credential
/// `env` names.
pub fn assertion_for(
    env: &HashMap<String, String>,
    principal: &Principal,
) -> anyhow::Result<String> {
    let config = AuthConfig::from_env(&Env::new(env))?;
    Ok(config.credential("mint-token")?.assert(principal))
}

/// A WebSocket upgrade request to `url`, with the bearer token when given.
pub fn ws_request(url: &str, token: Option<&str>) -> anyhow::Result<Request> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("not a WebSocket address: {url}"))?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .context("a token that fits in a header")?,
        );
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use iv_platform::auth::ServiceCredential;

    use super::*;

    /// What `mint-token --role admin --assert` prints is what the gateway would send for that
    /// admin: a service reading it sees the admin, asserted by a service of the installation.
    #[test]
    fn an_asserted_member_reads_as_that_member_on_the_shared_credential() {
        let secret = "an-installation-secret-of-at-least-32-bytes";
        let env = HashMap::from([("SERVICE_SECRET".to_string(), secret.to_string())]);
        let admin = Principal::member("ada", Role::Admin, OrgId("acme".into()));
        let assertion = assertion_for(&env, &admin).unwrap();
        let interview = ServiceCredential::new("interview", secret.as_bytes()).unwrap();
        let asserted = interview.verify(&assertion).unwrap();
        assert_eq!(asserted.principal, admin);
        assert_eq!(asserted.by, "mint-token");
        let other = ServiceCredential::new("interview", &[7u8; 32]).unwrap();
        assert!(other.verify(&assertion).is_err());
    }
}
