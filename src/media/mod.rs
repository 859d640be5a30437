//! Media primitives on plain data: frame resizing to the model input size, frames
//! converted only when a window picks them, frame sampling over a window, turning sideways pictures upright, the sample-accurate
//! audio ring buffer, and mel spectrograms.
//!
//! Nothing in here knows about GStreamer elements; the element feeds these with the
//! bytes of mapped buffers and running times in nanoseconds.

pub mod audio;
pub mod frame;
pub mod lazy;
pub mod mel;
pub mod orient;
pub mod sampler;

pub use audio::{AudioRing, SampleFormat, pcm_to_mono, rms};
pub use frame::{FaceRoi, PixelLayout, RgbImage, resize_linear};
pub use lazy::LazyFrame;
pub use mel::{Mel, MelConfig, MelSpectrogram};
pub use orient::Orientation;
pub use sampler::{FramePolicy, SampledFrames};
