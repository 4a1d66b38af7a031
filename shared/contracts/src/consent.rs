//! The consent a frame is analysed under. The interview service records the candidate's
//! consent; every frame it passes on carries a [`ConsentProof`] of it, and the emotion service
//! refuses a frame without one, or one asking for more than was consented to, so a caller that
//! forgot to check (a replay, a new client) cannot have frames analysed without consent.

use crate::emotion::ConsentProof;
use crate::events::FrameCaptured;
use crate::policy::{AnalysisPolicy, UnknownPolicy};

/// Why a frame may not be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentRefusal {
    #[error("no consent recorded for this frame; the candidate must consent to the notice first")]
    Missing,
    #[error("the frame's consent names no notice (its SHA-256 must be 64 hex digits)")]
    Malformed,
    #[error(transparent)]
    Policy(#[from] UnknownPolicy),
    #[error("the frame asks for {asked} analysis but the candidate consented to {consented}")]
    Looser {
        asked: AnalysisPolicy,
        consented: AnalysisPolicy,
    },
}

/// Whether a frame under `asked` may be analysed with `proof`.
pub fn check(proof: Option<&ConsentProof>, asked: AnalysisPolicy) -> Result<(), ConsentRefusal> {
    let proof = proof.ok_or(ConsentRefusal::Missing)?;
    let sha = &proof.notice_sha256;
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) || proof.given_at <= 0 {
        return Err(ConsentRefusal::Malformed);
    }
    let consented = AnalysisPolicy::from_wire(proof.policy)?;
    if asked.within(consented) {
        Ok(())
    } else {
        Err(ConsentRefusal::Looser { asked, consented })
    }
}

/// The proof a deferred frame travels with, for the worker to pass on.
pub fn of_event(event: &FrameCaptured) -> Option<ConsentProof> {
    (!event.consent_notice_sha256.is_empty()).then(|| ConsentProof {
        notice_version: event.consent_notice_version,
        notice_sha256: event.consent_notice_sha256.clone(),
        policy: crate::emotion::AnalysisPolicy::from(AnalysisPolicy::from_stored(
            &event.analysis_policy,
        )) as i32,
        given_at: event.consent_given_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(policy: AnalysisPolicy) -> ConsentProof {
        ConsentProof {
            notice_version: 1,
            notice_sha256: "ab".repeat(32),
            policy: crate::emotion::AnalysisPolicy::from(policy) as i32,
            given_at: 1,
        }
    }

    #[test]
    fn a_frame_needs_a_well_formed_consent_no_looser_than_its_policy() {
        use AnalysisPolicy::*;
        assert_eq!(check(None, Engagement), Err(ConsentRefusal::Missing));
        let mut bad = proof(Full);
        bad.notice_sha256 = "not hex".into();
        assert_eq!(check(Some(&bad), Full), Err(ConsentRefusal::Malformed));
        assert_eq!(check(Some(&proof(Full)), Engagement), Ok(()));
        assert_eq!(
            check(Some(&proof(Engagement)), Full),
            Err(ConsentRefusal::Looser {
                asked: Full,
                consented: Engagement
            })
        );
    }

    #[test]
    fn a_deferred_frame_carries_its_consent_to_the_worker() {
        let event = FrameCaptured {
            analysis_policy: "engagement".into(),
            consent_notice_version: 3,
            consent_notice_sha256: "cd".repeat(32),
            consent_given_at: 7,
            ..Default::default()
        };
        let p = of_event(&event).unwrap();
        assert_eq!(check(Some(&p), AnalysisPolicy::Engagement), Ok(()));
        assert_eq!(p.notice_version, 3);
        assert!(of_event(&FrameCaptured::default()).is_none());
    }
}
