//! The hand-written operators, each found with a profiler: depthwise convolution (candle runs
//! one convolution per group), im2col for the other convolutions (candle's CPU convolution is a
//! scalar loop per output), max pooling (candle's is a strided loop per output, 7% of a frame),
//! and the epilogues that follow a matrix product or an addition (bias, activation, PReLU) in one
//! pass each, and each convolution's matrix product with its bias and activation.
//!
//! The workspace is built for the baseline x86-64 (SSE2), so loops the compiler vectorises would
//! use 4 lanes. The inner loops here are multiversioned instead: compiled again for AVX2 and
//! AVX-512 and chosen once at run time by the CPU, which alone took the depthwise kernel from 26%
//! of a frame to a fraction of it.
//!
//! # Layout
//! - [`Activation`]: what follows a convolution or an addition, PReLU included (fused at load).
//! - `depthwise`: [`Depthwise`]. `im2col`: [`Im2Col`]. `pool`: [`MaxPool`].
//! - `product`: [`Product`], a convolution's matrix product starting from its bias.
//! - `epilogue`: [`AddAct`] for residual additions, [`PRelu`] where it could not be fused.

mod depthwise;
mod epilogue;
mod im2col;
mod pool;
mod product;

pub use depthwise::Depthwise;
pub use epilogue::{AddAct, PRelu};
pub use im2col::Im2Col;
pub use pool::MaxPool;
pub use product::Product;

use candle_core::{CpuStorage, Layout, Tensor};
use multiversion::multiversion;

/// What follows a convolution or an addition, per channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    None,
    Relu,
    Relu6,
    /// One slope per channel for negative values (a following PRELU operator, fused at load).
    PRelu(Vec<f32>),
}

impl Activation {
    /// TFLite's fused activation names; PReLU is a separate operator there.
    pub fn parse(s: &str) -> Self {
        match s {
            "RELU" => Self::Relu,
            "RELU6" => Self::Relu6,
            _ => Self::None,
        }
    }

    /// Applies the activation to one channel's values in place.
    pub fn apply_in_place(&self, channel: usize, values: &mut [f32]) {
        match self {
            Self::None => {}
            Self::Relu => clamp_in_place(values, 0.0, f32::INFINITY),
            Self::Relu6 => clamp_in_place(values, 0.0, 6.0),
            Self::PRelu(alpha) => prelu_in_place(values, alpha[channel]),
        }
    }

    /// The activation over a tensor whose last dimension is the channel (the model's NHWC
    /// layout), for values that are not feature maps here.
    pub fn apply(&self, t: Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::None => Ok(t),
            Self::Relu => t.relu(),
            Self::Relu6 => t.clamp(0f32, 6f32),
            Self::PRelu(alpha) => {
                let channels = alpha.len();
                let dims = t.dims().to_vec();
                let mut values = t.flatten_all()?.to_vec1::<f32>()?;
                if dims.last() != Some(&channels) {
                    candle_core::bail!("PReLU over {dims:?} with {channels} slopes");
                }
                for (channel, v) in values.iter_mut().enumerate() {
                    if *v < 0.0 {
                        *v *= alpha[channel % channels];
                    }
                }
                Tensor::from_vec(values, dims, t.device())
            }
        }
    }
}

#[multiversion(targets = "simd")]
fn clamp_in_place(values: &mut [f32], lo: f32, hi: f32) {
    for v in values {
        *v = v.max(lo).min(hi);
    }
}

#[multiversion(targets = "simd")]
fn prelu_in_place(values: &mut [f32], slope: f32) {
    // Arithmetic, not a select, and exact (one of the two terms is zero): every value is
    // stored. The select compiled to a store of the negative lanes only (`vmaskmovps`), which
    // AMD's cores run microcoded: 13% of the mesh's time, for a pass over its output.
    for v in values {
        *v = v.max(0.0) + slope * v.min(0.0);
    }
}

/// A sliding window over one channel's plane: input `h x w`, output `oh x ow`, window
/// `kh x kw`, strides, and TensorFlow's padding before each axis. Shared by the depthwise
/// convolution, im2col and pooling.
#[derive(Debug, Clone, Copy)]
struct Window {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    top: usize,
    left: usize,
}

impl Window {
    fn new(
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        padding: crate::vision::graph::padding::Padding,
    ) -> Self {
        let (oh, top, _) = padding.along(h, kh, sh);
        let (ow, left, _) = padding.along(w, kw, sw);
        Self {
            h,
            w,
            oh,
            ow,
            kh,
            kw,
            sh,
            sw,
            top,
            left,
        }
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

/// `dst[i] = src[i * step]`. An iterator that steps is pushed value by value (2.3 ns a value,
/// most of im2col's time); pairs let the compiler use vector shuffles.
#[inline(always)]
fn gather_every(dst: &mut [f32], src: &[f32], step: usize) {
    match step {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => {
            let (pairs, _) = src.as_chunks::<2>();
            for (d, p) in dst.iter_mut().zip(pairs) {
                *d = p[0];
            }
            // An odd row's last value has no pair of its own.
            let n = dst.len();
            if pairs.len() < n {
                dst[n - 1] = src[(n - 1) * 2];
            }
        }
        _ => {
            for (d, v) in dst.iter_mut().zip(src.iter().step_by(step)) {
                *d = *v;
            }
        }
    }
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
