//! Several interview-service instances: whichever instance holds a candidate's socket hears that
//! the report is ready, while the score itself is recorded once.

use std::time::Duration;

use iv_stack::Stack;
use iv_stack::sim::{SimOptions, run};
use iv_test_support::*;

/// One more part of the stack beside `main`, sharing its database and broker namespace.
async fn beside(main: &TestStack, services: &str, extra: &[(&str, &str)]) -> Stack {
    let mut env = iv_stack::test_env(&main.data_dir.join(unique("part-")), extra);
    let shared = main.stack.as_ref().unwrap();
    env.insert("STACK_SERVICES".into(), services.into());
    for key in ["DATABASE_URL", "AMQP_URL", "AMQP_NAMESPACE"] {
        env.insert(key.into(), main_env(main, key));
    }
    // One installation: the main stack's signing key is the one every part trusts.
    let key = iv_platform::auth::signing::default_key_path(&main.data_dir.display().to_string());
    env.insert("AUTH_SIGNING_KEY_FILE".into(), key.display().to_string());
    env.insert(
        "EMOTION_GRPC_URL".into(),
        format!("http://{}", shared.addresses.emotion),
    );
    env.insert(
        "SCORING_GRPC_URL".into(),
        format!("http://{}", shared.addresses.scoring),
    );
    Stack::start(env, None).await.expect("the part starts")
}

fn main_env(main: &TestStack, key: &str) -> String {
    main.env
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("{key} is set for the main stack"))
}

#[tokio::test]
async fn every_instance_tells_its_own_candidates_that_the_report_is_ready() {
    let main = spawn_stack_on_rabbitmq_and_postgres().await;
    let shared = main.stack.as_ref().unwrap();
    let second = beside(&main, "interview", &[]).await;
    // One gateway in front of each instance, so each candidate's socket lands where we say.
    let urls = [
        format!("http://{}", shared.addresses.interview),
        format!("http://{}", second.addresses.interview),
    ];
    let mut gateways = Vec::new();
    for url in &urls {
        gateways.push(beside(&main, "gateway", &[("INTERVIEW_URL", url)]).await);
    }
    // Two candidates per instance: with one shared notification queue, each score would reach
    // only one of the two instances, and about half the candidates would never hear of it.
    let plays = gateways.iter().chain(gateways.iter()).map(|g| {
        let mut opts = SimOptions::new(g.gateway_url(), face_frames());
        opts.token = Some(main.token.clone());
        opts.fps = 25.0;
        opts.frames_per_answer = 2;
        opts.report_timeout = Duration::from_secs(30);
        async move { run(&opts).await }
    });
    for result in futures_util::future::join_all(plays).await {
        let r = result.expect("the candidate hears that the report is ready");
        let last = r.of_type("status").last().cloned().cloned().unwrap();
        assert_eq!(last["data"]["report_ready"], true, "{last}");
        assert!(last["data"]["overall_score"].as_f64().is_some(), "{last}");
        let session = main
            .get(&format!("/api/v1/interviews/{}", r.session_id))
            .await
            .json();
        assert_eq!(session["report_ready"], true, "recorded: {session}");
    }
    for part in gateways.into_iter().chain([second]) {
        part.stop().await;
    }
    main.stop().await;
}
