//! Frame intake: checks a frame is a JPEG or PNG of sane size before any pixel is decoded, then
//! decodes it with memory limits, so a hostile or broken upload costs little and crashes nothing.

use image::{ImageFormat, ImageReader, RgbImage};
use std::io::Cursor;

/// Largest encoded frame accepted (a 1920x1080 JPEG is ~0.3-1 MB; PNG up to ~6 MB).
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Largest side accepted; frames are webcam stills, not photographs for print.
pub const MAX_SIDE: u32 = 4096;
/// Smallest side that can hold a detectable face.
pub const MIN_SIDE: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the frame is empty")]
    Empty,
    #[error("the frame is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("unsupported image format: only JPEG and PNG frames are accepted")]
    UnsupportedFormat,
    #[error("the declared format {declared:?} does not match the image data ({actual})")]
    FormatMismatch {
        declared: String,
        actual: &'static str,
    },
    #[error(
        "the image is {width}x{height}; sides must be between {MIN_SIDE} and {MAX_SIDE} pixels"
    )]
    BadDimensions { width: u32, height: u32 },
    #[error("the image is truncated (no end marker)")]
    Truncated,
    #[error("the image data is corrupt")]
    Corrupt(#[source] image::ImageError),
    #[error("the frame image is not valid base64")]
    NotBase64(#[source] base64::DecodeError),
}

impl FrameError {
    /// Over the size limit (413 rather than 400): the client should send smaller frames, not
    /// different ones.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge { .. })
    }
}

/// The encoding of a frame, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    Jpeg,
    Png,
}

impl FrameFormat {
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
        }
    }
}

/// What a frame's header says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub format: FrameFormat,
    pub width: u32,
    pub height: u32,
}

/// Checks size, format (and that it matches `declared`, when given) and dimensions.
pub fn inspect(bytes: &[u8], declared: &str) -> Result<FrameInfo, FrameError> {
    inspect_with_limit(bytes, declared, MAX_FRAME_BYTES)
}

/// [`inspect`] with a smaller size limit (a service may accept less than the format allows).
pub fn inspect_with_limit(
    bytes: &[u8],
    declared: &str,
    max_bytes: usize,
) -> Result<FrameInfo, FrameError> {
    if bytes.is_empty() {
        return Err(FrameError::Empty);
    }
    if bytes.len() > max_bytes {
        return Err(FrameError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    let format = FrameFormat::sniff(bytes).ok_or(FrameError::UnsupportedFormat)?;
    let declared = declared.trim().to_ascii_lowercase();
    let declared_ok = match declared.as_str() {
        "" => true,
        "jpeg" | "jpg" | "image/jpeg" => format == FrameFormat::Jpeg,
        "png" | "image/png" => format == FrameFormat::Png,
        _ => return Err(FrameError::UnsupportedFormat),
    };
    if !declared_ok {
        return Err(FrameError::FormatMismatch {
            declared,
            actual: format.as_str(),
        });
    }
    if !is_complete(bytes, format) {
        return Err(FrameError::Truncated);
    }
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format.image_format())
        .into_dimensions()
        .map_err(FrameError::Corrupt)?;
    if !(MIN_SIDE..=MAX_SIDE).contains(&width) || !(MIN_SIDE..=MAX_SIDE).contains(&height) {
        return Err(FrameError::BadDimensions { width, height });
    }
    Ok(FrameInfo {
        format,
        width,
        height,
    })
}

/// Whether the encoding ends as a whole file does: JPEG decoders fill a truncated scan with grey
/// rather than fail, so the end marker is the reliable sign of a complete upload.
fn is_complete(bytes: &[u8], format: FrameFormat) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    match format {
        // EOI, allowing a little padding after it as some encoders write.
        FrameFormat::Jpeg => tail.windows(2).any(|w| w == [0xFF, 0xD9]),
        // The IEND chunk: length 0, type, CRC.
        FrameFormat::Png => {
            bytes.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82])
        }
    }
}

/// The bytes of a frame sent as base64 text (a `data:` URL prefix is accepted). Text that would
/// decode to more than `limit` bytes is refused before decoding.
pub fn decode_base64(text: &str, limit: usize) -> Result<Vec<u8>, FrameError> {
    use base64::Engine;
    let data = text.split_once(";base64,").map_or(text, |(_, d)| d).trim();
    let size = data.len() / 4 * 3;
    if size > limit + 3 {
        return Err(FrameError::TooLarge { size, limit });
    }
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(FrameError::NotBase64)
}

/// Decodes a frame that passed [`inspect`] to RGB, with an allocation limit as a second guard.
pub fn decode(bytes: &[u8], info: FrameInfo) -> Result<RgbImage, FrameError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), info.format.image_format());
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 4);
    reader.limits(limits);
    let image = reader.decode().map_err(FrameError::Corrupt)?;
    Ok(image.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(width, height, image::Rgb([120, 90, 60]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(width, height, image::Rgb([120, 90, 60]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_valid_jpeg_and_png_are_accepted_and_decoded() {
        for (bytes, format) in [
            (jpeg(64, 48), FrameFormat::Jpeg),
            (png(64, 48), FrameFormat::Png),
        ] {
            let info = inspect(&bytes, "").unwrap();
            assert_eq!((info.format, info.width, info.height), (format, 64, 48));
            assert_eq!(decode(&bytes, info).unwrap().dimensions(), (64, 48));
        }
    }

    #[test]
    fn empty_truncated_tiny_and_foreign_frames_are_refused_clearly() {
        assert!(matches!(inspect(&[], ""), Err(FrameError::Empty)));
        assert!(matches!(
            inspect(b"GIF89a....", ""),
            Err(FrameError::UnsupportedFormat)
        ));
        assert!(matches!(
            inspect(&png(1, 1), ""),
            Err(FrameError::BadDimensions {
                width: 1,
                height: 1
            })
        ));
        let full = jpeg(64, 64);
        let truncated = &full[..full.len() / 2];
        let result = inspect(truncated, "jpeg").and_then(|info| decode(truncated, info));
        assert!(matches!(result, Err(FrameError::Truncated)), "{result:?}");
        assert!(matches!(
            inspect(&jpeg(64, 64), "png"),
            Err(FrameError::FormatMismatch { .. })
        ));
    }

    /// A small, valid PNG whose header claims `side` x `side` pixels: the IHDR checksum is
    /// recomputed, so a decoder reads the size instead of rejecting the chunk.
    fn png_claiming(side: u32) -> Vec<u8> {
        let mut bytes = png(64, 64);
        bytes[16..20].copy_from_slice(&side.to_be_bytes());
        bytes[20..24].copy_from_slice(&side.to_be_bytes());
        // IHDR: length at 8, type at 12, 13 data bytes at 16, CRC of type + data at 29.
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn a_decompression_bomb_header_is_refused_by_its_size_before_decoding() {
        let within = png_claiming(MAX_SIDE);
        assert_eq!(
            inspect(&within, "png").map(|i| (i.width, i.height)).ok(),
            Some((MAX_SIDE, MAX_SIDE)),
            "the forged header is read as valid"
        );
        let bomb = png_claiming(20000);
        assert!(
            matches!(
                inspect(&bomb, "png"),
                Err(FrameError::BadDimensions {
                    width: 20000,
                    height: 20000
                })
            ),
            "refused for its size, from the header alone"
        );
    }

    #[test]
    fn base64_frames_decode_with_or_without_a_data_url_prefix() {
        use base64::Engine;
        let jpeg = jpeg(64, 48);
        let text = base64::engine::general_purpose::STANDARD.encode(&jpeg);
        assert_eq!(decode_base64(&text, MAX_FRAME_BYTES).unwrap(), jpeg);
        let url = format!("data:image/jpeg;base64,{text}");
        assert_eq!(decode_base64(&url, MAX_FRAME_BYTES).unwrap(), jpeg);
        assert!(matches!(
            decode_base64("%%%", MAX_FRAME_BYTES),
            Err(FrameError::NotBase64(_))
        ));
        assert!(matches!(
            decode_base64(&text, 100),
            Err(FrameError::TooLarge { limit: 100, .. })
        ));
    }

    #[test]
    fn an_oversized_upload_is_refused_by_size() {
        let mut big = jpeg(64, 64);
        big.resize(MAX_FRAME_BYTES + 1, 0);
        assert!(matches!(
            inspect(&big, ""),
            Err(FrameError::TooLarge {
                size,
                limit: MAX_FRAME_BYTES
            }) if size == MAX_FRAME_BYTES + 1
        ));
    }
}

/// Whatever bytes or text a client sends as a frame, inspection answers (never panics), and
/// anything accepted really is a JPEG or PNG of sane size.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn image_like() -> impl Strategy<Value = Vec<u8>> {
        let tail = prop::collection::vec(any::<u8>(), 0..512);
        prop_oneof![
            tail.clone(),
            tail.clone()
                .prop_map(|t| [&b"\xFF\xD8\xFF"[..], &t].concat()),
            tail.prop_map(|t| [&b"\x89PNG\r\n\x1a\n"[..], &t].concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_are_inspected_without_panic(
            bytes in image_like(),
            declared in prop::sample::select(&["", "jpeg", "png", "image/jpeg", "gif", "x"][..]),
        ) {
            if let Ok(info) = inspect(&bytes, declared) {
                prop_assert!(info.width > 0 && info.height > 0);
                prop_assert!(bytes.starts_with(b"\xFF\xD8") || bytes.starts_with(b"\x89PNG"));
            }
        }

        #[test]
        fn any_text_is_decoded_or_refused(
            text in ".{0,300}",
            prefix in prop::sample::select(&["", "data:image/png;base64,", "data:", "data:;base64,"][..]),
        ) {
            let _ = decode_base64(&format!("{prefix}{text}"), 1024);
        }
    }
}
