//! Versioned event payloads (`events.v1` in `shared/proto/events.proto`) and their routing keys.

mod generated {
    tonic::include_proto!("events.v1");
}

pub use generated::*;

/// An event that travels on the bus: its routing key names the type and the schema version.
pub trait Event: prost::Message + Default + Sized {
    /// The routing key, also set as the AMQP `type` property.
    const ROUTING_KEY: &'static str;

    /// The session the event belongs to; events of one session are kept in order.
    fn session_id(&self) -> &str;

    fn encode_to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    fn decode_from(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Self::decode(bytes)
    }

    /// When the event is to be discarded wherever it still waits (epoch milliseconds); most
    /// events never expire.
    fn expires_at(&self) -> Option<i64> {
        None
    }
}

/// How long a deferred frame may wait for its analysis, unless configured (`FRAME_TTL_MS`):
/// long enough to ride out an emotion-service outage of a morning, short enough that no raw
/// frame outlives the interview's day.
pub const FRAME_TTL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

macro_rules! event {
    ($ty:ty, $key:literal) => {
        event!($ty, $key, |_e| None);
    };
    ($ty:ty, $key:literal, |$e:ident| $expires:expr) => {
        impl Event for $ty {
            const ROUTING_KEY: &'static str = $key;
            fn session_id(&self) -> &str {
                &self.session_id
            }
            fn expires_at(&self) -> Option<i64> {
                let $e = self;
                $expires
            }
        }
    };
}

// A frame carries pixels: it expires.
event!(FrameCaptured, "interview.frame.captured.v1", |e| (e
    .expires_at
    > 0)
.then_some(e.expires_at));
event!(EmotionAnalyzed, "interview.emotion.analyzed.v1");
event!(InterviewCompleted, "interview.completed.v1");
event!(ScoreCalculated, "interview.score.calculated.v1");
event!(InterviewErased, "interview.erased.v1");
event!(ErasureReported, "interview.erasure.reported.v1");
event!(ConsentWithdrawn, "interview.consent.withdrawn.v1");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_encoding_and_decoding() {
        let event = InterviewCompleted {
            session_id: "s-1".into(),
            answer_count: 2,
            answers: vec![CompletedAnswer {
                question_id: "q1".into(),
                transcript: "hello".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let back = InterviewCompleted::decode_from(&event.encode_to_bytes()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn routing_keys_carry_the_schema_version() {
        for key in [
            FrameCaptured::ROUTING_KEY,
            EmotionAnalyzed::ROUTING_KEY,
            InterviewCompleted::ROUTING_KEY,
            ScoreCalculated::ROUTING_KEY,
            InterviewErased::ROUTING_KEY,
            ErasureReported::ROUTING_KEY,
            ConsentWithdrawn::ROUTING_KEY,
        ] {
            assert!(
                key.starts_with("interview.") && key.ends_with(".v1"),
                "{key}"
            );
        }
    }
}
