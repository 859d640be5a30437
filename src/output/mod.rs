//! What a finished window reports, and its serialisations.
//!
//! The same [`WindowResult`] becomes the `emotion` bus message, the `EmotionMeta` on
//! video buffers and (later) JSON/CSV/WebVTT records; docs/metadata.md documents the
//! fields.

use crate::media::rms;
use crate::window::{WindowJob, WindowSpan};

/// Name of the GstStructure carried by the `emotion` element message and `EmotionMeta`.
pub const STRUCTURE_NAME: &str = "emotion";

/// Name under which the `EmotionMeta` GstCustomMeta is registered.
pub const META_NAME: &str = "EmotionMeta";

/// The measured facts of one analysed window.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowResult {
    /// The window's sequence number and running-time span.
    pub span: WindowSpan,
    /// Real video frames among the T sampled (the rest is black padding); `None`
    /// without video.
    pub frames: Option<u32>,
    /// Distinct video frames among the sampled ones.
    pub distinct_frames: Option<u32>,
    /// Samples of real audio in the window (gaps filled with silence do not count);
    /// `None` without audio.
    pub audio_samples: Option<u64>,
    /// Root mean square of the window's audio (silence-filled gaps included).
    pub audio_rms: Option<f64>,
    /// Windows dropped so far because the worker was behind (live input only).
    pub windows_dropped: u64,
}

impl WindowResult {
    /// Measures a window job.
    pub fn measure(job: &WindowJob, windows_dropped: u64) -> Self {
        Self {
            span: job.span,
            frames: job.frames.as_ref().map(|f| f.real as u32),
            distinct_frames: job.frames.as_ref().map(|f| f.distinct as u32),
            audio_samples: job.audio.as_ref().map(|a| a.real as u64),
            audio_rms: job.audio.as_ref().map(|a| rms(&a.samples)),
            windows_dropped,
        }
    }

    /// The result as the `emotion` GstStructure (fields documented in docs/metadata.md).
    pub fn to_structure(&self) -> gst::Structure {
        let mut s = gst::Structure::builder(STRUCTURE_NAME)
            .field("index", self.span.index)
            .field("start", self.span.start)
            .field("end", self.span.end)
            .field("windows-dropped", self.windows_dropped)
            .build();
        if let Some(v) = self.frames {
            s.set("frames", v);
        }
        if let Some(v) = self.distinct_frames {
            s.set("distinct-frames", v);
        }
        if let Some(v) = self.audio_samples {
            s.set("audio-samples", v);
        }
        if let Some(v) = self.audio_rms {
            s.set("audio-rms", v);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowAudio;

    #[test]
    fn structure_has_documented_fields_only_for_present_inputs() {
        gst::init().unwrap();
        let job = WindowJob {
            span: WindowSpan {
                index: 3,
                start: 3_000_000_000,
                end: 5_000_000_000,
            },
            frames: None,
            audio: Some(WindowAudio {
                samples: vec![0.5, -0.5, 0.5, -0.5],
                real: 4,
                rate: 16000,
            }),
        };
        let s = WindowResult::measure(&job, 2).to_structure();
        assert_eq!(s.name(), "emotion");
        assert_eq!(s.get::<u64>("start").unwrap(), 3_000_000_000);
        assert_eq!(s.get::<u64>("end").unwrap(), 5_000_000_000);
        assert_eq!(s.get::<u64>("audio-samples").unwrap(), 4);
        assert!((s.get::<f64>("audio-rms").unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(s.get::<u64>("windows-dropped").unwrap(), 2);
        assert!(!s.has_field("frames"));
    }
}
