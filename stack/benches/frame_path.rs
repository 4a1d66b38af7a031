//! One face frame's journey, timed at each layer a user's request crosses, side by side: the
//! vision pipeline alone (inner), gRPC `AnalyzeFrame` to the running emotion service, and the
//! gateway's WebSocket (interview service, gRPC, emotion service and back), as JSON with base64
//! and as a binary message. One session, each frame sent once the previous one is answered, so a
//! gap between two rows is what that layer adds.
//!
//! Run, on one core as the target is stated (client and services share it):
//!   taskset -c 0 cargo bench -p iv-stack --bench frame_path
//! (after scripts/fetch-assets.sh). `BENCH_PASSES` (default 3) passes over the 72 frames of
//! `single_face.mp4`; prints the machine, then frames/s, p50 and p95 per path. `BENCH_TRACES=1`
//! exports every span to an OTLP collector in the bench's process, to show what tracing costs.
//! Logs follow `RUST_LOG` (off by default, as the figures are taken).

use std::time::{Duration, Instant};

use base64::Engine;
use emotion_service::analysis::{FAR_EVERY, FIRST_FAR_WITHIN, FrameAnalyzer, Scanner};
use emotion_service::vision::Pipeline;
use futures_util::{SinkExt, StreamExt};
use iv_contracts::emotion::emotion_service_client::EmotionServiceClient;
use iv_contracts::emotion::{FramePriority, FrameRequest};
use iv_contracts::policy::AnalysisPolicy;
use iv_platform::client::HttpClient;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Row {
    path: &'static str,
    samples: Vec<Duration>,
}

impl Row {
    fn print(&mut self, inner_p50: f64) {
        self.samples.sort();
        let at = |q: f64| {
            self.samples[((self.samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
        };
        let total: Duration = self.samples.iter().sum();
        let fps = self.samples.len() as f64 / total.as_secs_f64();
        println!(
            "{:<40} {fps:>9.1} {:>8.1} {:>8.1} {:>+10.1}",
            self.path,
            at(0.5),
            at(0.95),
            at(0.5) - inner_p50
        );
    }

    fn p50(&mut self) -> f64 {
        self.samples.sort();
        self.samples[self.samples.len() / 2].as_secs_f64() * 1e3
    }
}

// Every session's 72 frames run two far passes whatever its phase, as the inner row's (phase 0)
// do, so that the gap between rows is what each layer adds.
const _: () = assert!(FIRST_FAR_WITHIN + FAR_EVERY <= 72);

fn main() {
    emotion_service::prepare_for_models();
    let assets = iv_platform::assets::dir();
    let jpegs: Vec<Vec<u8>> = (0..72)
        .map(|i| {
            std::fs::read(assets.join(format!("media/single_face/frame_{i:03}.jpg")))
                .expect("media (run scripts/fetch-assets.sh)")
        })
        .collect();
    let passes: usize = std::env::var("BENCH_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!("machine: {}", iv_platform::host::describe());
    println!(
        "one session, {passes} passes of 72 frames (640x360 JPEG), each sent once the last is answered"
    );

    let mut inner = Row {
        path: "pipeline alone (inner, tracking)",
        samples: Vec::new(),
    };
    let pipeline = Pipeline::load(&assets.join("models")).expect("models");
    for _ in 0..passes {
        let mut scanner = Scanner::default();
        for j in &jpegs {
            let t = Instant::now();
            let f = image::load_from_memory(j).unwrap().to_rgb8();
            let scan = scanner.next();
            let mut a = pipeline.analyze(&f, AnalysisPolicy::Full, scan).unwrap();
            inner.samples.push(t.elapsed());
            scanner.saw(scan, &mut a);
        }
    }
    drop(pipeline);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let traced = std::env::var_os("BENCH_TRACES").is_some();
    let rows = runtime.block_on(async {
        // With BENCH_TRACES set, every service exports its spans to a collector in this process,
        // as it would with OTEL_EXPORTER_OTLP_ENDPOINT; otherwise no trace layer is installed.
        let receiver = match traced {
            true => Some(iv_test_support::otlp::TraceReceiver::start().await),
            false => None,
        };
        let telemetry = iv_platform::telemetry::init_with(
            &iv_platform::telemetry::TraceExport {
                endpoint: receiver.as_ref().map(|r| r.endpoint.clone()),
                service: "interview-backend".into(),
            },
            "off",
        );
        let dir = std::env::temp_dir().join(format!("iv-bench-{}", std::process::id()));
        let env = iv_stack::test_env(&dir, &[]);
        let stack = iv_stack::Stack::start(env.clone(), None)
            .await
            .expect("the stack starts");
        let credential =
            iv_platform::auth::AuthConfig::from_env(&iv_platform::config::Env::new(&env))
                .expect("auth config")
                .credential("bench")
                .expect("credential");
        let grpc = grpc_row(
            &format!("http://{}", stack.addresses.emotion),
            &credential,
            &jpegs,
            passes,
        )
        .await;
        let gateway = stack.gateway_url();
        let token = iv_stack::tokens::mint(
            &env,
            &iv_stack::tokens::first_admin(),
            std::time::Duration::from_secs(3600),
        )
        .expect("a token");
        let json_ws = ws_row(&gateway, &token, &jpegs, passes, Encoding::Json).await;
        let binary_ws = ws_row(&gateway, &token, &jpegs, passes, Encoding::Binary).await;
        stack.stop().await;
        let _ = std::fs::remove_dir_all(dir);
        telemetry.shutdown().await;
        if let Some(receiver) = receiver {
            println!("traces exported: {} spans received", receiver.spans().len());
        }
        [grpc, json_ws, binary_ws]
    });
    println!(
        "{:<40} {:>9} {:>8} {:>8} {:>10}",
        "path", "frames/s", "p50 ms", "p95 ms", "p50 - inner"
    );
    let inner_p50 = inner.p50();
    inner.print(inner_p50);
    for mut row in rows {
        row.print(inner_p50);
    }
}

async fn grpc_row(
    url: &str,
    credential: &iv_platform::auth::ServiceCredential,
    jpegs: &[Vec<u8>],
    passes: usize,
) -> Row {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .expect("an address")
        .connect()
        .await
        .expect("gRPC client");
    let mut client =
        EmotionServiceClient::new(iv_platform::auth::asserting_channel(channel, credential));
    let mut samples = Vec::new();
    for pass in 0..passes {
        let session_id = format!("bench-grpc-{pass}");
        for (i, j) in jpegs.iter().enumerate() {
            let request = FrameRequest {
                session_id: session_id.clone(),
                image_data: j.clone(),
                timestamp: iv_contracts::now_millis(),
                format: "jpeg".into(),
                policy: iv_contracts::emotion::AnalysisPolicy::Full as i32,
                frame_number: i as i64 + 1,
                priority: FramePriority::Live as i32,
                org_id: iv_stack::tokens::DEFAULT_ORG.into(),
                consent: Some(iv_test_support::consent_proof()),
            };
            let t = Instant::now();
            client.analyze_frame(request).await.expect("analysed");
            samples.push(t.elapsed());
        }
    }
    Row {
        path: "gRPC AnalyzeFrame (emotion service)",
        samples,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Json,
    Binary,
}

async fn ws_row(
    gateway: &str,
    token: &str,
    jpegs: &[Vec<u8>],
    passes: usize,
    encoding: Encoding,
) -> Row {
    let http = HttpClient::new().with_bearer(token);
    let mut samples = Vec::new();
    for _ in 0..passes {
        let started = http
            .post_json(
                &format!("{gateway}/api/v1/interviews/start"),
                &json!({"user_id": "bench", "policy": "full", "consent": true}),
            )
            .await
            .expect("interview started");
        let id = started.json()["id"].as_str().expect("an id").to_string();
        let url = format!("{}/ws/interviews/{id}", gateway.replacen("http", "ws", 1));
        let request = iv_stack::ws_request(&url, Some(token)).expect("a request");
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("socket");
        for j in jpegs {
            let message = match encoding {
                Encoding::Json => Message::Text(
                    json!({"type": "frame", "data": {
                        "image": base64::engine::general_purpose::STANDARD.encode(j),
                        "timestamp": iv_contracts::now_millis(), "format": "jpeg"}})
                    .to_string()
                    .into(),
                ),
                Encoding::Binary => Message::Binary(j.clone().into()),
            };
            let t = Instant::now();
            socket.send(message).await.expect("sent");
            loop {
                let Some(Ok(Message::Text(text))) = socket.next().await else {
                    panic!("the socket closed");
                };
                let m: Value = serde_json::from_str(&text).expect("JSON");
                match m["type"].as_str() {
                    Some("emotion_update") => break,
                    Some("error") if m["data"]["code"] != "FACE_NOT_DETECTED" => {
                        panic!("error: {m}")
                    }
                    _ => {}
                }
            }
            samples.push(t.elapsed());
        }
        let _ = socket.close(None).await;
    }
    Row {
        path: match encoding {
            Encoding::Json => "gateway WebSocket, JSON + base64",
            Encoding::Binary => "gateway WebSocket, binary JPEG",
        },
        samples,
    }
}
