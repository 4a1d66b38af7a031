//! Notice and consent with fake downstreams: nothing reaches the emotion or scoring service
//! before the candidate consents to the notice they read; every frame after carries that
//! consent; withdrawal stops everything and asks for the face data to be erased.

use iv_contracts::events::{ConsentWithdrawn, Event};
use iv_platform::auth::{OrgId, Principal, Role};
use iv_platform::errors::ApiError;

use super::*;
use crate::app::StartRequest;
use crate::testing::Fixture;

fn candidate(session: &Session) -> Principal {
    Principal::candidate("candidate-1", session.org.clone(), session.id.clone())
}

async fn outbox_rows(f: &Fixture, id: &str, key: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE session_id = $1 AND routing_key = $2")
        .bind(id)
        .bind(key)
        .fetch_one(f.app.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn nothing_is_analysed_before_the_candidate_consents_to_the_notice_they_read() {
    let f = Fixture::new().await;
    let s = f.start(false).await;
    let me = candidate(&s);

    let err = f.frame(&s.id).await.unwrap_err();
    assert_eq!(ApiError::from(err).code, "CONSENT_REQUIRED");
    let err = f.answer(&s.id, "intro-1").await.unwrap_err();
    assert_eq!(ApiError::from(err).code, "CONSENT_REQUIRED");
    assert_eq!(f.emotion.calls.load(std::sync::atomic::Ordering::SeqCst), 0);

    let notice = f.app.notice_for(&me, &s.id).await.unwrap();
    assert_eq!(notice.policy, s.policy.as_str());
    assert_eq!(notice.sha256, crate::consent::sha256(&notice.text));
    assert!(
        notice.text.contains("erased"),
        "says how to ask for erasure"
    );

    let stale = f
        .app
        .give_consent(&me, &s.id, notice.version, &"0".repeat(64))
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(stale).code, "NOTICE_CHANGED");

    let recruiter = iv_platform::testing::default_caller();
    let err = f
        .app
        .give_consent(&recruiter, &s.id, notice.version, &notice.sha256)
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(err).code, "FORBIDDEN", "only the candidate");

    let consent = f
        .app
        .give_consent(&me, &s.id, notice.version, &notice.sha256)
        .await
        .unwrap();
    assert_eq!(
        (consent.notice_version, consent.notice_sha256.as_str()),
        (notice.version, notice.sha256.as_str())
    );
    assert_eq!(consent.given_role, "candidate");
    let again = f
        .app
        .give_consent(&me, &s.id, notice.version, &notice.sha256)
        .await
        .unwrap();
    assert_eq!(again, consent, "a repeat answers with the first consent");

    f.frame(&s.id).await.unwrap();
    let proofs = f.emotion.proofs.lock().unwrap().clone();
    let proof = proofs[0].clone().expect("the frame carries the consent");
    assert_eq!(
        (proof.notice_version, proof.notice_sha256, proof.given_at),
        (notice.version, notice.sha256, consent.given_at)
    );
    f.answer(&s.id, "intro-1").await.unwrap();
}

#[tokio::test]
async fn withdrawal_stops_frames_and_answers_keeps_the_record_and_asks_for_erasure() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    f.frame(&s.id).await.unwrap();
    let me = candidate(&s);

    let consent = f.app.withdraw_consent(&me, &s.id).await.unwrap();
    assert!(!consent.is_active());
    assert_eq!(consent.withdrawn_by.as_deref(), Some("candidate-1"));
    assert_eq!(
        outbox_rows(&f, &s.id, ConsentWithdrawn::ROUTING_KEY).await,
        1,
        "the worker has the face data erased"
    );
    let again = f.app.withdraw_consent(&me, &s.id).await.unwrap();
    assert_eq!(again.withdrawn_at, consent.withdrawn_at, "idempotent");
    assert_eq!(
        outbox_rows(&f, &s.id, ConsentWithdrawn::ROUTING_KEY).await,
        1
    );

    for err in [
        f.frame(&s.id).await.unwrap_err(),
        f.answer(&s.id, "intro-1").await.unwrap_err(),
        f.app.complete(&s.id).await.unwrap_err(),
    ] {
        assert_eq!(ApiError::from(err).code, "CONSENT_WITHDRAWN");
    }
    assert_eq!(f.emotion.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let notice = f.app.notice_for(&me, &s.id).await.unwrap();
    let err = f
        .app
        .give_consent(&me, &s.id, notice.version, &notice.sha256)
        .await
        .unwrap_err();
    assert_eq!(
        ApiError::from(err).code,
        "CONSENT_WITHDRAWN",
        "not given back"
    );
    let kept = f.app.consent_record(&me, &s.id).await.unwrap().unwrap();
    assert_eq!(kept, consent, "the record of the withdrawal stays");
}

#[tokio::test]
async fn an_interview_takes_the_default_policy_or_a_stricter_one_never_a_looser() {
    let f = Fixture::new().await;
    let admin = iv_platform::testing::default_caller();
    let org = admin.org.clone().unwrap();
    let recruiter = Principal::member("rita", Role::Recruiter, org.clone());
    let set = f
        .app
        .set_default_policy(&recruiter, AnalysisPolicy::Engagement)
        .await;
    assert!(set.is_err(), "admins set the default");
    let admin = Principal::member("ada", Role::Admin, org.clone());
    f.app
        .set_default_policy(&admin, AnalysisPolicy::Engagement)
        .await
        .unwrap();

    let start = |policy: Option<&str>| {
        let req = StartRequest {
            user_id: "candidate-1".into(),
            policy: policy.map(str::to_string),
            ..Default::default()
        };
        f.app.start(req, org.clone(), &admin)
    };
    assert_eq!(
        start(None).await.unwrap().policy,
        AnalysisPolicy::Engagement
    );
    assert_eq!(
        start(Some("off")).await.unwrap().policy,
        AnalysisPolicy::Off
    );
    let err = start(Some("full")).await.unwrap_err();
    assert_eq!(ApiError::from(err).code, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn an_admin_publishes_a_new_notice_version_which_a_new_consent_must_name() {
    let f = Fixture::new().await;
    let s = f.start(false).await;
    let me = candidate(&s);
    let shipped = f.app.notice_for(&me, &s.id).await.unwrap();
    assert_eq!(shipped.version, 0);

    let admin = Principal::member("ada", Role::Admin, s.org.clone());
    let text = "We measure attention from your webcam frames; no emotions. Ask us to delete.";
    let published = f.app.publish_notice(&admin, s.policy, text).await.unwrap();
    assert_eq!((published.version, published.text.as_str()), (1, text));

    let err = f
        .app
        .give_consent(&me, &s.id, shipped.version, &shipped.sha256)
        .await
        .unwrap_err();
    let ApiError { code, .. } = ApiError::from(err);
    assert_eq!(
        code, "NOTICE_CHANGED",
        "the candidate must read the new text"
    );
    f.app
        .give_consent(&me, &s.id, published.version, &published.sha256)
        .await
        .unwrap();

    let stranger = Principal::member("otto", Role::Admin, OrgId("other".into()));
    assert_eq!(
        f.app
            .organisation_notice(&stranger, s.policy)
            .await
            .unwrap()
            .version,
        0,
        "another organisation keeps its own notice"
    );
    let err = f.app.notice_for(&stranger, &s.id).await.unwrap_err();
    assert_eq!(
        ApiError::from(err).code,
        "SESSION_NOT_FOUND",
        "as if absent"
    );
}
