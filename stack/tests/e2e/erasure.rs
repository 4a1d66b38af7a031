//! Erasing an interview through the gateway: after a whole interview (answers, frames, score,
//! report), `DELETE /api/v1/interviews/{id}` leaves no row mentioning it in any table of any
//! service and no message about it in any queue, and the receipt counts what each deleted.
//! Tables and queues are listed from the engines, so a table added later is searched too.

use std::time::Duration;

use iv_platform::auth::{OrgId, Principal, Role};
use iv_platform::client::HttpClient;
use iv_stack::sim::{SimOptions, run};
use serde_json::Value;

use iv_test_support::erasure::{RECEIPTS, assert_no_message_about, completed_receipt, delete};
use iv_test_support::storage::rows_mentioning;
use iv_test_support::*;

fn deleted(receipt: &Value, service: &str, table: &str) -> i64 {
    receipt["services"][service]["deleted"][table]
        .as_i64()
        .unwrap_or_else(|| panic!("{service} reports {table}: {receipt:#}"))
}

/// A whole interview, erased by the admin; what must hold on every storage and broker.
async fn erase_a_played_interview(t: &TestStack) {
    let mut opts = SimOptions::new(t.gateway.clone(), face_frames());
    opts.token = Some(t.token.clone());
    opts.fps = 25.0;
    opts.frames_per_answer = 2;
    opts.report_timeout = Duration::from_secs(60);
    let played = run(&opts).await.expect("the interview plays to the end");
    let id = played.session_id.clone();
    assert!(
        !rows_mentioning(&t.database_url(), &id, RECEIPTS)
            .await
            .is_empty(),
        "before the erasure the interview is stored"
    );

    let (status, receipt) = delete(&t.http, t, &id).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["interview_id"], id.as_str());
    assert_eq!(receipt["reason"], "request");
    assert_eq!(receipt["requested_role"], "admin");
    assert_eq!(deleted(&receipt, "interview-service", "answers"), 6);
    assert_eq!(deleted(&receipt, "interview-service", "interviews"), 1);

    let gone = t.get(&format!("/api/v1/interviews/{id}")).await;
    assert_eq!(gone.status, 404);
    let receipt = completed_receipt(t, &id, Duration::from_secs(30)).await;
    assert_eq!(receipt["pending"], Value::Array(vec![]));
    assert_eq!(
        deleted(&receipt, "emotion-service", "frame_analyses") as usize,
        played.frames_sent,
        "every analysed frame deleted: {receipt:#}"
    );
    assert_eq!(deleted(&receipt, "emotion-service", "emotion_sessions"), 1);
    assert_eq!(deleted(&receipt, "scoring-service", "scores"), 1);
    assert!(deleted(&receipt, "scoring-service", "reports") >= 1);

    let left = rows_mentioning(&t.database_url(), &id, RECEIPTS).await;
    assert!(left.is_empty(), "rows left after the erasure: {left:#?}");
    for path in [
        format!("/api/v1/scores/session/{id}"),
        format!("/api/v1/scores/report?session_id={id}"),
        format!("/api/v1/emotions/session/{id}"),
    ] {
        let resp = t.get(&path).await;
        assert_eq!(resp.status, 404, "{path}: {:?}", resp.body);
    }
    assert_no_message_about(t, &id).await;

    // Asked again: the same receipt, nothing new.
    let (status, again) = delete(&t.http, t, &id).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["requested_at"], receipt["requested_at"]);
    assert_eq!(again["services"], receipt["services"]);
}

#[tokio::test]
async fn an_erased_interview_leaves_no_row_in_any_table_and_no_message_in_any_queue() {
    let t = spawn_stack(&[]).await;
    erase_a_played_interview(&t).await;
    t.stop().await;
}

#[tokio::test]
async fn the_same_erasure_holds_on_rabbitmq_and_postgresql() {
    let t = spawn_stack_on_rabbitmq_and_postgres().await;
    erase_a_played_interview(&t).await;
    t.stop().await;
}

#[tokio::test]
async fn the_candidate_and_the_organisation_may_erase_and_nobody_else_sees_it() {
    let t = spawn_stack(&[]).await;
    let as_who = |p: Principal| {
        HttpClient::new().with_bearer(
            &iv_stack::tokens::mint(&t.env, &p, Duration::from_secs(600)).expect("a token"),
        )
    };
    let org = |name: &str| OrgId(name.into());
    let id = t.start_interview(true).await;
    let other = t.start_interview(true).await;

    let stranger = as_who(Principal::member("otto", Role::Admin, org("other")));
    let (status, body) = delete(&stranger, &t, &id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("SESSION_NOT_FOUND"))
    );
    let (status, _) = delete(&t.http, &t, "no-such-interview").await;
    assert_eq!(status, 404);
    let someone_else = as_who(Principal::candidate("invite-b", org("default"), &other));
    assert_eq!(delete(&someone_else, &t, &id).await.0, 404);
    let not_erased = t.get(&format!("/api/v1/interviews/{id}/erasure")).await;
    assert_eq!(not_erased.status, 404);
    assert_eq!(not_erased.json()["code"], "NOT_ERASED");

    // The candidate asks with their own invitation.
    let candidate = as_who(Principal::candidate("invite-a", org("default"), &id));
    let (status, receipt) = delete(&candidate, &t, &id).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["requested_role"], "candidate");
    completed_receipt(&t, &id, Duration::from_secs(30)).await;
    let theirs = candidate
        .get(&t.url(&format!("/api/v1/interviews/{id}/erasure")))
        .await
        .unwrap();
    assert_eq!(theirs.status, 200);
    let hidden = stranger
        .get(&t.url(&format!("/api/v1/interviews/{id}/erasure")))
        .await
        .unwrap();
    assert_eq!(hidden.status, 404, "another organisation sees no receipt");
    assert_eq!(delete(&stranger, &t, &id).await.0, 404);
    // The recruiter of the organisation sees the receipt, and the other interview is untouched.
    let recruiter = as_who(Principal::member("rita", Role::Recruiter, org("default")));
    let seen = recruiter
        .get(&t.url(&format!("/api/v1/interviews/{id}/erasure")))
        .await
        .unwrap();
    assert_eq!(seen.status, 200);
    assert_eq!(
        t.get(&format!("/api/v1/interviews/{other}")).await.status,
        200
    );
    t.stop().await;
}

/// The worker's sweeper, with the clock of one interview moved a month back: that interview is
/// erased everywhere with `retention` on its receipt, and the other, completed at the same
/// time, stays.
#[tokio::test]
async fn the_sweeper_erases_an_interview_whose_retention_ran_out_and_nothing_else() {
    let t = spawn_stack(&[("RETENTION_SWEEP_INTERVAL_MS", "300")]).await;
    let expired = t.start_interview(true).await;
    let kept = t.start_interview(true).await;
    for id in [&expired, &kept] {
        let resp = t
            .post(&format!("/api/v1/interviews/{id}/complete"), &Value::Null)
            .await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
    }
    let policy = t.get("/api/v1/organisation/retention").await.json();
    assert_eq!(
        (policy["days"].as_u64(), policy["is_default"].as_bool()),
        (Some(30), Some(true))
    );
    let month_and_a_day = 31_i64 * 24 * 3600 * 1000;
    let pool = iv_platform::db::connect(&t.database_url()).await.unwrap();
    sqlx::query("UPDATE interviews SET completed_at = completed_at - $1 WHERE id = $2")
        .bind(month_and_a_day)
        .bind(&expired)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let receipt = completed_receipt(&t, &expired, Duration::from_secs(30)).await;
    assert_eq!(receipt["reason"], "retention");
    assert_eq!(receipt["requested_by"], "worker-service");
    assert_eq!(
        t.get(&format!("/api/v1/interviews/{expired}")).await.status,
        404
    );
    let left = rows_mentioning(&t.database_url(), &expired, RECEIPTS).await;
    assert!(left.is_empty(), "rows left: {left:#?}");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        t.get(&format!("/api/v1/interviews/{kept}")).await.status,
        200,
        "a month has not passed for the other"
    );
    t.stop().await;
}
