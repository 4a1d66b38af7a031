//! What every service of the interview backend shares, so that each service crate holds only its
//! own behaviour.
//!
//! # Layout
//! - [`auth`]: identity: verified tokens (the backend's own key or an organisation's identity
//!   provider), roles and organisations, and the identity each request carries between services.
//! - [`assets`]: where the fetched models and media are cached.
//! - [`config`]: typed configuration read from an environment source (tests pass a map, never `set_var`).
//! - [`telemetry`]: structured logs (`LOG_FORMAT=json|pretty`, `RUST_LOG`) and OpenTelemetry traces
//!   (OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set), with the W3C trace context carried across
//!   HTTP, gRPC and events.
//! - [`host`]: the machine a benchmark ran on.
//! - [`health`]: `/health`, `/health/ready`, `/health/live` and Prometheus `/metrics`.
//! - [`http`]: the HTTP layers every router wears (request ids, access logs, metrics), the JSON 404,
//!   and one port for REST and gRPC.
//! - [`server`]: binding, serving and graceful shutdown, the same for every service, and the
//!   configuration every service shares.
//! - [`deadline`]: the deadline a gRPC caller sent (`grpc-timeout`), for shedding work in time.
//! - [`errors`]: one table from failure class to HTTP status and gRPC code.
//! - [`resilience`]: one named policy per downstream: circuit breaker (failsafe) inside retries with
//!   exponential backoff and jitter (backon).
//! - [`downstream`]: the gRPC clients of the emotion and scoring services, each behind its policy.
//! - [`bus`]: events over RabbitMQ (lapin) or, on embedded defaults, an in-process bus with the same
//!   retry and dead-letter behaviour.
//! - [`db`]: the SQLite (default) or PostgreSQL pool.
//! - [`discovery`]: a downstream's instances, from a static list or Consul's healthy instances,
//!   taken in turn; one that refuses connections is skipped for a while.
//! - [`consul`]: registering an instance in Consul (consulrs) and deregistering it on shutdown.
//! - [`outbox`]: events written in the same transaction as the state they announce, relayed to
//!   the bus once confirmed, so a broker outage loses nothing.
//! - [`openapi`]: what every service's part of the public API's OpenAPI document shares (the
//!   bearer scheme and roles, the error body) and how the parts become one document.
//! - [`client`]: a small HTTP client for tools and tests.
//! - [`shutdown`]: the SIGINT/SIGTERM future.
//! - `testing` (feature `testing`, for tests): fresh SQLite databases and `oneshot` requests.

pub mod assets;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod client;
pub mod config;
pub mod consul;
pub mod db;
pub mod deadline;
pub mod discovery;
pub mod downstream;
pub mod erasure;
pub mod errors;
pub mod health;
pub mod host;
pub mod http;
pub mod openapi;
pub mod outbox;
pub mod resilience;
pub mod server;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;

pub use tokio_util::sync::CancellationToken;
