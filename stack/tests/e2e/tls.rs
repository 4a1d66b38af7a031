//! Encryption in transit with certificates made at test time: a client reaches the gateway over
//! TLS, the gateway proxies to the emotion service over HTTPS, and the interview service calls
//! the emotion and scoring services with gRPC over TLS; each link checks the peer against the
//! test's CA. PostgreSQL is reached over TLS when the URL asks.

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use iv_platform::testing::TestCertificates;
use iv_platform::tls::TlsConfig;
use serde_json::{Value, json};

use iv_test_support::*;

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn https_client(ca: &std::path::Path) -> Https {
    let tls = TlsConfig {
        serve: None,
        ca: Some(ca.to_path_buf()),
    }
    .rustls_client()
    .unwrap();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

async fn send(client: &Https, method: &str, url: &str, token: &str, body: Value) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        })))
        .unwrap();
    let response = client.request(request).await.expect("an answer over TLS");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_link_it_covers_runs_over_tls() {
    let dir = fresh_dir();
    let certs = TestCertificates::create(&dir.join("certs"));
    let (cert, key, ca) = (
        certs.cert.display().to_string(),
        certs.key.display().to_string(),
        certs.ca.display().to_string(),
    );
    let mut vars = vec![("TLS_CA_FILE", ca.as_str())];
    for service in ["GATEWAY", "EMOTION", "SCORING"] {
        let (c, k): (&'static str, &'static str) = match service {
            "GATEWAY" => ("GATEWAY_TLS_CERT_FILE", "GATEWAY_TLS_KEY_FILE"),
            "EMOTION" => ("EMOTION_TLS_CERT_FILE", "EMOTION_TLS_KEY_FILE"),
            _ => ("SCORING_TLS_CERT_FILE", "SCORING_TLS_KEY_FILE"),
        };
        vars.push((c, cert.as_str()));
        vars.push((k, key.as_str()));
    }
    let t = spawn_in(&dir, &vars).await;
    let gateway = format!("https://{}", t.stack.as_ref().unwrap().addresses.gateway);
    let client = https_client(&certs.ca);

    // Client -> gateway over TLS, gateway -> interview service.
    let (status, started) = send(
        &client,
        "POST",
        &format!("{gateway}/api/v1/interviews/start"),
        &t.token,
        json!({"user_id": "c-tls", "consent": true}),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_string();

    // Interview service -> emotion service: gRPC over TLS (the emotion service speaks nothing
    // else), analysed live rather than queued.
    let frame = json!({"image": base64::engine::general_purpose::STANDARD.encode(face_jpeg())});
    let (status, analysed) = send(
        &client,
        "POST",
        &format!("{gateway}/api/v1/interviews/{id}/frames"),
        &t.token,
        frame,
    )
    .await;
    assert_eq!(status, 200, "{analysed}");
    assert_eq!(analysed["result"], "analyzed", "{analysed}");

    // Interview service -> scoring service: gRPC over TLS.
    let (status, answered) = send(
        &client,
        "POST",
        &format!("{gateway}/api/v1/interviews/{id}/answers"),
        &t.token,
        json!({"question_id": "intro-1", "transcript": "I build payment systems in Rust and lead the on-call rotation for them.", "duration": 9.0}),
    )
    .await;
    assert_eq!(status, 200, "{answered}");
    assert!(
        answered["analysis"]["feedback"].is_string(),
        "scored live: {answered}"
    );

    // Gateway -> emotion service: HTTPS.
    let (status, summary) = send(
        &client,
        "GET",
        &format!("{gateway}/api/v1/emotions/session/{id}"),
        &t.token,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{summary}");

    // Plain HTTP to the TLS gateway gets no answer.
    let plain = t
        .http
        .get(&format!(
            "http://{}/health",
            t.stack.as_ref().unwrap().addresses.gateway
        ))
        .await;
    assert!(plain.is_err() || plain.unwrap().status != 200);
    // A client that does not trust the CA is refused at the handshake.
    let stranger = https_client(&TestCertificates::create(&dir.join("other")).ca);
    let request = http::Request::get(format!("{gateway}/health"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(stranger.request(request).await.is_err());
    t.stop().await;
}

#[tokio::test]
async fn postgresql_is_reached_over_tls_when_the_url_asks() {
    let (db, url) = fresh_pg_database().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let pool = iv_platform::db::open(&format!("{url}{sep}sslmode=require"), &[])
        .await
        .expect("connects with sslmode=require");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(encrypted, "the connection is encrypted");
    pool.close().await;
    drop_pg_database(&db).await;
}

/// RabbitMQ over TLS: this machine's broker has no TLS listener, so the test puts a TLS
/// terminator (rustls, the test's certificate) in front of it. The bus connects with
/// `amqps://`, checks the terminator's certificate against the test's CA, and publishes with a
/// broker confirm through it; a bus without the CA is refused at the handshake.
#[tokio::test]
async fn rabbitmq_is_reached_over_tls_when_the_url_asks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let dir = fresh_dir();
    let certs = TestCertificates::create(&dir.join("certs"));
    let acceptor = TlsConfig {
        serve: Some((certs.cert.clone(), certs.key.clone())),
        ca: None,
    }
    .acceptor()
    .unwrap()
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let broker = amqp_url();
                let authority = broker.split('@').nth(1).unwrap().split('/').next().unwrap();
                let mut upstream = tokio::net::TcpStream::connect(authority).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    let credentials = amqp_url()
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let url = format!("amqps://{credentials}@localhost:{port}/%2f");
    let namespace = format!("{}.", uuid::Uuid::new_v4());
    let ca = std::fs::read_to_string(&certs.ca).unwrap();
    let bus = iv_platform::bus::EventBus::connect_tls(Some(&url), &namespace, Some(&ca))
        .await
        .expect("connects over TLS");
    bus.publish_raw("test.tls.v1", "tls-1", b"over tls")
        .await
        .expect("published with a broker confirm");
    assert!(handshakes.load(Ordering::SeqCst) >= 1);

    let untrusted = iv_platform::bus::EventBus::connect_tls(Some(&url), &namespace, None).await;
    assert!(
        untrusted.is_err(),
        "a broker certificate nobody vouched for is refused"
    );
}
