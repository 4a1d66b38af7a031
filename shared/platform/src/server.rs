//! How every service binds, serves and stops: one [`Server`] for HTTP, WebSocket and gRPC alike,
//! so socket options and server timeouts are set in one place.
//!
//! A service builds its router, then [`Server::bind`] binds it (port 0 picks a free port, and
//! [`Server::local_addr`] tells which), and [`Server::run_until`] registers in Consul, serves
//! until the shutdown future resolves, deregisters, and drains within the grace period.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::{ConfigError, Env};
use crate::consul::{Registration, RegistrationConfig, ServiceSpec};

/// What every service's configuration shares.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `BIND_HOST`; loopback by default, so nothing is exposed by accident.
    pub host: String,
    /// The service's own port variable; 0 picks a free port (tests).
    pub port: u16,
    /// `SHUTDOWN_GRACE_MS`: how long open requests may finish after a shutdown signal.
    pub grace: Duration,
    /// Consul registration, when `CONSUL_HTTP_ADDR` is set.
    pub consul: Option<RegistrationConfig>,
    /// Whom the service trusts, and the credential it proves itself to its peers with.
    pub auth: crate::auth::AuthConfig,
    /// How long and how many clients may hold the server.
    pub limits: ConnectionLimits,
    /// TLS served (when given a certificate) and trusted in peers.
    pub tls: crate::tls::TlsConfig,
}

impl ServerConfig {
    /// Reads the shared variables and the service's port from `port_key`.
    pub fn from_env(env: &Env, port_key: &str, default_port: u16) -> Result<Self, ConfigError> {
        Ok(Self {
            host: env.string("BIND_HOST", "127.0.0.1"),
            port: env.parse(port_key, default_port)?,
            grace: env.millis("SHUTDOWN_GRACE_MS", 10_000)?,
            consul: RegistrationConfig::from_env(env)?,
            auth: crate::auth::AuthConfig::from_env(env)?,
            limits: ConnectionLimits::from_env(env)?,
            tls: crate::tls::TlsConfig::from_env(
                env,
                port_key.strip_suffix("_PORT").unwrap_or(port_key),
            )?,
        })
    }
}

/// What keeps a slow or idle client from holding a server's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `HEADER_READ_TIMEOUT_MS`: a request's headers (or a new connection's first byte) must
    /// arrive within this; it is also how long an idle HTTP/1 keep-alive connection stays open,
    /// since hyper times the wait for the next request's headers from the moment it begins.
    /// 10 s: a browser on a poor mobile link sends its headers in well under a second.
    pub header_read: Duration,
    /// `REQUEST_TIMEOUT_MS`: a REST handler answers within this or the client gets 504. gRPC is
    /// left to the caller's own deadline (`grpc-timeout`), and WebSockets outlive their upgrade.
    /// 30 s: the slowest REST call (a PDF report of a long interview) takes a few seconds.
    pub request: Duration,
    /// `MAX_CONNECTIONS`: open connections beyond this wait in the listen backlog instead of
    /// being accepted. 1024: 20 candidates' sockets per 2 cores leave a wide margin, and each
    /// connection costs a few tens of KiB at rest, so the cap also bounds memory.
    pub max_connections: usize,
    /// `HTTP2_KEEPALIVE_MS`: how often an HTTP/2 (gRPC) connection is pinged and how long the
    /// answer may take, so a peer that vanished is noticed instead of held forever.
    pub h2_keepalive: Duration,
}

impl ConnectionLimits {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            header_read: env.millis("HEADER_READ_TIMEOUT_MS", 10_000)?,
            request: env.millis("REQUEST_TIMEOUT_MS", 30_000)?,
            max_connections: env.parse("MAX_CONNECTIONS", 1024)?,
            h2_keepalive: env.millis("HTTP2_KEEPALIVE_MS", 20_000)?,
        })
    }
}

/// Without TCP_NODELAY, a response written in more than one piece (HTTP/2 and gRPC frames
/// often are) waits for the client's delayed ACK under Nagle's algorithm: about 40 ms added to
/// every analysed frame, measured through gRPC against the running emotion service. Every
/// protocol served here (HTTP, WebSocket, gRPC) accepts through this one place.
async fn accept(listener: &TcpListener) -> std::io::Result<(TcpStream, SocketAddr)> {
    let (tcp, from) = listener.accept().await?;
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY could not be set on an accepted socket");
    }
    Ok((tcp, from))
}

/// A bound service, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    spec: &'static ServiceSpec,
    grace: Duration,
    consul: Option<RegistrationConfig>,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Cancelled when shutdown begins, so WebSockets and background tasks wind down with the
    /// server.
    cancel: CancellationToken,
}

impl Server {
    /// Binds `config`'s address for `router`. `cancel` is the service's own shutdown token (its
    /// background tasks watch it); it is cancelled when serving stops.
    pub async fn bind(
        config: &ServerConfig,
        spec: &'static ServiceSpec,
        router: Router,
        cancel: CancellationToken,
    ) -> std::io::Result<Self> {
        let tls = config
            .tls
            .acceptor()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
        Ok(Self {
            tls,
            listener,
            router: crate::http::time_limit(router, config.limits.request),
            spec,
            grace: config.grace,
            consul: config.consul.clone(),
            limits: config.limits,
            cancel,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until SIGINT or SIGTERM (what a binary's `main` runs).
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Registers in Consul, serves until `shutdown` resolves, deregisters *before* draining (so no
    /// new work is routed here), cancels the service's token, and gives open requests the grace
    /// period to finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let addr = self.local_addr();
        tracing::info!(service = self.spec.name, %addr, "listening");
        let registration = Registration::start(self.consul.as_ref(), self.spec, addr);
        let shutdown = registration.until_shutdown(shutdown);
        tokio::pin!(shutdown);
        let builder = Arc::new(http_builder(&self.limits));
        let slots = Arc::new(Semaphore::new(self.limits.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        loop {
            // A slot first: past the cap, connections wait in the kernel's backlog.
            let slot = tokio::select! {
                _ = &mut shutdown => break,
                _ = self.cancel.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            let (tcp, from) = tokio::select! {
                _ = &mut shutdown => break,
                _ = self.cancel.cancelled() => break,
                accepted = accept(&self.listener) => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: pause rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            self.spawn_connection(&builder, &graceful, slot, tcp, from);
        }
        drop(self.listener);
        self.cancel.cancel();
        match tokio::time::timeout(self.grace, graceful.shutdown()).await {
            Ok(()) => Ok(()),
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "grace period elapsed with requests still open; closing");
                Ok(())
            }
        }
    }

    /// Serves one connection in a task of its own; it holds `slot` until it closes.
    fn spawn_connection(
        &self,
        builder: &Arc<auto::Builder<TokioExecutor>>,
        graceful: &GracefulShutdown,
        slot: OwnedSemaphorePermit,
        tcp: TcpStream,
        from: SocketAddr,
    ) {
        let service = self
            .router
            .clone()
            .map_request(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(from));
                    req
                },
            )
            .map_err(|never: Infallible| match never {});
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_byte = self.limits.header_read;
        let tls = self.tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // Until the protocol is known hyper has no header timer running: a connection that
            // sends nothing is closed here.
            let mut probe = [0u8; 1];
            if !matches!(tokio::time::timeout(first_byte, tcp.peek(&mut probe)).await, Ok(Ok(n)) if n > 0)
            {
                tracing::debug!(%from, "connection closed before its first byte");
                return;
            }
            let service = TowerToHyperService::new(service);
            let served = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    watcher.watch(conn.into_owned()).await
                }
                // The handshake is held to the same bound as a request's headers.
                Some(acceptor) => {
                    match tokio::time::timeout(first_byte, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let conn = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("tls_handshakes_failed_total").increment(1);
                            tracing::debug!(%from, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%from, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%from, error = %e, "connection ended with an error");
            }
        });
    }
}

/// HTTP/1 and HTTP/2 (gRPC) on one port, with the limits applied.
fn http_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.h2_keepalive)
        .keep_alive_timeout(limits.h2_keepalive);
    builder
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "test-service",
        tags: &[],
        grpc: None,
    };

    #[test]
    fn the_shared_variables_have_safe_defaults() {
        let map: HashMap<String, String> = [("MY_PORT".to_string(), "9000".to_string())].into();
        let config = ServerConfig::from_env(&Env::new(&map), "MY_PORT", 1).unwrap();
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!(config.port, 9000);
        assert_eq!(config.grace, Duration::from_secs(10));
        assert!(config.consul.is_none());
    }

    #[tokio::test]
    async fn accepted_sockets_have_tcp_nodelay() {
        let map: HashMap<String, String> = HashMap::new();
        let config = ServerConfig::from_env(&Env::new(&map), "UNSET", 0).unwrap();
        let router = Router::new();
        let server = Server::bind(&config, &SPEC, router, CancellationToken::new())
            .await
            .unwrap();
        let client = TcpStream::connect(server.local_addr()).await.unwrap();
        let (accepted, from) = accept(&server.listener).await.unwrap();
        assert_eq!(from, client.local_addr().unwrap());
        assert!(
            accepted.nodelay().unwrap(),
            "TCP_NODELAY on the server's side"
        );
    }

    #[tokio::test]
    async fn shutdown_cancels_the_service_token_and_stops_serving() {
        let map: HashMap<String, String> = HashMap::new();
        let config = ServerConfig::from_env(&Env::new(&map), "UNSET", 0).unwrap();
        let cancel = CancellationToken::new();
        let router = Router::new().route("/", axum::routing::get(|| async { "hi" }));
        let server = Server::bind(&config, &SPEC, router, cancel.clone())
            .await
            .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0, "port 0 picks a real port");
        let stop = CancellationToken::new();
        let s = stop.clone();
        let running = tokio::spawn(server.run_until(async move { s.cancelled().await }));
        let response = crate::client::HttpClient::new()
            .get(&format!("http://{addr}/"))
            .await
            .unwrap();
        assert_eq!(&response.body[..], b"hi");
        assert!(!cancel.is_cancelled());
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("stops within the grace period")
            .unwrap()
            .unwrap();
        assert!(cancel.is_cancelled(), "background tasks are told to stop");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// A server with `vars` set, serving `router`; it stops when the returned token is cancelled.
    async fn serving(vars: &[(&str, &str)], router: Router) -> (SocketAddr, CancellationToken) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = ServerConfig::from_env(&Env::new(&map), "UNSET", 0).unwrap();
        let server = Server::bind(&config, &SPEC, router, CancellationToken::new())
            .await
            .unwrap();
        let addr = server.local_addr();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(server.run_until(async move { s.cancelled().await }));
        (addr, stop)
    }

    /// Whether the server closed `tcp` within `within` (reads until end of stream, discarding
    /// whatever it answered first).
    async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        tokio::time::timeout(within, async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await
        .is_ok()
    }

    fn hello() -> Router {
        Router::new().route("/", axum::routing::get(|| async { "hi" }))
    }

    #[tokio::test]
    async fn a_client_sending_its_headers_a_byte_a_second_is_cut_off() {
        use tokio::io::AsyncWriteExt;
        let (addr, _stop) = serving(&[("HEADER_READ_TIMEOUT_MS", "1500")], hello()).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let mut sent = 0;
        let mut cut_off = false;
        for byte in request {
            if tcp.write_all(&[*byte]).await.is_err() {
                cut_off = true;
                break;
            }
            sent += 1;
            if closed_within(&mut tcp, Duration::from_secs(1)).await {
                cut_off = true;
                break;
            }
        }
        assert!(cut_off, "the whole slow request was read");
        assert!(
            sent < request.len() / 2,
            "cut off after {sent} of {} bytes",
            request.len()
        );
    }

    #[tokio::test]
    async fn silent_and_idle_connections_are_closed() {
        use tokio::io::AsyncWriteExt;
        let (addr, _stop) = serving(&[("HEADER_READ_TIMEOUT_MS", "500")], hello()).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut silent, Duration::from_secs(3)).await);

        // A keep-alive connection after one answered request.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(closed_within(&mut idle, Duration::from_secs(3)).await);
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_one_closes() {
        let (addr, _stop) = serving(&[("MAX_CONNECTIONS", "1")], hello()).await;
        let first = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let url = format!("http://{addr}/");
        let client = crate::client::HttpClient::new();
        let waiting = tokio::spawn(async move { client.get(&url).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "served beside the first connection");
        drop(first);
        let response = tokio::time::timeout(Duration::from_secs(15), waiting)
            .await
            .expect("served once the first closed")
            .unwrap()
            .unwrap();
        assert_eq!(&response.body[..], b"hi");
    }

    #[tokio::test]
    async fn a_slow_handler_answers_504_with_a_code() {
        let slow = Router::new().route(
            "/",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
        let (addr, _stop) = serving(&[("REQUEST_TIMEOUT_MS", "200")], slow).await;
        let response = crate::client::HttpClient::new()
            .get(&format!("http://{addr}/"))
            .await
            .unwrap();
        assert_eq!(response.status, 504);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["code"], "REQUEST_TIMEOUT", "{body}");
    }
}
