//! The use cases with fake downstreams (no sockets): each test sets the emotion or scoring service
//! to answer, fail or reject, and checks what the candidate gets and what is stored.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::future::BoxFuture;
use iv_contracts::emotion::{FaceMetrics, FrameRequest};
use iv_contracts::scoring::{AnswerAnalysis, AnswerRequest};
use iv_platform::bus::EventBus;
use iv_platform::db;
use iv_platform::errors::ApiError;
use iv_platform::outbox;
use iv_platform::resilience::CallError;
use tonic::Status;

use super::*;
use crate::store;

/// What a fake downstream does with the next call.
#[derive(Clone)]
enum Answer {
    Works,
    /// Down (breaker open): the caller should fall back.
    Down,
    /// Up, but refuses this request.
    Rejects(&'static str),
}

fn failure(answer: &Answer, downstream: &'static str) -> Option<CallError> {
    match answer {
        Answer::Works => None,
        Answer::Down => Some(CallError::Open(downstream)),
        Answer::Rejects(why) => Some(CallError::Failed {
            downstream,
            status: Status::invalid_argument(*why),
        }),
    }
}

struct FakeEmotion {
    answer: Mutex<Answer>,
    calls: AtomicU32,
}

impl FrameAnalysis for FakeEmotion {
    fn analyze_frame(
        &self,
        request: FrameRequest,
    ) -> BoxFuture<'_, Result<EmotionResponse, CallError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move {
            if let Some(err) = failure(&answer, "emotion") {
                return Err(err);
            }
            Ok(EmotionResponse {
                session_id: request.session_id,
                timestamp: request.timestamp,
                emotion: "neutral".into(),
                confidence: 0.8,
                face_metrics: Some(FaceMetrics {
                    detected: true,
                    face_count: 1,
                    ..Default::default()
                }),
                frame_number: request.frame_number,
                ..Default::default()
            })
        })
    }
}

struct FakeScoring {
    answer: Mutex<Answer>,
}

impl AnswerScoring for FakeScoring {
    fn analyze_answer(
        &self,
        request: AnswerRequest,
    ) -> BoxFuture<'_, Result<AnswerAnalysis, CallError>> {
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move {
            if let Some(err) = failure(&answer, "scoring") {
                return Err(err);
            }
            Ok(AnswerAnalysis {
                relevance_score: 71.0,
                clarity_score: 62.0,
                depth_score: 53.0,
                feedback: format!("heard {} words", request.answer.split_whitespace().count()),
                sufficient_data: true,
                ..Default::default()
            })
        })
    }
}

struct Fixture {
    app: InterviewApp,
    emotion: Arc<FakeEmotion>,
    scoring: Arc<FakeScoring>,
}

impl Fixture {
    async fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("iv-app-{}", uuid::Uuid::new_v4().simple()));
        let pool = db::connect(&db::sqlite_url(dir.to_str().unwrap(), "t"))
            .await
            .unwrap();
        db::apply_schema(&pool, store::SCHEMA).await.unwrap();
        db::apply_schema(&pool, outbox::SCHEMA).await.unwrap();
        let bus = EventBus::connect(None, "").await.unwrap();
        let emotion = Arc::new(FakeEmotion {
            answer: Mutex::new(Answer::Works),
            calls: AtomicU32::new(0),
        });
        let scoring = Arc::new(FakeScoring {
            answer: Mutex::new(Answer::Works),
        });
        let app = InterviewApp::new(
            InterviewStore::new(pool.clone()),
            emotion.clone(),
            scoring.clone(),
            Relay::new(pool, bus),
            2 << 20,
        );
        Self {
            app,
            emotion,
            scoring,
        }
    }

    fn emotion(&self, answer: Answer) {
        *self.emotion.answer.lock().unwrap() = answer;
    }

    fn scoring(&self, answer: Answer) {
        *self.scoring.answer.lock().unwrap() = answer;
    }

    async fn start(&self, consent: bool) -> Session {
        self.app
            .start(StartRequest {
                user_id: "candidate-1".into(),
                consent,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn frame(&self, id: &str) -> Result<FrameOutcome, InterviewError> {
        self.app.submit_frame(id, png()).await
    }

    async fn answer(&self, id: &str, question_id: &str) -> Result<AnswerOutcome, InterviewError> {
        let answer = AnswerData {
            question_id: question_id.into(),
            transcript: "I would keep a table from short code to address.".into(),
            duration: Some(12.0),
        };
        self.app.submit_answer(id, answer).await
    }
}

fn png() -> FrameUpload {
    let img = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 150]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    FrameUpload {
        bytes: out.into_inner(),
        timestamp: None,
        format: String::new(),
    }
}

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
