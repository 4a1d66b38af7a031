//! The test media fetched by `scripts/fetch-assets.sh` (never committed).

use std::path::PathBuf;

pub use iv_platform::assets::media_dir;

/// Webcam-like frames for the simulator: the frames of `single_face.mp4` when extracted, else
/// the still portraits. Sorted, so a run is repeatable.
pub fn face_frames() -> anyhow::Result<Vec<PathBuf>> {
    let dir = media_dir();
    let video_frames = dir.join("single_face");
    let mut frames: Vec<PathBuf> = std::fs::read_dir(&video_frames)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_jpeg(p))
                .collect()
        })
        .unwrap_or_default();
    if frames.is_empty() {
        frames = [
            "single_face.jpg",
            "0-f15-hao-ph.jpg",
            "0-f1-su-ph.jpg",
            "15-f13-anc-ph.jpg",
        ]
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.exists())
        .collect();
    }
    frames.sort();
    anyhow::ensure!(
        !frames.is_empty(),
        "no face media in {}; run scripts/fetch-assets.sh first",
        dir.display()
    );
    Ok(frames)
}

fn is_jpeg(p: &std::path::Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}
