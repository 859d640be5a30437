//! The `emotionsense` GStreamer element (an Aggregator subclass).
//!
//! - `imp.rs`: the element — SECTION docs, pads, state changes, the aggregate loop;
//! - `settings.rs`: properties, their defaults (one source) and the configurations
//!   they make;
//! - `stream.rs`: the streaming side of `aggregate()` — buffers into windows, video
//!   out with `EmotionMeta` and the overlay, windows to the worker;
//! - `inputs.rs`: the `video`/`audio` inputs — which pad is which, caps, the live
//!   clock's view of them, inputs that never deliver;
//! - `ingest.rs`: frames and audio into windows, as methods on the state that
//!   return what to report (upstream face boxes too);
//! - `convert.rs`: frames kept as they came (RGB or YUV) and made pictures at the
//!   sampling size only when a window picks them, on the worker;
//! - `faults.rs`: live inputs that stall, end or jump in time — noticed per input
//!   from the clock, reported once ([`InputEvent`] reads the report back);
//! - `passthrough.rs`: the `audio_src` pad (the audio leaves in step with the video)
//!   and the watchdog that reports an input starving while video is held;
//! - `flushing.rs`: the flushing flag, and the wake-up (part of the state) it gives
//!   blocked waits;
//! - `results.rs`: what the worker shares with the element — the latest result and
//!   each window's outcome (one lock), counters, the flush generation;
//! - `resample.rs`: audio of any format and rate converted for the analysis by an
//!   internal `audioconvert ! audioresample`;
//! - `timing.rs`: which window's result each frame carries (in step), and the held
//!   frames;
//! - `worker.rs`: the thread that runs the [`crate::analyzer::Analyzer`] on each
//!   window and posts the result.

use gst::glib;
use gst::prelude::*;

mod convert;
mod faults;
mod flushing;
mod imp;
mod ingest;
mod inputs;
mod passthrough;
mod resample;
mod results;
mod settings;
mod stream;
mod timing;
pub mod worker;

pub use crate::media::FramePolicy;
pub use crate::window::WindowMode;
pub use faults::{INPUT_DETAILS, InputEvent, InputEventKind};

pub(crate) static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "emotionsense",
        gst::DebugColorFlags::empty(),
        Some("Emotion and sentiment analysis of audio-visual windows"),
    )
});

glib::wrapper! {
    /// The `emotionsense` element: see the SECTION documentation in `imp.rs`.
    pub struct EmotionSense(ObjectSubclass<imp::EmotionSense>)
        @extends gst_base::Aggregator, gst::Element, gst::Object;
}

impl EmotionSense {
    /// Makes this element's analysis take `delay` longer per window, from its next
    /// start (READY → PAUSED): lets tests run a worker slower than real time without
    /// touching any other element. Zero (the default) in normal use.
    #[doc(hidden)]
    pub fn set_analysis_delay(&self, delay: std::time::Duration) {
        use gst::subclass::prelude::ObjectSubclassIsExt;
        imp::lock(&self.imp().settings).analysis_delay = delay;
    }
}

/// When a video buffer leaves the element, and so which result it carries.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstEmotionResultTiming")]
pub enum ResultTiming {
    /// In step for files (non-live input), latest for live input.
    #[default]
    #[enum_value(
        name = "Auto: in step for files (non-live input), latest for live input",
        nick = "auto"
    )]
    Auto = 0,
    /// Each buffer waits for the result of its own window (docs/metadata.md, "Timing").
    #[enum_value(
        name = "In step: each buffer waits for its own window's result (live: at most \
                window length + deadline, reported as latency)",
        nick = "in-step"
    )]
    InStep = 1,
    /// Buffers leave at once with the latest result (lowest latency).
    #[enum_value(
        name = "Latest: buffers leave at once carrying the latest finished result",
        nick = "latest"
    )]
    Latest = 2,
}

/// Registers `emotionsense` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "emotionsense",
        gst::Rank::NONE,
        EmotionSense::static_type(),
    )
}
