//! What a finished window reports, and its serialisations.
//!
//! The same [`WindowResult`] becomes the `emotion` bus message, the `EmotionMeta` on
//! video buffers and (later) JSON/CSV/WebVTT records; docs/metadata.md documents the
//! fields.

pub mod npy;
pub mod overlay;

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
    /// What was said (speech recognition, or the element's `text` property).
    pub transcript: Option<TranscriptInfo>,
    /// The model's answer, when a bundle is loaded.
    pub prediction: Option<Prediction>,
    /// Milliseconds the worker spent per stage on this window (speech recognition,
    /// model or fusion stages, total).
    pub timings: Vec<(String, f64)>,
}

/// The window's transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptInfo {
    /// The text (empty when nothing was said).
    pub text: String,
    /// Running time (ns) where the recognised speech starts and ends, when known.
    pub span: Option<(u64, u64)>,
    /// Highest no-speech probability among the kept segments, when recognised.
    pub no_speech: Option<f64>,
    /// Words with their running times (ns), when recognised.
    pub words: Vec<(String, u64, u64)>,
}

/// What the model said about a window.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Bundle name.
    pub model: String,
    /// The text the model saw.
    pub text: String,
    /// One entry per head, in the bundle's order.
    pub heads: Vec<HeadResult>,
    /// Faces, branches and flags of a fusion bundle.
    pub fusion: Option<crate::infer::FusionDetails>,
}

/// One classification head's result.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadResult {
    /// Head name (`emotion`, `sentiment`, ...): result fields are named after it.
    pub name: String,
    /// Labels in the model's order.
    pub labels: Vec<String>,
    /// Softmax probabilities, in label order.
    pub probs: Vec<f64>,
    /// Exponentially smoothed probabilities over the recent windows.
    pub smoothed: Vec<f64>,
}

impl HeadResult {
    /// Index of the most probable label.
    pub fn top(&self) -> usize {
        argmax(&self.probs)
    }

    /// Index of the most probable smoothed label.
    pub fn top_smoothed(&self) -> usize {
        argmax(&self.smoothed)
    }
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 { (i, p) } else { best }
        })
        .0
}

/// Softmax of logits, computed in f64.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    softmax_f64(&logits.iter().map(|&v| v as f64).collect::<Vec<_>>())
}

/// Softmax of f64 logits; `-inf` entries get probability 0.
pub fn softmax_f64(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let exps: Vec<f64> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
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
            transcript: None,
            prediction: None,
            timings: Vec::new(),
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
        if let Some(t) = &self.transcript {
            s.set("transcript", t.text.as_str());
            if let Some((start, end)) = t.span {
                s.set("transcript-start", start);
                s.set("transcript-end", end);
            }
            if let Some(p) = t.no_speech {
                s.set("no-speech-probability", p);
            }
            if !t.words.is_empty() {
                s.set(
                    "transcript-words",
                    gst::Array::new(t.words.iter().map(|(w, start, end)| {
                        gst::Structure::builder("word")
                            .field("text", w.as_str())
                            .field("start", *start)
                            .field("end", *end)
                            .build()
                    })),
                );
            }
        }
        if let Some(p) = &self.prediction {
            s.set("model", p.model.as_str());
            for h in &p.heads {
                let top = h.top();
                s.set(h.name.as_str(), h.labels[top].as_str());
                s.set(format!("{}-confidence", h.name).as_str(), h.probs[top]);
                s.set(
                    format!("{}-probs", h.name).as_str(),
                    gst::Array::new(h.probs.iter().copied()),
                );
                s.set(
                    format!("{}-labels", h.name).as_str(),
                    gst::Array::new(h.labels.iter().map(String::as_str)),
                );
                s.set(
                    format!("{}-smoothed", h.name).as_str(),
                    h.labels[h.top_smoothed()].as_str(),
                );
                s.set(
                    format!("{}-smoothed-probs", h.name).as_str(),
                    gst::Array::new(h.smoothed.iter().copied()),
                );
            }
            if let Some(f) = &p.fusion {
                let labels = p
                    .heads
                    .iter()
                    .find(|h| h.name == "emotion")
                    .map(|h| h.labels.clone())
                    .unwrap_or_default();
                set_fusion(&mut s, f, &labels);
            }
        }
        if !self.timings.is_empty() {
            let mut t = gst::Structure::new_empty("timing");
            for (k, v) in &self.timings {
                t.set(k.as_str(), *v);
            }
            s.set("timing", t);
        }
        s
    }
}

/// The fusion fields (docs/metadata.md): faces, branches, flags, per-branch results.
fn set_fusion(s: &mut gst::Structure, f: &crate::infer::FusionDetails, labels: &[String]) {
    s.set("branches", f.branches());
    s.set("low-confidence", f.low_confidence());
    s.set("flags", gst::Array::new(f.flags.iter().copied()));
    s.set("face-count", f.faces.len() as u32);
    s.set(
        "faces",
        gst::Array::new(f.faces.iter().map(|face| {
            let top = argmax(&face.probs);
            gst::Structure::builder("face")
                .field("x", face.rect[0])
                .field("y", face.rect[1])
                .field("width", face.rect[2])
                .field("height", face.rect[3])
                .field("frames", face.frames as u32)
                .field("score", face.score)
                .field("upstream", face.upstream)
                .field("emotion", labels.get(top).map_or("", String::as_str))
                .field("emotion-confidence", face.probs[top])
                .field("emotion-probs", gst::Array::new(face.probs.iter().copied()))
                .build()
        })),
    );
    if let Some(p) = &f.face_probs {
        s.set("face-emotion-probs", gst::Array::new(p.iter().copied()));
    }
    if let Some(p) = &f.text_probs {
        s.set("text-emotion-probs", gst::Array::new(p.iter().copied()));
    }
    if let Some(v) = f.text_compound {
        s.set("text-sentiment-compound", v);
    }
    if let Some(v) = f.face_valence {
        s.set("face-valence", v);
    }
    s.set("face-weight", f.weights.0);
    s.set("text-weight", f.weights.1);
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
        assert!(!s.has_field("emotion"));
    }

    #[test]
    fn prediction_fields_follow_head_names() {
        gst::init().unwrap();
        let probs = softmax(&[0.0, 2.0, 0.0]);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let r = WindowResult {
            span: WindowSpan {
                index: 0,
                start: 0,
                end: 1,
            },
            frames: None,
            distinct_frames: None,
            audio_samples: None,
            audio_rms: None,
            windows_dropped: 0,
            transcript: Some(TranscriptInfo {
                text: "hi".into(),
                span: None,
                no_speech: None,
                words: vec![("hi".into(), 0, 1)],
            }),
            prediction: Some(Prediction {
                model: "m".into(),
                text: "hi".into(),
                heads: vec![HeadResult {
                    name: "sentiment".into(),
                    labels: vec!["negative".into(), "neutral".into(), "positive".into()],
                    probs: probs.clone(),
                    smoothed: vec![0.6, 0.2, 0.2],
                }],
                fusion: None,
            }),
            timings: Vec::new(),
        };
        let s = r.to_structure();
        assert_eq!(s.get::<&str>("sentiment").unwrap(), "neutral");
        assert_eq!(s.get::<&str>("sentiment-smoothed").unwrap(), "negative");
        assert!((s.get::<f64>("sentiment-confidence").unwrap() - probs[1]).abs() < 1e-12);
        let arr = s.get::<gst::Array>("sentiment-probs").unwrap();
        assert_eq!(arr.len(), 3);
        assert_eq!(s.get::<&str>("transcript").unwrap(), "hi");
    }
}
