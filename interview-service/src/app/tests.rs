//! The use cases with fake downstreams (no sockets): each test sets the emotion or scoring service
//! to answer, fail or reject, and checks what the candidate gets and what is stored.

use std::sync::atomic::Ordering;

use iv_contracts::events::ErasureReported;
use iv_platform::errors::ApiError;

use super::*;
use crate::testing::{Answer, Fixture};

#[tokio::test]
async fn feedback_pauses_once_while_the_emotion_service_is_down_and_resumes_once_after() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    assert_eq!(f.app.live_feedback(&s.id), LiveFeedback::Active);

    f.emotion(Answer::Down);
    let first = f.frame(&s.id).await.unwrap();
    assert!(
        matches!(
            first,
            FrameOutcome::Deferred {
                frame_number: 1,
                paused_now: true,
                ..
            }
        ),
        "{first:?}"
    );
    let second = f.frame(&s.id).await.unwrap();
    assert!(
        matches!(
            second,
            FrameOutcome::Deferred {
                frame_number: 2,
                paused_now: false,
                ..
            }
        ),
        "told once per spell: {second:?}"
    );
    let session = f.app.get(&s.id).await.unwrap();
    assert_eq!(
        f.app.status(&session, None).live_feedback,
        LiveFeedback::Paused
    );

    f.emotion(Answer::Works);
    let third = f.frame(&s.id).await.unwrap();
    let FrameOutcome::Analyzed { update, resumed } = third else {
        panic!("analysed once the service is back: {third:?}")
    };
    assert!(resumed);
    assert_eq!(
        (update.frame_number, update.emotion.as_str()),
        (3, "neutral")
    );
    assert!(matches!(
        f.frame(&s.id).await.unwrap(),
        FrameOutcome::Analyzed { resumed: false, .. }
    ));
    assert_eq!(f.app.live_feedback(&s.id), LiveFeedback::Active);

    let session = f.app.get(&s.id).await.unwrap();
    assert_eq!(
        (
            session.frames_received,
            session.frames_analyzed,
            session.frames_deferred
        ),
        (4, 2, 2),
        "deferred frames are counted, not lost"
    );
}

#[tokio::test]
async fn a_frame_the_emotion_service_rejects_is_an_invalid_frame_not_a_pause() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    f.emotion(Answer::Rejects("no decodable image"));
    let err = f.frame(&s.id).await.unwrap_err();
    assert!(matches!(&err, InterviewError::FrameRejected(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the emotion service rejected the frame: no decodable image"
    );
    assert_eq!(ApiError::from(err).code, "INVALID_FRAME");
    assert_eq!(f.app.live_feedback(&s.id), LiveFeedback::Active);
}

#[tokio::test]
async fn an_answer_is_kept_without_feedback_while_scoring_is_down() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    f.scoring(Answer::Down);
    let outcome = f.answer(&s.id, "intro-1").await.unwrap();
    assert_eq!(outcome.feedback, None);
    assert_eq!(outcome.session.current_index, 1, "the interview moves on");
    let (_, answers) = f.app.session(&s.id).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].analysis, None, "scored at completion instead");

    f.scoring(Answer::Works);
    let outcome = f.answer(&s.id, "tech-1").await.unwrap();
    let feedback = outcome.feedback.expect("scoring is back");
    assert_eq!(
        (feedback.relevance, feedback.clarity, feedback.depth),
        (71.0, 62.0, 53.0)
    );
    assert_eq!(feedback.feedback, "heard 10 words");
    let (_, answers) = f.app.session(&s.id).await.unwrap();
    assert_eq!(
        answers[1].analysis,
        Some(feedback),
        "stored with the answer"
    );
}

#[tokio::test]
async fn without_consent_frames_are_refused_and_never_reach_the_emotion_service() {
    let f = Fixture::new().await;
    let s = f.start(false).await;
    let err = f.frame(&s.id).await.unwrap_err();
    assert!(matches!(err, InterviewError::ConsentRequired), "{err:?}");
    assert_eq!(ApiError::from(err).code, "CONSENT_REQUIRED");
    assert_eq!(f.emotion.calls.load(Ordering::SeqCst), 0);
    assert_eq!(f.app.get(&s.id).await.unwrap().frames_received, 0);
}

#[tokio::test]
async fn an_answer_to_another_question_says_which_is_current() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    let ahead = f.answer(&s.id, "tech-1").await.unwrap_err();
    assert!(
        matches!(&ahead, InterviewError::NotCurrentQuestion { current, given } if current == "intro-1" && given == "tech-1"),
        "{ahead:?}"
    );
    assert!(matches!(
        f.answer(&s.id, "no-such-question").await.unwrap_err(),
        InterviewError::UnknownQuestion(q) if q == "no-such-question"
    ));
    f.answer(&s.id, "intro-1").await.unwrap();
    assert!(matches!(
        f.answer(&s.id, "intro-1").await.unwrap_err(),
        InterviewError::AlreadyAnswered(q) if q == "intro-1"
    ));
    let (_, answers) = f.app.session(&s.id).await.unwrap();
    assert_eq!(answers.len(), 1, "refused answers are not stored");
}

#[tokio::test]
async fn a_completed_session_refuses_frames_answers_and_a_second_completion() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    f.answer(&s.id, "intro-1").await.unwrap();
    let done = f.app.complete(&s.id).await.unwrap();
    assert_eq!(done.state, SessionState::Completed);
    assert!(matches!(
        f.frame(&s.id).await.unwrap_err(),
        InterviewError::SessionCompleted(_)
    ));
    assert!(matches!(
        f.answer(&s.id, "tech-1").await.unwrap_err(),
        InterviewError::SessionCompleted(_)
    ));
    let again = f.app.complete(&s.id).await.unwrap_err();
    assert_eq!(ApiError::from(again).code, "SESSION_COMPLETED");
    assert_eq!(f.emotion.calls.load(Ordering::SeqCst), 0);
    let (_, answers) = f.app.session(&s.id).await.unwrap();
    assert_eq!(
        answers.len(),
        1,
        "what was answered before completion is kept"
    );
}

#[tokio::test]
async fn a_busy_emotion_service_sheds_the_frame_without_pausing_or_queueing_it() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    f.emotion(Answer::Busy);
    for n in 1..=3 {
        let outcome = f.frame(&s.id).await.unwrap();
        assert!(
            matches!(outcome, FrameOutcome::Shed { frame_number, .. } if frame_number == n),
            "{outcome:?}"
        );
    }
    assert_eq!(
        f.app.live_feedback(&s.id),
        LiveFeedback::Active,
        "busy is not down: feedback is not paused"
    );
    let session = f.app.get(&s.id).await.unwrap();
    assert_eq!(
        (
            session.frames_received,
            session.frames_analyzed,
            session.frames_deferred
        ),
        (3, 0, 0),
        "nothing queued for the worker: that would add work to a busy system"
    );
    // Over REST a shed frame is 429 with a stable code, so a client slows down.
    let shed = f.frame(&s.id).await.unwrap();
    let FrameOutcome::Shed { cause, .. } = shed else {
        panic!("{shed:?}")
    };
    let api = ApiError::from(InterviewError::Downstream(cause));
    assert_eq!(api.class.http_status().as_u16(), 429);
    assert_eq!(api.code, "ANALYSIS_BUSY");
}

/// Erasure here: the session, its answers and its queued frames (outbox rows with pixels) go in
/// one transaction with the receipt, and what goes out is the `InterviewErased` announcement
/// alone; a repeat is the same receipt, and a frame arriving after is neither counted nor queued.
#[tokio::test]
async fn erasing_deletes_the_session_answers_and_queued_frames_and_announces_it_once_stored() {
    let f = Fixture::new().await;
    let s = f.start(true).await;
    f.answer(&s.id, "intro-1").await.unwrap();
    f.emotion(Answer::Down);
    f.frame(&s.id).await.unwrap();
    let pool = f.app.store.pool().clone();
    let outbox = |key: &'static str| {
        let pool = pool.clone();
        let id = s.id.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM outbox WHERE session_id = $1 AND routing_key = $2",
            )
            .bind(id)
            .bind(key)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    use iv_contracts::events::{Event, InterviewErased};
    assert_eq!(
        outbox(FrameCaptured::ROUTING_KEY).await,
        1,
        "a deferred frame waits"
    );

    let caller = iv_platform::testing::default_caller();
    let (receipt, first) = f.app.erase(&caller, &s.id).await.unwrap();
    assert!(first);
    assert_eq!(receipt.requested_by, caller.subject);
    assert_eq!(
        receipt.services["interview-service"].deleted,
        [
            ("answers", 1),
            ("consents", 1),
            ("decisions", 0),
            ("interviews", 1),
            ("outbox", 1)
        ]
        .map(|(t, n)| (t.to_string(), n))
        .into()
    );
    assert_eq!(receipt.pending, ["emotion-service", "scoring-service"]);
    assert_eq!(outbox(FrameCaptured::ROUTING_KEY).await, 0);
    assert_eq!(outbox(InterviewErased::ROUTING_KEY).await, 1);
    assert!(matches!(
        f.app.get(&s.id).await,
        Err(InterviewError::SessionNotFound(_))
    ));
    assert!(f.frame(&s.id).await.is_err());
    assert_eq!(
        outbox(FrameCaptured::ROUTING_KEY).await,
        0,
        "nothing queued after"
    );

    let (again, first) = f.app.erase(&caller, &s.id).await.unwrap();
    assert!(!first);
    assert_eq!(again, receipt);
    for service in ["emotion-service", "scoring-service"] {
        f.app
            .erasure_reported(&ErasureReported {
                session_id: s.id.clone(),
                service: service.into(),
                deleted: [("rows".to_string(), 2)].into(),
                erased_at: receipt.requested_at + 5,
            })
            .await
            .unwrap();
    }
    let done = f.app.erasure(&caller, &s.id).await.unwrap();
    assert!(done.pending.is_empty());
    // Complete when the last of the three reported.
    assert_eq!(
        done.completed_at,
        done.services.values().map(|e| e.erased_at).max()
    );
    let stranger = iv_platform::auth::Principal::member(
        "otto",
        iv_platform::auth::Role::Admin,
        OrgId("other".into()),
    );
    assert!(matches!(
        f.app.erasure(&stranger, &s.id).await,
        Err(InterviewError::SessionNotFound(_))
    ));
}

/// The sweeper, on a moved clock: a completed interview of an organisation on the default 30
/// days is erased a month after completion; one never completed counts from its invitation's
/// expiry, and another organisation that keeps 60 days keeps its own; nothing else goes.
#[tokio::test]
async fn the_sweep_erases_exactly_the_interviews_whose_retention_ran_out() {
    use iv_platform::auth::Role;
    let f = Fixture::new().await;
    let day = 24 * 3600 * 1000;
    let start_in = |org: &'static str| {
        let app = f.app.clone();
        async move {
            app.start(
                StartRequest {
                    user_id: "c".into(),
                    consent: true,
                    ..Default::default()
                },
                OrgId(org.into()),
                &iv_platform::auth::Principal::member("admin", Role::Admin, OrgId(org.into())),
            )
            .await
            .unwrap()
        }
    };
    let done = start_in("default").await;
    f.app.complete(&done.id).await.unwrap();
    let open = start_in("default").await;
    let keeps_longer = start_in("other").await;
    f.app.complete(&keeps_longer.id).await.unwrap();
    let other_admin = Principal::member("otto", Role::Admin, OrgId("other".into()));
    assert_eq!(f.retention.set(&other_admin, 60).await.unwrap().days, 60);
    let sweeper = Principal::service("worker-service");

    let now = now_millis();
    let swept = |at: i64| f.app.sweep(&sweeper, &f.retention, at);
    assert!(swept(now + 29 * day).await.unwrap().is_empty());
    assert_eq!(
        swept(now + 30 * day + 60_000).await.unwrap(),
        std::slice::from_ref(&done.id)
    );
    let receipt = f.app.erasure(&sweeper, &done.id).await.unwrap();
    assert_eq!(receipt.reason, crate::erasure::Reason::Retention);
    assert_eq!(receipt.requested_by, "worker-service");
    assert!(f.app.get(&open.id).await.is_ok(), "counted from its expiry");
    assert!(f.app.get(&keeps_longer.id).await.is_ok());
    assert!(
        swept(now + 30 * day + 60_000).await.unwrap().is_empty(),
        "once"
    );
    // The open one goes 30 days after its invitation ran out; the other organisation's at 60.
    let expiry = open.expires_at.unwrap();
    assert_eq!(
        swept(expiry + 30 * day).await.unwrap(),
        std::slice::from_ref(&open.id)
    );
    assert_eq!(
        swept(now + 60 * day + 60_000).await.unwrap(),
        std::slice::from_ref(&keeps_longer.id)
    );

    let admin = iv_platform::testing::default_caller();
    assert!(matches!(
        f.app.sweep(&admin, &f.retention, now).await,
        Err(InterviewError::Forbidden(_))
    ));
    assert!(matches!(
        f.retention.set(&admin, 0).await,
        Err(InterviewError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn the_frame_gate_reads_what_the_whole_session_says() {
    let f = Fixture::new().await;
    for consent in [false, true] {
        let s = f.start(consent).await;
        if consent {
            f.frame(&s.id).await.unwrap(); // created -> in_progress
        }
        let whole = f.app.get(&s.id).await.unwrap();
        let gate = f.app.store.frame_gate(&s.id).await.unwrap();
        assert_eq!(
            (gate.state, gate.policy, gate.consent, gate.org),
            (whole.state, whole.policy, whole.consent, whole.org)
        );
    }
    let err = f.app.store.frame_gate("no-such").await.unwrap_err();
    assert!(matches!(err, InterviewError::SessionNotFound(_)), "{err:?}");
}
