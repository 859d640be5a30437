//! Pictures stored sideways (phone videos, cameras mounted on their side) turned
//! upright for analysis: the eight fixed methods of GStreamer's
//! `GstVideoOrientationMethod` (what `videoflip` does), read from the
//! `image-orientation` tag as `videoflip video-direction=auto` reads it, and applied to
//! sampled frames, face boxes in pixels and normalised face rectangles.

use super::frame::{FaceRoi, RgbImage};

/// How a stored picture is turned to stand upright.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Orientation {
    /// As stored.
    #[default]
    Identity,
    /// Rotated 90° clockwise.
    Rotate90R,
    /// Rotated 180°.
    Rotate180,
    /// Rotated 90° counter-clockwise.
    Rotate90L,
    /// Mirrored left to right.
    FlipHoriz,
    /// Mirrored top to bottom.
    FlipVert,
    /// Flipped across the upper-left/lower-right diagonal (transposed).
    FlipUlLr,
    /// Flipped across the upper-right/lower-left diagonal.
    FlipUrLl,
}

impl Orientation {
    /// The method for an `image-orientation` tag value (`rotate-90`,
    /// `flip-rotate-0`, ...), mapped as `videoflip` maps it; `None` for other text.
    pub fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag {
            "rotate-0" => Self::Identity,
            "rotate-90" => Self::Rotate90R,
            "rotate-180" => Self::Rotate180,
            "rotate-270" => Self::Rotate90L,
            "flip-rotate-0" => Self::FlipHoriz,
            "flip-rotate-90" => Self::FlipUlLr,
            "flip-rotate-180" => Self::FlipVert,
            "flip-rotate-270" => Self::FlipUrLl,
            _ => return None,
        })
    }

    /// Whether width and height trade places.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Self::Rotate90R | Self::Rotate90L | Self::FlipUlLr | Self::FlipUrLl
        )
    }

    /// The size of a `width`×`height` stored picture when upright.
    pub fn upright_size(self, width: usize, height: usize) -> (usize, usize) {
        if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// The method that turns the upright picture back as stored.
    pub fn inverse(self) -> Self {
        match self {
            Self::Rotate90R => Self::Rotate90L,
            Self::Rotate90L => Self::Rotate90R,
            other => other,
        }
    }

    /// Where a point of the stored picture (`u`, `v` from 0 to 1) is upright.
    pub fn point(self, u: f64, v: f64) -> (f64, f64) {
        match self {
            Self::Identity => (u, v),
            Self::Rotate90R => (1.0 - v, u),
            Self::Rotate180 => (1.0 - u, 1.0 - v),
            Self::Rotate90L => (v, 1.0 - u),
            Self::FlipHoriz => (1.0 - u, v),
            Self::FlipVert => (u, 1.0 - v),
            Self::FlipUlLr => (v, u),
            Self::FlipUrLl => (1.0 - v, 1.0 - u),
        }
    }

    /// A normalised rectangle `[x, y, width, height]` of the stored picture, upright.
    pub fn rect(self, [x, y, w, h]: [f64; 4]) -> [f64; 4] {
        let (x0, y0) = self.point(x, y);
        let (x1, y1) = self.point(x + w, y + h);
        [x0.min(x1), y0.min(y1), (x1 - x0).abs(), (y1 - y0).abs()]
    }

    /// A face box in the pixels of a `width`×`height` stored picture, in the pixels of
    /// the upright one.
    pub fn roi(self, roi: FaceRoi, width: usize, height: usize) -> FaceRoi {
        let (w, h) = (width.max(1) as f64, height.max(1) as f64);
        let r = self.rect([
            f64::from(roi.x) / w,
            f64::from(roi.y) / h,
            f64::from(roi.width) / w,
            f64::from(roi.height) / h,
        ]);
        let (uw, uh) = self.upright_size(width, height);
        let (uw, uh) = (uw as f64, uh as f64);
        FaceRoi {
            x: (r[0] * uw).round() as u32,
            y: (r[1] * uh).round() as u32,
            width: (r[2] * uw).round() as u32,
            height: (r[3] * uh).round() as u32,
        }
    }

    /// `image` turned upright (its face boxes too); the identity returns it as it is.
    pub fn image(self, image: RgbImage) -> RgbImage {
        if self == Self::Identity {
            return image;
        }
        let (w, h) = (image.width, image.height);
        let (uw, uh) = self.upright_size(w, h);
        let mut data = vec![0u8; uw * uh * 3];
        for y in 0..uh {
            for x in 0..uw {
                let (sx, sy) = match self {
                    Self::Identity => (x, y),
                    Self::Rotate90R => (y, h - 1 - x),
                    Self::Rotate180 => (w - 1 - x, h - 1 - y),
                    Self::Rotate90L => (w - 1 - y, x),
                    Self::FlipHoriz => (w - 1 - x, y),
                    Self::FlipVert => (x, h - 1 - y),
                    Self::FlipUlLr => (y, x),
                    Self::FlipUrLl => (w - 1 - y, h - 1 - x),
                };
                let (s, d) = ((sy * w + sx) * 3, (y * uw + x) * 3);
                data[d..d + 3].copy_from_slice(&image.data[s..s + 3]);
            }
        }
        let faces = image
            .faces
            .map(|faces| faces.into_iter().map(|f| self.roi(f, w, h)).collect());
        RgbImage {
            width: uw,
            height: uh,
            data,
            faces,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Orientation; 8] = [
        Orientation::Identity,
        Orientation::Rotate90R,
        Orientation::Rotate180,
        Orientation::Rotate90L,
        Orientation::FlipHoriz,
        Orientation::FlipVert,
        Orientation::FlipUlLr,
        Orientation::FlipUrLl,
    ];

    /// A 3×2 picture whose pixels are numbered 0..6 (in every channel).
    fn numbered() -> RgbImage {
        RgbImage {
            width: 3,
            height: 2,
            data: (0..6u8).flat_map(|i| [i, i, i]).collect(),
            faces: Some(vec![FaceRoi {
                x: 0,
                y: 0,
                width: 1,
                height: 1,
            }]),
        }
    }

    fn pixels(img: &RgbImage) -> Vec<u8> {
        img.data.chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn pixels_move_as_videoflip_moves_them() {
        // 0 1 2
        // 3 4 5
        let cases = [
            (Orientation::Identity, (3, 2), vec![0, 1, 2, 3, 4, 5]),
            (Orientation::Rotate90R, (2, 3), vec![3, 0, 4, 1, 5, 2]),
            (Orientation::Rotate180, (3, 2), vec![5, 4, 3, 2, 1, 0]),
            (Orientation::Rotate90L, (2, 3), vec![2, 5, 1, 4, 0, 3]),
            (Orientation::FlipHoriz, (3, 2), vec![2, 1, 0, 5, 4, 3]),
            (Orientation::FlipVert, (3, 2), vec![3, 4, 5, 0, 1, 2]),
            (Orientation::FlipUlLr, (2, 3), vec![0, 3, 1, 4, 2, 5]),
            (Orientation::FlipUrLl, (2, 3), vec![5, 2, 4, 1, 3, 0]),
        ];
        for (o, size, expected) in cases {
            let img = o.image(numbered());
            assert_eq!((img.width, img.height), size, "{o:?}");
            assert_eq!(pixels(&img), expected, "{o:?}");
            // The face box follows pixel 0.
            let f = img.faces.as_ref().unwrap()[0];
            let zero = pixels(&img).iter().position(|p| *p == 0).unwrap();
            assert_eq!(
                (f.x as usize, f.y as usize, f.width, f.height),
                (zero % img.width, zero / img.width, 1, 1),
                "{o:?}"
            );
        }
    }

    #[test]
    fn inverse_undoes_and_rects_follow_points() {
        for o in ALL {
            let back = o.inverse().image(o.image(numbered()));
            assert_eq!(pixels(&back), pixels(&numbered()), "{o:?}");
            let r = [0.1, 0.2, 0.3, 0.4];
            let there = o.inverse().rect(o.rect(r));
            for (a, b) in there.iter().zip(r) {
                assert!((a - b).abs() < 1e-12, "{o:?}: {there:?}");
            }
        }
        assert_eq!(
            Orientation::from_tag("rotate-90"),
            Some(Orientation::Rotate90R)
        );
        assert_eq!(
            Orientation::from_tag("flip-rotate-90"),
            Some(Orientation::FlipUlLr)
        );
        assert_eq!(Orientation::from_tag("sideways"), None);
    }
}
