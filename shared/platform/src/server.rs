//! How every service binds, serves and stops: one [`Server`] for HTTP, WebSocket and gRPC alike,
//! so socket options and server timeouts are set in one place.
//!
//! A service builds its router, then [`Server::bind`] binds it (port 0 picks a free port, and
//! [`Server::local_addr`] tells which), and [`Server::run_until`] registers in Consul, serves
//! until the shutdown future resolves, deregisters, and drains within the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

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
        })
    }
}

/// The listener every server accepts on: a TCP listener that sets TCP_NODELAY on each accepted
/// socket.
type Acceptor = TapIo<TcpListener, fn(&mut TcpStream)>;

/// Without TCP_NODELAY, a response written in more than one piece (HTTP/2 and gRPC frames
/// often are) waits for the client's delayed ACK under Nagle's algorithm: about 40 ms added to
/// every analysed frame, measured through gRPC against the running emotion service. Every
/// protocol served here (HTTP, WebSocket, gRPC) accepts through this one place.
fn no_delay(tcp: &mut TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY could not be set on an accepted socket");
    }
}

/// A bound service, ready to run.
pub struct Server {
    listener: Acceptor,
    router: Router,
    spec: &'static ServiceSpec,
    grace: Duration,
    consul: Option<RegistrationConfig>,
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
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await?
            .tap_io(no_delay as fn(&mut TcpStream));
        Ok(Self {
            listener,
            router,
            spec,
            grace: config.grace,
            consul: config.consul.clone(),
            cancel,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        axum::serve::Listener::local_addr(&self.listener).expect("a bound listener has an address")
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
        let token = self.cancel.clone();
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { token.cancelled().await });
        let server = std::future::IntoFuture::into_future(server);
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result,
            _ = shutdown => {}
        }
        self.cancel.cancel();
        match tokio::time::timeout(self.grace, server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "grace period elapsed with requests still open; closing");
                Ok(())
            }
        }
    }
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
        let mut server = Server::bind(&config, &SPEC, router, CancellationToken::new())
            .await
            .unwrap();
        let client = TcpStream::connect(server.local_addr()).await.unwrap();
        let (accepted, from) = axum::serve::Listener::accept(&mut server.listener).await;
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
}
