//! The candidate simulator: plays a whole interview through the gateway the way a browser would
//! (REST to start and complete, a WebSocket for frames, answers and live updates), then fetches
//! what a recruiter would: the score, the JSON and PDF reports and the emotion timeline.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use iv_platform::client::HttpClient;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// `http://host:port` of the gateway.
    pub gateway: String,
    /// JPEG frames, sent in a loop.
    pub frames: Vec<PathBuf>,
    pub fps: f32,
    /// Frames sent while "answering" each question before the answer goes in.
    pub frames_per_answer: usize,
    pub policy: String,
    /// Where to write the PDF report, if anywhere.
    pub pdf_path: Option<PathBuf>,
    /// Bearer token of a recruiter or admin (`--token`, or minted from the local signing key).
    pub token: Option<String>,
    /// How long to wait for the report after completing.
    pub report_timeout: Duration,
    /// Print every message as it arrives.
    pub verbose: bool,
}

impl SimOptions {
    pub fn new(gateway: String, frames: Vec<PathBuf>) -> Self {
        Self {
            gateway,
            frames,
            fps: 10.0,
            frames_per_answer: 10,
            policy: "full".into(),
            pdf_path: None,
            token: None,
            report_timeout: Duration::from_secs(60),
            verbose: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimResult {
    pub session_id: String,
    /// Every message the server sent on the socket, in order.
    pub messages: Vec<Value>,
    pub frames_sent: usize,
    /// Frames sent before the server said live feedback is paused (`None`: it never did).
    pub frames_before_pause: Option<usize>,
    pub answers_sent: usize,
    pub score: Value,
    pub report: Value,
    pub pdf_bytes: usize,
    pub emotions: Value,
    /// From start to the report being fetched.
    pub elapsed: Duration,
}

impl SimResult {
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }
}

/// A plausible spoken answer for each question of the default set (and a generic one).
pub fn answer_for(question_id: &str) -> &'static str {
    match question_id {
        "intro-1" => {
            "I'm a backend engineer, and in my current role I am responsible for the payments API and its on-call rotation. \
             My most recent project was moving our reconciliation jobs to an event-driven design, which cut the nightly \
             run from four hours to twenty minutes. Day to day I use Rust, PostgreSQL and Kafka. This position interests \
             me because you build real-time systems at a scale I have not worked at yet."
        }
        "tech-1" => {
            "I would generate a unique short key for every URL, for example a base62 encoding of a counter, so there are \
             no collisions to handle. The database stores the mapping from key to URL, and because reads dominate, I \
             would cache popular redirects in Redis and scale reads with replicas behind a load balancer. I'd also \
             handle expiry of old links and rate limit creation to prevent abuse."
        }
        "tech-2" => {
            "An index is a sorted structure, usually a B-tree, that speeds up lookups and range queries because the \
             database does not have to scan every row. Um, the cost is extra storage and slower writes, since every \
             insert has to update the index too. So I would not add one on a write-heavy table or on low selectivity \
             columns, like a boolean flag, where it gains little."
        }
        "tech-3" => {
            "First, every call gets a timeout so a slow dependency cannot hold threads forever. Then retries with \
             exponential backoff and jitter for transient errors, and a circuit breaker so we fail fast when the \
             dependency is clearly down. Where possible we degrade gracefully, for example serving cached data, and \
             we need monitoring and alerting on error rates to know it is happening."
        }
        "behav-1" => {
            "A teammate wanted to rewrite our service in a new framework, and I disagreed because of the migration risk. \
             I listened to understand why, and it turned out the real problem was slow builds. We agreed to measure it, \
             and the data showed caching fixed most of it. The outcome was a two day fix instead of a rewrite, and I \
             learned to look for the problem behind the proposal."
        }
        "behav-2" => {
            "Our search migration slipped by a month because I underestimated the data cleanup. I owned the mistake in \
             the team meeting and communicated early with stakeholders about the new date. We split the work, added a \
             daily check on progress, and shipped the critical part first. Since then I spike the riskiest part of a \
             project before committing to a date."
        }
        _ => {
            "I would start by clarifying the goal and the constraints, then break the problem into parts, because that \
             makes the trade-offs visible. For example, I would measure before optimising, and I would explain my \
             reasoning to the team so we can decide together."
        }
    }
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Plays one interview. Fails if the server misbehaves (no question, no report in time).
pub async fn run(opts: &SimOptions) -> anyhow::Result<SimResult> {
    anyhow::ensure!(!opts.frames.is_empty(), "no frames to send");
    let started = Instant::now();
    let http = HttpClient::new();
    let bearer = opts.token.as_ref().map(|t| format!("Bearer {t}"));
    let auth: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("authorization", b)])
        .unwrap_or_default();
    let frames: Vec<String> = opts
        .frames
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .map(|b| b.map(|b| base64::engine::general_purpose::STANDARD.encode(b)))
        .collect::<anyhow::Result<_>>()?;
    let (session_id, invitation) = start_interview(&http, opts, &auth).await?;
    let played = play(opts, &session_id, &invitation, &frames).await?;
    let results = fetch_results(&http, opts, &auth, &session_id).await?;
    Ok(SimResult {
        session_id,
        messages: played.messages,
        frames_sent: played.frames_sent,
        frames_before_pause: played.frames_before_pause,
        answers_sent: played.answers_sent,
        score: results.score,
        report: results.report,
        pdf_bytes: results.pdf_bytes,
        emotions: results.emotions,
        elapsed: started.elapsed(),
    })
}

/// Starts the interview through the gateway; returns its id.
async fn start_interview(
    http: &HttpClient,
    opts: &SimOptions,
    auth: &[(&str, &str)],
) -> anyhow::Result<(String, String)> {
    let start_body = json!({
        "user_id": format!("sim-{}", std::process::id()),
        "candidate_name": "Simulated Candidate",
        "policy": opts.policy,
        "consent": true,
    });
    let resp = http
        .send(
            http::Method::POST,
            &format!("{}/api/v1/interviews/start", opts.gateway),
            Some("application/json"),
            serde_json::to_vec(&start_body)?,
            auth,
        )
        .await?;
    if resp.status != http::StatusCode::CREATED {
        bail!(
            "start failed: {} {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    let session = resp.json();
    let session_id = session["id"]
        .as_str()
        .context("start returned no id")?
        .to_string();
    // The candidate plays with the invitation, as a real one would; the recruiter's token
    // only started the interview and reads the results.
    let invitation = session["invitation"]["token"]
        .as_str()
        .context("start returned no invitation")?
        .to_string();
    if opts.verbose {
        println!(
            "started interview {session_id} ({} questions)",
            session["total_questions"]
        );
    }
    Ok((session_id, invitation))
}

/// What the socket saw and sent.
#[derive(Default)]
struct Played {
    messages: Vec<Value>,
    frames_sent: usize,
    frames_before_pause: Option<usize>,
    answers_sent: usize,
}

/// The candidate's side of the socket: what has been asked, sent and answered so far.
#[derive(Default)]
struct Player {
    played: Played,
    current: Option<String>,
    frames_since_question: usize,
    completed_at: Option<Instant>,
    report_ready: bool,
    /// Like a real client, keep at most two frames waiting for live feedback; while feedback is
    /// paused no reply comes per frame, so none is waited for.
    in_flight: usize,
    paused: bool,
}

impl Player {
    fn may_send_frame(&self) -> bool {
        self.completed_at.is_none() && (self.paused || self.in_flight < 2)
    }

    /// Takes in one server message; returns the message to send back, if any (`complete` once
    /// every question is answered: on the socket, so it is handled after every frame sent).
    fn on_message(&mut self, message: Value) -> Option<Value> {
        let mut reply = None;
        match message["type"].as_str() {
            Some("emotion_update") => self.in_flight = self.in_flight.saturating_sub(1),
            Some("error") if message["data"]["code"] != "FACE_NOT_DETECTED" => {
                self.in_flight = self.in_flight.saturating_sub(1)
            }
            Some("question") => {
                self.current = message["data"]["id"].as_str().map(String::from);
                self.frames_since_question = 0;
            }
            Some("status") => {
                let data = &message["data"];
                self.paused = data["live_feedback"] == "paused";
                if self.paused {
                    self.in_flight = 0;
                    self.played
                        .frames_before_pause
                        .get_or_insert(self.played.frames_sent);
                }
                self.report_ready |= data["report_ready"] == true;
                let all_answered = data["answered"] == data["total_questions"];
                if all_answered && self.completed_at.is_none() {
                    self.completed_at = Some(Instant::now());
                    reply = Some(json!({"type": "complete", "data": {}}));
                }
            }
            _ => {}
        }
        self.played.messages.push(message);
        reply
    }

    /// The next frame, and the answer to the current question once enough frames went by.
    fn on_tick(&mut self, opts: &SimOptions, session_id: &str, frames: &[String]) -> Vec<Value> {
        let image = &frames[self.played.frames_sent % frames.len()];
        let mut out = vec![
            json!({"type": "frame", "data": {"session_id": session_id, "timestamp": iv_contracts::now_millis(), "image": image, "format": "jpeg"}}),
        ];
        self.played.frames_sent += 1;
        if !self.paused {
            self.in_flight += 1;
        }
        self.frames_since_question += 1;
        if self.frames_since_question >= opts.frames_per_answer
            && let Some(q) = self.current.take()
        {
            let transcript = answer_for(&q);
            let duration = words(transcript) as f32 / 2.4;
            out.push(json!({"type": "answer", "data": {"question_id": q, "transcript": transcript, "duration": duration}}));
            self.played.answers_sent += 1;
        }
        out
    }
}

/// Plays the interview over the WebSocket until the report is ready.
async fn play(
    opts: &SimOptions,
    session_id: &str,
    invitation: &str,
    frames: &[String],
) -> anyhow::Result<Played> {
    let ws_url = format!(
        "{}/ws/interviews/{session_id}",
        opts.gateway.replacen("http", "ws", 1)
    );
    let request = crate::ws_request(&ws_url, Some(invitation))?;
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("opening the WebSocket")?;
    let (mut tx, mut rx) = socket.split();
    let mut player = Player::default();
    let mut ticker = tokio::time::interval(Duration::from_secs_f32(1.0 / opts.fps.max(0.1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !player.report_ready {
        // Checked even while nothing arrives: a report that never comes must not hang the run.
        let report_due = async {
            match player.completed_at {
                Some(t) => tokio::time::sleep_until((t + opts.report_timeout).into()).await,
                None => std::future::pending().await,
            }
        };
        let outgoing = tokio::select! {
            _ = report_due => bail!("no report within {:?} of completing", opts.report_timeout),
            incoming = rx.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None => bail!("the server closed the socket"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("socket error: {e}"),
                };
                let message: Value = serde_json::from_str(&text)?;
                if opts.verbose {
                    print_message(&message);
                }
                player.on_message(message).into_iter().collect()
            }
            _ = ticker.tick(), if player.may_send_frame() => player.on_tick(opts, session_id, frames),
        };
        for message in outgoing {
            tx.send(Message::Text(message.to_string().into())).await?;
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    Ok(player.played)
}

/// What a recruiter then fetches: the score, the JSON and PDF reports, the emotion timeline.
struct Results {
    score: Value,
    report: Value,
    pdf_bytes: usize,
    emotions: Value,
}

async fn fetch_results(
    http: &HttpClient,
    opts: &SimOptions,
    auth: &[(&str, &str)],
    session_id: &str,
) -> anyhow::Result<Results> {
    let score = fetch_json(
        http,
        &format!("{}/api/v1/scores/session/{session_id}", opts.gateway),
        auth,
    )
    .await?;
    let report_url = format!("{}/api/v1/scores/report", opts.gateway);
    let report = post_json(
        http,
        &report_url,
        &json!({"session_id": session_id, "format": "json"}),
        auth,
    )
    .await?;
    let pdf = http
        .send(
            http::Method::POST,
            &report_url,
            Some("application/json"),
            serde_json::to_vec(&json!({"session_id": session_id, "format": "pdf"}))?,
            auth,
        )
        .await?;
    if !pdf.status.is_success() || !pdf.body.starts_with(b"%PDF-") {
        bail!("PDF report failed: {}", pdf.status);
    }
    if let Some(path) = &opts.pdf_path {
        std::fs::write(path, &pdf.body).with_context(|| format!("writing {}", path.display()))?;
    }
    let emotions = fetch_json(
        http,
        &format!("{}/api/v1/emotions/session/{session_id}", opts.gateway),
        auth,
    )
    .await?;
    Ok(Results {
        score,
        report,
        pdf_bytes: pdf.body.len(),
        emotions,
    })
}

async fn fetch_json(http: &HttpClient, url: &str, auth: &[(&str, &str)]) -> anyhow::Result<Value> {
    let resp = http
        .send(http::Method::GET, url, None, Vec::new(), auth)
        .await?;
    if !resp.status.is_success() {
        bail!(
            "GET {url}: {} {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    Ok(resp.json())
}

async fn post_json(
    http: &HttpClient,
    url: &str,
    body: &Value,
    auth: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let resp = http
        .send(
            http::Method::POST,
            url,
            Some("application/json"),
            serde_json::to_vec(body)?,
            auth,
        )
        .await?;
    if !resp.status.is_success() {
        bail!(
            "POST {url}: {} {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    Ok(resp.json())
}

fn print_message(m: &Value) {
    let data = &m["data"];
    match m["type"].as_str().unwrap_or_default() {
        "question" => println!(
            "  question {}/{} [{}]: {}",
            data["index"],
            data["total"],
            data["category"].as_str().unwrap_or_default(),
            data["text"].as_str().unwrap_or_default()
        ),
        "status" => println!(
            "  status: {} {}% live_feedback={} {}",
            data["state"].as_str().unwrap_or_default(),
            data["progress"],
            data["live_feedback"].as_str().unwrap_or_default(),
            data["message"].as_str().unwrap_or_default()
        ),
        "emotion_update" => println!(
            "  emotion_update #{}: face={} emotion={} ({:.2}) attention={:.2} blinks={}",
            data["frame_number"],
            data["face_detected"],
            data["emotion"].as_str().unwrap_or("-"),
            data["confidence"].as_f64().unwrap_or_default(),
            data["attention"].as_f64().unwrap_or_default(),
            data["blink_count"]
        ),
        "error" => println!(
            "  error {}: {}",
            data["code"].as_str().unwrap_or_default(),
            data["message"].as_str().unwrap_or_default()
        ),
        other => println!("  {other}: {data}"),
    }
}
