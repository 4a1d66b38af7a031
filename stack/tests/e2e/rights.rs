//! Oversight and access through the gateway, after a whole interview: a recruiter's views and
//! decision land on the hash-chained audit trail, which admins read and verify (a changed entry
//! is named); the candidate exports everything stored about them; other organisations and the
//! wrong roles are refused.

use std::time::Duration;

use iv_platform::auth::{OrgId, Principal, Role};
use iv_platform::client::HttpClient;
use iv_stack::sim::{SimOptions, run};
use serde_json::{Value, json};

use iv_test_support::*;

fn actions(entries: &Value) -> Vec<(String, String)> {
    entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"]["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn views_decisions_and_exports_are_audited_and_the_chain_names_a_changed_entry() {
    let t = spawn_stack(&[]).await;
    let as_who = |p: Principal| {
        HttpClient::new().with_bearer(
            &iv_stack::tokens::mint(&t.env, &p, Duration::from_secs(600)).expect("a token"),
        )
    };
    let default = || OrgId("default".into());
    let mut opts = SimOptions::new(t.gateway.clone(), face_frames());
    opts.token = Some(t.token.clone());
    opts.fps = 25.0;
    opts.frames_per_answer = 2;
    opts.report_timeout = Duration::from_secs(60);
    let played = run(&opts).await.expect("the interview plays to the end");
    let id = played.session_id.clone();

    // A recruiter looks at everything, then decides.
    let rita = as_who(Principal::member("rita", Role::Recruiter, default()));
    for path in [
        format!("/api/v1/interviews/{id}"),
        format!("/api/v1/scores/session/{id}"),
        format!("/api/v1/scores/report?session_id={id}"),
        format!("/api/v1/emotions/session/{id}"),
    ] {
        let (status, body) = send(&rita, http::Method::GET, &t.url(&path), None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let decision = json!({"decision": "advance", "reason": "clear design answers"});
    let (status, d) = send(
        &rita,
        http::Method::POST,
        &t.url(&format!("/api/v1/interviews/{id}/decision")),
        Some(decision),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    assert_eq!(
        (d["decision"].as_str(), d["decided_by"].as_str()),
        (Some("advance"), Some("rita"))
    );
    let (_, view) = send(
        &rita,
        http::Method::GET,
        &t.url(&format!("/api/v1/interviews/{id}")),
        None,
    )
    .await;
    assert_eq!(view["decision"]["decision"], "advance", "{view}");
    // The interview's report carries the decision; the PDF too.
    let report = t.url(&format!("/api/v1/interviews/{id}/report"));
    let (status, r) = send(&rita, http::Method::GET, &report, None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (
            r["decisions"][0]["decision"].as_str(),
            r["decisions"][0]["decided_by"].as_str()
        ),
        (Some("advance"), Some("rita")),
        "{r}"
    );
    let pdf = rita
        .get(&format!("{report}?format=pdf"))
        .await
        .expect("sent");
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF-"));
    assert!(
        String::from_utf8_lossy(&pdf.body).contains("advance: clear design answers by rita"),
        "the PDF shows the decision"
    );
    let (status, _) = send(
        &t.http,
        http::Method::PUT,
        &t.url("/api/v1/organisation/retention"),
        Some(json!({"days": 90})),
    )
    .await;
    assert_eq!(status, 200);
    let bad = json!({"decision": "hire-now", "reason": "x"});
    let (status, body) = send(
        &rita,
        http::Method::POST,
        &t.url(&format!("/api/v1/interviews/{id}/decision")),
        Some(bad),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    // The candidate exports everything stored about them, and may not decide.
    let candidate = as_who(Principal::candidate("invite-a", default(), &id));
    let (status, export) = send(
        &candidate,
        http::Method::GET,
        &t.url(&format!("/api/v1/interviews/{id}/export")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["interview"]["answers"].as_array().unwrap().len(), 6);
    assert_eq!(
        export["face_analysis"]["frames_analyzed"].as_u64().unwrap() as usize,
        played.frames_sent,
        "every analysed frame's metrics: {}",
        export["missing"]
    );
    assert_eq!(
        export["face_analysis"]["timeline"]
            .as_array()
            .unwrap()
            .len(),
        played.frames_sent
    );
    assert!(
        export["report"]["overall_score"].is_number(),
        "{}",
        export["missing"]
    );
    assert_eq!(export["decisions"][0]["decision"], "advance");
    assert_eq!(
        export["consent"]["notice_sha256"].as_str().map(str::len),
        Some(64),
        "the consent record names the notice's text"
    );
    assert!(export["consent"]["withdrawn_at"].is_null());
    assert!(export["audit"].as_array().unwrap().len() >= 5);
    let (status, _) = send(
        &candidate,
        http::Method::POST,
        &t.url(&format!("/api/v1/interviews/{id}/decision")),
        Some(json!({"decision": "advance", "reason": "me"})),
    )
    .await;
    assert_eq!(status, 403);
    let stranger = as_who(Principal::member(
        "otto",
        Role::Admin,
        OrgId("other".into()),
    ));
    let (status, body) = send(
        &candidate,
        http::Method::GET,
        &t.url(&format!("/api/v1/interviews/{id}/report")),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "the candidate reads the export, not the recruiter's report"
    );
    for path in [
        format!("/api/v1/interviews/{id}/export"),
        format!("/api/v1/interviews/{id}/decision"),
        format!("/api/v1/interviews/{id}/report"),
    ] {
        let (status, _) = send(&stranger, http::Method::GET, &t.url(&path), None).await;
        assert_eq!(status, 404, "{path}");
    }

    // The admin reads the trail: each view, the decision and the export, by whom.
    let trail_url = t.url(&format!("/api/v1/audit?interview_id={id}"));
    let (status, trail) = send(&t.http, http::Method::GET, &trail_url, None).await;
    assert_eq!(status, 200, "{trail}");
    let seen = actions(&trail);
    for expected in [
        ("interview_viewed", "rita"),
        ("score_viewed", "rita"),
        ("report_viewed", "rita"),
        ("timeline_viewed", "rita"),
        ("decision_recorded", "rita"),
        ("export_viewed", "invite-a"),
    ] {
        assert!(
            seen.iter().any(|(a, s)| a == expected.0
                && s.ends_with(expected.1.trim_start_matches("invitation:"))),
            "{expected:?} in {seen:?}"
        );
    }
    assert!(
        !seen.iter().any(|(_, s)| s == "worker-service"),
        "the worker reading to score is not a view: {seen:?}"
    );
    let (status, _) = send(&rita, http::Method::GET, &trail_url, None).await;
    assert_eq!(status, 403, "recruiters do not read the trail");
    let (_, all) = send(&t.http, http::Method::GET, &t.url("/api/v1/audit"), None).await;
    assert!(
        actions(&all).contains(&("retention_changed".into(), "admin".into())),
        "{all}"
    );
    let (status, other) = send(&stranger, http::Method::GET, &trail_url, None).await;
    assert_eq!(status, 200);
    assert!(
        actions(&other).is_empty(),
        "another organisation sees none of it"
    );

    let verify = t.url("/api/v1/audit/verify");
    let (status, v) = send(&t.http, http::Method::GET, &verify, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    let changed = trail["entries"][1]["seq"].as_i64().unwrap();
    let pool = iv_platform::db::connect(&t.database_url()).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor_subject = 'nobody' WHERE seq = $1")
        .bind(changed)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (_, v) = send(&t.http, http::Method::GET, &verify, None).await;
    assert_eq!(
        (v["valid"].as_bool(), v["first_broken"].as_i64()),
        (Some(false), Some(changed)),
        "{v}"
    );
    t.stop().await;
}
