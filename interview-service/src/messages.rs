//! The WebSocket protocol: JSON `{type, data}` messages in both directions.
//!
//! In: `frame`, `answer`, `ping` (and `complete`, an extension). Out: `emotion_update`,
//! `question`, `status`, `error`, `pong`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::InterviewError;
use crate::questions::Question;
use crate::sampling::Sampling;
use crate::store::{Session, SessionState};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct FrameData {
    /// Ignored when present: the socket's session is authoritative.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Capture time, milliseconds since the Unix epoch; arrival time when absent.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Base64 of a JPEG or PNG (a `data:` URL prefix is accepted).
    pub image: String,
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct AnswerData {
    pub question_id: String,
    #[serde(default)]
    pub transcript: String,
    /// Seconds spoken.
    #[serde(default)]
    pub duration: Option<f32>,
}

/// A parsed client message.
#[derive(Debug, Clone)]
pub enum ClientMessage {
    Frame(FrameData),
    Answer(AnswerData),
    Ping,
    Complete,
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<Self, InterviewError> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            data: Value,
        }
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
            InterviewError::InvalidMessage(format!("not a {{type, data}} JSON message: {e}"))
        })?;
        let data = |what: &str| {
            let what = what.to_string();
            move |e: serde_json::Error| {
                InterviewError::InvalidMessage(format!("invalid {what} data: {e}"))
            }
        };
        match envelope.kind.as_str() {
            "frame" => serde_json::from_value(envelope.data)
                .map(Self::Frame)
                .map_err(data("frame")),
            "answer" => serde_json::from_value(envelope.data)
                .map(Self::Answer)
                .map_err(data("answer")),
            "ping" => Ok(Self::Ping),
            "complete" => Ok(Self::Complete),
            other => Err(InterviewError::InvalidMessage(format!(
                "unknown message type {other:?}; expected frame, answer, ping or complete"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EmotionUpdate {
    /// Empty when the interview's policy forbids emotion inference or no face was seen.
    pub emotion: String,
    pub confidence: f32,
    pub timestamp: i64,
    pub frame_number: i64,
    pub face_detected: bool,
    pub face_count: i32,
    pub attention: f32,
    pub eye_contact: bool,
    pub blink_count: i32,
    pub blink_rate: f32,
    pub probabilities: BTreeMap<String, f32>,
    /// Where the main face is in the frame, in the frame's pixels: the candidate page's camera
    /// check tells from it whether the face is centred and near enough.
    pub face_box: Option<FaceBox>,
}

/// A face's bounding box in the frame's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FaceBox {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QuestionMessage {
    pub id: String,
    pub text: String,
    pub category: String,
    /// 1-based position in the interview.
    pub index: usize,
    pub total: usize,
}

impl QuestionMessage {
    pub fn new(q: &Question, index: usize, total: usize) -> Self {
        Self {
            id: q.id.clone(),
            text: q.text.clone(),
            category: q.category.clone(),
            index: index + 1,
            total,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StatusMessage {
    pub state: SessionState,
    pub progress: u32,
    /// 1-based number of the question being asked (total + 1 once all are answered).
    pub current_question: usize,
    pub total_questions: usize,
    pub answered: usize,
    pub live_feedback: LiveFeedback,
    /// While live feedback is sampled: how many frames are analysed, and a rate that would do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    pub report_ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overall_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Whether the candidate gets live analysis of their frames right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveFeedback {
    Active,
    /// The emotion service is unavailable: frames are queued and analysed later by the worker.
    Paused,
    /// The server is busy: only some frames are analysed, the newest first (see
    /// [`crate::sampling`]); a lower frame rate is suggested.
    Sampled,
    /// The candidate withdrew consent: nothing is analysed any more.
    Stopped,
}

impl StatusMessage {
    /// The same status, with the socket's sampling in force (if any).
    pub fn sampled(mut self, sampling: Option<Sampling>) -> Self {
        if sampling.is_some() && self.live_feedback == LiveFeedback::Active {
            self.live_feedback = LiveFeedback::Sampled;
            self.sampling = sampling;
        }
        self
    }

    pub fn of(session: &Session, live_feedback: LiveFeedback, message: Option<String>) -> Self {
        Self {
            state: session.state,
            progress: session.progress(),
            current_question: session.current_index + 1,
            total_questions: session.questions.len(),
            answered: session.current_index,
            live_feedback,
            sampling: None,
            report_ready: session.report_ready,
            overall_score: session.overall_score,
            message,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErrorMessage {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerMessage {
    EmotionUpdate(EmotionUpdate),
    Question(QuestionMessage),
    Status(StatusMessage),
    Error(ErrorMessage),
    Pong { timestamp: i64 },
}

impl ServerMessage {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error(ErrorMessage {
            code: code.to_string(),
            message: message.into(),
        })
    }

    pub fn from_error(err: InterviewError) -> Self {
        let api = iv_platform::errors::ApiError::from(err);
        Self::error(api.code, api.message)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_of_the_spec_parse() {
        let f = ClientMessage::parse(
            r#"{"type":"frame","data":{"session_id":"s","timestamp":1,"image":"AAAA"}}"#,
        );
        assert!(matches!(
            f,
            Ok(ClientMessage::Frame(FrameData {
                timestamp: Some(1),
                ..
            }))
        ));
        let a = ClientMessage::parse(
            r#"{"type":"answer","data":{"question_id":"q","transcript":"t","duration":45.5}}"#,
        );
        assert!(matches!(
            a,
            Ok(ClientMessage::Answer(AnswerData {
                duration: Some(_),
                ..
            }))
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"ping","data":{}}"#),
            Ok(ClientMessage::Ping)
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        ));
    }

    #[test]
    fn malformed_and_unknown_messages_say_what_is_wrong() {
        for (text, needle) in [
            ("not json", "JSON"),
            (r#"{"type":"dance","data":{}}"#, "unknown message type"),
            (
                r#"{"type":"frame","data":{"timestamp":1}}"#,
                "invalid frame data",
            ),
            (r#"{"type":"answer","data":{}}"#, "invalid answer data"),
        ] {
            let err = ClientMessage::parse(text).unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
            assert_eq!(
                iv_platform::errors::ApiError::from(err).code,
                "INVALID_MESSAGE"
            );
        }
    }

    #[test]
    fn server_messages_are_type_and_data() {
        let m = ServerMessage::error("SESSION_NOT_FOUND", "gone");
        assert_eq!(
            m.to_json(),
            r#"{"type":"error","data":{"code":"SESSION_NOT_FOUND","message":"gone"}}"#
        );
        assert_eq!(
            ServerMessage::Pong { timestamp: 3 }.to_json(),
            r#"{"type":"pong","data":{"timestamp":3}}"#
        );
    }
}
