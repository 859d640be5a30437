//! Speech recognition with whisper.cpp (whisper-rs): a [`Transcriber`] owned by one
//! worker thread (one context per model for the process; whisper states borrowed
//! from the model's pool, [`pool`]), tuned for short windows — `audio_ctx` sized
//! to the audio, tokens bounded by the audio's length, no conditioning on earlier
//! windows — with the safeguards of Whisper's reference transcriber: a decode whose
//! text compresses too well (a repetition loop) or whose tokens are improbable is
//! retried at rising temperatures, a segment is dropped as non-speech only when Whisper
//! both calls it non-speech and is unsure of its words, and repeated phrases left in
//! the best attempt are collapsed. Silence and noise give no text.
//!
//! whisper.cpp's own log lines go to the GStreamer debug category `emotionwhisper`
//! (`GST_DEBUG=emotionwhisper:6`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::media::rms;
use crate::speculation::Speculation;

mod pool;
pub mod segmenter;
pub mod vad;

pub use pool::default_limit as default_whisper_runs;

pub use vad::{SegmenterConfig, VoiceDetector, default_vad_model, speech_segments};

static WHISPER_CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "emotionwhisper",
        gst::DebugColorFlags::empty(),
        Some("whisper.cpp inside emotionsense"),
    )
});

/// Forwards the `log` records whisper-rs produces for whisper.cpp/ggml to GStreamer.
struct GstLog;

impl log::Log for GstLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Error => gst::DebugLevel::Error,
            log::Level::Warn => gst::DebugLevel::Warning,
            log::Level::Info => gst::DebugLevel::Info,
            log::Level::Debug => gst::DebugLevel::Debug,
            log::Level::Trace => gst::DebugLevel::Trace,
        };
        let text = record.args().to_string();
        let text = text.trim_end();
        if !text.is_empty() {
            gst::log_with_level!(*WHISPER_CAT, level, "{text}");
        }
    }

    fn flush(&self) {}
}

/// Routes whisper.cpp's logging into the `emotionwhisper` debug category (once per
/// process; if the application installed its own `log` logger, that one is kept).
fn route_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&GstLog).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        whisper_rs::install_logging_hooks();
    });
}

/// File name of the Whisper model scripts/setup builds (tiny.en, q8_0).
pub const DEFAULT_MODEL_FILE: &str = "ggml-tiny.en-q8_0.bin";

/// The Whisper model scripts/setup installs, if it is there:
/// `$GST_EMOTION_CACHE/whisper/` (default `~/.cache/gst-emotion/whisper/`).
pub fn default_model() -> Option<PathBuf> {
    let path = crate::paths::cache_dir()?
        .join("whisper")
        .join(DEFAULT_MODEL_FILE);
    path.is_file().then_some(path)
}

/// Why speech recognition failed.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// The model file could not be loaded.
    #[error("{path}: cannot load the Whisper model: {reason}")]
    Load {
        /// Model path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Transcription failed.
    #[error("transcription failed: {0}")]
    Transcribe(String),
    /// The guess the transcription was for was withdrawn ([`Transcriber::set_speculation`]).
    #[error("transcription stopped: the window was withdrawn")]
    Withdrawn,
}

/// Settings of a transcriber.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriberConfig {
    /// whisper.cpp ggml model file.
    pub model: PathBuf,
    /// Language code (`en`, `de`, ...) or `auto` (multilingual models only).
    pub language: String,
    /// CPU threads for whisper.cpp.
    pub threads: usize,
    /// Segments whose no-speech probability is above this are dropped.
    pub no_speech_threshold: f32,
    /// Audio quieter than this RMS (full scale 1.0) is treated as silence.
    pub silence_rms: f64,
    /// Most tokens decoded per segment (also bounded by the audio's length).
    pub max_tokens: usize,
    /// Beam width of the first decode (1: greedy).
    pub beam_size: usize,
    /// Temperatures tried in turn while the output looks wrong (the first is the
    /// greedy or beam decode).
    pub temperatures: Vec<f32>,
    /// Output whose gzip compression ratio is above this is a repetition loop.
    pub compression_ratio_threshold: f64,
    /// Output whose mean token log-probability is below this is unreliable.
    pub logprob_threshold: f64,
    /// Give the first decode room after the speech ([`wide_audio_context`]): fewer
    /// errors, a costlier encoder. Without it the first decode gets
    /// [`audio_context`] and only one that loops is decoded again with room (live
    /// input, where latency counts).
    pub wide_context: bool,
}

impl TranscriberConfig {
    /// Defaults for `model`: English, one thread, no-speech above 0.6 dropped, silence
    /// below −50 dBFS, at most 96 tokens.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            language: "en".into(),
            threads: 1,
            no_speech_threshold: 0.6,
            silence_rms: 0.003,
            max_tokens: 96,
            beam_size: 1,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: 2.4,
            logprob_threshold: -1.0,
            wide_context: true,
        }
    }
}

/// A loaded Whisper model; share it between workers with `Arc`, give each worker its
/// own [`Transcriber`].
pub struct WhisperModel {
    ctx: WhisperContext,
    path: PathBuf,
    /// The states transcriptions borrow (at most one per core by default).
    states: pool::StatePool<WhisperState>,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperModel")
            .field("path", &self.path)
            .finish()
    }
}

/// Whisper models loaded in this process, by file (shared while anyone holds them).
static WHISPERS: LazyLock<
    std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Weak<WhisperModel>>>,
> = LazyLock::new(Default::default);

/// Whisper model loads in this process (a shared model counts once).
static WHISPER_LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl WhisperModel {
    /// The model in `path`, loaded once per process: every element, stream and request
    /// shares it (each transcriber has its own whisper state).
    pub fn shared(path: &Path) -> Result<Arc<Self>, SpeechError> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut registry = WHISPERS.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|_, w| w.strong_count() > 0);
        if let Some(m) = registry.get(&key).and_then(std::sync::Weak::upgrade) {
            return Ok(m);
        }
        let model = Self::load(path)?;
        registry.insert(key, Arc::downgrade(&model));
        Ok(model)
    }

    /// How many Whisper models this process has loaded.
    pub fn loads() -> u64 {
        WHISPER_LOADS.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Loads a ggml model file; at most [`default_whisper_runs`] transcriptions of it
    /// run at once.
    pub fn load(path: &Path) -> Result<Arc<Self>, SpeechError> {
        Self::load_with(path, pool::default_limit())
    }

    /// Loads a ggml model file whose transcriptions run at most `runs` at once (each
    /// run needs a whisper state of its own: tens of MB).
    pub fn load_with(path: &Path, runs: usize) -> Result<Arc<Self>, SpeechError> {
        route_logging();
        let err = |reason: String| SpeechError::Load {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(err(
                "no such file (scripts/setup builds the default one)".into()
            ));
        }
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| err(format!("{e} (not a whisper.cpp ggml model?)")))?;
        let first = new_state(&ctx, path)?;
        WHISPER_LOADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Arc::new(Self {
            ctx,
            path: path.to_path_buf(),
            states: pool::StatePool::new(first, runs),
        }))
    }

    /// A whisper state of this model, for its pool.
    fn new_state(&self) -> Result<WhisperState, SpeechError> {
        new_state(&self.ctx, &self.path)
    }

    /// The most transcriptions of this model that run at once (the rest wait their
    /// turn), and how many whisper states exist so far.
    pub fn runs(&self) -> (usize, usize) {
        (self.states.limit(), self.states.made())
    }

    /// Whether the model knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }
}

/// A new whisper state (decoding caches and buffers) of the model `ctx` loaded from
/// `path`.
fn new_state(ctx: &WhisperContext, path: &Path) -> Result<WhisperState, SpeechError> {
    ctx.create_state().map_err(|e| SpeechError::Load {
        path: path.display().to_string(),
        reason: format!("cannot create a whisper state: {e}"),
    })
}

/// One recognised stretch of speech, times in seconds from the start of the audio.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Start (s).
    pub start: f64,
    /// End (s).
    pub end: f64,
    /// Text.
    pub text: String,
    /// Whisper's probability that the segment holds no speech.
    pub no_speech: f32,
    /// Words with their times (from whisper.cpp's token timestamps).
    pub words: Vec<Word>,
}

/// One recognised word, times in seconds from the start of the audio.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    /// The word as decoded (punctuation attached).
    pub text: String,
    /// Start (s).
    pub start: f64,
    /// End (s).
    pub end: f64,
}

/// Groups decoded tokens `(text, t0, t1)` into words: a token starting with a space
/// starts a new word; special tokens (`[_…]`, `<|…|>`) are skipped.
fn words_from_tokens(tokens: &[(String, f64, f64)]) -> Vec<Word> {
    let mut words: Vec<Word> = Vec::new();
    for (text, t0, t1) in tokens {
        if text.starts_with("[_") || text.starts_with("<|") || text.is_empty() {
            continue;
        }
        match words.last_mut() {
            Some(w) if !text.starts_with(' ') => {
                w.text.push_str(text);
                w.end = *t1;
            }
            _ => words.push(Word {
                text: text.trim_start().to_string(),
                start: *t0,
                end: *t1,
            }),
        }
    }
    words.retain(|w| !w.text.is_empty());
    words
}

/// What was said in a stretch of audio.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    /// The segments that passed the gates.
    pub segments: Vec<Segment>,
    /// Decodes that were retried (with more audio context, or at a higher
    /// temperature).
    pub fallbacks: u32,
    /// Whether repeated phrases had to be collapsed in the final text.
    pub collapsed: bool,
}

/// One decode of a stretch of audio, before the gates.
struct Decode {
    segments: Vec<Segment>,
    /// Mean log-probability of the text tokens of each segment.
    segment_logprobs: Vec<f64>,
    /// Mean log-probability of all text tokens.
    avg_logprob: f64,
    /// Highest no-speech probability of the segments.
    no_speech: f32,
    text: String,
}

/// gzip-style compression ratio of `text` (Whisper's repetition measure): bytes over
/// zlib-compressed bytes; above ~2.4 the text repeats itself.
pub fn compression_ratio(text: &str) -> f64 {
    use std::io::Write;
    if text.is_empty() {
        return 0.0;
    }
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = enc.write_all(text.as_bytes());
    let compressed = enc.finish().map(|v| v.len()).unwrap_or(text.len());
    text.len() as f64 / compressed.max(1) as f64
}

/// The encoder frames (50 a second, 1500 = Whisper's 30 s) the first decode of
/// `seconds` of live audio looks at: the audio and 0.3 s, at least 256 (5.1 s).
/// Fewer frames than 30 s make the encoder cheaper.
pub fn audio_context(seconds: f64) -> i32 {
    ((seconds * 50.0).ceil() as i32 + 16).clamp(256, 1500)
}

/// The encoder frames a decode of a file's audio, or one that looped, looks at: half
/// as much again as the audio, at least 384 (7.7 s).
///
/// Too little context after the speech makes Whisper repeat itself: with 256 frames
/// tiny.en said 16 of 260 natural-voice dev sentences (2–3 s) twice or three times
/// over, its segments timed at whole seconds — 9 points of word error rate. With
/// these none loops (docs/default-bundle.md has the measurements).
pub fn wide_audio_context(seconds: f64) -> i32 {
    ((seconds * 50.0 * 1.5).ceil() as i32 + 16).clamp(384, 1500)
}

/// Whether a decode's text repeats itself back to back more than speech does
/// ([`collapse_repeats`] would cut it).
fn repeats_itself(text: &str) -> bool {
    collapse_repeats(text).split_whitespace().count() < text.split_whitespace().count()
}

/// `text` with any phrase repeated back to back more often than speech does cut to
/// one occurrence: a word more than 3 times in a row, a phrase of 2 or 3 words more
/// than twice, a phrase of 4+ words more than once (Whisper's repetition loop).
pub fn collapse_repeats(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let norm: Vec<String> = words
        .iter()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .collect();
    let mut keep = vec![true; words.len()];
    let mut i = 0;
    while i < words.len() {
        let mut advanced = false;
        // The shortest repeating phrase first: "in in in in" is "in" four times.
        for n in 1..=24.min(words.len() - i) {
            let limit = match n {
                1 => 3,
                2 | 3 => 2,
                _ => 1,
            };
            let mut reps = 1;
            while i + (reps + 1) * n <= words.len()
                && norm[i..i + n] == norm[i + reps * n..i + (reps + 1) * n]
            {
                reps += 1;
            }
            if reps > limit {
                keep[i + n..i + reps * n]
                    .iter_mut()
                    .for_each(|k| *k = false);
                i += reps * n;
                advanced = true;
                break;
            }
        }
        if !advanced {
            i += 1;
        }
    }
    words
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(w, _)| *w)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Transcript {
    /// All segment texts joined with spaces.
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Whisper's markers for non-speech ("[BLANK_AUDIO]", "(music)", "[Applause]", "*sigh*").
fn is_annotation(text: &str) -> bool {
    let t = text.trim();
    t.is_empty()
        || (t.starts_with('[') && t.ends_with(']'))
        || (t.starts_with('(') && t.ends_with(')'))
        || (t.starts_with('*') && t.ends_with('*'))
}

/// A worker's speech recogniser; each transcription borrows a whisper.cpp state from
/// the model's pool.
pub struct Transcriber {
    model: Arc<WhisperModel>,
    config: TranscriberConfig,
    /// While set: the guess this transcription is for; withdrawing it aborts the run.
    speculation: Option<Speculation>,
}

impl Transcriber {
    /// A recogniser on `model` with `config` (its `model` path is informational).
    pub fn new(model: Arc<WhisperModel>, config: TranscriberConfig) -> Result<Self, SpeechError> {
        Ok(Self {
            model,
            config,
            speculation: None,
        })
    }

    /// Transcriptions from now on are for `speculation` (`None`: for certain): once it
    /// is withdrawn, a run under way stops with [`SpeechError::Withdrawn`].
    pub fn set_speculation(&mut self, speculation: Option<Speculation>) {
        self.speculation = speculation;
    }

    /// Whether transcriptions from now on start with room after the speech
    /// ([`TranscriberConfig::wide_context`]).
    pub fn set_wide_context(&mut self, wide: bool) {
        self.config.wide_context = wide;
    }

    /// Transcribes mono 16 kHz `samples`. Silence, noise and audio under 0.1 s give an
    /// empty transcript. With `expect_speech` (a voice detector found speech there) an
    /// empty decode is retried like a bad one.
    pub fn transcribe(
        &mut self,
        samples: &[f32],
        expect_speech: bool,
    ) -> Result<Transcript, SpeechError> {
        let seconds = samples.len() as f64 / 16000.0;
        if seconds < 0.1 || rms(samples) < self.config.silence_rms {
            return Ok(Transcript::default());
        }
        // whisper.cpp wants at least ~1 s; pad short windows with silence.
        let mut padded;
        let audio = if samples.len() < 16000 + 1600 {
            padded = samples.to_vec();
            padded.resize(16000 + 1600, 0.0);
            &padded[..]
        } else {
            samples
        };
        let temperatures = if self.config.temperatures.is_empty() {
            vec![0.0]
        } else {
            self.config.temperatures.clone()
        };
        let mut best: Option<Decode> = None;
        let mut fallbacks = 0;
        let mut state = self
            .model
            .states
            .borrow(|| self.model.new_state(), self.speculation.as_ref())?;
        let mut context = if self.config.wide_context {
            wide_audio_context(seconds)
        } else {
            audio_context(seconds)
        };
        for (k, &temperature) in temperatures.iter().enumerate() {
            let mut d = self.decode(&mut state, audio, seconds, temperature, context)?;
            // A loop: first look again with more room after the speech.
            if context < wide_audio_context(seconds)
                && (repeats_itself(&d.text)
                    || compression_ratio(&d.text) > self.config.compression_ratio_threshold)
            {
                context = wide_audio_context(seconds);
                fallbacks += 1;
                d = self.decode(&mut state, audio, seconds, temperature, context)?;
            }
            // Non-speech, and Whisper is unsure of any words: silence, do not retry.
            if d.no_speech > self.config.no_speech_threshold
                && d.avg_logprob < self.config.logprob_threshold
                && !expect_speech
            {
                return Ok(Transcript {
                    fallbacks,
                    ..Transcript::default()
                });
            }
            let good = !self.needs_fallback(&d, expect_speech);
            // Words beat no words; then the more probable decode wins.
            let rank = |x: &Decode| (!x.text.trim().is_empty(), x.avg_logprob);
            let better = best.as_ref().is_none_or(|b| {
                rank(&d).partial_cmp(&rank(b)) == Some(std::cmp::Ordering::Greater)
            });
            if good || better {
                best = Some(d);
            }
            if good {
                break;
            }
            if k + 1 < temperatures.len() {
                fallbacks += 1;
            }
        }
        drop(state);
        let best = best.expect("at least one decode");
        let mut transcript = Transcript {
            fallbacks,
            ..Transcript::default()
        };
        for (seg, logprob) in best.segments.into_iter().zip(best.segment_logprobs) {
            // Dropped as non-speech only when Whisper is also unsure of its words.
            if seg.no_speech > self.config.no_speech_threshold
                && logprob < self.config.logprob_threshold
            {
                continue;
            }
            transcript.segments.push(seg);
        }
        for seg in &mut transcript.segments {
            let collapsed = collapse_repeats(&seg.text);
            if collapsed != seg.text {
                transcript.collapsed = true;
                let kept = collapsed.split_whitespace().count();
                seg.words.truncate(kept);
                seg.text = collapsed;
            }
        }
        // A loop across segments: the same text again and again.
        let joined = transcript.text();
        let collapsed = collapse_repeats(&joined);
        if collapsed != joined
            && let (Some(first), Some(last)) =
                (transcript.segments.first(), transcript.segments.last())
        {
            transcript.collapsed = true;
            let kept = collapsed.split_whitespace().count();
            let words: Vec<Word> = transcript
                .segments
                .iter()
                .flat_map(|s| s.words.iter().cloned())
                .take(kept)
                .collect();
            let merged = Segment {
                start: first.start,
                end: words.last().map_or(last.end, |w| w.end),
                text: collapsed,
                no_speech: transcript
                    .segments
                    .iter()
                    .map(|s| s.no_speech)
                    .fold(0.0, f32::max),
                words,
            };
            transcript.segments = vec![merged];
        }
        Ok(transcript)
    }

    /// Whether a decode looks wrong: a repetition loop, improbable tokens, or nothing
    /// where speech is expected.
    fn needs_fallback(&self, d: &Decode, expect_speech: bool) -> bool {
        compression_ratio(&d.text) > self.config.compression_ratio_threshold
            || d.avg_logprob < self.config.logprob_threshold
            || (expect_speech && d.text.trim().is_empty())
    }

    /// One decode at `temperature`.
    fn decode(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        seconds: f64,
        temperature: f32,
        audio_context: i32,
    ) -> Result<Decode, SpeechError> {
        let strategy = if temperature == 0.0 && self.config.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: self.config.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.config.threads.max(1) as i32);
        let language = (self.config.language != "auto").then_some(self.config.language.as_str());
        params.set_language(if self.model.is_multilingual() {
            language
        } else {
            Some("en")
        });
        params.set_audio_ctx(audio_context);
        params.set_temperature(temperature);
        // The fallback is ours (it can be measured and tested): none inside whisper.cpp.
        params.set_temperature_inc(0.0);
        // Speech has at most ~4 tokens a second; more is a loop.
        let cap = (seconds * 6.0).ceil() as usize + 12;
        params.set_max_tokens(self.config.max_tokens.min(cap) as i32);
        // Each window stands alone: no conditioning on what an earlier one said.
        params.set_no_context(true);
        params.set_no_speech_thold(self.config.no_speech_threshold);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_token_timestamps(true);
        /// whisper.cpp's abort callback: the flag of a [`Speculation`].
        unsafe extern "C" fn withdrawn(flag: *mut std::ffi::c_void) -> bool {
            // SAFETY: `flag` is the `AtomicBool` of `self.speculation`, which outlives
            // the `full` call below (the only time whisper.cpp calls this).
            unsafe { &*(flag as *const AtomicBool) }.load(Ordering::Relaxed)
        }
        if let Some(s) = &self.speculation {
            // SAFETY: the callback only reads the flag, which `self.speculation` keeps
            // alive for the whole `full` call.
            unsafe {
                params.set_abort_callback(Some(withdrawn));
                params.set_abort_callback_user_data(
                    s.flag() as *const AtomicBool as *mut std::ffi::c_void
                );
            }
        }
        let outcome = state.full(params, audio);
        if self
            .speculation
            .as_ref()
            .is_some_and(Speculation::is_withdrawn)
        {
            return Err(SpeechError::Withdrawn);
        }
        outcome.map_err(|e| SpeechError::Transcribe(e.to_string()))?;
        Ok(self.read_decode(state, seconds))
    }

    /// The segments, words and log-probabilities of the decode just made (`seconds`
    /// of audio: no timestamp goes past it).
    fn read_decode(&self, state: &WhisperState, seconds: f64) -> Decode {
        let eot = self.model.ctx.token_eot();
        let mut d = Decode {
            segments: Vec::new(),
            segment_logprobs: Vec::new(),
            avg_logprob: 0.0,
            no_speech: 0.0,
            text: String::new(),
        };
        let (mut sum, mut count) = (0.0f64, 0usize);
        for seg in state.as_iter() {
            let text = seg
                .to_str_lossy()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let no_speech = seg.no_speech_probability();
            d.no_speech = d.no_speech.max(no_speech);
            let mut tokens = Vec::new();
            let (mut seg_sum, mut seg_count) = (0.0f64, 0usize);
            for i in 0..seg.n_tokens() {
                let Some(t) = seg.get_token(i) else { continue };
                let data = t.token_data();
                if t.token_id() < eot {
                    seg_sum += data.plog as f64;
                    seg_count += 1;
                }
                let text = t.to_str_lossy().map(|c| c.into_owned()).unwrap_or_default();
                tokens.push((
                    text,
                    data.t0 as f64 / 100.0,
                    (data.t1 as f64 / 100.0).min(seconds),
                ));
            }
            sum += seg_sum;
            count += seg_count;
            if is_annotation(&text) {
                continue;
            }
            d.segment_logprobs.push(if seg_count == 0 {
                0.0
            } else {
                seg_sum / seg_count as f64
            });
            d.segments.push(Segment {
                start: seg.start_timestamp() as f64 / 100.0,
                end: (seg.end_timestamp() as f64 / 100.0).min(seconds),
                text: text.trim().to_string(),
                no_speech,
                words: words_from_tokens(&tokens),
            });
        }
        d.avg_logprob = if count == 0 { 0.0 } else { sum / count as f64 };
        d.text = d
            .segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_not_speech() {
        for t in ["[BLANK_AUDIO]", " (music) ", "*sighs*", "", "[Applause]"] {
            assert!(is_annotation(t), "{t:?}");
        }
        assert!(!is_annotation("Hello there."));
    }

    #[test]
    fn transcript_text_joins_segments() {
        let t = Transcript {
            segments: vec![
                Segment {
                    start: 0.0,
                    end: 1.0,
                    text: " Hello.".into(),
                    no_speech: 0.1,
                    words: vec![],
                },
                Segment {
                    start: 1.0,
                    end: 2.0,
                    text: "How are you?".into(),
                    no_speech: 0.1,
                    words: vec![],
                },
            ],
            ..Transcript::default()
        };
        assert_eq!(t.text(), "Hello. How are you?");
    }

    #[test]
    fn tokens_group_into_words() {
        let t = |s: &str, a: f64, b: f64| (s.to_string(), a, b);
        let words = words_from_tokens(&[
            t("[_BEG_]", 0.0, 0.0),
            t(" Hel", 0.1, 0.3),
            t("lo", 0.3, 0.5),
            t(",", 0.5, 0.5),
            t(" world", 0.6, 1.0),
            t("<|endoftext|>", 1.0, 1.0),
        ]);
        assert_eq!(words.len(), 2);
        assert_eq!(
            (words[0].text.as_str(), words[0].start, words[0].end),
            ("Hello,", 0.1, 0.5)
        );
        assert_eq!(words[1].text, "world");
    }

    #[test]
    fn missing_model_is_named() {
        let e = WhisperModel::load(Path::new("/nonexistent/ggml.bin"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ggml.bin"), "{e}");
    }

    #[test]
    fn loops_compress_well_and_are_collapsed() {
        let once = "I am so happy to see you today.";
        let looped = [once; 5].join(" ");
        assert!(compression_ratio(once) < 2.4);
        assert!(
            compression_ratio(&looped) > 2.4,
            "{}",
            compression_ratio(&looped)
        );
        assert_eq!(collapse_repeats(&looped), once);
        // Speech repeats a little; that stays.
        for t in ["no, no, no", "very very good", "thank you, thank you"] {
            assert_eq!(collapse_repeats(t), t);
        }
        assert_eq!(collapse_repeats("go go go go go now"), "go now");
        // A sentence said twice in a row is a loop (seen at a too short audio context).
        let twice = "Tears won't stop running down my face. Tears won't stop running down my face.";
        assert_eq!(
            collapse_repeats(twice),
            "Tears won't stop running down my face."
        );
        let i_mean = "I mean it, I mean it";
        assert_eq!(collapse_repeats(i_mean), i_mean);
    }

    #[test]
    fn a_loop_is_decoded_again_with_room_after_the_speech() {
        assert_eq!(audio_context(2.5), 256);
        assert_eq!(wide_audio_context(0.5), 384);
        assert_eq!(wide_audio_context(2.5), 384);
        // 8 s of speech: 400 frames, and 200 more.
        assert_eq!(audio_context(8.0), 416);
        assert_eq!(wide_audio_context(8.0), 616);
        assert_eq!(wide_audio_context(29.0), 1500);
        assert_eq!(audio_context(60.0), 1500);
        assert!(repeats_itself("I got it. I got it. I got it."));
        assert!(repeats_itself(
            "My grandfather passed away. My grandfather passed away."
        ));
        assert!(!repeats_itself("no, no, I got it, I got it"));
    }
}
