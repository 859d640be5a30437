//! The element's properties: [`Settings`] holds their values, its `Default` is the one
//! source of every default (the ParamSpecs read it), and it turns into the window,
//! model and speech configurations when the element starts.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::ResultTiming;
use crate::bundle::{Bundle, CropMode};
use crate::infer::{DeviceChoice, ModelOptions, Precision};
use crate::media::{FramePolicy, Orientation};
use crate::speech::{SegmenterConfig, TranscriberConfig};
use crate::window::{SAMPLE_RATE, SECOND, SlidingSchedule, WindowConfig, WindowMode};

/// Settings that cannot work together (or with the bundle): what to change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct ConfigError(pub String);

/// Property values, applied when the element starts (READY → PAUSED).
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub window_mode: WindowMode,
    pub window_length: f64,
    pub window_hop: f64,
    pub min_window_length: f64,
    pub frames: u32,
    pub frame_policy: FramePolicy,
    pub frame_width: u32,
    pub frame_height: u32,
    /// `max-frame-rate`: frames per second the windows keep; 0 all, -1 auto.
    pub max_frame_rate: f64,
    pub max_pending_windows: u32,
    pub result_timing: ResultTiming,
    pub deadline: f64,
    pub input_timeout: f64,
    pub bundle: Option<String>,
    pub device: String,
    /// `precision`: fp32, bf16 or fp16.
    pub precision: String,
    pub max_batch: u32,
    pub max_batch_wait_ms: u32,
    pub smoothing: f64,
    /// `face-smoothing`: time constant (s) of each face track's smoothing.
    pub face_smoothing: f64,
    pub overlay: bool,
    pub orientation: gst_video::VideoOrientationMethod,
    pub text: Option<String>,
    pub dump_dir: Option<String>,
    pub asr: bool,
    pub asr_model: Option<String>,
    pub language: String,
    pub asr_threads: u32,
    pub asr_beam_size: u32,
    pub vad_model: Option<String>,
    pub max_utterance_length: f64,
    pub early_analysis: bool,
    /// Extra time per window, set only through
    /// [`EmotionSense::set_analysis_delay`](super::EmotionSense::set_analysis_delay)
    /// (not a property): lets a test make the analysis slower than real time.
    pub analysis_delay: std::time::Duration,
    /// Properties the application set (they override the bundle's defaults).
    pub explicit: HashSet<String>,
    /// Not a property: what `bundle` and `asr-model` loaded at NULL→READY.
    pub loaded: super::imp::Loaded,
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / SECOND as f64
}

fn nanoseconds(s: f64) -> u64 {
    (s * SECOND as f64).round() as u64
}

impl Default for Settings {
    fn default() -> Self {
        let window = WindowConfig::default();
        let model = ModelOptions::default();
        let transcriber = TranscriberConfig::new("");
        Self {
            window_mode: window.mode,
            window_length: seconds(window.schedule.length),
            window_hop: seconds(window.schedule.hop),
            min_window_length: seconds(window.min_length),
            frames: window.frames as u32,
            frame_policy: window.policy,
            frame_width: window.frame_width as u32,
            frame_height: window.frame_height as u32,
            max_frame_rate: -1.0,
            max_pending_windows: 2,
            result_timing: ResultTiming::Auto,
            deadline: 1.0,
            input_timeout: 0.0,
            bundle: None,
            device: "auto".into(),
            precision: "fp32".into(),
            max_batch: model.max_batch as u32,
            max_batch_wait_ms: model.max_wait.as_millis() as u32,
            smoothing: 0.5,
            face_smoothing: 3.0,
            overlay: false,
            orientation: gst_video::VideoOrientationMethod::Auto,
            text: None,
            dump_dir: None,
            asr: true,
            asr_model: None,
            language: transcriber.language,
            asr_threads: transcriber.threads as u32,
            asr_beam_size: transcriber.beam_size as u32,
            vad_model: None,
            max_utterance_length: SegmenterConfig::default().max_length,
            early_analysis: true,
            analysis_delay: std::time::Duration::ZERO,
            explicit: HashSet::new(),
            loaded: Default::default(),
        }
    }
}

impl Settings {
    /// The fixed orientation of the `orientation` property; `None` for `auto` (follow
    /// the image-orientation tag; `custom` counts as `auto`).
    pub fn fixed_orientation(&self) -> Option<Orientation> {
        use gst_video::VideoOrientationMethod as M;
        Some(match self.orientation {
            M::Identity => Orientation::Identity,
            M::_90r => Orientation::Rotate90R,
            M::_180 => Orientation::Rotate180,
            M::_90l => Orientation::Rotate90L,
            M::Horiz => Orientation::FlipHoriz,
            M::Vert => Orientation::FlipVert,
            M::UlLr => Orientation::FlipUlLr,
            M::UrLl => Orientation::FlipUrLl,
            _ => return None,
        })
    }

    /// The window configuration: the bundle's sampling and window defaults, with the
    /// application's explicit window properties taking precedence for the latter.
    pub fn window_config_for(&self, bundle: Option<&Bundle>) -> Result<WindowConfig, ConfigError> {
        let mut c = WindowConfig {
            schedule: SlidingSchedule {
                length: nanoseconds(self.window_length),
                hop: nanoseconds(self.window_hop),
            },
            min_length: nanoseconds(self.min_window_length),
            frames: self.frames as usize,
            policy: self.frame_policy,
            frame_width: self.frame_width as usize,
            frame_height: self.frame_height as usize,
            fit_longest_side: None,
            sample_rate: SAMPLE_RATE,
            mode: self.window_mode,
        };
        if let Some(b) = bundle {
            let w = &b.manifest.window;
            if !self.explicit.contains("window-length") {
                c.schedule.length = nanoseconds(w.length);
            }
            if !self.explicit.contains("window-hop") {
                c.schedule.hop = nanoseconds(w.hop);
            }
            if !self.explicit.contains("min-window-length") {
                c.min_length = nanoseconds(w.min_length);
            }
            if let Some(v) = b.video() {
                // The model needs exactly the frames it was trained on.
                c.frames = v.frames;
                c.frame_width = v.width;
                c.frame_height = v.height;
                c.policy = v.policy;
                if v.crop == CropMode::Face {
                    // Faces are detected and cropped from frames that keep their aspect.
                    c.fit_longest_side = Some(v.detect_size());
                }
            }
            if let Some(rate) = b.sample_rate()
                && rate != SAMPLE_RATE
            {
                return Err(ConfigError(format!(
                    "the bundle's audio is {rate} Hz; this element takes {SAMPLE_RATE} Hz audio"
                )));
            }
        }
        // Checked on the lengths in effect (the bundle's window length included).
        if c.min_length > c.schedule.length {
            return Err(ConfigError(format!(
                "min-window-length ({} s) is longer than the window length ({} s{}): lower \
                 min-window-length",
                seconds(c.min_length),
                seconds(c.schedule.length),
                if bundle.is_some() && !self.explicit.contains("window-length") {
                    ", from the bundle"
                } else {
                    ""
                }
            )));
        }
        Ok(c)
    }

    /// How the model runs (`device`, `precision`, `max-batch`, `max-batch-wait`).
    pub fn model_options(&self) -> Result<ModelOptions, ConfigError> {
        let device: DeviceChoice = self
            .device
            .parse()
            .map_err(|e| ConfigError(format!("device: {e}")))?;
        let precision: Precision = self
            .precision
            .parse()
            .map_err(|e| ConfigError(format!("precision: {e}")))?;
        Ok(ModelOptions {
            device,
            precision,
            max_batch: self.max_batch as usize,
            max_wait: Duration::from_millis(self.max_batch_wait_ms as u64),
            ..ModelOptions::default()
        })
    }

    /// Whisper settings (`asr-model`, `language`, `asr-threads`).
    pub fn transcriber_config(&self) -> TranscriberConfig {
        let mut config = TranscriberConfig::new(self.asr_model.clone().unwrap_or_default());
        config.language = self.language.clone();
        config.threads = self.asr_threads as usize;
        config.beam_size = self.asr_beam_size as usize;
        config
    }

    /// The Silero model (`vad-model`, else the installed one); `None`: energy detector.
    pub fn vad_model(&self) -> Option<std::path::PathBuf> {
        self.vad_model
            .clone()
            .map(Into::into)
            .or_else(crate::speech::default_vad_model)
    }

    /// How speech becomes utterance windows (`max-utterance-length`).
    pub fn segmenter_config(&self) -> SegmenterConfig {
        SegmenterConfig {
            max_length: self.max_utterance_length,
            ..SegmenterConfig::default()
        }
    }

    /// Sets property `name` (type-checked by GObject already).
    pub fn set(&mut self, name: &str, v: &glib::Value) {
        const CHECKED: &str = "type checked upstream";
        self.explicit.insert(name.to_string());
        match name {
            "window-mode" => self.window_mode = v.get().expect(CHECKED),
            "window-length" => self.window_length = v.get().expect(CHECKED),
            "window-hop" => self.window_hop = v.get().expect(CHECKED),
            "min-window-length" => self.min_window_length = v.get().expect(CHECKED),
            "max-utterance-length" => self.max_utterance_length = v.get().expect(CHECKED),
            "early-analysis" => self.early_analysis = v.get().expect(CHECKED),
            "frames" => self.frames = v.get().expect(CHECKED),
            "frame-policy" => self.frame_policy = v.get().expect(CHECKED),
            "frame-width" => self.frame_width = v.get().expect(CHECKED),
            "max-frame-rate" => self.max_frame_rate = v.get().expect(CHECKED),
            "frame-height" => self.frame_height = v.get().expect(CHECKED),
            "max-pending-windows" => self.max_pending_windows = v.get().expect(CHECKED),
            "result-timing" => self.result_timing = v.get().expect(CHECKED),
            "deadline" => self.deadline = v.get().expect(CHECKED),
            "input-timeout" => self.input_timeout = v.get().expect(CHECKED),
            "bundle" => self.bundle = v.get().expect(CHECKED),
            "device" => {
                let d: Option<String> = v.get().expect(CHECKED);
                self.device = d.unwrap_or_else(|| Settings::default().device);
            }
            "precision" => {
                let p: Option<String> = v.get().expect(CHECKED);
                self.precision = p.unwrap_or_else(|| Settings::default().precision);
            }
            "max-batch" => self.max_batch = v.get().expect(CHECKED),
            "max-batch-wait" => self.max_batch_wait_ms = v.get().expect(CHECKED),
            "smoothing" => self.smoothing = v.get().expect(CHECKED),
            "face-smoothing" => self.face_smoothing = v.get().expect(CHECKED),
            "overlay" => self.overlay = v.get().expect(CHECKED),
            "orientation" => self.orientation = v.get().expect(CHECKED),
            "text" => self.text = v.get().expect(CHECKED),
            "dump-dir" => self.dump_dir = v.get().expect(CHECKED),
            "asr" => self.asr = v.get().expect(CHECKED),
            "asr-model" => self.asr_model = v.get().expect(CHECKED),
            "language" => {
                let l: Option<String> = v.get().expect(CHECKED);
                self.language = l.unwrap_or_else(|| Settings::default().language);
            }
            "asr-threads" => self.asr_threads = v.get().expect(CHECKED),
            "asr-beam-size" => self.asr_beam_size = v.get().expect(CHECKED),
            "vad-model" => self.vad_model = v.get().expect(CHECKED),
            _ => {}
        }
    }

    /// The value of a settable property, `None` for others.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "window-mode" => self.window_mode.to_value(),
            "window-length" => self.window_length.to_value(),
            "window-hop" => self.window_hop.to_value(),
            "min-window-length" => self.min_window_length.to_value(),
            "max-utterance-length" => self.max_utterance_length.to_value(),
            "early-analysis" => self.early_analysis.to_value(),
            "frames" => self.frames.to_value(),
            "frame-policy" => self.frame_policy.to_value(),
            "frame-width" => self.frame_width.to_value(),
            "max-frame-rate" => self.max_frame_rate.to_value(),
            "frame-height" => self.frame_height.to_value(),
            "max-pending-windows" => self.max_pending_windows.to_value(),
            "result-timing" => self.result_timing.to_value(),
            "deadline" => self.deadline.to_value(),
            "input-timeout" => self.input_timeout.to_value(),
            "bundle" => self.bundle.to_value(),
            "device" => self.device.to_value(),
            "precision" => self.precision.to_value(),
            "max-batch" => self.max_batch.to_value(),
            "max-batch-wait" => self.max_batch_wait_ms.to_value(),
            "smoothing" => self.smoothing.to_value(),
            "face-smoothing" => self.face_smoothing.to_value(),
            "overlay" => self.overlay.to_value(),
            "orientation" => self.orientation.to_value(),
            "text" => self.text.to_value(),
            "dump-dir" => self.dump_dir.to_value(),
            "asr" => self.asr.to_value(),
            "asr-model" => self.asr_model.to_value(),
            "language" => self.language.to_value(),
            "asr-threads" => self.asr_threads.to_value(),
            "asr-beam-size" => self.asr_beam_size.to_value(),
            "vad-model" => self.vad_model.to_value(),
            _ => return None,
        })
    }
}

/// Every property of the element, defaults from [`Settings::default`].
pub(super) fn properties() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let d = Settings::default();
        vec![
            glib::ParamSpecEnum::builder_with_default("window-mode", d.window_mode)
                .nick("Window mode")
                .blurb("How running time is cut into analysis windows")
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("window-length")
                .nick("Window length")
                .blurb(
                    "Length of a sliding window, and of the windows cutting stretches \
                     without speech in auto mode, in seconds (overrides the bundle's default)",
                )
                .minimum(0.1)
                .maximum(600.0)
                .default_value(d.window_length)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("max-utterance-length")
                .nick("Maximum utterance length")
                .blurb("In utterance mode, longer speech is cut into windows of this many seconds")
                .minimum(0.5)
                .maximum(60.0)
                .default_value(d.max_utterance_length)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("early-analysis")
                .nick("Early analysis")
                .blurb(
                    "Live input, utterance and auto windows: start analysing an utterance \
                     once the pause after it has lasted 0.1 s, before the voice detector's \
                     0.3 s hangover confirms its end, and post the result as soon as it \
                     does (only while the worker is idle; off with dump-dir). If speech \
                     resumes, the work stops: Whisper aborts and face detection not \
                     started is skipped. Results come up to 0.2 s sooner, for a little \
                     extra CPU on pauses of 0.1-0.3 s",
                )
                .default_value(d.early_analysis)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("window-hop")
                .nick("Window hop")
                .blurb(
                    "Seconds between the starts of consecutive sliding windows (overrides the \
                     bundle's default)",
                )
                .minimum(0.01)
                .maximum(600.0)
                .default_value(d.window_hop)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("min-window-length")
                .nick("Minimum window length")
                .blurb(
                    "A window cut short by end of stream is analysed only if at least this \
                     many seconds long (overrides the bundle's default)",
                )
                .minimum(0.0)
                .maximum(600.0)
                .default_value(d.min_window_length)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("frames")
                .nick("Frames per window")
                .blurb(
                    "Number of video frames (T) sampled from each window (a bundle sets its own)",
                )
                .minimum(1)
                .maximum(1024)
                .default_value(d.frames)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("frame-policy", d.frame_policy)
                .nick("Frame policy")
                .blurb("How the frames of a window are chosen (a bundle sets its own)")
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("frame-width")
                .nick("Frame width")
                .blurb("Width the sampled frames are resized to, bilinear (a bundle sets its own)")
                .minimum(8)
                .maximum(4096)
                .default_value(d.frame_width)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("frame-height")
                .nick("Frame height")
                .blurb("Height the sampled frames are resized to, bilinear (a bundle sets its own)")
                .minimum(8)
                .maximum(4096)
                .default_value(d.frame_height)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("max-frame-rate")
                .nick("Maximum frame rate")
                .blurb(
                    "Video frames per second the windows keep (the others pass on, not \
                     analysed; the frame before stays on screen): 0 keeps every frame; -1 \
                     (auto) keeps every frame of a file (not live upstream), in step and \
                     with frame-policy=first, and otherwise, when live frames leave at \
                     once, at most 10 a second (or twice frames per window-length, if more)",
                )
                .minimum(-1.0)
                .maximum(1000.0)
                .default_value(d.max_frame_rate)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-pending-windows")
                .nick("Maximum pending windows")
                .blurb(
                    "Windows that may wait for the analysis worker; beyond this, non-live \
                     input waits and live input drops windows",
                )
                .minimum(1)
                .maximum(64)
                .default_value(d.max_pending_windows)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("result-timing", d.result_timing)
                .nick("Result timing")
                .blurb(
                    "Which result a video buffer carries: in-step holds each buffer until \
                     its own window is analysed (the same output on every machine), latest \
                     sends it at once with the latest result; auto is in-step for files and \
                     latest for live input",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("deadline")
                .nick("Deadline")
                .blurb(
                    "Live input in step: seconds the analysis may take after a window ends; \
                     the element reports window length + deadline as its latency and a \
                     buffer whose window misses it leaves with the latest result (counted \
                     in deadline-misses)",
                )
                .minimum(0.0)
                .maximum(60.0)
                .default_value(d.deadline)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("input-timeout")
                .nick("Input timeout")
                .blurb(
                    "Live input: seconds one input may deliver nothing before windows are \
                     cut from the other alone (flagged degraded=no-audio or no-video, a \
                     warning posted, counted in audio-stalls/video-stalls); 0: the \
                     element's latency + window-length",
                )
                .minimum(0.0)
                .maximum(3600.0)
                .default_value(d.input_timeout)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("bundle")
                .nick("Model bundle")
                .blurb(
                    "Folder of the model bundle (bundle.toml + TorchScript models); \
                     \"default\" or unset: the default bundle scripts/setup builds (faces, \
                     words, sentiment from pretrained parts), when installed; \"accurate\": \
                     the same with a larger sentence encoder (scripts/setup --accurate; \
                     better words, ~4x their cost); \"none\": windows are measured and \
                     transcribed but no model runs",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("device")
                .nick("Device")
                .blurb(
                    "Where the model runs: auto (CUDA if available, else CPU), cpu, cuda, cuda:N",
                )
                .default_value(Some(d.device.as_str()))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("precision")
                .nick("Precision")
                .blurb(
                    "Number format of the forward pass of a single-model bundle (MELD, face \
                     sequences): fp32 (as exported; parity with the reference), bf16 or fp16 \
                     (weights converted at load; for GPUs). Fusion bundles run in fp32",
                )
                .default_value(Some(d.precision.as_str()))
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-batch")
                .nick("Maximum batch")
                .blurb(
                    "Most windows per forward pass; windows of every element sharing the model \
                     batch together (the first element to load it decides)",
                )
                .minimum(1)
                .maximum(64)
                .default_value(d.max_batch)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-batch-wait")
                .nick("Maximum batch wait")
                .blurb("Milliseconds the model waits for more windows to fill a batch")
                .maximum(10_000)
                .default_value(d.max_batch_wait_ms)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("orientation", d.orientation)
                .nick("Orientation")
                .blurb(
                    "How the stored picture is turned upright before analysis (frames, face \
                     detection and face boxes are in the upright picture; the video passes \
                     unchanged): auto follows the stream's image-orientation tag (phone \
                     videos, videoflip), the fixed methods are for cameras mounted sideways \
                     that send no tag",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("overlay")
                .nick("Overlay")
                .blurb(
                    "Draw the latest result on the outgoing video: a panel with the smoothed \
                     emotion and sentiment and their probability bars, and a box with the \
                     label around each face (packed RGB-family and GRAY8 video)",
                )
                .default_value(d.overlay)
                .mutable_playing()
                .build(),
            glib::ParamSpecDouble::builder("smoothing")
                .nick("Smoothing")
                .blurb(
                    "Weight of the previous windows in the rolling (exponentially smoothed) \
                     probabilities: 0 = no smoothing",
                )
                .minimum(0.0)
                .maximum(0.99)
                .default_value(d.smoothing)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("face-smoothing")
                .nick("Face smoothing")
                .blurb(
                    "Time constant in seconds of each tracked face's smoothed emotion \
                     probabilities, from which its stable-label comes (a face whose \
                     expression does not change keeps its label; a real change shows \
                     within about one time constant): 0 = off, faces carry only their \
                     own window's probabilities",
                )
                .minimum(0.0)
                .maximum(600.0)
                .default_value(d.face_smoothing)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("text")
                .nick("Text")
                .blurb(
                    "Text given to the model's text input for every window instead of the \
                     transcript (unset: what speech recognition hears, else the bundle's filler)",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("dump-dir")
                .nick("Dump folder")
                .blurb(
                    "Folder receiving, per window, the sampled frames as PNG, a summary.txt, \
                     and the model's inputs and outputs as .npy files (for checking what the \
                     model saw); unset: off",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("asr")
                .nick("Speech recognition")
                .blurb(
                    "Transcribe each window's audio with Whisper (needs asr-model or the model \
                     scripts/setup installs); the transcript feeds the text input",
                )
                .default_value(d.asr)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("asr-model")
                .nick("Whisper model")
                .blurb(
                    "whisper.cpp ggml model file (unset: the tiny.en q8_0 model built by \
                     scripts/setup in ~/.cache/gst-emotion/whisper, if present)",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("language")
                .nick("Language")
                .blurb("Spoken language code (en, de, ...) or auto; English-only models ignore it")
                .default_value(Some(d.language.as_str()))
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("asr-threads")
                .nick("Speech recognition threads")
                .blurb("CPU threads whisper.cpp uses")
                .minimum(1)
                .maximum(64)
                .default_value(d.asr_threads)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("asr-beam-size")
                .nick("Speech recognition beam size")
                .blurb(
                    "Beam width of Whisper's first decode (1: greedy); wider is slower and \
                     can be more accurate (docs/speech.md has measurements)",
                )
                .minimum(1)
                .maximum(8)
                .default_value(d.asr_beam_size)
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
            glib::ParamSpecUInt64::builder("windows-analysed-early")
                .nick("Windows analysed early")
                .blurb(
                    "Utterance windows whose result was ready when the voice detector \
                     confirmed their end (early-analysis)",
                )
                .read_only()
                .build(),
            glib::ParamSpecUInt64::builder("deadline-misses")
                .nick("Deadline misses")
                .blurb(
                    "Live input in step: buffers that left with the latest result because \
                     their window's analysis missed the deadline",
                )
                .read_only()
                .build(),
            glib::ParamSpecUInt64::builder("audio-stalls")
                .nick("Audio stalls")
                .blurb(
                    "Live input: times the audio input delivered nothing for input-timeout \
                     or ended while the video went on",
                )
                .read_only()
                .build(),
            glib::ParamSpecUInt64::builder("video-stalls")
                .nick("Video stalls")
                .blurb(
                    "Live input: times the video input delivered nothing for input-timeout \
                     or ended while the audio went on",
                )
                .read_only()
                .build(),
            glib::ParamSpecUInt64::builder("windows-skipped")
                .nick("Windows skipped")
                .blurb(
                    "Live input: windows not analysed because neither input delivered \
                     anything in them",
                )
                .read_only()
                .build(),
            glib::ParamSpecUInt64::builder("windows-dropped")
                .nick("Windows dropped")
                .blurb(
                    "Windows dropped since the element started because the analysis was \
                     slower than the live input",
                )
                .read_only()
                .build(),
        ]
    });
    PROPERTIES.as_ref()
}
