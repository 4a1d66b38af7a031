//! One headless Chromium per test, through a chromedriver of its own on a free port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Long enough for a loaded CI machine to analyse a frame and score an answer in a debug build.
const WAIT: Duration = Duration::from_secs(90);

/// What the browser's camera is.
pub enum Camera {
    /// A fake device playing this Y4M file (looped), allowed without a prompt.
    Video(PathBuf),
    /// No camera at all: `getUserMedia` fails as it does for a candidate who has none or refused.
    Missing,
}

pub struct Browser {
    pub client: Client,
    pub downloads: PathBuf,
    _driver: Child,
}

impl Browser {
    pub async fn start(camera: Camera) -> Browser {
        let port = iv_test_support::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (scripts/tools.sh installs Debian's chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let downloads = iv_test_support::fresh_dir();
        std::fs::create_dir_all(&downloads).unwrap();
        let mut args = vec![
            "--headless=new".to_string(),
            // Root in a container has no sandbox to drop into; /dev/shm is small there.
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1100,1000".into(),
        ];
        if let Camera::Video(file) = &camera {
            args.extend([
                "--use-fake-ui-for-media-stream".into(),
                "--use-fake-device-for-media-stream".into(),
                format!("--use-file-for-fake-video-capture={}", file.display()),
            ]);
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            downloads,
            _driver: driver,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
    }

    /// Waits until the page's `h1` says `text`.
    pub async fn wait_heading(&self, text: &str) {
        self.poll(&format!("the heading {text:?}"), move || async move {
            let h1 = self.client.find(Locator::Css("main h1")).await.ok()?;
            h1.text()
                .await
                .ok()
                .filter(|t| t.contains(text))
                .map(|_| ())
        })
        .await
    }

    /// The button whose text is `label`, once it is enabled.
    pub async fn button(&self, label: &str) -> Element {
        let xpath = format!("//button[normalize-space()={label:?}]");
        let xpath = xpath.as_str();
        self.poll(
            &format!("the button {label:?} enabled"),
            move || async move {
                let button = self.client.find(Locator::XPath(xpath)).await.ok()?;
                button.is_enabled().await.unwrap_or(false).then_some(button)
            },
        )
        .await
    }

    pub async fn click(&self, label: &str) {
        self.button(label).await.click().await.unwrap();
    }

    /// Tries `attempt` every 100 ms until it gives something; fails naming `what` (with a
    /// screenshot) after [`WAIT`].
    pub async fn poll<T, F, Fut>(&self, what: &str, mut attempt: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = attempt().await {
                return found;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", slug(what))).await;
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves what the page shows as `screenshots/<name>.png` at the repository's root.
    pub async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            self.keep(&format!("{name}.png"), &png);
        }
    }

    /// Keeps a file of the run (a screenshot, a download) in `screenshots/`, ignored by git.
    pub fn keep(&self, name: &str, bytes: &[u8]) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    /// axe-core's serious and critical violations on the page as it is now, as
    /// `"rule (impact): n node(s)"`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/node_modules/axe-core/axe.min.js"),
        )
        .expect("axe-core (scripts/web.sh installs it)");
        self.client.execute(&axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ['violations'] })
                  .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }))))
                  .catch((e) => done([{ id: 'axe-failed', impact: 'critical', nodes: 0, help: String(e) }]));"#,
                vec![],
            )
            .await
            .unwrap();
        let found = found.as_array().unwrap();
        // Every finding goes to the test's output, so the figures of any run can be read.
        for v in found {
            eprintln!(
                "axe: {} ({}): {} node(s), {}",
                v["id"], v["impact"], v["nodes"], v["help"]
            );
        }
        eprintln!("axe: {} rule(s) violated in all", found.len());
        found
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| {
                format!(
                    "{} ({}): {} node(s), {}",
                    v["id"], v["impact"], v["nodes"], v["help"]
                )
            })
            .collect()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
