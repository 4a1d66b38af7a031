//! Plays an interview through the gateway with real face frames and prints what happens.
//!
//! Usage: candidate-sim [--gateway URL] [--fps N] [--frames-per-answer N] [--policy full|engagement|off]
//!                      [--pdf FILE] [--token JWT] [--quiet]

use std::time::Duration;

use iv_stack::{media, sim};

fn usage() -> ! {
    eprintln!(
        "usage: candidate-sim [--gateway URL] [--fps N] [--frames-per-answer N] [--policy full|engagement|off] \
         [--pdf FILE] [--token JWT] [--quiet]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut opts = sim::SimOptions::new("http://127.0.0.1:8080".into(), Vec::new());
    opts.verbose = true;
    opts.pdf_path = Some("interview-report.pdf".into());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--gateway" => opts.gateway = value().trim_end_matches('/').to_string(),
            "--fps" => opts.fps = value().parse().unwrap_or_else(|_| usage()),
            "--frames-per-answer" => {
                opts.frames_per_answer = value().parse().unwrap_or_else(|_| usage())
            }
            "--policy" => opts.policy = value(),
            "--pdf" => opts.pdf_path = Some(value().into()),
            "--token" => opts.token = Some(value()),
            "--report-timeout-secs" => {
                opts.report_timeout =
                    Duration::from_secs(value().parse().unwrap_or_else(|_| usage()))
            }
            "--quiet" => opts.verbose = false,
            _ => usage(),
        }
    }
    if opts.token.is_none() {
        // IV_TOKEN, else the first admin's token from the local signing key (embedded default).
        let env: std::collections::HashMap<String, String> = std::env::vars().collect();
        opts.token = Some(match env.get("IV_TOKEN").filter(|t| !t.is_empty()) {
            Some(token) => token.clone(),
            None => iv_stack::tokens::local_admin_token(&env)?,
        });
    }
    opts.frames = media::face_frames()?;
    println!(
        "playing an interview against {} with {} face frames",
        opts.gateway,
        opts.frames.len()
    );
    let result = sim::run(&opts).await?;
    let score = &result.score;
    println!();
    println!(
        "interview {} finished in {:.1} s",
        result.session_id,
        result.elapsed.as_secs_f64()
    );
    println!(
        "  sent {} frames and {} answers; {} emotion updates",
        result.frames_sent,
        result.answers_sent,
        result.of_type("emotion_update").len()
    );
    for c in score["components"].as_array().into_iter().flatten() {
        let value = c["score"]
            .as_f64()
            .map_or("insufficient data".to_string(), |s| format!("{s:.1}"));
        println!(
            "  {:<14} {value:<18} {}",
            c["name"].as_str().unwrap_or_default(),
            c["reason"].as_str().unwrap_or_default()
        );
    }
    println!("  {}", score["feedback"].as_str().unwrap_or_default());
    println!(
        "  emotion timeline: {} frames analysed, dominant {:?}",
        result.emotions["frames_analyzed"],
        result.emotions["dominant_emotion"]
            .as_str()
            .unwrap_or_default()
    );
    if let Some(path) = &opts.pdf_path {
        println!(
            "  PDF report ({} bytes) written to {}",
            result.pdf_bytes,
            path.display()
        );
    }
    Ok(())
}
