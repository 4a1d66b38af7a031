//! Checks the face signals against labelled media (`emotion-service/evaluation/signals.json`,
//! how it was labelled in the README beside it): the service's pipeline runs over each piece,
//! as the service would, and the command prints precision and recall per signal, with every
//! miss named. Not a test: a report to read. `--near-only` counts faces without the far pass,
//! as the service did before it, for a before-and-after.
//!
//! Head pose and eye contact have no people-made labels: they are compared frame by frame with
//! an independent reference (MediaPipe's own face mesh in its own runtime,
//! `evaluation/reference.py`), which `scripts/signal-reference.sh` runs when its output is missing.
//!
//! usage: evaluate-signals [--labels FILE] [--near-only] [--frames CLIP]
//!
//! `--frames CLIP` prints, for a clip compared with the reference, every frame's figures from
//! both sides, to see where they disagree.

use std::path::{Path, PathBuf};

use anyhow::Context;
use emotion_service::analysis::{FrameAnalysis, FrameAnalyzer, Scan, Scanner, UNCERTAIN};
use emotion_service::blink::{BlinkTracker, Closure};
use emotion_service::vision::{Pipeline, scaled};
use image::RgbImage;
use iv_contracts::policy::AnalysisPolicy;
use serde::Deserialize;

#[derive(Deserialize)]
struct Labels {
    faces: Vec<People>,
    blinks: Vec<Blinks>,
    expressions: Vec<Expression>,
    /// Stills whose head pose their dataset gives.
    poses: Vec<Pose>,
    /// Clips compared frame by frame with the reference runtime.
    reference: Vec<String>,
}

/// A still and the yaw its dataset photographed it at (negative: turned towards the image's
/// left).
#[derive(Deserialize)]
struct Pose {
    media: String,
    yaw: f32,
}

/// How many people a photo (scaled to each width) or every frame of a clip shows.
#[derive(Deserialize)]
struct People {
    media: String,
    people: u32,
    /// Widths to scale a photo to; empty for a clip (a folder of frames).
    widths: Vec<u32>,
    /// For a clip that cuts: from each frame given on, this many people instead.
    #[serde(default)]
    cuts: Vec<(usize, u32)>,
}

impl People {
    /// The people in frame `i` of a clip.
    fn at(&self, i: usize) -> u32 {
        self.cuts
            .iter()
            .rev()
            .find(|(from, _)| i >= *from)
            .map_or(self.people, |c| c.1)
    }
}

#[derive(Deserialize)]
struct Blinks {
    clip: String,
    fps: u32,
    /// Frames of the clip held for longer, as `(first, last, times)`: each of them is played
    /// `times` times in a row (a long closure made of the clip's own closed frames).
    #[serde(default)]
    hold: Vec<(usize, usize, usize)>,
    /// First and last closed frame of each blink, in the frames as played.
    blinks: Vec<(usize, usize)>,
    long_closures: Vec<(usize, usize)>,
    /// Closures a person cannot call either way (lids half down, or closed for exactly the
    /// longest blink): whatever is found there counts neither as found nor as false.
    #[serde(default)]
    unclear: Vec<(usize, usize)>,
}

impl Blinks {
    /// The clip's frames in the order they are played.
    fn frames(&self) -> Vec<PathBuf> {
        frames(&self.clip)
            .into_iter()
            .enumerate()
            .flat_map(|(i, path)| {
                let times = self
                    .hold
                    .iter()
                    .find(|(a, b, _)| (*a..=*b).contains(&i))
                    .map_or(1, |h| h.2);
                std::iter::repeat_n(path, times)
            })
            .collect()
    }

    fn name(&self) -> String {
        if self.hold.is_empty() {
            self.clip.clone()
        } else {
            format!("{} (held)", self.clip)
        }
    }
}

#[derive(Deserialize)]
struct Expression {
    media: String,
    label: String,
}

/// True and false positives and misses of one signal.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    hits: u32,
    false_alarms: u32,
    misses: u32,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.hits += o.hits;
        self.false_alarms += o.false_alarms;
        self.misses += o.misses;
    }

    fn ratio(a: u32, b: u32) -> String {
        if b == 0 {
            "-".into()
        } else {
            format!("{:.2}", a as f32 / b as f32)
        }
    }

    fn row(&self, signal: &str, cases: usize) {
        println!(
            "{signal:<42} {cases:>5} {:>5} {:>5} {:>5} {:>9} {:>7}",
            self.hits,
            self.false_alarms,
            self.misses,
            Self::ratio(self.hits, self.hits + self.false_alarms),
            Self::ratio(self.hits, self.hits + self.misses),
        );
    }
}

fn media() -> PathBuf {
    iv_platform::assets::media_dir()
}

fn open(path: &Path) -> anyhow::Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("{} (run scripts/fetch-assets.sh)", path.display()))?
        .to_rgb8())
}

/// A clip's frames, as the fetch script extracted them.
fn frames(clip: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| media().join(clip).join(format!("frame_{i:03}.jpg")))
        .take_while(|p| p.exists())
        .collect()
}

/// Plays frames through the pipeline as the service scans a session.
fn play(p: &Pipeline, paths: &[PathBuf], near_only: bool) -> anyhow::Result<Vec<FrameAnalysis>> {
    let mut scanner = Scanner::default();
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let scan = match scanner.next() {
            Scan::Everyone if near_only => Scan::Near,
            scan => scan,
        };
        let mut a = p.analyze(&open(path)?, AnalysisPolicy::Full, scan)?;
        scanner.saw(scan, &mut a);
        out.push(a);
    }
    Ok(out)
}

fn count(counted: u32, people: u32) -> Tally {
    Tally {
        hits: counted.min(people),
        false_alarms: counted.saturating_sub(people),
        misses: people.saturating_sub(counted),
    }
}

/// People counted on the photos, and on every frame of the clips: (tally, cases) of each.
fn faces(p: &Pipeline, labels: &[People], near_only: bool) -> anyhow::Result<[(Tally, usize); 2]> {
    let (mut photos, mut clips) = ((Tally::default(), 0), (Tally::default(), 0));
    for l in labels {
        if l.widths.is_empty() {
            let played = play(p, &frames(&l.media), near_only)?;
            let mut t = Tally::default();
            let mut wrong = Vec::new();
            for (i, a) in played.iter().enumerate() {
                t.add(count(a.face_count, l.at(i)));
                if a.face_count != l.at(i) {
                    wrong.push((i, a.face_count, l.at(i)));
                }
            }
            if !wrong.is_empty() {
                println!(
                    "  faces: {} ({} frames): {} false, {} missed; (frame, counted, people): {wrong:?}",
                    l.media,
                    played.len(),
                    t.false_alarms,
                    t.misses
                );
            }
            clips.0.add(t);
            clips.1 += played.len();
            continue;
        }
        let photo = open(&media().join(&l.media))?;
        for &width in &l.widths {
            let frame = scaled(&photo, width);
            let scan = if near_only {
                Scan::Near
            } else {
                Scan::Everyone
            };
            let a = p.analyze(&frame, AnalysisPolicy::Engagement, scan)?;
            let t = count(a.face_count, l.people);
            if a.face_count != l.people {
                println!(
                    "  faces: {} at {width} px: {} counted of {} people",
                    l.media, a.face_count, l.people
                );
            }
            photos.0.add(t);
            photos.1 += 1;
        }
    }
    Ok([photos, clips])
}

/// Blinks (and long closures) found against the labelled ones: a closure matches a label when
/// it starts within two frames of the labelled closure (at the clip's own rate).
fn blinks(
    p: &Pipeline,
    label: &Blinks,
    all: &[PathBuf],
    every: usize,
) -> anyhow::Result<(Tally, Tally)> {
    let paths: Vec<PathBuf> = all.iter().step_by(every).cloned().collect();
    let played = play(p, &paths, false)?;
    let frame_ms = 1000.0 / label.fps as f64;
    let mut tracker = BlinkTracker::default();
    let (mut found_blinks, mut found_long) = (Vec::new(), Vec::new());
    for (i, a) in played.iter().enumerate() {
        let t = ((i * every) as f64 * frame_ms) as i64;
        let observed = tracker.observe(t, a.openness());
        // A closure the clip ends in counts for what it has been so far.
        let closure = observed.closure.or_else(|| {
            (i + 1 == played.len())
                .then(|| tracker.closed_since())
                .flatten()
                .map(|since| Closure {
                    started_at: since,
                    duration_ms: t - since,
                })
        });
        if let Some(c) = closure {
            let start = (c.started_at as f64 / frame_ms).round() as usize;
            if c.is_blink() {
                found_blinks.push(start);
            } else if c.is_long() {
                found_long.push(start);
            }
        }
    }
    let tally = |found: &[usize], labelled: &[(usize, usize)], what: &str| {
        let matches = |start: usize, (a, b): (usize, usize)| {
            start + 2 >= a && start <= b + 2 + every.saturating_sub(1)
        };
        let hits = labelled
            .iter()
            .filter(|l| found.iter().any(|&s| matches(s, **l)))
            .count() as u32;
        let false_alarms = found
            .iter()
            .filter(|&&s| {
                !labelled
                    .iter()
                    .chain(&label.unclear)
                    .any(|l| matches(s, *l))
            })
            .count() as u32;
        let t = Tally {
            hits,
            false_alarms,
            misses: labelled.len() as u32 - hits,
        };
        if t.false_alarms + t.misses > 0 {
            println!(
                "  {what}: {} at {} frames/s: found starting at frames {found:?}, labelled {labelled:?}",
                label.name(),
                label.fps as usize / every
            );
        }
        t
    };
    Ok((
        tally(&found_blinks, &label.blinks, "blinks"),
        tally(&found_long, &label.long_closures, "long closures"),
    ))
}

/// Yaw on the stills against their dataset's angle: the service's and the reference's errors.
fn poses(p: &Pipeline, labels: &[Pose]) -> anyhow::Result<()> {
    let seen = reference("stills")?;
    println!();
    println!("yaw on stills against the angle their dataset gives, in degrees");
    println!(
        "{:<24} {:>7} {:>8} {:>9}",
        "still", "label", "service", "reference"
    );
    let (mut ours_err, mut theirs_err) = (Vec::new(), Vec::new());
    for l in labels {
        let theirs = seen
            .iter()
            .find(|s| s.frame == l.media)
            .with_context(|| format!("{} is not in the reference's stills", l.media))?;
        let a = p.analyze(
            &open(&media().join(&l.media))?,
            AnalysisPolicy::Engagement,
            Scan::Everyone,
        )?;
        let ours = a.pose.map_or(f32::NAN, |p| p.yaw);
        let theirs = theirs.yaw.unwrap_or(f32::NAN);
        println!("{:<24} {:>7.0} {ours:>8.1} {theirs:>9.1}", l.media, l.yaw);
        ours_err.push(ours - l.yaw);
        theirs_err.push(theirs - l.yaw);
    }
    println!(
        "{:<24} {:>7} {:>8.1} {:>9.1}",
        "mean |error|",
        "",
        Agreement::mean_abs(&ours_err),
        Agreement::mean_abs(&theirs_err)
    );
    Ok(())
}

/// One frame as the reference runtime saw it (`evaluation/reference.py`).
#[derive(Deserialize)]
struct Seen {
    /// The image's file name.
    frame: String,
    face: bool,
    yaw: Option<f32>,
    pitch: Option<f32>,
    gaze: Option<f32>,
    eye_contact: Option<bool>,
    /// Eye aspect ratio from the mesh's refined eyelids.
    ear: Option<f32>,
}

/// What `reference.py` writes; its `REVISION` must be this, else the cache is from an older script
/// (whose figures mean something else) and the reference runs again.
const REFERENCE_REVISION: u32 = 2;

#[derive(Deserialize)]
struct Reference {
    /// Absent in what the first revision wrote.
    #[serde(default)]
    revision: u32,
    frames: Vec<Seen>,
}

impl Reference {
    fn read(path: &Path) -> anyhow::Result<Self> {
        serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))
    }
}

/// The reference's frames of a clip, running the reference first when they are missing or were
/// written by another revision of it.
fn reference(clip: &str) -> anyhow::Result<Vec<Seen>> {
    let path = media().join("reference").join(format!("{clip}.json"));
    if path.exists() {
        let r = Reference::read(&path)?;
        if r.revision == REFERENCE_REVISION {
            return Ok(r.frames);
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/signal-reference.sh");
    let status = std::process::Command::new(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(status.success(), "{} failed ({status})", script.display());
    let r = Reference::read(&path)?;
    anyhow::ensure!(
        r.revision == REFERENCE_REVISION,
        "{} is revision {}, this command reads {REFERENCE_REVISION}",
        path.display(),
        r.revision
    );
    Ok(r.frames)
}

/// How the service's head pose, gaze and eye contact agree with the reference's on one clip.
#[derive(Debug, Default)]
struct Agreement {
    frames: usize,
    /// Frames where both found the face.
    both: usize,
    /// Frames where only one of them found a face.
    face_disagrees: usize,
    yaw_errors: Vec<f32>,
    pitch_errors: Vec<f32>,
    gaze_errors: Vec<f32>,
    /// Eye contact as (service, reference) on frames where both found the face.
    contact: Vec<(bool, bool)>,
    /// Eye aspect ratio as (service, reference): different eyelid points of different models,
    /// so their levels differ; whether they rise and fall together is what compares.
    openness: Vec<(f32, f32)>,
}

impl Agreement {
    fn add(&mut self, o: Agreement) {
        self.frames += o.frames;
        self.both += o.both;
        self.face_disagrees += o.face_disagrees;
        self.yaw_errors.extend(o.yaw_errors);
        self.pitch_errors.extend(o.pitch_errors);
        self.gaze_errors.extend(o.gaze_errors);
        self.contact.extend(o.contact);
        self.openness.extend(o.openness);
    }

    fn mean_abs(v: &[f32]) -> f32 {
        v.iter().map(|e| e.abs()).sum::<f32>() / v.len().max(1) as f32
    }

    fn mean(v: &[f32]) -> f32 {
        v.iter().sum::<f32>() / v.len().max(1) as f32
    }

    /// Pearson's correlation of the pairs.
    fn correlation(pairs: &[(f32, f32)]) -> f32 {
        let n = pairs.len().max(1) as f32;
        let (ma, mb) = pairs
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (x, y) in pairs {
            ab += (x - ma) * (y - mb);
            aa += (x - ma) * (x - ma);
            bb += (y - mb) * (y - mb);
        }
        ab / (aa * bb).sqrt().max(f32::EPSILON)
    }

    fn row(&self, name: &str) {
        let agree = self.contact.iter().filter(|(a, b)| a == b).count();
        // The reference's eye contact as the truth: the service's precision and recall.
        let both = self.contact.iter().filter(|(a, b)| *a && *b).count() as u32;
        let said = self.contact.iter().filter(|(a, _)| *a).count() as u32;
        let there = self.contact.iter().filter(|(_, b)| *b).count() as u32;
        println!(
            "{name:<24} {:>6} {:>5} {:>5} {:>6.1} {:>+6.1} {:>6.1} {:>+6.1} {:>6.3} {:>7.1}% {:>5} {:>5} {:>6.2}",
            self.frames,
            self.both,
            self.face_disagrees,
            Self::mean_abs(&self.yaw_errors),
            Self::mean(&self.yaw_errors),
            Self::mean_abs(&self.pitch_errors),
            Self::mean(&self.pitch_errors),
            Self::mean_abs(&self.gaze_errors),
            100.0 * agree as f32 / self.contact.len().max(1) as f32,
            Tally::ratio(both, said),
            Tally::ratio(both, there),
            Self::correlation(&self.openness),
        );
    }
}

/// The service's pipeline and the reference over every frame of a clip; `detail` prints each
/// frame's figures side by side.
fn against_reference(p: &Pipeline, clip: &str, detail: bool) -> anyhow::Result<Agreement> {
    let seen = reference(clip)?;
    let played = play(p, &frames(clip), false)?;
    anyhow::ensure!(
        seen.len() == played.len(),
        "{clip}: the reference has {} frames, the clip {}",
        seen.len(),
        played.len()
    );
    let mut a = Agreement {
        frames: played.len(),
        ..Default::default()
    };
    if detail {
        println!(
            "{clip}: frame, yaw, pitch, gaze, eye contact and eye aspect ratio of the service \
             | the reference"
        );
    }
    for (i, (ours, theirs)) in played.iter().zip(&seen).enumerate() {
        if detail {
            let pose = ours.pose.unwrap_or_default();
            println!(
                "  {i:>3}  {:>6.1} {:>6.1} {:>5.2} {:<5} {:>5.2} | {:>6.1} {:>6.1} {:>5.2} {:<5} {:>5.2}",
                pose.yaw,
                pose.pitch,
                ours.gaze.unwrap_or(f32::NAN),
                ours.eye_contact,
                ours.openness().unwrap_or(f32::NAN),
                theirs.yaw.unwrap_or(f32::NAN),
                theirs.pitch.unwrap_or(f32::NAN),
                theirs.gaze.unwrap_or(f32::NAN),
                theirs.eye_contact.unwrap_or(false),
                theirs.ear.unwrap_or(f32::NAN),
            );
        }
        if ours.face.is_some() != theirs.face {
            a.face_disagrees += 1;
        }
        let (Some(pose), Some(yaw), Some(pitch)) = (ours.pose, theirs.yaw, theirs.pitch) else {
            continue;
        };
        a.both += 1;
        a.yaw_errors.push(pose.yaw - yaw);
        a.pitch_errors.push(pose.pitch - pitch);
        if let (Some(g), Some(h)) = (ours.gaze, theirs.gaze) {
            a.gaze_errors.push(g - h);
        }
        a.contact
            .push((ours.eye_contact, theirs.eye_contact.unwrap_or(false)));
        if let (Some(open), Some(ear)) = (ours.openness(), theirs.ear) {
            a.openness.push((open, ear));
        }
    }
    Ok(a)
}

/// Expressions: a confident right label is a hit, a confident wrong one a false alarm, and
/// "uncertain" a miss that claims nothing.
fn expressions(p: &Pipeline, labels: &[Expression]) -> anyhow::Result<Tally> {
    let mut t = Tally::default();
    for l in labels {
        let a = p.analyze(
            &open(&media().join(&l.media))?,
            AnalysisPolicy::Full,
            Scan::Everyone,
        )?;
        let (read, confidence) = a
            .expression
            .map(|e| (e.label, e.confidence))
            .unwrap_or_else(|| ("no face".into(), 0.0));
        if read == l.label {
            t.hits += 1;
        } else {
            if read == UNCERTAIN || read == "no face" {
                t.misses += 1;
            } else {
                t.false_alarms += 1;
                t.misses += 1;
            }
            println!(
                "  expression: {} is {}, read as {read} ({confidence:.2})",
                l.media, l.label
            );
        }
    }
    Ok(t)
}

/// The word after `flag` on the command line, if the flag is there.
fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = value_of(&args, "--labels")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("evaluation/signals.json")
        });
    let near_only = args.iter().any(|a| a == "--near-only");
    let detail = value_of(&args, "--frames").cloned();
    let labels: Labels = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let p = Pipeline::load(&iv_platform::assets::models_dir())
        .context("loading the face models (run scripts/fetch-assets.sh)")?;

    println!(
        "face signals against {} ({}); misses first",
        path.display(),
        if near_only {
            "short-range detector only"
        } else {
            "as served"
        }
    );
    let [photos, clips] = faces(&p, &labels.faces, near_only)?;
    let mut rows = vec![
        ("faces on photos (people)".to_string(), photos.0, photos.1),
        (
            "faces on clip frames (people)".to_string(),
            clips.0,
            clips.1,
        ),
    ];
    // Over all clips, at each clip's own rate and at about 5 frames/s (what the product sends).
    let (mut native, mut sent, mut minutes) = (Tally::default(), Tally::default(), 0.0);
    for label in &labels.blinks {
        let frames = label.frames();
        minutes += frames.len() as f32 / label.fps as f32 / 60.0;
        for every in [1, (label.fps / 5).max(1) as usize] {
            let (b, l) = blinks(&p, label, &frames, every)?;
            let rate = label.fps as usize / every;
            if every == 1 {
                native.add(b);
            } else {
                sent.add(b);
            }
            rows.push((format!("blinks, {} at {rate}/s", label.name()), b, 1));
            rows.push((format!("long closures, {} at {rate}/s", label.name()), l, 1));
        }
    }
    let blink_clips = labels.blinks.len();
    rows.push((
        "blinks, all clips at their own rate".into(),
        native,
        blink_clips,
    ));
    rows.push(("blinks, all clips at ~5/s".into(), sent, blink_clips));
    let e = expressions(&p, &labels.expressions)?;
    rows.push((
        "expressions (labelled stills)".into(),
        e,
        labels.expressions.len(),
    ));
    println!();
    println!(
        "{:<42} {:>5} {:>5} {:>5} {:>5} {:>9} {:>7}",
        "signal", "cases", "hit", "false", "miss", "precision", "recall"
    );
    for (signal, tally, cases) in rows {
        tally.row(&signal, cases);
    }
    println!(
        "false blinks per minute of video ({minutes:.1} min): {:.2} at their own rate, {:.2} at ~5/s",
        native.false_alarms as f32 / minutes,
        sent.false_alarms as f32 / minutes
    );

    poses(&p, &labels.poses)?;
    println!();
    println!(
        "head pose, gaze and eye contact against the reference runtime (MediaPipe's face mesh); \
         errors are the service's minus the reference's, in degrees (gaze in eye widths); \
         eyes r: how the two eye aspect ratios rise and fall together (Pearson)"
    );
    println!(
        "{:<24} {:>6} {:>5} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8} {:>5} {:>5} {:>6}",
        "clip",
        "frames",
        "both",
        "face≠",
        "|yaw|",
        "yaw",
        "|pit|",
        "pitch",
        "|gaze|",
        "contact=",
        "prec",
        "rec",
        "eyes r"
    );
    let mut all = Agreement::default();
    for clip in &labels.reference {
        let a = against_reference(&p, clip, detail.as_deref() == Some(clip.as_str()))?;
        a.row(clip);
        all.add(a);
    }
    all.row("all");
    Ok(())
}
