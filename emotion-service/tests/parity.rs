//! Parity: each converted model, run by our candle executor, gives what its original runtime gave
//! on the same real frames (fixture made by scripts/models/reference.py): LiteRT for the MediaPipe
//! models, Keras for the float expression model the service runs. The frames: three of the
//! single-face clip, one without a face, and the group photo.

use std::path::PathBuf;

use emotion_service::vision::crop::{Range, Region, Sampling, sample};
use emotion_service::vision::graph::Graph;
use serde_json::Value;

/// Logits of the detector: float32 against float32 in a different summation order (measured:
/// about 1e-6).
const SCORE_TOLERANCE: f32 = 1e-4;
/// Box and keypoint offsets, in pixels of the 128-pixel input.
const BOX_TOLERANCE_PX: f32 = 2e-2;
/// Class probabilities of the expression model (measured: under 1e-6 against Keras).
const EXPRESSION_TOLERANCE: f32 = 1e-5;

fn assets() -> PathBuf {
    iv_platform::assets::dir()
}

fn cases(model: &str) -> Vec<Value> {
    let text = include_str!("fixtures/reference.json");
    let all: Value = serde_json::from_str(text).unwrap();
    let cases: Vec<Value> = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["model"] == model)
        .cloned()
        .collect();
    assert!(
        cases.len() >= 4,
        "the fixture has {} cases of {model}; regenerate it with scripts/models/reference.py",
        cases.len()
    );
    cases
}

/// Runs `model` on the fixture case's input and returns its outputs, flattened.
fn run(graph: &Graph, case: &Value) -> Vec<Vec<f32>> {
    let frame = assets().join("media").join(case["frame"].as_str().unwrap());
    let image = image::open(&frame)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-assets.sh)", frame.display()))
        .to_rgb8();
    let b: Vec<f32> = case["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let range = if case["range"][0] == -1 {
        Range::SIGNED
    } else {
        Range::UNIT
    };
    let input = sample(
        &image,
        Region {
            x: b[0],
            y: b[1],
            width: b[2],
            height: b[3],
        },
        case["size"].as_u64().unwrap() as usize,
        case["flip"] == true,
        case["gray"] == true,
        Sampling::Nearest,
        range,
    )
    .unwrap();
    graph
        .run(&input)
        .unwrap()
        .iter()
        .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn load(name: &str) -> Graph {
    Graph::load(&assets().join("models"), name)
        .expect("converted models (run scripts/fetch-assets.sh)")
}

/// Every anchor LiteRT scores above a low threshold is compared, score and box; and no anchor
/// scores high on our side that LiteRT left low.
#[test]
fn blazeface_matches_litert_on_every_anchor_with_a_score() {
    blazeface_matches_litert("face_detection_short_range");
}

/// The same for the far pass's back-camera model (256x256).
#[test]
fn the_back_camera_blazeface_matches_litert_on_every_anchor_with_a_score() {
    blazeface_matches_litert("face_detection_back");
}

fn blazeface_matches_litert(model: &str) {
    let g = load(model);
    let mut compared = 0;
    for case in cases(model) {
        let out = run(&g, &case);
        let (regressors, scores) = (&out[0], &out[1]);
        let frame = case["frame"].as_str().unwrap();
        let top: Vec<usize> = case["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as usize)
            .collect();
        for (k, &i) in top.iter().enumerate() {
            let want_score = case["scores"][k].as_f64().unwrap() as f32;
            assert!(
                (scores[i] - want_score).abs() < SCORE_TOLERANCE,
                "{frame} anchor {i}: {} vs {want_score}",
                scores[i]
            );
            let d = max_diff(
                &regressors[i * 16..(i + 1) * 16],
                &floats(&case["regressors"][k]),
            );
            assert!(
                d < BOX_TOLERANCE_PX,
                "{frame} anchor {i}: regressors differ by {d} px"
            );
            compared += 1;
        }
        let low = case["low_score"].as_f64().unwrap() as f32;
        let extra: Vec<usize> = (0..scores.len())
            .filter(|i| scores[*i] > low + 0.5 && !top.contains(i))
            .collect();
        assert!(
            extra.is_empty(),
            "{frame}: anchors scored only by us: {extra:?}"
        );
        let max = scores.iter().copied().fold(f32::MIN, f32::max);
        let want_max = case["max_score"].as_f64().unwrap() as f32;
        assert!(
            (max - want_max).abs() < SCORE_TOLERANCE,
            "{frame}: best {max} vs {want_max}"
        );
    }
    assert!(compared >= 20, "only {compared} anchors compared");
}

#[test]
fn the_face_mesh_matches_litert() {
    let g = load("face_landmark");
    for case in cases("face_landmark") {
        let out = run(&g, &case);
        let d = max_diff(&out[0], &floats(&case["outputs"]["conv2d_20"]));
        assert!(
            d < 2e-2,
            "{}: landmarks differ by {d} px of 192",
            case["frame"]
        );
        let flag = max_diff(&out[1], &floats(&case["outputs"]["conv2d_30"]));
        assert!(flag < 1e-2, "face flag differs by {flag}");
    }
}

#[test]
fn the_iris_model_matches_litert_for_both_eyes() {
    let g = load("iris_landmark");
    for case in cases("iris_landmark") {
        let out = run(&g, &case);
        let contour = max_diff(
            &out[0],
            &floats(&case["outputs"]["output_eyes_contours_and_brows"]),
        );
        let iris = max_diff(&out[1], &floats(&case["outputs"]["output_iris"]));
        assert!(
            contour < 2e-2 && iris < 2e-2,
            "{} {}: {contour} {iris} px of 64",
            case["frame"],
            case["eye"]
        );
    }
}

/// The float model the service runs against the same model in Keras.
#[test]
fn the_expression_model_matches_keras() {
    let g = load("fer_emotion");
    for case in cases("fer_emotion") {
        let out = run(&g, &case);
        let want = floats(&case["outputs"]["predictions"]);
        let d = max_diff(&out[0], &want);
        assert!(
            d < EXPRESSION_TOLERANCE,
            "{}: {:?} vs {want:?}",
            case["frame"],
            out[0]
        );
    }
}
