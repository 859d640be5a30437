//! SECTION:element-emotionsense
//! @title: emotionsense
//!
//! Cuts live or recorded audio-visual streams into analysis windows and reports, per
//! window, what it measured.
//!
//! The element has two request sink pads, `video` (raw video: packed RGB formats, and
//! YUV as decoders and cameras give it — I420, NV12, YUY2, 10-bit P010 or
//! I420_10LE and every other untiled raw format — converted inside only for the
//! frames a window samples) and
//! `audio` (raw audio of any format, rate and channels; 16 kHz F32LE or S16LE is what
//! the analysis takes, anything else is converted inside with `audioconvert !
//! audioresample`), and one `src` pad on which the video buffers leave unchanged, with
//! their timestamps. Either input may be left out: a video-only or audio-only stream
//! works. Put `videoconvert` before `video` (it passes the formats above through
//! unconverted); with `overlay=true` the video pad asks for packed RGB. With the
//! `audio` pad comes a sometimes pad `audio_src` that passes the audio through
//! unchanged, released in step with the video leaving `src`: to record what was
//! analysed, feed a muxer from `e.src` and `e.audio_src` (a `tee` around the element
//! would make the pipeline wait on itself; when an input starves while video is held
//! the element says so in a WARNING).
//!
//! For every window the element samples `frames` video frames (policy `frame-policy`)
//! downscaled to `frame-width` × `frame-height`, and the sample-accurate audio of the
//! same running-time span. A worker thread analyses the window (streaming threads never
//! do heavy work) and the result is posted as an element message named `emotion` and
//! attached to the video buffers of that window as a GstCustomMeta named `EmotionMeta`
//! (see docs/metadata.md for the fields).
//!
//! The model comes from a bundle (docs/bundles.md), loaded at NULL→READY (a bad
//! bundle fails there with an error naming the file and field). Without `bundle` the
//! element uses the default bundle scripts/setup builds from pretrained parts, when it
//! is installed: faces (MTCNN + a FER2013 CNN, or face boxes from an upstream
//! detector's GstVideoRegionOfInterestMeta), the words (emotion from sentence
//! embeddings, sentiment), fused per window, with every face reported
//! (docs/default-bundle.md); `bundle=none` measures and transcribes windows without a
//! model. The frame count, size and policy come from the bundle, and each window's
//! result carries the softmax probabilities of every head (`emotion`, `sentiment`,
//! ...), the top labels, and exponentially smoothed ones. Elements using the same
//! bundle and `device` in one process share one model, which batches their windows.
//! A face-sequence bundle (docs/robot.md) feeds each tracked face's crops to its model
//! and reports every face, with per-frame answers when its head has them.
//! `overlay=true` draws the result on the video.
//!
//! Pictures stored sideways are analysed upright: the video's `image-orientation` tag
//! (what demuxers post for a phone video's display matrix, what `jpegparse` posts for
//! a photo's EXIF orientation, and what `videoflip` reads) says how to turn them, or a
//! fixed `orientation` does for a camera mounted on its side that sends no tag. Sampled
//! frames, face detection and the reported face boxes are in the upright picture; the
//! video passes through unchanged (the tag travels on), and the overlay draws each
//! face box where the face is in the stored picture.
//!
//! Windows (`window-mode`): `auto` (the default) gives one window per spoken
//! utterance, found by a voice detector, and cuts the stretches without speech into
//! windows of `window-length`, so every second is covered (video without an audio
//! input is cut into `window-length` windows); `utterance` gives the utterances only;
//! in `sliding` mode window k covers running time
//! `[k·window-hop, k·window-hop + window-length)`. At end of stream a window cut short
//! is still analysed when at least `min-window-length` long; a still image is one
//! window. A flushing seek starts over.
//!
//! Timing (`result-timing`, docs/metadata.md): each video frame carries its own
//! window's result. With non-live input (`auto` = `in-step` there) frames are held
//! until that result is ready, so the overlay and `EmotionMeta` are the same on every
//! machine; upstream waits and no window is ever lost. With live input `auto` means
//! `latest`: frames leave at once with the latest finished result (about one window
//! plus the analysis time behind) and no latency is added; `result-timing=in-step`
//! holds them instead, reporting window length + `deadline` as the element's latency,
//! and a frame whose window is not analysed by then carries the latest result (counted
//! in `deadline-misses`, QoS message). With live input the element never waits for the
//! worker: when more than `max-pending-windows` windows are waiting, new windows are
//! dropped, counted in `windows-dropped`, and reported with a QoS message and a
//! warning, so latency cannot grow. Messages carry running time (`start`, `end`) and
//! the media position (`stream-start`, `stream-end`).
//!
//! Live inputs that fail do not stop the analysis: an input that delivers nothing for
//! `input-timeout` (or ends while the other goes on) leaves windows cut from the other
//! input alone, marked `degraded=no-audio` or `no-video`, with one WARNING per stall,
//! an INFO when it is back, and the `audio-stalls`/`video-stalls` counters; a camera
//! whose timestamps jump is re-timed to the clock (docs/live.md, "When inputs fail").
//!
//! ## Example launch line
//! ```sh
//! gst-launch-1.0 -m uridecodebin uri=file:///path/to/clip.mp4 name=d \
//!   emotionsense name=e ! fakesink \
//!   d. ! queue ! videoconvert ! e.video \
//!   d. ! queue ! audioconvert ! audioresample ! e.audio
//! ```
//! analysing and recording the video with the overlay and its audio:
//! ```sh
//! gst-launch-1.0 -e uridecodebin uri=file:///path/to/clip.mp4 name=d \
//!   emotionsense name=e overlay=true ! queue ! videoconvert ! x264enc tune=zerolatency \
//!   ! mp4mux name=mux \
//!   ! filesink location=out.mp4 \
//!   d. ! video/x-raw ! queue ! videoconvert ! e.video \
//!   d. ! audio/x-raw ! queue ! e.audio \
//!   e.audio_src ! queue ! audioconvert ! avenc_aac ! mux.
//! ```
//! and with the default bundle, watching the overlay:
//! ```sh
//! gst-launch-1.0 -m uridecodebin uri=file:///path/to/clip.mp4 name=d \
//!   emotionsense name=e bundle=default overlay=true ! videoconvert ! autovideosink \
//!   d. ! video/x-raw ! queue ! videoconvert ! e.video \
//!   d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! e.audio
//! ```

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::faults::{Change, INPUT_DETAILS, InputEventKind, InputWatch, describe};
use super::flushing::Wake;
use super::ingest::LIVE_FRAME_RATE;
use super::inputs::{Input, LiveClock, running_time, video_caps};
use super::passthrough::Passed;
use super::resample::Resampler;
use super::results::Shared;
use super::settings::{Settings, properties};
use super::timing::{Held, Timing};
use super::worker::Worker;
use super::{CAT, ResultTiming};
use crate::analyzer::{AnalyzerConfig, SpeechSetup};
use crate::bundle::BundleChoice;
use crate::infer::Model;
use crate::media::{FramePolicy, Orientation, SampleFormat};
use crate::speculation::Speculation;
use crate::speech::segmenter::{SegmenterThread, SpeechSpan};
use crate::speech::{VoiceDetector, WhisperModel};
use crate::window::{SECOND, WindowAssembler, WindowJob};

/// What NULL→READY loads from the `bundle` and `asr-model` properties: the model and
/// the Whisper model (kept with the settings they came from until READY→NULL).
#[derive(Clone, Default)]
pub(super) struct Loaded {
    pub model: Option<Arc<Model>>,
    pub whisper: Option<Arc<WhisperModel>>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field(
                "model",
                &self.model.as_ref().map(|m| &m.bundle.manifest.name),
            )
            .field("whisper", &self.whisper.is_some())
            .finish()
    }
}

/// When, in step, a frame may leave before its window's result (see `State::prompt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Prompt {
    /// Frames wait for their windows.
    No,
    /// The next frame leaves at once (a flushing seek came).
    AfterFlush,
    /// The next frame, the first since the start, leaves at once if the pipeline is
    /// prerolling to PAUSED (a player showing the first picture); a pipeline on its
    /// way to PLAYING waits, so that every frame of a run carries its own window.
    IfPausing,
}

/// Streaming state, rebuilt at every start.
pub(super) struct State {
    pub assembler: WindowAssembler,
    pub video_info: Option<gst_video::VideoInfo>,
    /// How the negotiated video's frames become pictures (set with `video_info`).
    pub frame_source: Option<Arc<super::convert::FrameSource>>,
    pub audio_format: Option<(SampleFormat, usize)>,
    /// Upstream's liveness and the in-step choice, decided together at the first
    /// buffers of each start.
    pub decided: Option<Decided>,
    pub last_drop_warning: Option<Instant>,
    /// Live, in step: the last buffer left past its deadline (a run of misses gets
    /// one QoS message).
    pub missing: bool,
    /// `max-frame-rate` (negative: auto) and the rate auto means when live frames
    /// leave at once (0: every frame).
    pub max_frame_rate: (f64, f64),
    /// Running time of the last frame the windows kept (for `max-frame-rate`).
    pub last_kept: Option<u64>,
    /// An upstream element attaches face ROI metas to this stream.
    pub upstream_faces: bool,
    /// The `orientation` property when fixed (`None`: follow the tag).
    pub fixed_orientation: Option<Orientation>,
    /// The video's image-orientation tag, as last seen.
    pub tag_orientation: Orientation,
    pub worker: Arc<Worker>,
    /// The online voice detector of `utterance` windows.
    pub segmenter: Option<Arc<SegmenterThread>>,
    /// The windows made, to tell which one a buffer carries.
    pub timing: Timing,
    /// Video buffers waiting for their window's result (in step).
    pub held: Held,
    /// Live, in step: how long a buffer may wait (ns), reported as latency.
    pub element_latency: u64,
    /// Early analysis is on (`early-analysis`, speech-following windows, no dump).
    pub early_analysis: bool,
    /// The tentative utterance last offered to the worker for early analysis.
    pub early_offered: Option<SpeechSpan>,
    /// The guess on `early_offered` while it is neither confirmed nor withdrawn.
    pub early_guess: Option<Speculation>,
    /// In step: whether the next frame may leave without waiting for its window —
    /// the first after a flushing seek, and the first of all while the pipeline
    /// prerolls to PAUSED — so that a player's preroll, and scrubbing, never wait for
    /// an analysis; the frames after it wait for their windows again.
    pub prompt: Prompt,
    /// Live input: how each input (by [`Input`] index) has been delivering.
    pub watch: [InputWatch; 2],
    /// Live input: the latency and input timeout (ns) of the last `aggregate`, for
    /// `next_time` (which runs under the Aggregator's lock, so cannot ask for them).
    pub latency_and_bound: (u64, u64),
    /// Audio not at 16 kHz F32LE/S16LE interleaved: converted for the analysis.
    pub resampler: Option<Resampler>,
    /// Audio waiting to leave on `audio_src`.
    pub audio_out: VecDeque<Passed>,
    /// Running time up to which video has left (audio before it may follow).
    pub audio_horizon: Option<u64>,
    /// Wakes the streaming threads' blocking waits when a flush begins (and when
    /// this state is dropped at stop).
    pub wake: Wake,
    /// Held while the element waits for its first input pad; dropping it (a pad is
    /// requested, the element stops) wakes the watcher, which then ends.
    pub no_inputs_watch: Option<crossbeam_channel::Sender<()>>,
}

/// What the first buffers of a start decide, once and together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Decided {
    /// Upstream is live (a LATENCY query on the inputs).
    pub live: bool,
    /// Buffers wait for their own window's result (`result-timing`; `auto`: files);
    /// live and in step, the wait is reported as the element's latency.
    pub in_step: bool,
}

impl State {
    /// How the video's pictures are turned upright for analysis.
    pub fn orientation(&self) -> Orientation {
        self.fixed_orientation.unwrap_or(self.tag_orientation)
    }
}

/// The element. Three locks in all, never nested except `state` → `settings` and
/// `state` → `shared.results`: the properties (and what they loaded), the streaming
/// state, and the worker's results (in [`Shared`]). The pads are the element's own
/// (found by name).
#[derive(Default)]
pub struct EmotionSense {
    pub(super) settings: Mutex<Settings>,
    /// The streaming state: `None` while stopped.
    pub(super) state: Mutex<Option<State>>,
    pub(super) shared: Arc<Shared>,
}

impl EmotionSense {
    /// Runs `f` on the streaming state; `None` when the element is stopped.
    pub(super) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        lock(&self.state).as_mut().map(f)
    }

    /// A flush or stop begins: blocked waits of the streaming threads give up.
    pub(super) fn begin_flush(&self) {
        self.shared.flushing.begin();
        self.with_state(|s| s.wake.fire());
    }
}

/// Locks `m`, recovering the data of a poisoned lock.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        lock(&self.settings).set(pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "windows-processed" => self.shared.processed.load(Ordering::SeqCst).to_value(),
            "windows-dropped" => self.shared.dropped.load(Ordering::SeqCst).to_value(),
            "deadline-misses" => self.shared.misses.load(Ordering::SeqCst).to_value(),
            "windows-analysed-early" => self.shared.early.load(Ordering::SeqCst).to_value(),
            "video-stalls" => self.shared.stalls[0].load(Ordering::SeqCst).to_value(),
            "audio-stalls" => self.shared.stalls[1].load(Ordering::SeqCst).to_value(),
            "windows-skipped" => self.shared.skipped.load(Ordering::SeqCst).to_value(),
            name => lock(&self.settings)
                .get(name)
                .unwrap_or_else(|| pspec.default_value().clone()),
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
                 the video through with its window's result as EmotionMeta (files; live \
                 input: the latest result), the audio on audio_src, and posts an \
                 \"emotion\" element message per window",
                "gst-emotion developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video_caps = video_caps(false);
            // Any raw audio, 16 kHz F32LE/S16LE preferred (what the analysis takes:
            // `audioresample` in front still resamples); the rest is converted inside.
            let mut audio_caps = super::resample::analysis_caps();
            audio_caps.merge(gst::Caps::builder("audio/x-raw").build());
            let sink = |input: Input, caps: &gst::Caps| {
                gst::PadTemplate::with_gtype(
                    input.name(),
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    caps,
                    gst_base::AggregatorPad::static_type(),
                )
                .expect("valid template")
            };
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &video_caps,
                )
                .expect("valid template"),
                sink(Input::Video, &video_caps),
                sink(Input::Audio, &audio_caps),
                gst::PadTemplate::new(
                    "audio_src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &gst::Caps::builder("audio/x-raw").build(),
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let input = self.input_of(pad);
        if input == Some(Input::Audio)
            && let Some(src) = self.audio_src()
        {
            let _ = src.set_active(false);
            let _ = self.obj().remove_pad(&src);
        }
        self.parent_release_pad(pad);
        if let Some(input) = input {
            self.with_state(|s| s.assembler.set_input(input, false));
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::NullToReady => self.load()?,
            // Unblock a streaming thread waiting on the worker before pads deactivate.
            gst::StateChange::PausedToReady => self.begin_flush(),
            _ => {}
        }
        let res = self.parent_change_state(transition)?;
        match transition {
            // Without any input the Aggregator would wait forever (and downstream
            // never prerolls): inputs may still be requested while the pipeline
            // prerolls (decodebin's pad-added), so give them a few seconds.
            gst::StateChange::ReadyToPaused if self.obj().sink_pads().is_empty() => {
                self.watch_for_missing_inputs();
            }
            gst::StateChange::ReadyToNull => lock(&self.settings).loaded = Loaded::default(),
            _ => {}
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
        let input = [Input::Video, Input::Audio]
            .into_iter()
            .find(|i| i.name() == name)?;
        if req_name.is_some_and(|r| r != input.name()) {
            gst::error!(
                CAT,
                imp = self,
                "pad {req_name:?} requested: the pads are named video and audio"
            );
            return None;
        }
        if self.input_pad(input).is_some() {
            gst::error!(CAT, imp = self, "the {name} pad was already requested");
            return None;
        }
        let pad = gst::PadBuilder::<gst_base::AggregatorPad>::from_template(templ)
            .name(input.name())
            .build();
        // Requested while running (a late input); before a start, start() looks.
        self.with_state(|s| {
            s.assembler.set_input(input, true);
            s.no_inputs_watch = None;
        });
        if input == Input::Audio {
            self.add_audio_src(&self.make_audio_src());
        }
        Some(pad)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let Loaded { model, whisper } = settings.loaded.clone();
        let config = settings
            .window_config_for(model.as_ref().map(|m| m.bundle.as_ref()))
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        gst::info!(CAT, imp = self, "windows: {config:?}");
        let follows_speech = config.mode.follows_speech();
        let timing = Timing::new(config.mode, config.schedule);
        // Live, in step: a buffer waits at most until its window (an utterance may last
        // max-utterance-length) has ended and been analysed within the deadline.
        let longest = if follows_speech {
            config
                .schedule
                .length
                .max(((settings.max_utterance_length + 0.5) * SECOND as f64) as u64)
        } else {
            config.schedule.length
        };
        let element_latency = longest + (settings.deadline * SECOND as f64) as u64;
        let live_frame_rate = match config.policy {
            FramePolicy::First => 0.0,
            FramePolicy::Uniform => (2.0 * config.frames as f64 * SECOND as f64
                / config.schedule.length.max(1) as f64)
                .max(LIVE_FRAME_RATE),
        };
        let mut assembler = WindowAssembler::new(config);
        for input in [Input::Video, Input::Audio] {
            assembler.set_input(input, self.input_pad(input).is_some());
        }
        self.shared.reset();
        let analysis = AnalyzerConfig {
            model,
            smoothing: settings.smoothing,
            face_smoothing: settings.face_smoothing,
            text: settings.text.clone(),
            dump_dir: settings.dump_dir.as_ref().map(Into::into),
            speech: whisper.map(|whisper| SpeechSetup {
                whisper,
                config: settings.transcriber_config(),
                vad_model: settings.vad_model(),
                segmenter: Default::default(),
            }),
        };
        let worker = Worker::start(
            self.obj().upcast_ref(),
            self.shared.clone(),
            settings.max_pending_windows as usize,
            analysis,
            settings.analysis_delay,
        )
        .map_err(|e| {
            gst::error_msg!(
                gst::CoreError::Failed,
                ("Could not start the analysis worker thread: {e}")
            )
        })?;
        let segmenter = if follows_speech {
            Some(Arc::new(self.start_segmenter(&settings)?))
        } else {
            None
        };
        // Early analysis is for live input (decided at the first buffers); a debug
        // dump would write windows that may never be.
        let early_analysis =
            settings.early_analysis && segmenter.is_some() && settings.dump_dir.is_none();
        *lock(&self.state) = Some(State {
            assembler,
            video_info: None,
            frame_source: None,
            audio_format: None,
            decided: None,
            last_drop_warning: None,
            missing: false,
            max_frame_rate: (settings.max_frame_rate, live_frame_rate),
            last_kept: None,
            upstream_faces: false,
            fixed_orientation: settings.fixed_orientation(),
            tag_orientation: Orientation::Identity,
            worker: Arc::new(worker),
            segmenter,
            timing,
            held: Held::new(),
            element_latency,
            early_analysis,
            early_offered: None,
            early_guess: None,
            prompt: Prompt::IfPausing,
            watch: Default::default(),
            latency_and_bound: (0, 0),
            resampler: None,
            audio_out: VecDeque::new(),
            audio_horizon: None,
            wake: Wake::default(),
            no_inputs_watch: None,
        });
        self.shared.starts.fetch_add(1, Ordering::SeqCst);
        self.start_watchdog();
        gst::debug!(CAT, imp = self, "started with {settings:?}");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.shared.starts.fetch_add(1, Ordering::SeqCst);
        self.begin_flush();
        // Dropping the last references joins the worker and segmenter threads.
        let old = lock(&self.state).take();
        drop(old);
        Ok(())
    }

    fn sink_event(&self, pad: &gst_base::AggregatorPad, event: gst::Event) -> bool {
        use gst::EventView;
        let Some(input) = self.input_of(pad) else {
            return self.parent_sink_event(pad, event);
        };
        if input == Input::Audio {
            self.pass_audio_event(&event);
        }
        match event.view() {
            EventView::FlushStart(_) => self.begin_flush(),
            EventView::Caps(c) if !self.set_caps(input, c.caps()) => return false,
            EventView::Segment(s) if input == Input::Audio => {
                if let Some(Err(e)) = self
                    .with_state(|state| {
                        state.resampler.as_ref().map(|r| r.set_segment(s.segment()))
                    })
                    .flatten()
                {
                    gst::warning!(CAT, imp = self, "{e}");
                }
            }
            EventView::Tag(t) if input == Input::Video => {
                let tag = t.tag();
                if let Some(o) = tag
                    .get::<gst::tags::ImageOrientation>()
                    .and_then(|v| Orientation::from_tag(v.get()))
                {
                    gst::info!(CAT, imp = self, "video orientation from its tag: {o:?}");
                    self.with_state(|s| s.tag_orientation = o);
                }
            }
            EventView::Segment(s) if input == Input::Video => {
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
        let input = self.input_of(pad);
        if input == Some(Input::Audio)
            && let gst::QueryViewMut::Caps(q) = query.view_mut()
            && let Some(caps) = self.audio_sink_caps(pad)
        {
            // The audio passes through on audio_src: what its downstream takes.
            let caps = match q.filter() {
                Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                None => caps,
            };
            q.set_result(&caps);
            return true;
        }
        let is_video = input == Some(Input::Video);
        if is_video && let gst::QueryViewMut::Caps(q) = query.view_mut() {
            // The video passes through: offer what downstream accepts of our formats
            // (packed RGB only when the overlay draws on it).
            let templ = video_caps(lock(&self.settings).overlay);
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
        self.input_pad(Input::Video)
            .and_then(|p| p.current_caps())
            .ok_or(gst_base::AGGREGATOR_FLOW_NEED_DATA)
    }

    fn flush(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        gst::debug!(CAT, imp = self, "flush: starting windows over");
        let segmenter = self.with_state(|state| {
            // Blocking waits may wait again (the flag is cleared below).
            state.wake = Wake::default();
            state.assembler.reset();
            state.timing.clear();
            state.held.clear();
            state.last_kept = None;
            state.prompt = Prompt::AfterFlush;
            state.watch = Default::default();
            if let Some(r) = state.resampler.as_mut() {
                r.flush();
            }
            state.early_offered = None;
            if let Some(guess) = state.early_guess.take() {
                guess.withdraw();
            }
            state.segmenter.clone()
        });
        if let Some(seg) = segmenter.flatten() {
            seg.reset();
        }
        self.shared.flush();
        self.parent_flush()
    }

    fn next_time(&self) -> Option<gst::ClockTime> {
        let (video, audio) = (self.input_pad(Input::Video), self.input_pad(Input::Audio));
        let guard = lock(&self.state);
        let state = guard.as_ref()?;
        if state.assembler.all_ended() {
            return Some(gst::ClockTime::ZERO);
        }
        let mut times = vec![state.assembler.next_deadline()];
        // In step: wake up when the oldest held buffer's deadline comes.
        if let Some((Some(rt), _)) = state.held.front() {
            times.push(Some(*rt));
        }
        // The queued buffers' time: live, the audio's too, so that a stalled video
        // input does not keep the audio waiting.
        let live = state.decided.is_some_and(|d| d.live);
        for (input, pad) in [(Input::Video, &video), (Input::Audio, &audio)] {
            if (input == Input::Video || live)
                && let Some(pad) = pad
                && let Some(buf) = pad.peek_buffer()
                && let Some(rt) = running_time(pad, &buf)
            {
                times.push(Some(state.watch[input as usize].shifted(rt)));
            }
        }
        // Live: wake up when an input has been silent for input-timeout.
        if live {
            let (latency, bound) = state.latency_and_bound;
            for watch in &state.watch {
                times.push(watch.stall_due(bound).map(|t| t.saturating_sub(latency)));
            }
        }
        times
            .into_iter()
            .flatten()
            .min()
            .map(gst::ClockTime::from_nseconds)
    }

    fn aggregate(&self, timeout: bool) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Decided { live, in_step } = self.decided();
        let (worker, segmenter, stop) = self
            .with_state(|state| {
                let stop = state.wake.waker(&self.shared.flushing);
                (state.worker.clone(), state.segmenter.clone(), stop)
            })
            .ok_or(gst::FlowError::Flushing)?;
        let batch = self.take_input(live, timeout, segmenter.as_deref())?;
        self.report(&batch.changes);
        let mut jobs = batch.jobs;
        if let Some(seg) = &segmenter {
            jobs.extend(self.feed_segmenter(seg, batch.vad_audio, live, batch.eos, &stop));
        }
        if let Some((job, guess)) = batch.early {
            worker.submit_early(job, guess);
        }
        let mut outgoing = batch.outgoing;
        self.add_stream_positions(&mut jobs);
        if in_step {
            self.with_state(|state| {
                for job in &jobs {
                    state.timing.add(job.span);
                }
                state.held.extend(outgoing.drain(..));
            })
            .ok_or(gst::FlowError::Flushing)?;
        }
        self.send_latest(outgoing)?;
        if in_step && !batch.eos {
            // Before a submit that may wait for the worker: a frame that need not wait
            // (the first after a flushing seek) leaves now.
            self.release(live, false)?;
        }
        for job in jobs {
            self.submit(&worker, job, live, &stop)?;
        }
        if batch.eos {
            worker.drain(&stop);
            if in_step {
                self.release(live, true)?;
            }
            self.release_audio(true, None)?;
            gst::debug!(CAT, imp = self, "all inputs ended, windows analysed");
            return Err(gst::FlowError::Eos);
        }
        if in_step {
            self.release(live, false)?;
        }
        self.release_audio(false, batch.position)?;
        Ok(gst::FlowSuccess::Ok)
    }
}

impl EmotionSense {
    /// Loads the bundle's model (shared with other elements using the same bundle and
    /// device) and the Whisper model; posts an error naming the problem when it cannot.
    fn load(&self) -> Result<(), gst::StateChangeError> {
        let settings = lock(&self.settings).clone();
        let fail = |e: gst::ErrorMessage| {
            self.post_error_message(e);
            gst::StateChangeError
        };
        // Unset: the default bundle when scripts/setup installed it; "none": no model.
        let bundle = match settings.bundle.as_deref() {
            Some(setting) => BundleChoice::parse(setting),
            None => BundleChoice::default_if_built(),
        };
        let model = match &bundle {
            BundleChoice::None => None,
            dir => {
                let options = settings
                    .model_options()
                    .map_err(|e| fail(gst::error_msg!(gst::LibraryError::Settings, ("{e}"))))?;
                let model = dir
                    .folder()
                    .and_then(|path| Model::shared(&path, options))
                    .map_err(|e| {
                        fail(gst::error_msg!(
                            gst::ResourceError::OpenRead,
                            ("Cannot use bundle {dir}: {e}")
                        ))
                    })?;
                if let Some(note) = &model.device_note {
                    gst::warning!(CAT, imp = self, "{note}");
                }
                gst::info!(
                    CAT,
                    imp = self,
                    "bundle {} ({dir}) on {:?}",
                    model.bundle.manifest.name,
                    model.device
                );
                Some(model)
            }
        };
        let whisper = self.load_whisper(&settings).map_err(fail)?;
        lock(&self.settings).loaded = Loaded { model, whisper };
        Ok(())
    }

    /// The Whisper model when speech recognition is on. An `asr-model` that cannot be
    /// loaded is an error; without one, the default model is used if scripts/setup
    /// installed it, else recognition is off (logged).
    fn load_whisper(
        &self,
        settings: &Settings,
    ) -> Result<Option<Arc<WhisperModel>>, gst::ErrorMessage> {
        if !settings.asr {
            return Ok(None);
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
                    return Ok(None);
                }
            },
        };
        let model = WhisperModel::shared(&path)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("asr-model: {e}")))?;
        lock(&self.settings).asr_model = Some(path.display().to_string());
        Ok(Some(model))
    }

    fn start_segmenter(&self, settings: &Settings) -> Result<SegmenterThread, gst::ErrorMessage> {
        let detector = match settings.vad_model() {
            Some(path) => VoiceDetector::silero(&path)
                .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("vad-model: {e}")))?,
            None => VoiceDetector::energy(),
        };
        SegmenterThread::start(detector, settings.segmenter_config()).map_err(|e| {
            gst::error_msg!(
                gst::CoreError::Failed,
                ["Could not start the speech segmenter thread: {e}"]
            )
        })
    }

    /// Stream-time positions of the windows' spans, from the video input's segment (the
    /// audio's without video).
    fn add_stream_positions(&self, jobs: &mut [WindowJob]) {
        if jobs.is_empty() {
            return;
        }
        let pad = self
            .input_pad(Input::Video)
            .or_else(|| self.input_pad(Input::Audio));
        let Some(pad) = pad else { return };
        let segment = pad.segment();
        let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else {
            return;
        };
        // Unclipped: the last window may end a little past the segment's stop.
        let stream = |rt: u64| {
            let pos = segment
                .position_from_running_time_full(gst::ClockTime::from_nseconds(rt))?
                .positive()?;
            segment
                .to_stream_time_full(pos)?
                .positive()
                .map(|t| t.nseconds())
        };
        for job in jobs {
            job.stream_span = stream(job.span.start).zip(stream(job.span.end));
        }
    }

    /// Live input: how long an input may deliver nothing (ns): `input-timeout`, or
    /// the element's latency + one window.
    pub(super) fn input_timeout(&self, state: &State) -> u64 {
        let set = lock(&self.settings).input_timeout;
        if set > 0.0 {
            return (set * SECOND as f64) as u64;
        }
        let latency = self.obj().latency().map_or(0, |l| l.nseconds());
        latency + state.assembler.config().schedule.length
    }

    /// Where the pipeline clock stands for live input (nothing for non-live).
    pub(super) fn live_clock(&self, state: &mut State, live: bool) -> LiveClock {
        let bound = self.input_timeout(state);
        let now = live
            .then(|| self.obj().current_running_time())
            .flatten()
            .map(|t| t.nseconds());
        let latency = self.obj().latency().map_or(0, |l| l.nseconds());
        state.latency_and_bound = (latency, bound);
        LiveClock {
            now,
            position: now.map(|n| n.saturating_sub(latency)),
            bound,
        }
    }

    /// Tells the user about the inputs' health: a WARNING per stall, end or jump of
    /// one input (counted in `audio-stalls`/`video-stalls`), an INFO per recovery.
    fn report(&self, changes: &[Change]) {
        for change in changes {
            let text = describe(change);
            let input = match *change {
                Change::Stalled { input, .. }
                | Change::Ended { input, .. }
                | Change::Jumped { input, .. }
                | Change::Recovered { input, .. } => input,
            };
            let details = gst::Structure::builder(INPUT_DETAILS)
                .field("input", input.name())
                .field("event", InputEventKind::of(change).as_str())
                .build();
            gst::info!(CAT, imp = self, "{text}");
            if matches!(change, Change::Stalled { .. } | Change::Ended { .. }) {
                self.shared.stalls[input as usize].fetch_add(1, Ordering::SeqCst);
            }
            if let Change::Recovered { .. } = change {
                gst::element_imp_info!(
                    self,
                    gst::StreamError::Failed,
                    ("{text}"),
                    details: details
                );
            } else {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Failed,
                    ("{text}"),
                    details: details
                );
            }
        }
    }

    /// Whether upstream is live and whether buffers wait for their window's result:
    /// decided once per start, at the first buffers, together.
    pub(super) fn decided(&self) -> Decided {
        if let Some(d) = self.with_state(|s| s.decided).flatten() {
            return d;
        }
        let pads: Vec<gst_base::AggregatorPad> = [Input::Video, Input::Audio]
            .into_iter()
            .filter_map(|i| self.input_pad(i))
            .collect();
        let mut live = false;
        for pad in pads {
            let mut q = gst::query::Latency::new();
            if pad.peer_query(&mut q) {
                live |= q.result().0;
            }
        }
        let in_step = match lock(&self.settings).result_timing {
            ResultTiming::Auto => !live,
            ResultTiming::InStep => true,
            ResultTiming::Latest => false,
        };
        let decided = Decided { live, in_step };
        let latency = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                // Stopped meanwhile: nothing to decide for.
                return decided;
            };
            // Another thread may have decided meanwhile: the first decision stands.
            if let Some(d) = state.decided {
                return d;
            }
            state.decided = Some(decided);
            state.element_latency
        };
        self.shared.in_step.store(in_step, Ordering::SeqCst);
        gst::info!(
            CAT,
            imp = self,
            "upstream is {}",
            if live { "live" } else { "not live" }
        );
        if in_step && live {
            let l = gst::ClockTime::from_nseconds(latency);
            gst::info!(CAT, imp = self, "in step with live input: latency {l}");
            self.obj().set_latency(l, Some(l));
        }
        decided
    }

    /// Posts an error if the element still has no sink pad 5 s after READY→PAUSED.
    fn watch_for_missing_inputs(&self) {
        let (watch, woken) = crossbeam_channel::bounded::<()>(0);
        if self
            .with_state(|s| s.no_inputs_watch = Some(watch))
            .is_none()
        {
            return;
        }
        let weak = self.obj().downgrade();
        let spawned = std::thread::Builder::new()
            .name("emotionsense-inputs".into())
            .spawn(move || {
                // Disconnected early when a pad is requested or the element stops.
                let timeout = Err(crossbeam_channel::RecvTimeoutError::Timeout);
                if woken.recv_timeout(Duration::from_secs(5)) != timeout {
                    return;
                }
                if let Some(obj) = weak.upgrade()
                    && obj.sink_pads().is_empty()
                    && (obj.current_state() >= gst::State::Paused
                        || obj.pending_state() == gst::State::Paused)
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
}
