//! Speed and memory of the vision pipeline on the webcam clip (640x360), per stage and whole,
//! single stream and with one stream per core.
//!
//! Run: `cargo bench -p emotion-service --bench pipeline` (after scripts/fetch-assets.sh).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use emotion_service::analysis::{FrameAnalyzer, Scan, Scanner};
use emotion_service::vision::Pipeline;
use iv_contracts::policy::AnalysisPolicy;

fn assets() -> PathBuf {
    iv_platform::assets::dir()
}

struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn print(&mut self, streams: usize, wall: Option<Duration>) {
        self.samples.sort();
        let pick = |q: f64| {
            self.samples[((self.samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64()
                * 1e3
        };
        let mean =
            self.samples.iter().map(Duration::as_secs_f64).sum::<f64>() / self.samples.len() as f64;
        let fps = match wall {
            Some(w) => self.samples.len() as f64 / w.as_secs_f64(),
            None => 1.0 / mean,
        };
        println!(
            "{:<34} {:>7} {:>9.1} {:>9.2} {:>9.2} {:>9.2}",
            self.name,
            streams,
            fps,
            pick(0.5),
            pick(0.95),
            mean * 1e3
        );
    }
}

fn time<T>(samples: &mut Vec<Duration>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    samples.push(start.elapsed());
    out
}

fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    emotion_service::prepare_for_models();
    let pipeline = Arc::new(
        Pipeline::load(&assets().join("models")).expect("models (run scripts/fetch-assets.sh)"),
    );
    let jpegs: Vec<Vec<u8>> = (0..72)
        .map(|i| {
            std::fs::read(assets().join(format!("media/single_face/frame_{i:03}.jpg")))
                .expect("media")
        })
        .collect();
    let passes = std::env::var("BENCH_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    println!(
        "vision pipeline on single_face.mp4 (640x360 JPEG), {passes} passes of 72 frames, {cores} cores"
    );
    println!(
        "{:<34} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "stage", "streams", "frames/s", "p50 ms", "p95 ms", "mean ms"
    );

    // Warm up: first runs allocate and fault in the weights.
    for j in jpegs.iter().take(3) {
        let f = image::load_from_memory(j).unwrap().to_rgb8();
        let _ = pipeline.analyze(&f, AnalysisPolicy::Full, Scan::Everyone);
    }

    let names = [
        "decode JPEG",
        "detect (BlazeFace)",
        "mesh (468 points)",
        "iris (both eyes)",
        "expression (mini-Xception)",
        "far pass (back model, 2 tiles)",
    ];
    let mut stages: Vec<Stats> = names
        .iter()
        .map(|n| Stats {
            name: n.to_string(),
            samples: Vec::new(),
        })
        .collect();
    let mut full = Stats {
        name: "whole frame, near detector every frame".into(),
        samples: Vec::new(),
    };
    let mut tracked = Stats {
        name: "whole frame, tracking (as served)".into(),
        samples: Vec::new(),
    };
    for _ in 0..passes {
        let mut scanner = Scanner::default();
        for j in &jpegs {
            let frame = time(&mut stages[0].samples, || {
                image::load_from_memory(j).unwrap().to_rgb8()
            });
            let found = time(&mut stages[1].samples, || pipeline.detect(&frame).unwrap());
            let face = found.faces[0];
            let mesh = time(&mut stages[2].samples, || {
                pipeline.mesh(&frame, &face).unwrap()
            });
            time(&mut stages[3].samples, || {
                pipeline.eyes(&frame, &mesh.points).unwrap();
            });
            time(&mut stages[4].samples, || {
                pipeline.expression(&frame, &face).unwrap()
            });
            time(&mut stages[5].samples, || {
                pipeline.detect_far(&frame).unwrap()
            });
            time(&mut full.samples, || {
                let f = image::load_from_memory(j).unwrap().to_rgb8();
                pipeline
                    .analyze(&f, AnalysisPolicy::Full, Scan::Near)
                    .unwrap()
            });
            let scan = scanner.next();
            let mut a = time(&mut tracked.samples, || {
                let f = image::load_from_memory(j).unwrap().to_rgb8();
                pipeline.analyze(&f, AnalysisPolicy::Full, scan).unwrap()
            });
            scanner.saw(scan, &mut a);
        }
    }
    for s in stages.iter_mut() {
        s.print(1, None);
    }
    full.print(1, None);
    tracked.print(1, None);

    // One stream per core, each tracking its own candidate, as the service's bounded pool runs them.
    let start = Instant::now();
    let handles: Vec<_> = (0..cores)
        .map(|_| {
            let pipeline = pipeline.clone();
            let jpegs = jpegs.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                for _ in 0..passes {
                    let mut scanner = Scanner::default();
                    for j in &jpegs {
                        let scan = scanner.next();
                        let mut a = time(&mut samples, || {
                            let f = image::load_from_memory(j).unwrap().to_rgb8();
                            pipeline.analyze(&f, AnalysisPolicy::Full, scan).unwrap()
                        });
                        scanner.saw(scan, &mut a);
                    }
                }
                samples
            })
        })
        .collect();
    let samples: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let wall = start.elapsed();
    Stats {
        name: "whole frame, tracking, concurrent".into(),
        samples,
    }
    .print(cores, Some(wall));
    println!("peak memory (VmHWM): {:.0} MiB", peak_memory_mib());
}
