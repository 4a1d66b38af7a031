//! The analysis policy of an interview: what may be inferred from the candidate's frames.
//!
//! In the EU, inferring emotions in hiring is prohibited, so operators choose per interview.

use serde::{Deserialize, Serialize};

use crate::emotion::AnalysisPolicy as WirePolicy;

/// What the emotion service may infer from a session's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

    /// Parses the text form; `None` for anything else, so callers can say what was wrong.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "full" => Some(Self::Full),
            "engagement" => Some(Self::Engagement),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    pub fn allows_emotion(self) -> bool {
        self == Self::Full
    }
}

impl From<WirePolicy> for AnalysisPolicy {
    fn from(value: WirePolicy) -> Self {
        match value {
            WirePolicy::Unspecified | WirePolicy::Full => Self::Full,
            WirePolicy::Engagement => Self::Engagement,
            WirePolicy::Off => Self::Off,
        }
    }
}

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

    #[test]
    fn text_and_wire_forms_round_trip() {
        for p in [
            AnalysisPolicy::Full,
            AnalysisPolicy::Engagement,
            AnalysisPolicy::Off,
        ] {
            assert_eq!(AnalysisPolicy::parse(p.as_str()), Some(p));
            assert_eq!(AnalysisPolicy::from(WirePolicy::from(p)), p);
        }
        assert_eq!(AnalysisPolicy::parse("emotions please"), None);
        assert_eq!(
            AnalysisPolicy::from(WirePolicy::Unspecified),
            AnalysisPolicy::Full
        );
    }
}
