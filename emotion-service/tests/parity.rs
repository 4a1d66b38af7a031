//! Parity: each converted model, run by our candle executor, gives what its original runtime gave
//! (LiteRT; fixture made by scripts/models/reference.py) on the same real frames.

use std::path::PathBuf;

use emotion_service::vision::crop::{Range, Region, Sampling, sample};
use emotion_service::vision::graph::Graph;
use serde_json::Value;

fn assets() -> PathBuf {
    iv_platform::assets::dir()
}

fn cases(model: &str) -> Vec<Value> {
    let text = include_str!("fixtures/reference.json");
    let all: Value = serde_json::from_str(text).unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["model"] == model)
        .cloned()
        .collect()
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

#[test]
fn blazeface_matches_litert_on_the_best_anchors() {
    let g = load("face_detection_short_range");
    for case in cases("face_detection_short_range") {
        let out = run(&g, &case);
        let (regressors, scores) = (&out[0], &out[1]);
        for (k, i) in case["top"].as_array().unwrap().iter().enumerate() {
            let i = i.as_u64().unwrap() as usize;
            let want_score = case["scores"][k].as_f64().unwrap() as f32;
            assert!(
                (scores[i] - want_score).abs() < 2e-3,
                "anchor {i}: {} vs {want_score}",
                scores[i]
            );
            let d = max_diff(
                &regressors[i * 16..(i + 1) * 16],
                &floats(&case["regressors"][k]),
            );
            assert!(d < 2e-2, "anchor {i} regressors differ by {d} px");
        }
    }
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

#[test]
fn the_expression_model_matches_the_quantized_reference_within_005() {
    let g = load("fer_emotion");
    for case in cases("fer_emotion") {
        let out = run(&g, &case);
        let want = floats(&case["outputs"]["predictions"]);
        let d = max_diff(&out[0], &want);
        assert!(d < 0.05, "{}: {:?} vs {want:?}", case["frame"], out[0]);
    }
}
