//! A convolution's matrix product with its bias and activation in one operator: each output row
//! starts as its channel's bias and the product is accumulated onto it. candle's product
//! zero-fills its output first (a memset that was 11% of the pipeline bench's time under an
//! allocator that reuses freed pages), and the bias then took a pass of its own.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use gemm::Parallelism;
use multiversion::multiversion;

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
    /// The weights as `(rows, depth)` column-major.
    fn by_depth(&self) -> Strided<'_> {
        Strided {
            values: &self.weights,
            cs: self.rows,
            rs: 1,
        }
    }

    /// `dst += weights · image` for a narrow map, computed as `(rows, cols)` column-major in
    /// `scratch` (the output channels along the lanes, the weights read as stored) and then
    /// added to `dst` row-major.
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
        scratch.resize(rows * cols, 0.0);
        // `scratch` column-major, `weights` column-major, `image` row-major.
        multiply_add(
            (rows, cols, depth),
            scratch,
            (rows, 1),
            self.by_depth(),
            Strided::row_major(image, cols),
            parallelism,
        );
        for (r, row) in dst.chunks_exact_mut(cols).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v += scratch[j * rows + r];
            }
        }
    }
}

/// Products of at most this depth, over whole blocks of [`BLOCK_COLS`] positions, are computed
/// by [`accumulate_blocks`], in registers; the others by gemm, whose blocking along the depth
/// pays off on deeper ones (all of these models' maps of 8x8 and wider are whole blocks).
const REGISTER_DEPTH: usize = 128;
/// Output columns (positions) of one block of [`accumulate_blocks`]: two vectors of 8 lanes.
const BLOCK_COLS: usize = 16;

/// `dst += weights · x`: `dst` `(rows, cols)` row-major, `weights` `(rows, depth)` column-major
/// (each depth's weights for all rows together), `x` `(depth, cols)` row-major, `cols` a
/// multiple of [`BLOCK_COLS`]. Each block of up to 6 rows by [`BLOCK_COLS`] columns is
/// accumulated in registers (12 of the 16 vector registers) over the whole depth. The columns
/// of `x` a block reads are copied together first: read in place, a map's rows lie a multiple
/// of 4 KiB apart and fall into one set of the L1 cache, which holds only a few of them. gemm
/// packed all of `x` again for every call, which at these depths (16-128) held the iris
/// model's 32x32 layers to half the core's arithmetic.
#[multiversion(targets = "simd")]
fn accumulate_blocks(
    dst: &mut [f32],
    weights: &[f32],
    x: &[f32],
    rows: usize,
    depth: usize,
    cols: usize,
) {
    let mut strip = vec![[0f32; BLOCK_COLS]; depth];
    for c0 in (0..cols).step_by(BLOCK_COLS) {
        for (d, s) in strip.iter_mut().enumerate() {
            s.copy_from_slice(&x[d * cols + c0..][..BLOCK_COLS]);
        }
        let mut r0 = 0;
        while r0 < rows {
            let (weights, dst) = (&weights[r0..], &mut dst[r0 * cols + c0..]);
            r0 += match rows - r0 {
                6.. => rows_block::<6>(dst, &strip, weights, rows, cols),
                4..=5 => rows_block::<4>(dst, &strip, weights, rows, cols),
                2..=3 => rows_block::<2>(dst, &strip, weights, rows, cols),
                _ => rows_block::<1>(dst, &strip, weights, rows, cols),
            };
        }
    }
}

/// `R` rows of one block of columns (`dst` from the block's first value), accumulated over the
/// whole depth; returns `R`.
#[inline(always)]
fn rows_block<const R: usize>(
    dst: &mut [f32],
    strip: &[[f32; BLOCK_COLS]],
    weights: &[f32],
    rows: usize,
    cols: usize,
) -> usize {
    let mut acc = [[0f32; BLOCK_COLS]; R];
    for (xs, ws) in strip.iter().zip(weights.chunks(rows)) {
        let ws: &[f32; R] = ws[..R].try_into().expect("a block's rows");
        for (acc_row, w) in acc.iter_mut().zip(ws) {
            for (a, v) in acc_row.iter_mut().zip(xs) {
                *a = w.mul_add(*v, *a);
            }
        }
    }
    for (i, acc_row) in acc.iter().enumerate() {
        for (o, a) in dst[i * cols..][..BLOCK_COLS].iter_mut().zip(acc_row) {
            *o += a;
        }
    }
    R
}

/// A matrix [`multiply_add`] reads: its values and the distance between neighbours along a row
/// (`cs`) and down a column (`rs`).
struct Strided<'a> {
    values: &'a [f32],
    cs: usize,
    rs: usize,
}

impl<'a> Strided<'a> {
    fn row_major(values: &'a [f32], cols: usize) -> Self {
        Self {
            values,
            cs: 1,
            rs: cols,
        }
    }
}

/// Whether a `rows x cols` matrix with strides `(cs, rs)` lies inside `len` values.
fn fits(len: usize, (rows, cols): (usize, usize), (cs, rs): (usize, usize)) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `dst += lhs · rhs` through gemm, `(m, n, k)` the shape (`dst` is `m x n` with strides
/// `(cs, rs)`). Each operand's extent is checked against its strides first, which is what
/// gemm's raw pointers need; the borrows keep `dst` apart from the inputs.
fn multiply_add(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_cs, dst_rs): (usize, usize),
    lhs: Strided<'_>,
    rhs: Strided<'_>,
    parallelism: Parallelism,
) {
    assert!(
        fits(dst.len(), (m, n), (dst_cs, dst_rs))
            && fits(lhs.values.len(), (m, k), (lhs.cs, lhs.rs))
            && fits(rhs.values.len(), (k, n), (rhs.cs, rhs.rs)),
        "a product's operands are smaller than their shapes"
    );
    #[allow(unsafe_code)]
    // SAFETY: every index gemm forms, `row * rs + col * cs` within each operand's shape, is
    // inside that operand (checked above), and `dst` is a unique borrow, so it overlaps neither
    // input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            true,
            lhs.values.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.values.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

impl Product {
    /// `(n, depth, cols)` in, `(n, rows, cols)` out: `weights · input + bias`, plus `residual`
    /// (of the output's shape) when given, then the activation.
    fn forward(&self, input: &[f32], residual: Option<&[f32]>, n: usize, cols: usize) -> Vec<f32> {
        let (rows, depth, plane) = (self.rows, self.depth, self.rows * cols);
        let mut out = Vec::with_capacity(n * plane);
        match residual {
            None => {
                for _ in 0..n {
                    for &b in &self.bias {
                        out.extend(std::iter::repeat_n(b, cols));
                    }
                }
            }
            Some(residual) => {
                for (row, &b) in residual.chunks_exact(cols).zip(self.bias.iter().cycle()) {
                    out.extend(row.iter().map(|v| v + b));
                }
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
            } else if depth <= REGISTER_DEPTH && cols.is_multiple_of(BLOCK_COLS) {
                accumulate_blocks(dst, &self.weights, image, rows, depth, cols);
            } else {
                // `dst` row-major (what it starts from stays), `weights` column-major, `image`
                // row-major.
                multiply_add(
                    (rows, cols, depth),
                    dst,
                    (1, cols),
                    self.by_depth(),
                    Strided::row_major(image, cols),
                    parallelism,
                );
            }
            if self.activation != Activation::None {
                for (channel, values) in dst.chunks_exact_mut(cols).enumerate() {
                    self.activation.apply_in_place(channel, values);
                }
            }
        }
        out
    }

    fn shape_of(&self, layout: &Layout) -> candle_core::Result<(usize, usize)> {
        let (n, depth, cols) = layout.shape().dims3()?;
        if depth != self.depth {
            candle_core::bail!("a product of depth {} fed {depth} rows", self.depth);
        }
        Ok((n, cols))
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
        let (n, cols) = self.shape_of(layout)?;
        let input = contiguous_f32(storage, layout, CustomOp1::name(self))?;
        let out = self.forward(input, None, n, cols);
        Ok((CpuStorage::F32(out), Shape::from((n, self.rows, cols))))
    }
}

/// The product with a residual map added before the activation: a residual block's last
/// convolution and its addition in one pass over the output (the addition alone was a tenth of
/// the mesh and iris models' time).
impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "conv-product-residual"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, cols) = self.shape_of(l1)?;
        let shape = Shape::from((n, self.rows, cols));
        if l2.shape() != &shape {
            candle_core::bail!("a residual of {:?} for a product of {shape:?}", l2.shape());
        }
        let input = contiguous_f32(s1, l1, CustomOp1::name(self))?;
        let residual = contiguous_f32(s2, l2, CustomOp2::name(self))?;
        let out = self.forward(input, Some(residual), n, cols);
        Ok((CpuStorage::F32(out), shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The fused operator against candle's own product, bias, residual and activation apart,
    /// on a batch of two, for each activation, with and without a residual, on a map of one
    /// position, a narrow one and two wide ones.
    #[test]
    fn matches_candles_product_then_bias_then_residual_then_activation() -> candle_core::Result<()>
    {
        // 48 is whole blocks of columns, computed in registers; 40 is not, and goes to gemm.
        for cols in [1, 13, NARROW + 24, 3 * BLOCK_COLS] {
            fused_product_matches(cols)?;
        }
        Ok(())
    }

    fn fused_product_matches(cols: usize) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // 15 rows: blocks of 6, 6, 2 and 1 in registers.
        let (rows, depth) = (15, 7);
        let weights = Tensor::randn(0f32, 1f32, (rows, depth), &dev)?;
        let input = Tensor::randn(0f32, 1f32, (2, depth, cols), &dev)?;
        let residual = Tensor::randn(0f32, 1f32, (2, rows, cols), &dev)?;
        let bias: Vec<f32> = (0..rows).map(|r| r as f32 * 0.3 - 2.0).collect();
        let alpha: Vec<f32> = (0..rows).map(|r| 0.05 + r as f32 * 0.05).collect();
        let plain = weights
            .broadcast_matmul(&input)?
            .broadcast_add(&Tensor::from_vec(bias.clone(), (rows, 1), &dev)?)?;
        for activation in [
            Activation::None,
            Activation::Relu,
            Activation::Relu6,
            Activation::PRelu(alpha.clone()),
        ] {
            let activate = |t: Tensor| match &activation {
                Activation::PRelu(a) => {
                    let slopes = Tensor::from_vec(a.clone(), (rows, 1), &dev)?;
                    let negative = t.lt(0f32)?;
                    negative.where_cond(&t.broadcast_mul(&slopes)?, &t)
                }
                other => other.apply(t),
            };
            let product = Product::new(
                weights.flatten_all()?.to_vec1()?,
                rows,
                bias.clone(),
                activation.clone(),
            )?;
            let fused = input.apply_op1_no_bwd(&product)?;
            let with_residual = input.apply_op2_no_bwd(&residual, &product)?;
            for (got, expected) in [
                (fused, activate(plain.clone())?),
                (with_residual, activate((&plain + &residual)?)?),
            ] {
                assert_eq!(got.dims(), &[2, rows, cols]);
                let diff = (got - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-4, "{cols} columns: {diff}");
            }
        }
        let wrong = Tensor::zeros((2, rows + 1, cols), candle_core::DType::F32, &dev)?;
        assert!(
            input
                .apply_op2_no_bwd(
                    &wrong,
                    &Product::new(
                        weights.flatten_all()?.to_vec1()?,
                        rows,
                        bias,
                        Activation::None
                    )?
                )
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn refuses_weights_that_do_not_fill_their_rows() {
        assert!(Product::new(vec![0.0; 7], 2, vec![0.0; 2], Activation::None).is_err());
        assert!(Product::new(vec![0.0; 8], 2, vec![0.0; 3], Activation::None).is_err());
    }
}
