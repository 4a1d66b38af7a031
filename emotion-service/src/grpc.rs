//! The `emotion.EmotionService` gRPC front end.

use std::pin::Pin;

use iv_contracts::emotion::emotion_service_server::EmotionService;
use iv_contracts::emotion::{
    self as pb, AnalysisPolicy as WirePolicy, BatchRequest, BlinkResponse, EmotionResponse,
    FaceResponse, FrameRequest, SessionRequest,
};
use iv_contracts::policy::AnalysisPolicy;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::analysis::{FaceBox, FrameAnalysis};
use crate::app::{BlinkStats, EmotionApp, FrameInput, FrameResult, SessionSummary};
use crate::error::EmotionError;
use crate::inference::Priority;
use iv_platform::auth::{Principal, grpc_caller, grpc_privileged};
use iv_platform::deadline::grpc_timeout;
use tokio::time::Instant;

/// Frames per AnalyzeBatch call: a batch is a catch-up of a few seconds, not a whole video.
pub const MAX_BATCH: usize = 64;

pub struct GrpcEmotion {
    pub app: EmotionApp,
}

/// A request as the use case takes it; an unknown policy number is refused here, at the edge.
/// `deadline` is the caller's, when it sent one.
fn input(
    r: FrameRequest,
    deadline: Option<Instant>,
    caller: &Principal,
) -> Result<FrameInput, EmotionError> {
    let priority = match pb::FramePriority::try_from(r.priority) {
        Ok(pb::FramePriority::Live) => Priority::Live,
        Ok(pb::FramePriority::Background) => Priority::Background,
        Err(_) => {
            return Err(EmotionError::InvalidInput(format!(
                "unknown priority {}; expected 0 (live) or 1 (background)",
                r.priority
            )));
        }
    };
    Ok(FrameInput {
        priority,
        deadline,
        policy: AnalysisPolicy::from_wire(r.policy)?,
        session_id: r.session_id,
        image: r.image_data,
        timestamp: r.timestamp,
        format: r.format,
        frame_number: r.frame_number,
        org: caller.acting_for(&r.org_id),
        consent: r.consent,
    })
}

/// A unary call's frame, with the deadline its caller sent. Frames are the services' to send
/// (and admins'), like `POST /api/v1/emotions/analyze`.
fn unary_input(request: Request<FrameRequest>) -> Result<FrameInput, Status> {
    let caller = grpc_privileged(&request)?;
    let deadline = grpc_timeout(request.metadata()).map(|t| Instant::now() + t);
    Ok(input(request.into_inner(), deadline, &caller)?)
}

#[tonic::async_trait]
impl EmotionService for GrpcEmotion {
    async fn analyze_frame(
        &self,
        request: Request<FrameRequest>,
    ) -> Result<Response<EmotionResponse>, Status> {
        let result = self.app.analyze(unary_input(request)?).await?;
        Ok(Response::new(emotion_response(&result)))
    }

    type AnalyzeBatchStream = Pin<Box<dyn Stream<Item = Result<EmotionResponse, Status>> + Send>>;

    async fn analyze_batch(
        &self,
        request: Request<BatchRequest>,
    ) -> Result<Response<Self::AnalyzeBatchStream>, Status> {
        let caller = grpc_privileged(&request)?;
        let batch = request.into_inner();
        if batch.frames.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_BATCH} frames per batch"
            )));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let app = self.app.clone();
        tokio::spawn(async move {
            // In order, one at a time: blink tracking needs the frames of a session in sequence.
            for mut frame in batch.frames {
                if frame.session_id.is_empty() {
                    frame.session_id.clone_from(&batch.session_id);
                }
                let item = match input(frame, None, &caller) {
                    Ok(frame) => app.analyze(frame).await.map(|r| emotion_response(&r)),
                    Err(e) => Err(e),
                }
                .map_err(Status::from);
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn detect_face(
        &self,
        request: Request<FrameRequest>,
    ) -> Result<Response<FaceResponse>, Status> {
        let r = self.app.analyze(unary_input(request)?).await?;
        let a = &r.analysis;
        Ok(Response::new(FaceResponse {
            detected: a.face.is_some(),
            r#box: a.face.map(bounding_box),
            landmarks: landmarks(a),
            face_count: a.face_count as i32,
            confidence: a.face.map(|f| f.confidence).unwrap_or_default(),
        }))
    }

    async fn detect_blink(
        &self,
        request: Request<FrameRequest>,
    ) -> Result<Response<BlinkResponse>, Status> {
        let r = self.app.analyze(unary_input(request)?).await?;
        Ok(Response::new(blink_response(&r.blinks)))
    }

    async fn get_session_summary(
        &self,
        request: Request<SessionRequest>,
    ) -> Result<Response<pb::SessionSummary>, Status> {
        let caller = grpc_caller(&request)?;
        let s = self
            .app
            .summary(&caller, &request.into_inner().session_id)
            .await?;
        Ok(Response::new(summary_to_wire(&s)))
    }

    async fn erase_session(
        &self,
        request: Request<pb::EraseSessionRequest>,
    ) -> Result<Response<pb::ErasureCounts>, Status> {
        let caller = grpc_privileged(&request)?;
        let r = request.into_inner();
        let erasure = self.app.erase(&caller, &r.session_id, &r.org_id).await?;
        Ok(Response::new(pb::ErasureCounts {
            session_id: r.session_id,
            deleted: erasure.deleted.into_iter().collect(),
            erased_at: erasure.erased_at,
        }))
    }
}

fn bounding_box(f: FaceBox) -> pb::BoundingBox {
    pb::BoundingBox {
        x: f.x.round() as i32,
        y: f.y.round() as i32,
        width: f.width.round() as i32,
        height: f.height.round() as i32,
    }
}

/// iBUG 68-point regions, so clients can tell an eye point from a mouth point.
fn landmark_type(index: usize) -> &'static str {
    match index {
        0..=16 => "jaw",
        17..=21 => "right_eyebrow",
        22..=26 => "left_eyebrow",
        27..=35 => "nose",
        36..=41 => "right_eye",
        42..=47 => "left_eye",
        _ => "mouth",
    }
}

fn landmarks(a: &FrameAnalysis) -> Vec<pb::Landmark> {
    a.landmarks
        .iter()
        .enumerate()
        .map(|(i, p)| pb::Landmark {
            x: p.x.round() as i32,
            y: p.y.round() as i32,
            r#type: landmark_type(i).into(),
            index: i as i32,
        })
        .collect()
}

fn blink_metrics(b: &BlinkStats) -> pb::BlinkMetrics {
    pb::BlinkMetrics {
        count: b.count as i32,
        rate: b.rate_per_minute,
        avg_duration: b.avg_duration_ms,
        perclos: b.perclos,
        long_closures: b.long_closures as i32,
    }
}

fn blink_response(b: &BlinkStats) -> BlinkResponse {
    BlinkResponse {
        blink_count: b.count as i32,
        blink_rate: b.rate_per_minute,
        blink_timestamps: b.timestamps.clone(),
        avg_duration: b.avg_duration_ms,
        perclos: b.perclos,
        long_closures: b.long_closures as i32,
    }
}

pub fn emotion_response(r: &FrameResult) -> EmotionResponse {
    let a = &r.analysis;
    EmotionResponse {
        session_id: r.session_id.clone(),
        timestamp: r.timestamp,
        emotion: a
            .expression
            .as_ref()
            .map(|e| e.label.clone())
            .unwrap_or_default(),
        confidence: a
            .expression
            .as_ref()
            .map(|e| e.confidence)
            .unwrap_or_default(),
        face_metrics: Some(pb::FaceMetrics {
            detected: a.face.is_some(),
            detection_confidence: a.face.map(|f| f.confidence).unwrap_or_default(),
            bounding_box: a.face.map(bounding_box),
            landmarks: landmarks(a),
            face_count: a.face_count as i32,
        }),
        blink_metrics: Some(blink_metrics(&r.blinks)),
        probabilities: a
            .expression
            .as_ref()
            .map(|e| e.probabilities.iter().cloned().collect())
            .unwrap_or_default(),
        attention: Some(pb::AttentionMetrics {
            yaw: a.pose.map(|p| p.yaw).unwrap_or_default(),
            pitch: a.pose.map(|p| p.pitch).unwrap_or_default(),
            roll: a.pose.map(|p| p.roll).unwrap_or_default(),
            eye_contact: a.eye_contact,
            left_eye_openness: a.eye_openness.map(|e| e.0).unwrap_or_default(),
            right_eye_openness: a.eye_openness.map(|e| e.1).unwrap_or_default(),
            score: a.attention,
        }),
        frame_number: r.frame_number,
        policy: WirePolicy::from(r.policy) as i32,
    }
}

pub fn summary_to_wire(s: &SessionSummary) -> pb::SessionSummary {
    pb::SessionSummary {
        session_id: s.session_id.clone(),
        frames_analyzed: s.frames_analyzed,
        frames_with_face: s.frames_with_face,
        emotion_counts: s
            .emotion_counts
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        dominant_emotion: s.dominant_emotion.clone(),
        mean_attention: s.mean_attention,
        blink_metrics: Some(blink_metrics(&s.blinks)),
        timeline: s
            .timeline
            .iter()
            .map(|t| pb::TimelinePoint {
                timestamp: t.timestamp,
                emotion: t.emotion.clone(),
                confidence: t.confidence,
                face_present: t.face_present,
                attention: t.attention,
                blink_count: t.blink_count as i32,
                eye_contact: t.eye_contact,
                face_count: t.face_count as i32,
            })
            .collect(),
        multi_face_frames: s.multi_face_frames,
        first_timestamp: s.first_timestamp,
        last_timestamp: s.last_timestamp,
        policy: WirePolicy::from(s.policy) as i32,
        face_absent_spells: s.face_absent_spells.iter().map(spell).collect(),
        look_away_spells: s.look_away_spells.iter().map(spell).collect(),
    }
}

fn spell(s: &crate::app::Spell) -> pb::Spell {
    pb::Spell {
        started_at: s.started_at,
        duration_ms: s.duration_ms,
    }
}
