//! The streaming side of `aggregate()`: taking buffers in running-time order into the
//! windows, feeding the voice detector, sending video on with `EmotionMeta` (and the
//! overlay), and handing complete windows to the worker (live input drops them when it
//! is behind).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::CAT;
use super::faults::Change;
use super::imp::{EmotionSense, Prompt, State, lock};
use super::ingest::{Frame, InputFault, Severity};
use super::inputs::{Input, LiveClock, pixel_layout, running_time};
use super::passthrough::Passed;
use super::results::Latest;
use super::timing::Designation;
use super::worker::{Submit, Worker};
use crate::output::overlay::Canvas;
use crate::output::{META_NAME, WindowResult};
use crate::speculation::Speculation;
use crate::speech::segmenter::{SegmenterThread, SpeechSpan};
use crate::window::{SECOND, WindowJob};

/// What one `aggregate` call took from the pads.
#[derive(Default)]
pub(super) struct Taken {
    /// Video buffers to send downstream, with their running times.
    pub outgoing: Vec<(Option<u64>, gst::Buffer)>,
    /// Audio (first sample index, mono samples) for the voice detector.
    pub vad_audio: Vec<(u64, Vec<f32>)>,
    /// Changes in the inputs' health (live), to report.
    pub changes: Vec<Change>,
    /// Live: where the data should be now on the clock (audio_src releases up to it).
    pub position: Option<u64>,
    /// Windows complete.
    pub jobs: Vec<WindowJob>,
    /// Every input has ended.
    pub eos: bool,
    /// Live early analysis: an utterance whose closing pause has begun, not yet
    /// confirmed (offered once), and the guess that withdraws it.
    pub early: Option<(WindowJob, Speculation)>,
    /// Faults of input buffers to report (once the state's lock is released).
    pub faults: Vec<InputFault>,
}

/// The input pads as one `aggregate` call finds them.
struct InputPads {
    video: Option<gst_base::AggregatorPad>,
    audio: Option<gst_base::AggregatorPad>,
    /// The audio also leaves on audio_src (kept only when that pad is linked).
    passing: bool,
    /// A voice detector follows the audio.
    follow_speech: bool,
}

impl EmotionSense {
    /// Consumes the queued buffers in running-time order across the pads (so video
    /// never runs ahead of audio) and collects the windows that are complete.
    pub(super) fn take_input(
        &self,
        live: bool,
        timeout: bool,
        segmenter: Option<&SegmenterThread>,
    ) -> Result<Taken, gst::FlowError> {
        let pads = InputPads {
            video: self.input_pad(Input::Video),
            audio: self.input_pad(Input::Audio),
            passing: self.audio_src().is_some_and(|p| p.is_linked()),
            follow_speech: segmenter.is_some(),
        };
        let mut taken = Taken::default();
        let took = {
            let mut guard = lock(&self.state);
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            self.take_locked(state, &pads, live, timeout, segmenter, &mut taken)
        };
        for fault in std::mem::take(&mut taken.faults) {
            self.report_fault(&fault);
        }
        if let Err(fault) = took {
            self.report_fault(&fault);
            return Err(fault.flow());
        }
        Ok(taken)
    }

    /// [`EmotionSense::take_input`] under the state's lock.
    fn take_locked(
        &self,
        state: &mut State,
        pads: &InputPads,
        live: bool,
        timeout: bool,
        segmenter: Option<&SegmenterThread>,
        taken: &mut Taken,
    ) -> Result<(), InputFault> {
        state.assembler.set_live(live);
        let clock = self.live_clock(state, live);
        taken.position = clock.position;
        self.take_buffers(state, pads, &clock, live, taken)?;
        self.end_inputs(state, pads, &clock, taken);
        if live {
            let gone = self.watch_inputs(
                state,
                [&pads.video, &pads.audio],
                &clock,
                &mut taken.changes,
            );
            // Audio that stopped: the speech it held becomes windows now, and the voice
            // detector starts afresh when it comes back.
            if gone.contains(&Input::Audio)
                && let Some(seg) = segmenter
            {
                for span in seg.flush() {
                    state.assembler.add_utterance(span.start, span.end);
                }
                seg.reset();
            }
        }
        if timeout && let Some(now) = self.obj().current_running_time() {
            let latency = self.obj().latency().unwrap_or(gst::ClockTime::ZERO);
            state
                .assembler
                .advance_to(now.saturating_sub(latency).nseconds());
        }
        if let Some(seg) = segmenter {
            self.follow_speech(state, seg);
            if live {
                taken.early = offer_early(state, seg);
            }
        }
        taken.jobs = state.assembler.take_complete();
        taken.eos = state.assembler.all_ended();
        if taken.eos && segmenter.is_none() {
            taken.jobs.extend(state.assembler.finish());
        }
        let skipped = state.assembler.take_skipped();
        self.shared.skipped.fetch_add(skipped, Ordering::SeqCst);
        gst::trace!(CAT, imp = self, "{} window(s) complete", taken.jobs.len());
        Ok(())
    }

    /// Tells the user about a fault of an input buffer, as its severity says.
    fn report_fault(&self, fault: &InputFault) {
        match (fault.severity(), fault) {
            (Severity::Log, _) => gst::warning!(CAT, imp = self, "{fault}"),
            (Severity::Warning, _) => {
                gst::element_imp_warning!(self, gst::StreamError::Decode, ("{fault}"));
            }
            (Severity::Error, InputFault::AudioConversion(_)) => {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{fault}"));
            }
            (Severity::Error, InputFault::FrameUnreadable) => {
                gst::element_imp_error!(self, gst::StreamError::Decode, ("{fault}"));
            }
            (Severity::Error, _) => {
                gst::element_imp_error!(self, gst::CoreError::Negotiation, ("{fault}"));
            }
        }
    }

    /// The queued buffers of both pads, in running-time order, into the windows
    /// (video also into `taken.outgoing`, audio for the voice detector).
    fn take_buffers(
        &self,
        state: &mut State,
        pads: &InputPads,
        clock: &LiveClock,
        live: bool,
        taken: &mut Taken,
    ) -> Result<(), InputFault> {
        loop {
            let head = |input: Input, pad: &Option<gst_base::AggregatorPad>| {
                let pad = pad.as_ref()?;
                let buf = pad.peek_buffer()?;
                let rt = running_time(pad, &buf).unwrap_or(0);
                Some(clock.preview(state, input, rt))
            };
            // A pad without a queued buffer only holds the other back if it may still
            // deliver one (non-live input waits; live input never does).
            let waits = |pad: &Option<gst_base::AggregatorPad>| {
                !live && pad.as_ref().is_some_and(|p| !p.is_eos())
            };
            let next = match (
                head(Input::Video, &pads.video),
                head(Input::Audio, &pads.audio),
            ) {
                (None, None) => break,
                (Some(v), Some(a)) if v <= a => Input::Video,
                (Some(_), Some(_)) => Input::Audio,
                (Some(_), None) if waits(&pads.audio) => break,
                (Some(_), None) => Input::Video,
                (None, Some(_)) if waits(&pads.video) => break,
                (None, Some(_)) => Input::Audio,
            };
            match next {
                Input::Video => {
                    let pad = pads.video.as_ref().expect("video head exists");
                    if let Some(mut buf) = pad.pop_buffer() {
                        let raw = running_time(pad, &buf);
                        let (frame, fault) =
                            state.push_video(pad, &buf, clock, &mut taken.changes)?;
                        taken.faults.extend(fault);
                        if let Frame::Pass(rt) = frame {
                            if let Some(t) = rt
                                && raw != rt
                            {
                                // Re-timed after a jump: it leaves on the clock's timeline.
                                restamp(&mut buf, pad, t);
                            }
                            taken.outgoing.push((rt, buf));
                        }
                    }
                }
                Input::Audio => {
                    let pad = pads.audio.as_ref().expect("audio head exists");
                    let Some(buf) = pad.pop_buffer() else {
                        continue;
                    };
                    if pads.passing {
                        let rt = running_time(pad, &buf);
                        state.audio_out.push_back(Passed::Buffer(rt, buf.clone()));
                    }
                    for buf in state.convert_audio(buf)? {
                        self.push_audio_into(state, pads, pad, buf, clock, taken);
                    }
                }
            }
            self.shared.moved.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One converted audio buffer into the windows (and, with a voice detector, into
    /// `taken.vad_audio`).
    fn push_audio_into(
        &self,
        state: &mut State,
        pads: &InputPads,
        pad: &gst_base::AggregatorPad,
        buf: gst::Buffer,
        clock: &LiveClock,
        taken: &mut Taken,
    ) {
        match state.push_audio(pad, buf, clock, &mut taken.changes) {
            Ok(Some(chunk)) if pads.follow_speech => taken.vad_audio.push(chunk),
            Ok(_) => {}
            Err(fault) => taken.faults.push(fault),
        }
    }

    /// Inputs at end of stream: the audio converter's last samples (they belong to
    /// the audio before its end), then the assembler is told.
    fn end_inputs(
        &self,
        state: &mut State,
        pads: &InputPads,
        clock: &LiveClock,
        taken: &mut Taken,
    ) {
        for (input, pad) in [(Input::Audio, &pads.audio), (Input::Video, &pads.video)] {
            let Some(pad) = pad.as_ref().filter(|p| p.is_eos()) else {
                continue;
            };
            let rest = match state.resampler.as_mut() {
                Some(r) if input == Input::Audio => r.drain(),
                _ => Vec::new(),
            };
            for buf in rest {
                self.push_audio_into(state, pads, pad, buf, clock, taken);
            }
            state.assembler.end_input(input);
        }
    }

    /// What the voice detector found since the last call: utterances into the
    /// assembler, the silence it has confirmed, an early guess settled.
    fn follow_speech(&self, state: &mut State, seg: &SegmenterThread) {
        let silent = seg.silent_until();
        // Read before the spans: a segment confirmed since is among them (the
        // thread sends a span before it clears the tentative one).
        let tentative = seg.tentative();
        let spans = seg.take_spans();
        if let (Some(span), Some(guess)) = (state.early_offered, state.early_guess.take()) {
            match settle_guess(span, tentative, &spans) {
                Guess::Confirmed => {}
                Guess::Standing => state.early_guess = Some(guess),
                Guess::Withdrawn => {
                    gst::debug!(CAT, imp = self, "early utterance {span:?} withdrawn");
                    guess.withdraw();
                }
            }
        }
        for span in spans {
            state.assembler.add_utterance(span.start, span.end);
        }
        state.assembler.advance_silence(silent, seg.speaking());
        // No utterance found later can start before this.
        let max_utterance = lock(&self.settings).max_utterance_length;
        let horizon = ((max_utterance + 0.5) * SECOND as f64) as u64;
        state
            .assembler
            .set_keep_from(seg.processed_until().saturating_sub(horizon));
    }

    /// Hands audio to the voice detector (its own thread); at end of stream, the last
    /// utterances become windows.
    pub(super) fn feed_segmenter(
        &self,
        seg: &SegmenterThread,
        audio: Vec<(u64, Vec<f32>)>,
        live: bool,
        eos: bool,
        stop: &crossbeam_channel::Receiver<()>,
    ) -> Vec<WindowJob> {
        for (first, samples) in audio {
            seg.push(first, samples, !live, stop);
        }
        if !eos {
            return Vec::new();
        }
        let spans = seg.flush();
        let (jobs, skipped) = self
            .with_state(|state| {
                for span in spans {
                    state.assembler.add_utterance(span.start, span.end);
                }
                let jobs = state.assembler.finish();
                (jobs, state.assembler.take_skipped())
            })
            .unwrap_or_default();
        self.shared.skipped.fetch_add(skipped, Ordering::SeqCst);
        jobs
    }

    /// Sends video buffers downstream at once, each with the latest result.
    pub(super) fn send_latest(
        &self,
        outgoing: Vec<(Option<u64>, gst::Buffer)>,
    ) -> Result<(), gst::FlowError> {
        if outgoing.is_empty() {
            return Ok(());
        }
        // The latest result, read once for all buffers leaving now.
        let latest = self.shared.latest();
        for (rt, buf) in outgoing {
            self.emit(buf, rt, latest.as_deref())?;
        }
        Ok(())
    }

    /// Sends one video buffer (at running time `rt`) downstream carrying `result` in
    /// its `EmotionMeta` (and drawn on it, with the overlay on).
    fn emit(
        &self,
        mut buf: gst::Buffer,
        rt: Option<u64>,
        result: Option<&Latest>,
    ) -> Result<(), gst::FlowError> {
        self.attach_meta(buf.make_mut(), result.map(|l| &l.structure));
        if let Some(latest) = result
            && lock(&self.settings).overlay
        {
            let info = self
                .with_state(|state| (state.video_info.clone(), state.orientation()))
                .and_then(|(info, orientation)| info.map(|info| (info, orientation)));
            if let Some((info, orientation)) = info {
                self.draw_overlay(&mut buf, &info, &latest.result, rt, orientation);
            }
        }
        // The audio of this frame's time goes first: a muxer fed by both src pads
        // may wait for it before it takes the frame.
        if let Some(t) = rt {
            self.video_sent_until(t + buf.duration().map_or(0, |d| d.nseconds()));
            self.release_audio(false, None)?;
        }
        self.obj().finish_buffer(buf)?;
        Ok(())
    }

    /// In step: sends the held buffers whose window's result is known, in order. Live,
    /// a buffer leaves when its running time + the element's latency has come: with its
    /// window's result, or else (a missed deadline, counted) the latest one. With
    /// `ended`, every buffer leaves.
    pub(super) fn release(&self, live: bool, ended: bool) -> Result<(), gst::FlowError> {
        let now = if live {
            self.obj().current_running_time().map(|t| t.nseconds())
        } else {
            None
        };
        let first_may_go = lock(&self.state)
            .as_ref()
            .is_some_and(|s| s.prompt == Prompt::IfPausing)
            && self.pipeline_pauses();
        loop {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else { break };
            let Some((rt, _)) = state.held.front() else {
                break;
            };
            let rt = *rt;
            let settled = state.assembler.settled_until();
            let mut designated = None;
            let mut missed = false;
            let carried = {
                let results = self.shared.results();
                match rt {
                    None => Some(results.newest()),
                    Some(t) => {
                        let ready = match state.timing.designate(t, settled, ended) {
                            Designation::Window(k) => {
                                designated = Some(k);
                                results
                                    .get(k)
                                    .map(|r| r.or_else(|| results.at_or_before(k)))
                            }
                            Designation::Empty => Some(None),
                            Designation::Pending => None,
                        };
                        // Live: a buffer leaves when its time has come (pushed
                        // earlier it would only wait in a synchronised sink, and this
                        // thread with it), with the latest result if its own is late.
                        let due = now.is_none_or(|n| n >= t + state.element_latency);
                        match ready {
                            _ if ended => Some(ready.unwrap_or_else(|| results.newest())),
                            Some(r) if due => Some(r),
                            None if due && now.is_some() => {
                                missed = true;
                                Some(results.newest())
                            }
                            // The first frame after a flushing seek, or of a
                            // preroll to PAUSED, does not wait.
                            _ if state.prompt == Prompt::AfterFlush
                                || state.prompt == Prompt::IfPausing && first_may_go =>
                            {
                                Some(ready.unwrap_or_else(|| results.newest()))
                            }
                            _ => None,
                        }
                    }
                }
            };
            let Some(carried) = carried else { break };
            let Some((_, buf)) = state.held.pop_front() else {
                break;
            };
            state.prompt = Prompt::No;
            if let Some(k) = designated {
                // Earlier windows are done with (their last result is kept).
                state.timing.forget_before(k);
                self.shared.results().forget_before(k);
            }
            let first_miss = missed && !state.missing;
            state.missing = missed;
            drop(guard);
            if missed {
                self.missed_deadline(rt.unwrap_or_default(), first_miss);
            }
            self.emit(buf, rt, carried.as_deref())?;
        }
        Ok(())
    }

    /// Whether the pipeline this element is in is going to PAUSED (prerolling to show
    /// a picture), not to PLAYING.
    fn pipeline_pauses(&self) -> bool {
        let mut top: gst::Element = self.obj().clone().upcast();
        while let Some(parent) = top.parent().and_then(|p| p.downcast::<gst::Element>().ok()) {
            top = parent;
        }
        let (_, current, pending) = top.state(gst::ClockTime::ZERO);
        let target = if pending == gst::State::VoidPending {
            current
        } else {
            pending
        };
        target == gst::State::Paused
    }

    /// Counts a buffer that left past its deadline with the latest result; the first
    /// of a run is reported with a QoS message.
    fn missed_deadline(&self, running_time: u64, first_of_run: bool) {
        self.shared.misses.fetch_add(1, Ordering::SeqCst);
        if !first_of_run {
            return;
        }
        gst::debug!(
            CAT,
            imp = self,
            "analysis missed the deadline for the buffer at {}",
            gst::ClockTime::from_nseconds(running_time)
        );
        let qos = gst::message::Qos::builder(true)
            .running_time(gst::ClockTime::from_nseconds(running_time))
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(qos);
    }

    /// Attaches `EmotionMeta` holding `latest` (empty before the first result).
    fn attach_meta(&self, buf: &mut gst::BufferRef, latest: Option<&gst::Structure>) {
        let Ok(mut meta) = gst::meta::CustomMeta::add(buf, META_NAME) else {
            gst::warning!(
                CAT,
                imp = self,
                "{META_NAME} is not registered: buffer without meta"
            );
            return;
        };
        if let Some(s) = latest {
            let ms = meta.mut_structure();
            for (name, value) in s.iter() {
                ms.set_value(name, value.clone());
            }
        }
    }

    /// Draws `result` on `buf` (the `overlay` property); face boxes, found in the
    /// upright picture, are drawn where they are in the stored one (`orientation`
    /// turns it upright).
    fn draw_overlay(
        &self,
        buf: &mut gst::Buffer,
        info: &gst_video::VideoInfo,
        result: &WindowResult,
        rt: Option<u64>,
        orientation: crate::media::Orientation,
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
            let mut canvas = Canvas::new(plane, w, h, stride, layout);
            crate::output::overlay::draw(&mut canvas, result, rt, orientation.inverse());
        }
    }

    /// Hands a window to the worker; live input drops it when the worker is behind.
    pub(super) fn submit(
        &self,
        worker: &Worker,
        job: WindowJob,
        live: bool,
        stop: &crossbeam_channel::Receiver<()>,
    ) -> Result<(), gst::FlowError> {
        let span = job.span;
        match worker.submit(job, !live, stop) {
            Submit::Queued => Ok(()),
            Submit::Flushing => Err(gst::FlowError::Flushing),
            Submit::Dropped => {
                self.shared.record(span.index, None);
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
                let due = self
                    .with_state(|state| {
                        let due = state
                            .last_drop_warning
                            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                        if due {
                            state.last_drop_warning = Some(Instant::now());
                        }
                        due
                    })
                    .unwrap_or(false);
                if due {
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
}

/// Sets the PTS of `buf` (from `pad`) to running time `rt` in its segment.
fn restamp(buf: &mut gst::Buffer, pad: &gst_base::AggregatorPad, rt: u64) {
    let segment = pad.segment();
    let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else {
        return;
    };
    if let Some(pts) = segment.position_from_running_time(gst::ClockTime::from_nseconds(rt)) {
        let b = buf.make_mut();
        b.set_pts(pts);
        b.set_dts(gst::ClockTime::NONE);
    }
}

/// What became of an utterance offered early.
#[derive(Debug, PartialEq, Eq)]
enum Guess {
    /// The segmenter reported it: the worker keeps its work.
    Confirmed,
    /// Still the segment the pause under way would end.
    Standing,
    /// Speech resumed (or the segment was cut otherwise): it will not come.
    Withdrawn,
}

/// Settles the utterance `offered` early from the segmenter's `tentative` segment,
/// read before the `spans` it reported since the last look (it reports a span before
/// clearing the tentative one, so a confirmed span is among them).
fn settle_guess(offered: SpeechSpan, tentative: Option<SpeechSpan>, spans: &[SpeechSpan]) -> Guess {
    if spans.contains(&offered) {
        Guess::Confirmed
    } else if tentative == Some(offered) {
        Guess::Standing
    } else {
        Guess::Withdrawn
    }
}

/// Live early analysis: the utterance whose closing pause has just begun, offered once
/// with the guess that withdraws it.
fn offer_early(state: &mut State, seg: &SegmenterThread) -> Option<(WindowJob, Speculation)> {
    let span = seg.tentative()?;
    if !state.early_analysis || state.early_offered == Some(span) {
        return None;
    }
    let job = state.assembler.preview_utterance(span.start, span.end)?;
    let guess = Speculation::new();
    state.early_offered = Some(span);
    state.early_guess = Some(guess.clone());
    Some((job, guess))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SpeechSpan = SpeechSpan { start: 1, end: 5 };
    const LONGER: SpeechSpan = SpeechSpan { start: 1, end: 9 };

    #[test]
    fn a_reported_span_confirms_even_while_still_announced() {
        // The thread reported the span but had not cleared its tentative one yet.
        assert_eq!(settle_guess(A, Some(A), &[A]), Guess::Confirmed);
        assert_eq!(settle_guess(A, None, &[A]), Guess::Confirmed);
    }

    #[test]
    fn an_announced_span_stands_and_resumed_speech_withdraws_it() {
        assert_eq!(settle_guess(A, Some(A), &[]), Guess::Standing);
        assert_eq!(settle_guess(A, None, &[]), Guess::Withdrawn);
        // Speech resumed and paused again: a longer segment is announced.
        assert_eq!(settle_guess(A, Some(LONGER), &[]), Guess::Withdrawn);
        assert_eq!(settle_guess(A, None, &[LONGER]), Guess::Withdrawn);
    }
}
