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
}

macro_rules! event {
    ($ty:ty, $key:literal) => {
        impl Event for $ty {
            const ROUTING_KEY: &'static str = $key;
            fn session_id(&self) -> &str {
                &self.session_id
            }
        }
    };
}

event!(FrameCaptured, "interview.frame.captured.v1");
event!(EmotionAnalyzed, "interview.emotion.analyzed.v1");
event!(InterviewCompleted, "interview.completed.v1");
event!(ScoreCalculated, "interview.score.calculated.v1");
event!(InterviewErased, "interview.erased.v1");
event!(ErasureReported, "interview.erasure.reported.v1");

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
        ] {
            assert!(
                key.starts_with("interview.") && key.ends_with(".v1"),
                "{key}"
            );
        }
    }
}
