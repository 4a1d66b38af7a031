//! The claims of the backend's own tokens, and the time they are checked against.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::principal::{OrgId, Principal, Role};

/// The audience of the backend's own tokens (and the default expected of an identity provider's).
pub const AUDIENCE: &str = "ai-interview";

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a token of this backend says. Identity providers' tokens are read through the same
/// struct: the standard claims plus `role`/`roles`; `org` and `interview` are trusted only from
/// the backend's own issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// One audience when minted here; providers may send a list (checked by the verifier, not
    /// read back).
    #[serde(default, skip_deserializing)]
    pub aud: String,
    pub exp: u64,
    #[serde(default)]
    pub nbf: u64,
    #[serde(default)]
    pub iat: u64,
    /// A unique id, so a single-use token can be told apart from its copies.
    #[serde(default)]
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Roles as many identity providers list them (`["recruiter"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interview: Option<String>,
}

impl Claims {
    /// Claims for `principal`, valid from now for `ttl`.
    pub fn for_principal(
        issuer: &str,
        audience: &str,
        principal: &Principal,
        ttl: Duration,
    ) -> Self {
        let now = now_secs();
        Self {
            iss: issuer.to_string(),
            sub: principal.subject.clone(),
            aud: audience.to_string(),
            exp: now + ttl.as_secs().max(1),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            org: principal.org.as_ref().map(|o| o.0.clone()),
            role: Some(principal.role.as_str().to_string()),
            roles: Vec::new(),
            interview: principal.interview.clone(),
        }
    }

    /// The principal these claims name, when they come from the backend's own issuer: every
    /// field is the backend's to set.
    pub fn own_principal(&self) -> Option<Principal> {
        let role: Role = self.role.as_deref()?.parse().ok()?;
        let org = self.org.clone().map(OrgId);
        match role {
            Role::Candidate => Some(Principal::candidate(
                self.sub.clone(),
                org?,
                self.interview.clone()?,
            )),
            Role::Admin | Role::Recruiter => Some(Principal::member(self.sub.clone(), role, org?)),
            Role::Service => Some(Principal {
                subject: self.sub.clone(),
                role,
                org,
                interview: self.interview.clone(),
            }),
        }
    }

    /// The member these claims name when they come from an organisation's identity provider:
    /// the organisation is the provider's, and only the member roles count.
    pub fn member_of(&self, org: &OrgId) -> Option<Principal> {
        let named = self.role.iter().chain(self.roles.iter());
        let roles: Vec<Role> = named.filter_map(|r| r.parse().ok()).collect();
        let role = if roles.contains(&Role::Admin) {
            Role::Admin
        } else if roles.contains(&Role::Recruiter) {
            Role::Recruiter
        } else {
            return None;
        };
        Some(Principal::member(self.sub.clone(), role, org.clone()))
    }
}
