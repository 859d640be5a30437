//! Faces as a single model's input (a bundle's `[faces]` section): the faces of a
//! window's T sampled frames — MTCNN detections, or the boxes an upstream detector
//! attached — linked into tracks, and each track turned into T colour crops, one per
//! sampled frame, filled by the bundle's rule where the face is missing. Each track is
//! one sequence for the model.

use std::sync::Arc;

use super::track::{Track, link};
use super::{FaceBox, Mtcnn, MtcnnConfig, crop_rgb};
use crate::bundle::{Bundle, FaceFill, FaceSequenceSpec, InputSpec, VideoSpec};
use crate::infer::ModelError;
use crate::media::RgbImage;

/// Overlap that links a box to a track on the next sampled frame.
const LINK_IOU: f32 = 0.3;

/// One tracked face of a window, ready for the model.
#[derive(Clone, Debug)]
pub struct FaceSequence {
    /// T crops of the input's width × height, in sampled-frame order.
    pub crops: Vec<RgbImage>,
    /// Mean box over the frames it was seen on, as fractions of the frame: x, y,
    /// width, height.
    pub rect: [f64; 4],
    /// Sampled frames the face was seen on (the rest were filled).
    pub seen: u32,
    /// Mean detector score (1 for upstream boxes).
    pub score: f64,
    /// Whether the boxes came from an upstream detector.
    pub upstream: bool,
}

/// The detector and the crop rules of a `[faces]` bundle.
pub struct FaceSequencer {
    mtcnn: Mtcnn,
    spec: FaceSequenceSpec,
    input: VideoSpec,
}

impl std::fmt::Debug for FaceSequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceSequencer")
            .field("spec", &self.spec)
            .finish()
    }
}

impl FaceSequencer {
    /// Loads the bundle's MTCNN on `device`; `None` for a bundle without `[faces]`.
    pub fn load(bundle: &Bundle, device: tch::Device) -> Result<Option<Self>, ModelError> {
        let Some(spec) = bundle.manifest.faces.clone() else {
            return Ok(None);
        };
        let config = MtcnnConfig {
            min_face: spec.min_face,
            thresholds: [spec.thresholds[0], spec.thresholds[1], spec.thresholds[2]],
            factor: spec.pyramid_factor,
        };
        let mtcnn = Mtcnn::from_bundle(bundle, &spec.detector, config, device, "faces.detector")?;
        let input = match bundle.manifest.inputs.get(&spec.input) {
            Some(InputSpec::Video(v)) => v.clone(),
            _ => {
                return Err(ModelError::Bundle(
                    "faces.input is not a video input".into(),
                ));
            }
        };
        Ok(Some(Self { mtcnn, spec, input }))
    }

    /// The input the crops are fed as.
    pub fn input_name(&self) -> &str {
        &self.spec.input
    }

    /// The input's description (size, pixels, layout).
    pub fn input(&self) -> &VideoSpec {
        &self.input
    }

    /// The window's face sequences, most prominent first (at most `max_faces`).
    /// `frames` are the T sampled frames, of which the first `real` are video (the
    /// rest is black padding, where no face is looked for).
    pub fn sequences(
        &self,
        frames: &[Arc<RgbImage>],
        real: usize,
    ) -> Result<Vec<FaceSequence>, ModelError> {
        let boxes = super::window_boxes(
            &self.mtcnn,
            frames,
            real,
            self.spec.detect_every,
            self.spec.between,
            super::Runs::SideBySide,
        )?;
        let upstream = frames.iter().take(real).any(|f| f.faces.is_some());
        let mut tracks = link(&boxes, LINK_IOU);
        tracks.truncate(self.spec.max_faces);
        let Some(first) = frames.first() else {
            return Ok(Vec::new());
        };
        let (fw, fh) = (first.width as f64, first.height as f64);
        Ok(tracks
            .iter()
            .filter_map(|t| self.sequence(t, frames, fw, fh, upstream))
            .collect())
    }

    /// A track's T crops under the fill rule; `None` when `skip` drops it.
    fn sequence(
        &self,
        track: &Track,
        frames: &[Arc<RgbImage>],
        fw: f64,
        fh: f64,
        upstream: bool,
    ) -> Option<FaceSequence> {
        let t = frames.len();
        let mut on: Vec<Option<&FaceBox>> = vec![None; t];
        for (k, b) in &track.boxes {
            on[*k] = Some(b);
        }
        if self.spec.fill == FaceFill::Skip && on.iter().any(Option::is_none) {
            return None;
        }
        let (w, h, margin) = (self.input.width, self.input.height, self.spec.margin);
        // Each frame the face is on is cropped once; fills copy or blacken.
        let seen: Vec<Option<RgbImage>> = (0..t)
            .map(|k| on[k].map(|b| crop_rgb(&frames[k], b, margin, w, h)))
            .collect();
        let near = |k: usize| {
            // The nearest frame the face is on, the earlier on a tie.
            (0..t)
                .filter(|&j| on[j].is_some())
                .min_by_key(|&j| (j.abs_diff(k), j))
                .expect("a track has a box")
        };
        let crops: Vec<RgbImage> = (0..t)
            .map(|k| match (&seen[k], self.spec.fill) {
                (Some(c), _) => c.clone(),
                (None, FaceFill::Repeat) => seen[near(k)].clone().expect("seen"),
                (None, FaceFill::Black | FaceFill::Skip) => RgbImage::black(w, h),
            })
            .collect();
        let n = track.boxes.len() as f64;
        let mean = |f: &dyn Fn(&FaceBox) -> f32| {
            track.boxes.iter().map(|(_, b)| f(b) as f64).sum::<f64>() / n
        };
        Some(FaceSequence {
            crops,
            rect: [
                (mean(&|b| b.x1) / fw).clamp(0.0, 1.0),
                (mean(&|b| b.y1) / fh).clamp(0.0, 1.0),
                (mean(&|b| b.x2 - b.x1) / fw).clamp(0.0, 1.0),
                (mean(&|b| b.y2 - b.y1) / fh).clamp(0.0, 1.0),
            ],
            seen: track.boxes.len() as u32,
            score: mean(&|b| b.score),
            upstream,
        })
    }
}
