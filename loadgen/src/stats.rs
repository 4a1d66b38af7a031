//! What a run comes to: latency percentiles, the share of frames answered, errors, a per-second
//! timeline (where a spike and the recovery after it show), and the services' CPU and memory.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::candidate::CandidateLog;
use crate::procs::Usage;

/// The value at quantile `q` (0..=1) of sorted values, by nearest rank; `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted_ms(values: impl Iterator<Item = Duration>) -> Vec<f64> {
    let mut v: Vec<f64> = values.map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Second {
    pub sent: usize,
    pub answered: usize,
    pub p95_ms: Option<f64>,
}

#[derive(Debug)]
pub struct RunReport {
    pub candidates: usize,
    pub elapsed: Duration,
    pub frames_sent: usize,
    pub frames_answered: usize,
    pub latency_ms: Vec<f64>,
    pub answers: usize,
    pub answer_ms: Vec<f64>,
    pub report_ms: Vec<f64>,
    pub errors: BTreeMap<String, usize>,
    pub failures: Vec<String>,
    pub candidates_sampled: usize,
    pub lowest_suggested_fps: Option<f64>,
    pub candidates_paused: usize,
    pub breaker_openings: Option<u64>,
    pub timeline: Vec<Second>,
    pub usage: Vec<Usage>,
}

impl RunReport {
    pub fn new(
        logs: &[CandidateLog],
        elapsed: Duration,
        usage: Vec<Usage>,
        breaker_openings: Option<u64>,
    ) -> Self {
        let frames = || logs.iter().flat_map(|l| &l.frames);
        let mut errors = BTreeMap::new();
        for (code, n) in logs.iter().flat_map(|l| &l.errors) {
            *errors.entry(code.clone()).or_default() += n;
        }
        let seconds = elapsed.as_secs() as usize + 1;
        let timeline = (0..seconds)
            .map(|s| {
                let in_second = || frames().filter(|f| f.at.as_secs() as usize == s);
                Second {
                    sent: in_second().count(),
                    answered: in_second().filter(|f| f.latency.is_some()).count(),
                    p95_ms: quantile(&sorted_ms(in_second().filter_map(|f| f.latency)), 0.95),
                }
            })
            .collect();
        Self {
            candidates: logs.len(),
            elapsed,
            frames_sent: frames().count(),
            frames_answered: frames().filter(|f| f.latency.is_some()).count(),
            latency_ms: sorted_ms(frames().filter_map(|f| f.latency)),
            answers: logs.iter().map(|l| l.answers).sum(),
            answer_ms: sorted_ms(logs.iter().flat_map(|l| l.answer_latencies.iter().copied())),
            report_ms: sorted_ms(logs.iter().filter_map(|l| l.report_after)),
            errors,
            failures: logs.iter().filter_map(|l| l.failure.clone()).collect(),
            candidates_sampled: logs.iter().filter(|l| l.sampling_notices > 0).count(),
            lowest_suggested_fps: logs
                .iter()
                .filter_map(|l| l.suggested_fps)
                .min_by(f64::total_cmp),
            candidates_paused: logs.iter().filter(|l| l.paused_notices > 0).count(),
            breaker_openings,
            timeline,
            usage,
        }
    }

    pub fn answered_share(&self) -> f64 {
        self.frames_answered as f64 / self.frames_sent.max(1) as f64
    }

    pub fn latency(&self, q: f64) -> Option<f64> {
        quantile(&self.latency_ms, q)
    }

    pub fn print(&self) {
        println!(
            "  {} candidates, {:.1} s; frames sent {}, answered {} ({:.1}%)",
            self.candidates,
            self.elapsed.as_secs_f64(),
            self.frames_sent,
            self.frames_answered,
            100.0 * self.answered_share()
        );
        println!(
            "  frame -> emotion_update: p50 {}  p95 {}  p99 {}  max {}",
            ms(self.latency(0.5)),
            ms(self.latency(0.95)),
            ms(self.latency(0.99)),
            ms(self.latency(1.0))
        );
        if self.answers > 0 {
            println!(
                "  answer -> next question ({} answers): p50 {}  p95 {}",
                self.answers,
                ms(quantile(&self.answer_ms, 0.5)),
                ms(quantile(&self.answer_ms, 0.95))
            );
        }
        if !self.report_ms.is_empty() {
            println!(
                "  complete -> report ready ({}): p50 {}  max {}",
                self.report_ms.len(),
                ms(quantile(&self.report_ms, 0.5)),
                ms(quantile(&self.report_ms, 1.0))
            );
        }
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        println!(
            "  errors: {}; sessions failed: {}",
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            },
            self.failures.len()
        );
        for failure in self.failures.iter().take(3) {
            println!("    {failure}");
        }
        println!(
            "  sampling told to {} candidates{}; feedback paused for {}; emotion breaker opened {}",
            self.candidates_sampled,
            self.lowest_suggested_fps
                .map(|f| format!(" (lowest suggested rate {f} frames/s)"))
                .unwrap_or_default(),
            self.candidates_paused,
            self.breaker_openings
                .map_or("(unknown)".to_string(), |n| format!("{n} times"))
        );
        println!("  per second (sent/answered p95 ms):");
        let line: Vec<String> = self
            .timeline
            .iter()
            .enumerate()
            .map(|(s, t)| format!("{s}s {}/{} {}", t.sent, t.answered, ms(t.p95_ms)))
            .collect();
        for chunk in line.chunks(6) {
            println!("    {}", chunk.join(" | "));
        }
        if !self.usage.is_empty() {
            println!("  service      cpu (core %)  rss start   rss peak   rss end");
            for u in &self.usage {
                println!(
                    "  {:<12} {:>9.0}%  {:>7} MiB {:>7} MiB {:>7} MiB",
                    u.name,
                    u.cpu_share * 100.0,
                    u.rss_start_kib / 1024,
                    u.rss_peak_kib / 1024,
                    u.rss_end_kib / 1024
                );
            }
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0} ms"))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// The median over runs of each headline figure.
pub fn print_medians(reports: &[RunReport]) {
    let of = |f: &dyn Fn(&RunReport) -> Option<f64>| median(reports.iter().filter_map(f).collect());
    println!(
        "  frame -> emotion_update: p50 {}  p95 {}  p99 {}; answered {:.1}%",
        ms(of(&|r| r.latency(0.5))),
        ms(of(&|r| r.latency(0.95))),
        ms(of(&|r| r.latency(0.99))),
        100.0 * of(&|r| Some(r.answered_share())).unwrap_or(0.0)
    );
    let errors: usize = reports
        .iter()
        .map(|r| r.errors.values().sum::<usize>())
        .sum();
    let failures: usize = reports.iter().map(|r| r.failures.len()).sum();
    let openings: Option<u64> = reports.iter().map(|r| r.breaker_openings).sum();
    println!(
        "  over all runs: {errors} errors, {failures} failed sessions, breaker opened {}",
        openings.map_or("(unknown)".into(), |n| format!("{n} times"))
    );
}

/// How often the interview service's emotion breaker has opened, from its `/metrics`.
pub async fn breaker_openings(metrics_url: Option<&str>) -> Option<u64> {
    let body = iv_platform::client::HttpClient::new()
        .get(metrics_url?)
        .await
        .ok()?
        .body;
    Some(openings_in(&String::from_utf8_lossy(&body)))
}

fn openings_in(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("circuit_breaker_transitions_total")
                && l.contains("downstream=\"emotion\"")
                && l.contains("to=\"open\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::FrameSent;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.95), Some(95.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn a_run_counts_unanswered_frames_and_places_each_frame_in_its_second() {
        let frame = |at_ms: u64, latency_ms: Option<u64>| FrameSent {
            at: Duration::from_millis(at_ms),
            latency: latency_ms.map(Duration::from_millis),
        };
        let a = CandidateLog {
            frames: vec![
                frame(100, Some(20)),
                frame(300, None),
                frame(1200, Some(40)),
            ],
            errors: [("ANALYSIS_BUSY".to_string(), 1)].into(),
            ..Default::default()
        };
        let b = CandidateLog {
            frames: vec![frame(500, Some(10))],
            failure: Some("closed".into()),
            ..Default::default()
        };
        let r = RunReport::new(&[a, b], Duration::from_millis(1500), Vec::new(), Some(0));
        assert_eq!((r.frames_sent, r.frames_answered), (4, 3));
        assert_eq!(r.latency_ms, [10.0, 20.0, 40.0]);
        assert_eq!(r.errors["ANALYSIS_BUSY"], 1);
        assert_eq!(r.failures.len(), 1);
        assert_eq!(
            r.timeline,
            [
                Second {
                    sent: 3,
                    answered: 2,
                    p95_ms: Some(20.0)
                },
                Second {
                    sent: 1,
                    answered: 1,
                    p95_ms: Some(40.0)
                },
            ]
        );
    }

    #[test]
    fn breaker_openings_are_read_from_the_emotion_transitions_only() {
        let metrics = "\
circuit_breaker_transitions_total{downstream=\"emotion\",to=\"open\"} 3
circuit_breaker_transitions_total{downstream=\"emotion\",to=\"closed\"} 2
circuit_breaker_transitions_total{downstream=\"scoring\",to=\"open\"} 5
";
        assert_eq!(openings_in(metrics), 3);
    }
}
