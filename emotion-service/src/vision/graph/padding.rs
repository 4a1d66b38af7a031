//! TensorFlow's two padding modes, which the converted models keep.

use candle_core::{DType, Tensor};
use serde::Deserialize;

/// How a window slides over the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Padding {
    /// The output keeps `ceil(input / stride)`; the padding is split with the extra pixel after
    /// (TF is asymmetric where candle is symmetric, so it is applied explicitly).
    #[serde(rename = "SAME")]
    Same,
    /// No padding: the window stays inside.
    #[default]
    #[serde(rename = "VALID")]
    Valid,
}

impl Padding {
    /// `(output size, padding before, padding after)` along one dimension.
    pub fn along(self, input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
        match self {
            Self::Same => {
                let out = input.div_ceil(stride);
                let total = ((out - 1) * stride + kernel).saturating_sub(input);
                (out, total / 2, total - total / 2)
            }
            Self::Valid => ((input - kernel) / stride + 1, 0, 0),
        }
    }
}

/// Pads dimension `dim` with a constant (max pooling pads with the lowest value, not zero).
pub fn pad_value(
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
        assert_eq!(Padding::Same.along(128, 3, 2), (64, 0, 1));
        assert_eq!(Padding::Same.along(64, 5, 1), (64, 2, 2));
        assert_eq!(Padding::Same.along(7, 3, 2), (4, 1, 1));
    }

    #[test]
    fn valid_padding_keeps_the_window_inside() {
        assert_eq!(Padding::Valid.along(10, 3, 1), (8, 0, 0));
        assert_eq!(Padding::Valid.along(9, 3, 2), (4, 0, 0));
    }

    #[test]
    fn the_converter_spells_the_modes_as_tensorflow_does() {
        let modes: Vec<Padding> = serde_json::from_str(r#"["SAME", "VALID"]"#).unwrap();
        assert_eq!(modes, [Padding::Same, Padding::Valid]);
    }
}
