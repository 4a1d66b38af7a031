//! A convolution's matrix product with its bias and activation in one operator: each output row
//! starts as its channel's bias and the product is accumulated onto it. candle's product
//! zero-fills its output first (a memset that was 11% of the pipeline bench's time under an
//! allocator that reuses freed pages), and the bias then took a pass of its own.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use gemm::Parallelism;

use super::{Activation, contiguous_f32};

/// `(n, depth, cols)` in, `(n, rows, cols)` out: `weights · input + bias`, then the activation,
/// per image.
#[derive(Debug, Clone)]
pub struct Product {
    /// `(rows, depth)` column-major, one row per output channel in im2col order: each depth's
    /// weights for all output channels together, which a narrow map reads along the vector
    /// lanes as stored (see [`NARROW`]); gemm takes a wide map's from the same layout.
    weights: Vec<f32>,
    rows: usize,
    depth: usize,
    bias: Vec<f32>,
    pub activation: Activation,
}

impl Product {
    /// `weights` row-major `(rows, depth)`; one bias per row.
    pub fn new(
        weights: Vec<f32>,
        rows: usize,
        bias: Vec<f32>,
        activation: Activation,
    ) -> candle_core::Result<Self> {
        if rows == 0 || !weights.len().is_multiple_of(rows) || bias.len() != rows {
            candle_core::bail!(
                "a product of {} weights in {rows} rows with {} biases",
                weights.len(),
                bias.len()
            );
        }
        let depth = weights.len() / rows;
        let mut by_depth = vec![0f32; weights.len()];
        for (r, row) in weights.chunks_exact(depth).enumerate() {
            for (d, w) in row.iter().enumerate() {
                by_depth[d * rows + r] = *w;
            }
        }
        Ok(Self {
            depth,
            weights: by_depth,
            rows,
            bias,
            activation,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Maps of at most this many positions are multiplied with the output channels along the
/// vector lanes. gemm vectorises along the output's columns: for a row-major `(rows, cols)`
/// output that is the map's positions, and a 2x2 or 4x4 map leaves most lanes idle while the
/// weights are packed again for every image (the iris model's last layers ran at 7-25 GFLOP/s).
const NARROW: usize = 16;

impl Product {
    /// `dst = weights · image + dst` for a narrow map, computed as `(rows, cols)` column-major in
    /// `scratch` (the output channels along the lanes, the weights read as stored) and then
    /// turned to row-major.
    fn narrow(
        &self,
        image: &[f32],
        dst: &mut [f32],
        cols: usize,
        scratch: &mut Vec<f32>,
        parallelism: Parallelism,
    ) {
        let (rows, depth) = (self.rows, self.depth);
        scratch.clear();
        for _ in 0..cols {
            scratch.extend_from_slice(&self.bias);
        }
        #[allow(unsafe_code)]
        // SAFETY: `scratch` is `rows x cols` column-major (`cols` copies of the `rows` biases),
        // `weights` is `rows x depth` column-major (`depth * rows` values, built in `new`),
        // `image` is `depth x cols` row-major (`depth * cols` values, checked by the caller's
        // `chunks_exact`), and the three do not overlap.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                depth,
                scratch.as_mut_ptr(),
                rows as isize,
                1,
                true,
                self.weights.as_ptr(),
                rows as isize,
                1,
                image.as_ptr(),
                1,
                cols as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        for (r, row) in dst.chunks_exact_mut(cols).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = scratch[j * rows + r];
            }
        }
    }
}

impl CustomOp1 for Product {
    fn name(&self) -> &'static str {
        "conv-product"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, depth, cols) = layout.shape().dims3()?;
        if depth != self.depth {
            candle_core::bail!("a product of depth {} fed {depth} rows", self.depth);
        }
        let input = contiguous_f32(storage, layout, self.name())?;
        let (rows, plane) = (self.rows, self.rows * cols);
        let mut out = Vec::with_capacity(n * plane);
        for _ in 0..n {
            for &b in &self.bias {
                out.extend(std::iter::repeat_n(b, cols));
            }
        }
        let mut scratch = Vec::new();
        let parallelism = match candle_core::utils::get_num_threads() {
            threads if threads > 1 => Parallelism::Rayon(threads),
            _ => Parallelism::None,
        };
        for (image, dst) in input
            .chunks_exact(depth * cols)
            .zip(out.chunks_exact_mut(plane))
        {
            if (2..=NARROW).contains(&cols) {
                self.narrow(image, dst, cols, &mut scratch, parallelism);
            } else {
                #[allow(unsafe_code)]
                // SAFETY: gemm reads and writes through raw pointers with the given strides: `dst`
                // is `rows x cols` row-major (`rows * cols` values, checked by `chunks_exact_mut`),
                // `weights` is `rows x depth` column-major (built in `new`), `image` is `depth x cols`
                // (`depth * cols` values, checked by `chunks_exact`), and the three do not overlap.
                unsafe {
                    gemm::gemm(
                        rows,
                        cols,
                        depth,
                        dst.as_mut_ptr(),
                        1,
                        cols as isize,
                        // dst = 1 * dst + 1 * weights · image: the bias already in dst stays.
                        true,
                        self.weights.as_ptr(),
                        rows as isize,
                        1,
                        image.as_ptr(),
                        1,
                        cols as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        parallelism,
                    );
                }
            }
            if self.activation != Activation::None {
                for (channel, values) in dst.chunks_exact_mut(cols).enumerate() {
                    self.activation.apply_in_place(channel, values);
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, rows, cols))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The fused operator against candle's own product, bias and activation apart, on a batch
    /// of two, for each activation, on a map of one position, a narrow one and a wide one.
    #[test]
    fn matches_candles_product_then_bias_then_activation() -> candle_core::Result<()> {
        for cols in [1, 13, NARROW + 24] {
            fused_product_matches(cols)?;
        }
        Ok(())
    }

    fn fused_product_matches(cols: usize) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (rows, depth) = (5, 7);
        let weights = Tensor::randn(0f32, 1f32, (rows, depth), &dev)?;
        let input = Tensor::randn(0f32, 1f32, (2, depth, cols), &dev)?;
        let bias = vec![0.5f32, -1.0, 0.25, 2.0, -0.1];
        let alpha = vec![0.1f32, 0.2, 0.3, 0.4, 0.5];
        let plain = weights
            .broadcast_matmul(&input)?
            .broadcast_add(&Tensor::from_vec(bias.clone(), (rows, 1), &dev)?)?;
        for activation in [
            Activation::None,
            Activation::Relu,
            Activation::Relu6,
            Activation::PRelu(alpha.clone()),
        ] {
            let expected = match &activation {
                Activation::PRelu(a) => {
                    let slopes = Tensor::from_vec(a.clone(), (rows, 1), &dev)?;
                    let negative = plain.lt(0f32)?;
                    negative.where_cond(&plain.broadcast_mul(&slopes)?, &plain)?
                }
                other => other.apply(plain.clone())?,
            };
            let product = Product::new(
                weights.flatten_all()?.to_vec1()?,
                rows,
                bias.clone(),
                activation,
            )?;
            let fused = input.apply_op1_no_bwd(&product)?;
            assert_eq!(fused.dims(), &[2, rows, cols]);
            let diff = (fused - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "{cols} columns: {diff}");
        }
        Ok(())
    }

    #[test]
    fn refuses_weights_that_do_not_fill_their_rows() {
        assert!(Product::new(vec![0.0; 7], 2, vec![0.0; 2], Activation::None).is_err());
        assert!(Product::new(vec![0.0; 8], 2, vec![0.0; 3], Activation::None).is_err());
    }
}
