//! Turning a window into the model's input tensors, exactly as the bundle declares:
//! frame layout, channel order, scaling and normalisation; mel features with their
//! normalisation and fixed length; token ids and attention mask.

use std::collections::BTreeMap;

use super::ModelError;
use crate::bundle::{
    Bundle, ChannelOrder, FrameDtype, FrameLayout, InputSpec, MelNormalize, VideoSpec,
};
use crate::media::RgbImage;
use crate::media::audio::time_to_sample;
use crate::output::FaceReport;
use crate::window::WindowJob;

/// One input tensor for a single window (no batch dimension).
#[derive(Clone, Debug, PartialEq)]
pub enum InputTensor {
    /// float32 values.
    F32 {
        /// Shape without the batch dimension.
        shape: Vec<i64>,
        /// Row-major values.
        data: Vec<f32>,
    },
    /// int64 values (token ids, masks).
    I64 {
        /// Shape without the batch dimension.
        shape: Vec<i64>,
        /// Row-major values.
        data: Vec<i64>,
    },
    /// uint8 values (raw pixels, `dtype = "uint8"`).
    U8 {
        /// Shape without the batch dimension.
        shape: Vec<i64>,
        /// Row-major values.
        data: Vec<u8>,
    },
}

impl InputTensor {
    /// Shape without the batch dimension.
    pub fn shape(&self) -> &[i64] {
        match self {
            InputTensor::F32 { shape, .. }
            | InputTensor::I64 { shape, .. }
            | InputTensor::U8 { shape, .. } => shape,
        }
    }

    /// `parts` (of one element type and shape) stacked along a new first dimension.
    pub fn stack(parts: &[&InputTensor]) -> Result<InputTensor, ModelError> {
        let first = parts
            .first()
            .ok_or(ModelError::Input("nothing to stack".into()))?;
        let mut shape = vec![parts.len() as i64];
        shape.extend_from_slice(first.shape());
        if parts.iter().any(|p| p.shape() != first.shape()) {
            return Err(ModelError::Input("tensors of different shapes".into()));
        }
        fn cat<T: Copy>(
            parts: &[&InputTensor],
            pick: impl Fn(&InputTensor) -> Option<&[T]>,
        ) -> Result<Vec<T>, ModelError> {
            let mut out = Vec::new();
            for p in parts {
                out.extend_from_slice(pick(p).ok_or(ModelError::Input(
                    "tensors of different element types".into(),
                ))?);
            }
            Ok(out)
        }
        Ok(match first {
            InputTensor::F32 { .. } => InputTensor::F32 {
                shape,
                data: cat(parts, |t| match t {
                    InputTensor::F32 { data, .. } => Some(data),
                    _ => None,
                })?,
            },
            InputTensor::I64 { .. } => InputTensor::I64 {
                shape,
                data: cat(parts, |t| match t {
                    InputTensor::I64 { data, .. } => Some(data),
                    _ => None,
                })?,
            },
            InputTensor::U8 { .. } => InputTensor::U8 {
                shape,
                data: cat(parts, |t| match t {
                    InputTensor::U8 { data, .. } => Some(data),
                    _ => None,
                })?,
            },
        })
    }

    /// The values as a libtorch tensor of this shape (on the CPU).
    pub fn to_tch(&self) -> Result<tch::Tensor, ModelError> {
        let t = match self {
            InputTensor::F32 { data, .. } => tch::Tensor::from_slice(data),
            InputTensor::I64 { data, .. } => tch::Tensor::from_slice(data),
            InputTensor::U8 { data, .. } => tch::Tensor::from_slice(data),
        };
        t.f_reshape(self.shape())
            .map_err(|e| ModelError::Input(super::first_line(&e)))
    }
}

/// All inputs of one window, by input name, plus the text they encode.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// Tensors by the bundle's input names.
    pub inputs: BTreeMap<String, InputTensor>,
    /// The text the model saw (transcript or the bundle's filler).
    pub text: String,
    /// The window's sampled frames, for fusion bundles (which crop faces themselves).
    pub frames: Vec<std::sync::Arc<RgbImage>>,
    /// Running time of each sampled frame (`None`: padding); per-frame heads report it.
    pub frame_times: Vec<Option<u64>>,
    /// `[faces]` bundles: each tracked face's sequence (the model runs once per face;
    /// none: the no-face result). `None` for other bundles.
    pub faces: Option<Vec<PreparedFace>>,
    /// Milliseconds spent preparing, by stage (face detection and crops).
    pub timings: Vec<(String, f64)>,
    /// Fusion bundles: the window's face branch when it ran ahead of the transcript
    /// ([`super::Model::start_faces`]).
    pub face_stage: Option<super::fusion::FaceStage>,
}

/// One face's input for a `[faces]` bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedFace {
    /// The face input's tensor: the face's T crops.
    pub tensor: InputTensor,
    /// The crops themselves (debug dumps write them).
    pub crops: Vec<RgbImage>,
    /// Where the face is and how often it was seen (probabilities not yet known).
    pub report: FaceReport,
}

/// The frames a fusion bundle's face branch sees: the window's sampled frames without
/// the padding (at least one when there is video).
pub fn fusion_frames(job: &WindowJob) -> Vec<std::sync::Arc<RgbImage>> {
    job.frames
        .as_ref()
        .map(|sel| sel.real_images())
        .unwrap_or_default()
}

/// Builds every input the bundle's models take from `job` and `text` (`None`: no
/// transcript, the bundle's filler is used). A missing video or audio input becomes
/// black frames or silence, as the reference pipeline pads.
pub fn prepare(
    bundle: &Bundle,
    job: &WindowJob,
    text: Option<&str>,
) -> Result<Prepared, ModelError> {
    let mut inputs = BTreeMap::new();
    let frame_times = job
        .frames
        .as_ref()
        .map(|sel| sel.times.clone())
        .unwrap_or_default();
    let text = text
        .map(str::to_owned)
        .or_else(|| bundle.manifest.text.as_ref().map(|t| t.filler.clone()))
        .unwrap_or_default();
    if bundle.is_fusion() {
        // The fusion stage detects and crops faces and encodes text itself.
        let frames = fusion_frames(job);
        return Ok(Prepared {
            inputs,
            text,
            frames,
            frame_times,
            faces: None,
            timings: Vec::new(),
            face_stage: None,
        });
    }
    let mut tokens = None;
    let face_input = bundle.manifest.faces.as_ref().map(|f| f.input.as_str());
    for (name, spec) in &bundle.manifest.inputs {
        let tensor = match spec {
            InputSpec::Video(v) => {
                if face_input == Some(name.as_str()) {
                    // Each face's crops are this input (Model::prepare adds them).
                    continue;
                }
                let images = match &job.frames {
                    Some(sel) => sel.images(),
                    None => {
                        let black = std::sync::Arc::new(RgbImage::black(v.width, v.height));
                        vec![black; v.frames]
                    }
                };
                let frames: Vec<&RgbImage> = images.iter().map(|f| f.as_ref()).collect();
                frames_tensor(name, v, &frames)?
            }
            InputSpec::Mel(m) => {
                let mel = bundle
                    .mel(name)
                    .ok_or_else(|| ModelError::Input(format!("{name}: no mel transform")))?;
                let silence;
                let samples: &[f32] = match &job.audio {
                    Some(a) if a.rate == m.sample_rate => &a.samples,
                    Some(a) => {
                        return Err(ModelError::Input(format!(
                            "{name}: audio is {} Hz, the bundle needs {}",
                            a.rate, m.sample_rate
                        )));
                    }
                    None => {
                        let n = time_to_sample(job.span.end - job.span.start, m.sample_rate);
                        silence = vec![0.0; n as usize];
                        &silence
                    }
                };
                let mut spec = mel.compute(samples);
                if m.normalize == MelNormalize::PerClip {
                    spec.normalize_per_clip();
                }
                if let Some(frames) = m.frames {
                    spec.fit_frames(frames);
                }
                let mut shape = vec![spec.n_mels as i64, spec.frames as i64];
                if m.channel_dim {
                    shape.insert(0, 1);
                }
                InputTensor::F32 {
                    shape,
                    data: spec.data,
                }
            }
            InputSpec::TextIds | InputSpec::TextMask => {
                if tokens.is_none() {
                    let enc = bundle.text.as_ref().ok_or_else(|| {
                        ModelError::Input(format!("{name}: bundle has no tokenizer"))
                    })?;
                    tokens = Some(
                        enc.encode(&text)
                            .map_err(|e| ModelError::Input(format!("{name}: {e}")))?,
                    );
                }
                let t = tokens.as_ref().expect("just set");
                let data = if matches!(spec, InputSpec::TextIds) {
                    t.input_ids.clone()
                } else {
                    t.attention_mask.clone()
                };
                InputTensor::I64 {
                    shape: vec![data.len() as i64],
                    data,
                }
            }
        };
        inputs.insert(name.clone(), tensor);
    }
    Ok(Prepared {
        inputs,
        text,
        frames: Vec::new(),
        frame_times,
        faces: face_input.map(|_| Vec::new()),
        timings: Vec::new(),
        face_stage: None,
    })
}

/// The frames tensor of video input `name` from exactly `v.frames` images of the
/// input's size: channel order, layout, then raw bytes or scaled and normalised floats.
pub fn frames_tensor(
    name: &str,
    v: &VideoSpec,
    frames: &[&RgbImage],
) -> Result<InputTensor, ModelError> {
    if frames.len() != v.frames {
        return Err(ModelError::Input(format!(
            "{name}: window has {} frames, the bundle needs {}",
            frames.len(),
            v.frames
        )));
    }
    let order: [usize; 3] = match v.channel_order {
        ChannelOrder::Rgb | ChannelOrder::Gray => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let gray = v.channel_order == ChannelOrder::Gray;
    let channels = v.channel_order.channels();
    let (t, h, w) = (v.frames, v.height, v.width);
    let plane_len = h * w;
    // Where value (frame ti, channel c, pixel i) goes in the tensor.
    let at = |ti: usize, c: usize, i: usize| match v.layout {
        FrameLayout::Tchw => (ti * channels + c) * plane_len + i,
        FrameLayout::Cthw => (c * t + ti) * plane_len + i,
        FrameLayout::Thwc => (ti * plane_len + i) * channels + c,
    };
    let mut pixels = vec![0u8; t * channels * plane_len];
    for (ti, f) in frames.iter().enumerate() {
        if f.width != w || f.height != h {
            return Err(ModelError::Input(format!(
                "{name}: frame is {}x{}, the bundle needs {w}x{h}",
                f.width, f.height
            )));
        }
        for (c, &src) in order.iter().enumerate().take(channels) {
            for (i, px) in f.data.chunks_exact(3).enumerate() {
                pixels[at(ti, c, i)] = if gray {
                    crate::face::gray(px[0], px[1], px[2])
                } else {
                    px[src]
                };
            }
        }
    }
    let (c, t, h, w) = (channels as i64, t as i64, h as i64, w as i64);
    let shape = match v.layout {
        FrameLayout::Tchw => vec![t, c, h, w],
        FrameLayout::Cthw => vec![c, t, h, w],
        FrameLayout::Thwc => vec![t, h, w, c],
    };
    Ok(match v.dtype {
        FrameDtype::Uint8 => InputTensor::U8 {
            shape,
            data: pixels,
        },
        FrameDtype::Float32 => {
            // The channel of each position, to pick its mean and std.
            let channel_of = |k: usize| match v.layout {
                FrameLayout::Tchw => k / plane_len % channels,
                FrameLayout::Cthw => k / plane_len / (t as usize),
                FrameLayout::Thwc => k % channels,
            };
            let scale = v.scale as f32;
            let data = pixels
                .iter()
                .enumerate()
                .map(|(k, &p)| {
                    let c = channel_of(k);
                    (p as f32 * scale - v.mean[c] as f32) / v.std[c] as f32
                })
                .collect();
            InputTensor::F32 { shape, data }
        }
    })
}
