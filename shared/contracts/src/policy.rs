//! The analysis policy of an interview: what may be inferred from the candidate's frames.
//!
//! In the EU, inferring emotions in hiring is prohibited, so operators choose per interview.
//!
//! The policy travels as text (`full`, `engagement`, `off`) in REST bodies, events and stored
//! rows, and as [`WirePolicy`] in gRPC. It is parsed once where it enters:
//! - from a caller ([`AnalysisPolicy::from_request`], [`AnalysisPolicy::from_wire`]), absent means
//!   the documented default `full`, and anything unknown is refused with [`UnknownPolicy`];
//! - from storage or a queue ([`AnalysisPolicy::from_stored`], and deserialising), anything
//!   unreadable is the strictest policy, `off`: a damaged record never widens what is analysed.

use serde::{Deserialize, Deserializer, Serialize};

use crate::emotion::AnalysisPolicy as WirePolicy;

/// What the emotion service may infer from a session's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisPolicy {
    /// Face, attention, blinks and expression.
    #[default]
    Full,
    /// Face, attention and blinks; the expression model is never run, no emotion is stored.
    Engagement,
    /// No frame is analysed.
    Off,
}

impl AnalysisPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Engagement => "engagement",
            Self::Off => "off",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Some(Self::Full),
            "engagement" => Some(Self::Engagement),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    /// A caller's text: absent or blank means `full`; anything unknown is refused.
    pub fn from_request(text: Option<&str>) -> Result<Self, UnknownPolicy> {
        match text.map(str::trim) {
            None | Some("") => Ok(Self::Full),
            Some(t) => Self::parse(t).ok_or_else(|| UnknownPolicy(t.to_string())),
        }
    }

    /// A gRPC caller's value: unspecified means `full`; a number outside the enum is refused.
    pub fn from_wire(value: i32) -> Result<Self, UnknownPolicy> {
        match WirePolicy::try_from(value) {
            Ok(WirePolicy::Unspecified | WirePolicy::Full) => Ok(Self::Full),
            Ok(WirePolicy::Engagement) => Ok(Self::Engagement),
            Ok(WirePolicy::Off) => Ok(Self::Off),
            Err(_) => Err(UnknownPolicy(value.to_string())),
        }
    }

    /// A value read back from a database row or an event: unreadable means `off`.
    pub fn from_stored(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|| {
            tracing::warn!(
                policy = text,
                "unreadable stored analysis policy; treated as off"
            );
            Self::Off
        })
    }

    pub fn allows_emotion(self) -> bool {
        self == Self::Full
    }

    /// How much is inferred: `off` infers least, `full` most. A policy may only be tightened
    /// against what an organisation allows or a candidate consented to.
    fn reach(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::Engagement => 1,
            Self::Full => 2,
        }
    }

    /// Whether this policy infers no more than `limit` does.
    pub fn within(self, limit: Self) -> bool {
        self.reach() <= limit.reach()
    }
}

impl std::fmt::Display for AnalysisPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// For `#[serde(deserialize_with)]` on a caller's field: blank means `full`, unknown is an error.
pub fn deserialize_request<'de, D: Deserializer<'de>>(d: D) -> Result<AnalysisPolicy, D::Error> {
    let text = String::deserialize(d)?;
    AnalysisPolicy::from_request(Some(&text)).map_err(serde::de::Error::custom)
}

/// For `#[serde(deserialize_with)]` on a stored record's field: unreadable means `off`, never an
/// error that would make the whole record unreadable.
pub fn deserialize_stored<'de, D: Deserializer<'de>>(d: D) -> Result<AnalysisPolicy, D::Error> {
    let text = String::deserialize(d)?;
    Ok(AnalysisPolicy::from_stored(&text))
}

/// A policy a caller named that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown analysis policy {0:?}; use full, engagement or off")]
pub struct UnknownPolicy(pub String);

impl From<AnalysisPolicy> for WirePolicy {
    fn from(value: AnalysisPolicy) -> Self {
        match value {
            AnalysisPolicy::Full => Self::Full,
            AnalysisPolicy::Engagement => Self::Engagement,
            AnalysisPolicy::Off => Self::Off,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [AnalysisPolicy; 3] = [
        AnalysisPolicy::Full,
        AnalysisPolicy::Engagement,
        AnalysisPolicy::Off,
    ];

    #[test]
    fn off_is_within_every_policy_and_full_only_within_itself() {
        for p in ALL {
            assert!(AnalysisPolicy::Off.within(p) && p.within(AnalysisPolicy::Full) && p.within(p));
        }
        assert!(!AnalysisPolicy::Full.within(AnalysisPolicy::Engagement));
        assert!(!AnalysisPolicy::Engagement.within(AnalysisPolicy::Off));
    }

    #[test]
    fn text_and_wire_forms_round_trip() {
        for p in ALL {
            assert_eq!(AnalysisPolicy::from_request(Some(p.as_str())), Ok(p));
            assert_eq!(AnalysisPolicy::from_stored(p.as_str()), p);
            assert_eq!(AnalysisPolicy::from_wire(WirePolicy::from(p) as i32), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<AnalysisPolicy>(&json).unwrap(), p);
            assert_eq!(Stored::read(&json), p);
        }
    }

    #[test]
    fn a_caller_that_names_no_policy_gets_full_and_an_unknown_one_is_refused() {
        assert_eq!(AnalysisPolicy::from_request(None), Ok(AnalysisPolicy::Full));
        assert_eq!(
            AnalysisPolicy::from_request(Some(" ")),
            Ok(AnalysisPolicy::Full)
        );
        assert_eq!(
            AnalysisPolicy::from_request(Some(" Engagement ")),
            Ok(AnalysisPolicy::Engagement)
        );
        assert_eq!(
            AnalysisPolicy::from_request(Some("emotions please")),
            Err(UnknownPolicy("emotions please".into()))
        );
        assert_eq!(
            AnalysisPolicy::from_wire(WirePolicy::Unspecified as i32),
            Ok(AnalysisPolicy::Full)
        );
        assert_eq!(
            AnalysisPolicy::from_wire(42),
            Err(UnknownPolicy("42".into()))
        );
    }

    #[test]
    fn an_unreadable_stored_policy_is_off_never_full() {
        for damaged in ["", "ful", "FULL-ish", "null"] {
            assert_eq!(
                AnalysisPolicy::from_stored(damaged),
                AnalysisPolicy::Off,
                "{damaged:?}"
            );
        }
        assert_eq!(Stored::read("\"everything\""), AnalysisPolicy::Off);
    }

    #[test]
    fn a_request_field_is_strict_and_a_blank_one_is_full() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(deserialize_with = "deserialize_request")]
            policy: AnalysisPolicy,
        }
        let read = |v: &str| serde_json::from_str::<Body>(&format!("{{\"policy\": {v}}}"));
        assert_eq!(read("\"\"").unwrap().policy, AnalysisPolicy::Full);
        assert_eq!(read("\"off\"").unwrap().policy, AnalysisPolicy::Off);
        let err = read("\"telepathy\"").err().unwrap().to_string();
        assert!(err.contains("unknown analysis policy"), "{err}");
    }

    #[derive(serde::Deserialize)]
    struct Stored {
        #[serde(deserialize_with = "deserialize_stored")]
        policy: AnalysisPolicy,
    }

    impl Stored {
        fn read(value: &str) -> AnalysisPolicy {
            serde_json::from_str::<Stored>(&format!("{{\"policy\": {value}}}"))
                .unwrap()
                .policy
        }
    }
}
