//! The hand-written operators, each found with a profiler: depthwise convolution (candle runs
//! one convolution per group), im2col for the other convolutions (candle's CPU convolution is a
//! scalar loop per output), and bias + activation and PReLU in one pass each.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::padding::Padding;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    None,
    Relu,
    Relu6,
}

impl Activation {
    pub fn parse(s: &str) -> Self {
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

    pub fn apply(self, t: Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::None => Ok(t),
            Self::Relu => t.relu(),
            Self::Relu6 => t.clamp(0f32, 6f32),
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
pub struct Depthwise {
    /// `[channel][ky][kx]`.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: Padding,
    pub activation: Activation,
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
        let (oh, top, _) = self.padding.along(h, kh, sh);
        let (ow, left, _) = self.padding.along(w, kw, sw);
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
pub struct PRelu {
    /// One slope per channel.
    pub alpha: Vec<f32>,
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
        map_planes(storage, layout, self.name(), |channel, plane, out| {
            let a = self.alpha[channel];
            // A select, not a branch: the loop vectorises (measured: the branchy form cost 12%
            // of a whole frame).
            out.extend(plane.iter().map(|&v| if v < 0.0 { v * a } else { v }));
        })
    }
}

/// im2col for one image: NCHW `(1, c, h, w)` to the `(c*kh*kw, oh*ow)` matrix a convolution
/// multiplies by its `(oc, c*kh*kw)` weights, with TF padding applied on the fly. candle's own CPU
/// convolution is a scalar loop per output element (17% of a frame when profiled); this copies
/// whole rows and leaves the arithmetic to the matrix product.
#[derive(Debug, Clone)]
pub struct Im2Col {
    pub kernel: (usize, usize),
    pub stride: usize,
    pub padding: Padding,
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
        let (oh, top, _) = self.padding.along(h, kh, s);
        let (ow, left, _) = self.padding.along(w, kw, s);
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
pub struct BiasAct {
    pub bias: Vec<f32>,
    pub activation: Activation,
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
        map_planes(storage, layout, self.name(), |channel, plane, out| {
            let b = self.bias[channel];
            match self.activation {
                Activation::None => out.extend(plane.iter().map(|&v| v + b)),
                Activation::Relu => out.extend(plane.iter().map(|&v| (v + b).max(0.0))),
                Activation::Relu6 => out.extend(plane.iter().map(|&v| (v + b).clamp(0.0, 6.0))),
            }
        })
    }
}

/// An NCHW f32 map of the same shape, built plane by plane: `f` gets each plane's channel and
/// appends the plane's output, in one pass and one allocation.
fn map_planes(
    storage: &CpuStorage,
    layout: &Layout,
    op: &str,
    f: impl Fn(usize, &[f32], &mut Vec<f32>),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (n, c, h, w) = layout.shape().dims4()?;
    let input = contiguous_f32(storage, layout, op)?;
    let mut out = Vec::with_capacity(input.len());
    for (i, plane) in input.chunks_exact(h * w).enumerate() {
        f(i % c, plane, &mut out);
    }
    debug_assert_eq!(out.len(), n * c * h * w);
    Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_depthwise_kernel_matches_candles_grouped_convolution() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let cases = [(1, true), (2, true), (1, false), (2, false)]
            .into_iter()
            .flat_map(|c| [(c, 3, (9, 10)), (c, 5, (8, 7)), (c, 5, (16, 16))]);
        for ((stride, same), k, (h, wd)) in cases {
            let x = Tensor::randn(0f32, 1f32, (1, 3, h, wd), &dev)?;
            let w = Tensor::randn(0f32, 1f32, (3, 1, k, k), &dev)?;
            let bias = vec![0.5f32, -1.0, 0.25];
            let op = Depthwise {
                weights: w.flatten_all()?.to_vec1()?,
                bias: bias.clone(),
                kernel: (k, k),
                stride: (stride, stride),
                padding: if same { Padding::Same } else { Padding::Valid },
                activation: Activation::None,
            };
            let ours = x.apply_op1_no_bwd(&op)?;
            let padding = if same { Padding::Same } else { Padding::Valid };
            let (_, top, bottom) = padding.along(h, k, stride);
            let (_, left, right) = padding.along(wd, k, stride);
            let padded = x
                .pad_with_zeros(2, top, bottom)?
                .pad_with_zeros(3, left, right)?;
            let reference = padded
                .conv2d(&w, 0, stride, 1, 3)?
                .broadcast_add(&Tensor::new(bias.as_slice(), &dev)?.reshape((1, 3, 1, 1))?)?;
            assert_eq!(ours.dims(), reference.dims());
            let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                diff < 1e-4,
                "stride {stride} same {same} kernel {k} {h}x{wd}: {diff}"
            );
        }
        Ok(())
    }
}
