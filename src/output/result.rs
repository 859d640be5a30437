//! [`WindowResult`]: what one analysed window reports, typed from the model to every
//! writer. The GstStructure form (bus message, `EmotionMeta`) is in `structure.rs`.

use serde::{Deserialize, Serialize};

use crate::media::rms;
use crate::window::{Degraded, WindowJob, WindowKind, WindowSpan};

/// The measured facts and the model's answer for one analysed window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowResult {
    /// The window's sequence number and running-time span.
    pub span: WindowSpan,
    /// How the window was cut: sliding, utterance (speech) or silence (auto mode).
    pub kind: WindowKind,
    /// The span as stream-time positions (ns): where in the media the window is,
    /// unlike running time not reset by a seek. `None` when unknown.
    pub stream_span: Option<(u64, u64)>,
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
    /// Live input: the input that delivered nothing for this window (stalled or
    /// ended), so it was analysed from the other one alone.
    pub degraded: Option<Degraded>,
    /// What was said (speech recognition, or the element's `text` property).
    pub transcript: Option<TranscriptInfo>,
    /// The model's answer, when a bundle is loaded.
    pub prediction: Option<Prediction>,
    /// Milliseconds spent per stage on this window (speech recognition, model or
    /// fusion stages, total), in the order they ran.
    pub timings: Vec<(String, f64)>,
}

/// The window's transcript.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptInfo {
    /// The text (empty when nothing was said).
    pub text: String,
    /// Running time (ns) where the recognised speech starts and ends, when known.
    pub span: Option<(u64, u64)>,
    /// Highest no-speech probability among the kept segments, when recognised.
    pub no_speech: Option<f64>,
    /// Words with their running times, when recognised.
    pub words: Vec<TimedWord>,
}

impl TranscriptInfo {
    /// A transcript that is only text (the `text` property, or nothing heard).
    pub fn text_only(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// One recognised word on the running-time axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedWord {
    /// The word as decoded (punctuation attached).
    pub text: String,
    /// Start, ns running time.
    pub start: u64,
    /// End, ns running time.
    pub end: u64,
}

/// What the model said about a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Bundle name.
    pub model: String,
    /// One entry per head, in the bundle's order.
    pub heads: Vec<HeadResult>,
    /// Faces, branches and flags of a late-fusion bundle.
    pub fusion: Option<FusionDetails>,
}

impl Prediction {
    /// The head named `name`.
    pub fn head(&self, name: &str) -> Option<&HeadResult> {
        self.heads.iter().find(|h| h.name == name)
    }
}

/// One classification head's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadResult {
    /// Head name (`emotion`, `sentiment`, ...): result fields are named after it.
    pub name: String,
    /// Labels in the model's order.
    pub labels: Vec<String>,
    /// Softmax probabilities, in label order.
    pub probs: Vec<f64>,
    /// Exponentially smoothed probabilities over the recent windows.
    pub smoothed: Vec<f64>,
    /// Per-frame heads (`per_frame = true`): each sampled frame's probabilities, in
    /// sampled order; `probs` is their mean. Empty for per-window heads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<FrameProbs>,
}

/// One sampled frame's probabilities from a per-frame head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameProbs {
    /// Running time (ns) at which the frame starts displaying; `None` for the black
    /// padding of a window with fewer frames than the model takes.
    pub pts: Option<u64>,
    /// Softmax probabilities in the head's label order.
    pub probs: Vec<f64>,
}

impl HeadResult {
    /// Index of the most probable label.
    pub fn top(&self) -> usize {
        argmax(&self.probs)
    }

    /// The most probable label and its probability.
    pub fn top_label(&self) -> (&str, f64) {
        let i = self.top();
        (
            self.labels.get(i).map_or("", String::as_str),
            self.probs.get(i).copied().unwrap_or(0.0),
        )
    }

    /// The most probable label of the smoothed probabilities.
    pub fn top_smoothed_label(&self) -> &str {
        self.labels
            .get(argmax(&self.smoothed))
            .map_or("", String::as_str)
    }

    /// `(label, probability)` pairs, most probable first (ties in label order).
    pub fn ranked(&self) -> Vec<(&str, f64)> {
        let mut v: Vec<(&str, f64)> = self
            .labels
            .iter()
            .map(String::as_str)
            .zip(self.probs.iter().copied())
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }
}

/// What a late-fusion bundle saw and how it decided.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FusionDetails {
    /// Every face, the dominant one first.
    pub faces: Vec<FaceReport>,
    /// Face branch emotion probabilities (dominant face; emotion head order).
    pub face_probs: Option<Vec<f64>>,
    /// Text branch emotion probabilities (emotion head order).
    pub text_probs: Option<Vec<f64>>,
    /// VADER compound score of the transcript.
    pub text_compound: Option<f64>,
    /// Valence of the dominant face's expression in [-1, 1].
    pub face_valence: Option<f64>,
    /// Effective weights of the face and text branches in the emotion fusion.
    pub weights: (f64, f64),
    /// Conditions worth knowing, in the order below.
    pub flags: std::collections::BTreeSet<FusionFlag>,
}

/// A condition of a late-fusion window worth knowing (`flags` in every output).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FusionFlag {
    /// No face was found in the window's frames.
    NoFace,
    /// The transcript has no words.
    NoSpeech,
    /// Neither branch had anything to say: the emotion is the bundle's
    /// `empty_confidence` on neutral.
    NoEvidence,
}

impl FusionFlag {
    /// Every flag, in output order.
    pub const ALL: [Self; 3] = [Self::NoFace, Self::NoSpeech, Self::NoEvidence];

    /// Its name in the outputs: `no-face`, `no-speech`, `no-evidence`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoFace => "no-face",
            Self::NoSpeech => "no-speech",
            Self::NoEvidence => "no-evidence",
        }
    }

    /// The flag named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for FusionFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FusionDetails {
    /// The branches that contributed, e.g. "face+text", or "none".
    pub fn branches(&self) -> String {
        let mut b = Vec::new();
        if self.face_probs.is_some() {
            b.push("face");
        }
        if self.text_probs.is_some() || self.text_compound.is_some() {
            b.push("text");
        }
        if b.is_empty() {
            "none".into()
        } else {
            b.join("+")
        }
    }

    /// Whether the result rests on no evidence at all.
    pub fn low_confidence(&self) -> bool {
        self.flags.contains(&FusionFlag::NoEvidence)
    }
}

/// One face seen in a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaceReport {
    /// Mean box over the frames it was seen in, as fractions of the frame: x, y,
    /// width, height.
    pub rect: [f64; 4],
    /// Sampled frames the face was on.
    pub frames: u32,
    /// Mean detector score (1 for upstream boxes).
    pub score: f64,
    /// Emotion probabilities in the emotion head's label order.
    pub probs: Vec<f64>,
    /// Whether the boxes came from an upstream detector (ROI metas).
    pub upstream: bool,
    /// Track id, the same for the same person across windows of one stream.
    #[serde(default)]
    pub id: Option<u64>,
    /// Per-frame probabilities of this face (a per-frame face-head), in sampled order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_probs: Vec<FrameProbs>,
    /// This face track's probabilities smoothed over the windows it was seen in
    /// (`face-smoothing`). Empty when off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smoothed: Vec<f64>,
    /// Index of the track's stable label (the smoothed top label, changed only when
    /// another passes it by a margin); `None` when face smoothing is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<usize>,
}

/// The head faces are reported for among `heads`: `emotion` when there is one, else
/// the first.
pub fn face_head(heads: &[HeadResult]) -> Option<&HeadResult> {
    heads
        .iter()
        .find(|h| h.name == "emotion")
        .or_else(|| heads.first())
}

/// Index of the largest value (the first of equals); 0 for an empty slice.
pub fn argmax(v: &[f64]) -> usize {
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
    /// The measurements of a window job, before transcript and model.
    pub fn measure(job: &WindowJob) -> Self {
        Self {
            span: job.span,
            kind: job.kind,
            stream_span: job.stream_span,
            frames: job.frames.as_ref().map(|f| f.real as u32),
            distinct_frames: job.frames.as_ref().map(|f| f.distinct as u32),
            audio_samples: job.audio.as_ref().map(|a| a.real as u64),
            audio_rms: job.audio.as_ref().map(|a| rms(&a.samples)),
            windows_dropped: 0,
            degraded: job.degraded,
            transcript: None,
            prediction: None,
            timings: Vec::new(),
        }
    }

    /// The head named `name`, when a model answered.
    pub fn head(&self, name: &str) -> Option<&HeadResult> {
        self.prediction.as_ref()?.head(name)
    }

    /// The heads, in the bundle's order (none without a model).
    pub fn heads(&self) -> &[HeadResult] {
        self.prediction.as_ref().map_or(&[], |p| p.heads.as_slice())
    }

    /// The head faces are reported for: `emotion` when the bundle has one, else the
    /// first head (`faces[i].probs` are in its label order).
    pub fn face_head(&self) -> Option<&HeadResult> {
        face_head(self.heads())
    }

    /// The transcript text, empty when there is none.
    pub fn transcript_text(&self) -> &str {
        self.transcript.as_ref().map_or("", |t| t.text.as_str())
    }

    /// The fusion details of a late-fusion bundle.
    pub fn fusion(&self) -> Option<&FusionDetails> {
        self.prediction.as_ref()?.fusion.as_ref()
    }

    /// Window start in seconds of running time.
    pub fn start_seconds(&self) -> f64 {
        self.span.start as f64 / 1e9
    }

    /// Window end in seconds of running time.
    pub fn end_seconds(&self) -> f64 {
        self.span.end as f64 / 1e9
    }

    /// Where in the media the window starts (s): stream time, else running time.
    pub fn media_start(&self) -> f64 {
        self.stream_span
            .map_or(self.start_seconds(), |(s, _)| s as f64 / 1e9)
    }

    /// Where in the media the window ends (s): stream time, else running time.
    pub fn media_end(&self) -> f64 {
        self.stream_span
            .map_or(self.end_seconds(), |(_, e)| e as f64 / 1e9)
    }
}
