//! Depthwise convolution (multiplier 1) with bias, padding and activation fused, on NCHW f32.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use multiversion::multiversion;

use super::{Activation, Window, contiguous_f32, unit_stride_span};
use crate::vision::graph::padding::Padding;

#[derive(Debug, Clone)]
pub struct Depthwise {
    /// `[channel][ky][kx]`, for planes wide enough to vectorise along a row.
    weights: Vec<f32>,
    /// `[ky][kx][channel]`, for small planes, vectorised across channels instead.
    weights_hwc: Vec<f32>,
    bias: Vec<f32>,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: Padding,
    pub activation: Activation,
}

/// Output rows narrower than this are computed across channels: a row of 2 to 8 values leaves
/// most of a vector idle and spends the time in loop overhead (the iris model's last 17 depthwise
/// layers are 8x8 and smaller; in rows they took a quarter of a frame).
const ROW_MIN_WIDTH: usize = 16;

impl Depthwise {
    /// `weights` are `[channel][ky][kx]`, one bias per channel.
    pub fn new(
        weights: Vec<f32>,
        bias: Vec<f32>,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: Padding,
        activation: Activation,
    ) -> Self {
        let taps = kernel.0 * kernel.1;
        let channels = bias.len();
        let mut weights_hwc = vec![0f32; weights.len()];
        for ch in 0..channels {
            for tap in 0..taps {
                weights_hwc[tap * channels + ch] = weights[ch * taps + tap];
            }
        }
        Self {
            weights,
            weights_hwc,
            bias,
            kernel,
            stride,
            padding,
            activation,
        }
    }
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
        let geometry = Window::new((h, w), self.kernel, self.stride, self.padding);
        let Window {
            oh,
            ow,
            kh,
            kw,
            sw,
            left,
            ..
        } = geometry;
        if ow < ROW_MIN_WIDTH {
            let mut out = vec![0f32; n * c * oh * ow];
            for (image, dst) in input
                .chunks_exact(c * h * w)
                .zip(out.chunks_exact_mut(c * oh * ow))
            {
                accumulate_across_channels(image, &self.weights_hwc, &self.bias, dst, geometry);
                for (ch, plane) in dst.chunks_exact_mut(oh * ow).enumerate() {
                    self.activation.apply_in_place(ch, plane);
                }
            }
            return Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))));
        }
        let mut out = Vec::with_capacity(n * c * oh * ow);
        for (i, plane) in input.chunks_exact(h * w).enumerate() {
            let ch = i % c;
            let start = out.len();
            // Every output starts at its bias: one write per output, no zero-fill first.
            out.extend(std::iter::repeat_n(self.bias[ch], oh * ow));
            let dst = &mut out[start..];
            let k = &self.weights[ch * kh * kw..][..kh * kw];
            if sw == 1 && kw == 3 && left == 1 && ow == w {
                accumulate_three_wide(plane, k, dst, geometry);
            } else if sw == 1 {
                accumulate_unit_stride(plane, k, dst, geometry);
            } else if sw == 2 && kw == 3 && left == 0 {
                accumulate_three_wide_halving(plane, k, dst, geometry);
            } else {
                accumulate_strided(plane, k, dst, geometry);
            }
            self.activation.apply_in_place(ch, dst);
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }
}

/// Adds each tap's contribution row by row: the inner loop is a contiguous multiply-add over an
/// output row, which the compiler vectorises to the CPU's widest lanes.
#[multiversion(targets = "simd")]
fn accumulate_unit_stride(plane: &[f32], k: &[f32], dst: &mut [f32], g: Window) {
    for oy in 0..g.oh {
        let drow = &mut dst[oy * g.ow..][..g.ow];
        for ky in 0..g.kh {
            let Some(row) = g.input_row(plane, oy, ky) else {
                continue;
            };
            for kx in 0..g.kw {
                let wv = k[ky * g.kw + kx];
                let (out, src) = unit_stride_span(kx as isize - g.left as isize, g.w, g.ow);
                for (d, s) in drow[out].iter_mut().zip(&row[src]) {
                    *d += wv * s;
                }
            }
        }
    }
}

/// The common case (3 wide, stride 1, one column of padding each side). A row with all three
/// input rows inside the map takes its nine taps in one pass; rows at the top and bottom edge
/// take each input row's three taps in a pass.
#[multiversion(targets = "simd")]
fn accumulate_three_wide(plane: &[f32], k: &[f32], dst: &mut [f32], g: Window) {
    let w = g.w;
    for oy in 0..g.oh {
        let drow = &mut dst[oy * w..][..w];
        let first = oy as isize - g.top as isize;
        if g.kh == 3 && w >= 2 && first >= 0 && first + 3 <= g.h as isize {
            let rows = &plane[first as usize * w..][..3 * w];
            let (r0, r1, r2) = (&rows[..w], &rows[w..2 * w], &rows[2 * w..]);
            nine_taps(drow, [r0, r1, r2], k);
            continue;
        }
        for ky in 0..g.kh {
            let Some(row) = g.input_row(plane, oy, ky) else {
                continue;
            };
            let (k0, k1, k2) = (k[ky * 3], k[ky * 3 + 1], k[ky * 3 + 2]);
            if w == 1 {
                drow[0] += k1 * row[0];
                continue;
            }
            drow[0] += k1 * row[0] + k2 * row[1];
            drow[w - 1] += k0 * row[w - 2] + k1 * row[w - 1];
            let inner = drow[1..w - 1]
                .iter_mut()
                .zip(row[..w - 2].iter().zip(&row[1..w - 1]).zip(&row[2..]));
            for (d, ((a, b), c)) in inner {
                *d += k0 * a + k1 * b + k2 * c;
            }
        }
    }
}

/// One output row from three whole input rows and a 3x3 kernel (`w >= 2`); inlined into the
/// multiversioned caller, so it is compiled for the same instructions.
#[inline(always)]
fn nine_taps(drow: &mut [f32], rows: [&[f32]; 3], k: &[f32]) {
    let w = drow.len();
    let n = w - 2;
    for (ky, row) in rows.iter().enumerate() {
        let (k0, k1, k2) = (k[ky * 3], k[ky * 3 + 1], k[ky * 3 + 2]);
        drow[0] += k1 * row[0] + k2 * row[1];
        drow[w - 1] += k0 * row[w - 2] + k1 * row[w - 1];
    }
    let [r0, r1, r2] = rows;
    let (a0, a1, a2) = (&r0[..n], &r0[1..n + 1], &r0[2..n + 2]);
    let (b0, b1, b2) = (&r1[..n], &r1[1..n + 1], &r1[2..n + 2]);
    let (c0, c1, c2) = (&r2[..n], &r2[1..n + 1], &r2[2..n + 2]);
    let d = &mut drow[1..n + 1];
    for i in 0..n {
        d[i] += k[0] * a0[i]
            + k[1] * a1[i]
            + k[2] * a2[i]
            + k[3] * b0[i]
            + k[4] * b1[i]
            + k[5] * b2[i]
            + k[6] * c0[i]
            + k[7] * c1[i]
            + k[8] * c2[i];
    }
}

/// 3 wide at stride 2 without left padding (TensorFlow's `SAME` on even widths, and `VALID`):
/// each input row is split into its even and odd columns once, so that output `x` reads
/// `even[x]`, `odd[x]` and `even[x + 1]`, all contiguous.
#[multiversion(targets = "simd")]
fn accumulate_three_wide_halving(plane: &[f32], k: &[f32], dst: &mut [f32], g: Window) {
    let w = g.w;
    // Outputs whose three taps are all inside the row; the rest read past its end.
    let full = g.ow.min(w.saturating_sub(1) / 2);
    let mut even: Vec<f32> = Vec::with_capacity(w.div_ceil(2));
    let mut odd: Vec<f32> = Vec::with_capacity(w / 2);
    for oy in 0..g.oh {
        let drow = &mut dst[oy * g.ow..][..g.ow];
        for ky in 0..g.kh {
            let Some(row) = g.input_row(plane, oy, ky) else {
                continue;
            };
            let (k0, k1, k2) = (k[ky * 3], k[ky * 3 + 1], k[ky * 3 + 2]);
            even.clear();
            odd.clear();
            even.extend((0..w.div_ceil(2)).map(|i| row[2 * i]));
            odd.extend((0..w / 2).map(|i| row[2 * i + 1]));
            let taps = even[..full].iter().zip(&odd[..full]).zip(&even[1..=full]);
            for (d, ((a, b), c)) in drow[..full].iter_mut().zip(taps) {
                *d += k0 * a + k1 * b + k2 * c;
            }
            for (ox, d) in drow.iter_mut().enumerate().skip(full) {
                for (kx, kv) in [k0, k1, k2].into_iter().enumerate() {
                    if let Some(v) = row.get(2 * ox + kx) {
                        *d += kv * v;
                    }
                }
            }
        }
    }
}

/// One image's channels at once: the input is turned to `[y][x][channel]`, each output pixel
/// sums its taps as multiply-adds over all channels (contiguous, so they vectorise), and the
/// result is turned back to planes.
#[multiversion(targets = "simd")]
fn accumulate_across_channels(
    image: &[f32],
    weights_hwc: &[f32],
    bias: &[f32],
    dst: &mut [f32],
    g: Window,
) {
    let c = bias.len();
    let mut hwc = vec![0f32; g.h * g.w * c];
    for (ch, plane) in image.chunks_exact(g.h * g.w).enumerate() {
        for (p, v) in plane.iter().enumerate() {
            hwc[p * c + ch] = *v;
        }
    }
    let mut acc = vec![0f32; c];
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            acc.copy_from_slice(bias);
            for ky in 0..g.kh {
                let iy = (oy * g.sh + ky) as isize - g.top as isize;
                if iy < 0 || iy >= g.h as isize {
                    continue;
                }
                for kx in 0..g.kw {
                    let ix = (ox * g.sw + kx) as isize - g.left as isize;
                    if ix < 0 || ix >= g.w as isize {
                        continue;
                    }
                    let x = &hwc[(iy as usize * g.w + ix as usize) * c..][..c];
                    let k = &weights_hwc[(ky * g.kw + kx) * c..][..c];
                    for ((a, xv), kv) in acc.iter_mut().zip(x).zip(k) {
                        *a += xv * kv;
                    }
                }
            }
            let p = oy * g.ow + ox;
            for (ch, a) in acc.iter().enumerate() {
                dst[ch * g.oh * g.ow + p] = *a;
            }
        }
    }
}

/// Stride 2 and above (a few layers per model): reads every `sw`-th input column.
#[multiversion(targets = "simd")]
fn accumulate_strided(plane: &[f32], k: &[f32], dst: &mut [f32], g: Window) {
    for oy in 0..g.oh {
        let drow = &mut dst[oy * g.ow..][..g.ow];
        for ky in 0..g.kh {
            let Some(row) = g.input_row(plane, oy, ky) else {
                continue;
            };
            for kx in 0..g.kw {
                let wv = k[ky * g.kw + kx];
                for (ox, d) in drow.iter_mut().enumerate() {
                    let ix = (ox * g.sw + kx) as isize - g.left as isize;
                    if ix >= 0 && ix < g.w as isize {
                        *d += wv * row[ix as usize];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn the_depthwise_kernel_matches_candles_grouped_convolution() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let cases = [(1, true), (2, true), (1, false), (2, false)]
            .into_iter()
            .flat_map(|c| {
                [
                    (c, 3, (9, 10)),
                    (c, 5, (8, 7)),
                    (c, 5, (16, 16)),
                    (c, 3, (40, 36)),
                    (c, 3, (3, 4)),
                    (c, 3, (34, 35)),
                ]
            });
        for ((stride, same), k, (h, wd)) in cases {
            let x = Tensor::randn(0f32, 1f32, (1, 3, h, wd), &dev)?;
            let w = Tensor::randn(0f32, 1f32, (3, 1, k, k), &dev)?;
            let bias = vec![0.5f32, -1.0, 0.25];
            let op = Depthwise::new(
                w.flatten_all()?.to_vec1()?,
                bias.clone(),
                (k, k),
                (stride, stride),
                if same { Padding::Same } else { Padding::Valid },
                Activation::None,
            );
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

    #[test]
    fn a_fused_prelu_scales_only_negative_outputs_by_their_channels_slope()
    -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1f32, (1, 2, 6, 6), &dev)?;
        let w = Tensor::randn(0f32, 1f32, (2, 1, 3, 3), &dev)?;
        let plain = Depthwise::new(
            w.flatten_all()?.to_vec1()?,
            vec![0.1, -0.2],
            (3, 3),
            (1, 1),
            Padding::Same,
            Activation::None,
        );
        let fused = Depthwise {
            activation: Activation::PRelu(vec![0.25, 0.5]),
            ..plain.clone()
        };
        let raw = x
            .apply_op1_no_bwd(&plain)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let out = x
            .apply_op1_no_bwd(&fused)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (i, (r, o)) in raw.iter().zip(&out).enumerate() {
            let slope = [0.25, 0.5][i / 36];
            let want = if *r < 0.0 { r * slope } else { *r };
            assert!((want - o).abs() < 1e-6, "{i}: {want} vs {o}");
        }
        Ok(())
    }
}
