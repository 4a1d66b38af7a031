//! A load generator that measures what candidates feel. It plays N candidates at F frames/s with
//! real face frames through the gateway's WebSocket, as a browser does: an interview started
//! over REST, frames sent at a steady rate whatever comes back, answers now and then, and
//! completion at the end. It reports the time from a frame leaving to its `emotion_update`
//! arriving (p50/p95/p99), the share of frames answered, errors by code, sampling and pause
//! notices, the circuit breaker's transitions, and each service's CPU and memory.
//!
//! By default it starts the five services itself, each as its own process (the `stack` binary
//! beside this one, on RabbitMQ and one SQLite file), so each one's CPU and memory can be read;
//! `--gateway URL` drives a stack that is already running instead.
//!
//! # Layout
//! - [`candidate`]: one candidate's session and what it saw.
//! - [`stats`]: percentiles, the per-second timeline, the printed report.
//! - [`procs`]: CPU time and memory of the service processes, from `/proc`.
//! - [`services`]: the five services as processes.

pub mod candidate;
pub mod procs;
pub mod services;
pub mod stats;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;

use crate::candidate::{CandidateLog, Plan};
use crate::stats::RunReport;

/// What to play. Every flag has a default, so `loadgen` alone plays 20 candidates at 5 frames/s
/// for 20 s.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--candidates N`: candidates for the whole run.
    pub candidates: usize,
    /// `--fps F`: frames per second each candidate sends.
    pub fps: f64,
    /// `--seconds S`: how long each candidate sends frames.
    pub seconds: f64,
    /// `--spike N`: extra candidates who join at `--spike-at` and leave after `--spike-for`.
    pub spike: usize,
    pub spike_at: f64,
    pub spike_for: f64,
    /// `--answer-every S`: a candidate answers one question this often (a real pace is a minute or
    /// more; answers are scored live, which takes CPU beside the frames).
    pub answer_every: f64,
    /// `--runs R`: repeats the run (the services stay up) and prints the median of the figures.
    pub runs: usize,
    /// `--gateway URL`: a running stack to drive; the services are not started, and their CPU and
    /// memory are read only for the processes named with `--pid name=PID`.
    pub gateway: Option<String>,
    /// `--token JWT`: with `--gateway`, a recruiter's or admin's token (default: `IV_TOKEN`, else
    /// one minted from the local signing key under `DATA_DIR`).
    pub token: Option<String>,
    pub pids: Vec<(String, u32)>,
    /// `--interview URL`: with `--gateway`, the interview service, whose `/metrics` count the
    /// emotion breaker's openings.
    pub interview: Option<String>,
    /// `--wait-report S`: after completing, how long to wait for each report (0: do not wait).
    pub wait_report: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            candidates: 20,
            fps: 5.0,
            seconds: 20.0,
            spike: 0,
            spike_at: 8.0,
            spike_for: 4.0,
            answer_every: 30.0,
            runs: 1,
            gateway: None,
            token: None,
            pids: Vec::new(),
            interview: None,
            wait_report: 0.0,
        }
    }
}

pub const USAGE: &str = "\
usage: loadgen [flags]
  --candidates N    candidates for the whole run (20)
  --fps F           frames per second each sends (5)
  --seconds S       how long each sends frames (20)
  --spike N         extra candidates who join at --spike-at S (8) for --spike-for S (4)
  --answer-every S  each answers a question this often (30)
  --runs R          repeat the run, then print the median of the figures (1)
  --wait-report S   after completing, wait up to S for each report (0: do not wait)
  --gateway URL     drive a running stack instead of starting the services; then
                    --interview URL (breaker figures), --pid name=PID (CPU, memory) and
                    --token JWT (default IV_TOKEN, else minted from DATA_DIR's key)";

impl Options {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Self> {
        let mut o = Self::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            let number = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .with_context(|| format!("{flag} {value}: not a number\n{USAGE}"))
            };
            match flag.as_str() {
                "--candidates" => o.candidates = number()? as usize,
                "--fps" => o.fps = number()?,
                "--seconds" => o.seconds = number()?,
                "--spike" => o.spike = number()? as usize,
                "--spike-at" => o.spike_at = number()?,
                "--spike-for" => o.spike_for = number()?,
                "--answer-every" => o.answer_every = number()?,
                "--runs" => o.runs = (number()? as usize).max(1),
                "--wait-report" => o.wait_report = number()?,
                "--gateway" => o.gateway = Some(value.trim_end_matches('/').to_string()),
                "--token" => o.token = Some(value),
                "--interview" => o.interview = Some(value.trim_end_matches('/').to_string()),
                "--pid" => {
                    let (name, pid) = value
                        .split_once('=')
                        .and_then(|(n, p)| Some((n.to_string(), p.parse().ok()?)))
                        .with_context(|| format!("--pid {value}: expected name=PID\n{USAGE}"))?;
                    o.pids.push((name, pid));
                }
                _ => bail!("unknown flag {flag}\n{USAGE}"),
            }
        }
        if o.fps <= 0.0 || o.seconds <= 0.0 || o.candidates + o.spike == 0 {
            bail!("nothing to play: --fps, --seconds and --candidates must be above 0\n{USAGE}");
        }
        Ok(o)
    }

    /// Each candidate's plan: the steady ones start within the first second, the spike's join
    /// at `spike_at`. A browser's camera is never in step with another's, so each candidate's
    /// frames also fall at its own point of the frame interval, drawn at random (seeded by the
    /// candidate, so runs compare). Starts spaced evenly alone put candidates in lockstep: at
    /// 20 x 5 frames/s, 50 ms apart, four groups of five sent each frame at the same instant.
    fn plans(&self) -> Vec<Plan> {
        let steady = (0..self.candidates).map(|i| Plan {
            start_after: Duration::from_secs_f64(
                i as f64 / self.candidates.max(1) as f64 + self.phase(i),
            ),
            duration: Duration::from_secs_f64(self.seconds),
            ..self.plan(i)
        });
        let spike = (0..self.spike).map(|i| Plan {
            start_after: Duration::from_secs_f64(
                self.spike_at
                    + i as f64 * 0.5 / self.spike as f64
                    + self.phase(self.candidates + i),
            ),
            duration: Duration::from_secs_f64(self.spike_for),
            ..self.plan(self.candidates + i)
        });
        steady.chain(spike).collect()
    }

    /// Where in the frame interval a candidate's frames fall, in seconds.
    fn phase(&self, index: usize) -> f64 {
        fastrand::Rng::with_seed(index as u64).f64() / self.fps
    }

    fn plan(&self, index: usize) -> Plan {
        Plan {
            index,
            start_after: Duration::ZERO,
            duration: Duration::ZERO,
            fps: self.fps,
            // Spread over candidates, so answers do not all arrive in the same second.
            first_answer: Duration::from_secs_f64(
                self.answer_every * (1.0 + (index % 7) as f64 / 7.0),
            ),
            answer_every: Duration::from_secs_f64(self.answer_every.max(1.0)),
            wait_report: Duration::from_secs_f64(self.wait_report),
        }
    }
}

/// Plays the runs and prints each report, then the median of their figures.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let frames = face_frames()?;
    println!("machine: {}", iv_platform::host::describe());
    let (gateway, stack) = match &options.gateway {
        Some(url) => {
            let env: std::collections::HashMap<String, String> = std::env::vars().collect();
            let token = match options
                .token
                .clone()
                .or_else(|| env.get("IV_TOKEN").cloned())
            {
                Some(token) => token,
                None => iv_stack::tokens::local_admin_token(&env)?,
            };
            let gateway = candidate::Gateway {
                url: url.clone(),
                token,
            };
            (gateway, None)
        }
        None => {
            let stack = services::Processes::start().await?;
            (stack.gateway()?, Some(stack))
        }
    };
    let (watched, metrics) = match &stack {
        Some(s) => (s.pids(), Some(s.interview_metrics_url())),
        None => (
            options.pids.clone(),
            options.interview.as_ref().map(|u| format!("{u}/metrics")),
        ),
    };
    println!(
        "{} candidates at {} frames/s for {} s{} against {}",
        options.candidates,
        options.fps,
        options.seconds,
        if options.spike > 0 {
            format!(
                ", and {} more from {} s for {} s",
                options.spike, options.spike_at, options.spike_for
            )
        } else {
            String::new()
        },
        gateway.url
    );
    let mut reports = Vec::new();
    for run in 1..=options.runs {
        let report = play_once(&options, &gateway, &frames, &watched, metrics.as_deref()).await?;
        println!("\nrun {run} of {}", options.runs);
        report.print();
        reports.push(report);
    }
    if reports.len() > 1 {
        println!("\nmedian of {} runs", reports.len());
        stats::print_medians(&reports);
    }
    if let Some(stack) = stack {
        stack.stop().await;
    }
    Ok(())
}

async fn play_once(
    options: &Options,
    gateway: &candidate::Gateway,
    frames: &[String],
    watched: &[(String, u32)],
    metrics: Option<&str>,
) -> anyhow::Result<RunReport> {
    let breaker_before = stats::breaker_openings(metrics).await;
    let sampler = procs::Sampler::start(watched);
    let epoch = Instant::now();
    let tasks: Vec<_> = options
        .plans()
        .into_iter()
        .map(|plan| {
            let (gateway, frames) = (gateway.clone(), frames.to_vec());
            tokio::spawn(async move { candidate::play(&gateway, &frames, plan, epoch).await })
        })
        .collect();
    let mut logs: Vec<CandidateLog> = Vec::new();
    for task in tasks {
        logs.push(task.await.context("a candidate's task failed")?);
    }
    let elapsed = epoch.elapsed();
    let usage = sampler.stop().await;
    let breaker_after = stats::breaker_openings(metrics).await;
    Ok(RunReport::new(
        &logs,
        elapsed,
        usage,
        breaker_after.zip(breaker_before).map(|(a, b)| a - b),
    ))
}

/// The simulator's face frames, base64-encoded once.
fn face_frames() -> anyhow::Result<Vec<String>> {
    iv_stack::media::face_frames()?
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .map(|b| b.map(|b| base64::engine::general_purpose::STANDARD.encode(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> anyhow::Result<Options> {
        Options::from_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn flags_set_the_plan_and_bad_ones_say_what_is_wrong() {
        let o = args("--candidates 40 --fps 2.5 --spike 80 --spike-at 5 --spike-for 3").unwrap();
        assert_eq!((o.candidates, o.fps, o.spike), (40, 2.5, 80));
        let plans = o.plans();
        assert_eq!(plans.len(), 120);
        assert!(
            plans[..40]
                .iter()
                .all(|p| p.start_after < Duration::from_secs_f64(1.4))
        );
        // Not in lockstep: the candidates' frames fall at many points of the 400 ms interval.
        let mut phases: Vec<u128> = plans[..40]
            .iter()
            .map(|p| p.start_after.as_millis() % 400 / 10)
            .collect();
        phases.sort();
        phases.dedup();
        assert!(phases.len() > 20, "{phases:?}");
        assert!(plans[40..].iter().all(
            |p| p.start_after >= Duration::from_secs(5) && p.duration == Duration::from_secs(3)
        ));
        assert!(
            args("--fps x")
                .unwrap_err()
                .to_string()
                .contains("not a number")
        );
        assert!(
            args("--fps")
                .unwrap_err()
                .to_string()
                .contains("needs a value")
        );
        assert!(
            args("--what 1")
                .unwrap_err()
                .to_string()
                .contains("unknown flag")
        );
        assert!(args("--fps 0").is_err());
        assert_eq!(
            args("--pid emotion=42").unwrap().pids,
            [("emotion".into(), 42)]
        );
    }
}
