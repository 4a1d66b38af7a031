//! A service as a real process: the `stack` binary with `STACK_SERVICES=<one service>`, which
//! prints `<name> http://<addr>` once it listens. Killed with SIGKILL (no goodbye, as a crash),
//! restarted on the same port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `stack` binary of the same build as the running one: beside it (a binary such as
/// `target/<profile>/loadgen`) or one folder up (a test, `target/<profile>/deps/<test>`); cargo
/// builds it for the stack crate's integration tests.
fn stack_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the running binary's path");
    let beside = exe.parent().map(|dir| dir.join("stack"));
    let above = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("stack"));
    [beside, above]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no stack binary beside {}: build it with `cargo build -p iv-stack --bin stack` (same profile)",
                exe.display()
            )
        })
}

pub struct ServiceProcess {
    name: &'static str,
    env: HashMap<String, String>,
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl ServiceProcess {
    /// Starts `name` (`emotion`, `scoring`, `worker`, ...) from `env` and waits until it listens.
    pub async fn start(name: &'static str, mut env: HashMap<String, String>) -> Self {
        env.insert("STACK_SERVICES".into(), name.into());
        env.entry("RUST_LOG".into())
            .or_insert_with(|| "warn".into());
        let mut p = Self {
            name,
            env,
            child: None,
            addr: ([127, 0, 0, 1], 0).into(),
        };
        p.launch().await;
        p
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    async fn launch(&mut self) {
        let mut child = Command::new(stack_binary())
            .envs(&self.env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the stack binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let name = self.name;
        let addr = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.expect("stdout readable") {
                let mut words = line.split_whitespace();
                if words.next() == Some(name)
                    && let Some(url) = words.next()
                    && let Some(addr) = url.strip_prefix("http://")
                {
                    return addr.parse::<SocketAddr>().expect("an address");
                }
                eprintln!("[{name}] {line}");
            }
            panic!("{name} exited before it listened");
        })
        .await
        .unwrap_or_else(|_| panic!("{name} did not listen within 120 s"));
        // Keep draining its output (logs) so the pipe never fills.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{name}] {line}");
            }
        });
        self.addr = addr;
        // A restart must come back where its clients look for it.
        self.env.insert(
            format!("{}_PORT", self.name.to_ascii_uppercase()),
            addr.port().to_string(),
        );
        self.child = Some(child);
    }

    /// SIGKILL: the process dies at once, in the middle of whatever it was doing.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("killed");
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }
}
