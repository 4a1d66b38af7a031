//! The candidate's WebSocket session, generic over a sink and stream of text so it can be driven
//! by channels in tests and by a real socket in production.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use iv_platform::CancellationToken;
use tokio::sync::broadcast::error::RecvError;

use crate::app::{FrameOutcome, FrameUpload, InterviewApp};
use crate::error::InterviewError;
use crate::messages::{ClientMessage, FrameData, QuestionMessage, ServerMessage};
use crate::store::Session;

/// What arrives from the client.
#[derive(Debug, Clone)]
pub enum Incoming {
    Text(String),
    /// A raw JPEG or PNG frame, the compact alternative to base64 in JSON.
    Binary(Vec<u8>),
    Close,
}

/// The face has been out of view this long before the candidate is told.
const FACE_ABSENT_WARN_MS: i64 = 2_000;

struct Connection<S> {
    app: InterviewApp,
    session_id: String,
    out: S,
    /// When the face was last seen, and whether the candidate was told it is gone.
    face_last_seen: Option<i64>,
    face_warned: bool,
}

/// Runs one socket until the client closes it or `cancel` fires.
pub async fn run<S, R>(
    app: InterviewApp,
    session_id: String,
    out: S,
    mut incoming: R,
    cancel: CancellationToken,
) where
    S: Sink<String> + Unpin,
    R: Stream<Item = Incoming> + Unpin,
{
    let mut events = app.hub().subscribe(&session_id);
    let mut conn = Connection {
        app,
        session_id,
        out,
        face_last_seen: None,
        face_warned: false,
    };
    let session = match conn.app.join(&conn.session_id).await {
        Ok(s) => s,
        Err(e) => {
            let _ = conn.send(ServerMessage::from_error(e)).await;
            return;
        }
    };
    metrics::gauge!("websocket_sessions").increment(1.0);
    tracing::info!(session_id = %conn.session_id, "candidate connected");
    if conn.announce(&session, None).await.is_ok() {
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = conn.status_now(Some("The server is restarting; reconnect to continue.".into())).await;
                    break;
                }
                event = events.recv() => match event {
                    Ok(message) => conn.send(message).await,
                    Err(RecvError::Lagged(_)) => Ok(()),
                    Err(RecvError::Closed) => Ok(()),
                },
                message = incoming.next() => match message {
                    None | Some(Incoming::Close) => break,
                    Some(Incoming::Text(text)) => conn.handle_text(&text).await,
                    Some(Incoming::Binary(bytes)) => {
                        conn.handle_frame(FrameUpload { bytes, timestamp: None, format: String::new() }).await
                    }
                },
            };
            if result.is_err() {
                break; // the client is gone
            }
        }
    }
    metrics::gauge!("websocket_sessions").decrement(1.0);
    tracing::info!(session_id = %conn.session_id, "candidate disconnected");
}

/// The socket could not be written to.
struct Gone;

impl<S: Sink<String> + Unpin> Connection<S> {
    async fn send(&mut self, message: ServerMessage) -> Result<(), Gone> {
        self.out.send(message.to_json()).await.map_err(|_| Gone)
    }

    /// Status, then the question being asked (or a note that all are answered).
    async fn announce(&mut self, session: &Session, message: Option<String>) -> Result<(), Gone> {
        let all_answered = session.current_question().is_none();
        let message = message.or_else(|| {
            all_answered.then(|| "All questions answered; complete the interview.".into())
        });
        self.send(ServerMessage::Status(self.app.status(session, message)))
            .await?;
        if let Some(q) = session.current_question() {
            self.send(ServerMessage::Question(QuestionMessage::new(
                q,
                session.current_index,
                session.questions.len(),
            )))
            .await?;
        }
        Ok(())
    }

    async fn status_now(&mut self, message: Option<String>) -> Result<(), Gone> {
        match self.app.get(&self.session_id).await {
            Ok(s) => {
                let status = self.app.status(&s, message);
                self.send(ServerMessage::Status(status)).await
            }
            Err(e) => self.send(ServerMessage::from_error(e)).await,
        }
    }

    async fn handle_text(&mut self, text: &str) -> Result<(), Gone> {
        match ClientMessage::parse(text) {
            Err(e) => self.send(ServerMessage::from_error(e)).await,
            Ok(ClientMessage::Ping) => {
                self.send(ServerMessage::Pong {
                    timestamp: iv_contracts::now_millis(),
                })
                .await
            }
            Ok(ClientMessage::Frame(data)) => match decode_frame(data) {
                Ok(upload) => self.handle_frame(upload).await,
                Err(e) => self.send(ServerMessage::from_error(e)).await,
            },
            Ok(ClientMessage::Answer(answer)) => {
                match self.app.submit_answer(&self.session_id, answer).await {
                    Ok(outcome) => self.announce(&outcome.session, None).await,
                    Err(e) => self.send(ServerMessage::from_error(e)).await,
                }
            }
            Ok(ClientMessage::Complete) => match self.app.complete(&self.session_id).await {
                Ok(_) => Ok(()), // the completion status arrives through the hub
                Err(e) => self.send(ServerMessage::from_error(e)).await,
            },
        }
    }

    async fn handle_frame(&mut self, upload: FrameUpload) -> Result<(), Gone> {
        match self.app.submit_frame(&self.session_id, upload).await {
            Ok(FrameOutcome::Analyzed { update, resumed }) => {
                if resumed {
                    self.status_now(Some("Live feedback resumed.".into()))
                        .await?;
                }
                let now = update.timestamp;
                let face = update.face_detected;
                self.send(ServerMessage::EmotionUpdate(update)).await?;
                self.track_face(face, now).await
            }
            Ok(FrameOutcome::Deferred {
                reason, paused_now, ..
            }) => {
                if !paused_now {
                    return Ok(()); // told once; not an error per frame
                }
                tracing::warn!(session_id = %self.session_id, %reason, "live feedback paused");
                self.status_now(Some(
                    "Live feedback is paused; your video is still being received and will be analysed shortly.".into(),
                ))
                .await
            }
            Err(e) => self.send(ServerMessage::from_error(e)).await,
        }
    }

    /// Tells the candidate once per spell when the face has been out of view for a while.
    async fn track_face(&mut self, face: bool, now: i64) -> Result<(), Gone> {
        if face {
            self.face_last_seen = Some(now);
            self.face_warned = false;
            return Ok(());
        }
        let since = *self.face_last_seen.get_or_insert(now);
        if !self.face_warned && now - since >= FACE_ABSENT_WARN_MS {
            self.face_warned = true;
            return self
                .send(ServerMessage::error(
                    "FACE_NOT_DETECTED",
                    "Please ensure your face is visible",
                ))
                .await;
        }
        Ok(())
    }
}

/// Decodes a JSON frame's base64 image (a `data:` URL prefix is accepted); what is over the
/// frame limit is refused later, with the limit this service is configured with.
pub(crate) fn decode_frame(data: FrameData) -> Result<FrameUpload, InterviewError> {
    Ok(FrameUpload {
        bytes: iv_frames::decode_base64(&data.image, iv_frames::MAX_FRAME_BYTES)?,
        timestamp: data.timestamp,
        format: data.format.unwrap_or_default(),
    })
}
