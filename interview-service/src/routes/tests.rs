//! The router without sockets (`oneshot`): routes exist where clients expect them, and every
//! failure comes back as the documented status and JSON code.

use axum::http::StatusCode;
use iv_platform::CancellationToken;
use iv_platform::health::Health;
use iv_platform::testing::{call, expect_codes, get, post_json, post_raw};
use serde_json::json;

use super::{AppState, router};
use crate::testing::{Answer, Fixture};

pub(super) fn app(f: &Fixture) -> axum::Router {
    router(
        AppState {
            app: f.app.clone(),
            members: f.members.clone(),
            retention: f.retention.clone(),
            invitations: std::sync::Arc::new(
                iv_platform::auth::SigningKey::generate(
                    "ai-interview",
                    iv_platform::auth::AUDIENCE,
                )
                .unwrap(),
            ),
            shutdown: CancellationToken::new(),
            socket_limits: Default::default(),
        },
        &Health::new("interview-service"),
    )
}

#[tokio::test]
async fn starting_an_interview_answers_201_with_the_session() {
    let f = Fixture::new().await;
    let body = json!({"user_id": "c1", "consent": true, "policy": "engagement"});
    let (status, body) = call(&app(&f), post_json("/api/v1/interviews/start", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["policy"], "engagement");
    assert_eq!(body["current_question"]["id"], "intro-1");
}

#[tokio::test]
async fn bad_input_gets_its_status_and_code() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let (frames, answers) = (
        format!("/api/v1/interviews/{id}/frames"),
        format!("/api/v1/interviews/{id}/answers"),
    );
    let start = "/api/v1/interviews/start";
    let cases = vec![
        (
            post_json(start, &json!({"user_id": "c", "policy": "telepathy"})),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            post_json(start, &json!({"consent": true})),
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        (
            post_raw(start, "application/json", "{not json"),
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            post_raw(&frames, "text/plain", "hello"),
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            post_json(&frames, &json!({"image": "%%%"})),
            StatusCode::BAD_REQUEST,
            "INVALID_FRAME",
        ),
        (
            post_json(
                &answers,
                &json!({"question_id": "tech-9", "transcript": "x"}),
            ),
            StatusCode::BAD_REQUEST,
            "UNKNOWN_QUESTION",
        ),
        (
            get("/api/v1/interviews/no-such-session"),
            StatusCode::NOT_FOUND,
            "SESSION_NOT_FOUND",
        ),
        (get("/api/v2/nothing"), StatusCode::NOT_FOUND, "NOT_FOUND"),
    ];
    expect_codes(&app(&f), cases).await;
}

#[tokio::test]
async fn the_status_route_reports_live_feedback_from_the_session_state() {
    let f = Fixture::new().await;
    let id = f.start(true).await.id;
    let uri = format!("/api/v1/interviews/{id}/status");
    let (_, body) = call(&app(&f), get(&uri)).await;
    assert_eq!(body["live_feedback"], "active");
    f.emotion(Answer::Down);
    f.frame(&id).await.unwrap();
    let (status, body) = call(&app(&f), get(&uri)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["live_feedback"], "paused", "{body}");
}

#[tokio::test]
async fn an_invitation_opens_its_interview_until_the_interview_expires() {
    use iv_platform::auth::{OrgId, Principal};
    use iv_platform::testing::as_caller;
    let f = Fixture::new().await;
    let body = json!({"user_id": "c1", "candidate_name": "Ada", "expires_in_hours": 2, "job_title": " Backend engineer "});
    let (status, created) = call(&app(&f), post_json("/api/v1/interviews/start", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["candidate_name"], "Ada");
    assert_eq!(created["job_title"], "Backend engineer");
    let id = created["id"].as_str().unwrap().to_string();
    let hours = (created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap())
        as f64
        / 3.6e6;
    assert!((hours - 2.0).abs() < 0.01, "{hours}");
    assert!(
        created["invitation"]["token"]
            .as_str()
            .is_some_and(|t| t.len() > 100)
    );

    let candidate = Principal::candidate("invitation", OrgId("default".into()), &id);
    let path = format!("/api/v1/interviews/{id}/status");
    let (status, _) = call(&app(&f), as_caller(get(&path), candidate.clone())).await;
    assert_eq!(status, StatusCode::OK);
    // The candidate reads the position they were invited for on their page.
    let (_, session) = call(
        &app(&f),
        as_caller(get(&format!("/api/v1/interviews/{id}")), candidate.clone()),
    )
    .await;
    assert_eq!(session["job_title"], "Backend engineer");
    let long = json!({"user_id": "c", "job_title": "x".repeat(129)});
    let (status, body) = call(&app(&f), post_json("/api/v1/interviews/start", &long)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_ARGUMENT")),
        "{body}"
    );
    sqlx::query("UPDATE interviews SET expires_at = 1 WHERE id = $1")
        .bind(&id)
        .execute(f.app.store.pool())
        .await
        .unwrap();
    let (status, body) = call(&app(&f), as_caller(get(&path), candidate)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("SESSION_NOT_FOUND"))
    );
    let (status, _) = call(&app(&f), get(&path)).await;
    assert_eq!(status, StatusCode::OK, "the organisation still sees it");
    for hours in [0, 721] {
        let body = json!({"user_id": "c", "expires_in_hours": hours});
        let (status, _) = call(&app(&f), post_json("/api/v1/interviews/start", &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hours} hours");
    }
}

mod members {
    use iv_platform::auth::{OrgId, Principal, Role};
    use iv_platform::testing::as_caller;

    use super::*;

    fn default_org() -> OrgId {
        OrgId("default".into())
    }

    fn delete(uri: &str) -> axum::http::Request<axum::body::Body> {
        axum::http::Request::delete(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn an_admin_adds_and_revokes_recruiters_and_a_revoked_one_is_refused_everywhere() {
        let f = Fixture::new().await;
        assert!(f.members.ensure_first().await.unwrap());
        assert!(!f.members.ensure_first().await.unwrap(), "only once");
        let router = app(&f);
        let id = f.start(true).await.id;
        let rita = Principal::member("rita", Role::Recruiter, default_org());

        let (status, body) = call(
            &router,
            post_json(
                "/api/v1/organisation/members",
                &json!({"subject": "rita", "role": "recruiter"}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["added_by"], "admin");
        let again = post_json(
            "/api/v1/organisation/members",
            &json!({"subject": "rita", "role": "admin"}),
        );
        expect_codes(
            &router,
            vec![(again, StatusCode::CONFLICT, "MEMBER_EXISTS")],
        )
        .await;

        let read = || get(&format!("/api/v1/interviews/{id}"));
        assert_eq!(
            call(&router, as_caller(read(), rita.clone())).await.0,
            StatusCode::OK
        );
        let (status, body) = call(&router, delete("/api/v1/organisation/members/rita")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["revoked_by"], "admin");
        let (status, body) = call(&router, as_caller(read(), rita.clone())).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("MEMBERSHIP_REVOKED"))
        );
        let start = post_json(
            "/api/v1/interviews/start",
            &json!({"user_id": "c", "consent": true}),
        );
        assert_eq!(
            call(&router, as_caller(start, rita.clone())).await.0,
            StatusCode::FORBIDDEN
        );

        // Reinstated by an admin, with the role the admin gives.
        let back = post_json(
            "/api/v1/organisation/members",
            &json!({"subject": "rita", "role": "recruiter"}),
        );
        assert_eq!(call(&router, back).await.0, StatusCode::CREATED);
        assert_eq!(
            call(&router, as_caller(read(), rita)).await.0,
            StatusCode::OK
        );

        let (status, body) = call(&router, get("/api/v1/organisation/members")).await;
        assert_eq!(status, StatusCode::OK);
        let subjects: Vec<&str> = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap())
            .collect();
        assert_eq!(subjects, ["admin", "rita"]);
    }

    #[tokio::test]
    async fn members_seen_first_are_added_and_only_admins_manage() {
        let f = Fixture::new().await;
        let router = app(&f);
        // A recruiter signed in by their provider, never added by hand.
        let otto = Principal::member("otto@acme.example", Role::Recruiter, OrgId("acme".into()));
        let start = post_json(
            "/api/v1/interviews/start",
            &json!({"user_id": "c", "consent": true}),
        );
        assert_eq!(
            call(&router, as_caller(start, otto.clone())).await.0,
            StatusCode::CREATED
        );
        let acme_admin = Principal::member("ann", Role::Admin, OrgId("acme".into()));
        let (_, listed) = f.members.list(&acme_admin).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].role, listed[0].added_by.as_str()),
            (Role::Recruiter, "first sign-in")
        );

        let add = post_json(
            "/api/v1/organisation/members",
            &json!({"subject": "eve", "role": "admin"}),
        );
        let (status, body) = call(&router, as_caller(add, otto.clone())).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("FORBIDDEN"))
        );
        let list = as_caller(get("/api/v1/organisation/members"), otto);
        assert_eq!(call(&router, list).await.0, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn the_last_admin_stays_and_bad_member_requests_get_codes() {
        let f = Fixture::new().await;
        f.members.ensure_first().await.unwrap();
        let router = app(&f);
        expect_codes(
            &router,
            vec![
                (
                    delete("/api/v1/organisation/members/admin"),
                    StatusCode::CONFLICT,
                    "LAST_ADMIN",
                ),
                (
                    delete("/api/v1/organisation/members/nobody"),
                    StatusCode::NOT_FOUND,
                    "MEMBER_NOT_FOUND",
                ),
                (
                    post_json(
                        "/api/v1/organisation/members",
                        &json!({"subject": "x", "role": "candidate"}),
                    ),
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                ),
                (
                    post_json(
                        "/api/v1/organisation/members",
                        &json!({"subject": "", "role": "recruiter"}),
                    ),
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                ),
            ],
        )
        .await;
    }
}

mod listing {
    use iv_platform::auth::{OrgId, Principal, Role};
    use iv_platform::testing::as_caller;

    use super::*;
    use crate::app::StartRequest;

    async fn start_for(f: &Fixture, name: &str, org: &str) -> String {
        let by = Principal::member("admin", Role::Admin, OrgId(org.into()));
        let request = StartRequest {
            user_id: format!("{}@example.org", name.to_lowercase().replace(' ', ".")),
            candidate_name: Some(name.into()),
            ..Default::default()
        };
        let id = f
            .app
            .start(request, OrgId(org.into()), &by)
            .await
            .unwrap()
            .id;
        // "Newest first" needs each start in its own millisecond; a start can take less.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        id
    }

    fn names(body: &serde_json::Value) -> Vec<&str> {
        body["interviews"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["candidate_name"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn members_list_filter_sort_and_page_their_organisations_interviews() {
        let f = Fixture::new().await;
        let router = app(&f);
        let ana = start_for(&f, "Ana Lima", "default").await;
        let bruno = start_for(&f, "Bruno Silva", "default").await;
        start_for(&f, "Carla 50% Sousa", "default").await;
        start_for(&f, "Ana Outsider", "other").await;
        f.app.store.mark_scored(&ana, Some(71.5)).await.unwrap();
        f.app.store.mark_scored(&bruno, Some(88.0)).await.unwrap();

        let list = |query: &str| get(&format!("/api/v1/interviews{query}"));
        let (status, body) = call(&router, list("")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 3, "only the caller's organisation: {body}");
        assert_eq!(names(&body)[0], "Carla 50% Sousa", "newest first");
        assert_eq!(body["interviews"][0]["questions"], 6);
        assert_eq!(body["interviews"][0]["state"], "created");

        let (_, body) = call(&router, list("?sort=score")).await;
        assert_eq!(
            names(&body),
            ["Bruno Silva", "Ana Lima", "Carla 50% Sousa"],
            "highest score first, unscored last"
        );
        assert_eq!(body["interviews"][0]["overall_score"], 88.0);
        let (_, body) = call(&router, list("?sort=score&order=asc")).await;
        assert_eq!(names(&body), ["Ana Lima", "Bruno Silva", "Carla 50% Sousa"]);
        let (_, body) = call(&router, list("?sort=candidate&order=asc&limit=2")).await;
        assert_eq!(
            (names(&body), &body["total"]),
            (vec!["Ana Lima", "Bruno Silva"], &json!(3))
        );
        let (_, body) = call(&router, list("?sort=candidate&order=asc&limit=2&offset=2")).await;
        assert_eq!(names(&body), ["Carla 50% Sousa"]);
        let (_, body) = call(&router, list("?q=ANA")).await;
        assert_eq!(names(&body), ["Ana Lima"]);
        let (_, body) = call(&router, list("?q=bruno.silva%40")).await;
        assert_eq!(names(&body), ["Bruno Silva"], "by the candidate's id too");
        let (_, body) = call(&router, list("?q=50%25")).await;
        assert_eq!(names(&body), ["Carla 50% Sousa"], "% is literal");
        let (_, body) = call(&router, list("?q=%25%25%25")).await;
        assert_eq!(body["total"], 0);
        let (_, body) = call(&router, list("?state=completed")).await;
        assert_eq!(body["total"], 0);
        let (_, body) = call(&router, list("?state=created")).await;
        assert_eq!(body["total"], 3);

        let recruiter = Principal::member("rita", Role::Recruiter, OrgId("default".into()));
        f.members.ensure_first().await.unwrap();
        let add = post_json(
            "/api/v1/organisation/members",
            &json!({"subject": "rita", "role": "recruiter"}),
        );
        assert_eq!(call(&router, add).await.0, StatusCode::CREATED);
        let (status, body) = call(&router, as_caller(list(""), recruiter)).await;
        assert_eq!((status, &body["total"]), (StatusCode::OK, &json!(3)));
        let outsider = Principal::member("admin", Role::Admin, OrgId("other".into()));
        let (_, body) = call(&router, as_caller(list(""), outsider)).await;
        assert_eq!(names(&body), ["Ana Outsider"]);
    }

    #[tokio::test]
    async fn bad_list_queries_and_candidates_get_codes() {
        let f = Fixture::new().await;
        let router = app(&f);
        let id = start_for(&f, "Ana Lima", "default").await;
        let candidate = Principal::candidate("ana", OrgId("default".into()), &id);
        let mut cases = vec![(
            as_caller(get("/api/v1/interviews"), candidate),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )];
        for query in [
            "sort=height",
            "order=sideways",
            "state=done",
            "limit=0",
            "limit=201",
            "limit=ten",
            "offset=-1",
        ] {
            cases.push((
                get(&format!("/api/v1/interviews?{query}")),
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
            ));
        }
        expect_codes(&router, cases).await;
    }
}

#[tokio::test]
async fn every_described_operation_is_routed_and_no_other_method_is() {
    let f = Fixture::new().await;
    iv_platform::testing::assert_described_routes(
        &app(&f),
        &super::openapi(),
        &["/ws/interviews/{id}"],
    )
    .await;
    iv_platform::testing::assert_no_hand_written_api_routes(include_str!("../routes.rs"));
}
