//! Windowing: which spans of running time become model inputs, and assembling the
//! frames and audio of each span into a [`WindowJob`].
//!
//! `sliding` mode cuts fixed-length windows every `hop` on the running-time axis
//! (window k covers `[k·hop, k·hop + length)`); `utterance` mode takes the speech
//! segments a voice detector finds; `auto` takes those and tiles the stretches without
//! speech with windows of `length`, so the whole timeline is covered.

use std::collections::VecDeque;
use std::sync::Arc;

use gst::glib;

use crate::media::audio::time_to_sample;
use crate::media::sampler::FrameSelection;
use crate::media::{AudioRing, FramePolicy, LazyFrame, RgbImage, SampledFrames};

/// Nanoseconds per second.
pub const SECOND: u64 = 1_000_000_000;

/// Default window length (ns): the element's `window-length`, a bundle's `window.length`.
pub const DEFAULT_LENGTH: u64 = 2 * SECOND;
/// Default hop between window starts (ns).
pub const DEFAULT_HOP: u64 = SECOND;
/// Default shortest window cut by end of stream that is still analysed (ns).
pub const DEFAULT_MIN_LENGTH: u64 = SECOND / 2;
/// Default frames sampled per window (T) without a bundle.
pub const DEFAULT_FRAMES: usize = 16;
/// Default side of the sampled frames without a bundle.
pub const DEFAULT_FRAME_SIZE: usize = 224;
/// The sample rate of window audio (Hz): what the speech and audio models take.
pub const SAMPLE_RATE: u32 = 16000;

/// One window: its sequence number and running-time span in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowSpan {
    /// Sequence number, counted from 0 at running time 0 (after a flush, anew).
    pub index: u64,
    /// Start running time (ns), inclusive.
    pub start: u64,
    /// End running time (ns), exclusive.
    pub end: u64,
}

/// Fixed-length windows every `hop` nanoseconds, aligned to running time 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingSchedule {
    /// Window length (ns), > 0.
    pub length: u64,
    /// Distance between window starts (ns), > 0.
    pub hop: u64,
}

impl SlidingSchedule {
    /// Span of window `index`.
    pub fn span(&self, index: u64) -> WindowSpan {
        let start = index * self.hop;
        WindowSpan {
            index,
            start,
            end: start + self.length,
        }
    }

    /// Index of the first window whose end lies after `t`.
    pub fn first_ending_after(&self, t: u64) -> u64 {
        if t < self.length {
            0
        } else {
            (t - self.length) / self.hop + 1
        }
    }
}

/// How the assembler cuts and fills windows.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowConfig {
    /// The sliding schedule.
    pub schedule: SlidingSchedule,
    /// A window cut short by end-of-stream is still processed if at least this long (ns).
    pub min_length: u64,
    /// Frames per window (T).
    pub frames: usize,
    /// How the T frames are chosen.
    pub policy: FramePolicy,
    /// Width of the sampled frames.
    pub frame_width: usize,
    /// Height of the sampled frames.
    pub frame_height: usize,
    /// When set, frames keep their aspect ratio and are scaled (never enlarged) so
    /// their longest side is at most this; `frame_width`/`frame_height` are ignored.
    pub fit_longest_side: Option<usize>,
    /// Sample rate of the window audio (Hz).
    pub sample_rate: u32,
    /// How windows are cut: the sliding schedule, or speech spans given to
    /// [`WindowAssembler::add_utterance`] (with the silence between them tiled in
    /// `auto` mode).
    pub mode: WindowMode,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            schedule: SlidingSchedule {
                length: DEFAULT_LENGTH,
                hop: DEFAULT_HOP,
            },
            min_length: DEFAULT_MIN_LENGTH,
            frames: DEFAULT_FRAMES,
            policy: FramePolicy::Uniform,
            frame_width: DEFAULT_FRAME_SIZE,
            frame_height: DEFAULT_FRAME_SIZE,
            fit_longest_side: None,
            sample_rate: SAMPLE_RATE,
            mode: WindowMode::Auto,
        }
    }
}

/// Everything the worker needs to analyse one window; owns its data.
#[derive(Clone, Debug)]
pub struct WindowJob {
    /// Which span of running time this is.
    pub span: WindowSpan,
    /// The T frames, or `None` when the window had no video.
    pub frames: Option<FrameSelection>,
    /// Mono audio of exactly the span (silence where none arrived), or `None` without audio.
    pub audio: Option<WindowAudio>,
    /// How the window was cut. An utterance is speech the voice detector already
    /// found: the analysis transcribes it whole instead of looking for speech again.
    pub kind: WindowKind,
    /// The span as stream-time positions (ns: where in the media it is, which a seek
    /// does not reset), when known.
    pub stream_span: Option<(u64, u64)>,
    /// Live input: the input that delivered nothing for this window (it stalled or
    /// ended), so the window was analysed from the other one alone.
    pub degraded: Option<Degraded>,
}

/// Which input a live window lacked ([`WindowJob::degraded`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Degraded {
    /// No audio arrived for the window: faces only, no transcript.
    NoAudio,
    /// No video arrived for the window: voice and words only.
    NoVideo,
}

impl Degraded {
    /// The name used in results (`degraded`): `no-audio` or `no-video`.
    pub fn as_str(self) -> &'static str {
        match self {
            Degraded::NoAudio => "no-audio",
            Degraded::NoVideo => "no-video",
        }
    }

    /// The value named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Degraded::NoAudio, Degraded::NoVideo]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    /// The input that was missing.
    pub fn input(self) -> Input {
        match self {
            Degraded::NoAudio => Input::Audio,
            Degraded::NoVideo => Input::Video,
        }
    }
}

impl WindowJob {
    /// A window of `span` with neither frames nor audio: the model sees only the
    /// words it is given (`eval` on sentences, tests of the text branch).
    pub fn words_only(span: WindowSpan) -> Self {
        Self {
            span,
            frames: None,
            audio: None,
            kind: WindowKind::default(),
            stream_span: None,
            degraded: None,
        }
    }

    /// Whether `other` is the same window with the same data: span (the index aside),
    /// kind, audio samples and frames.
    pub fn same_inputs(&self, other: &WindowJob) -> bool {
        let audio = match (&self.audio, &other.audio) {
            (Some(a), Some(b)) => a.real == b.real && a.samples == b.samples,
            (None, None) => true,
            _ => false,
        };
        let frames = match (&self.frames, &other.frames) {
            (Some(a), Some(b)) => {
                a.times == b.times
                    && a.real == b.real
                    && a.frames.len() == b.frames.len()
                    && a.frames
                        .iter()
                        .zip(&b.frames)
                        .zip(&a.times)
                        // The same frame of the input, or padding on both sides.
                        .all(|((x, y), t)| t.is_none() || Arc::ptr_eq(x, y))
            }
            (None, None) => true,
            _ => false,
        };
        (self.span.start, self.span.end, self.kind)
            == (other.span.start, other.span.end, other.kind)
            && audio
            && frames
    }
}

/// How a window was cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// From the sliding schedule.
    #[default]
    Sliding,
    /// A speech segment found by the voice detector.
    Utterance,
    /// A stretch without speech (auto mode).
    Silence,
}

impl WindowKind {
    /// The name used in results (`window-kind`, JSONL `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Sliding => "sliding",
            WindowKind::Utterance => "utterance",
            WindowKind::Silence => "silence",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            WindowKind::Sliding,
            WindowKind::Utterance,
            WindowKind::Silence,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The audio of one window.
#[derive(Clone, Debug)]
pub struct WindowAudio {
    /// Mono samples in [-1, 1], `(end - start) · rate` of them.
    pub samples: Vec<f32>,
    /// How many samples came from the stream (the rest is silence filling gaps).
    pub real: usize,
    /// Sample rate (Hz).
    pub rate: u32,
    /// Whether it came from live input: its transcription keeps to a shorter audio
    /// context for latency ([`crate::speech::TranscriberConfig::wide_context`]).
    pub live: bool,
}

/// How running time is cut into windows (the element's `window-mode`).
#[derive(
    Debug,
    Eq,
    PartialEq,
    Hash,
    Clone,
    Copy,
    Default,
    glib::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u32)]
#[enum_type(name = "GstEmotionWindowMode")]
pub enum WindowMode {
    /// Fixed-length windows every `hop`.
    #[enum_value(
        name = "Sliding: windows of window-length seconds every window-hop seconds",
        nick = "sliding"
    )]
    Sliding = 0,
    /// One window per speech segment the voice detector finds.
    #[enum_value(
        name = "Utterance: one window per speech segment (up to max-utterance-length seconds)",
        nick = "utterance"
    )]
    Utterance = 1,
    /// Utterance windows where there is speech; the stretches without speech are cut
    /// into windows of window-length seconds, so every second is covered.
    #[default]
    #[enum_value(
        name = "Auto: utterance windows where there is speech, window-length windows over the \
                stretches without it (the whole timeline is covered)",
        nick = "auto"
    )]
    Auto = 2,
}

impl WindowMode {
    /// Whether windows follow speech found by a voice detector.
    pub fn follows_speech(self) -> bool {
        self != WindowMode::Sliding
    }
}

/// One of the two inputs a window is assembled from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Video frames.
    Video,
    /// Audio samples.
    Audio,
}

impl Input {
    /// The element's pad (and pad template) name of this input.
    pub fn name(self) -> &'static str {
        match self {
            Input::Video => "video",
            Input::Audio => "audio",
        }
    }

    /// The other input.
    pub fn other(self) -> Self {
        match self {
            Input::Video => Input::Audio,
            Input::Audio => Input::Video,
        }
    }
}

/// How far one input has delivered data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputState {
    /// There is no such input (pad not linked, or found dead).
    Absent,
    /// The input exists but has not delivered data yet.
    Pending,
    /// Data has arrived up to the running time (ns).
    Active(u64),
    /// Live input: data arrived up to the running time (ns), then nothing for longer
    /// than the element allows; windows are cut without it until it delivers again.
    Stalled(u64),
    /// The input ended (EOS).
    Ended,
}

impl InputState {
    fn covers(self, t: u64, wait_for_pending: bool) -> bool {
        match self {
            InputState::Absent | InputState::Ended | InputState::Stalled(_) => true,
            InputState::Pending => !wait_for_pending,
            InputState::Active(reached) => reached >= t,
        }
    }

    /// Whether data (or a live timeout) reached `t` — not just that the input does
    /// not hold it back.
    fn reached(self, t: u64) -> bool {
        matches!(self, InputState::Active(r) | InputState::Stalled(r) if r >= t)
    }

    fn advance(&mut self, t: u64) {
        if let InputState::Active(r) | InputState::Stalled(r) = self {
            *r = (*r).max(t);
        }
    }
}

struct OpenWindow {
    span: WindowSpan,
    frames: SampledFrames,
    kind: WindowKind,
}

/// Turns a stream of frames and audio into complete windows.
///
/// Feed it with [`push_frame`](Self::push_frame) and [`push_audio`](Self::push_audio)
/// in running-time order per input, then collect [`take_complete`](Self::take_complete).
/// A window is complete when every present input has delivered data past its end.
pub struct WindowAssembler {
    config: WindowConfig,
    open: VecDeque<OpenWindow>,
    next_to_create: Option<u64>,
    held: Option<(u64, Arc<LazyFrame>)>,
    video: InputState,
    audio: InputState,
    ring: AudioRing,
    video_end: u64,
    wait_for_pending: bool,
    /// Utterance mode: recent frames (windows are announced after their start).
    history: VecDeque<(u64, Arc<LazyFrame>)>,
    next_utterance: u64,
    keep_from: u64,
    /// `auto` mode: running time up to which windows (utterances or silence tiles)
    /// have been made.
    covered_until: u64,
    /// A frame has been seen (a still image has one frame and no duration).
    any_frame: bool,
    /// Utterance and auto modes: no speech can start before this any more.
    speech_horizon: u64,
    /// Live input: windows without data from an input are marked [`Degraded`] (or
    /// skipped when both lack it), and running time never goes back per input.
    live: bool,
    /// Live input: the last stretch each input delivered nothing in, `[from, to)`
    /// (video, audio), recorded when it delivers again after a stall.
    gaps: [Option<(u64, u64)>; 2],
    /// Running time of the last frame pushed.
    last_frame: Option<u64>,
    /// Windows skipped because no input delivered anything in them (live).
    skipped: u64,
}

impl WindowAssembler {
    /// An assembler with both inputs absent; declare them with [`set_input`](Self::set_input).
    pub fn new(config: WindowConfig) -> Self {
        let ring = AudioRing::new(config.sample_rate, 40_000_000);
        Self {
            config,
            open: VecDeque::new(),
            next_to_create: None,
            held: None,
            video: InputState::Absent,
            audio: InputState::Absent,
            ring,
            video_end: 0,
            wait_for_pending: true,
            history: VecDeque::new(),
            next_utterance: 0,
            keep_from: 0,
            covered_until: 0,
            any_frame: false,
            speech_horizon: 0,
            live: false,
            gaps: [None; 2],
            last_frame: None,
            skipped: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    fn state_mut(&mut self, input: Input) -> &mut InputState {
        match input {
            Input::Video => &mut self.video,
            Input::Audio => &mut self.audio,
        }
    }

    /// Declares whether `input` exists.
    pub fn set_input(&mut self, input: Input, present: bool) {
        let state = self.state_mut(input);
        *state = match (present, *state) {
            (false, _) => InputState::Absent,
            (true, InputState::Absent) => InputState::Pending,
            (true, s) => s,
        };
    }

    /// How far `input` has delivered data.
    pub fn input_state(&self, input: Input) -> InputState {
        match input {
            Input::Video => self.video,
            Input::Audio => self.audio,
        }
    }

    /// Live streams do not wait for an input that has not delivered anything yet,
    /// mark windows an input delivered nothing for ([`Degraded`]), skip those neither
    /// did, and ignore frames whose running time goes back.
    pub fn set_live(&mut self, live: bool) {
        self.wait_for_pending = !live;
        self.live = live;
    }

    /// Live input: `input` delivered nothing for too long. Windows are cut without it
    /// (auto and utterance modes tile the video with windows of the window length
    /// while the audio is missing) until it delivers again. Returns whether it was
    /// delivering (a new stall).
    pub fn stall(&mut self, input: Input) -> bool {
        let state = self.state_mut(input);
        match *state {
            InputState::Active(r) => {
                *state = InputState::Stalled(r);
                true
            }
            InputState::Pending => {
                *state = InputState::Stalled(0);
                true
            }
            _ => false,
        }
    }

    /// Running time (ns) up to which `input` delivered real data (0 before any).
    pub fn data_end_of(&self, input: Input) -> u64 {
        match input {
            Input::Video => self.video_end,
            Input::Audio if self.ring.is_empty() => 0,
            Input::Audio => self.ring.end_time(),
        }
    }

    /// A stalled `input` delivers again at running time `t`: the stretch since its
    /// data ended is remembered as a gap.
    fn resume(&mut self, input: Input, t: u64) {
        if let InputState::Stalled(_) = self.input_state(input) {
            let from = self.data_end_of(input);
            if t > from {
                self.gaps[input as usize] = Some((from, t));
            }
            if input == Input::Audio {
                // Windows before the stall are cut: start the audio anew instead of
                // filling the gap with silence; the video alone is cut up to here.
                self.ring.clear();
                if self.config.mode.follows_speech() {
                    self.tile_silence(t, true);
                }
            }
        }
    }

    /// Windows skipped since the last call because no input delivered anything in
    /// them (live input).
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// Live input: whether `input` delivered nothing for the window `span` — its data
    /// ended before the window started, or the window lies in its last gap.
    fn lacks(&self, input: Input, span: &WindowSpan) -> bool {
        if !self.live || self.input_state(input) == InputState::Absent {
            return false;
        }
        let in_gap = self.gaps[input as usize]
            .is_some_and(|(from, to)| span.start >= from && span.end <= to);
        in_gap || span.start >= self.data_end_of(input)
    }

    fn ensure_windows(&mut self, upto: u64) {
        if self.config.mode != WindowMode::Sliding {
            return;
        }
        let schedule = self.config.schedule;
        let mut next = match self.next_to_create {
            Some(n) => n,
            None => schedule.first_ending_after(upto),
        };
        loop {
            let span = schedule.span(next);
            if span.start > upto {
                break;
            }
            let mut frames = SampledFrames::new(span.start);
            if let Some((t, f)) = &self.held {
                frames.push(*t, f.clone());
            }
            self.open.push_back(OpenWindow {
                span,
                frames,
                kind: WindowKind::Sliding,
            });
            next += 1;
        }
        self.next_to_create = Some(next);
    }

    /// Adds the video frame that starts at running time `t` (ns) and lasts `duration`.
    /// `frame` is the frame at the configured size, or what makes it when a window
    /// picks it.
    pub fn push_frame(&mut self, t: u64, duration: Option<u64>, frame: Arc<LazyFrame>) {
        self.take_frame(t, duration, Some(frame));
    }

    /// A video frame at running time `t` that is not kept (over a frame-rate limit):
    /// the video has reached `t + duration`, and the frame before stays on screen.
    pub fn skip_frame(&mut self, t: u64, duration: Option<u64>) {
        self.take_frame(t, duration, None);
    }

    fn take_frame(&mut self, t: u64, duration: Option<u64>, frame: Option<Arc<LazyFrame>>) {
        if self.video == InputState::Ended || self.live && self.last_frame.is_some_and(|l| t < l) {
            return;
        }
        self.last_frame = Some(t);
        self.resume(Input::Video, t);
        self.ensure_windows(t);
        self.video_end = self.video_end.max(t + duration.unwrap_or(0));
        if let Some(frame) = frame {
            for w in self.open.iter_mut() {
                // A window created ahead of video by audio (t before its start): this
                // frame is on screen at its start.
                if t < w.span.end {
                    w.frames.push(t, frame.clone());
                }
            }
            self.any_frame = true;
            if self.config.mode.follows_speech() {
                self.history.push_back((t, frame.clone()));
                self.trim_history();
            }
            self.held = Some((t, frame));
        }
        let reached = t + duration.unwrap_or(0);
        self.video = match self.video {
            InputState::Active(r) => InputState::Active(r.max(reached)),
            _ => InputState::Active(reached),
        };
    }

    /// Adds mono audio starting at running time `t` (ns). Returns the sample index
    /// where the kept samples start and how many leading ones were dropped because
    /// audio was already there (overlapping timestamps), so a voice detector can be
    /// fed the same timeline; `None` when the input has ended.
    pub fn push_audio(&mut self, t: u64, samples: &[f32]) -> Option<(u64, usize)> {
        if self.audio == InputState::Ended {
            return None;
        }
        self.resume(Input::Audio, t);
        let outcome = self.ring.push(t, samples);
        let dropped = outcome.overlap_dropped as usize;
        let first = self.ring.end_index() - (samples.len() - dropped) as u64;
        let end = self.ring.end_time();
        self.ensure_windows(end.saturating_sub(1).max(t));
        self.audio = match self.audio {
            InputState::Active(r) => InputState::Active(r.max(end)),
            _ => InputState::Active(end),
        };
        Some((first, dropped))
    }

    /// Moves `input` on to running time `t` without data (a GAP: the stream says
    /// nothing is there); a stalled input counts as delivering again.
    pub fn push_gap(&mut self, input: Input, t: u64) {
        if let InputState::Stalled(r) = self.input_state(input) {
            *self.state_mut(input) = InputState::Active(r);
        }
        match self.state_mut(input) {
            state @ InputState::Pending => *state = InputState::Active(t),
            state => state.advance(t),
        }
        self.ensure_windows(t.saturating_sub(1));
    }

    /// Marks `input` as ended.
    pub fn end_input(&mut self, input: Input) {
        let state = self.state_mut(input);
        if *state != InputState::Absent {
            *state = InputState::Ended;
        }
    }

    /// Utterance and auto modes: adds the window `[start, end)` (running time, ns),
    /// found by the speech segmenter after the fact; its frames come from the recent
    /// history. In auto mode the silence before it is tiled first.
    pub fn add_utterance(&mut self, start: u64, end: u64) {
        if self.config.mode == WindowMode::Auto {
            self.tile_silence(start, true);
        }
        let start = start.max(self.covered_until);
        if end <= start {
            return;
        }
        self.open_window(start, end, WindowKind::Utterance);
        self.covered_until = end;
    }

    /// Auto mode: no speech can start before running time `t` any more, so the
    /// silence up to it is cut into windows of the configured length. With `final_`
    /// (speech started at `t`) the silence ends there: its last, shorter piece is cut
    /// too, without waiting for the utterance to end.
    pub fn advance_silence(&mut self, t: u64, final_: bool) {
        self.speech_horizon = self.speech_horizon.max(t);
        if self.config.mode == WindowMode::Auto {
            self.tile_silence(t, final_);
        }
    }

    /// Running time before which every window is already made (it may still be open):
    /// utterance and auto modes, where windows are learnt after the fact.
    pub fn settled_until(&self) -> u64 {
        let open = self.open.front().map_or(u64::MAX, |w| w.span.start);
        match self.config.mode {
            WindowMode::Sliding => u64::MAX,
            WindowMode::Utterance => open.min(self.speech_horizon),
            WindowMode::Auto => open.min(self.covered_until),
        }
    }

    /// Tiles `[covered_until, t)` with windows of the window length; with `partial`
    /// the last, shorter one too when at least `min_length` long.
    fn tile_silence(&mut self, t: u64, partial: bool) {
        let length = self.config.schedule.length;
        while self.covered_until + length <= t {
            let start = self.covered_until;
            self.open_window(start, start + length, WindowKind::Silence);
            self.covered_until = start + length;
        }
        let rest = t.saturating_sub(self.covered_until);
        if partial && rest > 0 && rest >= self.config.min_length {
            let start = self.covered_until;
            self.open_window(start, t, WindowKind::Silence);
            self.covered_until = t;
        }
    }

    /// Opens the window `[start, end)` made after the fact, with frames from history.
    fn open_window(&mut self, start: u64, end: u64, kind: WindowKind) {
        let span = WindowSpan {
            index: self.next_utterance,
            start,
            end,
        };
        self.next_utterance += 1;
        let frames = self.frames_from_history(start, end);
        self.open.push_back(OpenWindow { span, frames, kind });
    }

    fn frames_from_history(&self, start: u64, end: u64) -> SampledFrames {
        let mut frames = SampledFrames::new(start);
        for (t, f) in self.history.iter().filter(|(t, _)| *t < end) {
            frames.push(*t, f.clone());
        }
        frames
    }

    /// Utterance and auto modes: the window the speech segment `[start, end)` will
    /// become ([`add_utterance`](Self::add_utterance)), when every present input has
    /// already delivered data up to `end` (else `None`) — so that it can be analysed
    /// before the segmenter confirms the segment. Changes nothing; the index is a
    /// guess (compare jobs with [`WindowJob::same_inputs`]).
    pub fn preview_utterance(&self, start: u64, end: u64) -> Option<WindowJob> {
        let start = start.max(self.covered_until);
        let covered = self.video.covers(end, true) && self.audio.covers(end, true);
        if !self.config.mode.follows_speech() || end <= start || !covered || self.all_ended() {
            return None;
        }
        let span = WindowSpan {
            index: self.next_utterance,
            start,
            end,
        };
        let frames = self.frames_from_history(start, end);
        self.assemble_data(span, &frames, WindowKind::Utterance)
    }

    /// Utterance mode: data before running time `t` will not be asked for again
    /// (no utterance can start earlier), so it can be forgotten.
    pub fn set_keep_from(&mut self, t: u64) {
        self.keep_from = self.keep_from.max(t);
        self.trim_history();
    }

    /// Running time before which no window will ask for data again.
    fn keep_time(&self) -> Option<u64> {
        let open = self.open.front().map(|w| w.span.start);
        match self.config.mode {
            WindowMode::Sliding => open.or_else(|| {
                self.next_to_create
                    .map(|n| self.config.schedule.span(n).start)
            }),
            WindowMode::Utterance => Some(open.map_or(self.keep_from, |o| o.min(self.keep_from))),
            WindowMode::Auto => {
                Some(open.map_or(self.covered_until, |o| o.min(self.covered_until)))
            }
        }
    }

    fn trim_history(&mut self) {
        let Some(keep) = self.keep_time() else { return };
        // Keep the frame on screen at `keep`.
        while self.history.len() > 1 && self.history[1].0 <= keep {
            self.history.pop_front();
        }
    }

    /// Live timeout: inputs that have not delivered data up to `t` are treated as if
    /// they had (missing audio is silence, the last frame stays on screen).
    pub fn advance_to(&mut self, t: u64) {
        self.video.advance(t);
        self.audio.advance(t);
        if self.next_to_create.is_some() {
            self.ensure_windows(t);
        }
    }

    /// End of the earliest window not yet complete, once any data has arrived.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.config.mode.follows_speech() {
            return self.open.front().map(|w| w.span.end);
        }
        let index = self
            .open
            .front()
            .map(|w| w.span.index)
            .or(self.next_to_create)?;
        Some(self.config.schedule.span(index).end)
    }

    /// True when every present input has ended.
    pub fn all_ended(&self) -> bool {
        matches!(self.video, InputState::Absent | InputState::Ended)
            && matches!(self.audio, InputState::Absent | InputState::Ended)
    }

    /// Removes and returns the windows whose span every present input has covered.
    pub fn take_complete(&mut self) -> Vec<WindowJob> {
        // Auto mode without audio to listen to: all of the video is silence. Live,
        // audio that stalled or ended leaves the video to be cut the same way (in
        // utterance mode too, so that windows keep coming).
        let no_audio = match self.audio {
            InputState::Absent => self.config.mode == WindowMode::Auto,
            InputState::Pending => self.config.mode == WindowMode::Auto && !self.wait_for_pending,
            InputState::Stalled(_) | InputState::Ended => self.live,
            InputState::Active(_) => false,
        };
        if self.config.mode.follows_speech()
            && no_audio
            && let InputState::Active(reached) = self.video
        {
            if self.config.mode == WindowMode::Utterance {
                // Utterance windows only where there was speech: the video alone is
                // cut from where the audio stopped.
                let audio_end = self.data_end_of(Input::Audio);
                self.covered_until = self.covered_until.max(audio_end);
            }
            self.tile_silence(reached, false);
        }
        let mut jobs = Vec::new();
        while let Some(w) = self.open.front() {
            let end = w.span.end;
            let video_ok = self.video.covers(end, self.wait_for_pending);
            let audio_ok = self.audio.covers(end, self.wait_for_pending);
            // Something must have reached the end: two inputs that are stalled, ended
            // or absent do not make a window complete.
            let reached = self.video.reached(end) || self.audio.reached(end);
            if !(video_ok && audio_ok && reached) || self.all_ended() {
                break;
            }
            let w = self.open.pop_front().expect("front exists");
            jobs.extend(self.assemble(w.span, &w.frames, w.kind));
        }
        self.trim_audio();
        jobs
    }

    /// End of stream: returns every remaining window, those cut short by the end of
    /// the data included when at least `min_length` long.
    pub fn finish(&mut self) -> Vec<WindowJob> {
        let mut data_end = self.data_end();
        if data_end == 0 && self.any_frame {
            // A still image: one frame without duration is one short window.
            data_end = self.config.min_length.max(SECOND / 10);
        }
        if data_end > 0 && self.next_to_create.is_some() {
            self.ensure_windows(data_end - 1);
        }
        if self.config.mode == WindowMode::Auto {
            self.tile_silence(data_end, true);
        }
        let mut jobs = Vec::new();
        while let Some(w) = self.open.pop_front() {
            let mut span = w.span;
            if span.start >= data_end {
                continue;
            }
            if span.end > data_end {
                span.end = data_end;
                if span.end - span.start < self.config.min_length {
                    continue;
                }
            }
            jobs.extend(self.assemble(span, &w.frames, w.kind));
        }
        jobs
    }

    /// Running time (ns) of the end of all data received.
    pub fn data_end(&self) -> u64 {
        let audio_end = if self.ring.is_empty() {
            0
        } else {
            self.ring.end_time()
        };
        self.video_end.max(audio_end)
    }

    /// Forgets all data and windows (flushing seek); input presence is kept.
    pub fn reset(&mut self) {
        self.open.clear();
        self.next_to_create = None;
        self.held = None;
        self.ring.clear();
        self.video_end = 0;
        self.history.clear();
        self.next_utterance = 0;
        self.keep_from = 0;
        self.covered_until = 0;
        self.any_frame = false;
        self.speech_horizon = 0;
        self.gaps = [None; 2];
        self.last_frame = None;
        for s in [&mut self.video, &mut self.audio] {
            if *s != InputState::Absent {
                *s = InputState::Pending;
            }
        }
    }

    fn sample(&self, t: u64) -> u64 {
        time_to_sample(t, self.config.sample_rate)
    }

    /// The window's job, or `None` (counted as skipped) when live input delivered
    /// nothing at all for it.
    fn assemble(
        &mut self,
        span: WindowSpan,
        frames: &SampledFrames,
        kind: WindowKind,
    ) -> Option<WindowJob> {
        let job = self.assemble_data(span, frames, kind);
        if job.is_none() {
            self.skipped += 1;
        }
        job
    }

    fn assemble_data(
        &self,
        span: WindowSpan,
        frames: &SampledFrames,
        kind: WindowKind,
    ) -> Option<WindowJob> {
        let no_video = self.lacks(Input::Video, &span);
        let no_audio = self.lacks(Input::Audio, &span);
        let has_video = self.video != InputState::Absent && !no_video;
        let has_audio = self.audio != InputState::Absent && !no_audio;
        if !has_video && !has_audio {
            return None;
        }
        let degraded = match (no_video, no_audio) {
            (true, _) => Some(Degraded::NoVideo),
            (_, true) => Some(Degraded::NoAudio),
            _ => None,
        };
        let (w, h) = (self.config.frame_width, self.config.frame_height);
        let frames = if self.video == InputState::Absent || no_video {
            None
        } else {
            frames.select(self.config.policy, self.config.frames, span.end, || {
                RgbImage::black(w, h)
            })
        };
        let audio =
            (self.audio != InputState::Absent && !no_audio && !self.ring.is_empty()).then(|| {
                let (samples, real) = self
                    .ring
                    .extract(self.sample(span.start), self.sample(span.end));
                WindowAudio {
                    samples,
                    real,
                    rate: self.config.sample_rate,
                    live: self.live,
                }
            });
        Some(WindowJob {
            span,
            frames,
            audio,
            kind,
            stream_span: None,
            degraded,
        })
    }

    fn trim_audio(&mut self) {
        if let Some(t) = self.keep_time() {
            let idx = self.sample(t);
            self.ring.discard_before(idx);
        }
    }
}

#[cfg(test)]
mod tests;
