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
}

/// Where one output column (or row) reads: two source pixels and their weights. A source pixel
/// outside the frame gets weight 0 (black) and a valid index, so the pixel loop has no branch.
#[derive(Clone, Copy)]
struct Tap {
    first: usize,
    first_weight: f32,
    second: usize,
    second_weight: f32,
}

impl Tap {
    /// The taps of `size` outputs reading from `origin` in steps of `scale`, over a source axis
    /// of `len` pixels; `flip` mirrors the outputs.
    fn along(
        origin: f32,
        scale: f32,
        size: usize,
        len: i64,
        flip: bool,
        sampling: Sampling,
    ) -> Vec<Tap> {
        let inside = |i: i64| (0..len).contains(&i);
        let index = |i: i64| i.clamp(0, len - 1) as usize;
        (0..size)
            .map(|o| {
                let t = if flip { size - 1 - o } else { o };
                match sampling {
                    // Nearest repeats the edge pixel rather than going black.
                    Sampling::Nearest => {
                        let i = index(origin as i64 + ((t as f32 + 0.5) * scale).floor() as i64);
                        Tap {
                            first: i,
                            first_weight: 1.0,
                            second: i,
                            second_weight: 0.0,
                        }
                    }
                    Sampling::Bilinear => {
                        let f = origin + (t as f32 + 0.5) * scale - 0.5;
                        let i = f.floor();
                        let (a, i) = (f - i, i as i64);
                        let weight = |at: i64, w: f32| if inside(at) { w } else { 0.0 };
                        Tap {
                            first: index(i),
                            first_weight: weight(i, 1.0 - a),
                            second: index(i + 1),
                            second_weight: weight(i + 1, a),
                        }
                    }
                }
            })
            .collect()
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
    let (w, h) = (image.width() as usize, image.height() as usize);
    let channels = if gray { 1 } else { 3 };
    let plane = size * size;
    let mut out = vec![0f32; channels * plane];
    if w == 0 || h == 0 {
        return Tensor::from_vec(out, (1, channels, size, size), &Device::Cpu);
    }
    let raw = image.as_raw();
    // Worked out once per crop rather than per pixel (perf: the bounds checks and branches of a
    // per-pixel lookup were most of this loop).
    let along = |origin: f32, extent: f32, len: usize, flip: bool| {
        Tap::along(
            origin,
            extent / size as f32,
            size,
            len as i64,
            flip,
            sampling,
        )
    };
    let columns = along(region.x, region.width, w, mirror);
    let rows = along(region.y, region.height, h, false);
    let scale = (range.high - range.low) / 255.0;
    let row_of = |y: usize| &raw[y * w * 3..][..w * 3];
    let mut rgb = [0f32; 3];
    for (oy, row) in rows.iter().enumerate() {
        let (top, bottom) = (row_of(row.first), row_of(row.second));
        for (ox, column) in columns.iter().enumerate() {
            let (a, b) = (column.first * 3, column.second * 3);
            for (c, value) in rgb.iter_mut().enumerate() {
                let upper = top[a + c] as f32 * column.first_weight
                    + top[b + c] as f32 * column.second_weight;
                let lower = bottom[a + c] as f32 * column.first_weight
                    + bottom[b + c] as f32 * column.second_weight;
                *value = upper * row.first_weight + lower * row.second_weight;
            }
            let at = oy * size + ox;
            if gray {
                out[at] = range.low + (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) * scale;
            } else {
                for (c, value) in rgb.iter().enumerate() {
                    out[c * plane + at] = range.low + value * scale;
                }
            }
        }
    }
    Tensor::from_vec(out, (1, channels, size, size), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crop worked out pixel by pixel, as written first: each tap looked up with its bounds.
    fn reference(
        image: &RgbImage,
        region: Region,
        size: usize,
        mirror: bool,
        sampling: Sampling,
    ) -> Vec<f32> {
        let (w, h) = (image.width() as i64, image.height() as i64);
        let pixel = |x: i64, y: i64| -> [f32; 3] {
            if (0..w).contains(&x) && (0..h).contains(&y) {
                image.get_pixel(x as u32, y as u32).0.map(f32::from)
            } else {
                [0.0; 3]
            }
        };
        let (sx, sy) = (region.width / size as f32, region.height / size as f32);
        let mut out = vec![0f32; 3 * size * size];
        for oy in 0..size {
            for ox in 0..size {
                let t = if mirror { size - 1 - ox } else { ox };
                let rgb = match sampling {
                    Sampling::Nearest => {
                        let x = region.x as i64 + ((t as f32 + 0.5) * sx).floor() as i64;
                        let y = region.y as i64 + ((oy as f32 + 0.5) * sy).floor() as i64;
                        pixel(x.clamp(0, w - 1), y.clamp(0, h - 1))
                    }
                    Sampling::Bilinear => {
                        let fx = region.x + (t as f32 + 0.5) * sx - 0.5;
                        let fy = region.y + (oy as f32 + 0.5) * sy - 0.5;
                        let (x, y) = (fx.floor() as i64, fy.floor() as i64);
                        let (ax, ay) = (fx - fx.floor(), fy - fy.floor());
                        let mut v = [0f32; 3];
                        for (c, v) in v.iter_mut().enumerate() {
                            let top = pixel(x, y)[c] * (1.0 - ax) + pixel(x + 1, y)[c] * ax;
                            let bottom =
                                pixel(x, y + 1)[c] * (1.0 - ax) + pixel(x + 1, y + 1)[c] * ax;
                            *v = top * (1.0 - ay) + bottom * ay;
                        }
                        v
                    }
                };
                for c in 0..3 {
                    out[c * size * size + oy * size + ox] = rgb[c] * (1.0 / 255.0);
                }
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn crops_inside_across_the_edges_and_mirrored_match_the_pixel_by_pixel_reference(
            x in -20f32..40.0,
            y in -12f32..28.0,
            width in 1f32..40.0,
            height in 1f32..30.0,
            size in 1usize..12,
            mirror: bool,
        ) {
            // Values that differ from neighbour to neighbour, so a tap one pixel off shows.
            let image = RgbImage::from_fn(37, 23, |x, y| {
                let v = x * 7 + y * 13;
                image::Rgb([(v * 3 % 256) as u8, (v * 5 % 256) as u8, (v * 11 % 256) as u8])
            });
            let region = Region { x, y, width, height };
            for sampling in [Sampling::Nearest, Sampling::Bilinear] {
                let got = sample(&image, region, size, mirror, false, sampling, Range::UNIT)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let want = reference(&image, region, size, mirror, sampling);
                for (g, w) in got.iter().zip(&want) {
                    proptest::prop_assert!((g - w).abs() < 1e-5, "{:?}: {} vs {}", sampling, g, w);
                }
                if sampling == Sampling::Nearest {
                    proptest::prop_assert_eq!(&got, &want, "nearest is exact");
                }
            }
        }
    }

    #[test]
    fn luma_and_the_signed_range_follow_the_colour_crop() {
        let image = RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 200]));
        let region = Region::square(4.0, 4.0, 6.0);
        let colour = sample(
            &image,
            region,
            5,
            false,
            false,
            Sampling::Bilinear,
            Range::UNIT,
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        let luma = sample(
            &image,
            region,
            5,
            false,
            true,
            Sampling::Bilinear,
            Range::SIGNED,
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        for (i, l) in luma.iter().enumerate() {
            let y = 0.299 * colour[i] + 0.587 * colour[25 + i] + 0.114 * colour[50 + i];
            assert!((l - (2.0 * y - 1.0)).abs() < 1e-5, "{l} vs {y}");
        }
    }
}
