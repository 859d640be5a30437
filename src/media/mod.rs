//! Media primitives on plain data: frame resizing to the model input size, frame
//! sampling over a window, and the sample-accurate audio ring buffer.
//!
//! Nothing in here knows about GStreamer elements; the element feeds these with the
//! bytes of mapped buffers and running times in nanoseconds.

pub mod audio;
pub mod frame;
pub mod sampler;

pub use audio::{AudioRing, SampleFormat, pcm_to_mono, rms};
pub use frame::{PixelLayout, RgbImage, resize_linear};
pub use sampler::{FramePolicy, SampledFrames};
