//! Behaviour of the vision pipeline on real media (fetched by scripts/fetch-assets.sh).

use std::path::PathBuf;

use emotion_service::analysis::{FaceBox, FrameAnalysis, FrameAnalyzer};
use emotion_service::blink::BlinkTracker;
use emotion_service::vision::Pipeline;
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
/// frame, re-detecting every tenth frame.
fn play(clip: &str, policy: AnalysisPolicy) -> Vec<FrameAnalysis> {
    let p = pipeline();
    let mut last: Option<FaceBox> = None;
    (0..)
        .map(|i| {
            assets()
                .join("media")
                .join(clip)
                .join(format!("frame_{i:03}.jpg"))
        })
        .take_while(|path| path.exists())
        .enumerate()
        .map(|(i, path)| {
            let frame = image::open(&path).unwrap().to_rgb8();
            let hint = last.filter(|_| i % 10 != 0);
            let a = p.analyze(&frame, policy, hint).unwrap();
            last = a.face;
            a
        })
        .collect()
}

#[test]
fn the_blink_in_single_face_is_found_at_frames_26_to_28_and_nowhere_else() {
    let frames = play("single_face", AnalysisPolicy::Full);
    assert_eq!(frames.len(), 72);
    assert!(
        frames.iter().all(|f| f.face.is_some()),
        "a face in every frame"
    );
    let ratios: Vec<f32> = frames
        .iter()
        .map(|f| f.eye_openness.map(|(l, r)| (l + r) / 2.0).unwrap())
        .collect();
    let mut tracker = BlinkTracker::default();
    let blinks: Vec<_> = ratios
        .iter()
        .enumerate()
        .filter_map(|(i, r)| tracker.observe(i as i64 * 33, Some(*r)).blink)
        .collect();
    assert_eq!(
        blinks.len(),
        1,
        "one blink; eye aspect ratios: {ratios:.2?}"
    );
    let start_frame = blinks[0].started_at / 33;
    assert!(
        (25..=28).contains(&start_frame),
        "blink starts at frame {start_frame}: {ratios:.2?}"
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

#[test]
fn several_faces_are_counted_in_the_group_photo() {
    let a = pipeline()
        .analyze(&image("multi_face.jpg"), AnalysisPolicy::Full, None)
        .unwrap();
    assert!(a.face_count > 1, "{} faces", a.face_count);
}

#[test]
fn a_frontal_webcam_face_has_landmarks_pose_and_eye_contact() {
    let a = pipeline()
        .analyze(
            &image("single_face/frame_000.jpg"),
            AnalysisPolicy::Full,
            None,
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

/// The labelled stills: surprise and happiness are read correctly. The anger and disgust stills
/// are read as "sad" by the mini-Xception model whatever the crop (a limit of a 66%-accurate
/// FER2013 model, documented in the README rather than tuned around); this test pins both facts.
#[test]
fn the_labelled_stills_get_their_expression_except_the_documented_misses() {
    let p = pipeline();
    let label = |file: &str| {
        p.analyze(&image(file), AnalysisPolicy::Full, None)
            .unwrap()
            .expression
            .unwrap()
    };
    assert_eq!(label("0-f1-su-ph.jpg").label, "surprised");
    assert_eq!(label("0-f15-hao-ph.jpg").label, "happy");
    let anger = label("15-f13-anc-ph.jpg");
    let disgust = label("45-m7-di-ph.jpg");
    assert_eq!(
        (anger.label.as_str(), disgust.label.as_str()),
        ("sad", "sad"),
        "if this changes, update the README"
    );
    let angry_p = anger
        .probabilities
        .iter()
        .find(|(k, _)| k == "angry")
        .unwrap()
        .1;
    assert!(
        angry_p > 0.05,
        "anger is at least a runner-up: {:?}",
        anger.probabilities
    );
}

#[test]
fn the_engagement_policy_never_runs_the_expression_model() {
    let a = pipeline()
        .analyze(&image("0-f15-hao-ph.jpg"), AnalysisPolicy::Engagement, None)
        .unwrap();
    assert!(a.face.is_some());
    assert!(a.expression.is_none());
}
