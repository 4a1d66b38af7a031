//! Fakes of the emotion and scoring services and a fresh store, for the crate's unit tests.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use iv_contracts::emotion::{
    ConsentProof, EmotionResponse, FaceMetrics, FrameRequest, SessionSummary,
};
use iv_contracts::scoring::{AnswerAnalysis, AnswerRequest, ReportRequest, ReportResponse};
use iv_platform::bus::EventBus;
use iv_platform::outbox::Relay;
use iv_platform::resilience::CallError;
use tonic::Status;

use crate::app::{AnswerOutcome, FrameOutcome, FrameUpload, InterviewApp, StartRequest};
use crate::downstream::{AnswerScoring, FrameAnalysis};
use crate::error::InterviewError;
use crate::messages::AnswerData;
use crate::store::{InterviewStore, Session};

/// What a fake downstream does with the next call.
#[derive(Clone)]
pub enum Answer {
    Works,
    /// Down (breaker open): the caller should fall back.
    Down,
    /// Up, but refuses this request.
    Rejects(&'static str),
    /// Up, but busy: sheds the request.
    Busy,
}

fn failure(answer: &Answer, downstream: &'static str) -> Option<CallError> {
    match answer {
        Answer::Works => None,
        Answer::Down => Some(CallError::Open(downstream)),
        Answer::Rejects(why) => Some(CallError::Failed {
            downstream,
            status: Status::invalid_argument(*why),
        }),
        Answer::Busy => Some(CallError::Failed {
            downstream,
            status: Status::resource_exhausted("all analysis slots are busy"),
        }),
    }
}

pub struct FakeEmotion {
    answer: Mutex<Answer>,
    pub calls: AtomicU32,
    /// When set, each call waits for a permit before answering (a slow analysis).
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    /// The capture time of every frame asked about, in order.
    pub timestamps: Mutex<Vec<i64>>,
    /// The consent proof each frame carried, in order.
    pub proofs: Mutex<Vec<Option<ConsentProof>>>,
}

impl FrameAnalysis for FakeEmotion {
    fn analyze_frame(
        &self,
        request: FrameRequest,
    ) -> BoxFuture<'_, Result<EmotionResponse, CallError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.timestamps.lock().unwrap().push(request.timestamp);
        self.proofs.lock().unwrap().push(request.consent.clone());
        let answer = self.answer.lock().unwrap().clone();
        let gate = self.gate.lock().unwrap().clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.acquire().await.unwrap().forget();
            }
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

    fn session_summary<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<SessionSummary, CallError>> {
        let answer = self.answer.lock().unwrap().clone();
        let analysed = self.calls.load(Ordering::SeqCst);
        Box::pin(async move {
            if let Some(err) = failure(&answer, "emotion") {
                return Err(err);
            }
            Ok(SessionSummary {
                session_id: session_id.to_string(),
                frames_analyzed: i64::from(analysed),
                ..Default::default()
            })
        })
    }
}

pub struct FakeScoring {
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

    /// No interview is scored here: the report is not found, or the service is down.
    fn report(&self, request: ReportRequest) -> BoxFuture<'_, Result<ReportResponse, CallError>> {
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move {
            Err(failure(&answer, "scoring").unwrap_or(CallError::Failed {
                downstream: "scoring",
                status: Status::not_found(format!("no score for {}", request.session_id)),
            }))
        })
    }
}

pub struct Fixture {
    pub app: InterviewApp,
    pub members: crate::members::Members,
    pub retention: crate::retention::Retention,
    pub emotion: Arc<FakeEmotion>,
    pub scoring: Arc<FakeScoring>,
}

impl Fixture {
    pub async fn new() -> Self {
        let pool = iv_platform::testing::fresh_sqlite(crate::SCHEMAS).await;
        for added in crate::ADDED_COLUMNS {
            iv_platform::db::add_missing_columns(&pool, added)
                .await
                .unwrap();
        }
        let members = crate::members::Members::new(pool.clone());
        let retention =
            crate::retention::Retention::new(pool.clone(), crate::retention::DEFAULT_DAYS);
        let bus = EventBus::connect(None, "").await.unwrap();
        let emotion = Arc::new(FakeEmotion {
            answer: Mutex::new(Answer::Works),
            calls: AtomicU32::new(0),
            gate: Mutex::default(),
            timestamps: Mutex::default(),
            proofs: Mutex::default(),
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
            members,
            retention,
            emotion,
            scoring,
        }
    }

    pub fn emotion(&self, answer: Answer) {
        *self.emotion.answer.lock().unwrap() = answer;
    }

    /// From now on each frame analysis waits for a permit of the returned gate.
    pub fn hold_analysis(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *self.emotion.gate.lock().unwrap() = Some(gate.clone());
        gate
    }

    pub fn scoring(&self, answer: Answer) {
        *self.scoring.answer.lock().unwrap() = answer;
    }

    pub async fn start(&self, consent: bool) -> Session {
        self.app
            .start(
                StartRequest {
                    user_id: "candidate-1".into(),
                    consent,
                    ..Default::default()
                },
                iv_platform::testing::default_caller()
                    .org
                    .expect("a member's organisation"),
                &iv_platform::testing::default_caller(),
            )
            .await
            .unwrap()
    }

    pub async fn frame(&self, id: &str) -> Result<FrameOutcome, InterviewError> {
        self.app.submit_frame(id, png()).await
    }

    pub async fn answer(
        &self,
        id: &str,
        question_id: &str,
    ) -> Result<AnswerOutcome, InterviewError> {
        let answer = AnswerData {
            question_id: question_id.into(),
            transcript: "I would keep a table from short code to address.".into(),
            duration: Some(12.0),
        };
        self.app.submit_answer(id, answer).await
    }
}

pub fn png() -> FrameUpload {
    let img = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 150]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    FrameUpload {
        bytes: out.into_inner(),
        timestamp: None,
        format: String::new(),
    }
}
