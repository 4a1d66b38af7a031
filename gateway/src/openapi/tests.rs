//! The served document: what other teams read before they have a token. It is checked against
//! the gateway's routes (every described path reaches a service, every route group is
//! described), against the services' parts (a schema shared by name means the same), and by an
//! OpenAPI validator.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use iv_platform::testing::call;
use serde_json::Value;

use super::{PATH, document};
use crate::tests::{config, get};
use crate::{EMOTION_GROUPS, INTERVIEW_GROUPS, SCORING_GROUPS, app};

#[tokio::test]
async fn the_document_is_served_without_a_token_with_each_routes_roles_and_failures() {
    let router = app(&config(&[])).unwrap();
    let (status, doc) = call(&router, get(PATH, None)).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let roles = &op["security"][0]["bearer"];
            if path == PATH {
                assert_eq!(op["security"], serde_json::json!([{}]), "{path} is public");
            } else {
                assert!(
                    roles.as_array().is_some_and(|r| !r.is_empty()),
                    "{method} {path} names no roles: {op}"
                );
            }
            assert_eq!(
                op["responses"]["4XX"]["$ref"], "#/components/responses/Error",
                "{method} {path}"
            );
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|r| r["description"].is_string() || r["$ref"].is_string()),
                "{method} {path}: a response without a description"
            );
        }
    }
    assert!(operations >= 40, "only {operations} operations described");
    // What the dashboard and the candidate's page rely on, by name.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "SessionView",
        "Score",
        "AnswerAnalysis",
        "FrameResult",
        "ErrorBody",
    ] {
        assert!(schemas[name].is_object(), "{name} is not described");
    }
    let roles = &doc["paths"]["/api/v1/organisation/members"]["post"]["security"][0]["bearer"];
    assert_eq!(roles, &serde_json::json!(["admin"]));
}

#[tokio::test]
async fn every_described_path_reaches_a_service_and_every_route_group_is_described() {
    let router = app(&config(&[])).unwrap();
    let doc = document();
    for (method, path) in iv_platform::openapi::operations_of(&doc) {
        if path == PATH {
            continue;
        }
        let uri = iv_platform::testing::fill_parameters(&path);
        let request = axum::http::Request::builder()
            .method(method.clone())
            .uri(&uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let mut request = request;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40001,
            ))));
        // Without a token the edge refuses it: the path is one the gateway forwards, not its 404.
        let (status, body) = call(&router, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
    }
    let paths: Vec<String> = doc.paths.paths.keys().cloned().collect();
    for prefix in INTERVIEW_GROUPS
        .iter()
        .chain(&EMOTION_GROUPS)
        .chain(&SCORING_GROUPS)
    {
        assert!(
            paths.iter().any(|p| p.starts_with(prefix)),
            "the gateway forwards {prefix} but no service describes a path under it"
        );
    }
}

/// Each service's part names its schemas on its own; merged, one name must mean one shape, or
/// the document would silently describe one service's type with another's.
#[test]
fn the_services_parts_agree_on_every_schema_they_share() {
    let parts = [
        ("interview-service", interview_service::routes::openapi()),
        ("scoring-service", scoring_service::routes::openapi()),
        ("emotion-service", emotion_service::routes::openapi()),
    ];
    let mut seen: BTreeMap<String, (&str, Value)> = BTreeMap::new();
    for (service, part) in &parts {
        let schemas = part
            .components
            .as_ref()
            .map(|c| c.schemas.clone())
            .unwrap_or_default();
        for (name, schema) in schemas {
            let schema = serde_json::to_value(schema).unwrap();
            if let Some((other, earlier)) = seen.get(&name) {
                assert_eq!(
                    earlier, &schema,
                    "{name} means one thing in {other} and another in {service}"
                );
            } else {
                seen.insert(name, (service, schema));
            }
        }
    }
    assert!(seen.len() > 30, "only {} schemas", seen.len());
}

/// The document passes openapi-spec-validator (installed by `scripts/tools.sh`): every `$ref`
/// resolves and every object is what OpenAPI 3.1 allows.
#[test]
fn an_openapi_validator_accepts_the_document() {
    let validator = iv_platform::assets::tools_venv()
        .join("bin")
        .join("openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run scripts/tools.sh",
        validator.display()
    );
    let file = std::env::temp_dir().join(format!("openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, document().to_pretty_json().unwrap()).unwrap();
    let out = std::process::Command::new(&validator)
        .arg("--schema")
        .arg("3.1")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "the validator refused the document:\n{}",
        // It quotes the whole document after the reason: the reason is enough.
        String::from_utf8_lossy(&[out.stdout, out.stderr].concat())
            .chars()
            .take(600)
            .collect::<String>()
    );
}
