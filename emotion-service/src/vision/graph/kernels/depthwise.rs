//! Depthwise convolution (multiplier 1) with bias, padding and activation fused, on NCHW f32.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use multiversion::multiversion;

use super::{Activation, Window, contiguous_f32, gather_every};
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

/// Output rows narrower than this are computed across channels: in chunks of [`LANES`], a row
/// of 2 to 6 values leaves most of the lanes idle (measured: 2x2 and 4x4 planes took 2.4 to 3.6
/// times as long in rows, 8x8 the same either way, 12x12 half as long in rows).
const ROW_MIN_WIDTH: usize = 8;

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
        let Window { oh, ow, kh, kw, .. } = geometry;
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
        let mut block = Block::new(geometry);
        // Output rows in whole chunks, copied out once complete.
        let mut lines = vec![0f32; ROWS * ow.div_ceil(LANES) * LANES];
        for (i, plane) in input.chunks_exact(h * w).enumerate() {
            let ch = i % c;
            let start = out.len();
            let k = &self.weights[ch * kh * kw..][..kh * kw];
            accumulate_rows(&mut block, plane, k, self.bias[ch], &mut lines, &mut out);
            self.activation.apply_in_place(ch, &mut out[start..]);
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }
}

/// Values per chunk of an output row: one AVX-512 vector, or two AVX2 ones.
const LANES: usize = 16;

/// Output rows computed together: their sums are independent, so the processor overlaps them
/// instead of waiting on one chain of additions, and each input row is read once for all.
const ROWS: usize = 4;

/// The input rows a plane's outputs read, zero padded and laid out so that every tap is a
/// contiguous run, in whole chunks of [`LANES`]: phase `p` of a padded row holds its columns
/// `p, p + s, p + 2s, ...` for stride `s`, so tap `(ky, kx)` of output `(oy, ox)` is column
/// `ox + kx / s` of phase `kx % s`, row `oy * s + ky`. Filled once per plane: filled again for
/// every [`ROWS`] output rows (a few rows, kept in L1), each run was read just after it was
/// written, across the stores that wrote it (most likely stalling on their forwarding); the
/// whole plane at once (38 KiB for 96x96) measured 5-15% faster per layer, the same values.
struct Block {
    g: Window,
    /// Padded rows: those the plane's last block of [`ROWS`] output rows reads, and above.
    rows: usize,
    /// Values per phase row: the output row in whole chunks, plus the taps' reach.
    width: usize,
    /// `[phase][row][column]`.
    values: Vec<f32>,
    /// Where each tap's run for the first output row and column starts, in `[ky][kx]` order;
    /// output row `oy` and column `ox` add `oy * sh * width + ox`.
    offsets: Vec<usize>,
}

impl Block {
    fn new(g: Window) -> Self {
        let rows = (g.oh.div_ceil(ROWS) * ROWS - 1) * g.sh + g.kh;
        let width = g.ow.div_ceil(LANES) * LANES + (g.kw - 1) / g.sw;
        let offsets = (0..g.kh)
            .flat_map(|ky| (0..g.kw).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| ((kx % g.sw) * rows + ky) * width + kx / g.sw)
            .collect();
        Self {
            g,
            rows,
            width,
            values: vec![0.0; g.sw * rows * width],
            offsets,
        }
    }

    /// The runs a 3-wide kernel at stride `S` (1 or 2) reads from the block's row `y` for the
    /// chunk at `x0`: columns `x0..`, `x0 + 1..` and `x0 + 2..` at stride 1; even, odd, and even
    /// from one further at stride 2.
    #[inline(always)]
    fn three_runs<const S: usize>(&self, y: usize, x0: usize) -> [[f32; LANES]; 3] {
        let at = |phase: usize| (phase * self.rows + y) * self.width + x0;
        let run = |from: &[f32]| -> [f32; LANES] { from[..LANES].try_into().expect("LANES") };
        if S == 1 {
            let row: &[f32; LANES + 2] = self.values[at(0)..][..LANES + 2]
                .try_into()
                .expect("a 3-wide run");
            [run(&row[..]), run(&row[1..]), run(&row[2..])]
        } else {
            let even: &[f32; LANES + 1] = self.values[at(0)..][..LANES + 1]
                .try_into()
                .expect("an even run");
            let odd: &[f32; LANES] = self.values[at(1)..][..LANES]
                .try_into()
                .expect("an odd run");
            [run(&even[..]), *odd, run(&even[1..])]
        }
    }
}

/// Fills `block` with the plane's padded rows.
#[inline(always)]
fn fill_block(block: &mut Block, plane: &[f32]) {
    let Window {
        h,
        w,
        sw,
        top,
        left,
        ..
    } = block.g;
    let (rows, width) = (block.rows, block.width);
    for (phase, phase_rows) in block.values.chunks_exact_mut(rows * width).enumerate() {
        // Columns x read input column x * sw + phase - left: those inside the row.
        let lo = left.saturating_sub(phase).div_ceil(sw).min(width);
        let hi = (w + left)
            .saturating_sub(phase)
            .div_ceil(sw)
            .clamp(lo, width);
        for (y, dst) in phase_rows.chunks_exact_mut(width).enumerate() {
            let Some(iy) = y.checked_sub(top).filter(|&iy| iy < h) else {
                dst.fill(0.0);
                continue;
            };
            let src = &plane[iy * w..][..w];
            dst[..lo].fill(0.0);
            if hi > lo {
                gather_every(&mut dst[lo..hi], &src[lo * sw + phase - left..], sw);
            }
            dst[hi..].fill(0.0);
        }
    }
}

/// One plane's outputs, row after row, appended to `out`: each chunk of a row starts at the
/// bias and adds its taps `LANES` at a time (one vector operation each, no scalar tail), so
/// rows of 16, 32 or 96 values cost the same per value; the last chunk of a row keeps only the
/// values inside it. `lines` holds [`ROWS`] output rows in whole chunks. Every depthwise layer
/// of the face models is 3x3 at stride 1 or 2, which has a kernel of its own; any other reads
/// each tap at its offset ([`Block::offsets`]).
#[multiversion(targets = "simd")]
fn accumulate_rows(
    block: &mut Block,
    plane: &[f32],
    k: &[f32],
    bias: f32,
    lines: &mut [f32],
    out: &mut Vec<f32>,
) {
    let g = block.g;
    match (<&[f32; 9]>::try_from(k), g.kh, g.sh, g.sw) {
        (Ok(k), 3, 1, 1) => emit_rows(block, plane, lines, out, |b, y0, x0| {
            three_wide::<1>(b, k, bias, y0, x0)
        }),
        (Ok(k), 3, 2, 2) => emit_rows(block, plane, lines, out, |b, y0, x0| {
            three_wide::<2>(b, k, bias, y0, x0)
        }),
        _ => emit_rows(block, plane, lines, out, |b, y0, x0| {
            any_taps(b, k, bias, y0, x0)
        }),
    }
}

/// Fills the block with the plane, runs `chunk` over it for [`ROWS`] output rows at a time
/// (`chunk` takes the padded row their first one starts at, and the column), chunk after chunk,
/// and appends those rows (the ones inside the plane) to `out`.
#[inline(always)]
fn emit_rows(
    block: &mut Block,
    plane: &[f32],
    lines: &mut [f32],
    out: &mut Vec<f32>,
    chunk: impl Fn(&Block, usize, usize) -> [[f32; LANES]; ROWS],
) {
    let g = block.g;
    let span = lines.len() / ROWS;
    fill_block(block, plane);
    for oy in (0..g.oh).step_by(ROWS) {
        for x0 in (0..g.ow).step_by(LANES) {
            for (line, a) in lines
                .chunks_exact_mut(span)
                .zip(&chunk(block, oy * g.sh, x0))
            {
                line[x0..x0 + LANES].copy_from_slice(a);
            }
        }
        for line in lines.chunks_exact(span).take(g.oh - oy) {
            out.extend_from_slice(&line[..g.ow]);
        }
    }
}

/// [`ROWS`] output rows from padded row `y0`, the chunk at `x0`, of a 3x3 kernel at stride `S`
/// (1 or 2). Each
/// input row is taken once as fixed-size runs (one bounds check) and its three taps added to
/// every output row that reads it.
#[inline(always)]
fn three_wide<const S: usize>(
    block: &Block,
    k: &[f32; 9],
    bias: f32,
    y0: usize,
    x0: usize,
) -> [[f32; LANES]; ROWS] {
    let mut acc = [[bias; LANES]; ROWS];
    for y in 0..(ROWS - 1) * S + 3 {
        let [a, b, c] = block.three_runs::<S>(y0 + y, x0);
        for (r, acc) in acc.iter_mut().enumerate() {
            let Some(ky) = y.checked_sub(r * S).filter(|&ky| ky < 3) else {
                continue;
            };
            let (k0, k1, k2) = (k[ky * 3], k[ky * 3 + 1], k[ky * 3 + 2]);
            for l in 0..LANES {
                acc[l] += k0 * a[l] + k1 * b[l] + k2 * c[l];
            }
        }
    }
    acc
}

/// [`ROWS`] output rows from padded row `y0`, the chunk at `x0`, of any kernel `k`
/// (`[ky][kx]`), each tap read at its offset ([`Block::offsets`]).
#[inline(always)]
fn any_taps(block: &Block, k: &[f32], bias: f32, y0: usize, x0: usize) -> [[f32; LANES]; ROWS] {
    let step = block.g.sh * block.width;
    let x0 = y0 * block.width + x0;
    let mut acc = [[bias; LANES]; ROWS];
    for (&wv, &offset) in k.iter().zip(&block.offsets) {
        for (r, a) in acc.iter_mut().enumerate() {
            let run: &[f32; LANES] = block.values[r * step + x0 + offset..][..LANES]
                .try_into()
                .expect("LANES values");
            for (a, v) in a.iter_mut().zip(run) {
                *a += wv * v;
            }
        }
    }
    acc
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
