//! The candidate's WebSocket session, generic over a sink and stream of text so it can be driven
//! by channels in tests and by a real socket in production.
//!
//! Frames are analysed one at a time per socket, in a task of their own, while the socket keeps
//! reading: answers, pings and newer frames are never stuck behind an analysis. While the
//! emotion service answers, of the frames that arrive meanwhile only the newest waits
//! ([`crate::sampling`]); while live feedback is paused every frame waits its turn, since each is
//! only queued for the worker and none may be lost.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use iv_platform::CancellationToken;
use iv_platform::config::{ConfigError, Env};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio::time::Instant;
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
    /// A ping or pong: nothing to answer here (the socket layer answers pings), but the
    /// client is alive.
    Alive,
    Close,
}

/// What goes out to the client: the protocol's text messages, and the pings that tell a live
/// client (which answers them by itself) from a vanished one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Ping,
}

/// How long a socket may stay silent and how fast it may send frames.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// `WS_PING_MS`: silence this long gets a ping. 20 s: under the idle timeouts of the
    /// proxies and mobile networks in between (often 30-60 s), so a quiet socket stays open.
    pub ping_after: Duration,
    /// `WS_IDLE_TIMEOUT_MS`: silence this long, pings unanswered, closes the socket. 60 s: two
    /// pings' worth after the first silence; a candidate typing an answer sends nothing, but
    /// their browser answers every ping.
    pub idle_timeout: Duration,
    /// `WS_FRAME_RATE` per second, with bursts of `WS_FRAME_BURST`: frames beyond are dropped
    /// with a coded error and the socket stays. 30/s is six times the 5/s a client should
    /// send (and above the 25/s a webcam's full rate gives); the burst absorbs what a stalled
    /// network delivers at once. Analysis cost is bounded apart from this, by sampling.
    pub frame_rate: u32,
    pub frame_burst: u32,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            ping_after: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            frame_rate: 30,
            frame_burst: 60,
        }
    }
}

impl SocketLimits {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            ping_after: env.millis("WS_PING_MS", d.ping_after.as_millis() as u64)?,
            idle_timeout: env.millis("WS_IDLE_TIMEOUT_MS", d.idle_timeout.as_millis() as u64)?,
            frame_rate: env.parse("WS_FRAME_RATE", d.frame_rate)?,
            frame_burst: env.parse("WS_FRAME_BURST", d.frame_burst)?,
        })
    }

    fn frame_limiter(&self) -> DefaultDirectRateLimiter {
        let rate = NonZeroU32::new(self.frame_rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.frame_burst).unwrap_or(rate);
        RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
    }
}

/// When the client was last heard from, and whether it was pinged since.
struct Liveness {
    heard: Instant,
    pinged: bool,
}

impl Liveness {
    /// When to act next: ping, or (pinged already) give up.
    fn deadline(&self, limits: &SocketLimits) -> Instant {
        if self.pinged {
            self.heard + limits.idle_timeout
        } else {
            self.heard + limits.ping_after
        }
    }
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
    limits: SocketLimits,
    frames: DefaultDirectRateLimiter,
    /// Whether frames are being dropped over the rate (the client is told once per spell).
    over_rate: bool,
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

/// Runs one socket until the client closes it, stays silent past the idle timeout, or
/// `cancel` fires.
pub async fn run<S, R>(
    app: InterviewApp,
    session_id: String,
    out: S,
    mut incoming: R,
    limits: SocketLimits,
    cancel: CancellationToken,
) where
    S: Sink<Outgoing> + Unpin,
    R: Stream<Item = Incoming> + Unpin,
{
    let mut events = app.hub().subscribe(&session_id);
    let mut conn = Connection {
        app,
        session_id,
        out,
        limits,
        frames: limits.frame_limiter(),
        over_rate: false,
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
    let mut alive = Liveness {
        heard: Instant::now(),
        pinged: false,
    };
    if conn.announce(&session, None).await.is_ok() {
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = conn.status_now(Some("The server is restarting; reconnect to continue.".into())).await;
                    break;
                }
                _ = tokio::time::sleep_until(alive.deadline(&conn.limits)) => {
                    if alive.pinged {
                        tracing::info!(session_id = %conn.session_id, "socket silent past the idle timeout; closing");
                        let _ = conn.send(ServerMessage::error(
                            iv_platform::errors::code::IDLE_TIMEOUT,
                            format!("nothing heard for {} s; reconnect to continue", conn.limits.idle_timeout.as_secs()),
                        )).await;
                        conn.drain().await;
                        break;
                    }
                    alive.pinged = true;
                    conn.out.send(Outgoing::Ping).await.map_err(|_| Gone)
                }
                event = events.recv() => match event {
                    Ok(message) => conn.send(message).await,
                    Err(RecvError::Lagged(_)) => Ok(()),
                    Err(RecvError::Closed) => Ok(()),
                },
                outcome = finished(&mut conn.analysing) => conn.analysed(outcome).await,
                message = incoming.next() => {
                    alive = Liveness { heard: Instant::now(), pinged: false };
                    match message {
                        None | Some(Incoming::Close) => {
                            conn.drain().await;
                            break;
                        }
                        Some(Incoming::Alive) => Ok(()),
                        Some(Incoming::Text(text)) => conn.handle_text(&text).await,
                        Some(Incoming::Binary(bytes)) => match conn.admit_frame().await {
                            Ok(true) => {
                                conn.offer_frame(FrameUpload { bytes, timestamp: None, format: String::new() }).await
                            }
                            other => other.map(|_| ()),
                        },
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

impl<S: Sink<Outgoing> + Unpin> Connection<S> {
    async fn send(&mut self, message: ServerMessage) -> Result<(), Gone> {
        self.out
            .send(Outgoing::Text(message.to_json()))
            .await
            .map_err(|_| Gone)
    }

    /// Whether a frame is within the socket's rate; the first one over it in a spell gets a
    /// RATE_LIMITED error, the rest are dropped quietly.
    async fn admit_frame(&mut self) -> Result<bool, Gone> {
        if self.frames.check().is_ok() {
            self.over_rate = false;
            return Ok(true);
        }
        metrics::counter!("websocket_frames_rate_limited_total").increment(1);
        if !self.over_rate {
            self.over_rate = true;
            tracing::info!(session_id = %self.session_id, "frames over the socket's rate are dropped");
            self.send(ServerMessage::error(
                iv_platform::errors::code::RATE_LIMITED,
                format!(
                    "frames beyond {} per second are dropped; about 5 per second is enough",
                    self.limits.frame_rate
                ),
            ))
            .await?;
        }
        Ok(false)
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
            Ok(ClientMessage::Frame(data)) => {
                if !self.admit_frame().await? {
                    return Ok(());
                }
                match decode_frame(data) {
                    Ok(upload) => self.offer_frame(upload).await,
                    Err(e) => self.send(ServerMessage::from_error(e)).await,
                }
            }
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
