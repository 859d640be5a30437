//! Choosing the T frames a window shows the model.
//!
//! A window collects the frames *displayed* during its span: the frame on screen at
//! its start plus every frame that starts inside it. When the window closes, a policy
//! picks T of them:
//! - `first`: the first T frames in order, padded with black frames when the window
//!   has fewer (what the reference MELD pipeline does with a cut clip);
//! - `uniform`: the frame displayed at the centre of each of T equal slices of the
//!   window (frames repeat when the video has fewer than T frames in the window).

use std::sync::Arc;

use gst::glib;

use super::frame::RgbImage;
use super::lazy::LazyFrame;

/// How a window's T frames are chosen: the bundle manifest's `policy` and the
/// element's `frame-policy` property.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Deserialize,
    serde::Serialize,
    glib::Enum,
)]
#[serde(rename_all = "lowercase")]
#[repr(u32)]
#[enum_type(name = "GstEmotionFramePolicy")]
pub enum FramePolicy {
    /// The first T frames from the window start, black padding if fewer (reference MELD).
    #[enum_value(
        name = "First: the first T frames, black padding if fewer",
        nick = "first"
    )]
    First = 0,
    /// The frames displayed at T evenly spaced instants across the window.
    #[default]
    #[enum_value(
        name = "Uniform: the frames on screen at T evenly spaced instants",
        nick = "uniform"
    )]
    Uniform = 1,
}

/// The frames displayed during one window, in presentation order.
#[derive(Clone, Debug, Default)]
pub struct SampledFrames {
    start: u64,
    candidates: Vec<(u64, Arc<LazyFrame>)>,
}

/// The frames chosen for one window.
#[derive(Clone, Debug)]
pub struct FrameSelection {
    /// Exactly T frames (black padding included), converted when first looked at
    /// ([`images`](Self::images)).
    pub frames: Vec<Arc<LazyFrame>>,
    /// How many of them are real video frames rather than padding.
    pub real: usize,
    /// How many different video frames were chosen.
    pub distinct: usize,
    /// Running time (ns) at which each chosen frame starts displaying; `None` for
    /// black padding.
    pub times: Vec<Option<u64>>,
}

impl SampledFrames {
    /// An empty collection for a window starting at running time `start` (ns).
    pub fn new(start: u64) -> Self {
        Self {
            start,
            candidates: Vec::new(),
        }
    }

    /// Adds the frame that starts displaying at running time `t`. Frames must come in
    /// presentation order. A frame at or before the window start replaces any earlier
    /// one: only the frame on screen at the start counts.
    pub fn push(&mut self, t: u64, frame: Arc<LazyFrame>) {
        if t <= self.start {
            self.candidates.clear();
        }
        self.candidates.push((t, frame));
    }

    /// True when no frame was displayed in the window.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Picks `count` frames for the window `[start, end)` under `policy`; `black`
    /// makes the padding frame. Returns `None` when the window saw no video.
    pub fn select(
        &self,
        policy: FramePolicy,
        count: usize,
        end: u64,
        black: impl Fn() -> RgbImage,
    ) -> Option<FrameSelection> {
        if self.candidates.is_empty() || count == 0 {
            return None;
        }
        let mut picked: Vec<usize> = Vec::with_capacity(count);
        match policy {
            FramePolicy::First => picked.extend(0..count.min(self.candidates.len())),
            FramePolicy::Uniform => {
                let span = end.saturating_sub(self.start) as u128;
                for k in 0..count as u128 {
                    let centre = self.start + ((2 * k + 1) * span / (2 * count as u128)) as u64;
                    // Last frame starting at or before the centre; the first frame if the
                    // centre precedes every frame.
                    let i = self
                        .candidates
                        .partition_point(|(t, _)| *t <= centre)
                        .saturating_sub(1);
                    picked.push(i);
                }
            }
        }
        let real = picked.len();
        let mut distinct = picked.clone();
        distinct.dedup();
        let mut frames: Vec<Arc<LazyFrame>> = picked
            .iter()
            .map(|&i| self.candidates[i].1.clone())
            .collect();
        let mut times: Vec<Option<u64>> =
            picked.iter().map(|&i| Some(self.candidates[i].0)).collect();
        if frames.len() < count {
            let pad = Arc::new(LazyFrame::ready(black()));
            frames.resize(count, pad);
            times.resize(count, None);
        }
        Some(FrameSelection {
            frames,
            real,
            distinct: distinct.len(),
            times,
        })
    }
}

impl FrameSelection {
    /// The T pictures, converting the frames not converted yet (a window's frames
    /// are converted where the window is analysed, not on the streaming thread),
    /// side by side on the machine's cores when there are several.
    pub fn images(&self) -> Vec<Arc<RgbImage>> {
        convert_side_by_side(&self.frames);
        self.frames.iter().map(|f| f.image()).collect()
    }

    /// The real frames' pictures, without the padding (at least one when there is
    /// any frame).
    pub fn real_images(&self) -> Vec<Arc<RgbImage>> {
        let n = self.real.max(1).min(self.frames.len());
        self.frames[..n].iter().map(|f| f.image()).collect()
    }
}

/// Converts the frames not converted yet on one thread per core (at most one per
/// frame); nothing when fewer than two are left. A window of a file's frames has all
/// of them to convert at once, on the worker that waits for them.
fn convert_side_by_side(frames: &[Arc<LazyFrame>]) {
    let pending: Vec<&Arc<LazyFrame>> = frames.iter().filter(|f| !f.is_converted()).collect();
    if pending.len() >= 2 {
        crate::parallel::side_by_side(
            pending.len(),
            crate::parallel::cores(),
            || {},
            |k| {
                pending[k].image();
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(v: u8) -> Arc<LazyFrame> {
        Arc::new(LazyFrame::ready(RgbImage {
            width: 1,
            height: 1,
            data: vec![v; 3],
            faces: None,
        }))
    }

    fn values(sel: &FrameSelection) -> Vec<u8> {
        sel.images().iter().map(|f| f.data[0]).collect()
    }

    #[test]
    fn first_pads_with_black() {
        let mut s = SampledFrames::new(100);
        for (t, v) in [(100, 1), (110, 2), (120, 3)] {
            s.push(t, img(v));
        }
        let sel = s
            .select(FramePolicy::First, 5, 200, || RgbImage::black(1, 1))
            .unwrap();
        assert_eq!(values(&sel), vec![1, 2, 3, 0, 0]);
        assert_eq!(sel.real, 3);
    }

    #[test]
    fn only_frame_on_screen_at_start_is_kept() {
        let mut s = SampledFrames::new(100);
        s.push(50, img(1));
        s.push(90, img(2)); // replaces 1: on screen at 100
        s.push(130, img(3));
        let sel = s
            .select(FramePolicy::First, 2, 200, || RgbImage::black(1, 1))
            .unwrap();
        assert_eq!(values(&sel), vec![2, 3]);
    }

    #[test]
    fn uniform_takes_frame_displayed_at_slice_centres() {
        // 10 frames, one every 10 ns, window [0, 100), T = 4: centres 12, 37, 62, 87.
        let mut s = SampledFrames::new(0);
        for k in 0..10u8 {
            s.push(k as u64 * 10, img(k));
        }
        let sel = s
            .select(FramePolicy::Uniform, 4, 100, || RgbImage::black(1, 1))
            .unwrap();
        assert_eq!(values(&sel), vec![1, 3, 6, 8]);
        assert_eq!(sel.real, 4);
        assert_eq!(sel.distinct, 4);
    }

    #[test]
    fn uniform_repeats_when_video_is_sparse() {
        let mut s = SampledFrames::new(0);
        s.push(0, img(7));
        s.push(60, img(8));
        let sel = s
            .select(FramePolicy::Uniform, 4, 100, || RgbImage::black(1, 1))
            .unwrap();
        assert_eq!(values(&sel), vec![7, 7, 8, 8]);
        assert_eq!(sel.distinct, 2);
    }

    #[test]
    fn no_video_selects_nothing() {
        let s = SampledFrames::new(0);
        assert!(
            s.select(FramePolicy::Uniform, 4, 100, || RgbImage::black(1, 1))
                .is_none()
        );
    }
}
