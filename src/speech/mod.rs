//! Speech recognition with whisper.cpp (whisper-rs): a [`Transcriber`] owned by one
//! worker thread (one context, one state), tuned for short windows — `audio_ctx` sized
//! to the audio, no temperature fallback, bounded tokens — and gated so silence and
//! noise give no text (Whisper otherwise invents some).
//!
//! whisper.cpp's own log lines go to the GStreamer debug category `emotionwhisper`
//! (`GST_DEBUG=emotionwhisper:6`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::media::rms;

pub mod segmenter;
pub mod vad;

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
    let path = cache_dir()?.join("whisper").join(DEFAULT_MODEL_FILE);
    path.is_file().then_some(path)
}

/// The project's cache folder: `$GST_EMOTION_CACHE`, else `~/.cache/gst-emotion`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("GST_EMOTION_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/gst-emotion")))
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
    /// Most tokens decoded per window.
    pub max_tokens: usize,
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
        }
    }
}

/// A loaded Whisper model; share it between workers with `Arc`, give each worker its
/// own [`Transcriber`].
pub struct WhisperModel {
    ctx: WhisperContext,
    path: PathBuf,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperModel")
            .field("path", &self.path)
            .finish()
    }
}

impl WhisperModel {
    /// Loads a ggml model file.
    pub fn load(path: &Path) -> Result<Arc<Self>, SpeechError> {
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
        Ok(Arc::new(Self {
            ctx,
            path: path.to_path_buf(),
        }))
    }

    /// Whether the model knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }
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

/// A worker's speech recogniser: one whisper.cpp state.
pub struct Transcriber {
    model: Arc<WhisperModel>,
    state: WhisperState,
    config: TranscriberConfig,
}

impl Transcriber {
    /// A recogniser on `model` with `config` (its `model` path is informational).
    pub fn new(model: Arc<WhisperModel>, config: TranscriberConfig) -> Result<Self, SpeechError> {
        let state = model.ctx.create_state().map_err(|e| SpeechError::Load {
            path: model.path.display().to_string(),
            reason: format!("cannot create a whisper state: {e}"),
        })?;
        Ok(Self {
            model,
            state,
            config,
        })
    }

    /// Transcribes mono 16 kHz `samples`. Silence, noise and audio under 0.1 s give an
    /// empty transcript.
    pub fn transcribe(&mut self, samples: &[f32]) -> Result<Transcript, SpeechError> {
        let seconds = samples.len() as f64 / 16000.0;
        if seconds < 0.1 || rms(samples) < self.config.silence_rms {
            return Ok(Transcript::default());
        }
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.config.threads.max(1) as i32);
        let language = (self.config.language != "auto").then_some(self.config.language.as_str());
        params.set_language(if self.model.is_multilingual() {
            language
        } else {
            Some("en")
        });
        // ~50 encoder frames per second of audio; below 256 whisper.cpp loops.
        let audio_ctx = ((seconds * 50.0).ceil() as i32 + 16).clamp(256, 1500);
        params.set_audio_ctx(audio_ctx);
        params.set_temperature_inc(0.0);
        params.set_max_tokens(self.config.max_tokens as i32);
        params.set_no_context(true);
        params.set_no_speech_thold(self.config.no_speech_threshold);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_token_timestamps(true);
        // whisper.cpp wants at least ~1 s; pad short windows with silence.
        let mut padded;
        let audio = if samples.len() < 16000 + 1600 {
            padded = samples.to_vec();
            padded.resize(16000 + 1600, 0.0);
            &padded[..]
        } else {
            samples
        };
        self.state
            .full(params, audio)
            .map_err(|e| SpeechError::Transcribe(e.to_string()))?;
        let mut segments = Vec::new();
        for seg in self.state.as_iter() {
            let text = seg
                .to_str_lossy()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let no_speech = seg.no_speech_probability();
            if no_speech > self.config.no_speech_threshold || is_annotation(&text) {
                continue;
            }
            let tokens: Vec<(String, f64, f64)> = (0..seg.n_tokens())
                .filter_map(|i| seg.get_token(i))
                .map(|t| {
                    let d = t.token_data();
                    let text = t.to_str_lossy().map(|c| c.into_owned()).unwrap_or_default();
                    (
                        text,
                        d.t0 as f64 / 100.0,
                        (d.t1 as f64 / 100.0).min(seconds),
                    )
                })
                .collect();
            segments.push(Segment {
                start: seg.start_timestamp() as f64 / 100.0,
                end: (seg.end_timestamp() as f64 / 100.0).min(seconds),
                text: text.trim().to_string(),
                no_speech,
                words: words_from_tokens(&tokens),
            });
        }
        Ok(Transcript { segments })
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
}
