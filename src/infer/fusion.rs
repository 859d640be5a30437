//! Late fusion (a bundle with a `[fusion]` section): each branch predicts on its own —
//! faces (MTCNN + face-emotion CNN), words (zero-shot emotion from sentence
//! embeddings, VADER sentiment) — and the branches are combined with weights scaled by
//! each branch's presence and confidence. docs/default-bundle.md describes the rules.

use std::sync::Arc;

use tch::{CModule, Device, IValue, Kind, Tensor};

use super::ModelOutput;
use crate::bundle::{Bundle, FaceFusion, InputSpec, SentimentFusion, TextFusion, VideoSpec};
use crate::face::track::link;
use crate::face::{CropSpec, FaceBox, Mtcnn, MtcnnConfig, crop_gray};
use crate::media::RgbImage;
use crate::output::{FaceReport, FusionDetails, softmax_f64 as softmax};

/// Milliseconds per fusion stage.
type Timings = Vec<(&'static str, f64)>;

struct FaceBranch {
    mtcnn: Mtcnn,
    classifier: CModule,
    spec: FaceFusion,
    input: VideoSpec,
    /// For each classifier label, the index of the emotion head label.
    map: Vec<usize>,
}

struct TextBranch {
    encoder: CModule,
    spec: TextFusion,
    /// (emotion head label index, normalised prototype embedding).
    prototypes: Vec<(usize, Vec<f32>)>,
}

/// The loaded branches of a late-fusion bundle.
pub struct FusionModel {
    bundle: Arc<Bundle>,
    device: Device,
    face: Option<FaceBranch>,
    text: Option<TextBranch>,
    emotion_labels: Vec<String>,
}

fn first_line(e: tch::TchError) -> String {
    super::first_line(&e)
}

fn load_module(bundle: &Bundle, name: &str, device: Device) -> Result<CModule, String> {
    let i = bundle
        .model_index(name)
        .ok_or_else(|| format!("no model named {name:?}"))?;
    super::load_torchscript(&bundle.model_file(i, device), device)
}

impl FusionModel {
    /// Loads every branch of `bundle` on `device` and embeds the text prototypes.
    pub fn load(bundle: Arc<Bundle>, device: Device) -> Result<Self, String> {
        let fusion = bundle
            .manifest
            .fusion
            .clone()
            .ok_or("the bundle has no [fusion] section")?;
        let emotion_labels = bundle
            .manifest
            .head("emotion")
            .map(|h| h.labels.clone())
            .unwrap_or_default();
        let label_index = |l: &str| emotion_labels.iter().position(|x| x == l);
        let face = match &fusion.face {
            Some(spec) => {
                let paths: Vec<_> = spec
                    .detector
                    .iter()
                    .map(|n| bundle.model_index(n).map(|i| bundle.model_file(i, device)))
                    .collect::<Option<_>>()
                    .ok_or("fusion.face.detector names an unknown model")?;
                let config = MtcnnConfig {
                    min_face: spec.min_face,
                    thresholds: [spec.thresholds[0], spec.thresholds[1], spec.thresholds[2]],
                    factor: spec.pyramid_factor,
                };
                let mtcnn = Mtcnn::load([&paths[0], &paths[1], &paths[2]], config, device)?;
                let input = match bundle.manifest.inputs.get(&spec.input) {
                    Some(InputSpec::Video(v)) => v.clone(),
                    _ => return Err("fusion.face.input is not a video input".into()),
                };
                let classifier = load_module(&bundle, &spec.classifier, device)?;
                check_classifier(&bundle, &classifier, spec, &input, device)?;
                Some(FaceBranch {
                    mtcnn,
                    classifier,
                    map: spec
                        .maps_to
                        .iter()
                        .map(|l| {
                            label_index(l).ok_or_else(|| {
                                format!(
                                    "fusion.face.maps_to: {l:?} is not a label of heads.emotion"
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    spec: spec.clone(),
                    input,
                })
            }
            None => None,
        };
        let text = match &fusion.text {
            Some(spec) => {
                let encoder = load_module(&bundle, &spec.encoder, device)?;
                let mut prototypes = Vec::new();
                for (label, sentences) in &spec.prototypes {
                    let mut sum: Vec<f32> = Vec::new();
                    for s in sentences {
                        let e = embed(&bundle, &encoder, device, s)?;
                        if sum.is_empty() {
                            sum = e;
                        } else {
                            sum.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
                        }
                    }
                    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    sum.iter_mut().for_each(|v| *v /= norm);
                    let i = label_index(label).ok_or("prototype label not in heads.emotion")?;
                    prototypes.push((i, sum));
                }
                Some(TextBranch {
                    encoder,
                    spec: spec.clone(),
                    prototypes,
                })
            }
            None => None,
        };
        Ok(Self {
            bundle,
            device,
            face,
            text,
            emotion_labels,
        })
    }

    /// Analyses one window: its sampled frames (empty without video) and transcript.
    pub fn analyse(&self, frames: &[Arc<RgbImage>], text: &str) -> Result<ModelOutput, String> {
        let mut timings = Timings::new();
        let (probs, details) = tch::no_grad(|| self.analyse_inner(frames, text, &mut timings))?;
        Ok(ModelOutput {
            probs,
            logits: None,
            fusion: Some(details),
            timings: timings
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })
    }

    fn analyse_inner(
        &self,
        frames: &[Arc<RgbImage>],
        text: &str,
        timings: &mut Timings,
    ) -> Result<(Vec<Vec<f64>>, FusionDetails), String> {
        let fusion = self
            .bundle
            .manifest
            .fusion
            .as_ref()
            .expect("checked at load");
        let n = self.emotion_labels.len();
        let mut d = FusionDetails::default();
        // Face branch.
        let mut face_raw: Option<(Vec<f64>, f64)> = None; // (classifier probs, presence)
        if let Some(face) = &self.face {
            let (reports, raw) = self.faces(face, frames, timings)?;
            if let (Some(first), Some(raw)) = (reports.first(), raw) {
                let presence = first.frames as f64 / frames.len().max(1) as f64;
                d.face_probs = Some(first.probs.clone());
                d.face_valence = Some(
                    raw.iter()
                        .zip(&face.spec.valence)
                        .map(|(p, v)| p * v)
                        .sum::<f64>(),
                );
                face_raw = Some((raw, presence));
            }
            d.faces = reports;
        }
        if d.face_probs.is_none() {
            d.flags.push("no-face".into());
        }
        // Text branch.
        let has_words = text.chars().any(char::is_alphanumeric);
        if !has_words {
            d.flags.push("no-speech".into());
        }
        let text_started = std::time::Instant::now();
        if has_words && let Some(t) = &self.text {
            let e = embed(&self.bundle, &t.encoder, self.device, text)?;
            let mut logits = vec![f64::NEG_INFINITY; n];
            for (i, proto) in &t.prototypes {
                let cos: f32 = e.iter().zip(proto).map(|(a, b)| a * b).sum();
                logits[*i] = cos as f64 / t.spec.temperature;
            }
            d.text_probs = Some(softmax(&logits));
        }
        if has_words && let Some(v) = &self.bundle.vader {
            d.text_compound = Some(v.polarity(text).compound);
        }
        timings.push(("text", text_started.elapsed().as_secs_f64() * 1e3));
        // Emotion: weighted average of the branches present.
        let confidence = |p: &[f64]| p.iter().cloned().fold(0.0, f64::max);
        let wf = match (&self.face, &d.face_probs, &face_raw) {
            (Some(f), Some(p), Some((_, presence))) => f.spec.weight * presence * confidence(p),
            _ => 0.0,
        };
        let wt = match (&self.text, &d.text_probs) {
            (Some(t), Some(p)) => t.spec.weight * confidence(p),
            _ => 0.0,
        };
        d.weights = (wf, wt);
        let emotion = if wf + wt > 0.0 {
            let mut p = vec![0.0; n];
            for (w, probs) in [(wf, &d.face_probs), (wt, &d.text_probs)] {
                if let Some(probs) = probs {
                    p.iter_mut().zip(probs).for_each(|(a, b)| *a += w * b);
                }
            }
            p.iter_mut().for_each(|v| *v /= wf + wt);
            p
        } else {
            d.flags.push("no-evidence".into());
            let c = fusion.empty_confidence;
            self.emotion_labels
                .iter()
                .map(|l| {
                    if l == "neutral" {
                        c
                    } else {
                        (1.0 - c) / (n - 1).max(1) as f64
                    }
                })
                .collect()
        };
        // Heads in the bundle's order.
        let mut heads = Vec::new();
        for h in &self.bundle.manifest.heads {
            match h.name.as_str() {
                "emotion" => heads.push(emotion.clone()),
                "sentiment" => {
                    let s = fusion.sentiment.as_ref().expect("validated");
                    let presence = face_raw.as_ref().map(|(_, p)| *p);
                    let p = sentiment(s, d.text_compound, d.face_valence, presence);
                    heads.push(
                        h.labels
                            .iter()
                            .map(|l| match l.as_str() {
                                "negative" => p[0],
                                "neutral" => p[1],
                                _ => p[2],
                            })
                            .collect(),
                    );
                }
                other => return Err(format!("fusion cannot make head {other:?}")),
            }
        }
        Ok((heads, d))
    }

    /// Faces of the window: detection on every `detect_every`-th frame (or the
    /// upstream boxes), boxes held in between, linked into tracks, each crop
    /// classified; per-track mean probabilities. Also returns the dominant face's
    /// probabilities in the classifier's own labels.
    fn faces(
        &self,
        face: &FaceBranch,
        frames: &[Arc<RgbImage>],
        timings: &mut Timings,
    ) -> Result<(Vec<FaceReport>, Option<Vec<f64>>), String> {
        let started = std::time::Instant::now();
        let mut per_frame: Vec<Vec<FaceBox>> = Vec::with_capacity(frames.len());
        let mut upstream = false;
        let mut held: Vec<FaceBox> = Vec::new();
        for (k, f) in frames.iter().enumerate() {
            let boxes = if let Some(rois) = &f.faces {
                upstream = true;
                rois.iter()
                    .map(|r| FaceBox {
                        x1: r.x as f32,
                        y1: r.y as f32,
                        x2: (r.x + r.width) as f32,
                        y2: (r.y + r.height) as f32,
                        score: 1.0,
                        landmarks: None,
                    })
                    .collect()
            } else if k % face.spec.detect_every == 0 {
                let mut b = face.mtcnn.detect(f)?;
                b.sort_by(|a, c| c.area().total_cmp(&a.area()));
                b.truncate(face.spec.max_faces);
                held = b.clone();
                b
            } else {
                held.clone()
            };
            per_frame.push(boxes);
        }
        timings.push(("face-detect", started.elapsed().as_secs_f64() * 1e3));
        let started = std::time::Instant::now();
        let mut tracks = link(&per_frame, 0.3);
        tracks.truncate(face.spec.max_faces);
        if tracks.is_empty() {
            return Ok((Vec::new(), None));
        }
        let spec = CropSpec {
            size: face.input.width,
            margin: face.spec.margin,
        };
        let (scale, mean, std) = (
            face.input.scale as f32,
            face.input.mean[0] as f32,
            face.input.std[0] as f32,
        );
        let mut data = Vec::new();
        let mut owner = Vec::new();
        for (t, tr) in tracks.iter().enumerate() {
            for (k, b) in &tr.boxes {
                let crop = crop_gray(&frames[*k], b, spec);
                data.extend(crop.iter().map(|&v| (v as f32 * scale - mean) / std));
                owner.push(t);
            }
        }
        let size = spec.size as i64;
        let batch = Tensor::from_slice(&data)
            .reshape([owner.len() as i64, 1, size, size])
            .to_device(self.device);
        let out = face
            .classifier
            .forward_is(&[IValue::Tensor(batch)])
            .map_err(|e| format!("face classifier: {}", first_line(e)))?;
        let IValue::Tensor(out) = out else {
            return Err("face classifier: expected one tensor".into());
        };
        let labels = face.spec.labels.len();
        if out.size() != [owner.len() as i64, labels as i64] {
            return Err(format!(
                "face classifier: output shape {:?}, expected [{}, {labels}]",
                out.size(),
                owner.len()
            ));
        }
        let probs: Vec<f32> = Vec::try_from(
            out.to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .reshape([-1]),
        )
        .map_err(|e: tch::TchError| e.to_string())?;
        let n = self.emotion_labels.len();
        let mut reports = Vec::new();
        let mut dominant_raw = None;
        for (t, tr) in tracks.iter().enumerate() {
            let mut raw = vec![0.0f64; labels];
            let mut count = 0;
            for (row, _) in owner.iter().enumerate().filter(|(_, o)| **o == t) {
                raw.iter_mut()
                    .zip(&probs[row * labels..(row + 1) * labels])
                    .for_each(|(a, b)| *a += *b as f64);
                count += 1;
            }
            raw.iter_mut().for_each(|v| *v /= count as f64);
            let mut mapped = vec![0.0; n];
            for (i, p) in raw.iter().enumerate() {
                mapped[face.map[i]] += p;
            }
            let (fw, fh) = (frames[0].width as f64, frames[0].height as f64);
            let m = tr.boxes.len() as f64;
            let mean = |f: &dyn Fn(&FaceBox) -> f32| {
                tr.boxes.iter().map(|(_, b)| f(b) as f64).sum::<f64>() / m
            };
            let rect = [
                (mean(&|b| b.x1) / fw).clamp(0.0, 1.0),
                (mean(&|b| b.y1) / fh).clamp(0.0, 1.0),
                (mean(&|b| b.x2 - b.x1) / fw).clamp(0.0, 1.0),
                (mean(&|b| b.y2 - b.y1) / fh).clamp(0.0, 1.0),
            ];
            if t == 0 {
                dominant_raw = Some(raw);
            }
            reports.push(FaceReport {
                rect,
                frames: tr.boxes.len() as u32,
                score: mean(&|b| b.score),
                probs: mapped,
                upstream,
            });
        }
        timings.push(("face-classify", started.elapsed().as_secs_f64() * 1e3));
        Ok((reports, dominant_raw))
    }
}

/// Runs the face classifier on one blank crop: its output must have one value per
/// `fusion.face.labels` entry.
fn check_classifier(
    bundle: &Bundle,
    classifier: &CModule,
    spec: &FaceFusion,
    input: &VideoSpec,
    device: Device,
) -> Result<(), String> {
    let channels = input.channel_order.channels() as i64;
    let blank = Tensor::zeros(
        [1, channels, input.height as i64, input.width as i64],
        (Kind::Float, device),
    );
    let file = bundle
        .model_index(&spec.classifier)
        .map(|i| bundle.model_file(i, device).display().to_string())
        .unwrap_or_default();
    let out = tch::no_grad(|| classifier.forward_is(&[IValue::Tensor(blank)]))
        .map_err(|e| format!("{file}: forward on a blank face failed: {}", first_line(e)))?;
    let IValue::Tensor(out) = out else {
        return Err(format!("{file}: expected one output tensor"));
    };
    let want = [1, spec.labels.len() as i64];
    if out.size() != want {
        return Err(format!(
            "{file}: output shape {:?}, expected {want:?} (fusion.face.labels has {} labels)",
            out.size(),
            spec.labels.len()
        ));
    }
    Ok(())
}

/// The sentence embedding of `text` (the bundle's tokenizer, then the encoder).
fn embed(
    bundle: &Bundle,
    encoder: &CModule,
    device: Device,
    text: &str,
) -> Result<Vec<f32>, String> {
    let tok = bundle
        .text
        .as_ref()
        .ok_or("the text branch needs a tokenizer")?;
    let t = tok.encode(text).map_err(|e| e.to_string())?;
    let len = t.input_ids.len() as i64;
    let ids = Tensor::from_slice(&t.input_ids)
        .reshape([1, len])
        .to_device(device);
    let mask = Tensor::from_slice(&t.attention_mask)
        .reshape([1, len])
        .to_device(device);
    let out = encoder
        .forward_is(&[IValue::Tensor(ids), IValue::Tensor(mask)])
        .map_err(|e| format!("text encoder: {}", first_line(e)))?;
    let IValue::Tensor(out) = out else {
        return Err("text encoder: expected one tensor".into());
    };
    Vec::try_from(
        out.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .reshape([-1]),
    )
    .map_err(|e: tch::TchError| e.to_string())
}

/// Sentiment probabilities (negative, neutral, positive) from the transcript's VADER
/// compound and the face valence, weighted by presence: the fused score `s` in
/// [-1, 1] goes through softmax([-s, 2·band - |s|, s] / temperature), so |s| = band is
/// the neutral/polar boundary (VADER's ±0.05 convention).
pub fn sentiment(
    spec: &SentimentFusion,
    compound: Option<f64>,
    valence: Option<f64>,
    face_presence: Option<f64>,
) -> [f64; 3] {
    let mut num = 0.0;
    let mut den = 0.0;
    if let Some(c) = compound {
        num += spec.text_weight * c;
        den += spec.text_weight;
    }
    if let (Some(v), Some(p)) = (valence, face_presence) {
        num += spec.face_weight * p * v;
        den += spec.face_weight * p;
    }
    let s = if den > 0.0 { num / den } else { 0.0 };
    let t = spec.temperature;
    let p = softmax(&[-s / t, (2.0 * spec.neutral_band - s.abs()) / t, s / t]);
    [p[0], p[1], p[2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SentimentFusion {
        SentimentFusion {
            lexicon: String::new(),
            text_weight: 0.6,
            face_weight: 0.4,
            neutral_band: 0.05,
            temperature: 0.1,
        }
    }

    #[test]
    fn sentiment_follows_the_evidence() {
        let s = spec();
        let none = sentiment(&s, None, None, None);
        assert!(none[1] > none[0] && none[1] > none[2]);
        let happy = sentiment(&s, Some(0.8), Some(0.9), Some(1.0));
        assert!(happy[2] > 0.99);
        let angry_words = sentiment(&s, Some(-0.7), None, None);
        assert!(angry_words[0] > 0.99);
        // A smiling face with neutral words leans positive.
        let smile = sentiment(&s, Some(0.0), Some(0.9), Some(1.0));
        assert!(smile[2] > smile[1]);
        assert!((happy.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
