//! The real nginx (Debian's package; `scripts/test.sh` installs it when missing) running this
//! repository's `nginx/nginx.conf`, in front of two gateway processes, each in front of the
//! interview service (PostgreSQL): requests spread over both gateways, the WebSocket upgrade
//! passes, nothing reaches the service without a token, and when one gateway is killed every
//! request is still answered and nginx stops trying it after `max_fails`.
//!
//! Only what must differ on a test machine is rewritten: the listen port and the access log's file
//! in `nginx.conf`, and the gateway upstream's server addresses in `upstreams.conf` (their
//! parameters are kept).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use iv_platform::client::HttpClient;
use iv_stack::test_env;
use serde_json::json;
use tokio::process::{Child, Command};

use iv_test_support::ServiceProcess;
use iv_test_support::eventually;
use iv_test_support::{free_port, fresh_dir, fresh_pg_database, ws_connect, ws_send, ws_until};

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is not installed: scripts/test.sh installs Debian's package when missing")
}

fn repo_file(name: &str) -> String {
    let path = format!("{}/../nginx/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `nginx/nginx.conf` with the test's listen address and access log.
fn render_main(listen: u16, access_log: &Path) -> String {
    repo_file("nginx.conf")
        .lines()
        .map(|line| match line.trim_start() {
            t if t.starts_with("listen ") => format!("        listen 127.0.0.1:{listen};"),
            t if t.starts_with("access_log ") => {
                format!("    access_log {} main;", access_log.display())
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `nginx/upstreams.conf` with the gateway upstream's server replaced by the test's instances,
/// keeping its parameters (weight, max_fails, fail_timeout).
fn render_upstreams(gateways: &[u16]) -> String {
    let mut out = Vec::new();
    let mut in_interview = false;
    for line in repo_file("upstreams.conf").lines() {
        let t = line.trim_start();
        if t.starts_with("upstream gateway") {
            in_interview = true;
        } else if t.starts_with('}') {
            in_interview = false;
        }
        if in_interview && t.starts_with("server ") {
            let params: Vec<&str> = t.trim_end_matches(';').split_whitespace().skip(2).collect();
            for port in gateways {
                out.push(format!("    server 127.0.0.1:{port} {};", params.join(" ")));
            }
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n")
}

struct Nginx {
    child: Child,
    url: String,
    access_log: PathBuf,
    /// Prefix, configuration and `-g` globals: `nginx -s stop` needs them to find the master.
    dir: PathBuf,
    globals: String,
}

impl Nginx {
    async fn start(dir: &Path, gateways: &[u16]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let access_log = dir.join("access.log");
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, render_main(port, &access_log)).unwrap();
        // `include upstreams.conf` resolves beside nginx.conf.
        std::fs::write(dir.join("upstreams.conf"), render_upstreams(gateways)).unwrap();
        let globals = format!(
            "daemon off; pid {}; error_log {} notice;",
            dir.join("nginx.pid").display(),
            dir.join("error.log").display()
        );
        let test = std::process::Command::new(nginx_binary())
            .args(["-t", "-p"])
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", &globals])
            .output()
            .unwrap();
        assert!(
            test.status.success(),
            "nginx -t accepts the configuration: {}",
            String::from_utf8_lossy(&test.stderr)
        );
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", &globals])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = HttpClient::new();
        eventually(Duration::from_secs(10), "nginx answers", || async {
            http.get(&format!("{url}/health"))
                .await
                .is_ok_and(|r| r.status == 200)
        })
        .await;
        Self {
            child,
            url,
            access_log,
            dir: dir.to_path_buf(),
            globals,
        }
    }

    /// `upstream=` of each access-log line: the instances tried, in order, with their statuses.
    fn upstreams(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("/api/v1/interviews/"))
            .filter_map(|l| l.split("upstream=").nth(1).map(String::from))
            .collect()
    }

    /// The access log once it holds `count` API lines: nginx writes a request's line after the
    /// response has gone out, so the client can read the log before its last request is there.
    async fn upstreams_once(&self, count: usize) -> Vec<String> {
        eventually(
            Duration::from_secs(5),
            "nginx logged every request",
            || async { self.upstreams().len() >= count },
        )
        .await;
        self.upstreams()
    }
}

impl Drop for Nginx {
    /// `nginx -s stop` makes the master stop its workers and exit; killing the master alone would
    /// leave the workers running, holding the test's port.
    fn drop(&mut self) {
        let _ = std::process::Command::new(nginx_binary())
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-g", &self.globals, "-s", "stop"])
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_spreads_requests_passes_websockets_and_skips_a_failed_instance() {
    let _turn = iv_test_support::one_at_a_time().await;
    let (db_name, database) = fresh_pg_database().await;
    let dir = fresh_dir();
    let key = dir.join("signing-key.pem").display().to_string();
    let env = |name: &str, extra: &[(&str, &str)]| -> HashMap<String, String> {
        let mut env = test_env(
            &dir.join(name),
            &[("DATABASE_URL", &database), ("AUTH_SIGNING_KEY_FILE", &key)],
        );
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let interview = ServiceProcess::start("interview", env("interview", &[])).await;
    let behind = [("INTERVIEW_URL", interview.url())];
    let behind: Vec<(&str, &str)> = behind.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = ServiceProcess::start("gateway", env("a", &behind)).await;
    let b = ServiceProcess::start("gateway", env("b", &behind)).await;
    let (port_a, port_b) = (a.addr.port(), b.addr.port());
    let nginx = Nginx::start(&dir.join("nginx"), &[port_a, port_b]).await;
    let token = iv_stack::tokens::mint(
        &env("a", &[]),
        &iv_stack::tokens::first_admin(),
        Duration::from_secs(600),
    )
    .unwrap();
    let http = HttpClient::new().with_bearer(&token);

    // Without a token nothing passes: nginx has no route around the gateways.
    let anonymous = HttpClient::new()
        .post_json(
            &format!("{}/api/v1/interviews/start", nginx.url),
            &json!({"user_id": "nginx-test", "consent": true}),
        )
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.json());

    // One session, visible through either instance (one database).
    let start = http
        .post_json(
            &format!("{}/api/v1/interviews/start", nginx.url),
            &json!({"user_id": "nginx-test", "consent": true}),
        )
        .await
        .unwrap();
    assert_eq!(start.status, 201, "{:?}", start.json());
    let id = start.json()["id"].as_str().unwrap().to_string();
    for _ in 0..40 {
        let r = http
            .get(&format!("{}/api/v1/interviews/{id}", nginx.url))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{:?}", r.json());
    }
    let served = nginx.upstreams_once(42).await;
    let on = |port: u16| {
        served
            .iter()
            .filter(|u| u.starts_with(&format!("127.0.0.1:{port}/")))
            .count()
    };
    eprintln!("nginx spread 42 requests: {} + {}", on(port_a), on(port_b));
    assert_eq!(on(port_a) + on(port_b), 42, "{served:#?}");
    assert!(
        on(port_a) >= 15 && on(port_b) >= 15,
        "least_conn spreads them"
    );

    // The WebSocket upgrade passes through /ws/.
    let ws_url = format!("{}/ws/interviews/{id}", nginx.url.replacen("http", "ws", 1));
    let mut ws = ws_connect(&ws_url, Some(&token)).await;
    ws_send(&mut ws, json!({"type": "ping"})).await;
    ws_until(&mut ws, "pong").await;
    drop(ws);

    // One instance dies: every request is still answered, and after max_fails nginx stops
    // trying it (fail_timeout).
    a.kill().await;
    let before = nginx.upstreams().len();
    for _ in 0..40 {
        let r = http
            .get(&format!("{}/api/v1/interviews/{id}", nginx.url))
            .await
            .unwrap();
        assert_eq!(
            r.status,
            200,
            "answered through the surviving gateway: {:?}",
            r.json()
        );
    }
    let after: Vec<String> = nginx.upstreams_once(before + 40).await.split_off(before);
    let tried_dead = after
        .iter()
        .filter(|u| u.contains(&format!("127.0.0.1:{port_a}")))
        .count();
    eprintln!("after the kill, {tried_dead} of 40 requests tried the dead instance first");
    assert_eq!(after.len(), 40);
    assert!(
        tried_dead <= 3,
        "max_fails=3: the dead instance is skipped after 3 failures, not retried: {after:#?}"
    );
    drop(b);
    drop(interview);
    drop(nginx);
    iv_test_support::machine::drop_pg_database(&db_name).await;
    let _ = std::fs::remove_dir_all(&dir);
}
