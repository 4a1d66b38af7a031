fn main() {
    let dir = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ai-interview");
    let p = emotion_service::vision::Pipeline::load(&dir.join("models")).unwrap();
    for f in std::env::args().skip(1) {
        let img = image::open(dir.join("media").join(&f)).unwrap().to_rgb8();
        let a = emotion_service::analysis::FrameAnalyzer::analyze(
            &p,
            &img,
            iv_contracts::policy::AnalysisPolicy::Full,
            None,
        )
        .unwrap();
        println!(
            "{f}: count={} face={:?} landmarks={} expr={:?}",
            a.face_count,
            a.face,
            a.landmarks.len(),
            a.expression.map(|e| (e.label, e.confidence))
        );
    }
}
