//! The element's two inputs: which pad is which, their caps, turning their buffers into
//! window data (resized frames with face boxes, mono audio), and ending an input whose
//! upstream will never deliver (so non-live pipelines cannot hang).

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::CAT;
use super::convert::{FrameSource, converted_formats};
use super::faults::Change;
use super::imp::{EmotionSense, State, lock};
use super::resample::{AudioInputError, Resampler, is_analysable};
use crate::media::{PixelLayout, SampleFormat};
pub use crate::window::Input;
use crate::window::InputState;

impl EmotionSense {
    /// The sink pad of `input`, if requested: the element's own pad list is the
    /// record (no copy of it to keep in step).
    pub(super) fn input_pad(&self, input: Input) -> Option<gst_base::AggregatorPad> {
        self.obj()
            .static_pad(input.name())
            .and_then(|p| p.downcast().ok())
    }

    /// Which input `pad` (one of the element's) is; `None` for a source pad.
    pub(super) fn input_of(&self, pad: &impl IsA<gst::Pad>) -> Option<Input> {
        let pad = pad.upcast_ref::<gst::Pad>();
        if pad.direction() != gst::PadDirection::Sink {
            return None;
        }
        let name = pad.name();
        [Input::Video, Input::Audio]
            .into_iter()
            .find(|i| name == i.name())
    }

    /// The `audio_src` pad (it comes with the `audio` pad).
    pub(super) fn audio_src(&self) -> Option<gst::Pad> {
        self.obj().static_pad("audio_src")
    }
}

/// Packed RGB-like video formats: read directly, and the ones the overlay draws on.
pub const PACKED_FORMATS: &[gst_video::VideoFormat] = &[
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

/// The sample format and channel count of analysable audio caps.
pub(super) fn sample_format(caps: &gst::CapsRef) -> Option<(SampleFormat, usize)> {
    let info = gst_audio::AudioInfo::from_caps(caps).ok()?;
    let format = match info.format() {
        gst_audio::AudioFormat::F32le => SampleFormat::F32le,
        gst_audio::AudioFormat::S16le => SampleFormat::S16le,
        _ => return None,
    };
    Some((format, info.channels() as usize))
}

/// Video caps of the `video` pad (and `src`): the packed RGB formats, and the ones
/// the converter reads ([`converted_formats`]) unless `packed_only` (the overlay
/// draws on RGB).
pub fn video_caps(packed_only: bool) -> gst::Caps {
    let converted = converted_formats().filter(move |_| !packed_only);
    gst_video::VideoCapsBuilder::new()
        .format_list(PACKED_FORMATS.iter().copied().chain(converted))
        .build()
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
            Input::Video => {
                let overlay = lock(&self.settings).overlay;
                let source = gst_video::VideoInfo::from_caps(caps).ok().and_then(|info| {
                    let drawable = pixel_layout(info.format()).is_some() || !overlay;
                    Some((FrameSource::new(&info).filter(|_| drawable)?, info))
                });
                match source {
                    Some((source, info)) => {
                        self.with_state(|s| {
                            s.video_info = Some(info);
                            s.frame_source = Some(std::sync::Arc::new(source));
                        });
                        self.obj().src_pad().mark_reconfigure();
                        true
                    }
                    None => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Format,
                            (
                                "Unsupported video caps {caps}: put videoconvert before the video \
                                 pad{}",
                                if overlay {
                                    " (the overlay draws on RGB)"
                                } else {
                                    ""
                                }
                            )
                        );
                        false
                    }
                }
            }
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
        let segment = self
            .input_pad(Input::Audio)
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
            .as_mut()
            .and_then(Resampler::output_caps)
            .and_then(|c| sample_format(&c));
        Ok(())
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
        let Some(fed_input) = self.input_of(fed) else {
            return;
        };
        let Some(other) = self.input_pad(fed_input.other()) else {
            return;
        };
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
