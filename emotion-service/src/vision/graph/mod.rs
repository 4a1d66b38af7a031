//! A small executor for the converted face models (see `scripts/models/convert.py`): a list of
//! TFLite-style operators over candle tensors.
//!
//! Activations are kept NCHW, the layout candle's matrix products expect; weights are re-laid out
//! once at load, and each PReLU is folded into the operator before it. Every convolution is one
//! matrix product per image; a batch (both eyes through the iris model) runs as one pass.
//!
//! # Layout
//! - [`load`](Graph::load): the graph file and its weights into prepared [`Op`]s.
//! - `kernels`: the hand-written operators where candle has no fast path.
//! - `eval`: running the prepared operators on a frame.
//! - [`padding`]: TensorFlow's `SAME` and `VALID` padding.

mod eval;
mod kernels;
mod load;
pub mod padding;

use std::collections::HashMap;

use candle_core::Tensor;

use kernels::{Activation, Depthwise, Im2Col, MaxPool, PRelu, Product};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the weights {path}")]
    Weights {
        path: String,
        #[source]
        source: candle_core::Error,
    },
    #[error("{path} is not a model graph")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The graph parses but does not describe a model this executor can run.
    #[error("{path} is not a valid model graph: {reason}")]
    Invalid { path: String, reason: String },
    #[error("inference failed")]
    Run(#[from] candle_core::Error),
}

/// One prepared operator.
#[derive(Debug)]
enum Op {
    Conv {
        /// The weights `(oc, ic*kh*kw)`, rows in im2col order, with the bias and activation.
        product: Product,
        /// `None` for a 1x1 stride-1 convolution, which is a plain matrix product.
        im2col: Option<Im2Col>,
        /// The step's second input, a map of the output's shape, is added before the
        /// activation: a residual addition folded in at load.
        residual: bool,
    },
    Depthwise(Depthwise),
    MaxPool(MaxPool),
    Pad {
        paddings: Vec<Vec<usize>>,
    },
    Add {
        activation: Activation,
        /// The first input is read by nothing after this step and its storage is this run's
        /// own: the sum is written into it instead of a new map (set at load).
        overwrite_first: bool,
    },
    Relu,
    PRelu(PRelu),
    Reshape {
        shape: Vec<usize>,
    },
    Concat {
        axis: i64,
    },
    Mean,
    Softmax,
}

#[derive(Debug)]
struct Step {
    op: Op,
    inputs: Vec<usize>,
    output: usize,
    /// Values no later step reads (set at load): dropped once this step has run.
    frees: Vec<usize>,
}

/// A loaded model, ready to run. Outputs come back in the graph's order, which callers rely on
/// (the converter writes them as the original model lists them).
#[derive(Debug)]
pub struct Graph {
    input: usize,
    outputs: Vec<usize>,
    constants: HashMap<usize, Tensor>,
    steps: Vec<Step>,
}
