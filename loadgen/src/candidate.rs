//! One candidate: starts an interview over REST, then on the WebSocket sends frames at a steady
//! rate whatever comes back (a camera does not wait), answers now and then, completes, and
//! notes when each frame's `emotion_update` arrives.
//!
//! Frames go as JSON with the client's capture time, which the server keeps as the frame's
//! timestamp and returns in its `emotion_update`: that is how a reply is matched to its frame,
//! even when the server samples some frames out.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use iv_platform::client::HttpClient;
use serde_json::{Value, json};
use tokio::time::{Instant as TokioInstant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

/// When and how one candidate plays.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: usize,
    /// From the start of the run.
    pub start_after: Duration,
    /// How long frames are sent.
    pub duration: Duration,
    pub fps: f64,
    pub first_answer: Duration,
    pub answer_every: Duration,
    /// After completing, how long to wait for the report (zero: leave at once).
    pub wait_report: Duration,
}

/// One frame sent: when (from the start of the run), and how long its reply took.
#[derive(Debug, Clone, Copy)]
pub struct FrameSent {
    pub at: Duration,
    pub latency: Option<Duration>,
}

/// What one candidate sent and saw.
#[derive(Debug, Default)]
pub struct CandidateLog {
    pub frames: Vec<FrameSent>,
    pub answers: usize,
    /// From an answer to the next question, which waits for the answer's live analysis.
    pub answer_latencies: Vec<Duration>,
    /// `error` messages by code (`FACE_NOT_DETECTED` is advice, not an error, and not counted).
    pub errors: BTreeMap<String, usize>,
    /// `status` messages that said sampling started or changed, and that feedback paused.
    pub sampling_notices: usize,
    pub paused_notices: usize,
    /// The lowest frame rate the server suggested, if it did.
    pub suggested_fps: Option<f64>,
    pub completed: bool,
    /// From `complete` to the status saying the report is ready.
    pub report_after: Option<Duration>,
    /// Why the session ended early (could not start, socket closed...).
    pub failure: Option<String>,
}

/// Where the candidates go, and the recruiter's token that starts their interviews.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub url: String,
    pub token: String,
}

/// Plays one candidate; a failure is recorded in the log, never panics the run.
pub async fn play(
    gateway: &Gateway,
    frames: &[String],
    plan: Plan,
    epoch: Instant,
) -> CandidateLog {
    tokio::time::sleep_until(TokioInstant::from_std(epoch + plan.start_after)).await;
    let mut log = CandidateLog::default();
    if let Err(e) = session(gateway, frames, &plan, epoch, &mut log).await {
        log.failure = Some(format!("{e:#}"));
    }
    log
}

async fn session(
    gateway: &Gateway,
    frames: &[String],
    plan: &Plan,
    epoch: Instant,
    log: &mut CandidateLog,
) -> anyhow::Result<()> {
    let (id, invitation) = start_interview(gateway, plan.index).await?;
    let url = format!(
        "{}/ws/interviews/{id}",
        gateway.url.replacen("http", "ws", 1)
    );
    let request = iv_stack::ws_request(&url, Some(&invitation))?;
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("opening the WebSocket")?;
    let (mut tx, mut rx) = socket.split();
    let began = TokioInstant::now();
    let stop_sending = began + plan.duration;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.fps));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut next_answer = began + plan.first_answer;
    let mut state = State::default();
    let mut deadline: Option<TokioInstant> = None;
    loop {
        let sending = deadline.is_none();
        let outgoing: Option<Value> = tokio::select! {
            _ = async { tokio::time::sleep_until(deadline.unwrap_or(began)).await }, if !sending => break,
            _ = tokio::time::sleep_until(stop_sending), if sending => {
                log.completed = true;
                state.completed_at = Some(Instant::now());
                deadline = Some(TokioInstant::now() + plan.wait_report.max(Duration::from_secs(2)));
                Some(json!({"type": "complete", "data": {}}))
            }
            _ = ticker.tick(), if sending => Some(state.frame(frames, epoch, log)),
            _ = tokio::time::sleep_until(next_answer), if sending => {
                next_answer += plan.answer_every;
                state.answer(log)
            }
            incoming = rx.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => bail!("the server closed the socket"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("socket error: {e}"),
                };
                let message: Value = serde_json::from_str(&text).context("a message that is not JSON")?;
                if state.on_message(&message, log, plan.wait_report.is_zero()) {
                    break;
                }
                None
            }
        };
        if let Some(message) = outgoing {
            tx.send(Message::Text(message.to_string().into()))
                .await
                .context("sending on the socket")?;
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    Ok(())
}

/// The socket's side of the session.
#[derive(Default)]
struct State {
    /// Capture time sent -> the frame's index in the log, and when it left.
    pending: HashMap<i64, (usize, Instant)>,
    last_timestamp: i64,
    question: Option<String>,
    answered_at: Option<Instant>,
    completed_at: Option<Instant>,
}

impl State {
    fn frame(&mut self, frames: &[String], epoch: Instant, log: &mut CandidateLog) -> Value {
        // Strictly increasing, so each capture time names one frame.
        let timestamp = iv_contracts::now_millis().max(self.last_timestamp + 1);
        self.last_timestamp = timestamp;
        let image = &frames[log.frames.len() % frames.len()];
        self.pending
            .insert(timestamp, (log.frames.len(), Instant::now()));
        log.frames.push(FrameSent {
            at: epoch.elapsed(),
            latency: None,
        });
        json!({"type": "frame", "data": {"timestamp": timestamp, "image": image, "format": "jpeg"}})
    }

    fn answer(&mut self, log: &mut CandidateLog) -> Option<Value> {
        let question = self.question.take()?;
        log.answers += 1;
        self.answered_at = Some(Instant::now());
        let transcript = iv_stack::sim::answer_for(&question);
        Some(json!({"type": "answer", "data": {
            "question_id": question, "transcript": transcript, "duration": 30
        }}))
    }

    /// Takes in one message; true when the session is over for this candidate.
    fn on_message(
        &mut self,
        m: &Value,
        log: &mut CandidateLog,
        leave_when_completed: bool,
    ) -> bool {
        let data = &m["data"];
        match m["type"].as_str() {
            Some("emotion_update") => {
                if let Some((i, sent)) = data["timestamp"]
                    .as_i64()
                    .and_then(|t| self.pending.remove(&t))
                {
                    log.frames[i].latency = Some(sent.elapsed());
                }
            }
            Some("question") => {
                self.question = data["id"].as_str().map(String::from);
                if let Some(at) = self.answered_at.take() {
                    log.answer_latencies.push(at.elapsed());
                }
            }
            Some("error") => {
                let code = data["code"].as_str().unwrap_or("UNKNOWN").to_string();
                if code != "FACE_NOT_DETECTED" {
                    *log.errors.entry(code).or_default() += 1;
                }
            }
            Some("status") => {
                if let Some(every) = data["sampling"]["suggested_fps"].as_f64() {
                    log.sampling_notices += 1;
                    log.suggested_fps = Some(log.suggested_fps.map_or(every, |s| s.min(every)));
                }
                if data["message"]
                    .as_str()
                    .is_some_and(|s| s.contains("paused"))
                {
                    log.paused_notices += 1;
                }
                if data["state"] == "completed" {
                    if let Some(done) = self.completed_at.filter(|_| data["report_ready"] == true) {
                        log.report_after = Some(done.elapsed());
                        return true;
                    }
                    // Frames sent before `complete` were answered before it completed.
                    return leave_when_completed;
                }
            }
            _ => {}
        }
        false
    }
}

/// Starts an interview as the recruiter; returns its id and the candidate's invitation token.
async fn start_interview(gateway: &Gateway, index: usize) -> anyhow::Result<(String, String)> {
    let body = json!({"user_id": format!("load-{index}"), "policy": "full", "consent": true});
    let response = HttpClient::new()
        .with_bearer(&gateway.token)
        .post_json(&format!("{}/api/v1/interviews/start", gateway.url), &body)
        .await
        .context("starting an interview")?;
    if response.status != http::StatusCode::CREATED {
        bail!(
            "starting an interview: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    let body = response.json();
    let field = |v: &serde_json::Value, what: &str| {
        v.as_str()
            .map(String::from)
            .with_context(|| format!("the start response has no {what}"))
    };
    Ok((
        field(&body["id"], "id")?,
        field(&body["invitation"]["token"], "invitation")?,
    ))
}
