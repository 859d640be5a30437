//! The analysis worker: a thread that owns all heavy per-window work, fed by a bounded
//! crossbeam channel from the element's streaming thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError, bounded};
use gst::glib;
use gst::prelude::*;

use crate::infer::{Engine, prepare};
use crate::output::npy::write_npy;
use crate::output::{HeadResult, Prediction, TranscriptInfo, WindowResult, softmax};
use crate::speech::{
    SegmenterConfig, Transcriber, TranscriberConfig, VoiceDetector, WhisperModel, speech_segments,
};
use crate::window::WindowJob;

/// What the worker does with each window beyond measuring it.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// The model, when a bundle is loaded.
    pub engine: Option<Arc<Engine>>,
    /// Weight of the previous smoothed value in the EMA (0 = no smoothing).
    pub smoothing: f64,
    /// Text fed to the model (until speech recognition provides a transcript).
    pub text: Option<String>,
    /// Folder receiving each window's input tensors and outputs as .npy.
    pub dump_dir: Option<std::path::PathBuf>,
    /// Speech recognition, when on.
    pub speech: Option<SpeechSetup>,
}

/// What the worker needs for speech recognition.
#[derive(Clone, Debug)]
pub struct SpeechSetup {
    /// The loaded Whisper model.
    pub whisper: Arc<WhisperModel>,
    /// Transcriber settings.
    pub config: TranscriberConfig,
    /// Silero VAD model; `None`: the energy detector.
    pub vad_model: Option<std::path::PathBuf>,
    /// How voice activity becomes speech segments.
    pub segmenter: SegmenterConfig,
}

/// A worker's speech recogniser with its voice activity detector.
struct Speech {
    transcriber: Transcriber,
    vad: VoiceDetector,
    segmenter: SegmenterConfig,
}

/// Extra time the worker spends per window; lets tests make the worker slower than
/// real time. Zero in normal use.
static WORKER_DELAY_MS: AtomicU64 = AtomicU64::new(0);

/// Test hook: makes every worker in the process sleep this long per window.
#[doc(hidden)]
pub fn set_worker_delay_for_tests(delay: Duration) {
    WORKER_DELAY_MS.store(delay.as_millis() as u64, Ordering::SeqCst);
}

enum Message {
    Window { job: WindowJob, generation: u64 },
    Drain(Sender<()>),
}

/// State shared between the element and its worker thread.
#[derive(Default)]
pub struct Shared {
    /// The latest finished window's result, attached to outgoing video buffers.
    pub latest: Mutex<Option<gst::Structure>>,
    /// Windows analysed.
    pub processed: AtomicU64,
    /// Windows dropped because the worker was behind (live input).
    pub dropped: AtomicU64,
    /// Bumped by a flush: results of older windows are discarded.
    pub generation: AtomicU64,
}

/// Outcome of handing a window to the worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Submit {
    /// The worker has the window.
    Queued,
    /// The queue was full and the window was dropped (live input).
    Dropped,
    /// The element is flushing or stopping; the window was discarded.
    Flushing,
}

/// A running worker thread.
pub struct Worker {
    tx: Option<Sender<Message>>,
    handle: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Worker {
    /// Starts a worker posting results for `element`; at most `queue` windows wait.
    pub fn start(
        element: &gst::Element,
        shared: Arc<Shared>,
        queue: usize,
        analysis: Analysis,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(queue.max(1));
        let weak = element.downgrade();
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("emotionsense-worker".into())
            .spawn(move || run(rx, weak, thread_shared, analysis))?;
        Ok(Self {
            tx: Some(tx),
            handle: Some(handle),
            shared,
        })
    }

    /// Hands `job` to the worker. With `block`, waits while the queue is full (checking
    /// `flushing` so a flush or state change never deadlocks); without, drops the
    /// window when the queue is full.
    pub fn submit(&self, job: WindowJob, block: bool, flushing: &dyn Fn() -> bool) -> Submit {
        let Some(tx) = &self.tx else {
            return Submit::Flushing;
        };
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let msg = Message::Window { job, generation };
        if !block {
            return match tx.try_send(msg) {
                Ok(()) => Submit::Queued,
                Err(TrySendError::Full(_)) => {
                    self.shared.dropped.fetch_add(1, Ordering::SeqCst);
                    Submit::Dropped
                }
                Err(TrySendError::Disconnected(_)) => Submit::Flushing,
            };
        }
        if send_interruptible(tx, msg, flushing) {
            Submit::Queued
        } else {
            Submit::Flushing
        }
    }

    /// Waits until every window queued so far has been analysed (or `flushing` says stop).
    pub fn drain(&self, flushing: &dyn Fn() -> bool) {
        let Some(tx) = &self.tx else { return };
        let (done_tx, done_rx) = bounded(1);
        if !send_interruptible(tx, Message::Drain(done_tx), flushing) {
            return;
        }
        while !flushing() {
            if done_rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                return;
            }
        }
    }
}

/// Sends `msg`, waiting while the queue is full but giving up as soon as `flushing`
/// says so. Returns whether the worker got the message.
fn send_interruptible(tx: &Sender<Message>, mut msg: Message, flushing: &dyn Fn() -> bool) -> bool {
    loop {
        if flushing() {
            return false;
        }
        match tx.send_timeout(msg, Duration::from_millis(20)) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(m)) => msg = m,
            Err(SendTimeoutError::Disconnected(_)) => return false,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(
    rx: Receiver<Message>,
    element: glib::WeakRef<gst::Element>,
    shared: Arc<Shared>,
    analysis: Analysis,
) {
    let mut smoothed: Vec<Vec<f64>> = Vec::new();
    let mut smoothed_generation = shared.generation.load(Ordering::SeqCst);
    // One whisper state and one VAD per worker.
    let warn = |msg: String| {
        if let Some(element) = element.upgrade() {
            gst::element_warning!(element, gst::LibraryError::Init, ("{msg}"));
        }
    };
    let mut speech = analysis.speech.as_ref().and_then(|s| {
        let transcriber = Transcriber::new(s.whisper.clone(), s.config.clone())
            .map_err(|e| warn(format!("{e}: speech recognition is off")))
            .ok()?;
        let vad = match &s.vad_model {
            Some(path) => VoiceDetector::silero(path).unwrap_or_else(|e| {
                warn(format!("{e}: using the energy voice detector"));
                VoiceDetector::energy()
            }),
            None => VoiceDetector::energy(),
        };
        Some(Speech {
            transcriber,
            vad,
            segmenter: s.segmenter.clone(),
        })
    });
    for msg in rx {
        match msg {
            Message::Drain(done) => {
                let _ = done.send(());
            }
            Message::Window { job, generation } => {
                let delay = WORKER_DELAY_MS.load(Ordering::Relaxed);
                if delay > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
                if generation != shared.generation.load(Ordering::SeqCst) {
                    continue;
                }
                if generation != smoothed_generation {
                    smoothed.clear();
                    smoothed_generation = generation;
                }
                let started = std::time::Instant::now();
                let mut result = WindowResult::measure(&job, shared.dropped.load(Ordering::SeqCst));
                result.transcript = window_transcript(&job, &analysis, speech.as_mut());
                if speech.is_some() && analysis.text.is_none() {
                    result
                        .timings
                        .push(("asr".into(), started.elapsed().as_secs_f64() * 1e3));
                }
                let model_started = std::time::Instant::now();
                if let Some(engine) = &analysis.engine {
                    let text = result
                        .transcript
                        .as_ref()
                        .map(|t| t.text.as_str())
                        .filter(|t| !t.is_empty());
                    match predict(engine, &job, text, &analysis, &mut smoothed) {
                        Ok(p) => {
                            result.timings.push((
                                "model".into(),
                                model_started.elapsed().as_secs_f64() * 1e3,
                            ));
                            if let Some(f) = &p.fusion {
                                result
                                    .timings
                                    .extend(f.timings.iter().map(|(k, v)| (k.to_string(), *v)));
                            }
                            result.prediction = Some(p);
                        }
                        Err(e) => {
                            // Like the reference service: a window that fails is
                            // skipped, the stream goes on.
                            if let Some(element) = element.upgrade() {
                                gst::element_warning!(
                                    element,
                                    gst::StreamError::Failed,
                                    ("Window {} could not be analysed: {e}", job.span.index)
                                );
                            }
                            continue;
                        }
                    }
                }
                result
                    .timings
                    .push(("total".into(), started.elapsed().as_secs_f64() * 1e3));
                let s = result.to_structure();
                if let Some(dir) = &analysis.dump_dir
                    && let Err(e) = dump_window(dir, &job, &s)
                {
                    gst::warning!(crate::element::CAT, "dump-dir {}: {e}", dir.display());
                }
                *shared.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
                shared.processed.fetch_add(1, Ordering::SeqCst);
                if let Some(element) = element.upgrade() {
                    let _ = element
                        .post_message(gst::message::Element::builder(s).src(&element).build());
                }
            }
        }
    }
}

/// The window's transcript: the `text` property when set, else what speech
/// recognition hears in the window's audio. Whisper only runs on the stretch where
/// the voice detector found speech (silence and noise give no text).
fn window_transcript(
    job: &WindowJob,
    analysis: &Analysis,
    speech: Option<&mut Speech>,
) -> Option<TranscriptInfo> {
    if let Some(text) = &analysis.text {
        return Some(TranscriptInfo {
            text: text.clone(),
            span: None,
            no_speech: None,
            words: Vec::new(),
        });
    }
    let (speech, audio) = (speech?, job.audio.as_ref()?);
    let rate = audio.rate as f64;
    let duration = audio.samples.len() as f64 / rate;
    let result = speech.vad.probabilities(&audio.samples).and_then(|probs| {
        let frame = crate::speech::vad::FRAME as f64 / crate::speech::vad::RATE as f64;
        let segments = speech_segments(&probs, frame, duration, &speech.segmenter);
        let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
            return Ok(None);
        };
        let from = (first.0 * rate) as usize;
        let to = ((last.1 * rate) as usize).min(audio.samples.len());
        let tr = speech.transcriber.transcribe(&audio.samples[from..to])?;
        Ok(Some((first.0, last.1, tr)))
    });
    let at = |s: f64| (job.span.start + (s * 1e9) as u64).min(job.span.end);
    match result {
        Ok(None) => Some(TranscriptInfo {
            text: String::new(),
            span: None,
            no_speech: None,
            words: Vec::new(),
        }),
        Ok(Some((start, end, tr))) => {
            let text = tr.text();
            // Whisper's times count from the start of the transcribed stretch.
            let words = tr
                .segments
                .iter()
                .flat_map(|s| &s.words)
                .map(|w| (w.text.clone(), at(start + w.start), at(start + w.end)))
                .collect();
            Some(TranscriptInfo {
                words,
                span: (!text.is_empty()).then(|| (at(start), at(end))),
                no_speech: tr
                    .segments
                    .iter()
                    .map(|s| s.no_speech as f64)
                    .reduce(f64::max),
                text,
            })
        }
        Err(e) => {
            gst::warning!(crate::element::CAT, "window {}: {e}", job.span.index);
            None
        }
    }
}

/// Preprocesses, runs the model, and turns logits into probabilities (and the
/// smoothed rolling ones).
fn predict(
    engine: &Engine,
    job: &WindowJob,
    text: Option<&str>,
    analysis: &Analysis,
    smoothed: &mut Vec<Vec<f64>>,
) -> Result<Prediction, String> {
    let bundle = &engine.bundle;
    let inputs = prepare(bundle, job, text)?;
    let text = inputs.text.clone();
    if let Some(dir) = &analysis.dump_dir {
        dump_inputs(dir, job.span.index, &inputs).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (probs, logits, fusion) = if bundle.is_fusion() {
        let (probs, details) = engine.fuse(inputs)?;
        (probs, None, Some(details))
    } else {
        let logits = engine.infer(inputs)?;
        (
            logits.iter().map(|l| softmax(l)).collect(),
            Some(logits),
            None,
        )
    };
    if smoothed.len() != probs.len() {
        smoothed.clear();
    }
    let mut heads = Vec::with_capacity(probs.len());
    for (i, (spec, probs)) in bundle.manifest.heads.iter().zip(probs).enumerate() {
        let s = match smoothed.get(i) {
            Some(prev) => prev
                .iter()
                .zip(&probs)
                .map(|(p, q)| analysis.smoothing * p + (1.0 - analysis.smoothing) * q)
                .collect(),
            None => probs.clone(),
        };
        if smoothed.len() <= i {
            smoothed.push(s.clone());
        } else {
            smoothed[i] = s.clone();
        }
        if let Some(dir) = &analysis.dump_dir {
            let base = dir.join(format!("w{:06}_{}", job.span.index, spec.name));
            let probs32: Vec<f32> = probs.iter().map(|&p| p as f32).collect();
            let n = probs32.len();
            if let Some(l) = logits.as_ref().map(|l| &l[i]) {
                write_npy(&base.with_extension("logits.npy"), &[n], l)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            write_npy(&base.with_extension("probs.npy"), &[n], &probs32)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        heads.push(HeadResult {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            probs,
            smoothed: s,
        });
    }
    Ok(Prediction {
        model: bundle.manifest.name.clone(),
        text,
        heads,
        fusion,
    })
}

/// Writes what a window looked like: its sampled frames as PNG and a summary.txt with
/// its span, transcript and results.
fn dump_window(
    dir: &std::path::Path,
    job: &WindowJob,
    result: &gst::Structure,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let index = job.span.index;
    if let Some(sel) = &job.frames {
        for (k, f) in sel.frames.iter().enumerate() {
            let file = std::fs::File::create(dir.join(format!("w{index:06}_frame{k:03}.png")))?;
            let mut enc = png::Encoder::new(
                std::io::BufWriter::new(file),
                f.width as u32,
                f.height as u32,
            );
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()
                .and_then(|mut w| w.write_image_data(&f.data))
                .map_err(std::io::Error::other)?;
        }
    }
    let mut text = format!(
        "window {index}: {:.3} s - {:.3} s\n",
        job.span.start as f64 / 1e9,
        job.span.end as f64 / 1e9
    );
    for (name, value) in result.iter() {
        let v = value
            .serialize()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| format!("{value:?}"));
        text.push_str(&format!("{name}: {v}\n"));
    }
    std::fs::write(dir.join(format!("w{index:06}_summary.txt")), text)
}

fn dump_inputs(
    dir: &std::path::Path,
    index: u64,
    p: &crate::infer::Prepared,
) -> std::io::Result<()> {
    use crate::infer::InputTensor;
    std::fs::create_dir_all(dir)?;
    for (name, t) in &p.inputs {
        let path = dir.join(format!("w{index:06}_{name}.npy"));
        let dims = |s: &[i64]| s.iter().map(|&d| d as usize).collect::<Vec<_>>();
        match t {
            InputTensor::F32 { shape, data } => write_npy(&path, &dims(shape), data)?,
            InputTensor::I64 { shape, data } => write_npy(&path, &dims(shape), data)?,
        }
    }
    std::fs::write(dir.join(format!("w{index:06}_text.txt")), &p.text)
}
