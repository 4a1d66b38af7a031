//! The contracts between services: generated gRPC code for `emotion` and `scoring`, the versioned
//! event payloads carried by RabbitMQ, and the small conversions both sides need.
//!
//! # Layout
//! - [`emotion`], [`scoring`]: generated from `shared/proto/*.proto` (clients and servers).
//! - [`events`]: the `events.v1` payloads and the [`events::Event`] trait that names their routing keys.
//! - [`policy`]: the analysis policy as a domain type, parsed from text and the wire enum.
//! - [`consent`]: what a frame must carry to be analysed, checked by every service that does.
//! - [`UNCERTAIN_EXPRESSION`]: the expression label both sides read the same way.
//! - [`FILE_DESCRIPTOR_SET`]: for gRPC reflection.

pub mod emotion {
    tonic::include_proto!("emotion");
}

pub mod scoring {
    tonic::include_proto!("scoring");
}

pub mod consent;
pub mod events;
pub mod policy;

/// Encoded descriptors of every proto, served by gRPC reflection so `grpcurl` works without files.
/// The expression an analysed frame reports when the model is not sure of any class: the emotion
/// service says it rather than a confident wrong class, and scoring counts it neither way.
pub const UNCERTAIN_EXPRESSION: &str = "uncertain";

pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptor");

/// Milliseconds since the Unix epoch, the time unit of every contract.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
