//! A candidate takes a whole interview in the browser; the recruiter then reads it on the
//! dashboard. A candidate without a camera is told what to do.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use iv_test_support::*;

use crate::browser::{Browser, Camera};

/// Two questions keep the run short; the page and the socket treat any number alike.
fn questions() -> serde_json::Value {
    json!([
        {
            "text": "How would you design a URL shortening service?",
            "category": "technical",
            "expected_points": [
                "generate unique short keys",
                "store the mapping from key to address in a database",
                "cache popular redirects",
            ],
        },
        {
            "text": "Tell me about a time you disagreed with a colleague.",
            "category": "behavioural",
            "expected_points": ["the situation", "how it was resolved"],
        },
    ])
}

const ANSWERS: [&str; 2] = [
    "I would give each link a counter value written in base 62 as its short key, keep the key to address mapping in a key-value table, and hold the most requested links in an in-memory cache so that redirects are fast.",
    "A colleague wanted to ship without tests. We compared the defects of the last releases, agreed on a small set of tests for the risky paths, and shipped a day later with fewer bugs.",
];

/// A fake camera's video, made by the fetch script: `single_face`, `no_face` or `multi_face`.
fn camera_video(name: &str) -> std::path::PathBuf {
    let file = iv_stack::media::media_dir().join(format!("{name}.y4m"));
    assert!(
        file.exists(),
        "{} is missing: run scripts/fetch-assets.sh",
        file.display()
    );
    file
}

/// Ticks the consent box and goes on.
async fn consent(browser: &Browser) {
    let box_ = browser.wait_for("#consent-box").await;
    box_.click().await.unwrap();
    browser.click("I consent, continue").await;
}

/// Fails with the list when axe finds serious or critical violations on the page.
async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "accessibility violations on the {page} page:\n{}",
        violations.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_takes_the_interview_in_the_browser_and_the_recruiter_reads_it() {
    let t = spawn_stack(&[]).await;
    let created = t
        .post(
            "/api/v1/interviews/start",
            &json!({
                "user_id": "cand-browser",
                "candidate_name": "Ada Browser",
                "job_title": "Backend engineer",
                "questions": questions(),
            }),
        )
        .await;
    assert_eq!(created.status, 201);
    let created = created.json();
    let id = created["id"].as_str().unwrap().to_string();
    let link = t.url(created["invitation"]["path"].as_str().unwrap());

    let browser = Browser::start(Camera::Video(camera_video("single_face"))).await;
    browser.goto(&link).await;
    browser.wait_heading("Welcome to your interview").await;
    let url = browser.client.current_url().await.unwrap();
    assert!(
        url.query().is_none(),
        "the invitation token leaves the address bar: {url}"
    );
    let position = browser.wait_for(".position").await.text().await.unwrap();
    assert_eq!(position, "Position: Backend engineer");
    browser.screenshot("candidate-1-welcome").await;
    accessible(&browser, "welcome").await;
    browser.click("Begin").await;

    browser.wait_heading("How your data is used").await;
    browser.screenshot("candidate-2-consent").await;
    accessible(&browser, "consent").await;
    let before = t.get(&format!("/api/v1/interviews/{id}")).await.json();
    assert_eq!(before["frames_received"], 0, "nothing sent before consent");
    consent(&browser).await;

    browser.wait_heading("Camera check").await;
    // The backend's face detection must find the one face, centred, before the candidate goes on.
    let go = browser.button("Continue to the practice question").await;
    for check in [
        "One face in view",
        "Face centred and near enough",
        "Lit well enough",
    ] {
        let item = browser
            .client
            .find(Locator::XPath(&format!(
                "//li[normalize-space()={check:?}]"
            )))
            .await
            .unwrap();
        assert_eq!(
            item.attr("data-ok").await.unwrap().as_deref(),
            Some("true"),
            "{check}"
        );
    }
    browser.screenshot("candidate-3-camera-check").await;
    accessible(&browser, "camera check").await;
    go.click().await.unwrap();

    browser.wait_heading("Practice question").await;
    let practice = browser.wait_for("textarea").await;
    practice
        .send_keys("I enjoy making slow things fast.")
        .await
        .unwrap();
    browser.screenshot("candidate-4-practice").await;
    accessible(&browser, "practice").await;
    browser.click("Start the interview").await;

    browser.wait_heading("Interview").await;
    for (n, answer) in ANSWERS.iter().enumerate() {
        let progress = format!("Question {} of 2", n + 1);
        browser
            .poll(&progress, || async {
                let p = browser.client.find(Locator::Css(".progress")).await.ok()?;
                p.text().await.ok().filter(|t| *t == progress).map(|_| ())
            })
            .await;
        let area = browser.wait_for("form textarea").await;
        area.send_keys(answer).await.unwrap();
        if n == 0 {
            // A candidate spends a while on an answer: enough frames for the engagement score.
            browser
                .poll("20 frames analysed", || async {
                    let s = t.get(&format!("/api/v1/interviews/{id}")).await.json();
                    (s["frames_analyzed"].as_i64()? >= 20).then_some(())
                })
                .await;
        }
        if n == 0 {
            browser.screenshot("candidate-5-question").await;
            accessible(&browser, "question").await;
            // On a phone-sized screen the page fits its width (no sideways scrolling).
            browser.client.set_window_size(390, 844).await.unwrap();
            let overflow = browser
                .client
                .execute(
                    "return document.documentElement.scrollWidth - window.innerWidth",
                    vec![],
                )
                .await
                .unwrap();
            assert!(
                overflow.as_i64().unwrap() <= 0,
                "wider than a phone: {overflow}"
            );
            browser.screenshot("candidate-5-question-phone").await;
            accessible(&browser, "question (phone)").await;
            browser.client.set_window_size(1100, 1000).await.unwrap();
        }
        if n == 1 {
            // The page is reloaded mid-answer (a crash, a dropped connection): the candidate
            // resumes at the same question with what they had typed.
            browser.client.refresh().await.unwrap();
            browser.wait_heading("Welcome back").await;
            browser.click("Continue").await;
            browser.wait_heading("Camera check").await;
            browser.click("Continue the interview").await;
            browser.wait_heading("Interview").await;
            let kept = browser
                .poll("the draft restored", || async {
                    let p = browser.client.find(Locator::Css(".progress")).await.ok()?;
                    if p.text().await.ok()? != progress {
                        return None;
                    }
                    let area = browser
                        .client
                        .find(Locator::Css("form textarea"))
                        .await
                        .ok()?;
                    area.prop("value").await.ok()?
                })
                .await;
            assert_eq!(kept, *answer, "the draft survives the reload");
        }
        let label = if n == 1 {
            "Submit the last answer"
        } else {
            "Submit answer"
        };
        browser.click(label).await;
    }
    browser.click("Finish the interview").await;
    browser.wait_heading("your interview is complete").await;
    browser.screenshot("candidate-6-complete").await;
    accessible(&browser, "completion").await;

    // The interview as stored: both answers, the frames the browser sent, completed.
    let session = t.get(&format!("/api/v1/interviews/{id}")).await.json();
    assert_eq!(session["state"], "completed");
    let answers = session["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["transcript"], ANSWERS[0]);
    assert!(
        session["frames_received"].as_i64().unwrap() > 5,
        "the browser sent frames: {session}"
    );
    for _ in 0..600 {
        let status = t
            .get(&format!("/api/v1/interviews/{id}/status"))
            .await
            .json();
        if status["report_ready"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The recruiter's dashboard, signed in with a member's token.
    browser.goto(&t.url(&format!("/?token={}", t.token))).await;
    browser.wait_heading("Interviews").await;
    let row = browser
        .poll("the interview in the list", || async {
            let link = browser
                .client
                .find(Locator::XPath(
                    "//table//a[normalize-space()='Ada Browser']",
                ))
                .await
                .ok()?;
            Some(link)
        })
        .await;
    let score_cell = browser
        .client
        .find(Locator::XPath(
            "//tr[td/a[normalize-space()='Ada Browser']]/td[last()]",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listed: f64 = score_cell
        .parse()
        .unwrap_or_else(|_| panic!("a score: {score_cell:?}"));
    assert!((0.0..=100.0).contains(&listed));
    browser.screenshot("dashboard-1-list").await;
    accessible(&browser, "interview list").await;
    row.click().await.unwrap();

    browser.wait_heading("Ada Browser").await;
    let chart = browser.wait_for("figure.chart").await;
    let points: i64 = chart
        .attr("data-points")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let analysed = t
        .get(&format!("/api/v1/emotions/session/{id}"))
        .await
        .json();
    assert!(points > 0, "the attention chart plots the browser's frames");
    assert_eq!(
        points,
        analysed["timeline"].as_array().unwrap().len() as i64,
        "one point per timeline entry"
    );
    browser.wait_for("figure.chart canvas").await;
    // Typed answers carry no duration, so no speaking pace is judged from typing speed.
    let score = t.get(&format!("/api/v1/scores/session/{id}")).await.json();
    for a in score["answers"].as_array().unwrap() {
        assert!(a["analysis"]["words_per_minute"].is_null(), "{a}");
    }
    let overall = browser.wait_for("[data-score]").await;
    assert_eq!(
        overall
            .attr("data-score")
            .await
            .unwrap()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            .round(),
        listed.round()
    );
    browser.screenshot("dashboard-2-interview").await;
    accessible(&browser, "interview").await;
    browser
        .client
        .execute(
            "document.querySelector('figure.chart').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("dashboard-3-attention").await;

    browser.click("Download the PDF report").await;
    let pdf = browser
        .poll("the PDF in the download folder", || async {
            let entry = std::fs::read_dir(&browser.downloads)
                .ok()?
                .filter_map(Result::ok)
                .find(|e| e.path().extension().is_some_and(|x| x == "pdf"))?;
            std::fs::read(entry.path())
                .ok()
                .filter(|b| b.starts_with(b"%PDF"))
        })
        .await;
    assert!(pdf.len() > 1000);
    let text = String::from_utf8_lossy(&pdf);
    assert!(
        text.contains("Attention over the interview"),
        "the PDF draws the attention timeline"
    );
    browser.keep("report.pdf", &pdf);

    browser.goto(&t.url("/#/new")).await;
    browser.wait_heading("New interview").await;
    browser.screenshot("dashboard-4-new-interview").await;
    accessible(&browser, "new interview").await;
    // The recruiter invites a second candidate, under the stricter policy, and gets the link.
    let input = |name: &'static str| {
        let browser = &browser;
        async move {
            browser
                .client
                .find(Locator::Css(&format!("[name={name}]")))
                .await
                .unwrap()
        }
    };
    input("candidate_name")
        .await
        .send_keys("Grace Form")
        .await
        .unwrap();
    input("user_id").await.send_keys("cand-form").await.unwrap();
    input("job_title")
        .await
        .send_keys("Data engineer")
        .await
        .unwrap();
    input("policy")
        .await
        .select_by_value("engagement")
        .await
        .unwrap();
    browser.click("Create and get the invitation link").await;
    browser.wait_heading("Interview created").await;
    let invitation = browser
        .wait_for("#invitation-link")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(
        invitation.starts_with(&t.url("/?invitation=")),
        "an absolute invitation link: {invitation}"
    );
    browser.screenshot("dashboard-5-invitation").await;
    accessible(&browser, "invitation").await;
    let listed = t.get("/api/v1/interviews?q=Grace").await.json();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["interviews"][0]["policy"], "engagement");
    assert_eq!(listed["interviews"][0]["user_id"], "cand-form");
    let id = listed["interviews"][0]["id"].as_str().unwrap();
    let invited = t.get(&format!("/api/v1/interviews/{id}")).await.json();
    assert_eq!(invited["job_title"], "Data engineer");
    browser.close().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_without_a_camera_is_told_what_to_do() {
    let t = spawn_stack(&[]).await;
    let created = t
        .post(
            "/api/v1/interviews/start",
            &json!({"user_id": "cand-no-camera", "questions": questions()}),
        )
        .await
        .json();
    let browser = Browser::start(Camera::Missing).await;
    browser
        .goto(&t.url(created["invitation"]["path"].as_str().unwrap()))
        .await;
    browser.click("Begin").await;
    consent(&browser).await;
    browser.wait_heading("Your camera is needed").await;
    let advice = browser.wait_for("[role=alert]").await.text().await.unwrap();
    assert!(
        advice.contains("camera") && advice.contains("Try again"),
        "the page says what to do: {advice}"
    );
    assert!(
        browser
            .button("Try again")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    browser.screenshot("candidate-camera-refused").await;
    accessible(&browser, "camera refused").await;
    browser.close().await;
    t.stop().await;
}

/// The camera check on media it was not built with: an empty room. The backend's detection must
/// hold the candidate back, saying why. (A group photo of five people is not held back yet: the
/// short-range detector counts one face when faces are small in the frame; see README.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_camera_check_holds_back_an_empty_room() {
    let t = spawn_stack(&[]).await;
    let created = t
        .post(
            "/api/v1/interviews/start",
            &json!({"user_id": "cand-empty-room", "questions": questions()}),
        )
        .await
        .json();
    let browser = Browser::start(Camera::Video(camera_video("no_face"))).await;
    browser
        .goto(&t.url(created["invitation"]["path"].as_str().unwrap()))
        .await;
    browser.click("Begin").await;
    consent(&browser).await;
    browser.wait_heading("Camera check").await;
    let one_face = "//li[normalize-space()='One face in view']";
    browser
        .poll("the face check failing", || async {
            let item = browser.client.find(Locator::XPath(one_face)).await.ok()?;
            (item.attr("data-ok").await.ok()?.as_deref() == Some("false")).then_some(())
        })
        .await;
    let verdict = browser
        .poll("the reason", || async {
            let p = browser
                .client
                .find(Locator::Css("p[aria-live]"))
                .await
                .ok()?;
            p.text().await.ok().filter(|t| t.contains("No face found"))
        })
        .await;
    assert!(verdict.contains("sit in front of the camera"), "{verdict}");
    // Some frames later the candidate is still held back.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let go = browser
        .client
        .find(Locator::XPath(
            "//button[normalize-space()='Continue to the practice question']",
        ))
        .await
        .unwrap();
    assert!(!go.is_enabled().await.unwrap(), "may not go on");
    browser.screenshot("candidate-camera-empty-room").await;
    browser.close().await;
    t.stop().await;
}
