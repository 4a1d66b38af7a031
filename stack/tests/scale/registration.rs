//! Every service registers itself in Consul with its checks, finds the others through Consul,
//! and deregisters on graceful shutdown.

use std::time::Duration;

use iv_stack::sim::{SimOptions, run};

use crate::consul_double::ConsulDouble;
use iv_test_support::*;

const TOKEN: &str = "a2c1f6de-test-acl-token";

fn all_passing(consul: &ConsulDouble, expected: usize) -> bool {
    let services = consul.services();
    services.len() == expected
        && services.keys().all(|id| {
            let checks = consul.check_statuses(id);
            !checks.is_empty() && checks.iter().all(|(_, s)| *s == "passing")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_registers_with_its_checks_is_found_through_consul_and_leaves_on_shutdown() {
    let _turn = iv_test_support::one_at_a_time().await;
    let consul = ConsulDouble::start(Some(TOKEN)).await;
    let consul_url = consul.url();
    let t = spawn_stack(&[
        ("CONSUL_HTTP_ADDR", &consul_url),
        ("CONSUL_HTTP_TOKEN", TOKEN),
        ("CONSUL_CHECK_INTERVAL", "200ms"),
        ("CONSUL_POLL_MS", "200"),
        // Nothing may be found through these: discovery must come from Consul.
        ("EMOTION_GRPC_URL", "http://127.0.0.1:1"),
        ("SCORING_GRPC_URL", "http://127.0.0.1:1"),
        ("INTERVIEW_URL", "http://127.0.0.1:1"),
    ])
    .await;
    let a = t.stack.as_ref().unwrap().addresses;

    eventually(
        Duration::from_secs(30),
        "five services registered and passing",
        || async { all_passing(&consul, 5) },
    )
    .await;

    let services = consul.services();
    let expected = [
        ("gateway", a.gateway, 1),
        ("interview-service", a.interview, 1),
        ("emotion-service", a.emotion, 2),
        ("scoring-service", a.scoring, 2),
        ("worker-service", a.worker, 1),
    ];
    for (name, addr, checks) in expected {
        let id = format!("{name}-127.0.0.1-{}", addr.port());
        let service = services
            .get(&id)
            .unwrap_or_else(|| panic!("{id} registered: {services:#?}"));
        assert_eq!(service["Service"], name);
        assert_eq!(service["Address"], "127.0.0.1");
        assert_eq!(service["Port"], addr.port());
        assert!(!service["Tags"].as_array().unwrap().is_empty());
        let statuses = consul.check_statuses(&id);
        assert_eq!(statuses.len(), checks, "{id}: {statuses:?}");
        assert!(statuses.iter().any(|(c, _)| c == &format!("{id}-ready")));
        if checks == 2 {
            // The gRPC check asks grpc.health.v1 about the service itself, and it passes.
            assert!(
                statuses
                    .iter()
                    .any(|(c, s)| c == &format!("{id}-grpc") && *s == "passing")
            );
        }
    }

    // Each service reads Consul every 200 ms: wait until the gateway routes to the interview
    // service, then one more read for the interview service's own downstreams.
    eventually(
        Duration::from_secs(10),
        "the gateway routes through Consul",
        || async {
            t.get("/api/v1/interviews/00000000-0000-4000-8000-000000000000")
                .await
                .status
                == 404
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The interview, analysis and scoring calls all go to instances found through Consul (every
    // URL variable points nowhere).
    let mut opts = SimOptions::new(t.gateway.clone(), face_frames());
    opts.token = Some(t.token.clone());
    opts.fps = 25.0;
    opts.frames_per_answer = 2;
    opts.report_timeout = Duration::from_secs(60);
    let result = run(&opts).await.expect("the interview plays to the end");
    assert_eq!(result.answers_sent, 6);
    assert!(
        !result.of_type("emotion_update").is_empty(),
        "live analysis through Consul"
    );
    assert_eq!(result.report["answers"].as_array().unwrap().len(), 6);

    t.stop().await;
    assert!(
        consul.services().is_empty(),
        "every instance deregistered on shutdown: {:#?}",
        consul.services()
    );
}

/// A registration the agent refuses (an unknown ACL token) does not stop the service, and is
/// retried with backoff until the agent accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_does_not_stop_the_service_and_is_retried() {
    let _turn = iv_test_support::one_at_a_time().await;
    let consul = ConsulDouble::start(Some(TOKEN)).await;
    let consul_url = consul.url();
    let t = spawn_stack(&[
        ("STACK_SERVICES", "scoring"),
        ("CONSUL_HTTP_ADDR", &consul_url),
        ("CONSUL_HTTP_TOKEN", "a-token-the-agent-does-not-know-yet"),
    ])
    .await;
    let scoring = t.stack.as_ref().unwrap().addresses.scoring;
    let ready = t
        .http
        .get(&format!("http://{scoring}/health/ready"))
        .await
        .unwrap();
    assert_eq!(ready.status, 200, "serving without being registered");
    eventually(
        Duration::from_secs(10),
        "registration tried and refused",
        || async { consul.refused() >= 2 },
    )
    .await;
    assert!(
        consul.services().is_empty(),
        "tried {} times, refused every time",
        consul.refused()
    );

    consul.accept_token("a-token-the-agent-does-not-know-yet");
    let took = eventually(
        Duration::from_secs(20),
        "registered once accepted",
        || async { consul.services().len() == 1 },
    )
    .await;
    eprintln!("registered {took:?} after the agent accepted the token");
    t.stop().await;
    assert!(consul.services().is_empty());
}

/// `key = value` pairs of an HCL file, whitespace collapsed, comments dropped.
fn hcl_pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// The files in consul/ (for ops who register by file) declare what each service registers by
/// itself at its default port: same id, name, tags and checks.
#[test]
fn the_consul_files_declare_what_the_services_register() {
    use iv_platform::config::Env;
    use iv_platform::consul::{RegistrationConfig, registration};
    let map: std::collections::HashMap<String, String> =
        [("CONSUL_HTTP_ADDR".to_string(), "127.0.0.1:8500".to_string())].into();
    let config = RegistrationConfig::from_env(&Env::new(&map))
        .unwrap()
        .unwrap();
    let services = [
        (gateway::SERVICE, 8080),
        (interview_service::SERVICE, 8081),
        (emotion_service::SERVICE, 8082),
        (scoring_service::SERVICE, 8083),
        (worker_service::SERVICE, 8084),
    ];
    for (spec, port) in services {
        let path = format!("{}/../consul/{}.hcl", env!("CARGO_MANIFEST_DIR"), spec.name);
        let pairs = hcl_pairs(&std::fs::read_to_string(&path).unwrap());
        let has = |key: &str, value: &str| {
            assert!(
                pairs.iter().any(|(k, v)| k == key && v == value),
                "{path}: expected {key} = {value:?}"
            );
        };
        let r = registration(&config, &spec, ([127, 0, 0, 1], port).into());
        has("id", r.id.as_deref().unwrap());
        has("name", spec.name);
        has("port", &port.to_string());
        let tags: Vec<String> = spec.tags.iter().map(|t| format!("\"{t}\"")).collect();
        has("tags", &format!("[{}]", tags.join(", ")));
        let checks = r.checks.unwrap();
        assert_eq!(
            pairs.iter().filter(|(k, _)| k == "interval").count(),
            checks.len(),
            "{path}: one check per declared check"
        );
        for check in checks {
            has("id", check.check_id.as_deref().unwrap());
            if let Some(http) = &check.http {
                has("http", http);
            }
            if let Some(grpc) = &check.grpc {
                has("grpc", grpc);
            }
            has("interval", check.interval.as_deref().unwrap());
            has("timeout", check.timeout.as_deref().unwrap());
            has(
                "deregister_critical_service_after",
                check.deregister_critical_service_after.as_deref().unwrap(),
            );
        }
    }
}
