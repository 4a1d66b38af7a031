//! Speed of scoring one answer: the scorer alone (inner) beside gRPC `AnalyzeAnswer` to the real
//! service from a client on the same machine (what a caller feels), for a short and a 300-word
//! answer, so that a gap between the two shows at once.
//!
//! Run (one core, as the target is stated):
//!   RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p scoring-service --bench answer_scoring
//! (after scripts/fetch-assets.sh). Prints the machine, then median and p95 of 30 runs each.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use iv_contracts::scoring::AnswerRequest;
use iv_contracts::scoring::scoring_service_client::ScoringServiceClient;
use scoring_service::answer::{self, AnswerInput};
use scoring_service::meaning::{SentenceEncoder, default_model_dir};

const RUNS: usize = 30;
const QUESTION: &str = "How would you design a URL shortening service?";
const POINTS: [&str; 5] = [
    "generate unique short keys or hashes",
    "database storage mapping keys to URLs",
    "cache popular redirects",
    "scale reads with replicas or load balancing",
    "handle expiry, collisions and abuse",
];
const SHORT: &str = "I would keep a counter and write each new number in base 62, so every link \
    gets its own short code. A key-value table holds the code and the original address. The most \
    popular links stay in memory in front of the table.";
const PARAGRAPH: &str = "I would keep a counter and write each new number in base 62, so every \
    link gets its own code of six or seven characters. A key-value table holds the code and the \
    original address it points to. Most traffic goes to a few famous links, so I would keep those \
    hot entries in memory in front of the table. Reading is far more common than writing, so I \
    would put several read copies of the data behind a balancer. Links should be able to run out \
    after a date, and I would limit how many links one client can make so spammers cannot flood \
    it.";

const MORE: &str = "For the codes themselves I prefer a counter to hashing, because a hash of \
    the address can collide and then needs a second lookup, while a counter never repeats. To keep \
    one machine from becoming the bottleneck, each server could reserve a block of a thousand \
    numbers at a time from a shared sequence. Redirects should answer with a 301 or 302 status; a \
    302 lets us count every click, which the marketing team will probably want. I would log each \
    click to a queue and aggregate the counts in the background so the redirect itself stays fast. \
    Analytics then come from those aggregates, not from the hot path.";
const EVEN_MORE: &str = "On failures, if the cache goes down the table still answers, only \
    slower, so the service degrades instead of stopping. I would keep the table in two regions \
    and let reads go to the nearest one. Custom aliases are a nice extra: a user asks for a \
    readable name and we check that it is free before saving it. Finally I would watch latency \
    percentiles and the cache hit rate, because those tell us first when the design needs to grow, \
    and I would load-test with a realistic mix of nine reads for every write before launch.";

/// About 300 words of distinct sentences, as a long spoken answer.
fn long_answer() -> String {
    [PARAGRAPH, MORE, EVEN_MORE].join(" ")
}

fn input(text: &str) -> AnswerInput {
    AnswerInput {
        question: QUESTION.into(),
        expected_points: POINTS.iter().map(|p| p.to_string()).collect(),
        transcript: text.into(),
        category: "technical".into(),
        ..Default::default()
    }
}

fn summary(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.95))
}

fn main() {
    let encoder = SentenceEncoder::load(&default_model_dir())
        .expect("the sentence model (run scripts/fetch-assets.sh)");
    let long = long_answer();
    let answers = [
        ("short answer", SHORT.to_string()),
        ("300-word answer", long),
    ];
    println!(
        "machine: {}, RAYON_NUM_THREADS={}",
        iv_platform::host::describe(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into())
    );
    println!(
        "{:<18} {:>6} | {:>13} {:>11} | {:>13} {:>11}",
        "answer", "words", "inner p50 ms", "inner p95", "gRPC p50 ms", "gRPC p95"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut client = runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("iv-bench-{}", std::process::id()));
        let env: HashMap<String, String> = [
            ("SCORING_PORT".to_string(), "0".to_string()),
            ("DATA_DIR".to_string(), dir.display().to_string()),
        ]
        .into_iter()
        .collect();
        let config = scoring_service::Config::from_env(&env).expect("config");
        let credential = config.server.auth.credential("bench").expect("credential");
        let server = scoring_service::build(config)
            .await
            .expect("scoring service");
        let addr = server.local_addr();
        tokio::spawn(server.run_until(std::future::pending()));
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .expect("an address")
            .connect()
            .await
            .expect("client");
        ScoringServiceClient::new(iv_platform::auth::asserting_channel(channel, &credential))
    });

    for (name, text) in &answers {
        let words = text.split_whitespace().count();
        let input = input(text);
        answer::analyze(&input, &encoder).expect("warm-up");
        let inner: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                answer::analyze(&input, &encoder).expect("scored");
                t.elapsed()
            })
            .collect();
        let request = AnswerRequest {
            question: QUESTION.into(),
            answer: text.clone(),
            category: "technical".into(),
            expected_points: POINTS.iter().map(|p| p.to_string()).collect(),
            duration: 0.0,
        };
        let grpc: Vec<Duration> = runtime.block_on(async {
            client
                .analyze_answer(request.clone())
                .await
                .expect("warm-up");
            let mut out = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let t = Instant::now();
                client
                    .analyze_answer(request.clone())
                    .await
                    .expect("scored");
                out.push(t.elapsed());
            }
            out
        });
        let (i50, i95) = summary(inner);
        let (g50, g95) = summary(grpc);
        println!("{name:<18} {words:>6} | {i50:>13.1} {i95:>11.1} | {g50:>13.1} {g95:>11.1}");
    }
}
