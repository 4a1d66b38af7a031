//! What follows a residual addition, or a map whose producer could not take its PReLU, in one
//! pass and one allocation each: candle would take an operator and an allocation per step (add,
//! activation, and four for PReLU).

use candle_core::{CpuStorage, CustomOp1, InplaceOp2, Layout, Shape};
use multiversion::multiversion;

use super::{Activation, contiguous_f32};

/// A residual addition of two NCHW maps of one shape, then the activation, written into the
/// first.
#[derive(Debug, Clone)]
pub struct AddAct {
    pub activation: Activation,
}

impl InplaceOp2 for AddAct {
    fn name(&self) -> &'static str {
        "add-activation"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("ADD of {:?} and {:?}", l1.shape(), l2.shape());
        }
        let (_, c, h, w) = l1.shape().dims4()?;
        let b = contiguous_f32(s2, l2, self.name())?;
        let a = match (s1, l1.contiguous_offsets()) {
            (CpuStorage::F32(data), Some((start, end))) => &mut data[start..end],
            _ => candle_core::bail!("{} expects a contiguous f32 input", self.name()),
        };
        for (i, (dst, pb)) in a
            .chunks_exact_mut(h * w)
            .zip(b.chunks_exact(h * w))
            .enumerate()
        {
            add(dst, pb);
            self.activation.apply_in_place(i % c, dst);
        }
        Ok(())
    }
}

/// PReLU alone, where no producer could take it.
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
        map_planes(storage, layout, self.name(), |channel, out| {
            super::prelu_in_place(out, self.alpha[channel]);
        })
    }
}

#[multiversion(targets = "simd")]
fn add(values: &mut [f32], other: &[f32]) {
    for (v, o) in values.iter_mut().zip(other) {
        *v += o;
    }
}

/// An NCHW f32 map of the same shape: a copy of the input (no zero-fill first), changed in place
/// plane by plane; `f` gets each plane's channel and the plane.
fn map_planes(
    storage: &CpuStorage,
    layout: &Layout,
    op: &str,
    f: impl Fn(usize, &mut [f32]),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (_, c, h, w) = layout.shape().dims4()?;
    let mut out = contiguous_f32(storage, layout, op)?.to_vec();
    for (i, plane) in out.chunks_exact_mut(h * w).enumerate() {
        f(i % c, plane);
    }
    Ok((CpuStorage::F32(out), layout.shape().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn add_then_prelu_matches_the_two_operators_apart() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let a = Tensor::randn(0f32, 1f32, (1, 3, 5, 4), &dev)?;
        let b = Tensor::randn(0f32, 1f32, (1, 3, 5, 4), &dev)?;
        let alpha = vec![0.1f32, 0.2, 0.3];
        let apart = (&a + &b)?.apply_op1_no_bwd(&PRelu {
            alpha: alpha.clone(),
        })?;
        let fused = a.copy()?;
        fused.inplace_op2(
            &b,
            &AddAct {
                activation: Activation::PRelu(alpha),
            },
        )?;
        let diff = (fused - apart)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        Ok(())
    }
}
