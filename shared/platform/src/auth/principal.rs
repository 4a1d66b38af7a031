//! Who is calling: a person of an organisation in one role, a candidate of one interview, or one
//! of the backend's own services.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An organisation (tenant). Every interview belongs to exactly one.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct OrgId(pub String);

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the organisation: members, every interview, the internal endpoints.
    Admin,
    /// Creates interviews and reads their reports, within the organisation.
    Recruiter,
    /// The invitee of one interview: takes it, and nothing else.
    Candidate,
    /// One of the backend's services, calling another on a person's behalf or for background work.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Recruiter => "recruiter",
            Self::Candidate => "candidate",
            Self::Service => "service",
        }
    }

    /// Members of an organisation (people who sign in), as opposed to invitees and services.
    pub fn is_member(self) -> bool {
        matches!(self, Self::Admin | Self::Recruiter)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "recruiter" => Ok(Self::Recruiter),
            "candidate" => Ok(Self::Candidate),
            "service" => Ok(Self::Service),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected admin, recruiter, candidate or service)")]
pub struct UnknownRole(pub String);

/// A verified caller. Built only by verifying a token, never from what a request says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The identity provider's subject (a person), the candidate's invitation, or a service name.
    pub subject: String,
    pub role: Role,
    /// The organisation; `None` only for services acting for no one.
    pub org: Option<OrgId>,
    /// The one interview a candidate may touch.
    pub interview: Option<String>,
}

impl Principal {
    pub fn member(subject: impl Into<String>, role: Role, org: OrgId) -> Self {
        Self {
            subject: subject.into(),
            role,
            org: Some(org),
            interview: None,
        }
    }

    pub fn candidate(subject: impl Into<String>, org: OrgId, interview: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            role: Role::Candidate,
            org: Some(org),
            interview: Some(interview.into()),
        }
    }

    /// A service acting on its own account (background work, health of peers).
    pub fn service(name: &str) -> Self {
        Self {
            subject: name.to_string(),
            role: Role::Service,
            org: None,
            interview: None,
        }
    }

    /// Whether this caller may read or act on an interview of `org` with id `interview`: members
    /// of that organisation, its own candidate, and services. Everyone else must be told the
    /// interview does not exist.
    pub fn may_access(&self, org: &OrgId, interview: &str) -> bool {
        match self.role {
            Role::Service => true,
            Role::Admin | Role::Recruiter => self.org.as_ref() == Some(org),
            Role::Candidate => {
                self.org.as_ref() == Some(org) && self.interview.as_deref() == Some(interview)
            }
        }
    }

    /// Whether this caller may read an interview's results (timeline, score, report) when the
    /// interview belongs to `org`: its organisation's members and services. A candidate reads
    /// only their own status, never results.
    pub fn may_review(&self, org: Option<&OrgId>) -> bool {
        match self.role {
            Role::Service => true,
            Role::Admin | Role::Recruiter => org.is_some() && self.org.as_ref() == org,
            Role::Candidate => false,
        }
    }

    /// The organisation work done for this caller belongs to: a member's own, or for a service
    /// (acting for the interview it names) the `claimed` one it passes on.
    pub fn acting_for(&self, claimed: &str) -> Option<OrgId> {
        match self.role {
            Role::Service => {
                (!claimed.trim().is_empty()).then(|| OrgId(claimed.trim().to_string()))
            }
            _ => self.org.clone(),
        }
    }

    /// The organisation this caller administers: an admin's own; nobody else's.
    pub fn admin_of(&self) -> Option<&OrgId> {
        self.org.as_ref().filter(|_| self.role == Role::Admin)
    }

    /// The organisation this caller works for as a member (admin or recruiter).
    pub fn member_of(&self) -> Option<&OrgId> {
        self.org.as_ref().filter(|_| self.role.is_member())
    }

    /// Admins of any organisation and services: the internal endpoints.
    pub fn is_privileged(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_administer_and_only_members_work_for_an_organisation() {
        let org = OrgId("acme".into());
        let admin = Principal::member("ada", Role::Admin, org.clone());
        let recruiter = Principal::member("rita", Role::Recruiter, org.clone());
        let candidate = Principal::candidate("c", org.clone(), "i-1");
        let service = Principal::service("worker-service");
        assert_eq!(admin.admin_of(), Some(&org));
        assert_eq!(recruiter.admin_of(), None);
        assert_eq!(
            (admin.member_of(), recruiter.member_of()),
            (Some(&org), Some(&org))
        );
        for nobody in [&candidate, &service] {
            assert_eq!((nobody.admin_of(), nobody.member_of()), (None, None));
        }
    }

    #[test]
    fn results_are_for_the_organisation_and_services_and_work_is_done_for_the_right_one() {
        let (a, b) = (OrgId("a".into()), OrgId("b".into()));
        let recruiter = Principal::member("r", Role::Recruiter, a.clone());
        assert!(recruiter.may_review(Some(&a)));
        assert!(!recruiter.may_review(Some(&b)));
        assert!(
            !recruiter.may_review(None),
            "a session of no known organisation"
        );
        assert!(!Principal::candidate("c", a.clone(), "i").may_review(Some(&a)));
        assert!(Principal::service("worker").may_review(None));

        assert_eq!(
            recruiter.acting_for("b"),
            Some(a.clone()),
            "members act for their own"
        );
        assert_eq!(Principal::service("interview").acting_for("b"), Some(b));
        assert_eq!(Principal::service("interview").acting_for(" "), None);
    }

    #[test]
    fn roles_read_back_what_they_print() {
        for role in [Role::Admin, Role::Recruiter, Role::Candidate, Role::Service] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn access_follows_the_organisation_and_the_invitation() {
        let acme = OrgId("acme".into());
        let other = OrgId("other".into());
        let recruiter = Principal::member("r", Role::Recruiter, acme.clone());
        assert!(recruiter.may_access(&acme, "i1"));
        assert!(!recruiter.may_access(&other, "i1"));
        let candidate = Principal::candidate("c", acme.clone(), "i1");
        assert!(candidate.may_access(&acme, "i1"));
        assert!(!candidate.may_access(&acme, "i2"));
        assert!(!candidate.may_access(&other, "i1"));
        assert!(Principal::service("worker").may_access(&other, "i9"));
    }
}
