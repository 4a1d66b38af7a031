//! Turning a region of a frame into a model's input tensor (NCHW f32).
//!
//! Regions may reach outside the frame (a face at the edge, an enlarged box): outside pixels are
//! black, as MediaPipe's own crops are.

use candle_core::{Device, Tensor};
use image::RgbImage;

/// A square or rectangular region in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Region {
    /// The square of side `side` centred on `(cx, cy)`.
    pub fn square(cx: f32, cy: f32, side: f32) -> Self {
        Self {
            x: cx - side / 2.0,
            y: cy - side / 2.0,
            width: side,
            height: side,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Pixel centres mapped down and floored: exact and cheap, used by the parity tests.
    Nearest,
    /// Bilinear: smoother crops for inference on real frames.
    Bilinear,
}

/// How pixel values map into the model's range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub low: f32,
    pub high: f32,
}

impl Range {
    pub const UNIT: Self = Self {
        low: 0.0,
        high: 1.0,
    };
    pub const SIGNED: Self = Self {
        low: -1.0,
        high: 1.0,
    };

    /// A multiplication per value, the scale worked out once per crop, where a division per
    /// value was the crop loop's hottest instruction (perf).
    fn map(self, v: f32) -> f32 {
        self.low + v * ((self.high - self.low) / 255.0)
    }
}

/// Samples `region` to `size`x`size`, optionally mirrored, as RGB (3 channels) or luma (1).
pub fn sample(
    image: &RgbImage,
    region: Region,
    size: usize,
    mirror: bool,
    gray: bool,
    sampling: Sampling,
    range: Range,
) -> candle_core::Result<Tensor> {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let channels = if gray { 1 } else { 3 };
    let mut out = vec![0f32; channels * size * size];
    let plane = size * size;
    let raw = image.as_raw();
    let sx = region.width / size as f32;
    let sy = region.height / size as f32;
    // Where each output column and row reads, worked out once per crop rather than per pixel:
    // the first source pixel and the weight of the next one (0 for nearest sampling).
    let taps = |origin: f32, scale: f32, flip: bool| -> Vec<(i64, f32)> {
        (0..size)
            .map(|o| {
                let t = if flip { size - 1 - o } else { o };
                match sampling {
                    Sampling::Nearest => (
                        origin as i64 + ((t as f32 + 0.5) * scale).floor() as i64,
                        0.0,
                    ),
                    Sampling::Bilinear => {
                        let f = origin + (t as f32 + 0.5) * scale - 0.5;
                        let i = f.floor();
                        (i as i64, f - i)
                    }
                }
            })
            .collect()
    };
    let columns = taps(region.x, sx, mirror);
    let rows = taps(region.y, sy, false);
    // A row of the frame, or none above or below it (black).
    let frame_row = |y: i64| {
        (0..h)
            .contains(&y)
            .then(|| &raw[(y * w * 3) as usize..][..(w * 3) as usize])
    };
    let at_x = |row: Option<&[u8]>, x: i64| -> [f32; 3] {
        match row {
            Some(r) if (0..w).contains(&x) => {
                let i = (x * 3) as usize;
                [r[i] as f32, r[i + 1] as f32, r[i + 2] as f32]
            }
            _ => [0.0; 3],
        }
    };
    for (oy, &(y0, ay)) in rows.iter().enumerate() {
        let (top_row, bottom_row) = match sampling {
            Sampling::Nearest => {
                let row = frame_row(y0.clamp(0, h - 1));
                (row, row)
            }
            Sampling::Bilinear => (frame_row(y0), frame_row(y0 + 1)),
        };
        for (ox, &(x0, ax)) in columns.iter().enumerate() {
            let rgb = match sampling {
                Sampling::Nearest => at_x(top_row, x0.clamp(0, w - 1)),
                Sampling::Bilinear => {
                    let (p00, p10, p01, p11) = (
                        at_x(top_row, x0),
                        at_x(top_row, x0 + 1),
                        at_x(bottom_row, x0),
                        at_x(bottom_row, x0 + 1),
                    );
                    let mut v = [0f32; 3];
                    for c in 0..3 {
                        let top = p00[c] + (p10[c] - p00[c]) * ax;
                        let bottom = p01[c] + (p11[c] - p01[c]) * ax;
                        v[c] = top + (bottom - top) * ay;
                    }
                    v
                }
            };
            let at = oy * size + ox;
            if gray {
                out[at] = range.map(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
            } else {
                for c in 0..3 {
                    out[c * plane + at] = range.map(rgb[c]);
                }
            }
        }
    }
    Tensor::from_vec(out, (1, channels, size, size), &Device::Cpu)
}
