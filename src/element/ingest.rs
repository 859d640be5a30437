//! Buffers of the two inputs into the windows, as methods on the streaming
//! [`State`]: a video frame resized to the sampling size (with an upstream
//! detector's face boxes), audio converted and mixed to mono. They run under the
//! state's lock and never post: what the user must hear about comes back as an
//! [`InputFault`], posted by the element once the lock is released.

use std::sync::Arc;

use gst::prelude::*;
use gst_base::prelude::*;
use gst_video::prelude::*;

use super::CAT;
use super::convert::Placement;
use super::faults::Change;
use super::imp::State;
use super::inputs::{Input, LiveClock, running_time, sample_format};
use crate::media::{FaceRoi, pcm_to_mono};
use crate::window::{SAMPLE_RATE, SECOND};

/// Frames per second the windows keep, at most, when frames leave at once (live
/// input) and `max-frame-rate` is auto (unless the windows sample more densely): a
/// third of a 30 fps camera's conversions and memory, and still several frames to
/// choose from for each of the default bundle's 6 samples per 3 s window.
pub(super) const LIVE_FRAME_RATE: f64 = 10.0;

/// What became of a video buffer taken from the pad.
pub(super) enum Frame {
    /// It goes downstream, carrying the result of its running time (`None`: outside
    /// the segment).
    Pass(Option<u64>),
    /// A gap (no picture): nothing goes downstream.
    Gap,
}

/// Something wrong with an input buffer, for the element to report.
#[derive(Debug, thiserror::Error)]
pub(super) enum InputFault {
    /// A video buffer came before the caps that say what it is (an error).
    #[error("Video buffer arrived before caps")]
    VideoBeforeCaps,
    /// The negotiated video format has no pixel layout we read (an error).
    #[error("Unsupported video format {0}: put videoconvert before the video pad")]
    UnsupportedFormat(&'static str),
    /// A frame's size does not match its caps (a warning: passed, not analysed).
    #[error(
        "A video buffer of {size} bytes does not match its caps ({width}x{height} \
         {format}): not analysed"
    )]
    FrameMismatch {
        size: usize,
        width: u32,
        height: u32,
        format: &'static str,
    },
    /// A mapped frame has no readable picture (an error).
    #[error("Cannot read the picture of a video buffer")]
    FrameUnreadable,
    /// The internal audio converter failed (an error).
    #[error("Cannot convert the audio for analysis: {0:?}")]
    AudioConversion(gst::FlowError),
    /// Audio before its caps (logged; the buffer is dropped).
    #[error("audio buffer before caps, dropped")]
    AudioBeforeCaps,
    /// Audio that cannot be mapped (logged; the buffer is dropped).
    #[error("unreadable audio buffer, dropped")]
    AudioUnreadable,
}

/// How the element reports an [`InputFault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Severity {
    /// A GST_ELEMENT_ERROR; streaming stops with the fault's flow return.
    Error,
    /// A GST_ELEMENT_WARNING; streaming goes on.
    Warning,
    /// A line in the debug log only.
    Log,
}

impl InputFault {
    /// How the fault is reported.
    pub fn severity(&self) -> Severity {
        match self {
            InputFault::VideoBeforeCaps
            | InputFault::UnsupportedFormat(_)
            | InputFault::FrameUnreadable
            | InputFault::AudioConversion(_) => Severity::Error,
            InputFault::FrameMismatch { .. } => Severity::Warning,
            InputFault::AudioBeforeCaps | InputFault::AudioUnreadable => Severity::Log,
        }
    }

    /// The flow return streaming stops with, for an error.
    pub fn flow(&self) -> gst::FlowError {
        match self {
            InputFault::VideoBeforeCaps | InputFault::UnsupportedFormat(_) => {
                gst::FlowError::NotNegotiated
            }
            InputFault::AudioConversion(e) => *e,
            _ => gst::FlowError::Error,
        }
    }
}

impl State {
    /// Converts an audio buffer for the analysis when its caps need it (gaps need
    /// nothing); the converter's output format becomes the analysed one.
    pub fn convert_audio(&mut self, buf: gst::Buffer) -> Result<Vec<gst::Buffer>, InputFault> {
        let Some(r) = self.resampler.as_mut() else {
            return Ok(vec![buf]);
        };
        if buf.flags().contains(gst::BufferFlags::GAP) {
            return Ok(vec![buf]);
        }
        let out = r.push(buf).map_err(InputFault::AudioConversion)?;
        if self.audio_format.is_none() {
            self.audio_format = r.output_caps().and_then(|c| sample_format(&c));
        }
        Ok(out)
    }

    /// Feeds an audio buffer to the windows; returns the sample index where its mono
    /// samples start and the samples (for the voice detector), `Ok(None)` when it
    /// carries nothing to analyse, or why it was dropped.
    pub fn push_audio(
        &mut self,
        pad: &gst_base::AggregatorPad,
        buf: gst::Buffer,
        clock: &LiveClock,
        changes: &mut Vec<Change>,
    ) -> Result<Option<(u64, Vec<f32>)>, InputFault> {
        let (format, channels) = self.audio_format.ok_or(InputFault::AudioBeforeCaps)?;
        if buf.flags().contains(gst::BufferFlags::GAP) {
            // A GAP event (the Aggregator makes it an empty buffer): nothing to
            // analyse; the voice detector hears silence.
            let Some(rt) = running_time(pad, &buf) else {
                return Ok(None);
            };
            let duration = buf.duration().map_or(0, |d| d.nseconds());
            let Some(rt) = clock.deliver(self, Input::Audio, rt, duration, true, changes) else {
                return Ok(None);
            };
            gst::log!(CAT, obj = pad, "audio gap");
            self.assembler.push_gap(Input::Audio, rt + duration);
            let first = crate::media::audio::time_to_sample(rt, SAMPLE_RATE);
            let n = crate::media::audio::time_to_sample(duration, SAMPLE_RATE).min(10 * 16_000);
            return Ok(Some((first, vec![0.0; n as usize])));
        }
        // Cut the parts outside the segment, so running times are defined.
        let bpf = (format.width() * channels) as u32;
        let Some(buf) = gst_audio::audio_buffer_clip(buf, &pad.segment(), SAMPLE_RATE, bpf) else {
            gst::log!(CAT, obj = pad, "audio buffer outside the segment, dropped");
            return Ok(None);
        };
        let Some(rt) = running_time(pad, &buf) else {
            gst::log!(CAT, obj = pad, "audio buffer without timestamp, dropped");
            return Ok(None);
        };
        let frames = buf.size() as u64 / u64::from(bpf.max(1));
        let duration = buf.duration().map_or_else(
            || frames * SECOND / u64::from(SAMPLE_RATE),
            |d| d.nseconds(),
        );
        let Some(rt) = clock.deliver(self, Input::Audio, rt, duration, false, changes) else {
            return Ok(None);
        };
        let map = buf
            .map_readable()
            .map_err(|_| InputFault::AudioUnreadable)?;
        let mono = pcm_to_mono(&map, format, channels);
        let Some(placed) = self.assembler.push_audio(rt, &mono) else {
            return Ok(None);
        };
        if clock.now.is_none() {
            // Files: the detector's timeline is the buffers' (as it always was).
            let first = crate::media::audio::time_to_sample(rt, SAMPLE_RATE);
            return Ok(Some((first, mono)));
        }
        // Live: where the samples were kept, so it follows the windows' timeline
        // through jitter and drift.
        let (first, dropped) = placed;
        Ok(Some((first, mono[dropped..].to_vec())))
    }

    /// Feeds a video frame to the windows, resized to the sampling size with the face
    /// boxes of an upstream detector. Frames that cannot be analysed still pass (a
    /// warning comes with them); an error stops streaming.
    pub fn push_video(
        &mut self,
        pad: &gst_base::AggregatorPad,
        buf: &gst::Buffer,
        clock: &LiveClock,
        changes: &mut Vec<Change>,
    ) -> Result<(Frame, Option<InputFault>), InputFault> {
        let info = self.video_info.clone().ok_or(InputFault::VideoBeforeCaps)?;
        let Some(rt) = running_time(pad, buf) else {
            gst::log!(
                CAT,
                obj = pad,
                "frame outside the segment: passed, not analysed"
            );
            return Ok((Frame::Pass(None), None));
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
        let Some(rt) = clock.deliver(self, Input::Video, rt, duration.unwrap_or(0), gap, changes)
        else {
            gst::log!(
                CAT,
                obj = pad,
                "video long past (a gap, or on a stalled input): ignored"
            );
            return Ok((Frame::Gap, None));
        };
        if gap {
            // A GAP event (the Aggregator makes it an empty buffer): no picture then.
            gst::log!(CAT, obj = pad, "video gap: not analysed");
            self.assembler
                .push_gap(Input::Video, rt + duration.unwrap_or(0));
            return Ok((Frame::Gap, None));
        }
        if buf.size() == 0 {
            gst::log!(CAT, obj = pad, "empty video buffer: passed, not analysed");
            return Ok((Frame::Pass(Some(rt)), None));
        }
        if !self.keeps_frame(rt) {
            self.assembler.skip_frame(rt, duration);
            return Ok((Frame::Pass(Some(rt)), None));
        }
        let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buf.as_ref(), &info)
        else {
            let mismatch = InputFault::FrameMismatch {
                size: buf.size(),
                width: info.width(),
                height: info.height(),
                format: info.format().to_str(),
            };
            return Ok((Frame::Pass(Some(rt)), Some(mismatch)));
        };
        self.sample_frame(&frame, buf, rt, duration)?;
        Ok((Frame::Pass(Some(rt)), None))
    }

    /// Whether the windows keep the frame at `rt` under `max-frame-rate`: it is kept
    /// when three quarters of the period have passed since the last kept one (so a
    /// source a little faster than the limit is not halved) or time went back. Auto
    /// limits only live frames that leave at once: a file's windows see every frame
    /// whatever the result timing, so `analyze` and `annotate` pick the same ones.
    fn keeps_frame(&mut self, rt: u64) -> bool {
        let (set, live_rate) = self.max_frame_rate;
        let converts_now = self.converts_on_arrival();
        let rate = match set {
            r if r >= 0.0 => r,
            _ if converts_now => live_rate,
            _ => 0.0,
        };
        if rate > 0.0
            && let Some(last) = self.last_kept
            && rt >= last
            && ((rt - last) as f64) < 0.75 * SECOND as f64 / rate
        {
            return false;
        }
        self.last_kept = Some(rt);
        true
    }

    /// Whether frames become pictures as they arrive: live input whose frames leave
    /// at once. Otherwise a frame stays the input buffer until a window picks it (in
    /// step the element holds that buffer anyway; from a file, a window's worth of
    /// decoded frames is held, and the frames no window picks are never converted).
    fn converts_on_arrival(&self) -> bool {
        self.decided.is_some_and(|d| d.live && !d.in_step)
    }

    /// The frame at `rt` into the windows, resized (and turned upright) when a window
    /// picks it, or now for live frames that leave at once.
    fn sample_frame(
        &mut self,
        frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
        buf: &gst::Buffer,
        rt: u64,
        duration: Option<u64>,
    ) -> Result<(), InputFault> {
        let info = frame.info();
        let source = self
            .frame_source
            .clone()
            .ok_or_else(|| InputFault::UnsupportedFormat(info.format().to_str()))?;
        frame
            .plane_data(0)
            .map_err(|_| InputFault::FrameUnreadable)?;
        let (iw, ih) = (info.width() as usize, info.height() as usize);
        // The sampling size is that of the upright picture; the stored one is resized
        // to it (sides swapped when it lies on its side), then turned upright.
        let orientation = self.orientation();
        let (uw, uh) = orientation.upright_size(iw, ih);
        let (w, h) = {
            let c = self.assembler.config();
            match c.fit_longest_side {
                Some(side) => fit_size(uw, uh, side),
                None => (c.frame_width, c.frame_height),
            }
        };
        let (w, h) = orientation.upright_size(w, h);
        // Once a stream has carried face boxes from upstream (e.g. opencv's
        // facedetect), every frame's boxes (possibly none) replace detection here.
        let faces = upstream_faces(frame.buffer(), iw, ih, w, h);
        if !faces.is_empty() && !self.upstream_faces {
            gst::info!(CAT, "using face boxes from upstream ROI metas");
            self.upstream_faces = true;
        }
        let place = Placement {
            width: w,
            height: h,
            orientation,
            faces: self.upstream_faces.then_some(faces),
        };
        let frame = source.defer(buf.clone(), place);
        if self.converts_on_arrival() {
            // Live frames that leave at once: converted now, so that the recent
            // frames are kept as pictures (half an I420 frame's size at 720p) and the
            // camera's buffer goes back to its pool.
            frame.image();
        }
        self.assembler.push_frame(rt, duration, Arc::new(frame));
        Ok(())
    }
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
