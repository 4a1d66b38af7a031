//! The vision pipeline: pretrained face models run with candle.

pub mod crop;
pub mod graph;
