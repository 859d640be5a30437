//! SECTION:element-emotionsense
//! @title: emotionsense
//!
//! Cuts live or recorded audio-visual streams into analysis windows and reports, per
//! window, what it measured.
//!
//! The element has two request sink pads, `video` (raw packed RGB-family video) and
//! `audio` (raw mono or multichannel audio at 16 kHz, F32LE or S16LE), and one `src`
//! pad on which the video buffers leave unchanged, with their timestamps. Either input
//! may be left out: a video-only or audio-only stream works. Put `videoconvert` before
//! `video` and `audioconvert ! audioresample` before `audio`.
//!
//! For every window the element samples `frames` video frames (policy `frame-policy`)
//! downscaled to `frame-width` × `frame-height`, and the sample-accurate audio of the
//! same running-time span. A worker thread analyses the window (streaming threads never
//! do heavy work) and the result is posted as an element message named `emotion` and
//! attached to every following video buffer as a GstCustomMeta named `EmotionMeta`
//! (see docs/metadata.md for the fields).
//!
//! With `bundle` set to a model bundle folder (docs/bundles.md), the model is loaded at
//! NULL→READY (a bad bundle fails there with an error naming the file and field), the
//! frame count, size and policy come from the bundle, and each window's result carries
//! the softmax probabilities of every head (`emotion`, `sentiment`, ...), the top
//! labels, and exponentially smoothed ones. Elements using the same bundle and
//! `device` in one process share one model, which batches their windows.
//! `bundle=default` is the default bundle scripts/setup builds from pretrained parts:
//! faces (MTCNN + a FER2013 CNN, or face boxes from an upstream detector's
//! GstVideoRegionOfInterestMeta), the words (zero-shot emotion from sentence
//! embeddings, VADER sentiment), fused per window, with every face reported
//! (docs/default-bundle.md). `overlay=true` draws the result on the video.
//!
//! Windows: in `sliding` mode window k covers running time
//! `[k·window-hop, k·window-hop + window-length)`. At end of stream a window cut short
//! is still analysed when at least `min-window-length` long. A flushing seek starts
//! over.
//!
//! Latency: with non-live input the element waits for the worker (no window is ever
//! lost). With live input it never waits: when more than `max-pending-windows` windows
//! are waiting, new windows are dropped, counted in `windows-dropped`, and reported
//! with a QoS message and a warning, so latency cannot grow. Video passes through
//! without delay; the element adds no latency of its own to the upstream latency it
//! reports, and results lag the video by one window plus the analysis time.
//!
//! ## Example launch line
//! ```sh
//! gst-launch-1.0 -m uridecodebin uri=file:///path/to/clip.mp4 name=d \
//!   emotionsense name=e ! fakesink \
//!   d. ! queue ! videoconvert ! e.video \
//!   d. ! queue ! audioconvert ! audioresample ! e.audio
//! ```
//! and with the default bundle, watching the overlay:
//! ```sh
//! gst-launch-1.0 -m uridecodebin uri=file:///path/to/clip.mp4 name=d \
//!   emotionsense name=e bundle=default overlay=true ! videoconvert ! autovideosink \
//!   d. ! video/x-raw ! queue ! videoconvert ! e.video \
//!   d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! e.audio
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::worker::{Analysis, Shared, SpeechSetup, Submit, Worker};
use super::{FramePolicy, WindowMode};
use crate::bundle::Bundle;
use crate::infer::{DeviceChoice, Engine, EngineOptions};
use crate::media::audio::time_to_sample;
use crate::media::{PixelLayout, SampleFormat, pcm_to_mono, resize_linear};
use crate::output::META_NAME;
use crate::speech::segmenter::SegmenterThread;
use crate::speech::{SegmenterConfig, TranscriberConfig, VoiceDetector, WhisperModel};
use crate::window::{
    InputState, SECOND, SlidingSchedule, WindowAssembler, WindowConfig, WindowJob,
};

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "emotionsense",
        gst::DebugColorFlags::empty(),
        Some("Emotion and sentiment analysis of audio-visual windows"),
    )
});

/// Sample rate of the audio pad (the rate the models are trained at).
const SAMPLE_RATE: i32 = 16000;

/// Video formats accepted on the `video` pad and produced on `src`.
const VIDEO_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::Gray8,
];

/// The size of a `width`×`height` frame scaled so its longest side is at most `side`
/// (aspect kept, never enlarged, at least 1×1).
fn fit_size(width: usize, height: usize, side: usize) -> (usize, usize) {
    let longest = width.max(height);
    if longest <= side {
        return (width.max(1), height.max(1));
    }
    let scale = side as f64 / longest as f64;
    (
        ((width as f64 * scale).round() as usize).max(1),
        ((height as f64 * scale).round() as usize).max(1),
    )
}

/// Where R, G and B sit in a pixel of `format`.
fn pixel_layout(format: gst_video::VideoFormat) -> Option<PixelLayout> {
    use gst_video::VideoFormat as F;
    let (bytes_per_pixel, rgb_offsets) = match format {
        F::Rgb => (3, [0, 1, 2]),
        F::Bgr => (3, [2, 1, 0]),
        F::Rgbx | F::Rgba => (4, [0, 1, 2]),
        F::Bgrx | F::Bgra => (4, [2, 1, 0]),
        F::Xrgb | F::Argb => (4, [1, 2, 3]),
        F::Xbgr | F::Abgr => (4, [3, 2, 1]),
        F::Gray8 => (1, [0, 0, 0]),
        _ => return None,
    };
    Some(PixelLayout {
        bytes_per_pixel,
        rgb_offsets,
    })
}

const DEFAULT_WINDOW_LENGTH: f64 = 2.0;
const DEFAULT_WINDOW_HOP: f64 = 1.0;
const DEFAULT_MIN_WINDOW_LENGTH: f64 = 0.5;
const DEFAULT_FRAMES: u32 = 16;
const DEFAULT_FRAME_SIZE: u32 = 224;
const DEFAULT_MAX_PENDING: u32 = 2;
const DEFAULT_MAX_BATCH: u32 = 4;
const DEFAULT_MAX_BATCH_WAIT_MS: u32 = 10;
const DEFAULT_SMOOTHING: f64 = 0.5;
const DEFAULT_MAX_UTTERANCE: f64 = 10.0;

/// Properties, applied when the element starts (READY → PAUSED).
#[derive(Debug, Clone)]
struct Settings {
    window_mode: WindowMode,
    window_length: f64,
    window_hop: f64,
    min_window_length: f64,
    frames: u32,
    frame_policy: FramePolicy,
    frame_width: u32,
    frame_height: u32,
    max_pending_windows: u32,
    bundle: Option<String>,
    device: String,
    max_batch: u32,
    max_batch_wait_ms: u32,
    smoothing: f64,
    overlay: bool,
    text: Option<String>,
    dump_dir: Option<String>,
    asr: bool,
    asr_model: Option<String>,
    language: String,
    asr_threads: u32,
    vad_model: Option<String>,
    max_utterance_length: f64,
    /// Properties the application set (they override the bundle's defaults).
    explicit: std::collections::HashSet<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window_mode: WindowMode::Sliding,
            window_length: DEFAULT_WINDOW_LENGTH,
            window_hop: DEFAULT_WINDOW_HOP,
            min_window_length: DEFAULT_MIN_WINDOW_LENGTH,
            frames: DEFAULT_FRAMES,
            frame_policy: FramePolicy::Uniform,
            frame_width: DEFAULT_FRAME_SIZE,
            frame_height: DEFAULT_FRAME_SIZE,
            max_pending_windows: DEFAULT_MAX_PENDING,
            bundle: None,
            device: "auto".into(),
            max_batch: DEFAULT_MAX_BATCH,
            max_batch_wait_ms: DEFAULT_MAX_BATCH_WAIT_MS,
            smoothing: DEFAULT_SMOOTHING,
            overlay: false,
            text: None,
            dump_dir: None,
            asr: true,
            asr_model: None,
            language: "en".into(),
            asr_threads: 1,
            vad_model: None,
            max_utterance_length: DEFAULT_MAX_UTTERANCE,
            explicit: Default::default(),
        }
    }
}

impl Settings {
    /// The window configuration: the bundle's sampling and window defaults, with the
    /// application's explicit window properties taking precedence for the latter.
    fn window_config_for(&self, bundle: Option<&Bundle>) -> Result<WindowConfig, String> {
        let mut c = self.window_config();
        let Some(b) = bundle else { return Ok(c) };
        let ns = |s: f64| (s * SECOND as f64).round() as u64;
        let w = &b.manifest.window;
        if !self.explicit.contains("window-length") {
            c.schedule.length = ns(w.length);
        }
        if !self.explicit.contains("window-hop") {
            c.schedule.hop = ns(w.hop);
        }
        if !self.explicit.contains("min-window-length") {
            c.min_length = ns(w.min_length);
        }
        if let Some(v) = b.video() {
            // The model needs exactly the frames it was trained on.
            c.frames = v.frames;
            c.frame_width = v.width;
            c.frame_height = v.height;
            if v.crop == crate::bundle::CropMode::Face {
                // Faces are detected and cropped from frames that keep their aspect.
                c.fit_longest_side = Some(v.detect_size());
            }
            c.policy = if v.policy == "first" {
                crate::media::FramePolicy::First
            } else {
                crate::media::FramePolicy::Uniform
            };
        }
        if let Some(rate) = b.sample_rate()
            && rate != SAMPLE_RATE as u32
        {
            return Err(format!(
                "the bundle's audio is {rate} Hz; this element takes {SAMPLE_RATE} Hz audio"
            ));
        }
        if c.min_length > c.schedule.length {
            return Err("min-window-length is longer than window-length".into());
        }
        Ok(c)
    }

    fn window_config(&self) -> WindowConfig {
        let ns = |s: f64| (s * SECOND as f64).round() as u64;
        WindowConfig {
            schedule: SlidingSchedule {
                length: ns(self.window_length),
                hop: ns(self.window_hop),
            },
            min_length: ns(self.min_window_length),
            frames: self.frames as usize,
            policy: self.frame_policy.into(),
            frame_width: self.frame_width as usize,
            frame_height: self.frame_height as usize,
            fit_longest_side: None,
            sample_rate: SAMPLE_RATE as u32,
            utterance: self.window_mode == WindowMode::Utterance,
        }
    }
}

/// Streaming state, rebuilt at every start.
struct State {
    assembler: WindowAssembler,
    video_info: Option<gst_video::VideoInfo>,
    audio_format: Option<(SampleFormat, usize)>,
    live: Option<bool>,
    last_drop_warning: Option<Instant>,
    /// An upstream element attaches face ROI metas to this stream.
    upstream_faces: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            assembler: WindowAssembler::new(WindowConfig::default()),
            video_info: None,
            audio_format: None,
            live: None,
            last_drop_warning: None,
            upstream_faces: false,
        }
    }
}

#[derive(Default)]
struct Pads {
    video: Option<gst_base::AggregatorPad>,
    audio: Option<gst_base::AggregatorPad>,
}

#[derive(Default)]
pub struct EmotionSense {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    pads: Mutex<Pads>,
    worker: Mutex<Option<Arc<Worker>>>,
    engine: Mutex<Option<Arc<Engine>>>,
    whisper: Mutex<Option<Arc<WhisperModel>>>,
    segmenter: Mutex<Option<Arc<SegmenterThread>>>,
    shared: Arc<Shared>,
    flushing: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for EmotionSense {
    const NAME: &'static str = "GstEmotionSense";
    type Type = super::EmotionSense;
    type ParentType = gst_base::Aggregator;
}

impl ObjectImpl for EmotionSense {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("window-mode", WindowMode::Sliding)
                    .nick("Window mode")
                    .blurb("How running time is cut into analysis windows")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("window-length")
                    .nick("Window length")
                    .blurb("Length of a sliding window in seconds (overrides the bundle's default)")
                    .minimum(0.1)
                    .maximum(600.0)
                    .default_value(DEFAULT_WINDOW_LENGTH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("max-utterance-length")
                    .nick("Maximum utterance length")
                    .blurb("In utterance mode, longer speech is cut into windows of this many seconds")
                    .minimum(0.5)
                    .maximum(60.0)
                    .default_value(DEFAULT_MAX_UTTERANCE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("window-hop")
                    .nick("Window hop")
                    .blurb("Seconds between the starts of consecutive sliding windows (overrides the bundle's default)")
                    .minimum(0.01)
                    .maximum(600.0)
                    .default_value(DEFAULT_WINDOW_HOP)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("min-window-length")
                    .nick("Minimum window length")
                    .blurb(
                        "A window cut short by end of stream is analysed only if at least \
                         this many seconds long",
                    )
                    .minimum(0.0)
                    .maximum(600.0)
                    .default_value(DEFAULT_MIN_WINDOW_LENGTH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("frames")
                    .nick("Frames per window")
                    .blurb("Number of video frames (T) sampled from each window (a bundle sets its own)")
                    .minimum(1)
                    .maximum(1024)
                    .default_value(DEFAULT_FRAMES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("frame-policy", FramePolicy::Uniform)
                    .nick("Frame policy")
                    .blurb("How the frames of a window are chosen (a bundle sets its own)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("frame-width")
                    .nick("Frame width")
                    .blurb("Width the sampled frames are resized to, bilinear (a bundle sets its own)")
                    .minimum(8)
                    .maximum(4096)
                    .default_value(DEFAULT_FRAME_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("frame-height")
                    .nick("Frame height")
                    .blurb("Height the sampled frames are resized to, bilinear (a bundle sets its own)")
                    .minimum(8)
                    .maximum(4096)
                    .default_value(DEFAULT_FRAME_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-pending-windows")
                    .nick("Maximum pending windows")
                    .blurb(
                        "Windows that may wait for the analysis worker; beyond this, \
                         non-live input waits and live input drops windows",
                    )
                    .minimum(1)
                    .maximum(64)
                    .default_value(DEFAULT_MAX_PENDING)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("bundle")
                    .nick("Model bundle")
                    .blurb(
                        "Folder of the model bundle (bundle.toml + TorchScript models), or \
                         \"default\" for the default bundle scripts/setup builds (faces, words, \
                         sentiment from pretrained parts); unset: windows are measured and \
                         transcribed but no model runs",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("Where the model runs: auto (CUDA if available, else CPU), cpu, cuda, cuda:N")
                    .default_value(Some("auto"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-batch")
                    .nick("Maximum batch")
                    .blurb(
                        "Most windows per forward pass; windows of every element sharing the \
                         model batch together (the first element to load it decides)",
                    )
                    .minimum(1)
                    .maximum(64)
                    .default_value(DEFAULT_MAX_BATCH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-batch-wait")
                    .nick("Maximum batch wait")
                    .blurb("Milliseconds the model waits for more windows to fill a batch")
                    .maximum(10_000)
                    .default_value(DEFAULT_MAX_BATCH_WAIT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("overlay")
                    .nick("Overlay")
                    .blurb(
                        "Draw the latest result on the outgoing video: a panel with the \
                         smoothed emotion and sentiment and their probability bars, and a box \
                         with the label around each face (packed RGB-family and GRAY8 video)",
                    )
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Smoothing")
                    .blurb(
                        "Weight of the previous windows in the rolling (exponentially \
                         smoothed) probabilities: 0 = no smoothing",
                    )
                    .minimum(0.0)
                    .maximum(0.99)
                    .default_value(DEFAULT_SMOOTHING)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("text")
                    .nick("Text")
                    .blurb(
                        "Text given to the model's text input for every window (unset: the \
                         bundle's filler)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("dump-dir")
                    .nick("Dump folder")
                    .blurb(
                        "Folder receiving, per window, the sampled frames as PNG, a \
                         summary.txt, and the model's inputs and outputs as .npy files (for \
                         checking what the model saw); unset: off",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("asr")
                    .nick("Speech recognition")
                    .blurb(
                        "Transcribe each window's audio with Whisper (needs asr-model or the \
                         model scripts/setup installs); the transcript feeds the text input",
                    )
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("asr-model")
                    .nick("Whisper model")
                    .blurb(
                        "whisper.cpp ggml model file (unset: the tiny.en q8_0 model built \
                         by scripts/setup in ~/.cache/gst-emotion/whisper, if present)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("language")
                    .nick("Language")
                    .blurb("Spoken language code (en, de, ...) or auto; English-only models ignore it")
                    .default_value(Some("en"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("asr-threads")
                    .nick("Speech recognition threads")
                    .blurb("CPU threads whisper.cpp uses")
                    .minimum(1)
                    .maximum(64)
                    .default_value(1)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("vad-model")
                    .nick("Voice activity model")
                    .blurb(
                        "Silero VAD TorchScript file that finds speech before transcription \
                         (unset: the one scripts/setup installs, else an energy detector)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("windows-processed")
                    .nick("Windows processed")
                    .blurb("Windows analysed since the element started")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("windows-dropped")
                    .nick("Windows dropped")
                    .blurb(
                        "Windows dropped since the element started because the analysis \
                         was slower than the live input",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        let v = value.clone();
        s.explicit.insert(pspec.name().to_string());
        match pspec.name() {
            "bundle" => s.bundle = v.get().expect("type checked upstream"),
            "device" => {
                let d: Option<String> = v.get().expect("type checked upstream");
                s.device = d.unwrap_or_else(|| "auto".into());
            }
            "max-batch" => s.max_batch = v.get().expect("type checked upstream"),
            "max-batch-wait" => s.max_batch_wait_ms = v.get().expect("type checked upstream"),
            "smoothing" => s.smoothing = v.get().expect("type checked upstream"),
            "overlay" => s.overlay = v.get().expect("type checked upstream"),
            "text" => s.text = v.get().expect("type checked upstream"),
            "dump-dir" => s.dump_dir = v.get().expect("type checked upstream"),
            "asr" => s.asr = v.get().expect("type checked upstream"),
            "asr-model" => s.asr_model = v.get().expect("type checked upstream"),
            "language" => {
                let l: Option<String> = v.get().expect("type checked upstream");
                s.language = l.unwrap_or_else(|| "en".into());
            }
            "asr-threads" => s.asr_threads = v.get().expect("type checked upstream"),
            "vad-model" => s.vad_model = v.get().expect("type checked upstream"),
            "max-utterance-length" => {
                s.max_utterance_length = v.get().expect("type checked upstream")
            }
            "window-mode" => s.window_mode = v.get().expect("type checked upstream"),
            "window-length" => s.window_length = v.get().expect("type checked upstream"),
            "window-hop" => s.window_hop = v.get().expect("type checked upstream"),
            "min-window-length" => s.min_window_length = v.get().expect("type checked upstream"),
            "frames" => s.frames = v.get().expect("type checked upstream"),
            "frame-policy" => s.frame_policy = v.get().expect("type checked upstream"),
            "frame-width" => s.frame_width = v.get().expect("type checked upstream"),
            "frame-height" => s.frame_height = v.get().expect("type checked upstream"),
            "max-pending-windows" => {
                s.max_pending_windows = v.get().expect("type checked upstream")
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "window-mode" => s.window_mode.to_value(),
            "window-length" => s.window_length.to_value(),
            "window-hop" => s.window_hop.to_value(),
            "min-window-length" => s.min_window_length.to_value(),
            "frames" => s.frames.to_value(),
            "frame-policy" => s.frame_policy.to_value(),
            "frame-width" => s.frame_width.to_value(),
            "frame-height" => s.frame_height.to_value(),
            "max-pending-windows" => s.max_pending_windows.to_value(),
            "bundle" => s.bundle.to_value(),
            "device" => s.device.to_value(),
            "max-batch" => s.max_batch.to_value(),
            "max-batch-wait" => s.max_batch_wait_ms.to_value(),
            "smoothing" => s.smoothing.to_value(),
            "overlay" => s.overlay.to_value(),
            "text" => s.text.to_value(),
            "dump-dir" => s.dump_dir.to_value(),
            "asr" => s.asr.to_value(),
            "asr-model" => s.asr_model.to_value(),
            "language" => s.language.to_value(),
            "asr-threads" => s.asr_threads.to_value(),
            "vad-model" => s.vad_model.to_value(),
            "max-utterance-length" => s.max_utterance_length.to_value(),
            "windows-processed" => self.shared.processed.load(Ordering::SeqCst).to_value(),
            "windows-dropped" => self.shared.dropped.load(Ordering::SeqCst).to_value(),
            other => {
                gst::warning!(CAT, imp = self, "unknown property {other}");
                pspec.default_value().clone()
            }
        }
    }
}

impl GstObjectImpl for EmotionSense {}

impl ElementImpl for EmotionSense {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Emotion sensing",
                "Filter/Analyzer/Video/Audio",
                "Recognises emotion and sentiment in windows of video and audio; passes \
                 the video through with the latest result as EmotionMeta and posts an \
                 \"emotion\" element message per window",
                "gst-emotion developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video_caps = gst_video::VideoCapsBuilder::new()
                .format_list(VIDEO_FORMATS.iter().copied())
                .build();
            let audio_caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format_list([gst_audio::AudioFormat::F32le, gst_audio::AudioFormat::S16le])
                .rate(SAMPLE_RATE)
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &video_caps,
                )
                .expect("valid template"),
                gst::PadTemplate::with_gtype(
                    "video",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &video_caps,
                    gst_base::AggregatorPad::static_type(),
                )
                .expect("valid template"),
                gst::PadTemplate::with_gtype(
                    "audio",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio_caps,
                    gst_base::AggregatorPad::static_type(),
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn release_pad(&self, pad: &gst::Pad) {
        {
            let mut pads = lock(&self.pads);
            let video = pad.name() == "video";
            if video {
                pads.video = None;
            } else {
                pads.audio = None;
            }
            lock(&self.state).assembler.set_input(video, false);
        }
        self.parent_release_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::NullToReady => {
                self.load_engine()?;
                self.load_whisper()?;
            }
            // Unblock a streaming thread waiting on the worker before pads deactivate.
            gst::StateChange::PausedToReady => self.flushing.store(true, Ordering::SeqCst),
            // Without any input the Aggregator would wait forever (and downstream
            // never prerolls): inputs may still be requested while the pipeline
            // prerolls (decodebin's pad-added), so give them a few seconds.
            gst::StateChange::ReadyToPaused if self.obj().sink_pads().is_empty() => {
                self.watch_for_missing_inputs();
            }
            _ => {}
        }
        let res = self.parent_change_state(transition)?;
        if transition == gst::StateChange::ReadyToNull {
            *lock(&self.engine) = None;
            *lock(&self.whisper) = None;
        }
        Ok(res)
    }
}

impl AggregatorImpl for EmotionSense {
    fn create_new_pad(
        &self,
        templ: &gst::PadTemplate,
        req_name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst_base::AggregatorPad> {
        let name = templ.name_template();
        if let Some(req) = req_name
            && name != req
        {
            gst::error!(
                CAT,
                imp = self,
                "pad {req} requested: the pads are named video and audio"
            );
            return None;
        }
        let mut pads = lock(&self.pads);
        let video = name == "video";
        let slot = if video {
            &mut pads.video
        } else {
            &mut pads.audio
        };
        if slot.is_some() {
            gst::error!(CAT, imp = self, "the {name} pad was already requested");
            return None;
        }
        let pad = gst::PadBuilder::<gst_base::AggregatorPad>::from_template(templ)
            .name(name.to_string())
            .build();
        *slot = Some(pad.clone());
        lock(&self.state).assembler.set_input(video, true);
        Some(pad)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        if settings.min_window_length > settings.window_length {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "min-window-length ({} s) is longer than window-length ({} s): lower min-window-length",
                    settings.min_window_length,
                    settings.window_length
                )
            ));
        }
        let engine = lock(&self.engine).clone();
        let config = settings
            .window_config_for(engine.as_ref().map(|e| e.bundle.as_ref()))
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        gst::info!(CAT, imp = self, "windows: {config:?}");
        let mut assembler = WindowAssembler::new(config);
        {
            let pads = lock(&self.pads);
            assembler.set_input(true, pads.video.is_some());
            assembler.set_input(false, pads.audio.is_some());
        }
        *lock(&self.state) = State {
            assembler,
            ..State::default()
        };
        self.shared.processed.store(0, Ordering::SeqCst);
        self.shared.dropped.store(0, Ordering::SeqCst);
        *lock(&self.shared.latest) = None;
        self.flushing.store(false, Ordering::SeqCst);
        let worker = Worker::start(
            self.obj().upcast_ref(),
            self.shared.clone(),
            settings.max_pending_windows as usize,
            Analysis {
                engine,
                smoothing: settings.smoothing,
                text: settings.text.clone(),
                dump_dir: settings.dump_dir.as_ref().map(Into::into),
                speech: lock(&self.whisper).clone().map(|whisper| {
                    let mut config =
                        TranscriberConfig::new(settings.asr_model.clone().unwrap_or_default());
                    config.language = settings.language.clone();
                    config.threads = settings.asr_threads as usize;
                    SpeechSetup {
                        whisper,
                        config,
                        vad_model: settings
                            .vad_model
                            .clone()
                            .map(Into::into)
                            .or_else(crate::speech::default_vad_model),
                        segmenter: SegmenterConfig::default(),
                    }
                }),
            },
        )
        .map_err(|e| {
            gst::error_msg!(
                gst::CoreError::Failed,
                ("Could not start the analysis worker thread: {e}")
            )
        })?;
        *lock(&self.worker) = Some(Arc::new(worker));
        *lock(&self.segmenter) = None;
        if settings.window_mode == WindowMode::Utterance {
            let detector = match settings
                .vad_model
                .clone()
                .map(std::path::PathBuf::from)
                .or_else(crate::speech::default_vad_model)
            {
                Some(path) => VoiceDetector::silero(&path).map_err(|e| {
                    gst::error_msg!(gst::ResourceError::OpenRead, ("vad-model: {e}"))
                })?,
                None => VoiceDetector::energy(),
            };
            let config = SegmenterConfig {
                max_length: settings.max_utterance_length,
                ..SegmenterConfig::default()
            };
            let seg = SegmenterThread::start(detector, config).map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Failed,
                    ["Could not start the speech segmenter thread: {e}"]
                )
            })?;
            *lock(&self.segmenter) = Some(Arc::new(seg));
        }
        gst::debug!(CAT, imp = self, "started with {settings:?}");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::SeqCst);
        let worker = lock(&self.worker).take();
        drop(worker); // joins the thread once the last reference is gone
        drop(lock(&self.segmenter).take());
        *lock(&self.state) = State::default();
        Ok(())
    }

    fn sink_event(&self, pad: &gst_base::AggregatorPad, event: gst::Event) -> bool {
        use gst::EventView;
        let is_video = pad.name() == "video";
        match event.view() {
            EventView::FlushStart(_) => {
                self.flushing.store(true, Ordering::SeqCst);
            }
            EventView::Caps(c) => {
                let caps = c.caps();
                if is_video {
                    match gst_video::VideoInfo::from_caps(caps) {
                        Ok(info) if pixel_layout(info.format()).is_some() => {
                            lock(&self.state).video_info = Some(info);
                            self.obj().src_pad().mark_reconfigure();
                        }
                        _ => {
                            gst::element_imp_error!(
                                self,
                                gst::StreamError::Format,
                                ("Unsupported video caps {caps}: put videoconvert before the video pad")
                            );
                            return false;
                        }
                    }
                } else {
                    match gst_audio::AudioInfo::from_caps(caps) {
                        Ok(info) => {
                            let format = match info.format() {
                                gst_audio::AudioFormat::F32le => SampleFormat::F32le,
                                gst_audio::AudioFormat::S16le => SampleFormat::S16le,
                                _ => {
                                    gst::element_imp_error!(
                                        self,
                                        gst::StreamError::Format,
                                        ("Unsupported audio caps {caps}: put audioconvert ! audioresample before the audio pad")
                                    );
                                    return false;
                                }
                            };
                            lock(&self.state).audio_format =
                                Some((format, info.channels() as usize));
                        }
                        Err(_) => {
                            gst::element_imp_error!(
                                self,
                                gst::StreamError::Format,
                                ("Invalid audio caps {caps}")
                            );
                            return false;
                        }
                    }
                }
            }
            EventView::Segment(s) if is_video => {
                match s.segment().downcast_ref::<gst::ClockTime>() {
                    Some(seg) => self.obj().update_segment(seg),
                    None => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Format,
                            (
                                "Video segment is not in TIME format: {:?}",
                                s.segment().format()
                            )
                        );
                        return false;
                    }
                }
            }
            _ => {}
        }
        self.parent_sink_event(pad, event)
    }

    fn sink_event_pre_queue(
        &self,
        pad: &gst_base::AggregatorPad,
        event: gst::Event,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Runs on the pad's own streaming thread, before its data: the moment to find
        // an input that will never deliver anything.
        if matches!(
            event.type_(),
            gst::EventType::Caps | gst::EventType::Segment
        ) {
            self.check_starved_inputs(pad);
        }
        self.parent_sink_event_pre_queue(pad, event)
    }

    fn sink_query(&self, pad: &gst_base::AggregatorPad, query: &mut gst::QueryRef) -> bool {
        if pad.name() == "video"
            && let gst::QueryViewMut::Caps(q) = query.view_mut()
        {
            // The video passes through: offer what downstream accepts of our formats.
            let templ = pad.pad_template_caps();
            let downstream = self.obj().src_pad().peer_query_caps(Some(&templ));
            let caps = match q.filter() {
                Some(f) => f.intersect_with_mode(&downstream, gst::CapsIntersectMode::First),
                None => downstream,
            };
            q.set_result(&caps);
            return true;
        }
        self.parent_sink_query(pad, query)
    }

    fn update_src_caps(&self, _caps: &gst::Caps) -> Result<gst::Caps, gst::FlowError> {
        let video = lock(&self.pads).video.clone();
        match video.and_then(|p| p.current_caps()) {
            Some(caps) => Ok(caps),
            None => Err(gst_base::AGGREGATOR_FLOW_NEED_DATA),
        }
    }

    fn flush(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        gst::debug!(CAT, imp = self, "flush: starting windows over");
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        {
            let mut state = lock(&self.state);
            state.assembler.reset();
        }
        if let Some(seg) = lock(&self.segmenter).clone() {
            seg.reset();
        }
        *lock(&self.shared.latest) = None;
        self.flushing.store(false, Ordering::SeqCst);
        self.parent_flush()
    }

    fn next_time(&self) -> Option<gst::ClockTime> {
        let video = lock(&self.pads).video.clone();
        let state = lock(&self.state);
        if state.assembler.all_ended() {
            return Some(gst::ClockTime::ZERO);
        }
        let mut next = state.assembler.next_deadline();
        drop(state);
        if let Some(pad) = video
            && let Some(buf) = pad.peek_buffer()
            && let Some(rt) = running_time(&pad, &buf)
        {
            next = Some(next.map_or(rt, |n| n.min(rt)));
        }
        next.map(gst::ClockTime::from_nseconds)
    }

    fn aggregate(&self, timeout: bool) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (video, audio) = {
            let pads = lock(&self.pads);
            (pads.video.clone(), pads.audio.clone())
        };
        let live = self.is_live(video.as_ref(), audio.as_ref());
        let segmenter = lock(&self.segmenter).clone();
        let max_utterance = lock(&self.settings).max_utterance_length;
        let mut vad_audio = Vec::new();
        let mut outgoing = Vec::new();
        let (mut jobs, eos) = {
            let mut state = lock(&self.state);
            state.assembler.set_wait_for_pending(!live);
            // Consume buffers in running-time order across the pads, so video never
            // runs ahead of audio (windows finish as early as the data allows).
            loop {
                let head = |pad: &Option<gst_base::AggregatorPad>| {
                    pad.as_ref()
                        .and_then(|p| p.peek_buffer().map(|b| running_time(p, &b).unwrap_or(0)))
                };
                // A pad without a queued buffer only holds the other back if it may
                // still deliver one (non-live input waits; live input never does).
                let waits = |pad: &Option<gst_base::AggregatorPad>| {
                    !live && pad.as_ref().is_some_and(|p| !p.is_eos())
                };
                let take_video = match (head(&video), head(&audio)) {
                    (None, None) => break,
                    (Some(v), Some(a)) => v <= a,
                    (Some(_), None) if waits(&audio) => break,
                    (Some(_), None) => true,
                    (None, Some(_)) if waits(&video) => break,
                    (None, Some(_)) => false,
                };
                if take_video {
                    let pad = video.as_ref().expect("video head exists");
                    if let Some(buf) = pad.pop_buffer() {
                        self.push_video(&mut state, pad, &buf)?;
                        outgoing.push(buf);
                    }
                } else {
                    let pad = audio.as_ref().expect("audio head exists");
                    if let Some(buf) = pad.pop_buffer()
                        && let Some(chunk) = self.push_audio(&mut state, pad, buf)
                        && segmenter.is_some()
                    {
                        vad_audio.push(chunk);
                    }
                }
            }
            if audio.as_ref().is_some_and(|p| p.is_eos()) {
                state.assembler.end_input(false);
            }
            if video.as_ref().is_some_and(|p| p.is_eos()) {
                state.assembler.end_input(true);
            }
            if timeout && let Some(now) = self.obj().current_running_time() {
                let latency = self.obj().latency().unwrap_or(gst::ClockTime::ZERO);
                state
                    .assembler
                    .advance_to(now.saturating_sub(latency).nseconds());
            }
            if let Some(seg) = &segmenter {
                for span in seg.take_spans() {
                    state.assembler.add_utterance(span.start, span.end);
                }
                // No utterance found later can start before this.
                let horizon = ((max_utterance + 0.5) * SECOND as f64) as u64;
                state
                    .assembler
                    .set_keep_from(seg.processed_until().saturating_sub(horizon));
            }
            let mut jobs = state.assembler.take_complete();
            gst::trace!(
                CAT,
                imp = self,
                "video {:?} audio {:?}: {} window(s) complete",
                state.assembler.video_state(),
                state.assembler.audio_state(),
                jobs.len()
            );
            let eos = state.assembler.all_ended();
            if eos && segmenter.is_none() {
                jobs.extend(state.assembler.finish());
            }
            (jobs, eos)
        };
        if let Some(seg) = &segmenter {
            // The voice detector runs on its own thread, never here.
            let stop = || self.flushing.load(Ordering::SeqCst);
            for (rt, samples) in vad_audio {
                seg.push(
                    time_to_sample(rt, SAMPLE_RATE as u32),
                    samples,
                    !live,
                    &stop,
                );
            }
            if eos {
                let spans = seg.flush();
                let mut state = lock(&self.state);
                for span in spans {
                    state.assembler.add_utterance(span.start, span.end);
                }
                jobs.extend(state.assembler.finish());
            }
        }

        let overlay = lock(&self.settings).overlay;
        let overlay_info = if overlay {
            lock(&self.state).video_info.clone()
        } else {
            None
        };
        // The latest result, read once for all buffers leaving now.
        let latest = if outgoing.is_empty() {
            None
        } else {
            lock(&self.shared.latest).clone()
        };
        for buf in outgoing {
            let mut buf = self.attach_meta(buf, latest.as_ref());
            if let (Some(info), Some(result)) = (&overlay_info, &latest) {
                self.draw_overlay(&mut buf, info, result);
            }
            self.obj().finish_buffer(buf)?;
        }
        for job in jobs {
            self.submit(job, live)?;
        }
        if eos {
            let worker = lock(&self.worker).clone();
            if let Some(worker) = worker {
                worker.drain(&|| self.flushing.load(Ordering::SeqCst));
            }
            gst::debug!(CAT, imp = self, "all inputs ended, windows analysed");
            return Err(gst::FlowError::Eos);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// Running time (ns) of a buffer's PTS in `pad`'s segment.
fn running_time(pad: &gst_base::AggregatorPad, buf: &gst::BufferRef) -> Option<u64> {
    let segment = pad.segment();
    let segment = segment.downcast_ref::<gst::ClockTime>()?;
    segment.to_running_time(buf.pts()?).map(|t| t.nseconds())
}

impl EmotionSense {
    /// Loads the bundle's model (shared with other elements using the same bundle and
    /// device); posts an error naming the problem when it cannot.
    fn load_engine(&self) -> Result<(), gst::StateChangeError> {
        let settings = lock(&self.settings).clone();
        let Some(dir) = settings.bundle.clone() else {
            *lock(&self.engine) = None;
            return Ok(());
        };
        let device: DeviceChoice = match settings.device.parse() {
            Ok(d) => d,
            Err(e) => {
                gst::element_imp_error!(self, gst::LibraryError::Settings, ("device: {e}"));
                return Err(gst::StateChangeError);
            }
        };
        let options = EngineOptions {
            device,
            max_batch: settings.max_batch as usize,
            max_wait: Duration::from_millis(settings.max_batch_wait_ms as u64),
        };
        match crate::bundle::resolve_bundle(&dir).and_then(|path| Engine::shared(&path, options)) {
            Ok(engine) => {
                if let Some(note) = &engine.device_note {
                    gst::warning!(CAT, imp = self, "{note}");
                }
                gst::info!(
                    CAT,
                    imp = self,
                    "bundle {} ({}) on {:?}",
                    engine.bundle.manifest.name,
                    dir,
                    engine.device
                );
                *lock(&self.engine) = Some(engine);
                Ok(())
            }
            Err(e) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::OpenRead,
                    ("Cannot use bundle {dir}: {e}")
                );
                Err(gst::StateChangeError)
            }
        }
    }

    /// Loads the Whisper model when speech recognition is on. An `asr-model` that
    /// cannot be loaded is an error; without one, the default model is used if
    /// scripts/setup installed it, else recognition is off (logged).
    fn load_whisper(&self) -> Result<(), gst::StateChangeError> {
        let mut settings = lock(&self.settings);
        *lock(&self.whisper) = None;
        if !settings.asr {
            return Ok(());
        }
        let path = match &settings.asr_model {
            Some(p) => std::path::PathBuf::from(p),
            None => match crate::speech::default_model() {
                Some(p) => p,
                None => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "no Whisper model installed: speech recognition off"
                    );
                    return Ok(());
                }
            },
        };
        match WhisperModel::load(&path) {
            Ok(model) => {
                settings.asr_model = Some(path.display().to_string());
                *lock(&self.whisper) = Some(model);
                Ok(())
            }
            Err(e) => {
                gst::element_imp_error!(self, gst::ResourceError::OpenRead, ("asr-model: {e}"));
                Err(gst::StateChangeError)
            }
        }
    }

    /// Whether upstream is live, asked once per start with a LATENCY query.
    fn is_live(
        &self,
        video: Option<&gst_base::AggregatorPad>,
        audio: Option<&gst_base::AggregatorPad>,
    ) -> bool {
        if let Some(live) = lock(&self.state).live {
            return live;
        }
        let mut live = false;
        for pad in [video, audio].into_iter().flatten() {
            let mut q = gst::query::Latency::new();
            if pad.peer_query(&mut q) {
                live |= q.result().0;
            }
        }
        gst::info!(
            CAT,
            imp = self,
            "upstream is {}",
            if live { "live" } else { "not live" }
        );
        lock(&self.state).live = Some(live);
        live
    }

    fn push_audio(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        buf: gst::Buffer,
    ) -> Option<(u64, Vec<f32>)> {
        let Some((format, channels)) = state.audio_format else {
            gst::warning!(CAT, imp = self, "audio buffer before caps, dropped");
            return None;
        };
        // Cut the parts outside the segment, so running times are defined.
        let bpf = (format.width() * channels) as u32;
        let Some(buf) = gst_audio::audio_buffer_clip(buf, &pad.segment(), SAMPLE_RATE as u32, bpf)
        else {
            gst::log!(CAT, imp = self, "audio buffer outside the segment, dropped");
            return None;
        };
        let Some(rt) = running_time(pad, &buf) else {
            gst::log!(CAT, imp = self, "audio buffer without timestamp, dropped");
            return None;
        };
        let Ok(map) = buf.map_readable() else {
            gst::warning!(CAT, imp = self, "unreadable audio buffer, dropped");
            return None;
        };
        let mono = pcm_to_mono(&map, format, channels);
        state.assembler.push_audio(rt, &mono);
        Some((rt, mono))
    }

    fn push_video(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        buf: &gst::Buffer,
    ) -> Result<(), gst::FlowError> {
        let Some(info) = state.video_info.clone() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Video buffer arrived before caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let Some(rt) = running_time(pad, buf) else {
            gst::log!(
                CAT,
                imp = self,
                "video frame outside the segment: passed, not analysed"
            );
            return Ok(());
        };
        let layout = pixel_layout(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        if buf.flags().contains(gst::BufferFlags::GAP) || buf.size() == 0 {
            gst::log!(
                CAT,
                imp = self,
                "gap or empty video buffer: passed, not analysed"
            );
            return Ok(());
        }
        let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info)
        else {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Decode,
                (
                    "A video buffer of {} bytes does not match its caps ({}x{} {}): not analysed",
                    buf.size(),
                    info.width(),
                    info.height(),
                    info.format().to_str()
                )
            );
            return Ok(());
        };
        let (iw, ih) = (info.width() as usize, info.height() as usize);
        let (w, h) = {
            let c = state.assembler.config();
            match c.fit_longest_side {
                Some(side) => fit_size(iw, ih, side),
                None => (c.frame_width, c.frame_height),
            }
        };
        let plane = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
        let mut resized = resize_linear(
            plane,
            info.width() as usize,
            info.height() as usize,
            info.stride()[0] as usize,
            layout,
            w,
            h,
        );
        // Face boxes from an upstream detector (e.g. opencv's facedetect): once a stream
        // has carried one, every frame's boxes (possibly none) replace detection here.
        let (sx, sy) = (w as f64 / iw as f64, h as f64 / ih as f64);
        let faces: Vec<crate::media::FaceRoi> = buf
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .filter(|m| m.roi_type() == "face")
            .filter_map(|m| {
                // Clipped to the frame: an upstream box may be anything.
                let (x, y, rw, rh) = m.rect();
                let x0 = ((x as f64 * sx).round() as usize).min(w.saturating_sub(1));
                let y0 = ((y as f64 * sy).round() as usize).min(h.saturating_sub(1));
                let x1 = (((x as f64 + rw as f64) * sx).round() as usize).min(w);
                let y1 = (((y as f64 + rh as f64) * sy).round() as usize).min(h);
                (x1 > x0 && y1 > y0).then(|| crate::media::FaceRoi {
                    x: x0 as u32,
                    y: y0 as u32,
                    width: (x1 - x0) as u32,
                    height: (y1 - y0) as u32,
                })
            })
            .collect();
        if !faces.is_empty() && !state.upstream_faces {
            gst::info!(CAT, imp = self, "using face boxes from upstream ROI metas");
            state.upstream_faces = true;
        }
        if state.upstream_faces {
            resized.faces = Some(faces);
        }
        let duration = buf.duration().map(|d| d.nseconds()).or_else(|| {
            let fps = info.fps();
            (fps.numer() > 0).then(|| {
                gst::ClockTime::SECOND
                    .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                    .map_or(0, |d| d.nseconds())
            })
        });
        state.assembler.push_frame(rt, duration, Arc::new(resized));
        Ok(())
    }

    /// Posts an error if the element still has no sink pad 5 s after READY→PAUSED.
    fn watch_for_missing_inputs(&self) {
        let weak = self.obj().downgrade();
        let spawned = std::thread::Builder::new()
            .name("emotionsense-inputs".into())
            .spawn(move || {
                for _ in 0..50 {
                    std::thread::sleep(Duration::from_millis(100));
                    let Some(obj) = weak.upgrade() else { return };
                    if !obj.sink_pads().is_empty()
                        || obj.current_state() < gst::State::Paused
                            && obj.pending_state() != gst::State::Paused
                    {
                        return;
                    }
                }
                if let Some(obj) = weak.upgrade()
                    && obj.sink_pads().is_empty()
                {
                    gst::element_error!(
                        obj,
                        gst::CoreError::Pad,
                        ("emotionsense has no inputs: link its \"video\" and/or \"audio\" \
                             request pad (e.g. `... ! e.video`)")
                    );
                }
            });
        if let Err(e) = spawned {
            gst::warning!(CAT, imp = self, "cannot watch for missing inputs: {e}");
        }
    }

    /// Draws the latest result on `buf` (the `overlay` property).
    fn draw_overlay(
        &self,
        buf: &mut gst::Buffer,
        info: &gst_video::VideoInfo,
        latest: &gst::Structure,
    ) {
        let Some(layout) = pixel_layout(info.format()) else {
            return;
        };
        let Ok(mut frame) =
            gst_video::VideoFrameRef::from_buffer_ref_writable(buf.make_mut(), info)
        else {
            gst::warning!(CAT, imp = self, "overlay: cannot map the video buffer");
            return;
        };
        let (w, h, stride) = (
            info.width() as usize,
            info.height() as usize,
            info.stride()[0] as usize,
        );
        if let Ok(plane) = frame.plane_data_mut(0) {
            let mut canvas = crate::output::overlay::Canvas::new(plane, w, h, stride, layout);
            crate::output::overlay::draw(&mut canvas, latest);
        }
    }

    /// Attaches `EmotionMeta` holding `latest` (empty before the first result).
    fn attach_meta(&self, mut buf: gst::Buffer, latest: Option<&gst::Structure>) -> gst::Buffer {
        gst::trace!(CAT, imp = self, "attaching {latest:?}");
        let b = buf.make_mut();
        let Ok(mut meta) = gst::meta::CustomMeta::add(b, META_NAME) else {
            gst::warning!(
                CAT,
                imp = self,
                "{META_NAME} is not registered: buffer without meta"
            );
            return buf;
        };
        if let Some(s) = latest {
            let ms = meta.mut_structure();
            for (name, value) in s.iter() {
                ms.set_value(name, value.clone());
            }
        }
        buf
    }

    fn submit(&self, job: WindowJob, live: bool) -> Result<(), gst::FlowError> {
        let Some(worker) = lock(&self.worker).clone() else {
            return Err(gst::FlowError::Flushing);
        };
        let span = job.span;
        match worker.submit(job, !live, &|| self.flushing.load(Ordering::SeqCst)) {
            Submit::Queued => Ok(()),
            Submit::Flushing => Err(gst::FlowError::Flushing),
            Submit::Dropped => {
                let dropped = self.shared.dropped.load(Ordering::SeqCst);
                let processed = self.shared.processed.load(Ordering::SeqCst);
                gst::debug!(
                    CAT,
                    imp = self,
                    "worker behind: dropped window {}",
                    span.index
                );
                let qos = gst::message::Qos::builder(true)
                    .running_time(gst::ClockTime::from_nseconds(span.start))
                    .duration(gst::ClockTime::from_nseconds(span.end - span.start))
                    .stats(
                        gst::format::Buffers::from_u64(processed),
                        gst::format::Buffers::from_u64(dropped),
                    )
                    .src(&*self.obj())
                    .build();
                let _ = self.obj().post_message(qos);
                let mut state = lock(&self.state);
                let due = state
                    .last_drop_warning
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                if due {
                    state.last_drop_warning = Some(Instant::now());
                    drop(state);
                    gst::element_imp_warning!(
                        self,
                        gst::CoreError::TooLazy,
                        ("Analysis is slower than the live input: {dropped} window(s) dropped so far"),
                        ["Raise window-hop, lower frames, or use a faster device"]
                    );
                }
                Ok(())
            }
        }
    }

    /// Called from a sink pad's streaming thread before its data: on non-live input,
    /// an input whose upstream has no source (a decoder branch that never appeared)
    /// would make the Aggregator wait forever, so it is ended.
    fn check_starved_inputs(&self, fed: &gst_base::AggregatorPad) {
        let other = {
            let pads = lock(&self.pads);
            if fed.name() == "video" {
                pads.audio.clone()
            } else {
                pads.video.clone()
            }
        };
        let Some(other) = other else { return };
        // Live sources (cameras, RTSP) may expose a branch late (e.g. rtspsrc's audio
        // stream): never end an input of a live pipeline.
        if self.is_live(Some(fed), Some(&other)) {
            return;
        }
        {
            let state = lock(&self.state);
            let other_state = if other.name() == "video" {
                state.assembler.video_state()
            } else {
                state.assembler.audio_state()
            };
            if other_state != InputState::Pending {
                return;
            }
        }
        if other.sticky_event::<gst::event::StreamStart>(0).is_some()
            || other.is_eos()
            || sink_has_source(other.upcast_ref(), 0)
        {
            return;
        }
        gst::warning!(
            CAT,
            imp = self,
            "the {} pad has no upstream source: analysing without it",
            other.name()
        );
        // Ending the input lets the Aggregator go on without it.
        let _ = other.send_event(gst::event::StreamStart::new("emotionsense-absent-input"));
        let _ = other.send_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
        let _ = other.send_event(gst::event::Eos::new());
    }
}

/// True if data can reach the sink pad `pad`: following peers upstream through
/// elements and bins finds a source element.
fn sink_has_source(pad: &gst::Pad, depth: u32) -> bool {
    if depth > 64 {
        return true;
    }
    match pad.peer() {
        Some(peer) => src_has_source(&peer, depth + 1),
        None => false,
    }
}

fn src_has_source(pad: &gst::Pad, depth: u32) -> bool {
    if depth > 64 {
        return true;
    }
    if let Some(ghost) = pad.downcast_ref::<gst::GhostPad>() {
        return match ghost.target() {
            Some(target) => src_has_source(&target, depth + 1),
            None => false,
        };
    }
    match pad.parent_element() {
        Some(element) => {
            let sinks = element.sink_pads();
            sinks.is_empty() || sinks.iter().any(|s| sink_has_source(s, depth + 1))
        }
        None => {
            // The internal pad of a bin's ghost sink pad: continue outside the bin.
            match pad
                .parent()
                .and_then(|p| p.downcast::<gst::GhostPad>().ok())
            {
                Some(ghost) => sink_has_source(ghost.upcast_ref(), depth + 1),
                None => true,
            }
        }
    }
}
