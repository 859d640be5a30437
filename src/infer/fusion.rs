//! Late fusion (a bundle with a `[fusion]` section): each branch predicts on its own —
//! faces (MTCNN + face-emotion CNN), words (zero-shot emotion from sentence
//! embeddings, VADER sentiment) — and the branches are combined with weights scaled by
//! each branch's presence and confidence. docs/default-bundle.md describes the rules.

use std::sync::Arc;

use tch::{CModule, Device, IValue, Kind, Tensor};

use super::ModelError;
use super::ModelOutput;
use crate::bundle::Between;
use crate::bundle::{
    Bundle, FaceFusion, FusionSpec, InputSpec, SentimentFusion, TextFusion, VideoSpec,
};
use crate::face::track::{Track, link};
use crate::face::{CropSpec, FaceBox, Mtcnn, MtcnnConfig, Runs, crop_gray, window_boxes};
use crate::media::RgbImage;
use crate::output::{FaceReport, FusionDetails, FusionFlag, argmax, softmax_f64 as softmax};

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
    /// Fitted embedding → emotion logits classifier.
    classifier: Option<CModule>,
}

impl FaceBranch {
    /// The `[fusion.face]` branch: its detector, its classifier (checked against the
    /// video input it reads) and its labels mapped onto the emotion head's.
    fn load(
        bundle: &Bundle,
        spec: &FaceFusion,
        device: Device,
        label_index: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Self, ModelError> {
        let config = MtcnnConfig {
            min_face: spec.min_face,
            thresholds: [spec.thresholds[0], spec.thresholds[1], spec.thresholds[2]],
            factor: spec.pyramid_factor,
        };
        let mtcnn = Mtcnn::from_bundle(
            bundle,
            &spec.detector,
            config,
            device,
            "fusion.face.detector",
        )?;
        let input = match bundle.manifest.inputs.get(&spec.input) {
            Some(InputSpec::Video(v)) => v.clone(),
            _ => {
                return Err(ModelError::Bundle(
                    "fusion.face.input is not a video input".into(),
                ));
            }
        };
        let classifier = load_module(bundle, &spec.classifier, device)?;
        check_classifier(bundle, &classifier, spec, &input, device)?;
        let map = spec
            .maps_to
            .iter()
            .map(|l| {
                label_index(l).ok_or_else(|| {
                    ModelError::Bundle(format!(
                        "fusion.face.maps_to: {l:?} is not a label of heads.emotion"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            mtcnn,
            classifier,
            map,
            spec: spec.clone(),
            input,
        })
    }
}

impl TextBranch {
    /// The `[fusion.text]` branch: the sentence encoder, each label's normalised
    /// prototype embedding, and the fitted classifier when there is one.
    fn load(
        bundle: &Bundle,
        spec: &TextFusion,
        device: Device,
        emotion_labels: &[String],
    ) -> Result<Self, ModelError> {
        let encoder = load_module(bundle, &spec.encoder, device)?;
        let mut prototypes = Vec::new();
        for (label, sentences) in &spec.prototypes {
            let mut sum: Vec<f32> = Vec::new();
            for s in sentences {
                let e = embed(bundle, &encoder, device, s)?;
                if sum.is_empty() {
                    sum = e;
                } else {
                    sum.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
                }
            }
            let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            sum.iter_mut().for_each(|v| *v /= norm);
            let i = emotion_labels
                .iter()
                .position(|x| x == label)
                .ok_or(ModelError::Bundle(
                    "prototype label not in heads.emotion".into(),
                ))?;
            prototypes.push((i, sum));
        }
        let classifier = match &spec.classifier {
            Some(name) => {
                let m = load_module(bundle, name, device)?;
                let width = embed(bundle, &encoder, device, "ok")?.len();
                check_linear(&m, width, emotion_labels.len(), device)
                    .map_err(|e| ModelError::Bundle(format!("fusion.text.classifier: {e}")))?;
                Some(m)
            }
            None => None,
        };
        Ok(Self {
            encoder,
            spec: spec.clone(),
            prototypes,
            classifier,
        })
    }
}

/// The face branch's findings for one window ([`FusionModel::face_stage`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaceStage {
    /// Each tracked face, the dominant one first.
    reports: Vec<FaceReport>,
    /// The dominant face's probabilities in the classifier's own labels.
    raw: Option<Vec<f64>>,
    /// Milliseconds of face detection and classification.
    pub(super) timings: Timings,
}

/// The loaded branches of a late-fusion bundle.
pub struct FusionModel {
    bundle: Arc<Bundle>,
    device: Device,
    face: Option<FaceBranch>,
    text: Option<TextBranch>,
    /// Fitted [embedding, compound, text emotion] → sentiment logits classifier.
    sentiment_head: Option<CModule>,
    emotion_labels: Vec<String>,
    /// The sentiment each emotion label implies (0 negative, 1 neutral, 2 positive),
    /// from `[fusion.sentiment] emotion_sentiment`; empty without a sentiment stage.
    polarities: Vec<usize>,
}

fn first_line(e: tch::TchError) -> String {
    super::first_line(&e)
}

fn load_module(bundle: &Bundle, name: &str, device: Device) -> Result<CModule, ModelError> {
    let i = bundle
        .model_index(name)
        .ok_or_else(|| ModelError::Bundle(format!("no model named {name:?}")))?;
    super::load_torchscript(&bundle.model_file(i, device), device)
}

impl FusionModel {
    /// Loads every branch of `bundle` on `device` and embeds the text prototypes.
    pub fn load(bundle: Arc<Bundle>, device: Device) -> Result<Self, ModelError> {
        let fusion = bundle.manifest.fusion.clone().ok_or(ModelError::Bundle(
            "the bundle has no [fusion] section".into(),
        ))?;
        let emotion_labels = bundle
            .manifest
            .head("emotion")
            .map(|h| h.labels.clone())
            .unwrap_or_default();
        let label_index = |l: &str| emotion_labels.iter().position(|x| x == l);
        let face = fusion
            .face
            .as_ref()
            .map(|spec| FaceBranch::load(&bundle, spec, device, &label_index))
            .transpose()?;
        let text = fusion
            .text
            .as_ref()
            .map(|spec| TextBranch::load(&bundle, spec, device, &emotion_labels))
            .transpose()?;
        let sentiment_head = match fusion
            .sentiment
            .as_ref()
            .and_then(|s| s.classifier.as_ref())
        {
            Some(name) => {
                let t = text.as_ref().ok_or(ModelError::Bundle(
                    "fusion.sentiment.classifier needs fusion.text".into(),
                ))?;
                let m = load_module(&bundle, name, device)?;
                let width =
                    embed(&bundle, &t.encoder, device, "ok")?.len() + 1 + emotion_labels.len();
                check_linear(&m, width, 3, device)
                    .map_err(|e| ModelError::Bundle(format!("fusion.sentiment.classifier: {e}")))?;
                Some(m)
            }
            None => None,
        };
        let polarities = fusion.sentiment.as_ref().map_or_else(Vec::new, |s| {
            emotion_labels.iter().map(|l| polarity(s, l)).collect()
        });
        Ok(Self {
            bundle,
            device,
            face,
            text,
            sentiment_head,
            emotion_labels,
            polarities,
        })
    }

    /// The face branch alone on a window's sampled frames: what [`FusionModel::analyse`]
    /// needs from the picture, computed while the window's words are still being
    /// transcribed. `pause` is called between its steps (full detections, then the
    /// classification): other work may run there, and its time is not counted in the
    /// stage's timings.
    pub fn face_stage(
        &self,
        frames: &[Arc<RgbImage>],
        pause: &mut dyn FnMut(),
    ) -> Result<FaceStage, ModelError> {
        let Some(face) = &self.face else {
            return Ok(FaceStage::default());
        };
        let mut timings = Timings::new();
        let (reports, raw) = tch::no_grad(|| self.faces(face, frames, &mut timings, pause))?;
        Ok(FaceStage {
            reports,
            raw,
            timings,
        })
    }

    /// Analyses one window: its sampled frames (empty without video) and transcript.
    /// `faces`: the window's [`FusionModel::face_stage`] when already computed.
    pub fn analyse(
        &self,
        frames: &[Arc<RgbImage>],
        text: &str,
        faces: Option<FaceStage>,
    ) -> Result<ModelOutput, ModelError> {
        let mut timings = Timings::new();
        let (probs, details) =
            tch::no_grad(|| self.analyse_inner(frames, text, faces, &mut timings))?;
        Ok(ModelOutput {
            frames: vec![Vec::new(); probs.len()],
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
        faces: Option<FaceStage>,
        timings: &mut Timings,
    ) -> Result<(Vec<Vec<f64>>, FusionDetails), ModelError> {
        let fusion = self
            .bundle
            .manifest
            .fusion
            .as_ref()
            .expect("checked at load");
        let mut d = FusionDetails::default();
        // Face branch.
        let mut face_raw: Option<(Vec<f64>, f64)> = None; // (classifier probs, presence)
        if let Some(face) = &self.face {
            let stage = match faces {
                Some(stage) => stage,
                None => self.face_stage(frames, &mut || {})?,
            };
            timings.extend(stage.timings);
            let (reports, raw) = (stage.reports, stage.raw);
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
            d.flags.insert(FusionFlag::NoFace);
        }
        // Text branch.
        let has_words = text.chars().any(char::is_alphanumeric);
        if !has_words {
            d.flags.insert(FusionFlag::NoSpeech);
        }
        let text_started = std::time::Instant::now();
        if has_words && let Some(v) = &self.bundle.vader {
            d.text_compound = Some(v.polarity(text).compound);
        }
        // The words' sentiment from the fitted classifier, when the bundle has one.
        let mut text_sentiment = None;
        if has_words && let Some(t) = &self.text {
            let e = embed(&self.bundle, &t.encoder, self.device, text)?;
            let probs = self.text_emotion(t, &e)?;
            if let Some(head) = &self.sentiment_head {
                let mut features = e.clone();
                features.push(d.text_compound.unwrap_or(0.0) as f32);
                features.extend(probs.iter().map(|&p| p as f32));
                let logits = run_linear(head, &features, self.device)?;
                text_sentiment = Some(softmax(&logits));
            }
            d.text_probs = Some(probs);
        }
        timings.push(("text", text_started.elapsed().as_secs_f64() * 1e3));
        let presence = face_raw.as_ref().map(|(_, p)| *p);
        let mut emotion = self.fused_emotion(fusion, &mut d, presence);
        let mut sentiment = fusion
            .sentiment
            .as_ref()
            .map(|s| self.fused_sentiment(s, &d, presence, text_sentiment.as_deref(), &emotion));
        if let (Some(s), Some(p)) = (&fusion.sentiment, sentiment.as_mut())
            && s.consistent
        {
            agree(&mut emotion, p, &self.polarities);
        }
        // Heads in the bundle's order.
        let mut heads = Vec::new();
        for h in &self.bundle.manifest.heads {
            match h.name.as_str() {
                "emotion" => heads.push(emotion.clone()),
                "sentiment" => {
                    let p = sentiment.expect("validated: a sentiment head needs its fusion");
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
                other => {
                    return Err(ModelError::Bundle(format!(
                        "fusion cannot make head {other:?}"
                    )));
                }
            }
        }
        Ok((heads, d))
    }

    /// Emotion: the average of the branches present, each weighted by its bundle
    /// weight and its confidence (the face's also by its presence in the frames); with
    /// no evidence, `empty_confidence` on neutral (flagged `no-evidence`).
    fn fused_emotion(
        &self,
        fusion: &FusionSpec,
        d: &mut FusionDetails,
        presence: Option<f64>,
    ) -> Vec<f64> {
        let n = self.emotion_labels.len();
        let confidence = |p: &[f64]| p.iter().cloned().fold(0.0, f64::max);
        // Each branch calibrated first (the details keep what the branches said).
        let face = match (&self.face, &d.face_probs) {
            (Some(f), Some(p)) => Some(trust(p, f.spec.reliability)),
            _ => None,
        };
        let text = match (&self.text, &d.text_probs) {
            (Some(t), Some(p)) => Some(calibrate(p, t.spec.calibration)),
            _ => None,
        };
        let wf = match (&self.face, &face, presence) {
            (Some(f), Some(p), Some(presence)) => f.spec.weight * presence * confidence(p),
            _ => 0.0,
        };
        let wt = match (&self.text, &text) {
            (Some(t), Some(p)) => t.spec.weight * confidence(p),
            _ => 0.0,
        };
        d.weights = (wf, wt);
        if wf + wt > 0.0 {
            let mut p = vec![0.0; n];
            for (w, probs) in [(wf, &face), (wt, &text)] {
                if let Some(probs) = probs {
                    p.iter_mut().zip(probs).for_each(|(a, b)| *a += w * b);
                }
            }
            p.iter_mut().for_each(|v| *v /= wf + wt);
            return p;
        }
        d.flags.insert(FusionFlag::NoEvidence);
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
    }

    /// Sentiment (negative, neutral, positive) from the words (the fitted classifier's
    /// answer when there is one, else their compound score) and the face's valence,
    /// mixed with the sentiment the fused `emotion` implies.
    fn fused_sentiment(
        &self,
        s: &SentimentFusion,
        d: &FusionDetails,
        presence: Option<f64>,
        text_sentiment: Option<&[f64]>,
        emotion: &[f64],
    ) -> [f64; 3] {
        let reliability = self.face.as_ref().map_or(1.0, |f| f.spec.reliability);
        let mut p = match text_sentiment {
            Some(words) => sentiment_mixed(s, words, d.face_valence, presence, reliability),
            None => sentiment(s, d.text_compound, d.face_valence, presence, reliability),
        };
        // Consistent with the fused emotion: mix in the sentiment it implies.
        if s.emotion_weight > 0.0 {
            let mut implied = [0.0f64; 3];
            for (&k, q) in self.polarities.iter().zip(emotion) {
                implied[k] += q;
            }
            let w = s.emotion_weight;
            for (a, b) in p.iter_mut().zip(implied) {
                *a = (1.0 - w) * *a + w * b;
            }
        }
        p
    }

    /// Text emotion probabilities (emotion head order) of an embedding: the fitted
    /// classifier, the prototypes, or both mixed by `prototype_weight`.
    fn text_emotion(&self, t: &TextBranch, e: &[f32]) -> Result<Vec<f64>, ModelError> {
        let n = self.emotion_labels.len();
        let prototypes = (!t.prototypes.is_empty()).then(|| {
            let mut logits = vec![f64::NEG_INFINITY; n];
            for (i, proto) in &t.prototypes {
                let cos: f32 = e.iter().zip(proto).map(|(a, b)| a * b).sum();
                logits[*i] = cos as f64 / t.spec.temperature;
            }
            softmax(&logits)
        });
        let Some(classifier) = &t.classifier else {
            return prototypes
                .ok_or_else(|| ModelError::Bundle("the text branch has no prototypes".into()));
        };
        let head = softmax(&run_linear(classifier, e, self.device)?);
        let w = t.spec.prototype_weight;
        Ok(match prototypes {
            Some(p) if w > 0.0 => head
                .iter()
                .zip(&p)
                .map(|(h, p)| (1.0 - w) * h + w * p)
                .collect(),
            _ => head,
        })
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
        pause: &mut dyn FnMut(),
    ) -> Result<(Vec<FaceReport>, Option<Vec<f64>>), ModelError> {
        let started = std::time::Instant::now();
        let mut paused = std::time::Duration::ZERO;
        let mut timed_pause = || {
            let at = std::time::Instant::now();
            pause();
            paused += at.elapsed();
        };
        let upstream = frames.iter().any(|f| f.faces.is_some());
        let mut per_frame = window_boxes(
            &face.mtcnn,
            frames,
            frames.len(),
            face.spec.detect_every,
            Between::Hold,
            // In the inference thread, one after the other: side by side (threads
            // spawned per window) cost ~45 MB more per extra camera for no
            // measurable lag gain (docs/benchmarks.md).
            Runs::InTurn(&mut timed_pause),
        )?;
        for (boxes, f) in per_frame.iter_mut().zip(frames) {
            if f.faces.is_none() {
                boxes.sort_by(|a, c| c.area().total_cmp(&a.area()));
                boxes.truncate(face.spec.max_faces);
            }
        }
        timed_pause();
        let detect = started.elapsed().saturating_sub(paused);
        timings.push(("face-detect", detect.as_secs_f64() * 1e3));
        let started = std::time::Instant::now();
        let mut tracks = link(&per_frame, 0.3);
        tracks.truncate(face.spec.max_faces);
        if tracks.is_empty() {
            return Ok((Vec::new(), None));
        }
        let (probs, owner) = self.classify_tracks(face, frames, &tracks)?;
        let labels = face.spec.labels.len();
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
                id: None,
                frame_probs: Vec::new(),
                smoothed: Vec::new(),
                stable: None,
            });
        }
        timings.push(("face-classify", started.elapsed().as_secs_f64() * 1e3));
        Ok((reports, dominant_raw))
    }

    /// Every track's face crops through the classifier in one batch: the
    /// probabilities, `labels` per crop, and the track each crop belongs to.
    fn classify_tracks(
        &self,
        face: &FaceBranch,
        frames: &[Arc<RgbImage>],
        tracks: &[Track],
    ) -> Result<(Vec<f32>, Vec<usize>), ModelError> {
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
            .map_err(|e| ModelError::Run(format!("face classifier: {}", first_line(e))))?;
        let IValue::Tensor(out) = out else {
            return Err(ModelError::Run(
                "face classifier: expected one tensor".into(),
            ));
        };
        let labels = face.spec.labels.len();
        if out.size() != [owner.len() as i64, labels as i64] {
            return Err(ModelError::Run(format!(
                "face classifier: output shape {:?}, expected [{}, {labels}]",
                out.size(),
                owner.len()
            )));
        }
        let probs: Vec<f32> = Vec::try_from(
            out.to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .reshape([-1]),
        )
        .map_err(|e: tch::TchError| ModelError::Run(e.to_string()))?;
        Ok((probs, owner))
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
) -> Result<(), ModelError> {
    let channels = input.channel_order.channels() as i64;
    let blank = Tensor::zeros(
        [1, channels, input.height as i64, input.width as i64],
        (Kind::Float, device),
    );
    let file = bundle
        .model_index(&spec.classifier)
        .map(|i| bundle.model_file(i, device).display().to_string())
        .unwrap_or_default();
    let out = tch::no_grad(|| classifier.forward_is(&[IValue::Tensor(blank)])).map_err(|e| {
        ModelError::Bundle(format!(
            "{file}: forward on a blank face failed: {}",
            first_line(e)
        ))
    })?;
    let IValue::Tensor(out) = out else {
        return Err(ModelError::Bundle(format!(
            "{file}: expected one output tensor"
        )));
    };
    let want = [1, spec.labels.len() as i64];
    if out.size() != want {
        return Err(ModelError::Bundle(format!(
            "{file}: output shape {:?}, expected {want:?} (fusion.face.labels has {} labels)",
            out.size(),
            spec.labels.len()
        )));
    }
    Ok(())
}

/// A fitted head's logits for one feature vector.
fn run_linear(head: &CModule, features: &[f32], device: Device) -> Result<Vec<f64>, ModelError> {
    let x = Tensor::from_slice(features)
        .reshape([1, features.len() as i64])
        .to_device(device);
    let out = head
        .forward_is(&[IValue::Tensor(x)])
        .map_err(|e| ModelError::Run(format!("text head: {}", first_line(e))))?;
    let IValue::Tensor(out) = out else {
        return Err(ModelError::Run("text head: expected one tensor".into()));
    };
    let v: Vec<f32> = Vec::try_from(
        out.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .reshape([-1]),
    )
    .map_err(|e: tch::TchError| ModelError::Run(e.to_string()))?;
    Ok(v.into_iter().map(f64::from).collect())
}

/// A fitted head must map `inputs` features to `outputs` logits.
fn check_linear(
    head: &CModule,
    inputs: usize,
    outputs: usize,
    device: Device,
) -> Result<(), ModelError> {
    let out = tch::no_grad(|| run_linear(head, &vec![0.0; inputs], device))
        .map_err(|e| ModelError::Run(format!("on {inputs} features: {e}")))?;
    if out.len() != outputs {
        return Err(ModelError::Run(format!(
            "{} outputs, expected {outputs}",
            out.len()
        )));
    }
    Ok(())
}

/// The sentence embedding of `text` (the bundle's tokenizer, then the encoder).
fn embed(
    bundle: &Bundle,
    encoder: &CModule,
    device: Device,
    text: &str,
) -> Result<Vec<f32>, ModelError> {
    let tok = bundle.text.as_ref().ok_or(ModelError::Bundle(
        "the text branch needs a tokenizer".into(),
    ))?;
    let t = tok
        .encode(text)
        .map_err(|e| ModelError::Bundle(e.to_string()))?;
    let len = t.input_ids.len() as i64;
    let ids = Tensor::from_slice(&t.input_ids)
        .reshape([1, len])
        .to_device(device);
    let mask = Tensor::from_slice(&t.attention_mask)
        .reshape([1, len])
        .to_device(device);
    let out = encoder
        .forward_is(&[IValue::Tensor(ids), IValue::Tensor(mask)])
        .map_err(|e| ModelError::Run(format!("text encoder: {}", first_line(e))))?;
    let IValue::Tensor(out) = out else {
        return Err(ModelError::Run("text encoder: expected one tensor".into()));
    };
    Vec::try_from(
        out.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .reshape([-1]),
    )
    .map_err(|e: tch::TchError| ModelError::Run(e.to_string()))
}

/// A branch's distribution under a calibration temperature `t`: `p^(1/t)`,
/// renormalised (`t` = 1 leaves it as it is).
pub fn calibrate(p: &[f64], t: f64) -> Vec<f64> {
    if t == 1.0 {
        return p.to_vec();
    }
    softmax(&p.iter().map(|v| v.max(1e-12).ln() / t).collect::<Vec<_>>())
}

/// The polarity an emotion label implies: 0 negative, 1 neutral, 2 positive.
fn polarity(s: &SentimentFusion, label: &str) -> usize {
    match s.emotion_sentiment.get(label).map(String::as_str) {
        Some("negative") => 0,
        Some("positive") => 2,
        _ => 1,
    }
}

/// Makes the two heads agree when the top emotion's polarity (`polarities`: each
/// emotion label's) is the opposite of the top sentiment: of the two ways out — keep
/// the emotion and take the best sentiment that is not its opposite, or keep the
/// sentiment and take the best emotion whose polarity is not its opposite — the one
/// whose pair is the more probable wins, and the head that changes becomes its
/// distribution given the constraint.
pub fn agree(emotion: &mut [f64], sentiment: &mut [f64; 3], polarities: &[usize]) {
    if emotion.is_empty() {
        return;
    }
    let (top_e, top_s) = (argmax(emotion), argmax(sentiment));
    let pe = polarities[top_e];
    if pe == 1 || top_s != 2 - pe {
        return;
    }
    // Keep the emotion: the best sentiment of the other two.
    let kept_emotion = emotion[top_e] * sentiment[pe].max(sentiment[1]);
    // Keep the sentiment: the best emotion not of polarity `pe`, and their share.
    let allowed = || (0..emotion.len()).filter(|&i| polarities[i] != pe);
    let other = allowed().max_by(|&a, &b| emotion[a].total_cmp(&emotion[b]));
    let rest: f64 = allowed().map(|i| emotion[i]).sum();
    match other {
        Some(o) if rest > 1e-12 && emotion[o] * sentiment[top_s] > kept_emotion => {
            for (p, &pol) in emotion.iter_mut().zip(polarities) {
                *p = if pol == pe { 0.0 } else { *p / rest };
            }
        }
        _ => *sentiment = not_opposite(*sentiment, pe),
    }
}

/// Sentiment (negative, neutral, positive) that does not contradict an emotion of
/// `polarity` (0 negative, 1 neutral, 2 positive): when its top is the opposite
/// polarity, the distribution given "not the opposite" (that probability shared out
/// over the other two in proportion).
pub fn not_opposite(p: [f64; 3], polarity: usize) -> [f64; 3] {
    let opposite = match polarity {
        0 => 2,
        2 => 0,
        _ => return p,
    };
    if argmax(&p) != opposite {
        return p;
    }
    let rest = 1.0 - p[opposite];
    if rest <= 1e-12 {
        // Nothing left to share: the emotion's polarity says it.
        let mut q = [0.0; 3];
        q[polarity] = 1.0;
        return q;
    }
    let mut q = p.map(|v| v / rest);
    q[opposite] = 0.0;
    q
}

/// A branch's distribution trusted to `reliability`: `r·p + (1 − r)/n`.
pub fn trust(p: &[f64], reliability: f64) -> Vec<f64> {
    let uniform = (1.0 - reliability) / p.len().max(1) as f64;
    p.iter().map(|v| reliability * v + uniform).collect()
}

/// Sentiment probabilities (negative, neutral, positive) from the transcript's VADER
/// compound and the face valence, weighted by presence: the fused score `s` in
/// [-1, 1] goes through softmax([-s, 2·band - |s|, s] / temperature), so |s| = band is
/// the neutral/polar boundary (VADER's ±0.05 convention). A face alone (no words) is
/// trusted to `face_reliability` as in [`trust`].
pub fn sentiment(
    spec: &SentimentFusion,
    compound: Option<f64>,
    valence: Option<f64>,
    face_presence: Option<f64>,
    face_reliability: f64,
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
    let mut p = softmax(&[-s / t, (2.0 * spec.neutral_band - s.abs()) / t, s / t]);
    if compound.is_none() && valence.is_some() && face_presence.is_some() {
        // The face alone: trusted as far as the face classifier is.
        p = trust(&p, face_reliability);
    }
    [p[0], p[1], p[2]]
}

/// Sentiment probabilities (negative, neutral, positive) from the words' classifier
/// and the face valence: a weighted average (linear opinion pool) of the words'
/// distribution and the face's (`softmax([-v, 2·band - |v|, v] / temperature)`,
/// trusted to `face_reliability` as in [`trust`]), the face weighed by how long it was
/// seen.
pub fn sentiment_mixed(
    spec: &SentimentFusion,
    words: &[f64],
    valence: Option<f64>,
    face_presence: Option<f64>,
    face_reliability: f64,
) -> [f64; 3] {
    let mut p = [0.0f64; 3];
    for (a, w) in p.iter_mut().zip(words) {
        *a = spec.text_weight * w;
    }
    let mut den = spec.text_weight;
    if let (Some(v), Some(presence)) = (valence, face_presence) {
        let t = spec.temperature;
        let face = trust(
            &softmax(&[-v / t, (2.0 * spec.neutral_band - v.abs()) / t, v / t]),
            face_reliability,
        );
        let wf = spec.face_weight * presence;
        for (a, f) in p.iter_mut().zip(&face) {
            *a += wf * f;
        }
        den += wf;
    }
    p.map(|a| a / den.max(1e-12))
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
            classifier: None,
            emotion_weight: 0.0,
            emotion_sentiment: Default::default(),
            consistent: false,
        }
    }

    #[test]
    fn sentiment_follows_the_evidence() {
        let s = spec();
        let none = sentiment(&s, None, None, None, 1.0);
        assert!(none[1] > none[0] && none[1] > none[2]);
        let happy = sentiment(&s, Some(0.8), Some(0.9), Some(1.0), 1.0);
        assert!(happy[2] > 0.99);
        let angry_words = sentiment(&s, Some(-0.7), None, None, 1.0);
        assert!(angry_words[0] > 0.99);
        // A smiling face with neutral words leans positive.
        let smile = sentiment(&s, Some(0.0), Some(0.9), Some(1.0), 1.0);
        assert!(smile[2] > smile[1]);
        assert!((happy.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn mixed_sentiment_follows_words_and_face() {
        let s = spec();
        let sad_words = [0.8, 0.15, 0.05];
        // Words alone: their distribution.
        let p = sentiment_mixed(&s, &sad_words, None, None, 1.0);
        assert!((p[0] - 0.8).abs() < 1e-9 && (p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        // A smiling face pulls towards positive but sad words still win.
        let p = sentiment_mixed(&s, &sad_words, Some(0.9), Some(1.0), 1.0);
        assert!(p[0] > p[2], "{p:?}");
        // Neutral words and a big smile: leaning positive, not negative.
        let p = sentiment_mixed(&s, &[0.1, 0.8, 0.1], Some(0.9), Some(1.0), 1.0);
        assert!(p[2] > 0.4 && p[2] > 4.0 * p[0], "{p:?}");
    }

    #[test]
    fn calibration_sharpens_or_softens_without_changing_the_order() {
        let p = [0.5, 0.3, 0.2];
        assert_eq!(calibrate(&p, 1.0), p.to_vec());
        let sharp = calibrate(&p, 0.5);
        let soft = calibrate(&p, 2.0);
        for q in [&sharp, &soft] {
            assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(q[0] > q[1] && q[1] > q[2], "{q:?}");
        }
        // p^(1/t): t = 0.5 squares the ratios.
        assert!((sharp[0] / sharp[1] - (0.5f64 / 0.3).powi(2)).abs() < 1e-9);
        assert!(sharp[0] > p[0] && soft[0] < p[0]);
        // A zero stays (almost) zero and nothing is NaN.
        assert!(calibrate(&[1.0, 0.0], 2.0).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn a_trusted_branch_never_claims_certainty() {
        let certain = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let q = trust(&certain, 0.6);
        assert!((q[1] - (0.6 + 0.4 / 7.0)).abs() < 1e-12, "{q:?}");
        assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(trust(&certain, 1.0), certain.to_vec());
    }

    #[test]
    fn sentiment_never_contradicts_the_emotion() {
        // Sad emotion, sentiment leaning positive: positive is shared out.
        let q = not_opposite([0.2, 0.3, 0.5], 0);
        assert_eq!(q[2], 0.0);
        assert!(
            (q[0] - 0.4).abs() < 1e-12 && (q[1] - 0.6).abs() < 1e-12,
            "{q:?}"
        );
        // Joy, sentiment negative: the same the other way.
        let q = not_opposite([0.7, 0.1, 0.2], 2);
        assert_eq!(q[0], 0.0);
        assert!(q[2] > q[1]);
        // Agreeing, neutral-topped or neutral emotion: unchanged.
        assert_eq!(not_opposite([0.5, 0.2, 0.3], 0), [0.5, 0.2, 0.3]);
        assert_eq!(not_opposite([0.3, 0.4, 0.3], 0), [0.3, 0.4, 0.3]);
        assert_eq!(not_opposite([0.1, 0.1, 0.8], 1), [0.1, 0.1, 0.8]);
        // Certain of the opposite: the emotion's polarity.
        assert_eq!(not_opposite([0.0, 0.0, 1.0], 0), [1.0, 0.0, 0.0]);
    }

    #[test]
    fn the_more_probable_head_decides_a_contradiction() {
        // Labels: anger (−), joy (+), neutral, sadness (−).
        let pol = [0, 2, 1, 0];
        // A sure sadness against a weak positive: the sentiment gives way.
        let (mut e, mut s) = (vec![0.05, 0.1, 0.05, 0.8], [0.3, 0.3, 0.4]);
        agree(&mut e, &mut s, &pol);
        assert_eq!(e, vec![0.05, 0.1, 0.05, 0.8]);
        assert_eq!(s[2], 0.0);
        assert!(
            (s[0] - 0.5).abs() < 1e-12 && (s[1] - 0.5).abs() < 1e-12,
            "{s:?}"
        );
        // A weak sadness against a sure positive with joy close behind: the emotion
        // gives way (joy), the sentiment stays.
        let (mut e, mut s) = (vec![0.05, 0.35, 0.1, 0.5], [0.05, 0.05, 0.9]);
        agree(&mut e, &mut s, &pol);
        assert_eq!(s, [0.05, 0.05, 0.9]);
        assert_eq!((e[0], e[3]), (0.0, 0.0));
        assert!(
            (e.iter().sum::<f64>() - 1.0).abs() < 1e-12 && e[1] > e[2],
            "{e:?}"
        );
        // No contradiction: nothing changes.
        let (mut e, mut s) = (vec![0.1, 0.7, 0.1, 0.1], [0.1, 0.2, 0.7]);
        agree(&mut e, &mut s, &pol);
        assert_eq!((e, s), (vec![0.1, 0.7, 0.1, 0.1], [0.1, 0.2, 0.7]));
    }
}
