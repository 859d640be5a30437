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
use super::imp::{EmotionSense, lock};
use super::inputs::{Input, pixel_layout, running_time};
use super::worker::{Submit, Worker};
use crate::output::overlay::Canvas;
use crate::output::{META_NAME, WindowResult};
use crate::speech::segmenter::SegmenterThread;
use crate::window::{SAMPLE_RATE, SECOND, WindowJob};

/// What one `aggregate` call took from the pads.
pub(super) struct Taken {
    /// Video buffers to send downstream.
    pub outgoing: Vec<gst::Buffer>,
    /// Audio (running time, mono samples) for the voice detector.
    pub vad_audio: Vec<(u64, Vec<f32>)>,
    /// Windows complete.
    pub jobs: Vec<WindowJob>,
    /// Every input has ended.
    pub eos: bool,
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
        let (video, audio) = {
            let pads = lock(&self.pads);
            (pads.video.clone(), pads.audio.clone())
        };
        let mut state = lock(&self.state);
        state.assembler.set_wait_for_pending(!live);
        let mut outgoing = Vec::new();
        let mut vad_audio = Vec::new();
        loop {
            let head = |pad: &Option<gst_base::AggregatorPad>| {
                pad.as_ref()
                    .and_then(|p| p.peek_buffer().map(|b| running_time(p, &b).unwrap_or(0)))
            };
            // A pad without a queued buffer only holds the other back if it may still
            // deliver one (non-live input waits; live input never does).
            let waits = |pad: &Option<gst_base::AggregatorPad>| {
                !live && pad.as_ref().is_some_and(|p| !p.is_eos())
            };
            let next = match (head(&video), head(&audio)) {
                (None, None) => break,
                (Some(v), Some(a)) if v <= a => Input::Video,
                (Some(_), Some(_)) => Input::Audio,
                (Some(_), None) if waits(&audio) => break,
                (Some(_), None) => Input::Video,
                (None, Some(_)) if waits(&video) => break,
                (None, Some(_)) => Input::Audio,
            };
            match next {
                Input::Video => {
                    let pad = video.as_ref().expect("video head exists");
                    if let Some(buf) = pad.pop_buffer() {
                        self.push_video(&mut state, pad, &buf)?;
                        outgoing.push(buf);
                    }
                }
                Input::Audio => {
                    let pad = audio.as_ref().expect("audio head exists");
                    if let Some(buf) = pad.pop_buffer()
                        && let Some(chunk) = self.push_audio(&mut state, pad, buf)
                        && segmenter.is_some()
                    {
                        vad_audio.push(chunk);
                    }
                }
            }
        }
        for (input, pad) in [(Input::Audio, &audio), (Input::Video, &video)] {
            if pad.as_ref().is_some_and(|p| p.is_eos()) {
                state.assembler.end_input(input);
            }
        }
        if timeout && let Some(now) = self.obj().current_running_time() {
            let latency = self.obj().latency().unwrap_or(gst::ClockTime::ZERO);
            state
                .assembler
                .advance_to(now.saturating_sub(latency).nseconds());
        }
        if let Some(seg) = segmenter {
            let silent = seg.silent_until();
            for span in seg.take_spans() {
                state.assembler.add_utterance(span.start, span.end);
            }
            state.assembler.advance_silence(silent);
            // No utterance found later can start before this.
            let max_utterance = lock(&self.settings).max_utterance_length;
            let horizon = ((max_utterance + 0.5) * SECOND as f64) as u64;
            state
                .assembler
                .set_keep_from(seg.processed_until().saturating_sub(horizon));
        }
        let mut jobs = state.assembler.take_complete();
        let eos = state.assembler.all_ended();
        if eos && segmenter.is_none() {
            jobs.extend(state.assembler.finish());
        }
        gst::trace!(CAT, imp = self, "{} window(s) complete", jobs.len());
        Ok(Taken {
            outgoing,
            vad_audio,
            jobs,
            eos,
        })
    }

    /// Hands audio to the voice detector (its own thread); at end of stream, the last
    /// utterances become windows.
    pub(super) fn feed_segmenter(
        &self,
        seg: &SegmenterThread,
        audio: Vec<(u64, Vec<f32>)>,
        live: bool,
        eos: bool,
    ) -> Vec<WindowJob> {
        let stop = || self.shared.is_flushing();
        for (rt, samples) in audio {
            let first = crate::media::audio::time_to_sample(rt, SAMPLE_RATE);
            seg.push(first, samples, !live, &stop);
        }
        if !eos {
            return Vec::new();
        }
        let spans = seg.flush();
        let mut state = lock(&self.state);
        for span in spans {
            state.assembler.add_utterance(span.start, span.end);
        }
        state.assembler.finish()
    }

    /// Sends video buffers downstream with `EmotionMeta` (and the overlay, when on).
    pub(super) fn send_video(&self, outgoing: Vec<gst::Buffer>) -> Result<(), gst::FlowError> {
        if outgoing.is_empty() {
            return Ok(());
        }
        // The latest result, read once for all buffers leaving now.
        let latest = self.shared.latest();
        let overlay = lock(&self.settings).overlay;
        let overlay_info = overlay
            .then(|| lock(&self.state).video_info.clone())
            .flatten();
        for mut buf in outgoing {
            self.attach_meta(buf.make_mut(), latest.as_ref().map(|l| &l.structure));
            if let (Some(info), Some(latest)) = (&overlay_info, &latest) {
                self.draw_overlay(&mut buf, info, &latest.result);
            }
            self.obj().finish_buffer(buf)?;
        }
        Ok(())
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

    /// Draws `result` on `buf` (the `overlay` property).
    fn draw_overlay(
        &self,
        buf: &mut gst::Buffer,
        info: &gst_video::VideoInfo,
        result: &WindowResult,
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
            crate::output::overlay::draw(&mut canvas, result);
        }
    }

    /// Hands a window to the worker; live input drops it when the worker is behind.
    pub(super) fn submit(
        &self,
        worker: &Worker,
        job: WindowJob,
        live: bool,
    ) -> Result<(), gst::FlowError> {
        let span = job.span;
        match worker.submit(job, !live) {
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
                let due = {
                    let mut state = lock(&self.state);
                    let due = state
                        .last_drop_warning
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                    if due {
                        state.last_drop_warning = Some(Instant::now());
                    }
                    due
                };
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
