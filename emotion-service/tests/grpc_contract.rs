//! Contract tests of `emotion.EmotionService` through the generated client: bad frames are
//! INVALID_ARGUMENT with a clear message, a valid frame without models is UNAVAILABLE saying how to
//! fix it, and the service stays up throughout.

use std::collections::HashMap;
use std::io::Cursor;

use iv_contracts::emotion::emotion_service_client::EmotionServiceClient;
use iv_contracts::emotion::{BatchRequest, FrameRequest, SessionRequest};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn spawn() -> Channel {
    iv_platform::telemetry::init_for_tests();
    let dir = std::env::temp_dir().join(format!("iv-emotion-{}", uuid::Uuid::new_v4().simple()));
    let env: HashMap<String, String> = [
        ("EMOTION_PORT", "0".to_string()),
        ("DATA_DIR", dir.display().to_string()),
        ("MODELS_DIR", dir.join("no-models").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let app = emotion_service::Application::build(emotion_service::Config::from_env(&env).unwrap())
        .await
        .unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 150, 120]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn frame(session: &str, bytes: Vec<u8>) -> FrameRequest {
    FrameRequest {
        session_id: session.into(),
        image_data: bytes,
        timestamp: 1,
        format: String::new(),
        policy: 0,
        frame_number: 1,
    }
}

#[tokio::test]
async fn bad_frames_are_invalid_argument_and_the_service_stays_up() {
    let channel = spawn().await;
    let mut client = EmotionServiceClient::new(channel);
    let full = png(64, 64);
    let mut bomb = png(64, 64);
    bomb[16..20].copy_from_slice(&20000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("truncated", full[..full.len() - 20].to_vec(), "truncated"),
        ("one pixel", png(1, 1), "1x1"),
        ("bomb", bomb, ""),
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
async fn without_models_a_valid_frame_is_unavailable_with_the_fix_in_the_message() {
    let channel = spawn().await;
    let mut client = EmotionServiceClient::new(channel.clone());
    let err = client
        .analyze_frame(frame("s2", png(64, 64)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("fetch-models"), "{}", err.message());

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
