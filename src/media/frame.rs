//! Frames: packed 8-bit RGB images and a resize that reproduces OpenCV's
//! `cv2.resize(..., interpolation=INTER_LINEAR)` for 8-bit images.
//!
//! OpenCV computes bilinear weights with half-pixel centres, clamps at the borders,
//! quantises the weights to 11 bits and combines the two passes in fixed point; this
//! module does the same arithmetic so a model sees the same bytes it was trained on.

/// A packed 8-bit image with three channels in R, G, B order and no row padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes, row-major, R G B per pixel.
    pub data: Vec<u8>,
    /// Face boxes an upstream detector attached to this frame (GstVideoRegionOfInterestMeta
    /// of type "face"), in this image's pixels; `None` when the stream has no upstream
    /// face detector (then faces are detected here).
    pub faces: Option<Vec<FaceRoi>>,
}

/// A face box in image pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaceRoi {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl RgbImage {
    /// An all-black image (the padding frame of the reference pipeline).
    pub fn black(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0; width * height * 3],
            faces: None,
        }
    }

    /// The R, G, B values of the pixel at (`x`, `y`).
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// Where the colour channels sit in one pixel of a packed source image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelLayout {
    /// Bytes per pixel (1 for grey, 3 for RGB/BGR, 4 for the formats with alpha/padding).
    pub bytes_per_pixel: usize,
    /// Byte offsets of red, green and blue inside a pixel (all equal for grey).
    pub rgb_offsets: [usize; 3],
}

impl PixelLayout {
    /// Packed RGB, 3 bytes per pixel.
    pub const RGB: Self = Self {
        bytes_per_pixel: 3,
        rgb_offsets: [0, 1, 2],
    };
    /// Packed BGR, 3 bytes per pixel (OpenCV's native order).
    pub const BGR: Self = Self {
        bytes_per_pixel: 3,
        rgb_offsets: [2, 1, 0],
    };
    /// 8-bit grey, replicated into the three channels.
    pub const GRAY: Self = Self {
        bytes_per_pixel: 1,
        rgb_offsets: [0, 0, 0],
    };
}

/// OpenCV's `INTER_RESIZE_COEF_BITS`: interpolation weights are 11-bit fixed point.
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Source index and the two fixed-point weights for one output coordinate, computed
/// the way OpenCV's `resizeGeneric_` does for `INTER_LINEAR`.
#[derive(Clone, Copy, Debug)]
struct Tap {
    index: usize,
    next: usize,
    w0: i32,
    w1: i32,
}

/// `saturate_cast<short>(x)` with OpenCV's round-half-to-even (`cvRound`).
fn round_coef(x: f32) -> i32 {
    (x.round_ties_even() as i32).clamp(i16::MIN as i32, i16::MAX as i32)
}

fn horizontal_taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|dx| {
            let fx = ((dx as f64 + 0.5) * scale - 0.5) as f32;
            let mut sx = fx.floor() as i64;
            let mut f = fx - sx as f32;
            if sx < 0 {
                f = 0.0;
                sx = 0;
            }
            if sx >= src as i64 - 1 {
                f = 0.0;
                sx = src as i64 - 1;
            }
            let index = sx as usize;
            Tap {
                index,
                next: (index + 1).min(src - 1),
                w0: round_coef((1.0 - f) * COEF_SCALE),
                w1: round_coef(f * COEF_SCALE),
            }
        })
        .collect()
}

fn vertical_taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|dy| {
            let fy = ((dy as f64 + 0.5) * scale - 0.5) as f32;
            let sy = fy.floor() as i64;
            let f = fy - sy as f32;
            // Rows are clamped into the image; weights are not changed (OpenCV does the same).
            let clamp = |r: i64| r.clamp(0, src as i64 - 1) as usize;
            Tap {
                index: clamp(sy),
                next: clamp(sy + 1),
                w0: round_coef((1.0 - f) * COEF_SCALE),
                w1: round_coef(f * COEF_SCALE),
            }
        })
        .collect()
}

/// Resizes a packed 8-bit image to `dst_width` × `dst_height` RGB with OpenCV
/// `INTER_LINEAR` semantics (half-pixel centres, border clamping, 11-bit weights).
///
/// `src` holds `src_height` rows of `stride` bytes; `layout` says where R, G and B are
/// in each pixel. Only the source pixels the output needs are read, so the cost is
/// proportional to the output size.
///
/// # Panics
/// Panics if a dimension is zero or `src` is shorter than the geometry implies;
/// callers validate caps before calling.
pub fn resize_linear(
    src: &[u8],
    src_width: usize,
    src_height: usize,
    stride: usize,
    layout: PixelLayout,
    dst_width: usize,
    dst_height: usize,
) -> RgbImage {
    assert!(src_width > 0 && src_height > 0 && dst_width > 0 && dst_height > 0);
    assert!(src.len() >= stride * (src_height - 1) + src_width * layout.bytes_per_pixel);
    if src_width.is_multiple_of(dst_width) && src_height.is_multiple_of(dst_height) {
        return shrink_by_whole_factor(
            src,
            (src_width / dst_width, src_height / dst_height),
            stride,
            layout,
            dst_width,
            dst_height,
        );
    }
    resize_general(
        src,
        (src_width, src_height, stride),
        layout,
        dst_width,
        dst_height,
    )
}

/// [`resize_linear`] for any sizes: OpenCV's two passes with fixed-point weights.
fn resize_general(
    src: &[u8],
    (src_width, src_height, stride): (usize, usize, usize),
    layout: PixelLayout,
    dst_width: usize,
    dst_height: usize,
) -> RgbImage {
    let xt = horizontal_taps(src_width, dst_width);
    let yt = vertical_taps(src_height, dst_height);
    let bpp = layout.bytes_per_pixel;

    // Horizontal pass of one source row into `out` (3 ints per output pixel, scaled by 2^11).
    let [c0, c1, c2] = layout.rgb_offsets;
    let hresize = |row: usize, out: &mut Vec<i32>| {
        out.resize(dst_width * 3, 0);
        let line = &src[row * stride..];
        for (t, o) in xt.iter().zip(out.chunks_exact_mut(3)) {
            let (a, b) = (&line[t.index * bpp..], &line[t.next * bpp..]);
            let (w0, w1) = (t.w0, t.w1);
            o[0] = a[c0] as i32 * w0 + b[c0] as i32 * w1;
            o[1] = a[c1] as i32 * w0 + b[c1] as i32 * w1;
            o[2] = a[c2] as i32 * w0 + b[c2] as i32 * w1;
        }
    };

    let mut out = RgbImage::black(dst_width, dst_height);
    // The horizontal pass of the (at most two) source rows the current output row needs.
    let mut rows: [(usize, Vec<i32>); 2] = [
        (usize::MAX, Vec::with_capacity(dst_width * 3)),
        (usize::MAX, Vec::with_capacity(dst_width * 3)),
    ];
    for (dy, t) in yt.iter().enumerate() {
        let mut slot_of = |want: usize, keep: Option<usize>| -> usize {
            if let Some(i) = rows.iter().position(|(r, _)| *r == want) {
                return i;
            }
            let i = match keep {
                Some(k) => 1 - k,
                // Evict an empty slot, else the one holding the upper (older) row.
                None if rows[0].0 == usize::MAX => 0,
                None if rows[1].0 == usize::MAX => 1,
                None => usize::from(rows[1].0 < rows[0].0),
            };
            hresize(want, &mut rows[i].1);
            rows[i].0 = want;
            i
        };
        let s0 = slot_of(t.index, None);
        let s1 = slot_of(t.next, Some(s0));
        let (b0, b1) = (t.w0, t.w1);
        let dst = &mut out.data[dy * dst_width * 3..(dy + 1) * dst_width * 3];
        let (r0, r1) = (&rows[s0].1[..dst.len()], &rows[s1].1[..dst.len()]);
        for ((d, &a), &b) in dst.iter_mut().zip(r0).zip(r1) {
            // OpenCV's SIMD vertical pass for 8-bit output (VResizeLinearVec_32s8u).
            let v = (((b0 * (a >> 4)) >> 16) + ((b1 * (b >> 4)) >> 16) + 2) >> 2;
            *d = v.clamp(0, 255) as u8;
        }
    }
    out
}

/// [`resize_linear`] when the source is a whole number of times the output in each
/// direction (1280×720 → 640×360, 1920×1080 → 640×360, same size): the same bytes,
/// several times faster.
///
/// With a whole factor k the half-pixel centres fall on a source pixel (k odd: weights
/// 1 and 0) or halfway between two (k even: weights ½ and ½), so OpenCV's fixed-point
/// arithmetic reduces to exact small sums: each output channel is
/// `(a + b + c + d + 2) >> 2` over the (at most) 2 × 2 source pixels it sits between,
/// a pixel counted twice in a direction where it stands alone.
fn shrink_by_whole_factor(
    src: &[u8],
    (kx, ky): (usize, usize),
    stride: usize,
    layout: PixelLayout,
    dst_width: usize,
    dst_height: usize,
) -> RgbImage {
    if kx == 2 && layout == PixelLayout::RGB {
        return halve_rgb_width(src, ky, stride, dst_width, dst_height);
    }
    let bpp = layout.bytes_per_pixel;
    let [c0, c1, c2] = layout.rgb_offsets;
    let columns: Vec<(usize, usize)> = (0..dst_width)
        .map(|dx| {
            let (a, b) = between(kx, dx);
            (a * bpp, b * bpp)
        })
        .collect();
    let mut out = RgbImage::black(dst_width, dst_height);
    for (dy, dst) in out.data.chunks_exact_mut(dst_width * 3).enumerate() {
        let (r0, r1) = between(ky, dy);
        let (top, bottom) = (&src[r0 * stride..], &src[r1 * stride..]);
        if layout == PixelLayout::RGB && r0 == r1 && !kx.is_multiple_of(2) {
            // Odd factors both ways (1920×1080 → 640×360, same size): every output
            // pixel is one source pixel.
            for (o, &(a, _)) in dst.chunks_exact_mut(3).zip(&columns) {
                o.copy_from_slice(&top[a..a + 3]);
            }
            continue;
        }
        for (o, &(a, b)) in dst.chunks_exact_mut(3).zip(&columns) {
            let (ta, tb, ba, bb) = (&top[a..], &top[b..], &bottom[a..], &bottom[b..]);
            for (v, c) in o.iter_mut().zip([c0, c1, c2]) {
                let sum = ta[c] as u16 + tb[c] as u16 + ba[c] as u16 + bb[c] as u16;
                *v = ((sum + 2) >> 2) as u8;
            }
        }
    }
    out
}

/// The first of the two source coordinates output coordinate `d` sits between with a
/// whole factor `k`, and the second (the same one when `k` is odd).
fn between(k: usize, d: usize) -> (usize, usize) {
    let first = k * d + (k - 1) / 2;
    (first, first + usize::from(k.is_multiple_of(2)))
}

/// [`shrink_by_whole_factor`] for packed RGB at factor 2 across (the detector's
/// 1280×720 → 640×360) and `ky` down, in two passes the compiler vectorises: the
/// sums of the two source rows, then of neighbouring pixels in them.
fn halve_rgb_width(
    src: &[u8],
    ky: usize,
    stride: usize,
    dst_width: usize,
    dst_height: usize,
) -> RgbImage {
    let row_bytes = 2 * dst_width * 3;
    let mut sums = vec![0u16; row_bytes];
    let mut out = RgbImage::black(dst_width, dst_height);
    for (dy, dst) in out.data.chunks_exact_mut(dst_width * 3).enumerate() {
        let (r0, r1) = between(ky, dy);
        let (top, bottom) = (
            &src[r0 * stride..][..row_bytes],
            &src[r1 * stride..][..row_bytes],
        );
        for ((s, &t), &b) in sums.iter_mut().zip(top).zip(bottom) {
            *s = t as u16 + b as u16;
        }
        for (o, s) in dst.chunks_exact_mut(3).zip(sums.chunks_exact(6)) {
            o[0] = ((s[0] + s[3] + 2) >> 2) as u8;
            o[1] = ((s[1] + s[4] + 2) >> 2) as u8;
            o[2] = ((s[2] + s[5] + 2) >> 2) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&[(x * 255 / (w - 1)) as u8, (y * 255 / (h - 1)) as u8, 77]);
            }
        }
        v
    }

    #[test]
    fn whole_factors_give_the_bytes_of_the_general_path() {
        // Pseudo-random pixels (a fixed LCG), every layout, factors 1 to 4 in each
        // direction, row padding.
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        };
        let rgbx = PixelLayout {
            bytes_per_pixel: 4,
            rgb_offsets: [1, 2, 3],
        };
        for layout in [PixelLayout::RGB, PixelLayout::BGR, PixelLayout::GRAY, rgbx] {
            for (kx, ky) in [(1, 1), (2, 2), (3, 3), (4, 4), (2, 1), (1, 3), (3, 2)] {
                let (dw, dh) = (7, 5);
                let (w, h) = (dw * kx, dh * ky);
                let stride = w * layout.bytes_per_pixel + 3;
                let src: Vec<u8> = (0..stride * h).map(|_| next()).collect();
                assert_eq!(
                    resize_linear(&src, w, h, stride, layout, dw, dh),
                    resize_general(&src, (w, h, stride), layout, dw, dh),
                    "{w}x{h} -> {dw}x{dh}, {layout:?}"
                );
            }
        }
    }

    #[test]
    fn identity_size_keeps_pixels() {
        let src = gradient(16, 9);
        let out = resize_linear(&src, 16, 9, 16 * 3, PixelLayout::RGB, 16, 9);
        assert_eq!(out.data, src);
    }

    #[test]
    fn bgr_layout_swaps_channels() {
        let src = vec![10u8, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30];
        let out = resize_linear(&src, 2, 2, 6, PixelLayout::BGR, 1, 1);
        assert_eq!(out.pixel(0, 0), [30, 20, 10]);
    }

    #[test]
    fn halving_averages_neighbours() {
        // A 2x1 image of 0 and 200 halves to the mean at the half-pixel centre.
        let src = vec![0u8, 0, 0, 200, 200, 200];
        let out = resize_linear(&src, 2, 1, 6, PixelLayout::RGB, 1, 1);
        assert_eq!(out.pixel(0, 0), [100, 100, 100]);
    }

    #[test]
    fn upscale_clamps_at_borders() {
        // Upscaling 2 -> 4 pixels: outer output pixels sit beyond the source centres and
        // take the border values; inner ones interpolate at 1/4 and 3/4.
        let src = vec![0u8, 0, 0, 100, 100, 100];
        let out = resize_linear(&src, 2, 1, 6, PixelLayout::RGB, 4, 1);
        let row: Vec<u8> = (0..4).map(|x| out.pixel(x, 0)[0]).collect();
        assert_eq!(row, vec![0, 25, 75, 100]);
    }

    #[test]
    fn respects_stride_and_grey() {
        // 2x2 grey image with 4 bytes of row padding.
        let src = vec![50u8, 50, 9, 9, 50, 50, 9, 9];
        let out = resize_linear(&src, 2, 2, 4, PixelLayout::GRAY, 1, 1);
        assert_eq!(out.pixel(0, 0), [50, 50, 50]);
    }
}
