//! A small executor for the converted face models (see `scripts/models/convert.py`): a list of
//! TFLite-style operators over candle tensors.
//!
//! Activations are kept NCHW, the layout candle's matrix products expect; weights are re-laid out
//! once at load. Where candle has no fast path, the operator is hand-written (each found with a
//! profiler): depthwise convolution (candle runs one convolution per group), im2col for the other
//! convolutions (candle's CPU convolution is a scalar loop per output), bias + activation and
//! PReLU in one pass each. Every convolution is then one matrix product.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not a valid model graph: {reason}")]
    Invalid { path: String, reason: String },
    #[error("inference failed: {0}")]
    Run(#[from] candle_core::Error),
}

#[derive(Debug, Deserialize)]
struct GraphFile {
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    output_names: Vec<String>,
    shapes: HashMap<String, Vec<usize>>,
    ops: Vec<OpFile>,
}

#[derive(Debug, Deserialize)]
struct OpFile {
    op: String,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    #[serde(default)]
    stride: Vec<usize>,
    #[serde(default)]
    padding: String,
    #[serde(default)]
    activation: String,
    #[serde(default)]
    filter: Vec<usize>,
    #[serde(default)]
    axis: i64,
    #[serde(default)]
    shape: Vec<i64>,
    #[serde(default)]
    paddings: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Activation {
    None,
    Relu,
    Relu6,
}

impl Activation {
    fn parse(s: &str) -> Self {
        match s {
            "RELU" => Self::Relu,
            "RELU6" => Self::Relu6,
            _ => Self::None,
        }
    }

    fn apply_scalar(self, v: f32) -> f32 {
        match self {
            Self::None => v,
            Self::Relu => v.max(0.0),
            Self::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    fn apply(self, t: Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::None => Ok(t),
            Self::Relu => t.relu(),
            Self::Relu6 => t.clamp(0f32, 6f32),
        }
    }
}

/// TensorFlow "SAME" padding: total padding split with the extra pixel after (TF is asymmetric
/// where candle is symmetric, so it is applied explicitly).
fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (out, total / 2, total - total / 2)
}

fn padding_for(mode: &str, input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    if mode == "SAME" {
        same_padding(input, kernel, stride)
    } else {
        ((input - kernel) / stride + 1, 0, 0)
    }
}

/// For a stride-1 kernel column offset `x0` (kernel x minus left padding): the output columns
/// that read inside an input row of width `w`, and the input columns they read, as equal-length
/// ranges (empty when none do).
fn unit_stride_span(
    x0: isize,
    w: usize,
    ow: usize,
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let lo = (-x0).max(0) as usize;
    let hi = ((w as isize - x0).min(ow as isize)).max(lo as isize) as usize;
    (
        lo..hi,
        (lo as isize + x0) as usize..(hi as isize + x0) as usize,
    )
}

/// The input of a hand-written operator: contiguous f32, which is all these models produce.
fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("{op} expects a contiguous f32 input"),
    }
}

/// Depthwise convolution (multiplier 1) with bias, padding and activation fused, on NCHW f32.
#[derive(Debug, Clone)]
struct Depthwise {
    /// `[channel][ky][kx]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    kernel: (usize, usize),
    stride: (usize, usize),
    same: bool,
    activation: Activation,
}

impl CustomOp1 for Depthwise {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let input = contiguous_f32(storage, layout, self.name())?;
        let (kh, kw) = self.kernel;
        let (sh, sw) = self.stride;
        let mode = if self.same { "SAME" } else { "VALID" };
        let (oh, top, _) = padding_for(mode, h, kh, sh);
        let (ow, left, _) = padding_for(mode, w, kw, sw);
        let mut out = vec![0f32; n * c * oh * ow];
        for b in 0..n {
            for ch in 0..c {
                let plane = &input[(b * c + ch) * h * w..][..h * w];
                let k = &self.weights[ch * kh * kw..][..kh * kw];
                let dst = &mut out[(b * c + ch) * oh * ow..][..oh * ow];
                dst.fill(self.bias[ch]);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = k[ky * kw + kx];
                        for oy in 0..oh {
                            let iy = (oy * sh + ky) as isize - top as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let row = &plane[iy as usize * w..][..w];
                            let drow = &mut dst[oy * ow..][..ow];
                            if sw == 1 {
                                // Contiguous inner loop: the compiler vectorises it.
                                let (out, src) =
                                    unit_stride_span(kx as isize - left as isize, w, ow);
                                for (d, s) in drow[out].iter_mut().zip(&row[src]) {
                                    *d += wv * s;
                                }
                            } else {
                                for (ox, d) in drow.iter_mut().enumerate() {
                                    let ix = (ox * sw + kx) as isize - left as isize;
                                    if ix >= 0 && ix < w as isize {
                                        *d += wv * row[ix as usize];
                                    }
                                }
                            }
                        }
                    }
                }
                if self.activation != Activation::None {
                    for v in dst.iter_mut() {
                        *v = self.activation.apply_scalar(*v);
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }
}

/// PReLU in one pass (candle would need four operators and four allocations for it).
#[derive(Debug, Clone)]
struct PRelu {
    /// One slope per channel.
    alpha: Vec<f32>,
}

impl CustomOp1 for PRelu {
    fn name(&self) -> &'static str {
        "prelu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let input = contiguous_f32(storage, layout, self.name())?;
        let mut out = Vec::with_capacity(input.len());
        for (i, plane) in input.chunks_exact(h * w).enumerate() {
            let a = self.alpha[i % c];
            // A select, not a branch: the loop vectorises (measured: the branchy form cost 12%
            // of a whole frame).
            out.extend(plane.iter().map(|&v| if v < 0.0 { v * a } else { v }));
        }
        debug_assert_eq!(out.len(), n * c * h * w);
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}

/// im2col for one image: NCHW `(1, c, h, w)` to the `(c*kh*kw, oh*ow)` matrix a convolution
/// multiplies by its `(oc, c*kh*kw)` weights, with TF padding applied on the fly. candle's own CPU
/// convolution is a scalar loop per output element (17% of a frame when profiled); this copies
/// whole rows and leaves the arithmetic to the matrix product.
#[derive(Debug, Clone)]
struct Im2Col {
    kernel: (usize, usize),
    stride: usize,
    same: bool,
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        if n != 1 {
            candle_core::bail!("im2col takes one image at a time, got {n}");
        }
        let input = contiguous_f32(storage, layout, self.name())?;
        let (kh, kw) = self.kernel;
        let s = self.stride;
        let mode = if self.same { "SAME" } else { "VALID" };
        let (oh, top, _) = padding_for(mode, h, kh, s);
        let (ow, left, _) = padding_for(mode, w, kw, s);
        let mut out = vec![0f32; c * kh * kw * oh * ow];
        for (ch, plane) in input.chunks_exact(h * w).enumerate() {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = &mut out[((ch * kh + ky) * kw + kx) * oh * ow..][..oh * ow];
                    let x0 = kx as isize - left as isize;
                    for oy in 0..oh {
                        let iy = (oy * s + ky) as isize - top as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let src = &plane[iy as usize * w..][..w];
                        let dst = &mut row[oy * ow..][..ow];
                        if s == 1 {
                            let (out, from) = unit_stride_span(x0, w, ow);
                            dst[out].copy_from_slice(&src[from]);
                        } else {
                            for (ox, d) in dst.iter_mut().enumerate() {
                                let ix = (ox * s) as isize + x0;
                                if ix >= 0 && ix < w as isize {
                                    *d = src[ix as usize];
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((c * kh * kw, oh * ow))))
    }
}

/// Bias and activation of a convolution's output in one pass (candle would take two operators
/// and two allocations).
#[derive(Debug, Clone)]
struct BiasAct {
    bias: Vec<f32>,
    activation: Activation,
}

impl CustomOp1 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let input = contiguous_f32(storage, layout, self.name())?;
        let mut out = Vec::with_capacity(input.len());
        for (i, plane) in input.chunks_exact(h * w).enumerate() {
            let b = self.bias[i % c];
            match self.activation {
                Activation::None => out.extend(plane.iter().map(|&v| v + b)),
                Activation::Relu => out.extend(plane.iter().map(|&v| (v + b).max(0.0))),
                Activation::Relu6 => out.extend(plane.iter().map(|&v| (v + b).clamp(0.0, 6.0))),
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}

/// One prepared operator.
#[derive(Debug)]
enum Op {
    Conv {
        /// `(oc, ic*kh*kw)`, rows in im2col order.
        weight: Tensor,
        bias_act: BiasAct,
        /// `None` for a 1x1 stride-1 convolution, which is a plain matrix product.
        im2col: Option<Im2Col>,
    },
    Depthwise(Depthwise),
    MaxPool {
        filter: (usize, usize),
        stride: (usize, usize),
        same: bool,
    },
    Pad {
        paddings: Vec<Vec<usize>>,
    },
    Add {
        activation: Activation,
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
}

/// A value during execution: a feature map in NCHW, or a plain tensor in the model's own layout.
#[derive(Debug, Clone)]
enum Value {
    Nchw(Tensor),
    Plain(Tensor),
}

impl Value {
    fn nchw(&self) -> candle_core::Result<&Tensor> {
        match self {
            Self::Nchw(t) => Ok(t),
            Self::Plain(_) => candle_core::bail!("expected a feature map"),
        }
    }

    /// The value in the model's layout (NHWC for feature maps).
    fn plain(&self) -> candle_core::Result<Tensor> {
        match self {
            Self::Nchw(t) => t.permute((0, 2, 3, 1))?.contiguous(),
            Self::Plain(t) => Ok(t.clone()),
        }
    }
}

/// A loaded model, ready to run.
#[derive(Debug)]
pub struct Graph {
    pub name: String,
    input: usize,
    input_shape: Vec<usize>,
    outputs: Vec<usize>,
    pub output_names: Vec<String>,
    constants: HashMap<usize, Tensor>,
    steps: Vec<Step>,
}

impl Graph {
    /// Loads `<prefix>.graph.json` and `<prefix>.safetensors`.
    pub fn load(dir: &Path, name: &str) -> Result<Self, GraphError> {
        let json_path = dir.join(format!("{name}.graph.json"));
        let weights_path = dir.join(format!("{name}.safetensors"));
        let shown = |p: &Path| p.display().to_string();
        let text = std::fs::read_to_string(&json_path).map_err(|e| GraphError::Read {
            path: shown(&json_path),
            reason: e.to_string(),
        })?;
        let file: GraphFile = serde_json::from_str(&text).map_err(|e| GraphError::Invalid {
            path: shown(&json_path),
            reason: e.to_string(),
        })?;
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|e| {
            GraphError::Read {
                path: shown(&weights_path),
                reason: e.to_string(),
            }
        })?;
        let invalid = |reason: String| GraphError::Invalid {
            path: shown(&json_path),
            reason,
        };
        let constants: HashMap<usize, Tensor> = tensors
            .into_iter()
            .filter_map(|(k, t)| {
                k.strip_prefix('t')
                    .and_then(|i| i.parse().ok())
                    .map(|i| (i, t))
            })
            .collect();
        let constant = |id: usize| {
            constants
                .get(&id)
                .cloned()
                .ok_or_else(|| invalid(format!("missing constant t{id}")))
        };
        let mut steps = Vec::with_capacity(file.ops.len());
        for o in &file.ops {
            let output = *o
                .outputs
                .first()
                .ok_or_else(|| invalid(format!("{} has no output", o.op)))?;
            let activation = Activation::parse(&o.activation);
            let stride = (
                o.stride.first().copied().unwrap_or(1),
                o.stride.get(1).copied().unwrap_or(1),
            );
            let mut inputs = o.inputs.clone();
            let op = match o.op.as_str() {
                "CONV_2D" => {
                    let w = constant(o.inputs[1])?; // OHWI
                    let (oc, kh, kw, ic) = w.dims4().map_err(|e| invalid(e.to_string()))?;
                    if stride.0 != stride.1 {
                        return Err(invalid("non-square convolution stride".into()));
                    }
                    let pointwise = kh == 1 && kw == 1 && stride == (1, 1);
                    let weight = w
                        .permute((0, 3, 1, 2))?
                        .contiguous()?
                        .reshape((oc, ic * kh * kw))?;
                    let bias = constant(o.inputs[2])?.flatten_all()?.to_vec1::<f32>()?;
                    if bias.len() != oc {
                        return Err(invalid(
                            "convolution bias does not match its channels".into(),
                        ));
                    }
                    inputs.truncate(1);
                    Op::Conv {
                        weight,
                        bias_act: BiasAct { bias, activation },
                        im2col: (!pointwise).then_some(Im2Col {
                            kernel: (kh, kw),
                            stride: stride.0,
                            same: o.padding == "SAME",
                        }),
                    }
                }
                "DEPTHWISE_CONV_2D" => {
                    let w = constant(o.inputs[1])?; // 1HWC
                    let (_, kh, kw, c) = w.dims4().map_err(|e| invalid(e.to_string()))?;
                    let weights = w
                        .permute((3, 1, 2, 0))?
                        .contiguous()?
                        .flatten_all()?
                        .to_vec1::<f32>()?;
                    let bias = constant(o.inputs[2])?.flatten_all()?.to_vec1::<f32>()?;
                    if bias.len() != c {
                        return Err(invalid("depthwise bias does not match its channels".into()));
                    }
                    inputs.truncate(1);
                    Op::Depthwise(Depthwise {
                        weights,
                        bias,
                        kernel: (kh, kw),
                        stride,
                        same: o.padding == "SAME",
                        activation,
                    })
                }
                "MAX_POOL_2D" => Op::MaxPool {
                    filter: (o.filter[0], o.filter[1]),
                    stride,
                    same: o.padding == "SAME",
                },
                "PAD" => Op::Pad {
                    paddings: o.paddings.clone(),
                },
                "ADD" => Op::Add { activation },
                "RELU" => Op::Relu,
                "PRELU" => {
                    let alpha = constant(o.inputs[1])?.flatten_all()?.to_vec1::<f32>()?;
                    inputs.truncate(1);
                    Op::PRelu(PRelu { alpha })
                }
                "RESHAPE" => Op::Reshape {
                    shape: o.shape.iter().map(|d| (*d).max(1) as usize).collect(),
                },
                "CONCATENATION" => Op::Concat { axis: o.axis },
                "MEAN" => Op::Mean,
                "SOFTMAX" => Op::Softmax,
                other => return Err(invalid(format!("unsupported operator {other}"))),
            };
            steps.push(Step { op, inputs, output });
        }
        let input = *file
            .inputs
            .first()
            .ok_or_else(|| invalid("no input".into()))?;
        let input_shape = file
            .shapes
            .get(&input.to_string())
            .cloned()
            .ok_or_else(|| invalid("no input shape".into()))?;
        Ok(Self {
            name: name.to_string(),
            input,
            input_shape,
            outputs: file.outputs,
            output_names: file.output_names,
            constants,
            steps,
        })
    }

    /// `(height, width, channels)` the model takes.
    pub fn input_size(&self) -> (usize, usize, usize) {
        (
            self.input_shape[1],
            self.input_shape[2],
            self.input_shape[3],
        )
    }

    /// Runs the model on an NCHW input and returns its outputs in the model's own layout.
    pub fn run(&self, input: &Tensor) -> Result<Vec<Tensor>, GraphError> {
        let mut values: HashMap<usize, Value> = HashMap::with_capacity(self.steps.len() + 1);
        values.insert(self.input, Value::Nchw(input.clone()));
        for step in &self.steps {
            let get = |i: usize| -> candle_core::Result<Value> {
                if let Some(v) = values.get(&step.inputs[i]) {
                    return Ok(v.clone());
                }
                match self.constants.get(&step.inputs[i]) {
                    Some(c) => Ok(Value::Plain(c.clone())),
                    None => {
                        candle_core::bail!("tensor {} used before it is computed", step.inputs[i])
                    }
                }
            };
            let out = match &step.op {
                Op::Conv {
                    weight,
                    bias_act,
                    im2col,
                } => {
                    let x = get(0)?;
                    let x = x.nchw()?.contiguous()?;
                    let (n, c, h, w) = x.dims4()?;
                    if n != 1 {
                        return Err(candle_core::Error::Msg(format!(
                            "the executor runs one image at a time, got {n}"
                        ))
                        .into());
                    }
                    let (cols, oh, ow) = match im2col {
                        None => (x.reshape((c, h * w))?, h, w),
                        Some(op) => {
                            let mode = if op.same { "SAME" } else { "VALID" };
                            let (oh, ..) = padding_for(mode, h, op.kernel.0, op.stride);
                            let (ow, ..) = padding_for(mode, w, op.kernel.1, op.stride);
                            (x.apply_op1_no_bwd(op)?, oh, ow)
                        }
                    };
                    let y = weight.matmul(&cols)?.reshape((1, weight.dim(0)?, oh, ow))?;
                    Value::Nchw(y.apply_op1_no_bwd(bias_act)?)
                }
                Op::Depthwise(d) => Value::Nchw(get(0)?.nchw()?.contiguous()?.apply_op1_no_bwd(d)?),
                Op::MaxPool {
                    filter,
                    stride,
                    same,
                } => {
                    let x = get(0)?;
                    let x = x.nchw()?;
                    let (_, _, h, w) = x.dims4()?;
                    let x = if *same {
                        let (_, top, bottom) = same_padding(h, filter.0, stride.0);
                        let (_, left, right) = same_padding(w, filter.1, stride.1);
                        pad_value(
                            &pad_value(x, 2, top, bottom, f32::MIN)?,
                            3,
                            left,
                            right,
                            f32::MIN,
                        )?
                    } else {
                        x.clone()
                    };
                    Value::Nchw(x.max_pool2d_with_stride(*filter, *stride)?)
                }
                Op::Pad { paddings } => {
                    // NHWC paddings applied to NCHW dims.
                    let mut x = get(0)?.nchw()?.clone();
                    for (nhwc_dim, nchw_dim) in [(1, 2), (2, 3), (3, 1)] {
                        let p = &paddings[nhwc_dim];
                        if p[0] + p[1] > 0 {
                            x = x.pad_with_zeros(nchw_dim, p[0], p[1])?;
                        }
                    }
                    Value::Nchw(x)
                }
                Op::Add { activation } => match (get(0)?, get(1)?) {
                    (Value::Nchw(a), Value::Nchw(b)) => {
                        Value::Nchw(activation.apply(a.broadcast_add(&b)?)?)
                    }
                    (a, b) => {
                        Value::Plain(activation.apply(a.plain()?.broadcast_add(&b.plain()?)?)?)
                    }
                },
                Op::Relu => match get(0)? {
                    Value::Nchw(t) => Value::Nchw(t.relu()?),
                    Value::Plain(t) => Value::Plain(t.relu()?),
                },
                Op::PRelu(p) => Value::Nchw(get(0)?.nchw()?.contiguous()?.apply_op1_no_bwd(p)?),
                Op::Reshape { shape } => Value::Plain(get(0)?.plain()?.reshape(shape.as_slice())?),
                Op::Concat { axis } => {
                    let parts: Vec<Value> = (0..step.inputs.len())
                        .map(get)
                        .collect::<candle_core::Result<_>>()?;
                    if parts.iter().all(|p| matches!(p, Value::Nchw(_))) && *axis == 3 {
                        let ts: Vec<&Tensor> = parts
                            .iter()
                            .map(|p| p.nchw())
                            .collect::<candle_core::Result<_>>()?;
                        Value::Nchw(Tensor::cat(&ts, 1)?)
                    } else {
                        let ts: Vec<Tensor> = parts
                            .iter()
                            .map(|p| p.plain())
                            .collect::<candle_core::Result<_>>()?;
                        let rank = ts[0].rank() as i64;
                        let axis = if *axis < 0 { rank + axis } else { *axis } as usize;
                        Value::Plain(Tensor::cat(&ts, axis)?)
                    }
                }
                Op::Mean => Value::Plain(get(0)?.nchw()?.mean((2, 3))?),
                Op::Softmax => Value::Plain(candle_nn::ops::softmax_last_dim(&get(0)?.plain()?)?),
            };
            values.insert(step.output, out);
        }
        self.outputs
            .iter()
            .map(|o| {
                let v = values
                    .get(o)
                    .ok_or_else(|| candle_core::Error::Msg(format!("output {o} not computed")))?;
                Ok(v.plain()?)
            })
            .collect()
    }
}

/// Pads dimension `dim` with a constant (max pooling pads with the lowest value, not zero).
fn pad_value(
    x: &Tensor,
    dim: usize,
    before: usize,
    after: usize,
    value: f32,
) -> candle_core::Result<Tensor> {
    if before + after == 0 {
        return Ok(x.clone());
    }
    let mut parts = Vec::with_capacity(3);
    let mut dims = x.dims().to_vec();
    if before > 0 {
        dims[dim] = before;
        parts.push(Tensor::full(value, dims.as_slice(), x.device())?.to_dtype(DType::F32)?);
    }
    parts.push(x.clone());
    if after > 0 {
        dims[dim] = after;
        parts.push(Tensor::full(value, dims.as_slice(), x.device())?.to_dtype(DType::F32)?);
    }
    Tensor::cat(&parts, dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_extra_pixel_after_like_tensorflow() {
        assert_eq!(same_padding(128, 3, 2), (64, 0, 1));
        assert_eq!(same_padding(64, 5, 1), (64, 2, 2));
        assert_eq!(same_padding(7, 3, 2), (4, 1, 1));
    }

    #[test]
    fn the_depthwise_kernel_matches_candles_grouped_convolution() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (stride, same) in [(1, true), (2, true), (1, false), (2, false)] {
            let x = Tensor::randn(0f32, 1f32, (1, 3, 9, 10), &dev)?;
            let w = Tensor::randn(0f32, 1f32, (3, 1, 3, 3), &dev)?;
            let bias = vec![0.5f32, -1.0, 0.25];
            let op = Depthwise {
                weights: w.flatten_all()?.to_vec1()?,
                bias: bias.clone(),
                kernel: (3, 3),
                stride: (stride, stride),
                same,
                activation: Activation::None,
            };
            let ours = x.apply_op1_no_bwd(&op)?;
            let mode = if same { "SAME" } else { "VALID" };
            let (_, top, bottom) = padding_for(mode, 9, 3, stride);
            let (_, left, right) = padding_for(mode, 10, 3, stride);
            let padded = x
                .pad_with_zeros(2, top, bottom)?
                .pad_with_zeros(3, left, right)?;
            let reference = padded
                .conv2d(&w, 0, stride, 1, 3)?
                .broadcast_add(&Tensor::new(bias.as_slice(), &dev)?.reshape((1, 3, 1, 1))?)?;
            assert_eq!(ours.dims(), reference.dims());
            let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "stride {stride} same {same}: {diff}");
        }
        Ok(())
    }
}
