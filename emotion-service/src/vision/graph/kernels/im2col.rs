//! im2col: NCHW `(n, c, h, w)` to the `(n, c*kh*kw, oh*ow)` matrices a convolution multiplies
//! by its `(oc, c*kh*kw)` weights, with TF padding applied on the fly. candle's own CPU
//! convolution is a scalar loop per output element (17% of a frame when profiled); this copies
//! whole rows and leaves the arithmetic to the matrix product.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use multiversion::multiversion;

use super::{Window, contiguous_f32, gather_every, unit_stride_span};
use crate::vision::graph::padding::Padding;

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
        let input = contiguous_f32(storage, layout, self.name())?;
        let s = self.stride;
        let window = Window::new((h, w), self.kernel, (s, s), self.padding);
        let Window { oh, ow, kh, kw, .. } = window;
        // Built in order, row after row, so nothing is zero-filled first (a memset of the whole
        // matrix was a visible share of a frame); padding is written as the zeros it reads.
        let mut out = Vec::with_capacity(n * c * kh * kw * oh * ow);
        for plane in input.chunks_exact(h * w) {
            unfold_plane(&mut out, plane, &window);
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c * kh * kw, oh * ow))))
    }
}

/// One input plane's rows of the matrix: for each kernel tap, the values it reads at every
/// output position. One call per plane, compiled for the CPU's vector width, so that the copies
/// of short rows (16 values on the iris model's maps) are not each a call of their own.
#[multiversion(targets = "simd")]
fn unfold_plane(out: &mut Vec<f32>, plane: &[f32], window: &Window) {
    let Window {
        h,
        w,
        oh,
        ow,
        kh,
        kw,
        sh: s,
        top,
        left,
        ..
    } = *window;
    for ky in 0..kh {
        for kx in 0..kw {
            let x0 = kx as isize - left as isize;
            for oy in 0..oh {
                let iy = (oy * s + ky) as isize - top as isize;
                if iy < 0 || iy >= h as isize {
                    out.extend(std::iter::repeat_n(0f32, ow));
                    continue;
                }
                let src = &plane[iy as usize * w..][..w];
                if s == 1 {
                    let (cols, from) = unit_stride_span(x0, w, ow);
                    out.extend(std::iter::repeat_n(0f32, cols.start));
                    out.extend_from_slice(&src[from]);
                    out.extend(std::iter::repeat_n(0f32, ow - cols.end));
                } else {
                    // Output columns whose tap lands inside the row, then every s-th input
                    // column from the first of them.
                    let lo = ((-x0).max(0) as usize).div_ceil(s);
                    let hi = ((w as isize - x0 + s as isize - 1) / s as isize)
                        .clamp(lo as isize, ow as isize) as usize;
                    out.extend(std::iter::repeat_n(0f32, lo));
                    let first = ((lo * s) as isize + x0) as usize;
                    let start = out.len();
                    out.resize(start + hi - lo, 0.0);
                    gather_every(&mut out[start..], &src[first..], s);
                    out.extend(std::iter::repeat_n(0f32, ow - hi));
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
    fn a_convolution_as_im2col_and_a_product_matches_candles() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (padding, k, stride) in [
            (Padding::Same, 3, 1),
            (Padding::Same, 3, 2),
            (Padding::Valid, 2, 2),
            (Padding::Valid, 3, 1),
        ] {
            let (h, w) = (7, 8);
            let x = Tensor::randn(0f32, 1f32, (1, 2, h, w), &dev)?;
            let weights = Tensor::randn(0f32, 1f32, (3, 2, k, k), &dev)?;
            let cols = x.apply_op1_no_bwd(&Im2Col {
                kernel: (k, k),
                stride,
                padding,
            })?;
            let (oh, top, bottom) = padding.along(h, k, stride);
            let (ow, left, right) = padding.along(w, k, stride);
            let ours = weights
                .reshape((3, 2 * k * k))?
                .broadcast_matmul(&cols)?
                .reshape((3, oh * ow))?;
            let reference = x
                .pad_with_zeros(2, top, bottom)?
                .pad_with_zeros(3, left, right)?
                .conv2d(&weights, 0, stride, 1, 1)?
                .reshape((3, oh * ow))?;
            let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                diff < 1e-4,
                "{padding:?} kernel {k} stride {stride}: {diff}"
            );
        }
        Ok(())
    }
}
