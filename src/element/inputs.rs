//! The element's two inputs: which pad is which, their caps, turning their buffers into
//! window data (resized frames with face boxes, mono audio), and ending an input whose
//! upstream will never deliver (so non-live pipelines cannot hang).

use std::sync::Arc;

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::CAT;
use super::faults::Change;
use super::imp::{EmotionSense, State, lock};
use super::resample::{AudioInputError, Resampler, is_analysable};
use crate::media::{FaceRoi, PixelLayout, SampleFormat, pcm_to_mono, resize_linear};
pub use crate::window::Input;
use crate::window::{InputState, SAMPLE_RATE, SECOND};

/// The requested sink pads.
#[derive(Default)]
pub struct Pads {
    pub video: Option<gst_base::AggregatorPad>,
    pub audio: Option<gst_base::AggregatorPad>,
    /// The audio passed through (with the `audio` pad).
    pub audio_src: Option<gst::Pad>,
    /// Held while the element waits for its first input pad; dropping it (a pad is
    /// requested, the element stops) wakes the watcher, which then ends.
    pub no_inputs_watch: Option<crossbeam_channel::Sender<()>>,
}

impl Pads {
    /// The pad of `input`, if requested.
    pub fn get(&self, input: Input) -> Option<&gst_base::AggregatorPad> {
        match input {
            Input::Video => self.video.as_ref(),
            Input::Audio => self.audio.as_ref(),
        }
    }

    /// The slot of `input`.
    pub fn slot(&mut self, input: Input) -> &mut Option<gst_base::AggregatorPad> {
        match input {
            Input::Video => &mut self.video,
            Input::Audio => &mut self.audio,
        }
    }

    /// Which input `pad` is.
    pub fn input_of(&self, pad: &impl IsA<gst::Pad>) -> Option<Input> {
        let pad = pad.upcast_ref::<gst::Pad>();
        [Input::Video, Input::Audio].into_iter().find(|i| {
            self.get(*i)
                .is_some_and(|p| p.upcast_ref::<gst::Pad>() == pad)
        })
    }
}

/// Video formats accepted on the `video` pad and produced on `src`.
pub const VIDEO_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::Gray8,
];

/// Where R, G and B sit in a pixel of `format`.
pub fn pixel_layout(format: gst_video::VideoFormat) -> Option<PixelLayout> {
    use gst_video::VideoFormat as F;
    let (bytes_per_pixel, rgb_offsets) = match format {
        F::Rgb => (3, [0, 1, 2]),
        F::Bgr => (3, [2, 1, 0]),
        F::Rgbx | F::Rgba => (4, [0, 1, 2]),
        F::Bgrx | F::Bgra => (4, [2, 1, 0]),
        F::Xrgb | F::Argb => (4, [1, 2, 3]),
        F::Xbgr | F::Abgr => (4, [3, 2, 1]),
        F::Gray8 => (1, [0, 0, 0]),
        _ => return None,
    };
    Some(PixelLayout {
        bytes_per_pixel,
        rgb_offsets,
    })
}

/// The size of a `width`×`height` frame scaled so its longest side is at most `side`
/// (aspect kept, never enlarged, at least 1×1).
fn fit_size(width: usize, height: usize, side: usize) -> (usize, usize) {
    let longest = width.max(height);
    if longest <= side {
        return (width.max(1), height.max(1));
    }
    let scale = side as f64 / longest as f64;
    (
        ((width as f64 * scale).round() as usize).max(1),
        ((height as f64 * scale).round() as usize).max(1),
    )
}

/// Face boxes of upstream GstVideoRegionOfInterestMeta (type "face") scaled from the
/// `iw`×`ih` frame to `w`×`h` and clipped to it.
fn upstream_faces(buf: &gst::BufferRef, iw: usize, ih: usize, w: usize, h: usize) -> Vec<FaceRoi> {
    let (sx, sy) = (w as f64 / iw as f64, h as f64 / ih as f64);
    buf.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == "face")
        .filter_map(|m| {
            let (x, y, rw, rh) = m.rect();
            let x0 = ((x as f64 * sx).round() as usize).min(w.saturating_sub(1));
            let y0 = ((y as f64 * sy).round() as usize).min(h.saturating_sub(1));
            let x1 = (((x as f64 + rw as f64) * sx).round() as usize).min(w);
            let y1 = (((y as f64 + rh as f64) * sy).round() as usize).min(h);
            (x1 > x0 && y1 > y0).then(|| FaceRoi {
                x: x0 as u32,
                y: y0 as u32,
                width: (x1 - x0) as u32,
                height: (y1 - y0) as u32,
            })
        })
        .collect()
}

/// Where live input stands on the pipeline clock, for one `aggregate` call: what
/// re-times a jumped input and finds a stalled one. Non-live input is never re-timed.
pub(super) struct LiveClock {
    /// The clock's running time (ns); `None` for non-live input (or no clock yet).
    pub now: Option<u64>,
    /// Where live data should be now: `now` less the latency (ns).
    pub position: Option<u64>,
    /// How long an input may deliver nothing (ns, `input-timeout`).
    pub bound: u64,
}

impl LiveClock {
    /// The running time a buffer of `input` at `rt` would be taken at (re-timed when
    /// its timestamps jumped; changes nothing).
    pub fn preview(&self, state: &State, input: Input, rt: u64) -> u64 {
        if self.now.is_none() {
            return rt;
        }
        state.watch[input as usize]
            .retime(rt, self.position, self.bound)
            .0
    }

    /// Takes a buffer of `input` at `rt` lasting `duration`: returns the running time
    /// to use, re-timed when its timestamps jumped, and notes the delivery (a stalled
    /// input recovers) in `changes`. Data long past (older than the input timeout) is
    /// not a delivery when it is a `gap` (GAP event: what a jitter buffer sends for
    /// packets that never came) or the input is stalled (its windows are cut
    /// already; a decoder drains such leftovers at the end): `None`, ignore it.
    pub fn deliver(
        &self,
        state: &mut State,
        input: Input,
        rt: u64,
        duration: u64,
        gap: bool,
        changes: &mut Vec<Change>,
    ) -> Option<u64> {
        if self.now.is_none() {
            return Some(rt);
        }
        let watch = &mut state.watch[input as usize];
        let (retimed, offset) = watch.retime(rt, self.position, self.bound);
        let stale = self
            .position
            .is_some_and(|p| retimed + duration + self.bound < p);
        if stale && (gap || watch.is_stalled()) {
            return None;
        }
        changes.extend(watch.delivered(input, rt, retimed, duration, offset, self.now));
        Some(retimed)
    }
}

/// What became of a video buffer taken from the pad.
pub(super) enum Frame {
    /// It goes downstream, carrying the result of its running time (`None`: outside
    /// the segment).
    Pass(Option<u64>),
    /// A gap (no picture): nothing goes downstream.
    Gap,
}

/// The sample format and channel count of analysable audio caps.
fn sample_format(caps: &gst::CapsRef) -> Option<(SampleFormat, usize)> {
    let info = gst_audio::AudioInfo::from_caps(caps).ok()?;
    let format = match info.format() {
        gst_audio::AudioFormat::F32le => SampleFormat::F32le,
        gst_audio::AudioFormat::S16le => SampleFormat::S16le,
        _ => return None,
    };
    Some((format, info.channels() as usize))
}

/// Running time (ns) of a buffer's PTS in `pad`'s segment.
pub fn running_time(pad: &gst_base::AggregatorPad, buf: &gst::BufferRef) -> Option<u64> {
    let segment = pad.segment();
    let segment = segment.downcast_ref::<gst::ClockTime>()?;
    segment.to_running_time(buf.pts()?).map(|t| t.nseconds())
}

impl EmotionSense {
    /// Takes the caps of `input`; posts an error saying what to put upstream when they
    /// cannot be used.
    pub(super) fn set_caps(&self, input: Input, caps: &gst::CapsRef) -> bool {
        match input {
            Input::Video => match gst_video::VideoInfo::from_caps(caps) {
                Ok(info) if pixel_layout(info.format()).is_some() => {
                    self.with_state(|s| s.video_info = Some(info));
                    self.obj().src_pad().mark_reconfigure();
                    true
                }
                _ => {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("Unsupported video caps {caps}: put videoconvert before the video pad")
                    );
                    false
                }
            },
            Input::Audio => match self.set_audio_caps(caps) {
                Ok(()) => true,
                Err(e) => {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("Unsupported audio caps {caps}: {e}")
                    );
                    false
                }
            },
        }
    }

    /// Takes the audio caps: 16 kHz F32LE/S16LE interleaved are analysed as they are;
    /// anything else goes through the internal converter.
    fn set_audio_caps(&self, caps: &gst::CapsRef) -> Result<(), AudioInputError> {
        // The pad's segment when it has one yet (caps come first); the converter
        // gets every later one.
        let segment = lock(&self.pads)
            .audio
            .as_ref()
            .map(|p| p.segment())
            .filter(|s| s.format() == gst::Format::Time)
            .unwrap_or_else(|| gst::FormattedSegment::<gst::ClockTime>::new().upcast());
        let mut guard = lock(&self.state);
        // Stopped: nothing to set up (a start begins afresh).
        let Some(state) = guard.as_mut() else {
            return Ok(());
        };
        if is_analysable(caps) {
            state.resampler = None;
            state.audio_format = Some(sample_format(caps).ok_or(AudioInputError::NotRaw)?);
            return Ok(());
        }
        let caps = caps.to_owned();
        match state.resampler.as_mut() {
            Some(r) => r.set_caps(&caps)?,
            None => {
                gst::info!(CAT, imp = self, "converting {caps} to 16 kHz for analysis");
                state.resampler = Some(Resampler::new(&caps, &segment)?);
            }
        }
        state.audio_format = state
            .resampler
            .as_ref()
            .and_then(Resampler::output_caps)
            .and_then(|c| sample_format(&c));
        Ok(())
    }

    /// Converts an audio buffer for the analysis when its caps need it (gaps need
    /// nothing); the converter's output format becomes the analysed one.
    pub(super) fn convert_audio(
        &self,
        state: &mut State,
        buf: gst::Buffer,
    ) -> Result<Vec<gst::Buffer>, gst::FlowError> {
        let Some(r) = state.resampler.as_mut() else {
            return Ok(vec![buf]);
        };
        if buf.flags().contains(gst::BufferFlags::GAP) {
            return Ok(vec![buf]);
        }
        let out = r.push(buf).inspect_err(|e| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("Cannot convert the audio for analysis: {e:?}")
            );
        })?;
        if state.audio_format.is_none() {
            state.audio_format = r.output_caps().and_then(|c| sample_format(&c));
        }
        Ok(out)
    }

    /// Feeds an audio buffer to the windows; returns the sample index where its mono
    /// samples start and the samples (for the voice detector), or `None` when it
    /// carries nothing usable.
    pub(super) fn push_audio(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        buf: gst::Buffer,
        clock: &LiveClock,
        changes: &mut Vec<Change>,
    ) -> Option<(u64, Vec<f32>)> {
        let Some((format, channels)) = state.audio_format else {
            gst::warning!(CAT, imp = self, "audio buffer before caps, dropped");
            return None;
        };
        if buf.flags().contains(gst::BufferFlags::GAP) {
            // A GAP event (the Aggregator makes it an empty buffer): nothing to
            // analyse; the voice detector hears silence.
            let rt = running_time(pad, &buf)?;
            let duration = buf.duration().map_or(0, |d| d.nseconds());
            let rt = clock.deliver(state, Input::Audio, rt, duration, true, changes)?;
            gst::log!(CAT, imp = self, "audio gap");
            state.assembler.push_gap(Input::Audio, rt + duration);
            let first = crate::media::audio::time_to_sample(rt, SAMPLE_RATE);
            let n = crate::media::audio::time_to_sample(duration, SAMPLE_RATE).min(10 * 16_000);
            return Some((first, vec![0.0; n as usize]));
        }
        // Cut the parts outside the segment, so running times are defined.
        let bpf = (format.width() * channels) as u32;
        let Some(buf) = gst_audio::audio_buffer_clip(buf, &pad.segment(), SAMPLE_RATE, bpf) else {
            gst::log!(CAT, imp = self, "audio buffer outside the segment, dropped");
            return None;
        };
        let Some(rt) = running_time(pad, &buf) else {
            gst::log!(CAT, imp = self, "audio buffer without timestamp, dropped");
            return None;
        };
        let frames = buf.size() as u64 / u64::from(bpf.max(1));
        let duration = buf.duration().map_or_else(
            || frames * SECOND / u64::from(SAMPLE_RATE),
            |d| d.nseconds(),
        );
        let rt = clock.deliver(state, Input::Audio, rt, duration, false, changes)?;
        let Ok(map) = buf.map_readable() else {
            gst::warning!(CAT, imp = self, "unreadable audio buffer, dropped");
            return None;
        };
        let mono = pcm_to_mono(&map, format, channels);
        let placed = state.assembler.push_audio(rt, &mono)?;
        if clock.now.is_none() {
            // Files: the detector's timeline is the buffers' (as it always was).
            return Some((crate::media::audio::time_to_sample(rt, SAMPLE_RATE), mono));
        }
        // Live: where the samples were kept, so it follows the windows' timeline
        // through jitter and drift.
        let (first, dropped) = placed;
        Some((first, mono[dropped..].to_vec()))
    }

    /// Feeds a video frame to the windows, resized to the sampling size with the face
    /// boxes of an upstream detector. Frames that cannot be analysed still pass.
    pub(super) fn push_video(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        buf: &gst::Buffer,
        clock: &LiveClock,
        changes: &mut Vec<Change>,
    ) -> Result<Frame, gst::FlowError> {
        let Some(info) = state.video_info.clone() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Video buffer arrived before caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let Some(rt) = running_time(pad, buf) else {
            gst::log!(
                CAT,
                imp = self,
                "frame outside the segment: passed, not analysed"
            );
            return Ok(Frame::Pass(None));
        };
        let duration = buf.duration().map(|d| d.nseconds()).or_else(|| {
            let fps = info.fps();
            (fps.numer() > 0).then(|| {
                gst::ClockTime::SECOND
                    .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                    .map_or(0, |d| d.nseconds())
            })
        });
        let gap = buf.flags().contains(gst::BufferFlags::GAP);
        let Some(rt) = clock.deliver(state, Input::Video, rt, duration.unwrap_or(0), gap, changes)
        else {
            gst::log!(
                CAT,
                imp = self,
                "video long past (a gap, or on a stalled input): ignored"
            );
            return Ok(Frame::Gap);
        };
        let layout = pixel_layout(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        if gap {
            // A GAP event (the Aggregator makes it an empty buffer): no picture then.
            gst::log!(CAT, imp = self, "video gap: not analysed");
            state
                .assembler
                .push_gap(Input::Video, rt + duration.unwrap_or(0));
            return Ok(Frame::Gap);
        }
        if buf.size() == 0 {
            gst::log!(CAT, imp = self, "empty video buffer: passed, not analysed");
            return Ok(Frame::Pass(Some(rt)));
        }
        let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info)
        else {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Decode,
                (
                    "A video buffer of {} bytes does not match its caps ({}x{} {}): not analysed",
                    buf.size(),
                    info.width(),
                    info.height(),
                    info.format().to_str()
                )
            );
            return Ok(Frame::Pass(Some(rt)));
        };
        let (iw, ih) = (info.width() as usize, info.height() as usize);
        // The sampling size is that of the upright picture; the stored one is resized
        // to it (sides swapped when it lies on its side), then turned upright.
        let orientation = state.orientation();
        let (uw, uh) = orientation.upright_size(iw, ih);
        let (w, h) = {
            let c = state.assembler.config();
            match c.fit_longest_side {
                Some(side) => fit_size(uw, uh, side),
                None => (c.frame_width, c.frame_height),
            }
        };
        let (w, h) = orientation.upright_size(w, h);
        let plane = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
        let mut resized = resize_linear(plane, iw, ih, info.stride()[0] as usize, layout, w, h);
        // Once a stream has carried face boxes from upstream (e.g. opencv's
        // facedetect), every frame's boxes (possibly none) replace detection here.
        let faces = upstream_faces(buf, iw, ih, w, h);
        if !faces.is_empty() && !state.upstream_faces {
            gst::info!(CAT, imp = self, "using face boxes from upstream ROI metas");
            state.upstream_faces = true;
        }
        if state.upstream_faces {
            resized.faces = Some(faces);
        }
        let resized = orientation.image(resized);
        state.assembler.push_frame(rt, duration, Arc::new(resized));
        Ok(Frame::Pass(Some(rt)))
    }

    /// Live input: notes inputs that ended while the other goes on, and finds those
    /// that delivered nothing for `clock.bound` (windows are then cut without them).
    /// Returns the inputs that stopped just now.
    pub(super) fn watch_inputs(
        &self,
        state: &mut State,
        pads: [&Option<gst_base::AggregatorPad>; 2],
        clock: &LiveClock,
        changes: &mut Vec<Change>,
    ) -> Vec<Input> {
        let mut gone = Vec::new();
        let eos = |input: Input| pads[input as usize].as_ref().map(|p| p.is_eos());
        let Some(now) = clock.now else {
            return gone;
        };
        for input in [Input::Video, Input::Audio] {
            let Some(ended) = eos(input) else { continue };
            let other_goes_on = eos(input.other()) == Some(false)
                && !state.watch[input.other() as usize].is_stalled();
            let data_end = state.assembler.data_end_of(input);
            let watch = &mut state.watch[input as usize];
            if ended {
                if watch.end(now) {
                    gone.push(input);
                }
                if other_goes_on && watch.end_due(now, clock.bound) {
                    changes.push(Change::Ended { input, data_end });
                }
                continue;
            }
            if let Some(silent_for) = watch.check_stall(now, clock.bound) {
                state.assembler.stall(input);
                changes.push(Change::Stalled {
                    input,
                    silent_for,
                    data_end,
                    alone: other_goes_on,
                });
                gone.push(input);
            }
        }
        gone
    }

    /// Called from a sink pad's streaming thread before its data: on non-live input,
    /// an input whose upstream has no source (a decoder branch that never appeared)
    /// would make the Aggregator wait forever, so it is ended.
    pub(super) fn check_starved_inputs(&self, fed: &gst_base::AggregatorPad) {
        let (fed_input, other) = {
            let pads = lock(&self.pads);
            let Some(input) = pads.input_of(fed) else {
                return;
            };
            (input, pads.get(input.other()).cloned())
        };
        let Some(other) = other else { return };
        // Live sources (cameras, RTSP) may expose a branch late (e.g. rtspsrc's audio
        // stream): never end an input of a live pipeline.
        if self.decided().live {
            return;
        }
        let other_input = fed_input.other();
        if self.with_state(|s| s.assembler.input_state(other_input)) != Some(InputState::Pending) {
            return;
        }
        if other.sticky_event::<gst::event::StreamStart>(0).is_some()
            || other.is_eos()
            || sink_has_source(other.upcast_ref(), 0)
        {
            return;
        }
        gst::warning!(
            CAT,
            imp = self,
            "the {} pad has no upstream source: analysing without it",
            other_input.name()
        );
        // Ending the input lets the Aggregator go on without it.
        let _ = other.send_event(gst::event::StreamStart::new("emotionsense-absent-input"));
        let _ = other.send_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
        let _ = other.send_event(gst::event::Eos::new());
    }
}

/// True if data can reach the sink pad `pad`: following peers upstream through
/// elements and bins finds a source element.
fn sink_has_source(pad: &gst::Pad, depth: u32) -> bool {
    if depth > 64 {
        return true;
    }
    match pad.peer() {
        Some(peer) => src_has_source(&peer, depth + 1),
        None => false,
    }
}

fn src_has_source(pad: &gst::Pad, depth: u32) -> bool {
    if depth > 64 {
        return true;
    }
    if let Some(ghost) = pad.downcast_ref::<gst::GhostPad>() {
        return match ghost.target() {
            Some(target) => src_has_source(&target, depth + 1),
            None => false,
        };
    }
    match pad.parent_element() {
        Some(element) => {
            let sinks = element.sink_pads();
            sinks.is_empty() || sinks.iter().any(|s| sink_has_source(s, depth + 1))
        }
        None => {
            // The internal pad of a bin's ghost sink pad: continue outside the bin.
            match pad
                .parent()
                .and_then(|p| p.downcast::<gst::GhostPad>().ok())
            {
                Some(ghost) => sink_has_source(ghost.upcast_ref(), depth + 1),
                None => true,
            }
        }
    }
}
