//! [`Analyzer`]: one window in, one [`WindowResult`] out — transcript (voice activity +
//! Whisper), model, smoothing, debug dumps — with no GStreamer element involved. The
//! element's worker thread feeds it; tests and tools drive it directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::face::track::TrackIds;
use crate::infer::{Model, ModelOutput};
use crate::output::{HeadResult, Prediction, TimedWord, TranscriptInfo, WindowResult, dump};
use crate::speculation::Speculation;
use crate::speech::{
    SegmenterConfig, Transcriber, TranscriberConfig, VoiceDetector, WhisperModel, speech_segments,
};
use crate::window::{WindowJob, WindowKind};

/// Why a window could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The model failed (loading its parts, preparing the inputs, running).
    #[error(transparent)]
    Model(#[from] crate::infer::ModelError),
    /// [`Analyzer::compute`]'s guess was withdrawn while it ran (not a failure: the
    /// window will not come).
    #[error("the window was withdrawn (speech resumed)")]
    Withdrawn,
    /// A debug dump (`dump-dir`) could not be written: the folder and why.
    #[error("{0}")]
    Dump(String),
}

/// What an analyzer does with each window beyond measuring it.
#[derive(Clone, Debug, Default)]
pub struct AnalyzerConfig {
    /// The model, when a bundle is loaded.
    pub model: Option<Arc<Model>>,
    /// Weight of the previous smoothed value in the EMA (0 = no smoothing).
    pub smoothing: f64,
    /// Time constant (s) of each face track's smoothed probabilities, from which its
    /// `stable_label` comes (0 = off: faces carry no smoothed probabilities).
    pub face_smoothing: f64,
    /// Text given to the model for every window instead of a transcript.
    pub text: Option<String>,
    /// Folder receiving what the model saw per window (frames, tensors, outputs).
    pub dump_dir: Option<PathBuf>,
    /// Speech recognition, when on.
    pub speech: Option<SpeechSetup>,
}

/// What speech recognition needs.
#[derive(Clone, Debug)]
pub struct SpeechSetup {
    /// The loaded Whisper model (shared by every analyzer).
    pub whisper: Arc<WhisperModel>,
    /// Transcriber settings.
    pub config: TranscriberConfig,
    /// Silero VAD model; `None`: the energy detector.
    pub vad_model: Option<PathBuf>,
    /// How voice activity becomes speech segments.
    pub segmenter: SegmenterConfig,
}

/// A window's transcript and model answer, not yet smoothed
/// ([`Analyzer::compute`]).
#[derive(Debug)]
pub struct Computed {
    transcript: Option<TranscriptInfo>,
    output: Option<ModelOutput>,
    /// Milliseconds per stage.
    timings: Vec<(String, f64)>,
}

/// Counts of the work done, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnalyzerStats {
    /// Windows analysed.
    pub windows: u64,
    /// Voice activity passes over window audio.
    pub vad_passes: u64,
    /// Whisper runs.
    pub transcriptions: u64,
    /// Whisper decodes retried at a higher temperature (the output looked wrong).
    pub fallbacks: u64,
}

/// A speech recogniser with its voice activity detector (one whisper state).
struct Speech {
    transcriber: Transcriber,
    vad: VoiceDetector,
    segmenter: SegmenterConfig,
}

/// Analyses windows one after another; owns one whisper state and the smoothing state.
pub struct Analyzer {
    config: AnalyzerConfig,
    speech: Option<Speech>,
    smoothed: Vec<Vec<f64>>,
    /// Stable face ids across this stream's windows.
    face_ids: TrackIds,
    /// Per face track: its smoothed probabilities and the end (ns) of the window they
    /// were last updated by.
    face_tracks: FaceTracks,
    stats: AnalyzerStats,
    warnings: Vec<String>,
}

impl Analyzer {
    /// An analyzer for `config`. Speech recognition that cannot start (no whisper
    /// state, an unreadable VAD model) degrades with a warning in the returned list.
    pub fn new(config: AnalyzerConfig) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let speech = config.speech.as_ref().and_then(|s| {
            let transcriber = Transcriber::new(s.whisper.clone(), s.config.clone())
                .map_err(|e| warnings.push(format!("{e}: speech recognition is off")))
                .ok()?;
            let vad = match &s.vad_model {
                Some(path) => VoiceDetector::silero(path).unwrap_or_else(|e| {
                    warnings.push(format!("{e}: using the energy voice detector"));
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
        let analyzer = Self {
            config,
            speech,
            smoothed: Vec::new(),
            face_ids: TrackIds::default(),
            face_tracks: FaceTracks::default(),
            stats: AnalyzerStats::default(),
            warnings: Vec::new(),
        };
        (analyzer, warnings)
    }

    /// Work done so far.
    pub fn stats(&self) -> AnalyzerStats {
        self.stats
    }

    /// Problems that did not stop a window (a failed transcription, an unwritable
    /// dump), since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Forgets the smoothing history (after a flushing seek).
    pub fn reset(&mut self) {
        self.smoothed.clear();
        self.face_ids = TrackIds::default();
        self.face_tracks = FaceTracks::default();
    }

    /// Analyses one window. An error means the window could not be analysed (the
    /// caller skips it, as the reference service skips a failed segment).
    pub fn analyse(&mut self, job: &WindowJob) -> Result<WindowResult, AnalysisError> {
        let work = self.compute(job, None)?;
        self.finish(job, work)
    }

    /// The costly, stateless part of [`Analyzer::analyse`]: transcript and model
    /// answer. It can run before the window is confirmed — `early`: an utterance
    /// whose pause has begun, a guess; its work on shared threads then waits for
    /// other windows', and stops (`Err`) once the guess is withdrawn — and be kept or
    /// thrown away; [`Analyzer::finish`] then applies it.
    pub fn compute(
        &mut self,
        job: &WindowJob,
        early: Option<&Speculation>,
    ) -> Result<Computed, AnalysisError> {
        let started = Instant::now();
        let mut timings = Vec::new();
        // A fusion bundle's faces do not need the words: they are found on the
        // inference thread while Whisper runs here. Without a transcription to wait
        // for, they go with the model's answer in one request (a second one would
        // queue behind other windows' work).
        let transcribes = self.config.text.is_none()
            && self.speech.is_some()
            && job.audio.is_some()
            && job.kind != WindowKind::Silence;
        let faces = self
            .config
            .model
            .as_ref()
            .filter(|_| transcribes)
            .and_then(|m| m.start_faces(job, early));
        let warned = self.warnings.len();
        if let Some(speech) = &mut self.speech {
            speech.transcriber.set_speculation(early.cloned());
        }
        let transcript = self.transcript(job);
        if let Some(speech) = &mut self.speech {
            speech.transcriber.set_speculation(None);
        }
        if early.is_some_and(Speculation::is_withdrawn) {
            // Not a failure: the window will not come.
            self.warnings.truncate(warned);
            return Err(AnalysisError::Withdrawn);
        }
        if self.speech.is_some() && self.config.text.is_none() {
            timings.push(("asr".into(), started.elapsed().as_secs_f64() * 1e3));
        }
        let mut output = None;
        if let Some(model) = &self.config.model {
            let model_started = Instant::now();
            let text = transcript
                .as_ref()
                .map(|t| t.text.as_str())
                .filter(|t| !t.is_empty());
            let mut input = model.prepare(job, text)?;
            if let Some(faces) = faces {
                input.face_stage = Some(faces.wait()?);
            }
            if let Some(dir) = &self.config.dump_dir {
                dump::inputs(dir, job.span.index, &input)
                    .map_err(|e| AnalysisError::Dump(format!("{}: {e}", dir.display())))?;
            }
            let out = model.predict(input)?;
            timings.push(("model".into(), model_started.elapsed().as_secs_f64() * 1e3));
            timings.extend(out.timings.iter().cloned());
            output = Some(out);
        }
        timings.push(("total".into(), started.elapsed().as_secs_f64() * 1e3));
        Ok(Computed {
            transcript,
            output,
            timings,
        })
    }

    /// Completes a window from its [`Computed`] part: smoothing, face ids, dumps.
    pub fn finish(
        &mut self,
        job: &WindowJob,
        work: Computed,
    ) -> Result<WindowResult, AnalysisError> {
        let mut result = WindowResult::measure(job);
        result.transcript = work.transcript;
        result.timings = work.timings;
        if let (Some(model), Some(out)) = (self.config.model.clone(), work.output) {
            result.prediction = Some(self.prediction(&model, job, out)?);
        }
        if let Some(dir) = &self.config.dump_dir
            && let Err(e) = dump::window(dir, job, &result)
        {
            self.warnings
                .push(format!("dump-dir {}: {e}", dir.display()));
        }
        self.stats.windows += 1;
        Ok(result)
    }

    /// Heads with their smoothed probabilities; dumps the outputs when asked.
    fn prediction(
        &mut self,
        model: &Model,
        job: &WindowJob,
        out: ModelOutput,
    ) -> Result<Prediction, AnalysisError> {
        let specs = &model.bundle.manifest.heads;
        if self.smoothed.len() != out.probs.len() {
            self.smoothed.clear();
        }
        let a = self.config.smoothing;
        let mut heads = Vec::with_capacity(out.probs.len());
        let frames_all = out.frames;
        let mut frames = frames_all.iter();
        for (i, (spec, probs)) in specs.iter().zip(out.probs).enumerate() {
            let smoothed: Vec<f64> = match self.smoothed.get(i) {
                Some(prev) => prev
                    .iter()
                    .zip(&probs)
                    .map(|(p, q)| a * p + (1.0 - a) * q)
                    .collect(),
                None => probs.clone(),
            };
            if self.smoothed.len() <= i {
                self.smoothed.push(smoothed.clone());
            } else {
                self.smoothed[i] = smoothed.clone();
            }
            if let Some(dir) = &self.config.dump_dir {
                let logits = out.logits.as_ref().map(|l| l[i].as_slice());
                let f = frames_all.get(i).map(Vec::as_slice).unwrap_or_default();
                dump::head(dir, job.span.index, &spec.name, logits, &probs, f)
                    .map_err(|e| AnalysisError::Dump(format!("{}: {e}", dir.display())))?;
            }
            heads.push(HeadResult {
                name: spec.name.clone(),
                labels: spec.labels.clone(),
                probs,
                smoothed,
                frames: frames.next().cloned().unwrap_or_default(),
            });
        }
        let mut fusion = out.fusion;
        if let (Some(dir), Some(f)) = (&self.config.dump_dir, &fusion) {
            let i = crate::infer::outputs::face_head(&model.bundle);
            dump::faces(dir, job.span.index, &specs[i].name, &f.faces)
                .map_err(|e| AnalysisError::Dump(format!("{}: {e}", dir.display())))?;
        }
        if let Some(f) = &mut fusion {
            let rects: Vec<[f64; 4]> = f.faces.iter().map(|r| r.rect).collect();
            for (face, id) in f.faces.iter_mut().zip(self.face_ids.assign(&rects)) {
                face.id = Some(id);
            }
            if self.config.face_smoothing > 0.0 {
                self.face_tracks
                    .smooth(&mut f.faces, job.span.end, self.config.face_smoothing);
            }
        }
        Ok(Prediction {
            model: model.bundle.manifest.name.clone(),
            heads,
            fusion,
        })
    }

    /// The window's transcript: the configured text when set, else what speech
    /// recognition hears. Whisper runs only where the voice detector finds speech; an
    /// utterance window is speech already found, so it is transcribed whole, and a
    /// silence window is a stretch it found none in (empty transcript, no second pass).
    fn transcript(&mut self, job: &WindowJob) -> Option<TranscriptInfo> {
        if let Some(text) = &self.config.text {
            return Some(TranscriptInfo::text_only(text.clone()));
        }
        let (speech, audio) = (self.speech.as_mut()?, job.audio.as_ref()?);
        let rate = audio.rate as f64;
        let duration = audio.samples.len() as f64 / rate;
        let stretch = if job.kind == WindowKind::Utterance {
            Ok(Some((0.0, duration)))
        } else if job.kind == WindowKind::Silence {
            // The segmenter found no speech here: nothing to search or transcribe.
            Ok(None)
        } else {
            self.stats.vad_passes += 1;
            speech.vad.probabilities(&audio.samples).map(|probs| {
                let frame = crate::speech::vad::FRAME as f64 / crate::speech::vad::RATE as f64;
                let segments = speech_segments(&probs, frame, duration, &speech.segmenter);
                segments
                    .first()
                    .zip(segments.last())
                    .map(|(f, l)| (f.0, l.1))
            })
        };
        let result = stretch.and_then(|stretch| {
            let Some((start, end)) = stretch else {
                return Ok(None);
            };
            let from = (start * rate) as usize;
            let to = ((end * rate) as usize).min(audio.samples.len());
            self.stats.transcriptions += 1;
            speech.transcriber.set_wide_context(!audio.live);
            let tr = speech
                .transcriber
                .transcribe(&audio.samples[from..to], true)?;
            self.stats.fallbacks += tr.fallbacks as u64;
            Ok(Some((start, end, tr)))
        });
        let at = |s: f64| (job.span.start + (s * 1e9) as u64).min(job.span.end);
        match result {
            Ok(None) => Some(TranscriptInfo::default()),
            Ok(Some((start, end, tr))) => {
                let text = tr.text();
                // Whisper's times count from the start of the transcribed stretch.
                let words = tr
                    .segments
                    .iter()
                    .flat_map(|s| &s.words)
                    .map(|w| TimedWord {
                        text: w.text.clone(),
                        start: at(start + w.start),
                        end: at(start + w.end),
                    })
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
                self.warnings
                    .push(format!("window {}: {e}", job.span.index));
                None
            }
        }
    }
}

/// Each face track's probabilities smoothed over the windows it was seen in: an
/// exponential moving average whose weight decays with the time between windows,
/// `a = exp(−Δt / τ)`, so that the smoothing means the same for any window length;
/// and its stable label, which changes only when another label's smoothed probability
/// passes it by [`STABLE_MARGIN`] (a face wavering between two labels keeps one).
#[derive(Debug, Default)]
struct FaceTracks {
    /// Per track id: smoothed probabilities, stable label, end (ns) of its last window.
    tracks: std::collections::HashMap<u64, (Vec<f64>, usize, u64)>,
}

/// How far another label's smoothed probability must pass the stable label's.
pub const STABLE_MARGIN: f64 = 0.05;

impl FaceTracks {
    /// Sets `smoothed` and `stable` on every tracked face of a window ending at `end`
    /// (ns), with time constant `tau` (s); a track unseen for 10 τ starts afresh.
    fn smooth(&mut self, faces: &mut [crate::output::FaceReport], end: u64, tau: f64) {
        let forget = (10.0 * tau * 1e9) as u64;
        self.tracks
            .retain(|_, (.., at)| end.saturating_sub(*at) <= forget);
        for face in faces.iter_mut() {
            let Some(id) = face.id else { continue };
            let (smoothed, stable) = match self.tracks.get(&id) {
                Some((prev, stable, at)) if prev.len() == face.probs.len() => {
                    let dt = end.saturating_sub(*at) as f64 / 1e9;
                    let a = (-dt / tau).exp();
                    let smoothed: Vec<f64> = prev
                        .iter()
                        .zip(&face.probs)
                        .map(|(p, q)| a * p + (1.0 - a) * q)
                        .collect();
                    let top = crate::output::argmax(&smoothed);
                    let stable = if smoothed[top] >= smoothed[*stable] + STABLE_MARGIN {
                        top
                    } else {
                        *stable
                    };
                    (smoothed, stable)
                }
                _ => (face.probs.clone(), crate::output::argmax(&face.probs)),
            };
            self.tracks.insert(id, (smoothed.clone(), stable, end));
            face.smoothed = smoothed;
            face.stable = Some(stable);
        }
    }
}

#[cfg(test)]
mod face_smoothing_tests {
    use super::*;
    use crate::output::{FaceReport, argmax};

    fn face(id: u64, probs: &[f64]) -> FaceReport {
        FaceReport {
            id: Some(id),
            probs: probs.to_vec(),
            ..FaceReport::default()
        }
    }

    #[test]
    fn a_wavering_face_keeps_its_stable_label() {
        // The raw label flips every window (joy 0.55 / 0.45 against neutral).
        let mut tracks = FaceTracks::default();
        let (mut raw, mut stable) = (Vec::new(), Vec::new());
        for k in 0..20u64 {
            let p = if k % 2 == 0 {
                [0.55, 0.45]
            } else {
                [0.45, 0.55]
            };
            let mut faces = vec![face(7, &p)];
            tracks.smooth(&mut faces, (k + 1) * 1_000_000_000, 3.0);
            raw.push(argmax(&faces[0].probs));
            stable.push(faces[0].stable.unwrap());
        }
        let changes = |v: &[usize]| v.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(changes(&raw), 19);
        assert_eq!(changes(&stable), 0, "{stable:?}");
    }

    #[test]
    fn a_real_change_comes_through_within_a_few_time_constants() {
        let mut tracks = FaceTracks::default();
        let mut first_joy = None;
        for k in 0..20u64 {
            let p = if k < 5 { [0.1, 0.9] } else { [0.9, 0.1] };
            let mut faces = vec![face(1, &p), face(2, &[0.5, 0.5])];
            tracks.smooth(&mut faces, (k + 1) * 1_000_000_000, 2.0);
            if first_joy.is_none() && faces[0].stable == Some(0) {
                first_joy = Some(k);
            }
            // Each track is its own.
            assert_eq!(faces[1].smoothed, vec![0.5, 0.5]);
        }
        // From window 5 on the face shows joy; 2 s time constant, 1 s windows.
        assert_eq!(first_joy, Some(6));
        // A track unseen for 10 τ starts afresh.
        let mut faces = vec![face(1, &[0.2, 0.8])];
        tracks.smooth(&mut faces, 60_000_000_000, 2.0);
        assert_eq!(faces[0].smoothed, vec![0.2, 0.8]);
    }
}
