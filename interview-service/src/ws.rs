//! The candidate's WebSocket session, generic over a sink and stream of text so it can be driven
//! by channels in tests and by a real socket in production.
//!
//! Frames are analysed one at a time per socket, in a task of their own, while the socket keeps
//! reading: answers, pings and newer frames are never stuck behind an analysis. While the
//! emotion service answers, of the frames that arrive meanwhile only the newest waits
//! ([`crate::sampling`]); while live feedback is paused every frame waits its turn, since each is
//! only queued for the worker and none may be lost.

use std::collections::VecDeque;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use iv_platform::CancellationToken;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::app::{FrameOutcome, FrameUpload, InterviewApp};
use crate::error::InterviewError;
use crate::messages::{ClientMessage, FrameData, LiveFeedback, QuestionMessage, ServerMessage};
use crate::sampling::{Change, Sampler};
use crate::store::Session;

/// A frame's analysis in progress.
type Analysis = JoinHandle<Result<FrameOutcome, InterviewError>>;

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

/// Frames that may wait while live feedback is paused: each is only stored for the worker (a few
/// milliseconds), so this is reached only if storing stalls; about 12 s of video at 5 frames/s.
const PAUSED_BACKLOG: usize = 64;

struct Connection<S> {
    app: InterviewApp,
    session_id: String,
    out: S,
    /// When the face was last seen, and whether the candidate was told it is gone.
    face_last_seen: Option<i64>,
    face_warned: bool,
    /// The frame being analysed, and those waiting for it.
    analysing: Option<Analysis>,
    waiting: VecDeque<FrameUpload>,
    sampler: Sampler,
    /// Frames sampled out and not yet written to the session's counts: written once per
    /// analysed frame (and at the end) instead of once each, so overload adds no database work.
    sampled_out: i64,
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
        analysing: None,
        waiting: VecDeque::new(),
        sampler: Sampler::default(),
        sampled_out: 0,
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
                outcome = finished(&mut conn.analysing) => conn.analysed(outcome).await,
                message = incoming.next() => match message {
                    None | Some(Incoming::Close) => {
                        conn.drain().await;
                        break;
                    }
                    Some(Incoming::Text(text)) => conn.handle_text(&text).await,
                    Some(Incoming::Binary(bytes)) => {
                        conn.offer_frame(FrameUpload { bytes, timestamp: None, format: String::new() }).await
                    }
                },
            };
            if result.is_err() {
                break; // the client is gone
            }
        }
    }
    conn.count_sampled_out().await;
    metrics::gauge!("websocket_sessions").decrement(1.0);
    tracing::info!(session_id = %conn.session_id, "candidate disconnected");
}

/// The socket could not be written to.
struct Gone;

/// Waits for the frame in analysis, if there is one (forever otherwise); the slot is emptied
/// once it is done. Dropping this future leaves the analysis in its slot, running.
async fn finished(slot: &mut Option<Analysis>) -> Result<FrameOutcome, InterviewError> {
    let Some(analysis) = slot.as_mut() else {
        return std::future::pending().await;
    };
    let outcome = analysis.await;
    *slot = None;
    outcome.map_err(InterviewError::AnalysisTask)?
}

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
        let status = self.app.status(session, message);
        self.send(ServerMessage::Status(
            status.sampled(self.sampler.current()),
        ))
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
                self.send(ServerMessage::Status(
                    status.sampled(self.sampler.current()),
                ))
                .await
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
                Ok(upload) => self.offer_frame(upload).await,
                Err(e) => self.send(ServerMessage::from_error(e)).await,
            },
            Ok(ClientMessage::Answer(answer)) => {
                match self.app.submit_answer(&self.session_id, answer).await {
                    Ok(outcome) => self.announce(&outcome.session, None).await,
                    Err(e) => self.send(ServerMessage::from_error(e)).await,
                }
            }
            Ok(ClientMessage::Complete) => {
                self.settle().await?;
                match self.app.complete(&self.session_id).await {
                    Ok(_) => Ok(()), // the completion status arrives through the hub
                    Err(e) => self.send(ServerMessage::from_error(e)).await,
                }
            }
        }
    }

    /// A frame arrived: analysed now if none is, else it waits. While the emotion service
    /// answers it replaces (samples out) any frame already waiting; while feedback is paused it
    /// queues behind them. Its capture time is its arrival unless the client gave one, so timing
    /// figures stay right whichever frames are analysed.
    async fn offer_frame(&mut self, mut upload: FrameUpload) -> Result<(), Gone> {
        let now = iv_contracts::now_millis();
        upload.timestamp = upload.timestamp.filter(|t| *t > 0).or(Some(now));
        let change = self.sampler.offered(now);
        if self.analysing.is_none() {
            self.start(upload);
            return self.tell(change).await;
        }
        let room = match self.app.live_feedback(&self.session_id) {
            LiveFeedback::Paused => PAUSED_BACKLOG,
            _ => 1,
        };
        self.waiting.push_back(upload);
        while self.waiting.len() > room {
            self.waiting.pop_front();
            self.sampled_out += 1;
        }
        self.tell(change).await
    }

    /// Writes the frames sampled out since the last write into the session's counts.
    async fn count_sampled_out(&mut self) {
        let n = std::mem::take(&mut self.sampled_out);
        if n == 0 {
            return;
        }
        if let Err(e) = self.app.sample_out(&self.session_id, n).await {
            tracing::warn!(session_id = %self.session_id, frames = n, error = %e, "sampled-out frames were not counted");
        }
    }

    /// Each frame is a trace of its own (a socket lives for the whole interview), linked to the
    /// socket's span.
    fn start(&mut self, upload: FrameUpload) {
        let (app, id) = (self.app.clone(), self.session_id.clone());
        let span = tracing::info_span!(parent: None, "ws.frame", session_id = %id, trace_id = tracing::field::Empty);
        span.follows_from(tracing::Span::current());
        iv_platform::telemetry::context::record_trace_id(&span);
        self.analysing = Some(tokio::spawn(
            async move { app.submit_frame(&id, upload).await }.instrument(span),
        ));
    }

    /// Finishes the frames received so far, telling the candidate each outcome: what was sent
    /// before `complete` belongs to the interview it completes.
    async fn settle(&mut self) -> Result<(), Gone> {
        while self.analysing.is_some() {
            let outcome = finished(&mut self.analysing).await;
            self.analysed(outcome).await?;
        }
        Ok(())
    }

    /// The candidate left: the frames already received are still analysed (or queued) and
    /// counted, though nobody reads the outcome.
    async fn drain(&mut self) {
        while self.analysing.is_some() {
            let _ = finished(&mut self.analysing).await;
            if let Some(next) = self.waiting.pop_front() {
                self.start(next);
            }
        }
    }

    /// Tells the candidate that sampling began, changed or ended.
    async fn tell(&mut self, change: Option<Change>) -> Result<(), Gone> {
        let message = match change {
            None => return Ok(()),
            Some(Change::Started(s)) => format!(
                "The server is busy: about 1 in {} of your frames is analysed. Sending {} frames per second is enough.",
                s.every, s.suggested_fps
            ),
            Some(Change::Ended) => "Every frame is analysed again.".to_string(),
        };
        tracing::info!(session_id = %self.session_id, ?change, "frame sampling changed");
        self.status_now(Some(message)).await
    }

    /// The frame in analysis is done: the waiting frame (if any) goes next, the candidate hears
    /// the outcome, and the frames sampled out meanwhile are counted.
    async fn analysed(
        &mut self,
        outcome: Result<FrameOutcome, InterviewError>,
    ) -> Result<(), Gone> {
        if let Some(next) = self.waiting.pop_front() {
            self.start(next);
        }
        let told = self.tell_outcome(outcome).await;
        self.count_sampled_out().await;
        told
    }

    async fn tell_outcome(
        &mut self,
        outcome: Result<FrameOutcome, InterviewError>,
    ) -> Result<(), Gone> {
        match outcome {
            Ok(FrameOutcome::Analyzed { update, resumed }) => {
                self.sampler.analysed();
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
                self.sampler.analysed(); // kept for the worker: paused, not sampled
                if !paused_now {
                    return Ok(()); // told once; not an error per frame
                }
                tracing::warn!(session_id = %self.session_id, %reason, "live feedback paused");
                self.status_now(Some(
                    "Live feedback is paused; your video is still being received and will be analysed shortly.".into(),
                ))
                .await
            }
            // Busy: this frame is sampled out; the sampler tells the candidate when it matters.
            Ok(FrameOutcome::Shed { .. }) => Ok(()),
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

#[cfg(test)]
mod tests;
