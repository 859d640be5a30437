//! The `bundle.toml` schema (`validate.rs` checks a parsed one).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::BundleError;
use crate::media::FramePolicy;
use crate::media::mel::{MelNorm, MelScale, PadMode};
use crate::window::{DEFAULT_HOP, DEFAULT_LENGTH, DEFAULT_MIN_LENGTH, SECOND};

/// The manifest format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// The whole manifest.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version; must be [`FORMAT_VERSION`].
    pub format: u32,
    /// Bundle name, shown in logs and results.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Model card file in the bundle (markdown).
    #[serde(default)]
    pub model_card: Option<String>,
    /// The TorchScript models; one for a single-model bundle.
    pub models: Vec<ModelSpec>,
    /// The model inputs by name, and how each is computed from a window.
    pub inputs: BTreeMap<String, InputSpec>,
    /// The classification heads reported per window.
    pub heads: Vec<HeadSpec>,
    /// Tokenizer settings, required when an input is text.
    #[serde(default)]
    pub text: Option<TextSpec>,
    /// Window defaults (element properties override them).
    #[serde(default)]
    pub window: WindowDefaults,
    /// How several models' outputs combine; absent for a single model.
    #[serde(default)]
    pub fusion: Option<FusionSpec>,
    /// Face detection and tracking for a single model fed face crops (a video input
    /// with `crop = "face"` in a bundle without `[fusion]`).
    #[serde(default)]
    pub faces: Option<FaceSequenceSpec>,
    /// SHA-256 (hex) of the bundle's files by relative path, checked at load so a
    /// corrupt or partial copy is an error naming the file (`gst-emotion bundle pack`
    /// writes it).
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
}

/// One TorchScript model.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Name heads refer to.
    pub name: String,
    /// TorchScript file, relative to the bundle folder.
    pub file: String,
    /// Optional variant of `file` optimised for the CPU (frozen, conv+bn folded,
    /// MKLDNN); used instead of `file` when the model runs on the CPU.
    #[serde(default)]
    pub cpu_file: Option<String>,
    /// Optional variants of `file` in reduced precision, by precision name (`bf16`,
    /// `fp16`): the same model with its floating-point weights converted at export;
    /// used when the element's `precision` asks for one.
    #[serde(default)]
    pub precision_files: BTreeMap<String, String>,
    /// Names of the inputs passed to `forward`, in argument order. Parts of a fusion
    /// stage that the stage drives itself (e.g. the MTCNN nets) may leave it empty.
    #[serde(default)]
    pub forward: Vec<String>,
}

/// What an input tensor holds.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputSpec {
    /// T sampled video frames.
    Video(VideoSpec),
    /// A mel spectrogram of the window audio.
    Mel(MelSpec),
    /// Token ids of the window text (int64, `[max_length]`).
    TextIds,
    /// Attention mask of the window text (int64, `[max_length]`).
    TextMask,
}

/// Colour channel order of frame tensors.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV's order).
    Bgr,
    /// One luma channel (OpenCV's `COLOR_BGR2GRAY` weights); `mean`/`std` take one value.
    #[serde(alias = "grey")]
    Gray,
}

impl ChannelOrder {
    /// Channels per pixel in the tensor.
    pub fn channels(self) -> usize {
        match self {
            ChannelOrder::Gray => 1,
            _ => 3,
        }
    }
}

/// Per-sample layout of the frames tensor (the batch dimension comes first).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum FrameLayout {
    /// `[T, C, H, W]`.
    #[serde(rename = "TCHW")]
    Tchw,
    /// `[C, T, H, W]`.
    #[serde(rename = "CTHW")]
    Cthw,
    /// `[T, H, W, C]` (channels last, as Keras-style and many robot models take).
    #[serde(rename = "THWC")]
    Thwc,
}

/// Element type of the frames tensor.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FrameDtype {
    /// float32 after `scale`, `mean` and `std`.
    #[default]
    Float32,
    /// Raw 0–255 pixel values as uint8 (the model normalises itself).
    Uint8,
}

/// Which part of the frame the model sees.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CropMode {
    /// The whole frame, resized without keeping the aspect ratio (like cv2.resize).
    #[default]
    Full,
    /// A detected face: each tracked face's crops (late-fusion bundles, or a
    /// `[faces]` section for a single model).
    Face,
}

/// Video sampling and pixel normalisation.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VideoSpec {
    /// Frames per window (T).
    pub frames: usize,
    /// How the T frames are chosen: `first` or `uniform`.
    pub policy: FramePolicy,
    /// Frame width after resizing.
    pub width: usize,
    /// Frame height after resizing.
    pub height: usize,
    /// Channel order of the tensor.
    pub channel_order: ChannelOrder,
    /// Pixel values are multiplied by this (1/255 maps to [0, 1]).
    pub scale: f64,
    /// Per-channel mean subtracted after scaling (in `channel_order`).
    #[serde(default = "zeros3")]
    pub mean: Vec<f64>,
    /// Per-channel std divided after subtracting the mean.
    #[serde(default = "ones3")]
    pub std: Vec<f64>,
    /// Tensor layout.
    pub layout: FrameLayout,
    /// Element type: `float32` (default) or `uint8` (raw pixels; `scale`, `mean` and
    /// `std` must then be 1, 0 and 1).
    #[serde(default)]
    pub dtype: FrameDtype,
    /// Full frame or face crop.
    #[serde(default)]
    pub crop: CropMode,
    /// With `crop = "face"`: frames are scaled (aspect kept, never enlarged) so their
    /// longest side is at most this many pixels before face detection and cropping.
    #[serde(default)]
    pub detect_size: Option<usize>,
}

impl VideoSpec {
    /// The longest frame side the face detector sees (`crop = "face"` only).
    pub fn detect_size(&self) -> usize {
        self.detect_size.unwrap_or(640)
    }
}

fn zeros3() -> Vec<f64> {
    vec![0.0; 3]
}

fn ones3() -> Vec<f64> {
    vec![1.0; 3]
}

/// How a mel spectrogram is normalised.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MelNormalize {
    /// Raw power values.
    #[default]
    None,
    /// `(x − mean) / std` over the whole window, unbiased std.
    PerClip,
}

/// Audio features: torchaudio `MelSpectrogram` parameters plus normalisation and length.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MelSpec {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// FFT size.
    pub n_fft: usize,
    /// Window length (default `n_fft`).
    #[serde(default)]
    pub win_length: Option<usize>,
    /// Hop between frames.
    pub hop_length: usize,
    /// Mel bands.
    pub n_mels: usize,
    /// Lowest frequency (Hz).
    #[serde(default)]
    pub f_min: f64,
    /// Highest frequency (default sample_rate / 2).
    #[serde(default)]
    pub f_max: Option<f64>,
    /// Magnitude exponent.
    #[serde(default = "two")]
    pub power: f64,
    /// Centre frames (pad n_fft/2 each side).
    #[serde(default = "yes")]
    pub center: bool,
    /// `reflect` or `constant`.
    #[serde(default = "reflect")]
    pub pad_mode: PadMode,
    /// `htk` or `slaney`.
    #[serde(default = "htk")]
    pub mel_scale: MelScale,
    /// Filterbank norm: `none` or `slaney`.
    #[serde(default = "none")]
    pub norm: MelNorm,
    /// Normalisation of the spectrogram.
    #[serde(default)]
    pub normalize: MelNormalize,
    /// Pad with zeros or truncate to this many frames; absent keeps the natural length.
    #[serde(default)]
    pub frames: Option<usize>,
    /// Add a leading channel dimension: `[1, n_mels, frames]` instead of `[n_mels, frames]`.
    #[serde(default)]
    pub channel_dim: bool,
}

fn two() -> f64 {
    2.0
}
fn yes() -> bool {
    true
}
fn reflect() -> PadMode {
    PadMode::Reflect
}
fn htk() -> MelScale {
    MelScale::Htk
}
fn none() -> MelNorm {
    MelNorm::None
}

/// A classification head: labels and where its logits come from.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Head name; result fields are named after it (`emotion`, `emotion-probs`, ...).
    pub name: String,
    /// Class labels in the model's output order.
    pub labels: Vec<String>,
    /// The model producing the logits.
    pub model: String,
    /// Dict key of the output (models returning a dict).
    #[serde(default)]
    pub output_key: Option<String>,
    /// Tuple index of the output (models returning a tuple).
    #[serde(default)]
    pub output_index: Option<usize>,
    /// The model answers per sampled frame: `[N, T, labels]` logits. The window's
    /// probabilities are the mean of the frames' softmax probabilities.
    #[serde(default)]
    pub per_frame: bool,
}

/// Tokenizer settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// tokenizer.json in the bundle.
    pub tokenizer: String,
    /// Maximum tokens.
    pub max_length: usize,
    /// How token sequences are padded.
    #[serde(default)]
    pub padding: TextPadding,
    /// Truncate to max_length (must be true: longer input cannot be fed).
    #[serde(default = "yes")]
    pub truncation: bool,
    /// Text used when a window has no transcript.
    #[serde(default)]
    pub filler: String,
}

/// How token sequences are padded (`[text] padding`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TextPadding {
    /// Every text padded to `max_length`.
    #[default]
    MaxLength,
    /// The windows of a batch padded to the longest among them: the same answers for
    /// a model that honours its attention mask, with less work.
    Longest,
    /// No padding (one window per forward pass when lengths differ).
    None,
}

/// Window defaults of the bundle.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowDefaults {
    /// Window length in seconds.
    #[serde(default = "window_length")]
    pub length: f64,
    /// Hop in seconds.
    #[serde(default = "window_hop")]
    pub hop: f64,
    /// Minimum length of an end-of-stream window in seconds.
    #[serde(default = "min_length")]
    pub min_length: f64,
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / SECOND as f64
}
fn window_length() -> f64 {
    seconds(DEFAULT_LENGTH)
}
fn window_hop() -> f64 {
    seconds(DEFAULT_HOP)
}
fn min_length() -> f64 {
    seconds(DEFAULT_MIN_LENGTH)
}

impl Default for WindowDefaults {
    fn default() -> Self {
        Self {
            length: window_length(),
            hop: window_hop(),
            min_length: min_length(),
        }
    }
}

/// Late fusion of several models' heads (composite bundles).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FusionSpec {
    /// Fusion method.
    pub kind: FusionKind,
    /// Probability of `neutral` when no branch has evidence (the rest is spread
    /// evenly); such windows are flagged low-confidence.
    #[serde(default = "empty_confidence")]
    pub empty_confidence: f64,
    /// The face branch: detection and per-face emotion.
    #[serde(default)]
    pub face: Option<FaceFusion>,
    /// The text branch: zero-shot emotion from sentence embeddings.
    #[serde(default)]
    pub text: Option<TextFusion>,
    /// Sentiment from the transcript (VADER) and the face's valence.
    #[serde(default)]
    pub sentiment: Option<SentimentFusion>,
}

/// How a fusion bundle combines its branches (`[fusion] kind`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FusionKind {
    /// Each branch predicts on its own; the emotion is the weighted average of the
    /// branches present.
    Late,
}

fn empty_confidence() -> f64 {
    0.4
}

/// Face detection (MTCNN) and the face-emotion classifier.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaceFusion {
    /// The MTCNN P-Net, R-Net and O-Net, by model name.
    pub detector: Vec<String>,
    /// The face-emotion classifier, by model name: [N, C, H, W] crops → [N, labels]
    /// probabilities.
    pub classifier: String,
    /// The `crop = "face"` video input describing the crops.
    pub input: String,
    /// The classifier's labels, in output order.
    pub labels: Vec<String>,
    /// For each classifier label, the emotion head label it counts for.
    pub maps_to: Vec<String>,
    /// For each classifier label, its valence in [-1, 1] (feeds sentiment).
    pub valence: Vec<f64>,
    /// Smallest face in pixels (at `detect_size`).
    #[serde(default = "min_face")]
    pub min_face: f64,
    /// P-Net, R-Net and O-Net score thresholds.
    #[serde(default = "thresholds")]
    pub thresholds: Vec<f64>,
    /// Scale step of the image pyramid.
    #[serde(default = "pyramid_factor")]
    pub pyramid_factor: f64,
    /// Run the detector on every N-th sampled frame; the frames in between reuse the
    /// latest boxes.
    #[serde(default = "detect_every")]
    pub detect_every: usize,
    /// Margin added around each (squared) face box, as a fraction of its side.
    #[serde(default = "margin")]
    pub margin: f64,
    /// Most faces reported per window (largest first).
    #[serde(default = "max_faces")]
    pub max_faces: usize,
    /// Weight of the face branch in the emotion fusion.
    #[serde(default = "one")]
    pub weight: f64,
    /// How far the face classifier is trusted, in [0, 1]: before fusion its emotion
    /// distribution `p` becomes `reliability · p + (1 − reliability) / labels`, so a
    /// face it is certain of reads about as sure as the classifier is accurate
    /// (1 = as the classifier says).
    #[serde(default = "one")]
    pub reliability: f64,
}

fn min_face() -> f64 {
    32.0
}
fn thresholds() -> Vec<f64> {
    vec![0.6, 0.7, 0.7]
}
fn pyramid_factor() -> f64 {
    0.709
}
fn detect_every() -> usize {
    3
}
fn margin() -> f64 {
    0.1
}
fn max_faces() -> usize {
    8
}
fn one() -> f64 {
    1.0
}

/// How a face missing from some of a track's sampled frames is filled (`[faces] fill`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FaceFill {
    /// The crop of the nearest frame the face is on (the earlier one on a tie).
    #[default]
    Repeat,
    /// A black crop.
    Black,
    /// The face is not analysed unless it is on every sampled frame.
    Skip,
}

/// Which face's answer is the window's (`[faces] face_select`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FaceSelect {
    /// The face with the largest mean box.
    #[default]
    Largest,
    /// The face whose mean box centre is nearest the frame centre.
    Center,
    /// The mean of every face's probabilities.
    AllMean,
}

/// What the detector does on the sampled frames between two full detections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Between {
    /// The latest boxes are held.
    #[default]
    Hold,
    /// Each held box is refined on the frame by MTCNN's last network (`face::Mtcnn::track`):
    /// faces are followed frame by frame at a fraction of a full detection's cost; a
    /// face O-Net no longer finds is dropped until the next full detection.
    Near,
}

/// Faces as a single model's input: MTCNN detection (or upstream ROI boxes), tracks
/// across the window's sampled frames, and each track's T crops fed as one sequence.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaceSequenceSpec {
    /// The `crop = "face"` video input the crops are fed as.
    pub input: String,
    /// The MTCNN P-Net, R-Net and O-Net, by model name.
    pub detector: Vec<String>,
    /// Smallest face in pixels (at the input's `detect_size`).
    #[serde(default = "min_face")]
    pub min_face: f64,
    /// P-Net, R-Net and O-Net score thresholds.
    #[serde(default = "thresholds")]
    pub thresholds: Vec<f64>,
    /// Scale step of the image pyramid.
    #[serde(default = "pyramid_factor")]
    pub pyramid_factor: f64,
    /// Run the detector on every N-th sampled frame; the frames in between reuse the
    /// latest boxes.
    #[serde(default = "every_frame")]
    pub detect_every: usize,
    /// On the sampled frames between two full detections: `hold` the boxes, or follow
    /// them (`near`: each box of the frame before refined by O-Net).
    #[serde(default)]
    pub between: Between,
    /// Margin added around each (squared) face box, as a fraction of its side.
    #[serde(default = "margin")]
    pub margin: f64,
    /// Most faces analysed per window (most prominent first).
    #[serde(default = "max_faces")]
    pub max_faces: usize,
    /// A face missing from some sampled frames: `repeat`, `black` or `skip`.
    #[serde(default)]
    pub fill: FaceFill,
    /// The face whose answer is the window's: `largest`, `center` or `all-mean`.
    #[serde(default)]
    pub face_select: FaceSelect,
}

fn every_frame() -> usize {
    1
}

/// Zero-shot text emotion: the transcript's sentence embedding against prototype
/// sentences per emotion label.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextFusion {
    /// The sentence encoder, by model name: (input_ids, attention_mask) → [N, D]
    /// L2-normalised embeddings.
    pub encoder: String,
    /// Prototype sentences per emotion head label (zero-shot: cosine similarity of the
    /// transcript's embedding to each label's mean prototype embedding).
    #[serde(default)]
    pub prototypes: BTreeMap<String, Vec<String>>,
    /// A fitted classifier, by model name: embedding `[N, D]` → logits `[N, labels]` in
    /// `heads.emotion` label order. With prototypes too, the two are mixed by
    /// `prototype_weight`.
    #[serde(default)]
    pub classifier: Option<String>,
    /// Share of the prototype probabilities when a classifier is given (0 = the
    /// classifier alone).
    #[serde(default)]
    pub prototype_weight: f64,
    /// Softmax temperature over cosine similarities.
    #[serde(default = "text_temperature")]
    pub temperature: f64,
    /// Weight of the text branch in the emotion fusion.
    #[serde(default = "text_weight")]
    pub weight: f64,
    /// Calibration temperature of the branch's emotion distribution `p`: before
    /// fusion it becomes `p^(1/calibration)`, renormalised (below 1 sharpens an
    /// underconfident branch, above 1 softens an overconfident one; 1 = unchanged).
    #[serde(default = "one")]
    pub calibration: f64,
}

fn text_temperature() -> f64 {
    0.05
}
fn text_weight() -> f64 {
    0.7
}

/// Sentiment: the words' sentiment (VADER, or a fitted classifier) fused with the
/// face's valence.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SentimentFusion {
    /// The VADER lexicon file in the bundle.
    pub lexicon: String,
    /// A fitted classifier, by model name: `[embedding (D), VADER compound, text
    /// emotion probabilities (heads.emotion order)]` `[N, D + 1 + E]` → logits over
    /// negative, neutral, positive. Needs the `[fusion.text]` branch. Without it the
    /// words' sentiment is VADER's compound alone.
    #[serde(default)]
    pub classifier: Option<String>,
    /// Share of the sentiment the fused emotion implies (each emotion label counts
    /// for the sentiment `emotion_sentiment` gives it); 0: none.
    #[serde(default)]
    pub emotion_weight: f64,
    /// The sentiment each emotion label implies (`negative`, `neutral`, `positive`).
    #[serde(default)]
    pub emotion_sentiment: BTreeMap<String, String>,
    /// Weight of the transcript's VADER compound score.
    #[serde(default = "sentiment_text_weight")]
    pub text_weight: f64,
    /// Weight of the face valence.
    #[serde(default = "sentiment_face_weight")]
    pub face_weight: f64,
    /// Scores within ±this are neutral (VADER's convention is 0.05).
    #[serde(default = "neutral_band")]
    pub neutral_band: f64,
    /// Softmax temperature turning the fused score into probabilities.
    #[serde(default = "sentiment_temperature")]
    pub temperature: f64,
    /// The two heads never contradict each other: when the fused emotion's top label
    /// implies a polarity (`emotion_sentiment`) and the sentiment's top is the other
    /// one, the more probable way out wins — keep the emotion and take the best
    /// sentiment that is not its opposite, or keep the sentiment and take the best
    /// emotion whose polarity is not its opposite — and the head that changes becomes
    /// its distribution given that constraint.
    #[serde(default)]
    pub consistent: bool,
}

fn sentiment_text_weight() -> f64 {
    0.6
}
fn sentiment_face_weight() -> f64 {
    0.4
}
fn neutral_band() -> f64 {
    0.05
}
fn sentiment_temperature() -> f64 {
    0.1
}

/// The value serde rejected in "unknown variant `X`, expected ...".
fn rejected_variant(message: &str) -> Option<&str> {
    let rest = message.split("unknown variant `").nth(1)?;
    rest.split('`').next()
}

/// The key of the table at dotted `path` in `root` whose value is the string `value`.
fn key_holding(root: &toml::Value, path: &str, value: &str) -> Option<String> {
    let mut t = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        t = t.get(part)?;
    }
    let keys: Vec<&String> = t
        .as_table()?
        .iter()
        .filter(|(_, v)| v.as_str() == Some(value))
        .map(|(k, _)| k)
        .collect();
    (keys.len() == 1).then(|| keys[0].clone())
}

impl Manifest {
    /// Parses TOML text; `path` names the file in errors, which also name the field
    /// at fault and, for enumerated fields, the allowed values.
    pub fn parse(text: &str, path: &Path) -> Result<Self, BundleError> {
        let one_line = |e: &dyn std::fmt::Display| e.to_string().trim().replace('\n', " ");
        let table: toml::Table = toml::from_str(text).map_err(|e| BundleError::Parse {
            path: path.display().to_string(),
            reason: one_line(&e),
        })?;
        let value = toml::Value::Table(table);
        serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let reason = one_line(e.inner());
            let mut field = e.path().to_string();
            // Inside an internally tagged table (an input) the path stops at the table:
            // find the key holding the rejected value.
            if let Some(key) =
                rejected_variant(&reason).and_then(|v| key_holding(&value, &field, v))
            {
                field = format!("{field}.{key}");
            }
            if field == "." {
                field = "bundle.toml".into();
            }
            BundleError::Invalid {
                path: path.display().to_string(),
                field,
                reason,
            }
        })
    }

    /// The head named `name`, if any.
    pub fn head(&self, name: &str) -> Option<&HeadSpec> {
        self.heads.iter().find(|h| h.name == name)
    }

    /// Index of the model a single-model bundle runs (the one its heads name).
    pub fn main_model(&self) -> usize {
        self.heads
            .first()
            .and_then(|h| self.models.iter().position(|m| m.name == h.model))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A late-fusion manifest with a face branch; `heads` replaces its heads.
    fn fusion_manifest(heads: &str) -> String {
        format!(
            r#"
format = 1
name = "t"
[[models]]
name = "pnet"
file = "p.ts"
[[models]]
name = "rnet"
file = "r.ts"
[[models]]
name = "onet"
file = "o.ts"
[[models]]
name = "face_emotion"
file = "f.ts"
[inputs.faces]
kind = "video"
crop = "face"
frames = 6
policy = "uniform"
width = 64
height = 64
channel_order = "gray"
scale = 0.0039
mean = [0.5]
std = [0.5]
layout = "TCHW"
[fusion]
kind = "late"
[fusion.face]
detector = ["pnet", "rnet", "onet"]
classifier = "face_emotion"
input = "faces"
labels = ["happy", "sad", "neutral"]
maps_to = ["joy", "sadness", "neutral"]
valence = [0.9, -0.8, 0.0]
[fusion.sentiment]
lexicon = "vader_lexicon.txt"
{heads}
"#
        )
    }

    fn check(text: &str) -> Result<Manifest, BundleError> {
        let path = Path::new("bundle.toml");
        let m = Manifest::parse(text, path)?;
        m.validate(path)?;
        Ok(m)
    }

    const SENTIMENT: &str = r#"
[[heads]]
name = "sentiment"
model = "fusion"
labels = ["negative", "neutral", "positive"]
"#;

    const EMOTION: &str = r#"
[[heads]]
name = "emotion"
model = "fusion"
labels = ["joy", "neutral", "sadness"]
"#;

    #[test]
    fn a_face_branch_needs_the_emotion_head_it_maps_to() {
        let e = check(&fusion_manifest(SENTIMENT)).unwrap_err().to_string();
        assert!(e.contains("fusion.face.maps_to"), "{e}");
        assert!(e.contains("emotion"), "{e}");
        check(&fusion_manifest(&format!("{EMOTION}{SENTIMENT}"))).unwrap();
    }

    #[test]
    fn calibration_settings_are_checked_and_named() {
        let ok = fusion_manifest(&format!("{EMOTION}{SENTIMENT}"));
        let with = |from: &str, to: &str| ok.replacen(from, to, 1);
        // A face trusted beyond certainty, or not at all below zero.
        let face = with(
            "valence = [0.9, -0.8, 0.0]",
            "valence = [0.9, -0.8, 0.0]\nreliability = 1.5",
        );
        let e = check(&face).unwrap_err().to_string();
        assert!(
            e.contains("fusion.face.reliability") && e.contains("[0, 1]"),
            "{e}"
        );
        let m = check(&with(
            "valence = [0.9, -0.8, 0.0]",
            "valence = [0.9, -0.8, 0.0]\nreliability = 0.6",
        ))
        .unwrap();
        assert_eq!(m.fusion.unwrap().face.unwrap().reliability, 0.6);
        // Consistency needs each emotion's polarity.
        let e = check(&with(
            "lexicon = \"vader_lexicon.txt\"",
            "lexicon = \"vader_lexicon.txt\"\nconsistent = true",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("fusion.sentiment.emotion_sentiment"), "{e}");
    }

    #[test]
    fn enumerated_fields_name_the_field_and_the_allowed_values() {
        let ok = fusion_manifest(&format!("{EMOTION}{SENTIMENT}"));
        for (from, to, field, allowed) in [
            (
                r#"policy = "uniform""#,
                r#"policy = "random""#,
                "inputs.faces.policy",
                "uniform",
            ),
            (
                r#"kind = "late""#,
                r#"kind = "early""#,
                "fusion.kind",
                "late",
            ),
            (
                r#"layout = "TCHW""#,
                r#"layout = "HWC""#,
                "inputs.faces.layout",
                "TCHW",
            ),
        ] {
            let e = check(&ok.replace(from, to)).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
            assert!(e.contains(allowed), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
