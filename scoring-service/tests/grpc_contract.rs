//! Contract tests of `scoring.ScoringService` through the generated client, against the real
//! server on a free port.

use std::collections::HashMap;

use iv_contracts::scoring::scoring_service_client::ScoringServiceClient;
use iv_contracts::scoring::{
    Answer, AnswerRequest, EmotionData, EraseSessionRequest, InterviewMetadata, ReportRequest,
    ScoreRequest,
};
use iv_platform::auth::AssertingChannel;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn spawn() -> (
    ScoringServiceClient<AssertingChannel>,
    AssertingChannel,
    std::path::PathBuf,
) {
    iv_platform::telemetry::init_for_tests();
    let dir = std::env::temp_dir().join(format!("iv-scoring-{}", uuid::Uuid::new_v4().simple()));
    let env: HashMap<String, String> = [
        ("SCORING_PORT", "0".to_string()),
        ("DATA_DIR", dir.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = scoring_service::Config::from_env(&env).unwrap();
    let credential = config.server.auth.credential("contract-test").unwrap();
    let app = scoring_service::build(config).await.unwrap();
    let addr = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = iv_platform::auth::asserting_channel(channel, &credential);
    (ScoringServiceClient::new(channel.clone()), channel, dir)
}

fn answer(id: &str, question: &str, points: &[&str], transcript: &str) -> Answer {
    Answer {
        question_id: id.into(),
        transcript: transcript.into(),
        duration: 30.0,
        confidence: 0.0,
        question: question.into(),
        category: "technical".into(),
        expected_points: points.iter().map(|p| p.to_string()).collect(),
    }
}

fn request(session: &str, frames: usize) -> ScoreRequest {
    ScoreRequest {
        session_id: session.into(),
        answers: vec![answer(
            "q1",
            "What is a database index?",
            &["speeds up lookups", "slower writes and extra storage"],
            "An index speeds up lookups because the database avoids a full scan. The cost is slower writes \
             and extra storage, for example on a write-heavy table.",
        )],
        emotions: (0..frames)
            .map(|i| EmotionData {
                timestamp: i as i64 * 100,
                emotion: "neutral".into(),
                confidence: 0.8,
                blink_count: 0,
                face_present: true,
                attention: 0.9,
            })
            .collect(),
        metadata: Some(InterviewMetadata {
            user_id: "u1".into(),
            total_questions: 1,
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn analyze_answer_scores_coverage_and_says_insufficient_for_an_empty_answer() {
    let (mut client, _, _) = spawn().await;
    let good = client
        .analyze_answer(AnswerRequest {
            question: "How does Rust prevent data races?".into(),
            answer: "Ownership and borrowing rules allow one mutable reference, and the Send and Sync traits \
                     restrict what crosses threads, because the compiler checks it."
                .into(),
            category: "technical".into(),
            expected_points: vec!["ownership and borrowing".into(), "Send and Sync traits".into()],
            duration: 12.0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(good.sufficient_data);
    assert_eq!(good.covered_points.len(), 2);
    assert!(good.relevance_score >= 80.0, "{good:?}");
    let empty = client
        .analyze_answer(AnswerRequest {
            question: "Q?".into(),
            answer: "".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!empty.sufficient_data);
    assert!(empty.feedback.contains("Insufficient data"));
}

const URL_QUESTION: &str = "How would you design a URL shortening service?";
const URL_POINTS: [&str; 5] = [
    "generate unique short keys or hashes",
    "database storage mapping keys to URLs",
    "cache popular redirects",
    "scale reads with replicas or load balancing",
    "handle expiry, collisions and abuse",
];

async fn url_answer(
    client: &mut ScoringServiceClient<AssertingChannel>,
    answer: &str,
) -> iv_contracts::scoring::AnswerAnalysis {
    client
        .analyze_answer(AnswerRequest {
            question: URL_QUESTION.into(),
            answer: answer.into(),
            category: "technical".into(),
            expected_points: URL_POINTS.iter().map(|p| p.to_string()).collect(),
            duration: 0.0,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn answers_are_judged_by_meaning_not_by_the_rubric_words_they_repeat() {
    let (mut client, _, _) = spawn().await;
    let own_words = url_answer(
        &mut client,
        "I would keep a counter and write each new number in base 62, so every link gets its own          code of six or seven characters. A key-value table holds the code and the original address          it points to. Most traffic goes to a few famous links, so I would keep those hot entries in memory in front of the table. Reading is far more common than writing, so I would put          several read copies of the data behind a balancer. Links should run out after a date, and          I would limit how many links one client can make so spammers cannot flood it.",
    )
    .await;
    let partial = url_answer(
        &mut client,
        "I would create a short code for every long link by hashing the URL. Then I would save the          code and the original URL together in a database table.",
    )
    .await;
    let keywords = url_answer(
        &mut client,
        "unique short keys hashes database storage mapping keys URLs cache popular redirects scale          reads replicas load balancing expiry collisions abuse",
    )
    .await;
    let negated = url_answer(
        &mut client,
        "I would not generate unique short keys or hashes, and I would not bother with database          storage mapping keys to URLs. Caching popular redirects is pointless. Scaling reads with          replicas or load balancing is unnecessary. Handling expiry, collisions and abuse is a          waste of time.",
    )
    .await;
    let off_topic = url_answer(
        &mut client,
        "Last weekend I went hiking in the mountains with my dog. We walked for six hours along a          ridge and could see three lakes from the top.",
    )
    .await;

    let r = |a: &iv_contracts::scoring::AnswerAnalysis| a.relevance_score;
    assert!(r(&own_words) >= 60.0, "{own_words:?}");
    assert!(
        r(&own_words) > r(&partial) + 15.0,
        "{own_words:?}\n{partial:?}"
    );
    for low in [&keywords, &negated, &off_topic] {
        assert!(r(&partial) > r(low) + 15.0, "{partial:?}\n{low:?}");
        assert!(r(low) <= 10.0, "{low:?}");
    }
    // The evidence says why, point by point.
    use iv_contracts::scoring::PointStatus;
    assert_eq!(own_words.evidence.len(), URL_POINTS.len());
    let cache = &own_words.evidence[2];
    assert_eq!(cache.point, "cache popular redirects");
    assert!(cache.status == PointStatus::Covered as i32, "{cache:?}");
    assert!(
        cache.sentence.contains("famous links") || cache.sentence.contains("hot entries"),
        "{cache:?}"
    );
    assert!(
        negated
            .evidence
            .iter()
            .all(|e| e.status == PointStatus::Rejected as i32),
        "{negated:?}"
    );
    assert!(
        keywords
            .evidence
            .iter()
            .all(|e| e.status != PointStatus::Covered as i32),
        "{keywords:?}"
    );
    assert!(
        keywords.feedback.contains("list of keywords"),
        "{}",
        keywords.feedback
    );
    assert!(!own_words.method.is_empty());
}

#[tokio::test]
async fn an_empty_question_is_refused_and_says_what_is_missing() {
    let (mut client, _, _) = spawn().await;
    let err = client
        .analyze_answer(AnswerRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("question is required"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn calculate_score_weights_components_and_reports_missing_engagement_honestly() {
    let (mut client, _, _) = spawn().await;
    let full = client
        .calculate_score(request("s-full", 40))
        .await
        .unwrap()
        .into_inner();
    assert!(full.sufficient_data);
    assert_eq!(full.components.len(), 4);
    assert!(
        full.components.iter().all(|c| c.sufficient_data),
        "{:?}",
        full.components
    );
    // The weighting README documents, as the response states it.
    let weights: Vec<(&str, f32)> = full
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("technical", 0.5),
            ("communication", 0.3),
            ("engagement", 0.2),
            ("overall", 1.0)
        ]
    );
    let parts = [
        full.technical_score,
        full.communication_score,
        full.emotion_score,
    ];
    let (low, high) = (
        parts.iter().copied().fold(f32::MAX, f32::min),
        parts.iter().copied().fold(f32::MIN, f32::max),
    );
    assert!(
        (low..=high).contains(&full.overall_score),
        "a weighted mean lies between its parts: {full:?}"
    );

    let no_frames = client
        .calculate_score(request("s-noframes", 0))
        .await
        .unwrap()
        .into_inner();
    let engagement = no_frames
        .components
        .iter()
        .find(|c| c.name == "engagement")
        .unwrap();
    assert!(!engagement.sufficient_data);
    assert!(engagement.reason.starts_with("Insufficient data"));
    assert!(
        no_frames
            .insights
            .iter()
            .all(|i| i.category != "engagement")
    );
}

#[tokio::test]
async fn generate_report_serves_json_and_pdf_and_refuses_what_it_cannot_give() {
    let (mut client, _, _) = spawn().await;
    client
        .calculate_score(request("s-report", 20))
        .await
        .unwrap();
    let json = client
        .generate_report(ReportRequest {
            session_id: "s-report".into(),
            include_emotions: true,
            format: "json".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let report: serde_json::Value = serde_json::from_slice(&json.report_data).unwrap();
    assert_eq!(report["session_id"], "s-report");
    assert!(report["engagement"].is_object());
    let pdf = client
        .generate_report(ReportRequest {
            session_id: "s-report".into(),
            format: "pdf".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pdf.report_data.starts_with(b"%PDF-"));
    assert_eq!(pdf.format, "pdf");

    let missing = client
        .generate_report(ReportRequest {
            session_id: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let video = client
        .generate_report(ReportRequest {
            session_id: "s-report".into(),
            include_video: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(video.code(), Code::InvalidArgument);
    assert!(video.message().contains("never stored"));
    let format = client
        .generate_report(ReportRequest {
            session_id: "s-report".into(),
            format: "docx".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(format.code(), Code::InvalidArgument);
    let no_session = client.calculate_score(request("", 0)).await.unwrap_err();
    assert_eq!(no_session.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_grpc_health_service_reports_serving() {
    let (_, channel, _) = spawn().await;
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: "scoring.ScoringService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
}

/// Lists the services over one version of gRPC reflection, as a client of that version would.
macro_rules! listed_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection answers")
            .into_inner();
        match responses.message().await.unwrap().unwrap().message_response {
            Some(MessageResponse::ListServicesResponse(list)) => list
                .service
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<String>>(),
            other => panic!("not a service list: {other:?}"),
        }
    }};
}

#[tokio::test]
async fn reflection_v1_lists_the_services() {
    let (_, channel, _) = spawn().await;
    let services = listed_services!(v1, channel);
    assert!(
        services.iter().any(|s| s == "scoring.ScoringService"),
        "{services:?}"
    );
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_services_for_older_clients() {
    let (_, channel, _) = spawn().await;
    let services = listed_services!(v1alpha, channel);
    assert!(
        services.iter().any(|s| s == "scoring.ScoringService"),
        "{services:?}"
    );
}

#[tokio::test]
async fn an_erased_interview_loses_its_score_and_report_and_is_never_scored_again() {
    let (mut client, _, _) = spawn().await;
    let owned = |session: &str| {
        let mut r = request(session, 10);
        r.metadata.as_mut().unwrap().org_id = "org-a".into();
        r
    };
    client.calculate_score(owned("s-erase")).await.unwrap();
    client.calculate_score(owned("s-keep")).await.unwrap();
    let report = |session: &str| ReportRequest {
        session_id: session.into(),
        format: "json".into(),
        ..Default::default()
    };
    client.generate_report(report("s-erase")).await.unwrap();
    let erase = |org: &str| EraseSessionRequest {
        session_id: "s-erase".into(),
        org_id: org.into(),
    };

    let refused = client.erase_session(erase("org-b")).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::NotFound,
        "another organisation's interview is absent"
    );
    let counts = client
        .erase_session(erase("org-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts.deleted.get("scores"), Some(&1), "{counts:?}");
    assert_eq!(counts.deleted.get("reports"), Some(&1), "{counts:?}");

    let gone = client.generate_report(report("s-erase")).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    client.generate_report(report("s-keep")).await.unwrap();
    // A completion event still queued when the interview was erased is refused.
    let late = client.calculate_score(owned("s-erase")).await.unwrap_err();
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

#[tokio::test]
async fn after_a_withdrawal_the_score_is_recomputed_without_face_analysis() {
    let (mut client, _, _) = spawn().await;
    let mut scored = request("s-withdrawn", 30);
    scored.metadata.as_mut().unwrap().org_id = "org-a".into();
    let before = client.calculate_score(scored).await.unwrap().into_inner();
    assert!(before.emotion_score > 0.0, "{before:?}");
    let report = ReportRequest {
        session_id: "s-withdrawn".into(),
        format: "json".into(),
        ..Default::default()
    };
    client.generate_report(report.clone()).await.unwrap();
    let forget = |org: &str| EraseSessionRequest {
        session_id: "s-withdrawn".into(),
        org_id: org.into(),
    };

    let refused = client.forget_face_analysis(forget("org-b")).await;
    assert_eq!(refused.unwrap_err().code(), Code::NotFound);
    let counts = client
        .forget_face_analysis(forget("org-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            counts.deleted.get("scores_rescored"),
            counts.deleted.get("reports")
        ),
        (Some(&1), Some(&1)),
        "{counts:?}"
    );
    let rendered = client.generate_report(report).await.unwrap().into_inner();
    let json: serde_json::Value = serde_json::from_slice(&rendered.report_data).unwrap();
    let engagement = json["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "engagement")
        .unwrap();
    assert!(engagement["score"].is_null(), "{engagement}");
    assert!(
        engagement["reason"]
            .as_str()
            .unwrap()
            .contains("withdrew consent"),
        "{engagement}"
    );
    assert!(json["overall_score"].is_number(), "the answers still count");
    let again = client
        .forget_face_analysis(forget("org-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.deleted.get("scores_rescored"), Some(&1), "idempotent");
}
