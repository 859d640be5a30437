//! Online speech segmentation for `utterance` windows: a thread that runs the voice
//! detector over the element's audio as it arrives (32 ms frames, the detector's state
//! carried across frames) and reports finished speech segments — with a hangover for
//! short pauses, a minimum length and a maximum length — on the running-time axis.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::vad::{FRAME, RATE, SegmenterConfig, VoiceDetector};
use crate::media::audio::sample_to_time;

/// Silence (s) after which a pause announces its segment as tentative: gaps between
/// words are shorter.
const EARLY_SILENCE: f64 = 0.1;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A finished speech segment, running time in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeechSpan {
    /// Start (ns, inclusive).
    pub start: u64,
    /// End (ns, exclusive).
    pub end: u64,
}

enum Msg {
    Audio {
        first_sample: u64,
        samples: Vec<f32>,
    },
    Flush(Sender<Vec<SpeechSpan>>),
    Reset,
}

/// Frame-by-frame segmentation state (no threads; unit-testable).
#[derive(Debug)]
pub struct OnlineSegmenter {
    config: SegmenterConfig,
    /// Sample index (16 kHz, running time) of the next frame.
    next_frame: Option<u64>,
    speech_start: Option<u64>,
    last_speech_end: u64,
    /// The segment the open speech would become if the pause that just began
    /// lasts ([`OnlineSegmenter::tentative`]).
    tentative: Option<SpeechSpan>,
}

impl OnlineSegmenter {
    /// A segmenter with `config`.
    pub fn new(config: SegmenterConfig) -> Self {
        Self {
            config,
            next_frame: None,
            speech_start: None,
            last_speech_end: 0,
            tentative: None,
        }
    }

    fn samples(&self, seconds: f64) -> u64 {
        (seconds * RATE as f64).round() as u64
    }

    fn span(&self, start: u64, end: u64, limit: u64) -> Option<SpeechSpan> {
        if end.saturating_sub(start) < self.samples(self.config.min_speech) {
            return None;
        }
        let pad = self.samples(self.config.pad);
        Some(SpeechSpan {
            start: sample_to_time(start.saturating_sub(pad), RATE),
            end: sample_to_time((end + pad).min(limit), RATE),
        })
    }

    /// Takes the speech probability of the frame starting at sample `at`; returns a
    /// segment when one finishes.
    pub fn push(&mut self, at: u64, probability: f32) -> Option<SpeechSpan> {
        let frame_end = at + FRAME as u64;
        self.next_frame = Some(frame_end);
        if probability >= self.config.threshold {
            self.tentative = None;
            let start = *self.speech_start.get_or_insert(at);
            self.last_speech_end = frame_end;
            if frame_end - start >= self.samples(self.config.max_length) {
                // Too long: cut here and go on with a new segment.
                self.speech_start = Some(frame_end);
                let pad = self.samples(self.config.pad);
                return Some(SpeechSpan {
                    start: sample_to_time(start.saturating_sub(pad), RATE),
                    end: sample_to_time(frame_end, RATE),
                });
            }
            None
        } else if let Some(start) = self.speech_start
            && frame_end - self.last_speech_end >= self.samples(self.config.min_silence)
        {
            self.speech_start = None;
            self.tentative = None;
            self.span(start, self.last_speech_end, frame_end)
        } else {
            let silence = frame_end - self.last_speech_end;
            let announce = self.samples(EARLY_SILENCE.max(self.config.pad));
            if let Some(start) = self.speech_start
                && silence >= announce
                && silence < announce + FRAME as u64
            {
                // The pause has lasted long enough to be more than a gap between
                // words, and the segment's audio (to its padded end) is all in: its
                // end is known unless speech resumes within the hangover.
                self.tentative = self.span(start, self.last_speech_end, u64::MAX);
            }
            None
        }
    }

    /// While a pause shorter than the hangover is under way: the segment that will be
    /// reported, exactly, if the pause lasts (its audio may still be arriving).
    pub fn tentative(&self) -> Option<SpeechSpan> {
        self.tentative
    }

    /// Sample index before which no segment can start any more: the open segment's
    /// (padded) start, else the (padded) next frame.
    /// Whether speech has started and not yet ended (what is before
    /// [`OnlineSegmenter::silent_until`] is then final silence).
    pub fn in_speech(&self) -> bool {
        self.speech_start.is_some()
    }

    pub fn silent_until(&self) -> u64 {
        let pad = self.samples(self.config.pad);
        self.speech_start
            .or(self.next_frame)
            .unwrap_or(0)
            .saturating_sub(pad)
    }

    /// End of stream: the open segment, if any.
    pub fn finish(&mut self) -> Option<SpeechSpan> {
        self.tentative = None;
        let start = self.speech_start.take()?;
        let limit = self.next_frame.unwrap_or(self.last_speech_end);
        self.span(start, self.last_speech_end, limit)
    }

    /// Forgets everything (flushing seek).
    pub fn reset(&mut self) {
        self.next_frame = None;
        self.speech_start = None;
        self.last_speech_end = 0;
        self.tentative = None;
    }
}

/// The segmentation thread of one element.
pub struct SegmenterThread {
    tx: Option<Sender<Msg>>,
    spans: Receiver<SpeechSpan>,
    processed: Arc<AtomicU64>,
    silent: Arc<AtomicU64>,
    speaking: Arc<std::sync::atomic::AtomicBool>,
    tentative: Arc<Mutex<Option<SpeechSpan>>>,
    handle: Option<JoinHandle<()>>,
}

impl SegmenterThread {
    /// Starts a thread running `detector` with `config`.
    pub fn start(mut detector: VoiceDetector, config: SegmenterConfig) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Msg>(256);
        let (span_tx, spans) = unbounded();
        let processed = Arc::new(AtomicU64::new(0));
        let done = processed.clone();
        let silent = Arc::new(AtomicU64::new(0));
        let silent_until = silent.clone();
        let speaking = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let in_speech = speaking.clone();
        let tentative = Arc::new(Mutex::new(None));
        let pending_span = tentative.clone();
        let handle = std::thread::Builder::new()
            .name("emotionsense-vad".into())
            .spawn(move || {
                let mut seg = OnlineSegmenter::new(config);
                let mut pending: Vec<f32> = Vec::new();
                let mut pending_start = 0u64;
                let _ = detector.start_stream();
                for msg in rx {
                    match msg {
                        Msg::Audio {
                            first_sample,
                            samples,
                        } => {
                            if pending.is_empty() {
                                pending_start = first_sample;
                            }
                            pending.extend_from_slice(&samples);
                            let frames = pending.len() / FRAME;
                            for k in 0..frames {
                                let frame = &pending[k * FRAME..(k + 1) * FRAME];
                                let at = pending_start + (k * FRAME) as u64;
                                let p = detector.stream_probability(frame).unwrap_or(0.0);
                                if let Some(span) = seg.push(at, p) {
                                    let _ = span_tx.send(span);
                                }
                            }
                            pending.drain(..frames * FRAME);
                            pending_start += (frames * FRAME) as u64;
                            // After the spans were sent: a reader of `silent` then
                            // finds every span that starts before it.
                            in_speech.store(seg.in_speech(), Ordering::SeqCst);
                            *lock(&pending_span) = seg.tentative();
                            silent_until
                                .store(sample_to_time(seg.silent_until(), RATE), Ordering::SeqCst);
                            done.store(sample_to_time(pending_start, RATE), Ordering::SeqCst);
                        }
                        Msg::Flush(reply) => {
                            let mut out = Vec::new();
                            if let Some(span) = seg.finish() {
                                out.push(span);
                            }
                            *lock(&pending_span) = None;
                            let _ = reply.send(out);
                        }
                        Msg::Reset => {
                            seg.reset();
                            pending.clear();
                            let _ = detector.start_stream();
                            done.store(0, Ordering::SeqCst);
                            in_speech.store(false, Ordering::SeqCst);
                            silent_until.store(0, Ordering::SeqCst);
                            *lock(&pending_span) = None;
                        }
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            spans,
            processed,
            silent,
            speaking,
            tentative,
            handle: Some(handle),
        })
    }

    /// The segment the speech under way becomes if the pause that has just begun
    /// lasts the hangover ([`OnlineSegmenter::tentative`]); `None` while speaking or
    /// silent.
    pub fn tentative(&self) -> Option<SpeechSpan> {
        *lock(&self.tentative)
    }

    /// Hands mono 16 kHz audio starting at sample index `first_sample` to the thread.
    /// With `block`, waits while the thread is behind (giving up when `stop`
    /// disconnects); else drops the audio when it is.
    pub fn push(&self, first_sample: u64, samples: Vec<f32>, block: bool, stop: &Receiver<()>) {
        let Some(tx) = &self.tx else { return };
        let msg = Msg::Audio {
            first_sample,
            samples,
        };
        if !block {
            let _ = tx.try_send(msg);
            return;
        }
        crossbeam_channel::select! {
            send(tx, msg) -> _ => {}
            recv(stop) -> _ => {}
        }
    }

    /// Segments found so far.
    pub fn take_spans(&self) -> Vec<SpeechSpan> {
        self.spans.try_iter().collect()
    }

    /// Running time (ns) before which no speech segment can start any more (read it
    /// before [`take_spans`](Self::take_spans): every segment starting earlier is then
    /// among the spans taken).
    pub fn silent_until(&self) -> u64 {
        self.silent.load(Ordering::SeqCst)
    }

    /// Whether speech is under way: the silence before [`Self::silent_until`] is then
    /// over for good (it ends where the speech starts).
    pub fn speaking(&self) -> bool {
        self.speaking.load(Ordering::SeqCst)
    }

    /// Running time (ns) up to which audio has been analysed.
    pub fn processed_until(&self) -> u64 {
        self.processed.load(Ordering::SeqCst)
    }

    /// End of stream: waits for the queued audio to be analysed; returns the segments
    /// not yet taken, the open one included.
    pub fn flush(&self) -> Vec<SpeechSpan> {
        let Some(tx) = &self.tx else {
            return Vec::new();
        };
        let (reply, rx) = bounded(1);
        if tx.send(Msg::Flush(reply)).is_err() {
            return Vec::new();
        }
        let last = rx.recv().unwrap_or_default();
        let mut spans = self.take_spans();
        spans.extend(last);
        spans
    }

    /// Flushing seek: forget all audio and segments.
    pub fn reset(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Reset);
        }
        let _ = self.take_spans();
    }
}

impl Drop for SegmenterThread {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_segments_match_offline_rules() {
        let c = SegmenterConfig {
            pad: 0.0,
            ..Default::default()
        };
        let mut s = OnlineSegmenter::new(c);
        let mut spans = Vec::new();
        // 1 s silence, 1 s speech, 1 s silence, 0.1 s blip, 1 s silence (frames of 512).
        let pattern: Vec<f32> = [(31, 0.0), (31, 1.0), (31, 0.0), (3, 1.0), (31, 0.0)]
            .iter()
            .flat_map(|&(n, p)| std::iter::repeat_n(p, n))
            .collect();
        for (k, &p) in pattern.iter().enumerate() {
            spans.extend(s.push((k * FRAME) as u64, p));
        }
        spans.extend(s.finish());
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].start, sample_to_time(31 * 512, RATE));
        assert_eq!(spans[0].end, sample_to_time(62 * 512, RATE));
    }

    #[test]
    fn a_pause_announces_the_segment_it_ends() {
        let mut s = OnlineSegmenter::new(SegmenterConfig::default());
        let mut at = 0u64;
        let mut push = |s: &mut OnlineSegmenter, p: f32, n: usize| {
            let mut out = Vec::new();
            for _ in 0..n {
                out.extend(s.push(at, p));
                at += FRAME as u64;
            }
            out
        };
        push(&mut s, 0.0, 10);
        push(&mut s, 1.0, 30);
        assert_eq!(s.tentative(), None, "still speaking");
        // A gap between words: no announcement.
        push(&mut s, 0.0, 2);
        assert_eq!(s.tentative(), None, "a gap between words");
        push(&mut s, 1.0, 5);
        // A pause shorter than the hangover (0.3 s ≈ 9 frames), then speech again.
        push(&mut s, 0.0, 4);
        let first = s.tentative().expect("a pause began");
        push(&mut s, 1.0, 20);
        assert_eq!(s.tentative(), None, "speech resumed");
        // A pause that lasts: the segment reported is the one announced.
        assert!(push(&mut s, 0.0, 4).is_empty());
        let announced = s.tentative().expect("a pause began");
        assert!(announced.end > first.end);
        let spans = push(&mut s, 0.0, 10);
        assert_eq!(spans, vec![announced]);
        assert_eq!(s.tentative(), None);
    }

    #[test]
    fn long_speech_is_cut_and_open_speech_ends_at_eos() {
        let c = SegmenterConfig {
            pad: 0.0,
            max_length: 1.0,
            ..Default::default()
        };
        let mut s = OnlineSegmenter::new(c);
        let mut spans = Vec::new();
        for k in 0..80 {
            spans.extend(s.push(k * 512, 1.0));
        }
        spans.extend(s.finish());
        assert_eq!(spans.len(), 3, "{spans:?}");
        assert!(
            spans
                .iter()
                .all(|x| x.end - x.start <= 1_000_000_000 + 32_000_000)
        );
        assert_eq!(spans[2].end, sample_to_time(80 * 512, RATE));
    }
}
