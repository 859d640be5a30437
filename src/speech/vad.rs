//! Voice activity: where in the audio someone speaks. Silero VAD (TorchScript from the
//! PyPI package `silero-vad`, run through tch) when its model is installed, else an
//! energy detector. [`speech_segments`] turns per-frame probabilities into speech
//! segments with a minimum length, a hangover for short pauses and a maximum length.

use std::path::{Path, PathBuf};

use tch::IValue;

use super::SpeechError;

/// Samples per VAD frame at 16 kHz (32 ms), Silero's frame size.
pub const FRAME: usize = 512;
/// Sample rate the detectors work at.
pub const RATE: u32 = 16000;

/// A libtorch error from the VAD model, first line only (the rest is a C++ backtrace).
fn vad_error(e: tch::TchError) -> SpeechError {
    SpeechError::Transcribe(format!(
        "VAD: {}",
        e.to_string().lines().next().unwrap_or_default()
    ))
}

/// File name of the Silero model scripts/setup installs.
pub const DEFAULT_VAD_FILE: &str = "silero_vad.jit";

/// The Silero model scripts/setup installs (`$GST_EMOTION_CACHE/vad/silero_vad.jit`).
pub fn default_vad_model() -> Option<PathBuf> {
    let path = crate::paths::cache_dir()?
        .join("vad")
        .join(DEFAULT_VAD_FILE);
    path.is_file().then_some(path)
}

/// A voice activity detector.
pub enum VoiceDetector {
    /// Silero VAD (TorchScript), CPU.
    Silero(tch::CModule),
    /// Frame energy against a threshold in dBFS.
    Energy {
        /// Frames this loud (dBFS) count as speech with probability 0.5.
        threshold_db: f32,
    },
}

impl std::fmt::Debug for VoiceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VoiceDetector::Silero(_) => write!(f, "VoiceDetector::Silero"),
            VoiceDetector::Energy { threshold_db } => {
                write!(f, "VoiceDetector::Energy({threshold_db} dBFS)")
            }
        }
    }
}

impl VoiceDetector {
    /// Loads Silero VAD from its TorchScript file.
    pub fn silero(path: &Path) -> Result<Self, SpeechError> {
        let module = tch::CModule::load_on_device(path, tch::Device::Cpu).map_err(|e| {
            SpeechError::Load {
                path: path.display().to_string(),
                reason: format!(
                    "cannot load the Silero VAD model: {}",
                    e.to_string().lines().next().unwrap_or_default()
                ),
            }
        })?;
        Ok(Self::Silero(module))
    }

    /// The energy detector (−40 dBFS), for when no VAD model is installed.
    pub fn energy() -> Self {
        Self::Energy {
            threshold_db: -40.0,
        }
    }

    /// Speech probability of each [`FRAME`]-sample frame of mono 16 kHz `samples`
    /// (the last partial frame is zero-padded). Each call is independent.
    pub fn probabilities(&mut self, samples: &[f32]) -> Result<Vec<f32>, SpeechError> {
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            VoiceDetector::Silero(m) => {
                m.method_is::<IValue>("reset_states", &[])
                    .map_err(vad_error)?;
                let x = tch::Tensor::from_slice(samples).reshape([1, samples.len() as i64]);
                let out = tch::no_grad(|| {
                    m.method_is(
                        "audio_forward",
                        &[IValue::Tensor(x), IValue::Int(RATE as i64)],
                    )
                })
                .map_err(vad_error)?;
                match out {
                    IValue::Tensor(t) => Vec::<f32>::try_from(t.reshape([-1])).map_err(vad_error),
                    _ => Err(SpeechError::Transcribe("VAD: unexpected output".into())),
                }
            }
            VoiceDetector::Energy { threshold_db } => Ok(samples
                .chunks(FRAME)
                .map(|f| {
                    let db = 20.0 * (crate::media::rms(f).max(1e-9) as f32).log10();
                    // 0.5 at the threshold, 0 six dB below, 1 six dB above.
                    ((db - *threshold_db) / 12.0 + 0.5).clamp(0.0, 1.0)
                })
                .collect()),
        }
    }
}

impl VoiceDetector {
    /// Starts a new stream for [`stream_probability`](Self::stream_probability)
    /// (resets Silero's recurrent state).
    pub fn start_stream(&mut self) -> Result<(), SpeechError> {
        if let VoiceDetector::Silero(m) = self {
            m.method_is::<IValue>("reset_states", &[])
                .map_err(vad_error)?;
        }
        Ok(())
    }

    /// Speech probability of the next [`FRAME`] samples of a stream (state carried over
    /// from the previous frame).
    pub fn stream_probability(&mut self, frame: &[f32]) -> Result<f32, SpeechError> {
        match self {
            VoiceDetector::Silero(m) => {
                let x = tch::Tensor::from_slice(frame).reshape([1, frame.len() as i64]);
                let out =
                    tch::no_grad(|| m.forward_is(&[IValue::Tensor(x), IValue::Int(RATE as i64)]))
                        .map_err(vad_error)?;
                match out {
                    IValue::Tensor(t) => f32::try_from(t.reshape([-1]).get(0)).map_err(vad_error),
                    _ => Err(SpeechError::Transcribe("VAD: unexpected output".into())),
                }
            }
            VoiceDetector::Energy { .. } => {
                Ok(self.probabilities(frame)?.first().copied().unwrap_or(0.0))
            }
        }
    }
}

/// How probabilities become speech segments.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmenterConfig {
    /// A frame is speech at or above this probability.
    pub threshold: f32,
    /// Shorter bursts of speech are ignored (s).
    pub min_speech: f64,
    /// Pauses shorter than this do not end a segment (hangover, s).
    pub min_silence: f64,
    /// Segments are cut at this length (s).
    pub max_length: f64,
    /// Added before and after each segment (s).
    pub pad: f64,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_speech: 0.25,
            min_silence: 0.3,
            max_length: 10.0,
            pad: 0.1,
        }
    }
}

/// Speech segments `(start, end)` in seconds from per-frame probabilities (frames of
/// `frame_seconds`), for audio of `duration` seconds.
pub fn speech_segments(
    probs: &[f32],
    frame_seconds: f64,
    duration: f64,
    c: &SegmenterConfig,
) -> Vec<(f64, f64)> {
    let mut raw: Vec<(f64, f64)> = Vec::new();
    let mut start: Option<usize> = None;
    let mut last_speech = 0usize;
    for (i, &p) in probs.iter().enumerate() {
        if p >= c.threshold {
            if start.is_none() {
                start = Some(i);
            }
            last_speech = i;
        } else if let Some(s) = start
            && (i - last_speech) as f64 * frame_seconds >= c.min_silence
        {
            raw.push((
                s as f64 * frame_seconds,
                (last_speech + 1) as f64 * frame_seconds,
            ));
            start = None;
        }
    }
    if let Some(s) = start {
        raw.push((
            s as f64 * frame_seconds,
            (last_speech + 1) as f64 * frame_seconds,
        ));
    }
    let mut out = Vec::new();
    for (s, e) in raw.into_iter().filter(|(s, e)| e - s >= c.min_speech) {
        let (mut s, e) = ((s - c.pad).max(0.0), (e + c.pad).min(duration));
        while e - s > c.max_length {
            out.push((s, s + c.max_length));
            s += c.max_length;
        }
        out.push((s, e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(silence_before: f64, speech: f64, silence_after: f64) -> Vec<f32> {
        let n = |s: f64| (s * RATE as f64) as usize;
        let mut v = vec![0.0; n(silence_before)];
        v.extend((0..n(speech)).map(|i| 0.3 * ((i as f32) * 0.07).sin()));
        v.extend(vec![0.0; n(silence_after)]);
        v
    }

    #[test]
    fn energy_detector_finds_a_burst() {
        let audio = burst(1.0, 1.5, 1.0);
        let mut vad = VoiceDetector::energy();
        let p = vad.probabilities(&audio).unwrap();
        assert_eq!(p.len(), audio.len().div_ceil(FRAME));
        let segs = speech_segments(
            &p,
            FRAME as f64 / RATE as f64,
            3.5,
            &SegmenterConfig::default(),
        );
        assert_eq!(segs.len(), 1, "{segs:?}");
        let (s, e) = segs[0];
        assert!((s - 0.9).abs() < 0.05 && (e - 2.6).abs() < 0.05, "{segs:?}");
    }

    #[test]
    fn hangover_min_speech_and_max_length() {
        let f = 0.032;
        let c = SegmenterConfig {
            pad: 0.0,
            ..Default::default()
        };
        // speech 0..1 s, 0.2 s pause (bridged), speech to 2 s, 1 s pause, 0.1 s blip.
        let mut p = vec![1.0; 31];
        p.extend(vec![0.0; 6]);
        p.extend(vec![1.0; 25]);
        p.extend(vec![0.0; 31]);
        p.extend(vec![1.0; 3]);
        p.extend(vec![0.0; 20]);
        let segs = speech_segments(&p, f, p.len() as f64 * f, &c);
        assert_eq!(segs.len(), 1, "{segs:?}");
        assert!((segs[0].1 - 62.0 * f).abs() < 1e-9);
        let c = SegmenterConfig {
            max_length: 0.8,
            pad: 0.0,
            ..Default::default()
        };
        let segs = speech_segments(&vec![1.0; 62], f, 2.0, &c);
        assert_eq!(segs.len(), 3);
        assert!((segs[0].1 - 0.8).abs() < 1e-9);
    }
}
