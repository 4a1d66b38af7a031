//! The emotion use cases, shared by the gRPC and REST front ends: validate a frame, enforce the
//! session's policy, analyse on the bounded pool, keep the session's memory, store aggregates.

use std::collections::{BTreeMap, HashMap};

use iv_platform::auth::{OrgId, Principal, Role};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use iv_contracts::policy::AnalysisPolicy;
use iv_platform::audit::{Action, AuditLog, Record};
use iv_platform::erasure::Erasure;
use serde::Serialize;

use crate::analysis::{FrameAnalysis, FrameAnalyzer, Scanner};
use crate::blink::{BlinkTracker, Closure};
use crate::error::EmotionError;
use crate::far_pass::FarPasses;
use crate::inference::{InferencePool, Priority};
use crate::store::{EmotionStore, StoredFrame, StoredSession};
use iv_frames as frame;

/// Sessions idle this long lose their in-memory tracking state (aggregates stay stored).
const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// Points in a summary's timeline; longer sessions are sampled evenly.
const TIMELINE_POINTS: usize = 600;

/// One frame to analyse.
#[derive(Debug, Clone, Default)]
pub struct FrameInput {
    pub session_id: String,
    pub image: Vec<u8>,
    /// Milliseconds since the Unix epoch (capture time).
    pub timestamp: i64,
    pub format: String,
    pub policy: AnalysisPolicy,
    /// Sequence number within the session; 0 means "use the timestamp".
    pub frame_number: i64,
    pub priority: Priority,
    /// When the caller stops waiting for the answer (its gRPC deadline).
    pub deadline: Option<tokio::time::Instant>,
    /// The organisation the session belongs to (see [`Principal::acting_for`]).
    pub org: Option<OrgId>,
    /// The candidate's consent the frame is analysed under; none is refused.
    pub consent: Option<iv_contracts::emotion::ConsentProof>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BlinkStats {
    pub count: i64,
    /// Blinks per minute over the session so far.
    pub rate_per_minute: f32,
    pub avg_duration_ms: f32,
    /// Share of time with eyes closed, 0..1.
    pub perclos: f32,
    /// When each blink of the session began: every one counted, oldest first.
    pub timestamps: Vec<i64>,
    /// Closures longer than a blink (over 500 ms: eyes shut, or looking down): never counted as
    /// blinks, and part of PERCLOS.
    pub long_closures: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FrameResult {
    pub session_id: String,
    pub timestamp: i64,
    pub frame_number: i64,
    pub policy: AnalysisPolicy,
    pub analysis: FrameAnalysis,
    pub blinks: BlinkStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = FaceTimelinePoint)]
pub struct TimelinePoint {
    pub timestamp: i64,
    pub emotion: String,
    pub confidence: f32,
    pub face_present: bool,
    pub attention: f32,
    pub blink_count: i64,
    pub eye_contact: bool,
    /// Faces in view: more than one marks a moment with someone else in the room.
    pub face_count: i64,
}

/// A continuous stretch of frames in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = FaceSpell)]
pub struct Spell {
    pub started_at: i64,
    pub duration_ms: i64,
}

/// Spells shorter than this are glances, not absences.
pub const MIN_SPELL_MS: i64 = 1000;

/// Stretches of consecutive frames for which `inside` holds, lasting at least [`MIN_SPELL_MS`].
/// A spell lasts until the first frame outside it (or the last frame, if it never ends).
pub fn spells(frames: &[StoredFrame], inside: impl Fn(&StoredFrame) -> bool) -> Vec<Spell> {
    let mut out = Vec::new();
    let mut start: Option<i64> = None;
    for f in frames {
        match (inside(f), start) {
            (true, None) => start = Some(f.timestamp),
            (false, Some(s)) => {
                out.push(Spell {
                    started_at: s,
                    duration_ms: f.timestamp - s,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let (Some(s), Some(last)) = (start, frames.last()) {
        out.push(Spell {
            started_at: s,
            duration_ms: last.timestamp - s,
        });
    }
    out.retain(|s| s.duration_ms >= MIN_SPELL_MS);
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = FaceSessionSummary)]
pub struct SessionSummary {
    pub session_id: String,
    pub policy: AnalysisPolicy,
    pub frames_analyzed: i64,
    pub frames_with_face: i64,
    pub multi_face_frames: i64,
    pub emotion_counts: BTreeMap<String, i64>,
    pub dominant_emotion: String,
    pub mean_attention: f32,
    pub eye_contact_ratio: f32,
    pub blinks: BlinkStats,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub timeline: Vec<TimelinePoint>,
    pub face_absent_spells: Vec<Spell>,
    pub look_away_spells: Vec<Spell>,
}

/// What the service remembers of a live session between frames.
#[derive(Default)]
struct SessionState {
    scanner: Scanner,
    blinks: BlinkTracker,
    /// The session's stored policy and owner, read once from the database: both are fixed once
    /// the first frame is stored, so later frames need no round trip for them.
    stored: Option<StoredSession>,
}

/// A session's state behind its own lock: frames of one session are analysed in order (blinks
/// need the sequence), frames of different sessions in parallel.
struct SessionSlot {
    state: Arc<tokio::sync::Mutex<SessionState>>,
    last_used: Instant,
}

#[derive(Clone)]
pub struct EmotionApp {
    analyzer: Arc<dyn FrameAnalyzer>,
    pool: InferencePool,
    store: EmotionStore,
    /// Who viewed which timeline.
    audit: AuditLog,
    sessions: Arc<Mutex<HashMap<String, SessionSlot>>>,
    far: FarPasses,
}

impl EmotionApp {
    pub fn new(
        analyzer: Arc<dyn FrameAnalyzer>,
        pool: InferencePool,
        store: EmotionStore,
        far: FarPasses,
    ) -> Self {
        Self {
            analyzer,
            pool,
            audit: AuditLog::new(store.pool().clone()),
            store,
            sessions: Arc::default(),
            far,
        }
    }

    /// `Err` with the reason when this instance cannot analyse frames (models missing).
    pub fn availability(&self) -> Result<(), crate::analysis::Unavailable> {
        self.analyzer.availability()
    }

    pub async fn analyze(&self, input: FrameInput) -> Result<FrameResult, EmotionError> {
        validate_session_id(&input.session_id)?;
        let info = frame::inspect(&input.image, &input.format)?;
        if input.policy != AnalysisPolicy::Off {
            iv_contracts::consent::check(input.consent.as_ref(), input.policy)?;
        }
        let slot = self.session_state(&input.session_id);
        let mut state = slot.lock().await;
        let stored = match &state.stored {
            // An unclaimed session (from before organisations) is read again until one claims it.
            Some(stored) if stored.owner.is_some() || input.org.is_none() => stored.clone(),
            _ => {
                let stored = self
                    .store
                    .claim_session(&input.session_id, input.policy, input.org.as_ref())
                    .await?;
                state.stored = Some(stored.clone());
                stored
            }
        };
        let policy = stored.admit(&input.session_id, input.policy, input.org.as_ref())?;
        if policy == AnalysisPolicy::Off {
            return Err(EmotionError::AnalysisOff(input.session_id));
        }
        self.analyzer.availability()?;
        let (scan, far_due) = state.scanner.next_apart();
        let analyzer = self.analyzer.clone();
        let image = input.image;
        let started = Instant::now();
        let (mut analysis, decoded) = self
            .pool
            .run(input.priority, input.deadline, move || {
                let decoded =
                    tracing::info_span!("decode").in_scope(|| frame::decode(&image, info))?;
                let analysis = analyzer.analyze(&decoded, policy, scan)?;
                // Kept only for the far pass; otherwise freed here, off the async runtime.
                Ok::<_, EmotionError>((analysis, far_due.then_some(decoded)))
            })
            .await??;
        metrics::histogram!("frame_analysis_seconds").record(started.elapsed().as_secs_f64());
        state.scanner.saw(scan, &mut analysis);
        if let Some(decoded) = decoded
            && self.count_far(&slot, decoded)
        {
            state.scanner.far_started();
        }
        let observation = state.blinks.observe(input.timestamp, analysis.openness());
        if let Some(closure) = observation.closure {
            self.store
                .record_closure(&input.session_id, closure)
                .await?;
        }
        let blinks = BlinkStats {
            count: state.blinks.count(),
            rate_per_minute: state.blinks.rate_per_minute(input.timestamp),
            avg_duration_ms: state.blinks.mean_duration_ms(),
            perclos: state.blinks.perclos(),
            timestamps: state.blinks.started_at().to_vec(),
            long_closures: state.blinks.long_closures(),
        };
        drop(state);

        let frame_number = if input.frame_number > 0 {
            input.frame_number
        } else {
            input.timestamp
        };
        let emotion = analysis
            .expression
            .as_ref()
            .filter(|_| policy.allows_emotion());
        let stored = StoredFrame {
            frame_number,
            timestamp: input.timestamp,
            face_present: analysis.face.is_some(),
            face_count: i64::from(analysis.face_count),
            emotion: emotion.map(|e| e.label.clone()).unwrap_or_default(),
            confidence: emotion.map(|e| e.confidence).unwrap_or_default(),
            attention: analysis.attention,
            eye_contact: analysis.eye_contact,
            blink_count: blinks.count,
            eye_closed: observation.closed,
        };
        self.store.record(&input.session_id, &stored).await?;
        Ok(FrameResult {
            session_id: input.session_id,
            timestamp: input.timestamp,
            frame_number,
            policy,
            analysis,
            blinks,
        })
    }

    /// The session's timeline and aggregates, for its organisation's members and services; to
    /// anyone else the session does not exist.
    pub async fn summary(
        &self,
        caller: &Principal,
        session_id: &str,
    ) -> Result<SessionSummary, EmotionError> {
        validate_session_id(session_id)?;
        if caller.role == Role::Candidate {
            return Err(EmotionError::Forbidden(
                "a candidate reads their interview's status, not its analysis",
            ));
        }
        let owner = self.store.owner(session_id).await?;
        let visible = match &owner {
            Some(org) => caller.may_review(org.as_ref()),
            // Nothing analysed yet: an empty timeline, for services only.
            None => caller.role == Role::Service,
        };
        if !visible {
            return Err(EmotionError::SessionNotFound(session_id.to_string()));
        }
        let policy = self.store.policy(session_id).await?.unwrap_or_default();
        let frames = self.store.frames(session_id).await?;
        let blinks = self.store.closures(session_id).await?;
        if let Some(org) = owner.flatten().or_else(|| caller.org.clone()) {
            let record = Record {
                action: Action::TimelineViewed,
                org: &org,
                interview_id: session_id,
                detail: "",
            };
            self.audit.viewed(caller, record).await?;
        }
        Ok(summarize(session_id, policy, &frames, &blinks))
    }

    /// Erases what this service holds for the session: its stored frames, blinks and record, and
    /// its live state (face track, blink history). A frame being analysed finishes first; later
    /// ones are refused. Services erase for the organisation they name, admins for their own; a
    /// session of another organisation is answered as absent.
    pub async fn erase(
        &self,
        caller: &Principal,
        session_id: &str,
        claimed_org: &str,
    ) -> Result<Erasure, EmotionError> {
        validate_session_id(session_id)?;
        let org = caller.acting_for(claimed_org);
        match self.store.owner(session_id).await? {
            Some(Some(owner)) if org.as_ref() != Some(&owner) => {
                return Err(EmotionError::SessionNotFound(session_id.to_string()));
            }
            // Only services erase sessions this instance never saw: the interview may have
            // had no frame analysed, and its late frames must still be refused.
            None if caller.role != Role::Service => {
                return Err(EmotionError::SessionNotFound(session_id.to_string()));
            }
            _ => {}
        }
        let slot = self.session_state(session_id);
        let mut state = slot.lock().await;
        let erasure = self.store.erase(session_id).await?;
        *state = SessionState::default();
        drop(state);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session_id);
        tracing::info!(%session_id, deleted = ?erasure.deleted, "session erased");
        Ok(erasure)
    }

    /// Starts the far pass on `frame` apart from it (see [`crate::far_pass`]); its count
    /// reaches the session's state when done. `false` when it could not be started.
    fn count_far(&self, slot: &Arc<tokio::sync::Mutex<SessionState>>, frame: RgbImage) -> bool {
        let analyzer = self.analyzer.clone();
        let counted = match self.far.submit(move || analyzer.count_everyone(&frame)) {
            Ok(counted) => counted,
            Err(error) => {
                metrics::counter!("far_passes_total", "outcome" => "refused").increment(1);
                tracing::debug!(%error, "far pass not started; the next frame asks again");
                return false;
            }
        };
        let slot = slot.clone();
        tokio::spawn(async move {
            match counted.await {
                Ok(Ok(count)) => {
                    metrics::counter!("far_passes_total", "outcome" => "counted").increment(1);
                    slot.lock().await.scanner.far_counted(count);
                }
                Ok(Err(error)) => {
                    metrics::counter!("far_passes_total", "outcome" => "failed").increment(1);
                    tracing::warn!(error = %iv_platform::errors::Chain(&error), "far pass failed");
                }
                Err(_) => {
                    metrics::counter!("far_passes_total", "outcome" => "failed").increment(1);
                }
            }
        });
        true
    }

    fn session_state(&self, session_id: &str) -> Arc<tokio::sync::Mutex<SessionState>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
        let slot = sessions
            .entry(session_id.to_string())
            .or_insert_with(|| SessionSlot {
                state: Arc::new(tokio::sync::Mutex::new(SessionState {
                    scanner: Scanner::for_session(session_id),
                    ..SessionState::default()
                })),
                last_used: Instant::now(),
            });
        slot.last_used = Instant::now();
        slot.state.clone()
    }
}

pub fn validate_session_id(id: &str) -> Result<(), EmotionError> {
    if id.trim().is_empty() {
        return Err(EmotionError::InvalidInput("session_id is required".into()));
    }
    if id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(EmotionError::InvalidInput(
            "session_id must be up to 128 letters, digits, '-' or '_'".into(),
        ));
    }
    Ok(())
}

/// Blink figures of a session from what was stored: rate over the span of frames with a face,
/// PERCLOS as the share of face frames with the eyes closed.
fn summarize_blinks(frames: &[StoredFrame], closures: &[Closure]) -> BlinkStats {
    let blinks: Vec<&Closure> = closures.iter().filter(|c| c.is_blink()).collect();
    let with_face: Vec<&StoredFrame> = frames.iter().filter(|f| f.face_present).collect();
    let span_ms = match (with_face.first(), with_face.last()) {
        (Some(a), Some(b)) => (b.timestamp - a.timestamp).max(0),
        _ => 0,
    };
    let count = blinks.len() as i64;
    let closed = with_face.iter().filter(|f| f.eye_closed).count();
    BlinkStats {
        count,
        rate_per_minute: if span_ms >= 1000 {
            count as f32 / (span_ms as f32 / 60_000.0)
        } else {
            0.0
        },
        avg_duration_ms: if count > 0 {
            blinks.iter().map(|b| b.duration_ms).sum::<i64>() as f32 / count as f32
        } else {
            0.0
        },
        perclos: if with_face.is_empty() {
            0.0
        } else {
            closed as f32 / with_face.len() as f32
        },
        timestamps: blinks.iter().map(|b| b.started_at).collect(),
        long_closures: closures.iter().filter(|c| c.is_long()).count() as i64,
    }
}

/// Aggregates stored frames into the session's summary.
pub fn summarize(
    session_id: &str,
    policy: AnalysisPolicy,
    frames: &[StoredFrame],
    closures: &[Closure],
) -> SessionSummary {
    let with_face: Vec<&StoredFrame> = frames.iter().filter(|f| f.face_present).collect();
    let mut emotion_counts = BTreeMap::new();
    for f in with_face.iter().filter(|f| !f.emotion.is_empty()) {
        *emotion_counts.entry(f.emotion.clone()).or_insert(0i64) += 1;
    }
    let dominant_emotion = emotion_counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(e, _)| e.clone())
        .unwrap_or_default();
    let mean = |values: &mut dyn Iterator<Item = f32>, n: usize| {
        if n == 0 {
            0.0
        } else {
            values.sum::<f32>() / n as f32
        }
    };
    let mean_attention = mean(&mut frames.iter().map(|f| f.attention), frames.len());
    let eye_contact_ratio = mean(
        &mut frames.iter().map(|f| f32::from(u8::from(f.eye_contact))),
        frames.len(),
    );
    let step = frames.len().div_ceil(TIMELINE_POINTS).max(1);
    let timeline = frames
        .iter()
        .step_by(step)
        .map(|f| TimelinePoint {
            timestamp: f.timestamp,
            emotion: f.emotion.clone(),
            confidence: f.confidence,
            face_present: f.face_present,
            attention: f.attention,
            blink_count: f.blink_count,
            eye_contact: f.eye_contact,
            face_count: f.face_count,
        })
        .collect();
    SessionSummary {
        session_id: session_id.to_string(),
        policy,
        frames_analyzed: frames.len() as i64,
        frames_with_face: with_face.len() as i64,
        multi_face_frames: frames.iter().filter(|f| f.face_count > 1).count() as i64,
        emotion_counts,
        dominant_emotion,
        mean_attention,
        eye_contact_ratio,
        blinks: summarize_blinks(frames, closures),
        first_timestamp: frames.first().map(|f| f.timestamp).unwrap_or_default(),
        last_timestamp: frames.last().map(|f| f.timestamp).unwrap_or_default(),
        timeline,
        face_absent_spells: spells(frames, |f| !f.face_present),
        look_away_spells: spells(frames, |f| f.face_present && !f.eye_contact),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t: i64, face: bool, contact: bool) -> StoredFrame {
        StoredFrame {
            frame_number: t,
            timestamp: t,
            face_present: face,
            face_count: i64::from(face),
            emotion: String::new(),
            confidence: 0.0,
            attention: 0.0,
            eye_contact: contact,
            blink_count: 0,
            eye_closed: false,
        }
    }

    #[test]
    fn spells_of_a_second_or_more_are_counted_with_their_durations() {
        // 100 ms frames: face gone 1.0-2.5 s, a 300 ms glance away at 2.8 s, looking away from 3.5 s
        // to the end (4.9 s).
        let frames: Vec<StoredFrame> = (0..50)
            .map(|i| {
                frame(
                    i * 100,
                    !(10..25).contains(&i),
                    !(28..31).contains(&i) && i < 35,
                )
            })
            .collect();
        assert_eq!(
            spells(&frames, |f| !f.face_present),
            vec![Spell {
                started_at: 1000,
                duration_ms: 1500
            }]
        );
        assert_eq!(
            spells(&frames, |f| f.face_present && !f.eye_contact),
            vec![Spell {
                started_at: 3500,
                duration_ms: 1400
            }],
            "the glance is too short to count"
        );
    }
}
