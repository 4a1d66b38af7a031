//! Contract tests of `emotion.EmotionService` through the generated client: bad frames are
//! INVALID_ARGUMENT with a clear message, a valid frame without models is UNAVAILABLE saying how to
//! fix it, and the service stays up throughout.

use std::collections::HashMap;
use std::io::Cursor;

use iv_contracts::emotion::emotion_service_client::EmotionServiceClient;
use iv_contracts::emotion::{BatchRequest, EraseSessionRequest, FrameRequest, SessionRequest};
use iv_platform::auth::AssertingChannel;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The service as deployed, with the models fetched by scripts/fetch-assets.sh.
async fn spawn() -> AssertingChannel {
    spawn_with(None).await
}

/// An instance whose analyzer cannot run (what an instance without models would answer).
async fn spawn_without_models() -> AssertingChannel {
    spawn_with(Some(emotion_service::models_missing(
        "face analysis models are not loaded (run scripts/fetch-assets.sh)",
    )))
    .await
}

fn env(dir: &std::path::Path, models: Option<&std::path::Path>) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("EMOTION_PORT", "0".to_string()),
        ("DATA_DIR", dir.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(m) = models {
        env.insert("MODELS_DIR".into(), m.display().to_string());
    }
    env
}

async fn spawn_with(
    analyzer: Option<std::sync::Arc<dyn emotion_service::analysis::FrameAnalyzer>>,
) -> AssertingChannel {
    iv_platform::telemetry::init_for_tests();
    let dir = std::env::temp_dir().join(format!("iv-emotion-{}", uuid::Uuid::new_v4().simple()));
    let config = emotion_service::Config::from_env(&env(&dir, None)).unwrap();
    let credential = config.server.auth.credential("contract-test").unwrap();
    let app = match analyzer {
        Some(a) => emotion_service::build_with(config, a).await.unwrap(),
        None => emotion_service::build(config).await.unwrap(),
    };
    let addr = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    iv_platform::auth::asserting_channel(channel, &credential)
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 150, 120]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A consent as the interview service records one.
fn consent() -> iv_contracts::emotion::ConsentProof {
    iv_contracts::emotion::ConsentProof {
        notice_version: 1,
        notice_sha256: "ab".repeat(32),
        policy: 1,
        given_at: 1,
    }
}

fn frame(session: &str, bytes: Vec<u8>) -> FrameRequest {
    FrameRequest {
        session_id: session.into(),
        image_data: bytes,
        timestamp: 1,
        format: String::new(),
        policy: 0,
        frame_number: 1,
        consent: Some(consent()),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_frames_are_invalid_argument_and_the_service_stays_up() {
    let channel = spawn().await;
    let mut client = EmotionServiceClient::new(channel);
    let full = png(64, 64);
    // A valid PNG whose header claims 20000x20000 pixels (checksum fixed, so only the size is
    // wrong): refused for its size before anything is decoded.
    let mut bomb = png(64, 64);
    bomb[16..20].copy_from_slice(&20000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("truncated", full[..full.len() - 20].to_vec(), "truncated"),
        ("one pixel", png(1, 1), "1x1"),
        ("bomb", bomb, "20000x20000"),
        (
            "gif",
            b"GIF89a\x01\x00\x01\x00".to_vec(),
            "only JPEG and PNG",
        ),
    ];
    for (name, bytes, needle) in cases {
        let err = client.analyze_frame(frame("s1", bytes)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name}: {err:?}");
        assert!(err.message().contains(needle), "{name}: {}", err.message());
    }
    let err = client
        .analyze_frame(frame("bad id!", png(64, 64)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Still serving after all of that.
    let summary = client
        .get_session_summary(SessionRequest {
            session_id: "s1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.frames_analyzed, 0);
}

#[tokio::test]
async fn an_instance_that_cannot_analyse_answers_unavailable_and_reports_not_serving() {
    let channel = spawn_without_models().await;
    let mut client = EmotionServiceClient::new(channel.clone());
    let err = client
        .analyze_frame(frame("s2", png(64, 64)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("fetch-assets"), "{}", err.message());

    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: "emotion.EmotionService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let channel = spawn().await;
    let mut client = EmotionServiceClient::new(channel);
    let frames = (0..65).map(|_| frame("s3", png(32, 32))).collect();
    let err = client
        .analyze_batch(BatchRequest {
            session_id: "s3".into(),
            frames,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_missing_model_file_stops_the_service_with_the_file_and_the_fix() {
    let dir = std::env::temp_dir().join(format!("iv-emotion-{}", uuid::Uuid::new_v4().simple()));
    let empty = dir.join("empty-models");
    std::fs::create_dir_all(&empty).unwrap();
    let config = emotion_service::Config::from_env(&env(&dir, Some(&empty))).unwrap();
    let err = emotion_service::build(config)
        .await
        .err()
        .expect("no models, no service")
        .to_string();
    assert!(
        err.contains("face_detection_short_range.graph.json"),
        "{err}"
    );
    assert!(err.contains("scripts/fetch-assets.sh"), "{err}");
}

fn jpeg_frame(n: usize) -> Vec<u8> {
    let home = iv_platform::assets::dir();
    std::fs::read(home.join(format!("media/single_face/frame_{n:03}.jpg")))
        .expect("media (run scripts/fetch-assets.sh)")
}

/// The `n`th frame sent in a session (33 ms apart from 1_000_000, numbered from 1), showing
/// frame `source` of the webcam clip.
fn clip_frame(session: &str, n: usize, source: usize) -> FrameRequest {
    FrameRequest {
        session_id: session.into(),
        image_data: jpeg_frame(source),
        timestamp: 1_000_000 + n as i64 * 33,
        format: "jpeg".into(),
        policy: 0,
        frame_number: n as i64 + 1,
        consent: Some(consent()),
        ..Default::default()
    }
}

#[tokio::test]
async fn analyze_batch_streams_one_answer_per_frame_in_order_and_detect_blink_counts_the_blink() {
    let channel = spawn().await;
    let mut client = EmotionServiceClient::new(channel);
    let frames: Vec<FrameRequest> = (0..40).map(|i| clip_frame("blinker", i, i)).collect();
    let mut stream = client
        .analyze_batch(BatchRequest {
            session_id: "blinker".into(),
            frames,
        })
        .await
        .unwrap()
        .into_inner();
    let mut numbers = Vec::new();
    while let Some(r) = tokio_stream::StreamExt::next(&mut stream).await {
        let r = r.unwrap();
        assert!(r.face_metrics.as_ref().unwrap().detected);
        assert_eq!(r.face_metrics.as_ref().unwrap().landmarks.len(), 68);
        numbers.push(r.frame_number);
    }
    assert_eq!(
        numbers,
        (1..=40).collect::<Vec<i64>>(),
        "one response per frame, in order"
    );
    let blink = client
        .detect_blink(clip_frame("blinker", 40, 40))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(blink.blink_count, 1);
    assert!(
        blink.avg_duration > 30.0 && blink.avg_duration < 500.0,
        "{blink:?}"
    );
    // The timestamps list every blink counted, not only one that ended on this frame: the eyes
    // close in frame 26 (timestamps are 33 ms apart from 1_000_000).
    assert_eq!(blink.blink_timestamps, [1_000_000 + 26 * 33], "{blink:?}");
    let summary = client
        .get_session_summary(SessionRequest {
            session_id: "blinker".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.frames_analyzed, 41);
    assert_eq!(summary.blink_metrics.unwrap().count, 1);
    assert!(summary.mean_attention > 0.5);
}

/// Real frames played so the eyes stay shut for ~0.8 s (the blink's closed frames 26-28 each
/// held for eight frames): one long closure, counted as such through gRPC, and no blink.
#[tokio::test]
async fn a_long_closure_is_reported_as_one_and_never_as_blinks() {
    let channel = spawn().await;
    let mut client = EmotionServiceClient::new(channel);
    let order: Vec<usize> = (0..26)
        .chain([26, 27, 28].into_iter().flat_map(|f| [f; 8]))
        .chain(29..40)
        .collect();
    let frame = |n: usize, source: usize| clip_frame("sleeper", n, source);
    let mut stream = client
        .analyze_batch(BatchRequest {
            session_id: "sleeper".into(),
            frames: order
                .iter()
                .enumerate()
                .map(|(n, &f)| frame(n, f))
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(r) = tokio_stream::StreamExt::next(&mut stream).await {
        r.unwrap();
    }
    let blinks = client
        .detect_blink(frame(order.len(), 40))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (blinks.blink_count, blinks.long_closures),
        (0, 1),
        "{blinks:?}"
    );
    assert!(blinks.blink_timestamps.is_empty(), "{blinks:?}");
    assert!(blinks.perclos > 0.3, "{blinks:?}");
    let summary = client
        .get_session_summary(SessionRequest {
            session_id: "sleeper".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .blink_metrics
        .unwrap();
    assert_eq!(
        (summary.count, summary.long_closures),
        (0, 1),
        "{summary:?}"
    );
}

#[tokio::test]
async fn the_engagement_policy_is_enforced_by_the_service_and_cannot_be_loosened() {
    let channel = spawn().await;
    let mut client = EmotionServiceClient::new(channel);
    let engagement = iv_contracts::emotion::AnalysisPolicy::Engagement as i32;
    let first = FrameRequest {
        policy: engagement,
        ..clip_frame("private", 0, 0)
    };
    let r = client.analyze_frame(first).await.unwrap().into_inner();
    assert!(
        r.emotion.is_empty() && r.probabilities.is_empty(),
        "no emotion under the engagement policy"
    );
    assert!(r.attention.unwrap().score > 0.0);
    // A later request asking for full analysis of the same session is still held to engagement.
    let second = FrameRequest {
        policy: 1,
        ..clip_frame("private", 1, 1)
    };
    let r = client.analyze_frame(second).await.unwrap().into_inner();
    assert!(r.emotion.is_empty(), "the policy cannot be loosened");
    let summary = client
        .get_session_summary(SessionRequest {
            session_id: "private".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(summary.emotion_counts.is_empty());
}

#[tokio::test]
async fn a_frame_naming_another_organisation_is_refused_as_if_the_session_did_not_exist() {
    let mut client = EmotionServiceClient::new(spawn().await);
    let frame_for = |n: usize, org: &str| FrameRequest {
        org_id: org.into(),
        ..clip_frame("owned", n - 1, n)
    };
    client.analyze_frame(frame_for(1, "org-a")).await.unwrap();
    // Refused every time (the owner is remembered after the first frame), while the owner's frames
    // still go through.
    for n in [2, 3] {
        let refused = client
            .analyze_frame(frame_for(n, "org-b"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }
    client.analyze_frame(frame_for(4, "org-a")).await.unwrap();
}

#[tokio::test]
async fn an_erased_session_loses_its_stored_frames_refuses_new_ones_and_answers_a_repeat_alike() {
    let mut client = EmotionServiceClient::new(spawn().await);
    let frame_for = |session: &str, n: usize, org: &str| FrameRequest {
        timestamp: n as i64 * 200,
        org_id: org.into(),
        ..clip_frame(session, n - 1, n)
    };
    for n in 1..=3 {
        client
            .analyze_frame(frame_for("erased", n, "org-a"))
            .await
            .unwrap();
    }
    client
        .analyze_frame(frame_for("kept", 1, "org-a"))
        .await
        .unwrap();
    let erase = |org: &str| EraseSessionRequest {
        session_id: "erased".into(),
        org_id: org.into(),
    };

    let refused = client.erase_session(erase("org-b")).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::NotFound,
        "another organisation's session is absent"
    );

    let counts = client
        .erase_session(erase("org-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts.deleted.get("frame_analyses"), Some(&3), "{counts:?}");
    assert_eq!(
        counts.deleted.get("emotion_sessions"),
        Some(&1),
        "{counts:?}"
    );
    assert!(counts.deleted.contains_key("blinks"), "{counts:?}");

    let summary = |id: &str| SessionRequest {
        session_id: id.into(),
    };
    let after = client
        .get_session_summary(summary("erased"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.frames_analyzed, 0, "nothing left to summarise");
    let kept = client
        .get_session_summary(summary("kept"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.frames_analyzed, 1, "other sessions are untouched");

    // A late frame (one deferred before the erasure) is refused and stores nothing.
    let late = client
        .analyze_frame(frame_for("erased", 4, "org-a"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(late.message().contains("erased"), "{late:?}");

    let again = client
        .erase_session(erase("org-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again, counts,
        "a repeated erasure answers with the first counts"
    );
}

/// One face in every frame it analyses, and three people whenever it counts everyone, which it
/// does only once the test opens its gate.
struct Crowd {
    scans: std::sync::Mutex<Vec<emotion_service::analysis::Scan>>,
    counts: std::sync::atomic::AtomicUsize,
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl emotion_service::analysis::FrameAnalyzer for Crowd {
    fn analyze(
        &self,
        _: &image::RgbImage,
        _: iv_contracts::policy::AnalysisPolicy,
        scan: emotion_service::analysis::Scan,
    ) -> Result<emotion_service::analysis::FrameAnalysis, emotion_service::analysis::AnalyzerError>
    {
        self.scans.lock().unwrap().push(scan);
        Ok(emotion_service::analysis::FrameAnalysis {
            face_count: 1,
            detector_ran: !matches!(scan, emotion_service::analysis::Scan::Track(_)),
            face: Some(emotion_service::analysis::FaceBox {
                x: 10.0,
                y: 10.0,
                width: 30.0,
                height: 30.0,
                confidence: 0.9,
            }),
            ..Default::default()
        })
    }

    fn count_everyone(
        &self,
        _: &image::RgbImage,
    ) -> Result<u32, emotion_service::analysis::AnalyzerError> {
        self.counts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let opened = self
            .gate
            .lock()
            .unwrap()
            .recv_timeout(std::time::Duration::from_secs(30));
        assert!(opened.is_ok(), "the test never opened the gate");
        Ok(3)
    }
}

#[tokio::test]
async fn frames_are_answered_while_the_far_pass_counts_and_its_people_are_counted_after() {
    let (open, gate) = std::sync::mpsc::channel();
    let crowd = std::sync::Arc::new(Crowd {
        scans: Default::default(),
        counts: Default::default(),
        gate: std::sync::Mutex::new(gate),
    });
    let channel = spawn_with(Some(crowd.clone())).await;
    let mut client = EmotionServiceClient::new(channel);
    let mut send = async |n: i64| {
        let mut request = frame("crowd", png(64, 64));
        (request.frame_number, request.timestamp) = (n, 1_000 + n * 200);
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.analyze_frame(request),
        )
        .await
        .expect("a frame waited for the far pass")
        .unwrap();
        answer.into_inner().face_metrics.unwrap().face_count
    };
    // The session's far pass comes due within its first 20 frames; it cannot finish (its gate is
    // shut), yet every frame is answered, with the one face in view.
    for n in 1..=30 {
        assert_eq!(send(n).await, 1, "frame {n}");
    }
    let counts = || crowd.counts.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(counts(), 1, "one far pass started, and not asked for again");
    let scans = crowd.scans.lock().unwrap().clone();
    assert!(
        !scans[1..].contains(&emotion_service::analysis::Scan::Everyone),
        "a frame with the candidate in view ran the far pass itself: {scans:?}"
    );
    open.send(()).unwrap();
    let mut counted = None;
    for n in 31..=80 {
        if send(n).await == 3 {
            counted = Some(n);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let counted = counted.expect("the far pass's people were never counted");
    // They stay counted through the tracked frames that follow.
    assert_eq!(send(counted + 1).await, 3);
}
