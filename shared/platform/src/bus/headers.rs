//! The headers the RabbitMQ backend writes on messages it moves between a queue, its retry queue
//! and its dead-letter queue. Operators read them in the management UI, so the names are stable.

/// Which try the message is on: 1 for the first.
pub const ATTEMPT: &str = "x-attempt";
/// The event's routing key, kept when the message is moved through the default exchange (which
/// routes by queue name and would otherwise lose it).
pub const ROUTING_KEY: &str = "x-routing-key";
/// Why a retried message failed last time.
pub const LAST_ERROR: &str = "x-last-error";
/// Why a message was dead-lettered.
pub const DEATH_REASON: &str = "x-death-reason";
/// The dead-letter reason of a replayed message, for the record.
pub const REPLAYED_AFTER: &str = "x-replayed-after";

/// Queue argument: delete the queue after this many idle milliseconds (test namespaces).
pub const QUEUE_EXPIRES: &str = "x-expires";
/// How long a message may wait in a queue before the broker discards it.
pub const MESSAGE_TTL: &str = "x-message-ttl";
/// Queue argument: where expired messages of the retry queue go (back to the main queue).
pub const DEAD_LETTER_EXCHANGE: &str = "x-dead-letter-exchange";
/// Queue argument: the routing key expired messages of the retry queue get.
pub const DEAD_LETTER_ROUTING_KEY: &str = "x-dead-letter-routing-key";

/// The W3C trace context of whatever published the message, so its consumer continues that trace.
pub const TRACEPARENT: &str = crate::telemetry::context::TRACEPARENT;
