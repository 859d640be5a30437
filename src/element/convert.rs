//! Video buffers into the windows' pictures, deferred to the frames a window picks.
//!
//! From a file (in step, or with results only, as `analyze` runs it) a frame is kept
//! as it came — a reference to the input buffer — and becomes an RGB picture at the
//! sampling size only when a window chooses it, on the inference worker; frames no
//! window picks are never converted. Live frames that leave at once are made pictures
//! as they arrive: holding a camera's buffers for seconds would take twice the memory
//! of the pictures (at 720p) and could starve its buffer pool. Packed RGB formats are
//! resized directly; the other raw formats (YUV at any depth, what decoders and
//! cameras produce) are first converted to RGB at full size by GStreamer's own video
//! converter with `videoconvert`'s default settings, so a picture is byte for byte the
//! one that `videoconvert ! video/x-raw,format=RGB` in front of the element would give.

use std::sync::{Arc, Mutex};

use super::CAT;
use super::inputs::pixel_layout;
use crate::media::{FaceRoi, LazyFrame, Orientation, PixelLayout, RgbImage, resize_linear};

/// The raw formats taken on the `video` pad besides the packed RGB ones and made
/// RGB by the converter: every format GStreamer lists as raw (8-, 10-, 12- and
/// 16-bit YUV, planar RGB, grey) except the tiled ones, best first. Taking the
/// deep formats too matters for exactness: a `videoconvert` in front then passes a
/// decoder's 10-bit output through unchanged, instead of rounding it to an 8-bit
/// YUV format before the converter rounds again.
pub fn converted_formats() -> impl Iterator<Item = gst_video::VideoFormat> {
    gst_video::VideoFormat::iter_raw().filter(|&format| {
        pixel_layout(format).is_none()
            && !gst_video::VideoFormatInfo::from_format(format)
                .flags()
                .contains(gst_video::VideoFormatFlags::TILED)
    })
}

/// How the frames of one negotiated video format become pictures.
pub(super) struct FrameSource {
    info: gst_video::VideoInfo,
    read: Read,
}

enum Read {
    /// Packed RGB-like pixels, resized directly.
    Packed(PixelLayout),
    /// Converted to packed RGB at full size first (one converter per format; a
    /// converter is used by one thread at a time).
    Convert(Mutex<gst_video::VideoConverter>, gst_video::VideoInfo),
}

/// Where a frame goes: its size in the windows (before turning upright), the turn,
/// and an upstream detector's face boxes in those pixels.
pub(super) struct Placement {
    pub width: usize,
    pub height: usize,
    pub orientation: Orientation,
    pub faces: Option<Vec<FaceRoi>>,
}

impl FrameSource {
    /// The reader of frames described by `info`; `None` for a format not taken.
    pub fn new(info: &gst_video::VideoInfo) -> Option<Self> {
        let read = match pixel_layout(info.format()) {
            Some(layout) => Read::Packed(layout),
            None if converted_formats().any(|f| f == info.format()) => {
                let rgb = gst_video::VideoInfo::builder(
                    gst_video::VideoFormat::Rgb,
                    info.width(),
                    info.height(),
                )
                .fps(info.fps())
                .par(info.par())
                .interlace_mode(info.interlace_mode())
                .build()
                .ok()?;
                let converter = gst_video::VideoConverter::new(info, &rgb, None).ok()?;
                Read::Convert(Mutex::new(converter), rgb)
            }
            None => return None,
        };
        Some(Self {
            info: info.clone(),
            read,
        })
    }

    /// The frame in `buffer` for the windows, converted when a window first looks at
    /// it.
    pub fn defer(self: &Arc<Self>, buffer: gst::Buffer, place: Placement) -> LazyFrame {
        let (w, h) = place.orientation.upright_size(place.width, place.height);
        let source = self.clone();
        LazyFrame::deferred(w, h, move || source.picture(&buffer, place))
    }

    /// The frame in `buffer` at the placement's size, turned upright (black, with a
    /// warning, if it cannot be read).
    fn picture(&self, buffer: &gst::Buffer, place: Placement) -> RgbImage {
        let (w, h) = (place.width, place.height);
        let mut image = self.resized(buffer, w, h).unwrap_or_else(|| {
            gst::warning!(CAT, "a sampled video frame cannot be read: black instead");
            RgbImage::black(w, h)
        });
        image.faces = place.faces;
        place.orientation.image(image)
    }

    fn resized(&self, buffer: &gst::Buffer, w: usize, h: usize) -> Option<RgbImage> {
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &self.info).ok()?;
        let (iw, ih) = (self.info.width() as usize, self.info.height() as usize);
        match &self.read {
            Read::Packed(layout) => {
                let plane = frame.plane_data(0).ok()?;
                let stride = self.info.stride()[0] as usize;
                Some(resize_linear(plane, iw, ih, stride, *layout, w, h))
            }
            Read::Convert(converter, rgb_info) => {
                let mut rgb = gst::Buffer::with_size(rgb_info.size()).ok()?;
                {
                    let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(
                        rgb.get_mut()?,
                        rgb_info,
                    )
                    .ok()?;
                    let converter = converter.lock().unwrap_or_else(|e| e.into_inner());
                    converter.frame_ref(&frame, &mut out);
                }
                let map = rgb.map_readable().ok()?;
                let stride = rgb_info.stride()[0] as usize;
                Some(resize_linear(&map, iw, ih, stride, PixelLayout::RGB, w, h))
            }
        }
    }
}
