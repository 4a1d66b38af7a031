//! Max pooling on NCHW f32 with TensorFlow's padding: a window reads only the input it covers
//! (TF pads with the lowest value, which never wins), so nothing is padded in memory.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use multiversion::multiversion;

use super::{Window, contiguous_f32};
use crate::vision::graph::padding::Padding;

#[derive(Debug, Clone)]
pub struct MaxPool {
    pub filter: (usize, usize),
    pub stride: (usize, usize),
    pub padding: Padding,
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let input = contiguous_f32(storage, layout, self.name())?;
        let Window {
            oh,
            ow,
            kh: fh,
            kw: fw,
            sh,
            sw,
            top,
            left,
            ..
        } = Window::new((h, w), self.filter, self.stride, self.padding);
        let mut out = Vec::with_capacity(n * c * oh * ow);
        for plane in input.chunks_exact(h * w) {
            for oy in 0..oh {
                // The input rows this output row's windows cover, clipped to the map.
                let y0 = (oy * sh).saturating_sub(top);
                let y1 = (oy * sh + fh).saturating_sub(top).min(h);
                let start = out.len();
                out.extend(std::iter::repeat_n(f32::NEG_INFINITY, ow));
                let dst = &mut out[start..];
                for iy in y0..y1 {
                    max_row(&plane[iy * w..][..w], dst, fw, sw, left);
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }
}

/// Folds one input row into an output row of window maxima.
#[multiversion(targets = "simd")]
fn max_row(row: &[f32], dst: &mut [f32], fw: usize, sw: usize, left: usize) {
    let w = row.len();
    if fw == 2 && sw == 2 && left == 0 {
        // The usual 2x2 pool: pairs side by side.
        for (d, pair) in dst.iter_mut().zip(row.chunks_exact(2)) {
            *d = d.max(pair[0].max(pair[1]));
        }
        if w % 2 == 1
            && let Some(last) = dst.get_mut(w / 2)
        {
            *last = last.max(row[w - 1]);
        }
        return;
    }
    for (ox, d) in dst.iter_mut().enumerate() {
        let x0 = (ox * sw).saturating_sub(left);
        let x1 = (ox * sw + fw).saturating_sub(left).min(w);
        for &v in &row[x0..x1] {
            *d = d.max(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::graph::padding::pad_value;
    use candle_core::{Device, Tensor};

    #[test]
    fn max_pooling_matches_candles_on_a_padded_map() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (padding, (h, w), filter, stride) in [
            (Padding::Valid, (8, 8), 2, 2),
            (Padding::Same, (7, 9), 2, 2),
            (Padding::Same, (6, 6), 3, 2),
            (Padding::Same, (5, 5), 3, 1),
        ] {
            let x = Tensor::randn(0f32, 1f32, (1, 3, h, w), &dev)?;
            let ours = x.apply_op1_no_bwd(&MaxPool {
                filter: (filter, filter),
                stride: (stride, stride),
                padding,
            })?;
            let (_, top, bottom) = padding.along(h, filter, stride);
            let (_, left, right) = padding.along(w, filter, stride);
            let padded = pad_value(&x, 2, top, bottom, f32::MIN)?;
            let padded = pad_value(&padded, 3, left, right, f32::MIN)?;
            let reference = padded.max_pool2d_with_stride((filter, filter), (stride, stride))?;
            assert_eq!(ours.dims(), reference.dims());
            let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0, "{padding:?} {h}x{w} filter {filter}");
        }
        Ok(())
    }
}
