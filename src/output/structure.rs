//! The `emotion` GstStructure: the documented form of a [`WindowResult`] on the bus and
//! in `EmotionMeta` (docs/metadata.md). [`WindowResult::to_structure`] writes it and
//! [`WindowResult::from_structure`] reads it back; this file is the only place that
//! knows the field names.

use super::STRUCTURE_NAME;
use super::result::{
    FaceReport, FrameProbs, FusionDetails, FusionFlag, HeadResult, Prediction, TimedWord,
    TranscriptInfo, WindowResult, argmax, face_head,
};
use crate::window::{Degraded, WindowKind, WindowSpan};

/// Why a structure is not an `emotion` result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an emotion result: {0}")]
pub struct StructureError(String);

impl WindowResult {
    /// The result as the `emotion` GstStructure (fields documented in docs/metadata.md).
    pub fn to_structure(&self) -> gst::Structure {
        let mut s = gst::Structure::builder(STRUCTURE_NAME)
            .field("index", self.span.index)
            .field("start", self.span.start)
            .field("end", self.span.end)
            .field("windows-dropped", self.windows_dropped)
            .field("window-kind", self.kind.as_str())
            .build();
        if let Some(d) = self.degraded {
            s.set("degraded", d.as_str());
        }
        if let Some((start, end)) = self.stream_span {
            s.set("stream-start", start);
            s.set("stream-end", end);
        }
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
            set_transcript(&mut s, t);
        }
        if let Some(p) = &self.prediction {
            s.set("model", p.model.as_str());
            for h in &p.heads {
                set_head(&mut s, h);
            }
            if let Some(f) = &p.fusion {
                set_fusion(&mut s, f, face_head(&p.heads));
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

    /// The result a video buffer carries in its `EmotionMeta`, if any (`None` before
    /// the first window's result).
    pub fn from_buffer(buf: &gst::BufferRef) -> Option<Self> {
        let meta = gst::meta::CustomMeta::from_buffer(buf, super::META_NAME).ok()?;
        Self::from_structure(meta.structure()).ok()
    }

    /// Reads an `emotion` structure (a bus message's or `EmotionMeta`'s) back into a
    /// result; `to_structure` and this are inverses.
    pub fn from_structure(s: &gst::StructureRef) -> Result<Self, StructureError> {
        // The bus message's structure is named `emotion`; EmotionMeta's carries the
        // same fields under the meta's name.
        if s.name() != STRUCTURE_NAME && s.name() != super::META_NAME {
            return Err(StructureError(format!("structure named {}", s.name())));
        }
        let need = |f: &str| {
            s.get::<u64>(f)
                .map_err(|_| StructureError(format!("no guint64 field {f}")))
        };
        let span = WindowSpan {
            index: need("index")?,
            start: need("start")?,
            end: need("end")?,
        };
        let transcript = s
            .get::<String>("transcript")
            .ok()
            .map(|text| TranscriptInfo {
                text,
                span: s
                    .get::<u64>("transcript-start")
                    .ok()
                    .zip(s.get::<u64>("transcript-end").ok()),
                no_speech: s.get::<f64>("no-speech-probability").ok(),
                words: structures(s, "transcript-words")
                    .iter()
                    .map(|w| TimedWord {
                        text: w.get::<String>("text").unwrap_or_default(),
                        start: w.get::<u64>("start").unwrap_or(0),
                        end: w.get::<u64>("end").unwrap_or(0),
                    })
                    .collect(),
            });
        let prediction = s.get::<String>("model").ok().map(|model| {
            let heads: Vec<HeadResult> = s
                .fields()
                .filter_map(|f| f.as_str().strip_suffix("-labels").map(str::to_owned))
                .filter(|h| s.has_field(h.as_str()))
                .map(|h| HeadResult {
                    labels: strings(s, &format!("{h}-labels")),
                    probs: floats(s, &format!("{h}-probs")),
                    smoothed: floats(s, &format!("{h}-smoothed-probs")),
                    frames: frame_probs(s, &format!("{h}-frames")),
                    name: h,
                })
                .collect();
            let face_name = face_head(&heads).map_or("emotion", |h| h.name.as_str());
            let fusion = s.has_field("branches").then(|| read_fusion(s, face_name));
            Prediction {
                model,
                heads,
                fusion,
            }
        });
        let timings = s
            .get::<gst::Structure>("timing")
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v.get::<f64>().ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            span,
            kind: s
                .get::<&str>("window-kind")
                .ok()
                .and_then(WindowKind::parse)
                .unwrap_or_default(),
            stream_span: s
                .get::<u64>("stream-start")
                .ok()
                .zip(s.get::<u64>("stream-end").ok()),
            frames: s.get::<u32>("frames").ok(),
            distinct_frames: s.get::<u32>("distinct-frames").ok(),
            audio_samples: s.get::<u64>("audio-samples").ok(),
            audio_rms: s.get::<f64>("audio-rms").ok(),
            windows_dropped: s.get::<u64>("windows-dropped").unwrap_or(0),
            degraded: s.get::<&str>("degraded").ok().and_then(Degraded::parse),
            transcript,
            prediction,
            timings,
        })
    }
}

fn set_transcript(s: &mut gst::Structure, t: &TranscriptInfo) {
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
            gst::Array::new(t.words.iter().map(|w| {
                gst::Structure::builder("word")
                    .field("text", w.text.as_str())
                    .field("start", w.start)
                    .field("end", w.end)
                    .build()
            })),
        );
    }
}

fn set_head(s: &mut gst::Structure, h: &HeadResult) {
    let (label, confidence) = h.top_label();
    s.set(h.name.as_str(), label);
    s.set(format!("{}-confidence", h.name).as_str(), confidence);
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
        h.top_smoothed_label(),
    );
    s.set(
        format!("{}-smoothed-probs", h.name).as_str(),
        gst::Array::new(h.smoothed.iter().copied()),
    );
    if !h.frames.is_empty() {
        s.set(
            format!("{}-frames", h.name).as_str(),
            frames_array(&h.frames),
        );
    }
}

/// Per-frame probabilities as an array of `frame` structures: `pts` (guint64 running
/// time, absent for padding) and `probs` (array of doubles in label order).
fn frames_array(frames: &[FrameProbs]) -> gst::Array {
    gst::Array::new(frames.iter().map(|f| {
        let mut b = gst::Structure::builder("frame");
        if let Some(t) = f.pts {
            b = b.field("pts", t);
        }
        b.field("probs", gst::Array::new(f.probs.iter().copied()))
            .build()
    }))
}

fn frame_probs(s: &gst::StructureRef, field: &str) -> Vec<FrameProbs> {
    structures(s, field)
        .iter()
        .map(|f| FrameProbs {
            pts: f.get::<u64>("pts").ok(),
            probs: floats(f, "probs"),
        })
        .collect()
}

/// The fusion fields (docs/metadata.md): faces, branches, flags, per-branch results.
fn set_fusion(s: &mut gst::Structure, f: &FusionDetails, head: Option<&HeadResult>) {
    let labels = head.map(|h| h.labels.as_slice()).unwrap_or_default();
    let name = head.map_or("emotion", |h| h.name.as_str());
    s.set("branches", f.branches());
    s.set("low-confidence", f.low_confidence());
    s.set("flags", gst::Array::new(f.flags.iter().map(|f| f.as_str())));
    s.set("face-count", f.faces.len() as u32);
    s.set(
        "faces",
        gst::Array::new(f.faces.iter().map(|face| {
            let top = argmax(&face.probs);
            let mut b = gst::Structure::builder("face")
                .field("x", face.rect[0])
                .field("y", face.rect[1])
                .field("width", face.rect[2])
                .field("height", face.rect[3])
                .field("frames", face.frames)
                .field("score", face.score)
                .field("upstream", face.upstream)
                .field(name, labels.get(top).map_or("", String::as_str))
                .field(
                    format!("{name}-confidence"),
                    face.probs.get(top).copied().unwrap_or(0.0),
                )
                .field(
                    format!("{name}-probs"),
                    gst::Array::new(face.probs.iter().copied()),
                );
            if let Some(id) = face.id {
                b = b.field("id", id);
            }
            if !face.frame_probs.is_empty() {
                b = b.field(format!("{name}-frames"), frames_array(&face.frame_probs));
            }
            if let Some(stable) = face.stable {
                b = b
                    .field(
                        "stable-label",
                        labels.get(stable).map_or("", String::as_str),
                    )
                    .field(
                        format!("{name}-smoothed-probs"),
                        gst::Array::new(face.smoothed.iter().copied()),
                    );
            }
            b.build()
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

fn read_fusion(s: &gst::StructureRef, name: &str) -> FusionDetails {
    let opt_floats = |f: &str| s.has_field(f).then(|| floats(s, f));
    let labels = strings(s, &format!("{name}-labels"));
    FusionDetails {
        faces: structures(s, "faces")
            .iter()
            .map(|f| {
                let g = |k: &str| f.get::<f64>(k).unwrap_or(0.0);
                FaceReport {
                    rect: [g("x"), g("y"), g("width"), g("height")],
                    frames: f.get::<u32>("frames").unwrap_or(0),
                    score: g("score"),
                    probs: floats(f, &format!("{name}-probs")),
                    upstream: f.get::<bool>("upstream").unwrap_or(false),
                    id: f.get::<u64>("id").ok(),
                    frame_probs: frame_probs(f, &format!("{name}-frames")),
                    smoothed: floats(f, &format!("{name}-smoothed-probs")),
                    stable: f
                        .get::<&str>("stable-label")
                        .ok()
                        .and_then(|l| labels.iter().position(|x| x == l)),
                }
            })
            .collect(),
        face_probs: opt_floats("face-emotion-probs"),
        text_probs: opt_floats("text-emotion-probs"),
        text_compound: s.get::<f64>("text-sentiment-compound").ok(),
        face_valence: s.get::<f64>("face-valence").ok(),
        weights: (
            s.get::<f64>("face-weight").unwrap_or(0.0),
            s.get::<f64>("text-weight").unwrap_or(0.0),
        ),
        flags: strings(s, "flags")
            .iter()
            .filter_map(|f| FusionFlag::from_name(f))
            .collect(),
    }
}

fn strings(s: &gst::StructureRef, f: &str) -> Vec<String> {
    s.get::<gst::Array>(f)
        .map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect())
        .unwrap_or_default()
}

fn floats(s: &gst::StructureRef, f: &str) -> Vec<f64> {
    s.get::<gst::Array>(f)
        .map(|a| a.iter().filter_map(|v| v.get::<f64>().ok()).collect())
        .unwrap_or_default()
}

fn structures(s: &gst::StructureRef, f: &str) -> Vec<gst::Structure> {
    s.get::<gst::Array>(f)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.get::<gst::Structure>().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::softmax;
    use crate::window::{WindowAudio, WindowJob};

    fn full_result() -> WindowResult {
        let emotion: Vec<String> = ["anger", "joy", "neutral"].map(String::from).to_vec();
        WindowResult {
            span: WindowSpan {
                index: 7,
                start: 1_000_000_000,
                end: 3_500_000_000,
            },
            kind: WindowKind::Utterance,
            stream_span: Some((6_000_000_000, 8_500_000_000)),
            frames: Some(6),
            distinct_frames: Some(5),
            audio_samples: Some(40000),
            audio_rms: Some(0.125),
            windows_dropped: 3,
            degraded: Some(Degraded::NoVideo),
            transcript: Some(TranscriptInfo {
                text: "hello there".into(),
                span: Some((1_100_000_000, 3_000_000_000)),
                no_speech: Some(0.02),
                words: vec![
                    TimedWord {
                        text: "hello".into(),
                        start: 1_100_000_000,
                        end: 1_500_000_000,
                    },
                    TimedWord {
                        text: "there".into(),
                        start: 1_600_000_000,
                        end: 3_000_000_000,
                    },
                ],
            }),
            prediction: Some(Prediction {
                model: "default".into(),
                heads: vec![
                    HeadResult {
                        name: "emotion".into(),
                        labels: emotion.clone(),
                        probs: vec![0.1, 0.7, 0.2],
                        smoothed: vec![0.2, 0.3, 0.5],
                        frames: vec![
                            FrameProbs {
                                pts: Some(1_000_000_000),
                                probs: vec![0.2, 0.6, 0.2],
                            },
                            FrameProbs {
                                pts: None,
                                probs: vec![0.0, 0.8, 0.2],
                            },
                        ],
                    },
                    HeadResult {
                        name: "sentiment".into(),
                        labels: ["negative", "neutral", "positive"]
                            .map(String::from)
                            .to_vec(),
                        probs: vec![0.05, 0.15, 0.8],
                        smoothed: vec![0.1, 0.2, 0.7],
                        frames: Vec::new(),
                    },
                ],
                fusion: Some(FusionDetails {
                    faces: vec![FaceReport {
                        rect: [0.25, 0.125, 0.5, 0.5],
                        frames: 6,
                        score: 0.99,
                        probs: vec![0.0, 0.9, 0.1],
                        upstream: false,
                        id: Some(3),
                        frame_probs: vec![FrameProbs {
                            pts: Some(1_200_000_000),
                            probs: vec![0.0, 0.9, 0.1],
                        }],
                        smoothed: vec![0.1, 0.7, 0.2],
                        stable: Some(2),
                    }],
                    face_probs: Some(vec![0.0, 0.9, 0.1]),
                    text_probs: None,
                    text_compound: Some(0.4),
                    face_valence: Some(0.8),
                    weights: (0.9, 0.0),
                    flags: [FusionFlag::NoSpeech].into(),
                }),
            }),
            timings: vec![("asr".into(), 12.5), ("total".into(), 30.0)],
        }
    }

    #[test]
    fn round_trip_is_exact() {
        gst::init().unwrap();
        let r = full_result();
        let s = r.to_structure();
        assert_eq!(WindowResult::from_structure(&s).unwrap(), r);
        // Also through the string form a Python/C client would print and parse.
        let text = s.to_string();
        let parsed: gst::Structure = text.parse().unwrap();
        assert_eq!(WindowResult::from_structure(&parsed).unwrap(), r);
        let bare = WindowResult {
            transcript: None,
            prediction: None,
            timings: vec![],
            frames: None,
            ..r
        };
        assert_eq!(
            WindowResult::from_structure(&bare.to_structure()).unwrap(),
            bare
        );
        let other = gst::Structure::new_empty("facedetect");
        assert!(WindowResult::from_structure(&other).is_err());
    }

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
                live: false,
            }),
            kind: WindowKind::Sliding,
            stream_span: None,
            degraded: None,
        };
        let mut r = WindowResult::measure(&job);
        r.windows_dropped = 2;
        let s = r.to_structure();
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
        let mut r = full_result();
        r.prediction = Some(Prediction {
            model: "m".into(),
            heads: vec![HeadResult {
                name: "sentiment".into(),
                labels: vec!["negative".into(), "neutral".into(), "positive".into()],
                probs: probs.clone(),
                smoothed: vec![0.6, 0.2, 0.2],
                frames: Vec::new(),
            }],
            fusion: None,
        });
        let s = r.to_structure();
        assert_eq!(s.get::<&str>("sentiment").unwrap(), "neutral");
        assert_eq!(s.get::<&str>("sentiment-smoothed").unwrap(), "negative");
        assert!((s.get::<f64>("sentiment-confidence").unwrap() - probs[1]).abs() < 1e-12);
        assert_eq!(s.get::<gst::Array>("sentiment-probs").unwrap().len(), 3);
        assert_eq!(s.get::<&str>("transcript").unwrap(), "hello there");
        assert!(!s.has_field("branches"));
    }
}
