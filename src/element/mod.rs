//! The `emotionsense` GStreamer element (an Aggregator subclass).
//!
//! `imp.rs` holds the implementation; this file the public type, the enums its
//! properties use, and registration.

use gst::glib;
use gst::prelude::*;

mod imp;

pub(crate) use imp::CAT;
pub mod worker;

pub use worker::set_worker_delay_for_tests;

glib::wrapper! {
    /// The `emotionsense` element: see the SECTION documentation in `imp.rs`.
    pub struct EmotionSense(ObjectSubclass<imp::EmotionSense>)
        @extends gst_base::Aggregator, gst::Element, gst::Object;
}

/// How running time is cut into analysis windows.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstEmotionWindowMode")]
pub enum WindowMode {
    /// Fixed-length windows every `window-hop` seconds.
    #[default]
    #[enum_value(
        name = "Sliding: windows of window-length seconds every window-hop seconds",
        nick = "sliding"
    )]
    Sliding = 0,
    /// Speech segments found by voice activity detection.
    #[enum_value(
        name = "Utterance: one window per speech segment (up to max-utterance-length seconds)",
        nick = "utterance"
    )]
    Utterance = 1,
}

/// How the T frames of a window are chosen.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstEmotionFramePolicy")]
pub enum FramePolicy {
    /// The first T frames of the window, black padding if fewer (reference MELD).
    #[enum_value(
        name = "First: the first T frames, black padding if fewer",
        nick = "first"
    )]
    First = 0,
    /// The frames on screen at T evenly spaced instants.
    #[default]
    #[enum_value(
        name = "Uniform: the frames on screen at T evenly spaced instants",
        nick = "uniform"
    )]
    Uniform = 1,
}

impl From<FramePolicy> for crate::media::FramePolicy {
    fn from(p: FramePolicy) -> Self {
        match p {
            FramePolicy::First => crate::media::FramePolicy::First,
            FramePolicy::Uniform => crate::media::FramePolicy::Uniform,
        }
    }
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
