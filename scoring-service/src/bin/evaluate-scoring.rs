//! Checks the answer scorer against a human grader: for each labelled question of
//! `scoring-service/evaluation/answers.json`, how often the scorer orders two answers as the grader
//! did (pairwise agreement) and Kendall's tau-b, for the word-matching scorer this crate used
//! before and the meaning scorer it uses now. Not a test: a report to read.
//!
//! usage: evaluate-scoring [--set FILE] [--sweep] [--verbose]
//!   --sweep    also tries thresholds around the shipped ones and prints the agreement of each
//!   --verbose  prints every answer's scores and evidence

use std::path::PathBuf;

use anyhow::Context;
use scoring_service::answer::{self, AnswerAnalysis, AnswerInput, lexical, relevance};
use scoring_service::meaning::{SentenceEncoder, default_model_dir};
use serde::Deserialize;

#[derive(Deserialize)]
struct Set {
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    id: String,
    category: String,
    question: String,
    expected_points: Vec<String>,
    answers: Vec<Labelled>,
}

#[derive(Deserialize)]
struct Labelled {
    kind: String,
    /// The grader's tier: 1 is best; equal ranks are ties.
    rank: u32,
    text: String,
}

/// Agreement of a scorer's numbers with the grader's ranks on one question.
#[derive(Debug, Clone, Copy, Default)]
struct Agreement {
    /// Pairs the grader orders, and how many of them the scorer orders the same way (a scorer
    /// tie counts half).
    pairs: u32,
    agreeing: f32,
    tau_b: f32,
}

fn agreement(ranks: &[u32], scores: &[f32]) -> Agreement {
    let (mut concordant, mut discordant) = (0i64, 0i64);
    let (mut tied_grader, mut tied_scorer) = (0i64, 0i64);
    let mut out = Agreement::default();
    for i in 0..ranks.len() {
        for j in i + 1..ranks.len() {
            // A lower rank is better; a higher score is better.
            let g = ranks[j].cmp(&ranks[i]) as i64;
            let s = scores[i].partial_cmp(&scores[j]).map_or(0, |o| o as i64);
            let s = if (scores[i] - scores[j]).abs() < 0.05 {
                0
            } else {
                s
            };
            match (g, s) {
                (0, 0) => {}
                (0, _) => tied_grader += 1,
                (_, 0) => {
                    tied_scorer += 1;
                    out.pairs += 1;
                    out.agreeing += 0.5;
                }
                _ => {
                    out.pairs += 1;
                    if g == s {
                        concordant += 1;
                        out.agreeing += 1.0;
                    } else {
                        discordant += 1;
                    }
                }
            }
        }
    }
    let n1 = (concordant + discordant + tied_grader) as f32;
    let n2 = (concordant + discordant + tied_scorer) as f32;
    out.tau_b = if n1 > 0.0 && n2 > 0.0 {
        (concordant - discordant) as f32 / (n1 * n2).sqrt()
    } else {
        0.0
    };
    out
}

struct Totals {
    pairs: u32,
    agreeing: f32,
    taus: Vec<f32>,
}

impl Totals {
    fn new() -> Self {
        Self {
            pairs: 0,
            agreeing: 0.0,
            taus: Vec::new(),
        }
    }
    fn add(&mut self, a: Agreement) {
        self.pairs += a.pairs;
        self.agreeing += a.agreeing;
        self.taus.push(a.tau_b);
    }
    fn share(&self) -> f32 {
        self.agreeing / self.pairs.max(1) as f32
    }
    fn mean_tau(&self) -> f32 {
        self.taus.iter().sum::<f32>() / self.taus.len().max(1) as f32
    }
}

fn input(q: &Question, text: &str) -> AnswerInput {
    AnswerInput {
        question_id: q.id.clone(),
        question: q.question.clone(),
        category: q.category.clone(),
        expected_points: q.expected_points.clone(),
        transcript: text.into(),
        duration_secs: None,
    }
}

/// Overall agreement of the meaning scorer with some thresholds.
fn evaluate(
    set: &Set,
    encoder: &SentenceEncoder,
    t: &relevance::Thresholds,
) -> anyhow::Result<Totals> {
    let mut totals = Totals::new();
    for q in &set.questions {
        let ranks: Vec<u32> = q.answers.iter().map(|a| a.rank).collect();
        let mut scores = Vec::new();
        for a in &q.answers {
            scores.push(answer::analyze_with(&input(q, &a.text), encoder, t)?.quality());
        }
        totals.add(agreement(&ranks, &scores));
    }
    Ok(totals)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let set_path = args
        .iter()
        .position(|a| a == "--set")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("evaluation/answers.json")
        });
    let set: Set = serde_json::from_slice(
        &std::fs::read(&set_path).with_context(|| format!("reading {}", set_path.display()))?,
    )
    .with_context(|| format!("parsing {}", set_path.display()))?;
    let encoder = SentenceEncoder::load(&default_model_dir())
        .context("loading the sentence model (run scripts/fetch-assets.sh)")?;
    let verbose = args.iter().any(|a| a == "--verbose");

    println!("answer score (relevance 70% + depth 30%) against the grader's ranks, per question");
    println!(
        "{:<18} {:<13} {:>6} | {:>9} {:>7} | {:>9} {:>7}",
        "question", "category", "pairs", "old agree", "old tau", "new agree", "new tau"
    );
    let (mut old_total, mut new_total) = (Totals::new(), Totals::new());
    let mut by_kind: Vec<(String, f32, f32, u32)> = Vec::new();
    let mut latencies = Vec::new();
    for q in &set.questions {
        let ranks: Vec<u32> = q.answers.iter().map(|a| a.rank).collect();
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for a in &q.answers {
            let input = input(q, &a.text);
            let before: AnswerAnalysis = lexical::analyze_by_words(&input);
            let started = std::time::Instant::now();
            let after = answer::analyze(&input, &encoder)?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            old.push(before.quality());
            new.push(after.quality());
            match by_kind.iter_mut().find(|k| k.0 == a.kind) {
                Some(k) => {
                    k.1 += before.quality();
                    k.2 += after.quality();
                    k.3 += 1;
                }
                None => by_kind.push((a.kind.clone(), before.quality(), after.quality(), 1)),
            }
            if verbose {
                println!(
                    "  {:<20} rank {} old {:>5.1} new {:>5.1} (relevance {:>5.1}, depth {:>5.1}, clarity {:>5.1})",
                    a.kind,
                    a.rank,
                    before.quality(),
                    after.quality(),
                    after.relevance,
                    after.depth,
                    after.clarity
                );
                for e in &after.evidence {
                    println!(
                        "      {:<9} {:.2} {} <- {}",
                        e.status.as_str(),
                        e.similarity,
                        e.point,
                        e.sentence.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        let (o, n) = (agreement(&ranks, &old), agreement(&ranks, &new));
        println!(
            "{:<18} {:<13} {:>6} | {:>8.0}% {:>7.2} | {:>8.0}% {:>7.2}",
            q.id,
            q.category,
            o.pairs,
            o.agreeing / o.pairs.max(1) as f32 * 100.0,
            o.tau_b,
            n.agreeing / n.pairs.max(1) as f32 * 100.0,
            n.tau_b
        );
        old_total.add(o);
        new_total.add(n);
    }
    println!(
        "{:<18} {:<13} {:>6} | {:>8.0}% {:>7.2} | {:>8.0}% {:>7.2}",
        "overall",
        "",
        old_total.pairs,
        old_total.share() * 100.0,
        old_total.mean_tau(),
        new_total.share() * 100.0,
        new_total.mean_tau()
    );
    println!(
        "(agree: share of the grader's ordered pairs the scorer orders the same way, ties half; tau: Kendall's tau-b, mean over questions)"
    );
    println!();
    println!("mean answer score by kind   old    new");
    for (kind, old, new, n) in &by_kind {
        println!(
            "  {kind:<24} {:>5.1}  {:>5.1}",
            old / *n as f32,
            new / *n as f32
        );
    }
    latencies.sort_by(f64::total_cmp);
    println!();
    println!(
        "meaning scorer latency per answer on this machine: median {:.1} ms, max {:.1} ms (see the answer_scoring bench for a 300-word answer)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );

    if args.iter().any(|a| a == "--sweep") {
        println!();
        println!("threshold sweep (overall agreement, mean tau):");
        let base = relevance::THRESHOLDS;
        for partial in [0.15, 0.2, 0.25, 0.3, 0.35] {
            for covered in [0.35, 0.4, 0.45, 0.5, 0.55, 0.6] {
                if covered <= partial {
                    continue;
                }
                let t = relevance::Thresholds {
                    partial,
                    covered,
                    ..base
                };
                let totals = evaluate(&set, &encoder, &t)?;
                let mark = if t == base { "  <- shipped" } else { "" };
                println!(
                    "  partial {partial:.2} covered {covered:.2}: {:>5.1}%  tau {:.3}{mark}",
                    totals.share() * 100.0,
                    totals.mean_tau()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::agreement;

    #[test]
    fn agreement_is_full_for_the_grader_order_and_none_for_its_reverse() {
        let ranks = [1, 2, 3, 3];
        let same = agreement(&ranks, &[90.0, 50.0, 10.0, 5.0]);
        assert_eq!((same.pairs, same.agreeing), (5, 5.0));
        assert!((same.tau_b - 0.9129).abs() < 1e-3, "{}", same.tau_b);
        let reversed = agreement(&ranks, &[5.0, 50.0, 90.0, 90.0]);
        assert_eq!(reversed.agreeing, 0.0);
        assert!(reversed.tau_b < -0.9);
        let tied = agreement(&ranks, &[10.0, 10.0, 10.0, 10.0]);
        assert_eq!(tied.agreeing, 2.5, "a scorer tie counts half");
    }
}
